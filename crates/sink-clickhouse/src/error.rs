//! The sink's errors. The type says how to react: [`Error::is_retryable`] errors are retried
//! with backoff by the sink itself; the others stop it.

use mempulse_primitives::{DecodeError, Seq};

/// A `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What the sink asked ClickHouse to do when a request failed (also the `operation` label of
/// `mempulse_sink_clickhouse_errors_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// `CREATE TABLE IF NOT EXISTS`.
    CreateTable,
    /// Reading the table's columns from `system.columns`.
    ReadSchema,
    /// `SELECT max(seq)`: where to resume.
    ReadExported,
    /// One batch's `INSERT`.
    Insert,
}

impl Operation {
    /// Stable snake-case name (logs, metric label).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::CreateTable => "create_table",
            Self::ReadSchema => "read_schema",
            Self::ReadExported => "read_exported",
            Self::Insert => "insert",
        }
    }
}

impl core::fmt::Display for Operation {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An invalid [`ClickHouseSinkConfig`](crate::ClickHouseSinkConfig) field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No `url`: the sink is off.
    #[error("no url: the clickhouse sink is off")]
    Disabled,
    /// The URL is not `http://host[:port]` (TLS is not compiled in).
    #[error("url must be http://host:port")]
    Url,
    /// A database or table name outside `[A-Za-z_][A-Za-z0-9_]{0,63}`.
    #[error("{field} must match [A-Za-z_][A-Za-z0-9_]* and be at most 64 bytes")]
    Identifier {
        /// `database` or `table`.
        field: &'static str,
    },
    /// `batch-rows-max` outside 1..=[`BATCH_ROWS_MAX_LIMIT`](crate::BATCH_ROWS_MAX_LIMIT).
    #[error("batch-rows-max {value} outside 1..={}", crate::BATCH_ROWS_MAX_LIMIT)]
    BatchRows {
        /// The value given.
        value: u32,
    },
    /// `batch-bytes-max` outside its bounds.
    #[error(
        "batch-bytes-max {value} outside {}..={}",
        crate::BATCH_BYTES_MAX_MIN,
        crate::BATCH_BYTES_MAX_LIMIT
    )]
    BatchBytes {
        /// The value given.
        value: u64,
    },
    /// A duration of zero.
    #[error("{field} must be positive")]
    ZeroDuration {
        /// The field's TOML key.
        field: &'static str,
    },
    /// `retry-backoff-min-ms` above `retry-backoff-max-ms`.
    #[error("retry-backoff-min-ms {min_ms} exceeds retry-backoff-max-ms {max_ms}")]
    Backoff {
        /// The minimum given.
        min_ms: u64,
        /// The maximum given.
        max_ms: u64,
    },
    /// `retry-attempts-max = 0` would never try.
    #[error("retry-attempts-max must be positive (omit it to retry until shutdown)")]
    ZeroAttempts,
}

/// Why the sink stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is invalid.
    #[error("invalid clickhouse sink configuration")]
    Config(#[from] ConfigError),
    /// A request to ClickHouse failed (network, timeout or a server exception).
    #[error("clickhouse {operation} failed")]
    ClickHouse {
        /// What was asked.
        operation: Operation,
        /// The client's error.
        #[source]
        source: clickhouse::error::Error,
    },
    /// A retryable request kept failing for `retry-attempts-max` attempts.
    #[error("clickhouse {operation} failed {attempts} times in a row")]
    RetriesExhausted {
        /// What was asked.
        operation: Operation,
        /// Attempts made.
        attempts: u32,
        /// The last attempt's error.
        #[source]
        source: clickhouse::error::Error,
    },
    /// Reading the event log failed (corruption, IO, or records purged before export).
    #[error("reading the event log failed")]
    Wal(#[from] mempulse_wal::Error),
    /// A record of the log is not an event this build can decode (a newer schema, or a bug):
    /// exporting past it would skip a row.
    #[error("record {seq} does not decode as an event")]
    Decode {
        /// Its seq.
        seq: Seq,
        /// The decoder's error.
        #[source]
        source: DecodeError,
    },
    /// The table is absent and `create-table` is off.
    #[error("table {database}.{table} does not exist")]
    TableMissing {
        /// Database.
        database: String,
        /// Table.
        table: String,
    },
    /// The table exists with other columns than the sink writes.
    #[error("table {database}.{table} has columns {found:?}, expected {expected:?}")]
    SchemaMismatch {
        /// Database.
        database: String,
        /// Table.
        table: String,
        /// `name type` of every column found, in table order.
        found: Vec<String>,
        /// `name type` of every column the sink writes.
        expected: Vec<String>,
    },
    /// The table holds seqs beyond the end of the log: it was filled from another log (another
    /// node, or a data directory since wiped). Exporting would mix two histories.
    #[error("table holds seqs up to {exported} but the log ends at {log_last}")]
    AheadOfLog {
        /// Highest seq in the table.
        exported: Seq,
        /// Last seq of the log.
        log_last: Seq,
    },
}

impl Error {
    /// Whether retrying the same request may succeed: a failed ClickHouse request (server down,
    /// network, timeout, a transient server exception). The sink retries these itself; every
    /// other error stops it.
    #[must_use]
    pub const fn is_retryable(&self) -> bool {
        matches!(self, Self::ClickHouse { .. })
    }

    pub(crate) const fn clickhouse(operation: Operation, source: clickhouse::error::Error) -> Self {
        Self::ClickHouse { operation, source }
    }
}
