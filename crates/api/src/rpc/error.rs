//! JSON-RPC error objects, and the mapping of refusals to the messages geth answers (wallets
//! and libraries match on these texts, so they follow geth's `core` and `txpool` errors).

use mempulse_primitives::{DropReason, RejectReason};
use serde_json::{Value, json};

use crate::{ApiError, ErrorCode, Refusal, ServiceError, Unavailable};

/// Invalid JSON was received.
pub(crate) const PARSE_ERROR: i64 = -32700;
/// The JSON is not a valid request object.
pub(crate) const INVALID_REQUEST: i64 = -32600;
/// The method does not exist.
pub(crate) const METHOD_NOT_FOUND: i64 = -32601;
/// Invalid method parameters.
pub(crate) const INVALID_PARAMS: i64 = -32602;
/// Internal error.
pub(crate) const INTERNAL_ERROR: i64 = -32603;
/// Geth's generic server error: every transaction refusal.
pub(crate) const SERVER_ERROR: i64 = -32000;
/// EIP-1474 "resource unavailable": fenced, no leader, overloaded.
pub(crate) const RESOURCE_UNAVAILABLE: i64 = -32002;
/// EIP-1474 "limit exceeded": rate limits and oversized answers.
pub(crate) const LIMIT_EXCEEDED: i64 = -32005;

/// A JSON-RPC error object.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RpcError {
    pub(crate) code: i64,
    pub(crate) message: String,
    pub(crate) data: Option<Value>,
    /// Whether a single (non-batch) call with this error is answered with HTTP 503.
    pub(crate) unavailable: bool,
}

impl RpcError {
    pub(crate) fn new(code: i64, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), data: None, unavailable: false }
    }

    pub(crate) fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(INVALID_REQUEST, message)
    }

    pub(crate) fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(INVALID_PARAMS, message)
    }

    pub(crate) fn to_json(&self) -> Value {
        let mut obj = json!({ "code": self.code, "message": self.message });
        if let (Some(data), Value::Object(map)) = (&self.data, &mut obj) {
            map.insert("data".to_owned(), data.clone());
        }
        obj
    }

    /// A refused transaction, with geth's message and the stable reason in `data`.
    pub(crate) fn refusal(refusal: Refusal) -> Self {
        let (code, message) = geth_message(refusal);
        Self {
            code,
            message: message.to_owned(),
            data: Some(json!({ "reason": refusal.as_str() })),
            unavailable: false,
        }
    }
}

impl From<ApiError> for RpcError {
    fn from(err: ApiError) -> Self {
        let code = match err.code {
            ErrorCode::SelfFenced
            | ErrorCode::Unavailable
            | ErrorCode::Timeout
            | ErrorCode::NotReady
            | ErrorCode::TooManyStreams => RESOURCE_UNAVAILABLE,
            ErrorCode::TooManyItems | ErrorCode::PayloadTooLarge => LIMIT_EXCEEDED,
            ErrorCode::Internal => INTERNAL_ERROR,
            ErrorCode::InvalidJson
            | ErrorCode::InvalidBody
            | ErrorCode::UnsupportedMediaType
            | ErrorCode::InvalidHex
            | ErrorCode::InvalidHash
            | ErrorCode::InvalidCursor
            | ErrorCode::InvalidLimit
            | ErrorCode::UnknownKind
            | ErrorCode::InvalidQuery
            | ErrorCode::InvalidConsistency
            | ErrorCode::NotFound
            | ErrorCode::RouteNotFound
            | ErrorCode::MethodNotAllowed
            | ErrorCode::RequestTimeout
            | ErrorCode::Purged
            | ErrorCode::Conflict
            | ErrorCode::InvalidTx => SERVER_ERROR,
        };
        let unavailable = code == RESOURCE_UNAVAILABLE;
        Self {
            code,
            message: err.message,
            data: Some(json!({ "code": err.code.as_str() })),
            unavailable,
        }
    }
}

impl From<ServiceError> for RpcError {
    fn from(err: ServiceError) -> Self {
        ApiError::from(err).into()
    }
}

/// The code and message geth answers for the same refusal.
pub(crate) const fn geth_message(refusal: Refusal) -> (i64, &'static str) {
    match refusal {
        Refusal::Rejected(reason) => (SERVER_ERROR, reject_message(reason)),
        Refusal::Dropped(reason) => drop_message(reason),
        Refusal::UnsupportedType => (SERVER_ERROR, "transaction type not supported"),
        Refusal::Malformed => (SERVER_ERROR, "rlp: invalid transaction encoding"),
    }
}

const fn reject_message(reason: RejectReason) -> &'static str {
    match reason {
        RejectReason::Duplicate => "already known",
        // A transaction already in a block has a nonce below the sender's: geth says so.
        RejectReason::AlreadyCommitted | RejectReason::NonceTooLow => "nonce too low",
        RejectReason::NonceGapTooLarge => "nonce too high",
        RejectReason::GasLimitTooHigh => "exceeds block gas limit",
        RejectReason::TxTooLarge => "oversized data",
        RejectReason::FeeTooLow => "transaction underpriced",
        RejectReason::SenderSlotsFull => "account limit exceeded",
        RejectReason::PoolFull => "txpool is full",
        // Another transaction holds the sender and nonce, as for an underpriced replacement.
        RejectReason::ReplacementUnderpriced | RejectReason::ReorgConflict => {
            "replacement transaction underpriced"
        }
        RejectReason::InvalidSignature => "invalid sender",
        RejectReason::WrongChainId => "invalid chain id for signer",
        RejectReason::IntrinsicGasTooLow => "intrinsic gas too low",
        RejectReason::FeeFieldsInconsistent => {
            "max priority fee per gas higher than max fee per gas"
        }
        RejectReason::HighS => "invalid transaction v, r, s values",
        _ => "transaction rejected",
    }
}

const fn drop_message(reason: DropReason) -> (i64, &'static str) {
    match reason {
        DropReason::QueueFull => (SERVER_ERROR, "txpool is full"),
        DropReason::Oversize => (SERVER_ERROR, "oversized data"),
        DropReason::DecodeFailed => (SERVER_ERROR, "rlp: invalid transaction encoding"),
        DropReason::Duplicate => (SERVER_ERROR, "already known"),
        DropReason::Throttled => (LIMIT_EXCEEDED, "request rate limit exceeded"),
        DropReason::ShuttingDown => (RESOURCE_UNAVAILABLE, "server is shutting down"),
        _ => (SERVER_ERROR, "transaction dropped"),
    }
}

impl From<Unavailable> for RpcError {
    fn from(why: Unavailable) -> Self {
        ServiceError::Unavailable(why).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_a_specific_message() {
        for &reason in RejectReason::ALL {
            let (code, message) = geth_message(Refusal::Rejected(reason));
            assert_eq!(code, SERVER_ERROR);
            assert_ne!(message, "transaction rejected", "{reason}");
        }
        for &reason in DropReason::ALL {
            assert_ne!(geth_message(Refusal::Dropped(reason)).1, "transaction dropped", "{reason}");
        }
    }

    #[test]
    fn wallet_texts_match_geth() {
        let msg = |r| geth_message(Refusal::Rejected(r)).1;
        assert_eq!(msg(RejectReason::NonceTooLow), "nonce too low");
        assert_eq!(
            msg(RejectReason::ReplacementUnderpriced),
            "replacement transaction underpriced"
        );
        assert_eq!(msg(RejectReason::Duplicate), "already known");
        assert_eq!(msg(RejectReason::InvalidSignature), "invalid sender");
        assert_eq!(msg(RejectReason::IntrinsicGasTooLow), "intrinsic gas too low");
        assert!(msg(RejectReason::WrongChainId).starts_with("invalid chain id"));
        assert_eq!(geth_message(Refusal::UnsupportedType).1, "transaction type not supported");
        assert_eq!(msg(RejectReason::TxTooLarge), "oversized data");
        assert_eq!(msg(RejectReason::PoolFull), "txpool is full");
    }
}
