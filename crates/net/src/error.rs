//! Typed outcomes of decoding and checking, and the errors of the worker pool and of ingest.
//!
//! A transaction that fails is not an error of this crate but a fact for the log: [`TxError`]
//! says which stable reason to record ([`TxError::verdict`]) and carries typed context for logs.
//! Every failure kind has a stable numeric code and name that never change meaning.

use mempulse_primitives::{DropReason, EventKind, Lane, RejectReason, TxHash};

/// Result of this crate's fallible operations.
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// Why raw bytes did not decode as one canonical signed transaction. No hash is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeFailure {
    /// No bytes at all.
    #[error("empty input")]
    Empty,
    /// More bytes than the configured limit; nothing was decoded.
    #[error("{len} bytes exceed the {max}-byte transaction limit")]
    Oversize {
        /// Bytes received.
        len: u64,
        /// The limit.
        max: u32,
    },
    /// A type byte this decoder does not accept (EIP-2718 types 0 to 4 are supported).
    #[error("unsupported transaction type {type_byte:#04x}")]
    UnsupportedType {
        /// The first byte of the envelope.
        type_byte: u8,
    },
    /// The RLP structure is malformed.
    #[error("malformed rlp: {0}")]
    Rlp(RlpFailure),
    /// Bytes left over after one complete transaction.
    #[error("{extra} trailing bytes after the transaction")]
    TrailingBytes {
        /// How many.
        extra: u64,
    },
    /// The bytes decode, but do not re-encode to themselves, so their hash is ambiguous.
    #[error("non-canonical encoding")]
    NonCanonical,
    /// The decoder itself failed (a bug in it, caught so one input cannot stop the pool).
    #[error("internal decoder failure")]
    Internal,
}

impl DecodeFailure {
    /// Which fact to record: an oversize input is `Oversize`, anything else `DecodeFailed`.
    #[must_use]
    pub const fn verdict(&self) -> Verdict {
        match self {
            Self::Oversize { .. } => Verdict::Drop(DropReason::Oversize),
            Self::Empty
            | Self::UnsupportedType { .. }
            | Self::Rlp(_)
            | Self::TrailingBytes { .. }
            | Self::NonCanonical
            | Self::Internal => Verdict::Drop(DropReason::DecodeFailed),
        }
    }
}

/// Which RLP rule the input broke (mirrors `alloy_rlp::Error` without its free text).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RlpFailure {
    /// An integer does not fit its field.
    #[error("integer overflow")]
    Overflow,
    /// An integer has a leading zero byte.
    #[error("leading zero")]
    LeadingZero,
    /// The input ends inside an item.
    #[error("input too short")]
    InputTooShort,
    /// A single byte below 0x80 was wrapped in a string header.
    #[error("non-canonical single byte")]
    NonCanonicalSingleByte,
    /// A length was encoded in the long form where the short one fits.
    #[error("non-canonical size")]
    NonCanonicalSize,
    /// A fixed-size item had the wrong length.
    #[error("unexpected length")]
    UnexpectedLength,
    /// A string where a list was expected.
    #[error("unexpected string")]
    UnexpectedString,
    /// A list where a string was expected.
    #[error("unexpected list")]
    UnexpectedList,
    /// A list's header length disagrees with its items.
    #[error("list length mismatch")]
    ListLengthMismatch,
    /// A value outside its field's domain (for example a legacy `v` that is neither 27/28 nor an
    /// EIP-155 value).
    #[error("invalid value")]
    InvalidValue,
}

impl From<alloy_rlp::Error> for RlpFailure {
    fn from(err: alloy_rlp::Error) -> Self {
        match err {
            alloy_rlp::Error::Overflow => Self::Overflow,
            alloy_rlp::Error::LeadingZero => Self::LeadingZero,
            alloy_rlp::Error::InputTooShort => Self::InputTooShort,
            alloy_rlp::Error::NonCanonicalSingleByte => Self::NonCanonicalSingleByte,
            alloy_rlp::Error::NonCanonicalSize => Self::NonCanonicalSize,
            alloy_rlp::Error::UnexpectedLength => Self::UnexpectedLength,
            alloy_rlp::Error::UnexpectedString => Self::UnexpectedString,
            alloy_rlp::Error::UnexpectedList => Self::UnexpectedList,
            alloy_rlp::Error::ListLengthMismatch { .. } => Self::ListLengthMismatch,
            alloy_rlp::Error::Custom(_) => Self::InvalidValue,
        }
    }
}

/// A stateless rule a decoded transaction broke. Its hash is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckFailure {
    /// Replay-protected for another chain, or not replay-protected while that is refused.
    #[error("chain id {got:?} where {expected} is required")]
    WrongChainId {
        /// The node's chain id.
        expected: u64,
        /// The transaction's, `None` for a pre-EIP-155 legacy transaction.
        got: Option<u64>,
    },
    /// `max_priority_fee_per_gas` above `max_fee_per_gas`.
    #[error("priority fee {max_priority_fee_per_gas} above max fee {max_fee_per_gas}")]
    FeeFieldsInconsistent {
        /// Max fee per gas.
        max_fee_per_gas: u128,
        /// Max priority fee per gas.
        max_priority_fee_per_gas: u128,
    },
    /// Gas limit above the configured maximum.
    #[error("gas limit {gas_limit} above the maximum {max}")]
    GasLimitTooHigh {
        /// The transaction's gas limit.
        gas_limit: u64,
        /// The limit.
        max: u64,
    },
    /// Gas limit below what the transaction costs before execution (see [`crate::gas`]).
    #[error("gas limit {gas_limit} below the intrinsic gas {intrinsic}")]
    IntrinsicGasTooLow {
        /// The transaction's gas limit.
        gas_limit: u64,
        /// Its intrinsic gas (including the EIP-7623 floor when enabled).
        intrinsic: u64,
    },
    /// Contract-creation input above the EIP-3860 limit.
    #[error("initcode of {len} bytes above the {max}-byte limit")]
    InitcodeTooLarge {
        /// Input length.
        len: u64,
        /// The limit.
        max: u32,
    },
    /// An EIP-4844 transaction with no blobs or more than allowed.
    #[error("{count} blobs where 1 to {max} are allowed")]
    BlobCount {
        /// Blob hashes carried.
        count: u64,
        /// The limit.
        max: u32,
    },
    /// A blob versioned hash whose version byte is not 0x01 (KZG).
    #[error("blob hash {index} has version {version:#04x}")]
    BlobHashVersion {
        /// Position in the list.
        index: u32,
        /// The version byte found.
        version: u8,
    },
    /// An EIP-7702 transaction with an empty authorization list.
    #[error("empty authorization list")]
    EmptyAuthorizationList,
    /// Signature `s` in the upper half of the curve order (EIP-2).
    #[error("signature s above secp256k1n/2")]
    HighS,
    /// The signature does not recover to a public key.
    #[error("invalid signature")]
    InvalidSignature,
}

impl CheckFailure {
    /// Which fact to record. Structural rules of a transaction type that the primitives reasons
    /// do not name (blob list, authorization list) count as a failed decode; the EIP-3860 initcode
    /// limit counts as too large.
    #[must_use]
    pub const fn verdict(&self) -> Verdict {
        match self {
            Self::WrongChainId { .. } => Verdict::Reject(RejectReason::WrongChainId),
            Self::FeeFieldsInconsistent { .. } => {
                Verdict::Reject(RejectReason::FeeFieldsInconsistent)
            }
            Self::GasLimitTooHigh { .. } => Verdict::Reject(RejectReason::GasLimitTooHigh),
            Self::IntrinsicGasTooLow { .. } => Verdict::Reject(RejectReason::IntrinsicGasTooLow),
            Self::InitcodeTooLarge { .. } => Verdict::Reject(RejectReason::TxTooLarge),
            Self::HighS => Verdict::Reject(RejectReason::HighS),
            Self::InvalidSignature => Verdict::Reject(RejectReason::InvalidSignature),
            Self::BlobCount { .. }
            | Self::BlobHashVersion { .. }
            | Self::EmptyAuthorizationList => Verdict::Drop(DropReason::DecodeFailed),
        }
    }
}

/// What to record for a failed transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Dropped at the lane: record `TxDropped { reason }`.
    Drop(DropReason),
    /// Rejected: record `TxRejected { reason }`.
    Reject(RejectReason),
}

/// Why raw bytes did not become a [`mempulse_primitives::Tx`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TxError {
    /// The bytes are not one canonical signed transaction.
    #[error("undecodable transaction")]
    Decode(#[source] DecodeFailure),
    /// The transaction decoded (so it has a hash) but broke a stateless rule.
    #[error("invalid transaction {hash}")]
    Invalid {
        /// Its hash.
        hash: TxHash,
        /// The rule.
        #[source]
        check: CheckFailure,
    },
}

impl TxError {
    /// The transaction hash, when decoding got far enough to compute it.
    #[must_use]
    pub const fn hash(&self) -> Option<TxHash> {
        match self {
            Self::Decode(_) => None,
            Self::Invalid { hash, .. } => Some(*hash),
        }
    }

    /// Which fact to record (see [`DecodeFailure::verdict`] and [`CheckFailure::verdict`]).
    #[must_use]
    pub const fn verdict(&self) -> Verdict {
        match self {
            Self::Decode(failure) => failure.verdict(),
            Self::Invalid { check, .. } => check.verdict(),
        }
    }

    /// Stable code of the precise failure, for logs and tests (the verdict is what is stored).
    /// Decode failures are 1xx, RLP failures 2xx, check failures 3xx; codes are never reused.
    #[must_use]
    pub const fn code(&self) -> u16 {
        match self {
            Self::Decode(failure) => match failure {
                DecodeFailure::Empty => 101,
                DecodeFailure::Oversize { .. } => 102,
                DecodeFailure::UnsupportedType { .. } => 103,
                DecodeFailure::TrailingBytes { .. } => 104,
                DecodeFailure::NonCanonical => 105,
                DecodeFailure::Internal => 106,
                DecodeFailure::Rlp(rlp) => match rlp {
                    RlpFailure::Overflow => 201,
                    RlpFailure::LeadingZero => 202,
                    RlpFailure::InputTooShort => 203,
                    RlpFailure::NonCanonicalSingleByte => 204,
                    RlpFailure::NonCanonicalSize => 205,
                    RlpFailure::UnexpectedLength => 206,
                    RlpFailure::UnexpectedString => 207,
                    RlpFailure::UnexpectedList => 208,
                    RlpFailure::ListLengthMismatch => 209,
                    RlpFailure::InvalidValue => 210,
                },
            },
            Self::Invalid { check, .. } => match check {
                CheckFailure::WrongChainId { .. } => 301,
                CheckFailure::FeeFieldsInconsistent { .. } => 302,
                CheckFailure::GasLimitTooHigh { .. } => 303,
                CheckFailure::IntrinsicGasTooLow { .. } => 304,
                CheckFailure::InitcodeTooLarge { .. } => 305,
                CheckFailure::BlobCount { .. } => 306,
                CheckFailure::BlobHashVersion { .. } => 307,
                CheckFailure::EmptyAuthorizationList => 308,
                CheckFailure::HighS => 309,
                CheckFailure::InvalidSignature => 310,
            },
        }
    }

    /// Stable snake-case name of the precise failure (log field, test vectors).
    #[must_use]
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::Decode(failure) => match failure {
                DecodeFailure::Empty => "empty",
                DecodeFailure::Oversize { .. } => "oversize",
                DecodeFailure::UnsupportedType { .. } => "unsupported_type",
                DecodeFailure::TrailingBytes { .. } => "trailing_bytes",
                DecodeFailure::NonCanonical => "non_canonical",
                DecodeFailure::Internal => "internal",
                DecodeFailure::Rlp(rlp) => match rlp {
                    RlpFailure::Overflow => "rlp_overflow",
                    RlpFailure::LeadingZero => "rlp_leading_zero",
                    RlpFailure::InputTooShort => "rlp_input_too_short",
                    RlpFailure::NonCanonicalSingleByte => "rlp_non_canonical_single_byte",
                    RlpFailure::NonCanonicalSize => "rlp_non_canonical_size",
                    RlpFailure::UnexpectedLength => "rlp_unexpected_length",
                    RlpFailure::UnexpectedString => "rlp_unexpected_string",
                    RlpFailure::UnexpectedList => "rlp_unexpected_list",
                    RlpFailure::ListLengthMismatch => "rlp_list_length_mismatch",
                    RlpFailure::InvalidValue => "rlp_invalid_value",
                },
            },
            Self::Invalid { check, .. } => match check {
                CheckFailure::WrongChainId { .. } => "wrong_chain_id",
                CheckFailure::FeeFieldsInconsistent { .. } => "fee_fields_inconsistent",
                CheckFailure::GasLimitTooHigh { .. } => "gas_limit_too_high",
                CheckFailure::IntrinsicGasTooLow { .. } => "intrinsic_gas_too_low",
                CheckFailure::InitcodeTooLarge { .. } => "initcode_too_large",
                CheckFailure::BlobCount { .. } => "blob_count",
                CheckFailure::BlobHashVersion { .. } => "blob_hash_version",
                CheckFailure::EmptyAuthorizationList => "empty_authorization_list",
                CheckFailure::HighS => "high_s",
                CheckFailure::InvalidSignature => "invalid_signature",
            },
        }
    }

    /// The fact a lane records for this failure: `TxDropped` (with the queue depth the lane
    /// observed) or `TxRejected`.
    #[must_use]
    pub const fn to_event_kind(&self, lane: Lane, depth: QueueDepth) -> EventKind {
        match self.verdict() {
            Verdict::Drop(reason) => EventKind::TxDropped {
                hash: self.hash(),
                reason,
                lane,
                depth_current: depth.current,
                depth_peak: depth.peak,
            },
            Verdict::Reject(reason) => match self.hash() {
                Some(hash) => EventKind::TxRejected { hash, reason },
                // Every rejecting verdict comes from `Invalid`, which has a hash; answer with a
                // drop rather than inventing one should that ever change.
                None => EventKind::TxDropped {
                    hash: None,
                    reason: DropReason::DecodeFailed,
                    lane,
                    depth_current: depth.current,
                    depth_peak: depth.peak,
                },
            },
        }
    }
}

/// Depth of a bounded queue, as recorded in a `TxDropped` fact.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueDepth {
    /// Items in the queue now.
    pub current: u32,
    /// Most items the queue has held.
    pub peak: u32,
}

/// Errors of the worker pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The pool holds too many transactions to take this batch; nothing of it was queued.
    /// Retryable once the consumer drains results; the caller records a `TxDropped` fact.
    #[error("decode pool full: {requested} requested, {in_flight} of {capacity} in flight")]
    Full {
        /// Transactions in the refused batch.
        requested: u64,
        /// Transactions in flight at the refusal.
        in_flight: u64,
        /// The pool's capacity.
        capacity: u64,
    },
    /// The pool's consumer side is gone, so results could never be delivered.
    #[error("decode pool closed")]
    Closed,
    /// A worker thread could not be started.
    #[error("spawning decode worker {index} failed ({kind:?})")]
    Spawn {
        /// Which worker.
        index: u32,
        /// The operating system's error kind.
        kind: std::io::ErrorKind,
    },
    /// A bound of the ingest configuration is zero.
    #[error("ingest config field {field} must be at least 1")]
    Config {
        /// The field.
        field: &'static str,
    },
    /// The ingest pipeline was started outside a tokio runtime.
    #[error("ingest needs a tokio runtime")]
    NoRuntime,
    /// Shutdown did not drain the pipeline in time; what was left got `ShuttingDown` answers.
    #[error("ingest shutdown timed out with work in flight")]
    ShutdownTimedOut,
}

impl Error {
    /// Whether the same request may succeed later (the pool was only full).
    #[must_use]
    pub const fn is_retryable(&self) -> bool {
        match self {
            Self::Full { .. } => true,
            Self::Closed
            | Self::Spawn { .. }
            | Self::Config { .. }
            | Self::NoRuntime
            | Self::ShutdownTimedOut => false,
        }
    }
}
