//! Digest values handed to callers.
//!
//! The digest of the replicated state is SHA-256 over a fixed header (rule version, Raft index,
//! height, counts) and the running commitment (`commitment.rs`); see
//! `docs/design/replay.md` for the byte layout. It is a function of the replicated events only,
//! so every replica of a cluster computes the same value *through* a given Raft index.

use mempulse_primitives::{Digest, RaftIndex, Seq};

/// The digest of the replicated state through one Raft index: every replicated fact with that
/// index or a lower one applied, none with a higher one. Comparable across replicas.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IndexedDigest {
    /// The Raft index (`0`: before any replicated fact).
    pub raft_index: RaftIndex,
    /// Seq, in this node's log, of the last fact with that index (`0`: none). Local events
    /// shift seqs, so replicas differ here; it says where to replay to on this node.
    pub seq: Seq,
    /// The digest.
    pub digest: Digest,
}

/// A digest point: after the event at `seq` (a multiple of `digest_every_events`), the digest
/// of the replicated state through the last complete Raft index.
///
/// The entry being applied at `seq` may have more facts still to come, so the point reports the
/// last index known complete (the one before it), never a half-applied one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DigestPoint {
    /// Seq of the event after which the point was taken.
    pub seq: Seq,
    /// Events applied from the start of the log through `seq`.
    pub events: u64,
    /// Last complete Raft index (`0`: none yet).
    pub raft_index: RaftIndex,
    /// Digest of the replicated state through `raft_index`.
    pub digest: Digest,
}
