//! What a running node tells its operator: every metric the alert rules in `docs/alerts.yml`
//! read exists on `/metrics` (registered from start-up, traffic or not), the node's own gauges
//! follow its state, state roots and an offline replay of its log agree with the live
//! replayer, and the cluster view shows the proposer schedule when a validators file is set.

use std::{collections::BTreeSet, path::Path};

use mempulse_net::{
    CHAIN_ID_DEFAULT,
    test_utils::{TxSpec, signed_tx},
};
use mempulse_primitives::TxType;
use serde_json::{Value, json};

use crate::support::{LOG_SEGMENT_BYTES, SEGMENT_BYTES, Single, wait_until};

/// Metric names used in the `expr` of every rule in `docs/alerts.yml`.
fn alert_metrics() -> BTreeSet<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/alerts.yml");
    let rules = std::fs::read_to_string(path).unwrap();
    let mut names = BTreeSet::new();
    for line in rules.lines() {
        let Some(expr) = line.trim_start().strip_prefix("expr:") else { continue };
        let mut rest = expr;
        while let Some(start) = rest.find("mempulse_") {
            let tail = &rest[start..];
            let end = tail
                .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
                .unwrap_or(tail.len());
            names.insert(tail[..end].to_owned());
            rest = &tail[end..];
        }
    }
    names
}

/// Metric names of a Prometheus text exposition.
fn exposed(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| line.split(['{', ' ']).next().unwrap_or_default().to_owned())
        .collect()
}

/// The value of the series `name` (without labels) or `name{labels}`, written as exposed.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

fn scrape(node: &Single) -> String {
    let (status, text) = node.http("GET", "/metrics", "text/plain", b"");
    assert_eq!(status, 200, "{text}");
    text
}

fn send_raw(node: &Single, sender: u32) {
    let spec = TxSpec {
        chain_id: Some(CHAIN_ID_DEFAULT),
        ..TxSpec::transfer(TxType::DynamicFee, sender, 0)
    };
    let raw: String = signed_tx(&spec).unwrap().iter().map(|b| format!("{b:02x}")).collect();
    let raw = format!("0x{raw}");
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "eth_sendRawTransaction",
                      "params": [raw]});
    let (status, reply) = node.rpc(&call.to_string());
    assert_eq!(status, 200, "{reply}");
    assert!(reply["result"].is_string(), "not admitted: {reply}");
}

#[test]
fn every_metric_the_alert_rules_read_exists_and_the_node_gauges_follow_its_state() {
    let wanted = alert_metrics();
    assert!(wanted.len() >= 10, "the rules name too few metrics: {wanted:?}");
    let node = Single::start();
    // Before any traffic: every series a rule reads is already there.
    let before = exposed(&scrape(&node));
    let missing: Vec<&String> = wanted.difference(&before).collect();
    assert!(missing.is_empty(), "metrics the alert rules read but the node lacks: {missing:?}");

    wait_until("the node to be ready (a leader elected)", || {
        (node.http("GET", "/readyz", "text/plain", b"").0 == 200).then_some(())
    });
    let senders = 3;
    for sender in 0..senders {
        send_raw(&node, sender);
    }
    let text = wait_until("the sampled gauges to show the traffic", || {
        let text = scrape(&node);
        let pending = value(&text, "mempulse_mempool_pool_txs{subpool=\"pending\"}")?;
        // An idle event log syncs (and publishes) within its interval.
        let synced = value(&text, "mempulse_event_log_unsynced_records")? == 0.0;
        // The directories are measured every 10 s, the first time at start.
        let measured = value(&text, "mempulse_dir_bytes{dir=\"raft\"}")? > 0.0;
        (pending >= f64::from(senders)
            && value(&text, "mempulse_replay_lag_events")? == 0.0
            && synced
            && measured)
            .then_some(text)
    });
    let after = exposed(&text);
    let missing: Vec<&String> = wanted.difference(&after).collect();
    assert!(missing.is_empty(), "after traffic, missing: {missing:?}");
    assert!(value(&text, "mempulse_cluster_term").unwrap() >= 1.0, "{text}");
    assert_eq!(value(&text, "mempulse_cluster_is_leader"), Some(1.0));
    assert_eq!(value(&text, "mempulse_cluster_leader_known"), Some(1.0));
    assert!(value(&text, "mempulse_cluster_leader_changes_total").unwrap() >= 1.0);
    assert_eq!(value(&text, "mempulse_api_fenced"), Some(0.0));
    assert!(value(&text, "mempulse_cluster_commit_index").unwrap() >= 1.0);
    assert!(text.contains("mempulse_wal_fsync_duration_seconds_bucket{"), "buckets, not quantiles");
    // The disk gauges measure the node's directories: each log holds at least its active
    // (preallocated) segment, and every filesystem has room.
    for (dir, at_least) in [("events", SEGMENT_BYTES), ("raft", LOG_SEGMENT_BYTES)] {
        let free = value(&text, &format!("mempulse_disk_free_bytes{{dir=\"{dir}\"}}")).unwrap();
        let size = value(&text, &format!("mempulse_disk_size_bytes{{dir=\"{dir}\"}}")).unwrap();
        let bytes = value(&text, &format!("mempulse_dir_bytes{{dir=\"{dir}\"}}")).unwrap();
        assert!(free > 0.0 && free <= size, "{dir}: free {free}, size {size}");
        #[expect(clippy::cast_precision_loss, reason = "a segment size as a gauge value")]
        let at_least = at_least as f64;
        assert!(bytes >= at_least, "{dir}: {bytes} bytes, below one segment");
        // Both logs use the configured small segments (a default 64 MiB segment is already
        // larger than this): the active one and one prepared ahead, plus metadata.
        assert!(bytes < 4.0 * at_least, "{dir}: {bytes} bytes for segments of {at_least}");
    }

    // The state root, and an offline replay of the whole log that agrees with it.
    let (status, root) = node.get_json("/v1/state-root");
    assert_eq!(status, 200, "{root}");
    assert!(root["raft_index"].as_u64().unwrap() >= 1, "{root}");
    let report = wait_until("an offline replay verified against the live digests", || {
        let (status, report) = node.get_json("/v1/replay?from=1&every=1");
        assert_eq!(status, 200, "{report}");
        (report["summary"]["unverified"] == 0).then_some(report)
    });
    assert_eq!(report["summary"]["mismatched"], 0, "{report}");
    assert!(report["summary"]["matched"].as_u64().unwrap() >= 2, "{report}");
    let index = root["raft_index"].as_u64().unwrap();
    let (status, at) = node.get_json(&format!("/v1/state-root?index={index}"));
    assert_eq!((status, &at["digest"]), (200, &root["digest"]), "{at}");
    let (status, ahead) = node.get_json(&format!("/v1/state-root?index={}", index + 1000));
    assert_eq!((status, &ahead["code"]), (404, &Value::from("NOT_FOUND")), "{ahead}");
    node.assert_healthy();
}

#[test]
fn the_cluster_view_shows_the_proposer_and_this_clusters_tags() {
    let dir = tempfile::tempdir().unwrap();
    let validators = dir.path().join("validators.toml");
    let file = r#"
initial-height = 1
[[validators]]
id = 1
address = "0x00000000000000000000000000000000000000a1"
power = 1
[[validators]]
id = 2
address = "0x00000000000000000000000000000000000000a2"
power = 3
"#;
    std::fs::write(&validators, file).unwrap();
    let node = Single::start_with(&format!(
        "[schedule]\nvalidators = {:?}\nvalidator-id = 1\n",
        validators.display().to_string()
    ));
    let (status, cluster) = node.get_json("/v1/cluster");
    assert_eq!(status, 200, "{cluster}");
    // CometBFT's "stable set" example: powers 1 and 3 propose v2, v1, v2, v2, …
    assert_eq!(
        cluster["schedule"],
        json!({"height": 1, "proposer": 2, "validator": 1, "tags": ["proposer-next"]}),
        "{cluster}"
    );
    // Without a validators file the view has no schedule.
    let plain = Single::start();
    let (_, cluster) = plain.get_json("/v1/cluster");
    assert!(cluster.get("schedule").is_none(), "{cluster}");
}
