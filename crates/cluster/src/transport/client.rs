//! The client side of the transport: a connection pool per peer, dialling with capped
//! exponential backoff, one request per connection at a time, and openraft's network traits
//! on top.

use std::{
    collections::BTreeMap,
    future::Future,
    sync::{
        Arc, Mutex, MutexGuard, OnceLock, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use futures_util::{FutureExt as _, future::BoxFuture};
use mempulse_primitives::NodeId;
use openraft::{
    RPCTypes,
    errors::{RPCError, ReplicationClosed, StreamingError, Timeout, Unreachable},
    network::{NetSnapshot, RPCOption, RaftNetworkFactory, RaftNetworkV2},
    raft::{
        AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest,
        TransferLeaderResponse, VoteRequest, VoteResponse,
    },
};
use tokio::{
    io::AsyncReadExt as _,
    net::TcpStream,
    sync::{OwnedSemaphorePermit, Semaphore},
    time::Instant,
};

use super::{
    BoxIo, ReadError, TcpConfig, admit, read_frame, resolves_to_loopback, tls,
    wire::{Answer, HELLO_FRAME_MAX, Request, parse_body},
    write_frame,
};
use crate::{
    AdminError, AdminReply, AdminRequest, ClientError, ClusterCommand, ClusterNode,
    ClusterResponse, NodeIdentity, TypeConfig,
    config::{CONNECTIONS_PER_PEER_MAX, POOL_IDLE_PER_PEER, SNAPSHOT_CHUNK_BYTES},
    identity::NO_INCARNATION,
    metrics::{FrameFault, RefusalReason, TransportMetrics},
    network::{ForwardFailure, Forwarder},
    state_machine::ClusterSnapshot,
    types::{Snapshot, Vote},
};

/// Why nothing reached a peer. Exhaustive on purpose: an operator's tool that explains
/// failures must be told (by a broken build) of a new one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotSentReason {
    /// This client is closing.
    Closed,
    /// An earlier dial to the peer failed and the next one is not due yet.
    BackingOff,
    /// No TCP connection: nothing listens at the address (the node is not running, or the
    /// address is wrong), or it is unreachable.
    Connect,
    /// The TLS handshake failed: the address is not a Raft port (an HTTP or stream port
    /// answers something else), or the peer refused this node's certificate.
    Tls,
    /// The TLS handshake failed because the peer's certificate names another node than the
    /// one dialled: a wrong id for the address.
    WrongNode,
    /// The hello exchange failed: the peer closed the connection or answered something else
    /// than a hello (not a Raft port, another wire version, or this node's certificate
    /// refused after the handshake).
    Hello,
    /// This node could not durably record the peer's incarnation.
    PeerRecord,
}

impl NotSentReason {
    /// Stable lowercase code.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::BackingOff => "backing_off",
            Self::Connect => "connect",
            Self::Tls => "tls",
            Self::WrongNode => "wrong_node",
            Self::Hello => "hello",
            Self::PeerRecord => "peer_record",
        }
    }
}

/// Why a [`PeerClient::admin_call`] got no answer. Exhaustive, as [`NotSentReason`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CallFailure {
    /// Nothing reached the peer: the request was not served.
    #[error("request not sent: {}", .0.as_str())]
    NotSent(NotSentReason),
    /// The peer refused this node in the hello: the request was not served.
    #[error("refused by the peer: {}", .0.as_str())]
    Refused(RefusalReason),
    /// The request was sent and the connection failed before its answer: it may have been
    /// served.
    #[error("answer lost")]
    Lost,
    /// No answer within the timeout: the request may have been served.
    #[error("timed out")]
    TimedOut,
}

impl From<CallFailure> for ForwardFailure {
    fn from(failure: CallFailure) -> Self {
        match failure {
            CallFailure::NotSent(_) | CallFailure::Refused(_) => Self::NotSent,
            CallFailure::Lost | CallFailure::TimedOut => Self::Lost,
        }
    }
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CallError {
    /// Nothing reached the peer (no connection, refused, backing off).
    #[error("peer unreachable: {}", .0.as_str())]
    NotSent(NotSentReason),
    /// The request may have reached the peer; its answer was lost.
    #[error("answer lost: {0}")]
    Lost(&'static str),
    /// No answer within the timeout (the request may have reached the peer).
    #[error("timed out")]
    Timeout,
    /// The peer refused this node.
    #[error("refused by peer: {0}")]
    Refused(RefusalReason),
}

/// An idle pooled connection and when it went idle.
struct Pooled {
    io: BoxIo,
    idle_since: Instant,
}

/// What the client knows about one peer.
struct Peer {
    addr: String,
    idle: Vec<Pooled>,
    slots: Arc<Semaphore>,
    backoff: Duration,
    retry_at: Option<Instant>,
}

/// Outbound calls of one node to its peers, authenticated as that node.
pub struct PeerClient {
    id: NodeId,
    tls: Option<tokio_rustls::TlsConnector>,
    peers: Mutex<BTreeMap<NodeId, Peer>>,
    next_request: AtomicU64,
    frame_bytes_max: u32,
    backoff_first: std::time::Duration,
    backoff_max: std::time::Duration,
    idle_max: std::time::Duration,
    metrics: Arc<TransportMetrics>,
    /// The node's incarnations: presented in every hello, and every peer's checked. Without
    /// them (an admin client) the hello presents incarnation 0: admin requests only.
    identity: OnceLock<Arc<NodeIdentity>>,
}

impl std::fmt::Debug for PeerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerClient").field("id", &self.id).finish_non_exhaustive()
    }
}

/// A checked-out connection; returned to the pool only after a complete exchange.
struct Lease {
    io: BoxIo,
    _slot: OwnedSemaphorePermit,
}

impl PeerClient {
    pub(crate) fn new(
        config: &TcpConfig,
        tls: Option<tokio_rustls::TlsConnector>,
        metrics: Arc<TransportMetrics>,
    ) -> Self {
        Self {
            id: config.id,
            tls,
            peers: Mutex::new(BTreeMap::new()),
            next_request: AtomicU64::new(1),
            frame_bytes_max: config.frame_bytes_max,
            backoff_first: config.backoff_first,
            backoff_max: config.backoff_max,
            idle_max: config.idle_timeout / 2,
            metrics,
            identity: OnceLock::new(),
        }
    }

    pub(crate) fn attach_identity(&self, identity: Arc<NodeIdentity>) {
        let _ = self.identity.set(identity);
    }

    /// One hello exchange with `target` unless a connection is pooled (so both sides record
    /// each other's incarnation); failures are counted and logged where they happen.
    pub(crate) async fn introduce(&self, target: NodeId, addr: &str) {
        if let Ok(lease) = self.checkout(target, addr).await {
            self.checkin(target, lease);
        }
    }

    fn peers(&self) -> MutexGuard<'_, BTreeMap<NodeId, Peer>> {
        self.peers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Drops every pooled connection.
    pub(crate) fn close(&self) {
        self.peers().clear();
    }

    /// A connection to `target`: a pooled one, or a new one (unless backing off).
    async fn checkout(&self, target: NodeId, addr: &str) -> Result<Lease, CallError> {
        let slots = {
            let mut peers = self.peers();
            let peer = peers.entry(target).or_insert_with(|| Peer {
                addr: addr.to_owned(),
                idle: Vec::new(),
                slots: Arc::new(Semaphore::new(CONNECTIONS_PER_PEER_MAX)),
                backoff: self.backoff_first,
                retry_at: None,
            });
            if peer.addr != addr {
                // The member moved: its old connections lead elsewhere.
                peer.addr = addr.to_owned();
                peer.idle.clear();
                peer.retry_at = None;
            }
            peer.slots.clone()
        };
        let slot =
            slots.acquire_owned().await.map_err(|_| CallError::NotSent(NotSentReason::Closed))?;
        let now = Instant::now();
        {
            let mut peers = self.peers();
            let Some(peer) = peers.get_mut(&target) else {
                return Err(CallError::NotSent(NotSentReason::Closed));
            };
            while let Some(mut pooled) = peer.idle.pop() {
                // A connection the peer closed (a crashed or restarted peer) would take the
                // request and lose it: skip it, so the request is either sent on a live
                // connection or known not to be sent.
                if now.duration_since(pooled.idle_since) < self.idle_max
                    && !peer_closed(&mut pooled.io)
                {
                    return Ok(Lease { io: pooled.io, _slot: slot });
                }
            }
            if peer.retry_at.is_some_and(|at| now < at) {
                return Err(CallError::NotSent(NotSentReason::BackingOff));
            }
        }
        match self.dial(target, addr).await {
            Ok(io) => {
                if let Some(peer) = self.peers().get_mut(&target) {
                    peer.backoff = self.backoff_first;
                    peer.retry_at = None;
                }
                Ok(Lease { io, _slot: slot })
            }
            Err(e) => {
                if let Some(peer) = self.peers().get_mut(&target) {
                    peer.retry_at = Some(Instant::now() + peer.backoff);
                    peer.backoff = (peer.backoff * 2).min(self.backoff_max);
                }
                Err(e)
            }
        }
    }

    fn checkin(&self, target: NodeId, lease: Lease) {
        if let Some(peer) = self.peers().get_mut(&target)
            && peer.idle.len() < POOL_IDLE_PER_PEER
        {
            peer.idle.push(Pooled { io: lease.io, idle_since: Instant::now() });
        }
    }

    /// TCP, TLS (server must be `node-<target>`), hello.
    async fn dial(&self, target: NodeId, addr: &str) -> Result<BoxIo, CallError> {
        if self.tls.is_none() && !resolves_to_loopback(addr).await {
            self.metrics.refused(RefusalReason::PlaintextNotLoopback, &addr);
            return Err(CallError::Refused(RefusalReason::PlaintextNotLoopback));
        }
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|_| CallError::NotSent(NotSentReason::Connect))?;
        let _ = tcp.set_nodelay(true);
        let mut io: BoxIo = match &self.tls {
            None => Box::new(tcp),
            Some(connector) => {
                let name =
                    tls::server_name(target).map_err(|_| CallError::NotSent(NotSentReason::Tls))?;
                let tls = connector.connect(name, tcp).await;
                Box::new(tls.map_err(|e| CallError::NotSent(tls_failure(&e)))?)
            }
        };
        let identity = self.identity.get();
        let incarnation = identity.map_or(NO_INCARNATION, |i| i.incarnation());
        let hello = Request::Hello { from: self.id, to: target, incarnation }.to_frame(0);
        write_frame(&mut io, &hello).await.map_err(|_| CallError::NotSent(NotSentReason::Hello))?;
        let body = read_frame(&mut io, HELLO_FRAME_MAX)
            .await
            // TLS 1.3 reports a refused client certificate on the first read; a closed
            // connection, an IO error and an oversized answer all mean no hello came back.
            .map_err(|_: ReadError| CallError::NotSent(NotSentReason::Hello))?;
        let frame = parse_body(&body).map_err(|_| CallError::NotSent(NotSentReason::Hello))?;
        match Answer::from_frame(&frame) {
            Ok(Answer::HelloAck(Ok(theirs))) => match identity {
                None => Ok(io),
                Some(_) if theirs == NO_INCARNATION => {
                    self.metrics.refused(RefusalReason::BadHello, &addr);
                    Err(CallError::Refused(RefusalReason::BadHello))
                }
                Some(identity) => match admit(identity, target, theirs).await {
                    Ok(()) => Ok(io),
                    Err(Some(reason)) => {
                        self.metrics.refused(reason, &format!("node-{} ({addr})", target.0));
                        Err(CallError::Refused(reason))
                    }
                    Err(None) => Err(CallError::NotSent(NotSentReason::PeerRecord)),
                },
            },
            Ok(Answer::HelloAck(Err(reason))) => {
                tracing::warn!(node = self.id.0, peer = target.0, %reason, "refused by peer");
                Err(CallError::Refused(reason))
            }
            _ => Err(CallError::NotSent(NotSentReason::Hello)),
        }
    }

    /// Sends the frames of one request on `lease` and reads its answer.
    async fn exchange(
        &self,
        lease: &mut Lease,
        id: u64,
        frames: &[Vec<u8>],
    ) -> Result<Answer, CallError> {
        for frame in frames {
            write_frame(&mut lease.io, frame).await.map_err(|_| CallError::Lost("write"))?;
        }
        let body = read_frame(&mut lease.io, self.frame_bytes_max).await.map_err(|e| match e {
            ReadError::Closed | ReadError::Io => CallError::Lost("read"),
            ReadError::TooLarge => {
                self.metrics.rejected(FrameFault::TooLarge, &"answer");
                CallError::Lost("answer too large")
            }
        })?;
        let frame = parse_body(&body).map_err(|_| {
            self.metrics.rejected(FrameFault::BadVersion, &"answer");
            CallError::Lost("bad answer")
        })?;
        if frame.id != id {
            self.metrics.rejected(FrameFault::IdMismatch, &"answer");
            return Err(CallError::Lost("answer id mismatch"));
        }
        Answer::from_frame(&frame).map_err(|_| {
            self.metrics.rejected(FrameFault::Malformed, &"answer");
            CallError::Lost("bad answer")
        })
    }

    /// One request/answer with `target` within `timeout`.
    pub(crate) async fn call(
        &self,
        target: NodeId,
        addr: &str,
        request: Request,
        timeout: Duration,
    ) -> Result<Answer, CallError> {
        self.call_frames(target, addr, |id| vec![request.to_frame(id)], timeout).await
    }

    async fn call_frames(
        &self,
        target: NodeId,
        addr: &str,
        frames: impl FnOnce(u64) -> Vec<Vec<u8>>,
        timeout: Duration,
    ) -> Result<Answer, CallError> {
        let id = self.next_request.fetch_add(1, Ordering::Relaxed);
        let run = async {
            let mut lease = self.checkout(target, addr).await?;
            let answer = self.exchange(&mut lease, id, &frames(id)).await?;
            self.checkin(target, lease);
            Ok(answer)
        };
        tokio::time::timeout(timeout, run).await.map_err(|_| CallError::Timeout)?
    }

    /// Sends a snapshot in chunks and waits for the follower's answer.
    pub(crate) async fn send_snapshot(
        &self,
        target: NodeId,
        addr: &str,
        vote: Vote,
        snapshot: &ClusterSnapshot,
        timeout: Duration,
    ) -> Result<Answer, CallError> {
        let bytes = snapshot.as_bytes();
        let frames = |id| {
            let begin = Request::SnapshotBegin { vote, total_bytes: bytes.len() as u64 };
            let mut frames = vec![begin.to_frame(id)];
            for chunk in bytes.chunks(SNAPSHOT_CHUNK_BYTES) {
                frames.push(Request::SnapshotChunk(chunk.to_vec()).to_frame(id));
            }
            frames
        };
        self.call_frames(target, addr, frames, timeout).await
    }

    /// Sends `command` to `target` (which should be the leader) and returns its answer.
    ///
    /// # Errors
    /// [`ForwardFailure::NotSent`] when nothing reached the peer (safe to retry),
    /// [`ForwardFailure::Lost`] when it may have.
    pub async fn write(
        &self,
        target: NodeId,
        node: &ClusterNode,
        command: ClusterCommand,
        timeout: Duration,
    ) -> Result<Result<ClusterResponse, ClientError>, ForwardFailure> {
        match self.call(target, &node.raft_addr, Request::Forward(command), timeout).await {
            Ok(Answer::Forward(result)) => Ok(result),
            Ok(Answer::Failed(_)) => Ok(Err(ClientError::Indeterminate {
                leader_id: Some(target),
                leader: Some(node.clone()),
            })),
            Ok(_) => Err(ForwardFailure::Lost),
            Err(e) => Err(e.into()),
        }
    }

    /// Sends an admin request to `target` and returns its answer.
    ///
    /// # Errors
    /// As [`PeerClient::write`].
    pub async fn admin(
        &self,
        target: NodeId,
        node: &ClusterNode,
        request: AdminRequest,
        timeout: Duration,
    ) -> Result<Result<AdminReply, AdminError>, ForwardFailure> {
        self.admin_call(target, node, request, timeout).await.map_err(ForwardFailure::from)
    }

    /// As [`PeerClient::admin`], saying why no answer came (for operators' tools).
    ///
    /// # Errors
    /// [`CallFailure`]: not sent (and why), refused, lost or timed out.
    pub async fn admin_call(
        &self,
        target: NodeId,
        node: &ClusterNode,
        request: AdminRequest,
        timeout: Duration,
    ) -> Result<Result<AdminReply, AdminError>, CallFailure> {
        match self.call(target, &node.raft_addr, Request::Admin(request), timeout).await {
            Ok(Answer::Admin(result)) => Ok(result),
            Ok(Answer::Failed(_)) => Ok(Err(AdminError::Client(ClientError::Stopped))),
            // Another answer kind is as good as none.
            Ok(_) | Err(CallError::Lost(_)) => Err(CallFailure::Lost),
            Err(CallError::NotSent(reason)) => Err(CallFailure::NotSent(reason)),
            Err(CallError::Refused(reason)) => Err(CallFailure::Refused(reason)),
            Err(CallError::Timeout) => Err(CallFailure::TimedOut),
        }
    }
}

/// Why a TLS handshake failed: the peer's certificate names another node, or anything else.
fn tls_failure(e: &std::io::Error) -> NotSentReason {
    use tokio_rustls::rustls::{CertificateError, Error};
    match e.get_ref().and_then(|inner| inner.downcast_ref::<Error>()) {
        Some(Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        )) => NotSentReason::WrongNode,
        _ => NotSentReason::Tls,
    }
}

impl From<CallError> for ForwardFailure {
    fn from(e: CallError) -> Self {
        match e {
            CallError::NotSent(_) | CallError::Refused(_) => Self::NotSent,
            CallError::Lost(_) | CallError::Timeout => Self::Lost,
        }
    }
}

impl Forwarder for PeerClient {
    fn write<'a>(
        &'a self,
        target: NodeId,
        node: &'a ClusterNode,
        command: ClusterCommand,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Result<ClusterResponse, ClientError>, ForwardFailure>> {
        Box::pin(Self::write(self, target, node, command, timeout))
    }

    fn admin<'a>(
        &'a self,
        target: NodeId,
        node: &'a ClusterNode,
        request: AdminRequest,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Result<AdminReply, AdminError>, ForwardFailure>> {
        Box::pin(Self::admin(self, target, node, request, timeout))
    }
}

/// Creates [`TcpConnection`]s for openraft.
#[derive(Clone, Debug)]
pub struct TcpFactory {
    client: Arc<PeerClient>,
    send_timeout: Duration,
}

impl TcpFactory {
    pub(crate) const fn new(client: Arc<PeerClient>, send_timeout: Duration) -> Self {
        Self { client, send_timeout }
    }
}

impl RaftNetworkFactory<TypeConfig> for TcpFactory {
    type Network = TcpConnection;

    async fn new_client(&mut self, target: NodeId, node: &ClusterNode) -> TcpConnection {
        TcpConnection {
            client: self.client.clone(),
            target,
            addr: node.raft_addr.clone(),
            send_timeout: self.send_timeout,
        }
    }
}

/// openraft's link from this node to one peer over the TCP transport.
#[derive(Clone, Debug)]
pub struct TcpConnection {
    client: Arc<PeerClient>,
    target: NodeId,
    addr: String,
    send_timeout: Duration,
}

impl TcpConnection {
    fn rpc_error(
        &self,
        action: RPCTypes,
        timeout: Duration,
        e: &CallError,
    ) -> RPCError<TypeConfig> {
        match e {
            CallError::Timeout => RPCError::Timeout(Timeout {
                action,
                id: self.client.id,
                target: self.target,
                timeout,
            }),
            CallError::NotSent(_) | CallError::Lost(_) | CallError::Refused(_) => {
                RPCError::Unreachable(Unreachable::new(e))
            }
        }
    }

    async fn rpc(
        &self,
        action: RPCTypes,
        request: Request,
        option: &RPCOption,
    ) -> Result<Answer, RPCError<TypeConfig>> {
        let timeout = option.soft_ttl().min(self.send_timeout);
        self.client
            .call(self.target, &self.addr, request, timeout)
            .await
            .map_err(|e| self.rpc_error(action, timeout, &e))
    }
}

/// Whether the peer closed an idle connection (or sent on it out of turn, which makes it
/// useless as well), judged without waiting: one read attempt that is ready only if the
/// connection has something to report.
fn peer_closed(io: &mut BoxIo) -> bool {
    let mut byte = [0u8; 1];
    // Pending: nothing to read, the connection is idle and open. Ready with 0 bytes or an
    // error: closed or reset. Ready with data: an answer nobody asked for.
    io.read(&mut byte).now_or_never().is_some()
}

/// An answer of the wrong kind, or a failure on the peer: the link is no use this round.
fn unexpected(answer: &Answer) -> RPCError<TypeConfig> {
    let what = match answer {
        Answer::Failed(_) => "peer failed",
        _ => "unexpected answer",
    };
    RPCError::Unreachable(Unreachable::new(&CallError::Lost(what)))
}

impl RaftNetworkV2<TypeConfig> for TcpConnection {
    type SnapshotData = ClusterSnapshot;

    async fn append_entries(
        &mut self,
        mut rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        // A batch larger than a frame is cut: send a prefix, report partial success.
        let budget = (self.client.frame_bytes_max as usize).saturating_sub(4096);
        let mut size = 0usize;
        let mut keep = 0usize;
        for entry in &rpc.entries {
            size = size.saturating_add(super::wire::entry_frame_len(entry));
            if keep > 0 && size > budget {
                break;
            }
            keep += 1;
        }
        let cut = keep < rpc.entries.len();
        rpc.entries.truncate(keep);
        let last = rpc.entries.last().map(|e| e.log_id);
        match self.rpc(RPCTypes::AppendEntries, Request::Append(rpc), &option).await? {
            Answer::Append(AppendEntriesResponse::Success) if cut => {
                Ok(AppendEntriesResponse::PartialSuccess(last))
            }
            Answer::Append(answer) => Ok(answer),
            other => Err(unexpected(&other)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        match self.rpc(RPCTypes::Vote, Request::Vote(rpc), &option).await? {
            Answer::Vote(answer) => Ok(answer),
            other => Err(unexpected(&other)),
        }
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        match self.rpc(RPCTypes::Vote, Request::PreVote(rpc), &option).await? {
            Answer::Vote(answer) => Ok(answer),
            other => Err(unexpected(&other)),
        }
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        // A whole snapshot gets the snapshot timeout, not the per-RPC send timeout.
        let timeout = option.soft_ttl();
        let send =
            self.client.send_snapshot(self.target, &self.addr, vote, &snapshot.snapshot, timeout);
        let result = tokio::select! {
            closed = cancel => return Err(StreamingError::Closed(closed)),
            result = send => result,
        };
        match result {
            Ok(Answer::Snapshot(answer)) => Ok(answer),
            Ok(other) => {
                Err(StreamingError::Unreachable(Unreachable::new(&CallError::Lost(match other {
                    Answer::Failed(_) => "peer refused the snapshot",
                    _ => "unexpected answer",
                }))))
            }
            Err(CallError::Timeout) => Err(StreamingError::Timeout(Timeout {
                action: RPCTypes::InstallSnapshot,
                id: self.client.id,
                target: self.target,
                timeout,
            })),
            Err(e) => Err(StreamingError::Unreachable(Unreachable::new(&e))),
        }
    }

    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<TypeConfig>, RPCError<TypeConfig>> {
        match self.rpc(RPCTypes::TransferLeader, Request::TransferLeader(req), &option).await? {
            Answer::TransferLeader(answer) => Ok(answer),
            other => Err(unexpected(&other)),
        }
    }
}

/// Compile-time check: the factory's connections implement openraft's snapshot network.
const _: fn() = || {
    fn assert_snapshot_network<T: NetSnapshot<TypeConfig, SnapshotData = ClusterSnapshot>>() {}
    assert_snapshot_network::<TcpConnection>();
};
