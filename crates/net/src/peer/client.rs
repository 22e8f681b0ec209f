//! The dialling side of a peer session: announce, subscribe to catalog pushes, and send blocks
//! with request/answer matching, over one connection driven by one task.

use core::future::Future;
use std::{collections::BTreeMap, sync::Arc, time::Duration};

use mempulse_primitives::NodeId;
use tokio::{
    io::{AsyncRead, AsyncWrite},
    sync::{mpsc, oneshot, watch},
};

use super::{
    conn::PeerConn,
    error::PeerError,
    frame::{PEER_FRAME_BYTES_MAX_DEFAULT, PEER_PROTOCOL_VERSION, PeerFrame},
    metrics::PeerMetrics,
    types::{Announcement, BlockAck, BlockNotice},
};
use crate::{CloseReason, STREAM_HELLO_TIMEOUT_DEFAULT};

/// Block requests one session may have outstanding by default.
pub const PEER_REQUESTS_MAX_DEFAULT: usize = 16;

/// Commands queued towards the session task.
const COMMAND_QUEUE_CAPACITY: usize = 16;

/// Settings of a [`PeerSession`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerClientConfig {
    /// The identity this side names in its `PeerHello` (its certificate must name it).
    pub node: NodeId,
    /// When set, the server must answer as this node.
    pub expect: Option<NodeId>,
    /// Largest frame written or read.
    pub frame_bytes_max: u32,
    /// Deadline for connecting and the server's `PeerHello`.
    pub hello_timeout: Duration,
    /// Block requests outstanding at once ([`PEER_REQUESTS_MAX_DEFAULT`]).
    pub requests_max: usize,
}

impl PeerClientConfig {
    /// Defaults for a client naming itself `node`.
    #[must_use]
    pub const fn new(node: NodeId) -> Self {
        Self {
            node,
            expect: None,
            frame_bytes_max: PEER_FRAME_BYTES_MAX_DEFAULT,
            hello_timeout: STREAM_HELLO_TIMEOUT_DEFAULT,
            requests_max: PEER_REQUESTS_MAX_DEFAULT,
        }
    }
}

enum Command {
    Close,
    Announce(Announcement),
    Subscribe,
    Block { notice: BlockNotice, reply: oneshot::Sender<Result<BlockAck, PeerError>> },
}

/// One peer session to one node. Cheap to clone; the session ends when every clone is dropped
/// (with `Close{normal}`), when the server closes it, or when the connection fails.
#[derive(Clone, Debug)]
pub struct PeerSession {
    peer: NodeId,
    commands: mpsc::Sender<Command>,
    catalog: watch::Receiver<Arc<Vec<Announcement>>>,
    ended: watch::Receiver<Option<Result<(), PeerError>>>,
}

impl core::fmt::Debug for Command {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Close => f.write_str("Close"),
            Self::Announce(a) => f.debug_tuple("Announce").field(a).finish(),
            Self::Subscribe => f.write_str("Subscribe"),
            Self::Block { notice, .. } => f.debug_struct("Block").field("notice", notice).finish(),
        }
    }
}

impl PeerSession {
    /// Connects through `connector`, says `PeerHello` as `config.node`, and waits for the
    /// server's `PeerHello` (all within `config.hello_timeout`). The session's task runs on the
    /// current tokio runtime.
    ///
    /// # Errors
    /// [`PeerError::Io`] when connecting fails, [`PeerError::HelloTimeout`],
    /// [`PeerError::ClosedByPeer`] when the server refuses the session,
    /// [`PeerError::WrongPeer`] when it answers as another node than `config.expect`, or a
    /// protocol error.
    pub async fn connect<C, F, IO>(
        connector: C,
        config: PeerClientConfig,
    ) -> Result<Self, PeerError>
    where
        C: FnOnce() -> F,
        F: Future<Output = std::io::Result<IO>>,
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let handshake = async {
            let mut conn = PeerConn::connect(connector, config.frame_bytes_max).await?;
            conn.write_frame(&PeerFrame::Hello {
                node: config.node,
                version: PEER_PROTOCOL_VERSION,
            })
            .await?;
            match conn.read_frame().await? {
                PeerFrame::Hello { version, .. } if version != PEER_PROTOCOL_VERSION => {
                    Err(PeerError::UnsupportedVersion { version })
                }
                PeerFrame::Hello { node, .. } => match config.expect {
                    Some(expected) if expected != node => {
                        Err(PeerError::WrongPeer { expected, answered: node })
                    }
                    _ => Ok((conn, node)),
                },
                PeerFrame::Close { reason } => Err(PeerError::ClosedByPeer { reason }),
                frame => Err(PeerError::UnexpectedFrame { kind: frame.kind_str() }),
            }
        };
        let (conn, peer) = tokio::time::timeout(config.hello_timeout, handshake)
            .await
            .map_err(|_| PeerError::HelloTimeout)??;
        let (commands, rx) = mpsc::channel(COMMAND_QUEUE_CAPACITY);
        let (catalog_tx, catalog) = watch::channel(Arc::new(Vec::new()));
        let (ended_tx, ended) = watch::channel(None);
        let task = Task { conn, rx, catalog: catalog_tx, pending: BTreeMap::new(), next_id: 1 };
        let requests_max = config.requests_max.max(1);
        tokio::spawn(async move {
            let result = task.run(requests_max).await;
            if let Err(error) = &result {
                tracing::debug!(peer = peer.0, %error, "peer session ended");
            }
            let _ = ended_tx.send(Some(result));
        });
        Ok(Self { peer, commands, catalog, ended })
    }

    /// The node that answered.
    #[must_use]
    pub const fn peer(&self) -> NodeId {
        self.peer
    }

    async fn command(&self, command: Command) -> Result<(), PeerError> {
        self.commands.send(command).await.map_err(|_| self.end_error())
    }

    /// Sends an announcement (a new version, or the same one again as a heartbeat).
    ///
    /// # Errors
    /// The error that ended the session ([`PeerError::Closed`] when none is known).
    pub async fn announce(&self, announcement: Announcement) -> Result<(), PeerError> {
        self.command(Command::Announce(announcement)).await?;
        PeerMetrics::get().sent.increment(1);
        Ok(())
    }

    /// Asks for catalog pushes and returns their receiver: the server's full catalog, replaced
    /// on every change (empty until the first push arrives).
    ///
    /// # Errors
    /// The error that ended the session.
    pub async fn subscribe(&self) -> Result<watch::Receiver<Arc<Vec<Announcement>>>, PeerError> {
        self.command(Command::Subscribe).await?;
        Ok(self.catalog.clone())
    }

    /// Sends `notice` and waits for the answer, at most `timeout`.
    ///
    /// # Errors
    /// [`PeerError::Timeout`], [`PeerError::Overloaded`] when the session has too many requests
    /// outstanding, or the error that ended the session.
    pub async fn send_block(
        &self,
        notice: BlockNotice,
        timeout: Duration,
    ) -> Result<BlockAck, PeerError> {
        let (reply, answer) = oneshot::channel();
        let request = async {
            self.command(Command::Block { notice, reply }).await?;
            answer.await.map_err(|_| self.end_error())?
        };
        tokio::time::timeout(timeout, request).await.map_err(|_| PeerError::Timeout)?
    }

    /// Ends the session for every clone (`Close{normal}` after the commands queued before) and
    /// waits for it to end.
    pub async fn close(&self) {
        if self.commands.send(Command::Close).await.is_ok() {
            let _ = self.closed().await;
        }
    }

    /// Whether the session has ended.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.ended.borrow().is_some() || self.commands.is_closed()
    }

    /// Waits for the session to end; returns how it ended (`Ok` after an orderly close).
    ///
    /// # Errors
    /// The error that ended the session.
    pub async fn closed(&self) -> Result<(), PeerError> {
        let mut ended = self.ended.clone();
        match ended.wait_for(Option::is_some).await {
            Ok(result) => (*result).unwrap_or(Err(PeerError::Closed)),
            Err(_) => Err(PeerError::Closed),
        }
    }

    fn end_error(&self) -> PeerError {
        match &*self.ended.borrow() {
            Some(Err(error)) => *error,
            Some(Ok(())) | None => PeerError::Closed,
        }
    }
}

/// The session task's state.
struct Task<IO> {
    conn: PeerConn<IO>,
    rx: mpsc::Receiver<Command>,
    catalog: watch::Sender<Arc<Vec<Announcement>>>,
    pending: BTreeMap<u64, oneshot::Sender<Result<BlockAck, PeerError>>>,
    next_id: u64,
}

impl<IO: AsyncRead + AsyncWrite + Unpin> Task<IO> {
    async fn run(mut self, requests_max: usize) -> Result<(), PeerError> {
        let result = self.serve(requests_max).await;
        let last = match &result {
            Ok(()) => Some(PeerFrame::Close { reason: CloseReason::Normal }),
            Err(error) => {
                error.can_send_close().then(|| PeerFrame::Close { reason: error.close_reason() })
            }
        };
        if let Some(frame) = last {
            let _ = self.conn.write_frame(&frame).await;
        }
        self.conn.finish().await;
        let error = result.err().unwrap_or(PeerError::Closed);
        for (_, reply) in std::mem::take(&mut self.pending) {
            let _ = reply.send(Err(error));
        }
        result
    }

    async fn serve(&mut self, requests_max: usize) -> Result<(), PeerError> {
        loop {
            tokio::select! {
                biased;
                frame = self.conn.read_frame() => match frame? {
                    PeerFrame::Catalog(all) => {
                        self.catalog.send_replace(Arc::new(all));
                    }
                    PeerFrame::BlockAck { id, ack } => {
                        // An id no longer pending was given up by its caller.
                        if let Some(reply) = self.pending.remove(&id) {
                            let _ = reply.send(Ok(ack));
                        }
                    }
                    PeerFrame::Close { reason } => return Err(PeerError::ClosedByPeer { reason }),
                    frame @ (PeerFrame::Hello { .. }
                    | PeerFrame::Announce(_)
                    | PeerFrame::Subscribe
                    | PeerFrame::Block { .. }) => {
                        return Err(PeerError::UnexpectedFrame { kind: frame.kind_str() });
                    }
                },
                command = self.rx.recv() => match command {
                    None | Some(Command::Close) => return Ok(()),
                    Some(Command::Announce(a)) => {
                        self.conn.write_frame(&PeerFrame::Announce(a)).await?;
                    }
                    Some(Command::Subscribe) => self.conn.write_frame(&PeerFrame::Subscribe).await?,
                    Some(Command::Block { notice, reply }) => {
                        self.block(notice, reply, requests_max).await?;
                    }
                },
            }
        }
    }

    async fn block(
        &mut self,
        notice: BlockNotice,
        reply: oneshot::Sender<Result<BlockAck, PeerError>>,
        requests_max: usize,
    ) -> Result<(), PeerError> {
        // Requests whose callers gave up (timed out) free their place.
        self.pending.retain(|_, reply| !reply.is_closed());
        if self.pending.len() >= requests_max {
            let _ = reply.send(Err(PeerError::Overloaded));
            return Ok(());
        }
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let frame = PeerFrame::Block { id, notice };
        if let Err(error) = self.conn.write_frame(&frame).await {
            // A frame the encoder refuses is this request's failure, not the session's.
            if let PeerError::Frame(_) = error {
                let _ = reply.send(Err(error));
                return Ok(());
            }
            return Err(error);
        }
        self.pending.insert(id, reply);
        Ok(())
    }
}
