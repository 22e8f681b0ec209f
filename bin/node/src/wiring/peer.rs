//! The peer catalog of `mempulse run`: this node announces itself (validator, addresses, its
//! cluster's tags at the pool's height, its Raft role) to every other node of the validators
//! file's `streams`, merges their announcements into its [`Catalog`], lists it at
//! `GET /v1/catalog`, and keeps one link per node that block broadcasts reuse.
//!
//! ```text
//!  every tick (slot/10, 10..=50 ms): pool height ─► schedule tags · RaftNode status ─► role
//!      changed? ─► new version ─► own announcement (watch) ─► PeerLinks ─► every other node
//!                                   └─► this node's own Catalog entry
//!  stream listener ─► PeerHello ─► serve_peer ─► Catalog (announcements) / BlockSlot (blocks)
//! ```
//! Glue only: `mempulse_net::peer` does the protocol.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{Arc, OnceLock, Weak},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::Context;
use futures_util::future::BoxFuture;
use mempulse_api::{CatalogNode, ClusterInfo, ClusterView};
use mempulse_cluster::{RaftNode, Security, certs::node_name};
use mempulse_net::peer::{
    Announcement, BlockAck, BlockHandler, BlockNotice, BoxPeerIo, CATALOG_NODES_MAX_DEFAULT,
    Catalog, CatalogConfig, PeerConnector, PeerLimits, PeerLinks, PeerLinksConfig, PeerRole,
    PeerService,
};
use mempulse_net::{IngestHandle, StreamLimits};
use mempulse_primitives::{Height, NodeId, ValidatorId};
use mempulse_schedule::{Schedule, Tags, ValidatorsConfig};
use rustls_pki_types::ServerName;
use tokio::{net::TcpStream, sync::watch, task::JoinHandle, time::Instant};
use tokio_rustls::TlsConnector;
use tracing::{info, warn};

use super::{StreamListener, StreamOptions};
use crate::config::NodeConfig;

/// Bounds on how often the announcer looks at the pool and the Raft role.
const TICK_MIN: Duration = Duration::from_millis(10);
const TICK_MAX: Duration = Duration::from_millis(50);
/// Catalog entries expire after this many slots without a refresh (heartbeats come every half
/// slot, so three are missed first).
const EXPIRY_SLOTS: u32 = 2;
/// Bound on closing the links at shutdown.
const LINKS_STOP_TIMEOUT: Duration = Duration::from_secs(2);

/// What the validators file says about the peers, and this node's place among them.
#[derive(Debug)]
pub(crate) struct PeerPlan {
    node: NodeId,
    /// This node's validator and the schedule, when `[schedule]` is configured.
    schedule: Option<(Schedule, ValidatorId)>,
    slot: Duration,
    /// Every node's stream listener in the file (this node's included).
    targets: BTreeMap<NodeId, String>,
    security: Security,
    catalog: Catalog,
    blocks: BlockSlot,
}

impl PeerPlan {
    /// Reads `[schedule] validators` (its `streams`) and `[tls]`; without a validators file
    /// the node serves peer sessions from an empty catalog and announces nothing.
    pub(crate) fn new(config: &NodeConfig) -> anyhow::Result<Self> {
        let node = config.cluster.id()?;
        let security = config.tls.security()?;
        let Some(path) = &config.schedule.validators else {
            let catalog = Catalog::new(CatalogConfig::default());
            let slot = mempulse_schedule::DEFAULT_SLOT_DURATION;
            let blocks = BlockSlot::default();
            let targets = BTreeMap::new();
            return Ok(Self { node, schedule: None, slot, targets, security, catalog, blocks });
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading validators file {}", path.display()))?;
        let file = ValidatorsConfig::from_toml_str(&text)
            .with_context(|| format!("validators file {}", path.display()))?;
        let slot = file.slot_config()?.slot_duration;
        let (targets, members) = streams_of(&file)?;
        let schedule = match config.schedule.validator_id {
            Some(id) => Some((file.to_schedule()?, ValidatorId(id))),
            None => None,
        };
        let catalog = Catalog::new(CatalogConfig {
            expiry: slot.saturating_mul(EXPIRY_SLOTS),
            nodes_max: CATALOG_NODES_MAX_DEFAULT,
            members: (!members.is_empty()).then_some(members),
        });
        Ok(Self { node, schedule, slot, targets, security, catalog, blocks: BlockSlot::default() })
    }

    /// What the stream listener serves peer sessions with (the stream's hello and close
    /// timeouts; the peer protocol's own frame limit).
    pub(crate) fn service(&self, stream: &StreamLimits) -> PeerService {
        let limits = PeerLimits {
            hello_timeout: stream.hello_timeout,
            close_timeout: stream.close_timeout,
            ..PeerLimits::default()
        };
        PeerService {
            node: self.node,
            catalog: self.catalog.clone(),
            blocks: Some(Arc::new(self.blocks.clone())),
            limits,
        }
    }

    /// The catalog (for the producer's leader lookups).
    pub(crate) fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Installs the handler of received blocks (once; until then, and without one, blocks are
    /// refused with `blocks not enabled`). Returns whether it was installed.
    pub(crate) fn set_block_handler(&self, handler: Arc<dyn BlockHandler>) -> bool {
        self.blocks.0.set(handler).is_ok()
    }

    /// Starts the announcer and the links to every other node (when this node has a validator
    /// in the file), and the catalog's expiry.
    pub(crate) fn start(
        self,
        node: &Arc<RaftNode>,
        stream_addr: SocketAddr,
        http_addr: SocketAddr,
    ) -> anyhow::Result<NodePeers> {
        let expiry_period = (self.catalog.config().expiry / 4).max(TICK_MIN);
        let expiry = tokio::spawn(self.catalog.clone().run_expiry(expiry_period));
        let Some((schedule, validator)) = self.schedule else {
            return Ok(NodePeers { catalog: self.catalog, links: None, announcer: None, expiry });
        };
        let own_stream = self.targets.get(&self.node).cloned().unwrap_or(stream_addr.to_string());
        let (own_tx, own) = watch::channel(None);
        let announcer = Announcer {
            node: Arc::downgrade(node),
            genesis: schedule.clone(),
            schedule,
            template: Announcement {
                node: self.node,
                validator,
                stream_addr: own_stream,
                api_addr: http_addr.to_string(),
                tags: Tags::EMPTY,
                role: PeerRole::Unknown,
                height: Height(0),
                version: version_base(),
            },
            catalog: self.catalog.clone(),
            own: own_tx,
        };
        let tick = (self.slot / 10).clamp(TICK_MIN, TICK_MAX);
        let announcer = tokio::spawn(announcer.run(tick));
        let mut links_config = PeerLinksConfig::new(self.node);
        links_config.heartbeat = (self.slot / 2).max(TICK_MIN);
        let connector: Arc<dyn PeerConnector> =
            Arc::new(TlsPeerConnector::new(&self.security).context("peer links' TLS")?);
        let others = self.targets.keys().filter(|n| **n != self.node).count();
        let links = PeerLinks::start(links_config, &connector, &own, self.targets);
        info!(peers = others, validator = validator.0, "peer announcer started");
        Ok(NodePeers {
            catalog: self.catalog,
            links: Some(links),
            announcer: Some(announcer),
            expiry,
        })
    }
}

/// Starts the stream listener, serving tx streams and `plan`'s peer sessions.
pub(crate) async fn listen(
    options: StreamOptions,
    plan: &PeerPlan,
    ingest: IngestHandle,
) -> anyhow::Result<StreamListener> {
    let service = plan.service(&options.limits);
    StreamListener::start(options.with_peers(service), ingest).await
}

/// Every node's stream listener and validator, from the genesis validators and the change sets.
fn streams_of(
    file: &ValidatorsConfig,
) -> anyhow::Result<(BTreeMap<NodeId, String>, BTreeMap<NodeId, ValidatorId>)> {
    let mut targets = BTreeMap::new();
    let mut members = BTreeMap::new();
    let changes = file.changes()?.into_values().flatten();
    for v in file.validators()?.into_iter().chain(changes) {
        for addr in &v.streams {
            let Some(node) = addr.node else {
                anyhow::bail!("validator {}: stream `{addr}` names no node (`id@host:port`)", v.id)
            };
            targets.insert(node, addr.endpoint());
            members.insert(node, v.id);
        }
    }
    Ok((targets, members))
}

/// Versions start from the wall clock at start (microseconds), so a restarted node's
/// announcements replace the ones it made before; each change adds one.
fn version_base() -> u64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since.as_micros()).unwrap_or(u64::MAX)
}

/// The running announcer, links and expiry.
#[derive(Debug)]
pub(crate) struct NodePeers {
    catalog: Catalog,
    links: Option<PeerLinks>,
    announcer: Option<JoinHandle<()>>,
    expiry: JoinHandle<()>,
}

impl NodePeers {
    /// The catalog.
    pub(crate) const fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The links to the other nodes (none without a validator in the file).
    pub(crate) const fn links(&self) -> Option<&PeerLinks> {
        self.links.as_ref()
    }

    /// Stops announcing and closes the links (each session with `Close{normal}`).
    pub(crate) async fn stop(self) {
        if let Some(announcer) = self.announcer {
            announcer.abort();
        }
        if let Some(links) = self.links {
            links.shutdown(LINKS_STOP_TIMEOUT).await;
        }
        self.expiry.abort();
    }
}

/// The block handler slot: refuses every block until the producer installs its handler.
#[derive(Clone, Default)]
pub(crate) struct BlockSlot(Arc<OnceLock<Arc<dyn BlockHandler>>>);

impl std::fmt::Debug for BlockSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("BlockSlot").field(&self.0.get().is_some()).finish()
    }
}

impl BlockHandler for BlockSlot {
    fn on_block(&self, from: NodeId, block: BlockNotice) -> BoxFuture<'static, BlockAck> {
        match self.0.get() {
            Some(handler) => handler.on_block(from, block),
            None => Box::pin(async { BlockAck::refused("blocks not enabled") }),
        }
    }
}

/// Follows the pool's height and the Raft role; publishes a new announcement on every change
/// and keeps this node's own catalog entry fresh.
struct Announcer {
    node: Weak<RaftNode>,
    genesis: Schedule,
    schedule: Schedule,
    template: Announcement,
    catalog: Catalog,
    own: watch::Sender<Option<Announcement>>,
}

impl Announcer {
    async fn run(mut self, tick: Duration) {
        let mut interval = tokio::time::interval(tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut warned = false;
        loop {
            interval.tick().await;
            let Some(node) = self.node.upgrade() else { return };
            let role = PeerRole::from_name(node.status().role.as_str());
            let committed = node.state().read(|view| view.mempool.height());
            drop(node);
            let (height, tags) = match self.tags_at(committed) {
                Ok(found) => found,
                Err(error) => {
                    if !warned {
                        warn!(%error, height = %committed, "no schedule tags at the pool's height");
                        warned = true;
                    }
                    (committed, Tags::EMPTY)
                }
            };
            let t = &self.template;
            if (t.height, t.tags, t.role) != (height, tags, role) || self.own.borrow().is_none() {
                self.template.version = self.template.version.saturating_add(1);
                self.template.height = height;
                self.template.tags = tags;
                self.template.role = role;
                self.own.send_replace(Some(self.template.clone()));
            }
            if let Err(refusal) = self.catalog.merge(self.template.clone(), Instant::now()) {
                warn!(refusal = refusal.as_str(), "this node's own announcement was refused");
            }
        }
    }

    /// The height after `committed` (the chain's initial height before any block) and this
    /// cluster's tags there.
    fn tags_at(&mut self, committed: Height) -> mempulse_schedule::Result<(Height, Tags)> {
        let initial = self.genesis.base_height();
        let height = committed.checked_next().unwrap_or(committed).max(initial);
        if height < self.schedule.base_height() {
            self.schedule = self.genesis.clone();
        }
        if height > self.schedule.base_height() {
            self.schedule.advance_base(height)?;
        }
        let tags = self.schedule.tags_at(height)?.tags_of(self.template.validator);
        Ok((height, tags))
    }
}

/// Dials other nodes' peer listeners: mutual TLS naming `node-<id>`, or plaintext to loopback.
#[derive(Clone)]
pub(crate) struct TlsPeerConnector {
    tls: Option<TlsConnector>,
}

impl TlsPeerConnector {
    /// A connector with this node's (or source's) identity.
    pub(crate) fn new(security: &Security) -> anyhow::Result<Self> {
        let tls = match security {
            Security::MutualTls(identity) => Some(TlsConnector::from(identity.client_config()?)),
            _ => None,
        };
        Ok(Self { tls })
    }

    /// Connects to `node` at `addr` (its certificate must name `node-<id>`).
    pub(crate) async fn dial(&self, node: NodeId, addr: &str) -> std::io::Result<BoxPeerIo> {
        self.dial_name(&node_name(node), addr).await
    }

    /// Connects to `addr`, whose certificate must carry `name`.
    pub(crate) async fn dial_name(&self, name: &str, addr: &str) -> std::io::Result<BoxPeerIo> {
        let tcp = TcpStream::connect(addr).await?;
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            None => {
                if !tcp.peer_addr()?.ip().is_loopback() {
                    return Err(std::io::Error::other("plaintext peers are on loopback only"));
                }
                Ok(Box::pin(tcp))
            }
            Some(connector) => {
                let name = ServerName::try_from(name.to_owned()).map_err(std::io::Error::other)?;
                Ok(Box::pin(connector.connect(name, tcp).await?))
            }
        }
    }
}

impl std::fmt::Debug for TlsPeerConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsPeerConnector").field("tls", &self.tls.is_some()).finish()
    }
}

impl PeerConnector for TlsPeerConnector {
    fn connect(&self, node: NodeId, addr: &str) -> BoxFuture<'static, std::io::Result<BoxPeerIo>> {
        let (this, addr) = (self.clone(), addr.to_owned());
        Box::pin(async move { this.dial(node, &addr).await })
    }
}

/// The cluster view with the peer catalog.
pub(crate) struct CatalogCluster {
    inner: Arc<dyn ClusterInfo>,
    catalog: Catalog,
}

impl CatalogCluster {
    /// `inner`'s view with `catalog` listed.
    pub(crate) fn new(inner: Arc<dyn ClusterInfo>, catalog: Catalog) -> Self {
        Self { inner, catalog }
    }
}

impl ClusterInfo for CatalogCluster {
    fn status(&self) -> ClusterView {
        self.inner.status()
    }

    fn catalog(&self) -> Vec<CatalogNode> {
        let now = Instant::now();
        self.catalog
            .entries_at(now)
            .into_iter()
            .map(|e| {
                let a = e.announcement;
                CatalogNode {
                    node: a.node,
                    validator: a.validator,
                    stream_addr: a.stream_addr,
                    api_addr: a.api_addr,
                    tags: a.tags.names().collect(),
                    role: a.role.as_str(),
                    height: a.height,
                    version: a.version,
                    age_ms: u64::try_from(e.age.as_millis()).unwrap_or(u64::MAX),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_name_every_node_and_its_validator() {
        let file = r#"
[[validators]]
id = 1
address = "0x00000000000000000000000000000000000000a1"
power = 1
streams = ["1@127.0.0.1:7501", "2@127.0.0.1:7502"]
[[validators]]
id = 2
address = "0x00000000000000000000000000000000000000a2"
power = 1
streams = ["4@127.0.0.1:7504"]
[[changes]]
height = 9
id = 3
address = "0x00000000000000000000000000000000000000a3"
power = 1
streams = ["7@127.0.0.1:7507"]
"#;
        let file = ValidatorsConfig::from_toml_str(file).unwrap();
        let (targets, members) = streams_of(&file).unwrap();
        assert_eq!(targets.keys().map(|n| n.0).collect::<Vec<_>>(), [1, 2, 4, 7]);
        assert_eq!(targets[&NodeId(4)], "127.0.0.1:7504");
        assert_eq!(members[&NodeId(7)], ValidatorId(3));
        let anonymous = ValidatorsConfig::from_toml_str(
            "[[validators]]\nid = 1\naddress = \"0x00000000000000000000000000000000000000a1\"\n\
             power = 1\nstreams = [\"127.0.0.1:7501\"]\n",
        )
        .unwrap();
        assert!(streams_of(&anonymous).is_err(), "a stream must name its node");
    }

    #[tokio::test]
    async fn the_block_slot_refuses_until_a_handler_is_installed() {
        struct Commit;
        impl BlockHandler for Commit {
            fn on_block(&self, _: NodeId, _: BlockNotice) -> BoxFuture<'static, BlockAck> {
                Box::pin(async { BlockAck::Committed })
            }
        }
        let slot = BlockSlot::default();
        let notice = BlockNotice {
            height: Height(1),
            round: 0,
            proposer: ValidatorId(1),
            txs: Vec::new(),
            nonces: Vec::new(),
            base_fee_per_gas: None,
        };
        assert_eq!(
            slot.on_block(NodeId(2), notice.clone()).await,
            BlockAck::Refused { reason: "blocks not enabled".into() }
        );
        assert!(slot.0.set(Arc::new(Commit)).is_ok());
        assert_eq!(slot.on_block(NodeId(2), notice).await, BlockAck::Committed);
    }
}
