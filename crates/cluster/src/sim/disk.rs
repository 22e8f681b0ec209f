//! What a simulated node keeps across a crash: its disks (the WAL's `SimStorage`, which loses
//! unsynced bytes as a power loss would) and its event log, kept as the node's default
//! `[wal] sync = "5ms"` keeps it (acknowledged once written, synced on an interval or when the
//! state machine asks), so a power loss takes its unsynced facts too.

use std::{
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use mempulse_primitives::{Event, RaftIndex};
use mempulse_wal::test_utils::{CrashMode, SimStorage};
use openraft::type_config::TypeConfigExt;
use openraft_rt_sim::SimInstant;

use crate::{
    FactSink, SimTypeConfig, SinkError, SinkFuture, WrittenThrough, state_machine::written_through,
};

/// The event log's sync interval (the node's default).
const EVENT_LOG_SYNC_EVERY: Duration = Duration::from_millis(5);

/// A node's event log under an interval sync policy: an append is acknowledged once written,
/// and written facts are synced by an append that finds the interval passed since the last
/// sync, or by [`FactSink::sync`] (the state machine calls it before it saves a snapshot,
/// built or installed). A power loss drops what was not synced; a process crash keeps it (the
/// page cache survives, and the log syncs it when it reopens); a torn write keeps the unsynced
/// appends but the last, and a prefix of that one.
#[derive(Clone, Debug, Default)]
pub(crate) struct SimEventLog {
    state: Arc<Mutex<LogState>>,
}

#[derive(Debug, Default)]
struct LogState {
    synced: Vec<Event>,
    /// Appends written since the last sync, in order.
    unsynced: Vec<Vec<Event>>,
    last_sync: Option<SimInstant>,
}

impl SimEventLog {
    fn lock(&self) -> MutexGuard<'_, LogState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every fact written, synced or not, in order.
    pub(crate) fn events(&self) -> Vec<Event> {
        let state = self.lock();
        state.synced.iter().chain(state.unsynced.iter().flatten()).cloned().collect()
    }

    fn append(&self, events: Vec<Event>) {
        let now = SimTypeConfig::now();
        let mut state = self.lock();
        state.unsynced.push(events);
        if state.last_sync.is_none_or(|last| now - last >= EVENT_LOG_SYNC_EVERY) {
            sync(&mut state);
            state.last_sync = Some(now);
        }
    }

    fn sync(&self) {
        sync(&mut self.lock());
    }

    /// What `mode` leaves of the log; returns the lowest Raft index among the replicated facts
    /// it dropped.
    pub(crate) fn crash(&self, mode: CrashMode) -> Option<RaftIndex> {
        let mut state = self.lock();
        let mut unsynced = std::mem::take(&mut state.unsynced);
        let dropped: Vec<Event> = match mode {
            CrashMode::KeepUnsynced => Vec::new(),
            CrashMode::TearLastWrite { keep } => match unsynced.pop() {
                Some(mut last) => {
                    let cut = keep % (last.len() + 1);
                    let torn = last.split_off(cut);
                    unsynced.push(last);
                    torn
                }
                None => Vec::new(),
            },
            // A power loss, and any crash this simulation does not model more finely.
            _ => unsynced.drain(..).flatten().collect(),
        };
        state.synced.extend(unsynced.into_iter().flatten());
        dropped.iter().filter_map(|e| e.origin.raft_index()).min()
    }
}

fn sync(state: &mut LogState) {
    let unsynced = std::mem::take(&mut state.unsynced);
    state.synced.extend(unsynced.into_iter().flatten());
}

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

/// One incarnation's access to its node's event log: refuses every append and sync once the
/// incarnation crashed, so a dead process writes nothing (its tasks may still be winding down
/// in the simulated runtime).
#[derive(Clone, Debug)]
pub(crate) struct FencedSink {
    log: SimEventLog,
    crashed: Arc<AtomicBool>,
}

impl FencedSink {
    pub(crate) fn new(log: SimEventLog) -> Self {
        Self { log, crashed: Arc::new(AtomicBool::new(false)) }
    }

    /// Fences the incarnation off its log.
    pub(crate) fn crash(&self) {
        self.crashed.store(true, Ordering::SeqCst);
    }

    fn refused(&self) -> Option<SinkFuture> {
        self.crashed
            .load(Ordering::SeqCst)
            .then(|| -> SinkFuture { Box::pin(async { Err(SinkError::Closed) }) })
    }
}

impl FactSink for FencedSink {
    fn append(&self, events: Vec<Event>) -> SinkFuture {
        if let Some(refused) = self.refused() {
            return refused;
        }
        self.log.append(events);
        Box::pin(async { Ok(()) })
    }

    fn sync(&self) -> SinkFuture {
        if let Some(refused) = self.refused() {
            return refused;
        }
        self.log.sync();
        Box::pin(async { Ok(()) })
    }

    fn written_through(&self) -> Option<WrittenThrough> {
        written_through(self.log.events().iter().rev())
    }
}
