//! The sink's configuration: the `[sink.clickhouse]` section of the node's TOML.
//!
//! `Default` is the embedded default: no `url`, so the sink is off. Setting `url` turns it on.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// Default database (ClickHouse's own, present on every server).
pub const DEFAULT_DATABASE: &str = "default";
/// Default table name.
pub const DEFAULT_TABLE: &str = "mempulse_events";
/// Default cap on rows per batch (one `INSERT`, one block, one part).
pub const DEFAULT_BATCH_ROWS_MAX: u32 = 100_000;
/// Largest allowed `batch-rows-max`: below ClickHouse's default `max_insert_block_size`
/// (1,048,449 rows), so even a server whose profile ignores our per-insert setting forms one block.
pub const BATCH_ROWS_MAX_LIMIT: u32 = 1_000_000;
/// Default cap on the payload bytes buffered for one batch.
pub const DEFAULT_BATCH_BYTES_MAX: u64 = 32 << 20;
/// Smallest allowed `batch-bytes-max`.
pub const BATCH_BYTES_MAX_MIN: u64 = 64 << 10;
/// Largest allowed `batch-bytes-max`.
pub const BATCH_BYTES_MAX_LIMIT: u64 = 1 << 30;
/// Default longest wait before a partial batch is written.
pub const DEFAULT_FLUSH_INTERVAL_MS: u64 = 1_000;
/// Default first retry delay.
pub const DEFAULT_RETRY_BACKOFF_MIN_MS: u64 = 100;
/// Default cap of the retry delay (the delay doubles per failed attempt up to this).
pub const DEFAULT_RETRY_BACKOFF_MAX_MS: u64 = 30_000;
/// Default deadline of one request (an `INSERT` from its first byte to the server's answer).
pub const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 120_000;
/// Recent insert blocks whose ids the table keeps for deduplication
/// (`non_replicated_deduplication_window`); a retry only ever repeats the latest block.
pub const DEDUPLICATION_WINDOW_BLOCKS: u32 = 100;

/// Configuration of the ClickHouse sink (`[sink.clickhouse]`, kebab-case keys).
///
/// ```toml
/// [sink.clickhouse]
/// url = "http://127.0.0.1:8123"
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct ClickHouseSinkConfig {
    /// ClickHouse's HTTP interface, `http://host:port`. `None` (the default) turns the sink off.
    pub url: Option<String>,
    /// Database holding the table; it must exist.
    pub database: String,
    /// Table the events go to; created when absent (see `create-table`).
    pub table: String,
    /// User name; `None` uses the server's default user.
    pub user: Option<String>,
    /// Password of `user`.
    pub password: Option<String>,
    /// Most rows in one batch (one `INSERT`).
    pub batch_rows_max: u32,
    /// Most payload bytes buffered for one batch; a batch always takes at least one record.
    pub batch_bytes_max: u64,
    /// Longest time a partial batch waits for more records before it is written.
    pub flush_interval_ms: u64,
    /// First delay after a failed request.
    pub retry_backoff_min_ms: u64,
    /// Cap of the delay, which doubles after each failed attempt.
    pub retry_backoff_max_ms: u64,
    /// Failed attempts in a row after which the sink stops with the last error; `None` retries
    /// until shutdown.
    pub retry_attempts_max: Option<u32>,
    /// Deadline of one request.
    pub request_timeout_ms: u64,
    /// Create the table when it is absent (`CREATE TABLE IF NOT EXISTS`).
    pub create_table: bool,
}

impl Default for ClickHouseSinkConfig {
    fn default() -> Self {
        Self {
            url: None,
            database: DEFAULT_DATABASE.to_owned(),
            table: DEFAULT_TABLE.to_owned(),
            user: None,
            password: None,
            batch_rows_max: DEFAULT_BATCH_ROWS_MAX,
            batch_bytes_max: DEFAULT_BATCH_BYTES_MAX,
            flush_interval_ms: DEFAULT_FLUSH_INTERVAL_MS,
            retry_backoff_min_ms: DEFAULT_RETRY_BACKOFF_MIN_MS,
            retry_backoff_max_ms: DEFAULT_RETRY_BACKOFF_MAX_MS,
            retry_attempts_max: None,
            request_timeout_ms: DEFAULT_REQUEST_TIMEOUT_MS,
            create_table: true,
        }
    }
}

impl ClickHouseSinkConfig {
    /// A config exporting to `url` with every other setting at its default.
    #[must_use]
    pub fn new(url: impl Into<String>) -> Self {
        Self { url: Some(url.into()), ..Self::default() }
    }

    /// Whether the sink is on (a `url` is set).
    #[must_use]
    pub const fn is_enabled(&self) -> bool {
        self.url.is_some()
    }

    /// [`ClickHouseSinkConfig::flush_interval_ms`] as a duration.
    #[must_use]
    pub const fn flush_interval(&self) -> Duration {
        Duration::from_millis(self.flush_interval_ms)
    }

    /// [`ClickHouseSinkConfig::retry_backoff_min_ms`] as a duration.
    #[must_use]
    pub const fn retry_backoff_min(&self) -> Duration {
        Duration::from_millis(self.retry_backoff_min_ms)
    }

    /// [`ClickHouseSinkConfig::retry_backoff_max_ms`] as a duration.
    #[must_use]
    pub const fn retry_backoff_max(&self) -> Duration {
        Duration::from_millis(self.retry_backoff_max_ms)
    }

    /// [`ClickHouseSinkConfig::request_timeout_ms`] as a duration.
    #[must_use]
    pub const fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// Checks every field; returns the URL to connect to.
    ///
    /// # Errors
    /// The first invalid field, as a [`ConfigError`].
    pub fn validate(&self) -> Result<&str, ConfigError> {
        let Some(url) = self.url.as_deref() else { return Err(ConfigError::Disabled) };
        if !url.starts_with("http://") || url.len() <= "http://".len() {
            return Err(ConfigError::Url);
        }
        check_identifier("database", &self.database)?;
        check_identifier("table", &self.table)?;
        if self.batch_rows_max == 0 || self.batch_rows_max > BATCH_ROWS_MAX_LIMIT {
            return Err(ConfigError::BatchRows { value: self.batch_rows_max });
        }
        if !(BATCH_BYTES_MAX_MIN..=BATCH_BYTES_MAX_LIMIT).contains(&self.batch_bytes_max) {
            return Err(ConfigError::BatchBytes { value: self.batch_bytes_max });
        }
        let durations = [
            ("flush-interval-ms", self.flush_interval_ms),
            ("retry-backoff-min-ms", self.retry_backoff_min_ms),
            ("retry-backoff-max-ms", self.retry_backoff_max_ms),
            ("request-timeout-ms", self.request_timeout_ms),
        ];
        if let Some((field, _)) = durations.into_iter().find(|(_, ms)| *ms == 0) {
            return Err(ConfigError::ZeroDuration { field });
        }
        if self.retry_backoff_min_ms > self.retry_backoff_max_ms {
            return Err(ConfigError::Backoff {
                min_ms: self.retry_backoff_min_ms,
                max_ms: self.retry_backoff_max_ms,
            });
        }
        if self.retry_attempts_max == Some(0) {
            return Err(ConfigError::ZeroAttempts);
        }
        Ok(url)
    }
}

/// Database and table names go into DDL unquoted: allow only `[A-Za-z_][A-Za-z0-9_]{0,63}`.
fn check_identifier(field: &'static str, name: &str) -> Result<(), ConfigError> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if first_ok && rest_ok && name.len() <= 64 {
        Ok(())
    } else {
        Err(ConfigError::Identifier { field })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on() -> ClickHouseSinkConfig {
        ClickHouseSinkConfig::new("http://127.0.0.1:8123")
    }

    #[test]
    fn default_is_off_and_url_turns_it_on() {
        let off = ClickHouseSinkConfig::default();
        assert!(!off.is_enabled());
        assert_eq!(off.validate(), Err(ConfigError::Disabled));
        assert_eq!(on().validate(), Ok("http://127.0.0.1:8123"));
    }

    #[test]
    fn rejects_bad_fields() {
        type Edit = fn(&mut ClickHouseSinkConfig);
        let cases: [(Edit, ConfigError); 9] = [
            (|c| c.url = Some("https://x:8443".into()), ConfigError::Url),
            (|c| c.url = Some("http://".into()), ConfigError::Url),
            (|c| c.table = "events; DROP".into(), ConfigError::Identifier { field: "table" }),
            (|c| c.database = "1db".into(), ConfigError::Identifier { field: "database" }),
            (|c| c.batch_rows_max = 0, ConfigError::BatchRows { value: 0 }),
            (|c| c.batch_bytes_max = 1, ConfigError::BatchBytes { value: 1 }),
            (|c| c.flush_interval_ms = 0, ConfigError::ZeroDuration { field: "flush-interval-ms" }),
            (
                |c| c.retry_backoff_min_ms = c.retry_backoff_max_ms + 1,
                ConfigError::Backoff {
                    min_ms: DEFAULT_RETRY_BACKOFF_MAX_MS + 1,
                    max_ms: DEFAULT_RETRY_BACKOFF_MAX_MS,
                },
            ),
            (|c| c.retry_attempts_max = Some(0), ConfigError::ZeroAttempts),
        ];
        for (edit, want) in cases {
            let mut config = on();
            edit(&mut config);
            assert_eq!(config.validate(), Err(want));
        }
        let mut long = on();
        long.table = "t".repeat(65);
        assert_eq!(long.validate(), Err(ConfigError::Identifier { field: "table" }));
    }
}
