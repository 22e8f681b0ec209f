//! The ClickHouse side: the table's DDL and schema check, where to resume, and one batch's
//! `INSERT`.

use clickhouse::Client;

use crate::{
    batch::Batch,
    config::{ClickHouseSinkConfig, DEDUPLICATION_WINDOW_BLOCKS},
    row::{COLUMNS, EventRow},
};

/// The exported table of one log, and the client that writes it.
#[derive(Clone)]
pub(crate) struct Table {
    client: Client,
    database: String,
    name: String,
    /// Every request that writes or decides where to write carries this `query_id`. ClickHouse
    /// refuses a query whose id is already running, so at most one of the sink's inserts into
    /// this table runs at a time, and the resume query of a restarted sink fails (and is
    /// retried) while an insert of its predecessor is still running on the server.
    query_id: String,
    batch_rows_max: u32,
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("database", &self.database)
            .field("name", &self.name)
            .field("query_id", &self.query_id)
            .finish_non_exhaustive()
    }
}

impl Table {
    /// A client for `config` (validated: `url` is the checked URL).
    pub(crate) fn new(config: &ClickHouseSinkConfig, url: &str) -> Self {
        let mut client = Client::default()
            .with_url(url)
            .with_database(&config.database)
            // The sink checks the whole schema once at start (`check_schema`), so rows go as
            // plain RowBinary without a per-insert metadata round trip.
            .with_validation(false);
        if let Some(user) = &config.user {
            client = client.with_user(user);
        }
        if let Some(password) = &config.password {
            client = client.with_password(password);
        }
        Self {
            client,
            database: config.database.clone(),
            name: config.table.clone(),
            query_id: format!("mempulse-sink-{}.{}", config.database, config.table),
            batch_rows_max: config.batch_rows_max,
        }
    }

    pub(crate) fn database(&self) -> &str {
        &self.database
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// `CREATE TABLE IF NOT EXISTS` for the sink's table (names are validated identifiers).
    ///
    /// `ReplacingMergeTree` ordered by `seq`: rows are immutable facts keyed by their seq, so
    /// two copies of a row are identical and a merge keeps one. The sink never writes a
    /// duplicate in the first place (see `docs/design/sink-clickhouse.md`); this engine is the
    /// backstop, and `FINAL` makes any read exact regardless. The deduplication window lets a
    /// retried `INSERT` (same rows, same `insert_deduplication_token`) be dropped by the server
    /// when the first attempt committed but its answer was lost.
    pub(crate) fn ddl(&self) -> String {
        let columns: Vec<String> = COLUMNS
            .iter()
            .map(|(name, ty)| {
                let codec = if *name == "payload" { " CODEC(ZSTD(1))" } else { "" };
                format!("    {name} {ty}{codec}")
            })
            .collect();
        format!(
            "CREATE TABLE IF NOT EXISTS {}.{} (\n{}\n) ENGINE = ReplacingMergeTree\nORDER BY seq\n\
             SETTINGS non_replicated_deduplication_window = {DEDUPLICATION_WINDOW_BLOCKS}",
            self.database,
            self.name,
            columns.join(",\n")
        )
    }

    pub(crate) async fn create(&self) -> clickhouse::error::Result<()> {
        self.client.query_raw(&self.ddl()).execute().await
    }

    /// `name type` of every column of the table in order; empty when the table is absent.
    pub(crate) async fn columns(&self) -> clickhouse::error::Result<Vec<String>> {
        let rows: Vec<(String, String)> = self
            .client
            .query_raw(
                "SELECT name, type FROM system.columns \
                 WHERE database = {db:String} AND table = {table:String} ORDER BY position",
            )
            .param("db", &self.database)
            .param("table", &self.name)
            .fetch_all()
            .await?;
        Ok(rows.into_iter().map(|(name, ty)| format!("{name} {ty}")).collect())
    }

    /// Highest seq in the table (0 when empty). Runs under the sink's `query_id`, so it fails
    /// while a previous incarnation's insert is still running.
    pub(crate) async fn max_seq(&self) -> clickhouse::error::Result<u64> {
        self.client
            .query_raw(&format!("SELECT max(seq) FROM {}.{}", self.database, self.name))
            .with_setting("query_id", &self.query_id)
            .fetch_one()
            .await
    }

    /// Inserts `batch` as one `INSERT`, parsed by the server into one block, so it commits as
    /// one part or not at all. Settings pin what the atomicity argument relies on, whatever
    /// the server's profile says: a synchronous insert (`async_insert = 0` — the server
    /// default is 1 on recent versions), deduplication on, and a block limit no smaller than
    /// the batch.
    pub(crate) async fn insert(
        &self,
        batch: &Batch,
        timeout: std::time::Duration,
    ) -> clickhouse::error::Result<()> {
        let (Some(first), Some(last)) = (batch.first(), batch.last()) else { return Ok(()) };
        let mut insert = self
            .client
            .insert::<EventRow<'_>>(&self.name)
            .await?
            .with_setting("query_id", &self.query_id)
            .with_setting("async_insert", "0")
            .with_setting("insert_deduplicate", "1")
            .with_setting("insert_deduplication_token", format!("mempulse-{first}-{last}"))
            .with_setting("max_insert_block_size", self.batch_rows_max.to_string())
            .with_timeouts(Some(timeout), Some(timeout));
        for row in batch.rows() {
            insert.write(&row).await?;
        }
        insert.end().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ddl_names_every_column_in_order() {
        let table = Table::new(&ClickHouseSinkConfig::new("http://x:1"), "http://x:1");
        let ddl = table.ddl();
        assert!(ddl.starts_with("CREATE TABLE IF NOT EXISTS default.mempulse_events ("));
        let mut at = 0;
        for (name, ty) in COLUMNS {
            let col = format!("    {name} {ty}");
            let found = ddl[at..].find(&col).map(|i| i + at);
            assert!(found.is_some(), "{col} missing or out of order in {ddl}");
            at = found.unwrap_or(at);
        }
        assert!(ddl.contains("ENGINE = ReplacingMergeTree\nORDER BY seq"));
    }
}
