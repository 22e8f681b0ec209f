//! The serving side of a peer session: merges the peer's announcements into the catalog,
//! pushes the catalog to subscribers, hands blocks to the node's [`BlockHandler`], and closes
//! only its own session on bad input.

use core::{future::Future, pin::pin};
use std::{sync::Arc, time::Duration};

use futures_util::{StreamExt, future::BoxFuture, stream::FuturesUnordered};
use mempulse_primitives::NodeId;
use tokio::{
    io::{AsyncRead, AsyncWrite},
    sync::watch,
    time::Instant,
};

use super::{
    catalog::{AnnounceRefusal, Catalog},
    conn::PeerConn,
    error::PeerError,
    frame::{PEER_FRAME_BYTES_MAX_DEFAULT, PEER_PROTOCOL_VERSION, PeerFrame},
    metrics::PeerMetrics,
    types::{Announcement, BlockAck, BlockHandler},
};
use crate::{CloseReason, STREAM_CLOSE_TIMEOUT_DEFAULT, STREAM_HELLO_TIMEOUT_DEFAULT};

/// Blocks one session may have with the handler at once by default; one more is refused.
pub const PEER_BLOCKS_IN_FLIGHT_MAX_DEFAULT: usize = 4;

/// Limits of one served peer session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerLimits {
    /// Largest frame accepted ([`PEER_FRAME_BYTES_MAX_DEFAULT`]).
    pub frame_bytes_max: u32,
    /// Deadline for the client's `PeerHello`.
    pub hello_timeout: Duration,
    /// Deadline for writing the last frame.
    pub close_timeout: Duration,
    /// Blocks with the handler at once ([`PEER_BLOCKS_IN_FLIGHT_MAX_DEFAULT`]).
    pub blocks_in_flight_max: usize,
}

impl Default for PeerLimits {
    fn default() -> Self {
        Self {
            frame_bytes_max: PEER_FRAME_BYTES_MAX_DEFAULT,
            hello_timeout: STREAM_HELLO_TIMEOUT_DEFAULT,
            close_timeout: STREAM_CLOSE_TIMEOUT_DEFAULT,
            blocks_in_flight_max: PEER_BLOCKS_IN_FLIGHT_MAX_DEFAULT,
        }
    }
}

/// What a node serves peer sessions with.
#[derive(Clone)]
pub struct PeerService {
    /// This node (sent back in `PeerHello`).
    pub node: NodeId,
    /// Where announcements go, and what subscribers get.
    pub catalog: Catalog,
    /// Who commits received blocks; without one every block is refused
    /// (`blocks not enabled`).
    pub blocks: Option<Arc<dyn BlockHandler>>,
    /// Each session's limits.
    pub limits: PeerLimits,
}

impl core::fmt::Debug for PeerService {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PeerService")
            .field("node", &self.node)
            .field("blocks", &self.blocks.is_some())
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// What one served session carried, once it ended in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerSummary {
    /// The authenticated peer.
    pub peer: NodeId,
    /// Announcements merged (refreshes included).
    pub announcements: u64,
    /// Announcements refused.
    pub refused: u64,
    /// Catalog snapshots pushed.
    pub catalogs: u64,
    /// Blocks received (each answered).
    pub blocks: u64,
    /// How it ended: the peer's `Close` reason, or `shutting_down`.
    pub reason: Option<CloseReason>,
}

/// Serves one peer session on `io`, an accepted connection whose credentials `verify(claimed)`
/// checks against the node the client's `PeerHello` names (a TLS certificate naming
/// `node-<claimed>`; plaintext on loopback takes the claim). The server answers with its own
/// `PeerHello`, then serves until the client closes, the connection fails, or `closing`
/// completes (it sends `Close{shutting_down}` then).
///
/// Announcements must name the authenticated node (others are refused and counted, the
/// session goes on). After `Subscribe` the full catalog is pushed at once and on every change.
/// Each `Block` goes to `service.blocks` (at most `blocks_in_flight_max` at once; beyond, or
/// without a handler, it is refused at once) and is answered by a `BlockAck` with its id.
///
/// # Errors
/// A [`PeerError`] for a bad frame, a protocol violation or a failed connection; the server
/// first sends `Close` with [`PeerError::close_reason`] when the connection still works.
pub async fn serve_peer<IO, V, C>(
    io: IO,
    verify: V,
    service: PeerService,
    closing: C,
) -> Result<PeerSummary, PeerError>
where
    IO: AsyncRead + AsyncWrite + Unpin,
    V: FnOnce(NodeId) -> bool,
    C: Future<Output = ()>,
{
    let metrics = PeerMetrics::get();
    metrics.sessions_open.increment(1.0);
    let limits = service.limits;
    let mut conn = PeerConn::new(io, limits.frame_bytes_max);
    let result = serve(&mut conn, verify, service, closing).await;
    let last = match &result {
        Ok(summary) if summary.reason == Some(CloseReason::ShuttingDown) => {
            Some(PeerFrame::Close { reason: CloseReason::ShuttingDown })
        }
        Ok(_) => None,
        Err(error) => {
            error.can_send_close().then(|| PeerFrame::Close { reason: error.close_reason() })
        }
    };
    if let Some(frame) = last {
        let _ = tokio::time::timeout(limits.close_timeout, conn.write_frame(&frame)).await;
    }
    let _ = tokio::time::timeout(limits.close_timeout, conn.finish()).await;
    let reason = match &result {
        Ok(summary) => summary.reason.unwrap_or(CloseReason::Normal),
        Err(error) => error.close_reason(),
    };
    metrics.closed(reason);
    metrics.sessions_open.decrement(1.0);
    match &result {
        Ok(s) => tracing::debug!(peer = s.peer.0, %reason, "peer session ended"),
        Err(error) => tracing::debug!(%reason, %error, "peer session closed on error"),
    }
    result
}

async fn hello<IO: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut PeerConn<IO>,
    verify: impl FnOnce(NodeId) -> bool,
    node: NodeId,
    limits: &PeerLimits,
) -> Result<NodeId, PeerError> {
    let frame = conn.read_hello(limits.hello_timeout).await?;
    let PeerFrame::Hello { node: claimed, version } = frame else {
        return Err(PeerError::UnexpectedFrame { kind: frame.kind_str() });
    };
    if version != PEER_PROTOCOL_VERSION {
        return Err(PeerError::UnsupportedVersion { version });
    }
    if !verify(claimed) {
        return Err(PeerError::NotAuthenticated { claimed });
    }
    conn.write_frame(&PeerFrame::Hello { node, version: PEER_PROTOCOL_VERSION }).await?;
    Ok(claimed)
}

/// What woke the serving loop.
enum Event {
    Closing,
    Answered(u64, BlockAck),
    CatalogChanged,
    Frame(Result<PeerFrame, PeerError>),
}

/// Resolves on the next change of `rx`, never when there is none (no subscription, or the
/// catalog is gone).
async fn next_change(rx: &mut Option<watch::Receiver<u64>>) {
    if let Some(rx) = rx
        && rx.changed().await.is_ok()
    {
        return;
    }
    core::future::pending().await
}

async fn serve<IO, V, C>(
    conn: &mut PeerConn<IO>,
    verify: V,
    service: PeerService,
    closing: C,
) -> Result<PeerSummary, PeerError>
where
    IO: AsyncRead + AsyncWrite + Unpin,
    V: FnOnce(NodeId) -> bool,
    C: Future<Output = ()>,
{
    let peer = hello(conn, verify, service.node, &service.limits).await?;
    let mut summary = PeerSummary { peer, ..PeerSummary::default() };
    let mut closing = pin!(closing);
    let mut subscribed: Option<watch::Receiver<u64>> = None;
    let mut blocks: FuturesUnordered<BoxFuture<'static, (u64, BlockAck)>> = FuturesUnordered::new();
    loop {
        let event = tokio::select! {
            biased;
            () = &mut closing => Event::Closing,
            Some((id, ack)) = blocks.next(), if !blocks.is_empty() => Event::Answered(id, ack),
            () = next_change(&mut subscribed) => Event::CatalogChanged,
            frame = conn.read_frame() => Event::Frame(frame),
        };
        match event {
            Event::Closing => {
                summary.reason = Some(CloseReason::ShuttingDown);
                return Ok(summary);
            }
            Event::Answered(id, ack) => {
                PeerMetrics::get().block(&ack);
                conn.write_frame(&PeerFrame::BlockAck { id, ack }).await?;
            }
            Event::CatalogChanged => push_catalog(conn, &service, &mut summary).await?,
            Event::Frame(frame) => match frame? {
                PeerFrame::Announce(a) => announced(&service, peer, a, &mut summary),
                PeerFrame::Subscribe => {
                    if subscribed.is_none() {
                        let mut rx = service.catalog.subscribe();
                        rx.mark_unchanged();
                        subscribed = Some(rx);
                    }
                    push_catalog(conn, &service, &mut summary).await?;
                }
                PeerFrame::Block { id, notice } => {
                    summary.blocks += 1;
                    let refusal = match &service.blocks {
                        None => Some("blocks not enabled"),
                        Some(_) if blocks.len() >= service.limits.blocks_in_flight_max => {
                            Some("too many blocks in flight")
                        }
                        Some(handler) => {
                            let answer = handler.on_block(peer, notice);
                            blocks.push(Box::pin(async move { (id, answer.await) }));
                            None
                        }
                    };
                    if let Some(reason) = refusal {
                        let ack = BlockAck::refused(reason);
                        PeerMetrics::get().block(&ack);
                        conn.write_frame(&PeerFrame::BlockAck { id, ack }).await?;
                    }
                }
                PeerFrame::Close { reason } => {
                    summary.reason = Some(reason);
                    return Ok(summary);
                }
                frame @ (PeerFrame::Hello { .. }
                | PeerFrame::Catalog(_)
                | PeerFrame::BlockAck { .. }) => {
                    return Err(PeerError::UnexpectedFrame { kind: frame.kind_str() });
                }
            },
        }
    }
}

fn announced(service: &PeerService, peer: NodeId, a: Announcement, summary: &mut PeerSummary) {
    let metrics = PeerMetrics::get();
    let merged = if a.node == peer {
        service.catalog.merge(a, Instant::now())
    } else {
        Err(AnnounceRefusal::NotFromPeer)
    };
    match merged {
        Ok(_) => {
            summary.announcements += 1;
            metrics.received.increment(1);
        }
        Err(refusal) => {
            summary.refused += 1;
            metrics.refused(refusal);
            tracing::debug!(peer = peer.0, refusal = refusal.as_str(), "announcement refused");
        }
    }
}

async fn push_catalog<IO: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut PeerConn<IO>,
    service: &PeerService,
    summary: &mut PeerSummary,
) -> Result<(), PeerError> {
    summary.catalogs += 1;
    conn.write_frame(&PeerFrame::Catalog(service.catalog.snapshot())).await
}
