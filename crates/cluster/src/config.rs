//! Configuration of the Raft log store. `Default` is the embedded default.

use std::path::PathBuf;

use mempulse_wal::{DEFAULT_SEGMENT_SIZE_BYTES, Preallocate};

/// Capacity of the queue of write requests (appends, votes, truncations, purges) waiting for the
/// store's writer thread. A full queue makes `append` wait: backpressure on the Raft core.
pub const WRITE_QUEUE_CAPACITY: usize = 1024;

/// Most entries one `limited_get_log_entries` call returns (bounds one replication read).
pub const READ_BATCH_ENTRIES_MAX: u64 = 4096;

/// Name of the WAL directory inside the store's directory.
pub const WAL_DIR: &str = "log";

/// Configuration of a [`LogStore`](crate::LogStore).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogStoreConfig {
    /// Directory of the store: the metadata file and the `log/` WAL directory (must persist).
    pub dir: PathBuf,
    /// WAL segment size; purging frees whole segments.
    pub segment_size_bytes: u64,
    /// How WAL segments get their space.
    pub preallocate: Preallocate,
}

impl Default for LogStoreConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("data/raft"),
            segment_size_bytes: DEFAULT_SEGMENT_SIZE_BYTES,
            preallocate: Preallocate::Fallocate,
        }
    }
}

impl LogStoreConfig {
    /// The embedded default with another directory.
    #[must_use]
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into(), ..Self::default() }
    }

    /// Sets the WAL segment size.
    #[must_use]
    pub const fn with_segment_size_bytes(mut self, bytes: u64) -> Self {
        self.segment_size_bytes = bytes;
        self
    }

    /// Sets the WAL preallocation strategy.
    #[must_use]
    pub const fn with_preallocate(mut self, preallocate: Preallocate) -> Self {
        self.preallocate = preallocate;
        self
    }
}

/// Most appends the writer thread groups under one `fdatasync` before it syncs anyway (bounds
/// the latency of the first append of a long burst).
pub const FLUSH_GROUP_MAX: usize = 64;
