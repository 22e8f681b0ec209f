//! What a simulated node keeps across a crash: its disks (the WAL's `SimStorage`, which loses
//! unsynced bytes as a power loss would) and its event log (the fact sink, durable at once).

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use mempulse_primitives::Event;
use mempulse_wal::test_utils::{CrashMode, SimStorage};

use crate::{FactSink, MemorySink, SinkError, SinkFuture, WrittenThrough};

/// The disks of one simulated node: the Raft log's metadata file, its WAL and the snapshot
/// directory, each a flat in-memory directory.
#[derive(Clone, Debug, Default)]
pub(crate) struct SimDisk {
    pub(crate) meta: SimStorage,
    pub(crate) wal: SimStorage,
    pub(crate) snapshots: SimStorage,
}

impl SimDisk {
    /// The disks as a crash now leaves them (independent copies).
    pub(crate) fn crash_image(&self, mode: CrashMode) -> Self {
        Self {
            meta: self.meta.crash_image(mode),
            wal: self.wal.crash_image(mode),
            snapshots: self.snapshots.crash_image(mode),
        }
    }
}

/// One incarnation's access to its node's event log: refuses every append once the
/// incarnation crashed, so a dead process writes nothing (its tasks may still be winding down
/// in the simulated runtime).
#[derive(Clone, Debug)]
pub(crate) struct FencedSink {
    log: MemorySink,
    crashed: Arc<AtomicBool>,
}

impl FencedSink {
    pub(crate) fn new(log: MemorySink) -> Self {
        Self { log, crashed: Arc::new(AtomicBool::new(false)) }
    }

    /// Fences the incarnation off its log.
    pub(crate) fn crash(&self) {
        self.crashed.store(true, Ordering::SeqCst);
    }
}

impl FactSink for FencedSink {
    fn append(&self, events: Vec<Event>) -> SinkFuture {
        if self.crashed.load(Ordering::SeqCst) {
            return Box::pin(async { Err(SinkError::Closed) });
        }
        self.log.append(events)
    }

    fn sync(&self) -> SinkFuture {
        if self.crashed.load(Ordering::SeqCst) {
            return Box::pin(async { Err(SinkError::Closed) });
        }
        self.log.sync()
    }

    fn written_through(&self) -> Option<WrittenThrough> {
        self.log.written_through()
    }
}
