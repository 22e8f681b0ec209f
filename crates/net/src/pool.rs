//! The decode worker pool: sender recovery on every core, results handed back in arrival order.
//!
//! ```text
//!  Submitter (cloneable, any thread)        workers (one per core)           Completions (one)
//!  submit(batch) ── reserve capacity ──► [jobs: bounded] ──► decode_tx ──► [done: bounded] ──►
//!       │           assign arrivals                                        reorder buffer ──►
//!       └── Full: the batch comes back untouched                           recv() in arrival order
//! ```
//! One counter bounds everything: a transaction is in flight from `submit` until `recv` hands it
//! out, and `submit` refuses a batch that would take the count above the capacity. The job queue,
//! the completion queue and the reorder buffer each hold at most that many, so none can grow, and
//! a full pool answers at once instead of blocking the lane.

use std::{
    collections::BTreeMap,
    panic::{AssertUnwindSafe, catch_unwind},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    thread::JoinHandle,
    time::Duration,
};

use bytes::Bytes;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError, bounded};
use mempulse_primitives::Tx;

use crate::{
    CheckConfig, PoolConfig, QueueDepth,
    error::{DecodeFailure, Error, Result, TxError},
};

/// Position of a transaction in the pool's arrival order: assigned at `submit`, gapless from 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Arrival(pub u64);

/// One raw transaction to decode, with whatever the caller needs back with its result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Submission<T> {
    /// Caller context (lane, reply handle, observation time...), returned untouched.
    pub tag: T,
    /// The signed EIP-2718 bytes.
    pub raw: Bytes,
}

/// A decoded (or refused) transaction, handed out in arrival order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completed<T> {
    /// Its arrival position.
    pub arrival: Arrival,
    /// The caller's tag from the submission.
    pub tag: T,
    /// The checked transaction, or why it is not one.
    pub result: core::result::Result<Tx, TxError>,
}

/// A refused batch, returned whole so the caller can record a drop for each transaction.
#[derive(Debug)]
pub struct Refused<T> {
    /// Why ([`Error::Full`] or [`Error::Closed`]).
    pub error: Error,
    /// The batch, untouched.
    pub batch: Vec<Submission<T>>,
}

impl<T> core::fmt::Display for Refused<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Display::fmt(&self.error, f)
    }
}

impl<T: core::fmt::Debug> std::error::Error for Refused<T> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// Why [`Completions::recv_timeout`] returned without a result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecvError {
    /// Nothing became ready in time; try again.
    #[error("no decoded transaction ready in time")]
    Timeout,
    /// Every submitter is gone and every result has been handed out.
    #[error("decode pool drained and closed")]
    Closed,
}

#[derive(Debug)]
struct Job<T> {
    arrival: Arrival,
    submission: Submission<T>,
}

/// Counters shared by the submitters and the consumer.
#[derive(Debug)]
struct Shared {
    capacity: usize,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
    next_arrival: AtomicU64,
    consumer_gone: AtomicBool,
}

impl Shared {
    fn depth(&self) -> QueueDepth {
        let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        QueueDepth {
            current: clamp(self.in_flight.load(Ordering::Acquire)),
            peak: clamp(self.peak.load(Ordering::Acquire)),
        }
    }

    /// Reserves `n` slots, or reports the pool full without reserving any.
    fn reserve(&self, n: usize) -> Result<()> {
        let mut current = self.in_flight.load(Ordering::Acquire);
        loop {
            let next = match current.checked_add(n) {
                Some(next) if next <= self.capacity => next,
                _ => {
                    let count = |v: usize| u64::try_from(v).unwrap_or(u64::MAX);
                    return Err(Error::Full {
                        requested: count(n),
                        in_flight: count(current),
                        capacity: count(self.capacity),
                    });
                }
            };
            match self.in_flight.compare_exchange_weak(
                current,
                next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    self.peak.fetch_max(next, Ordering::AcqRel);
                    return Ok(());
                }
                Err(seen) => current = seen,
            }
        }
    }
}

/// Starts the worker threads.
///
/// Returns the submitting half (clone it for every lane) and the single consuming half. Workers
/// stop once every [`Submitter`] is dropped and the queued work is done.
///
/// # Errors
/// [`Error::Spawn`] when the operating system refuses a thread (the started ones then stop).
pub fn spawn<T: Send + 'static>(
    pool: PoolConfig,
    checks: CheckConfig,
) -> Result<(Submitter<T>, Completions<T>)> {
    let capacity = pool.capacity.get();
    let (job_tx, job_rx) = bounded::<Job<T>>(capacity);
    let (done_tx, done_rx) = bounded::<Completed<T>>(capacity);
    let checks = Arc::new(checks);
    let mut workers = Vec::new();
    for index in 0..pool.thread_count().get() {
        let (jobs, done, checks) = (job_rx.clone(), done_tx.clone(), Arc::clone(&checks));
        let handle = std::thread::Builder::new()
            .name(format!("mempulse-decode-{index}"))
            .spawn(move || work(&jobs, &done, &checks))
            .map_err(|err| Error::Spawn {
                index: u32::try_from(index).unwrap_or(u32::MAX),
                kind: err.kind(),
            })?;
        workers.push(handle);
    }
    let shared = Arc::new(Shared {
        capacity,
        in_flight: AtomicUsize::new(0),
        peak: AtomicUsize::new(0),
        next_arrival: AtomicU64::new(0),
        consumer_gone: AtomicBool::new(false),
    });
    let submitter = Submitter { jobs: job_tx, shared: Arc::clone(&shared) };
    let completions =
        Completions { done: done_rx, ready: BTreeMap::new(), next: 0, shared, workers };
    Ok((submitter, completions))
}

/// One worker: decode until every submitter is gone.
fn work<T>(jobs: &Receiver<Job<T>>, done: &Sender<Completed<T>>, checks: &CheckConfig) {
    for Job { arrival, submission: Submission { tag, raw } } in jobs {
        // The decoder returns typed errors for every input it knows to be bad; should a bug in it
        // (or below it) panic anyway, that one transaction fails and the pool keeps its order.
        let result = catch_unwind(AssertUnwindSafe(|| crate::decode_tx(raw, checks)))
            .unwrap_or(Err(TxError::Decode(DecodeFailure::Internal)));
        // A send fails only when the consumer is gone; keep draining so submitters never wait.
        let _ = done.send(Completed { arrival, tag, result });
    }
}

/// The submitting half of the pool: cheap to clone, usable from any thread.
#[derive(Debug)]
pub struct Submitter<T> {
    jobs: Sender<Job<T>>,
    shared: Arc<Shared>,
}

impl<T> Clone for Submitter<T> {
    fn clone(&self) -> Self {
        Self { jobs: self.jobs.clone(), shared: Arc::clone(&self.shared) }
    }
}

impl<T> Submitter<T> {
    /// Queues a batch, all of it or none: the transactions take consecutive arrivals starting at
    /// the returned one, in the batch's order. Never blocks.
    ///
    /// # Errors
    /// [`Refused`] with the untouched batch: [`Error::Full`] when the pool cannot take it whole
    /// (the caller records a drop per transaction), [`Error::Closed`] when the consumer is gone.
    pub fn submit(
        &self,
        batch: Vec<Submission<T>>,
    ) -> core::result::Result<Arrival, Box<Refused<T>>> {
        if self.shared.consumer_gone.load(Ordering::Acquire) {
            return Err(Box::new(Refused { error: Error::Closed, batch }));
        }
        if let Err(error) = self.shared.reserve(batch.len()) {
            return Err(Box::new(Refused { error, batch }));
        }
        let count = u64::try_from(batch.len()).unwrap_or(u64::MAX);
        let first = self.shared.next_arrival.fetch_add(count, Ordering::AcqRel);
        for (arrival, submission) in (first..).zip(batch) {
            let job = Job { arrival: Arrival(arrival), submission };
            // The reservation above guarantees room, and workers only stop once every submitter
            // (this one included) is gone, so neither failure can happen: were one to, the pool
            // is broken, and saying so beats waiting on an arrival that never comes.
            match self.jobs.try_send(job) {
                Ok(()) => {}
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                    return Err(Box::new(Refused { error: Error::Closed, batch: Vec::new() }));
                }
            }
        }
        Ok(Arrival(first))
    }

    /// Transactions in flight now and at most so far.
    #[must_use]
    pub fn depth(&self) -> QueueDepth {
        self.shared.depth()
    }

    /// The pool's capacity.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.shared.capacity
    }
}

/// The consuming half of the pool: hands out results strictly in arrival order.
#[derive(Debug)]
pub struct Completions<T> {
    done: Receiver<Completed<T>>,
    /// Finished out of order, waiting for their predecessors; at most `capacity` entries.
    ready: BTreeMap<u64, Completed<T>>,
    next: u64,
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

impl<T> Completions<T> {
    /// The next result in arrival order, waiting as long as it takes.
    ///
    /// Returns `None` once every submitter is gone and every result has been handed out.
    pub fn recv(&mut self) -> Option<Completed<T>> {
        loop {
            if let Some(next) = self.pop_ready() {
                return Some(next);
            }
            match self.done.recv() {
                Ok(completed) => self.stash(completed),
                Err(_) => {
                    self.join_workers();
                    return None;
                }
            }
        }
    }

    /// The next result in arrival order, waiting at most `timeout` for it.
    ///
    /// # Errors
    /// [`RecvError::Timeout`] when it is not ready in time, [`RecvError::Closed`] when the pool is
    /// drained and every submitter is gone.
    pub fn recv_timeout(
        &mut self,
        timeout: Duration,
    ) -> core::result::Result<Completed<T>, RecvError> {
        loop {
            if let Some(next) = self.pop_ready() {
                return Ok(next);
            }
            match self.done.recv_timeout(timeout) {
                Ok(completed) => self.stash(completed),
                Err(RecvTimeoutError::Timeout) => return Err(RecvError::Timeout),
                Err(RecvTimeoutError::Disconnected) => {
                    self.join_workers();
                    return Err(RecvError::Closed);
                }
            }
        }
    }

    /// The next result in arrival order if it is ready now.
    pub fn try_recv(&mut self) -> Option<Completed<T>> {
        while let Ok(completed) = self.done.try_recv() {
            self.stash(completed);
        }
        self.pop_ready()
    }

    /// Transactions in flight now and at most so far.
    #[must_use]
    pub fn depth(&self) -> QueueDepth {
        self.shared.depth()
    }

    fn stash(&mut self, completed: Completed<T>) {
        self.ready.insert(completed.arrival.0, completed);
    }

    fn pop_ready(&mut self) -> Option<Completed<T>> {
        let completed = self.ready.remove(&self.next)?;
        self.next = self.next.saturating_add(1);
        self.shared.in_flight.fetch_sub(1, Ordering::AcqRel);
        Some(completed)
    }

    fn join_workers(&mut self) {
        for worker in self.workers.drain(..) {
            // A worker catches decoder panics, so a join error cannot carry one of ours.
            let _ = worker.join();
        }
    }
}

impl<T> Drop for Completions<T> {
    fn drop(&mut self) {
        // Workers stop on their own once every submitter is gone; later submits are refused.
        self.shared.consumer_gone.store(true, Ordering::Release);
    }
}

/// A pool with its own single submitter and consumer, for callers that decode whole batches
/// synchronously (benchmarks, tools, tests).
#[derive(Debug)]
pub struct BatchDecoder {
    submitter: Submitter<()>,
    completions: Completions<()>,
}

impl BatchDecoder {
    /// Starts the workers.
    ///
    /// # Errors
    /// [`Error::Spawn`] when a thread cannot be started.
    pub fn new(pool: PoolConfig, checks: CheckConfig) -> Result<Self> {
        let (submitter, completions) = spawn(pool, checks)?;
        Ok(Self { submitter, completions })
    }

    /// Decodes every transaction, in chunks of the pool's capacity, and returns the results in
    /// input order.
    ///
    /// # Errors
    /// [`Error::Closed`] if the workers are gone (not expected while `self` lives).
    pub fn decode_all(
        &mut self,
        raws: impl IntoIterator<Item = Bytes>,
    ) -> Result<Vec<core::result::Result<Tx, TxError>>> {
        let mut out = Vec::new();
        let mut raws = raws.into_iter().peekable();
        while raws.peek().is_some() {
            let chunk: Vec<_> = raws
                .by_ref()
                .take(self.submitter.capacity())
                .map(|raw| Submission { tag: (), raw })
                .collect();
            let len = chunk.len();
            self.submitter.submit(chunk).map_err(|refused| refused.error)?;
            for _ in 0..len {
                out.push(self.completions.recv().ok_or(Error::Closed)?.result);
            }
        }
        Ok(out)
    }
}
