//! `mempulse replay` on logs written by the real WAL: JSON digest lines that match an
//! in-process replay, checkpoints written and resumed from, the log left untouched, and clear
//! errors for bad arguments.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Command,
    time::SystemTime,
};

use mempulse_primitives::{
    DropReason, Event, EventKind, Lane, Origin, RaftIndex, Seq, SequencedEvent, Source, Subpool,
    Tx, UnixMillis,
};
use mempulse_replay::{ReplayConfig, Replayer};
use mempulse_wal::{SyncPolicy, Wal, WalConfig};

use crate::support::{BIN, synthetic_tx};

const EVENTS: u64 = 600;

fn tx(i: u64) -> Tx {
    synthetic_tx(i, 17)
}

/// A small mix: per transaction a local receipt, a replicated admission (queued), a replicated
/// promotion; every tenth is dropped by its lane instead.
fn events() -> Vec<Event> {
    let mut out = Vec::new();
    let mut i = 0;
    while (out.len() as u64) < EVENTS {
        i += 1;
        let t = tx(i);
        let local = |kind| Event {
            observed_at: UnixMillis(i),
            source: Source::Lane(Lane::Rpc),
            origin: Origin::Local,
            kind,
        };
        let replicated = |kind| Event {
            observed_at: UnixMillis(i),
            source: Source::Mempool,
            origin: Origin::Replicated { raft_index: RaftIndex(i) },
            kind,
        };
        if i % 10 == 0 {
            out.push(local(EventKind::TxDropped {
                hash: Some(t.hash),
                reason: DropReason::QueueFull,
                lane: Lane::Rpc,
                depth_current: 9,
                depth_peak: 9,
            }));
            continue;
        }
        out.push(local(EventKind::TxReceived { tx: t.clone(), lane: Lane::Rpc }));
        out.push(replicated(EventKind::TxPromoted { hash: t.hash }));
        out.insert(
            out.len() - 1,
            replicated(EventKind::TxAdmitted { tx: t, subpool: Subpool::Queued }),
        );
    }
    out.truncate(usize::try_from(EVENTS).unwrap());
    out
}

fn write_log(dir: &Path) -> Vec<Event> {
    let events = events();
    let config = WalConfig::new(dir).with_segment_size_bytes(16 << 10).with_sync(SyncPolicy::Never);
    let mut wal = Wal::open(config).unwrap();
    let payloads: Vec<Vec<u8>> = events.iter().map(Event::to_bytes).collect();
    wal.append(&payloads).unwrap();
    wal.sync().unwrap();
    events
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).env("RUST_LOG", "warn").output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn json_lines(out: &str) -> Vec<serde_json::Value> {
    out.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

/// Name → (length, modification time, bytes) of every file in `dir`.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u64, SystemTime, Vec<u8>)> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let meta = std::fs::metadata(&path).unwrap();
            let bytes = std::fs::read(&path).unwrap();
            (path, (meta.len(), meta.modified().unwrap(), bytes))
        })
        .collect()
}

/// The digest points an in-process replay reports, as (seq, raft index, digest hex, events).
fn expected_points(events: &[Event], every: u64) -> Vec<(u64, u64, String, u64)> {
    let mut r =
        Replayer::new(ReplayConfig { digest_every_events: every, ..ReplayConfig::default() });
    let mut out = Vec::new();
    for (i, event) in events.iter().enumerate() {
        let seq = Seq(i as u64 + 1);
        if let Some(p) = r.apply(&SequencedEvent { seq, event: event.clone() }).unwrap() {
            out.push((p.seq.get(), p.raft_index.get(), p.digest.to_string(), p.events));
        }
    }
    out
}

fn points_of(lines: &[serde_json::Value]) -> Vec<(u64, u64, String, u64)> {
    lines
        .iter()
        .filter(|l| l.get("summary").is_none())
        .map(|l| {
            (
                l["seq"].as_u64().unwrap(),
                l["raft_index"].as_u64().unwrap(),
                l["digest"].as_str().unwrap().to_owned(),
                l["events"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn replay_prints_json_digests_and_leaves_the_log_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let events = write_log(dir.path());
    let before = snapshot(dir.path());
    let path = dir.path().to_str().unwrap();
    let (code, out, err) = run(&["replay", "--wal", path, "--every", "100", "--json"]);
    assert_eq!(code, 0, "{err}");
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 7, "six points and a summary: {out}");
    assert_eq!(points_of(&lines), expected_points(&events, 100));
    let summary = lines.last().unwrap();
    assert_eq!(summary["summary"], true);
    assert_eq!(
        (summary["events"].as_u64(), summary["last_seq"].as_u64()),
        (Some(EVENTS), Some(EVENTS))
    );
    assert_eq!(summary["anomalies"], 0);
    assert!(summary["pool_txs"].as_u64().unwrap() > 100);
    assert_eq!(snapshot(dir.path()), before, "the log directory changed");

    let (code, out, err) = run(&["replay", "--wal", path, "--every", "250", "--to", "520"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.lines().next().unwrap().starts_with("seq=250 raft_index="), "{out}");
    assert!(out.lines().last().unwrap().starts_with("replayed 520 events (seq 1..=520)"), "{out}");
}

#[test]
fn replay_writes_checkpoints_and_resumes_from_them() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = tempfile::tempdir().unwrap();
    let events = write_log(dir.path());
    let (wal, ckpt_path) = (dir.path().to_str().unwrap(), ckpt.path().to_str().unwrap());
    let (code, _, err) = run(&[
        "replay",
        "--wal",
        wal,
        "--every",
        "100",
        "--to",
        "300",
        "--write-checkpoints",
        ckpt_path,
        "--keep",
        "2",
    ]);
    assert_eq!(code, 0, "{err}");
    let mut names: Vec<String> = std::fs::read_dir(ckpt.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["00000000000000000200.ckpt", "00000000000000000300.ckpt"]);

    let before = snapshot(ckpt.path());
    let (code, out, err) =
        run(&["replay", "--wal", wal, "--every", "100", "--from-checkpoint", ckpt_path, "--json"]);
    assert_eq!(code, 0, "{err}");
    let lines = json_lines(&out);
    let summary = lines.last().unwrap();
    assert_eq!(summary["from_checkpoint"], 300);
    assert_eq!(
        (summary["start_seq"].as_u64(), summary["applied"].as_u64()),
        (Some(301), Some(300))
    );
    let later: Vec<_> = expected_points(&events, 100).into_iter().filter(|p| p.0 > 300).collect();
    assert_eq!(points_of(&lines), later);
    assert_eq!(snapshot(ckpt.path()), before, "--from-checkpoint wrote to its directory");

    // A damaged newest checkpoint is skipped for the older one, with a warning.
    let newest = ckpt.path().join("00000000000000000300.ckpt");
    let mut bytes = std::fs::read(&newest).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    std::fs::write(&newest, bytes).unwrap();
    let (code, out, err) = run(&["replay", "--wal", wal, "--from-checkpoint", ckpt_path, "--json"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(json_lines(&out).last().unwrap()["from_checkpoint"], 200);
    assert!(err.contains("checkpoint skipped"), "{err}");
}

#[test]
fn bad_arguments_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path());
    let wal = dir.path().to_str().unwrap();
    let missing = dir.path().join("nope");
    let (code, _, err) = run(&["replay", "--wal", missing.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("log directory") && err.contains(missing.to_str().unwrap()), "{err}");
    let (code, _, err) = run(&["replay", "--wal", wal, "--every", "0"]);
    assert_eq!(code, 2);
    assert!(err.contains("--every"), "{err}");
    let (code, _, err) = run(&["replay", "--wal", wal, "--write-checkpoints", wal]);
    assert_eq!(code, 2);
    assert!(err.contains("must not be the --wal directory"), "{err}");
    let (code, _, err) = run(&["replay"]);
    assert_eq!(code, 2);
    assert!(err.contains("--wal"), "{err}");
}

#[test]
fn replay_refuses_a_log_whose_beginning_was_purged() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path());
    let mut segments: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    segments.sort();
    assert!(segments.len() > 1, "the log needs sealed segments");
    std::fs::remove_file(&segments[0]).unwrap();
    let first: u64 = segments[1].file_stem().unwrap().to_str().unwrap().parse().unwrap();
    let (code, out, err) = run(&["replay", "--wal", dir.path().to_str().unwrap(), "--json"]);
    assert_eq!(code, 2, "{out} {err}");
    assert!(out.is_empty(), "{out}");
    assert!(err.contains(&format!("starts at seq {first}")) && err.contains("purged"), "{err}");
}

#[test]
fn replay_creates_the_checkpoint_directory_only_when_it_writes_one() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path());
    let out_dir = tempfile::tempdir().unwrap();
    let deep = out_dir.path().join("deep/x");
    let args = ["replay", "--wal", dir.path().to_str().unwrap(), "--every", "1000000000"];
    let (code, out, err) =
        run(&[&args[..], &["--write-checkpoints", deep.to_str().unwrap()]].concat());
    assert_eq!(code, 0, "{out} {err}");
    assert!(!out_dir.path().join("deep").exists(), "created without a checkpoint to write");
    let (code, out, err) = run(&[
        "replay",
        "--wal",
        dir.path().to_str().unwrap(),
        "--every",
        "10",
        "--write-checkpoints",
        deep.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out} {err}");
    assert!(deep.is_dir(), "no checkpoint written");
}
