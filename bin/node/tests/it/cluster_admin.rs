//! The audit's one-node scenario with a real `mempulse` process (plaintext on loopback, the
//! embedded default): a learner at an address where nothing listens is added but reported as
//! not caught up, is never promoted (the node keeps its quorum and keeps committing), existing
//! members are refused by add-learner, and every connection failure of `mempulse cluster` says
//! what went wrong instead of `NotSent`.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::{
    failover_load::{send_raw, transaction},
    support::{BIN, Single, free_ports, get_json, wait_until},
};

/// `mempulse cluster <args> --config <config>`.
fn cluster(config: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("cluster")
        .args(args)
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "error")
        .output()
        .unwrap()
}

/// The command's error line, asserting it failed.
fn refused(config: &Path, args: &[&str]) -> String {
    let out = cluster(config, args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "cluster {args:?} succeeded: {stderr}");
    assert!(!stderr.contains("NotSent") && !stderr.contains("Lost"), "{args:?}: {stderr}");
    stderr
}

fn status(config: &Path) -> Option<Value> {
    let out = cluster(config, &["status", "--timeout-ms", "1000"]);
    out.status.success().then(|| serde_json::from_slice(&out.stdout).ok()).flatten()
}

/// A one-node cluster on free ports, leading, with a loopback port nothing listens on.
struct OneNode {
    _node: Single,
    config: PathBuf,
    raft: String,
    http: std::net::SocketAddr,
    /// A loopback port nothing listens on.
    dead: String,
}

fn start() -> OneNode {
    let node = Single::start();
    let config = node.config.clone();
    wait_until("the node to lead", || (status(&config)?["role"] == "leader").then_some(()));
    OneNode {
        raft: node.raft.to_string(),
        http: node.http,
        dead: format!("127.0.0.1:{}", free_ports(1)[0]),
        config,
        _node: node,
    }
}

#[test]
fn an_unreachable_learner_is_reported_and_never_promoted_and_the_node_keeps_committing() {
    let node = start();
    let config = node.config.as_path();

    // An existing member (here the node itself) is refused, and nothing is written.
    let before = status(config).unwrap()["last_log_index"].clone();
    let text = refused(config, &["add-learner", "--id", "1", "--addr", &node.raft]);
    assert!(text.contains("node 1 is already a voter of the cluster"), "{text}");
    assert_eq!(status(config).unwrap()["last_log_index"], before);

    // A learner where nothing listens: added, then reported as not caught up within the bound.
    let started = Instant::now();
    let args = ["add-learner", "--id", "2", "--addr", &node.dead, "--timeout-ms", "2000"];
    let text = refused(config, &args);
    let took = started.elapsed();
    assert!(text.contains("node 2 was added as a learner"), "{text}");
    assert!(text.contains("did not catch up within"), "{text}");
    assert!(text.contains("mempulse cluster remove --id 2"), "{text}");
    assert!(took >= Duration::from_millis(1000), "answered in {took:?}: it did not wait");
    let s = status(config).unwrap();
    assert_eq!((&s["voters"], &s["learners"]), (&serde_json::json!([1]), &serde_json::json!([2])));
    let text = refused(config, &["add-learner", "--id", "2", "--addr", &node.dead]);
    assert!(text.contains("node 2 is already a learner of the cluster"), "{text}");

    // Promoting it is refused before anything is proposed.
    let before = status(config).unwrap()["last_log_index"].clone();
    let text = refused(config, &["promote", "--ids", "2", "--timeout-ms", "4000"]);
    assert!(text.contains("not promoted, nothing proposed: node 2 has acknowledged no entry"));
    let s = status(config).unwrap();
    assert_eq!(s["voters"], serde_json::json!([1]), "{s}");
    assert_eq!(s["last_log_index"], before, "{s}");
    let text = refused(config, &["transfer-leader", "--to", "2"]);
    assert!(text.contains("node 2 is a learner, not a voter"), "{text}");

    // The node keeps its quorum: writes commit, linearizable reads answer.
    let (raw, hash) = transaction(0, 0);
    assert!(send_raw(node.http, &raw, hash), "write not acknowledged");
    let (code, body) = get_json(node.http, "/v1/pool?consistency=linearizable");
    assert_eq!(code, 200, "{body}");

    // The learner goes away cleanly.
    let out = cluster(config, &["remove", "--id", "2"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    wait_until("node 2 to leave", || {
        (status(config)?["learners"] == serde_json::json!([])).then_some(())
    });
}

#[test]
fn connection_failures_say_what_went_wrong() {
    let node = start();
    let config = node.config.as_path();
    let http = node.http.to_string();
    let status_of =
        |target: &str| refused(config, &["status", "--timeout-ms", "2000", "--node", target]);

    let text = status_of(&format!("1@{}", node.dead));
    assert!(text.contains(&format!("cannot connect to node 1 at {}", node.dead)), "{text}");
    assert!(text.contains("is the node running"), "{text}");
    let text = status_of(&format!("1@{http}"));
    assert!(text.contains("did not answer the mempulse raft hello"), "{text}");
    assert!(text.contains("not its HTTP or stream port"), "{text}");
    let text = status_of(&format!("7@{}", node.raft));
    assert!(text.contains(&format!("the node at {} is not node 7", node.raft)), "{text}");
    let text = status_of("not a url");
    assert!(text.contains("--node ID@HOST:PORT"), "{text}");
    assert!(!text.contains("@not a url"), "{text}");
}
