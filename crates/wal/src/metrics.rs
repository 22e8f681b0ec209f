//! Metric handles of the WAL, created once through the `metrics` facade.
//!
//! The crate only records; the binary installs a recorder (embedders pay nothing otherwise).

use std::sync::Once;

use metrics::{Counter, Gauge, Histogram, Unit};

/// Time to frame and write one group, seconds.
pub const APPEND_DURATION_SECONDS: &str = "mempulse_wal_append_duration_seconds";
/// Time of one `fdatasync`, seconds.
pub const FSYNC_DURATION_SECONDS: &str = "mempulse_wal_fsync_duration_seconds";
/// Frame bytes written to segments.
pub const BYTES_WRITTEN_TOTAL: &str = "mempulse_wal_bytes_written_total";
/// Records appended.
pub const RECORDS_APPENDED_TOTAL: &str = "mempulse_wal_records_appended_total";
/// Segments sealed and replaced by a new active segment.
pub const SEGMENTS_ROLLED_TOTAL: &str = "mempulse_wal_segments_rolled_total";
/// Batches waiting in the sequencer queue.
pub const QUEUE_DEPTH: &str = "mempulse_wal_queue_depth";
/// Capacity of the sequencer queue.
pub const QUEUE_CAPACITY: &str = "mempulse_wal_queue_capacity";
/// Batches refused because the sequencer queue was full.
pub const DROPPED_TOTAL: &str = "mempulse_wal_dropped_total";
/// Torn tails cut off during recovery.
pub const TORN_TAILS_TOTAL: &str = "mempulse_wal_torn_tails_total";

/// Label naming which log a series belongs to (`WalConfig::metrics_label`).
pub const LOG_LABEL: &str = "log";

static DESCRIBE: Once = Once::new();

fn describe() {
    DESCRIBE.call_once(|| {
        metrics::describe_histogram!(
            APPEND_DURATION_SECONDS,
            Unit::Seconds,
            "time to frame and write one group"
        );
        metrics::describe_histogram!(
            FSYNC_DURATION_SECONDS,
            Unit::Seconds,
            "time of one fdatasync"
        );
        metrics::describe_counter!(BYTES_WRITTEN_TOTAL, Unit::Bytes, "frame bytes written");
        metrics::describe_counter!(RECORDS_APPENDED_TOTAL, Unit::Count, "records appended");
        metrics::describe_counter!(SEGMENTS_ROLLED_TOTAL, Unit::Count, "segments sealed");
        metrics::describe_gauge!(QUEUE_DEPTH, Unit::Count, "batches waiting in the sequencer");
        metrics::describe_gauge!(QUEUE_CAPACITY, Unit::Count, "capacity of the sequencer queue");
        metrics::describe_counter!(DROPPED_TOTAL, Unit::Count, "batches refused: queue full");
        metrics::describe_counter!(TORN_TAILS_TOTAL, Unit::Count, "torn tails cut at recovery");
    });
}

/// Handles used by the writer.
#[derive(Clone, Debug)]
pub(crate) struct WalMetrics {
    pub(crate) append_duration: Histogram,
    pub(crate) fsync_duration: Histogram,
    pub(crate) bytes_written: Counter,
    pub(crate) records_appended: Counter,
    pub(crate) segments_rolled: Counter,
    pub(crate) torn_tails: Counter,
}

impl WalMetrics {
    /// Handles labelled `log = label` (see `WalConfig::metrics_label`).
    pub(crate) fn new(label: &'static str) -> Self {
        describe();
        Self {
            append_duration: metrics::histogram!(APPEND_DURATION_SECONDS, LOG_LABEL => label),
            fsync_duration: metrics::histogram!(FSYNC_DURATION_SECONDS, LOG_LABEL => label),
            bytes_written: metrics::counter!(BYTES_WRITTEN_TOTAL, LOG_LABEL => label),
            records_appended: metrics::counter!(RECORDS_APPENDED_TOTAL, LOG_LABEL => label),
            segments_rolled: metrics::counter!(SEGMENTS_ROLLED_TOTAL, LOG_LABEL => label),
            torn_tails: metrics::counter!(TORN_TAILS_TOTAL, LOG_LABEL => label),
        }
    }
}

/// Handles used by the sequencer queue.
#[derive(Clone, Debug)]
pub(crate) struct QueueMetrics {
    pub(crate) depth: Gauge,
    pub(crate) capacity: Gauge,
    pub(crate) dropped: Counter,
}

impl QueueMetrics {
    /// Handles labelled `log = label`.
    pub(crate) fn new(label: &'static str) -> Self {
        describe();
        Self {
            depth: metrics::gauge!(QUEUE_DEPTH, LOG_LABEL => label),
            capacity: metrics::gauge!(QUEUE_CAPACITY, LOG_LABEL => label),
            dropped: metrics::counter!(DROPPED_TOTAL, LOG_LABEL => label),
        }
    }
}
