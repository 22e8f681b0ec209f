//! `mempulse wal verify|dump|stats` against logs written by the real WAL.

use std::{path::Path, process::Command};

use mempulse_primitives::{
    Event, EventKind, Lane, Origin, RaftIndex, RejectReason, Source, TxHash, UnixMillis,
};
use mempulse_wal::{SyncPolicy, Wal, WalConfig};

const BIN: &str = env!("CARGO_BIN_EXE_mempulse");

fn event(i: u64) -> Event {
    Event {
        observed_at: UnixMillis(1_000 + i),
        source: Source::Lane(Lane::Rpc),
        origin: if i.is_multiple_of(2) {
            Origin::Replicated { raft_index: RaftIndex(i) }
        } else {
            Origin::Local
        },
        kind: EventKind::TxRejected {
            hash: TxHash([u8::try_from(i % 251).unwrap(); 32]),
            reason: RejectReason::FeeTooLow,
        },
    }
}

/// Writes `count` events into small segments (so there are sealed ones) and returns the dir.
fn write_log(dir: &Path, count: u64) {
    let config = WalConfig::new(dir).with_segment_size_bytes(8 << 10).with_sync(SyncPolicy::Never);
    let mut wal = Wal::open(config).unwrap();
    let payloads: Vec<Vec<u8>> = (1..=count).map(|i| event(i).to_bytes()).collect();
    wal.append(&payloads).unwrap();
    wal.sync().unwrap();
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).env("RUST_LOG", "warn").output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn json(line: &str) -> serde_json::Value {
    serde_json::from_str(line.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

#[test]
fn stats_and_verify_report_the_log() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 400);
    let path = dir.path().to_str().unwrap();
    let (code, out, err) = run(&["wal", "stats", path]);
    assert_eq!(code, 0, "{err}");
    let stats = json(&out);
    assert_eq!(stats["records"], 400);
    assert_eq!((stats["first_seq"].as_u64(), stats["last_seq"].as_u64()), (Some(1), Some(400)));
    assert!(stats["segments"].as_u64().unwrap() > 1);
    let (code, out, err) = run(&["wal", "verify", path]);
    assert_eq!(code, 0, "{err}");
    let report = json(&out);
    assert_eq!((report["ok"].as_bool(), report["records"].as_u64()), (Some(true), Some(400)));
}

#[test]
fn dump_prints_decoded_events_from_a_seq() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 50);
    let path = dir.path().to_str().unwrap();
    let (code, out, err) = run(&["wal", "dump", path, "--from", "10", "--limit", "5"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<_> = out.lines().map(json).collect();
    assert_eq!(lines.len(), 5);
    for (i, line) in lines.iter().enumerate() {
        let seq = 10 + i as u64;
        assert_eq!(line["seq"], seq);
        assert_eq!(line["kind"], "tx_rejected");
        assert_eq!(line["reason"], "fee_too_low");
        assert_eq!(line["observed_at_ms"], 1_000 + seq);
        let expected_index =
            if seq.is_multiple_of(2) { serde_json::json!(seq) } else { serde_json::Value::Null };
        assert_eq!(line["raft_index"], expected_index);
    }
}

#[test]
fn verify_names_segment_and_offset_of_damage_in_a_sealed_segment() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 400);
    let mut segments: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    segments.sort();
    assert!(segments.len() > 2, "expected sealed segments: {segments:?}");
    // Flip one payload byte in the middle of the first (sealed) segment.
    let victim = &segments[0];
    let mut bytes = std::fs::read(victim).unwrap();
    let offset = 1_000;
    bytes[offset] ^= 0x40;
    std::fs::write(victim, &bytes).unwrap();
    let (code, out, err) = run(&["wal", "verify", dir.path().to_str().unwrap()]);
    assert_eq!(code, 1, "stdout {out} stderr {err}");
    let report = json(&out);
    assert_eq!(report["ok"], false);
    let name = victim.file_name().unwrap().to_str().unwrap();
    assert_eq!(report["segment"], name);
    let at = report["offset"].as_u64().unwrap();
    assert!(at <= offset as u64, "damage reported at {at}, after the flipped byte {offset}");
    assert!(err.contains(name), "{err}");
}

#[test]
fn bad_arguments_are_usage_errors_not_panics() {
    let (code, _, err) = run(&["wal", "dump", "/definitely/not/here"]);
    assert_ne!(code, 0);
    assert!(!err.contains("panicked"), "{err}");
    let (code, _, err) = run(&["wal", "dump", "x", "--from", "abc"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn a_directory_without_segments_is_refused_with_a_hint() {
    let data = tempfile::tempdir().unwrap();
    write_log(&data.path().join("events"), 10);
    let path = data.path().to_str().unwrap();
    let hint = format!("did you mean {}", data.path().join("events").display());
    for args in [
        vec!["wal", "verify", path],
        vec!["wal", "stats", path],
        vec!["wal", "dump", path],
        vec!["replay", "--wal", path, "--json"],
        vec!["verify-state", "--wal", path, "--trusted-root", &"00".repeat(32), "--at", "6"],
    ] {
        let (code, out, err) = run(&args);
        assert_eq!(code, 2, "{args:?}: {out} {err}");
        assert!(err.contains(&hint), "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?}: {out}");
    }
    let empty = tempfile::tempdir().unwrap();
    let (code, _, err) = run(&["wal", "verify", empty.path().to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no log segment file"), "{err}");
}

#[test]
fn dump_refuses_a_log_that_does_not_hold_events() {
    let dir = tempfile::tempdir().unwrap();
    let config =
        WalConfig::new(dir.path()).with_segment_size_bytes(8 << 10).with_sync(SyncPolicy::Never);
    let mut wal = Wal::open(config).unwrap();
    // A record of another schema, as a Raft log holds.
    wal.append(&[vec![2u8, 0, 0, 0, 1, 2, 3], vec![2u8, 9, 9]]).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let (code, out, err) = run(&["wal", "dump", dir.path().to_str().unwrap()]);
    assert_eq!(code, 2, "{out} {err}");
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("is not an event log"), "{err}");
}
