//! `[cluster]` and `[tls]`: who this node is in its Raft cluster, who its peers are, the Raft
//! timings, and how node-to-node traffic is protected.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context, bail, ensure};
use mempulse_cluster::{
    BatchConfig, ClusterNode, LogStoreConfig, RaftConfig, Security, TlsIdentity,
};
use mempulse_primitives::NodeId;
use mempulse_wal::MAX_SEGMENT_SIZE_BYTES;
use serde::Deserialize;

/// Raft port of the embedded default (on 127.0.0.1).
pub(crate) const DEFAULT_RAFT_ADDR: &str = "127.0.0.1:7400";

/// Default bound on the leadership hand-over at shutdown.
pub(crate) const HANDOVER_TIMEOUT_MS_DEFAULT: u64 = 2_000;

/// `[cluster]` section.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct ClusterSection {
    /// This node's id (stable across restarts; its certificate names `node-<id>`).
    pub(crate) node_id: u64,
    /// Address the Raft transport listens on, which is also the address peers dial (an IP).
    pub(crate) raft_addr: String,
    /// Raft log and snapshots (must persist). Default `<data-dir>/raft`.
    pub(crate) raft_dir: Option<PathBuf>,
    /// The other members, `id@host:port` each (this node may be listed too).
    pub(crate) peers: Vec<String>,
    /// Initialize the cluster (this node and its peers) when this node's Raft log is empty.
    pub(crate) bootstrap: bool,
    /// Leader heartbeat period.
    pub(crate) heartbeat_interval_ms: u64,
    /// Shortest election timeout.
    pub(crate) election_timeout_min_ms: u64,
    /// Longest election timeout.
    pub(crate) election_timeout_max_ms: u64,
    /// Timeout of one Raft RPC to a peer.
    pub(crate) send_timeout_ms: u64,
    /// How long a stopping leader waits for a follower to take over before it stops anyway.
    pub(crate) handover_timeout_ms: u64,
    /// Build a Raft snapshot once this many entries were applied since the last one.
    pub(crate) snapshot_every_entries: u64,
    /// Entries already in a snapshot that the Raft log keeps anyway (a briefly lagging
    /// follower then catches up by log rather than by snapshot).
    pub(crate) log_kept_after_snapshot_entries: u64,
    /// A follower further behind than this many entries is sent a snapshot.
    pub(crate) snapshot_catch_up_lag_entries: u64,
    /// Size of each Raft log segment file; purging after a snapshot frees whole segments.
    pub(crate) log_segment_size_bytes: u64,
}

impl Default for ClusterSection {
    fn default() -> Self {
        let raft = RaftConfig::default();
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Self {
            node_id: 1,
            raft_addr: DEFAULT_RAFT_ADDR.to_owned(),
            raft_dir: None,
            peers: Vec::new(),
            bootstrap: true,
            heartbeat_interval_ms: ms(raft.heartbeat_interval),
            election_timeout_min_ms: ms(raft.election_timeout_min),
            election_timeout_max_ms: ms(raft.election_timeout_max),
            send_timeout_ms: ms(raft.send_timeout),
            handover_timeout_ms: HANDOVER_TIMEOUT_MS_DEFAULT,
            snapshot_every_entries: raft.snapshot_logs_since_last,
            log_kept_after_snapshot_entries: raft.max_in_snapshot_log_to_keep,
            snapshot_catch_up_lag_entries: raft.replication_lag_threshold,
            log_segment_size_bytes: LogStoreConfig::default().segment_size_bytes,
        }
    }
}

/// One member as the configuration names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Peer {
    pub(crate) id: NodeId,
    pub(crate) addr: String,
}

impl ClusterSection {
    /// This node's id, checked.
    pub(crate) fn id(&self) -> anyhow::Result<NodeId> {
        ensure!(self.node_id > 0, "cluster node-id must be at least 1");
        Ok(NodeId(self.node_id))
    }

    /// The listen address, checked.
    pub(crate) fn listen_addr(&self) -> anyhow::Result<SocketAddr> {
        self.raft_addr
            .parse()
            .with_context(|| format!("cluster raft-addr must be ip:port, got `{}`", self.raft_addr))
    }

    /// Every member (this node and its peers) with its Raft address; ids are unique and this
    /// node is listed at its own `raft-addr`.
    pub(crate) fn members(&self) -> anyhow::Result<BTreeMap<NodeId, ClusterNode>> {
        let me = self.id()?;
        self.listen_addr()?;
        let mut members = BTreeMap::from([(me, ClusterNode::new(self.raft_addr.clone(), ""))]);
        let mut addrs = BTreeMap::from([(addr_key(&self.raft_addr), me)]);
        for text in &self.peers {
            let peer = parse_peer(text)?;
            if peer.id == me {
                ensure!(
                    peer.addr == self.raft_addr,
                    "peer `{text}` has this node's id but not its raft-addr `{}`",
                    self.raft_addr
                );
                continue;
            }
            if members.contains_key(&peer.id) {
                bail!("cluster peers list id {} twice", peer.id.0);
            }
            if let Some(other) = addrs.insert(addr_key(&peer.addr), peer.id) {
                let whose = if other == me { " (this node's raft-addr)" } else { "" };
                bail!(
                    "cluster peer `{text}` has the raft address of node {}{whose}: every member \
                     needs its own address, or the cluster can never elect a leader",
                    other.0
                );
            }
            members.insert(peer.id, ClusterNode::new(peer.addr, ""));
        }
        Ok(members)
    }

    /// The Raft log's configuration, in `raft_dir`, with the segment size checked: an entry
    /// (up to the write batcher's byte limit) must fit in half a segment.
    pub(crate) fn log_store(&self, raft_dir: &Path) -> anyhow::Result<LogStoreConfig> {
        let size = self.log_segment_size_bytes;
        let min = 2 * BatchConfig::default().tx_bytes_max;
        ensure!(
            (min..=MAX_SEGMENT_SIZE_BYTES).contains(&size),
            "cluster log-segment-size-bytes must be in {min}..={MAX_SEGMENT_SIZE_BYTES} (twice \
             the largest Raft entry and up), got {size}"
        );
        Ok(LogStoreConfig::new(raft_dir).with_segment_size_bytes(size))
    }

    /// The Raft timings.
    pub(crate) fn raft(&self) -> anyhow::Result<RaftConfig> {
        let mut raft = RaftConfig::default();
        raft.heartbeat_interval = Duration::from_millis(self.heartbeat_interval_ms);
        raft.election_timeout_min = Duration::from_millis(self.election_timeout_min_ms);
        raft.election_timeout_max = Duration::from_millis(self.election_timeout_max_ms);
        raft.send_timeout = Duration::from_millis(self.send_timeout_ms);
        ensure!(self.send_timeout_ms > 0, "cluster send-timeout-ms must be at least 1");
        ensure!(
            self.snapshot_every_entries > 0,
            "cluster snapshot-every-entries must be at least 1"
        );
        ensure!(
            self.snapshot_catch_up_lag_entries > 0,
            "cluster snapshot-catch-up-lag-entries must be at least 1"
        );
        raft.snapshot_logs_since_last = self.snapshot_every_entries;
        raft.max_in_snapshot_log_to_keep = self.log_kept_after_snapshot_entries;
        raft.replication_lag_threshold = self.snapshot_catch_up_lag_entries;
        raft.to_openraft().context(
            "invalid [cluster] timings (need heartbeat-interval-ms < election-timeout-min-ms \
             < election-timeout-max-ms)",
        )?;
        Ok(raft)
    }
}

/// The form of a `host:port` two members must not share: the socket address when it is one
/// (so `[::1]:7` and `[0:0:0:0:0:0:0:1]:7` are the same), else the lowercased text.
fn addr_key(addr: &str) -> String {
    addr.parse::<SocketAddr>().map_or_else(|_| addr.to_ascii_lowercase(), |a| a.to_string())
}

/// Parses `id@host:port` strictly: a positive decimal id, a non-empty host (an IPv6 address in
/// brackets), a port in 1..=65535.
pub(crate) fn parse_peer(text: &str) -> anyhow::Result<Peer> {
    let usage = || format!("peer must be `id@host:port`, got `{text}`");
    let (id, addr) = text.split_once('@').with_context(usage)?;
    let digits = !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit());
    let id = match id.parse::<u64>() {
        Ok(n) if digits && n > 0 => n,
        _ => bail!("{}: the id must be a positive integer", usage()),
    };
    let (host, port) = addr.rsplit_once(':').with_context(usage)?;
    let bracketed = host.starts_with('[') && host.ends_with(']') && host.len() > 2;
    let host_ok = bracketed
        || (!host.is_empty()
            && host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-'));
    ensure!(host_ok, "{}: bad host `{host}`", usage());
    match port.parse::<u16>() {
        Ok(p) if p > 0 && port.bytes().all(|b| b.is_ascii_digit()) => {}
        _ => bail!("{}: bad port `{port}`", usage()),
    }
    Ok(Peer { id: NodeId(id), addr: addr.to_owned() })
}

/// Parses a comma-separated peer list (flag or environment form); empty items are refused.
pub(crate) fn parse_peer_list(text: &str) -> anyhow::Result<Vec<String>> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    text.split(',')
        .map(|item| {
            let item = item.trim();
            parse_peer(item)?;
            Ok(item.to_owned())
        })
        .collect()
}

/// `[tls]` section: mutual TLS with the deployment CA, or plaintext on loopback.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct TlsSection {
    /// The deployment CA certificate (PEM).
    pub(crate) ca_cert: Option<PathBuf>,
    /// This node's certificate (PEM, naming `node-<id>`).
    pub(crate) node_cert: Option<PathBuf>,
    /// This node's private key (PEM).
    pub(crate) node_key: Option<PathBuf>,
    /// No TLS; the transport refuses this unless every address is on loopback.
    pub(crate) insecure_plaintext_loopback: Option<bool>,
}

impl TlsSection {
    /// The transport security these settings ask for. With nothing set this is plaintext on
    /// loopback (the embedded default; refused off loopback when the transport binds).
    pub(crate) fn security(&self) -> anyhow::Result<Security> {
        let files = [&self.ca_cert, &self.node_cert, &self.node_key];
        let plaintext = self.insecure_plaintext_loopback;
        match (files, plaintext) {
            ([Some(ca), Some(cert), Some(key)], None | Some(false)) => {
                super::tls_files::check(ca, cert, key)?;
                let identity = TlsIdentity::from_files(ca, cert, key)
                    .context("loading the [tls] certificates")?;
                Ok(Security::MutualTls(identity))
            }
            ([None, None, None], None | Some(true)) => Ok(Security::InsecurePlaintextLoopback),
            ([None, None, None], Some(false)) => {
                bail!("[tls] needs ca-cert, node-cert and node-key when plaintext is off")
            }
            (_, Some(true)) => {
                bail!("[tls] insecure-plaintext-loopback = true conflicts with certificate paths")
            }
            (_, None | Some(false)) => {
                bail!("[tls] needs all of ca-cert, node-cert and node-key (some are missing)")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_parse_strictly() {
        let p = parse_peer("2@127.0.0.1:7001").unwrap();
        assert_eq!((p.id, p.addr.as_str()), (NodeId(2), "127.0.0.1:7001"));
        assert_eq!(parse_peer("3@node-b.internal:9").unwrap().addr, "node-b.internal:9");
        assert_eq!(parse_peer("4@[::1]:7000").unwrap().addr, "[::1]:7000");
        for bad in [
            "",
            "2",
            "@h:1",
            "0@h:1",
            "-1@h:1",
            "+2@h:1",
            "x@h:1",
            "2@h",
            "2@:1",
            "2@h:0",
            "2@h:65536",
            "2@h:+1",
            "2@h:x",
            "2@h h:1",
            "2@[]:1",
            "2@a/b:1",
        ] {
            assert!(parse_peer(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(parse_peer_list("2@a:1, 3@b:2").unwrap(), ["2@a:1", "3@b:2"]);
        assert!(parse_peer_list("").unwrap().is_empty());
        assert!(parse_peer_list("2@a:1,,3@b:2").is_err());
    }

    #[test]
    fn members_include_this_node_and_refuse_conflicts() {
        let mut c = ClusterSection {
            raft_addr: "127.0.0.1:7000".into(),
            peers: vec!["2@127.0.0.1:7001".into(), "1@127.0.0.1:7000".into()],
            ..ClusterSection::default()
        };
        let members = c.members().unwrap();
        assert_eq!(members.keys().map(|id| id.0).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(members[&NodeId(2)].raft_addr, "127.0.0.1:7001");
        c.peers = vec!["1@127.0.0.1:7999".into()];
        assert!(c.members().is_err(), "own id at another address");
        c.peers = vec!["2@a:1".into(), "2@b:1".into()];
        assert!(c.members().is_err(), "duplicate id");
        c.peers = vec!["2@127.0.0.1:7001".into(), "3@127.0.0.1:7001".into()];
        let error = c.members().unwrap_err().to_string();
        assert!(error.contains("3@127.0.0.1:7001") && error.contains("node 2"), "{error}");
        c.peers = vec!["2@127.0.0.1:7000".into()];
        let error = c.members().unwrap_err().to_string();
        assert!(error.contains("this node's raft-addr"), "{error}");
        c.peers = vec!["2@Host-A:1".into(), "3@host-a:1".into()];
        assert!(c.members().is_err(), "one host name in two cases");
        c.peers.clear();
        c.raft_addr = "localhost:7000".into();
        assert!(c.members().is_err(), "raft-addr must be an ip");
        c.raft_addr = "127.0.0.1:7000".into();
        c.node_id = 0;
        assert!(c.members().is_err(), "id 0");
    }

    #[test]
    fn the_raft_log_segment_size_is_configurable_and_checked() {
        let mut c = ClusterSection::default();
        let log = c.log_store(Path::new("/r")).unwrap();
        assert_eq!(log.segment_size_bytes, 64 << 20);
        assert_eq!(log.dir, Path::new("/r"));
        c.log_segment_size_bytes = 8 << 20;
        assert_eq!(c.log_store(Path::new("/r")).unwrap().segment_size_bytes, 8 << 20);
        for bad in [0, (8 << 20) - 1, MAX_SEGMENT_SIZE_BYTES + 1] {
            c.log_segment_size_bytes = bad;
            let error = c.log_store(Path::new("/r")).unwrap_err().to_string();
            assert!(error.contains("log-segment-size-bytes"), "{error}");
        }
    }

    #[test]
    fn timings_are_checked() {
        let mut c = ClusterSection::default();
        c.raft().unwrap();
        c.election_timeout_min_ms = c.election_timeout_max_ms;
        assert!(c.raft().is_err());
        let mut c = ClusterSection { heartbeat_interval_ms: 500, ..ClusterSection::default() };
        assert!(c.raft().is_err(), "heartbeat above the election timeout");
        c = ClusterSection { send_timeout_ms: 0, ..ClusterSection::default() };
        assert!(c.raft().is_err());
        c = ClusterSection { snapshot_every_entries: 0, ..ClusterSection::default() };
        assert!(c.raft().is_err());
        c = ClusterSection { snapshot_catch_up_lag_entries: 0, ..ClusterSection::default() };
        assert!(c.raft().is_err());
        c = ClusterSection {
            snapshot_every_entries: 10,
            log_kept_after_snapshot_entries: 0,
            snapshot_catch_up_lag_entries: 20,
            ..ClusterSection::default()
        };
        let raft = c.raft().unwrap();
        assert_eq!(
            (
                raft.snapshot_logs_since_last,
                raft.max_in_snapshot_log_to_keep,
                raft.replication_lag_threshold
            ),
            (10, 0, 20)
        );
    }

    #[test]
    fn tls_settings_pick_one_mode() {
        let plain = TlsSection::default().security().unwrap();
        assert!(matches!(plain, Security::InsecurePlaintextLoopback));
        let half = TlsSection { ca_cert: Some("ca.pem".into()), ..TlsSection::default() };
        assert!(half.security().is_err());
        let both = TlsSection { insecure_plaintext_loopback: Some(true), ..half };
        assert!(both.security().is_err());
        let off = TlsSection { insecure_plaintext_loopback: Some(false), ..TlsSection::default() };
        assert!(off.security().is_err());
        let missing = TlsSection {
            ca_cert: Some("/nonexistent/ca.pem".into()),
            node_cert: Some("/nonexistent/n.pem".into()),
            node_key: Some("/nonexistent/k.pem".into()),
            insecure_plaintext_loopback: None,
        };
        assert!(missing.security().is_err());
    }
}
