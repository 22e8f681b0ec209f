//! One module per subcommand; each returns the process exit code.

mod cert;
mod cluster;
mod devnet;
mod replay;
mod run;
mod schedule;
mod txsource;
mod verify_state;
mod wal;

use std::process::ExitCode;

pub(crate) use self::devnet::DevnetArgs;
use crate::cli::Command;

/// Runs one subcommand.
pub(crate) fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run(args) => run::run(&args),
        Command::Cert(command) => cert::write(&command.cert, command.force),
        Command::Cluster(cmd) => cluster::run(cmd),
        Command::Wal(cmd) => wal::run(cmd),
        Command::Schedule(args) => schedule::run(&args),
        Command::Replay(args) => replay::run(&args),
        Command::TxSource(args) => txsource::run(&args),
        Command::VerifyState(args) => verify_state::run(&args),
        Command::Devnet(args) => devnet::run(&args),
    }
}
