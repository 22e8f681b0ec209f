//! The peer of the cluster benchmarks: a local 3-member etcd cluster on 127.0.0.1 free ports,
//! each member with its own data dir (etcd fsyncs its WAL on every commit by default, as
//! mempulse fsyncs its Raft log), plain HTTP between members and to clients.
//!
//! Clients use etcd's v3 JSON gateway over HTTP/1.1 (`POST /v3/kv/put`, base64 key and value):
//! the same minimal keep-alive client as for mempulse, and no gRPC dependency in the bench.
//! Reports say so (`etcd_client: "http-json-gateway"`).

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use anyhow::{Context, ensure};
use serde_json::Value;

use crate::{
    interrupt::WorkDir,
    procs::{Proc, START_DEADLINE, free_ports, http_json, wait_for},
};

/// How the report names the etcd client.
pub(crate) const ETCD_CLIENT: &str = "http-json-gateway";
/// Members of the peer cluster.
const MEMBERS: usize = 3;
/// Bound on one status request.
const STATUS_TIMEOUT: Duration = Duration::from_secs(2);

/// The `etcd` binary in `PATH`.
///
/// # Errors
/// Fails when there is none, saying how to install it.
pub(crate) fn etcd_bin() -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).map(|dir| dir.join("etcd")).find(|p| p.is_file()).context(
        "no `etcd` in PATH; install it with bin/bench/scripts/install-etcd.sh (Debian: \
         `apt-get update && apt-get install -y etcd-server etcd-client`), or pass --peer none",
    )
}

/// `etcd --version`'s first line.
pub(crate) fn etcd_version(bin: &Path) -> String {
    Command::new(bin).arg("--version").output().ok().map_or_else(String::new, |out| {
        String::from_utf8_lossy(&out.stdout).lines().next().unwrap_or("").trim().to_owned()
    })
}

/// Raft timings of the members (milliseconds); `None` keeps etcd's defaults (100 / 1000).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct EtcdTimings {
    /// `--heartbeat-interval`.
    pub(crate) heartbeat_ms: Option<u64>,
    /// `--election-timeout`.
    pub(crate) election_ms: Option<u64>,
}

/// One member's command line and, while it runs, its process.
#[derive(Debug)]
struct Member {
    name: String,
    client: SocketAddr,
    args: Vec<String>,
    log: PathBuf,
    process: Option<Proc>,
}

/// Three etcd members and their temp dir.
#[derive(Debug)]
pub(crate) struct EtcdCluster {
    bin: PathBuf,
    members: Vec<Member>,
    /// Declared last: dropped after the members' processes are killed.
    _root: WorkDir,
}

impl EtcdCluster {
    /// Prepares the members' command lines on free ports; starts nothing.
    ///
    /// # Errors
    /// Fails if no temp dir or free ports are available.
    pub(crate) fn create(bin: &Path, timings: EtcdTimings) -> anyhow::Result<Self> {
        let root = WorkDir::new("mempulse-bench-etcd-")?;
        let ports = free_ports(2 * MEMBERS)?;
        let (clients, peers) = ports.split_at(MEMBERS);
        let initial = peers
            .iter()
            .enumerate()
            .map(|(i, p)| format!("e{}=http://127.0.0.1:{p}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        let mut members = Vec::new();
        for i in 0..MEMBERS {
            let name = format!("e{}", i + 1);
            let (client, peer) = (clients[i], peers[i]);
            let data = root.path().join(&name);
            let mut args = vec![
                format!("--name={name}"),
                format!("--data-dir={}", data.display()),
                format!("--listen-client-urls=http://127.0.0.1:{client}"),
                format!("--advertise-client-urls=http://127.0.0.1:{client}"),
                format!("--listen-peer-urls=http://127.0.0.1:{peer}"),
                format!("--initial-advertise-peer-urls=http://127.0.0.1:{peer}"),
                format!("--initial-cluster={initial}"),
                "--initial-cluster-token=mempulse-bench".to_owned(),
                "--initial-cluster-state=new".to_owned(),
                "--logger=zap".to_owned(),
                "--log-outputs=stderr".to_owned(),
                "--log-level=warn".to_owned(),
            ];
            if let Some(ms) = timings.heartbeat_ms {
                args.push(format!("--heartbeat-interval={ms}"));
            }
            if let Some(ms) = timings.election_ms {
                args.push(format!("--election-timeout={ms}"));
            }
            let log = root.path().join(format!("{name}.log"));
            let client = SocketAddr::from(([127, 0, 0, 1], client));
            members.push(Member { name, client, args, log, process: None });
        }
        Ok(Self { bin: bin.to_path_buf(), members, _root: root })
    }

    /// Members' client addresses, by index.
    pub(crate) fn client_addrs(&self) -> Vec<SocketAddr> {
        self.members.iter().map(|m| m.client).collect()
    }

    /// Starts every member and waits until they agree on a leader; returns its index.
    ///
    /// # Errors
    /// Fails when a member exits or no leader is agreed within [`START_DEADLINE`].
    pub(crate) async fn start_all(&mut self) -> anyhow::Result<usize> {
        for i in 0..self.members.len() {
            self.start(i)?;
        }
        let all: Vec<usize> = (0..self.members.len()).collect();
        self.agreed_leader(&all).await
    }

    /// Starts member `i` (again after a kill: same arguments, its data dir is reused).
    ///
    /// # Errors
    /// Fails if it runs or cannot be spawned.
    pub(crate) fn start(&mut self, i: usize) -> anyhow::Result<()> {
        let bin = self.bin.clone();
        let member = self.members.get_mut(i).with_context(|| format!("no etcd member {i}"))?;
        ensure!(!member.process.as_ref().is_some_and(Proc::is_running), "{} runs", member.name);
        let mut command = Command::new(bin);
        command.args(&member.args);
        member.process = Some(Proc::spawn(&member.name, command, &member.log)?);
        Ok(())
    }

    /// `kill -9` of member `i`.
    ///
    /// # Errors
    /// Fails if the signal cannot be sent.
    pub(crate) fn kill(&mut self, i: usize) -> anyhow::Result<()> {
        let member = self.members.get_mut(i).with_context(|| format!("no etcd member {i}"))?;
        match member.process.as_mut() {
            Some(process) => process.kill(),
            None => Ok(()),
        }
    }

    /// Waits until every member in `indexes` answers `POST /v3/maintenance/status` naming the
    /// same leader, which is one of them; returns the leader's index.
    ///
    /// # Errors
    /// Fails when a member exits or they do not agree within [`START_DEADLINE`].
    pub(crate) async fn agreed_leader(&mut self, indexes: &[usize]) -> anyhow::Result<usize> {
        let targets: Vec<SocketAddr> =
            indexes.iter().filter_map(|&i| self.members.get(i)).map(|m| m.client).collect();
        let members = &mut self.members;
        wait_for(&format!("etcd members {indexes:?} to agree on a leader"), START_DEADLINE, || {
            let alive = indexes.iter().try_for_each(|&i| match members.get_mut(i) {
                Some(Member { process: Some(p), .. }) => p.check_alive(),
                _ => Err(anyhow::anyhow!("etcd member {i} is not running")),
            });
            let targets = targets.clone();
            let indexes = indexes.to_vec();
            async move {
                alive?;
                let mut ids = Vec::new();
                let mut leader = None;
                for addr in targets {
                    let Some((id, said)) = member_status(addr).await else { return Ok(None) };
                    if said == "0" || leader.as_ref().is_some_and(|l| *l != said) {
                        return Ok(None);
                    }
                    leader = Some(said);
                    ids.push(id);
                }
                let position = ids.iter().position(|id| Some(id) == leader.as_ref());
                Ok(position.and_then(|p| indexes.get(p).copied()))
            }
        })
        .await
    }
}

/// (member id, leader id) as member `addr` reports them.
pub(crate) async fn member_status(addr: SocketAddr) -> Option<(String, String)> {
    let (status, view) =
        http_json(addr, "POST", "/v3/maintenance/status", b"{}", STATUS_TIMEOUT).await.ok()?;
    if status != 200 {
        return None;
    }
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    Some((text(&view["header"]["member_id"])?, text(&view["leader"])?))
}
