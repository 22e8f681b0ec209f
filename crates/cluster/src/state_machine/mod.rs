//! The state machine adapter: openraft's `RaftStateMachine` over the mempool.
//!
//! ```text
//!  committed entries (log order) ──► apply to Mempool (under the state lock, no await)
//!                                      │ facts → Event { observed_at: leader stamp,
//!                                      │          source: Mempool, origin: Replicated{index} }
//!                                      ▼
//!                         FactSink::append (one batch per ≤ APPLY_BATCH_ENTRIES_MAX entries)
//!                                      │ durable
//!                                      ▼
//!                         respond to clients, return to openraft (entries now "applied")
//! ```
//! The design and its alternatives are in `docs/design/cluster-state-machine.md`.

mod backfill;
mod reinstall;
mod sink;
mod snapshot;
mod wal_sink;

use std::{
    collections::BTreeSet,
    fmt, io,
    sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError},
};

use futures_util::{Stream, TryStreamExt};
use mempulse_mempool::{Command, Mempool, MempoolConfig};
use mempulse_primitives::{Event, NodeId, Origin, RaftIndex, Source, UnixMillis};
use openraft::{
    OptionalSend, RaftSnapshotBuilder,
    storage::{ApplyResponder, EntryResponder, RaftStateMachine},
    type_config::TypeConfigExt,
};

#[cfg(feature = "sim")]
pub(crate) use self::sink::written_through;
pub(crate) use self::{backfill::ask_order, snapshot::SnapshotStore};
pub use self::{
    backfill::{BACKFILL_FACTS_TOTAL, BACKFILL_FAILURES_TOTAL, FactSource},
    reinstall::{MempoolExport, MempoolReinstaller, ReinstallError, Reinstalled},
    sink::{FactSink, MemorySink, SinkError, SinkFuture, WrittenThrough},
    snapshot::{ClusterSnapshot, SNAPSHOT_FILE_VERSION, SnapshotError},
    wal_sink::{WalFactSink, facts_in_log},
};
use crate::{
    ClusterRequest,
    config::{APPLY_BATCH_ENTRIES_MAX, BACKFILL_DEADLINE},
    error::StartError,
    types::{
        ApplyResponse, ClusterTypeConfig, Entry, LogId, Payload, Snapshot, SnapshotMeta,
        StoredMembership,
    },
};

/// The replicated state: the mempool and the Raft position it reflects.
#[derive(Clone, Debug)]
struct SmState {
    mempool: Mempool,
    applied: Option<LogId>,
    membership: StoredMembership,
}

/// Shared read access to a node's replicated state.
#[derive(Clone, Debug)]
pub struct StateHandle {
    state: Arc<Mutex<SmState>>,
}

/// What a reader sees of the replicated state.
#[derive(Debug)]
pub struct StateView<'a> {
    /// The last applied log id.
    pub applied: Option<LogId>,
    /// The mempool after applying it.
    pub mempool: &'a Mempool,
}

impl StateHandle {
    fn lock(&self) -> MutexGuard<'_, SmState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `read` on the current state under the state lock (keep it short: apply waits).
    pub fn read<R>(&self, read: impl FnOnce(StateView<'_>) -> R) -> R {
        let state = self.lock();
        read(StateView { applied: state.applied, mempool: &state.mempool })
    }

    /// The last applied log id.
    #[must_use]
    pub fn applied(&self) -> Option<LogId> {
        self.lock().applied
    }
}

/// The current snapshot, shared with builders (which run on their own task).
type CurrentSnapshot = Arc<Mutex<Option<(SnapshotMeta, ClusterSnapshot)>>>;

/// openraft's state machine for a mempulse node: applies committed entries to the mempool in
/// log order, writes their facts to a [`FactSink`] and only then reports them applied.
pub struct ClusterStateMachine {
    state: StateHandle,
    sink: Arc<dyn FactSink>,
    /// Replicated facts already in the sink's log (skipped when re-applied after a restart).
    written: Option<WrittenThrough>,
    store: SnapshotStore,
    current: CurrentSnapshot,
    /// The test-only fault, while it has not fired.
    fault: Option<ApplyFault>,
    /// Where the facts a snapshot covers come from when one is installed, once the node set it.
    fact_source: FactSourceSlot,
    /// Told the members of every membership applied or installed, once the node set it.
    membership_observer: MembershipSlot,
}

/// The [`FactSource`] a node gives its state machine once its network exists.
pub type FactSourceSlot = Arc<OnceLock<Arc<dyn FactSource>>>;

/// Called with the members (voters and learners) of every membership the state machine
/// applies, in log order, or installs with a snapshot: unlike a sample of the Raft metrics, it
/// misses none (a member removed and added back between two samples included).
pub type MembershipObserver = Arc<dyn Fn(BTreeSet<NodeId>) + Send + Sync>;

/// The [`MembershipObserver`] a node gives its state machine.
pub type MembershipSlot = Arc<OnceLock<MembershipObserver>>;

/// A test-only fault that makes this member's state machine diverge on purpose: the first
/// transaction of the first `AddTxs` command in an entry at or above `first_index` is applied
/// with its gas limit raised to `u64::MAX` (so this member rejects what the others admit).
/// Fires once per process. Never configured in production.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApplyFault {
    /// The lowest Raft index the fault may fire at.
    pub first_index: RaftIndex,
}

impl fmt::Debug for ClusterStateMachine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterStateMachine")
            .field("applied", &self.state.applied())
            .field("written", &self.written)
            .finish_non_exhaustive()
    }
}

impl ClusterStateMachine {
    /// A state machine whose snapshots live in `snapshot_dir`, restored from the newest one
    /// there (an empty pool with `mempool` config when there is none). Blocking IO.
    ///
    /// # Errors
    /// [`StartError::Snapshot`] when the newest snapshot cannot be read or restored;
    /// [`StartError::Mempool`] for an invalid mempool config.
    pub fn open(
        snapshot_dir: impl Into<std::path::PathBuf>,
        mempool: MempoolConfig,
        sink: Arc<dyn FactSink>,
    ) -> Result<Self, StartError> {
        Self::with_store(SnapshotStore::new(snapshot_dir), mempool, sink)
    }

    /// A state machine whose snapshots live on `snapshots`, an in-memory disk whose operations
    /// never block (a simulated disk): snapshot IO then runs inline on the task that needs it,
    /// which is what a single-threaded simulated runtime requires (it has no blocking pool).
    ///
    /// # Errors
    /// As [`ClusterStateMachine::open`].
    pub fn open_in_memory(
        snapshots: Arc<dyn mempulse_wal::Storage>,
        mempool: MempoolConfig,
        sink: Arc<dyn FactSink>,
    ) -> Result<Self, StartError> {
        Self::with_store(SnapshotStore::in_memory(snapshots), mempool, sink)
    }

    fn with_store(
        store: SnapshotStore,
        mempool: MempoolConfig,
        sink: Arc<dyn FactSink>,
    ) -> Result<Self, StartError> {
        let (state, current) = match store.load_latest()? {
            None => {
                let mempool = Mempool::new(mempool).map_err(StartError::Mempool)?;
                (SmState { mempool, applied: None, membership: StoredMembership::default() }, None)
            }
            Some((meta, snapshot)) => (restore(&meta, &snapshot)?, Some((meta, snapshot))),
        };
        let written = sink.written_through();
        Ok(Self {
            state: StateHandle { state: Arc::new(Mutex::new(state)) },
            sink,
            written,
            store,
            current: Arc::new(Mutex::new(current)),
            fault: None,
            fact_source: FactSourceSlot::default(),
            membership_observer: MembershipSlot::default(),
        })
    }

    /// Arms the test-only [`ApplyFault`].
    #[must_use]
    pub fn with_fault(mut self, fault: Option<ApplyFault>) -> Self {
        if let Some(fault) = fault {
            tracing::warn!(
                first_index = fault.first_index.get(),
                "TEST FAULT ACTIVE: the state machine will diverge"
            );
        }
        self.fault = fault;
        self
    }

    /// Where this state machine fetches the facts a snapshot it installs covers (set it once
    /// the node can reach its peers; until then, and without one, such facts are not filled).
    #[must_use]
    pub fn fact_source(&self) -> FactSourceSlot {
        Arc::clone(&self.fact_source)
    }

    /// Who is told each membership this state machine applies or installs (set it before
    /// the Raft node starts).
    #[must_use]
    pub fn membership_observer(&self) -> MembershipSlot {
        Arc::clone(&self.membership_observer)
    }

    fn observe_membership(&self, membership: &StoredMembership) {
        if let Some(observer) = self.membership_observer.get() {
            observer(membership.membership().nodes().map(|(id, _)| *id).collect());
        }
    }

    /// The entries a snapshot being installed covers are never applied here: fills their
    /// facts from a peer first, so the event log has no gap (`backfill.rs`). Fails only when
    /// the sink does.
    async fn fill_covered_facts<C: ClusterTypeConfig>(
        &self,
        meta: &SnapshotMeta,
    ) -> io::Result<()> {
        let (Some(source), Some(last)) = (self.fact_source.get(), meta.last_log_id) else {
            return Ok(());
        };
        let applied = self.state.applied().map(|id| id.index);
        let from = backfill::Position::of(applied, self.written);
        let through = RaftIndex(last.index);
        if from.after > through {
            return Ok(());
        }
        let started = C::now();
        let expired = move || C::now() - started >= BACKFILL_DEADLINE;
        let filled = backfill::fill(source.as_ref(), self.sink.as_ref(), from, through, &expired)
            .await
            .map_err(io::Error::other)?;
        tracing::info!(
            after = from.after.0,
            through = through.0,
            facts = filled.facts,
            complete = filled.complete,
            "facts the snapshot covers filled from a peer"
        );
        Ok(())
    }

    /// Read access to the replicated state.
    #[must_use]
    pub fn handle(&self) -> StateHandle {
        self.state.clone()
    }

    /// Applies one entry to `state`; returns its response and its facts as events, minus the
    /// facts the sink's log already holds.
    fn apply_entry(&mut self, state: &mut SmState, entry: Entry) -> (ApplyResponse, Vec<Event>) {
        let index = RaftIndex(entry.log_id.index);
        state.applied = Some(entry.log_id);
        let request = match entry.payload {
            Payload::Blank => return (ApplyResponse::empty(index), Vec::new()),
            Payload::Membership(membership) => {
                state.membership = StoredMembership::new(Some(entry.log_id), membership);
                self.observe_membership(&state.membership);
                return (ApplyResponse::empty(index), Vec::new());
            }
            Payload::Normal(request) => request,
        };
        let ClusterRequest { stamped_at, mut commands } = request;
        self.inject_fault(index, &mut commands);
        let mut events = Vec::new();
        let mut results = Vec::with_capacity(commands.len());
        for command in commands {
            let result = state.mempool.apply(command);
            if let Ok(outcome) = &result {
                events.extend(
                    outcome.facts.iter().cloned().map(|kind| event(stamped_at, index, kind)),
                );
            }
            results.push(result);
        }
        let skip = match self.written {
            Some(w) if index < w.index => events.len(),
            Some(w) if index == w.index => usize::try_from(w.facts).unwrap_or(usize::MAX),
            _ => 0,
        };
        events.drain(..skip.min(events.len()));
        (ApplyResponse { index, results }, events)
    }

    /// The test-only fault, once, on the first transaction of an entry at or above its index.
    fn inject_fault(&mut self, index: RaftIndex, commands: &mut [Command]) {
        if self.fault.is_none_or(|fault| index < fault.first_index) {
            return;
        }
        let first_tx = commands.iter_mut().find_map(|c| match c {
            Command::AddTxs(txs) => txs.first_mut(),
            _ => None,
        });
        if let Some(tx) = first_tx {
            tracing::warn!(index = index.get(), hash = %tx.hash, "TEST FAULT: applying a transaction with a corrupted gas limit");
            tx.gas_limit = u64::MAX;
            self.fault = None;
        }
    }

    /// Makes `events` durable, then answers the clients of the entries they came from.
    async fn flush<C: ClusterTypeConfig>(
        &self,
        events: &mut Vec<Event>,
        pending: &mut Vec<(Option<ApplyResponder<C>>, ApplyResponse)>,
    ) -> io::Result<()> {
        if !events.is_empty() {
            let batch = std::mem::take(events);
            let count = batch.len();
            self.sink.append(batch).await.map_err(io::Error::other)?;
            tracing::debug!(facts = count, entries = pending.len(), "facts durable");
        }
        for (responder, response) in pending.drain(..) {
            if let Some(responder) = responder {
                responder.send(response);
            }
        }
        Ok(())
    }
}

fn event(
    observed_at: UnixMillis,
    raft_index: RaftIndex,
    kind: mempulse_primitives::EventKind,
) -> Event {
    Event { observed_at, source: Source::Mempool, origin: Origin::Replicated { raft_index }, kind }
}

/// Decodes and checks `snapshot` against `meta` and rebuilds the state it holds.
fn restore(meta: &SnapshotMeta, snapshot: &ClusterSnapshot) -> Result<SmState, SnapshotError> {
    let (header, pool) = snapshot.decode().map_err(SnapshotError::Corrupt)?;
    if header != *meta {
        return Err(SnapshotError::MetaMismatch);
    }
    let mempool = Mempool::restore(pool).map_err(SnapshotError::Mempool)?;
    Ok(SmState { mempool, applied: meta.last_log_id, membership: meta.last_membership.clone() })
}

fn lock_current(
    current: &CurrentSnapshot,
) -> MutexGuard<'_, Option<(SnapshotMeta, ClusterSnapshot)>> {
    current.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Builds a snapshot from a copy of the state taken when openraft asked for it, so applying
/// continues while the bytes are encoded and written.
pub struct SnapshotBuilder {
    state: SmState,
    store: SnapshotStore,
    current: CurrentSnapshot,
    sink: Arc<dyn FactSink>,
}

/// Runs snapshot IO: on tokio's blocking pool for a filesystem store (never on an async worker),
/// inline for an in-memory one.
async fn snapshot_io<T: Send + 'static>(
    store: &SnapshotStore,
    work: impl FnOnce() -> Result<T, SnapshotError> + Send + 'static,
) -> io::Result<T> {
    let done = if store.blocks() {
        tokio::task::spawn_blocking(work).await.map_err(io::Error::other)?
    } else {
        work()
    };
    done.map_err(SnapshotError::into_io)
}

impl fmt::Debug for SnapshotBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SnapshotBuilder")
            .field("applied", &self.state.applied)
            .finish_non_exhaustive()
    }
}

impl<C: ClusterTypeConfig> RaftSnapshotBuilder<C> for SnapshotBuilder {
    type SnapshotData = ClusterSnapshot;

    #[tracing::instrument(level = "info", skip_all, fields(applied = ?self.state.applied))]
    async fn build_snapshot(&mut self) -> io::Result<Snapshot> {
        // The facts of every entry this snapshot covers were appended before the builder was
        // made; entries it covers are never applied again, so those facts must be on disk
        // before it is saved (the event log may acknowledge before it syncs).
        self.sink.sync().await.map_err(io::Error::other)?;
        let meta = SnapshotMeta {
            last_log_id: self.state.applied,
            last_membership: self.state.membership.clone(),
        };
        let mempool = self.state.mempool.clone();
        let store = self.store.clone();
        let task_meta = meta.clone();
        let snapshot = snapshot_io(&self.store, move || {
            let snapshot = ClusterSnapshot::encode(&task_meta, &mempool.snapshot());
            store.save(&task_meta, &snapshot).map(|()| snapshot)
        })
        .await?;
        tracing::info!(bytes = snapshot.as_bytes().len(), "snapshot built");
        *lock_current(&self.current) = Some((meta.clone(), snapshot.clone()));
        Ok(Snapshot { meta, snapshot })
    }
}

impl<C: ClusterTypeConfig> RaftStateMachine<C> for ClusterStateMachine {
    type SnapshotData = ClusterSnapshot;
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> io::Result<(Option<LogId>, StoredMembership)> {
        let state = self.state.lock();
        Ok((state.applied, state.membership.clone()))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn apply<Strm>(&mut self, mut entries: Strm) -> io::Result<()>
    where
        Strm: Stream<Item = io::Result<EntryResponder<C>>> + Unpin + OptionalSend,
    {
        let mut events = Vec::new();
        let mut pending = Vec::new();
        let handle = self.state.clone();
        while let Some((entry, responder)) = entries.try_next().await? {
            let (response, new_events) = {
                let mut state = handle.lock();
                self.apply_entry(&mut state, entry)
            };
            events.extend(new_events);
            pending.push((responder, response));
            if pending.len() >= APPLY_BATCH_ENTRIES_MAX {
                self.flush::<C>(&mut events, &mut pending).await?;
            }
        }
        self.flush::<C>(&mut events, &mut pending).await
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        // Called between `apply` calls, so every fact of the copied state was appended; the
        // builder syncs the sink before it saves, so a snapshot never covers an entry whose
        // facts a power loss could still take.
        SnapshotBuilder {
            state: self.state.lock().clone(),
            store: self.store.clone(),
            current: Arc::clone(&self.current),
            sink: Arc::clone(&self.sink),
        }
    }

    #[tracing::instrument(level = "info", skip_all, fields(last = ?meta.last_log_id))]
    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: ClusterSnapshot,
    ) -> io::Result<()> {
        // Once the installed snapshot is saved, a restart starts from it and never applies the
        // entries it covers again: the facts this member already derived from entries up to
        // its applied index must be on disk first, as for a snapshot it builds.
        self.sink.sync().await.map_err(io::Error::other)?;
        self.fill_covered_facts::<C>(meta).await?;
        let store = self.store.clone();
        let task_meta = meta.clone();
        let (state, snapshot) = snapshot_io(&self.store, move || {
            let state = restore(&task_meta, &snapshot)?;
            store.save(&task_meta, &snapshot)?;
            Ok((state, snapshot))
        })
        .await?;
        self.observe_membership(&state.membership);
        *self.state.lock() = state;
        *lock_current(&self.current) = Some((meta.clone(), snapshot));
        tracing::info!("snapshot installed");
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> io::Result<Option<Snapshot>> {
        let current = lock_current(&self.current).clone();
        Ok(current.map(|(meta, snapshot)| Snapshot { meta, snapshot }))
    }
}
