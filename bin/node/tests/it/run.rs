//! `mempulse run` with no arguments (the embedded default): it starts, leads its one-node
//! cluster, recovers its logs, and stops cleanly on SIGTERM.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    sync::mpsc,
    time::Duration,
};

const BIN: &str = env!("CARGO_BIN_EXE_mempulse");
const DEADLINE: Duration = Duration::from_secs(20);

#[test]
fn the_embedded_default_leads_its_one_node_cluster_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..2 {
        let mut child = Command::new(BIN)
            .arg("run")
            .current_dir(dir.path())
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
        let status = wait_for_leader(dir.path());
        assert_eq!(status["voters"], serde_json::json!([1]), "round {round}: {status}");
        assert_eq!(status["members"][0]["raft_addr"], "127.0.0.1:7400");
        let pid = child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success());
        assert!(wait_for(&rx, "node stopped").is_some(), "round {round}: no clean stop");
        let status = child.wait().unwrap();
        assert!(status.success(), "round {round}: exit {status:?}");
        reader.join().unwrap();
    }
    assert!(dir.path().join("mempulse-data/events").is_dir());
    assert!(dir.path().join("mempulse-data/raft").is_dir());
}

/// Polls `mempulse cluster status` (also with no configuration) until the node says it leads.
fn wait_for_leader(dir: &std::path::Path) -> serde_json::Value {
    let deadline = std::time::Instant::now() + DEADLINE;
    loop {
        let out = Command::new(BIN)
            .args(["cluster", "status", "--timeout-ms", "1000"])
            .current_dir(dir)
            .env("RUST_LOG", "error")
            .output()
            .unwrap();
        if out.status.success() {
            let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            if status["role"] == "leader" && status["leader"] == 1 {
                return status;
            }
        }
        assert!(std::time::Instant::now() < deadline, "no leader within {DEADLINE:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
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
