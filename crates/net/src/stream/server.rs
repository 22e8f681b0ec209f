//! The serving side of a node tx stream: feeds the stream lane, grants credits as transactions
//! are answered, and closes only its own stream on bad input.

use futures_util::{StreamExt, stream::FuturesUnordered};
use mempulse_primitives::Lane;
use tokio::io::{AsyncRead, AsyncWrite};

use super::{
    conn::Conn,
    error::StreamError,
    frame::{CloseReason, STREAM_PROTOCOL_VERSION, StreamFrame},
};
use crate::{IngestHandle, SourceId, StreamLimits, Submitted, TxOutcome, metrics::StreamMetrics};

/// What one served stream carried, once it ended in order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
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
}

impl StreamSummary {
    fn count(&mut self, outcome: &TxOutcome) {
        match outcome {
            TxOutcome::Accepted { .. } => self.accepted += 1,
            TxOutcome::Invalid(_) => self.invalid += 1,
            TxOutcome::Dropped { .. } => self.dropped += 1,
            TxOutcome::Unavailable(_) => self.unavailable += 1,
        }
    }
}

/// Serves one node tx stream on `io`, an already authenticated connection (the node wraps it in
/// the cluster's mutual TLS) from `peer`, feeding transactions into `handle`'s stream lane.
///
/// The client's `Hello` must come within `limits.hello_timeout`, speak
/// [`STREAM_PROTOCOL_VERSION`] and, when `peer` is a [`SourceId::Peer`], name that node. The
/// server then grants `limits.window_txs` credits and returns credits as the transactions are
/// answered (dropped, invalid or decided by the pool), so a stream never has more than the
/// window outstanding. It returns when the client closes, or with a `Close{shutting_down}` when
/// ingest shuts down.
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
    let metrics = StreamMetrics::new();
    metrics.open.increment(1.0);
    let mut conn = Conn::new(io, limits.frame_bytes_max);
    let result = serve(&mut conn, peer, &handle, limits).await;
    let (reason, send_close) = match &result {
        Ok(summary) => {
            let ours = summary.reason == Some(CloseReason::ShuttingDown);
            (summary.reason.unwrap_or(CloseReason::Normal), ours)
        }
        Err(error) => (error.close_reason(), error.can_send_close()),
    };
    if send_close {
        let close = StreamFrame::Close { reason };
        let _ = tokio::time::timeout(limits.close_timeout, conn.write_frame(&close)).await;
    }
    conn.finish().await;
    metrics.closed(reason);
    metrics.open.decrement(1.0);
    match &result {
        Ok(summary) => tracing::debug!(reason = %reason, txs = summary.txs, "tx stream ended"),
        Err(error) => tracing::debug!(reason = %reason, %error, "tx stream closed on error"),
    }
    result
}

async fn hello<IO: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Conn<IO>,
    peer: SourceId,
    limits: &StreamLimits,
) -> Result<(), StreamError> {
    let frame = tokio::time::timeout(limits.hello_timeout, conn.read_frame())
        .await
        .map_err(|_| StreamError::HelloTimeout)??;
    let StreamFrame::Hello { source, version } = frame else {
        return Err(StreamError::UnexpectedFrame { kind: frame.kind_str() });
    };
    if version != STREAM_PROTOCOL_VERSION {
        return Err(StreamError::UnsupportedVersion { version });
    }
    if let SourceId::Peer(authenticated) = peer
        && authenticated != source
    {
        return Err(StreamError::IdentityMismatch { claimed: source, authenticated });
    }
    Ok(())
}

/// What woke the serving loop.
enum Event {
    Closing,
    Answered(TxOutcome),
    Frame(Result<StreamFrame, StreamError>),
}

async fn serve<IO: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Conn<IO>,
    peer: SourceId,
    handle: &IngestHandle,
    limits: StreamLimits,
) -> Result<StreamSummary, StreamError> {
    let mut summary = StreamSummary::default();
    hello(conn, peer, &limits).await?;
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
                frame @ (StreamFrame::Hello { .. } | StreamFrame::Credit { .. }) => {
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
}
