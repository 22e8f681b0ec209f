//! Creating segment files: from the pool of spare files (purged segments kept for reuse, or
//! files prepared ahead by a background thread), or from scratch.
//!
//! Preparing a segment (zero-filling or `fallocate`-ing it and syncing) is slow enough to stall
//! the writer at every roll; with `WalConfig::prepare_ahead` a helper thread prepares the next
//! spare while the current segment fills, so a roll only writes and syncs a 32-byte header.

use std::{
    sync::{
        Arc,
        mpsc::{Receiver, SyncSender},
    },
    thread::JoinHandle,
};

use mempulse_primitives::Seq;
use tracing::warn;

use crate::{
    codec::{self, HEADER_LEN},
    config::{Preallocate, READ_CHUNK_BYTES, WalConfig},
    error::{Error, IoOp, Result},
    segment::{self, Segment},
    storage::{Storage, StorageFile},
};

pub(crate) fn io_err(
    storage: &dyn Storage,
    op: IoOp,
    name: &str,
) -> impl FnOnce(std::io::Error) -> Error + use<> {
    let path = storage.path_of(name);
    move |e| Error::io(op, path, e)
}

/// Creates the segment starting at `first`, durable and published under its final name,
/// reusing a pooled spare file when there is one (its stale bytes fail the seq-covering
/// checksum, so they are never read as records).
pub(crate) fn create_segment(
    storage: &dyn Storage,
    config: &WalConfig,
    pool: &mut Vec<String>,
    first: Seq,
) -> Result<Arc<Segment>> {
    let name = segment::segment_name(first);
    let header = codec::encode_header(first);
    let file = if let Some(old) = pool.pop() {
        let file = storage.open(&old).map_err(io_err(storage, IoOp::Open, &old))?;
        file.write_all_at(&header, 0).map_err(io_err(storage, IoOp::Write, &old))?;
        file.sync_data().map_err(io_err(storage, IoOp::Sync, &old))?;
        storage.rename(&old, &name).map_err(io_err(storage, IoOp::Rename, &old))?;
        file
    } else {
        let tmp = segment::tmp_name(first);
        let file = storage.create(&tmp).map_err(io_err(storage, IoOp::Create, &tmp))?;
        file.write_all_at(&header, 0).map_err(io_err(storage, IoOp::Write, &tmp))?;
        extend(storage, config, file.as_ref(), &tmp, HEADER_LEN as u64)?;
        file.sync_data().map_err(io_err(storage, IoOp::Sync, &tmp))?;
        storage.rename(&tmp, &name).map_err(io_err(storage, IoOp::Rename, &tmp))?;
        file
    };
    storage.sync_dir().map_err(io_err(storage, IoOp::SyncDir, ""))?;
    Ok(Arc::new(Segment::new(first, name, file, HEADER_LEN as u64)))
}

/// Gives `file` its full segment size from `from` on, per the preallocation strategy.
pub(crate) fn extend(
    storage: &dyn Storage,
    config: &WalConfig,
    file: &dyn StorageFile,
    name: &str,
    from: u64,
) -> Result<()> {
    let size = config.segment_size_bytes;
    match config.effective_preallocate() {
        Preallocate::ZeroFill => {
            let zeros = vec![0u8; READ_CHUNK_BYTES];
            let mut at = from;
            while at < size {
                let n = usize::try_from(size - at).unwrap_or(usize::MAX).min(zeros.len());
                let chunk = zeros.get(..n).unwrap_or_default();
                file.write_all_at(chunk, at).map_err(io_err(storage, IoOp::Write, name))?;
                at += n as u64;
            }
            Ok(())
        }
        // `effective_preallocate` never returns `Auto`; it allocates like `Fallocate` regardless.
        Preallocate::Auto | Preallocate::Fallocate | Preallocate::Recycle => {
            file.allocate(size).map_err(io_err(storage, IoOp::Allocate, name))
        }
    }
}

/// Prepares one spare file `id` under its final name.
fn prepare_spare(storage: &dyn Storage, config: &WalConfig, id: u64) -> Result<String> {
    let (tmp, name) = (segment::spare_tmp_name(id), segment::spare_name(id));
    let file = storage.create(&tmp).map_err(io_err(storage, IoOp::Create, &tmp))?;
    extend(storage, config, file.as_ref(), &tmp, 0)?;
    file.sync_data().map_err(io_err(storage, IoOp::Sync, &tmp))?;
    storage.rename(&tmp, &name).map_err(io_err(storage, IoOp::Rename, &tmp))?;
    storage.sync_dir().map_err(io_err(storage, IoOp::SyncDir, ""))?;
    Ok(name)
}

/// A helper thread that prepares one spare segment file at a time, on request.
#[derive(Debug)]
pub(crate) struct Preparer {
    requests: Option<SyncSender<u64>>,
    ready: Receiver<Result<String>>,
    thread: Option<JoinHandle<()>>,
    pending: bool,
    next_id: u64,
}

impl Preparer {
    pub(crate) fn start(
        storage: Arc<dyn Storage>,
        config: WalConfig,
        next_id: u64,
    ) -> Result<Self> {
        let (requests, rx) = std::sync::mpsc::sync_channel::<u64>(1);
        let (tx, ready) = std::sync::mpsc::sync_channel(1);
        let thread = crate::sequencer::spawn("mempulse-wal-prepare", move || {
            while let Ok(id) = rx.recv() {
                if tx.send(prepare_spare(storage.as_ref(), &config, id)).is_err() {
                    break;
                }
            }
        })?;
        Ok(Self { requests: Some(requests), ready, thread: Some(thread), pending: false, next_id })
    }

    /// Asks for one more spare unless one is being prepared.
    pub(crate) fn request(&mut self) {
        if self.pending {
            return;
        }
        if let Some(requests) = &self.requests
            && requests.try_send(self.next_id).is_ok()
        {
            self.next_id += 1;
            self.pending = true;
        }
    }

    /// The spare requested last, waiting for it if it is still being prepared (finishing it
    /// is never slower than starting a new file). A failed preparation is logged: the writer
    /// then creates its next segment itself.
    pub(crate) fn take_spare(&mut self) -> Option<String> {
        if !self.pending {
            return None;
        }
        self.pending = false;
        match self.ready.recv() {
            Ok(Ok(name)) => Some(name),
            Ok(Err(error)) => {
                warn!(%error, "wal spare segment preparation failed");
                None
            }
            Err(_) => None,
        }
    }
}

impl Drop for Preparer {
    fn drop(&mut self) {
        // Stop taking requests, then wait for the one in progress: nothing may touch the
        // directory after the log (and its lock) is gone.
        self.requests = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
