//! The sequencer's two threads: the writer (group commit) and the syncer (fdatasync, publish,
//! acknowledge in order).

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
        mpsc::{Receiver, SyncSender},
    },
    thread::JoinHandle,
    time::Instant,
};

use mempulse_primitives::Seq;
use tokio::sync::{oneshot, watch};
use tracing::{debug, error};

use crate::{
    config::{SequencerConfig, SyncPolicy},
    error::{Error, Result},
    metrics::{QueueMetrics, WalMetrics},
    record::SeqRange,
    sequencer::recv,
    state::Shared,
    wal::{SyncTarget, Wal},
};

/// A request on the sequencer queue.
#[derive(Debug)]
pub(crate) enum Msg {
    Batch { records: Vec<Vec<u8>>, ack: oneshot::Sender<Result<SeqRange>> },
    Purge { before: Seq, ack: oneshot::Sender<Result<()>> },
    Truncate { after: Seq, ack: oneshot::Sender<Result<()>> },
    Sync { ack: oneshot::Sender<Result<()>> },
    Shutdown { ack: oneshot::Sender<Result<()>> },
}

type Ack = oneshot::Sender<Result<SeqRange>>;

/// Work for the sync thread: make `target` durable, then acknowledge `acks` in order.
#[derive(Debug)]
pub(crate) struct SyncJob {
    target: SyncTarget,
    acks: Vec<(SeqRange, Ack)>,
    done: Option<oneshot::Sender<Result<()>>>,
}

/// Publishes a new durable seq to readers and cursors (never lowering it).
fn publish(shared: &Shared, durable: &watch::Sender<Seq>, seq: Seq) {
    shared.publish(seq);
    durable.send_if_modified(|current| {
        let raise = seq > *current;
        if raise {
            *current = seq;
        }
        raise
    });
}

#[derive(Debug)]
pub(crate) struct Writer {
    wal: Wal,
    config: SequencerConfig,
    depth: Arc<AtomicUsize>,
    metrics: QueueMetrics,
    durable: Arc<watch::Sender<Seq>>,
    batches: Vec<(Vec<Vec<u8>>, Ack)>,
    last_sync: Instant,
    unsynced: bool,
}

impl Writer {
    pub(crate) fn new(
        wal: Wal,
        config: SequencerConfig,
        depth: Arc<AtomicUsize>,
        metrics: QueueMetrics,
        durable: watch::Sender<Seq>,
    ) -> Self {
        Self {
            wal,
            config,
            depth,
            metrics,
            durable: Arc::new(durable),
            batches: Vec::new(),
            last_sync: Instant::now(),
            unsynced: false,
        }
    }

    /// The writer thread's body.
    pub(crate) fn run(mut self, rx: &Receiver<Msg>) {
        let (sync_tx, sync_rx) = std::sync::mpsc::sync_channel(crate::sequencer::SYNC_JOBS_MAX);
        let shared = Arc::clone(self.wal.shared());
        let durable = Arc::clone(&self.durable);
        let metrics = WalMetrics::new(self.wal.config().metrics_label);
        let syncer = crate::sequencer::spawn("mempulse-wal-sync", move || {
            sync_loop(&sync_rx, &shared, &metrics, &durable);
        });
        let syncer = match syncer {
            Ok(handle) => handle,
            Err(e) => {
                error!(error = %e, "wal sync thread failed to start");
                self.wal.shared().poison();
                return;
            }
        };
        let shutdown = self.serve(rx, &sync_tx);
        let result = self.finish(sync_tx, syncer);
        // Close the log (and release its directory lock) before reporting shutdown complete.
        drop(self);
        if let Some(ack) = shutdown {
            let _ = ack.send(result);
        }
    }

    /// Serves requests until shutdown (returned) or until every handle is gone.
    fn serve(
        &mut self,
        rx: &Receiver<Msg>,
        sync_tx: &SyncSender<SyncJob>,
    ) -> Option<oneshot::Sender<Result<()>>> {
        let mut shutdown = None;
        loop {
            let next = if shutdown.is_some() {
                rx.try_recv().ok()
            } else {
                match recv(rx, self.idle_wait()) {
                    Ok(Some(msg)) => Some(msg),
                    Ok(None) => {
                        self.interval_tick(sync_tx);
                        continue;
                    }
                    Err(()) => None,
                }
            };
            let Some(msg) = next else { return shutdown };
            let control = match msg {
                Msg::Batch { records, ack } => {
                    self.taken(1);
                    self.batches.push((records, ack));
                    let control = self.drain_group(rx);
                    self.commit_group(sync_tx);
                    control
                }
                other => Some(other),
            };
            match control {
                Some(Msg::Shutdown { ack }) => shutdown = Some(ack),
                Some(Msg::Purge { before, ack }) => {
                    self.taken(1);
                    let _ = ack.send(self.wal.purge_before(before));
                }
                Some(Msg::Truncate { after, ack }) => {
                    self.taken(1);
                    let _ = ack.send(self.truncate_after(sync_tx, after));
                }
                Some(Msg::Sync { ack }) => {
                    self.taken(1);
                    self.sync_now(sync_tx, ack);
                }
                Some(Msg::Batch { .. }) | None => {}
            }
        }
    }

    /// Waits until everything written is durable and acknowledged, then truncates and lowers
    /// the published durable seq.
    fn truncate_after(&mut self, sync_tx: &SyncSender<SyncJob>, after: Seq) -> Result<()> {
        let (done, rx) = oneshot::channel();
        let job = SyncJob { target: self.wal.sync_target(), acks: Vec::new(), done: Some(done) };
        self.send_job(sync_tx, job);
        rx.blocking_recv().map_err(|_| Error::Closed)??;
        self.unsynced = false;
        self.wal.truncate_after(after)?;
        self.durable.send_if_modified(|current| {
            let lower = *current > after;
            if lower {
                *current = after;
            }
            lower
        });
        Ok(())
    }

    fn taken(&self, n: usize) {
        let before = self.depth.fetch_sub(n, Ordering::AcqRel);
        self.metrics.depth.set(before.saturating_sub(n) as f64);
    }

    /// Pulls queued batches into the group up to the byte limit; returns a control message
    /// met on the way (handled after the group, preserving order).
    fn drain_group(&mut self, rx: &Receiver<Msg>) -> Option<Msg> {
        let mut bytes: usize = self.batches.iter().flat_map(|(b, _)| b.iter().map(Vec::len)).sum();
        while bytes < self.config.max_group_bytes {
            match rx.try_recv() {
                Ok(Msg::Batch { records, ack }) => {
                    self.taken(1);
                    bytes += records.iter().map(Vec::len).sum::<usize>();
                    self.batches.push((records, ack));
                }
                Ok(other) => return Some(other),
                Err(_) => return None,
            }
        }
        None
    }

    fn commit_group(&mut self, sync_tx: &SyncSender<SyncJob>) {
        let records = self.batches.iter().flat_map(|(b, _)| b.iter().map(Vec::as_slice));
        let range = match self.wal.write_records(records) {
            Ok(range) => range,
            Err(e) => {
                let mut first = Some(e);
                for (_, ack) in self.batches.drain(..) {
                    let _ = ack.send(Err(first.take().unwrap_or(Error::Poisoned)));
                }
                return;
            }
        };
        debug!(first = %range.first, last = %range.last, batches = self.batches.len(), "wal group written");
        let mut next = range.first;
        let mut acks = Vec::with_capacity(self.batches.len());
        for (records, ack) in self.batches.drain(..) {
            let last = Seq(next.0 + records.len() as u64 - 1);
            acks.push((SeqRange { first: next, last }, ack));
            next = Seq(last.0 + 1);
        }
        self.unsynced = true;
        match self.wal.config().sync {
            SyncPolicy::Always => {
                let job = SyncJob { target: self.wal.sync_target(), acks, done: None };
                self.send_job(sync_tx, job);
                self.unsynced = false;
            }
            SyncPolicy::Interval(_) => {
                // Acknowledged once written; published (to readers and cursors) by the sync
                // that covers it, at most one interval later.
                for (range, ack) in acks {
                    let _ = ack.send(Ok(range));
                }
                self.interval_tick(sync_tx);
            }
            SyncPolicy::Never => {
                publish(self.wal.shared(), &self.durable, range.last);
                for (range, ack) in acks {
                    let _ = ack.send(Ok(range));
                }
            }
        }
    }

    /// How long to wait for a message before an interval sync falls due: until then when
    /// something written is not synced yet, else indefinitely.
    fn idle_wait(&self) -> Option<std::time::Duration> {
        match self.wal.config().sync {
            SyncPolicy::Interval(every) if self.unsynced => {
                Some(every.saturating_sub(self.last_sync.elapsed()))
            }
            _ => None,
        }
    }

    /// Queues a sync of everything written so far, whatever the policy; `ack` resolves once it
    /// is durable (and published).
    fn sync_now(&mut self, sync_tx: &SyncSender<SyncJob>, ack: oneshot::Sender<Result<()>>) {
        let job = SyncJob { target: self.wal.sync_target(), acks: Vec::new(), done: Some(ack) };
        self.send_job(sync_tx, job);
        self.unsynced = false;
        self.last_sync = Instant::now();
    }

    fn send_job(&self, sync_tx: &SyncSender<SyncJob>, job: SyncJob) {
        if let Err(std::sync::mpsc::SendError(job)) = sync_tx.send(job) {
            // The sync thread is gone: nothing can become durable any more.
            self.wal.shared().poison();
            for (_, ack) in job.acks {
                let _ = ack.send(Err(Error::Poisoned));
            }
            if let Some(done) = job.done {
                let _ = done.send(Err(Error::Poisoned));
            }
        }
    }

    fn interval_tick(&mut self, sync_tx: &SyncSender<SyncJob>) {
        if let SyncPolicy::Interval(every) = self.wal.config().sync
            && self.unsynced
            && self.last_sync.elapsed() >= every
        {
            let job = SyncJob { target: self.wal.sync_target(), acks: Vec::new(), done: None };
            self.send_job(sync_tx, job);
            self.unsynced = false;
            self.last_sync = Instant::now();
        }
    }

    /// Final sync of everything written, then stops the sync thread.
    fn finish(&mut self, sync_tx: SyncSender<SyncJob>, syncer: JoinHandle<()>) -> Result<()> {
        let (done, rx) = oneshot::channel();
        let job = SyncJob { target: self.wal.sync_target(), acks: Vec::new(), done: Some(done) };
        self.send_job(&sync_tx, job);
        drop(sync_tx);
        let result = rx.blocking_recv().map_err(|_| Error::Closed).and_then(|r| r);
        result
            .and_then(|()| syncer.join().map_err(|_| Error::Closed))
            .map(|()| publish(self.wal.shared(), &self.durable, self.wal.last_seq()))
    }
}

/// The sync thread's body: coalesces queued jobs into one `fdatasync` of the newest target
/// (older targets in sealed segments were synced when sealed), then acknowledges in order.
fn sync_loop(
    rx: &Receiver<SyncJob>,
    shared: &Shared,
    metrics: &WalMetrics,
    durable: &watch::Sender<Seq>,
) {
    let mut jobs: Vec<SyncJob> = Vec::new();
    while let Ok(job) = rx.recv() {
        jobs.push(job);
        while let Ok(job) = rx.try_recv() {
            jobs.push(job);
        }
        let Some(target) = jobs.last().map(|j| j.target.clone()) else { continue };
        let result =
            if shared.is_poisoned() { Err(Error::Poisoned) } else { target.sync(shared, metrics) };
        match result {
            Ok(()) => {
                publish(shared, durable, target.upto);
                for job in jobs.drain(..) {
                    for (range, ack) in job.acks {
                        let _ = ack.send(Ok(range));
                    }
                    if let Some(done) = job.done {
                        let _ = done.send(Ok(()));
                    }
                }
            }
            Err(e) => {
                error!(error = %e, "wal sync failed; the log refuses further writes");
                let mut first = Some(e);
                for job in jobs.drain(..) {
                    for (_, ack) in job.acks {
                        let _ = ack.send(Err(first.take().unwrap_or(Error::Poisoned)));
                    }
                    if let Some(done) = job.done {
                        let _ = done.send(Err(first.take().unwrap_or(Error::Poisoned)));
                    }
                }
            }
        }
    }
}
