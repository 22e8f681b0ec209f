//! What the writer thread and every reader share: the log bounds and a WAL reader.
//!
//! Readers hold the bounds' read lock for the whole of a scan; the writer takes the write lock
//! to publish a new last entry, and for the whole of a truncation or purge, so a scan never sees
//! a record that is being cut or removed. Neither side holds it across an `.await`.

use std::{
    ops::ControlFlow,
    sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard},
};

use mempulse_primitives::Seq;
use mempulse_wal::WalReader;
use openraft::storage::LogState;

use super::tail::Tail;
use crate::{
    codec::{decode_entry, decode_entry_log_id},
    config::{TAIL_CACHE_BYTES_MAX, TAIL_CACHE_ENTRIES_MAX},
    error::{Error, Result},
    meta::LogMeta,
    types::{ClusterTypeConfig, Entry, LogId},
};

/// The log's bounds as readers see them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Bounds {
    /// The durable metadata (vote, last purged, anchor).
    pub(crate) meta: LogMeta,
    /// The last entry present (its index is above the purge point), `None` when empty.
    pub(crate) last: Option<LogId>,
}

impl Bounds {
    /// Smallest index a present entry can have.
    pub(crate) fn first_index(&self) -> u64 {
        let after_purge = self.meta.purged.map_or(0, |p| p.index.saturating_add(1));
        after_purge.max(self.meta.anchor.index)
    }

    /// openraft's view: last purged and last log id (the purged one when the log is empty).
    pub(crate) fn log_state<C: ClusterTypeConfig>(&self) -> LogState<C> {
        LogState {
            last_purged_log_id: self.meta.purged,
            last_log_id: self.last.or(self.meta.purged),
        }
    }
}

/// State shared by the store, its readers and its writer thread.
#[derive(Debug)]
pub(crate) struct Shared {
    bounds: RwLock<Bounds>,
    reader: WalReader,
    /// The entries written last, served without reading the WAL (`tail.rs`).
    tail: Mutex<Tail>,
}

impl Shared {
    pub(crate) const fn new(bounds: Bounds, reader: WalReader) -> Self {
        Self {
            bounds: RwLock::new(bounds),
            reader,
            tail: Mutex::new(Tail::new(TAIL_CACHE_ENTRIES_MAX, TAIL_CACHE_BYTES_MAX)),
        }
    }

    /// The in-memory tail (updated by the store after each write, in openraft's order).
    pub(crate) fn tail(&self) -> MutexGuard<'_, Tail> {
        self.tail.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A copy of the bounds (a panic elsewhere never makes them unreadable: they are plain data
    /// replaced whole).
    pub(crate) fn bounds(&self) -> Bounds {
        *self.read_guard()
    }

    fn read_guard(&self) -> RwLockReadGuard<'_, Bounds> {
        self.bounds.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn write_guard(&self) -> RwLockWriteGuard<'_, Bounds> {
        self.bounds.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Entries with index in `start..end` that the log holds, at most `max` of them, in order.
    pub(crate) fn read_range(&self, start: u64, end: u64, max: u64) -> Result<Vec<Entry>> {
        let bounds = self.read_guard();
        let Some(last) = bounds.last else { return Ok(Vec::new()) };
        let lo = start.max(bounds.first_index());
        let hi = end.min(last.index.saturating_add(1));
        if lo >= hi {
            return Ok(Vec::new());
        }
        let count = (hi - lo).min(max);
        // Under the bounds' read lock: the tail holds what the WAL holds up to `last`.
        if let Some(hit) = self.tail().get(lo, count) {
            return Ok(hit);
        }
        let anchor = bounds.meta.anchor;
        let limit = usize::try_from(count).unwrap_or(usize::MAX);
        let mut out = Vec::with_capacity(limit.min(1024));
        let mut failure = None;
        self.reader.scan_with(anchor.seq_of(lo), limit, |seq, payload| {
            match check_entry(seq, anchor.index_of(seq), decode_entry(payload)) {
                Ok(entry) => {
                    out.push(entry);
                    ControlFlow::Continue(())
                }
                Err(e) => {
                    failure = Some(e);
                    ControlFlow::Break(())
                }
            }
        })?;
        drop(bounds);
        if let Some(e) = failure {
            return Err(e);
        }
        if out.len() != limit {
            // The bounds promised these records: the WAL lost some.
            let missing = lo.saturating_add(out.len() as u64);
            return Err(Error::MissingEntry { index: missing });
        }
        Ok(out)
    }
}

fn check_entry(
    seq: Seq,
    expected: u64,
    decoded: Result<Entry, mempulse_primitives::DecodeError>,
) -> Result<Entry> {
    let entry = decoded.map_err(|source| Error::EntryCorrupt { seq, source })?;
    if entry.log_id.index != expected {
        return Err(Error::IndexMismatch { seq, expected, found: entry.log_id.index });
    }
    Ok(entry)
}

/// The last entry present in the WAL under `meta`, read from disk (at open and after a
/// truncation).
pub(crate) fn last_present(
    reader: &WalReader,
    meta: &LogMeta,
    last_seq: Seq,
) -> Result<Option<LogId>> {
    if last_seq < meta.anchor.seq {
        return Ok(None);
    }
    let index = meta.anchor.index_of(last_seq);
    if meta.purged.is_some_and(|p| index <= p.index) {
        return Ok(None);
    }
    let mut found = None;
    reader.scan_with(last_seq, 1, |seq, payload| {
        found = Some(
            decode_entry_log_id(payload).map_err(|source| Error::EntryCorrupt { seq, source }),
        );
        ControlFlow::Break(())
    })?;
    let log_id = found.ok_or(Error::MissingEntry { index })??;
    if log_id.index != index {
        return Err(Error::IndexMismatch { seq: last_seq, expected: index, found: log_id.index });
    }
    Ok(Some(log_id))
}
