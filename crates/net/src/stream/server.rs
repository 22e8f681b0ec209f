//! The serving side of a node tx stream: feeds the stream lane, grants credits as transactions
//! are answered, and closes only its own stream on bad input.

use futures_util::{StreamExt, stream::FuturesUnordered};
use mempulse_primitives::{Lane, NodeId};
use tokio::io::{AsyncRead, AsyncWrite};

use super::{
    conn::Conn,
    error::StreamError,
    frame::{CloseReason, STREAM_PROTOCOL_VERSION, StreamFrame},
    tally::StreamTally,
};
use crate::{IngestHandle, SourceId, StreamLimits, Submitted, TxOutcome, metrics::StreamMetrics};

/// What one served stream carried, once it ended in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamSummary {
    /// Transactions received.
    pub txs: u64,
    /// Of those, answered by the pool (any verdict).
    pub accepted: u64,
    /// Found invalid.
    pub invalid: u64,
    /// Dropped at the lane.
    pub dropped: u64,
    /// Valid but not answered by the cluster.
    pub unavailable: u64,
    /// Answers not yet in when the stream ended (shutdown, or the close timeout).
    pub unanswered: u64,
    /// How the stream ended: the client's `Close` reason, or `shutting_down` when this node
    /// closed it.
    pub reason: Option<CloseReason>,
    /// The answers by outcome and reason (what the client receives in `Tally`).
    pub tally: StreamTally,
}

impl StreamSummary {
    fn count(&mut self, outcome: &TxOutcome) {
        match outcome {
            TxOutcome::Accepted { .. } => self.accepted += 1,
            TxOutcome::Invalid(_) => self.invalid += 1,
            TxOutcome::Dropped { .. } => self.dropped += 1,
            TxOutcome::Unavailable(_) => self.unavailable += 1,
        }
        self.tally.count(outcome);
    }
}

/// Serves one node tx stream on `io`, an already authenticated connection (the node wraps it in
/// the cluster's mutual TLS) from `peer`, feeding transactions into `handle`'s stream lane.
///
/// The client's `Hello` must come within `limits.hello_timeout`, speak
/// [`STREAM_PROTOCOL_VERSION`] and, when `peer` is a [`SourceId::Peer`], name that node. The
/// server then grants `limits.window_txs` credits and returns credits as the transactions are
/// answered (dropped, invalid or decided by the pool), so a stream never has more than the
/// window outstanding. When the client closes with `Close{normal}` the server waits (up to
/// `limits.close_timeout`) for the outstanding answers and sends them as a `Tally`. It returns
/// then, or with a `Close{shutting_down}` when ingest shuts down.
///
/// # Errors
/// A [`StreamError`] for a bad frame, a protocol violation or a failed connection; the server
/// first sends `Close` with [`StreamError::close_reason`] when the connection still works. Only
/// this stream ends.
pub async fn serve_stream<IO>(
    io: IO,
    peer: SourceId,
    handle: IngestHandle,
    limits: StreamLimits,
) -> Result<StreamSummary, StreamError>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let identify = move |claimed: NodeId| match peer {
        SourceId::Peer(authenticated) if authenticated != claimed => {
            Err(StreamError::IdentityMismatch { claimed, authenticated })
        }
        SourceId::Peer(_) | SourceId::Client(_) | SourceId::Local => Ok(peer),
    };
    serve_identified(io, identify, handle, limits).await
}

/// Serves one node tx stream as [`serve_stream`] does, for a connection whose credentials can
/// prove a node id but do not name one by themselves (a TLS client certificate checked against
/// the id the client claims, as the cluster transport does; or plaintext on loopback, which
/// takes the claim at its word). `verify(claimed)` answers whether the connection proves node
/// `claimed`; the stream's source is then [`SourceId::Peer`]`(claimed)`.
///
/// # Errors
/// As [`serve_stream`]; [`StreamError::NotAuthenticated`] when `verify` refuses the claim.
pub async fn serve_stream_verified<IO, F>(
    io: IO,
    verify: F,
    handle: IngestHandle,
    limits: StreamLimits,
) -> Result<StreamSummary, StreamError>
where
    IO: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(NodeId) -> bool,
{
    let identify = |claimed: NodeId| {
        if verify(claimed) {
            Ok(SourceId::Peer(claimed))
        } else {
            Err(StreamError::NotAuthenticated { claimed })
        }
    };
    serve_identified(io, identify, handle, limits).await
}

async fn serve_identified<IO, F>(
    io: IO,
    identify: F,
    handle: IngestHandle,
    limits: StreamLimits,
) -> Result<StreamSummary, StreamError>
where
    IO: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(NodeId) -> Result<SourceId, StreamError>,
{
    let metrics = StreamMetrics::new();
    metrics.open.increment(1.0);
    let mut conn = Conn::new(io, limits.frame_bytes_max);
    let result = serve(&mut conn, identify, &handle, limits).await;
    let last = match &result {
        Ok(summary) => last_frame(summary),
        Err(error) => {
            error.can_send_close().then(|| StreamFrame::Close { reason: error.close_reason() })
        }
    };
    if let Some(frame) = last {
        let _ = tokio::time::timeout(limits.close_timeout, conn.write_frame(&frame)).await;
    }
    conn.finish().await;
    let reason = match &result {
        Ok(summary) => summary.reason.unwrap_or(CloseReason::Normal),
        Err(error) => error.close_reason(),
    };
    metrics.closed(reason);
    metrics.open.decrement(1.0);
    match &result {
        Ok(summary) => tracing::debug!(reason = %reason, txs = summary.txs, "tx stream ended"),
        Err(error) => tracing::debug!(reason = %reason, %error, "tx stream closed on error"),
    }
    result
}

/// What the server sends after a stream that ended in order: the tally after the client's
/// `Close{normal}`, `Close{shutting_down}` when this node closes it, nothing after a client's
/// `Close` for another reason (it reads nothing more).
fn last_frame(summary: &StreamSummary) -> Option<StreamFrame> {
    let reason = summary.reason.unwrap_or(CloseReason::Normal);
    if reason == CloseReason::Normal {
        Some(StreamFrame::Tally(summary.tally.clone()))
    } else if reason == CloseReason::ShuttingDown {
        Some(StreamFrame::Close { reason })
    } else {
        None
    }
}

async fn hello<IO: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Conn<IO>,
    identify: impl FnOnce(NodeId) -> Result<SourceId, StreamError>,
    limits: &StreamLimits,
) -> Result<SourceId, StreamError> {
    let frame = conn.read_hello(limits.hello_timeout).await?;
    let StreamFrame::Hello { source, version } = frame else {
        return Err(StreamError::UnexpectedFrame { kind: frame.kind_str() });
    };
    if version != STREAM_PROTOCOL_VERSION {
        return Err(StreamError::UnsupportedVersion { version });
    }
    identify(source)
}

/// What woke the serving loop.
enum Event {
    Closing,
    Answered(TxOutcome),
    Frame(Result<StreamFrame, StreamError>),
}

async fn serve<IO: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Conn<IO>,
    identify: impl FnOnce(NodeId) -> Result<SourceId, StreamError>,
    handle: &IngestHandle,
    limits: StreamLimits,
) -> Result<StreamSummary, StreamError> {
    let mut summary = StreamSummary::default();
    let peer = hello(conn, identify, &limits).await?;
    let window = limits.window_txs.max(1);
    conn.write_frame(&StreamFrame::Credit { txs: window }).await?;
    // Credits are returned in chunks of a quarter window, or whenever nothing is outstanding.
    let chunk = (window / 4).max(1);
    let mut granted = u64::from(window);
    let mut returned: u32 = 0;
    let mut outstanding: FuturesUnordered<Submitted> = FuturesUnordered::new();
    loop {
        let event = tokio::select! {
            biased;
            () = handle.closing() => Event::Closing,
            Some(outcome) = outstanding.next(), if !outstanding.is_empty() => {
                Event::Answered(outcome)
            }
            frame = conn.read_frame() => Event::Frame(frame),
        };
        match event {
            Event::Closing => {
                summary.reason = Some(CloseReason::ShuttingDown);
                summary.unanswered = u64::try_from(outstanding.len()).unwrap_or(u64::MAX);
                summary.tally.unanswered = summary.unanswered;
                return Ok(summary);
            }
            Event::Answered(outcome) => {
                summary.count(&outcome);
                returned = returned.saturating_add(1);
            }
            Event::Frame(frame) => match frame? {
                StreamFrame::Txs(txs) => {
                    let sent = u64::try_from(txs.len()).unwrap_or(u64::MAX);
                    if sent > granted {
                        return Err(StreamError::CreditExceeded { sent, granted });
                    }
                    granted -= sent;
                    summary.txs += sent;
                    for raw in txs {
                        outstanding.push(handle.submit(Lane::Stream, peer, raw));
                    }
                }
                StreamFrame::Close { reason } => {
                    summary.reason = Some(reason);
                    drain(&mut outstanding, &mut summary, &limits).await;
                    return Ok(summary);
                }
                frame @ (StreamFrame::Hello { .. }
                | StreamFrame::Credit { .. }
                | StreamFrame::Tally(_)) => {
                    return Err(StreamError::UnexpectedFrame { kind: frame.kind_str() });
                }
            },
        }
        if returned >= chunk || (returned > 0 && outstanding.is_empty()) {
            conn.write_frame(&StreamFrame::Credit { txs: returned }).await?;
            granted += u64::from(returned);
            returned = 0;
        }
    }
}

/// Waits, up to the close timeout, for the answers still outstanding.
async fn drain(
    outstanding: &mut FuturesUnordered<Submitted>,
    summary: &mut StreamSummary,
    limits: &StreamLimits,
) {
    let all = async {
        while let Some(outcome) = outstanding.next().await {
            summary.count(&outcome);
        }
    };
    let _ = tokio::time::timeout(limits.close_timeout, all).await;
    summary.unanswered = u64::try_from(outstanding.len()).unwrap_or(u64::MAX);
    summary.tally.unanswered = summary.unanswered;
}
