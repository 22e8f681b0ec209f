//! The simulated network: delivers openraft RPCs between the in-process Raft instances of a
//! simulated cluster with seeded delays, message loss, partitions, and the crash of a node
//! (whose in-flight messages die with it).
//!
//! ```text
//!  SimConnection::call ── link cut / target down / source crashed? ──► Unreachable at once
//!        │ request delay (seeded; rare spikes reorder messages)
//!        │ lost on the way, or link cut meanwhile? ──► nothing arrives: Timeout at the deadline
//!        ▼
//!  target's Raft handles the RPC in its own task (it completes even if the caller gave up)
//!        │ response delay; lost, or link cut meanwhile? ──► Timeout at the deadline
//!        ▼
//!  answer to openraft
//! ```
//! A partition assigns every node a group; a link is up when both ends are in the same group.
//! Every random draw comes from the network's own seeded stream, in the deterministic order the
//! simulated runtime polls the tasks.

use std::{
    collections::BTreeMap,
    future::Future,
    pin::pin,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use futures_util::future::{Either, select};
use mempulse_primitives::NodeId;
use openraft::{
    RPCTypes,
    errors::{RPCError, ReplicationClosed, StreamingError, Timeout, Unreachable},
    network::{RPCOption, RaftNetworkFactory, RaftNetworkV2},
    raft::{
        AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest,
        TransferLeaderResponse, VoteRequest, VoteResponse,
    },
    type_config::TypeConfigExt,
};

use super::{SimRaft, rng::SimRng};
use crate::{
    ClusterNode, ClusterSnapshot, SimTypeConfig,
    types::{Snapshot, Vote},
};

/// How long messages take and how often they are lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetworkFaults {
    /// Shortest one-way delay.
    pub delay_min: Duration,
    /// Longest ordinary one-way delay.
    pub delay_max: Duration,
    /// Messages in a thousand that take a long detour (up to `spike_max`), overtaken by later
    /// ones.
    pub spike_per_mille: u64,
    /// Longest detour.
    pub spike_max: Duration,
    /// Messages in a thousand that are lost (each direction drawn separately).
    pub drop_per_mille: u64,
}

impl NetworkFaults {
    /// A healthy LAN: 1–5 ms, no spikes, no loss.
    #[must_use]
    pub const fn calm() -> Self {
        Self {
            delay_min: Duration::from_millis(1),
            delay_max: Duration::from_millis(5),
            spike_per_mille: 0,
            spike_max: Duration::from_millis(5),
            drop_per_mille: 0,
        }
    }
}

/// Why a message did not get through at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SimLinkError {
    /// The two nodes are in different partition groups.
    #[error("partitioned")]
    Partitioned,
    /// The target is down (crashed, not restarted yet).
    #[error("target down")]
    TargetDown,
    /// The sender is a crashed incarnation of its node.
    #[error("sender crashed")]
    SenderCrashed,
}

#[derive(Debug)]
struct Endpoint {
    incarnation: u64,
    raft: SimRaft,
}

/// Counters of what the network did, for the run's report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetworkStats {
    /// RPCs delivered to their target.
    pub delivered: u64,
    /// Requests or responses lost (by the loss rate or a partition formed in flight).
    pub lost: u64,
    /// RPCs refused at once (partition, target down).
    pub refused: u64,
}

#[derive(Debug)]
struct NetState {
    endpoints: BTreeMap<NodeId, Endpoint>,
    /// Partition group of each node; a node absent is in group 0.
    groups: BTreeMap<NodeId, u8>,
    faults: NetworkFaults,
    rng: SimRng,
    stats: NetworkStats,
}

/// The network of one simulated cluster. Clones share it.
#[derive(Clone, Debug)]
pub struct SimNetwork {
    state: Arc<Mutex<NetState>>,
}

impl SimNetwork {
    /// A calm network with no node, drawing from the run seed's network stream.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        let state = NetState {
            endpoints: BTreeMap::new(),
            groups: BTreeMap::new(),
            faults: NetworkFaults::calm(),
            rng: SimRng::new(seed, 1),
            stats: NetworkStats::default(),
        };
        Self { state: Arc::new(Mutex::new(state)) }
    }

    fn lock(&self) -> MutexGuard<'_, NetState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts delivering to incarnation `incarnation` of node `id`.
    pub(crate) fn register(&self, id: NodeId, incarnation: u64, raft: SimRaft) {
        self.lock().endpoints.insert(id, Endpoint { incarnation, raft });
    }

    /// Stops delivering to `id` (it crashed): its messages in flight are lost.
    pub(crate) fn unregister(&self, id: NodeId) {
        self.lock().endpoints.remove(&id);
    }

    /// Splits the nodes into groups; nodes not named form one more group with each other.
    pub fn partition(&self, groups: &[Vec<NodeId>]) {
        let mut state = self.lock();
        state.groups.clear();
        for (group, members) in groups.iter().enumerate() {
            let tag = u8::try_from(group + 1).unwrap_or(u8::MAX);
            for id in members {
                state.groups.insert(*id, tag);
            }
        }
    }

    /// Joins every group again.
    pub fn heal(&self) {
        self.lock().groups.clear();
    }

    /// Sets the delays and the loss rate.
    pub fn set_faults(&self, faults: NetworkFaults) {
        self.lock().faults = faults;
    }

    /// The counters so far.
    #[must_use]
    pub fn stats(&self) -> NetworkStats {
        self.lock().stats
    }

    /// The factory of the connections of incarnation `incarnation` of node `id`.
    pub(crate) fn factory(
        &self,
        id: NodeId,
        incarnation: u64,
        send_timeout: Duration,
    ) -> SimFactory {
        SimFactory { source: id, incarnation, send_timeout, network: self.clone() }
    }

    /// The target's Raft when the link is up and both ends are alive.
    pub(crate) fn route(
        &self,
        source: NodeId,
        incarnation: u64,
        target: NodeId,
    ) -> Result<SimRaft, SimLinkError> {
        let state = self.lock();
        if state.endpoints.get(&source).is_none_or(|e| e.incarnation != incarnation) {
            return Err(SimLinkError::SenderCrashed);
        }
        let group = |id| state.groups.get(&id).copied().unwrap_or(0);
        if group(source) != group(target) {
            return Err(SimLinkError::Partitioned);
        }
        let endpoint = state.endpoints.get(&target).ok_or(SimLinkError::TargetDown)?;
        Ok(endpoint.raft.clone())
    }

    /// One message's delay, and whether it is lost.
    pub(crate) fn draw(&self) -> (Duration, bool) {
        let mut state = self.lock();
        let NetworkFaults { delay_min, delay_max, spike_per_mille, spike_max, drop_per_mille } =
            state.faults;
        let ms = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let micros = if state.rng.chance(spike_per_mille) {
            state.rng.between(ms(delay_max), ms(spike_max))
        } else {
            state.rng.between(ms(delay_min), ms(delay_max))
        };
        let lost = state.rng.chance(drop_per_mille);
        if lost {
            state.stats.lost += 1;
        }
        (Duration::from_micros(micros), lost)
    }

    fn count(&self, outcome: fn(&mut NetworkStats)) {
        outcome(&mut self.lock().stats);
    }
}

/// Creates [`SimConnection`]s from one incarnation of one node.
#[derive(Clone, Debug)]
pub struct SimFactory {
    source: NodeId,
    incarnation: u64,
    send_timeout: Duration,
    network: SimNetwork,
}

impl RaftNetworkFactory<SimTypeConfig> for SimFactory {
    type Network = SimConnection;

    async fn new_client(&mut self, target: NodeId, _node: &ClusterNode) -> SimConnection {
        SimConnection {
            source: self.source,
            incarnation: self.incarnation,
            target,
            send_timeout: self.send_timeout,
            network: self.network.clone(),
        }
    }
}

/// The simulated link from one node to another.
#[derive(Clone, Debug)]
pub struct SimConnection {
    source: NodeId,
    incarnation: u64,
    target: NodeId,
    send_timeout: Duration,
    network: SimNetwork,
}

/// Why one call failed, before it is mapped to openraft's error of the calling method.
#[derive(Clone, Copy, Debug)]
enum CallError {
    Unreachable(SimLinkError),
    Timeout(Duration),
}

impl SimConnection {
    /// Delivers one RPC through the simulated network and waits at most `timeout` (capped by
    /// the send timeout) for the answer. `deliver` runs on the target, in its own task.
    async fn call<T, F>(
        &self,
        timeout: Duration,
        deliver: impl FnOnce(SimRaft) -> F + Send + 'static,
    ) -> Result<T, CallError>
    where
        T: Send + 'static,
        F: Future<Output = Option<T>> + Send + 'static,
    {
        let timeout = timeout.min(self.send_timeout);
        let net = &self.network;
        let (source, incarnation, target) = (self.source, self.incarnation, self.target);
        net.route(source, incarnation, target).map_err(CallError::Unreachable)?;
        let exchange = async move {
            let (delay, lost) = net.draw();
            SimTypeConfig::sleep(delay).await;
            // Lost, or the link broke while the request travelled: nothing arrives.
            let Some(raft) = net.route(source, incarnation, target).ok().filter(|_| !lost) else {
                return std::future::pending().await;
            };
            net.count(|s| s.delivered += 1);
            let (reply, answer) = tokio::sync::oneshot::channel();
            drop(SimTypeConfig::spawn(async move {
                let _ = reply.send(deliver(raft).await);
            }));
            let answer = answer.await.ok().flatten();
            let (delay, lost) = net.draw();
            SimTypeConfig::sleep(delay).await;
            match answer {
                Some(value) if !lost && net.route(source, incarnation, target).is_ok() => value,
                // The target failed (shut down), the answer was lost, or the link broke.
                _ => std::future::pending().await,
            }
        };
        SimTypeConfig::timeout(timeout, exchange).await.map_err(|_| CallError::Timeout(timeout))
    }

    fn rpc_error(&self, action: RPCTypes, e: CallError) -> RPCError<SimTypeConfig> {
        if matches!(e, CallError::Unreachable(_)) {
            self.network.count(|s| s.refused += 1);
        }
        match e {
            CallError::Unreachable(link) => RPCError::Unreachable(Unreachable::new(&link)),
            CallError::Timeout(timeout) => {
                RPCError::Timeout(Timeout { action, id: self.source, target: self.target, timeout })
            }
        }
    }
}

impl RaftNetworkV2<SimTypeConfig> for SimConnection {
    type SnapshotData = ClusterSnapshot;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<SimTypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<SimTypeConfig>, RPCError<SimTypeConfig>> {
        self.call(option.soft_ttl(), |raft| async move { raft.append_entries(rpc).await.ok() })
            .await
            .map_err(|e| self.rpc_error(RPCTypes::AppendEntries, e))
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<SimTypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<SimTypeConfig>, RPCError<SimTypeConfig>> {
        self.call(option.soft_ttl(), |raft| async move { raft.vote(rpc).await.ok() })
            .await
            .map_err(|e| self.rpc_error(RPCTypes::Vote, e))
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<SimTypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<SimTypeConfig>, RPCError<SimTypeConfig>> {
        self.call(option.soft_ttl(), |raft| async move { raft.pre_vote(rpc).await.ok() })
            .await
            .map_err(|e| self.rpc_error(RPCTypes::Vote, e))
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<SimTypeConfig>, StreamingError<SimTypeConfig>> {
        let call = self.call(option.soft_ttl(), move |raft| async move {
            raft.install_full_snapshot(vote, snapshot).await.ok()
        });
        match select(pin!(cancel), pin!(call)).await {
            Either::Left((closed, _)) => Err(StreamingError::Closed(closed)),
            Either::Right((result, _)) => result.map_err(|e| match e {
                CallError::Unreachable(link) => {
                    StreamingError::Unreachable(Unreachable::new(&link))
                }
                CallError::Timeout(timeout) => StreamingError::Timeout(Timeout {
                    action: RPCTypes::InstallSnapshot,
                    id: self.source,
                    target: self.target,
                    timeout,
                }),
            }),
        }
    }

    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest<SimTypeConfig>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<SimTypeConfig>, RPCError<SimTypeConfig>> {
        self.call(
            option.soft_ttl(),
            |raft| async move { raft.handle_transfer_leader(req).await.ok() },
        )
        .await
        .map_err(|e| self.rpc_error(RPCTypes::TransferLeader, e))
    }
}
