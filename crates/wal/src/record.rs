//! Values handed to callers: a range of seqs and an owned record.

use mempulse_primitives::Seq;

/// An inclusive range of seqs assigned to one appended batch. Empty when `last < first`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SeqRange {
    /// Seq of the first record.
    pub first: Seq,
    /// Seq of the last record.
    pub last: Seq,
}

impl SeqRange {
    /// The empty range positioned before `next`.
    #[must_use]
    pub const fn empty_at(next: Seq) -> Self {
        Self { first: next, last: Seq(next.0.saturating_sub(1)) }
    }

    /// Number of seqs in the range.
    #[must_use]
    pub const fn len(&self) -> u64 {
        (self.last.0 + 1).saturating_sub(self.first.0)
    }

    /// True when the range holds no seq.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.last.0 < self.first.0
    }

    /// Whether `seq` lies in the range.
    #[must_use]
    pub const fn contains(&self, seq: Seq) -> bool {
        self.first.0 <= seq.0 && seq.0 <= self.last.0
    }
}

/// One record read back from the log.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Record {
    /// Its position in the log.
    pub seq: Seq,
    /// The opaque bytes appended.
    pub payload: Vec<u8>,
}
