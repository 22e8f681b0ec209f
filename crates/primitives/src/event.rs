//! The event schema: one typed variant for every fact the node saw or derived.
//!
//! An [`Event`] is what a producer hands to the sequencer; the sequencer assigns its [`Seq`] and
//! the pair is a [`SequencedEvent`]. The seq lives in the WAL frame (covered by its checksum), not
//! in the event payload, because the producer cannot know it before the single writer assigns it.

use crate::{
    Address, Digest, DropReason, EvictReason, FenceReason, Height, Lane, NodeId, Nonce, RaftIndex,
    RejectReason, Seq, Subpool, Tx, TxHash, UnixMillis, ValidatorId,
};

/// Where a fact came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Source {
    /// An ingest lane of this node.
    Lane(Lane),
    /// A peer node (stream lane, gossip, Raft).
    Peer(NodeId),
    /// The mempool state machine (derived facts).
    Mempool,
    /// The cluster layer (leadership, membership).
    Cluster,
    /// The replay and checkpoint engine, or state-root comparison.
    Replay,
    /// An operator or external chain adapter (HTTP block commit, reorg, fence).
    Operator,
}

impl Source {
    /// Stable name of the source kind (metric label, API).
    #[must_use]
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::Lane(_) => "lane",
            Self::Peer(_) => "peer",
            Self::Mempool => "mempool",
            Self::Cluster => "cluster",
            Self::Replay => "replay",
            Self::Operator => "operator",
        }
    }
}

/// Whether a fact is part of the replicated state (and of its digest) or a local observation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Origin {
    /// Derived from the Raft log entry at this index: identical on every replica.
    Replicated {
        /// Index of the Raft entry whose application produced the fact.
        raft_index: RaftIndex,
    },
    /// Seen by this node only (drops, peer churn, receipt timing).
    Local,
}

impl Origin {
    /// The Raft index of a replicated fact, `None` for a local one.
    #[must_use]
    pub const fn raft_index(&self) -> Option<RaftIndex> {
        match *self {
            Self::Replicated { raft_index } => Some(raft_index),
            Self::Local => None,
        }
    }
}

/// A fact, before the sequencer assigns its seq.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// When this node observed the fact. For analysis only: never used for ordering.
    pub observed_at: UnixMillis,
    /// Who produced the fact.
    pub source: Source,
    /// Replicated (with its Raft index) or local.
    pub origin: Origin,
    /// The fact itself.
    pub kind: EventKind,
}

impl Event {
    /// Whether the fact is part of the replicated state (and so of the state digest): identical
    /// on every replica of the cluster.
    #[must_use]
    pub const fn is_replicated(&self) -> bool {
        matches!(self.origin, Origin::Replicated { .. })
    }
}

/// An event with the seq the single writer assigned to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SequencedEvent {
    /// Position in the canonical event log.
    pub seq: Seq,
    /// The event.
    pub event: Event,
}

/// Every fact the design names. Adding a variant is a format change: give it a new code in the
/// codec, a golden vector, and handle it everywhere (no wildcard arms over this enum).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventKind {
    /// A lane decoded and checked a transaction and queued it for the pool.
    TxReceived {
        /// The transaction.
        tx: Tx,
        /// The lane it arrived on.
        lane: Lane,
    },
    /// The pool admitted a transaction.
    TxAdmitted {
        /// The transaction, in full, so the replicated event stream alone rebuilds the pool.
        tx: Tx,
        /// Pending or queued.
        subpool: Subpool,
    },
    /// The pool rejected a transaction.
    TxRejected {
        /// The rejected transaction.
        hash: TxHash,
        /// Why.
        reason: RejectReason,
    },
    /// A transaction replaced another of the same sender and nonce.
    TxReplaced {
        /// The transaction that left the pool.
        old: TxHash,
        /// The transaction that took its place.
        new: TxHash,
        /// Shared sender.
        sender: Address,
        /// Shared nonce.
        nonce: Nonce,
    },
    /// A lane dropped a transaction before the pool saw it.
    TxDropped {
        /// The transaction, when it decoded far enough to have a hash.
        hash: Option<TxHash>,
        /// Why.
        reason: DropReason,
        /// The lane that dropped it.
        lane: Lane,
        /// Depth of the lane's queue at the drop.
        depth_current: u32,
        /// Highest depth the queue has reached.
        depth_peak: u32,
    },
    /// A transaction left the pool without being included.
    TxEvicted {
        /// The transaction.
        hash: TxHash,
        /// Why.
        reason: EvictReason,
    },
    /// A queued transaction became pending because its nonce gap closed.
    TxPromoted {
        /// The transaction.
        hash: TxHash,
    },
    /// A transaction was included in a committed block.
    TxIncluded {
        /// The transaction.
        hash: TxHash,
        /// Height of the block.
        height: Height,
    },
    /// A transaction from an orphaned block went back into the pool.
    TxReopened {
        /// The transaction.
        hash: TxHash,
        /// Height of the orphaned block it came from.
        orphaned_height: Height,
    },
    /// This node's cluster built a block proposal.
    BlockProposed {
        /// Height proposed.
        height: Height,
        /// Proposing validator.
        proposer: ValidatorId,
        /// Transactions in block order.
        txs: Vec<TxHash>,
        /// Sum of encoded sizes.
        total_bytes: u64,
        /// Sum of gas limits.
        total_gas: u64,
    },
    /// A block was committed.
    BlockCommitted {
        /// Committed height.
        height: Height,
        /// Included transactions in block order.
        txs: Vec<TxHash>,
    },
    /// A reorg orphaned blocks above a fork point.
    ReorgDetected {
        /// Highest height still on the canonical chain.
        fork_height: Height,
        /// Heights orphaned, ascending.
        orphaned: Vec<Height>,
    },
    /// The Raft leader of this node's cluster changed.
    LeaderChanged {
        /// New term.
        term: u64,
        /// New leader, if one is known.
        leader: Option<NodeId>,
    },
    /// The proposer schedule moved to a new proposer.
    ProposerChanged {
        /// Height of the slot.
        height: Height,
        /// Validator proposing it.
        proposer: ValidatorId,
    },
    /// A checkpoint of derived state was written.
    CheckpointTaken {
        /// Last event seq covered.
        seq: Seq,
        /// Last Raft index covered.
        raft_index: RaftIndex,
        /// Digest of the state at that point.
        digest: Digest,
    },
    /// A peer's state root disagreed with ours.
    DivergenceDetected {
        /// The peer.
        peer: NodeId,
        /// Raft index compared.
        index: RaftIndex,
        /// Our root.
        ours: Digest,
        /// Their root.
        theirs: Digest,
    },
    /// This node fenced itself: the API answers 503 and writes stop.
    Fenced {
        /// Why.
        reason: FenceReason,
        /// First divergent index when known.
        index: Option<RaftIndex>,
    },
    /// This node reconciled and lifted its fence.
    Unfenced {
        /// Raft index of the verified state.
        index: RaftIndex,
        /// The verified root.
        root: Digest,
    },
}

impl EventKind {
    /// Stable name of the kind (API filters, ClickHouse column, metric label).
    #[must_use]
    pub const fn as_str(&self) -> &'static str {
        self.code().as_str()
    }

    /// The transaction this fact is about, for the per-transaction lifecycle index.
    ///
    /// For [`EventKind::TxReplaced`] it is `old`, the transaction whose life the fact ends (the
    /// replacement has its own [`EventKind::TxAdmitted`]). For a [`EventKind::TxDropped`] that
    /// never decoded far enough to have a hash, and for block, cluster and replay facts (which
    /// are about many transactions or none), it is `None`.
    #[must_use]
    pub const fn tx_hash(&self) -> Option<TxHash> {
        match self {
            Self::TxReceived { tx, .. } | Self::TxAdmitted { tx, .. } => Some(tx.hash),
            Self::TxRejected { hash, .. }
            | Self::TxEvicted { hash, .. }
            | Self::TxPromoted { hash }
            | Self::TxIncluded { hash, .. }
            | Self::TxReopened { hash, .. } => Some(*hash),
            Self::TxReplaced { old, .. } => Some(*old),
            Self::TxDropped { hash, .. } => *hash,
            Self::BlockProposed { .. }
            | Self::BlockCommitted { .. }
            | Self::ReorgDetected { .. }
            | Self::LeaderChanged { .. }
            | Self::ProposerChanged { .. }
            | Self::CheckpointTaken { .. }
            | Self::DivergenceDetected { .. }
            | Self::Fenced { .. }
            | Self::Unfenced { .. } => None,
        }
    }

    /// The kind's stable code, without its payload.
    #[must_use]
    pub const fn code(&self) -> KindCode {
        match self {
            Self::TxReceived { .. } => KindCode::TxReceived,
            Self::TxAdmitted { .. } => KindCode::TxAdmitted,
            Self::TxRejected { .. } => KindCode::TxRejected,
            Self::TxReplaced { .. } => KindCode::TxReplaced,
            Self::TxDropped { .. } => KindCode::TxDropped,
            Self::TxEvicted { .. } => KindCode::TxEvicted,
            Self::TxPromoted { .. } => KindCode::TxPromoted,
            Self::TxIncluded { .. } => KindCode::TxIncluded,
            Self::TxReopened { .. } => KindCode::TxReopened,
            Self::BlockProposed { .. } => KindCode::BlockProposed,
            Self::BlockCommitted { .. } => KindCode::BlockCommitted,
            Self::ReorgDetected { .. } => KindCode::ReorgDetected,
            Self::LeaderChanged { .. } => KindCode::LeaderChanged,
            Self::ProposerChanged { .. } => KindCode::ProposerChanged,
            Self::CheckpointTaken { .. } => KindCode::CheckpointTaken,
            Self::DivergenceDetected { .. } => KindCode::DivergenceDetected,
            Self::Fenced { .. } => KindCode::Fenced,
            Self::Unfenced { .. } => KindCode::Unfenced,
        }
    }
}

crate::reason::coded_enum!(
    /// The payload-free code of an [`EventKind`]: its wire tag and its stable name.
    KindCode {
        /// [`EventKind::TxReceived`].
        TxReceived = 1 => "tx_received",
        /// [`EventKind::TxAdmitted`].
        TxAdmitted = 2 => "tx_admitted",
        /// [`EventKind::TxRejected`].
        TxRejected = 3 => "tx_rejected",
        /// [`EventKind::TxReplaced`].
        TxReplaced = 4 => "tx_replaced",
        /// [`EventKind::TxDropped`].
        TxDropped = 5 => "tx_dropped",
        /// [`EventKind::TxEvicted`].
        TxEvicted = 6 => "tx_evicted",
        /// [`EventKind::TxPromoted`].
        TxPromoted = 7 => "tx_promoted",
        /// [`EventKind::TxIncluded`].
        TxIncluded = 8 => "tx_included",
        /// [`EventKind::TxReopened`].
        TxReopened = 9 => "tx_reopened",
        /// [`EventKind::BlockProposed`].
        BlockProposed = 10 => "block_proposed",
        /// [`EventKind::BlockCommitted`].
        BlockCommitted = 11 => "block_committed",
        /// [`EventKind::ReorgDetected`].
        ReorgDetected = 12 => "reorg_detected",
        /// [`EventKind::LeaderChanged`].
        LeaderChanged = 13 => "leader_changed",
        /// [`EventKind::ProposerChanged`].
        ProposerChanged = 14 => "proposer_changed",
        /// [`EventKind::CheckpointTaken`].
        CheckpointTaken = 15 => "checkpoint_taken",
        /// [`EventKind::DivergenceDetected`].
        DivergenceDetected = 16 => "divergence_detected",
        /// [`EventKind::Fenced`].
        Fenced = 17 => "fenced",
        /// [`EventKind::Unfenced`].
        Unfenced = 18 => "unfenced",
    }
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Address, FenceReason};

    #[test]
    fn tx_hash_names_the_fact_subject() {
        let h = TxHash([1; 32]);
        let old = TxHash([2; 32]);
        let replaced =
            EventKind::TxReplaced { old, new: h, sender: Address([0; 20]), nonce: Nonce(1) };
        assert_eq!(replaced.tx_hash(), Some(old));
        assert_eq!(EventKind::TxPromoted { hash: h }.tx_hash(), Some(h));
        let dropped = EventKind::TxDropped {
            hash: None,
            reason: DropReason::DecodeFailed,
            lane: Lane::Rpc,
            depth_current: 0,
            depth_peak: 0,
        };
        assert_eq!(dropped.tx_hash(), None);
        let committed = EventKind::BlockCommitted { height: Height(1), txs: vec![h] };
        assert_eq!(committed.tx_hash(), None);
    }

    #[test]
    fn is_replicated_follows_origin() {
        let mut e = Event {
            observed_at: UnixMillis(0),
            source: Source::Operator,
            origin: Origin::Local,
            kind: EventKind::Fenced { reason: FenceReason::Operator, index: None },
        };
        assert!(!e.is_replicated());
        assert_eq!(e.origin.raft_index(), None);
        e.origin = Origin::Replicated { raft_index: RaftIndex(4) };
        assert!(e.is_replicated());
        assert_eq!(e.origin.raft_index(), Some(RaftIndex(4)));
    }
}
