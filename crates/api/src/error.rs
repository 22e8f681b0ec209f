//! Errors: what a service reports ([`ServiceError`]) and what a client receives ([`ApiError`],
//! a JSON body `{"code", "message"}` with a status that says how to react).

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use mempulse_primitives::{FenceReason, Height, RaftIndex, Seq};
use serde::Serialize;

use crate::{FenceState, Refusal};

/// Why a service could not serve a request right now. Retryable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Unavailable {
    /// The cluster has no leader.
    #[error("the cluster has no leader")]
    NoLeader,
    /// A bounded queue on the way is full.
    #[error("the node is overloaded")]
    Overloaded,
    /// The node is shutting down.
    #[error("the node is shutting down")]
    ShuttingDown,
    /// The operation did not finish in time.
    #[error("the operation timed out")]
    Timeout,
    /// The leader could not confirm its leadership with a quorum (a linearizable read).
    #[error("the leader could not confirm its leadership with a quorum")]
    NoQuorum,
    /// The leader did not answer in time, or this node could not catch up with it (a
    /// linearizable read).
    #[error("the leader is unreachable")]
    LeaderUnreachable,
}

/// An error from a service behind a route.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// Temporarily unable to serve: 503, retry later.
    #[error("unavailable: {0}")]
    Unavailable(Unavailable),
    /// The requested log position was purged: 410.
    #[error("records before seq {first} were purged")]
    Purged {
        /// The first seq still in the log.
        first: Seq,
    },
    /// The state machine refused the command (height not ascending, invalid reorg): 409.
    #[error("the pool refused the command")]
    Conflict(#[source] mempulse_mempool::Error),
    /// An orphaned transaction of a reorg did not decode or check: 400.
    #[error("orphaned transaction {index} of height {height} is invalid: {}", refusal.as_str())]
    InvalidTx {
        /// Height of its orphaned block.
        height: Height,
        /// Its position in the block.
        index: u32,
        /// Why.
        refusal: Refusal,
    },
    /// The request asks for more work than its limit allows: 400.
    #[error("{} {requested} exceeds the limit of {max}", limit.as_str())]
    LimitExceeded {
        /// Which limit.
        limit: Limit,
        /// What the request would take.
        requested: u64,
        /// The limit.
        max: u64,
    },
    /// The requested seq lies past the last durable record: 404.
    #[error("seq {requested} is past the last durable seq {last}")]
    BeyondLog {
        /// The seq asked for.
        requested: Seq,
        /// The last durable seq.
        last: Seq,
    },
    /// Anything else: 500; the cause is logged, never returned.
    #[error("internal service error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ServiceError {
    /// An internal error from any error value.
    pub fn internal(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Internal(Box::new(err))
    }

    /// Whether the same request may succeed later.
    #[must_use]
    pub const fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// A per-request limit a service enforces (see [`ServiceError::LimitExceeded`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Limit {
    /// Events one offline replay may apply (`replay_events_max`).
    ReplayEvents,
    /// Digest points one offline replay may report (`replay_points_max`).
    ReplayPoints,
}

impl Limit {
    /// Stable name, as the message says it.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ReplayEvents => "events to replay",
            Self::ReplayPoints => "digest points",
        }
    }
}

/// Stable error codes of the HTTP API (the `code` field). Clients branch on these, never on
/// the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The body is not valid JSON.
    InvalidJson,
    /// The body is JSON of the wrong shape or with out-of-range values.
    InvalidBody,
    /// The `Content-Type` is not one the route reads.
    UnsupportedMediaType,
    /// The body exceeds the size limit.
    PayloadTooLarge,
    /// Text that should be `0x` hex is not.
    InvalidHex,
    /// A transaction hash is not 32 bytes of hex.
    InvalidHash,
    /// A log cursor (`after`, `Last-Event-ID`) is not a seq.
    InvalidCursor,
    /// A `limit` is not a positive integer within the maximum.
    InvalidLimit,
    /// A `kinds` filter names an unknown event kind.
    UnknownKind,
    /// The query string has an unknown parameter or a malformed one.
    InvalidQuery,
    /// A `consistency` is not `weak` or `linearizable`.
    InvalidConsistency,
    /// More items than the route accepts in one request.
    TooManyItems,
    /// The transaction, Raft index or seq is unknown (or not kept any more).
    NotFound,
    /// No route has this path.
    RouteNotFound,
    /// The route exists but not for this method.
    MethodNotAllowed,
    /// The requested log position was purged.
    Purged,
    /// The pool refused the command (height not ascending, invalid reorg).
    Conflict,
    /// A transaction inside the request does not decode or check.
    InvalidTx,
    /// The node fenced itself (design rule 6).
    SelfFenced,
    /// The node cannot serve right now (no leader, overloaded, shutting down).
    Unavailable,
    /// Too many live tails are open.
    TooManyStreams,
    /// The request did not finish in time.
    Timeout,
    /// The client stopped sending its request body before the request timeout.
    RequestTimeout,
    /// The node is not ready (no leader, or not caught up).
    NotReady,
    /// An internal error; the details are in the node's log.
    Internal,
}

impl ErrorCode {
    /// Stable name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidJson => "INVALID_JSON",
            Self::InvalidBody => "INVALID_BODY",
            Self::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            Self::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Self::InvalidHex => "INVALID_HEX",
            Self::InvalidHash => "INVALID_HASH",
            Self::InvalidCursor => "INVALID_CURSOR",
            Self::InvalidLimit => "INVALID_LIMIT",
            Self::UnknownKind => "UNKNOWN_KIND",
            Self::InvalidQuery => "INVALID_QUERY",
            Self::InvalidConsistency => "INVALID_CONSISTENCY",
            Self::TooManyItems => "TOO_MANY_ITEMS",
            Self::NotFound => "NOT_FOUND",
            Self::RouteNotFound => "ROUTE_NOT_FOUND",
            Self::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Self::Purged => "PURGED",
            Self::Conflict => "CONFLICT",
            Self::InvalidTx => "INVALID_TX",
            Self::SelfFenced => "SELF_FENCED",
            Self::Unavailable => "UNAVAILABLE",
            Self::TooManyStreams => "TOO_MANY_STREAMS",
            Self::Timeout => "TIMEOUT",
            Self::RequestTimeout => "REQUEST_TIMEOUT",
            Self::NotReady => "NOT_READY",
            Self::Internal => "INTERNAL",
        }
    }

    /// The HTTP status of the code.
    #[must_use]
    pub const fn status(self) -> StatusCode {
        match self {
            Self::InvalidJson
            | Self::InvalidBody
            | Self::InvalidHex
            | Self::InvalidHash
            | Self::InvalidCursor
            | Self::InvalidLimit
            | Self::UnknownKind
            | Self::InvalidQuery
            | Self::InvalidConsistency
            | Self::TooManyItems
            | Self::InvalidTx => StatusCode::BAD_REQUEST,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::NotFound | Self::RouteNotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::Purged => StatusCode::GONE,
            Self::Conflict => StatusCode::CONFLICT,
            Self::SelfFenced
            | Self::Unavailable
            | Self::TooManyStreams
            | Self::Timeout
            | Self::NotReady => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// An error answered to an HTTP client: `{"code": "...", "message": "..."}` with the code's
/// status. The message is for people; clients branch on the code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// The stable code.
    pub code: ErrorCode,
    /// Human-readable detail.
    pub message: String,
}

/// The JSON body of an error response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorBody {
    /// Stable error code (`INVALID_CURSOR`, `SELF_FENCED`, …).
    pub(crate) code: &'static str,
    /// Human-readable detail.
    pub(crate) message: String,
}

impl ApiError {
    /// An error with a code and a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }

    /// The 503 of a fenced node.
    #[must_use]
    pub fn fenced(reason: FenceReason, index: Option<RaftIndex>) -> Self {
        let message = match index {
            Some(index) => format!("node is self-fenced: {reason} (first divergent index {index})"),
            None => format!("node is self-fenced: {reason}"),
        };
        Self::new(ErrorCode::SelfFenced, message)
    }

    /// `Err` when `state` is fenced.
    ///
    /// # Errors
    /// The [`ErrorCode::SelfFenced`] error of a fenced node.
    pub fn check_fence(state: FenceState) -> Result<(), Self> {
        match state {
            FenceState::Serving => Ok(()),
            FenceState::Fenced { reason, index } => Err(Self::fenced(reason, index)),
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(err: ServiceError) -> Self {
        match err {
            ServiceError::Unavailable(why) => Self::new(ErrorCode::Unavailable, why.to_string()),
            ServiceError::Purged { first } => Self::new(
                ErrorCode::Purged,
                format!(
                    "records before seq {first} were purged; resume with after={}",
                    first.0.saturating_sub(1)
                ),
            ),
            ServiceError::Conflict(e) => Self::new(ErrorCode::Conflict, e.to_string()),
            e @ ServiceError::InvalidTx { .. } => Self::new(ErrorCode::InvalidTx, e.to_string()),
            e @ ServiceError::LimitExceeded { .. } => {
                Self::new(ErrorCode::TooManyItems, e.to_string())
            }
            e @ ServiceError::BeyondLog { .. } => Self::new(ErrorCode::NotFound, e.to_string()),
            ServiceError::Internal(source) => {
                tracing::error!(error = %source, "api service failed");
                Self::new(ErrorCode::Internal, "internal error")
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.code.status();
        if status.is_server_error() && self.code == ErrorCode::Internal {
            tracing::warn!(code = self.code.as_str(), "api request failed");
        }
        let mut response =
            (status, Json(ErrorBody { code: self.code.as_str(), message: self.message }))
                .into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}
