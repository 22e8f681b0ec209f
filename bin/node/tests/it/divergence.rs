//! A replica made to diverge on purpose is detected by its peers over the Raft transport,
//! fences itself (API 503 `SELF_FENCED`, a `fenced` fact naming the exact first divergent
//! index), while the healthy members record the divergence and keep serving. It then
//! reconciles: it installs a healthy peer's replicated state, verifies its new root, unfences
//! (`unfenced` fact, ready, writes accepted, the same state roots as its peers) and stays
//! unfenced across a restart. Two faults: one corrupts the facts of one applied entry in its
//! event log (the mempool is intact), the other makes its state machine (the mempool) apply
//! one transaction differently, which the reconciliation repairs by reinstalling a healthy
//! peer's mempool first.

use std::net::SocketAddr;

use serde_json::Value;

use crate::{
    cluster::Cluster,
    failover_load::{CALL_TIMEOUT, send_raw, transaction, try_http, try_http_text},
    support::{Process, wait_until},
};

/// Sender keys of this test (distinct from the other cluster tests').
const SENDER: u32 = 6_000;

/// `GET /readyz` answers 200.
fn ready(http: SocketAddr) -> bool {
    try_http_text(http, "GET", "/readyz", "", CALL_TIMEOUT).is_some_and(|(status, _)| status == 200)
}

/// Waits until `node` reports, through the latest index `healthy` has sealed, the same state
/// root as `healthy`; returns that index.
fn same_root_as(healthy: SocketAddr, node: SocketAddr) -> u64 {
    wait_until("the same state root as a healthy member", || {
        let (status, theirs) = try_http(healthy, "GET", "/v1/state-root", "", CALL_TIMEOUT)?;
        let index = theirs["raft_index"].as_u64().filter(|_| status == 200)?;
        let path = format!("/v1/state-root?index={index}");
        let (status, ours) = try_http(node, "GET", &path, "", CALL_TIMEOUT)?;
        (status == 200).then_some(())?;
        assert_eq!(
            (&ours["raft_index"], &ours["digest"]),
            (&theirs["raft_index"], &theirs["digest"])
        );
        Some(index)
    })
}

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

/// A test-only fault of node 3: its environment variable and the line it logs (with the
/// corrupted entry's `index`) when it fires.
struct Fault {
    env: &'static str,
    fired: &'static str,
    /// Whether it corrupts the state machine (the mempool), not only the event log.
    state_machine: bool,
}

#[test]
fn a_corrupted_replica_fences_itself_at_the_first_bad_index_then_reconciles_and_unfences() {
    // The first admission node 3 applies is written to its event log with another hash.
    diverge_fence_and_reconcile(&Fault {
        env: "MEMPULSE_TEST_FAULT_CORRUPT_APPLY_INDEX",
        fired: "test fault: corrupted",
        state_machine: false,
    });
}

#[test]
fn a_replica_whose_mempool_diverged_reinstalls_a_peers_mempool_and_unfences() {
    // The first transaction node 3 applies gets a gas limit over the block's: node 3 rejects
    // what its peers admit, and every later nonce of that sender differs too.
    diverge_fence_and_reconcile(&Fault {
        env: "MEMPULSE_TEST_FAULT_DIVERGE_MEMPOOL_INDEX",
        fired: "TEST FAULT: applying a transaction with a corrupted gas limit",
        state_machine: true,
    });
}

fn diverge_fence_and_reconcile(fault: &Fault) {
    let mut cluster = Cluster::start();
    cluster.agreed_leader(&[1, 2, 3]);
    // Node 3 again, now with the fault.
    let node = cluster.node(3);
    drop(node.process.take());
    let args = ["run".as_ref(), "--config".as_ref(), node.config.as_os_str()];
    // The gate holds its reconciliation back until the fenced state is checked.
    let gate_dir = tempfile::tempdir().unwrap();
    let gate = gate_dir.path().join("reconcile");
    let env = [(fault.env, "1"), ("MEMPULSE_TEST_RECONCILE_GATE", gate.to_str().unwrap())];
    node.process = Some(Process::spawn_env("node 3 (faulty)", &args, &env));
    let faulty = node.process.as_ref().unwrap();
    faulty.wait_logged("commands::run: node started");
    let (faulty_http, healthy_http) = (cluster.node(3).http, cluster.node(1).http);
    cluster.agreed_leader(&[1, 2, 3]);

    write(healthy_http, 0);
    let faulty = cluster.node(3).process.as_ref().unwrap();
    faulty.wait_logged(fault.fired);
    let bad: u64 = faulty.logged_field(fault.fired, "index").unwrap().parse().unwrap();
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

    // Reconciliation: a healthy peer's state is installed and verified, then the fence lifts.
    assert!(!cluster.node(3).logged("node unfenced"), "unfenced before the gate opened");
    std::fs::write(&gate, b"").unwrap();
    let faulty = cluster.node(3).process.as_ref().unwrap();
    faulty.wait_logged("node unfenced");
    // Only a diverged state machine needs the peer's mempool.
    let reinstalled = faulty.logged("mempool reinstalled from a peer");
    assert_eq!(reinstalled, fault.state_machine, "mempool reinstalled: {reinstalled}");
    if fault.state_machine {
        let from = faulty.logged_field("mempool reinstalled from a peer", "from_index").unwrap();
        assert!(from.parse::<u64>().unwrap() >= bad, "reinstalled from {from}, before {bad}");
    }
    let unfenced =
        wait_until("the unfenced fact", || facts(faulty_http, "unfenced").into_iter().next());
    let verified = unfenced["index"].as_u64().unwrap();
    assert!(verified >= bad, "{unfenced}");
    let path = format!("/v1/state-root?index={verified}");
    let (status, healthy_root) = try_http(healthy_http, "GET", &path, "", CALL_TIMEOUT).unwrap();
    assert_eq!((status, &healthy_root["digest"]), (200, &unfenced["root"]), "{healthy_root}");
    wait_until("ready again", || ready(faulty_http).then_some(()));
    write(faulty_http, 5);
    for nonce in 6..8 {
        write(healthy_http, nonce);
    }
    let through = same_root_as(healthy_http, faulty_http);
    assert!(through > bad, "compared through {through}, after the repaired index {bad}");

    // A restart resumes from the repaired checkpoint: no second fence, the same roots.
    let node = cluster.node(3);
    drop(node.process.take());
    node.start();
    node.process.as_ref().unwrap().wait_logged("commands::run: node started");
    write(healthy_http, 8);
    write(faulty_http, 9);
    let after = same_root_as(healthy_http, faulty_http);
    assert!(after > through, "compared through {after} after the restart");
    assert!(ready(faulty_http), "the restarted node is not ready");
    assert!(!cluster.node(3).logged("node fenced itself"), "fenced again after the restart");
}
