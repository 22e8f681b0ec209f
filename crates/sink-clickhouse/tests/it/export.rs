//! Export against a real ClickHouse: table creation, row contents of every kind, resume, the
//! live tail, one part per batch, and the errors that stop the sink.

use std::time::Duration;

use clickhouse::Row;
use mempulse_primitives::{DropReason, EvictReason, FenceReason, KindCode, RejectReason, Seq};
use mempulse_sink_clickhouse::{COLUMNS, Error, LogSource, run};
use mempulse_wal::{Sequencer, SequencerConfig, SyncPolicy, Wal, WalConfig, open_reader};
use serde::Deserialize;

use crate::common::{TestDb, address, event, hash, write_log};

const TABLE: &str = "mempulse_events";

fn offline(dir: &std::path::Path) -> LogSource {
    LogSource::offline(open_reader(dir).unwrap())
}

#[derive(Debug, Row, Deserialize)]
struct Exported {
    seq: u64,
    ts_ms: i64,
    kind: String,
    source: String,
    origin: String,
    raft_index: Option<u64>,
    tx_hash_hex: Option<String>,
    sender_hex: Option<String>,
    height: Option<u64>,
    reason: String,
    payload_hex: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creates_the_table_and_writes_every_kind() {
    let db = TestDb::new("every_kind").await;
    let dir = tempfile::tempdir().unwrap();
    // Seqs 1..=36: every kind twice (`event` cycles through the 18 kinds by seq).
    write_log(dir.path(), 1, 36);
    let progress = run(db.config(), offline(dir.path()), std::future::pending()).await.unwrap();
    assert_eq!((progress.resumed_after, progress.exported, progress.rows), (Seq(0), Seq(36), 36));

    let columns: Vec<(String, String)> = db
        .client
        .query_raw("SELECT name, type FROM system.columns WHERE database = {db:String} AND table = {t:String} ORDER BY position")
        .param("db", &db.name)
        .param("t", TABLE)
        .fetch_all()
        .await
        .unwrap();
    let expected: Vec<(String, String)> =
        COLUMNS.iter().map(|(n, t)| ((*n).to_owned(), (*t).to_owned())).collect();
    assert_eq!(columns, expected);
    let engine: String = db
        .client
        .query_raw(
            "SELECT engine FROM system.tables WHERE database = {db:String} AND name = {t:String}",
        )
        .param("db", &db.name)
        .param("t", TABLE)
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(engine, "ReplacingMergeTree");

    let rows: Vec<Exported> = db
        .client
        .query_raw(&format!(
            "SELECT seq, toUnixTimestamp64Milli(ts) AS ts_ms, kind, source, origin, raft_index, \
             lower(hex(tx_hash)) AS tx_hash_hex, lower(hex(sender)) AS sender_hex, height, reason, lower(hex(payload)) AS payload_hex \
             FROM {}.{TABLE} ORDER BY seq",
            db.name
        ))
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(rows.len(), 36);
    for row in &rows {
        check_row(row);
    }
}

/// Every column of `row` against the event generated for its seq.
fn check_row(row: &Exported) {
    let seq = row.seq;
    let e = event(seq);
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    assert_eq!(row.payload_hex, hex(&e.to_bytes()), "seq {seq}: payload is the stored bytes");
    assert_eq!(row.ts_ms, 1_700_000_000_000 + i64::try_from(seq).unwrap());
    assert_eq!(row.kind, e.kind.as_str());
    if seq.is_multiple_of(3) {
        assert_eq!(
            (row.source.as_str(), row.origin.as_str()),
            (format!("peer:{}", seq % 5).as_str(), "local")
        );
        assert_eq!(row.raft_index, None);
    } else {
        assert_eq!((row.source.as_str(), row.origin.as_str()), ("mempool", "replicated"));
        assert_eq!(row.raft_index, Some(seq / 2));
    }
    let code = KindCode::ALL[usize::try_from(seq % 18).unwrap()];
    let (tx_hash, sender, height, reason) = match code {
        KindCode::TxReceived | KindCode::TxAdmitted => {
            (Some(hash(seq)), Some(address(seq % 97)), None, "")
        }
        KindCode::TxReplaced => (Some(hash(seq)), Some(address(seq)), None, ""),
        KindCode::TxRejected => (Some(hash(seq)), None, None, RejectReason::ALL[1].as_str()),
        KindCode::TxDropped => (None, None, None, DropReason::ALL[0].as_str()),
        KindCode::TxEvicted => (Some(hash(seq)), None, None, EvictReason::ALL[0].as_str()),
        KindCode::TxPromoted => (Some(hash(seq)), None, None, ""),
        KindCode::TxIncluded | KindCode::TxReopened => (Some(hash(seq)), None, Some(seq), ""),
        KindCode::BlockProposed
        | KindCode::BlockCommitted
        | KindCode::ReorgDetected
        | KindCode::ProposerChanged => (None, None, Some(seq), ""),
        KindCode::Fenced => (None, None, None, FenceReason::ALL[0].as_str()),
        _ => (None, None, None, ""),
    };
    assert_eq!(row.tx_hash_hex, tx_hash.map(|h| hex(&h.0)), "seq {seq} ({code:?}) tx_hash");
    assert_eq!(row.sender_hex, sender.map(|a| hex(&a.0)), "seq {seq} ({code:?}) sender");
    assert_eq!(row.height, height, "seq {seq} ({code:?}) height");
    assert_eq!(row.reason, reason, "seq {seq} ({code:?}) reason");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumes_after_the_highest_exported_seq() {
    let db = TestDb::new("resume").await;
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 1, 2_500);
    let first = run(db.config(), offline(dir.path()), std::future::pending()).await.unwrap();
    assert_eq!((first.exported, first.rows, first.batches), (Seq(2_500), 2_500, 3));
    assert_eq!(db.stats(TABLE).await, (2_500, 2_500, 1, 2_500));

    write_log(dir.path(), 2_501, 4_000);
    let second = run(db.config(), offline(dir.path()), std::future::pending()).await.unwrap();
    assert_eq!(
        (second.resumed_after, second.exported, second.rows),
        (Seq(2_500), Seq(4_000), 1_500)
    );
    assert_eq!(db.stats(TABLE).await, (4_000, 4_000, 1, 4_000));

    // Nothing new: nothing inserted.
    let third = run(db.config(), offline(dir.path()), std::future::pending()).await.unwrap();
    assert_eq!((third.resumed_after, third.rows, third.batches), (Seq(4_000), 0, 0));
    assert_eq!(db.stats(TABLE).await, (4_000, 4_000, 1, 4_000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follows_a_live_log_until_shutdown_and_until_the_sequencer_stops() {
    let db = TestDb::new("live").await;
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(
        WalConfig::new(dir.path()).with_segment_size_bytes(1 << 20).with_sync(SyncPolicy::Never),
    )
    .unwrap();
    let seq = Sequencer::start(wal, SequencerConfig::default()).unwrap();
    let append = |from: u64, to: u64| {
        let records = (from..=to).map(|s| event(s).to_bytes()).collect();
        seq.try_submit(records).unwrap()
    };
    append(1, 700).await.unwrap();

    // Run 1: follow the tail, then stop on the shutdown signal.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let sink = mempulse_sink_clickhouse::ClickHouseSink::new(db.config()).unwrap();
    let mut progress = sink.progress();
    let task = tokio::spawn(sink.run(LogSource::live(&seq), async move {
        let _ = stopped.await;
    }));
    for (from, to) in [(701, 1_000), (1_001, 2_345)] {
        append(from, to).await.unwrap();
    }
    let reached = tokio::time::timeout(
        Duration::from_secs(30),
        progress.wait_for(|p| p.exported == Seq(2_345)),
    );
    reached.await.expect("live export reached the tail").unwrap();
    stop.send(()).unwrap();
    let done = task.await.unwrap().unwrap();
    assert_eq!(done.exported, Seq(2_345));
    assert_eq!(db.stats(TABLE).await, (2_345, 2_345, 1, 2_345));

    // Run 2: resume, then the sequencer stops; the sink exports the rest and returns.
    let task = tokio::spawn(run(db.config(), LogSource::live(&seq), std::future::pending()));
    append(2_346, 3_000).await.unwrap();
    seq.shutdown().await.unwrap();
    let done = tokio::time::timeout(Duration::from_secs(30), task).await.unwrap().unwrap().unwrap();
    assert_eq!((done.resumed_after, done.exported), (Seq(2_345), Seq(3_000)));
    assert_eq!(db.stats(TABLE).await, (3_000, 3_000, 1, 3_000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_batch_is_one_insert_and_one_part() {
    let db = TestDb::new("one_part").await;
    let dir = tempfile::tempdir().unwrap();
    // An empty log: the run creates the table and exports nothing.
    std::fs::create_dir_all(dir.path()).unwrap();
    drop(Wal::open(WalConfig::new(dir.path()).with_segment_size_bytes(1 << 20)).unwrap());
    let empty = run(db.config(), offline(dir.path()), std::future::pending()).await.unwrap();
    assert_eq!(empty.rows, 0);
    // With merges stopped, every INSERT leaves exactly the parts it wrote.
    db.client
        .query_raw(&format!("SYSTEM STOP MERGES {}.{TABLE}", db.name))
        .execute()
        .await
        .unwrap();
    write_log(dir.path(), 1, 10_500);
    let progress = run(db.config(), offline(dir.path()), std::future::pending()).await.unwrap();
    assert_eq!(progress.batches, 11);
    let parts: u64 = db
        .client
        .query_raw("SELECT count() FROM system.parts WHERE database = {db:String} AND table = {t:String} AND active")
        .param("db", &db.name)
        .param("t", TABLE)
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(parts, 11, "one part per batch of at most 1,000 rows");
    assert_eq!(db.stats(TABLE).await, (10_500, 10_500, 1, 10_500));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stops_on_a_table_it_cannot_own() {
    let db = TestDb::new("refuse").await;
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 1, 50);

    // Absent and not to be created.
    let config =
        mempulse_sink_clickhouse::ClickHouseSinkConfig { create_table: false, ..db.config() };
    let err = run(config, offline(dir.path()), std::future::pending()).await.unwrap_err();
    assert!(matches!(err, Error::TableMissing { .. }), "{err:?}");
    assert!(!err.is_retryable());

    // Other columns.
    let other =
        mempulse_sink_clickhouse::ClickHouseSinkConfig { table: "other".into(), ..db.config() };
    db.client
        .query_raw(&format!(
            "CREATE TABLE {}.other (seq UInt64) ENGINE = MergeTree ORDER BY seq",
            db.name
        ))
        .execute()
        .await
        .unwrap();
    let err = run(other, offline(dir.path()), std::future::pending()).await.unwrap_err();
    let Error::SchemaMismatch { found, .. } = &err else { panic!("{err:?}") };
    assert_eq!(found, &["seq UInt64"]);

    // Filled from a longer log: exporting this one would mix two histories.
    let longer = tempfile::tempdir().unwrap();
    write_log(longer.path(), 1, 80);
    run(db.config(), offline(longer.path()), std::future::pending()).await.unwrap();
    let err = run(db.config(), offline(dir.path()), std::future::pending()).await.unwrap_err();
    assert!(matches!(err, Error::AheadOfLog { exported: Seq(80), log_last: Seq(50) }), "{err:?}");
    assert_eq!(db.stats(TABLE).await, (80, 80, 1, 80));
}
