//! Cluster administration: status, membership changes and leader transfer, as requests a node
//! serves itself or forwards to the leader (the `mempulse cluster …` commands sit on these).
//!
//! # Byte layout (inside a transport frame, see `transport/wire.rs`)
//! ```text
//! AdminRequest  u8 tag: 1 Status | 2 AddLearner u64 id, ClusterNode, u64 catch-up timeout ms
//!               | 3 Promote u32 n, n × u64 id (strictly ascending), u64 timeout ms
//!               | 4 Remove u64 id
//!               | 5 TransferLeader u64 to | 6 StateRoot opt<u64 index>
//!               | 7 Checkpoint opt<u64 at> | u64 offset | 8 MempoolRoot | 9 ReadIndex
//!               | 10 MempoolSnapshot opt<u64 at> | u64 offset
//!               | 11 Facts u64 after | u32 skip | u64 through
//! AdminReply    u8 tag: 1 Status ClusterStatus | 2 Done opt<u64 log index>
//!               | 3 StateRoot opt<u64 index | digest [32]>
//!               | 4 Checkpoint opt<u64 index | digest [32] | u64 total | u64 offset
//!                                  | u32 len | len bytes>       (len ≤ 1 MiB, offset+len ≤ total)
//!               | 5 MempoolRoot opt<u64 applied | digest [32]> | 6 ReadIndex u64 index
//!               | 7 MempoolSnapshot opt<chunk, as in 4>
//!               | 8 Facts opt<u32 n | n × (u32 len | len bytes: a stored event payload)>
//!                                  (Σ len ≤ FACTS_CHUNK_BYTES_MAX unless n = 1; n = 0: nothing left)
//! ClusterStatus u64 node | u8 role | opt<u64 leader> | u64 term | opt<u64 last log index>
//!               | opt<u64 committed> | opt<u64 applied> | u32 n, n × u64 voter (ascending)
//!               | u32 n, n × (u64 id, ClusterNode) (ascending ids)
//!               | u32 n, n × LearnerLag (ascending ids; the leader's view, n = 0 elsewhere)
//! AdminError    see `admin_error.rs`
//! ```
//!
//! The timeouts travel with the request because the serving node waits (for a learner to catch
//! up, for a membership change to commit) and must answer before the caller gives up: an answer
//! names what happened, a caller's timeout can only say it does not know.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use mempulse_primitives::{
    DecodeError, Digest, Event, NodeId, RaftIndex,
    codec::{Decode, Encode, Reader, put_len},
};

use crate::ClusterNode;
pub use crate::admin_error::{AdminError, ChangeState, LearnerLag};

/// An administrative request.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AdminRequest {
    /// The status of the node that serves the request (never forwarded).
    Status,
    /// Adds `id` as a learner at `node`'s addresses; answers once its log holds the
    /// membership entry that added it (so everything the leader had when asked), or
    /// [`AdminError::LearnerNotCaughtUp`] after `catch_up_timeout` (it stays a learner).
    /// Refused for a current member ([`AdminError::AlreadyMember`]).
    AddLearner {
        /// The new node's id.
        id: NodeId,
        /// Its addresses.
        node: ClusterNode,
        /// How long the leader waits for the learner to catch up (whole milliseconds).
        catch_up_timeout: Duration,
    },
    /// Makes learners voters (a membership change). Refused, before anything is proposed,
    /// while a learner lags the leader's commit index by more than
    /// [`crate::PROMOTE_LAG_ENTRIES_MAX`] entries or has been silent for longer than
    /// [`crate::PROMOTE_ACK_AGE_MAX`] ([`AdminError::LearnersBehind`]); answers
    /// [`AdminError::ChangeTimedOut`] when the change did not commit within `timeout`.
    Promote {
        /// The learners to promote.
        ids: BTreeSet<NodeId>,
        /// How long the leader waits for the change to commit (whole milliseconds).
        timeout: Duration,
    },
    /// Removes a voter or a learner from the cluster.
    Remove {
        /// The node to remove.
        id: NodeId,
    },
    /// Hands leadership to `to` (a voter with the leader's log).
    TransferLeader {
        /// The node to become leader.
        to: NodeId,
    },
    /// The serving node's replicated state root through `index` (its latest sealed one for
    /// `None`), for divergence checks between members (never forwarded).
    StateRoot {
        /// The Raft index asked for.
        index: Option<RaftIndex>,
    },
    /// One chunk of the serving node's replayer checkpoint, for a fenced member that
    /// reinstalls a healthy replica's replicated state (never forwarded). `at: None` takes a
    /// new checkpoint (complete through the node's latest sealed index) and answers its first
    /// chunk; `at: Some(index)` with an `offset` continues that checkpoint, while the node
    /// still holds it.
    Checkpoint {
        /// The index of the checkpoint being fetched (`None`: take a new one).
        at: Option<RaftIndex>,
        /// Byte offset of the chunk asked for.
        offset: u64,
    },
    /// The serving node's last applied Raft index and the digest of its mempool there (never
    /// forwarded): whether a diverged member's state machine differs too.
    MempoolRoot,
    /// The leader's read index, after it confirmed its leadership with a quorum: a member
    /// that has applied through it serves a linearizable read (forwarded to the leader).
    ReadIndex,
    /// One chunk of the serving node's mempool at its last applied index (its canonical
    /// snapshot encoding; the chunk's digest is its SHA-256), for a member whose state machine
    /// diverged (never forwarded). `at: None` exports the mempool now and answers the first
    /// chunk; `at: Some(index)` with an `offset` continues that export while the node holds it.
    MempoolSnapshot {
        /// The applied index of the export being fetched (`None`: export now).
        at: Option<RaftIndex>,
        /// Byte offset of the chunk asked for.
        offset: u64,
    },
    /// The serving node's replicated facts of Raft indexes `after ..= through`, in its event
    /// log's order, skipping the first `skip` facts of `after` (never forwarded): what a member
    /// that installs a snapshot at `through` lacks, since it never applies the entries the
    /// snapshot covers. Answered in chunks; the next request starts after the last fact of
    /// the previous chunk.
    Facts {
        /// The first index asked for.
        after: RaftIndex,
        /// Facts of `after` the asking member already holds.
        skip: u32,
        /// The last index asked for.
        through: RaftIndex,
    },
}

impl AdminRequest {
    /// Stable lowercase name.
    #[must_use]
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::Status => "status",
            Self::AddLearner { .. } => "add_learner",
            Self::Promote { .. } => "promote",
            Self::Remove { .. } => "remove",
            Self::TransferLeader { .. } => "transfer_leader",
            Self::StateRoot { .. } => "state_root",
            Self::Checkpoint { .. } => "checkpoint",
            Self::MempoolRoot => "mempool_root",
            Self::ReadIndex => "read_index",
            Self::MempoolSnapshot { .. } => "mempool_snapshot",
            Self::Facts { .. } => "facts",
        }
    }

    /// Whether the node that receives the request answers it itself, about its own state,
    /// instead of forwarding it to the leader.
    #[must_use]
    pub const fn is_local(&self) -> bool {
        match self {
            Self::Status
            | Self::StateRoot { .. }
            | Self::Checkpoint { .. }
            | Self::MempoolRoot
            | Self::MempoolSnapshot { .. }
            | Self::Facts { .. } => true,
            Self::AddLearner { .. }
            | Self::Promote { .. }
            | Self::Remove { .. }
            | Self::TransferLeader { .. }
            | Self::ReadIndex => false,
        }
    }
}

/// What an administrative request answered.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AdminReply {
    /// The status of the serving node.
    Status(ClusterStatus),
    /// The serving node's state root (`None`: the index is not sealed there yet, or older than
    /// the digests it keeps).
    StateRoot(Option<StateRootReply>),
    /// A chunk of the serving node's checkpoint (`None`: it cannot take one now, or no longer
    /// holds the one asked for: start again with `at: None`).
    Checkpoint(Option<CheckpointChunk>),
    /// The serving node's mempool digest at its last applied index (`None`: not available).
    MempoolRoot(Option<MempoolRootReply>),
    /// A chunk of the serving node's mempool export (`raft_index`: its applied index;
    /// `digest`: SHA-256 of the whole export; `None`: not available, or no longer held).
    MempoolSnapshot(Option<CheckpointChunk>),
    /// The next facts asked for by [`AdminRequest::Facts`] (`None`: this node cannot serve
    /// them: it has not applied `through` yet, or its event log no longer reaches `after`).
    Facts(Option<FactsChunk>),
    /// The leader's read index: a state applied through it holds every write acknowledged
    /// before the leader confirmed its leadership.
    ReadIndex {
        /// The Raft index to apply through before reading.
        index: RaftIndex,
    },
    /// The change is done; the index of the log entry that made it, when it wrote one.
    Done {
        /// Raft index of the membership entry (none for a leader transfer).
        log_index: Option<u64>,
    },
}

/// A member's digest of the replicated state through a Raft index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateRootReply {
    /// The latest sealed index at or below the one asked for (the digest is through it).
    pub raft_index: RaftIndex,
    /// The digest; equal on every healthy replica through the same index.
    pub digest: Digest,
}

/// Largest checkpoint chunk a node sends in one [`AdminReply::Checkpoint`] (and accepts).
pub const CHECKPOINT_CHUNK_BYTES_MAX: u32 = 1 << 20;

/// One chunk of a replayer checkpoint (the `mempulse-replay` checkpoint file bytes), or of a
/// mempool export ([`AdminReply::MempoolSnapshot`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointChunk {
    /// The Raft index the checkpointed replicated state is complete through.
    pub raft_index: RaftIndex,
    /// The replicated digest through `raft_index`.
    pub digest: Digest,
    /// Size of the whole checkpoint.
    pub total_bytes: u64,
    /// Where this chunk starts.
    pub offset: u64,
    /// The chunk (at most [`CHECKPOINT_CHUNK_BYTES_MAX`]; empty only past the end).
    pub bytes: Vec<u8>,
}

/// Largest total of encoded events in one [`FactsChunk`] a node sends (and accepts).
pub const FACTS_CHUNK_BYTES_MAX: usize = 1 << 20;

/// Replicated facts of a range of Raft indexes, in the serving node's log order
/// ([`AdminRequest::Facts`]): at most [`FACTS_CHUNK_BYTES_MAX`] bytes of encoded events (or
/// one larger event alone), at least one event unless nothing is left in the range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FactsChunk {
    /// The facts.
    pub events: Vec<Event>,
}

/// Builds the answer to an [`AdminRequest::Facts`] from a log's events offered in log order.
#[derive(Debug)]
pub struct FactsCollector {
    after: RaftIndex,
    skip: u32,
    through: RaftIndex,
    skipped: u32,
    bytes: usize,
    chunk: FactsChunk,
}

impl FactsCollector {
    /// A collector of the facts of `after ..= through`, skipping the first `skip` of `after`.
    #[must_use]
    pub const fn new(after: RaftIndex, skip: u32, through: RaftIndex) -> Self {
        Self {
            after,
            skip,
            through,
            skipped: 0,
            bytes: 0,
            chunk: FactsChunk { events: Vec::new() },
        }
    }

    /// Offers the log's next event (`stored_len`: its size in the log); local events and
    /// facts before `after` pass. `Break` once the chunk is complete: a fact past `through`,
    /// or one more would take it past [`FACTS_CHUNK_BYTES_MAX`].
    pub fn offer(&mut self, event: Event, stored_len: usize) -> std::ops::ControlFlow<()> {
        use std::ops::ControlFlow::{Break, Continue};
        let Some(index) = event.origin.raft_index() else { return Continue(()) };
        if index < self.after {
            return Continue(());
        }
        let full = !self.chunk.events.is_empty()
            && self.bytes.saturating_add(stored_len) > FACTS_CHUNK_BYTES_MAX;
        if index > self.through || full {
            return Break(());
        }
        if index == self.after && self.skipped < self.skip {
            self.skipped += 1;
            return Continue(());
        }
        self.bytes = self.bytes.saturating_add(stored_len);
        self.chunk.events.push(event);
        Continue(())
    }

    /// The chunk collected.
    #[must_use]
    pub fn finish(self) -> FactsChunk {
        self.chunk
    }

    /// The answer from a whole log's events, in log order (an in-memory log: each event's
    /// stored size is that of its encoding).
    #[must_use]
    pub fn collect(
        after: RaftIndex,
        skip: u32,
        through: RaftIndex,
        events: impl IntoIterator<Item = Event>,
    ) -> FactsChunk {
        let mut collector = Self::new(after, skip, through);
        for event in events {
            let len = event.to_bytes().len();
            if collector.offer(event, len).is_break() {
                break;
            }
        }
        collector.finish()
    }
}

/// A member's mempool digest at its last applied Raft index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MempoolRootReply {
    /// The last applied index.
    pub applied: RaftIndex,
    /// The digest of the mempool (its snapshot encoding) after applying it.
    pub digest: Digest,
}

/// Where a node's answers about its own replicated state come from: the state roots of its
/// live replayer ([`AdminRequest::StateRoot`]), checkpoints of it
/// ([`AdminRequest::Checkpoint`]) and its mempool digest ([`AdminRequest::MempoolRoot`]).
/// Every method is called on a blocking thread.
pub trait StateRootSource: Send + Sync + 'static {
    /// The digest through `index` (the latest sealed one for `None`), `None` when this node
    /// does not hold it.
    fn state_root(&self, index: Option<RaftIndex>) -> Option<StateRootReply>;

    /// A chunk of a checkpoint of the live replayer (see [`AdminRequest::Checkpoint`]); `None`
    /// when this node cannot serve it. The default serves none.
    fn checkpoint_chunk(&self, at: Option<RaftIndex>, offset: u64) -> Option<CheckpointChunk> {
        let _ = (at, offset);
        None
    }

    /// The mempool digest at the last applied index; `None` when unavailable. The default
    /// serves none.
    fn mempool_root(&self) -> Option<MempoolRootReply> {
        None
    }

    /// A chunk of an export of the mempool at the last applied index (see
    /// [`AdminRequest::MempoolSnapshot`]); `None` when unavailable. The default serves none.
    fn mempool_chunk(&self, at: Option<RaftIndex>, offset: u64) -> Option<CheckpointChunk> {
        let _ = (at, offset);
        None
    }

    /// The next replicated facts of `after ..= through` from this node's event log (see
    /// [`AdminRequest::Facts`]); `None` when unavailable. The default serves none.
    fn facts(&self, after: RaftIndex, skip: u32, through: RaftIndex) -> Option<FactsChunk> {
        let _ = (after, skip, through);
        None
    }
}

/// The answer of `source` to a request about the node's own replicated state (`None` for any
/// other request).
pub(crate) fn answer_from(
    source: &dyn StateRootSource,
    request: &AdminRequest,
) -> Option<AdminReply> {
    Some(match request {
        AdminRequest::StateRoot { index } => AdminReply::StateRoot(source.state_root(*index)),
        AdminRequest::Checkpoint { at, offset } => {
            AdminReply::Checkpoint(source.checkpoint_chunk(*at, *offset))
        }
        AdminRequest::MempoolRoot => AdminReply::MempoolRoot(source.mempool_root()),
        AdminRequest::MempoolSnapshot { at, offset } => {
            AdminReply::MempoolSnapshot(source.mempool_chunk(*at, *offset))
        }
        AdminRequest::Facts { after, skip, through } => {
            AdminReply::Facts(source.facts(*after, *skip, *through))
        }
        AdminRequest::Status
        | AdminRequest::AddLearner { .. }
        | AdminRequest::Promote { .. }
        | AdminRequest::Remove { .. }
        | AdminRequest::TransferLeader { .. }
        | AdminRequest::ReadIndex => return None,
    })
}

/// The role a node plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum NodeRole {
    /// Accepts writes and replicates.
    Leader,
    /// A voter following a leader.
    Follower,
    /// A voter campaigning.
    Candidate,
    /// Replicates, does not vote.
    Learner,
    /// Stopped.
    Shutdown,
}

impl NodeRole {
    /// Stable lowercase name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Leader => "leader",
            Self::Follower => "follower",
            Self::Candidate => "candidate",
            Self::Learner => "learner",
            Self::Shutdown => "shutdown",
        }
    }

    const fn code(self) -> u8 {
        match self {
            Self::Leader => 1,
            Self::Follower => 2,
            Self::Candidate => 3,
            Self::Learner => 4,
            Self::Shutdown => 5,
        }
    }
}

/// One node's view of its cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClusterStatus {
    /// The node reporting.
    pub node: NodeId,
    /// Its role.
    pub role: NodeRole,
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
    /// The voters of its latest membership (the union, during a joint change).
    pub voters: BTreeSet<NodeId>,
    /// Every member (voters and learners) with its addresses.
    pub members: BTreeMap<NodeId, ClusterNode>,
    /// On the leader, how far every other member is behind its last log index and when it
    /// last heard from each, in ascending id order; empty on any other node, which does not
    /// know.
    pub replication: Vec<LearnerLag>,
}

impl ClusterStatus {
    /// The members that do not vote.
    #[must_use]
    pub fn learners(&self) -> BTreeSet<NodeId> {
        self.members.keys().filter(|id| !self.voters.contains(id)).copied().collect()
    }
}

const REQ_STATUS: u8 = 1;
const REQ_ADD_LEARNER: u8 = 2;
const REQ_PROMOTE: u8 = 3;
const REQ_REMOVE: u8 = 4;
const REQ_TRANSFER: u8 = 5;
const REQ_STATE_ROOT: u8 = 6;
const REQ_CHECKPOINT: u8 = 7;
const REQ_MEMPOOL_ROOT: u8 = 8;
const REQ_READ_INDEX: u8 = 9;
const REQ_MEMPOOL_SNAPSHOT: u8 = 10;
const REQ_FACTS: u8 = 11;

impl Encode for AdminRequest {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Status => out.push(REQ_STATUS),
            Self::AddLearner { id, node, catch_up_timeout } => {
                out.push(REQ_ADD_LEARNER);
                id.encode(out);
                node.encode(out);
                millis(*catch_up_timeout).encode(out);
            }
            Self::Promote { ids, timeout } => {
                out.push(REQ_PROMOTE);
                put_ids(ids, out);
                millis(*timeout).encode(out);
            }
            Self::Remove { id } => {
                out.push(REQ_REMOVE);
                id.encode(out);
            }
            Self::TransferLeader { to } => {
                out.push(REQ_TRANSFER);
                to.encode(out);
            }
            Self::StateRoot { index } => {
                out.push(REQ_STATE_ROOT);
                index.encode(out);
            }
            Self::Checkpoint { at, offset } => {
                out.push(REQ_CHECKPOINT);
                at.encode(out);
                offset.encode(out);
            }
            Self::MempoolRoot => out.push(REQ_MEMPOOL_ROOT),
            Self::ReadIndex => out.push(REQ_READ_INDEX),
            Self::MempoolSnapshot { at, offset } => {
                out.push(REQ_MEMPOOL_SNAPSHOT);
                at.encode(out);
                offset.encode(out);
            }
            Self::Facts { after, skip, through } => {
                out.push(REQ_FACTS);
                after.encode(out);
                skip.encode(out);
                through.encode(out);
            }
        }
    }
}

impl Decode for AdminRequest {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let offset = r.position();
        Ok(match r.u8()? {
            REQ_STATUS => Self::Status,
            REQ_ADD_LEARNER => Self::AddLearner {
                id: NodeId::decode(r)?,
                node: ClusterNode::decode(r)?,
                catch_up_timeout: Duration::from_millis(r.u64()?),
            },
            REQ_PROMOTE => {
                Self::Promote { ids: read_ids(r)?, timeout: Duration::from_millis(r.u64()?) }
            }
            REQ_REMOVE => Self::Remove { id: NodeId::decode(r)? },
            REQ_TRANSFER => Self::TransferLeader { to: NodeId::decode(r)? },
            REQ_STATE_ROOT => Self::StateRoot { index: Option::decode(r)? },
            REQ_CHECKPOINT => Self::Checkpoint { at: Option::decode(r)?, offset: r.u64()? },
            REQ_MEMPOOL_ROOT => Self::MempoolRoot,
            REQ_READ_INDEX => Self::ReadIndex,
            REQ_MEMPOOL_SNAPSHOT => {
                Self::MempoolSnapshot { at: Option::decode(r)?, offset: r.u64()? }
            }
            REQ_FACTS => Self::Facts {
                after: RaftIndex::decode(r)?,
                skip: u32::decode(r)?,
                through: RaftIndex::decode(r)?,
            },
            tag => return Err(DecodeError::UnknownTag { offset, what: "admin request", tag }),
        })
    }
}

/// A duration in whole milliseconds (saturating: no timeout is that long).
pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn put_ids(ids: &BTreeSet<NodeId>, out: &mut Vec<u8>) {
    put_len(out, ids.len());
    for id in ids {
        id.encode(out);
    }
}

/// Reads `u32 n | n × u64`, strictly ascending (one encoding per set).
fn read_ids(r: &mut Reader<'_>) -> Result<BTreeSet<NodeId>, DecodeError> {
    let offset = r.position();
    let count = r.count(8)?;
    let mut ids = BTreeSet::new();
    for _ in 0..count {
        let id = NodeId::decode(r)?;
        if ids.last().is_some_and(|last| *last >= id) {
            return Err(DecodeError::InvalidValue { offset, what: "node ids" });
        }
        ids.insert(id);
    }
    Ok(ids)
}

/// `u64 raft_index | digest [32]`.
impl Encode for StateRootReply {
    fn encode(&self, out: &mut Vec<u8>) {
        self.raft_index.encode(out);
        self.digest.encode(out);
    }
}

impl Decode for StateRootReply {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self { raft_index: RaftIndex::decode(r)?, digest: Digest::decode(r)? })
    }
}

/// `u64 raft_index | digest [32] | u64 total | u64 offset | u32 len | len bytes`.
impl Encode for CheckpointChunk {
    fn encode(&self, out: &mut Vec<u8>) {
        self.raft_index.encode(out);
        self.digest.encode(out);
        self.total_bytes.encode(out);
        self.offset.encode(out);
        put_len(out, self.bytes.len());
        out.extend_from_slice(&self.bytes);
    }
}

impl Decode for CheckpointChunk {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let raft_index = RaftIndex::decode(r)?;
        let digest = Digest::decode(r)?;
        let total_bytes = r.u64()?;
        let offset = r.u64()?;
        let at = r.position();
        let bytes = r.byte_string()?.to_vec();
        let end = u64::try_from(bytes.len()).ok().and_then(|len| offset.checked_add(len));
        if bytes.len() > CHECKPOINT_CHUNK_BYTES_MAX as usize || end.is_none_or(|e| e > total_bytes)
        {
            return Err(DecodeError::InvalidValue { offset: at, what: "checkpoint chunk" });
        }
        Ok(Self { raft_index, digest, total_bytes, offset, bytes })
    }
}

/// `u32 n | n × (u32 len | len bytes)`, each an event as the event log stores it
/// (`Event::to_bytes`).
impl Encode for FactsChunk {
    fn encode(&self, out: &mut Vec<u8>) {
        put_len(out, self.events.len());
        for event in &self.events {
            let bytes = event.to_bytes();
            put_len(out, bytes.len());
            out.extend_from_slice(&bytes);
        }
    }
}

impl Decode for FactsChunk {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let offset = r.position();
        // An encoded event is far longer than its 4-byte length prefix.
        let count = r.count(4)?;
        let mut events = Vec::with_capacity(count);
        let mut total = 0usize;
        for _ in 0..count {
            let bytes = r.byte_string()?;
            total = total.saturating_add(bytes.len());
            events.push(Event::from_bytes(bytes)?);
        }
        // One event alone may exceed the bound (a block naming very many transactions): a
        // chunk always carries at least one, or the range could never be served.
        if total > FACTS_CHUNK_BYTES_MAX && count > 1 {
            return Err(DecodeError::InvalidValue { offset, what: "facts chunk" });
        }
        Ok(Self { events })
    }
}

/// `u64 applied | digest [32]`.
impl Encode for MempoolRootReply {
    fn encode(&self, out: &mut Vec<u8>) {
        self.applied.encode(out);
        self.digest.encode(out);
    }
}

impl Decode for MempoolRootReply {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self { applied: RaftIndex::decode(r)?, digest: Digest::decode(r)? })
    }
}

const REPLY_STATUS: u8 = 1;
const REPLY_DONE: u8 = 2;
const REPLY_STATE_ROOT: u8 = 3;
const REPLY_CHECKPOINT: u8 = 4;
const REPLY_MEMPOOL_ROOT: u8 = 5;
const REPLY_READ_INDEX: u8 = 6;
const REPLY_MEMPOOL_SNAPSHOT: u8 = 7;
const REPLY_FACTS: u8 = 8;

impl Encode for AdminReply {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Status(status) => {
                out.push(REPLY_STATUS);
                status.encode(out);
            }
            Self::Done { log_index } => {
                out.push(REPLY_DONE);
                log_index.encode(out);
            }
            Self::StateRoot(root) => {
                out.push(REPLY_STATE_ROOT);
                root.encode(out);
            }
            Self::Checkpoint(chunk) => {
                out.push(REPLY_CHECKPOINT);
                chunk.encode(out);
            }
            Self::MempoolRoot(root) => {
                out.push(REPLY_MEMPOOL_ROOT);
                root.encode(out);
            }
            Self::ReadIndex { index } => {
                out.push(REPLY_READ_INDEX);
                index.encode(out);
            }
            Self::MempoolSnapshot(chunk) => {
                out.push(REPLY_MEMPOOL_SNAPSHOT);
                chunk.encode(out);
            }
            Self::Facts(chunk) => {
                out.push(REPLY_FACTS);
                chunk.encode(out);
            }
        }
    }
}

impl Decode for AdminReply {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let offset = r.position();
        Ok(match r.u8()? {
            REPLY_STATUS => Self::Status(ClusterStatus::decode(r)?),
            REPLY_DONE => Self::Done { log_index: Option::decode(r)? },
            REPLY_STATE_ROOT => Self::StateRoot(Option::decode(r)?),
            REPLY_CHECKPOINT => Self::Checkpoint(Option::decode(r)?),
            REPLY_MEMPOOL_ROOT => Self::MempoolRoot(Option::decode(r)?),
            REPLY_READ_INDEX => Self::ReadIndex { index: RaftIndex::decode(r)? },
            REPLY_MEMPOOL_SNAPSHOT => Self::MempoolSnapshot(Option::decode(r)?),
            REPLY_FACTS => Self::Facts(Option::decode(r)?),
            tag => return Err(DecodeError::UnknownTag { offset, what: "admin reply", tag }),
        })
    }
}

impl Encode for ClusterStatus {
    fn encode(&self, out: &mut Vec<u8>) {
        self.node.encode(out);
        out.push(self.role.code());
        self.leader.encode(out);
        self.term.encode(out);
        self.last_log_index.encode(out);
        self.committed.encode(out);
        self.applied.encode(out);
        put_ids(&self.voters, out);
        put_len(out, self.members.len());
        for (id, node) in &self.members {
            id.encode(out);
            node.encode(out);
        }
        put_len(out, self.replication.len());
        for lag in &self.replication {
            lag.encode(out);
        }
    }
}

impl Decode for ClusterStatus {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let node = NodeId::decode(r)?;
        let offset = r.position();
        let role = match r.u8()? {
            1 => NodeRole::Leader,
            2 => NodeRole::Follower,
            3 => NodeRole::Candidate,
            4 => NodeRole::Learner,
            5 => NodeRole::Shutdown,
            tag => return Err(DecodeError::UnknownTag { offset, what: "node role", tag }),
        };
        let leader = Option::decode(r)?;
        let term = r.u64()?;
        let last_log_index = Option::decode(r)?;
        let committed = Option::decode(r)?;
        let applied = Option::decode(r)?;
        let voters = read_ids(r)?;
        let offset = r.position();
        let count = r.count(8 + 8)?;
        let mut members = BTreeMap::new();
        for _ in 0..count {
            let id = NodeId::decode(r)?;
            if members.last_key_value().is_some_and(|(last, _)| *last >= id) {
                return Err(DecodeError::InvalidValue { offset, what: "member ids" });
            }
            members.insert(id, ClusterNode::decode(r)?);
        }
        let offset = r.position();
        // An id and three absent options at the least.
        let count = r.count(8 + 3)?;
        let mut replication: Vec<LearnerLag> = Vec::with_capacity(count);
        for _ in 0..count {
            let lag = LearnerLag::decode(r)?;
            if replication.last().is_some_and(|last| last.id >= lag.id) {
                return Err(DecodeError::InvalidValue { offset, what: "replication ids" });
            }
            replication.push(lag);
        }
        Ok(Self {
            node,
            role,
            leader,
            term,
            last_log_index,
            committed,
            applied,
            voters,
            members,
            replication,
        })
    }
}

#[cfg(test)]
mod tests {
    use mempulse_primitives::{decode_exact, encode_to_vec};

    use super::*;

    fn status() -> ClusterStatus {
        ClusterStatus {
            node: NodeId(2),
            role: NodeRole::Follower,
            leader: Some(NodeId(1)),
            term: 7,
            last_log_index: Some(40),
            committed: Some(39),
            applied: None,
            voters: BTreeSet::from([NodeId(1), NodeId(2)]),
            members: BTreeMap::from([
                (NodeId(1), ClusterNode::new("a:1", "a:2")),
                (NodeId(2), ClusterNode::new("b:1", "b:2")),
                (NodeId(5), ClusterNode::new("c:1", "")),
            ]),
            replication: vec![
                LearnerLag {
                    id: NodeId(1),
                    matched: Some(40),
                    target: Some(40),
                    ack_age_ms: Some(3),
                },
                LearnerLag { id: NodeId(5), matched: None, target: Some(40), ack_age_ms: None },
            ],
        }
    }

    #[test]
    fn round_trips_and_truncations_fail() {
        let requests = [
            AdminRequest::Status,
            AdminRequest::AddLearner {
                id: NodeId(4),
                node: ClusterNode::new("d:1", "d:2"),
                catch_up_timeout: Duration::from_millis(2500),
            },
            AdminRequest::Promote {
                ids: BTreeSet::from([NodeId(4), NodeId(6)]),
                timeout: Duration::from_millis(9),
            },
            AdminRequest::Remove { id: NodeId(3) },
            AdminRequest::TransferLeader { to: NodeId(2) },
            AdminRequest::StateRoot { index: None },
            AdminRequest::StateRoot { index: Some(RaftIndex(17)) },
            AdminRequest::Checkpoint { at: None, offset: 0 },
            AdminRequest::Checkpoint { at: Some(RaftIndex(9)), offset: 1 << 20 },
            AdminRequest::MempoolRoot,
            AdminRequest::ReadIndex,
            AdminRequest::MempoolSnapshot { at: None, offset: 0 },
            AdminRequest::MempoolSnapshot { at: Some(RaftIndex(3)), offset: 9 },
            AdminRequest::Facts { after: RaftIndex(4), skip: 2, through: RaftIndex(90) },
        ];
        for request in requests {
            let bytes = encode_to_vec(&request);
            assert_eq!(decode_exact::<AdminRequest>(&bytes), Ok(request.clone()));
            for len in 0..bytes.len() {
                assert!(decode_exact::<AdminRequest>(&bytes[..len]).is_err());
            }
        }
        let root = StateRootReply { raft_index: RaftIndex(16), digest: Digest([7; 32]) };
        let replies = [
            AdminReply::Status(status()),
            AdminReply::Done { log_index: Some(9) },
            AdminReply::StateRoot(Some(root)),
            AdminReply::StateRoot(None),
            AdminReply::Checkpoint(Some(chunk())),
            AdminReply::Checkpoint(None),
            AdminReply::MempoolRoot(Some(MempoolRootReply {
                applied: RaftIndex(5),
                digest: Digest([3; 32]),
            })),
            AdminReply::MempoolRoot(None),
            AdminReply::ReadIndex { index: RaftIndex(42) },
            AdminReply::MempoolSnapshot(Some(chunk())),
            AdminReply::MempoolSnapshot(None),
            AdminReply::Facts(Some(facts())),
            AdminReply::Facts(Some(FactsChunk { events: Vec::new() })),
            AdminReply::Facts(None),
        ];
        for reply in replies {
            let bytes = encode_to_vec(&reply);
            assert_eq!(decode_exact::<AdminReply>(&bytes), Ok(reply.clone()));
            for len in 0..bytes.len() {
                assert!(decode_exact::<AdminReply>(&bytes[..len]).is_err());
            }
        }
        assert_eq!(status().learners(), BTreeSet::from([NodeId(5)]));
    }

    fn facts() -> FactsChunk {
        let event = |index: u64, height: u64| Event {
            observed_at: mempulse_primitives::UnixMillis(1_700_000_000_000 + index),
            source: mempulse_primitives::Source::Mempool,
            origin: mempulse_primitives::Origin::Replicated { raft_index: RaftIndex(index) },
            kind: mempulse_primitives::EventKind::BlockCommitted {
                height: mempulse_primitives::Height(height),
                txs: vec![mempulse_primitives::TxHash([9; 32])],
            },
        };
        FactsChunk { events: vec![event(4, 1), event(5, 2)] }
    }

    #[test]
    fn facts_chunks_past_the_byte_bound_or_holding_a_non_event_are_refused() {
        let one = facts().events.swap_remove(0);
        let len = one.to_bytes().len();
        let over = FactsChunk { events: vec![one.clone(); FACTS_CHUNK_BYTES_MAX / len + 1] };
        assert!(matches!(
            decode_exact::<FactsChunk>(&encode_to_vec(&over)),
            Err(DecodeError::InvalidValue { what: "facts chunk", .. })
        ));
        // A single event past the bound travels alone.
        let kind = mempulse_primitives::EventKind::BlockCommitted {
            height: mempulse_primitives::Height(1),
            txs: vec![mempulse_primitives::TxHash([1; 32]); FACTS_CHUNK_BYTES_MAX / 32 + 1],
        };
        let big = FactsChunk { events: vec![Event { kind, ..one }] };
        assert_eq!(decode_exact::<FactsChunk>(&encode_to_vec(&big)), Ok(big.clone()));
        let two = FactsChunk { events: vec![big.events[0].clone(), one] };
        assert!(decode_exact::<FactsChunk>(&encode_to_vec(&two)).is_err());
        let mut not_an_event = Vec::new();
        put_len(&mut not_an_event, 1);
        put_len(&mut not_an_event, 3);
        not_an_event.extend_from_slice(&[0xff, 0xff, 0xff]);
        assert!(decode_exact::<FactsChunk>(&not_an_event).is_err());
    }

    fn chunk() -> CheckpointChunk {
        CheckpointChunk {
            raft_index: RaftIndex(12),
            digest: Digest([4; 32]),
            total_bytes: 10,
            offset: 4,
            bytes: vec![1, 2, 3],
        }
    }

    #[test]
    fn chunks_past_their_checkpoint_or_too_large_are_refused() {
        let past = CheckpointChunk { offset: 8, ..chunk() };
        let huge = CheckpointChunk {
            total_bytes: u64::MAX,
            offset: 0,
            bytes: vec![0; CHECKPOINT_CHUNK_BYTES_MAX as usize + 1],
            ..chunk()
        };
        let wrapping = CheckpointChunk { total_bytes: u64::MAX, offset: u64::MAX, ..chunk() };
        for bad in [past, huge, wrapping] {
            let bytes = encode_to_vec(&AdminReply::Checkpoint(Some(bad)));
            assert!(matches!(
                decode_exact::<AdminReply>(&bytes),
                Err(DecodeError::InvalidValue { what: "checkpoint chunk", .. })
            ));
        }
        let end = CheckpointChunk { offset: 7, ..chunk() };
        assert_eq!(decode_exact::<CheckpointChunk>(&encode_to_vec(&end)), Ok(end));
    }

    #[test]
    fn replica_queries_are_answered_locally_from_the_source() {
        struct Source;
        impl StateRootSource for Source {
            fn state_root(&self, index: Option<RaftIndex>) -> Option<StateRootReply> {
                index.map(|raft_index| StateRootReply { raft_index, digest: Digest([1; 32]) })
            }
        }
        let ask = |r: AdminRequest| (r.is_local(), answer_from(&Source, &r));
        let root = StateRootReply { raft_index: RaftIndex(3), digest: Digest([1; 32]) };
        assert_eq!(
            ask(AdminRequest::StateRoot { index: Some(RaftIndex(3)) }),
            (true, Some(AdminReply::StateRoot(Some(root))))
        );
        // The defaults serve no checkpoint and no mempool root (an older source).
        assert_eq!(
            ask(AdminRequest::Checkpoint { at: None, offset: 0 }),
            (true, Some(AdminReply::Checkpoint(None)))
        );
        assert_eq!(ask(AdminRequest::MempoolRoot), (true, Some(AdminReply::MempoolRoot(None))));
        assert_eq!(
            ask(AdminRequest::MempoolSnapshot { at: None, offset: 0 }),
            (true, Some(AdminReply::MempoolSnapshot(None)))
        );
        assert_eq!(
            ask(AdminRequest::Facts { after: RaftIndex(1), skip: 0, through: RaftIndex(2) }),
            (true, Some(AdminReply::Facts(None)))
        );
        assert_eq!(ask(AdminRequest::Status), (true, None));
        assert_eq!(ask(AdminRequest::Remove { id: NodeId(1) }), (false, None));
        assert_eq!(ask(AdminRequest::ReadIndex), (false, None));
    }

    #[test]
    fn unsorted_ids_are_refused() {
        let mut bytes = vec![REQ_PROMOTE];
        put_len(&mut bytes, 2);
        NodeId(2).encode(&mut bytes);
        NodeId(1).encode(&mut bytes);
        assert!(matches!(
            decode_exact::<AdminRequest>(&bytes),
            Err(DecodeError::InvalidValue { what: "node ids", .. })
        ));
    }
}
