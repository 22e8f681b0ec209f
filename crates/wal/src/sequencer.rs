//! The sequencer: the single writer of a log, on its own OS thread.
//!
//! ```text
//! try_submit ──► bounded queue ──► writer thread: drain a group, frame it, one write
//!   (Full → drop)                        │ SyncJob (bounded)
//!                                        ▼
//!                                  sync thread: fdatasync, publish durable seq, ack in order
//! ```
//!
//! The writer frames and writes group N+1 while the sync thread runs group N's `fdatasync`.
//! Under [`SyncPolicy::Always`] a batch is acknowledged, and the durable seq published, only
//! after the sync covering it. Under `Interval` a batch is acknowledged once written, and
//! published (to readers, cursors and the durable watch) only by the sync that covers it, at
//! most one interval later: consumers never see a record a power loss could still take. Under
//! `Never` both happen once written. [`SequencerHandle::try_sync`] forces a sync under any policy.

use std::{
    future::Future,
    pin::Pin,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, AtomicUsize, Ordering},
        mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError},
    },
    task::{Context, Poll},
    thread::JoinHandle,
    time::Duration,
};

use mempulse_primitives::Seq;
use tokio::sync::{oneshot, watch};

use crate::{
    config::{SYNC_QUEUE_CAPACITY, SequencerConfig},
    cursor::Cursor,
    error::{Error, Result, SubmitError},
    metrics::QueueMetrics,
    reader::WalReader,
    record::SeqRange,
    sequencer_writer::{Msg, Writer},
    wal::Wal,
};

/// Starts sequencers. See [`Sequencer::start`].
#[derive(Debug)]
#[non_exhaustive]
pub struct Sequencer;

impl Sequencer {
    /// Moves `wal` onto a dedicated writer thread (plus a sync thread) and returns the handle
    /// through which batches are submitted.
    ///
    /// # Errors
    /// [`Error::Config`] for a bad config; [`Error::Io`] when the initial sync fails or a thread
    /// cannot be spawned; [`Error::Poisoned`] for a poisoned log.
    pub fn start(mut wal: Wal, config: SequencerConfig) -> Result<SequencerHandle> {
        config.validate()?;
        // The durable seq starts at the log's end: make that true whatever the caller did.
        wal.sync()?;
        // One slot beyond the capacity is reserved for the shutdown message.
        let (tx, rx) = mpsc::sync_channel(config.queue_capacity + 1);
        let (durable_tx, durable_rx) = watch::channel(wal.last_seq());
        let depth = Arc::new(AtomicUsize::new(0));
        let metrics = QueueMetrics::new(wal.config().metrics_label);
        metrics.capacity.set(config.queue_capacity as f64);
        metrics.depth.set(0.0);
        let reader = wal.published_reader();
        let max_payload = wal.shared().max_payload;
        let writer = Writer::new(wal, config, Arc::clone(&depth), metrics.clone(), durable_tx);
        let thread = spawn("mempulse-wal-writer", move || writer.run(&rx))?;
        Ok(SequencerHandle {
            inner: Arc::new(Inner {
                tx,
                depth,
                capacity: config.queue_capacity,
                closed: AtomicBool::new(false),
                durable: durable_rx,
                reader,
                max_payload,
                metrics,
                writer: Mutex::new(Some(thread)),
            }),
        })
    }
}

pub(crate) fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(f)
        .map_err(|e| Error::io(crate::error::IoOp::Create, name, e))
}

/// Submits batches to a running sequencer; cheap to clone and share between tasks.
#[derive(Clone, Debug)]
pub struct SequencerHandle {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    tx: SyncSender<Msg>,
    depth: Arc<AtomicUsize>,
    capacity: usize,
    closed: AtomicBool,
    durable: watch::Receiver<Seq>,
    reader: WalReader,
    max_payload: u64,
    metrics: QueueMetrics,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl SequencerHandle {
    /// Queues a batch without blocking. The ticket resolves to the batch's seqs once it is
    /// durable (under the sync policy).
    ///
    /// # Errors
    /// [`SubmitError::Full`] when the queue is full (the caller records the drop);
    /// [`SubmitError::Closed`] after shutdown; [`SubmitError::Invalid`] for a batch with no
    /// records, an empty record or a record too large.
    pub fn try_submit(&self, records: Vec<Vec<u8>>) -> Result<AppendTicket, SubmitError> {
        self.check_batch(&records)?;
        let (ack, rx) = oneshot::channel();
        self.send(Msg::Batch { records, ack })?;
        Ok(Ticket { rx })
    }

    /// Queues the removal of every whole segment below `seq` (see [`Wal::purge_before`]),
    /// ordered after every batch submitted before it.
    ///
    /// # Errors
    /// As [`SequencerHandle::try_submit`].
    pub fn try_purge_before(&self, seq: Seq) -> Result<Ticket<()>, SubmitError> {
        let (ack, rx) = oneshot::channel();
        self.send(Msg::Purge { before: seq, ack })?;
        Ok(Ticket { rx })
    }

    /// Queues the removal of every record after `seq` (see [`Wal::truncate_after`]), ordered
    /// after every batch submitted before it: those become durable and are acknowledged first,
    /// then the log is cut and the durable seq lowered to `seq`. Cursors that already yielded
    /// records past `seq` are not told; this is for Raft log conflict truncation, where such
    /// records were never committed.
    ///
    /// # Errors
    /// As [`SequencerHandle::try_submit`].
    pub fn try_truncate_after(&self, seq: Seq) -> Result<Ticket<()>, SubmitError> {
        let (ack, rx) = oneshot::channel();
        self.send(Msg::Truncate { after: seq, ack })?;
        Ok(Ticket { rx })
    }

    /// Queues a sync of everything submitted before it, whatever the sync policy. The ticket
    /// resolves once those records are durable and published: a caller that must not get ahead
    /// of the disk (a Raft snapshot covering facts acknowledged under `Interval`) waits on it.
    ///
    /// # Errors
    /// [`SubmitError::Full`] when the queue is full; [`SubmitError::Closed`] after shutdown.
    pub fn try_sync(&self) -> Result<Ticket<()>, SubmitError> {
        let (ack, rx) = oneshot::channel();
        self.send(Msg::Sync { ack })?;
        Ok(Ticket { rx })
    }

    fn check_batch(&self, records: &[Vec<u8>]) -> Result<(), SubmitError> {
        if records.is_empty() {
            return Err(SubmitError::Invalid(Error::EmptyRecord));
        }
        for record in records {
            if record.is_empty() {
                return Err(SubmitError::Invalid(Error::EmptyRecord));
            }
            let len = record.len() as u64;
            if len > self.inner.max_payload {
                let max = self.inner.max_payload;
                return Err(SubmitError::Invalid(Error::RecordTooLarge { len, max }));
            }
        }
        Ok(())
    }

    fn send(&self, msg: Msg) -> Result<(), SubmitError> {
        let inner = &self.inner;
        if inner.closed.load(Ordering::Acquire) {
            return Err(SubmitError::Closed);
        }
        let depth = inner.depth.fetch_add(1, Ordering::AcqRel);
        if depth >= inner.capacity {
            inner.depth.fetch_sub(1, Ordering::AcqRel);
            inner.metrics.dropped.increment(1);
            return Err(SubmitError::Full { depth, capacity: inner.capacity });
        }
        inner.metrics.depth.set((depth + 1) as f64);
        match inner.tx.try_send(msg) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => {
                inner.depth.fetch_sub(1, Ordering::AcqRel);
                inner.metrics.dropped.increment(1);
                Err(SubmitError::Full { depth, capacity: inner.capacity })
            }
            Err(TrySendError::Disconnected(_)) => {
                inner.depth.fetch_sub(1, Ordering::AcqRel);
                Err(SubmitError::Closed)
            }
        }
    }

    /// Batches waiting in the queue now.
    #[must_use]
    pub fn queue_depth(&self) -> usize {
        self.inner.depth.load(Ordering::Acquire).min(self.inner.capacity)
    }

    /// Capacity of the queue.
    #[must_use]
    pub fn queue_capacity(&self) -> usize {
        self.inner.capacity
    }

    /// A watch of the last durable seq: acknowledged and synced under `Always`, synced under
    /// `Interval` (acknowledged records may be ahead of it by up to one interval), written
    /// under `Never`.
    #[must_use]
    pub fn durable(&self) -> watch::Receiver<Seq> {
        self.inner.durable.clone()
    }

    /// A reader that sees only durable records (up to [`SequencerHandle::durable`]).
    #[must_use]
    pub fn reader(&self) -> WalReader {
        self.inner.reader.clone()
    }

    /// A cursor yielding durable records (up to [`SequencerHandle::durable`]) from `from`
    /// (inclusive) on.
    #[must_use]
    pub fn cursor(&self, from: Seq) -> Cursor {
        Cursor::new(self.inner.reader.clone(), self.inner.durable.clone(), from)
    }

    fn begin_shutdown(&self) -> Result<oneshot::Receiver<Result<()>>> {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return Err(Error::Closed);
        }
        let (ack, rx) = oneshot::channel();
        // The reserved slot guarantees room unless the writer is gone.
        self.inner.tx.try_send(Msg::Shutdown { ack }).map_err(|_| Error::Closed)?;
        Ok(rx)
    }

    /// Stops accepting batches, writes and syncs everything already queued, then stops the
    /// threads.
    ///
    /// # Errors
    /// [`Error::Closed`] when shutdown was already requested; the final sync's error otherwise.
    pub async fn shutdown(&self) -> Result<()> {
        let rx = self.begin_shutdown()?;
        rx.await.map_err(|_| Error::Closed)?
    }

    /// [`SequencerHandle::shutdown`] for synchronous callers; also joins the writer thread.
    ///
    /// # Errors
    /// As [`SequencerHandle::shutdown`].
    ///
    /// # Panics
    /// When called from inside an async runtime (it blocks).
    pub fn shutdown_blocking(&self) -> Result<()> {
        let rx = self.begin_shutdown()?;
        let result = rx.blocking_recv().map_err(|_| Error::Closed)?;
        let thread = self.inner.writer.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(thread) = thread
            && thread.join().is_err()
        {
            return Err(Error::Closed);
        }
        result
    }
}

/// Resolves to the outcome of a queued request.
#[derive(Debug)]
#[must_use = "the ticket tells whether the request became durable"]
pub struct Ticket<T> {
    rx: oneshot::Receiver<Result<T>>,
}

/// Resolves to the seqs of an appended batch once it is durable.
pub type AppendTicket = Ticket<SeqRange>;

impl<T> Ticket<T> {
    /// Blocks the thread until the request completes.
    ///
    /// # Errors
    /// The request's error, or [`Error::Closed`] when the sequencer stopped first.
    ///
    /// # Panics
    /// When called from inside an async runtime.
    pub fn wait(self) -> Result<T> {
        self.rx.blocking_recv().map_err(|_| Error::Closed)?
    }
}

impl<T> Future for Ticket<T> {
    type Output = Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx).poll(cx).map(|r| r.map_err(|_| Error::Closed).and_then(|r| r))
    }
}

pub(crate) fn recv(rx: &Receiver<Msg>, wait: Option<Duration>) -> Result<Option<Msg>, ()> {
    match wait {
        None => rx.recv().map(Some).map_err(|_| ()),
        Some(wait) => match rx.recv_timeout(wait) {
            Ok(msg) => Ok(Some(msg)),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => Err(()),
        },
    }
}

/// Capacity of the writer → sync thread queue.
pub(crate) const SYNC_JOBS_MAX: usize = SYNC_QUEUE_CAPACITY;
