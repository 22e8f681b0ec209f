//! Divergence detection and self-fencing (design rule 6): members compare their replicated
//! state roots over the authenticated Raft transport (`AdminRequest::StateRoot`); a mismatch
//! is a `divergence_detected` fact, and when enough peers disagree this node fences itself
//! (the API answers 503 `SELF_FENCED`, the lanes stop admitting, a `fenced` fact names the
//! first divergent index found by bisection against a disagreeing peer).
//!
//! Also the test-only fault that makes a replica diverge on purpose (off unless
//! [`FAULT_CORRUPT_APPLY_INDEX_ENV`] is set).

use std::{
    collections::BTreeMap,
    path::PathBuf,
    sync::{
        Arc, Weak,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use mempulse_api::FenceState;
use mempulse_cluster::{
    AdminReply, AdminRequest, ApplyFault, CheckpointChunk, ClusterNode, FactSink, FactsChunk,
    MempoolRootReply, PeerClient, RaftNode, SinkFuture, StateRootReply, StateRootSource,
    WrittenThrough, facts_in_log,
};
use mempulse_net::{Admission, AdmissionError, AdmissionFuture, Clock as _, SystemClock};
use mempulse_primitives::{
    Digest, Event, EventKind, FenceReason, NodeId, Origin, RaftIndex, Source, Tx,
};
use mempulse_replay::{
    DEFAULT_INDEX_DIGESTS_MAX, Divergence, IndexedDigest, Probe, ReplayConfig, Replayer,
    first_divergence,
};
use mempulse_wal::SequencerHandle;
use tokio::{sync::watch, time::Instant};
use tracing::{error, info, warn};

use super::{
    History,
    reconcile::{self as repair, CheckpointServer, Failure, Peer},
};

/// Environment variable of the test-only fault: the first replicated `tx_admitted` fact of an
/// entry at or above this Raft index gets a different transaction hash in this node's event
/// log (the state machine and its answers are untouched), so this replica's state root
/// diverges from that index on. Never set in production.
pub(crate) const FAULT_CORRUPT_APPLY_INDEX_ENV: &str = "MEMPULSE_TEST_FAULT_CORRUPT_APPLY_INDEX";

/// Environment variable of the test-only state-machine fault
/// ([`mempulse_cluster::ApplyFault`]): the first transaction applied in an entry at or above
/// this Raft index is applied with a corrupted gas limit, so this replica's mempool (and the
/// facts it derives) diverge from that index on. Never set in production.
pub(crate) const FAULT_DIVERGE_MEMPOOL_INDEX_ENV: &str =
    "MEMPULSE_TEST_FAULT_DIVERGE_MEMPOOL_INDEX";

/// The test-only state-machine fault of [`FAULT_DIVERGE_MEMPOOL_INDEX_ENV`], when set.
///
/// # Errors
/// When the variable is set to something other than a Raft index.
pub(crate) fn mempool_test_fault() -> anyhow::Result<Option<ApplyFault>> {
    let Ok(value) = std::env::var(FAULT_DIVERGE_MEMPOOL_INDEX_ENV) else { return Ok(None) };
    let first = value.parse::<u64>().map_err(|_| {
        anyhow::anyhow!("{FAULT_DIVERGE_MEMPOOL_INDEX_ENV}={value} is not a Raft index")
    })?;
    Ok(Some(ApplyFault { first_index: RaftIndex(first) }))
}

/// Environment variable of a test-only gate: when set (to a file path), a fenced node starts
/// reconciling only once that file exists, so a test can observe the fenced node first. Never
/// set in production.
pub(crate) const TEST_RECONCILE_GATE_ENV: &str = "MEMPULSE_TEST_RECONCILE_GATE";

/// Bound on one state-root request to a peer.
const PEER_REQUEST_TIMEOUT: Duration = Duration::from_secs(1);

/// Reconciliation attempts before a fenced node gives up (it stays fenced).
const REPAIR_ATTEMPTS_MAX: u32 = 12;

/// Wait after the first failed reconciliation attempt; doubles per failure.
const REPAIR_BACKOFF_FIRST: Duration = Duration::from_millis(250);

/// Longest wait between two reconciliation attempts.
const REPAIR_BACKOFF_MAX: Duration = Duration::from_secs(30);

/// How this node compares its state with its peers.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FenceOptions {
    /// Disagreeing peers that fence this node (`None`: a majority of the other members).
    pub(crate) peers_disagree_min: Option<usize>,
    /// Time between two comparison rounds.
    pub(crate) compare_interval: Duration,
}

/// The fence: the API's [`FenceState`], and the facts that record its changes.
#[derive(Clone, Debug)]
pub(crate) struct Fence {
    state: Arc<watch::Sender<FenceState>>,
    log: SequencerHandle,
}

impl Fence {
    /// A serving fence whose facts go to `log`, and the receiver the API and metrics watch.
    pub(crate) fn new(log: SequencerHandle) -> (Self, watch::Receiver<FenceState>) {
        let (state, receiver) = watch::channel(FenceState::Serving);
        (Self { state: Arc::new(state), log }, receiver)
    }

    fn is_fenced(&self) -> bool {
        matches!(*self.state.borrow(), FenceState::Fenced { .. })
    }

    /// Fences this node: writes stop at the API and the lanes, the `fenced` fact is appended.
    fn fence(&self, reason: FenceReason, index: Option<RaftIndex>) {
        error!(%reason, first_divergent_index = index.map(RaftIndex::get), "node fenced itself");
        self.state.send_replace(FenceState::Fenced { reason, index });
        self.record(EventKind::Fenced { reason, index });
    }

    /// Lifts the fence after a verified reconciliation: the API and the lanes serve again,
    /// the `unfenced` fact is appended.
    fn unfence(&self, index: RaftIndex, root: Digest) {
        info!(%index, %root, "node unfenced");
        self.state.send_replace(FenceState::Serving);
        self.record(EventKind::Unfenced { index, root });
    }

    /// Appends a local fact; a full log queue drops it with a warning (the fence state itself
    /// holds either way).
    fn record(&self, kind: EventKind) {
        let event = Event {
            observed_at: SystemClock.now(),
            source: Source::Replay,
            origin: Origin::Local,
            kind,
        };
        if let Err(error) = self.log.try_submit(vec![event.to_bytes()]) {
            warn!(error = error.as_str(), kind = event.kind.as_str(), "fence fact not logged");
        }
    }
}

/// The lanes' admission, refused while the node is fenced (as [`AdmissionError::NoLeader`]:
/// nothing was written, another node can take it).
#[derive(Debug)]
pub(crate) struct FencedAdmission<A> {
    inner: A,
    fence: watch::Receiver<FenceState>,
}

impl<A> FencedAdmission<A> {
    pub(crate) const fn new(inner: A, fence: watch::Receiver<FenceState>) -> Self {
        Self { inner, fence }
    }
}

impl<A: Admission> Admission for FencedAdmission<A> {
    fn admit(&self, txs: Vec<Tx>) -> AdmissionFuture {
        if matches!(*self.fence.borrow(), FenceState::Fenced { .. }) {
            return Box::pin(async { Err(AdmissionError::NoLeader) });
        }
        self.inner.admit(txs)
    }
}

/// What members ask of this node's replicated state: state roots from the live replayer
/// (`AdminRequest::StateRoot`), checkpoints of it and the mempool root, for a fenced peer's
/// reconciliation, and the facts of the entries a snapshot covers, for a member installing it.
#[derive(Debug)]
pub(crate) struct ReplayerRoots {
    history: History,
    checkpoints: CheckpointServer,
    node: Weak<RaftNode>,
}

impl ReplayerRoots {
    pub(crate) fn new(history: History, node: Weak<RaftNode>) -> Self {
        Self { checkpoints: CheckpointServer::new(history.clone(), node.clone()), history, node }
    }
}

impl StateRootSource for ReplayerRoots {
    fn state_root(&self, index: Option<RaftIndex>) -> Option<StateRootReply> {
        let root = self.history.read(|live| match index {
            None => Some(live.digest()),
            Some(index) => root_at(live, index),
        });
        root.map(|d| StateRootReply { raft_index: d.raft_index, digest: d.digest })
    }

    fn checkpoint_chunk(&self, at: Option<RaftIndex>, offset: u64) -> Option<CheckpointChunk> {
        self.checkpoints.chunk(at, offset)
    }

    fn mempool_root(&self) -> Option<MempoolRootReply> {
        self.checkpoints.mempool_root()
    }

    fn mempool_chunk(&self, at: Option<RaftIndex>, offset: u64) -> Option<CheckpointChunk> {
        self.checkpoints.mempool_chunk(at, offset)
    }

    fn facts(&self, after: RaftIndex, skip: u32, through: RaftIndex) -> Option<FactsChunk> {
        // Only a member that applied `through` has written every fact up to it (and a snapshot
        // it sent synced them first, so its reader sees them).
        let applied = self.node.upgrade()?.state().applied()?.index;
        if applied < through.0 {
            return None;
        }
        facts_in_log(self.history.reader(), after, skip, through)
            .inspect_err(|error| warn!(%error, "cannot read the facts a member asked for"))
            .ok()
            .flatten()
    }
}

/// The digest through `index`; below the first index this replayer ever sealed (when it has
/// dropped none of its sealed digests) the state is the empty one, the same on every replica:
/// Raft entries without facts (the first, membership) come before any fact.
fn root_at(live: &Replayer, index: RaftIndex) -> Option<IndexedDigest> {
    if let Some(found) = live.digest_at(index) {
        return Some(found);
    }
    let oldest = live.index_digests().next()?;
    let never_pruned = live.index_digests().count() < DEFAULT_INDEX_DIGESTS_MAX;
    (never_pruned && index < oldest.raft_index)
        .then(|| Replayer::new(ReplayConfig::default()).digest())
}

/// Starts the comparison rounds: every `options.compare_interval` until the member is gone.
pub(crate) fn watch_peers(
    node: Weak<RaftNode>,
    client: Arc<PeerClient>,
    history: History,
    fence: Fence,
    options: FenceOptions,
) {
    tokio::spawn(async move {
        let mut rounds = Rounds {
            client,
            history,
            fence,
            options,
            mismatched: BTreeMap::new(),
            repair: None,
            gate: reconcile_gate(),
        };
        let mut tick = tokio::time::interval(options.compare_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(node) = node.upgrade() else { break };
            rounds.round(&node).await;
        }
    });
}

/// A peer's comparison with this node through their common sealed index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    /// Equal roots through `index`, the common sealed index.
    Agree {
        index: RaftIndex,
    },
    Disagree {
        index: RaftIndex,
        ours: Digest,
        theirs: Digest,
    },
    /// Unreachable, nothing sealed in common, or the index no longer held.
    Unknown,
}

struct Rounds {
    client: Arc<PeerClient>,
    history: History,
    fence: Fence,
    options: FenceOptions,
    /// Peers that disagreed in the last round (one fact per episode, not per round).
    mismatched: BTreeMap<NodeId, RaftIndex>,
    /// While fenced: the reconciliation in progress.
    repair: Option<Repair>,
    /// The test-only gate of [`TEST_RECONCILE_GATE_ENV`].
    gate: Option<PathBuf>,
}

/// The gate file of [`TEST_RECONCILE_GATE_ENV`], when set.
fn reconcile_gate() -> Option<PathBuf> {
    let gate = PathBuf::from(std::env::var_os(TEST_RECONCILE_GATE_ENV)?);
    warn!(gate = %gate.display(), "TEST GATE ACTIVE: reconciliation waits for this file");
    Some(gate)
}

/// A fenced node's reconciliation: the peer, the first divergent index, the lowest index a
/// peer's checkpoint must reach to repair it, and the backoff.
struct Repair {
    peer: Peer,
    first: Option<RaftIndex>,
    floor: Option<RaftIndex>,
    failures: u32,
    next_at: Instant,
}

impl Rounds {
    async fn round(&mut self, node: &RaftNode) {
        let status = node.status();
        let peers: Vec<(NodeId, ClusterNode)> =
            status.members.into_iter().filter(|(id, _)| *id != node.id()).collect();
        let needed = self.options.peers_disagree_min.unwrap_or(peers.len() / 2 + 1).max(1);
        let mut disagreeing = Vec::new();
        for (peer, addr) in &peers {
            match self.compare(*peer, addr).await {
                Verdict::Disagree { index, ours, theirs } => {
                    if self.mismatched.insert(*peer, index).is_none() {
                        warn!(peer = peer.0, %index, %ours, %theirs, "state root differs from a peer's");
                        self.fence.record(EventKind::DivergenceDetected {
                            peer: *peer,
                            index,
                            ours,
                            theirs,
                        });
                    }
                    disagreeing.push((*peer, addr.clone(), index));
                }
                Verdict::Agree { .. } => {
                    self.mismatched.remove(peer);
                }
                Verdict::Unknown => {}
            }
        }
        if disagreeing.len() >= needed && !self.fence.is_fenced() {
            let (peer, addr, index) = disagreeing.swap_remove(0);
            let first = self.bisect(peer, addr.clone(), index).await;
            self.fence.fence(FenceReason::Divergence, first);
            let peer = Peer { id: peer, addr };
            self.repair =
                Some(Repair { peer, first, floor: first, failures: 0, next_at: Instant::now() });
        }
        if self.fence.is_fenced() {
            self.reconcile(node).await;
        }
    }

    /// One reconciliation attempt when one is due: repair the replayer's state from the peer,
    /// verify the new root against it, and only then lift the fence. Failures back off
    /// exponentially; past [`REPAIR_ATTEMPTS_MAX`] (or when the state machine itself
    /// diverged) the node stays fenced for an operator.
    async fn reconcile(&mut self, node: &RaftNode) {
        let Some(repair) = self.repair.as_mut() else { return };
        if Instant::now() < repair.next_at {
            return;
        }
        // One `stat` of a test file, only when the test gate is set.
        if self.gate.as_ref().is_some_and(|gate| !gate.exists()) {
            return;
        }
        let (peer, first) = (repair.peer.clone(), repair.first);
        info!(
            peer = peer.id.0,
            first_divergent_index = first.map(RaftIndex::get),
            "reconciling with a peer"
        );
        let floor = &mut repair.floor;
        let outcome = match repair::repair(node, &self.client, &self.history, &peer, floor).await {
            Ok(rebased) => match self.compare(peer.id, &peer.addr).await {
                Verdict::Agree { index } if index >= rebased.installed.raft_index => {
                    Ok((index, rebased))
                }
                _ => Err(Failure::NotVerified),
            },
            Err(failure) => Err(failure),
        };
        match outcome {
            Ok((index, rebased)) => {
                let root = self.history.read(|live| root_at(live, index)).map(|d| d.digest);
                info!(
                    peer = peer.id.0,
                    installed_index = rebased.installed.raft_index.get(),
                    reapplied = rebased.reapplied,
                    verified_index = index.get(),
                    "state reinstalled from a peer and verified"
                );
                self.repair = None;
                self.mismatched.clear();
                self.fence.unfence(index, root.unwrap_or(rebased.sealed.digest));
            }
            Err(failure) => {
                let Some(repair) = self.repair.as_mut() else { return };
                repair.failures += 1;
                let retry = failure.is_retryable() && repair.failures < REPAIR_ATTEMPTS_MAX;
                let backoff = REPAIR_BACKOFF_FIRST
                    .saturating_mul(1 << repair.failures.min(8))
                    .min(REPAIR_BACKOFF_MAX);
                repair.next_at = Instant::now() + backoff;
                if retry {
                    warn!(peer = peer.id.0, failure = failure.as_str(), detail = %failure,
                        attempt = repair.failures, retry_in_ms = backoff.as_millis(),
                        "reconciliation failed; the node stays fenced");
                } else {
                    error!(peer = peer.id.0, failure = failure.as_str(), detail = %failure,
                        attempts = repair.failures,
                        "reconciliation given up; the node stays fenced until an operator \
                         replaces it");
                    self.repair = None;
                }
            }
        }
    }

    /// Compares through the highest index both sides have sealed.
    async fn compare(&self, peer: NodeId, addr: &ClusterNode) -> Verdict {
        let ours = self.history.read(|live| live.digest());
        let Some(theirs) = ask(&self.client, peer, addr, None).await else {
            return Verdict::Unknown;
        };
        let common = ours.raft_index.min(theirs.raft_index);
        if common == RaftIndex(0) {
            return Verdict::Unknown;
        }
        let mine = self.history.read(|live| root_at(live, common));
        match (mine, ask(&self.client, peer, addr, Some(common)).await) {
            (Some(a), Some(b)) if a.raft_index == b.raft_index && a.digest == b.digest => {
                Verdict::Agree { index: common }
            }
            (Some(a), Some(b)) => {
                Verdict::Disagree { index: common, ours: a.digest, theirs: b.digest }
            }
            _ => Verdict::Unknown,
        }
    }

    /// The first index at which this node and `peer` differ, searched below `through` (`None`
    /// when the peer stopped answering or the history kept does not reach it).
    async fn bisect(
        &self,
        peer: NodeId,
        addr: ClusterNode,
        through: RaftIndex,
    ) -> Option<RaftIndex> {
        let (client, history) = (Arc::clone(&self.client), self.history.clone());
        let runtime = tokio::runtime::Handle::current();
        let searched = tokio::task::spawn_blocking(move || {
            first_divergence(RaftIndex(0), through, |index| {
                let Some(mine) = history.read(|live| root_at(live, index)) else {
                    return Ok(Probe::Missing);
                };
                match runtime.block_on(ask(&client, peer, &addr, Some(index))) {
                    Some(t) if t.raft_index == mine.raft_index && t.digest == mine.digest => {
                        Ok(Probe::Match)
                    }
                    Some(_) => Ok(Probe::Mismatch),
                    None => Err(index),
                }
            })
        })
        .await;
        match searched {
            Ok(Ok(Divergence::FirstAt(first))) => {
                info!(peer = peer.0, first_divergent_index = first.get(), "divergence bisected");
                Some(first)
            }
            Ok(Ok(Divergence::AtOrBefore(oldest))) => {
                warn!(
                    peer = peer.0,
                    oldest = oldest.get(),
                    "divergence began before the digests kept"
                );
                None
            }
            Ok(Ok(other)) => {
                warn!(peer = peer.0, ?other, "divergence not confirmed by bisection");
                None
            }
            Ok(Err(index)) => {
                warn!(peer = peer.0, index = index.get(), "peer stopped answering the bisection");
                None
            }
            Err(error) => {
                warn!(%error, "bisection task failed");
                None
            }
        }
    }
}

/// A peer's state root through `index` (its latest for `None`); `None` when it does not hold
/// one or cannot be asked.
async fn ask(
    client: &PeerClient,
    peer: NodeId,
    addr: &ClusterNode,
    index: Option<RaftIndex>,
) -> Option<StateRootReply> {
    let request = AdminRequest::StateRoot { index };
    match client.admin(peer, addr, request, PEER_REQUEST_TIMEOUT).await {
        Ok(Ok(AdminReply::StateRoot(root))) => root,
        _ => None,
    }
}

/// The test-only fault of [`FAULT_CORRUPT_APPLY_INDEX_ENV`] around `sink`, when that variable
/// is set (to a Raft index); `sink` itself otherwise.
///
/// # Errors
/// When the variable is set to something other than a Raft index.
pub(crate) fn with_test_fault(sink: Arc<dyn FactSink>) -> anyhow::Result<Arc<dyn FactSink>> {
    let Ok(value) = std::env::var(FAULT_CORRUPT_APPLY_INDEX_ENV) else { return Ok(sink) };
    let from = value.trim().parse().map_err(|_| {
        anyhow::anyhow!("{FAULT_CORRUPT_APPLY_INDEX_ENV}={value} is not a Raft index")
    })?;
    warn!(from_index = from, "TEST FAULT ACTIVE: one applied entry's facts will be corrupted");
    Ok(Arc::new(CorruptingSink {
        inner: sink,
        from: RaftIndex(from),
        done: AtomicBool::new(false),
    }))
}

/// Changes the hash of the first replicated admission at or above `from`, once.
struct CorruptingSink {
    inner: Arc<dyn FactSink>,
    from: RaftIndex,
    done: AtomicBool,
}

impl FactSink for CorruptingSink {
    fn append(&self, mut events: Vec<Event>) -> SinkFuture {
        if !self.done.load(Ordering::Acquire) {
            for event in &mut events {
                let Some(index) = event.origin.raft_index() else { continue };
                if index < self.from {
                    continue;
                }
                if let EventKind::TxAdmitted { tx, .. } = &mut event.kind {
                    tx.hash.0[0] ^= 0xff;
                    self.done.store(true, Ordering::Release);
                    warn!(index = index.get(), "test fault: corrupted an applied entry's facts");
                    break;
                }
            }
        }
        self.inner.append(events)
    }

    fn sync(&self) -> SinkFuture {
        self.inner.sync()
    }

    fn written_through(&self) -> Option<WrittenThrough> {
        self.inner.written_through()
    }
}
