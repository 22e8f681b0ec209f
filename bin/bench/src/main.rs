//! `mempulse-bench`: one subcommand per benchmark, one JSON line per run.
//!
//! Adding a benchmark is a new module with an `Args` struct and a `run(&Args) -> Result<Report>`
//! function, plus one arm in [`Command`].

mod mempool;
mod recover;
mod replay;
mod report;
mod sink;
mod wal;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Benchmarks of mempulse against its peers; each run prints exactly one JSON line on stdout.
#[derive(Debug, Parser)]
#[command(name = "mempulse-bench", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The benchmarks.
#[derive(Debug, Subcommand)]
enum Command {
    /// Append, scan and reopen a write-ahead log: mempulse-wal, raft-engine or okaywal.
    Wal(wal::Args),
    /// Add, build, commit + recheck, snapshot + digest of the mempool state machine.
    Mempool(mempool::Args),
    /// Decode + sender recovery of signed Ethereum transactions on the mempulse-net worker pool.
    Recover(recover::Args),
    /// Export a WAL to ClickHouse with the sink, against a bulk insert of the same rows.
    Sink(sink::Args),
    /// Rebuild the derived state from an event log: warm and cold replay, checkpoint, start-up.
    Replay(replay::Args),
}

fn main() -> anyhow::Result<ExitCode> {
    let report = match Cli::parse().command {
        Command::Wal(args) => wal::run(&args)?,
        Command::Mempool(args) => mempool::run(&args)?,
        Command::Recover(args) => recover::run(&args)?,
        Command::Sink(args) => sink::run(&args)?,
        Command::Replay(args) => replay::run(&args)?,
    };
    report.emit()
}
