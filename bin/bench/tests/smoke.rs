//! Runs the built `mempulse-bench` on tiny inputs: every implementation prints one JSON line with
//! every field, and a mode an implementation cannot do prints `error` and exits 2.
#![allow(
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] fns: a failed expectation is the test failing"
)]

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Map, Value};

const BIN: &str = env!("CARGO_BIN_EXE_mempulse-bench");
const RECORDS: u64 = 2_000;

/// Fields every measured `wal` line carries.
const WAL_FIELDS: [&str; 15] = [
    "impl",
    "records",
    "size",
    "batch",
    "sync",
    "preallocate",
    "append_s",
    "append_rec_per_s",
    "append_MB_per_s",
    "batch_lat_p50_us",
    "batch_lat_p99_us",
    "scan_s",
    "scan_rec_per_s",
    "reopen_s",
    "dir_bytes",
];

fn run_wal(dir: &Path, extra: &[&str]) -> Output {
    let records = RECORDS.to_string();
    let mut args = vec!["wal", "--records", &records, "--size", "100", "--batch", "100"];
    args.extend_from_slice(extra);
    Command::new(BIN)
        .args(&args)
        .arg("--dir")
        .arg(dir.join("log"))
        .output()
        .expect("run mempulse-bench")
}

/// The single JSON object the run printed.
fn json_line(output: &Output) -> Map<String, Value> {
    let stdout = String::from_utf8(output.stdout.clone()).expect("utf-8 stdout");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "exactly one line, got {stdout:?}");
    match serde_json::from_str(lines[0]).expect("stdout is JSON") {
        Value::Object(map) => map,
        other => panic!("not a JSON object: {other}"),
    }
}

fn assert_measured(implementation: &str, sync: &str) {
    assert_measured_with(implementation, sync, &[]);
}

fn assert_measured_with(implementation: &str, sync: &str, extra: &[&str]) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut args = vec!["--impl", implementation, "--sync", sync];
    args.extend_from_slice(extra);
    let output = run_wal(dir.path(), &args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{implementation} --sync {sync} failed: {stderr}");
    let line = json_line(&output);
    for field in WAL_FIELDS {
        assert!(line.contains_key(field), "{implementation}: no `{field}` in {line:?}");
    }
    assert!(!line.contains_key("error"), "{line:?}");
    assert_eq!(line["impl"], implementation);
    assert_eq!(line["sync"], sync);
    assert_eq!(line["records"], RECORDS);
    for rate in ["append_rec_per_s", "scan_rec_per_s"] {
        assert!(line[rate].as_f64().is_some_and(|r| r > 0.0), "{rate} in {line:?}");
    }
    assert!(line["dir_bytes"].as_u64().is_some_and(|b| b >= RECORDS * 100), "{line:?}");
}

/// mempulse's runs use 1 MiB segments (its default, 64 MiB, preallocated twice over in every
/// run, would put hundreds of MiB on the test machine's disk at once).
const SEGMENT: [&str; 2] = ["--segment-bytes", "1048576"];

#[test]
fn mempulse_measures_every_field() {
    assert_measured_with("mempulse", "never", &SEGMENT);
    assert_measured_with("mempulse", "always", &SEGMENT);
    for mode in ["zero-fill", "fallocate", "recycle"] {
        assert_measured_with("mempulse", "never", &[SEGMENT[0], SEGMENT[1], "--preallocate", mode]);
    }
}

#[test]
fn mempulse_sequencer_measures_every_field() {
    assert_measured_with("mempulse-seq", "never", &SEGMENT);
    assert_measured_with("mempulse-seq", "always", &SEGMENT);
}

#[test]
fn the_segment_size_is_reported_and_refused_by_peers() {
    let dir = tempfile::tempdir().unwrap();
    let output =
        run_wal(dir.path(), &["--impl", "mempulse", "--sync", "never", SEGMENT[0], SEGMENT[1]]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(json_line(&output)["segment_bytes"], 1_048_576);
    let dir = tempfile::tempdir().unwrap();
    let output =
        run_wal(dir.path(), &["--impl", "raft-engine", "--sync", "never", SEGMENT[0], SEGMENT[1]]);
    assert_eq!(output.status.code(), Some(2));
    assert!(json_line(&output)["error"].as_str().is_some_and(|e| e.contains("--segment-bytes")));
    let output =
        run_wal(dir.path(), &["--impl", "mempulse", "--sync", "never", SEGMENT[0], "1024"]);
    assert_eq!(output.status.code(), Some(2), "below the smallest segment: a usage error");
}

#[test]
fn raft_engine_measures_every_field() {
    assert_measured("raft-engine", "never");
    assert_measured("raft-engine", "always");
}

#[test]
fn okaywal_measures_every_field() {
    assert_measured("okaywal", "always");
}

#[test]
fn unsupported_mode_reports_error_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let output = run_wal(dir.path(), &["--impl", "okaywal", "--sync", "never"]);
    assert_eq!(output.status.code(), Some(2));
    let line = json_line(&output);
    assert!(line["error"].as_str().is_some_and(|e| !e.is_empty()), "{line:?}");
    assert_eq!(line["impl"], "okaywal");
    assert_eq!(line["sync"], "never");
    assert!(!dir.path().join("log").exists(), "an unsupported run must not touch the disk");

    let output = run_wal(
        dir.path(),
        &["--impl", "raft-engine", "--sync", "never", "--preallocate", "recycle"],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(json_line(&output)["error"].as_str().is_some_and(|e| e.contains("preallocate")));
}

#[test]
fn non_empty_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("log")).unwrap();
    std::fs::write(dir.path().join("log").join("stale"), b"x").unwrap();
    let output = run_wal(dir.path(), &["--impl", "raft-engine", "--sync", "never"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    assert!(String::from_utf8_lossy(&output.stderr).contains("not empty"));
}

/// Fields every `mempool` line carries.
const MEMPOOL_FIELDS: [&str; 12] = [
    "pool_size",
    "senders",
    "policy",
    "adds_per_s",
    "add_ns_per_op",
    "build_10k_ms",
    "build_ns_per_tx",
    "block_txs",
    "commit_recheck_ms",
    "snapshot_digest_ms",
    "snapshot_ms",
    "digest_ms",
];

#[test]
fn mempool_measures_every_field_under_both_policies() {
    for policy in ["priority", "fifo"] {
        let output = Command::new(BIN)
            .args(["mempool", "--pool-size", "2000", "--senders", "200", "--block-txs", "500"])
            .args(["--reps", "1", "--seed", "7", "--policy", policy])
            .output()
            .expect("run mempulse-bench");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "mempool --policy {policy} failed: {stderr}");
        let line = json_line(&output);
        for field in MEMPOOL_FIELDS {
            assert!(line.contains_key(field), "{policy}: no `{field}` in {line:?}");
        }
        assert_eq!(line["policy"], policy);
        assert_eq!(line["pool_size"], 2000);
        assert_eq!(line["admitted"], 2000);
        // A block of about 500 transactions, all committed out of the pool.
        let block = line["block_txs"].as_u64().expect("block_txs");
        assert!((400..=600).contains(&block), "{line:?}");
        assert_eq!(line["pool_after_commit"].as_u64(), Some(2000 - block));
        for rate in ["adds_per_s", "add_ns_per_op", "build_ns_per_tx", "snapshot_digest_ms"] {
            assert!(line[rate].as_f64().is_some_and(|r| r > 0.0), "{rate} in {line:?}");
        }
    }
}

#[test]
fn mempool_rejects_a_zero_pool_size() {
    let output = Command::new(BIN).args(["mempool", "--pool-size", "0"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2), "clap usage error");
    assert!(output.stdout.is_empty());
}

/// The temp dirs under `tmp` whose names start with `prefix`.
fn dirs_named(tmp: &Path, prefix: &str) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(tmp)
        .expect("read the temp dir")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .map(|e| e.path())
        .collect()
}

#[test]
fn an_interrupted_run_removes_its_temp_dir_and_exits_with_the_signal() {
    for (signal, code) in [("TERM", 143), ("INT", 130)] {
        let tmp = tempfile::tempdir().unwrap();
        let mut child = Command::new(BIN)
            .args(["replay", "--events", "5000000", "--segment-bytes", "1048576"])
            .env("TMPDIR", tmp.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // The work dir exists once the run is under way (the generation takes far longer).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while dirs_named(tmp.path(), "mempulse-bench-replay-").is_empty() {
            assert!(std::time::Instant::now() < deadline, "no work dir appeared");
            assert!(child.try_wait().unwrap().is_none(), "the run ended early");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let pid = child.id().to_string();
        assert!(
            Command::new("kill").args([&format!("-{signal}"), &pid]).status().unwrap().success()
        );
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(code), "SIG{signal}: {stderr}");
        assert!(stderr.contains("removed 1 temp dir(s)"), "SIG{signal}: {stderr}");
        assert!(output.stdout.is_empty(), "no report for an interrupted run");
        assert_eq!(
            dirs_named(tmp.path(), "mempulse-bench-replay-"),
            Vec::<std::path::PathBuf>::new()
        );
    }
}
