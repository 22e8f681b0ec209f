//! The error type of the WAL and how a caller should react to each variant.

use std::{io, path::PathBuf};

use mempulse_primitives::Seq;

/// Result of a WAL operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error from the WAL.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An IO operation failed.
    #[error("wal io failed: {op} {path}")]
    Io {
        /// What the WAL was doing.
        op: IoOp,
        /// The file or directory it was doing it on.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Bytes on disk are not a valid log: the segment and byte offset say where.
    #[error("wal corrupt: {kind} in segment {segment} at offset {offset}")]
    Corrupt {
        /// File name of the segment.
        segment: String,
        /// Byte offset inside the segment where the damage starts.
        offset: u64,
        /// What is wrong.
        kind: CorruptKind,
    },
    /// A previous fsync or write failed; the log refuses every further write.
    #[error("wal poisoned by an earlier write or sync failure")]
    Poisoned,
    /// A record payload was empty (an empty frame cannot be told from preallocated zeros).
    #[error("wal record is empty")]
    EmptyRecord,
    /// A record payload is larger than one segment can hold.
    #[error("wal record of {len} bytes exceeds the maximum of {max}")]
    RecordTooLarge {
        /// Payload length.
        len: u64,
        /// Largest payload the configured segment size allows.
        max: u64,
    },
    /// The requested seq lies before the first record still in the log.
    #[error("wal seq {requested} was purged; the log starts at {first}")]
    Purged {
        /// The seq asked for.
        requested: Seq,
        /// The first seq still in the log.
        first: Seq,
    },
    /// `truncate_after` was asked to cut below the first record still in the log.
    #[error("wal cannot truncate after {seq}: the log starts at {first}")]
    TruncateBeforeFirst {
        /// The seq asked for.
        seq: Seq,
        /// The first seq still in the log.
        first: Seq,
    },
    /// The sequence number space is exhausted.
    #[error("wal seq overflow")]
    SeqOverflow,
    /// The configuration is invalid.
    #[error("wal config invalid: {0}")]
    Config(ConfigError),
    /// Another `Wal` (in this or another process) holds the directory's lock: one writer per log.
    #[error("wal directory {path} is locked by another writer")]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// The sequencer has shut down (or its thread ended) before the request completed.
    #[error("wal sequencer closed")]
    Closed,
}

impl Error {
    /// True when the log can take no further writes and the process should stop using it
    /// (design: an fsync error is never retried and then acknowledged).
    #[must_use]
    pub const fn is_fatal(&self) -> bool {
        matches!(self, Self::Io { .. } | Self::Corrupt { .. } | Self::Poisoned)
    }

    /// True when the bytes on disk are damaged.
    #[must_use]
    pub const fn is_corruption(&self) -> bool {
        matches!(self, Self::Corrupt { .. })
    }

    /// True when the request itself was bad (the log is unaffected and may be used further).
    #[must_use]
    pub const fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            Self::EmptyRecord
                | Self::RecordTooLarge { .. }
                | Self::Purged { .. }
                | Self::TruncateBeforeFirst { .. }
                | Self::SeqOverflow
                | Self::Config(_)
        )
    }

    pub(crate) fn io(op: IoOp, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io { op, path: path.into(), source }
    }

    pub(crate) fn corrupt(segment: &str, offset: u64, kind: CorruptKind) -> Self {
        Self::Corrupt { segment: segment.to_owned(), offset, kind }
    }
}

/// The IO operation that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IoOp {
    /// Creating a file or directory.
    Create,
    /// Opening a file.
    Open,
    /// Reading.
    Read,
    /// Writing.
    Write,
    /// `fdatasync` of a segment.
    Sync,
    /// `fsync` of the directory.
    SyncDir,
    /// Changing a file's length.
    SetLen,
    /// Preallocating a segment.
    Allocate,
    /// Listing the directory.
    List,
    /// Removing a file.
    Remove,
    /// Renaming a file.
    Rename,
}

impl IoOp {
    /// Stable lowercase code.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Open => "open",
            Self::Read => "read",
            Self::Write => "write",
            Self::Sync => "sync",
            Self::SyncDir => "sync-dir",
            Self::SetLen => "set-len",
            Self::Allocate => "allocate",
            Self::List => "list",
            Self::Remove => "remove",
            Self::Rename => "rename",
        }
    }
}

impl std::fmt::Display for IoOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What is wrong with damaged bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CorruptKind {
    /// The segment header is shorter than its fixed size.
    HeaderTruncated,
    /// The segment header does not start with the magic bytes.
    BadMagic,
    /// The segment header names a format version this build cannot read.
    UnsupportedVersion,
    /// The segment header checksum does not match.
    HeaderChecksum,
    /// The first seq in the header differs from the one in the file name.
    HeaderSeqMismatch,
    /// A frame checksum does not match (damage before the end of the log).
    FrameChecksum,
    /// A frame length is zero or larger than the segment allows.
    FrameLength,
    /// A frame runs past the end of its segment.
    FrameTruncated,
    /// A sealed segment ends before its last seq.
    MissingRecords,
    /// The active segment's frames stop here (unreadable or zeroed bytes), yet valid records
    /// of the log follow: damage inside the log, not a torn write at its end.
    RecordsAfterDamage,
}

impl CorruptKind {
    /// Stable lowercase code.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::HeaderTruncated => "header-truncated",
            Self::BadMagic => "bad-magic",
            Self::UnsupportedVersion => "unsupported-version",
            Self::HeaderChecksum => "header-checksum",
            Self::HeaderSeqMismatch => "header-seq-mismatch",
            Self::FrameChecksum => "frame-checksum",
            Self::FrameLength => "frame-length",
            Self::FrameTruncated => "frame-truncated",
            Self::MissingRecords => "missing-records",
            Self::RecordsAfterDamage => "records-after-damage",
        }
    }
}

impl std::fmt::Display for CorruptKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a [`WalConfig`](crate::WalConfig) or
/// [`SequencerConfig`](crate::SequencerConfig) was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The segment size is below the minimum or above the maximum.
    #[error("segment size {0} bytes is outside the allowed range")]
    SegmentSize(u64),
    /// The queue capacity is zero.
    #[error("queue capacity must be at least 1")]
    QueueCapacity,
    /// The group size limit is zero.
    #[error("max group bytes must be at least 1")]
    MaxGroupBytes,
    /// The first seq of a fresh log is 0 (which means "before every record").
    #[error("first seq must be at least 1")]
    FirstSeq,
}

/// Why [`SequencerHandle::try_submit`](crate::SequencerHandle::try_submit) refused a batch.
/// The batch was not appended; the caller records the drop.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SubmitError {
    /// The bounded queue is full.
    #[error("wal queue full: {depth} of {capacity}")]
    Full {
        /// Batches queued when the submit was refused.
        depth: usize,
        /// Queue capacity.
        capacity: usize,
    },
    /// The sequencer is shutting down or has stopped.
    #[error("wal sequencer closed")]
    Closed,
    /// The batch itself is invalid (an empty record, a record too large, or no records).
    #[error("wal batch invalid")]
    Invalid(#[source] Error),
}

impl SubmitError {
    /// Stable lowercase code, usable as a metric label for the drop reason.
    #[must_use]
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::Full { .. } => "queue-full",
            Self::Closed => "closed",
            Self::Invalid(_) => "invalid",
        }
    }
}
