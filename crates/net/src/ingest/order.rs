//! The order thread: takes decode results in arrival order, records their facts, answers the
//! failures and hands the decoded transactions on to the admission task.

use std::{sync::Arc, thread::JoinHandle, time::Instant};

use mempulse_primitives::{Event, EventKind, Lane, Tx, TxHash, UnixMillis};
use tokio::sync::{mpsc, oneshot};

use super::{Shared, SourceId, TxOutcome};
use crate::{AdmissionError, Completed, Completions, Error, Result, Verdict};

/// What travels with a transaction through the decode pool.
#[derive(Debug)]
pub(crate) struct Ticket {
    pub(crate) lane: Lane,
    pub(crate) source: SourceId,
    /// Arrival time (clock), recorded in the facts.
    pub(crate) at: UnixMillis,
    /// Submit instant, for the decode latency metric only.
    pub(crate) started: Instant,
    /// Keccak-256 of the raw bytes: the dedup key (the transaction hash when it decodes).
    pub(crate) hash: TxHash,
    pub(crate) reply: oneshot::Sender<TxOutcome>,
}

/// A decoded transaction on its way to the admission.
#[derive(Debug)]
pub(crate) struct Decoded {
    pub(crate) tx: Tx,
    pub(crate) lane: Lane,
    pub(crate) reply: oneshot::Sender<TxOutcome>,
}

pub(crate) fn spawn(
    completions: Completions<Ticket>,
    shared: Arc<Shared>,
    items: mpsc::Sender<Decoded>,
) -> Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("mempulse-ingest-order".to_owned())
        .spawn(move || run(completions, &shared, &items))
        .map_err(|err| Error::Spawn { index: 0, kind: err.kind() })
}

/// Until the pool is drained and closed: take every result that is ready (at most one batch's
/// worth), write their facts as one sequencer batch, then pass the decoded ones on (waiting for
/// room: back-pressure reaches the lanes through the pool).
fn run(mut completions: Completions<Ticket>, shared: &Shared, items: &mpsc::Sender<Decoded>) {
    let run_max = shared.config.batch_txs_max;
    let mut facts = Vec::with_capacity(run_max);
    let mut decoded = Vec::with_capacity(run_max);
    while let Some(first) = completions.recv() {
        let mut taken = 1;
        take(first, shared, &mut facts, &mut decoded);
        while taken < run_max {
            let Some(next) = completions.try_recv() else { break };
            take(next, shared, &mut facts, &mut decoded);
            taken += 1;
        }
        shared.facts.write(&facts, &shared.metrics);
        facts.clear();
        for item in decoded.drain(..) {
            if let Err(mpsc::error::SendError(item)) = items.blocking_send(item) {
                // The admission task is gone (a shutdown gave up waiting).
                shared.forget(&item.tx.hash);
                let _ = item.reply.send(TxOutcome::Unavailable(AdmissionError::ShuttingDown));
            }
        }
    }
}

fn take(
    completed: Completed<Ticket>,
    shared: &Shared,
    facts: &mut Vec<Event>,
    decoded: &mut Vec<Decoded>,
) {
    let Completed { tag: ticket, result, .. } = completed;
    shared.metrics.decode_latency.record(ticket.started.elapsed().as_secs_f64());
    let lane = ticket.lane;
    let depth = shared.lanes.release(lane);
    shared.metrics.lane_depth(lane, depth);
    match result {
        Ok(tx) => {
            let kind = EventKind::TxReceived { tx: tx.clone(), lane };
            facts.push(Shared::event(ticket.at, lane, ticket.source, kind));
            decoded.push(Decoded { tx, lane, reply: ticket.reply });
        }
        Err(error) => {
            // The dedup key is the keccak of the bytes, known even when they did not decode.
            shared.forget(&ticket.hash);
            let kind = error.to_event_kind(lane, shared.lanes.depth(lane));
            facts.push(Shared::event(ticket.at, lane, ticket.source, kind));
            match error.verdict() {
                Verdict::Drop(reason) => shared.metrics.dropped(lane, reason),
                Verdict::Reject(reason) => shared.metrics.rejected(reason),
            }
            let _ = ticket.reply.send(TxOutcome::Invalid(error));
        }
    }
}
