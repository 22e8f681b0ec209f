//! The boundary to the cluster: [`Admission`] takes ordered batches of checked transactions and
//! answers, per transaction, what the pool decided. Net relays these verdicts; it never decides
//! admission itself.

use core::fmt;

use futures_util::future::BoxFuture;
use mempulse_primitives::{RejectReason, Subpool, Tx, TxHash};

/// What [`Admission::admit`] resolves to: one verdict per transaction, in batch order, or a
/// failure of the whole batch.
pub type AdmissionFuture = BoxFuture<'static, Result<Vec<PoolVerdict>, AdmissionError>>;

/// Hands checked transactions to the pool (the node implements it on top of the Raft cluster).
///
/// # Contract
/// - Batches arrive in ingest order: `admit` is called, and each returned future first polled,
///   in that order, from one task. An implementation that takes its place in line by the first
///   poll (a bounded queue push, a Raft write) keeps the order into the cluster, even with
///   several batches in flight.
/// - A batch never holds two transactions with the same hash (the dedup cache sees to it), so a
///   verdict can be matched to its transaction by hash as well as by position.
/// - On success the vector has exactly one verdict per transaction, in batch order; a vector of
///   another length fails the batch with [`AdmissionError::VerdictCountMismatch`].
/// - The future is dropped when it exceeds the ingest's admission timeout or when a bounded
///   shutdown gives up; the transactions' outcome is then unknown to the callers
///   ([`AdmissionError::Timeout`], [`AdmissionError::ShuttingDown`]).
pub trait Admission: Send + Sync + 'static {
    /// Submits `txs`, in order, to the pool.
    fn admit(&self, txs: Vec<Tx>) -> AdmissionFuture;
}

impl fmt::Debug for dyn Admission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("dyn Admission")
    }
}

/// The pool's decision about one transaction, as the replicated facts record it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PoolVerdict {
    /// Admitted (`TxAdmitted`).
    Admitted {
        /// Pending (buildable) or queued (behind a nonce gap).
        subpool: Subpool,
    },
    /// Admitted in place of the transaction with the same sender and nonce (`TxReplaced` then
    /// `TxAdmitted`).
    Replaced {
        /// The transaction that left the pool.
        old: TxHash,
        /// Where the new one sits.
        subpool: Subpool,
    },
    /// Refused by the pool (`TxRejected`).
    Rejected {
        /// Why.
        reason: RejectReason,
    },
}

impl PoolVerdict {
    /// Whether the transaction is in the pool now.
    #[must_use]
    pub const fn is_in_pool(&self) -> bool {
        match self {
            Self::Admitted { .. } | Self::Replaced { .. } => true,
            Self::Rejected { .. } => false,
        }
    }

    /// Whether the dedup cache keeps remembering the transaction after this verdict: yes when it
    /// is in the pool, or the pool already has or had it (`duplicate`, `already_committed`);
    /// no for any other rejection, so a resubmission (after a fee bump elsewhere, room in the
    /// pool, a nonce gap closing) is decoded and offered to the pool again.
    #[must_use]
    pub fn keeps_dedup_entry(&self) -> bool {
        match self {
            Self::Admitted { .. } | Self::Replaced { .. } => true,
            Self::Rejected { reason } => {
                matches!(reason, RejectReason::Duplicate | RejectReason::AlreadyCommitted)
            }
        }
    }

    /// Stable name of the verdict kind (metric label).
    #[must_use]
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::Admitted { .. } => "admitted",
            Self::Replaced { .. } => "replaced",
            Self::Rejected { .. } => "rejected",
        }
    }
}

/// Why a whole batch got no verdicts. The transactions' callers get
/// [`crate::TxOutcome::Unavailable`] and the dedup cache forgets them, so a retry is decoded and
/// offered again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum AdmissionError {
    /// No leader could take the batch (none elected, unreachable, no quorum). Nothing was
    /// written; retry.
    #[error("no cluster leader available")]
    NoLeader,
    /// The cluster's write queue is full. Nothing was written; retry later.
    #[error("cluster overloaded")]
    Overloaded,
    /// The batch may or may not have been committed (a leader change lost the answer).
    #[error("admission outcome unknown")]
    Indeterminate,
    /// The cluster refused the batch as a whole (too large, or the state machine refused the
    /// command): nothing was admitted.
    #[error("cluster refused the batch")]
    Refused,
    /// The node, or the ingest pipeline, is stopping.
    #[error("shutting down")]
    ShuttingDown,
    /// The admission took longer than the ingest's admission timeout; outcome unknown.
    #[error("admission timed out")]
    Timeout,
    /// The admission answered with a verdict count other than the batch size (a bug in it).
    #[error("admission answered with the wrong number of verdicts")]
    VerdictCountMismatch,
}

impl AdmissionError {
    /// Every variant, in code order.
    pub const ALL: &'static [Self] = &[
        Self::NoLeader,
        Self::Overloaded,
        Self::Indeterminate,
        Self::Refused,
        Self::ShuttingDown,
        Self::Timeout,
        Self::VerdictCountMismatch,
    ];

    /// Stable snake-case name (metric label, API error code).
    #[must_use]
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::NoLeader => "no_leader",
            Self::Overloaded => "overloaded",
            Self::Indeterminate => "indeterminate",
            Self::Refused => "refused",
            Self::ShuttingDown => "shutting_down",
            Self::Timeout => "timeout",
            Self::VerdictCountMismatch => "verdict_count_mismatch",
        }
    }

    /// Whether resubmitting the same transaction may succeed: always safe to try, since a
    /// transaction that did get in comes back as a `duplicate` rejection, never twice admitted.
    /// `false` only for shutdown and a broken admission.
    #[must_use]
    pub const fn is_retryable(&self) -> bool {
        match self {
            Self::NoLeader
            | Self::Overloaded
            | Self::Indeterminate
            | Self::Refused
            | Self::Timeout => true,
            Self::ShuttingDown | Self::VerdictCountMismatch => false,
        }
    }

    /// Position in [`AdmissionError::ALL`] (metric handle index).
    pub(crate) const fn index(self) -> usize {
        match self {
            Self::NoLeader => 0,
            Self::Overloaded => 1,
            Self::Indeterminate => 2,
            Self::Refused => 3,
            Self::ShuttingDown => 4,
            Self::Timeout => 5,
            Self::VerdictCountMismatch => 6,
        }
    }

    /// Stable wire code (in a stream's tally): its position in [`AdmissionError::ALL`] plus one.
    /// Never renumber, only add.
    #[must_use]
    pub const fn code(self) -> u8 {
        match self {
            Self::NoLeader => 1,
            Self::Overloaded => 2,
            Self::Indeterminate => 3,
            Self::Refused => 4,
            Self::ShuttingDown => 5,
            Self::Timeout => 6,
            Self::VerdictCountMismatch => 7,
        }
    }

    /// Parses a stable wire code.
    #[must_use]
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.get(usize::from(code).checked_sub(1)?).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_indexes_follow_all() {
        for (i, e) in AdmissionError::ALL.iter().enumerate() {
            assert_eq!(e.index(), i);
            assert_eq!(usize::from(e.code()), i + 1);
            assert_eq!(AdmissionError::from_code(e.code()), Some(*e));
        }
        assert_eq!(AdmissionError::from_code(0), None);
        let names: std::collections::BTreeSet<_> =
            AdmissionError::ALL.iter().map(AdmissionError::as_str).collect();
        assert_eq!(names.len(), AdmissionError::ALL.len());
    }

    #[test]
    fn only_pool_holding_verdicts_keep_the_dedup_entry() {
        let pending = Subpool::Pending;
        assert!(PoolVerdict::Admitted { subpool: pending }.keeps_dedup_entry());
        let old = TxHash([1; 32]);
        assert!(PoolVerdict::Replaced { old, subpool: pending }.keeps_dedup_entry());
        let rejected = |reason| PoolVerdict::Rejected { reason };
        assert!(rejected(RejectReason::Duplicate).keeps_dedup_entry());
        assert!(rejected(RejectReason::AlreadyCommitted).keeps_dedup_entry());
        assert!(!rejected(RejectReason::FeeTooLow).keeps_dedup_entry());
        assert!(!rejected(RejectReason::NonceTooLow).keeps_dedup_entry());
        assert!(!rejected(RejectReason::PoolFull).keeps_dedup_entry());
    }
}
