//! The openraft type configuration of a mempulse cluster and the types it names.

use core::fmt;

use mempulse_mempool::Outcome;
use mempulse_primitives::{NodeId, RaftIndex};

use crate::ClusterRequest;

openraft::declare_raft_types!(
    /// The openraft type configuration of a mempulse cluster.
    ///
    /// Node ids are [`NodeId`]s, terms are `u64`, a leader id is `(term, node id)` (openraft's
    /// "advanced" leader id, which lets the log entry carry the leader's node), the replicated data
    /// is a [`ClusterRequest`] (a leader-stamped batch of commands) and applying one yields an
    /// [`ApplyResponse`].
    pub TypeConfig:
        D = ClusterRequest,
        R = ApplyResponse,
        NodeId = NodeId,
        Node = ClusterNode,
        Term = u64,
        LeaderId = openraft::impls::leader_id_adv::LeaderId<u64, NodeId>,
        Vote = openraft::impls::Vote<openraft::impls::leader_id_adv::LeaderId<u64, NodeId>>,
);

/// Any openraft type configuration with the types of a mempulse cluster (those of
/// [`TypeConfig`]), whatever its async runtime: the log store, its reader and the state machine
/// implement openraft's storage traits for every such configuration, so the same code runs on
/// tokio ([`TypeConfig`]) and on openraft's deterministic simulated runtime
/// (`SimTypeConfig`, feature `sim`).
pub trait ClusterTypeConfig:
    openraft::RaftTypeConfig<
        D = ClusterRequest,
        R = ApplyResponse,
        NodeId = NodeId,
        Node = ClusterNode,
        Term = u64,
        LeaderId = LeaderId,
        Vote = Vote,
        Payload = Payload,
        Entry = Entry,
    >
{
}

impl<C> ClusterTypeConfig for C where
    C: openraft::RaftTypeConfig<
            D = ClusterRequest,
            R = ApplyResponse,
            NodeId = NodeId,
            Node = ClusterNode,
            Term = u64,
            LeaderId = LeaderId,
            Vote = Vote,
            Payload = Payload,
            Entry = Entry,
        >
{
}

#[cfg(feature = "sim")]
openraft::declare_raft_types!(
    /// [`TypeConfig`] on openraft's deterministic simulated runtime
    /// ([`openraft_rt_sim::SimRuntime`]): one thread, FIFO scheduling, virtual time and a seeded
    /// random stream, so a seed reproduces a whole cluster run. Used by the `sim` module.
    pub SimTypeConfig:
        D = ClusterRequest,
        R = ApplyResponse,
        NodeId = NodeId,
        Node = ClusterNode,
        Term = u64,
        LeaderId = openraft::impls::leader_id_adv::LeaderId<u64, NodeId>,
        Vote = openraft::impls::Vote<openraft::impls::leader_id_adv::LeaderId<u64, NodeId>>,
        AsyncRuntime = openraft_rt_sim::SimRuntime,
);

/// A Raft log entry of a mempulse cluster.
pub type Entry = openraft::Entry<LeaderId, Payload>;
/// The payload of a log entry: blank, a [`ClusterRequest`] or a membership change.
pub type Payload = openraft::EntryPayload<ClusterRequest, NodeId, ClusterNode>;
/// Identifier of a leader: `(term, node id)`.
pub type LeaderId = openraft::impls::leader_id_adv::LeaderId<u64, NodeId>;
/// Identifier of a log entry: its leader and its index.
pub type LogId = openraft::LogId<LeaderId>;
/// A vote: the leader id voted for and whether a quorum granted it.
pub type Vote = openraft::impls::Vote<LeaderId>;
/// A cluster membership: the joint voter configs and every member node.
pub type Membership = openraft::Membership<NodeId, ClusterNode>;
/// A membership together with the id of the log entry that set it.
pub type StoredMembership = openraft::StoredMembership<LeaderId, NodeId, ClusterNode>;

/// What the cluster knows about one member node: where its peers reach its Raft endpoint and
/// where clients reach its API.
///
/// Addresses are kept as text (`host:port`) because a deployment may name hosts; they are parsed
/// and resolved by the transport, not here.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClusterNode {
    /// Address of the node-to-node Raft endpoint (`raft_addr`).
    pub raft_addr: String,
    /// Address of the node's client API (`api_addr`).
    pub api_addr: String,
}

impl ClusterNode {
    /// A node with the given Raft and API addresses.
    #[must_use]
    pub fn new(raft_addr: impl Into<String>, api_addr: impl Into<String>) -> Self {
        Self { raft_addr: raft_addr.into(), api_addr: api_addr.into() }
    }
}

impl fmt::Display for ClusterNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "raft={} api={}", self.raft_addr, self.api_addr)
    }
}

/// What applying one log entry produced: one result per command of its [`ClusterRequest`], in
/// order (none for a blank or membership entry).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApplyResponse {
    /// Raft index of the applied entry.
    pub index: RaftIndex,
    /// The mempool's outcome of each command, or the error it deterministically refused the
    /// command with (the state is then unchanged by that command on every replica).
    pub results: Vec<Result<Outcome, mempulse_mempool::Error>>,
}

impl ApplyResponse {
    /// The response of an entry that carries no command (blank or membership).
    #[must_use]
    pub const fn empty(index: RaftIndex) -> Self {
        Self { index, results: Vec::new() }
    }
}

/// What one client command produced, returned to the caller of
/// [`RaftNode::write`](crate::RaftNode::write).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterResponse {
    /// Raft index of the entry that carried the command (several callers' commands may share
    /// one entry).
    pub index: RaftIndex,
    /// The mempool's outcome (its facts and, for a block build, the proposal), or the error it
    /// deterministically refused the command with (the state is then unchanged on every
    /// replica).
    pub result: Result<Outcome, mempulse_mempool::Error>,
}

/// What a snapshot covers: the last applied log id and the membership at that point.
pub type SnapshotMeta = openraft::SnapshotMeta<LeaderId, NodeId, ClusterNode>;
/// A Raft snapshot of the mempool state machine: its metadata and its bytes.
pub type Snapshot =
    openraft::Snapshot<LeaderId, NodeId, ClusterNode, crate::state_machine::ClusterSnapshot>;
