//! The simulated cluster: its nodes (each the product's `LogStore` on simulated disks, the
//! product's `ClusterStateMachine` on the mempool, and an openraft instance on the simulated
//! runtime), their crashes and restarts, and client access to them.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use mempulse_mempool::MempoolConfig;
use mempulse_primitives::NodeId;
use mempulse_wal::test_utils::CrashMode;
use openraft::{
    ServerState, async_runtime::WatchReceiver, errors::ClientWriteError, errors::RaftError,
    type_config::TypeConfigExt,
};

use super::{
    SimConfig, SimRaft,
    disk::{FencedSink, SimDisk, SimEventLog},
    facts::SimFacts,
    history::{History, Violation},
    network::SimNetwork,
    rng::SimRng,
};
use crate::{
    ClusterNode, ClusterRequest, ClusterStateMachine, LogReader, LogStore, LogStoreConfig,
    SimTypeConfig, StateHandle, error::StartError, state_machine::SnapshotStore,
};

/// What a client is answered when its write was committed and applied.
pub(crate) type WriteResponse = openraft::raft::ClientWriteResponse<SimTypeConfig>;

/// Longest simulated fsync of the Raft log (each group sync waits a seeded time up to this):
/// the window in which a power loss drops appends that were written but not synced.
const SYNC_DELAY_MAX_MICROS: u64 = 3_000;

/// How long a crashed incarnation gets to wind down its tasks.
const WIND_DOWN: Duration = Duration::from_secs(2);

/// A running incarnation of a node.
#[derive(Debug)]
struct Live {
    raft: SimRaft,
    log: LogReader<SimTypeConfig>,
    state: StateHandle,
    sink: FencedSink,
}

/// One node: what survives its crashes and its running incarnation.
#[derive(Debug)]
struct Slot {
    disk: SimDisk,
    /// The node's event log (its synced facts survive every crash, the others a process
    /// crash only).
    events: SimEventLog,
    incarnation: u64,
    live: Option<Live>,
}

/// Why a client write got no acknowledgement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WriteFailure {
    /// The node is not the leader; it names the leader when it knows one.
    NotLeader(Option<NodeId>),
    /// The node is down, stopped, or gave no answer in time: the outcome is unknown.
    Unknown,
}

/// The nodes of one simulated cluster.
#[derive(Debug)]
pub(crate) struct SimCluster {
    seed: u64,
    raft_config: Arc<openraft::Config>,
    send_timeout: Duration,
    log_config: LogStoreConfig,
    network: SimNetwork,
    history: History,
    slots: Mutex<BTreeMap<NodeId, Slot>>,
}

impl SimCluster {
    /// A cluster of nodes `1..=nodes` (none started yet).
    pub(crate) fn new(
        seed: u64,
        config: &SimConfig,
        log_config: LogStoreConfig,
        network: SimNetwork,
        history: History,
    ) -> Result<Self, StartError> {
        let mut raft_config = config.raft.to_openraft()?;
        if config.leader_restore {
            raft_config.enable_leader_restore = Some(true);
        }
        let slots = (1..=config.nodes)
            .map(|id| {
                let slot = Slot {
                    disk: SimDisk::default(),
                    events: SimEventLog::default(),
                    incarnation: 0,
                    live: None,
                };
                (NodeId(id), slot)
            })
            .collect();
        Ok(Self {
            seed,
            raft_config: Arc::new(raft_config),
            send_timeout: config.raft.send_timeout,
            log_config,
            network,
            history,
            slots: Mutex::new(slots),
        })
    }

    fn slots(&self) -> MutexGuard<'_, BTreeMap<NodeId, Slot>> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every node id, ascending.
    pub(crate) fn ids(&self) -> Vec<NodeId> {
        self.slots().keys().copied().collect()
    }

    /// The members map every node is initialized with.
    pub(crate) fn members(&self) -> BTreeMap<NodeId, ClusterNode> {
        let node =
            |id: NodeId| ClusterNode::new(format!("n{}:raft", id.0), format!("n{}:api", id.0));
        self.ids().into_iter().map(|id| (id, node(id))).collect()
    }

    /// The running Raft of `id`, if it is up.
    pub(crate) fn raft(&self, id: NodeId) -> Option<SimRaft> {
        self.slots().get(&id).and_then(|s| s.live.as_ref()).map(|l| l.raft.clone())
    }

    /// The replicated state of `id`, if it is up.
    pub(crate) fn state(&self, id: NodeId) -> Option<StateHandle> {
        self.slots().get(&id).and_then(|s| s.live.as_ref()).map(|l| l.state.clone())
    }

    /// A reader of the Raft log of `id`, if it is up.
    pub(crate) fn log(&self, id: NodeId) -> Option<LogReader<SimTypeConfig>> {
        self.slots().get(&id).and_then(|s| s.live.as_ref()).map(|l| l.log.clone())
    }

    /// The event log of `id` (kept across its crashes).
    pub(crate) fn events(&self, id: NodeId) -> Option<SimEventLog> {
        self.slots().get(&id).map(|s| s.events.clone())
    }

    /// Ids of the nodes that are down.
    pub(crate) fn down(&self) -> Vec<NodeId> {
        self.slots().iter().filter(|(_, s)| s.live.is_none()).map(|(id, _)| *id).collect()
    }

    /// Starts `id` from its disks (a fresh node the first time). A failure is recorded as a
    /// violation: the product must always restart from what a crash leaves.
    pub(crate) async fn start(&self, id: NodeId) {
        if let Err(error) = self.try_start(id).await {
            self.history.violate(Violation::Start { node: id, error: Arc::new(error) });
        }
    }

    async fn try_start(&self, id: NodeId) -> Result<(), StartError> {
        let (disk, events, incarnation) = {
            let slots = self.slots();
            let Some(slot) = slots.get(&id) else { return Ok(()) };
            if slot.live.is_some() {
                return Ok(());
            }
            (slot.disk.clone(), slot.events.clone(), slot.incarnation)
        };
        let sink = FencedSink::new(events);
        let state_machine = ClusterStateMachine::open_in_memory(
            Arc::new(disk.snapshots.clone()),
            MempoolConfig::default(),
            Arc::new(sink.clone()),
        )?;
        let logs = self.slots().iter().map(|(id, slot)| (*id, slot.events.clone())).collect();
        let _ = state_machine.fact_source().set(Arc::new(SimFacts {
            id,
            incarnation,
            network: self.network.clone(),
            logs,
            history: self.history.clone(),
        }));
        let state = state_machine.handle();
        let (store, writer): (LogStore<SimTypeConfig>, _) = LogStore::open_in_memory(
            &self.log_config,
            Arc::new(disk.meta.clone()),
            Arc::new(disk.wal.clone()),
        )?;
        let mut rng = SimRng::new(self.seed, 100 + id.0 * 1000 + incarnation);
        drop(SimTypeConfig::spawn(
            writer.run(move || Duration::from_micros(rng.below(SYNC_DELAY_MAX_MICROS + 1))),
        ));
        let log = store.reader();
        let network = self.network.factory(id, incarnation, self.send_timeout);
        let raft =
            SimRaft::new(id, Arc::clone(&self.raft_config), network, store, state_machine).await?;
        drop(SimTypeConfig::spawn(watch_leadership(raft.clone(), self.history.clone())));
        self.network.register(id, incarnation, raft.clone());
        if let Some(slot) = self.slots().get_mut(&id) {
            slot.live = Some(Live { raft, log, state, sink });
        }
        self.history.note(format_args!("n{} started (incarnation {incarnation})", id.0));
        Ok(())
    }

    /// Crashes `id` now: its disks keep what `mode` says survives, its messages in flight are
    /// lost, and its running incarnation can no longer write its event log.
    pub(crate) fn crash(&self, id: NodeId, mode: CrashMode) {
        let live = {
            let mut slots = self.slots();
            let Some(slot) = slots.get_mut(&id) else { return };
            let Some(live) = slot.live.take() else { return };
            live.sink.crash();
            let lost = slot.events.crash(mode);
            slot.disk = slot.disk.crash_image(mode);
            slot.incarnation += 1;
            self.check_stranded(id, lost, &slot.disk);
            live
        };
        self.network.unregister(id);
        self.history.note(format_args!("n{} crashed ({mode:?})", id.0));
        // The dead incarnation's tasks wind down on their own (its storage is no longer the
        // node's disk, its sink refuses writes and the network drops its messages).
        drop(SimTypeConfig::spawn(async move {
            let _ = SimTypeConfig::timeout(WIND_DOWN, live.raft.shutdown()).await;
        }));
    }

    /// A restart restores the newest snapshot the crash left and never applies the entries it
    /// covers again, so facts the crash took from the event log are derived again only when
    /// their index is above it (the state machine syncs its event log before it saves a
    /// snapshot, built or installed).
    fn check_stranded(
        &self,
        id: NodeId,
        lost: Option<mempulse_primitives::RaftIndex>,
        disk: &SimDisk,
    ) {
        let Some(lost) = lost else { return };
        let kept = SnapshotStore::in_memory(Arc::new(disk.snapshots.clone())).load_latest();
        let covered = match kept {
            Ok(Some((meta, _))) => meta.last_log_id.map(|l| l.index),
            Ok(None) | Err(_) => None,
        };
        if let Some(snapshot) = covered.filter(|s| *s >= lost.0) {
            self.history.violate(Violation::FactsStranded { node: id, index: lost.0, snapshot });
        }
    }

    /// Submits `request` to `target` and waits at most `timeout` for the answer.
    pub(crate) async fn write(
        &self,
        target: NodeId,
        request: ClusterRequest,
        timeout: Duration,
    ) -> Result<WriteResponse, WriteFailure> {
        let raft = self.raft(target).ok_or(WriteFailure::Unknown)?;
        match SimTypeConfig::timeout(timeout, raft.client_write(request)).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
                Err(WriteFailure::NotLeader(f.leader_id))
            }
            Ok(Err(_)) | Err(_) => Err(WriteFailure::Unknown),
        }
    }

    /// Shuts every running node down (bounded), so no task outlives the run's checks.
    pub(crate) async fn shutdown(&self) {
        for id in self.ids() {
            if let Some(raft) = self.raft(id) {
                let _ = SimTypeConfig::timeout(WIND_DOWN, raft.shutdown()).await;
            }
        }
    }
}

/// Records every term in which `raft` became leader, until it stops.
async fn watch_leadership(raft: SimRaft, history: History) {
    let mut metrics = raft.metrics();
    let mut led = None;
    loop {
        let (state, term, id) = {
            let m = metrics.borrow_watched();
            (m.state, m.current_term, m.id)
        };
        if state == ServerState::Leader && led != Some(term) {
            led = Some(term);
            history.note(format_args!("n{} leads term {term}", id.0));
            history.leader(term, id);
        }
        if metrics.changed().await.is_err() {
            return;
        }
    }
}
