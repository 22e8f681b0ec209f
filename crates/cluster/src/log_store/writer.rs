//! The store's writer thread: owns the WAL and the metadata file, runs every write in arrival
//! order, and group-commits appends (one `fdatasync` for all appends queued together).
//!
//! An append is readable as soon as its records are written (the caller's `append` returns
//! then); its openraft callback fires only after the `fdatasync` that covers it. Before any other
//! request (vote, truncate, purge) the pending appends are synced and reported, so writes become
//! durable in the order they were issued.

use std::{io, sync::Arc, time::Duration};

use mempulse_primitives::Seq;
use mempulse_wal::Wal;
use openraft::{storage::IOFlushed, type_config::TypeConfigExt};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error, info};

use super::shared::{Shared, last_present};
use crate::{
    config::FLUSH_GROUP_MAX,
    error::{Error, Result},
    meta::{Anchor, MetaFile},
    types::{ClusterTypeConfig, LogId, Vote},
};

/// Reply channel of a request (`io::Error` is what openraft's traits return).
pub(crate) type Reply = oneshot::Sender<io::Result<()>>;

/// One request to the writer thread.
pub(crate) enum Job<C: ClusterTypeConfig> {
    /// Append encoded entries `first ..= last.index`.
    Append {
        records: Vec<Vec<u8>>,
        first: u64,
        last: LogId,
        /// Answered once the records are written (readable).
        written: Reply,
        /// Called once they are durable.
        flushed: IOFlushed<C>,
    },
    /// Persist a vote.
    SaveVote { vote: Vote, done: Reply },
    /// Remove every entry after `after` (all of them for `None`).
    Truncate { after: Option<LogId>, done: Reply },
    /// Forget every entry up to `upto`, inclusive.
    Purge { upto: LogId, done: Reply },
}

/// The writer: single owner of the WAL.
pub(crate) struct Writer<C: ClusterTypeConfig> {
    pub(crate) wal: Wal,
    pub(crate) meta_file: MetaFile,
    pub(crate) shared: Arc<Shared>,
    pub(crate) pending: Vec<IOFlushed<C>>,
}

impl<C: ClusterTypeConfig> Writer<C> {
    /// Serves requests on the calling (dedicated) thread until every sender is dropped, then
    /// syncs and closes the WAL.
    pub(crate) fn run(mut self, mut jobs: mpsc::Receiver<Job<C>>, closed: oneshot::Sender<()>) {
        while let Some(job) = jobs.blocking_recv() {
            self.serve_group(job, &mut jobs);
            self.flush();
        }
        self.close(closed);
    }

    /// Serves requests as a task of the async runtime until every sender is dropped, waiting
    /// `sync_delay()` before each group sync (a simulated fsync latency: the window in which a
    /// crash loses what was written). Only for storage that never blocks.
    pub(crate) async fn run_async(
        mut self,
        mut jobs: mpsc::Receiver<Job<C>>,
        closed: oneshot::Sender<()>,
        mut sync_delay: impl FnMut() -> Duration + Send,
    ) {
        while let Some(job) = jobs.recv().await {
            self.serve_group(job, &mut jobs);
            if !self.pending.is_empty() {
                let delay = sync_delay();
                if !delay.is_zero() {
                    C::sleep(delay).await;
                }
            }
            self.flush();
        }
        self.close(closed);
    }

    /// Runs `job` and, while they are appends, the requests already queued behind it (at most
    /// [`FLUSH_GROUP_MAX`] appends under one sync); the caller syncs the group.
    fn serve_group(&mut self, job: Job<C>, jobs: &mut mpsc::Receiver<Job<C>>) {
        let mut appended = self.serve(job);
        while appended
            && self.pending.len() < FLUSH_GROUP_MAX
            && let Ok(next) = jobs.try_recv()
        {
            appended = self.serve(next);
        }
    }

    /// Runs one request; `true` for an append (written, its sync pending).
    fn serve(&mut self, job: Job<C>) -> bool {
        match job {
            Job::Append { records, first, last, written, flushed } => {
                match self.append(&records, first, last) {
                    Ok(()) => {
                        // The caller may have gone away; the flush still reports.
                        let _ = written.send(Ok(()));
                        self.pending.push(flushed);
                    }
                    Err(e) => {
                        let e = Arc::new(e);
                        let _ = written.send(Err(shared_io(&e)));
                        flushed.io_completed(Err(shared_io(&e)));
                    }
                }
                return true;
            }
            Job::SaveVote { vote, done } => {
                self.flush();
                let _ = done.send(self.save_vote(vote).map_err(Error::into_io));
            }
            Job::Truncate { after, done } => {
                self.flush();
                let _ = done.send(self.truncate(after).map_err(Error::into_io));
            }
            Job::Purge { upto, done } => {
                self.flush();
                let _ = done.send(self.purge(upto).map_err(Error::into_io));
            }
        }
        false
    }

    fn close(mut self, closed: oneshot::Sender<()>) {
        self.flush();
        drop(self);
        let _ = closed.send(());
    }

    /// Syncs what was written and reports every pending append.
    fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let result = self.wal.sync();
        if let Err(e) = &result {
            error!(error = %e, "raft log sync failed");
        }
        debug!(appends = self.pending.len(), "raft log appends flushed");
        let shared = result.map_err(|e| Arc::new(Error::Wal(e)));
        for flushed in self.pending.drain(..) {
            let result = match &shared {
                Ok(()) => Ok(()),
                Err(e) => Err(shared_io(e)),
            };
            flushed.io_completed(result);
        }
    }

    fn next_index(&self, anchor: Anchor) -> u64 {
        anchor.index_of(Seq(self.wal.last_seq().0 + 1))
    }

    fn append(&mut self, records: &[Vec<u8>], first: u64, last: LogId) -> Result<()> {
        let bounds = self.shared.bounds();
        let expected = self.next_index(bounds.meta.anchor);
        let above_purge = bounds.meta.purged.is_none_or(|p| first > p.index);
        if bounds.last.is_none() && above_purge && first != expected {
            // An empty log may continue anywhere above the purge point (after a snapshot was
            // installed): re-anchor, durably, before any record relies on the new mapping.
            let mut meta = bounds.meta;
            meta.anchor = Anchor { seq: Seq(self.wal.last_seq().0 + 1), index: first };
            self.meta_file.store(&meta)?;
            self.shared.write_guard().meta = meta;
            info!(index = first, seq = %meta.anchor.seq, "raft log re-anchored");
        } else if first != expected || !above_purge {
            return Err(Error::NotContiguous { expected, found: first });
        }
        self.wal.append(records)?;
        self.shared.write_guard().last = Some(last);
        Ok(())
    }

    fn save_vote(&mut self, vote: Vote) -> Result<()> {
        let mut meta = self.shared.bounds().meta;
        meta.vote = Some(vote);
        self.meta_file.store(&meta)?;
        self.shared.write_guard().meta = meta;
        Ok(())
    }

    fn truncate(&mut self, after: Option<LogId>) -> Result<()> {
        let mut guard = self.shared.write_guard();
        let bounds = *guard;
        let Some(last) = bounds.last else { return Ok(()) };
        let anchor = bounds.meta.anchor;
        let keep_seq = match after {
            Some(id) if id.index >= last.index => return Ok(()),
            Some(id) if id.index >= anchor.index => anchor.seq_of(id.index),
            Some(_) | None => Seq(anchor.seq.0 - 1),
        };
        self.wal.truncate_after(keep_seq)?;
        guard.last = last_present(&self.shared_reader(), &bounds.meta, self.wal.last_seq())?;
        info!(after = ?after.map(|id| id.index), "raft log truncated");
        Ok(())
    }

    fn shared_reader(&self) -> mempulse_wal::WalReader {
        self.wal.reader()
    }

    fn purge(&mut self, upto: LogId) -> Result<()> {
        let bounds = self.shared.bounds();
        if bounds.meta.purged.is_some_and(|p| p.index >= upto.index) {
            return Ok(());
        }
        let mut meta = bounds.meta;
        meta.purged = Some(upto);
        let emptied = bounds.last.is_none_or(|last| last.index <= upto.index);
        if emptied {
            // Nothing is left: the next entry is `upto + 1`, right after the WAL's end.
            meta.anchor = Anchor { seq: Seq(self.wal.last_seq().0 + 1), index: upto.index + 1 };
        }
        self.meta_file.store(&meta)?;
        let mut guard = self.shared.write_guard();
        guard.meta = meta;
        if emptied {
            guard.last = None;
        }
        let first_kept = meta.anchor.seq_of(guard.first_index().max(meta.anchor.index));
        self.wal.purge_before(first_kept)?;
        drop(guard);
        info!(upto = upto.index, "raft log purged");
        Ok(())
    }
}

fn shared_io(e: &Arc<Error>) -> io::Error {
    io::Error::new(e.io_kind(), SharedError(Arc::clone(e)))
}

/// One error reported to several callbacks.
#[derive(Debug)]
struct SharedError(Arc<Error>);

impl std::fmt::Display for SharedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for SharedError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.0.as_ref())
    }
}
