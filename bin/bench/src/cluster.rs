//! The `cluster` benchmark: replicated, fsynced writes on a real 3-node `mempulse` cluster
//! against a 3-member etcd cluster on the same loopback, in the same run.
//!
//! 1. **sign** (untimed): `--txs` EIP-1559 transactions whose calldata is padded so the
//!    encoding is `--value-size` bytes (at most; `tx_bytes` reports it), nonces in order per
//!    sender (`load` module).
//! 2. **mempulse** (timed): three nodes over mutual TLS (`mempulse cert`, node 1 bootstraps),
//!    the event log's `[wal] sync` from `--event-log-sync` (the node's default `5ms`), the Raft
//!    log fsynced per append, default Raft timings. `--clients` closed-loop clients spread
//!    over the nodes send `eth_sendRawTransaction` (an `AddTxs` write through Raft); a write
//!    counts when the reply is the hash (committed, applied, durable in the event log). A
//!    committer commits acknowledged transactions as blocks every `--block-ms`.
//! 3. **etcd** (timed, same duration and client count): three members with default settings
//!    (fsync on commit, heartbeat 100 ms, election 1000 ms), clients spread over them, each a
//!    keep-alive HTTP/1.1 connection to the v3 JSON gateway putting `--value-size`-byte values
//!    under distinct keys (`etcd_client`). A write counts when the reply is 200 with a header.
//! 4. `ratio` = mempulse writes/s ÷ etcd writes/s. mempulse's nodes talk mutual TLS to each
//!    other, etcd's members plain HTTP.

use std::{path::PathBuf, time::Duration};

use anyhow::Context as _;
use serde_json::{Value, json};

use crate::{
    etcd::{ETCD_CLIENT, EtcdCluster, EtcdTimings, etcd_bin, etcd_version},
    ingest::spread,
    load::{self, Client, Committer, LoadResult, Requests, TxPlan},
    nodes::{MempulseCluster, NodeOptions},
    procs::mempulse_bin,
    report::Report,
};

/// Which peer runs after mempulse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Peer {
    /// A 3-member etcd cluster (`etcd` must be in `PATH`).
    Etcd,
    /// No peer: mempulse only (no ratio).
    None,
}

/// Arguments of `mempulse-bench cluster`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Nodes (the benchmark is defined for 3).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(3..=3))]
    nodes: u64,
    /// Concurrent clients per system, one keep-alive connection each.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096))]
    clients: u32,
    /// Length of each timed load.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    duration_s: u64,
    /// Bytes of each written value (the transaction's encoded size for mempulse).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(200..=100_000))]
    value_size: u32,
    /// Transactions signed before the run (mempulse ends early, `exhausted`, when a client has
    /// sent its share).
    #[arg(long, default_value_t = 200_000, value_parser = clap::value_parser!(u32).range(1..=20_000_000))]
    txs: u32,
    /// Distinct senders over all clients.
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    senders: u32,
    /// Milliseconds between two committed blocks of acknowledged transactions.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    block_ms: u64,
    /// The peer measured in the same run.
    #[arg(long, value_enum, default_value_t = Peer::Etcd)]
    peer: Peer,
    /// Threads of the clients' runtime (the servers share the machine).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    client_threads: u32,
    /// The `mempulse` binary (default: next to this executable).
    #[arg(long)]
    mempulse: Option<PathBuf>,
    /// The nodes' event-log `[wal] sync` policy: `<N>ms` (the node's default, `5ms`: written
    /// before the acknowledgement, fsynced within N ms) or `always` (an fdatasync per group
    /// before a write is acknowledged). The Raft log is fsynced before every acknowledgement
    /// either way.
    #[arg(long, default_value = "5ms")]
    event_log_sync: String,
}

/// Runs the benchmark and returns its one-line report.
///
/// # Errors
/// Fails if a binary is missing, a cluster does not start, or a client cannot connect.
pub(crate) fn run(args: &Args) -> anyhow::Result<Report> {
    let bin = mempulse_bin(args.mempulse.as_deref())?;
    let etcd = match args.peer {
        Peer::Etcd => Some(etcd_bin()?),
        Peer::None => None,
    };
    let clients = usize::try_from(args.clients)?;
    let value_size = usize::try_from(args.value_size)?;
    let input_len = load::input_len_for(value_size)?;
    let plan = TxPlan {
        clients,
        per_client: usize::try_from(args.txs)?.div_ceil(clients),
        senders: args.senders.max(args.clients),
        sender_base: 0,
        input_len,
    };
    let bodies = load::sign_bodies(&plan)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(usize::try_from(args.client_threads)?)
        .enable_all()
        .build()?;
    let duration = Duration::from_secs(args.duration_s);
    let mempulse = runtime.block_on(async {
        let options = NodeOptions {
            nodes: args.nodes,
            event_log_sync: Some(args.event_log_sync.clone()),
            ..NodeOptions::default()
        };
        let mut cluster = MempulseCluster::create(&bin, &options)?;
        let leader = cluster.start_all().await?;
        let committer = Committer {
            addr: cluster.http(leader)?,
            interval: Duration::from_millis(args.block_ms),
        };
        let clients = spread(bodies, &cluster.http_addrs());
        load::run(clients, duration, Some(committer))
            .await
            .with_context(|| format!("leader log:\n{}", cluster.log_tail(leader)))
    })?;
    let peer = match &etcd {
        Some(etcd) => Some(runtime.block_on(etcd_load(etcd, clients, value_size, duration))?),
        None => None,
    };
    let fields = json!({
        "writes_per_s": mempulse.per_s(),
        "p50_ms": mempulse.percentile_ms(500),
        "p99_ms": mempulse.percentile_ms(990),
        "clients": args.clients,
        "nodes": args.nodes,
        "value_size": args.value_size,
        "tx_bytes": load::tx_bytes(input_len)?,
        "etcd_writes_per_s": peer.as_ref().map(LoadResult::per_s),
        "etcd_p50_ms": peer.as_ref().map(|p| p.percentile_ms(500)),
        "etcd_p99_ms": peer.as_ref().map(|p| p.percentile_ms(990)),
        "ratio": peer.as_ref().map(|p| mempulse.per_s() / p.per_s().max(1e-12)),
        "p50_ratio": peer.as_ref().map(|p| mempulse.percentile_ms(500) / p.percentile_ms(500).max(1e-12)),
        "etcd_client": peer.as_ref().map(|_| ETCD_CLIENT),
        "etcd_version": etcd.as_deref().map(etcd_version),
        "outcomes": mempulse.outcomes_json(),
        "etcd_outcomes": peer.as_ref().map(LoadResult::outcomes_json),
        "duration_s": args.duration_s,
        "elapsed_s": mempulse.elapsed.as_secs_f64(),
        "etcd_elapsed_s": peer.as_ref().map(|p| p.elapsed.as_secs_f64()),
        "exhausted": mempulse.exhausted,
        "blocks_committed": mempulse.blocks_committed,
        "commit_failures": mempulse.commit_failures,
        "client": "http1-keepalive-json-rpc",
        "client_threads": args.client_threads,
        "wal_sync": args.event_log_sync,
        "raft_log_sync": "always",
        "throttle_off": true,
    });
    let Value::Object(fields) = fields else { unreachable!("json! of an object literal") };
    Ok(Report::Measured(fields))
}

/// Starts the etcd cluster, runs `clients` writers of `value_size`-byte values for
/// `duration`, and stops it.
async fn etcd_load(
    bin: &std::path::Path,
    clients: usize,
    value_size: usize,
    duration: Duration,
) -> anyhow::Result<LoadResult> {
    let mut cluster = EtcdCluster::create(bin, EtcdTimings::default())?;
    cluster.start_all().await?;
    let value_b64 = load::base64(&vec![0xab; value_size]);
    let addrs = cluster.client_addrs();
    let writers = (0..clients)
        .zip(addrs.iter().cycle())
        .map(|(i, &addr)| Client {
            addr,
            requests: Requests::EtcdPut {
                prefix: format!("bench/{i:05}/"),
                value_b64: value_b64.clone(),
            },
        })
        .collect();
    load::run(writers, duration, None).await
}
