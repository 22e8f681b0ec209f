//! The `sink` benchmark: the ClickHouse sink (WAL → batches → ClickHouse) against a plain bulk
//! insert of the same rows with the same client, on a real server.
//!
//! 1. **generate** (untimed): a log of `events` events (transactions received, admitted,
//!    included, rejected, evicted, and blocks) in a fresh directory.
//! 2. **sink** (timed): `mempulse_sink_clickhouse::run` over the log, read back with
//!    `open_reader`, into a fresh table: table check, `max(seq)`, read, decode, batch, insert.
//! 3. **bulk** (untimed preparation, timed inserts): the same rows built in memory beforehand,
//!    then inserted with the same `clickhouse` crate and client settings (plain `RowBinary`,
//!    `async_insert = 0`), in `INSERT`s of the same size, into a table of the same structure.
//!    This is the client's own ceiling for these rows.
//! 4. Steps 2 and 3 run once per round (`--rounds`, default 2), alternating which goes first,
//!    each into a fresh table; `rows_per_s` and `bulk_rows_per_s` are the best runs, `ratio` is
//!    their quotient, the medians and every run's time are reported too.
//! 5. **check**: every table holds `events` rows.
//!
//! The server is `--url`, else `MEMPULSE_CLICKHOUSE_URL`, else the one `ci/clickhouse.sh start`
//! starts (or finds running).

use std::{path::PathBuf, process::Command, time::Instant};

use anyhow::{Context, bail, ensure};
use clickhouse::{Client, Row};
use mempulse_primitives::{
    Event, EventKind, EvictReason, Height, Lane, Origin, RaftIndex, RejectReason, Source, Subpool,
    UnixMillis, ValidatorId,
};
use mempulse_sink_clickhouse::{ClickHouseSinkConfig, DEFAULT_BATCH_ROWS_MAX, LogSource};
use mempulse_wal::{SyncPolicy, Wal, WalConfig, open_reader};
use serde::Serialize;
use serde_json::{Value, json};

use crate::{
    report::Report,
    synth::{hash, tx},
};

/// The environment variable naming the server (as in the sink's tests).
const URL_ENV: &str = "MEMPULSE_CLICKHOUSE_URL";

/// Arguments of `mempulse-bench sink`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Events in the log.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    events: u64,
    /// ClickHouse HTTP URL (default: `$MEMPULSE_CLICKHOUSE_URL`, else `ci/clickhouse.sh start`).
    #[arg(long)]
    url: Option<String>,
    /// Rows per INSERT, for the sink and for the bulk baseline.
    #[arg(long, default_value_t = DEFAULT_BATCH_ROWS_MAX, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    batch_rows: u32,
    /// Rounds; each times the sink and the bulk insert once, alternating which goes first.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=10))]
    rounds: u32,
    /// Database to create the tables in (dropped and created anew, dropped again at the end).
    #[arg(long, default_value = "mempulse_bench")]
    database: String,
    /// Directory for the log; must be missing or empty (default: a fresh one under the temp
    /// dir, removed afterwards).
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// Runs the benchmark and returns its one-line report.
///
/// # Errors
/// Fails if the server is unreachable, the log cannot be written, or a table ends up with
/// another row count than the log.
pub(crate) fn run(args: &Args) -> anyhow::Result<Report> {
    let url = server_url(args.url.as_deref())?;
    let (dir, remove) = match &args.dir {
        Some(dir) => (dir.clone(), false),
        None => {
            (std::env::temp_dir().join(format!("mempulse-bench-sink-{}", std::process::id())), true)
        }
    };
    if dir.exists() && std::fs::read_dir(&dir)?.next().is_some() {
        bail!("{} is not empty; every run needs a fresh directory", dir.display());
    }
    let payload_bytes = write_log(&dir, args.events)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let result = runtime.block_on(measure(args, &url, &dir));
    if remove {
        std::fs::remove_dir_all(&dir).with_context(|| format!("remove {}", dir.display()))?;
    }
    let (timings, server) = result?;
    let (sink_s, bulk_s) = (best(&timings.sink), best(&timings.bulk));
    #[expect(clippy::cast_precision_loss, reason = "rates for humans; counts stay below 2^53")]
    let rate = |elapsed: f64| args.events as f64 / elapsed.max(1e-12);
    let fields = json!({
        "events": args.events,
        "rows_per_s": rate(sink_s),
        "bulk_rows_per_s": rate(bulk_s),
        "ratio": rate(sink_s) / rate(bulk_s),
        "rows_per_s_median": rate(median(&timings.sink)),
        "bulk_rows_per_s_median": rate(median(&timings.bulk)),
        "rounds": args.rounds,
        "batch_rows": args.batch_rows,
        "sink_elapsed_s": timings.sink,
        "bulk_elapsed_s": timings.bulk,
        "payload_bytes": payload_bytes,
        "server_version": server,
    });
    let Value::Object(fields) = fields else { unreachable!("json! of an object literal") };
    Ok(Report::Measured(fields))
}

/// `--url`, else the environment, else the server `ci/clickhouse.sh start` starts.
fn server_url(url: Option<&str>) -> anyhow::Result<String> {
    if let Some(url) = url {
        return Ok(url.to_owned());
    }
    if let Ok(url) = std::env::var(URL_ENV) {
        return Ok(url);
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../ci/clickhouse.sh");
    let out = Command::new(&script)
        .arg("start")
        .output()
        .with_context(|| format!("no --url or {URL_ENV}, and {} did not run", script.display()))?;
    ensure!(
        out.status.success(),
        "no --url or {URL_ENV}, and `ci/clickhouse.sh start` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}

/// Times the sink and the bulk insert once per round, alternating which goes first (so neither
/// always runs on a server busy merging the other's parts), each into a fresh table. Returns
/// every elapsed time and the server version.
async fn measure(
    args: &Args,
    url: &str,
    dir: &std::path::Path,
) -> anyhow::Result<(Timings, String)> {
    let db = &args.database;
    let root = Client::default().with_url(url);
    root.query_raw(&format!("DROP DATABASE IF EXISTS {db} SYNC")).execute().await?;
    root.query_raw(&format!("CREATE DATABASE {db}")).execute().await?;
    // The sink's client settings: plain RowBinary, no per-insert schema validation.
    let client = root.clone().with_database(db).with_validation(false);
    let server: String = client.query_raw("SELECT version()").fetch_one().await?;
    let rows = bulk_rows(dir)?;
    let mut timings = Timings::default();
    for round in 0..args.rounds {
        let (sink_table, bulk_table) =
            (format!("sink_events_{round}"), format!("bulk_events_{round}"));
        if round % 2 == 0 {
            timings.sink.push(time_sink(args, url, dir, &sink_table).await?);
            timings.bulk.push(time_bulk(args, &client, &rows, &bulk_table).await?);
        } else {
            timings.bulk.push(time_bulk(args, &client, &rows, &bulk_table).await?);
            timings.sink.push(time_sink(args, url, dir, &sink_table).await?);
        }
        for table in [sink_table, bulk_table] {
            let count: u64 =
                client.query_raw(&format!("SELECT count() FROM {db}.{table}")).fetch_one().await?;
            ensure!(count == args.events, "{table} holds {count} rows, expected {}", args.events);
        }
    }
    root.query_raw(&format!("DROP DATABASE {db} SYNC")).execute().await?;
    Ok((timings, server))
}

/// Elapsed seconds of each timed run.
#[derive(Debug, Default)]
struct Timings {
    sink: Vec<f64>,
    bulk: Vec<f64>,
}

fn best(runs: &[f64]) -> f64 {
    runs.iter().copied().fold(f64::INFINITY, f64::min)
}

/// The middle run (the faster of the two middle ones for an even count).
fn median(runs: &[f64]) -> f64 {
    let mut sorted = runs.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len().saturating_sub(1) / 2).copied().unwrap_or(f64::INFINITY)
}

/// The sink over the whole log into a new table `table`, from setup to return.
async fn time_sink(
    args: &Args,
    url: &str,
    dir: &std::path::Path,
    table: &str,
) -> anyhow::Result<f64> {
    let config = ClickHouseSinkConfig {
        database: args.database.clone(),
        table: table.to_owned(),
        batch_rows_max: args.batch_rows,
        ..ClickHouseSinkConfig::new(url)
    };
    let started = Instant::now();
    let source = LogSource::offline(open_reader(dir)?);
    let progress = mempulse_sink_clickhouse::run(config, source, std::future::pending()).await?;
    let elapsed = started.elapsed().as_secs_f64();
    ensure!(progress.rows == args.events, "the sink exported {} of {}", progress.rows, args.events);
    Ok(elapsed)
}

/// The prepared rows into a new table `table` (the sink's structure), `batch_rows` per INSERT.
async fn time_bulk(
    args: &Args,
    client: &Client,
    rows: &[BulkRow],
    table: &str,
) -> anyhow::Result<f64> {
    let db = &args.database;
    client.query_raw(&format!("CREATE TABLE {db}.{table} AS {db}.sink_events_0")).execute().await?;
    let started = Instant::now();
    for chunk in rows.chunks(usize::try_from(args.batch_rows)?) {
        // Synchronous inserts, as the sink's (recent servers default to async_insert = 1).
        let mut insert = client.insert::<BulkRow>(table).await?.with_setting("async_insert", "0");
        for row in chunk {
            insert.write(row).await?;
        }
        insert.end().await?;
    }
    Ok(started.elapsed().as_secs_f64())
}

/// A row of the sink's table (same columns and types), owned and built ahead of time.
#[derive(Debug, Row, Serialize)]
struct BulkRow {
    seq: u64,
    ts: i64,
    kind: &'static str,
    source: String,
    origin: &'static str,
    raft_index: Option<u64>,
    tx_hash: Option<[u8; 32]>,
    sender: Option<[u8; 20]>,
    height: Option<u64>,
    reason: &'static str,
    #[serde(serialize_with = "as_bytes")]
    payload: Vec<u8>,
}

fn as_bytes<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_bytes(bytes)
}

/// The log's records as bulk rows, in seq order.
fn bulk_rows(dir: &std::path::Path) -> anyhow::Result<Vec<BulkRow>> {
    let reader = open_reader(dir)?;
    let mut rows = Vec::new();
    let mut failed = None;
    reader.scan_with(mempulse_primitives::Seq(0), usize::MAX, |seq, payload| {
        match Event::from_bytes(payload) {
            Ok(event) => rows.push(bulk_row(seq.0, &event, payload.to_vec())),
            Err(e) => failed = Some(e),
        }
        if failed.is_some() {
            std::ops::ControlFlow::Break(())
        } else {
            std::ops::ControlFlow::Continue(())
        }
    })?;
    if let Some(e) = failed {
        bail!("generated record does not decode: {e}");
    }
    Ok(rows)
}

fn bulk_row(seq: u64, event: &Event, payload: Vec<u8>) -> BulkRow {
    let (height, sender, reason) = match &event.kind {
        EventKind::TxReceived { tx, .. } | EventKind::TxAdmitted { tx, .. } => {
            (None, Some(tx.sender.0), "")
        }
        EventKind::TxRejected { reason, .. } => (None, None, reason.as_str()),
        EventKind::TxEvicted { reason, .. } => (None, None, reason.as_str()),
        EventKind::TxIncluded { height, .. } | EventKind::BlockCommitted { height, .. } => {
            (Some(height.0), None, "")
        }
        _ => (None, None, ""),
    };
    BulkRow {
        seq,
        ts: i64::try_from(event.observed_at.0).unwrap_or(i64::MAX),
        kind: event.kind.as_str(),
        source: match event.source {
            Source::Lane(lane) => format!("lane:{lane}"),
            Source::Peer(node) => format!("peer:{node}"),
            other => other.as_str().to_owned(),
        },
        origin: if event.is_replicated() { "replicated" } else { "local" },
        raft_index: event.origin.raft_index().map(|i| i.0),
        tx_hash: event.kind.tx_hash().map(|h| h.0),
        sender,
        height,
        reason,
        payload,
    }
}

/// Writes the generated log; returns the payload bytes written.
fn write_log(dir: &std::path::Path, events: u64) -> anyhow::Result<u64> {
    let mut wal = Wal::open(WalConfig::new(dir).with_sync(SyncPolicy::Never))?;
    let (mut seq, mut bytes) = (1u64, 0u64);
    while seq <= events {
        let end = events.min(seq + 9_999);
        let records: Vec<Vec<u8>> = (seq..=end).map(|s| event(s).to_bytes()).collect();
        bytes += records.iter().map(|r| r.len() as u64).sum::<u64>();
        wal.append(&records)?;
        seq = end + 1;
    }
    wal.sync()?;
    Ok(bytes)
}

/// The event at `seq`: per group of 8 seqs, a transaction is received, admitted, then
/// included (a block every 8 groups) or, one time in four, rejected or evicted.
fn event(seq: u64) -> Event {
    let n = seq / 8;
    let kind = match seq % 8 {
        0 | 3 | 6 => EventKind::TxReceived { tx: tx(seq), lane: Lane::ALL[0] },
        1 | 4 => EventKind::TxAdmitted { tx: tx(seq - 1), subpool: Subpool::ALL[0] },
        2 => EventKind::TxIncluded { hash: hash(seq - 2), height: Height(n) },
        5 if n.is_multiple_of(4) => {
            EventKind::TxRejected { hash: hash(seq), reason: RejectReason::ALL[1] }
        }
        5 => EventKind::TxEvicted { hash: hash(seq - 1), reason: EvictReason::ALL[0] },
        _ if n.is_multiple_of(8) => {
            EventKind::BlockCommitted { height: Height(n), txs: vec![hash(seq); 4] }
        }
        _ => EventKind::ProposerChanged { height: Height(n), proposer: ValidatorId(n % 4) },
    };
    let (source, origin) = match kind {
        EventKind::TxReceived { .. } => (Source::Lane(Lane::ALL[0]), Origin::Local),
        _ => (Source::Mempool, Origin::Replicated { raft_index: RaftIndex(n) }),
    };
    Event { observed_at: UnixMillis(1_700_000_000_000 + seq), source, origin, kind }
}
