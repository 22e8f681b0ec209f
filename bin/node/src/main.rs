//! The `mempulse` binary: parses the command line, installs the subscriber, dispatches.

mod cli;
mod commands;
mod config;
mod logging;
mod wiring;

use std::process::ExitCode;

use clap::Parser;
use tikv_jemallocator::Jemalloc;

#[global_allocator]
static GLOBAL: Jemalloc = Jemalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    logging::init(cli.log_format);
    match commands::dispatch(cli.command) {
        Ok(code) => code,
        Err(err) => {
            // Printed once, whatever `RUST_LOG` filters (not also logged: both go to stderr).
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
