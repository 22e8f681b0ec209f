//! Batched, resumable, idempotent export of the mempulse event log to ClickHouse.
//!
//! ## Role
//! ```text
//!  sequencer ──► canonical event WAL ──(durable records only)──► LogSource (live or offline)
//!                                                                     │ fill: ≤ rows / bytes caps
//!                                                                     ▼
//!       ClickHouse ◄── one INSERT per batch (RowBinary over HTTP) ◄── Batch (decoded once)
//!       table: seq, ts, kind, source, origin, raft_index, tx_hash, sender, height, reason,
//!              payload (the event's stored bytes); ReplacingMergeTree ORDER BY seq
//! ```
//! The sink is a reader of the log, never on its write path: a slow or absent ClickHouse only
//! grows `mempulse_sink_clickhouse_lag_events`.
//!
//! ## Invariants
//! - Rows in the table are always the log's records `first..=max(seq)`: no gap, no duplicate.
//!   On start the sink reads `max(seq)` and continues after it; each batch is one `INSERT`
//!   that the server parses into one block and commits as one part or not at all; batches go
//!   one at a time; a failed batch is retried with the same rows and the same
//!   `insert_deduplication_token`. Killing the process at any point is safe
//!   (`tests/it/kill.rs` SIGKILLs it mid-batch). The argument, and its one narrow limit, are in
//!   `docs/design/sink-clickhouse.md`.
//! - Only durable records are exported (design rule 1).
//! - Memory is bounded: one batch of at most `batch-rows-max` rows and about `batch-bytes-max`
//!   bytes, plus the client's send buffer.
//! - Failed requests are retried with exponential backoff capped at `retry-backoff-max-ms`;
//!   errors that a retry cannot fix (schema, log corruption, an undecodable record, a table
//!   filled from another log) stop the sink with a typed [`Error`].
//!
//! ## Example
//! ```no_run
//! use mempulse_sink_clickhouse::{ClickHouseSinkConfig, LogSource, run};
//!
//! # async fn export(dir: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
//! // Offline export of a log directory; a node passes `LogSource::live(&sequencer_handle)`.
//! let config: ClickHouseSinkConfig = toml::from_str(r#"url = "http://127.0.0.1:8123""#)?;
//! let source = LogSource::offline(mempulse_wal::open_reader(dir)?);
//! let progress = run(config, source, std::future::pending()).await?;
//! println!("exported up to seq {}", progress.exported);
//! # Ok(()) }
//! ```
//!
//! ## Feature flags
//! None. The `clickhouse` client is built without compression or TLS (plain `http://`).

mod batch;
mod config;
mod error;
pub mod metrics;
mod row;
mod sink;
mod source;
mod table;

pub use config::{
    BATCH_BYTES_MAX_LIMIT, BATCH_BYTES_MAX_MIN, BATCH_ROWS_MAX_LIMIT, ClickHouseSinkConfig,
    DEDUPLICATION_WINDOW_BLOCKS, DEFAULT_BATCH_BYTES_MAX, DEFAULT_BATCH_ROWS_MAX, DEFAULT_DATABASE,
    DEFAULT_FLUSH_INTERVAL_MS, DEFAULT_REQUEST_TIMEOUT_MS, DEFAULT_RETRY_BACKOFF_MAX_MS,
    DEFAULT_RETRY_BACKOFF_MIN_MS, DEFAULT_TABLE,
};
pub use error::{ConfigError, Error, Operation, Result};
pub use row::COLUMNS;
pub use sink::{ClickHouseSink, Progress, run};
pub use source::LogSource;
