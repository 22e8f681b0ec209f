//! The TCP transport between the nodes of a cluster: Raft RPCs, snapshot transfer, forwarded
//! writes and admin requests over mutually authenticated TLS (or, on loopback only and when
//! asked for, plaintext).
//!
//! ```text
//!  openraft / RaftNode::write ──► PeerClient ── pool per peer (≤ POOL_IDLE_PER_PEER idle,
//!        (TcpFactory)              │            ≤ CONNECTIONS_PER_PEER_MAX open), backoff
//!                                  │ TCP ─► TLS 1.3 (CA roots, client cert)
//!                                  │        ─► Hello{from, to, incarnation}
//!                                  ▼
//!  listener (serve) ──► TLS accept: chains to CA? ─► Hello: cert names node-<from>?
//!                       from a current member? to = me? incarnation as met (identity.rs)?
//!                       ─► HelloAck{my incarnation} (the client checks it the same way)
//!                       ─► request/answer loop
//!                       (refusals counted by reason, warned at most once a second per reason)
//! ```
//! Each node also introduces itself once to every member it has not met yet (one hello
//! exchange), so every pair records the other's incarnation early.
//! The protocol, the authentication rule and the alternatives rejected are in
//! `docs/design/cluster-transport.md`; the byte layouts in `wire.rs`.

mod client;
mod server;
mod tls;
mod wire;

use std::{
    collections::BTreeSet,
    io,
    net::SocketAddr,
    path::PathBuf,
    sync::{Arc, Mutex, OnceLock, PoisonError},
    time::Duration,
};

use mempulse_primitives::NodeId;
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::TcpListener,
    sync::watch,
};

pub use self::{
    client::{CallFailure, NotSentReason, PeerClient, TcpConnection, TcpFactory},
    tls::{TlsIdentity, certificate_names_node, handshake_refusal},
    wire::WIRE_VERSION,
};
use crate::{
    NodeIdentity,
    config::{
        BACKOFF_FIRST, BACKOFF_MAX, FRAME_BYTES_MAX_DEFAULT, HANDSHAKE_TIMEOUT, IDLE_TIMEOUT,
        SNAPSHOT_BYTES_MAX_DEFAULT,
    },
    identity::Meeting,
    metrics::{RefusalReason, TransportMetrics, TransportStats},
    network::{Forwarder, Transport},
    node::NodeService,
};

/// How often a node looks for members it has not met yet (and introduces itself to them).
pub(crate) const INTRODUCE_INTERVAL: Duration = Duration::from_secs(1);

/// Meets `peer` presenting `incarnation` (see [`NodeIdentity::meet`]): `Ok` when it may talk
/// Raft, after a first meeting (or a learner's new incarnation) is durably recorded;
/// `Err(Some(reason))` to refuse it; `Err(None)` when the record could not be written (logged).
pub(crate) async fn admit(
    identity: &Arc<NodeIdentity>,
    peer: NodeId,
    incarnation: u64,
) -> Result<(), Option<RefusalReason>> {
    match identity.meet(peer, incarnation) {
        Meeting::Known => Ok(()),
        Meeting::Changed { recorded } => {
            tracing::debug!(peer = peer.0, recorded, incarnation, "voter's incarnation changed");
            Err(Some(RefusalReason::IncarnationChanged))
        }
        Meeting::Bind { previous } => {
            let record = Arc::clone(identity);
            let bound = tokio::task::spawn_blocking(move || record.bind(peer, incarnation)).await;
            match bound {
                Ok(Ok(())) => {
                    if let Some(previous) = previous {
                        tracing::info!(
                            node = identity.id().0,
                            peer = peer.0,
                            previous,
                            incarnation,
                            "member rejoined with a new incarnation"
                        );
                    }
                    Ok(())
                }
                Ok(Err(error)) => {
                    tracing::error!(peer = peer.0, %error, "cannot record a peer's incarnation");
                    Err(None)
                }
                Err(error) => {
                    tracing::error!(peer = peer.0, %error, "peer record task failed");
                    Err(None)
                }
            }
        }
    }
}

/// How the transport protects its connections.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Security {
    /// Mutual TLS with the deployment CA (the default for every real deployment).
    MutualTls(TlsIdentity),
    /// No TLS. Allowed only when the listen address and every peer address are on loopback
    /// (`insecure_plaintext_loopback = true` in the node's config); peers still introduce
    /// themselves and must be members.
    InsecurePlaintextLoopback,
}

/// Configuration of a [`TcpTransport`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct TcpConfig {
    /// This node's id (its certificate must name `node-<id>`).
    pub id: NodeId,
    /// Address to listen on (`raft_addr`); port 0 picks a free port.
    pub listen_addr: SocketAddr,
    /// TLS identity, or plaintext on loopback.
    pub security: Security,
    /// Node ids accepted while this node has no membership yet (a fresh node waiting to be
    /// initialized or added as a learner). Once a membership exists only its members count.
    pub bootstrap_members: BTreeSet<NodeId>,
    /// Largest frame accepted from an authenticated peer. Default 72 MiB: one log entry of the
    /// largest size (half a 64 MiB segment) always fits. Larger append batches are split.
    pub frame_bytes_max: u32,
    /// Largest snapshot accepted from a leader. Default 4 GiB.
    pub snapshot_bytes_max: u64,
    /// First wait before redialling a peer that could not be reached; doubles per failure.
    pub backoff_first: Duration,
    /// Longest wait before redialling.
    pub backoff_max: Duration,
    /// A peer must finish the TLS handshake and its hello within this time.
    pub handshake_timeout: Duration,
    /// An inbound connection idle this long is closed; pooled outbound connections are
    /// dropped after half of it.
    pub idle_timeout: Duration,
}

impl TcpConfig {
    /// Defaults for node `id` listening on `listen_addr` with `security`.
    #[must_use]
    pub fn new(id: NodeId, listen_addr: SocketAddr, security: Security) -> Self {
        Self {
            id,
            listen_addr,
            security,
            bootstrap_members: BTreeSet::new(),
            frame_bytes_max: FRAME_BYTES_MAX_DEFAULT,
            snapshot_bytes_max: SNAPSHOT_BYTES_MAX_DEFAULT,
            backoff_first: BACKOFF_FIRST,
            backoff_max: BACKOFF_MAX,
            handshake_timeout: HANDSHAKE_TIMEOUT,
            idle_timeout: IDLE_TIMEOUT,
        }
    }

    /// Sets the ids accepted before this node has a membership.
    #[must_use]
    pub fn with_bootstrap_members(mut self, ids: impl IntoIterator<Item = NodeId>) -> Self {
        self.bootstrap_members = ids.into_iter().collect();
        self
    }
}

/// Why the transport could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The listen address could not be bound.
    #[error("raft transport cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Plaintext was asked for, but an address is not on loopback.
    #[error("plaintext refused: {addr} is not a loopback address")]
    PlaintextNotLoopback {
        /// The offending address.
        addr: SocketAddr,
    },
    /// A TLS input is missing or invalid.
    #[error("tls setup failed: {what}")]
    Tls {
        /// Which input.
        what: &'static str,
    },
    /// A PEM file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// This node's certificate does not name it (or does not chain to the CA).
    #[error("the node certificate is not valid for node-{}", id.0)]
    CertificateNotForNode {
        /// This node's id.
        id: NodeId,
    },
}

/// Any byte stream the transport speaks over (TCP, or TLS over TCP).
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send + Sync {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> Io for T {}
pub(crate) type BoxIo = Box<dyn Io>;

/// Why reading a frame failed.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The peer closed the connection between frames.
    Closed,
    /// The declared length exceeds the limit.
    TooLarge,
    /// Reading failed or the connection ended inside a frame.
    Io,
}

/// Reads one frame body (the bytes after the length), refusing lengths above `max`.
pub(crate) async fn read_frame(io: &mut BoxIo, max: u32) -> Result<Vec<u8>, ReadError> {
    let mut len = [0u8; 4];
    let first = io.read(&mut len).await.map_err(|_| ReadError::Io)?;
    if first == 0 {
        return Err(ReadError::Closed);
    }
    io.read_exact(len.get_mut(first..).unwrap_or_default()).await.map_err(|_| ReadError::Io)?;
    let len = u32::from_le_bytes(len);
    if len > max {
        return Err(ReadError::TooLarge);
    }
    let mut body = vec![0; len as usize];
    io.read_exact(&mut body).await.map_err(|_| ReadError::Io)?;
    Ok(body)
}

/// Writes one whole frame and flushes it.
pub(crate) async fn write_frame(io: &mut BoxIo, frame: &[u8]) -> io::Result<()> {
    io.write_all(frame).await?;
    io.flush().await
}

/// Whether every address `host:port` resolves to is on loopback (at least one).
pub(crate) async fn resolves_to_loopback(addr: &str) -> bool {
    match tokio::net::lookup_host(addr).await {
        Ok(addrs) => {
            let mut any = false;
            for a in addrs {
                if !a.ip().is_loopback() {
                    return false;
                }
                any = true;
            }
            any
        }
        Err(_) => false,
    }
}

struct Inner {
    config: TcpConfig,
    /// The node's incarnations, once a node attached them.
    identity: OnceLock<Arc<NodeIdentity>>,
    local_addr: SocketAddr,
    listener: Mutex<Option<TcpListener>>,
    server_tls: Option<tokio_rustls::TlsAcceptor>,
    client: Arc<PeerClient>,
    metrics: Arc<TransportMetrics>,
    stop: watch::Sender<bool>,
    /// Turns true once the accept loop ended and the listener is closed.
    closed: watch::Sender<bool>,
}

/// The TCP transport of one node. Clones share the listener, the connection pools and the
/// counters.
#[derive(Clone)]
pub struct TcpTransport {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for TcpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpTransport")
            .field("id", &self.inner.config.id)
            .field("local_addr", &self.inner.local_addr)
            .finish_non_exhaustive()
    }
}

impl TcpTransport {
    /// Checks the security settings and binds the listen address (nothing is served until the
    /// node starts).
    ///
    /// # Errors
    /// [`TransportError::PlaintextNotLoopback`] for plaintext on a non-loopback address;
    /// [`TransportError::CertificateNotForNode`] when the node's certificate does not name it;
    /// [`TransportError::Tls`] for unusable TLS inputs; [`TransportError::Bind`] when the
    /// address cannot be bound.
    pub async fn bind(config: TcpConfig) -> Result<Self, TransportError> {
        let (server_tls, client_tls) = match &config.security {
            Security::MutualTls(identity) => {
                identity.check_own(config.id)?;
                (
                    Some(tokio_rustls::TlsAcceptor::from(identity.server_config()?)),
                    Some(tokio_rustls::TlsConnector::from(identity.client_config()?)),
                )
            }
            Security::InsecurePlaintextLoopback => {
                if !config.listen_addr.ip().is_loopback() {
                    return Err(TransportError::PlaintextNotLoopback { addr: config.listen_addr });
                }
                tracing::warn!(node = config.id.0, "raft transport runs in plaintext on loopback");
                (None, None)
            }
        };
        let addr = config.listen_addr;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| TransportError::Bind { addr, source })?;
        let local_addr =
            listener.local_addr().map_err(|source| TransportError::Bind { addr, source })?;
        let metrics = Arc::new(TransportMetrics::new());
        let client = Arc::new(PeerClient::new(&config, client_tls, metrics.clone()));
        let (stop, _) = watch::channel(false);
        let (closed, _) = watch::channel(false);
        tracing::info!(node = config.id.0, %local_addr, "raft transport listening");
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                identity: OnceLock::new(),
                local_addr,
                listener: Mutex::new(Some(listener)),
                server_tls,
                client,
                metrics,
                stop,
                closed,
            }),
        })
    }

    /// The bound address (the actual port when the configured one was 0).
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// The client side: calls to peers as this node (for a CLI, or tests).
    #[must_use]
    pub fn client(&self) -> Arc<PeerClient> {
        self.inner.client.clone()
    }

    /// Waits until the listener is closed after the node stopped serving (so the address can
    /// be bound again). Returns at once when serving never started.
    pub async fn stopped(&self) {
        if self.inner.listener.lock().unwrap_or_else(PoisonError::into_inner).is_some() {
            return;
        }
        let mut closed = self.inner.closed.subscribe();
        let _ = closed.wait_for(|closed| *closed).await;
    }

    /// Refusals and rejected frames counted so far.
    #[must_use]
    pub fn stats(&self) -> TransportStats {
        self.inner.metrics.stats()
    }
}

impl Transport for TcpTransport {
    type Factory = TcpFactory;

    fn connect(&self, id: NodeId, send_timeout: Duration) -> TcpFactory {
        if id != self.inner.config.id {
            tracing::error!(node = id.0, transport = self.inner.config.id.0, "node id differs");
        }
        TcpFactory::new(self.inner.client.clone(), send_timeout)
    }

    fn serve(&self, id: NodeId, node: NodeService) {
        let listener = self.inner.listener.lock().unwrap_or_else(PoisonError::into_inner).take();
        let Some(listener) = listener else {
            tracing::error!(node = id.0, "raft transport already served; listener taken");
            return;
        };
        let state = server::ServeState {
            id: self.inner.config.id,
            node,
            tls: self.inner.server_tls.clone(),
            bootstrap_members: self.inner.config.bootstrap_members.clone(),
            frame_bytes_max: self.inner.config.frame_bytes_max,
            snapshot_bytes_max: self.inner.config.snapshot_bytes_max,
            handshake_timeout: self.inner.config.handshake_timeout,
            idle_timeout: self.inner.config.idle_timeout,
            metrics: self.inner.metrics.clone(),
            identity: self.inner.identity.get().cloned(),
        };
        if let Some(identity) = self.inner.identity.get() {
            let (client, identity) = (self.inner.client.clone(), Arc::clone(identity));
            tokio::spawn(introduce(client, identity, self.inner.stop.subscribe()));
        }
        let inner = self.inner.clone();
        tokio::spawn(async move {
            server::run(listener, Arc::new(state), inner.stop.subscribe()).await;
            inner.closed.send_replace(true);
        });
    }

    fn attach_identity(&self, id: NodeId, identity: Arc<NodeIdentity>) {
        if id != self.inner.config.id || identity.id() != id {
            tracing::error!(node = id.0, transport = self.inner.config.id.0, "node id differs");
            return;
        }
        let _ = self.inner.identity.set(Arc::clone(&identity));
        self.inner.client.attach_identity(identity);
    }

    fn stop_serving(&self, _id: NodeId) {
        self.inner.stop.send_replace(true);
        self.inner.client.close();
    }

    fn forwarder(&self, _id: NodeId) -> Arc<dyn Forwarder> {
        self.inner.client.clone()
    }
}

/// Introduces this node to every member it has not met yet, until `stop`: one hello exchange
/// records both incarnations on both sides (a failed one is retried on the next round, within
/// the client's backoff).
async fn introduce(
    client: Arc<PeerClient>,
    identity: Arc<NodeIdentity>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = stop.wait_for(|stopped| *stopped) => return,
            () = tokio::time::sleep(INTRODUCE_INTERVAL) => {}
        }
        for (peer, node) in identity.other_members() {
            if !identity.has_met(peer) {
                client.introduce(peer, &node.raft_addr).await;
            }
        }
    }
}
