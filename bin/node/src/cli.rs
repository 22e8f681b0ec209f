//! The command line: `mempulse run`, `mempulse wal verify|dump|stats`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// A highly available, deterministic, replayable transaction mempool.
#[derive(Debug, Parser)]
#[command(name = "mempulse", version, about)]
pub(crate) struct Cli {
    /// Log line format on stderr (filter with `RUST_LOG`).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "MEMPULSE_LOG_FORMAT")]
    pub(crate) log_format: LogFormat,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Log output format.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Text,
    /// Compact human-readable lines.
    Compact,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run a node (the embedded default without `--config`).
    Run(RunArgs),
    /// Inspect a write-ahead log offline (read-only).
    #[command(subcommand)]
    Wal(WalCommand),
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// TOML configuration file; flags and environment variables override it.
    #[arg(long, env = "MEMPULSE_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// Data directory (holds the event log under `events/`).
    #[arg(long, env = "MEMPULSE_DATA_DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// Event log sync policy: `always`, `never`, or an interval such as `10ms`.
    #[arg(long, env = "MEMPULSE_WAL_SYNC")]
    pub(crate) wal_sync: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum WalCommand {
    /// Check every frame of every segment; exit 1 naming the segment and offset on damage.
    Verify {
        /// Directory of segment files.
        dir: PathBuf,
    },
    /// Print records as JSON lines, decoded as events.
    Dump {
        /// Directory of segment files.
        dir: PathBuf,
        /// First seq to print.
        #[arg(long, default_value_t = 1)]
        from: u64,
        /// Maximum number of records to print.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Print segments, records, bytes, first and last seq as one JSON object.
    Stats {
        /// Directory of segment files.
        dir: PathBuf,
    },
}
