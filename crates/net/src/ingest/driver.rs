//! The admission task: forms batches from decoded transactions and drives the admission calls,
//! in order, with a bounded number in flight.
//!
//! A batch is formed when a flight slot frees up, from everything decoded by then (up to the
//! transaction and byte bounds), so batches grow with load and a lone transaction never waits
//! for company. Every poll round polls the flights oldest first, so each new admission future is
//! first polled after all older ones; results are taken oldest first, so callers are answered in
//! batch order.

use std::{collections::VecDeque, sync::Arc, task::Poll, time::Duration};

use futures_util::future::BoxFuture;
use tokio::sync::mpsc;

use super::{Admission, AdmissionError, PoolVerdict, Shared, TxOutcome, order::Decoded};

type Answer = Result<Vec<PoolVerdict>, AdmissionError>;

struct Flight {
    batch: Vec<Decoded>,
    call: BoxFuture<'static, Answer>,
    answer: Option<Answer>,
}

impl Flight {
    fn start(batch: Vec<Decoded>, admission: &dyn Admission, timeout: Duration) -> Self {
        let txs = batch.iter().map(|item| item.tx.clone()).collect();
        let call = admission.admit(txs);
        let call = Box::pin(async move {
            tokio::time::timeout(timeout, call).await.unwrap_or(Err(AdmissionError::Timeout))
        });
        Self { batch, call, answer: None }
    }
}

enum Step {
    Batch(Vec<Decoded>),
    Landed,
    Finished,
}

/// Bounds of one batch.
#[derive(Clone, Copy)]
struct BatchBounds {
    txs: usize,
    bytes: usize,
}

/// Takes `first` and whatever else is ready, within the bounds; an item that would overflow the
/// bytes is kept in `carry` for the next batch.
fn fill(
    first: Decoded,
    items: &mut mpsc::Receiver<Decoded>,
    carry: &mut Option<Decoded>,
    bounds: BatchBounds,
) -> Vec<Decoded> {
    let mut bytes = first.tx.raw.len();
    let mut batch = vec![first];
    while batch.len() < bounds.txs {
        let Ok(next) = items.try_recv() else { break };
        let size = next.tx.raw.len();
        if bytes.saturating_add(size) > bounds.bytes {
            *carry = Some(next);
            break;
        }
        bytes += size;
        batch.push(next);
    }
    batch
}

pub(crate) async fn run(
    mut items: mpsc::Receiver<Decoded>,
    admission: Arc<dyn Admission>,
    shared: Arc<Shared>,
) {
    let config = shared.config;
    let bounds = BatchBounds { txs: config.batch_txs_max, bytes: config.batch_bytes_max };
    let mut flights: VecDeque<Flight> = VecDeque::with_capacity(config.batches_in_flight_max);
    let mut carry: Option<Decoded> = None;
    let mut open = true;
    loop {
        let step = std::future::poll_fn(|cx| {
            for flight in flights.iter_mut().filter(|f| f.answer.is_none()) {
                if let Poll::Ready(answer) = flight.call.as_mut().poll(cx) {
                    flight.answer = Some(answer);
                }
            }
            if flights.front().is_some_and(|f| f.answer.is_some()) {
                return Poll::Ready(Step::Landed);
            }
            if flights.len() < config.batches_in_flight_max {
                if let Some(first) = carry.take() {
                    return Poll::Ready(Step::Batch(fill(first, &mut items, &mut carry, bounds)));
                }
                if open {
                    match items.poll_recv(cx) {
                        Poll::Ready(Some(first)) => {
                            let batch = fill(first, &mut items, &mut carry, bounds);
                            return Poll::Ready(Step::Batch(batch));
                        }
                        Poll::Ready(None) => open = false,
                        Poll::Pending => {}
                    }
                }
            }
            if !open && carry.is_none() && flights.is_empty() {
                return Poll::Ready(Step::Finished);
            }
            Poll::Pending
        })
        .await;
        match step {
            Step::Batch(batch) => {
                shared.metrics.batch_size.record(batch.len() as f64);
                tracing::debug!(txs = batch.len(), "admission batch");
                flights.push_back(Flight::start(
                    batch,
                    admission.as_ref(),
                    config.admission_timeout,
                ));
            }
            Step::Landed => {
                if let Some(flight) = flights.pop_front() {
                    land(flight, &shared);
                }
            }
            Step::Finished => break,
        }
    }
}

/// Answers every transaction of a finished flight and settles or forgets its dedup entry.
fn land(flight: Flight, shared: &Shared) {
    let Flight { batch, answer, .. } = flight;
    let answer = match answer {
        Some(Ok(verdicts)) if verdicts.len() != batch.len() => {
            Err(AdmissionError::VerdictCountMismatch)
        }
        Some(answer) => answer,
        None => Err(AdmissionError::ShuttingDown),
    };
    match answer {
        Ok(verdicts) => {
            let mut dedup = shared.dedup();
            for (item, verdict) in batch.into_iter().zip(verdicts) {
                if verdict.keeps_dedup_entry() {
                    dedup.settle(&item.tx.hash);
                } else {
                    dedup.forget(&item.tx.hash);
                }
                match verdict {
                    PoolVerdict::Admitted { .. } | PoolVerdict::Replaced { .. } => {
                        shared.metrics.admitted(item.lane);
                    }
                    PoolVerdict::Rejected { reason } => shared.metrics.rejected(reason),
                }
                let _ = item.reply.send(TxOutcome::Accepted { hash: item.tx.hash, verdict });
            }
            shared.metrics.dedup_entries.set(dedup.settled_len() as f64);
        }
        Err(error) => {
            shared.metrics.admission_failed(error);
            tracing::debug!(error = error.as_str(), txs = batch.len(), "admission batch failed");
            let mut dedup = shared.dedup();
            for item in batch {
                dedup.forget(&item.tx.hash);
                let _ = item.reply.send(TxOutcome::Unavailable(error));
            }
        }
    }
}
