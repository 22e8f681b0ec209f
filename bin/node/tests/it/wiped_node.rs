//! A member whose data directory is wiped comes back under its old id and address (issue 4):
//! it lost its Raft log and its vote, so its peers refuse it (logged, and counted as
//! `incarnation_changed` in `/metrics`) while the other two keep committing; once an operator
//! runs `mempulse cluster remove`, `add-learner` and `promote` it catches up and holds every
//! acknowledged write again. The mechanism is in `docs/design/cluster-membership.md`.

use std::{collections::BTreeSet, net::SocketAddr};

use mempulse_cluster::NodeIdentity;
use mempulse_primitives::{NodeId, TxHash};

use crate::{
    cluster::Cluster,
    failover_load::{
        CALL_TIMEOUT, cluster_view, http_leader, pool_hashes, send_raw, transaction, try_http,
        try_http_text, wait_applied_equal,
    },
    support::wait_until,
};

/// Sender keys of this test (distinct from the failover test's).
const SENDER: u32 = 5_000;

/// Sends nonces `nonces` of [`SENDER`] through `http`; every one must be acknowledged.
fn write(http: SocketAddr, nonces: std::ops::Range<u64>) -> Vec<TxHash> {
    nonces
        .map(|nonce| {
            let (raw, hash) = transaction(SENDER, nonce);
            // A write may meet a leader change: it is sent again until acknowledged, or until
            // the node has it (an earlier attempt committed, so a resend is refused as known).
            wait_until(&format!("write of nonce {nonce}"), || {
                (send_raw(http, &raw, hash) || has_tx(http, hash)).then_some(())
            });
            hash
        })
        .collect()
}

/// Whether the node at `http` has `hash` in its pool (`eth_getTransactionByHash`).
fn has_tx(http: SocketAddr, hash: TxHash) -> bool {
    let call = serde_json::json!({"jsonrpc": "2.0", "id": 1,
        "method": "eth_getTransactionByHash", "params": [hash.to_string()]});
    try_http(http, "POST", "/", &call.to_string(), CALL_TIMEOUT)
        .is_some_and(|(status, reply)| status == 200 && reply["result"]["hash"] == hash.to_string())
}

/// `mempulse_cluster_peer_refused_total{reason="incarnation_changed"}` on the node at `http`.
fn incarnation_refusals(http: SocketAddr) -> f64 {
    let (status, text) = try_http_text(http, "GET", "/metrics", "", CALL_TIMEOUT).unwrap();
    assert_eq!(status, 200);
    text.lines()
        .find(|l| {
            l.starts_with("mempulse_cluster_peer_refused_total")
                && l.contains("reason=\"incarnation_changed\"")
        })
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .unwrap_or(0.0)
}

#[test]
fn a_wiped_node_is_refused_until_it_is_re_added_as_a_learner() {
    let mut cluster = Cluster::start();
    let nodes: Vec<(u64, SocketAddr)> = cluster.nodes.iter().map(|n| (n.id, n.http)).collect();
    let leader = http_leader(&nodes);
    // Not node 1: its configuration bootstraps, and a wiped bootstrap node would found a
    // cluster of its own (the design note covers that case).
    let wiped = if leader == 3 { 2 } else { 3 };
    let other = (1..=3).find(|id| *id != leader && *id != wiped).unwrap();
    let http = |id: u64| nodes.iter().find(|(n, _)| *n == id).unwrap().1;
    let mut acked = write(http(wiped), 0..4);
    let https: Vec<SocketAddr> = nodes.iter().map(|(_, h)| *h).collect();
    wait_applied_equal(&https);
    // Every pair has met (recorded each other's incarnation).
    for node in &cluster.nodes {
        let raft_dir = node.data.join("raft");
        wait_until(&format!("node {} to meet its peers", node.id), || {
            let met = NodeIdentity::open(NodeId(node.id), &raft_dir).ok()?.peers();
            (met.len() == 2).then_some(())
        });
    }

    // Wipe: kill -9, delete the whole data directory, start again with the same config.
    let node = cluster.node(wiped);
    node.signal("-KILL");
    assert!(!node.wait_exit());
    std::fs::remove_dir_all(&node.data).unwrap();
    node.start();
    node.process.as_ref().unwrap().wait_logged("commands::run: node started");

    // Refused: logged and counted by the leader, which cannot replicate to it.
    let leader_node = cluster.node(leader);
    leader_node.process.as_ref().unwrap().wait_logged("incarnation_changed");
    assert!(incarnation_refusals(http(leader)) >= 1.0);
    // The other two keep committing; the wiped node applies nothing and has no membership.
    acked.extend(write(http(other), 4..8));
    let view = cluster_view(http(wiped)).unwrap();
    assert!(view["applied_index"].is_null(), "the wiped node applied entries: {view}");
    assert_eq!(view["members"], serde_json::json!([]), "{view}");

    // The operator re-adds it as a learner, then promotes it; it catches up.
    let addr = cluster.node(wiped).addr.clone();
    let id = wiped.to_string();
    let operator = cluster.node(other);
    operator.admin(&["remove", "--id", &id]);
    operator.admin(&["add-learner", "--id", &id, "--addr", &addr]);
    operator.admin(&["promote", "--ids", &id]);
    wait_until("the re-added node to be a voter everywhere", || {
        let all = nodes.iter().all(|(_, h)| {
            cluster_view(*h).is_some_and(|v| {
                let voters: BTreeSet<u64> = v["members"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|m| m["voter"] == true)
                    .filter_map(|m| m["id"].as_u64())
                    .collect();
                voters == BTreeSet::from([1, 2, 3])
            })
        });
        all.then_some(())
    });
    acked.extend(write(http(wiped), 8..10));
    let applied = wait_applied_equal(&https);
    let view = cluster_view(http(wiped)).unwrap();
    assert_eq!(view["applied_index"].as_u64(), Some(applied), "{view}");
    for (id, h) in &nodes {
        let pool: BTreeSet<TxHash> = pool_hashes(*h).into_iter().collect();
        let missing: Vec<&TxHash> = acked.iter().filter(|h| !pool.contains(h)).collect();
        assert!(missing.is_empty(), "node {id} lacks acknowledged writes: {missing:?}");
    }
}
