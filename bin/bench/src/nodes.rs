//! A local `mempulse` cluster for the end-to-end benchmarks: one node, or three over mutual TLS
//! (`mempulse cert`, three configs, node 1 bootstraps), as `bin/node/tests/it/cluster.rs` sets
//! them up. The event log keeps the node's default `[wal] sync = "5ms"` unless a bench sets
//! `NodeOptions::event_log_sync`.
//!
//! The per-source rate limit is lifted (`source-rate-per-s` and `source-burst` at
//! [`THROTTLE_OFF`]): every bench client connects from 127.0.0.1, so the default limit (2000/s
//! per client IP) would measure the throttle, not the node. Reports say so (`throttle_off`).

use std::{
    fmt::Write as _,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use anyhow::{Context, ensure};

use crate::{
    interrupt::WorkDir,
    procs::{Proc, START_DEADLINE, free_ports, http_json, wait_for},
};

/// `[ingest] source-rate-per-s` and `source-burst` of bench nodes: no per-source throttling.
pub(crate) const THROTTLE_OFF: u32 = 1_000_000_000;
/// Bound on one status request.
const STATUS_TIMEOUT: Duration = Duration::from_secs(2);
/// The log line of a node ready to serve.
const STARTED: &str = "commands::run: node started";
/// Environment variable: the nodes' `RUST_LOG` (default [`NODE_LOG_FILTER`]), e.g.
/// `info,openraft=info` to see elections in the node logs.
const NODE_LOG_ENV: &str = "MEMPULSE_BENCH_NODE_LOG";
/// The nodes' default log filter.
const NODE_LOG_FILTER: &str = "info,openraft=warn";
/// Environment variable: when set, the cluster's temp dir (configs, data, `node-<id>.log`) is
/// kept after the run and its path printed on stderr.
const KEEP_ENV: &str = "MEMPULSE_BENCH_KEEP";

/// Raft timings of the nodes (milliseconds).
#[derive(Clone, Copy, Debug)]
pub(crate) struct RaftTimings {
    /// Leader heartbeat period.
    pub(crate) heartbeat_ms: u64,
    /// Shortest election timeout.
    pub(crate) election_min_ms: u64,
    /// Longest election timeout.
    pub(crate) election_max_ms: u64,
    /// Timeout of one Raft RPC.
    pub(crate) send_timeout_ms: u64,
}

/// How the cluster is configured.
#[derive(Clone, Debug, Default)]
pub(crate) struct NodeOptions {
    /// 1 or 3 nodes.
    pub(crate) nodes: u64,
    /// `[ingest] rpc-queue-capacity` (default: the node's).
    pub(crate) rpc_queue_capacity: Option<u32>,
    /// Raft timings (default: the node's).
    pub(crate) timings: Option<RaftTimings>,
    /// The event log's `[wal] sync` policy (default: the node's, `always`). The Raft log is
    /// fsynced per append whatever this says.
    pub(crate) event_log_sync: Option<String>,
}

/// One node's files and, while it runs, its process.
#[derive(Debug)]
struct Node {
    id: u64,
    http: SocketAddr,
    config: PathBuf,
    log: PathBuf,
    data: PathBuf,
    process: Option<Proc>,
    /// Times started (its log holds one start line per start).
    starts: usize,
}

/// The nodes and their temp dir (removed on drop, after the processes are killed).
#[derive(Debug)]
pub(crate) struct MempulseCluster {
    bin: PathBuf,
    nodes: Vec<Node>,
    /// Declared last: dropped after `nodes`, whose processes must be gone first.
    _root: WorkDir,
}

impl MempulseCluster {
    /// Writes certificates (three nodes) and one config per node; starts nothing.
    ///
    /// # Errors
    /// Fails on a node count other than 1 or 3, or when `mempulse cert` fails.
    pub(crate) fn create(bin: &Path, options: &NodeOptions) -> anyhow::Result<Self> {
        ensure!(matches!(options.nodes, 1 | 3), "--nodes must be 1 or 3, got {}", options.nodes);
        let mut root = WorkDir::new("mempulse-bench-")?;
        if std::env::var_os(KEEP_ENV).is_some() {
            root.keep();
            eprintln!("{KEEP_ENV}: cluster files kept in {}", root.path().display());
        }
        let certs = root.path().join("certs");
        if options.nodes > 1 {
            let ids = (1..=options.nodes).map(|i| i.to_string()).collect::<Vec<_>>().join(",");
            let out = Command::new(bin)
                .args(["cert", "--nodes", &ids, "--out"])
                .arg(&certs)
                .env("RUST_LOG", "warn")
                .output()
                .context("running mempulse cert")?;
            let stderr = String::from_utf8_lossy(&out.stderr);
            ensure!(out.status.success(), "mempulse cert failed: {stderr}");
        }
        let count = usize::try_from(options.nodes)?;
        let ports = free_ports(2 * count)?;
        let (raft, http) = ports.split_at(count);
        let peers: Vec<String> =
            raft.iter().zip(1..).map(|(p, id)| format!("\"{id}@127.0.0.1:{p}\"")).collect();
        let mut nodes = Vec::new();
        for (i, id) in (1..=options.nodes).enumerate() {
            let data = root.path().join(format!("data-{id}"));
            let config = root.path().join(format!("node-{id}.toml"));
            let ports = (raft[i], http[i]);
            let text = node_toml(options, &data, &certs, (id, ports), &peers);
            std::fs::write(&config, text)?;
            let log = root.path().join(format!("node-{id}.log"));
            let http = SocketAddr::from(([127, 0, 0, 1], ports.1));
            nodes.push(Node { id, http, config, log, data, process: None, starts: 0 });
        }
        Ok(Self { bin: bin.to_path_buf(), nodes, _root: root })
    }

    /// Node `id`'s data directory (its event log is `events/` below it).
    pub(crate) fn data_dir(&self, id: u64) -> anyhow::Result<&Path> {
        Ok(&self.node(id)?.data)
    }

    /// Node `id`'s HTTP address.
    pub(crate) fn http(&self, id: u64) -> anyhow::Result<SocketAddr> {
        Ok(self.node(id)?.http)
    }

    /// Every node's HTTP address, by id.
    pub(crate) fn http_addrs(&self) -> Vec<SocketAddr> {
        self.nodes.iter().map(|n| n.http).collect()
    }

    /// Node ids.
    pub(crate) fn ids(&self) -> Vec<u64> {
        self.nodes.iter().map(|n| n.id).collect()
    }

    /// Starts every node and waits until they serve and agree on a leader; returns it.
    ///
    /// # Errors
    /// Fails when a node exits or the cluster is not ready within [`START_DEADLINE`].
    pub(crate) async fn start_all(&mut self) -> anyhow::Result<u64> {
        for id in self.ids() {
            self.start(id)?;
        }
        for id in self.ids() {
            self.wait_started(id).await?;
        }
        self.agreed_leader(&self.ids()).await
    }

    /// Starts node `id` (again, after a kill: same config and data).
    ///
    /// # Errors
    /// Fails if it runs or cannot be spawned.
    pub(crate) fn start(&mut self, id: u64) -> anyhow::Result<()> {
        let bin = self.bin.clone();
        let node = self.node_mut(id)?;
        ensure!(!node.process.as_ref().is_some_and(Proc::is_running), "node {id} runs");
        let mut command = Command::new(bin);
        command
            .args(["--log-format", "compact", "run", "--config"])
            .arg(&node.config)
            .env(
                "RUST_LOG",
                std::env::var(NODE_LOG_ENV).unwrap_or_else(|_| NODE_LOG_FILTER.to_owned()),
            )
            .env("NO_COLOR", "1")
            // The tx-stream listener (default 127.0.0.1:7500) on a free port: nodes share a host.
            .env("MEMPULSE_STREAM_ADDR", "127.0.0.1:0");
        node.process = Some(Proc::spawn(&format!("node {id}"), command, &node.log)?);
        node.starts += 1;
        Ok(())
    }

    /// Waits until node `id` logs that it serves (its latest start).
    ///
    /// # Errors
    /// Fails when it exits or does not start within [`START_DEADLINE`].
    pub(crate) async fn wait_started(&mut self, id: u64) -> anyhow::Result<()> {
        let node = self.node_mut(id)?;
        wait_for(&format!("node {id} to start"), START_DEADLINE, || {
            let done = match node.process.as_mut() {
                Some(process) => process.check_alive().map(|()| {
                    let log = std::fs::read_to_string(&node.log).unwrap_or_default();
                    (log.matches(STARTED).count() >= node.starts).then_some(())
                }),
                None => Err(anyhow::anyhow!("node {id} is not running")),
            };
            std::future::ready(done)
        })
        .await
    }

    /// `kill -9` of node `id`.
    ///
    /// # Errors
    /// Fails if the signal cannot be sent.
    pub(crate) fn kill(&mut self, id: u64) -> anyhow::Result<()> {
        match self.node_mut(id)?.process.as_mut() {
            Some(process) => process.kill(),
            None => Ok(()),
        }
    }

    /// Waits until every node in `ids` answers `GET /v1/cluster` with the same leader and term,
    /// that leader is one of them and says it leads; returns the leader.
    ///
    /// # Errors
    /// Fails when they do not agree within [`START_DEADLINE`].
    pub(crate) async fn agreed_leader(&self, ids: &[u64]) -> anyhow::Result<u64> {
        let addrs: Vec<(u64, SocketAddr)> =
            self.nodes.iter().filter(|n| ids.contains(&n.id)).map(|n| (n.id, n.http)).collect();
        wait_for(&format!("nodes {ids:?} to agree on a leader"), START_DEADLINE, || {
            let addrs = addrs.clone();
            async move {
                let mut seen = None;
                for (id, addr) in addrs {
                    let Ok((200, view)) =
                        http_json(addr, "GET", "/v1/cluster", b"", STATUS_TIMEOUT).await
                    else {
                        return Ok(None);
                    };
                    let (Some(leader), Some(term)) =
                        (view["leader"].as_u64(), view["term"].as_u64())
                    else {
                        return Ok(None);
                    };
                    let role_ok = (leader == id) == (view["role"] == "leader");
                    if !role_ok || seen.is_some_and(|v| v != (leader, term)) {
                        return Ok(None);
                    }
                    seen = Some((leader, term));
                }
                Ok(seen.map(|(leader, _)| leader).filter(|leader| ids.contains(leader)))
            }
        })
        .await
    }

    /// The tail of node `id`'s log (for diagnostics).
    pub(crate) fn log_tail(&self, id: u64) -> String {
        self.node(id).ok().and_then(|n| n.process.as_ref()).map(Proc::log_tail).unwrap_or_default()
    }

    fn node(&self, id: u64) -> anyhow::Result<&Node> {
        self.nodes.iter().find(|n| n.id == id).with_context(|| format!("no node {id}"))
    }

    fn node_mut(&mut self, id: u64) -> anyhow::Result<&mut Node> {
        self.nodes.iter_mut().find(|n| n.id == id).with_context(|| format!("no node {id}"))
    }
}

/// One node's configuration; `(id, (raft port, http port))`.
fn node_toml(
    options: &NodeOptions,
    data: &Path,
    certs: &Path,
    (id, (raft, http)): (u64, (u16, u16)),
    peers: &[String],
) -> String {
    let mut text = format!(
        "data-dir = {data:?}\n\
         [api]\nhttp-addr = \"127.0.0.1:{http}\"\n\
         [ingest]\nsource-rate-per-s = {THROTTLE_OFF}\nsource-burst = {THROTTLE_OFF}\n"
    );
    if let Some(capacity) = options.rpc_queue_capacity {
        let _ = writeln!(text, "rpc-queue-capacity = {capacity}");
    }
    let _ = write!(
        text,
        "[cluster]\nnode-id = {id}\nraft-addr = \"127.0.0.1:{raft}\"\nbootstrap = {}\n",
        id == 1
    );
    if options.nodes > 1 {
        let _ = writeln!(text, "peers = [{}]", peers.join(", "));
    }
    if let Some(t) = options.timings {
        let _ = write!(
            text,
            "heartbeat-interval-ms = {}\nelection-timeout-min-ms = {}\n\
             election-timeout-max-ms = {}\nsend-timeout-ms = {}\n",
            t.heartbeat_ms, t.election_min_ms, t.election_max_ms, t.send_timeout_ms
        );
    }
    if let Some(sync) = &options.event_log_sync {
        let _ = write!(text, "[wal]\nsync = {sync:?}\n");
    }
    if options.nodes > 1 {
        let _ = write!(
            text,
            "[tls]\nca-cert = {:?}\nnode-cert = {:?}\nnode-key = {:?}\n",
            certs.join("ca.pem"),
            certs.join(format!("node-{id}.pem")),
            certs.join(format!("node-{id}-key.pem")),
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_node_configs_name_peers_tls_and_timings() {
        let options = NodeOptions {
            nodes: 3,
            rpc_queue_capacity: Some(8),
            timings: Some(RaftTimings {
                heartbeat_ms: 20,
                election_min_ms: 100,
                election_max_ms: 200,
                send_timeout_ms: 50,
            }),
            event_log_sync: Some("5ms".to_owned()),
        };
        let peers = vec!["\"1@127.0.0.1:1\"".to_owned(), "\"2@127.0.0.1:2\"".to_owned()];
        let text = node_toml(&options, Path::new("/d"), Path::new("/c"), (2, (2, 9)), &peers);
        for needle in [
            "http-addr = \"127.0.0.1:9\"",
            "rpc-queue-capacity = 8",
            "source-rate-per-s = 1000000000",
            "node-id = 2",
            "bootstrap = false",
            "peers = [\"1@127.0.0.1:1\", \"2@127.0.0.1:2\"]",
            "election-timeout-max-ms = 200",
            "node-key = \"/c/node-2-key.pem\"",
            "[wal]\nsync = \"5ms\"",
        ] {
            assert!(text.contains(needle), "{needle} missing from\n{text}");
        }
        let single = node_toml(
            &NodeOptions { nodes: 1, ..NodeOptions::default() },
            Path::new("/d"),
            Path::new("/c"),
            (1, (1, 2)),
            &[],
        );
        assert!(single.contains("bootstrap = true"));
        assert!(!single.contains("[tls]") && !single.contains("peers"));
    }
}
