//! Errors of the node tx streams.

use mempulse_primitives::NodeId;

use super::{
    frame::{CloseReason, FrameError},
    framing::ConnError,
};

/// Which IO operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IoOp {
    /// Opening the connection (the caller's connector).
    Connect,
    /// Reading.
    Read,
    /// Writing or flushing.
    Write,
}

/// Why a stream ended other than by an orderly close. Each maps to the [`CloseReason`] sent to
/// the other side ([`StreamError::close_reason`]); the node keeps running either way.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// The other side sent bytes that are not a valid frame.
    #[error("bad stream frame")]
    Frame(#[from] FrameError),
    /// The connection failed.
    #[error("stream {op:?} failed ({kind:?})")]
    Io {
        /// The operation.
        op: IoOp,
        /// The operating system's error kind.
        kind: std::io::ErrorKind,
    },
    /// The connection ended without a `Close` frame.
    #[error("stream connection lost")]
    ConnectionLost,
    /// No `Hello` (server side) or first credit (client side) in time.
    #[error("stream handshake timed out")]
    HelloTimeout,
    /// Closing did not finish in time.
    #[error("stream close timed out")]
    CloseTimeout,
    /// A frame of a kind not allowed at that point.
    #[error("unexpected {kind} frame")]
    UnexpectedFrame {
        /// The frame's kind.
        kind: &'static str,
    },
    /// `Hello` carried a protocol version this side does not speak.
    #[error("unsupported stream protocol version {version}")]
    UnsupportedVersion {
        /// The version received.
        version: u16,
    },
    /// `Hello` named a source other than the authenticated peer.
    #[error("hello from {claimed} on a connection authenticated as {authenticated}")]
    IdentityMismatch {
        /// The source in `Hello`.
        claimed: NodeId,
        /// The peer the transport authenticated.
        authenticated: NodeId,
    },
    /// The connection's credentials do not prove the node `Hello` named (a certificate not
    /// naming `node-<claimed>`).
    #[error("hello from {claimed}, which the connection's credentials do not prove")]
    NotAuthenticated {
        /// The source in `Hello`.
        claimed: NodeId,
    },
    /// The client sent more transactions than it was granted.
    #[error("{sent} transactions sent with {granted} credits")]
    CreditExceeded {
        /// Transactions in the offending frame.
        sent: u64,
        /// Credits the client held.
        granted: u64,
    },
    /// The other side closed the stream with this reason.
    #[error("stream closed by peer: {reason}")]
    ClosedByPeer {
        /// Its reason.
        reason: CloseReason,
    },
}

impl ConnError for StreamError {
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

impl StreamError {
    /// The reason to send in `Close` (and to count).
    #[must_use]
    pub const fn close_reason(&self) -> CloseReason {
        match self {
            Self::Frame(frame) => frame.close_reason(),
            Self::Io { .. } | Self::ConnectionLost | Self::CloseTimeout => {
                CloseReason::ConnectionLost
            }
            Self::HelloTimeout => CloseReason::HelloTimeout,
            Self::UnexpectedFrame { .. } => CloseReason::UnexpectedFrame,
            Self::UnsupportedVersion { .. } => CloseReason::UnsupportedVersion,
            Self::IdentityMismatch { .. } | Self::NotAuthenticated { .. } => {
                CloseReason::IdentityMismatch
            }
            Self::CreditExceeded { .. } => CloseReason::CreditExceeded,
            Self::ClosedByPeer { reason } => *reason,
        }
    }

    /// Whether the connection is still usable for a last `Close` frame.
    pub(crate) const fn can_send_close(&self) -> bool {
        match self {
            Self::Io { .. } | Self::ConnectionLost | Self::ClosedByPeer { .. } => false,
            Self::Frame(_)
            | Self::HelloTimeout
            | Self::CloseTimeout
            | Self::UnexpectedFrame { .. }
            | Self::UnsupportedVersion { .. }
            | Self::IdentityMismatch { .. }
            | Self::NotAuthenticated { .. }
            | Self::CreditExceeded { .. } => true,
        }
    }
}

/// Why [`crate::TxStreamClient::send`] or [`crate::TxStreamClient::try_send`] refused a
/// transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The buffer is full (only `try_send`; `send` waits).
    #[error("stream buffer full")]
    Full,
    /// The stream has ended.
    #[error("stream closed")]
    Closed,
    /// The transaction cannot fit one frame.
    #[error("transaction of {len} bytes exceeds the {max}-byte frame room")]
    TooLarge {
        /// Its length.
        len: u64,
        /// The most a frame can carry.
        max: u64,
    },
}
