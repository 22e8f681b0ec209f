//! The crate's error type.

use std::{io, path::PathBuf};

use mempulse_primitives::{DecodeError, RaftIndex, Seq};

/// Result of this crate's fallible operations.
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// The file operation that failed, for [`Error::Io`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IoOp {
    /// Creating the checkpoint directory.
    CreateDir,
    /// Listing the checkpoint directory.
    List,
    /// Opening or reading a checkpoint file.
    Read,
    /// Creating or writing the temporary checkpoint file.
    Write,
    /// Syncing a file or the directory.
    Sync,
    /// Renaming the temporary file into place.
    Rename,
    /// Removing a checkpoint beyond the retention count.
    Remove,
}

impl IoOp {
    /// Stable name of the operation.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::CreateDir => "create_dir",
            Self::List => "list",
            Self::Read => "read",
            Self::Write => "write",
            Self::Sync => "sync",
            Self::Rename => "rename",
            Self::Remove => "remove",
        }
    }
}

impl core::fmt::Display for IoOp {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a checkpoint file cannot be trusted. [`crate::CheckpointStore::load_newest_valid`] skips
/// such a file with a warning and tries the next older one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointDefect {
    /// Shorter than a header and a checksum.
    #[error("truncated: {len} bytes")]
    Truncated {
        /// File length.
        len: u64,
    },
    /// The first bytes are not the checkpoint magic.
    #[error("bad magic")]
    BadMagic,
    /// A format version this build cannot read.
    #[error("unsupported format version {found} (this build reads {supported})")]
    UnsupportedFormat {
        /// Version in the file.
        found: u16,
        /// Version this build reads.
        supported: u16,
    },
    /// Written under other derivation rules: resuming would not equal a replay from genesis.
    #[error("rule version {found} differs from this build's {current}")]
    RuleVersion {
        /// Version in the file.
        found: u16,
        /// This build's [`crate::RULE_VERSION`].
        current: u16,
    },
    /// Written by a build with another event schema version.
    #[error("schema version {found} differs from this build's {current}")]
    SchemaVersion {
        /// Version in the file.
        found: u8,
        /// This build's `SCHEMA_VERSION`.
        current: u8,
    },
    /// The declared body length does not match the file length.
    #[error("body length {declared} does not match the file ({actual} bytes of body)")]
    Length {
        /// Body length in the header.
        declared: u64,
        /// Body bytes present.
        actual: u64,
    },
    /// The CRC32C over header and body does not match.
    #[error("checksum mismatch")]
    Checksum,
    /// The file name's seq differs from the header's.
    #[error("file name says seq {named}, header says {header}")]
    NameMismatch {
        /// Seq in the file name.
        named: Seq,
        /// Seq in the header.
        header: Seq,
    },
    /// The body does not decode.
    #[error("body does not decode")]
    Body(#[source] DecodeError),
    /// The state decoded, but its digest differs from the one recorded in the header.
    #[error("state digest does not match the header")]
    DigestMismatch,
}

/// Why [`crate::Replayer::rebase`] refused a peer's state (nothing was changed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RebaseRefusal {
    /// The peer's state holds facts of an index it has not sealed: it is not the state through
    /// one complete index. Take the checkpoint after sealing its open index.
    #[error("the peer's state is open at index {open} (sealed through {sealed})")]
    PeerIndexOpen {
        /// The peer's last sealed index.
        sealed: RaftIndex,
        /// The index of its last replicated fact.
        open: RaftIndex,
    },
    /// This replayer has not sealed the peer's index yet: facts of that index may still
    /// arrive here and would be applied twice. Retry once it has.
    #[error("this replica has sealed through {local}, the peer's state is through {peer}")]
    LocalBehind {
        /// This replayer's last sealed index.
        local: RaftIndex,
        /// The index the peer's state is complete through.
        peer: RaftIndex,
    },
    /// This replayer no longer holds where the peer's index ends in its log (its digests of
    /// that index were dropped).
    #[error("this replica no longer holds a digest at or below index {index}")]
    NotHeld {
        /// The index the peer's state is complete through.
        index: RaftIndex,
    },
}

/// Errors of replay and of the checkpoint store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Events must be applied strictly in seq order without gaps.
    #[error("event seq {found} does not follow {expected}")]
    OutOfOrder {
        /// The seq the replayer expected next.
        expected: Seq,
        /// The seq it was given.
        found: Seq,
    },
    /// A record of the log does not decode as an event.
    #[error("record {seq} does not decode as an event")]
    Decode {
        /// The record's seq.
        seq: Seq,
        /// The decode error.
        #[source]
        source: DecodeError,
    },
    /// Reading the event log failed.
    #[error("reading the event log")]
    Wal(#[source] mempulse_wal::Error),
    /// The log no longer holds the records right after the starting point.
    #[error("the log starts at seq {first}, but replay needs seq {needed}")]
    Purged {
        /// First seq still in the log.
        first: Seq,
        /// The seq replay must start at.
        needed: Seq,
    },
    /// A checkpoint file that cannot be trusted (see [`CheckpointDefect`]).
    #[error("checkpoint {name}: {defect}")]
    Checkpoint {
        /// File name.
        name: String,
        /// What is wrong with it.
        #[source]
        defect: CheckpointDefect,
    },
    /// A peer's state cannot be installed over this replayer's (see [`RebaseRefusal`]).
    #[error("cannot install the peer's state")]
    Rebase(#[source] RebaseRefusal),
    /// A checkpoint file operation failed.
    #[error("checkpoint {op} of {path}")]
    Io {
        /// The operation.
        op: IoOp,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// Whether the error is in the input (a damaged or foreign log or checkpoint) rather than
    /// in the environment: retrying the same input gives the same error.
    #[must_use]
    pub const fn is_bad_input(&self) -> bool {
        match self {
            Self::OutOfOrder { .. }
            | Self::Decode { .. }
            | Self::Purged { .. }
            | Self::Checkpoint { .. } => true,
            Self::Wal(_) | Self::Io { .. } | Self::Rebase(_) => false,
        }
    }
}
