//! The serving side of the transport: accept, authenticate, then answer requests one at a
//! time per connection.

use std::{collections::BTreeSet, net::SocketAddr, sync::Arc, time::Duration};

use mempulse_primitives::NodeId;
use tokio::{
    net::{TcpListener, TcpStream},
    sync::{OwnedSemaphorePermit, Semaphore, watch},
};

use super::{
    BoxIo, ReadError, admit, read_frame, tls,
    wire::{
        Answer, BodyError, Frame, HELLO_FRAME_MAX, KIND_ADMIN, KIND_SNAPSHOT_CHUNK, RemoteFailure,
        Request, is_encodable, parse_body,
    },
    write_frame,
};
use crate::{
    NodeIdentity,
    config::INBOUND_CONNECTIONS_MAX,
    identity::NO_INCARNATION,
    metrics::{FrameFault, RefusalReason, TransportMetrics},
    node::NodeService,
    state_machine::ClusterSnapshot,
    types::{Snapshot, Vote},
};

/// Everything a served connection needs.
pub(crate) struct ServeState {
    pub(crate) id: NodeId,
    pub(crate) node: NodeService,
    pub(crate) tls: Option<tokio_rustls::TlsAcceptor>,
    pub(crate) bootstrap_members: BTreeSet<NodeId>,
    pub(crate) frame_bytes_max: u32,
    pub(crate) snapshot_bytes_max: u64,
    pub(crate) handshake_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) metrics: Arc<TransportMetrics>,
    /// The node's incarnations (every Raft peer's is checked against them).
    pub(crate) identity: Option<Arc<NodeIdentity>>,
}

impl ServeState {
    /// Whether `id` may talk to this node now: a member of its latest membership, or, while it
    /// has none, one of the bootstrap members.
    fn is_member(&self, id: NodeId) -> bool {
        let members = self.node.member_ids();
        if members.is_empty() {
            self.bootstrap_members.contains(&id)
        } else {
            members.contains(&id)
        }
    }
}

/// Accepts connections until `stop` turns true.
pub(crate) async fn run(
    listener: TcpListener,
    state: Arc<ServeState>,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(INBOUND_CONNECTIONS_MAX));
    loop {
        let accepted = tokio::select! {
            _ = stop.wait_for(|stopped| *stopped) => break,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: keep serving the open connections.
                tracing::warn!(node = state.id.0, error = %e, "raft transport accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            state.metrics.refused(RefusalReason::TooManyConnections, &peer);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        tokio::spawn(serve_connection(state.clone(), tcp, peer, slot, stop.clone()));
    }
    tracing::info!(node = state.id.0, "raft transport stopped serving");
}

async fn serve_connection(
    state: Arc<ServeState>,
    tcp: TcpStream,
    peer: SocketAddr,
    _slot: OwnedSemaphorePermit,
    mut stop: watch::Receiver<bool>,
) {
    let handshake = tokio::time::timeout(state.handshake_timeout, authenticate(&state, tcp, peer));
    // A refusal is counted before the connection closes, so a peer that sees the close can
    // rely on the count.
    let (mut io, from, admin_only) = match handshake.await {
        Ok(Some(accepted)) => accepted,
        Ok(None) => return,
        Err(_) => {
            state.metrics.refused(RefusalReason::TlsHandshake, &peer);
            return;
        }
    };
    let peer_label = format!("node-{} ({peer})", from.0);
    loop {
        let read = tokio::select! {
            _ = stop.wait_for(|stopped| *stopped) => return,
            read = tokio::time::timeout(state.idle_timeout, read_frame(&mut io, state.frame_bytes_max)) => read,
        };
        let body = match read {
            Err(_) | Ok(Err(ReadError::Closed | ReadError::Io)) => return,
            Ok(Err(ReadError::TooLarge)) => {
                state.metrics.rejected(FrameFault::TooLarge, &peer_label);
                return;
            }
            Ok(Ok(body)) => body,
        };
        // Membership is read live: a peer removed while connected is cut off.
        if !state.is_member(from) {
            state.metrics.refused(RefusalReason::NotAMember, &peer_label);
            return;
        }
        let frame = match parse_body(&body) {
            Ok(frame) => frame,
            Err(e) => {
                state.metrics.rejected(fault(&e), &peer_label);
                return;
            }
        };
        // A peer without an incarnation has no Raft state: admin requests only.
        if admin_only && frame.kind != KIND_ADMIN {
            state.metrics.rejected(FrameFault::UnexpectedKind, &peer_label);
            return;
        }
        let id = frame.id;
        let answer = match answer(&state, &mut io, &frame).await {
            Ok(answer) => answer,
            Err(fault) => {
                state.metrics.rejected(fault, &peer_label);
                return;
            }
        };
        if write_frame(&mut io, &answer.to_frame(id)).await.is_err() {
            return;
        }
    }
}

const fn fault(e: &BodyError) -> FrameFault {
    match e {
        BodyError::Version(_) => FrameFault::BadVersion,
        BodyError::Kind(_) => FrameFault::UnexpectedKind,
        BodyError::Decode(_) => FrameFault::Malformed,
    }
}

/// TLS (or the loopback check), then the hello: returns the stream, the peer's node id and
/// whether it may send admin requests only (no incarnation), or `None` after counting the
/// refusal (the connection closes when it is dropped).
async fn authenticate(
    state: &ServeState,
    tcp: TcpStream,
    peer: SocketAddr,
) -> Option<(BoxIo, NodeId, bool)> {
    let refuse = |reason| {
        state.metrics.refused(reason, &peer);
        None
    };
    let (mut io, leaf): (BoxIo, _) = match &state.tls {
        None => {
            if !peer.ip().is_loopback() {
                return refuse(RefusalReason::PlaintextNotLoopback);
            }
            (Box::new(tcp), None)
        }
        Some(acceptor) => {
            let stream = match acceptor.accept(tcp).into_fallible().await {
                Ok(stream) => stream,
                // `_tcp` is dropped (closed) only after the refusal is counted.
                Err((e, _tcp)) => return refuse(tls::handshake_refusal(&e)),
            };
            let leaf = stream.get_ref().1.peer_certificates().and_then(|c| c.first()).cloned();
            let Some(leaf) = leaf else { return refuse(RefusalReason::NoCertificate) };
            (Box::new(stream), Some(leaf))
        }
    };
    let hello = match read_frame(&mut io, HELLO_FRAME_MAX).await {
        Ok(body) => parse_body(&body).ok().and_then(|frame| Request::from_frame(&frame).ok()),
        Err(_) => None,
    };
    let claimed = match &hello {
        Some(Request::Hello { from, .. }) => Some(*from),
        _ => None,
    };
    let verdict = match hello {
        Some(Request::Hello { from, to, incarnation }) => {
            if to != state.id {
                Err(RefusalReason::WrongTarget)
            } else if let Some(leaf) = &leaf
                && let Err(reason) = tls::verify_names(leaf, from)
            {
                Err(reason)
            } else if !state.is_member(from) {
                Err(RefusalReason::NotAMember)
            } else {
                Ok((from, incarnation))
            }
        }
        _ => Err(RefusalReason::BadHello),
    };
    let verdict = match (verdict, &state.identity) {
        (Ok((from, incarnation)), Some(identity)) if incarnation != NO_INCARNATION => {
            match admit(identity, from, incarnation).await {
                Ok(()) => Ok((from, false)),
                Err(Some(reason)) => Err(reason),
                // Not recorded (logged): close without an answer, the peer retries.
                Err(None) => return None,
            }
        }
        (verdict, _) => verdict.map(|(from, incarnation)| (from, incarnation == NO_INCARNATION)),
    };
    if let Err(reason) = verdict {
        let label = claimed.map_or_else(|| peer.to_string(), |f| format!("node-{} ({peer})", f.0));
        state.metrics.refused(reason, &label);
    }
    // Tell the peer why (best effort), so its operator sees the reason in its own log.
    let mine = state.identity.as_ref().map_or(NO_INCARNATION, |i| i.incarnation());
    let ack = Answer::HelloAck(verdict.map(|_| mine)).to_frame(0);
    let _ = write_frame(&mut io, &ack).await;
    verdict.ok().map(|(from, admin_only)| (io, from, admin_only))
}

/// Serves one request frame; a snapshot transfer reads its chunk frames from `io` first.
async fn answer(
    state: &ServeState,
    io: &mut BoxIo,
    frame: &Frame<'_>,
) -> Result<Answer, FrameFault> {
    let request = Request::from_frame(frame).map_err(|e| fault(&e))?;
    let raft = state.node.raft();
    let stopped = Answer::Failed(RemoteFailure::Stopped);
    Ok(match request {
        Request::Hello { .. } | Request::SnapshotChunk(_) => {
            return Err(FrameFault::UnexpectedKind);
        }
        Request::Append(rpc) => raft.append_entries(rpc).await.map_or(stopped, Answer::Append),
        Request::Vote(rpc) => raft.vote(rpc).await.map_or(stopped, Answer::Vote),
        Request::PreVote(rpc) => raft.pre_vote(rpc).await.map_or(stopped, Answer::Vote),
        Request::SnapshotBegin { vote, total_bytes } => {
            if total_bytes > state.snapshot_bytes_max {
                tracing::warn!(node = state.id.0, total_bytes, "snapshot too large; refused");
                // The chunks that follow cannot be skipped safely: answer, then close.
                let _ = write_frame(
                    io,
                    &Answer::Failed(RemoteFailure::SnapshotTooLarge).to_frame(frame.id),
                )
                .await;
                return Err(FrameFault::TooLarge);
            }
            let snapshot = receive_snapshot(state, io, frame.id, vote, total_bytes).await?;
            raft.install_full_snapshot(vote, snapshot).await.map_or(stopped, Answer::Snapshot)
        }
        Request::TransferLeader(rpc) => {
            raft.handle_transfer_leader(rpc).await.map_or(stopped, Answer::TransferLeader)
        }
        Request::Forward(command) => match state.node.write_local(command).await {
            Ok(response) if !is_encodable(&response) => Answer::Failed(RemoteFailure::Unencodable),
            result => Answer::Forward(result),
        },
        Request::Admin(request) => Answer::Admin(state.node.admin_local(request).await),
    })
}

/// Reads the chunk frames of a snapshot transfer until `total_bytes` arrived.
async fn receive_snapshot(
    state: &ServeState,
    io: &mut BoxIo,
    id: u64,
    _vote: Vote,
    total_bytes: u64,
) -> Result<Snapshot, FrameFault> {
    let total = usize::try_from(total_bytes).map_err(|_| FrameFault::TooLarge)?;
    let mut bytes = Vec::with_capacity(total.min(64 << 20));
    while bytes.len() < total {
        let body = read_frame(io, state.frame_bytes_max).await.map_err(|e| match e {
            ReadError::TooLarge => FrameFault::TooLarge,
            ReadError::Closed | ReadError::Io => FrameFault::Malformed,
        })?;
        let frame = parse_body(&body).map_err(|e| fault(&e))?;
        if frame.kind != KIND_SNAPSHOT_CHUNK || frame.id != id {
            return Err(FrameFault::UnexpectedKind);
        }
        let Request::SnapshotChunk(chunk) = Request::from_frame(&frame).map_err(|e| fault(&e))?
        else {
            return Err(FrameFault::UnexpectedKind);
        };
        if chunk.is_empty() || bytes.len() + chunk.len() > total {
            return Err(FrameFault::Malformed);
        }
        bytes.extend_from_slice(&chunk);
    }
    let snapshot = ClusterSnapshot::from_bytes(bytes);
    let (meta, _) = snapshot.decode().map_err(|_| FrameFault::Malformed)?;
    Ok(Snapshot { meta, snapshot })
}
