//! Node-to-node Raft transport: the [`Transport`] trait a node is started with, the
//! [`Forwarder`] a follower sends writes and admin requests to the leader through, and
//! [`InProcessNetwork`], which connects the nodes of one process through bounded channels (for
//! tests, simulations and single-process deployments). The TCP transport
//! ([`TcpTransport`](crate::TcpTransport)) implements the same traits.
//!
//! ```text
//!  openraft replication ──► InProcessConnection::append_entries ──► target inbox (bounded)
//!    (source node)              │ link cut? → Unreachable             │ ≤ INBOX_CONCURRENCY_MAX
//!                               │ no answer in time? → Timeout        ▼ at once
//!                               ◄──────────────── reply ◄── Raft::append_entries (target)
//! ```

use std::{
    collections::{BTreeMap, BTreeSet},
    future::Future,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use futures_util::{StreamExt, future::BoxFuture, stream::FuturesUnordered};
use mempulse_primitives::NodeId;
use openraft::{
    RPCTypes,
    errors::{Fatal, RPCError, ReplicationClosed, StreamingError, Timeout, Unreachable},
    network::{NetSnapshot, RPCOption, RaftNetworkFactory, RaftNetworkV2},
    raft::{
        AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest,
        TransferLeaderResponse, VoteRequest, VoteResponse,
    },
};
use tokio::sync::{mpsc, oneshot};

use crate::{
    AdminError, AdminReply, AdminRequest, ClientError, ClusterCommand, ClusterNode,
    ClusterResponse, NodeIdentity, TypeConfig,
    config::{INBOX_CAPACITY, INBOX_CONCURRENCY_MAX},
    node::NodeService,
    state_machine::ClusterSnapshot,
    types::{Snapshot, Vote},
};

/// How a node reaches its peers and how its peers reach it.
pub trait Transport: Send + Sync + 'static {
    /// The openraft network factory the node's Raft sends through.
    type Factory: RaftNetworkFactory<
            TypeConfig,
            Network: NetSnapshot<TypeConfig, SnapshotData = ClusterSnapshot>,
        >;

    /// The factory for outgoing RPCs of node `id`; no RPC waits longer than `send_timeout`
    /// (nor than the deadline openraft gives it).
    fn connect(&self, id: NodeId, send_timeout: Duration) -> Self::Factory;

    /// Starts delivering RPCs, forwarded writes and admin requests addressed to `id` to
    /// `node`.
    fn serve(&self, id: NodeId, node: NodeService);

    /// Stops delivering to `id` (calls fail as unreachable).
    fn stop_serving(&self, id: NodeId);

    /// What node `id` forwards writes and admin requests to the leader through.
    fn forwarder(&self, id: NodeId) -> Arc<dyn Forwarder>;

    /// Gives the transport node `id`'s incarnations before the node's Raft starts, so peers
    /// can refuse a member whose Raft state was lost (`identity.rs`). A transport whose peers
    /// cannot lose state apart from their process (in-process) ignores it.
    fn attach_identity(&self, id: NodeId, identity: Arc<NodeIdentity>) {
        let _ = (id, identity);
    }
}

/// Why a forwarded request got no answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ForwardFailure {
    /// Nothing reached the target (no connection, refused, backing off): safe to retry.
    #[error("request not delivered")]
    NotSent,
    /// The request may have reached the target, and its answer was lost or late: a write's
    /// outcome is unknown.
    #[error("answer lost")]
    Lost,
}

/// Sends client writes and admin requests to another node (the leader) and returns its
/// answer. The target serves them itself and never forwards further.
pub trait Forwarder: Send + Sync + std::fmt::Debug + 'static {
    /// Asks `target` at `node` to write `command`, waiting at most `timeout`.
    fn write<'a>(
        &'a self,
        target: NodeId,
        node: &'a ClusterNode,
        command: ClusterCommand,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Result<ClusterResponse, ClientError>, ForwardFailure>>;

    /// Asks `target` at `node` to serve `request`, waiting at most `timeout`.
    fn admin<'a>(
        &'a self,
        target: NodeId,
        node: &'a ClusterNode,
        request: AdminRequest,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Result<AdminReply, AdminError>, ForwardFailure>>;
}

/// One RPC in flight to a node's inbox, with where to send the answer.
enum Rpc {
    Append(AppendEntriesRequest<TypeConfig>, Reply<AppendEntriesResponse<TypeConfig>>),
    Vote(VoteRequest<TypeConfig>, Reply<VoteResponse<TypeConfig>>),
    PreVote(VoteRequest<TypeConfig>, Reply<VoteResponse<TypeConfig>>),
    Snapshot(Vote, Snapshot, Reply<SnapshotResponse<TypeConfig>>),
    TransferLeader(TransferLeaderRequest<TypeConfig>, Reply<TransferLeaderResponse<TypeConfig>>),
}

type Reply<T> = oneshot::Sender<Result<T, Fatal<TypeConfig>>>;

/// Why an in-process RPC did not reach its target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// The source or the target is isolated by [`InProcessNetwork::isolate`].
    #[error("link cut")]
    Cut,
    /// No node serves the target id.
    #[error("target not serving")]
    NotServing,
    /// The target stopped before answering.
    #[error("target stopped")]
    TargetStopped,
}

#[derive(Debug, Default)]
struct Wires {
    inboxes: BTreeMap<NodeId, mpsc::Sender<Rpc>>,
    nodes: BTreeMap<NodeId, NodeService>,
    isolated: BTreeSet<NodeId>,
}

/// Bounded in-process channels between the nodes of one process, with fault injection:
/// [`isolate`](Self::isolate) cuts every link of a node (both directions) until
/// [`heal`](Self::heal). Clones share the same wires.
#[derive(Clone, Debug, Default)]
pub struct InProcessNetwork {
    wires: Arc<Mutex<Wires>>,
}

impl InProcessNetwork {
    /// A network with no nodes.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn wires(&self) -> MutexGuard<'_, Wires> {
        self.wires.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Cuts every link to and from `id`: its RPCs, and RPCs to it, fail as unreachable.
    pub fn isolate(&self, id: NodeId) {
        self.wires().isolated.insert(id);
    }

    /// Restores the links of `id`.
    pub fn heal(&self, id: NodeId) {
        self.wires().isolated.remove(&id);
    }

    /// The inbox of `target`, when the link from `source` is up.
    fn route(&self, source: NodeId, target: NodeId) -> Result<mpsc::Sender<Rpc>, LinkError> {
        let wires = self.wires();
        if wires.isolated.contains(&source) || wires.isolated.contains(&target) {
            return Err(LinkError::Cut);
        }
        wires.inboxes.get(&target).cloned().ok_or(LinkError::NotServing)
    }

    /// The node served as `target`, when the link from `source` is up.
    fn route_node(&self, source: NodeId, target: NodeId) -> Result<NodeService, ForwardFailure> {
        let wires = self.wires();
        if wires.isolated.contains(&source) || wires.isolated.contains(&target) {
            return Err(ForwardFailure::NotSent);
        }
        wires.nodes.get(&target).cloned().ok_or(ForwardFailure::NotSent)
    }
}

/// The forwarder of one node of an [`InProcessNetwork`].
#[derive(Clone, Debug)]
struct InProcessForwarder {
    source: NodeId,
    network: InProcessNetwork,
}

impl InProcessForwarder {
    /// Runs `call` on the target node within `timeout`; a link cut meanwhile loses the answer.
    async fn call<R>(
        &self,
        target: NodeId,
        timeout: Duration,
        call: impl AsyncFnOnce(NodeService) -> R,
    ) -> Result<R, ForwardFailure> {
        let node = self.network.route_node(self.source, target)?;
        let answer =
            tokio::time::timeout(timeout, call(node)).await.map_err(|_| ForwardFailure::Lost)?;
        self.network.route_node(self.source, target).map_err(|_| ForwardFailure::Lost)?;
        Ok(answer)
    }
}

impl Forwarder for InProcessForwarder {
    fn write<'a>(
        &'a self,
        target: NodeId,
        _node: &'a ClusterNode,
        command: ClusterCommand,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Result<ClusterResponse, ClientError>, ForwardFailure>> {
        Box::pin(self.call(target, timeout, async |node| node.write_local(command).await))
    }

    fn admin<'a>(
        &'a self,
        target: NodeId,
        _node: &'a ClusterNode,
        request: AdminRequest,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Result<AdminReply, AdminError>, ForwardFailure>> {
        Box::pin(self.call(target, timeout, async |node| node.admin_local(request).await))
    }
}

impl Transport for InProcessNetwork {
    type Factory = InProcessFactory;

    fn connect(&self, id: NodeId, send_timeout: Duration) -> InProcessFactory {
        InProcessFactory { source: id, send_timeout, network: self.clone() }
    }

    fn serve(&self, id: NodeId, node: NodeService) {
        let (tx, rx) = mpsc::channel(INBOX_CAPACITY);
        let raft = node.raft().clone();
        let mut wires = self.wires();
        wires.inboxes.insert(id, tx);
        wires.nodes.insert(id, node);
        tokio::spawn(serve_inbox(raft, rx));
    }

    fn stop_serving(&self, id: NodeId) {
        // Dropping the sender ends the inbox task once the queued RPCs are served.
        let mut wires = self.wires();
        wires.inboxes.remove(&id);
        wires.nodes.remove(&id);
    }

    fn forwarder(&self, id: NodeId) -> Arc<dyn Forwarder> {
        Arc::new(InProcessForwarder { source: id, network: self.clone() })
    }
}

/// Serves one node's inbox, at most [`INBOX_CONCURRENCY_MAX`] RPCs at once.
async fn serve_inbox(raft: crate::ClusterRaft, mut rx: mpsc::Receiver<Rpc>) {
    let mut running = FuturesUnordered::new();
    loop {
        tokio::select! {
            rpc = rx.recv(), if running.len() < INBOX_CONCURRENCY_MAX => match rpc {
                Some(rpc) => running.push(handle(raft.clone(), rpc)),
                None => break,
            },
            Some(()) = running.next(), if !running.is_empty() => {}
        }
    }
    while running.next().await.is_some() {}
}

async fn handle(raft: crate::ClusterRaft, rpc: Rpc) {
    // A dropped receiver means the caller timed out; nothing to do.
    match rpc {
        Rpc::Append(req, reply) => {
            let _ = reply.send(raft.append_entries(req).await.map_err(|e| e.unwrap_fatal()));
        }
        Rpc::Vote(req, reply) => {
            let _ = reply.send(raft.vote(req).await.map_err(|e| e.unwrap_fatal()));
        }
        Rpc::PreVote(req, reply) => {
            let _ = reply.send(raft.pre_vote(req).await.map_err(|e| e.unwrap_fatal()));
        }
        Rpc::Snapshot(vote, snapshot, reply) => {
            let _ = reply.send(raft.install_full_snapshot(vote, snapshot).await);
        }
        Rpc::TransferLeader(req, reply) => {
            let _ = reply.send(raft.handle_transfer_leader(req).await);
        }
    }
}

/// Creates [`InProcessConnection`]s from one node.
#[derive(Clone, Debug)]
pub struct InProcessFactory {
    source: NodeId,
    send_timeout: Duration,
    network: InProcessNetwork,
}

impl RaftNetworkFactory<TypeConfig> for InProcessFactory {
    type Network = InProcessConnection;

    async fn new_client(&mut self, target: NodeId, _node: &ClusterNode) -> InProcessConnection {
        InProcessConnection {
            source: self.source,
            target,
            send_timeout: self.send_timeout,
            network: self.network.clone(),
        }
    }
}

/// The link from one node to another over an [`InProcessNetwork`].
#[derive(Clone, Debug)]
pub struct InProcessConnection {
    source: NodeId,
    target: NodeId,
    send_timeout: Duration,
    network: InProcessNetwork,
}

/// Why one call failed, before it is mapped to openraft's error of the calling method.
#[derive(Clone, Copy)]
enum CallError {
    Unreachable(LinkError),
    Timeout(Duration),
}

impl InProcessConnection {
    /// Delivers one RPC and waits at most `timeout` for the answer.
    async fn call<T>(
        &self,
        make: impl FnOnce(Reply<T>) -> Rpc,
        timeout: Duration,
    ) -> Result<T, CallError> {
        let inbox = self.network.route(self.source, self.target).map_err(CallError::Unreachable)?;
        let timeout = timeout.min(self.send_timeout);
        let (reply, answer) = oneshot::channel();
        let exchange = async {
            inbox.send(make(reply)).await.map_err(|_| LinkError::TargetStopped)?;
            match answer.await {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(_)) | Err(_) => Err(LinkError::TargetStopped),
            }
        };
        let value = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| CallError::Timeout(timeout))?
            .map_err(CallError::Unreachable)?;
        // A link cut while the call was in flight loses the answer, as a real network would.
        self.network.route(self.source, self.target).map_err(CallError::Unreachable)?;
        Ok(value)
    }

    fn rpc_error(&self, action: RPCTypes, e: CallError) -> RPCError<TypeConfig> {
        match e {
            CallError::Unreachable(link) => RPCError::Unreachable(Unreachable::new(&link)),
            CallError::Timeout(timeout) => {
                RPCError::Timeout(Timeout { action, id: self.source, target: self.target, timeout })
            }
        }
    }
}

impl RaftNetworkV2<TypeConfig> for InProcessConnection {
    type SnapshotData = ClusterSnapshot;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.call(|reply| Rpc::Append(rpc, reply), option.soft_ttl())
            .await
            .map_err(|e| self.rpc_error(RPCTypes::AppendEntries, e))
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.call(|reply| Rpc::Vote(rpc, reply), option.soft_ttl())
            .await
            .map_err(|e| self.rpc_error(RPCTypes::Vote, e))
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.call(|reply| Rpc::PreVote(rpc, reply), option.soft_ttl())
            .await
            .map_err(|e| self.rpc_error(RPCTypes::Vote, e))
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let call = self.call(|reply| Rpc::Snapshot(vote, snapshot, reply), option.soft_ttl());
        tokio::select! {
            closed = cancel => Err(StreamingError::Closed(closed)),
            result = call => result.map_err(|e| match e {
                CallError::Unreachable(link) => StreamingError::Unreachable(Unreachable::new(&link)),
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
        req: TransferLeaderRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.call(|reply| Rpc::TransferLeader(req, reply), option.soft_ttl())
            .await
            .map_err(|e| self.rpc_error(RPCTypes::TransferLeader, e))
    }
}
