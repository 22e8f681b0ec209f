//! The services behind the routes. The node implements each trait over its components (ingest
//! lanes, the cluster, the event log); the API owns no business logic.
//!
//! Every method that may wait returns a [`BoxFuture`] so the traits stay object safe and the
//! router holds `Arc<dyn Trait>`s.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
    sync::Arc,
};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use mempulse_cluster::{ClusterNode, ClusterStatus, LearnerLag};
use mempulse_mempool::{BlockLimits, BuiltBlock, CommitBlock};
use mempulse_primitives::{
    Address, Digest, DropReason, EventKind, FenceReason, Height, Lane, NodeId, Nonce, RaftIndex,
    RejectReason, Seq, SequencedEvent, Subpool, Tx, TxHash, ValidatorId,
};
use mempulse_wal::Record;

use crate::{Consistency, ServiceError};

/// Result of a service call.
pub type ServiceResult<T> = Result<T, ServiceError>;

/// Accepts raw transactions from the JSON-RPC and REST lanes.
pub trait TxSubmit: Send + Sync + 'static {
    /// Submits raw EIP-2718 transactions that arrived on `lane` and answers one verdict per
    /// input, in input order. The node decodes, recovers and admits them (through the cluster)
    /// and answers once it knows each transaction's fate.
    ///
    /// # Errors
    /// A [`ServiceError`] when the whole batch could not be handled (no leader, overloaded, …);
    /// a refused transaction is a [`TxVerdict::Refused`], not an error.
    ///
    /// `client` is the submitter's address when the lane knows it (the key of its per-source
    /// rate limit); `None` for in-process callers.
    fn submit(
        &self,
        lane: Lane,
        client: Option<IpAddr>,
        raws: Vec<Bytes>,
    ) -> BoxFuture<'_, ServiceResult<Vec<TxVerdict>>>;
}

/// What became of one submitted transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxVerdict {
    /// Admitted to the pool (or queued by the lane when `subpool` is `None`).
    Accepted {
        /// Its hash.
        hash: TxHash,
        /// The subpool it entered, when the pool's answer is known.
        subpool: Option<Subpool>,
    },
    /// Not admitted.
    Refused {
        /// Its hash, when it decoded far enough to have one.
        hash: Option<TxHash>,
        /// Why.
        refusal: Refusal,
    },
}

/// Why a submitted transaction was not admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The pool or a stateless check rejected it (a `tx_rejected` fact).
    Rejected(RejectReason),
    /// The lane dropped it before the pool saw it (a `tx_dropped` fact).
    Dropped(DropReason),
    /// Its EIP-2718 type byte is not supported.
    UnsupportedType,
    /// The bytes are not one canonical signed transaction.
    Malformed,
}

impl Refusal {
    /// Stable snake-case name (API field `reason`).
    #[must_use]
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::Rejected(reason) => reason.as_str(),
            Self::Dropped(reason) => reason.as_str(),
            Self::UnsupportedType => "unsupported_type",
            Self::Malformed => "malformed",
        }
    }
}

/// Read-only queries of the node's current (replicated) pool, each at the [`Consistency`] the
/// client asked for: [`Consistency::Weak`] reads this node's state as it is;
/// [`Consistency::Linearizable`] first makes this node's state contain every write
/// acknowledged before the call (the leader's read index), or fails.
///
/// # Errors (every method)
/// A [`ServiceError`] when the pool cannot be read; for a linearizable read,
/// [`ServiceError::Unavailable`] with the reason when no leader could confirm a read index in
/// time ([`Unavailable::NoLeader`], [`Unavailable::NoQuorum`], [`Unavailable::LeaderUnreachable`],
/// [`Unavailable::Timeout`]).
///
/// [`Unavailable::NoLeader`]: crate::Unavailable::NoLeader
/// [`Unavailable::NoQuorum`]: crate::Unavailable::NoQuorum
/// [`Unavailable::LeaderUnreachable`]: crate::Unavailable::LeaderUnreachable
/// [`Unavailable::Timeout`]: crate::Unavailable::Timeout
pub trait PoolQuery: Send + Sync + 'static {
    /// A pooled transaction by hash, with its subpool.
    ///
    /// # Errors
    /// See the trait.
    fn transaction(
        &self,
        hash: TxHash,
        consistency: Consistency,
    ) -> BoxFuture<'_, ServiceResult<Option<(Tx, Subpool)>>>;

    /// Pending and queued counts, with the Raft index they reflect.
    ///
    /// # Errors
    /// See the trait.
    fn status(&self, consistency: Consistency) -> BoxFuture<'_, ServiceResult<PoolStatus>>;

    /// Up to `max_txs` pooled transactions in sender-address order, each sender's in nonce
    /// order, with the pool's total count.
    ///
    /// # Errors
    /// See the trait.
    fn content(
        &self,
        max_txs: usize,
        consistency: Consistency,
    ) -> BoxFuture<'_, ServiceResult<PoolContent>>;
}

/// Sizes of the pool.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStatus {
    /// Pending (buildable) transactions.
    pub pending: u64,
    /// Queued transactions (waiting for a nonce gap to close).
    pub queued: u64,
    /// The last Raft index applied to the state the counts were read from (`None`: nothing
    /// applied yet, or the service does not know).
    pub applied: Option<RaftIndex>,
}

/// Part or all of the pool, from [`PoolQuery::content`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PoolContent {
    /// Transactions in sender order then nonce order, with their subpools.
    pub txs: Vec<(Tx, Subpool)>,
    /// Transactions in the pool (may exceed `txs.len()`).
    pub total: u64,
}

/// Every fact the event log holds about one transaction.
pub trait TxHistory: Send + Sync + 'static {
    /// Up to `max` facts about `hash` (see [`EventKind::tx_hash`]) in seq order; empty when the
    /// log knows nothing of it.
    ///
    /// # Errors
    /// A [`ServiceError`] when the index or the log cannot be read.
    fn lifecycle(
        &self,
        hash: TxHash,
        max: usize,
    ) -> BoxFuture<'_, ServiceResult<Vec<SequencedEvent>>>;
}

/// Durable records of the canonical event log. Only acknowledged (durable) records are ever
/// returned: design rule 1, durable before visible.
pub trait EventLog: Send + Sync + 'static {
    /// Up to `max` durable records with seq greater than `after`, in seq order, without
    /// waiting (empty when none is durable yet). `Seq(0)` means from the first record kept.
    ///
    /// # Errors
    /// [`ServiceError::Purged`] when records after `after` were purged; another
    /// [`ServiceError`] when the log cannot be read.
    fn read_after(&self, after: Seq, max: usize) -> BoxFuture<'_, ServiceResult<Vec<Record>>>;

    /// As [`EventLog::read_after`], but waits until at least one record after `after` is
    /// durable (returns empty only for `max == 0`).
    ///
    /// # Errors
    /// As [`EventLog::read_after`]; [`ServiceError::Unavailable`] when the log closed.
    fn wait_after(&self, after: Seq, max: usize) -> BoxFuture<'_, ServiceResult<Vec<Record>>>;
}

/// Block building, commits and reorgs, applied through the cluster.
pub trait BlockOps: Send + Sync + 'static {
    /// Builds a proposal for the next height (a `block_proposed` fact).
    ///
    /// # Errors
    /// A [`ServiceError`] when the command could not be applied.
    fn build(&self, request: BuildRequest) -> BoxFuture<'_, ServiceResult<BlockOutcome>>;

    /// Commits a block, then rechecks the pool.
    ///
    /// # Errors
    /// [`ServiceError::Conflict`] when the height does not move up; another [`ServiceError`]
    /// when the command could not be applied.
    fn commit(&self, request: CommitBlock) -> BoxFuture<'_, ServiceResult<BlockOutcome>>;

    /// Applies a reorg. The orphaned transactions arrive as raw EIP-2718 bytes; the node
    /// decodes them.
    ///
    /// # Errors
    /// [`ServiceError::Conflict`] for a reorg the pool refuses, [`ServiceError::InvalidTx`]
    /// for an orphaned transaction that does not decode; another [`ServiceError`] when the
    /// command could not be applied.
    fn reorg(&self, request: ReorgRequest) -> BoxFuture<'_, ServiceResult<BlockOutcome>>;
}

/// A validated `POST /v1/blocks/build`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BuildRequest {
    /// Block limits.
    pub limits: BlockLimits,
    /// Validator the proposal is for.
    pub proposer: ValidatorId,
}

/// A validated `POST /v1/reorg`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReorgRequest {
    /// Highest height still canonical.
    pub fork_height: Height,
    /// Orphaned blocks, ascending by height, each above `fork_height`.
    pub orphaned: Vec<OrphanedRaw>,
    /// Authoritative committed nonces after the reorg.
    pub nonces: Vec<(Address, Nonce)>,
    /// Base fee per gas after the reorg.
    pub base_fee_per_gas: Option<u128>,
}

/// One orphaned block with its raw transactions in block order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OrphanedRaw {
    /// Its height.
    pub height: Height,
    /// Its transactions as EIP-2718 bytes.
    pub txs: Vec<Bytes>,
}

/// What a block command produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockOutcome {
    /// Raft index of the entry that applied it, when known.
    pub raft_index: Option<RaftIndex>,
    /// The facts it derived, in order.
    pub facts: Vec<EventKind>,
    /// The proposal, for a build.
    pub block: Option<BuiltBlock>,
}

/// This node's view of its cluster.
pub trait ClusterInfo: Send + Sync + 'static {
    /// The current view (cheap: read from the Raft metrics).
    fn status(&self) -> ClusterView;

    /// The peer catalog: the latest announcement of every node this node hears from (itself
    /// included), ascending by node; empty when the node runs without peers.
    fn catalog(&self) -> Vec<CatalogNode> {
        Vec::new()
    }
}

/// One node of the peer catalog, as the API reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatalogNode {
    /// The announcing node.
    pub node: NodeId,
    /// The validator its cluster runs as.
    pub validator: ValidatorId,
    /// `host:port` of its tx-stream and peer listener.
    pub stream_addr: String,
    /// `host:port` of its HTTP API (empty when unknown).
    pub api_addr: String,
    /// Its cluster's tags at `height`, by stable name in canonical order.
    pub tags: Vec<&'static str>,
    /// Its Raft role's stable name (`leader`, `follower`, `candidate`, `learner`, `unknown`).
    pub role: &'static str,
    /// The height it is at (one above its pool's last block).
    pub height: Height,
    /// The announcement's version (newer replaces older).
    pub version: u64,
    /// Milliseconds since the announcement was last received (refreshed by heartbeats).
    pub age_ms: u64,
}

/// One node's view of its cluster, as the API reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterView {
    /// The node reporting.
    pub node: NodeId,
    /// Its role's stable name (`leader`, `follower`, `candidate`, `learner`, `shutdown`).
    pub role: &'static str,
    /// The leader it knows.
    pub leader: Option<NodeId>,
    /// Its current term.
    pub term: u64,
    /// Index of its last log entry.
    pub last_log_index: Option<u64>,
    /// Index of the last entry it knows committed.
    pub committed: Option<u64>,
    /// Index of the last entry it applied.
    pub applied: Option<u64>,
    /// Voting members.
    pub voters: BTreeSet<NodeId>,
    /// Every member with its addresses.
    pub members: BTreeMap<NodeId, ClusterNode>,
    /// On the leader, every other member's replication progress; empty elsewhere.
    pub replication: BTreeMap<NodeId, LearnerLag>,
    /// The proposer schedule at the current height, when the node has a validators file.
    pub schedule: Option<ScheduleView>,
}

/// The proposer schedule as one node sees it at the current height.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduleView {
    /// The height being proposed: one above the last committed block (or the chain's initial
    /// height before any).
    pub height: Height,
    /// Its round-0 proposer.
    pub proposer: ValidatorId,
    /// The validator this node's cluster runs as.
    pub validator: ValidatorId,
    /// This cluster's tags at `height`, by stable name in canonical order (`proposer`,
    /// `proposer-next`, `proposer-soon`); empty when it has none.
    pub tags: Vec<&'static str>,
}

impl From<&ClusterStatus> for ClusterView {
    fn from(s: &ClusterStatus) -> Self {
        Self {
            node: s.node,
            role: s.role.as_str(),
            leader: s.leader,
            term: s.term,
            last_log_index: s.last_log_index,
            committed: s.committed,
            applied: s.applied,
            voters: s.voters.clone(),
            members: s.members.clone(),
            replication: s.replication.iter().map(|lag| (lag.id, *lag)).collect(),
            schedule: None,
        }
    }
}

/// The digests of the replicated state this node sealed, and offline replays of its own log
/// compared against them.
pub trait StateRoots: Send + Sync + 'static {
    /// The digest of the replicated state through Raft index `index` (the latest sealed one
    /// when `None`).
    ///
    /// # Errors
    /// A [`ServiceError`] when the digests cannot be read.
    fn state_root(&self, index: Option<RaftIndex>)
    -> BoxFuture<'_, ServiceResult<StateRootLookup>>;

    /// Replays this node's durable log read-only over `request`'s range (starting from the
    /// newest checkpoint at or before it, or from the start of the log) and compares each
    /// digest point with the digest this node's live replayer sealed at the same Raft index.
    ///
    /// # Errors
    /// [`ServiceError::LimitExceeded`] when the replay would apply more events or report more
    /// points than the request allows; [`ServiceError::BeyondLog`] when `from` is past the
    /// last durable seq; [`ServiceError::Purged`] when the range was purged;
    /// [`ServiceError::Unavailable`] with [`Unavailable::Overloaded`] when a replay runs
    /// already (the route answers that another replay is running); another [`ServiceError`]
    /// when the log cannot be read.
    ///
    /// [`Unavailable::Overloaded`]: crate::Unavailable::Overloaded
    fn replay(&self, request: ReplayRequest) -> BoxFuture<'_, ServiceResult<ReplayReport>>;
}

/// A sealed digest of the replicated state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateRoot {
    /// The Raft index it is the digest through (`0`: before any replicated fact).
    pub raft_index: RaftIndex,
    /// Seq, in this node's log, of the last fact of that index (`0`: none).
    pub seq: Seq,
    /// The digest.
    pub digest: Digest,
}

/// The answer to [`StateRoots::state_root`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateRootLookup {
    /// The digest through the requested index: the latest index sealed at or below it.
    Found(StateRoot),
    /// The index is above every index sealed so far (it may still receive facts).
    NotSealed {
        /// The latest sealed digest.
        latest: StateRoot,
    },
    /// The index is older than the digests this node keeps.
    NotRetained {
        /// The oldest index whose digest is kept.
        oldest: RaftIndex,
    },
}

/// A validated `GET /v1/replay`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplayRequest {
    /// First seq whose digest points are reported (at least 1).
    pub from: Seq,
    /// Last seq replayed (inclusive; the last durable seq when `None` or beyond it).
    pub to: Option<Seq>,
    /// A digest point after every seq that is a multiple of this (at least 1).
    pub every: u64,
    /// Most events the replay may apply, counting from its starting checkpoint.
    pub events_max: u64,
    /// Most digest points it may report.
    pub points_max: u64,
}

/// One digest point of an offline replay, with the live replayer's digest at its Raft index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplayPoint {
    /// Seq of the event after which it was taken.
    pub seq: Seq,
    /// Events from the start of the log through `seq`.
    pub events: u64,
    /// The last complete Raft index at `seq`.
    pub raft_index: RaftIndex,
    /// The replayed digest through `raft_index`.
    pub digest: Digest,
    /// The live replayer's digest through `raft_index`, when it still holds (or already has)
    /// one; `None`: not comparable.
    pub live: Option<Digest>,
}

/// What an offline replay found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayReport {
    /// First seq reported.
    pub from: Seq,
    /// Last seq replayed.
    pub to: Seq,
    /// Seq of the checkpoint the replay started from (`None`: the start of the log).
    pub checkpoint: Option<Seq>,
    /// Events applied (from the checkpoint or the start of the log through `to`).
    pub applied: u64,
    /// Digest points in `from..=to`, in seq order.
    pub points: Vec<ReplayPoint>,
    /// The state after `to`: its last complete Raft index and digest.
    pub end: ReplayPoint,
}

/// Whether the node serves state or has fenced itself (design rule 6).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FenceState {
    /// Serving.
    #[default]
    Serving,
    /// Fenced: routes that write or read current state answer 503 `SELF_FENCED`.
    Fenced {
        /// Why.
        reason: FenceReason,
        /// First divergent Raft index, when known.
        index: Option<RaftIndex>,
    },
}

/// Renders the Prometheus text exposition for `GET /metrics` (the node passes its exporter's
/// handle, e.g. `move || handle.render()`).
pub type MetricsRender = Arc<dyn Fn() -> String + Send + Sync>;

/// The services the router needs.
#[derive(Clone)]
pub struct Services {
    /// Transaction submission (JSON-RPC and REST lanes).
    pub txs: Arc<dyn TxSubmit>,
    /// Pool queries.
    pub pool: Arc<dyn PoolQuery>,
    /// Per-transaction history.
    pub history: Arc<dyn TxHistory>,
    /// The durable event log.
    pub events: Arc<dyn EventLog>,
    /// Block build, commit and reorg.
    pub blocks: Arc<dyn BlockOps>,
    /// Cluster status.
    pub cluster: Arc<dyn ClusterInfo>,
    /// State roots and offline replays.
    pub state: Arc<dyn StateRoots>,
    /// The node's fence state.
    pub fence: tokio::sync::watch::Receiver<FenceState>,
    /// Prometheus text for `GET /metrics`.
    pub metrics: MetricsRender,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services").field("fence", &*self.fence.borrow()).finish_non_exhaustive()
    }
}
