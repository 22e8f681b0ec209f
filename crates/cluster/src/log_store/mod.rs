//! The Raft log store on `mempulse-wal`: [`LogStore`] (openraft's `RaftLogStorage`) and its
//! cloneable [`LogReader`].
//!
//! The layout, the index ↔ seq mapping and the durability rules are described in
//! `docs/design/raft-log.md`.

mod shared;
mod tail;
mod writer;

use std::{
    fmt, fs, io, marker::PhantomData, ops::Bound, ops::RangeBounds, sync::Arc, thread,
    time::Duration,
};

use mempulse_primitives::Seq;
use mempulse_wal::{Storage, SyncPolicy, Wal, WalConfig};
use openraft::{
    OptionalSend, RaftLogReader,
    storage::{IOFlushed, LogState, RaftLogStorage},
};
use tokio::sync::{mpsc, oneshot};

use self::{
    shared::{Bounds, Shared, last_present},
    writer::{Job, Writer},
};
use crate::{
    codec::encode_entry,
    config::{LogStoreConfig, READ_BATCH_ENTRIES_MAX, WAL_DIR, WRITE_QUEUE_CAPACITY},
    error::{Error, MetaOp, Result},
    meta::MetaFile,
    types::{ClusterTypeConfig, Entry, LogId, TypeConfig, Vote},
};

/// The Raft log of one node, stored in a `mempulse-wal` log plus a small metadata file.
///
/// Writes (appends, votes, truncations, purges) run in order on a dedicated writer thread, so
/// no `fsync` ever runs on an async worker; reads run on the caller's task against the WAL's
/// concurrent reader. A store on an in-memory disk ([`LogStore::open_in_memory`], for the
/// deterministic simulation) runs the same writer as a task of the async runtime instead.
///
/// `C` is the openraft type configuration it serves: [`TypeConfig`] in a node, any other
/// [`ClusterTypeConfig`] (the simulated runtime's) otherwise.
pub struct LogStore<C: ClusterTypeConfig = TypeConfig> {
    shared: Arc<Shared>,
    jobs: mpsc::Sender<Job<C>>,
    closed: Option<oneshot::Receiver<()>>,
}

impl<C: ClusterTypeConfig> fmt::Debug for LogStore<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogStore").field("bounds", &self.shared.bounds()).finish_non_exhaustive()
    }
}

/// The writer of a store opened with [`LogStore::open_in_memory`], to run as a task of the
/// store's async runtime (it serves the store's writes until the store is dropped).
pub struct LogWriterTask<C: ClusterTypeConfig> {
    writer: Writer<C>,
    jobs: mpsc::Receiver<Job<C>>,
    closed: oneshot::Sender<()>,
}

impl<C: ClusterTypeConfig> fmt::Debug for LogWriterTask<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogWriterTask").finish_non_exhaustive()
    }
}

impl<C: ClusterTypeConfig> LogWriterTask<C> {
    /// Serves the store's writes in arrival order, grouping appends under one sync as the
    /// writer thread does, and waits `sync_delay()` of the runtime's (virtual) time before each
    /// group sync: appends written but not yet synced are what a simulated power loss drops.
    pub async fn run(self, sync_delay: impl FnMut() -> Duration + Send) {
        self.writer.run_async(self.jobs, self.closed, sync_delay).await;
    }
}

impl LogStore {
    /// Opens (or creates) the store in `config.dir` and starts its writer thread.
    ///
    /// This does blocking IO (it recovers the WAL): call it before starting the runtime's work
    /// or from a blocking task.
    ///
    /// # Errors
    /// [`Error::Wal`] when the WAL cannot be opened (including another process holding it),
    /// [`Error::MetaIo`] / [`Error::MetaCorrupt`] for the metadata file,
    /// [`Error::WalBehindAnchor`], [`Error::EntryCorrupt`] or [`Error::IndexMismatch`] when the
    /// WAL and the metadata disagree, [`Error::Spawn`] when the thread cannot start.
    pub fn open(config: &LogStoreConfig) -> Result<Self> {
        fs::create_dir_all(&config.dir).map_err(|source| Error::MetaIo {
            op: MetaOp::Create,
            path: config.dir.clone(),
            source,
        })?;
        let meta_file = MetaFile::new(&config.dir);
        let meta = meta_file.load()?;
        let wal_config = WalConfig::new(config.dir.join(WAL_DIR))
            .with_sync(SyncPolicy::Never)
            .with_first_seq(meta.anchor.seq)
            .with_segment_size_bytes(config.segment_size_bytes)
            .with_preallocate(config.preallocate)
            .with_metrics_label("raft");
        let wal = Wal::open(wal_config)?;
        let (store, writer) = Self::assemble(wal, meta_file, meta)?;
        thread::Builder::new()
            .name("raft-log-writer".to_owned())
            .spawn(move || writer.writer.run(writer.jobs, writer.closed))
            .map_err(Error::Spawn)?;
        Ok(store)
    }
}

impl<C: ClusterTypeConfig> LogStore<C> {
    /// Opens (or creates) a store on in-memory disks whose operations never block (the WAL's
    /// `SimStorage`): the metadata file on `meta`, the WAL on `wal`. Returns the store and its
    /// writer, which the caller runs as a task of `C`'s runtime ([`LogWriterTask::run`]); no
    /// thread is started, so a single-threaded simulated runtime stays deterministic. The WAL
    /// prepares no segment ahead (that would take a helper thread).
    ///
    /// # Errors
    /// As [`LogStore::open`], but never [`Error::Spawn`].
    pub fn open_in_memory(
        config: &LogStoreConfig,
        meta: Arc<dyn Storage>,
        wal: Arc<dyn Storage>,
    ) -> Result<(Self, LogWriterTask<C>)> {
        let meta_file = MetaFile::on_storage(meta);
        let log_meta = meta_file.load()?;
        let wal_config = WalConfig::new(config.dir.join(WAL_DIR))
            .with_sync(SyncPolicy::Never)
            .with_first_seq(log_meta.anchor.seq)
            .with_segment_size_bytes(config.segment_size_bytes)
            .with_preallocate(config.preallocate)
            .with_prepare_ahead(false)
            .with_metrics_label("raft");
        let wal = Wal::open_with_storage(wal_config, wal)?;
        Self::assemble(wal, meta_file, log_meta)
    }

    /// Checks the opened WAL against the metadata and builds the store and its writer.
    fn assemble(
        mut wal: Wal,
        meta_file: MetaFile,
        meta: crate::meta::LogMeta,
    ) -> Result<(Self, LogWriterTask<C>)> {
        // The WAL runs under `SyncPolicy::Never` (this store syncs explicitly) and so does not
        // sync the tail it recovered: entries written before a process crash may sit only in
        // the page cache. openraft will report them as this node's log (votes, append replies),
        // so they must be durable first.
        wal.sync()?;
        if wal.last_seq().0 + 1 < meta.anchor.seq.0 {
            return Err(Error::WalBehindAnchor {
                last_seq: wal.last_seq(),
                anchor_seq: meta.anchor.seq,
            });
        }
        let last = last_present(&wal.reader(), &meta, wal.last_seq())?;
        let shared = Arc::new(Shared::new(Bounds { meta, last }, wal.reader()));
        let (jobs, rx) = mpsc::channel(WRITE_QUEUE_CAPACITY);
        let (closed_tx, closed) = oneshot::channel();
        let writer = Writer { wal, meta_file, shared: Arc::clone(&shared), pending: Vec::new() };
        let task = LogWriterTask { writer, jobs: rx, closed: closed_tx };
        Ok((Self { shared, jobs, closed: Some(closed) }, task))
    }

    /// Stops the writer thread after it has synced everything written, and waits until the WAL
    /// is closed (its directory lock released), so the store can be reopened.
    pub async fn close(mut self) {
        let closed = self.closed.take();
        drop(self);
        if let Some(closed) = closed {
            // An error means the thread already ended.
            let _ = closed.await;
        }
    }

    /// Takes the signal that resolves once the writer thread has stopped and the WAL is closed
    /// (after the store was dropped), so an owner that hands the store to openraft can still
    /// wait for the directory lock to be released. `None` when already taken.
    pub(crate) fn take_closed(&mut self) -> Option<oneshot::Receiver<()>> {
        self.closed.take()
    }

    /// The current last purged and last log ids.
    #[must_use]
    pub fn log_state(&self) -> LogState<C> {
        self.shared.bounds().log_state()
    }

    /// The last saved vote.
    #[must_use]
    pub fn vote(&self) -> Option<Vote> {
        self.shared.bounds().meta.vote
    }

    /// A reader over this store's log.
    #[must_use]
    pub fn reader(&self) -> LogReader<C> {
        LogReader { shared: Arc::clone(&self.shared), config: PhantomData }
    }

    async fn request(&self, make: impl FnOnce(writer::Reply) -> Job<C>) -> io::Result<()> {
        let (done, rx) = oneshot::channel();
        self.jobs.send(make(done)).await.map_err(|_| Error::Closed.into_io())?;
        rx.await.map_err(|_| Error::Closed.into_io())?
    }
}

/// An encoded, contiguous batch of entries (kept, for the in-memory tail).
struct Batch {
    records: Vec<Vec<u8>>,
    entries: Vec<Entry>,
    first: u64,
    last: LogId,
}

/// Encodes a batch and checks it is contiguous; `None` for no entries.
fn encode_batch(entries: impl IntoIterator<Item = Entry>) -> Result<Option<Batch>> {
    let mut batch: Option<Batch> = None;
    for entry in entries {
        let index = entry.log_id.index;
        let record = encode_entry(&entry);
        match &mut batch {
            None => {
                let (first, last) = (index, entry.log_id);
                batch = Some(Batch { records: vec![record], entries: vec![entry], first, last });
            }
            Some(batch) => {
                let expected = batch.last.index.saturating_add(1);
                if index != expected {
                    return Err(Error::NotContiguous { expected, found: index });
                }
                batch.last = entry.log_id;
                batch.records.push(record);
                batch.entries.push(entry);
            }
        }
    }
    Ok(batch)
}

impl<C: ClusterTypeConfig> RaftLogStorage<C> for LogStore<C> {
    type LogReader = LogReader<C>;

    async fn get_log_state(&mut self) -> io::Result<LogState<C>> {
        Ok(self.log_state())
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.reader()
    }

    async fn save_vote(&mut self, vote: &Vote) -> io::Result<()> {
        let vote = *vote;
        self.request(|done| Job::SaveVote { vote, done }).await
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed<C>) -> io::Result<()>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let Some(Batch { records, entries, first, last }) =
            encode_batch(entries).map_err(Error::into_io)?
        else {
            callback.io_completed(Ok(()));
            return Ok(());
        };
        let sizes: Vec<usize> = records.iter().map(Vec::len).collect();
        let written = self
            .request(|written| Job::Append { records, first, last, written, flushed: callback })
            .await;
        // openraft issues the store's writes one at a time, each awaited: the tail follows
        // the WAL in the same order (entries join it once written).
        match &written {
            Ok(()) => self.shared.tail().extend(entries, &sizes),
            Err(_) => self.shared.tail().clear(),
        }
        written
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> io::Result<()> {
        let done = self.request(|done| Job::Truncate { after: last_log_id, done }).await;
        let mut tail = self.shared.tail();
        match &done {
            Ok(()) => tail.truncate_after(last_log_id.map(|id| id.index)),
            Err(_) => tail.clear(),
        }
        drop(tail);
        done
    }

    async fn purge(&mut self, log_id: LogId) -> io::Result<()> {
        let done = self.request(|done| Job::Purge { upto: log_id, done }).await;
        let mut tail = self.shared.tail();
        match &done {
            Ok(()) => tail.purge(log_id.index),
            Err(_) => tail.clear(),
        }
        drop(tail);
        done
    }
}

/// A cloneable reader of a [`LogStore`]'s log and vote, used by openraft's replication tasks.
pub struct LogReader<C: ClusterTypeConfig = TypeConfig> {
    shared: Arc<Shared>,
    config: PhantomData<fn() -> C>,
}

impl<C: ClusterTypeConfig> Clone for LogReader<C> {
    fn clone(&self) -> Self {
        Self { shared: Arc::clone(&self.shared), config: PhantomData }
    }
}

impl<C: ClusterTypeConfig> fmt::Debug for LogReader<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogReader").field("shared", &self.shared).finish()
    }
}

impl<C: ClusterTypeConfig> LogReader<C> {
    /// Entries with index in `range` that the log holds, at most `max` of them, in order.
    ///
    /// # Errors
    /// [`Error::Wal`] when a read fails, [`Error::EntryCorrupt`], [`Error::IndexMismatch`] or
    /// [`Error::MissingEntry`] when the WAL does not hold what the log's bounds promise.
    pub fn entries(&self, range: impl RangeBounds<u64>, max: u64) -> Result<Vec<Entry>> {
        let start = match range.start_bound() {
            Bound::Included(&s) => s,
            Bound::Excluded(&s) => s.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&e) => e.saturating_add(1),
            Bound::Excluded(&e) => e,
            Bound::Unbounded => u64::MAX,
        };
        self.shared.read_range(start, end, max)
    }

    /// WAL seq of the first record this log still keeps on disk (for diagnostics).
    #[must_use]
    pub fn first_wal_seq(&self) -> Seq {
        self.shared.bounds().meta.anchor.seq
    }
}

impl<C: ClusterTypeConfig> RaftLogReader<C> for LogReader<C> {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + fmt::Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> io::Result<Vec<Entry>> {
        self.entries(range, u64::MAX).map_err(Error::into_io)
    }

    async fn read_vote(&mut self) -> io::Result<Option<Vote>> {
        Ok(self.shared.bounds().meta.vote)
    }

    async fn limited_get_log_entries(&mut self, start: u64, end: u64) -> io::Result<Vec<Entry>> {
        self.entries(start..end, READ_BATCH_ENTRIES_MAX).map_err(Error::into_io)
    }
}
