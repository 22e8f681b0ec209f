//! Early writeback of the active segment when groups are not synced one by one.
//!
//! Under [`SyncPolicy::Never`](crate::SyncPolicy::Never) and `Interval` the page cache holds
//! everything written since the last sync, and sealing a segment at a roll must `fdatasync`
//! all of it: up to a whole segment (64 MiB by default) written back while the writer waits,
//! tens of milliseconds per roll. A helper thread instead starts writing the active segment
//! back every [`WalConfig::writeback_bytes`](crate::WalConfig::writeback_bytes) written
//! ([`StorageFile::start_writeback`]: `sync_file_range(SYNC_FILE_RANGE_WRITE)`, which queues
//! the dirty pages and returns without waiting for them or committing metadata), while the
//! writer goes on, so the roll's sync finds little left to write.
//!
//! Starting writeback rather than syncing matters: an `fdatasync` per threshold waits for its
//! pages and commits the journal (the `fallocate`d blocks' extent conversion) before the next
//! one can start, so the disk idles between them and the roll still waited 10–50 ms in all;
//! queued writeback keeps the disk busy and leaves each roll's sync 3–7 ms
//! (`docs/design/wal.md`).
//!
//! It is an optimisation only: it never acknowledges or publishes anything. A failed request
//! poisons the log like a failed sync (pages whose write failed could later look clean to a
//! sync that then succeeds). It runs only on the real filesystem (`Wal::open`): on a
//! simulated storage background writeback would make crash images depend on thread timing.

use std::{
    sync::{Arc, mpsc::SyncSender},
    thread::JoinHandle,
};

use tracing::warn;

use crate::{error::Result, state::Shared, storage::StorageFile};

/// The helper thread and the running count of bytes written since the last request.
#[derive(Debug)]
pub(crate) struct Writeback {
    requests: Option<SyncSender<(Arc<dyn StorageFile>, u64)>>,
    thread: Option<JoinHandle<()>>,
    every: u64,
    pending_bytes: u64,
}

impl Writeback {
    /// Starts the thread; it starts writeback of each file it is handed and poisons `shared`
    /// on failure.
    pub(crate) fn start(shared: Arc<Shared>, every: u64) -> Result<Self> {
        let (requests, rx) = std::sync::mpsc::sync_channel::<(Arc<dyn StorageFile>, u64)>(1);
        let thread = crate::sequencer::spawn("mempulse-wal-writeback", move || {
            while let Ok((file, end)) = rx.recv() {
                if shared.is_poisoned() {
                    continue;
                }
                if let Err(error) = file.start_writeback(end) {
                    shared.poison();
                    warn!(%error, "wal background writeback failed; the log refuses writes");
                }
            }
        })?;
        Ok(Self { requests: Some(requests), thread: Some(thread), every, pending_bytes: 0 })
    }

    /// Counts `bytes` written to `active`, whose records now end at `end`; past the threshold,
    /// hands `active` to the thread to write back up to `end` (not the zeros of a write's
    /// padding past it, which the next records overwrite), unless the thread is still busy
    /// with the previous request (the bytes then count towards the next).
    pub(crate) fn written(&mut self, bytes: u64, end: u64, active: &Arc<dyn StorageFile>) {
        self.pending_bytes = self.pending_bytes.saturating_add(bytes);
        if self.pending_bytes < self.every {
            return;
        }
        if let Some(requests) = &self.requests
            && requests.try_send((Arc::clone(active), end)).is_ok()
        {
            self.pending_bytes = 0;
        }
    }

    /// The active segment was just synced (a roll, an explicit sync): nothing is pending.
    pub(crate) const fn synced(&mut self) {
        self.pending_bytes = 0;
    }
}

impl Drop for Writeback {
    fn drop(&mut self) {
        // Stop taking requests and wait for the request in progress, so nothing touches the
        // directory after the log (and its lock) is gone.
        self.requests = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{
        io,
        sync::atomic::{AtomicU32, AtomicU64, Ordering},
    };

    use mempulse_primitives::Seq;

    use super::*;
    use crate::test_utils::SimStorage;

    /// A file that only counts syncs and writeback requests (and fails those when asked to).
    #[derive(Debug, Default)]
    struct CountingFile {
        syncs: AtomicU32,
        writebacks: AtomicU32,
        last_end: AtomicU64,
        fail: bool,
    }

    impl StorageFile for CountingFile {
        fn read_at(&self, _: &mut [u8], _: u64) -> io::Result<usize> {
            Ok(0)
        }
        fn write_all_at(&self, _: &[u8], _: u64) -> io::Result<()> {
            Ok(())
        }
        fn sync_data(&self) -> io::Result<()> {
            self.syncs.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
        fn start_writeback(&self, end: u64) -> io::Result<()> {
            self.writebacks.fetch_add(1, Ordering::SeqCst);
            self.last_end.store(end, Ordering::SeqCst);
            if self.fail { Err(io::Error::other("injected")) } else { Ok(()) }
        }
        fn size(&self) -> io::Result<u64> {
            Ok(0)
        }
        fn set_len(&self, _: u64) -> io::Result<()> {
            Ok(())
        }
        fn allocate(&self, _: u64) -> io::Result<()> {
            Ok(())
        }
    }

    fn shared() -> Arc<Shared> {
        Arc::new(Shared::new(Arc::new(SimStorage::new()), 1 << 20, Seq(1), Seq(0)))
    }

    #[test]
    fn starts_writeback_once_the_threshold_is_crossed_and_not_before() {
        let shared = shared();
        let file = Arc::new(CountingFile::default());
        let active: Arc<dyn StorageFile> = file.clone();
        let mut writeback = Writeback::start(Arc::clone(&shared), 100).unwrap();
        writeback.written(60, 92, &active);
        writeback.written(39, 131, &active);
        writeback.synced();
        // 99 bytes, then a sync by the writer: nothing owed.
        writeback.written(60, 191, &active);
        writeback.written(60, 251, &active);
        // Dropping joins the thread after the request it took.
        drop(writeback);
        assert_eq!(file.writebacks.load(Ordering::SeqCst), 1);
        // Up to where the records end, not past them.
        assert_eq!(file.last_end.load(Ordering::SeqCst), 251);
        // It only starts writeback: it never syncs (that stays the writer's and sealing's).
        assert_eq!(file.syncs.load(Ordering::SeqCst), 0);
        assert!(!shared.is_poisoned());
    }

    #[test]
    fn a_failed_background_writeback_poisons_the_log() {
        let shared = shared();
        let file = Arc::new(CountingFile { fail: true, ..CountingFile::default() });
        let active: Arc<dyn StorageFile> = file.clone();
        let mut writeback = Writeback::start(Arc::clone(&shared), 1).unwrap();
        writeback.written(1, 33, &active);
        drop(writeback);
        assert_eq!(file.writebacks.load(Ordering::SeqCst), 1);
        assert!(shared.is_poisoned());
    }
}
