//! The command line: `mempulse run`, `mempulse cert`, `mempulse cluster …`,
//! `mempulse wal verify|dump|stats`, `mempulse schedule`.

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
    /// Create a CA and node certificates (PEM) for a test cluster.
    Cert(CertCommand),
    /// Administer a running cluster over its authenticated transport.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Inspect a write-ahead log offline (read-only).
    #[command(subcommand)]
    Wal(WalCommand),
    /// Print the proposer and every validator's tags for a range of heights (offline).
    Schedule(ScheduleArgs),
    /// Rebuild the derived state from a copied event log and print its digests (read-only).
    Replay(ReplayArgs),
    /// Stream raw transactions to a node's stream lane and print one JSON summary line.
    #[command(name = "txsource")]
    TxSource(TxSourceArgs),
    /// Check a copied event log's state digest against a trusted root or a peer (read-only);
    /// exit 0 on a match, 1 on a mismatch (with the first divergent index), 2 on errors.
    #[command(name = "verify-state")]
    VerifyState(VerifyStateArgs),
    /// Start validator clusters and tx sources as processes on loopback, with a live summary.
    Devnet(crate::commands::DevnetArgs),
}

#[derive(Debug, Args)]
pub(crate) struct CertArgs {
    /// Directory to write `ca.pem`, `ca-key.pem`, `node-<id>.pem`, `node-<id>-key.pem` into.
    #[arg(long)]
    pub(crate) out: PathBuf,
    /// Node ids to issue certificates for, comma separated.
    #[arg(long, value_delimiter = ',', required = true)]
    pub(crate) nodes: Vec<u64>,
    /// Extra names (DNS or IP) every node certificate is valid for, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "127.0.0.1,localhost")]
    pub(crate) hosts: Vec<String>,
}

/// Arguments of `mempulse cert`: what to issue, and whether existing files may be replaced.
#[derive(Debug, Args)]
pub(crate) struct CertCommand {
    /// What to issue, and where.
    #[command(flatten)]
    pub(crate) cert: CertArgs,
    /// Replace files already in `--out` (a new CA invalidates every certificate the old one
    /// issued); without it the command refuses to overwrite anything.
    #[arg(long)]
    pub(crate) force: bool,
}

/// Which node an admin command talks to, and as whom.
#[derive(Debug, Args)]
pub(crate) struct AdminTarget {
    /// The local node's configuration: its id and certificate authenticate the command.
    #[command(flatten)]
    pub(crate) node_config: RunArgs,
    /// Node to ask: `host:port` of a configured member, or `id@host:port` (default: the local
    /// node).
    #[arg(long)]
    pub(crate) node: Option<String>,
    /// Bound on the whole command (a learner must catch up within it).
    #[arg(long, default_value_t = 10_000)]
    pub(crate) timeout_ms: u64,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ClusterCommand {
    /// Print the node's view of the cluster as JSON (members, leader, term, indexes, role).
    Status(AdminTarget),
    /// Add a node as a learner; returns once it caught up.
    AddLearner {
        #[command(flatten)]
        target: AdminTarget,
        /// The new node's id.
        #[arg(long)]
        id: u64,
        /// The new node's raft address (`host:port`).
        #[arg(long)]
        addr: String,
    },
    /// Make learners voters.
    Promote {
        #[command(flatten)]
        target: AdminTarget,
        /// Learner ids, comma separated.
        #[arg(long, value_delimiter = ',', required = true)]
        ids: Vec<u64>,
    },
    /// Remove a voter or a learner.
    Remove {
        #[command(flatten)]
        target: AdminTarget,
        /// The node to remove.
        #[arg(long)]
        id: u64,
    },
    /// Hand leadership to a voter.
    TransferLeader {
        #[command(flatten)]
        target: AdminTarget,
        /// The node to become leader.
        #[arg(long)]
        to: u64,
    },
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
    /// HTTP API listen address (`ip:port`): JSON-RPC at `/`, REST under `/v1`, `/metrics`.
    #[arg(long, env = "MEMPULSE_HTTP_ADDR")]
    pub(crate) http_addr: Option<String>,
    /// Tx-stream listen address (`ip:port`) for peer nodes and tx sources.
    #[arg(long, env = "MEMPULSE_STREAM_ADDR")]
    pub(crate) stream_addr: Option<String>,
    /// Chain id transactions must carry.
    #[arg(long, env = "MEMPULSE_CHAIN_ID")]
    pub(crate) chain_id: Option<u64>,
    /// This node's id in its cluster.
    #[arg(long, env = "MEMPULSE_NODE_ID")]
    pub(crate) node_id: Option<u64>,
    /// Raft listen address (`ip:port`), also the address peers dial.
    #[arg(long, env = "MEMPULSE_RAFT_ADDR")]
    pub(crate) raft_addr: Option<String>,
    /// Raft directory (must persist; default `<data-dir>/raft`).
    #[arg(long, env = "MEMPULSE_RAFT_DIR")]
    pub(crate) raft_dir: Option<PathBuf>,
    /// Cluster members, `id@host:port,...` (replaces the file's list).
    #[arg(long, env = "MEMPULSE_PEERS")]
    pub(crate) peers: Option<String>,
    /// Initialize the cluster when this node's Raft log is empty (`--bootstrap[=true|false]`).
    #[arg(long, env = "MEMPULSE_BOOTSTRAP", num_args = 0..=1, default_missing_value = "true")]
    pub(crate) bootstrap: Option<bool>,
}

/// Arguments of `mempulse txsource`.
#[derive(Debug, Args)]
pub(crate) struct TxSourceArgs {
    /// The node's stream listener: `host:port`, or `id@host:port` to require that node's
    /// certificate (`node-<id>`; with `host:port` its certificate must list the host).
    #[arg(long, required_unless_present = "catalog", conflicts_with = "catalog")]
    pub(crate) node: Option<String>,
    /// Route by tags instead of streaming to one node: nodes to read the peer catalog from
    /// (`[id@]host:port`, comma separated; the first that answers is used).
    #[arg(long, value_delimiter = ',')]
    pub(crate) catalog: Option<Vec<String>>,
    /// With `--catalog`, the clusters to stream to: `default` (proposer, proposer-next,
    /// proposer-soon: connected two heights ahead), `reactive` (proposer only: connected when
    /// the tag appears), `any:TAG,..` or `all:TAG,..`.
    #[arg(long, default_value = "default")]
    pub(crate) subscribe: String,
    /// Milliseconds between two status lines: a JSON object on stdout (`"event":"status"`:
    /// what was sent, the open streams, per node and cluster) and a log of the open streams.
    /// Without it stdout holds only the final report (the open streams are logged each second).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) status_interval_ms: Option<u64>,
    /// The id this source announces; with TLS its certificate must name `node-<id>`.
    #[arg(long)]
    pub(crate) source_id: u64,
    /// The deployment CA certificate (PEM); with `--tls-cert` and `--tls-key` (else plaintext,
    /// loopback only).
    #[arg(long)]
    pub(crate) tls_ca: Option<PathBuf>,
    /// This source's certificate (PEM), issued by the deployment CA.
    #[arg(long)]
    pub(crate) tls_cert: Option<PathBuf>,
    /// This source's private key (PEM).
    #[arg(long)]
    pub(crate) tls_key: Option<PathBuf>,
    /// Raw transactions, hex (optionally `0x`), one per line; `-` or nothing reads stdin.
    #[arg(long, conflicts_with = "generate")]
    pub(crate) file: Option<PathBuf>,
    /// Generate this many signed transfers instead (throwaway keys; never fund them).
    #[arg(long)]
    pub(crate) generate: Option<u64>,
    /// Senders the generated transfers rotate through.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) senders: u32,
    /// Chain id of the generated transfers.
    #[arg(long, default_value_t = mempulse_net::CHAIN_ID_DEFAULT)]
    pub(crate) chain_id: u64,
    /// Seed of the generated senders' keys (the same seed gives the same transactions).
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// Transactions per second at most (default: as fast as the node's credits allow).
    #[arg(long)]
    pub(crate) rate: Option<u64>,
    /// Bound on closing: sending what is buffered and waiting for the node's tally (also when
    /// SIGTERM or Ctrl-C stops the source, which then prints its report and exits 0).
    #[arg(long, default_value_t = 30_000)]
    pub(crate) close_timeout_ms: u64,
}

/// Arguments of `mempulse replay`.
#[derive(Debug, Args)]
pub(crate) struct ReplayArgs {
    /// Directory of event-log segment files (opened read-only; never written).
    #[arg(long)]
    pub(crate) wal: PathBuf,
    /// Resume from the newest valid checkpoint in this directory (read-only; damaged ones are
    /// skipped with a warning).
    #[arg(long)]
    pub(crate) from_checkpoint: Option<PathBuf>,
    /// Stop after this seq (default: the end of the log).
    #[arg(long)]
    pub(crate) to: Option<u64>,
    /// Print a digest point after every seq that is a multiple of this.
    #[arg(long, default_value_t = mempulse_replay::DEFAULT_DIGEST_EVERY_EVENTS, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) every: u64,
    /// One JSON object per line: each digest point, then a summary.
    #[arg(long)]
    pub(crate) json: bool,
    /// Write a checkpoint at every digest point into this directory (not the `--wal` one).
    #[arg(long)]
    pub(crate) write_checkpoints: Option<PathBuf>,
    /// Checkpoints kept in `--write-checkpoints`.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub(crate) keep: u64,
}

/// Arguments of `mempulse verify-state`.
#[derive(Debug, Args)]
pub(crate) struct VerifyStateArgs {
    /// Directory of event-log segment files (opened read-only; never written).
    #[arg(long)]
    pub(crate) wal: PathBuf,
    /// The trusted state root (hex) through `--at`.
    #[arg(long, requires = "at", conflicts_with = "peer", required_unless_present = "peer")]
    pub(crate) trusted_root: Option<String>,
    /// The Raft index the trusted root is through.
    #[arg(long, requires = "trusted_root")]
    pub(crate) at: Option<u64>,
    /// A peer's HTTP API (`http://host:port`): compare with its `/v1/state-root` and bisect
    /// to the first divergent index.
    #[arg(long)]
    pub(crate) peer: Option<String>,
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

#[derive(Debug, Args)]
pub(crate) struct ScheduleArgs {
    /// The validators file (TOML) every node shares.
    #[arg(long)]
    pub(crate) validators: PathBuf,
    /// First height to print (default: the file's initial height).
    #[arg(long)]
    pub(crate) from_height: Option<u64>,
    /// Number of heights to print.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub(crate) count: u64,
    /// One JSON object per line (`height`, `proposer`, `tags`) instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
}
