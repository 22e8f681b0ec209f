//! The error type of the cluster crate and how a caller should react to each variant.

use std::{io, path::PathBuf};

use mempulse_primitives::{DecodeError, NodeId, Seq};

use crate::ClusterNode;

/// Result of a cluster operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error from the Raft log store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The underlying write-ahead log failed.
    #[error("raft log wal failed")]
    Wal(#[from] mempulse_wal::Error),
    /// Reading or writing the metadata file (vote, purge point, index anchor) failed.
    #[error("raft log metadata io failed: {op} {path}")]
    MetaIo {
        /// What the store was doing.
        op: MetaOp,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The metadata file is not a valid metadata file.
    #[error("raft log metadata {path} corrupt")]
    MetaCorrupt {
        /// The file.
        path: PathBuf,
        /// What does not decode.
        #[source]
        source: MetaCorruptKind,
    },
    /// A WAL record is not a valid log entry.
    #[error("raft log entry at wal seq {seq} does not decode")]
    EntryCorrupt {
        /// The WAL seq of the record.
        seq: Seq,
        /// Why it does not decode.
        #[source]
        source: DecodeError,
    },
    /// A WAL record holds an entry with another index than its position implies.
    #[error("raft log entry at wal seq {seq} has index {found}, expected {expected}")]
    IndexMismatch {
        /// The WAL seq of the record.
        seq: Seq,
        /// The index its position implies.
        expected: u64,
        /// The index it holds.
        found: u64,
    },
    /// An entry the log's bounds include is not in the WAL.
    #[error("raft log entry {index} is missing from the wal")]
    MissingEntry {
        /// The first missing index.
        index: u64,
    },
    /// The WAL ends before the point the metadata says the log continues from.
    #[error("raft log wal ends at seq {last_seq} but the log is anchored at seq {anchor_seq}")]
    WalBehindAnchor {
        /// Last seq in the WAL.
        last_seq: Seq,
        /// Seq the metadata anchors the next index at.
        anchor_seq: Seq,
    },
    /// An append does not continue the log (it would leave a hole or overwrite entries without
    /// a truncation): a caller bug, nothing was written.
    #[error("raft log append at index {found} does not follow the last index; expected {expected}")]
    NotContiguous {
        /// The index the next entry must have.
        expected: u64,
        /// The index it has.
        found: u64,
    },
    /// The store's writer thread has stopped (after a fatal error or a close).
    #[error("raft log writer stopped")]
    Closed,
    /// The writer thread could not be started.
    #[error("raft log writer thread could not be spawned")]
    Spawn(#[source] io::Error),
}

impl Error {
    /// True when the store can take no further writes and the node should stop (an fsync or
    /// write failed, or the bytes on disk are damaged).
    #[must_use]
    pub fn is_fatal(&self) -> bool {
        match self {
            Self::Wal(e) => e.is_fatal(),
            Self::MetaIo { .. }
            | Self::MetaCorrupt { .. }
            | Self::EntryCorrupt { .. }
            | Self::IndexMismatch { .. }
            | Self::MissingEntry { .. }
            | Self::WalBehindAnchor { .. }
            | Self::Closed
            | Self::Spawn(_) => true,
            Self::NotContiguous { .. } => false,
        }
    }

    /// The `io::Error` openraft's storage traits expect, with a kind that keeps the class of
    /// failure (damaged data, bad request, other).
    #[must_use]
    pub fn into_io(self) -> io::Error {
        io::Error::new(self.io_kind(), self)
    }

    /// The `io::ErrorKind` [`Error::into_io`] uses.
    #[must_use]
    pub fn io_kind(&self) -> io::ErrorKind {
        match self {
            Self::EntryCorrupt { .. }
            | Self::IndexMismatch { .. }
            | Self::MissingEntry { .. }
            | Self::MetaCorrupt { .. }
            | Self::WalBehindAnchor { .. } => io::ErrorKind::InvalidData,
            Self::Wal(e) if e.is_corruption() => io::ErrorKind::InvalidData,
            Self::NotContiguous { .. } => io::ErrorKind::InvalidInput,
            Self::Wal(_) | Self::MetaIo { .. } | Self::Closed | Self::Spawn(_) => {
                io::ErrorKind::Other
            }
        }
    }
}

/// The metadata IO operation that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MetaOp {
    /// Creating the directory or the temporary file.
    Create,
    /// Reading the file.
    Read,
    /// Writing the temporary file.
    Write,
    /// `fsync` of the temporary file.
    Sync,
    /// Renaming the temporary file over the metadata file.
    Rename,
    /// `fsync` of the directory.
    SyncDir,
    /// Removing a stale temporary file.
    Remove,
}

impl MetaOp {
    /// Stable lowercase code.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Read => "read",
            Self::Write => "write",
            Self::Sync => "sync",
            Self::Rename => "rename",
            Self::SyncDir => "sync-dir",
            Self::Remove => "remove",
        }
    }
}

impl std::fmt::Display for MetaOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What is wrong with a metadata file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetaCorruptKind {
    /// The file does not start with the metadata magic.
    #[error("bad magic")]
    BadMagic,
    /// The file names a format version this build cannot read.
    #[error("unsupported version {0}")]
    UnsupportedVersion(u8),
    /// The checksum does not match the contents.
    #[error("checksum mismatch")]
    Checksum,
    /// The contents do not decode.
    #[error("malformed contents")]
    Malformed(#[source] DecodeError),
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The Raft log store could not be opened.
    #[error("raft log store failed to open")]
    LogStore(#[from] Error),
    /// The newest snapshot could not be read or restored.
    #[error("snapshot failed to load")]
    Snapshot(#[from] crate::state_machine::SnapshotError),
    /// The mempool configuration is invalid.
    #[error("mempool config invalid")]
    Mempool(#[source] mempulse_mempool::Error),
    /// The Raft timings are inconsistent.
    #[error("raft config invalid")]
    RaftConfig(#[from] openraft::ConfigError),
    /// openraft refused to start (it could not read its initial state).
    #[error("raft failed to start")]
    Raft(#[from] openraft::errors::Fatal<crate::TypeConfig>),
    /// openraft refused to start a simulated node (feature `sim`).
    #[cfg(feature = "sim")]
    #[error("simulated raft failed to start")]
    SimRaft(#[from] openraft::errors::Fatal<crate::SimTypeConfig>),
    /// The batcher's entry size limit does not fit the log's segments.
    #[error("batch limit {tx_bytes_max} bytes exceeds the largest entry, {entry_bytes_max} bytes")]
    BatchTooLarge {
        /// The configured `tx_bytes_max`.
        tx_bytes_max: u64,
        /// Half a log segment: the largest entry allowed.
        entry_bytes_max: u64,
    },
    /// A blocking start-up task could not run.
    #[error("start-up task failed")]
    Task(#[source] tokio::task::JoinError),
}

/// Why a client request failed, and how to react ([`ClientError::is_retryable`],
/// [`ClientError::forward_to`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// This node is not the leader: send the request to the leader (when known). Nothing was
    /// written.
    #[error("not the leader; leader is {leader_id:?}")]
    ForwardToLeader {
        /// The current leader, when known.
        leader_id: Option<NodeId>,
        /// Its addresses, when known.
        leader: Option<ClusterNode>,
    },
    /// The write was appended, then discarded by a leader change before this node learned its
    /// fate: it may or may not commit. Retry only with a command that is safe to repeat (an
    /// `AddTxs` retried is a `duplicate` rejection, not a second admission).
    #[error("write outcome unknown after a leader change; leader is {leader_id:?}")]
    Indeterminate {
        /// The new leader, when known.
        leader_id: Option<NodeId>,
        /// Its addresses, when known.
        leader: Option<ClusterNode>,
    },
    /// The write queue is full. Nothing was written; retry later.
    #[error("write queue full ({capacity} writes)")]
    Overloaded {
        /// Capacity of the queue.
        capacity: usize,
    },
    /// The command alone is larger than one log entry may be. Nothing was written; split it.
    #[error("command of {bytes} bytes exceeds the entry limit of {max} bytes")]
    TooLarge {
        /// Estimated bytes of the command in an entry.
        bytes: u64,
        /// The limit (`BatchConfig::tx_bytes_max`).
        max: u64,
    },
    /// A linearizable read could not confirm leadership with a quorum.
    #[error("no quorum confirmed leadership")]
    NoQuorum,
    /// The node is stopping or stopped (after a shutdown or a fatal error).
    #[error("raft node stopped")]
    Stopped,
    /// A follower could not reach the leader to forward the request before its deadline.
    /// Nothing was delivered; retry.
    #[error("leader {leader_id:?} unreachable for forwarding")]
    LeaderUnreachable {
        /// The leader the follower tried last, when one was known.
        leader_id: Option<NodeId>,
    },
}

impl ClientError {
    /// Whether the same request may succeed later on this node or on the leader.
    #[must_use]
    pub const fn is_retryable(&self) -> bool {
        match self {
            Self::ForwardToLeader { .. }
            | Self::Overloaded { .. }
            | Self::NoQuorum
            | Self::LeaderUnreachable { .. } => true,
            Self::Indeterminate { .. } | Self::TooLarge { .. } | Self::Stopped => false,
        }
    }

    /// The leader to send the request to, when the error says to forward it.
    #[must_use]
    pub const fn forward_to(&self) -> Option<NodeId> {
        match self {
            Self::ForwardToLeader { leader_id, .. } => *leader_id,
            Self::Indeterminate { .. }
            | Self::Overloaded { .. }
            | Self::TooLarge { .. }
            | Self::NoQuorum
            | Self::Stopped
            | Self::LeaderUnreachable { .. } => None,
        }
    }

    pub(crate) fn forward(f: openraft::errors::ForwardToLeader<crate::TypeConfig>) -> Self {
        Self::ForwardToLeader { leader_id: f.leader_id, leader: f.leader_node }
    }
}
