//! What a caller of [`crate::IngestHandle::submit`] names and gets back.

use core::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};
use std::net::IpAddr;

use mempulse_primitives::{DropReason, Lane, NodeId, Source, TxHash, UnixMillis};
use tokio::sync::oneshot;

use super::admission::{AdmissionError, PoolVerdict};
use crate::TxError;

/// Who submitted a transaction: the key of the per-source rate limit and the source recorded
/// with its first sighting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum SourceId {
    /// An authenticated peer node (stream lane).
    Peer(NodeId),
    /// A client address (RPC and REST lanes).
    Client(IpAddr),
    /// In-process callers without an address (tests, tools).
    Local,
}

impl SourceId {
    /// The `source` of facts about this submission: the peer for a peer, the lane otherwise.
    #[must_use]
    pub const fn to_event_source(&self, lane: Lane) -> Source {
        match self {
            Self::Peer(node) => Source::Peer(*node),
            Self::Client(_) | Self::Local => Source::Lane(lane),
        }
    }
}

/// First sighting of a transaction hash, remembered by the dedup cache for propagation timing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FirstSeen {
    /// Arrival time of the first sighting (analysis only, never used for ordering).
    pub at: UnixMillis,
    /// Who sent it first.
    pub source: SourceId,
    /// On which lane.
    pub lane: Lane,
}

/// What became of one submitted transaction, precise enough for a JSON-RPC answer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TxOutcome {
    /// Decoded, checked and handed to the pool; `verdict` is the pool's decision (which may be a
    /// rejection such as `nonce_too_low`).
    Accepted {
        /// The transaction hash.
        hash: TxHash,
        /// What the pool decided.
        verdict: PoolVerdict,
    },
    /// The bytes are not a valid transaction (a `TxRejected` or `TxDropped{decode_failed}` fact
    /// was recorded, per [`TxError::verdict`]).
    Invalid(TxError),
    /// Dropped at the lane before the pool saw it (a `TxDropped` fact was recorded).
    Dropped {
        /// Why.
        reason: DropReason,
        /// The hash, when known: for duplicates (the bytes matched a decoded transaction) and
        /// decode-stage drops; `None` for drops before decoding (queue full, oversize,
        /// throttled, shutting down), whose bytes were never checked.
        hash: Option<TxHash>,
    },
    /// Valid, but the cluster could not answer for its batch; retry per
    /// [`AdmissionError::is_retryable`].
    Unavailable(AdmissionError),
}

/// The answer to one [`crate::IngestHandle::submit`]: resolves once the transaction was dropped,
/// found invalid, or answered by the pool. Dropping it does not cancel anything.
#[derive(Debug)]
#[must_use = "the outcome tells whether the transaction reached the pool"]
pub struct Submitted {
    state: State,
}

#[derive(Debug)]
enum State {
    Ready(Option<TxOutcome>),
    Waiting(oneshot::Receiver<TxOutcome>),
}

impl Submitted {
    pub(crate) const fn ready(outcome: TxOutcome) -> Self {
        Self { state: State::Ready(Some(outcome)) }
    }

    pub(crate) const fn waiting(rx: oneshot::Receiver<TxOutcome>) -> Self {
        Self { state: State::Waiting(rx) }
    }

    /// The outcome if it is already known (a drop at the lane, or a finished transaction),
    /// without waiting; `None` while the transaction is still on its way.
    pub fn try_outcome(&mut self) -> Option<TxOutcome> {
        match &mut self.state {
            State::Ready(outcome) => outcome.take(),
            State::Waiting(rx) => match rx.try_recv() {
                Ok(outcome) => Some(outcome),
                Err(oneshot::error::TryRecvError::Empty) => None,
                Err(oneshot::error::TryRecvError::Closed) => {
                    Some(TxOutcome::Unavailable(AdmissionError::ShuttingDown))
                }
            },
        }
    }
}

impl Future for Submitted {
    type Output = TxOutcome;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<TxOutcome> {
        match &mut self.get_mut().state {
            // Polling again after completion answers as if the pipeline were gone.
            State::Ready(outcome) => Poll::Ready(
                outcome.take().unwrap_or(TxOutcome::Unavailable(AdmissionError::ShuttingDown)),
            ),
            // The sender is dropped only when a bounded shutdown abandoned the transaction.
            State::Waiting(rx) => Pin::new(rx)
                .poll(cx)
                .map(|r| r.unwrap_or(TxOutcome::Unavailable(AdmissionError::ShuttingDown))),
        }
    }
}
