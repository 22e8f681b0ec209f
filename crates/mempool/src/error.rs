//! Errors of the mempool crate.
//!
//! Rejected transactions are not errors: they are [`mempulse_primitives::RejectReason`] facts.
//! An [`Error`] means a whole command or snapshot was malformed; the state is left unchanged.

use mempulse_primitives::Height;

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// A command, configuration or snapshot the state machine refuses. Every variant is
/// deterministic: the same input fails the same way on every replica.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration field has an unusable value.
    #[error("invalid mempool config: {field} must be positive")]
    InvalidConfig {
        /// The offending field.
        field: ConfigField,
    },
    /// A commit's height is not above the last committed height.
    #[error("commit height {got} is not above the current height {current}")]
    HeightNotAscending {
        /// Last committed height.
        current: Height,
        /// Height in the command.
        got: Height,
    },
    /// A reorg names heights that are not above its fork point and at most the current height,
    /// or names one height twice.
    #[error(
        "reorg to fork height {fork_height} orphans invalid height {height} (current {current})"
    )]
    InvalidReorg {
        /// Fork point in the command.
        fork_height: Height,
        /// The offending orphaned height (the fork height itself when it is not below current).
        height: Height,
        /// Last committed height.
        current: Height,
    },
    /// A snapshot did not decode.
    #[error("corrupt mempool snapshot at byte {offset}: {kind}")]
    Snapshot {
        /// Byte offset where decoding failed.
        offset: u64,
        /// What was wrong.
        kind: SnapshotErrorKind,
    },
}

impl Error {
    /// Whether retrying the same input can succeed. Never: every error here is a property of
    /// the input, so the caller must fix the command, configuration or snapshot.
    #[must_use]
    pub const fn is_retryable(&self) -> bool {
        match self {
            Self::InvalidConfig { .. }
            | Self::HeightNotAscending { .. }
            | Self::InvalidReorg { .. }
            | Self::Snapshot { .. } => false,
        }
    }
}

/// A configuration field, for [`Error::InvalidConfig`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum ConfigField {
    /// `max-txs`.
    MaxTxs,
    /// `max-pool-bytes`.
    MaxPoolBytes,
    /// `max-tx-bytes`.
    MaxTxBytes,
    /// `max-txs-per-sender`.
    MaxTxsPerSender,
    /// `max-block-gas`.
    MaxBlockGas,
}

impl ConfigField {
    /// The field's name in the configuration file.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::MaxTxs => "max-txs",
            Self::MaxPoolBytes => "max-pool-bytes",
            Self::MaxTxBytes => "max-tx-bytes",
            Self::MaxTxsPerSender => "max-txs-per-sender",
            Self::MaxBlockGas => "max-block-gas",
        }
    }
}

impl core::fmt::Display for ConfigField {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What was wrong with a snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotErrorKind {
    /// The magic bytes are not `MPMP`.
    #[error("bad magic")]
    BadMagic,
    /// The format version is not one this build reads.
    #[error("unsupported version {0}")]
    UnsupportedVersion(u16),
    /// The bytes ended inside a value.
    #[error("truncated")]
    Truncated,
    /// Bytes remain after the last value.
    #[error("trailing bytes")]
    TrailingBytes,
    /// An enum code is unknown.
    #[error("unknown code {0}")]
    UnknownCode(u8),
    /// A pooled transaction did not decode (offsets inside are relative to its start).
    #[error("invalid transaction: {0}")]
    InvalidTx(#[source] mempulse_primitives::DecodeError),
    /// The embedded configuration is invalid.
    #[error("invalid config")]
    InvalidConfig,
    /// The decoded values break a pool invariant (duplicate hash, unsorted keys, counts above
    /// the configured caps, a transaction below its sender's nonce).
    #[error("inconsistent state")]
    Inconsistent,
}
