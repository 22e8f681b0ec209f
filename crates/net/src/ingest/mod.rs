//! The ingest pipeline: lanes, dedup and rate limits, decoding on the worker pool, ordered
//! batches to [`Admission`], and the local facts of every drop.
//!
//! ```text
//!  submit(lane, source, raw)  (never blocks; each refusal is a TxDropped fact)
//!    closing? ─► ShuttingDown   too big? ─► Oversize   bucket empty? ─► Throttled
//!    keccak(raw) seen? ─► Duplicate (first-seen delay recorded)   lane full? ─► QueueFull
//!        ▼ worker pool (one thread per core, arrival order restored)
//!  order thread: Err ─► TxRejected / TxDropped{decode_failed} ─► Invalid(err)
//!                Ok  ─► TxReceived fact ─► [items: bounded]
//!        ▼
//!  admission task: batches (≤ txs, ≤ bytes, formed when a slot frees) ─► Admission::admit, in
//!  order, ≤ N in flight ─► verdicts in order ─► Accepted{hash, verdict} / Unavailable(err)
//! ```

mod admission;
mod dedup;
mod driver;
mod lanes;
mod order;
mod outcome;
mod throttle;

use std::{
    sync::{Arc, Mutex, PoisonError, RwLock},
    time::{Duration, Instant},
};

use alloy_primitives::keccak256;
use bytes::Bytes;
use mempulse_primitives::{DropReason, Event, EventKind, Lane, Origin, TxHash, UnixMillis};
use tokio::sync::{mpsc, oneshot, watch};

pub use self::{
    admission::{Admission, AdmissionError, AdmissionFuture, PoolVerdict},
    outcome::{FirstSeen, SourceId, Submitted, TxOutcome},
};
use self::{
    dedup::{DedupCache, Sighting},
    lanes::Lanes,
    throttle::Throttle,
};
use crate::{
    CheckConfig, Clock, Error, FactWriter, IngestConfig, PoolConfig, QueueDepth, Result,
    Submission, Submitter, SystemClock, metrics::IngestMetrics,
};

/// Starts ingest pipelines. See [`Ingest::start`].
#[derive(Debug)]
#[non_exhaustive]
pub struct Ingest;

impl Ingest {
    /// Starts the decode workers, the order thread and the admission task (on the current tokio
    /// runtime), reading time from the system clock.
    ///
    /// # Errors
    /// [`Error::Config`] for a zero bound, [`Error::NoRuntime`] outside a tokio runtime,
    /// [`Error::Spawn`] when a thread cannot be started.
    pub fn start(
        config: IngestConfig,
        check: CheckConfig,
        admission: Arc<dyn Admission>,
        facts: FactWriter,
    ) -> Result<IngestHandle> {
        Self::start_with_clock(config, check, admission, facts, Arc::new(SystemClock))
    }

    /// [`Ingest::start`] with the given clock (arrival times, token refills).
    ///
    /// # Errors
    /// As [`Ingest::start`].
    pub fn start_with_clock(
        config: IngestConfig,
        check: CheckConfig,
        admission: Arc<dyn Admission>,
        facts: FactWriter,
        clock: Arc<dyn Clock>,
    ) -> Result<IngestHandle> {
        config.validate()?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
        let lanes = Lanes::new(&config);
        let pool = PoolConfig {
            threads: config.decode_threads,
            capacity: core::num::NonZeroUsize::new(lanes.total_capacity())
                .ok_or(Error::Config { field: "rpc_queue_capacity" })?,
        };
        let tx_bytes_max = check.tx_bytes_max;
        let (submitter, completions) = crate::spawn::<order::Ticket>(pool, check)?;
        let metrics = IngestMetrics::new();
        for &lane in Lane::ALL {
            metrics.lane_capacity(lane, lanes.capacity(lane));
            metrics.lane_depth(lane, 0);
        }
        metrics.dedup_capacity.set(config.dedup_capacity as f64);
        metrics.throttle_sources_capacity.set(config.throttle.sources_max as f64);
        let (closing, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            config,
            tx_bytes_max,
            clock,
            facts,
            metrics,
            lanes,
            dedup: Mutex::new(DedupCache::new(config.dedup_capacity)),
            throttle: Mutex::new(Throttle::new(config.throttle)),
            closing,
        });
        let capacity = config.batch_txs_max.saturating_mul(2);
        let (items_tx, items_rx) = mpsc::channel(capacity);
        let order = order::spawn(completions, Arc::clone(&shared), items_tx)?;
        let driver = runtime.spawn(driver::run(items_rx, admission, Arc::clone(&shared)));
        Ok(IngestHandle {
            inner: Arc::new(Inner {
                shared,
                submitter: RwLock::new(Some(submitter)),
                tasks: Mutex::new(Some(Tasks { driver, _order: order })),
            }),
        })
    }
}

/// What the handle, the order thread and the admission task share.
#[derive(Debug)]
pub(crate) struct Shared {
    config: IngestConfig,
    tx_bytes_max: u32,
    clock: Arc<dyn Clock>,
    facts: FactWriter,
    metrics: IngestMetrics,
    lanes: Lanes,
    dedup: Mutex<DedupCache>,
    throttle: Mutex<Throttle>,
    closing: watch::Sender<bool>,
}

impl Shared {
    fn dedup(&self) -> std::sync::MutexGuard<'_, DedupCache> {
        self.dedup.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Forgets `hash` in the dedup cache.
    fn forget(&self, hash: &TxHash) {
        self.dedup().forget(hash);
    }

    /// The local fact about a transaction that arrived at `at` on `lane` from `source`.
    fn event(at: UnixMillis, lane: Lane, source: SourceId, kind: EventKind) -> Event {
        Event { observed_at: at, source: source.to_event_source(lane), origin: Origin::Local, kind }
    }

    /// Records a drop at the lane (fact and metric) and answers it.
    fn drop_tx(&self, arrival: &Arrival, reason: DropReason, hash: Option<TxHash>) -> Submitted {
        self.drop_at_depth(arrival, reason, hash, self.lanes.depth(arrival.lane))
    }

    /// [`Shared::drop_tx`] recording `depth`, the lane's depth when it refused the transaction.
    fn drop_at_depth(
        &self,
        arrival: &Arrival,
        reason: DropReason,
        hash: Option<TxHash>,
        depth: QueueDepth,
    ) -> Submitted {
        let kind = EventKind::TxDropped {
            hash,
            reason,
            lane: arrival.lane,
            depth_current: depth.current,
            depth_peak: depth.peak,
        };
        let event = Self::event(arrival.at, arrival.lane, arrival.source, kind);
        self.facts.write(&[event], &self.metrics);
        self.metrics.dropped(arrival.lane, reason);
        Submitted::ready(TxOutcome::Dropped { reason, hash })
    }
}

/// One submission's arrival: where and when it came in.
#[derive(Clone, Copy, Debug)]
struct Arrival {
    lane: Lane,
    source: SourceId,
    at: UnixMillis,
}

#[derive(Debug)]
struct Tasks {
    driver: tokio::task::JoinHandle<()>,
    /// Ends by itself once the pool drains (after the last submitter is gone).
    _order: std::thread::JoinHandle<()>,
}

#[derive(Debug)]
struct Inner {
    shared: Arc<Shared>,
    /// `None` once shutting down; dropping it lets the pool drain and the pipeline end.
    submitter: RwLock<Option<Submitter<order::Ticket>>>,
    tasks: Mutex<Option<Tasks>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The last handle is gone: stop accepting; queued work drains on its own.
        self.shared.closing.send_replace(true);
    }
}

/// Submits raw transactions to the pipeline; cheap to clone and share between tasks and threads.
/// When the last handle is dropped the pipeline stops accepting and drains by itself.
#[derive(Clone, Debug)]
pub struct IngestHandle {
    inner: Arc<Inner>,
}

impl IngestHandle {
    /// Submits one raw EIP-2718 transaction that arrived on `lane` from `source`. Never blocks:
    /// a refusal (shutting down, oversize, throttled, duplicate, lane full) is answered at once
    /// and recorded as a `TxDropped` fact; otherwise the transaction is queued for decoding and
    /// the returned future resolves with its outcome.
    pub fn submit(&self, lane: Lane, source: SourceId, raw: Bytes) -> Submitted {
        let shared = &self.inner.shared;
        let arrival = Arrival { lane, source, at: shared.clock.now() };
        let submitter = self.inner.submitter.read().unwrap_or_else(PoisonError::into_inner);
        let Some(submitter) = submitter.as_ref() else {
            return shared.drop_tx(&arrival, DropReason::ShuttingDown, None);
        };
        if u64::try_from(raw.len()).unwrap_or(u64::MAX) > u64::from(shared.tx_bytes_max) {
            return shared.drop_tx(&arrival, DropReason::Oversize, None);
        }
        let allowed = {
            let mut throttle = shared.throttle.lock().unwrap_or_else(PoisonError::into_inner);
            let allowed = throttle.take(source, arrival.at);
            shared.metrics.throttle_sources.set(throttle.len() as f64);
            allowed
        };
        if !allowed {
            return shared.drop_tx(&arrival, DropReason::Throttled, None);
        }
        let hash = TxHash(keccak256(&raw).0);
        let sighting = FirstSeen { at: arrival.at, source, lane };
        if let Sighting::Duplicate(first) = shared.dedup().observe(hash, sighting) {
            shared.metrics.first_seen_delay(arrival.at.0.saturating_sub(first.at.0));
            return shared.drop_tx(&arrival, DropReason::Duplicate, Some(hash));
        }
        match shared.lanes.reserve(lane) {
            Ok(depth) => shared.metrics.lane_depth(lane, depth),
            Err(depth) => {
                shared.forget(&hash);
                return shared.drop_at_depth(&arrival, DropReason::QueueFull, None, depth);
            }
        }
        let (reply, answer) = oneshot::channel();
        let started = Instant::now();
        let ticket = order::Ticket { lane, source, at: arrival.at, started, hash, reply };
        match submitter.submit(vec![Submission { tag: ticket, raw }]) {
            Ok(_) => Submitted::waiting(answer),
            Err(refused) => {
                // Not expected: the pool holds every lane's capacity. Answer as a full lane.
                shared.metrics.lane_depth(lane, shared.lanes.release(lane));
                shared.forget(&hash);
                let reason = if refused.error.is_retryable() {
                    DropReason::QueueFull
                } else {
                    DropReason::ShuttingDown
                };
                shared.drop_tx(&arrival, reason, None)
            }
        }
    }

    /// The first sighting of `hash` while the dedup cache remembers it: arrival time, source and
    /// lane of the first submission that got past the lane checks (analysis only).
    #[must_use]
    pub fn first_seen(&self, hash: &TxHash) -> Option<FirstSeen> {
        self.inner.shared.dedup().first_seen(hash)
    }

    /// Depth of `lane`'s queue now and at most so far.
    #[must_use]
    pub fn depth(&self, lane: Lane) -> QueueDepth {
        self.inner.shared.lanes.depth(lane)
    }

    /// Capacity of `lane`'s queue.
    #[must_use]
    pub fn capacity(&self, lane: Lane) -> usize {
        self.inner.shared.lanes.capacity(lane)
    }

    /// The configuration the pipeline runs with.
    #[must_use]
    pub fn config(&self) -> &IngestConfig {
        &self.inner.shared.config
    }

    /// Whether shutdown has begun (every submit is then dropped as `shutting_down`).
    #[must_use]
    pub fn is_closing(&self) -> bool {
        *self.inner.shared.closing.borrow()
    }

    /// Resolves once shutdown has begun (for stream servers, to close their streams).
    pub async fn closing(&self) {
        let mut rx = self.inner.shared.closing.subscribe();
        // The sender lives in `Shared`, which this handle keeps alive.
        let _ = rx.wait_for(|closing| *closing).await;
    }

    /// Stops accepting (later submits are dropped as `shutting_down`), then waits up to
    /// `timeout` for everything queued to be decoded and answered by the admission. Calling it
    /// again, or from another handle, returns at once.
    ///
    /// # Errors
    /// [`Error::ShutdownTimedOut`] when work was still in flight at the deadline: the admission
    /// task is stopped and the transactions left get
    /// [`TxOutcome::Unavailable`]`(`[`AdmissionError::ShuttingDown`]`)`.
    pub async fn shutdown(&self, timeout: Duration) -> Result<()> {
        self.inner.shared.closing.send_replace(true);
        drop(self.inner.submitter.write().unwrap_or_else(PoisonError::into_inner).take());
        let tasks = self.inner.tasks.lock().unwrap_or_else(PoisonError::into_inner).take();
        let Some(Tasks { mut driver, _order }) = tasks else {
            return Ok(());
        };
        if tokio::time::timeout(timeout, &mut driver).await.is_ok() {
            tracing::info!("ingest drained");
            return Ok(());
        }
        driver.abort();
        tracing::warn!(timeout_ms = timeout.as_millis(), "ingest shutdown timed out");
        Err(Error::ShutdownTimedOut)
    }
}
