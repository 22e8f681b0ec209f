//! Node assembly: one Raft member of a mempulse cluster ([`RaftNode`]), wiring openraft to the
//! WAL log store, the mempool state machine, a fact sink and a [`Transport`]; what the
//! transport serves of it ([`NodeService`]); forwarding to the leader and administration.

mod admin;
mod backfill;
mod batcher;
mod bootstrap;
mod forward;
mod leadership;
mod read;

use std::{
    collections::{BTreeMap, BTreeSet},
    path::PathBuf,
    sync::Arc,
    time::Duration,
};

use mempulse_mempool::MempoolConfig;
use mempulse_primitives::NodeId;
use openraft::{
    ReadPolicy, ServerState,
    async_runtime::WatchReceiver,
    errors::{InitializeError, LinearizableReadError, RaftError},
};
use tokio::{
    sync::{mpsc, oneshot},
    task::JoinHandle,
};

use self::batcher::PendingWrite;
use crate::{
    ClientError, ClusterCommand, ClusterNode, ClusterResponse, LogStore, LogStoreConfig,
    NodeIdentity, TypeConfig,
    config::{BACKFILL_CHUNK_TIMEOUT, BatchConfig, FORWARD_DEADLINE_DEFAULT, RaftConfig},
    error::StartError,
    network::{Forwarder, Transport},
    state_machine::{
        ApplyFault, ClusterStateMachine, FactSink, MempoolReinstaller, StateHandle, StateView,
    },
    types::LogId,
};

/// The openraft handle of a mempulse node.
pub type ClusterRaft = openraft::Raft<TypeConfig, ClusterStateMachine>;

/// Name of the snapshot directory inside a node's Raft directory.
pub const SNAPSHOT_DIR: &str = "snapshots";

/// Everything a node needs to start.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct NodeConfig {
    /// This node's id (stable across restarts).
    pub id: NodeId,
    /// The Raft log store; its directory is the node's Raft directory (must persist), which
    /// also holds the `snapshots/` directory.
    pub log: LogStoreConfig,
    /// Raft timings, snapshot policy, replication limits.
    pub raft: RaftConfig,
    /// Limits of the leader's write batcher.
    pub batch: BatchConfig,
    /// The mempool's configuration (used when no snapshot exists yet).
    pub mempool: MempoolConfig,
    /// How long a follower keeps trying to forward one write or admin request to the leader.
    pub forward_deadline: Duration,
    /// The test-only fault that makes this member's state machine diverge (`None` in
    /// production).
    pub apply_fault: Option<ApplyFault>,
}

impl NodeConfig {
    /// The embedded defaults for node `id` with its Raft directory at `dir`.
    #[must_use]
    pub fn new(id: NodeId, dir: impl Into<PathBuf>) -> Self {
        Self {
            id,
            log: LogStoreConfig::new(dir),
            raft: RaftConfig::default(),
            batch: BatchConfig::default(),
            mempool: MempoolConfig::default(),
            forward_deadline: FORWARD_DEADLINE_DEFAULT,
            apply_fault: None,
        }
    }

    /// Arms the test-only [`ApplyFault`] (never in production).
    #[must_use]
    pub const fn with_apply_fault(mut self, fault: Option<ApplyFault>) -> Self {
        self.apply_fault = fault;
        self
    }

    /// Sets the forwarding deadline.
    #[must_use]
    pub const fn with_forward_deadline(mut self, deadline: Duration) -> Self {
        self.forward_deadline = deadline;
        self
    }

    /// Sets the Raft settings.
    #[must_use]
    pub fn with_raft(mut self, raft: RaftConfig) -> Self {
        self.raft = raft;
        self
    }

    /// Sets the log store settings (its directory becomes the node's Raft directory).
    #[must_use]
    pub fn with_log(mut self, log: LogStoreConfig) -> Self {
        self.log = log;
        self
    }

    /// Sets the batcher limits.
    #[must_use]
    pub const fn with_batch(mut self, batch: BatchConfig) -> Self {
        self.batch = batch;
        self
    }
}

/// How fresh a read must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReadConsistency {
    /// Served from this node's state as it is: any node, no round trip, may lag the leader.
    Weak,
    /// The leader confirms its leadership with a quorum (read index) and waits until its state
    /// machine has applied up to that point; a follower answers
    /// [`ClientError::ForwardToLeader`] ([`RaftNode::read_linearizable`] serves it on any
    /// member).
    Linearizable,
}

/// What a transport serves of a running node: its openraft handle (for Raft RPCs) and its
/// local client entry points (for writes and admin requests forwarded by other nodes, which
/// are served here and never forwarded again). Clones share the node.
#[derive(Clone)]
pub struct NodeService {
    id: NodeId,
    raft: ClusterRaft,
    /// Weak, so a transport still holding the service cannot keep the write queue (and so
    /// the batcher) alive after the node shut down.
    writes: mpsc::WeakSender<PendingWrite>,
    write_capacity: usize,
    entry_bytes_max: u64,
    /// Answers [`crate::AdminRequest::StateRoot`], once the node's owner installed it.
    state_roots: Arc<std::sync::OnceLock<Arc<dyn crate::StateRootSource>>>,
}

impl std::fmt::Debug for NodeService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeService").field("id", &self.id).finish_non_exhaustive()
    }
}

impl NodeService {
    /// The node's id.
    #[must_use]
    pub const fn id(&self) -> NodeId {
        self.id
    }

    /// The node's openraft handle.
    #[must_use]
    pub const fn raft(&self) -> &ClusterRaft {
        &self.raft
    }

    /// The ids of the node's latest membership (voters and learners; empty before the node
    /// joined a cluster), read live.
    #[must_use]
    pub fn member_ids(&self) -> BTreeSet<NodeId> {
        let metrics = self.raft.metrics();
        let m = metrics.borrow_watched();
        m.membership_config.membership().nodes().map(|(id, _)| *id).collect()
    }

    /// Writes `command` on this node, without forwarding.
    ///
    /// # Errors
    /// As [`RaftNode::write`], with [`ClientError::ForwardToLeader`] on a follower.
    pub async fn write_local(
        &self,
        command: ClusterCommand,
    ) -> Result<ClusterResponse, ClientError> {
        let (_, bytes) = batcher::weight(&command);
        if bytes > self.entry_bytes_max {
            return Err(ClientError::TooLarge { bytes, max: self.entry_bytes_max });
        }
        if let Err(forward) = self.raft.as_leader() {
            return Err(ClientError::forward(forward));
        }
        let (reply, answer) = oneshot::channel();
        let writes = self.writes.upgrade().ok_or(ClientError::Stopped)?;
        writes.try_send(PendingWrite { command, reply }).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => {
                ClientError::Overloaded { capacity: self.write_capacity }
            }
            mpsc::error::TrySendError::Closed(_) => ClientError::Stopped,
        })?;
        answer.await.map_err(|_| ClientError::Stopped)?
    }
}

/// A running Raft member: its openraft instance, its replicated state and its write batcher.
pub struct RaftNode {
    service: NodeService,
    writes: mpsc::Sender<PendingWrite>,
    state: StateHandle,
    forwarder: Arc<dyn Forwarder>,
    forward_deadline: Duration,
    batcher: JoinHandle<()>,
    stop_serving: Box<dyn FnOnce() + Send + Sync>,
    log_closed: Option<oneshot::Receiver<()>>,
    reinstaller: MempoolReinstaller,
}

impl std::fmt::Debug for RaftNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftNode").field("id", &self.service.id).finish_non_exhaustive()
    }
}

impl RaftNode {
    /// Opens the node's Raft directory (log store and newest snapshot), starts openraft, serves
    /// the node on `transport` and starts the write batcher. A restarted node rebuilds its state
    /// from the newest snapshot, then re-applies the committed log once it learns the commit
    /// point, without writing facts the sink already holds.
    ///
    /// # Errors
    /// [`StartError`] naming what could not be opened or started.
    pub async fn start<T: Transport + Clone>(
        config: NodeConfig,
        sink: Arc<dyn FactSink>,
        transport: &T,
    ) -> Result<Self, StartError> {
        let raft_config = Arc::new(config.raft.to_openraft()?);
        // An entry must fit in a log segment with room to spare, or appending it would fail
        // and stop the node.
        let entry_bytes_max = config.log.segment_size_bytes / 2;
        if config.batch.tx_bytes_max > entry_bytes_max {
            return Err(StartError::BatchTooLarge {
                tx_bytes_max: config.batch.tx_bytes_max,
                entry_bytes_max,
            });
        }
        let log_config = config.log.clone();
        let mempool = config.mempool.clone();
        let id = config.id;
        let fault = config.apply_fault;
        let (mut store, state_machine, identity) = tokio::task::spawn_blocking(move || {
            let snapshot_dir = log_config.dir.join(SNAPSHOT_DIR);
            let state_machine =
                ClusterStateMachine::open(snapshot_dir, mempool, sink)?.with_fault(fault);
            let store = LogStore::open(&log_config)?;
            let identity = Arc::new(NodeIdentity::open(id, &log_config.dir)?);
            Ok::<_, StartError>((store, state_machine, identity))
        })
        .await
        .map_err(StartError::Task)??;
        let log_closed = store.take_closed();
        let state = state_machine.handle();
        let fact_source = state_machine.fact_source();
        let memberships = state_machine.membership_observer();
        let _ = memberships.set(crate::identity::forget_removed_members(Arc::clone(&identity)));
        let reinstaller = MempoolReinstaller::new(state.clone(), store.reader());
        transport.attach_identity(id, Arc::clone(&identity));
        let network = transport.connect(id, config.raft.send_timeout);
        let raft = ClusterRaft::new(id, raft_config, network, store, state_machine).await?;
        let forwarder = transport.forwarder(id);
        let _ = fact_source.set(Arc::new(backfill::PeerFacts {
            id,
            metrics: raft.metrics(),
            forwarder: Arc::clone(&forwarder),
            timeout: BACKFILL_CHUNK_TIMEOUT,
        }));
        identity.watch(raft.metrics());
        // One sweep at start against the log's latest membership: a crash can cut short the
        // forgetting of a membership applied before it.
        if let Some(observe) = memberships.get() {
            let metrics = raft.metrics();
            let members: BTreeSet<NodeId> = {
                let m = metrics.borrow_watched();
                m.membership_config.membership().nodes().map(|(id, _)| *id).collect()
            };
            observe(members);
        }
        let (writes, queue) = mpsc::channel(config.batch.queue_capacity);
        let batcher = tokio::spawn(batcher::run(raft.clone(), queue, config.batch));
        let service = NodeService {
            id,
            raft,
            writes: writes.downgrade(),
            write_capacity: config.batch.queue_capacity,
            entry_bytes_max: config.batch.tx_bytes_max,
            state_roots: Arc::default(),
        };
        transport.serve(id, service.clone());
        let transport = transport.clone();
        tracing::info!(node = id.0, "raft node started");
        Ok(Self {
            service,
            writes,
            state,
            forwarder,
            forward_deadline: config.forward_deadline,
            batcher,
            stop_serving: Box::new(move || transport.stop_serving(id)),
            log_closed,
            reinstaller,
        })
    }

    /// This node's id.
    #[must_use]
    pub const fn id(&self) -> NodeId {
        self.service.id
    }

    /// The openraft handle (metrics, membership changes, waits in tests).
    #[must_use]
    pub const fn raft(&self) -> &ClusterRaft {
        &self.service.raft
    }

    /// What the transport serves of this node.
    #[must_use]
    pub const fn service(&self) -> &NodeService {
        &self.service
    }

    /// Read access to the replicated state.
    #[must_use]
    pub fn state(&self) -> &StateHandle {
        &self.state
    }

    /// What reinstalls this member's mempool from a healthy member's, when its state machine
    /// diverged ([`MempoolReinstaller::reinstall`]).
    #[must_use]
    pub fn mempool_reinstaller(&self) -> MempoolReinstaller {
        self.reinstaller.clone()
    }

    /// Has openraft build a snapshot of the state as applied now and waits (up to `timeout`)
    /// until one covering it is saved, so a restart starts from it. Returns the saved
    /// snapshot's index; `None` when openraft stopped or no such snapshot was saved in time.
    pub async fn snapshot_now(&self, timeout: Duration) -> Option<u64> {
        let target = self.state.applied().map(|id| id.index);
        self.raft().trigger().snapshot().await.ok()?;
        let saved = self
            .raft()
            .wait(Some(timeout))
            .metrics(|m| m.snapshot.map(|id| id.index) >= target, "snapshot covers applied")
            .await
            .ok()?;
        saved.snapshot.map(|id| id.index)
    }

    /// Makes this node the first member of a new cluster of `members` (call on one node, once).
    ///
    /// # Errors
    /// openraft's [`InitializeError`] when the node is already initialized or `members` does
    /// not include it.
    pub async fn initialize(
        &self,
        members: BTreeMap<NodeId, ClusterNode>,
    ) -> Result<(), RaftError<TypeConfig, InitializeError<TypeConfig>>> {
        self.service.raft.initialize(members).await
    }

    /// Runs `read` on the replicated state at the requested consistency.
    ///
    /// # Errors
    /// For [`ReadConsistency::Linearizable`]: [`ClientError::ForwardToLeader`] on a follower,
    /// [`ClientError::NoQuorum`] when leadership cannot be confirmed, [`ClientError::Stopped`]
    /// when the node is stopping.
    pub async fn read<R>(
        &self,
        consistency: ReadConsistency,
        read: impl FnOnce(StateView<'_>) -> R,
    ) -> Result<R, ClientError> {
        match consistency {
            ReadConsistency::Weak => {}
            ReadConsistency::Linearizable => {
                self.service.raft.ensure_linearizable(ReadPolicy::ReadIndex).await.map_err(
                    |e| match e {
                        RaftError::APIError(LinearizableReadError::ForwardToLeader(f)) => {
                            ClientError::forward(f)
                        }
                        RaftError::APIError(LinearizableReadError::QuorumNotEnough(_)) => {
                            ClientError::NoQuorum
                        }
                        RaftError::Fatal(_) => ClientError::Stopped,
                    },
                )?;
            }
        }
        Ok(self.state.read(read))
    }

    /// Whether this node is the leader *and* has applied an entry of its own term, which
    /// implies it has applied everything committed before its term. Until then a new leader
    /// must not act as leader (no block building): its state may lack committed entries.
    #[must_use]
    pub fn is_ready_leader(&self) -> bool {
        let metrics = self.service.raft.metrics();
        let m = metrics.borrow_watched();
        m.state == ServerState::Leader
            && m.vote.committed
            && m.vote.leader_id.node_id == self.service.id
            && m.last_applied.is_some_and(|applied: LogId| applied.leader_id == m.vote.leader_id)
    }

    /// The current leader, as this node knows it.
    #[must_use]
    pub fn leader(&self) -> Option<NodeId> {
        self.service.raft.metrics().borrow_watched().current_leader
    }

    /// Stops the node: no new writes, openraft shut down (writes in flight fail with
    /// [`ClientError::Stopped`]), the transport stops delivering to it, and the log store's
    /// writer thread has released the directory when this returns (bounded by `timeout`).
    pub async fn shutdown(self, timeout: Duration) {
        let Self { service, writes, batcher, stop_serving, log_closed, forwarder, .. } = self;
        let NodeService { id, raft, .. } = service;
        stop_serving();
        drop(forwarder);
        drop(writes);
        if let Err(e) = raft.shutdown().await {
            tracing::warn!(node = id.0, error = %e, "raft shutdown failed");
        }
        // Answers what is in flight with `Stopped` now that openraft is down.
        let _ = tokio::time::timeout(timeout, batcher).await;
        drop(raft);
        if let Some(closed) = log_closed
            && tokio::time::timeout(timeout, closed).await.is_err()
        {
            tracing::warn!(node = id.0, "raft log store did not close in time");
        }
        tracing::info!(node = id.0, "raft node stopped");
    }
}
