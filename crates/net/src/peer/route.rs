//! Tag routing for tx sources: `subscribe_if(predicate)` keeps one tx stream open to every
//! node of every cluster whose tags match, re-evaluated on every catalog change, and sends each
//! transaction to one stream per matching cluster (its leader's when open).
//!
//! A cluster matches when any of its members announces matching tags; every member of a
//! matching cluster is then connected, so a leader change inside it does not interrupt the
//! flow (the next send picks another open member, which forwards to the new leader).

use std::{
    collections::{BTreeMap, BTreeSet, VecDeque},
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use bytes::Bytes;
use futures_util::future::join_all;
use mempulse_primitives::{Height, NodeId, UnixMillis, ValidatorId};
use mempulse_schedule::{Tag, TagPredicate};
use tokio::{
    sync::{mpsc, watch},
    task::JoinHandle,
    time::Instant,
};

use super::{
    links::PeerConnector,
    types::{Announcement, PeerRole},
};
use crate::{
    Clock, SendError, StreamClientConfig, StreamError, StreamTally, SystemClock, TxStreamClient,
};

/// Pause before a node whose stream failed is tried again, by default.
pub const ROUTE_RETRY_DEFAULT: Duration = Duration::from_millis(200);
/// Stream events and proposer turns kept for the summary (the oldest go first).
pub const ROUTE_HISTORY_MAX: usize = 4096;
/// Pause between two tries to take a stream a send still holds, when closing it.
const CLOSE_SHARED_POLL: Duration = Duration::from_millis(1);

/// Settings of [`subscribe_if`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteConfig {
    /// Each stream's settings (`source` is this source's id).
    pub stream: StreamClientConfig,
    /// Pause before retrying a node whose stream failed ([`ROUTE_RETRY_DEFAULT`]).
    pub retry: Duration,
}

impl RouteConfig {
    /// Defaults for source `source`.
    #[must_use]
    pub const fn new(source: NodeId) -> Self {
        Self { stream: StreamClientConfig::new(source), retry: ROUTE_RETRY_DEFAULT }
    }
}

/// A stream opened or closed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamEvent {
    /// The node.
    pub node: NodeId,
    /// Its validator.
    pub validator: ValidatorId,
    /// Opened (`true`) or closed.
    pub opened: bool,
    /// When, by the wall clock (for reports; never ordered by).
    pub at: UnixMillis,
}

/// A cluster's turn as proposer, as this source saw it: from the catalog showing its
/// `proposer` tag at `height` to the first transaction this source sent it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProposerTurn {
    /// The proposing validator.
    pub validator: ValidatorId,
    /// The height.
    pub height: Height,
    /// Whether a stream to the cluster was already open when the tag appeared.
    pub preconnected: bool,
    /// From the tag appearing to the first transaction sent to the cluster (`None`: none sent).
    pub first_sent: Option<Duration>,
    #[doc(hidden)]
    tagged_at: Instant,
}

/// Why [`TxRouter::send`] did not send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RouteError {
    /// No stream to a matching cluster is open (none matches, or they are connecting).
    #[error("no open stream to a matching cluster")]
    NoStream,
    /// The transaction cannot fit a frame.
    #[error("transaction too large for a stream")]
    TooLarge,
    /// The router was closed.
    #[error("router closed")]
    Closed,
}

/// One open stream.
#[derive(Debug)]
struct Open {
    validator: ValidatorId,
    client: Arc<TxStreamClient>,
}

#[derive(Debug, Default)]
struct State {
    streams: BTreeMap<NodeId, Open>,
    /// Validators whose clusters match, with their members (from the latest catalog).
    matching: BTreeMap<ValidatorId, Vec<NodeId>>,
    leaders: BTreeMap<ValidatorId, NodeId>,
    /// Every member of the matching clusters.
    wanted: BTreeSet<NodeId>,
    events: VecDeque<StreamEvent>,
    turns: VecDeque<ProposerTurn>,
    seen_turns: BTreeSet<(Height, ValidatorId)>,
    sent: u64,
    /// Transactions sent through each node's streams since the router started, with the
    /// node's validator.
    sent_by_node: BTreeMap<NodeId, (ValidatorId, u64)>,
    /// Streams being closed after they left the matching clusters (or failed).
    closing: Vec<JoinHandle<()>>,
    /// Their answers, oldest first.
    closed: VecDeque<(NodeId, Option<StreamTally>)>,
}

impl State {
    fn event(&mut self, node: NodeId, validator: ValidatorId, opened: bool) {
        if self.events.len() >= ROUTE_HISTORY_MAX {
            self.events.pop_front();
        }
        self.events.push_back(StreamEvent { node, validator, opened, at: SystemClock.now() });
    }

    /// Records a turn for every (validator, height) newly tagged `proposer`.
    fn record_turns(&mut self, proposing: BTreeMap<ValidatorId, Height>, now: Instant) {
        for (validator, height) in proposing {
            if !self.seen_turns.insert((height, validator)) {
                continue;
            }
            let preconnected =
                self.streams.values().any(|o| o.validator == validator && !o.client.is_closed());
            if self.turns.len() >= ROUTE_HISTORY_MAX {
                self.turns.pop_front();
            }
            let turn =
                ProposerTurn { validator, height, preconnected, first_sent: None, tagged_at: now };
            self.turns.push_back(turn);
            if self.seen_turns.len() > ROUTE_HISTORY_MAX {
                self.seen_turns.pop_first();
            }
        }
    }

    /// The stream to send to for `validator`: its leader's when open, else the lowest open
    /// member's, skipping `failed`.
    fn pick(
        &self,
        validator: ValidatorId,
        failed: &BTreeSet<NodeId>,
    ) -> Option<(NodeId, Arc<TxStreamClient>)> {
        let usable = |node: &NodeId| {
            !failed.contains(node) && self.streams.get(node).is_some_and(|o| !o.client.is_closed())
        };
        let members = self.matching.get(&validator)?;
        let leader = self.leaders.get(&validator).filter(|n| usable(n));
        let node = leader.or_else(|| members.iter().find(|n| usable(n)))?;
        self.streams.get(node).map(|o| (*node, Arc::clone(&o.client)))
    }
}

/// What a router did, once closed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouteSummary {
    /// Transactions sent (each counted once per cluster it went to).
    pub sent: u64,
    /// Every stream opened and closed, oldest first (at most [`ROUTE_HISTORY_MAX`]).
    pub events: Vec<StreamEvent>,
    /// Proposer turns seen, oldest first (at most [`ROUTE_HISTORY_MAX`]).
    pub turns: Vec<ProposerTurn>,
    /// How each stream still open at the end was answered (its tally), by node.
    pub tallies: BTreeMap<NodeId, Option<StreamTally>>,
    /// How each stream closed while routing (its cluster stopped matching, or it failed) was
    /// answered, in the order the answers came (at most [`ROUTE_HISTORY_MAX`]); `None` when
    /// the stream ended without a tally.
    pub closed: Vec<(NodeId, Option<StreamTally>)>,
}

/// A router's streams now (for a source's periodic status).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouteStatus {
    /// Transactions sent so far (each counted once per cluster it went to).
    pub sent: u64,
    /// The clusters that match now, ascending.
    pub matching: Vec<ValidatorId>,
    /// Every node a transaction went to or a stream is open to, ascending by node.
    pub nodes: Vec<NodeStatus>,
}

/// One node of a [`RouteStatus`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeStatus {
    /// The node.
    pub node: NodeId,
    /// Its validator (as the catalog announced it when last seen).
    pub validator: ValidatorId,
    /// Whether a stream to it is open now.
    pub open: bool,
    /// Transactions sent through its streams since the router started.
    pub sent: u64,
}

/// A tx source's routed streams (see [`subscribe_if`]).
#[derive(Debug)]
pub struct TxRouter {
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
    stop: watch::Sender<bool>,
    close_timeout: Duration,
}

/// Keeps one [`TxStreamClient`] open (through `connector`) to every node of every cluster
/// whose announced tags satisfy `predicate`, re-evaluated on every change of `catalog` (a
/// node's full catalog, as [`super::PeerSession::subscribe`] gives it). A predicate of
/// `proposer` alone connects reactively, when the tag appears; the default predicate
/// (`proposer`, `proposer-next`, `proposer-soon`) connects two heights ahead.
#[must_use]
pub fn subscribe_if(
    predicate: TagPredicate,
    catalog: watch::Receiver<Arc<Vec<Announcement>>>,
    connector: Arc<dyn PeerConnector>,
    config: RouteConfig,
) -> TxRouter {
    let state = Arc::new(Mutex::new(State::default()));
    let (stop, stopped) = watch::channel(false);
    let manager = Manager {
        predicate,
        catalog,
        connector,
        config,
        state: Arc::clone(&state),
        connecting: BTreeSet::new(),
        retry_after: BTreeMap::new(),
        addrs: BTreeMap::new(),
        following: true,
    };
    let task = tokio::spawn(manager.run(stopped));
    TxRouter { state, task, stop, close_timeout: config.stream.close_timeout }
}

impl TxRouter {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends `raw` to one open stream of every matching cluster (its leader's when open);
    /// returns to how many clusters it went.
    ///
    /// # Errors
    /// [`RouteError::NoStream`] when no matching cluster has an open stream,
    /// [`RouteError::TooLarge`] for a transaction no frame can carry.
    pub async fn send(&self, raw: Bytes) -> Result<usize, RouteError> {
        let validators: Vec<ValidatorId> = self.state().matching.keys().copied().collect();
        let mut reached = 0;
        for validator in validators {
            let mut failed = BTreeSet::new();
            loop {
                let Some((node, client)) = self.state().pick(validator, &failed) else { break };
                match client.send(raw.clone()).await {
                    Ok(()) => {
                        self.sent_to(validator, node);
                        reached += 1;
                        break;
                    }
                    Err(SendError::TooLarge { .. }) => return Err(RouteError::TooLarge),
                    Err(SendError::Closed | SendError::Full) => {
                        failed.insert(node);
                    }
                }
            }
        }
        if reached == 0 { Err(RouteError::NoStream) } else { Ok(reached) }
    }

    fn sent_to(&self, validator: ValidatorId, node: NodeId) {
        let mut state = self.state();
        state.sent += 1;
        state.sent_by_node.entry(node).or_insert((validator, 0)).1 += 1;
        let now = Instant::now();
        for turn in state.turns.iter_mut().rev() {
            if turn.validator == validator && turn.first_sent.is_none() {
                turn.first_sent = Some(now.saturating_duration_since(turn.tagged_at));
            }
        }
    }

    /// The open streams: node and validator, ascending by node.
    #[must_use]
    pub fn open_streams(&self) -> Vec<(NodeId, ValidatorId)> {
        let state = self.state();
        state
            .streams
            .iter()
            .filter(|(_, o)| !o.client.is_closed())
            .map(|(node, o)| (*node, o.validator))
            .collect()
    }

    /// The open streams and what went through each node so far.
    #[must_use]
    pub fn status(&self) -> RouteStatus {
        let state = self.state();
        let mut nodes: BTreeMap<NodeId, NodeStatus> = state
            .streams
            .iter()
            .map(|(node, o)| {
                let open = !o.client.is_closed();
                (*node, NodeStatus { node: *node, validator: o.validator, open, sent: 0 })
            })
            .collect();
        for (node, (validator, sent)) in &state.sent_by_node {
            let open = NodeStatus { node: *node, validator: *validator, open: false, sent: 0 };
            nodes.entry(*node).or_insert(open).sent = *sent;
        }
        RouteStatus {
            sent: state.sent,
            matching: state.matching.keys().copied().collect(),
            nodes: nodes.into_values().collect(),
        }
    }

    /// Whether some cluster matches and every member of every matching cluster has an open
    /// stream (a source may wait for this before its first send).
    #[must_use]
    pub fn settled(&self) -> bool {
        let state = self.state();
        !state.wanted.is_empty()
            && state
                .wanted
                .iter()
                .all(|n| state.streams.get(n).is_some_and(|o| !o.client.is_closed()))
    }

    /// The clusters that match now, ascending.
    #[must_use]
    pub fn matching(&self) -> Vec<ValidatorId> {
        self.state().matching.keys().copied().collect()
    }

    /// Stops following the catalog, closes every open stream in order (`Close{normal}`, then
    /// the server's tally), all at once within the stream's close timeout, waits for the
    /// streams closed earlier to be answered (within the same bound) and returns what
    /// happened.
    pub async fn close(self) -> RouteSummary {
        self.stop.send_replace(true);
        let _ = tokio::time::timeout(self.close_timeout, self.task).await;
        let (streams, closing) = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            (std::mem::take(&mut state.streams), std::mem::take(&mut state.closing))
        };
        // Every stream at once: the whole close takes one close timeout at most.
        let bound = self.close_timeout;
        let tallies = join_all(
            streams
                .into_iter()
                .map(|(node, open)| async move { (node, close_shared(open.client, bound).await) }),
        )
        .await;
        for handle in closing {
            let _ = handle.await;
        }
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        RouteSummary {
            sent: state.sent,
            events: state.events.iter().cloned().collect(),
            turns: state.turns.iter().cloned().collect(),
            tallies: tallies.into_iter().collect(),
            closed: state.closed.iter().cloned().collect(),
        }
    }
}

/// Closes a stream in order (`Close{normal}`, then the server's tally) within `bound`; a send
/// still holding it for a moment is waited for, within the same bound.
async fn close_shared(mut client: Arc<TxStreamClient>, bound: Duration) -> Option<StreamTally> {
    let deadline = Instant::now() + bound;
    loop {
        match Arc::try_unwrap(client) {
            Ok(client) => return client.close().await.ok().and_then(|s| s.tally),
            Err(shared) if Instant::now() < deadline => {
                client = shared;
                tokio::time::sleep(CLOSE_SHARED_POLL).await;
            }
            // Dropping the last holder still closes the stream; its tally is not waited for.
            Err(_) => return None,
        }
    }
}

/// The task following the catalog and opening and closing streams.
struct Manager {
    predicate: TagPredicate,
    catalog: watch::Receiver<Arc<Vec<Announcement>>>,
    connector: Arc<dyn PeerConnector>,
    config: RouteConfig,
    state: Arc<Mutex<State>>,
    connecting: BTreeSet<NodeId>,
    retry_after: BTreeMap<NodeId, Instant>,
    addrs: BTreeMap<NodeId, (ValidatorId, String)>,
    /// Whether the catalog's sender is still there.
    following: bool,
}

/// Resolves once `stopped` says so (or its sender is gone).
async fn until_stopped(stopped: &mut watch::Receiver<bool>) {
    let _ = stopped.wait_for(|s| *s).await;
}

type Connected = (NodeId, ValidatorId, Result<TxStreamClient, StreamError>);

impl Manager {
    async fn run(mut self, mut stopped: watch::Receiver<bool>) {
        // One result per connecting node at most: the bound of the in-flight connects.
        let (done_tx, mut done) = mpsc::channel::<Connected>(64);
        let mut tick = tokio::time::interval(self.config.retry.max(Duration::from_millis(10)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            self.reconcile(&done_tx);
            let catalog_open = tokio::select! {
                () = until_stopped(&mut stopped) => return,
                changed = self.catalog.changed(), if self.following => changed.is_ok(),
                Some((node, validator, result)) = done.recv() => {
                    self.connected(node, validator, result);
                    true
                }
                _ = tick.tick() => true,
            };
            // The catalog's session ended: the streams stay as they are (and are retried)
            // until the router closes.
            self.following &= catalog_open;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Recomputes the matching clusters from the catalog, records proposer turns, closes
    /// streams to nodes outside them and starts connecting to the ones missing.
    fn reconcile(&mut self, done: &mpsc::Sender<Connected>) {
        let catalog = Arc::clone(&self.catalog.borrow_and_update());
        let mut members: BTreeMap<ValidatorId, Vec<NodeId>> = BTreeMap::new();
        let mut matching = BTreeSet::new();
        let mut leaders = BTreeMap::new();
        let mut proposing: BTreeMap<ValidatorId, Height> = BTreeMap::new();
        self.addrs.clear();
        for a in catalog.iter() {
            members.entry(a.validator).or_default().push(a.node);
            self.addrs.insert(a.node, (a.validator, a.stream_addr.clone()));
            if self.predicate.matches(a.tags) {
                matching.insert(a.validator);
            }
            if a.role == PeerRole::Leader {
                leaders.insert(a.validator, a.node);
            }
            if a.tags.contains(Tag::Proposer) {
                let height = proposing.entry(a.validator).or_insert(a.height);
                *height = (*height).max(a.height);
            }
        }
        let now = Instant::now();
        let wanted: BTreeSet<NodeId> = members
            .iter()
            .filter(|(v, _)| matching.contains(*v))
            .flat_map(|(_, nodes)| nodes.iter().copied())
            .collect();
        let mut state = self.lock();
        state.record_turns(proposing, now);
        state.matching = members.into_iter().filter(|(v, _)| matching.contains(v)).collect();
        state.leaders = leaders;
        state.wanted.clone_from(&wanted);
        let gone: Vec<NodeId> = state
            .streams
            .iter()
            .filter(|(node, o)| !wanted.contains(node) || o.client.is_closed())
            .map(|(node, _)| *node)
            .collect();
        let mut failed = Vec::new();
        for node in gone {
            if let Some(open) = state.streams.remove(&node) {
                if open.client.is_closed() {
                    failed.push(node);
                }
                state.event(node, open.validator, false);
                self.close_in_background(&mut state, node, open.client);
                tracing::debug!(node = node.0, "tx stream closed");
            }
        }
        let open: BTreeSet<NodeId> = state.streams.keys().copied().collect();
        drop(state);
        for node in failed {
            self.retry_after.insert(node, now + self.config.retry);
        }
        let missing: Vec<NodeId> = wanted
            .into_iter()
            .filter(|n| !open.contains(n) && !self.connecting.contains(n))
            .filter(|n| self.retry_after.get(n).is_none_or(|at| *at <= now))
            .collect();
        for node in missing {
            if let Some((validator, addr)) = self.addrs.get(&node).cloned() {
                self.connect(node, validator, addr, done.clone());
            }
        }
    }

    /// Closes a stream that left the matching clusters (or failed) on its own task, keeping
    /// the server's tally for the summary.
    fn close_in_background(&self, state: &mut State, node: NodeId, client: Arc<TxStreamClient>) {
        let shared = Arc::clone(&self.state);
        let bound = self.config.stream.close_timeout;
        state.closing.retain(|handle| !handle.is_finished());
        state.closing.push(tokio::spawn(async move {
            let tally = close_shared(client, bound).await;
            let mut state = shared.lock().unwrap_or_else(PoisonError::into_inner);
            if state.closed.len() >= ROUTE_HISTORY_MAX {
                state.closed.pop_front();
            }
            state.closed.push_back((node, tally));
        }));
    }

    fn connect(
        &mut self,
        node: NodeId,
        validator: ValidatorId,
        addr: String,
        done: mpsc::Sender<Connected>,
    ) {
        self.connecting.insert(node);
        let connector = Arc::clone(&self.connector);
        let config = self.config.stream;
        tokio::spawn(async move {
            let result = TxStreamClient::connect(|| connector.connect(node, &addr), config).await;
            let _ = done.send((node, validator, result)).await;
        });
    }

    fn connected(
        &mut self,
        node: NodeId,
        validator: ValidatorId,
        result: Result<TxStreamClient, StreamError>,
    ) {
        self.connecting.remove(&node);
        match result {
            Ok(client) => {
                self.retry_after.remove(&node);
                let mut state = self.lock();
                state.event(node, validator, true);
                state.streams.insert(node, Open { validator, client: Arc::new(client) });
                tracing::debug!(node = node.0, validator = validator.0, "tx stream opened");
            }
            Err(error) => {
                self.retry_after.insert(node, Instant::now() + self.config.retry);
                tracing::debug!(node = node.0, %error, "tx stream failed to open");
            }
        }
    }
}
