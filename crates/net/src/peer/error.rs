//! Errors of peer sessions.

use mempulse_primitives::NodeId;

use super::frame::PeerFrameError;
use crate::{CloseReason, IoOp, stream::ConnError};

/// Why a peer session or request failed. A session error ends only that session; the node
/// keeps running.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PeerError {
    /// The other side sent bytes that are not a valid peer frame.
    #[error("bad peer frame")]
    Frame(#[from] PeerFrameError),
    /// The connection failed.
    #[error("peer {op:?} failed ({kind:?})")]
    Io {
        /// The operation.
        op: IoOp,
        /// The operating system's error kind.
        kind: std::io::ErrorKind,
    },
    /// The connection ended without a `Close` frame.
    #[error("peer connection lost")]
    ConnectionLost,
    /// No `PeerHello` in time (either side).
    #[error("peer handshake timed out")]
    HelloTimeout,
    /// A frame of a kind not allowed at that point.
    #[error("unexpected {kind} frame")]
    UnexpectedFrame {
        /// The frame's kind.
        kind: &'static str,
    },
    /// `PeerHello` carried a protocol version this side does not speak.
    #[error("unsupported peer protocol version {version}")]
    UnsupportedVersion {
        /// The version received.
        version: u16,
    },
    /// The connection's credentials do not prove the node `PeerHello` named.
    #[error("peer hello from {claimed}, which the connection's credentials do not prove")]
    NotAuthenticated {
        /// The node claimed.
        claimed: NodeId,
    },
    /// The server answered as another node than the one dialled.
    #[error("dialled node {expected}, answered by node {answered}")]
    WrongPeer {
        /// The node dialled.
        expected: NodeId,
        /// The node that answered.
        answered: NodeId,
    },
    /// The other side closed the session with this reason.
    #[error("peer session closed by peer: {reason}")]
    ClosedByPeer {
        /// Its reason.
        reason: CloseReason,
    },
    /// A request got no answer in time.
    #[error("peer request timed out")]
    Timeout,
    /// No session to that node is up right now (it reconnects with backoff).
    #[error("no session to node {node}")]
    NotConnected {
        /// The node.
        node: NodeId,
    },
    /// The node is not among the peers this node links to.
    #[error("node {node} is not a known peer")]
    UnknownPeer {
        /// The node.
        node: NodeId,
    },
    /// Too many requests outstanding on the session; try again later.
    #[error("too many peer requests outstanding")]
    Overloaded,
    /// The session (or the links) ended.
    #[error("peer session closed")]
    Closed,
}

impl ConnError for PeerError {
    fn io(op: IoOp, err: &std::io::Error) -> Self {
        Self::Io { op, kind: err.kind() }
    }

    fn connection_lost() -> Self {
        Self::ConnectionLost
    }

    fn hello_timeout() -> Self {
        Self::HelloTimeout
    }
}

impl PeerError {
    /// The reason to send in `Close` (and to count).
    #[must_use]
    pub const fn close_reason(&self) -> CloseReason {
        match self {
            Self::Frame(frame) => frame.close_reason(),
            Self::Io { .. }
            | Self::ConnectionLost
            | Self::Timeout
            | Self::NotConnected { .. }
            | Self::UnknownPeer { .. }
            | Self::Overloaded
            | Self::Closed => CloseReason::ConnectionLost,
            Self::HelloTimeout => CloseReason::HelloTimeout,
            Self::UnexpectedFrame { .. } => CloseReason::UnexpectedFrame,
            Self::UnsupportedVersion { .. } => CloseReason::UnsupportedVersion,
            Self::NotAuthenticated { .. } | Self::WrongPeer { .. } => CloseReason::IdentityMismatch,
            Self::ClosedByPeer { reason } => *reason,
        }
    }

    /// Whether the same request may succeed later or through another member (the connection
    /// or the peer's load), as opposed to a protocol or identity failure.
    #[must_use]
    pub const fn is_retryable(&self) -> bool {
        match self {
            Self::Io { .. }
            | Self::ConnectionLost
            | Self::HelloTimeout
            | Self::Timeout
            | Self::NotConnected { .. }
            | Self::Overloaded
            | Self::Closed
            | Self::ClosedByPeer { .. } => true,
            Self::Frame(_)
            | Self::UnexpectedFrame { .. }
            | Self::UnsupportedVersion { .. }
            | Self::NotAuthenticated { .. }
            | Self::WrongPeer { .. }
            | Self::UnknownPeer { .. } => false,
        }
    }

    /// Whether the connection is still usable for a last `Close` frame.
    pub(crate) const fn can_send_close(&self) -> bool {
        match self {
            Self::Io { .. } | Self::ConnectionLost | Self::ClosedByPeer { .. } | Self::Closed => {
                false
            }
            Self::Frame(_)
            | Self::HelloTimeout
            | Self::UnexpectedFrame { .. }
            | Self::UnsupportedVersion { .. }
            | Self::NotAuthenticated { .. }
            | Self::WrongPeer { .. }
            | Self::Timeout
            | Self::NotConnected { .. }
            | Self::UnknownPeer { .. }
            | Self::Overloaded => true,
        }
    }
}
