//! `mempulse-bench`: one subcommand per benchmark, one JSON line per run.
//!
//! Adding a benchmark is a new module with an `Args` struct and a `run(&Args) -> Result<Report>`
//! function, plus one arm in [`Command`].

mod cluster;
mod etcd;
mod failover;
mod http_client;
mod ingest;
mod interrupt;
mod load;
mod mempool;
mod nodes;
mod preconnect;
mod procs;
mod recover;
mod replay;
mod report;
mod scan;
mod sink;
mod synth;
mod wal;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The product binary's allocator (`bin/node`), so figures match the node's.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
    /// JSON-RPC end to end: concurrent clients submitting signed transactions to real nodes.
    Ingest(ingest::Args),
    /// Read a node's event log over HTTP against the WAL directly, and the live tail's latency.
    Scan(scan::Args),
    /// Replicated writes on a 3-node cluster against a 3-member etcd cluster.
    Cluster(cluster::Args),
    /// Kill -9 of the leader: time to the next committed write, against etcd.
    Failover(failover::Args),
    /// A devnet's new proposer: slot start to its first admission, pre-connected vs reactive.
    Preconnect(preconnect::Args),
}

fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    interrupt::watch()?;
    let report = match cli.command {
        Command::Wal(args) => wal::run(&args)?,
        Command::Mempool(args) => mempool::run(&args)?,
        Command::Recover(args) => recover::run(&args)?,
        Command::Sink(args) => sink::run(&args)?,
        Command::Replay(args) => replay::run(&args)?,
        Command::Ingest(args) => ingest::run(&args)?,
        Command::Scan(args) => scan::run(&args)?,
        Command::Cluster(args) => cluster::run(&args)?,
        Command::Failover(args) => failover::run(&args)?,
        Command::Preconnect(args) => preconnect::run(&args)?,
    };
    report.emit()
}
