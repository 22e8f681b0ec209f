//! `mempulse run`: the embedded default starts, recovers its log, and stops cleanly on SIGTERM.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    sync::mpsc,
    time::Duration,
};

const BIN: &str = env!("CARGO_BIN_EXE_mempulse");
const DEADLINE: Duration = Duration::from_secs(20);

#[test]
fn run_starts_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..2 {
        let mut child = Command::new(BIN)
            .args(["run", "--data-dir", dir.path().to_str().unwrap()])
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::sync_channel(64);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let started = wait_for(&rx, "node started");
        assert!(started.is_some(), "round {round}: node did not start");
        let pid = child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success());
        assert!(wait_for(&rx, "node stopped").is_some(), "round {round}: no clean stop");
        let status = child.wait().unwrap();
        assert!(status.success(), "round {round}: exit {status:?}");
        reader.join().unwrap();
    }
    assert!(dir.path().join("events").is_dir());
}

fn wait_for(rx: &mpsc::Receiver<String>, needle: &str) -> Option<String> {
    let deadline = std::time::Instant::now() + DEADLINE;
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return Some(line),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
    None
}
