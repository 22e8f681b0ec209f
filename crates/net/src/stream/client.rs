//! The sending side of a node tx stream: a bounded buffer drained into `Txs` frames as the
//! server's credits allow.

use core::future::Future;

use bytes::Bytes;
use tokio::{
    io::{AsyncRead, AsyncWrite},
    sync::mpsc,
    task::JoinHandle,
};

use super::{
    conn::Conn,
    error::{SendError, StreamError},
    frame::{STREAM_PROTOCOL_VERSION, StreamFrame, TX_OVERHEAD, TXS_FRAME_OVERHEAD},
    tally::StreamTally,
};
use crate::StreamClientConfig;

/// What a client sent, once it closed in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientSummary {
    /// Transactions written.
    pub txs: u64,
    /// `Txs` frames written.
    pub frames: u64,
    /// How the server answered them (its last frame); `None` when the connection ended
    /// without one.
    pub tally: Option<StreamTally>,
}

/// A node tx stream to one server. `send` waits while the buffer is full, and the buffer drains
/// only as the server grants credits, so a slow server slows its senders down instead of
/// dropping their transactions on the floor of a queue.
#[derive(Debug)]
pub struct TxStreamClient {
    txs: mpsc::Sender<Bytes>,
    task: JoinHandle<Result<ClientSummary, StreamError>>,
    tx_bytes_max: u64,
    close_timeout: core::time::Duration,
}

impl TxStreamClient {
    /// Opens a stream through `connector` (the node's gives a mutual-TLS connection; tests give
    /// plain TCP or an in-memory duplex), says `Hello` as `config.source` and waits for the
    /// first credit. The sending task runs on the current tokio runtime.
    ///
    /// # Errors
    /// [`StreamError::Io`] when connecting or writing fails; [`StreamError::HelloTimeout`] without
    /// a credit in time; [`StreamError::ClosedByPeer`] when the server refuses the stream;
    /// [`StreamError::UnexpectedFrame`] or [`StreamError::Frame`] for a confused server.
    pub async fn connect<C, F, IO>(
        connector: C,
        config: StreamClientConfig,
    ) -> Result<Self, StreamError>
    where
        C: FnOnce() -> F,
        F: Future<Output = std::io::Result<IO>>,
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let mut conn = Conn::connect(connector, config.frame_bytes_max).await?;
        let hello = StreamFrame::Hello { source: config.source, version: STREAM_PROTOCOL_VERSION };
        conn.write_frame(&hello).await?;
        let first = conn.read_hello(config.hello_timeout).await?;
        let credit = match first {
            StreamFrame::Credit { txs } => u64::from(txs),
            StreamFrame::Close { reason } => return Err(StreamError::ClosedByPeer { reason }),
            frame @ (StreamFrame::Hello { .. } | StreamFrame::Txs(_) | StreamFrame::Tally(_)) => {
                return Err(StreamError::UnexpectedFrame { kind: frame.kind_str() });
            }
        };
        let (txs, rx) = mpsc::channel(config.buffer_txs.max(1));
        let frame_room = u64::from(config.frame_bytes_max);
        let tx_bytes_max = frame_room.saturating_sub((TXS_FRAME_OVERHEAD + TX_OVERHEAD) as u64);
        let task = tokio::spawn(run(conn, rx, credit, config.frame_bytes_max));
        Ok(Self { txs, task, tx_bytes_max, close_timeout: config.close_timeout })
    }

    fn check_size(&self, raw: &Bytes) -> Result<(), SendError> {
        let len = u64::try_from(raw.len()).unwrap_or(u64::MAX);
        if len > self.tx_bytes_max {
            return Err(SendError::TooLarge { len, max: self.tx_bytes_max });
        }
        Ok(())
    }

    /// Queues one raw transaction, waiting while the buffer is full.
    ///
    /// # Errors
    /// [`SendError::Closed`] once the stream has ended; [`SendError::TooLarge`] for a
    /// transaction no frame can carry.
    pub async fn send(&self, raw: Bytes) -> Result<(), SendError> {
        self.check_size(&raw)?;
        self.txs.send(raw).await.map_err(|_| SendError::Closed)
    }

    /// Queues one raw transaction if the buffer has room, without waiting.
    ///
    /// # Errors
    /// [`SendError::Full`] when the buffer is full, otherwise as [`TxStreamClient::send`].
    pub fn try_send(&self, raw: Bytes) -> Result<(), SendError> {
        self.check_size(&raw)?;
        self.txs.try_send(raw).map_err(|err| match err {
            mpsc::error::TrySendError::Full(_) => SendError::Full,
            mpsc::error::TrySendError::Closed(_) => SendError::Closed,
        })
    }

    /// Whether the stream has ended (the server closed it, or the connection failed).
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.txs.is_closed()
    }

    /// Sends everything buffered (as credits allow), then `Close{normal}`, and waits for the
    /// server's `Tally` of the answers, all within the configured close timeout (which should
    /// cover the server's own wait for the pool's last answers).
    ///
    /// # Errors
    /// The error that ended the stream early ([`StreamError::ClosedByPeer`] when the server
    /// closed it), or [`StreamError::CloseTimeout`].
    pub async fn close(self) -> Result<ClientSummary, StreamError> {
        let Self { txs, mut task, close_timeout, .. } = self;
        drop(txs);
        match tokio::time::timeout(close_timeout, &mut task).await {
            Ok(Ok(result)) => result,
            // The task panicked or was cancelled: nothing more is known than a lost connection.
            Ok(Err(_)) => Err(StreamError::ConnectionLost),
            Err(_) => {
                task.abort();
                Err(StreamError::CloseTimeout)
            }
        }
    }
}

/// Sends buffered transactions as credit allows; reads credits and `Close` meanwhile.
async fn run<IO: AsyncRead + AsyncWrite + Unpin>(
    mut conn: Conn<IO>,
    mut rx: mpsc::Receiver<Bytes>,
    mut credit: u64,
    frame_bytes_max: u32,
) -> Result<ClientSummary, StreamError> {
    let mut summary = ClientSummary::default();
    let mut carry: Option<Bytes> = None;
    let mut open = true;
    loop {
        if credit > 0
            && let Some(first) = carry.take()
        {
            let batch = gather(first, &mut rx, &mut carry, credit, frame_bytes_max);
            credit -= send(&mut conn, batch, &mut summary).await?;
            continue;
        }
        if !open && carry.is_none() {
            conn.write_frame(&StreamFrame::Close { reason: super::CloseReason::Normal }).await?;
            summary.tally = read_tally(&mut conn).await?;
            conn.finish().await;
            return Ok(summary);
        }
        tokio::select! {
            biased;
            frame = conn.read_frame() => match frame? {
                StreamFrame::Credit { txs } => credit = credit.saturating_add(u64::from(txs)),
                StreamFrame::Close { reason } => return Err(StreamError::ClosedByPeer { reason }),
                frame @ (StreamFrame::Hello { .. } | StreamFrame::Txs(_) | StreamFrame::Tally(_)) => {
                    return Err(StreamError::UnexpectedFrame { kind: frame.kind_str() });
                }
            },
            item = rx.recv(), if credit > 0 && open => match item {
                Some(first) => {
                    let batch = gather(first, &mut rx, &mut carry, credit, frame_bytes_max);
                    credit -= send(&mut conn, batch, &mut summary).await?;
                }
                None => open = false,
            },
        }
    }
}

/// After `Close{normal}`: the server's `Tally` (credits still in flight are skipped), or `None`
/// when the connection ends first.
async fn read_tally<IO: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Conn<IO>,
) -> Result<Option<StreamTally>, StreamError> {
    loop {
        match conn.read_frame().await {
            Ok(StreamFrame::Tally(tally)) => return Ok(Some(tally)),
            Ok(StreamFrame::Credit { .. }) => {}
            Ok(StreamFrame::Close { reason }) => return Err(StreamError::ClosedByPeer { reason }),
            Ok(frame @ (StreamFrame::Hello { .. } | StreamFrame::Txs(_))) => {
                return Err(StreamError::UnexpectedFrame { kind: frame.kind_str() });
            }
            Err(StreamError::ConnectionLost | StreamError::Io { .. }) => return Ok(None),
            Err(error) => return Err(error),
        }
    }
}

/// `first` and whatever else is buffered, up to the credit and one frame's bytes; the item that
/// would overflow the frame waits in `carry`.
fn gather(
    first: Bytes,
    rx: &mut mpsc::Receiver<Bytes>,
    carry: &mut Option<Bytes>,
    credit: u64,
    frame_bytes_max: u32,
) -> Vec<Bytes> {
    let room = usize::try_from(frame_bytes_max).unwrap_or(usize::MAX);
    let mut bytes = TXS_FRAME_OVERHEAD + TX_OVERHEAD + first.len();
    let mut batch = vec![first];
    while u64::try_from(batch.len()).unwrap_or(u64::MAX) < credit {
        let Ok(next) = rx.try_recv() else { break };
        let size = TX_OVERHEAD + next.len();
        if bytes.saturating_add(size) > room {
            *carry = Some(next);
            break;
        }
        bytes += size;
        batch.push(next);
    }
    batch
}

async fn send<IO: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Conn<IO>,
    batch: Vec<Bytes>,
    summary: &mut ClientSummary,
) -> Result<u64, StreamError> {
    let count = u64::try_from(batch.len()).unwrap_or(u64::MAX);
    conn.write_frame(&StreamFrame::Txs(batch)).await?;
    summary.txs += count;
    summary.frames += 1;
    Ok(count)
}
