//! `mempulse verify-state` on a log written by the real WAL: a trusted root that matches (exit
//! 0) or not (exit 1), a peer over HTTP whose log has one corrupted entry (exit 1 naming that
//! entry's index exactly) or none (exit 0), and usage errors (exit 2).

use std::{
    io::{BufRead as _, BufReader, Write as _},
    net::{SocketAddr, TcpListener},
    path::Path,
    process::Command,
};

use mempulse_primitives::{
    Event, EventKind, Lane, Origin, RaftIndex, Seq, SequencedEvent, Source, Subpool, Tx, UnixMillis,
};
use mempulse_replay::{ReplayConfig, Replayer};
use mempulse_wal::{SyncPolicy, Wal, WalConfig};
use serde_json::Value;

use crate::support::{BIN, synthetic_tx};

/// Raft entries in the log; each admits one transaction and promotes the one before.
const ENTRIES: u64 = 300;
/// The entry whose admission the peer's copy corrupts.
const CORRUPTED: u64 = 173;

fn tx(i: u64) -> Tx {
    synthetic_tx(i, 11)
}

/// Per entry: a local receipt, then the entry's replicated facts.
fn events() -> Vec<Event> {
    let mut out = Vec::new();
    for i in 1..=ENTRIES {
        let event = |origin, kind| Event {
            observed_at: UnixMillis(i),
            source: Source::Mempool,
            origin,
            kind,
        };
        let replicated = Origin::Replicated { raft_index: RaftIndex(i) };
        out.push(event(Origin::Local, EventKind::TxReceived { tx: tx(i), lane: Lane::Rpc }));
        out.push(event(replicated, EventKind::TxAdmitted { tx: tx(i), subpool: Subpool::Queued }));
        if i > 1 {
            out.push(event(replicated, EventKind::TxPromoted { hash: tx(i - 1).hash }));
        }
    }
    out
}

/// The same log as another replica whose admission at [`CORRUPTED`] went wrong.
fn corrupted() -> Vec<Event> {
    let mut events = events();
    for event in &mut events {
        if event.origin.raft_index() == Some(RaftIndex(CORRUPTED))
            && let EventKind::TxAdmitted { tx, .. } = &mut event.kind
        {
            tx.hash.0[31] ^= 0xff;
        }
    }
    events
}

fn write_log(dir: &Path, events: &[Event]) {
    let config = WalConfig::new(dir).with_segment_size_bytes(16 << 10).with_sync(SyncPolicy::Never);
    let mut wal = Wal::open(config).unwrap();
    let payloads: Vec<Vec<u8>> = events.iter().map(Event::to_bytes).collect();
    wal.append(&payloads).unwrap();
    wal.sync().unwrap();
}

fn replayed(events: &[Event]) -> Replayer {
    let config = ReplayConfig { digest_every_events: 0, ..ReplayConfig::default() };
    let mut replayer = Replayer::new(config);
    for (i, event) in events.iter().enumerate() {
        let seq = Seq(i as u64 + 1);
        replayer.apply(&SequencedEvent { seq, event: event.clone() }).unwrap();
    }
    replayer
}

fn verify(args: &[&str]) -> (i32, Value, String) {
    let out =
        Command::new(BIN).arg("verify-state").args(args).env("RUST_LOG", "warn").output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let report = serde_json::from_str(stdout.trim()).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), report, String::from_utf8(out.stderr).unwrap())
}

/// A peer answering `GET /v1/state-root[?index=N]` like the node's API, from `replayer`.
fn serve_roots(replayer: Replayer) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            // Read the whole head: closing with unread bytes would reset the connection.
            let mut reader = BufReader::new(&stream);
            let mut line = String::new();
            let mut header = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                header.clear();
            }
            let path = line.split_whitespace().nth(1).unwrap_or("");
            let index = path.split_once("?index=").map(|(_, i)| RaftIndex(i.parse().unwrap()));
            let found = index.map_or(Some(replayer.digest()), |i| replayer.digest_at(i));
            let (status, body) = match found {
                Some(d) => (
                    "200 OK",
                    format!(
                        r#"{{"raft_index":{},"seq":{},"digest":"{}"}}"#,
                        d.raft_index, d.seq, d.digest
                    ),
                ),
                None => ("404 Not Found", r#"{"code":"NOT_FOUND"}"#.to_owned()),
            };
            let _ =
                write!(stream, "HTTP/1.0 {status}\r\nContent-Type: application/json\r\n\r\n{body}");
        }
    });
    addr
}

#[test]
fn a_trusted_root_matches_or_not() {
    let dir = tempfile::tempdir().unwrap();
    let events = events();
    write_log(dir.path(), &events);
    let wal = dir.path().to_str().unwrap();
    let good = replayed(&events).digest_at(RaftIndex(200)).unwrap().digest.to_string();
    let bad = replayed(&corrupted()).digest_at(RaftIndex(200)).unwrap().digest.to_string();
    assert_ne!(good, bad);

    let (code, report, err) = verify(&["--wal", wal, "--trusted-root", &good, "--at", "200"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        (report["result"].as_str(), report["raft_index"].as_u64()),
        (Some("match"), Some(200))
    );

    let (code, report, err) = verify(&["--wal", wal, "--trusted-root", &bad, "--at", "200"]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(report["result"], "mismatch");
    assert_eq!(report["diverged_at_or_before"], 200);

    // The last entry is still open (nothing above it sealed it): not comparable.
    let (code, _, err) = verify(&["--wal", wal, "--trusted-root", &good, "--at", "9999"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not sealed"), "{err}");
}

#[test]
fn a_peer_with_one_corrupted_entry_is_bisected_to_that_entry() {
    let dir = tempfile::tempdir().unwrap();
    let events = events();
    write_log(dir.path(), &events);
    let wal = dir.path().to_str().unwrap();

    let healthy = serve_roots(replayed(&events));
    let (code, report, err) = verify(&["--wal", wal, "--peer", &format!("http://{healthy}")]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(report["result"], "match");
    assert_eq!(report["through"], ENTRIES - 1);

    let diverged = serve_roots(replayed(&corrupted()));
    let (code, report, err) = verify(&["--wal", wal, "--peer", &diverged.to_string()]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(report["result"], "mismatch");
    assert_eq!(report["first_divergent_index"], CORRUPTED, "{report}");
    // Bisection, not a scan: about 2·log2(300) requests.
    assert!(report["compared"].as_u64().unwrap() <= 20, "{report}");
}

#[test]
fn usage_and_io_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), &events());
    let wal = dir.path().to_str().unwrap();
    let root = format!("0x{}", "00".repeat(32));
    for args in [
        vec!["--wal", wal],
        vec!["--wal", wal, "--trusted-root", &root],
        vec!["--wal", wal, "--trusted-root", "0x12", "--at", "3"],
        vec!["--wal", wal, "--trusted-root", &root, "--at", "3", "--peer", "127.0.0.1:1"],
        vec!["--wal", wal, "--peer", "https://127.0.0.1:1"],
        vec!["--wal", "/nonexistent/mempulse-wal", "--trusted-root", &root, "--at", "3"],
    ] {
        let (code, _, err) = verify(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
    }
    // A peer that does not answer is an IO error, not a mismatch.
    let closed = crate::support::free_ports(1)[0];
    let (code, _, err) = verify(&["--wal", wal, "--peer", &format!("127.0.0.1:{closed}")]);
    assert_eq!(code, 2, "{err}");
}
