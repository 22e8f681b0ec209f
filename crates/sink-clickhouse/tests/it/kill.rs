//! The sink killed with SIGKILL while batches are in flight, restarted, killed again, and
//! finally run to the end: ClickHouse must hold every seq of the log exactly once.
//!
//! The child is this same test binary, re-executed with `--exact kill::kill_child` and env
//! vars (as `mempulse-wal`'s crash test does), so it works under `cargo test` and nextest. It
//! prints `EXPORTED <seq>` after each acknowledged batch and `DONE <seq>` at the end.
//! `MEMPULSE_SINK_KILL_EVENTS` (default 1,000,000), `MEMPULSE_SINK_KILL_CYCLES` (default 5)
//! and `MEMPULSE_SINK_KILL_SEED` tune it.

use std::{
    io::{BufRead, BufReader, Write},
    process::{Command, Stdio},
    sync::mpsc::{self, Receiver, RecvTimeoutError},
    time::{Duration, Instant},
};

use mempulse_sink_clickhouse::{ClickHouseSinkConfig, LogSource};
use mempulse_wal::open_reader;
use rand::{Rng, SeedableRng, rngs::StdRng};

use crate::common::{TestDb, server_url, write_log};

const CHILD_DIR_ENV: &str = "MEMPULSE_SINK_KILL_CHILD_DIR";
const CHILD_DB_ENV: &str = "MEMPULSE_SINK_KILL_CHILD_DB";
const TABLE: &str = "mempulse_events";
const BATCH_ROWS: u32 = 25_000;
const CYCLE_DEADLINE: Duration = Duration::from_secs(120);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// The child: exports the log until killed or done.
#[test]
#[ignore = "child process of sigkill_mid_batch_then_restart_exports_every_row_once"]
fn kill_child() {
    let (Ok(dir), Ok(database)) = (std::env::var(CHILD_DIR_ENV), std::env::var(CHILD_DB_ENV))
    else {
        return;
    };
    let config = ClickHouseSinkConfig {
        database,
        batch_rows_max: BATCH_ROWS,
        retry_backoff_min_ms: 10,
        retry_backoff_max_ms: 200,
        ..ClickHouseSinkConfig::new(server_url())
    };
    runtime().block_on(async move {
        let sink = mempulse_sink_clickhouse::ClickHouseSink::new(config).unwrap();
        let mut progress = sink.progress();
        let printer = tokio::spawn(async move {
            while progress.changed().await.is_ok() {
                let exported = progress.borrow_and_update().exported;
                let mut out = std::io::stdout().lock();
                writeln!(out, "EXPORTED {exported}").unwrap();
                out.flush().unwrap();
            }
        });
        let source = LogSource::offline(open_reader(&dir).unwrap());
        let done = sink.run(source, std::future::pending()).await.unwrap();
        printer.await.unwrap();
        let mut out = std::io::stdout().lock();
        writeln!(out, "DONE {}", done.exported).unwrap();
        out.flush().unwrap();
    });
}

/// Spawns the child and a thread forwarding its stdout lines.
fn spawn_child(dir: &str, database: &str) -> (std::process::Child, Receiver<String>) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["kill::kill_child", "--exact", "--nocapture", "--ignored", "--test-threads=1"])
        .env(CHILD_DIR_ENV, dir)
        .env(CHILD_DB_ENV, database)
        .env(crate::common::URL_ENV, server_url())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::sync_channel(1024);
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// Reads lines until `batches` EXPORTED lines or a DONE line; returns the last seq reported and
/// whether DONE was seen.
fn read_until(rx: &Receiver<String>, batches: usize, deadline: Instant) -> (u64, bool) {
    let (mut seen, mut last) = (0, 0);
    while seen < batches {
        let wait = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(wait) {
            Ok(line) => {
                if let Some(seq) = line.strip_prefix("EXPORTED ") {
                    last = seq.parse().unwrap();
                    seen += 1;
                } else if let Some(seq) = line.strip_prefix("DONE ") {
                    return (seq.parse().unwrap(), true);
                }
            }
            Err(RecvTimeoutError::Disconnected) => return (last, false),
            Err(RecvTimeoutError::Timeout) => panic!("child silent past the deadline"),
        }
    }
    (last, false)
}

#[test]
fn sigkill_mid_batch_then_restart_exports_every_row_once() {
    let env =
        |name: &str, default: u64| std::env::var(name).map_or(default, |v| v.parse().unwrap());
    let events = env("MEMPULSE_SINK_KILL_EVENTS", 1_000_000);
    let cycles = env("MEMPULSE_SINK_KILL_CYCLES", 5);
    let seed = env("MEMPULSE_SINK_KILL_SEED", 0x5EED_C1C4);
    println!("kill test: {events} events, {cycles} kills, seed {seed} (MEMPULSE_SINK_KILL_SEED)");
    let mut rng = StdRng::seed_from_u64(seed);
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 1, events);
    println!("log written in {:?}", started.elapsed());
    let rt = runtime();
    let db = rt.block_on(TestDb::new("kill"));
    let dir_str = dir.path().to_str().unwrap();

    let mut exported = 0;
    for cycle in 0..cycles {
        let (mut child, rx) = spawn_child(dir_str, &db.name);
        let batches = rng.random_range(1..=3usize);
        let (reported, done) = read_until(&rx, batches, Instant::now() + CYCLE_DEADLINE);
        assert!(!done, "cycle {cycle}: the export finished before the kill; use more events");
        // Vary where in the next batch (decode, send, commit) the kill lands. The outcome is
        // checked the same way wherever it lands.
        std::thread::sleep(Duration::from_millis(rng.random_range(0..300)));
        child.kill().unwrap();
        child.wait().unwrap();
        let (count, uniq, min, max) = rt.block_on(db.stats(TABLE));
        println!(
            "cycle {cycle}: killed after seq {reported}; table holds {count} rows up to {max}"
        );
        assert_eq!(count, uniq, "cycle {cycle} (seed {seed}): duplicate rows");
        assert_eq!((min, max), (1, count), "cycle {cycle} (seed {seed}): not a gapless prefix");
        assert!(max >= reported && max > exported, "cycle {cycle} (seed {seed}): no progress");
        exported = max;
    }

    let (mut child, rx) = spawn_child(dir_str, &db.name);
    let (last, done) = read_until(&rx, usize::MAX, Instant::now() + CYCLE_DEADLINE);
    assert!(child.wait().unwrap().success());
    assert!(done && last == events, "final run ended at {last}, done {done}");
    assert_eq!(rt.block_on(db.stats(TABLE)), (events, events, 1, events));
    println!("kill test passed in {:?}", started.elapsed());
}
