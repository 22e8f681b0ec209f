//! A replica made to diverge on purpose (the test-only fault corrupts the facts of one applied
//! entry in its event log) is detected by its peers over the Raft transport, fences itself
//! (API 503 `SELF_FENCED`, a `fenced` fact naming the exact first divergent index), while the
//! healthy members record the divergence and keep serving.

use std::net::SocketAddr;

use serde_json::Value;

use crate::{
    cluster::Cluster,
    failover_load::{CALL_TIMEOUT, send_raw, transaction, try_http},
    support::{Process, wait_until},
};

/// Sender keys of this test (distinct from the other cluster tests').
const SENDER: u32 = 6_000;

fn write(http: SocketAddr, nonce: u64) {
    let (raw, hash) = transaction(SENDER, nonce);
    wait_until(&format!("write of nonce {nonce}"), || send_raw(http, &raw, hash).then_some(()));
}

/// This node's local facts of `kinds` (`GET /v1/events?kinds=`).
fn facts(http: SocketAddr, kinds: &str) -> Vec<Value> {
    let path = format!("/v1/events?kinds={kinds}&limit=1000");
    try_http(http, "GET", &path, "", CALL_TIMEOUT)
        .and_then(|(status, page)| (status == 200).then(|| page["events"].as_array().cloned()))
        .flatten()
        .unwrap_or_default()
}

#[test]
fn a_corrupted_replica_is_detected_and_fences_itself_at_the_first_bad_index() {
    let mut cluster = Cluster::start();
    cluster.agreed_leader(&[1, 2, 3]);
    // Node 3 again, now with the fault: the first admission it applies from here on is
    // written to its event log with another hash.
    let node = cluster.node(3);
    drop(node.process.take());
    let args = ["run".as_ref(), "--config".as_ref(), node.config.as_os_str()];
    let fault = [("MEMPULSE_TEST_FAULT_CORRUPT_APPLY_INDEX", "1")];
    node.process = Some(Process::spawn_env("node 3 (faulty)", &args, &fault));
    let faulty = node.process.as_ref().unwrap();
    faulty.wait_logged("commands::run: node started");
    let (faulty_http, healthy_http) = (cluster.node(3).http, cluster.node(1).http);
    cluster.agreed_leader(&[1, 2, 3]);

    write(healthy_http, 0);
    let faulty = cluster.node(3).process.as_ref().unwrap();
    faulty.wait_logged("test fault: corrupted");
    let bad: u64 = faulty.logged_field("test fault: corrupted", "index").unwrap().parse().unwrap();
    // Later entries seal the corrupted one on every replica.
    for nonce in 1..4 {
        write(healthy_http, nonce);
    }
    faulty.wait_logged("node fenced itself");
    let fenced_at = faulty.logged_field("node fenced itself", "first_divergent_index");
    assert_eq!(fenced_at, Some(bad.to_string()), "the bisection names the corrupted entry");

    // The fenced node refuses writes with the reason; its peers still serve.
    let (status, body) = try_http(faulty_http, "POST", "/v1/txs", "{}", CALL_TIMEOUT).unwrap();
    assert_eq!((status, body["code"].as_str()), (503, Some("SELF_FENCED")), "{body}");
    assert!(body["message"].as_str().unwrap().contains(&format!("index {bad}")), "{body}");
    let (raw, hash) = transaction(SENDER, 4);
    assert!(!send_raw(faulty_http, &raw, hash), "a fenced node acknowledged a write");
    write(healthy_http, 4);

    // The fence and the divergence are facts in the logs.
    let fenced = wait_until("the fenced fact", || facts(faulty_http, "fenced").into_iter().next());
    assert_eq!(
        (fenced["reason"].as_str(), fenced["index"].as_u64()),
        (Some("divergence"), Some(bad)),
        "{fenced}"
    );
    let seen = wait_until("a healthy member's divergence fact", || {
        [1, 2]
            .into_iter()
            .find_map(|id| facts(cluster.node(id).http, "divergence_detected").into_iter().next())
    });
    assert_eq!(seen["peer"].as_u64(), Some(3), "{seen}");
    assert_ne!(seen["ours"], seen["theirs"], "{seen}");
    for id in [1, 2] {
        assert!(!cluster.node(id).logged("node fenced itself"), "healthy node {id} fenced");
    }
}
