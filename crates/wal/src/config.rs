//! Configuration of the log and of its sequencer. `Default` is the embedded default.

use std::{path::PathBuf, time::Duration};

use mempulse_primitives::Seq;

use crate::error::{ConfigError, Error, Result};

/// Default segment file size: 64 MiB.
pub const DEFAULT_SEGMENT_SIZE_BYTES: u64 = 64 << 20;
/// Smallest segment size accepted (tests use small segments to force rolls).
pub const MIN_SEGMENT_SIZE_BYTES: u64 = 4 << 10;
/// Largest segment size accepted; frame offsets inside a segment stay far from `u32` lengths.
pub const MAX_SEGMENT_SIZE_BYTES: u64 = 1 << 32;
/// Capacity of the sequencer's submission queue, in batches.
pub const SEQUENCER_QUEUE_CAPACITY: usize = 1024;
/// Capacity of the queue between the sequencer's writer and sync threads, in groups.
pub const SYNC_QUEUE_CAPACITY: usize = 64;
/// Default upper bound on the payload bytes the sequencer frames into one write.
pub const DEFAULT_MAX_GROUP_BYTES: usize = 4 << 20;
/// Size of one read issued by scans and recovery.
pub const READ_CHUNK_BYTES: usize = 1 << 20;
/// The sparse seek index keeps one entry every this many records of a segment.
pub const INDEX_INTERVAL_RECORDS: u64 = 256;
/// Default [`WalConfig::writeback_bytes`]: 8 MiB, an eighth of a default segment.
pub const DEFAULT_WRITEBACK_BYTES: u64 = 8 << 20;
/// Default [`WalConfig::write_padding_bytes`]: 256 KiB.
pub const DEFAULT_WRITE_PADDING_BYTES: u64 = 256 << 10;

/// How many purged segments are kept for reuse under [`Preallocate::Recycle`].
pub const RECYCLE_POOL_MAX: usize = 4;

/// When appended records are forced to stable storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SyncPolicy {
    /// One `fdatasync` per group, before the group is acknowledged.
    Always,
    /// `fdatasync` at most this often. A group is acknowledged once written, so a power loss
    /// may lose up to one interval of acknowledged records (a process crash loses none); it is
    /// published to readers and cursors only by the sync that covers it, so no consumer ever
    /// sees a record a power loss could take. A direct [`crate::Wal`] syncs (and publishes)
    /// when an append finds the interval passed, or on [`crate::Wal::sync`]; the sequencer
    /// also syncs when the interval passes with nothing more to write.
    Interval(Duration),
    /// Never sync (except when a segment is sealed); the OS decides.
    Never,
}

/// How a new segment file gets its space before records are written into it.
///
/// The default is [`Preallocate::Auto`]: zero-fill when every group is synced, `fallocate`
/// otherwise. Measured with `mempulse-bench wal` (1 M records of 256 B, 2-core CI VM, ext4):
/// synced groups of 64 ran at 350 k rec/s (p50 155 µs) on zero-filled segments against 223 k
/// (p50 263 µs) on `fallocate`d ones, whose first write to each block makes `fdatasync` journal
/// an extent conversion. Unsynced, the picture flips: zeroing writes every segment twice and
/// syncs it, which gates a writer that never waits for the disk (groups of 1024: 2.4 M rec/s
/// zero-filled against 5.6 M `fallocate`d). The zeroing runs on the helper thread of
/// `WalConfig::prepare_ahead`, so it does not stall synced appends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Preallocate {
    /// [`Preallocate::ZeroFill`] under [`SyncPolicy::Always`], [`Preallocate::Fallocate`]
    /// under any other policy.
    Auto,
    /// Write zeros over the whole segment, then sync: later appends overwrite allocated,
    /// initialized blocks, so `fdatasync` has no metadata to flush.
    ZeroFill,
    /// `fallocate` the segment: cheap to create, but the first write to each block converts an
    /// unwritten extent, which `fdatasync` must journal.
    Fallocate,
    /// Reuse purged segments (their stale frames fail the seq-covering checksum); new files,
    /// when no purged one is available, are created with `fallocate`.
    Recycle,
}

/// Configuration of a [`Wal`](crate::Wal). Build it with struct update syntax
/// (`WalConfig { dir, ..WalConfig::default() }`) or the `with_*` methods.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalConfig {
    /// Directory holding the segment files (created if missing).
    pub dir: PathBuf,
    /// Size of each segment file in bytes.
    pub segment_size_bytes: u64,
    /// When appends are synced.
    pub sync: SyncPolicy,
    /// How segment files are preallocated.
    pub preallocate: Preallocate,
    /// Seq of the first record when the directory holds no log yet (ignored otherwise).
    pub first_seq: Seq,
    /// Prepare the next segment file on a helper thread while the current one fills, so a
    /// segment roll does not stall appends on preallocation.
    pub prepare_ahead: bool,
    /// Value of the `log` label on this log's metrics, so two logs in one process (the event
    /// log and the Raft log) keep separate series. A fixed name, never data.
    pub metrics_label: &'static str,
    /// Under `Never` and `Interval`, a helper thread starts writeback of the active segment
    /// (without waiting for it) after every this many bytes written, so sealing a segment at a roll does not write back a whole
    /// segment while the writer waits. 0 turns it off; unused under `Always` and on a
    /// simulated storage ([`Wal::open_with_storage`](crate::Wal::open_with_storage)).
    pub writeback_bytes: u64,
    /// Under `Never`, a write smaller than this that reaches into a new block of this many
    /// bytes (counted from the segment's start) carries zeros to the block's end, which the
    /// next records overwrite. The page cache then holds the segment in folios of the block's
    /// size instead of folios sized by each small write, and both later small writes and
    /// reads run faster (`docs/design/wal.md`, "The page cache of a new segment"). Not under
    /// `Always` or `Interval`, whose syncs would write the zeros to the disk. 0 turns it off.
    pub write_padding_bytes: u64,
}

impl Default for WalConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("data/wal"),
            segment_size_bytes: DEFAULT_SEGMENT_SIZE_BYTES,
            sync: SyncPolicy::Always,
            preallocate: Preallocate::Auto,
            first_seq: Seq(1),
            prepare_ahead: true,
            metrics_label: "events",
            writeback_bytes: DEFAULT_WRITEBACK_BYTES,
            write_padding_bytes: DEFAULT_WRITE_PADDING_BYTES,
        }
    }
}

impl WalConfig {
    /// The embedded default with another directory.
    #[must_use]
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into(), ..Self::default() }
    }

    /// Sets the segment size.
    #[must_use]
    pub const fn with_segment_size_bytes(mut self, bytes: u64) -> Self {
        self.segment_size_bytes = bytes;
        self
    }

    /// Sets the sync policy.
    #[must_use]
    pub const fn with_sync(mut self, sync: SyncPolicy) -> Self {
        self.sync = sync;
        self
    }

    /// Sets the preallocation strategy.
    #[must_use]
    pub const fn with_preallocate(mut self, preallocate: Preallocate) -> Self {
        self.preallocate = preallocate;
        self
    }

    /// Sets the first seq of a fresh log.
    #[must_use]
    pub const fn with_first_seq(mut self, first_seq: Seq) -> Self {
        self.first_seq = first_seq;
        self
    }

    /// Sets the write padding block (0: off).
    #[must_use]
    pub const fn with_write_padding_bytes(mut self, bytes: u64) -> Self {
        self.write_padding_bytes = bytes;
        self
    }

    /// The write padding block in effect: [`WalConfig::write_padding_bytes`] under
    /// [`SyncPolicy::Never`], 0 (off) under any other policy.
    #[must_use]
    pub const fn effective_write_padding(&self) -> u64 {
        match self.sync {
            SyncPolicy::Never => self.write_padding_bytes,
            SyncPolicy::Always | SyncPolicy::Interval(_) => 0,
        }
    }

    /// Sets the background writeback threshold (0: off).
    #[must_use]
    pub const fn with_writeback_bytes(mut self, bytes: u64) -> Self {
        self.writeback_bytes = bytes;
        self
    }

    /// Sets whether the next segment is prepared ahead on a helper thread.
    #[must_use]
    pub const fn with_prepare_ahead(mut self, prepare_ahead: bool) -> Self {
        self.prepare_ahead = prepare_ahead;
        self
    }

    /// The preallocation strategy in effect: [`Preallocate::Auto`] resolved by the sync policy.
    #[must_use]
    pub const fn effective_preallocate(&self) -> Preallocate {
        match (self.preallocate, self.sync) {
            (Preallocate::Auto, SyncPolicy::Always) => Preallocate::ZeroFill,
            (Preallocate::Auto, SyncPolicy::Interval(_) | SyncPolicy::Never) => {
                Preallocate::Fallocate
            }
            (other, _) => other,
        }
    }

    /// Sets the `log` label of this log's metrics.
    #[must_use]
    pub const fn with_metrics_label(mut self, label: &'static str) -> Self {
        self.metrics_label = label;
        self
    }

    /// Checks the configuration.
    ///
    /// # Errors
    /// [`Error::Config`] when the segment size is out of range or the first seq is 0.
    pub fn validate(&self) -> Result<()> {
        let size = self.segment_size_bytes;
        if !(MIN_SEGMENT_SIZE_BYTES..=MAX_SEGMENT_SIZE_BYTES).contains(&size) {
            return Err(Error::Config(ConfigError::SegmentSize(size)));
        }
        if self.first_seq == Seq(0) {
            return Err(Error::Config(ConfigError::FirstSeq));
        }
        Ok(())
    }
}

/// Configuration of a [`Sequencer`](crate::Sequencer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SequencerConfig {
    /// Capacity of the submission queue, in batches.
    pub queue_capacity: usize,
    /// Upper bound on payload bytes drained into one group (one write); a single batch larger
    /// than this is still written whole.
    pub max_group_bytes: usize,
}

impl Default for SequencerConfig {
    fn default() -> Self {
        Self { queue_capacity: SEQUENCER_QUEUE_CAPACITY, max_group_bytes: DEFAULT_MAX_GROUP_BYTES }
    }
}

impl SequencerConfig {
    /// Sets the queue capacity.
    #[must_use]
    pub const fn with_queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = capacity;
        self
    }

    /// Sets the group size limit.
    #[must_use]
    pub const fn with_max_group_bytes(mut self, bytes: usize) -> Self {
        self.max_group_bytes = bytes;
        self
    }

    /// Checks the configuration.
    ///
    /// # Errors
    /// [`Error::Config`] when a capacity is zero.
    pub const fn validate(&self) -> Result<()> {
        if self.queue_capacity == 0 {
            return Err(Error::Config(ConfigError::QueueCapacity));
        }
        if self.max_group_bytes == 0 {
            return Err(Error::Config(ConfigError::MaxGroupBytes));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_preallocation_follows_the_sync_policy_and_explicit_choices_stay() {
        let auto = WalConfig::default();
        assert_eq!(auto.preallocate, Preallocate::Auto);
        assert_eq!(auto.effective_preallocate(), Preallocate::ZeroFill);
        let never = auto.clone().with_sync(SyncPolicy::Never);
        assert_eq!(never.effective_preallocate(), Preallocate::Fallocate);
        let interval = auto.with_sync(SyncPolicy::Interval(Duration::from_millis(5)));
        assert_eq!(interval.effective_preallocate(), Preallocate::Fallocate);
        for explicit in [Preallocate::ZeroFill, Preallocate::Fallocate, Preallocate::Recycle] {
            let c = never.clone().with_preallocate(explicit);
            assert_eq!(c.effective_preallocate(), explicit);
        }
    }
}
