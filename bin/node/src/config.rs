//! Node configuration: TOML file, then environment variables and flags on top.
//! `NodeConfig::default()` is the embedded default: one node (id 1) that bootstraps a one-node
//! cluster, data in `./mempulse-data`, Raft on 127.0.0.1 in plaintext (loopback only), the HTTP
//! API (JSON-RPC included) on 127.0.0.1:8545, mainnet chain id.

mod blocks;
mod cluster;
mod fence;
mod serve;
mod stream;
mod tls_files;

use std::{path::PathBuf, time::Duration};

use anyhow::{Context, bail, ensure};
use mempulse_wal::{DEFAULT_SEGMENT_SIZE_BYTES, Preallocate, SyncPolicy, WalConfig};
use serde::Deserialize;

pub(crate) use self::blocks::BlocksSection;
pub(crate) use self::cluster::{ClusterSection, TlsSection, parse_peer};
pub(crate) use self::fence::FenceSection;
pub(crate) use self::serve::{
    ApiSection, IngestSection, ReplaySection, ScheduleSection, SinkSection,
};
pub(crate) use self::stream::StreamSection;
use crate::cli::RunArgs;

/// Everything a node reads at start-up.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct NodeConfig {
    /// Data directory; the event log lives in `events/` below it.
    pub(crate) data_dir: PathBuf,
    /// The canonical event log.
    pub(crate) wal: WalSection,
    /// This node's Raft cluster.
    pub(crate) cluster: ClusterSection,
    /// Node-to-node transport security.
    pub(crate) tls: TlsSection,
    /// The chain id transactions must carry (`eth_chainId`).
    pub(crate) chain_id: u64,
    /// The HTTP API.
    pub(crate) api: ApiSection,
    /// The ingest lanes.
    pub(crate) ingest: IngestSection,
    /// The live replayer.
    pub(crate) replay: ReplaySection,
    /// The tx-stream listener.
    pub(crate) stream: StreamSection,
    /// Exports of the event log (off unless configured).
    pub(crate) sink: SinkSection,
    /// The proposer schedule shown in the cluster view (off unless configured).
    pub(crate) schedule: ScheduleSection,
    /// State-root comparison with the peers and self-fencing.
    pub(crate) fence: FenceSection,
    /// Block production in this validator's slots (off unless configured).
    pub(crate) blocks: BlocksSection,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("mempulse-data"),
            wal: WalSection::default(),
            cluster: ClusterSection::default(),
            tls: TlsSection::default(),
            chain_id: mempulse_net::CHAIN_ID_DEFAULT,
            api: ApiSection::default(),
            ingest: IngestSection::default(),
            replay: ReplaySection::default(),
            stream: StreamSection::default(),
            sink: SinkSection::default(),
            schedule: ScheduleSection::default(),
            fence: FenceSection::default(),
            blocks: BlocksSection::default(),
        }
    }
}

/// `[wal]` section.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct WalSection {
    /// `always` (fdatasync per group), `never`, or an interval such as `10ms`.
    pub(crate) sync: String,
    /// Segment file size in bytes.
    pub(crate) segment_size_bytes: u64,
    /// `auto` (zero-fill when every group is synced, else fallocate), `zero-fill`, `fallocate` or
    /// `recycle`.
    pub(crate) preallocate: String,
}

impl Default for WalSection {
    fn default() -> Self {
        Self {
            sync: "5ms".to_owned(),
            segment_size_bytes: DEFAULT_SEGMENT_SIZE_BYTES,
            preallocate: "auto".to_owned(),
        }
    }
}

impl NodeConfig {
    /// Loads the file named by `--config` (if any), then applies flags and environment.
    pub(crate) fn load(args: &RunArgs) -> anyhow::Result<Self> {
        let mut config = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading config file {}", path.display()))?;
                toml::from_str(&text)
                    .with_context(|| format!("parsing config file {}", path.display()))?
            }
            None => Self::default(),
        };
        if let Some(dir) = &args.data_dir {
            config.data_dir.clone_from(dir);
        }
        if let Some(sync) = &args.wal_sync {
            config.wal.sync.clone_from(sync);
        }
        if let Some(addr) = &args.http_addr {
            config.api.http_addr.clone_from(addr);
        }
        if let Some(addr) = &args.stream_addr {
            config.stream.listen_addr.clone_from(addr);
        }
        if let Some(chain_id) = args.chain_id {
            config.chain_id = chain_id;
        }
        config.apply_cluster_flags(args)?;
        config.blocks.check(&config.schedule)?;
        Ok(config)
    }

    /// Checks every setting `run` uses (addresses, `[tls]` files, the validators file, the
    /// cluster's members and timings, the bounds) without touching the data directory, so a
    /// refused configuration leaves it exactly as it was.
    ///
    /// # Errors
    /// The first bad setting, named with its key and value.
    pub(crate) fn validate(&self) -> anyhow::Result<()> {
        self.event_log()?;
        self.api.check()?;
        let stream_addr = self.stream.listen_addr()?;
        self.stream.limits()?;
        let cluster = &self.cluster;
        let members = cluster.members()?;
        cluster.log_store(&self.raft_dir())?;
        cluster.raft()?;
        let plaintext =
            matches!(self.tls.security()?, mempulse_cluster::Security::InsecurePlaintextLoopback);
        if plaintext {
            let raft_addr = cluster.listen_addr()?;
            ensure!(
                raft_addr.ip().is_loopback(),
                "[cluster] raft-addr {raft_addr} is not on loopback, and [tls] is plaintext \
                 (set ca-cert, node-cert and node-key)"
            );
            ensure!(
                stream_addr.ip().is_loopback(),
                "[stream] listen-addr {stream_addr} is not on loopback, and [tls] is plaintext \
                 (set ca-cert, node-cert and node-key)"
            );
            // A host name is checked when dialled (it may resolve to loopback).
            for (id, member) in &members {
                if let Ok(addr) = member.raft_addr.parse::<std::net::SocketAddr>() {
                    ensure!(
                        addr.ip().is_loopback(),
                        "cluster peer {}@{addr} is not on loopback, and [tls] is plaintext",
                        id.0
                    );
                }
            }
        }
        self.ingest.config()?;
        self.schedule.load()?;
        self.schedule.slot()?;
        if self.sink.clickhouse.is_enabled() {
            self.sink.clickhouse.validate().context("invalid [sink.clickhouse] configuration")?;
        }
        Ok(())
    }

    fn apply_cluster_flags(&mut self, args: &RunArgs) -> anyhow::Result<()> {
        let cluster = &mut self.cluster;
        if let Some(id) = args.node_id {
            cluster.node_id = id;
        }
        if let Some(addr) = &args.raft_addr {
            cluster.raft_addr.clone_from(addr);
        }
        if let Some(dir) = &args.raft_dir {
            cluster.raft_dir = Some(dir.clone());
        }
        if let Some(peers) = &args.peers {
            cluster.peers = cluster::parse_peer_list(peers).context("invalid --peers")?;
        }
        if let Some(bootstrap) = args.bootstrap {
            cluster.bootstrap = bootstrap;
        }
        Ok(())
    }

    /// The Raft directory: `[cluster] raft-dir`, else `<data-dir>/raft`.
    pub(crate) fn raft_dir(&self) -> PathBuf {
        self.cluster.raft_dir.clone().unwrap_or_else(|| self.data_dir.join("raft"))
    }

    /// The live replayer's checkpoint directory: `[replay] checkpoint-dir`, else
    /// `<data-dir>/checkpoints`.
    pub(crate) fn checkpoint_dir(&self) -> PathBuf {
        self.replay.checkpoint_dir.clone().unwrap_or_else(|| self.data_dir.join("checkpoints"))
    }

    /// The event log's configuration.
    pub(crate) fn event_log(&self) -> anyhow::Result<WalConfig> {
        let config = WalConfig::new(self.data_dir.join("events"))
            .with_segment_size_bytes(self.wal.segment_size_bytes)
            .with_sync(parse_sync(&self.wal.sync)?)
            .with_preallocate(parse_preallocate(&self.wal.preallocate)?);
        config.validate().context("invalid [wal] configuration")?;
        Ok(config)
    }
}

fn parse_sync(text: &str) -> anyhow::Result<SyncPolicy> {
    Ok(match text {
        "always" => SyncPolicy::Always,
        "never" => SyncPolicy::Never,
        other => {
            let Some(ms) = other.strip_suffix("ms").and_then(|n| n.parse::<u64>().ok()) else {
                bail!("wal sync must be `always`, `never` or `<N>ms`, got `{other}`");
            };
            if ms == 0 {
                bail!("wal sync interval must be at least 1ms");
            }
            SyncPolicy::Interval(Duration::from_millis(ms))
        }
    })
}

fn parse_preallocate(text: &str) -> anyhow::Result<Preallocate> {
    Ok(match text {
        "auto" => Preallocate::Auto,
        "zero-fill" => Preallocate::ZeroFill,
        "fallocate" => Preallocate::Fallocate,
        "recycle" => Preallocate::Recycle,
        other => {
            bail!("wal preallocate must be auto, zero-fill, fallocate or recycle, got `{other}`")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_policies_parse_and_bad_ones_are_refused() {
        assert_eq!(parse_sync("always").unwrap(), SyncPolicy::Always);
        assert_eq!(parse_sync("never").unwrap(), SyncPolicy::Never);
        assert_eq!(parse_sync("25ms").unwrap(), SyncPolicy::Interval(Duration::from_millis(25)));
        for bad in ["", "0ms", "sometimes", "10s", "-1ms"] {
            assert!(parse_sync(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn toml_is_kebab_case_and_rejects_unknown_keys() {
        let c: NodeConfig =
            toml::from_str("data-dir = \"/x\"\n[wal]\nsync = \"5ms\"\nsegment-size-bytes = 8192\n")
                .unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/x"));
        assert_eq!(c.event_log().unwrap().segment_size_bytes, 8192);
        assert!(toml::from_str::<NodeConfig>("datadir = \"/x\"").is_err());
        let tiny: NodeConfig = toml::from_str("[wal]\nsegment-size-bytes = 1\n").unwrap();
        assert!(tiny.event_log().is_err());
    }

    #[test]
    fn api_connection_keys_reach_the_server_options() {
        let c: NodeConfig =
            toml::from_str("[api]\nconnections-max = 8\nheader-read-timeout-ms = 250\n").unwrap();
        c.api.check().unwrap();
        let options = c.api.config(1).serve_options();
        assert_eq!(options.connections_max, 8);
        assert_eq!(options.header_read_timeout, Duration::from_millis(250));
        let defaults = NodeConfig::default().api.config(1).serve_options();
        assert_eq!(defaults, mempulse_api::ServeOptions::default());
    }

    #[test]
    fn cluster_and_tls_sections_parse() {
        let text = "data-dir = \"/d\"\n[cluster]\nnode-id = 2\nraft-addr = \"127.0.0.1:7001\"\n\
                    peers = [\"1@127.0.0.1:7000\", \"3@127.0.0.1:7002\"]\nbootstrap = false\n\
                    election-timeout-min-ms = 200\nelection-timeout-max-ms = 400\n\
                    [tls]\nca-cert = \"c/ca.pem\"\nnode-cert = \"c/n.pem\"\nnode-key = \"c/k.pem\"\n";
        let c: NodeConfig = toml::from_str(text).unwrap();
        assert_eq!(c.cluster.members().unwrap().len(), 3);
        assert!(!c.cluster.bootstrap);
        assert_eq!(c.raft_dir(), PathBuf::from("/d/raft"));
        assert_eq!(c.cluster.raft().unwrap().election_timeout_max, Duration::from_millis(400));
        assert_eq!(c.tls.node_key, Some(PathBuf::from("c/k.pem")));
        assert!(toml::from_str::<NodeConfig>("[cluster]\nnodeid = 1\n").is_err());
        assert!(toml::from_str::<NodeConfig>("[cluster]\npeers = \"2@a:1\"\n").is_err());
    }

    #[test]
    fn the_embedded_default_is_a_one_node_plaintext_loopback_cluster() {
        let c = NodeConfig::default();
        let members = c.cluster.members().unwrap();
        assert_eq!(members.keys().map(|id| id.0).collect::<Vec<_>>(), [1]);
        assert!(c.cluster.bootstrap);
        assert!(c.cluster.listen_addr().unwrap().ip().is_loopback());
        assert_eq!(c.raft_dir(), PathBuf::from("mempulse-data/raft"));
        assert!(matches!(
            c.tls.security().unwrap(),
            mempulse_cluster::Security::InsecurePlaintextLoopback
        ));
        c.cluster.raft().unwrap();
    }

    #[test]
    fn flags_override_the_file() {
        use clap::Parser;
        let cli = crate::cli::Cli::try_parse_from([
            "mempulse",
            "run",
            "--node-id",
            "3",
            "--raft-addr",
            "127.0.0.1:9",
            "--peers",
            "1@127.0.0.1:7,2@127.0.0.1:8",
            "--bootstrap=false",
            "--raft-dir",
            "/r",
        ])
        .unwrap();
        let crate::cli::Command::Run(args) = cli.command else { unreachable!("not run") };
        let c = NodeConfig::load(&args).unwrap();
        assert_eq!((c.cluster.node_id, c.cluster.raft_addr.as_str()), (3, "127.0.0.1:9"));
        assert_eq!(c.cluster.members().unwrap().len(), 3);
        assert!(!c.cluster.bootstrap);
        assert_eq!(c.raft_dir(), PathBuf::from("/r"));
        let bad = crate::cli::Cli::try_parse_from(["mempulse", "run", "--peers", "1@x"]).unwrap();
        let crate::cli::Command::Run(args) = bad.command else { unreachable!("not run") };
        assert!(NodeConfig::load(&args).is_err());
    }
}
