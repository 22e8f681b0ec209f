//! A node's outgoing peer links: one session per other node, kept up with backoff, carrying
//! the node's announcement (on every change and every heartbeat) and the blocks it sends.

use std::{
    collections::BTreeMap,
    pin::Pin,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use futures_util::future::BoxFuture;
use mempulse_primitives::NodeId;
use tokio::{
    io::{AsyncRead, AsyncWrite},
    sync::watch,
    task::JoinSet,
    time::Instant,
};

use super::{
    client::{PeerClientConfig, PeerSession},
    error::PeerError,
    metrics::PeerMetrics,
    types::{Announcement, BlockAck, BlockNotice},
};

/// First pause after a failed connection; doubled per failure up to the maximum.
pub const LINK_BACKOFF_MIN_DEFAULT: Duration = Duration::from_millis(50);
/// Longest pause between two connection attempts.
pub const LINK_BACKOFF_MAX_DEFAULT: Duration = Duration::from_secs(1);
/// Heartbeat by default: half the default 500 ms slot.
pub const LINK_HEARTBEAT_DEFAULT: Duration = Duration::from_millis(250);

/// A connection a peer session runs on (TLS in the node, TCP or in-memory in tests).
pub trait PeerIo: AsyncRead + AsyncWrite + Send + Unpin {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin> PeerIo for T {}

/// A boxed [`PeerIo`].
pub type BoxPeerIo = Pin<Box<dyn PeerIo>>;

/// Opens connections to other nodes' peer listeners.
pub trait PeerConnector: Send + Sync + 'static {
    /// Connects to node `node` at `addr` (`host:port`), authenticating it as that node.
    fn connect(&self, node: NodeId, addr: &str) -> BoxFuture<'static, std::io::Result<BoxPeerIo>>;
}

/// Settings of [`PeerLinks`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerLinksConfig {
    /// Each session's settings (`node` is this node; `expect` is set per link).
    pub client: PeerClientConfig,
    /// How often the announcement is sent again unchanged ([`LINK_HEARTBEAT_DEFAULT`]).
    pub heartbeat: Duration,
    /// First reconnection pause ([`LINK_BACKOFF_MIN_DEFAULT`]).
    pub backoff_min: Duration,
    /// Longest reconnection pause ([`LINK_BACKOFF_MAX_DEFAULT`]).
    pub backoff_max: Duration,
}

impl PeerLinksConfig {
    /// Defaults for node `node`.
    #[must_use]
    pub const fn new(node: NodeId) -> Self {
        Self {
            client: PeerClientConfig::new(node),
            heartbeat: LINK_HEARTBEAT_DEFAULT,
            backoff_min: LINK_BACKOFF_MIN_DEFAULT,
            backoff_max: LINK_BACKOFF_MAX_DEFAULT,
        }
    }
}

/// The state of one link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkStatus {
    /// The node linked to.
    pub node: NodeId,
    /// Its address.
    pub addr: String,
    /// Whether a session is up.
    pub connected: bool,
    /// Sessions opened so far.
    pub sessions: u64,
}

#[derive(Debug)]
struct Slot {
    addr: String,
    session: Option<PeerSession>,
    sessions: u64,
}

#[derive(Debug)]
struct Inner {
    slots: Mutex<BTreeMap<NodeId, Slot>>,
    stop: watch::Sender<bool>,
    tasks: Mutex<JoinSet<()>>,
}

/// This node's links to the other nodes. Cheap to clone; [`PeerLinks::shutdown`] ends them.
#[derive(Clone, Debug)]
pub struct PeerLinks {
    inner: Arc<Inner>,
}

impl PeerLinks {
    /// Starts one link per target (`node -> host:port`; this node itself is skipped), each
    /// announcing the latest value of `own` (nothing while it is `None`) on connect, on every
    /// change and every heartbeat. Runs on the current tokio runtime.
    #[must_use]
    pub fn start(
        config: PeerLinksConfig,
        connector: &Arc<dyn PeerConnector>,
        own: &watch::Receiver<Option<Announcement>>,
        targets: BTreeMap<NodeId, String>,
    ) -> Self {
        let (stop, _) = watch::channel(false);
        let me = config.client.node;
        let slots = targets
            .iter()
            .filter(|(node, _)| **node != me)
            .map(|(node, addr)| (*node, Slot { addr: addr.clone(), session: None, sessions: 0 }))
            .collect();
        let inner = Arc::new(Inner { slots: Mutex::new(slots), stop, tasks: Mutex::default() });
        let links = Self { inner };
        let mut tasks = JoinSet::new();
        for (node, addr) in targets.into_iter().filter(|(node, _)| *node != me) {
            let link = Link {
                node,
                addr,
                config,
                connector: Arc::clone(connector),
                own: own.clone(),
                stop: links.inner.stop.subscribe(),
                links: links.clone(),
            };
            tasks.spawn(link.run());
        }
        *links.inner.tasks.lock().unwrap_or_else(PoisonError::into_inner) = tasks;
        links
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, BTreeMap<NodeId, Slot>> {
        self.inner.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The session to `node`, when one is up.
    #[must_use]
    pub fn session(&self, node: NodeId) -> Option<PeerSession> {
        self.slots().get(&node).and_then(|slot| slot.session.clone()).filter(|s| !s.is_closed())
    }

    /// Sends `notice` to `node` over its link and waits for the answer, at most `timeout`.
    ///
    /// # Errors
    /// [`PeerError::UnknownPeer`] for a node without a link, [`PeerError::NotConnected`] while
    /// its link reconnects, [`PeerError::Timeout`], [`PeerError::Overloaded`], or the error
    /// that ended the session meanwhile.
    pub async fn send_block(
        &self,
        node: NodeId,
        notice: BlockNotice,
        timeout: Duration,
    ) -> Result<BlockAck, PeerError> {
        let session = {
            let slots = self.slots();
            let slot = slots.get(&node).ok_or(PeerError::UnknownPeer { node })?;
            slot.session.clone().filter(|s| !s.is_closed())
        };
        let session = session.ok_or(PeerError::NotConnected { node })?;
        session.send_block(notice, timeout).await
    }

    /// Every link's state, ascending by node.
    #[must_use]
    pub fn status(&self) -> Vec<LinkStatus> {
        self.slots()
            .iter()
            .map(|(node, slot)| LinkStatus {
                node: *node,
                addr: slot.addr.clone(),
                connected: slot.session.as_ref().is_some_and(|s| !s.is_closed()),
                sessions: slot.sessions,
            })
            .collect()
    }

    /// Links with a session up.
    #[must_use]
    pub fn connected(&self) -> usize {
        self.status().iter().filter(|s| s.connected).count()
    }

    /// Ends every link (each session with `Close{normal}`) and waits for them, at most
    /// `timeout` (then the rest are aborted).
    pub async fn shutdown(&self, timeout: Duration) {
        self.inner.stop.send_replace(true);
        let mut tasks =
            std::mem::take(&mut *self.inner.tasks.lock().unwrap_or_else(PoisonError::into_inner));
        let all = async { while tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(timeout, all).await.is_err() {
            tasks.abort_all();
        }
    }

    fn set_session(&self, node: NodeId, session: Option<PeerSession>) {
        let mut slots = self.slots();
        if let Some(slot) = slots.get_mut(&node) {
            if session.is_some() {
                slot.sessions += 1;
            }
            slot.session = session;
        }
        let connected = slots.values().filter(|s| s.session.is_some()).count();
        drop(slots);
        PeerMetrics::get().links_connected.set(connected as f64);
    }
}

/// Resolves once `stop` says so (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// One link's task.
struct Link {
    node: NodeId,
    addr: String,
    config: PeerLinksConfig,
    connector: Arc<dyn PeerConnector>,
    own: watch::Receiver<Option<Announcement>>,
    stop: watch::Receiver<bool>,
    links: PeerLinks,
}

impl Link {
    async fn run(mut self) {
        let mut backoff = self.config.backoff_min;
        loop {
            if *self.stop.borrow() {
                return;
            }
            let (connector, node, addr) =
                (Arc::clone(&self.connector), self.node, self.addr.clone());
            let config = PeerClientConfig { expect: Some(node), ..self.config.client };
            let connected = tokio::select! {
                connected = PeerSession::connect(|| connector.connect(node, &addr), config) => connected,
                () = stopped(&mut self.stop) => return,
            };
            match connected {
                Ok(session) => {
                    tracing::debug!(peer = node.0, addr = %self.addr, "peer link up");
                    self.links.set_session(node, Some(session.clone()));
                    let result = self.serve(&session).await;
                    self.links.set_session(node, None);
                    match result {
                        Ok(()) => {
                            session.close().await;
                            return;
                        }
                        Err(error) => {
                            tracing::debug!(peer = node.0, %error, "peer link down");
                            backoff = self.config.backoff_min;
                        }
                    }
                }
                Err(error) => {
                    PeerMetrics::get().link_failures.increment(1);
                    tracing::debug!(peer = node.0, addr = %self.addr, %error, "peer link failed");
                }
            }
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                () = stopped(&mut self.stop) => return,
            }
            backoff =
                backoff.saturating_mul(2).min(self.config.backoff_max.max(self.config.backoff_min));
        }
    }

    /// Announces on connect, on every change and every heartbeat, until the session ends
    /// (`Err`) or the links stop (`Ok`).
    async fn serve(&mut self, session: &PeerSession) -> Result<(), PeerError> {
        let heartbeat = self.config.heartbeat.max(Duration::from_millis(1));
        let mut tick = tokio::time::interval_at(Instant::now() + heartbeat, heartbeat);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.own.mark_changed();
        loop {
            let announce = tokio::select! {
                biased;
                () = stopped(&mut self.stop) => return Ok(()),
                result = session.closed() => return Err(result.err().unwrap_or(PeerError::Closed)),
                // An error: the announcement's owner is gone, the node is stopping.
                changed = self.own.changed() => changed.is_ok(),
                _ = tick.tick() => true,
            };
            if !announce {
                return Ok(());
            }
            tick.reset();
            self.announce(session).await?;
        }
    }

    async fn announce(&self, session: &PeerSession) -> Result<(), PeerError> {
        let own = self.own.borrow().clone();
        match own {
            Some(announcement) => session.announce(announcement).await,
            None => Ok(()),
        }
    }
}
