//! The tx-stream listener of `mempulse run`: peer nodes and tx sources stream raw transactions
//! into the stream lane, and the same port serves peer sessions (announcements, catalog
//! subscriptions, blocks).
//!
//! ```text
//!  TCP accept ─► a stream slot free? (else refused: too_many_streams)
//!             ─► mutual TLS with the deployment CA (any certificate it signed; plaintext only
//!                from loopback when the node runs plaintext)
//!             ─► detect_protocol: the first frame's kind
//!                 tx Hello ─► serve_stream_verified: the Hello's node id must be the one the
//!                             certificate names (node-<id>) ─► source peer:<id> ─► stream lane
//!                 PeerHello ─► serve_peer (same identity check) ─► catalog, blocks
//! ```
//! Streams are not Raft: a certified source outside the cluster's members may stream. One task
//! per connection; a bad frame or a refused connection ends only that connection (counted, and
//! warned about at most once a second).

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use mempulse_cluster::{RefusalReason, Security, certificate_names_node, handshake_refusal};
use mempulse_net::{
    IngestHandle, StreamError, StreamLimits, StreamSummary,
    metrics::{StreamRefusal, StreamRefusals},
    peer::{PeerError, PeerService, PeerSummary, Protocol, detect_protocol, serve_peer},
    serve_stream_verified,
};
use mempulse_primitives::NodeId;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::{OwnedSemaphorePermit, Semaphore, oneshot},
    task::{JoinHandle, JoinSet},
};
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

use super::NodePeers;
use crate::config::NodeConfig;

/// Pause after a failed `accept` (out of file descriptors...) before the next one.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// Least time between two warnings of one kind.
const WARN_INTERVAL: Duration = Duration::from_secs(1);

/// What the listener needs.
#[derive(Debug)]
pub(crate) struct StreamOptions {
    /// Where to listen.
    pub(crate) listen_addr: SocketAddr,
    /// Mutual TLS with the deployment CA, or plaintext on loopback (the `[tls]` section).
    pub(crate) security: Security,
    /// Streams served at once.
    pub(crate) streams_max: usize,
    /// Each stream's limits (the hello timeout also bounds the TLS handshake).
    pub(crate) limits: StreamLimits,
    /// What peer sessions are served with (without it a `PeerHello` is a malformed tx stream).
    pub(crate) peer: Option<PeerService>,
}

impl StreamOptions {
    /// The options `[stream]` and `[tls]` give.
    pub(crate) fn new(config: &NodeConfig) -> anyhow::Result<Self> {
        Ok(Self {
            listen_addr: config.stream.listen_addr()?,
            security: config.tls.security()?,
            streams_max: config.stream.streams_max,
            limits: config.stream.limits()?,
            peer: None,
        })
    }

    /// The same options, serving peer sessions with `service`.
    pub(crate) fn with_peers(self, service: PeerService) -> Self {
        Self { peer: Some(service), ..self }
    }
}

/// The running listener.
#[derive(Debug)]
pub(crate) struct StreamListener {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
    /// The announcer and links of the peer sessions this listener serves.
    peers: Option<NodePeers>,
}

impl StreamListener {
    /// Binds and starts accepting.
    pub(crate) async fn start(
        options: StreamOptions,
        ingest: IngestHandle,
    ) -> anyhow::Result<Self> {
        let acceptor = match &options.security {
            Security::MutualTls(identity) => Some(TlsAcceptor::from(
                identity.server_config().context("the stream listener's TLS configuration")?,
            )),
            Security::InsecurePlaintextLoopback => {
                if !options.listen_addr.ip().is_loopback() {
                    bail!(
                        "[stream] listen-addr {} is not on loopback, and [tls] is plaintext",
                        options.listen_addr
                    );
                }
                None
            }
            _ => bail!("the stream listener does not know this transport security"),
        };
        let listener = TcpListener::bind(options.listen_addr)
            .await
            .with_context(|| format!("binding the stream listener on {}", options.listen_addr))?;
        let addr = listener.local_addr().context("reading the stream listener's address")?;
        let (stop, stopped) = oneshot::channel();
        let accept = Accept {
            listener,
            acceptor,
            slots: Arc::new(Semaphore::new(options.streams_max)),
            limits: options.limits,
            peer_service: options.peer,
            ingest,
            refusals: StreamRefusals::new(),
            warnings: Arc::new(Warnings::default()),
        };
        let task = tokio::spawn(accept.run(stopped));
        info!(%addr, tls = acceptor_kind(&options.security), "stream listener started");
        Ok(Self { addr, stop: Some(stop), task, peers: None })
    }

    /// The bound address.
    pub(crate) const fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting. Open streams end when the ingest lanes shut down (they send
    /// `Close{shutting_down}`).
    pub(crate) fn stop_accepting(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Keeps the node's announcer and peer links, stopped with the listener.
    pub(crate) fn attach_peers(&mut self, peers: NodePeers) {
        self.peers = Some(peers);
    }

    /// Stops announcing (the links close in order), stops accepting and waits for the
    /// streams, bounded by the hello and close timeouts (past them the rest are aborted).
    pub(crate) async fn stopped(mut self) {
        if let Some(peers) = self.peers.take() {
            peers.stop().await;
        }
        self.stop_accepting();
        if let Err(error) = self.task.await {
            warn!(%error, "the stream listener task failed");
        }
    }
}

const fn acceptor_kind(security: &Security) -> &'static str {
    match security {
        Security::MutualTls(_) => "mutual",
        _ => "plaintext-loopback",
    }
}

/// The accept loop's state.
struct Accept {
    listener: TcpListener,
    acceptor: Option<TlsAcceptor>,
    slots: Arc<Semaphore>,
    limits: StreamLimits,
    peer_service: Option<PeerService>,
    ingest: IngestHandle,
    refusals: StreamRefusals,
    warnings: Arc<Warnings>,
}

impl Accept {
    async fn run(self, mut stopped: oneshot::Receiver<()>) {
        let mut streams = JoinSet::new();
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                Some(_) = streams.join_next(), if !streams.is_empty() => {}
                accepted = self.listener.accept() => match accepted {
                    Ok((tcp, peer)) => self.admit(&mut streams, tcp, peer),
                    Err(error) => {
                        self.warnings.accept.warn(|suppressed| {
                            warn!(%error, suppressed, "stream listener accept failed");
                        });
                        tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    }
                },
            }
        }
        drop(self.listener);
        let open = streams.len();
        let bound = self.limits.hello_timeout.saturating_add(self.limits.close_timeout);
        let drained =
            tokio::time::timeout(bound, async { while streams.join_next().await.is_some() {} })
                .await;
        if drained.is_err() {
            warn!(open, left = streams.len(), "tx streams still open at shutdown; aborting them");
            streams.abort_all();
            while streams.join_next().await.is_some() {}
        }
        info!(open, "stream listener stopped");
    }

    /// Takes a stream slot for the connection and serves it on its own task, or refuses it.
    fn admit(&self, streams: &mut JoinSet<()>, tcp: TcpStream, peer: SocketAddr) {
        let Ok(slot) = Arc::clone(&self.slots).try_acquire_owned() else {
            self.refuse(StreamRefusal::TooManyStreams, peer);
            return;
        };
        if self.acceptor.is_none() && !peer.ip().is_loopback() {
            self.refuse(StreamRefusal::PlaintextNotLoopback, peer);
            return;
        }
        let _ = tcp.set_nodelay(true);
        let connection = Connection {
            acceptor: self.acceptor.clone(),
            limits: self.limits,
            peer_service: self.peer_service.clone(),
            ingest: self.ingest.clone(),
            refusals: self.refusals.clone(),
            warnings: Arc::clone(&self.warnings),
            peer,
            _slot: slot,
        };
        streams.spawn(connection.serve(tcp));
    }

    fn refuse(&self, reason: StreamRefusal, peer: SocketAddr) {
        refuse(&self.refusals, &self.warnings, reason, peer);
    }
}

fn refuse(refusals: &StreamRefusals, warnings: &Warnings, reason: StreamRefusal, peer: SocketAddr) {
    refusals.count(reason);
    warnings.refused.warn(|suppressed| {
        warn!(%peer, reason = reason.as_str(), suppressed, "stream connection refused");
    });
}

/// One accepted connection, holding its stream slot until it ends.
struct Connection {
    acceptor: Option<TlsAcceptor>,
    limits: StreamLimits,
    peer_service: Option<PeerService>,
    ingest: IngestHandle,
    refusals: StreamRefusals,
    warnings: Arc<Warnings>,
    peer: SocketAddr,
    _slot: OwnedSemaphorePermit,
}

impl Connection {
    async fn serve(self, tcp: TcpStream) {
        let result = match &self.acceptor {
            // Plaintext (loopback only): the hello's claim is taken, as the Raft transport does.
            None => self.dispatch(tcp, |_| true).await,
            Some(acceptor) => {
                let handshake = acceptor.accept(tcp);
                let tls = match tokio::time::timeout(self.limits.hello_timeout, handshake).await {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(error)) => return self.refuse(stream_refusal(&error)),
                    Err(_) => return self.refuse(StreamRefusal::TlsHandshake),
                };
                let leaf = tls.get_ref().1.peer_certificates().and_then(|c| c.first()).cloned();
                let Some(leaf) = leaf else {
                    return self.refuse(StreamRefusal::NoCertificate);
                };
                let verify = |claimed| certificate_names_node(&leaf, claimed);
                self.dispatch(tls, verify).await
            }
        };
        self.ended(&result);
    }

    /// Serves the connection as the protocol its first frame names.
    async fn dispatch<IO>(&self, io: IO, verify: impl FnOnce(NodeId) -> bool) -> Ended
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let (protocol, io) = match detect_protocol(io, self.limits.hello_timeout).await {
            Ok(detected) => detected,
            Err(error) => return Ended::Silent(error),
        };
        match (protocol, &self.peer_service) {
            (Protocol::Peer, Some(service)) => {
                let closing = self.ingest.closing();
                Ended::Peer(serve_peer(io, verify, service.clone(), closing).await)
            }
            (Protocol::Peer | Protocol::TxStream, _) => {
                let ingest = self.ingest.clone();
                Ended::Stream(serve_stream_verified(io, verify, ingest, self.limits).await)
            }
        }
    }

    fn refuse(&self, reason: StreamRefusal) {
        refuse(&self.refusals, &self.warnings, reason, self.peer);
    }

    fn ended(&self, result: &Ended) {
        match result {
            Ended::Stream(result) => self.stream_ended(result),
            Ended::Peer(Ok(summary)) => {
                debug!(peer = %self.peer, node = summary.peer.0, "peer session ended");
            }
            Ended::Peer(Err(error)) => self.warnings.closed.warn(|suppressed| {
                let reason = error.close_reason();
                warn!(peer = %self.peer, %reason, %error, suppressed, "peer session closed");
            }),
            Ended::Silent(error) => self.warnings.closed.warn(|suppressed| {
                warn!(peer = %self.peer, %error, suppressed, "connection closed before a frame");
            }),
        }
    }

    fn stream_ended(&self, result: &Result<StreamSummary, StreamError>) {
        match result {
            Ok(summary) => debug!(
                peer = %self.peer,
                txs = summary.txs,
                admitted = summary.tally.in_pool(),
                reason = ?summary.reason,
                "tx stream ended"
            ),
            Err(error) => self.warnings.closed.warn(|suppressed| {
                let reason = error.close_reason();
                warn!(peer = %self.peer, %reason, %error, suppressed, "tx stream closed");
            }),
        }
    }
}

/// How a connection ended.
enum Ended {
    /// As a tx stream.
    Stream(Result<StreamSummary, StreamError>),
    /// As a peer session.
    Peer(Result<PeerSummary, PeerError>),
    /// Before its first frame's kind arrived.
    Silent(PeerError),
}

/// The refusal of a failed TLS handshake.
fn stream_refusal(error: &std::io::Error) -> StreamRefusal {
    match handshake_refusal(error) {
        RefusalReason::NoCertificate => StreamRefusal::NoCertificate,
        RefusalReason::UntrustedCertificate => StreamRefusal::UntrustedCertificate,
        _ => StreamRefusal::TlsHandshake,
    }
}

/// Rate limits of the listener's warnings, one per kind.
#[derive(Debug, Default)]
struct Warnings {
    accept: WarnGate,
    refused: WarnGate,
    closed: WarnGate,
}

/// At most one warning per [`WARN_INTERVAL`]; the ones held back are counted into the next.
#[derive(Debug, Default)]
struct WarnGate {
    state: Mutex<GateState>,
}

#[derive(Debug, Default)]
struct GateState {
    last: Option<Instant>,
    suppressed: u64,
}

impl WarnGate {
    /// Calls `emit(suppressed since the last one)` unless a warning went out less than
    /// [`WARN_INTERVAL`] ago.
    fn warn(&self, emit: impl FnOnce(u64)) {
        let now = Instant::now();
        let suppressed = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            if state.last.is_some_and(|last| now.duration_since(last) < WARN_INTERVAL) {
                state.suppressed = state.suppressed.saturating_add(1);
                return;
            }
            state.last = Some(now);
            std::mem::take(&mut state.suppressed)
        };
        emit(suppressed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_warn_gate_lets_one_warning_through_per_interval_and_counts_the_rest() {
        let gate = WarnGate::default();
        let mut emitted = Vec::new();
        for _ in 0..3 {
            gate.warn(|suppressed| emitted.push(suppressed));
        }
        assert_eq!(emitted, [0]);
        // As if the interval had passed: the next warning reports the two held back.
        gate.state.lock().unwrap().last = Instant::now().checked_sub(WARN_INTERVAL);
        gate.warn(|suppressed| emitted.push(suppressed));
        assert_eq!(emitted, [0, 2]);
    }
}
