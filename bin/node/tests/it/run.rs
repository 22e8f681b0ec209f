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

/// Runs `mempulse run` with `args` (and `config`, when given, as its `--config` file) against
/// a data directory that does not exist yet; returns the exit code, stderr, and whether the
/// data directory exists afterwards.
fn run_refused(args: &[&str], config: Option<&str>) -> (Option<i32>, String, bool) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut command = Command::new(BIN);
    command.arg("run").arg("--data-dir").arg(&data).args(args).current_dir(dir.path());
    if let Some(text) = config {
        let path = dir.path().join("node.toml");
        std::fs::write(&path, text).unwrap();
        command.arg("--config").arg(path);
    }
    let mut child = command
        .env_remove("RUST_LOG")
        .env("MEMPULSE_HTTP_ADDR", "127.0.0.1:0")
        .env("MEMPULSE_STREAM_ADDR", "127.0.0.1:0")
        .env("MEMPULSE_RAFT_ADDR", "127.0.0.1:0")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("`run {args:?}` did not exit: it accepted the configuration");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    (status.code(), stderr, data.exists())
}

#[test]
fn a_refused_configuration_creates_no_data_directory() {
    let cases: &[(&[&str], Option<&str>, &str)] = &[
        (&["--http-addr", "999.1.1.1:80"], None, "999.1.1.1:80"),
        (&["--http-addr", "localhost"], None, "http-addr"),
        (&["--http-addr", "127.0.0.1:70000"], None, "127.0.0.1:70000"),
        (&["--stream-addr", "nope"], None, "listen-addr `nope`"),
        (&["--node-id", "0"], None, "node-id"),
        (&["--raft-addr", "garbage"], None, "raft-addr"),
        (&["--raft-addr", "0.0.0.0:7400"], None, "not on loopback"),
        (&["--peers", "1@127.0.0.1:9999"], None, "1@127.0.0.1:9999"),
        (
            &[],
            Some("[schedule]\nvalidators = \"/nonexistent/v.toml\"\nvalidator-id = 1\n"),
            "/nonexistent/v.toml",
        ),
        (&[], Some("[cluster]\nheartbeat-interval-ms = 500\n"), "timings"),
        (&[], Some("[cluster]\nsnapshot-every-entries = 0\n"), "snapshot-every-entries"),
        (&[], Some("[cluster]\nsend-timeout-ms = 0\n"), "send-timeout-ms"),
        (&[], Some("[cluster]\nlog-segment-size-bytes = 4096\n"), "log-segment-size-bytes"),
        (
            &[],
            Some(
                "[tls]\nca-cert = \"/nonexistent/ca.pem\"\nnode-cert = \"/n.pem\"\nnode-key = \"/k.pem\"\n",
            ),
            "/nonexistent/ca.pem",
        ),
        (&[], Some("[api]\nbody-bytes-max = 0\n"), "body-bytes-max"),
        (&[], Some("[api]\nconnections-max = 0\n"), "connections-max"),
    ];
    let (_, stderr, _) = run_refused(&["--http-addr", "nope"], None);
    assert_eq!(stderr.matches("http-addr `nope`").count(), 1, "printed more than once: {stderr}");
    assert!(!stderr.contains('\u{1b}'), "colour codes on a pipe: {stderr:?}");
    for (args, config, needle) in cases {
        let (code, stderr, exists) = run_refused(args, *config);
        assert_eq!(code, Some(2), "{args:?} {config:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?} {config:?}: no `{needle}` in {stderr}");
        assert!(!exists, "{args:?} {config:?}: the data directory was created");
    }
}

#[test]
fn log_lines_are_plain_text_when_stderr_is_not_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["cert", "--nodes", "1", "--out"])
        .arg(dir.path().join("certs"))
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("node certificate written"), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "colour codes on a pipe: {stderr:?}");
}
