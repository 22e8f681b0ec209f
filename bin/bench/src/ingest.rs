//! The `ingest` benchmark: JSON-RPC end to end against real `mempulse` processes.
//!
//! 1. **sign** (untimed): `--txs` EIP-1559 transfers from `--senders` senders, nonces in order
//!    per sender, split over the clients (`load::sign_bodies`).
//! 2. **start** (untimed): one node, or three over mutual TLS, on loopback free ports with temp
//!    data dirs, the default `[wal] sync` (`5ms`), the per-source rate limit lifted (`throttle_off`),
//!    and `[ingest] rpc-queue-capacity` when `--rpc-queue-capacity` is given (the overload run).
//! 3. **load** (timed, `--duration-s`): `--clients` closed-loop clients on keep-alive
//!    HTTP/1.1 connections, spread over the nodes, each sending `eth_sendRawTransaction` and
//!    waiting for the reply. A transaction counts when the reply is its hash: the node answers
//!    after the Raft commit, the apply and the fact append to the event log, so it is durable.
//!    A committer commits the acknowledged hashes as blocks every `--block-ms` so the pool
//!    (10 000 transactions) never fills (`load` module docs).
//! 4. **counters**: the nodes' `mempulse_net_lane_dropped_total` and
//!    `mempulse_net_admission_failed_total` from `GET /metrics`, before and after.
//!
//! `dropped` counts the replies that said a lane dropped the transaction (`queue_full`,
//! `throttled`, …); `dropped_counted` is the same drops as the nodes counted them. Every
//! refusal is an answer: `timeouts` counts requests that got none within 10 s.

use std::{collections::BTreeMap, net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::Context as _;
use serde_json::{Value, json};

use crate::{
    load::{self, Client, Committer, Requests, TxPlan},
    nodes::{MempulseCluster, NodeOptions},
    procs::{http_text, mempulse_bin},
    report::Report,
};

/// Bound on one `/metrics` scrape.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);
/// The drop counter of the ingest lanes.
const LANE_DROPPED: &str = "mempulse_net_lane_dropped_total";
/// Admission batches that got no verdicts (no leader, overloaded, timeout…).
const ADMISSION_FAILED: &str = "mempulse_net_admission_failed_total";

/// Arguments of `mempulse-bench ingest`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Concurrent clients, one keep-alive connection and one request in flight each.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=4096))]
    clients: u32,
    /// Length of the timed load.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    duration_s: u64,
    /// Nodes: 1, or 3 over mutual TLS (clients spread over them; followers forward).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=3))]
    nodes: u64,
    /// Distinct senders over all clients (at least one per client).
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    senders: u32,
    /// Transactions signed before the run; it ends early (`exhausted`) when a client has sent
    /// its share.
    #[arg(long, default_value_t = 200_000, value_parser = clap::value_parser!(u32).range(1..=20_000_000))]
    txs: u32,
    /// `[ingest] rpc-queue-capacity` of the nodes (default: the node's own).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    rpc_queue_capacity: Option<u32>,
    /// Milliseconds between two committed blocks of acknowledged transactions.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    block_ms: u64,
    /// Threads of the clients' runtime (the nodes share the machine).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    client_threads: u32,
    /// The `mempulse` binary (default: next to this executable).
    #[arg(long)]
    mempulse: Option<PathBuf>,
}

/// Runs the benchmark and returns its one-line report.
///
/// # Errors
/// Fails if the binary is missing, the nodes do not start, or a client cannot connect.
pub(crate) fn run(args: &Args) -> anyhow::Result<Report> {
    let bin = mempulse_bin(args.mempulse.as_deref())?;
    let clients = usize::try_from(args.clients)?;
    let plan = TxPlan {
        clients,
        per_client: usize::try_from(args.txs)?.div_ceil(clients),
        senders: args.senders.max(args.clients),
        sender_base: 0,
        input_len: 0,
    };
    let signing = std::time::Instant::now();
    let bodies = load::sign_bodies(&plan)?;
    eprintln!("signed {} transactions in {:.1?}", plan.per_client * clients, signing.elapsed());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(usize::try_from(args.client_threads)?)
        .enable_all()
        .build()?;
    let options = NodeOptions {
        nodes: args.nodes,
        rpc_queue_capacity: args.rpc_queue_capacity,
        ..NodeOptions::default()
    };
    let (result, counters) = runtime.block_on(async {
        let mut cluster = MempulseCluster::create(&bin, &options)?;
        let leader = cluster.start_all().await?;
        let addrs = cluster.http_addrs();
        let clients = spread(bodies, &addrs);
        let before = scrape(&addrs).await?;
        let committer = Committer {
            addr: cluster.http(leader)?,
            interval: Duration::from_millis(args.block_ms),
        };
        let duration = Duration::from_secs(args.duration_s);
        let result = load::run(clients, duration, Some(committer)).await;
        let result = result.with_context(|| format!("node log:\n{}", cluster.log_tail(leader)))?;
        let after = scrape(&addrs).await?;
        anyhow::Ok((result, delta(&before, &after)))
    })?;
    let dropped_counted = counters
        .iter()
        .filter(|(k, _)| k.starts_with(LANE_DROPPED))
        .fold(0.0, |sum, (_, v)| sum + v);
    let fields = json!({
        "txs_per_s": result.per_s(),
        "p50_ms": result.percentile_ms(500),
        "p99_ms": result.percentile_ms(990),
        "dropped": result.dropped(),
        "clients": args.clients,
        "nodes": args.nodes,
        "throttle_off": true,
        "dropped_counted": dropped_counted,
        "counters": counters,
        "acked": result.acked(),
        "outcomes": result.outcomes_json(),
        "timeouts": result.outcomes.get("timeout").copied().unwrap_or(0),
        "p999_ms": result.percentile_ms(999),
        "max_ms": result.percentile_ms(1000),
        "refused_p99_ms": load::percentile_ms(&result.refused_latencies_ns, 990),
        "refused_max_ms": load::percentile_ms(&result.refused_latencies_ns, 1000),
        "replies_per_s": result.replies_per_s(),
        "duration_s": args.duration_s,
        "elapsed_s": result.elapsed.as_secs_f64(),
        "exhausted": result.exhausted,
        "txs_signed": plan.per_client * clients,
        "senders": plan.senders,
        "tx_bytes": load::tx_bytes(0)?,
        "rpc_queue_capacity": args.rpc_queue_capacity,
        "blocks_committed": result.blocks_committed,
        "commit_failures": result.commit_failures,
        "client": "http1-keepalive-json-rpc",
        "client_threads": args.client_threads,
        "wal_sync": "always",
    });
    let Value::Object(fields) = fields else { unreachable!("json! of an object literal") };
    Ok(Report::Measured(fields))
}

/// Client `i` talks to node `i mod n`.
pub(crate) fn spread(bodies: Vec<Vec<Vec<u8>>>, addrs: &[SocketAddr]) -> Vec<Client> {
    bodies
        .into_iter()
        .zip(addrs.iter().cycle())
        .map(|(bodies, &addr)| Client { addr, requests: Requests::Rpc(bodies) })
        .collect()
}

/// The ingest counters of every node, summed per series (`name{labels}`).
async fn scrape(addrs: &[SocketAddr]) -> anyhow::Result<BTreeMap<String, f64>> {
    let mut sums = BTreeMap::new();
    for &addr in addrs {
        let text = http_text(addr, "/metrics", SCRAPE_TIMEOUT).await?;
        for (series, value) in parse_metrics(&text, &[LANE_DROPPED, ADMISSION_FAILED]) {
            *sums.entry(series).or_insert(0.0) += value;
        }
    }
    Ok(sums)
}

/// `after - before` per series, leaving out series that did not move.
fn delta(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0.0)))
        .filter(|(_, v)| *v != 0.0)
        .collect()
}

/// The samples of the metric families `names` in Prometheus text: (`name{labels}`, value).
pub(crate) fn parse_metrics(text: &str, names: &[&str]) -> Vec<(String, f64)> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let name = series.split('{').next()?;
            names.contains(&name).then_some(())?;
            Some((series.to_owned(), value.parse::<f64>().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_parsed_per_series_and_deltas_drop_still_series() {
        let text = "# HELP mempulse_net_lane_dropped_total x\n\
                    # TYPE mempulse_net_lane_dropped_total counter\n\
                    mempulse_net_lane_dropped_total{lane=\"rpc\",reason=\"queue_full\"} 12\n\
                    mempulse_net_lane_dropped_total{lane=\"rpc\",reason=\"throttled\"} 3\n\
                    mempulse_net_admitted_total{lane=\"rpc\"} 99\n\
                    mempulse_net_admission_failed_total{error=\"timeout\"} 1\n\
                    garbage\n";
        let parsed = parse_metrics(text, &[LANE_DROPPED, ADMISSION_FAILED]);
        assert_eq!(parsed.len(), 3, "{parsed:?}");
        assert_eq!(
            parsed[0],
            (
                "mempulse_net_lane_dropped_total{lane=\"rpc\",reason=\"queue_full\"}".to_owned(),
                12.0
            )
        );
        let before: BTreeMap<String, f64> = parsed.iter().cloned().collect();
        let mut after = before.clone();
        *after.values_mut().next().unwrap() += 5.0;
        let moved = delta(&before, &after);
        assert_eq!(moved.len(), 1);
        assert!(moved.values().all(|v| (*v - 5.0).abs() < 1e-9));
    }
}
