//! Read consistency over real processes (3 nodes, mutual TLS): a linearizable read on a
//! follower sees every write acknowledged through another node, at once; weak reads answer on
//! every node; with the leader stopped a linearizable read answers the full state or 503, never
//! a stale state; with no quorum left it is refused within a bound while weak reads answer.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    time::{Duration, Instant},
};

use mempulse_primitives::TxHash;
use serde_json::{Value, json};

use crate::{
    cluster::Cluster,
    failover_load::{send_raw, transaction},
    support::{get_json, rpc_call, wait_until},
};

/// Writes checked one by one with a linearizable read on another follower.
const WRITES: u32 = 20;
/// How long a refused linearizable read may take: the node's 2 s bound, plus slack for a
/// debug build on a loaded 2-core machine.
const REFUSED_WITHIN: Duration = Duration::from_secs(4);

/// `GET /v1/pool/txs/{hash}?consistency=linearizable`.
fn pooled_linearizable(addr: SocketAddr, hash: TxHash) -> (u16, Value) {
    get_json(addr, &format!("/v1/pool/txs/{hash}?consistency=linearizable"))
}

/// Asserts a refused linearizable read: 503 `UNAVAILABLE` naming why.
fn assert_refused(what: &str, (status, body): &(u16, Value)) {
    assert_eq!(*status, 503, "{what}: {body}");
    assert_eq!(body["code"], "UNAVAILABLE", "{what}: {body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("linearizable read refused: "), "{what}: {body}");
}

/// Writes [`WRITES`] transactions through node 1; each, right after its acknowledgement, must
/// be visible to a linearizable read on `reader` (REST and JSON-RPC in turn): the commit
/// needed only the leader and one follower, so the reader may not have applied it yet and
/// must catch up first. Returns how many were written.
fn write_and_read_back(addr: &BTreeMap<u64, SocketAddr>, reader: u64) -> u64 {
    for i in 0..WRITES {
        let (raw, hash) = transaction(i, 0);
        assert!(send_raw(addr[&1], &raw, hash), "write {i} not acknowledged");
        let what = format!("write {i} read on node {reader}");
        if i % 2 == 0 {
            let (status, body) = pooled_linearizable(addr[&reader], hash);
            assert_eq!(status, 200, "{what}: {body}");
            assert_eq!(body["hash"], hash.to_string(), "{what}: {body}");
            assert_eq!(body["consistency"], "linearizable", "{what}: {body}");
        } else {
            let params = json!([hash.to_string(), {"consistency": "linearizable"}]);
            let (status, reply) = rpc_call(addr[&reader], "eth_getTransactionByHash", &params);
            assert_eq!(status, 200, "{what}: {reply}");
            assert_eq!(reply["result"]["hash"], hash.to_string(), "{what}: {reply}");
        }
    }
    u64::from(WRITES)
}

/// Linearizable counts are complete at once on every node; weak reads (REST and
/// `txpool_status`) answer everywhere and converge.
fn assert_every_node_reads(addr: &BTreeMap<u64, SocketAddr>, expected: u64) {
    for (id, addr) in addr {
        let (status, body) = get_json(*addr, "/v1/pool?consistency=linearizable");
        assert_eq!((status, &body["pending"]), (200, &json!(expected)), "node {id}: {body}");
        wait_until(&format!("a weak read on node {id} to show every write"), || {
            let (status, body) = get_json(*addr, "/v1/pool");
            (status == 200 && body["consistency"] == "weak" && body["pending"] == expected)
                .then_some(())
        });
        let (status, reply) = rpc_call(*addr, "txpool_status", &json!([]));
        assert_eq!(status, 200, "node {id}: {reply}");
        assert_eq!(reply["result"]["pending"], format!("{expected:#x}"), "node {id}: {reply}");
    }
}

/// A weak read on `addr` answers, with `expected` pending transactions.
fn assert_weak_read(addr: SocketAddr, expected: u64) {
    let (status, body) = get_json(addr, "/v1/pool");
    assert_eq!((status, &body["pending"]), (200, &json!(expected)), "weak read: {body}");
}

#[test]
fn linearizable_reads_on_followers_see_every_acknowledged_write_and_never_a_stale_state() {
    let mut cluster = Cluster::start();
    let (leader, _) = cluster.agreed_leader(&[1, 2, 3]);
    let addr: BTreeMap<u64, SocketAddr> = cluster.nodes.iter().map(|n| (n.id, n.http)).collect();
    // Writes go through node 1; the reader is a follower other than node 1.
    let reader = (2..=3).find(|id| *id != leader).unwrap();
    let other = (1..=3).find(|id| *id != leader && *id != reader).unwrap();
    let mut expected = write_and_read_back(&addr, reader);
    assert_every_node_reads(&addr, expected);

    // The leader stops. A linearizable read on the reader answers the whole state or is
    // refused, in bounded time, and never answers less; a weak read still answers.
    cluster.node(leader).signal("-STOP");
    let started = Instant::now();
    let read = get_json(addr[&reader], "/v1/pool?consistency=linearizable");
    let took = started.elapsed();
    assert!(took < REFUSED_WITHIN, "linearizable read with the leader stopped took {took:?}");
    match read.0 {
        200 => assert_eq!(read.1["pending"], expected, "stale linearizable read: {}", read.1),
        _ => assert_refused("linearizable read with the leader stopped", &read),
    }
    eprintln!("linearizable read with the leader stopped: {} after {took:?}", read.0);
    assert_weak_read(addr[&reader], expected);

    // The two others elect a leader; a write acknowledged through one is visible to a
    // linearizable read on the other.
    cluster.agreed_leader(&[reader, other]);
    let (raw, hash) = transaction(WRITES, 0);
    assert!(send_raw(addr[&other], &raw, hash), "write after the failover not acknowledged");
    expected += 1;
    let (status, body) = pooled_linearizable(addr[&reader], hash);
    assert_eq!(status, 200, "write after the failover on node {reader}: {body}");

    // With the second node stopped the reader has no quorum: linearizable reads are refused
    // within the bound (REST and JSON-RPC at once), weak reads answer what it applied.
    cluster.node(other).signal("-STOP");
    let started = Instant::now();
    let at = addr[&reader];
    let (rest, rpc) = std::thread::scope(|s| {
        let rest = s.spawn(move || get_json(at, "/v1/pool?consistency=linearizable"));
        let params = json!([{"consistency": "linearizable"}]);
        let rpc = s.spawn(move || rpc_call(at, "txpool_status", &params));
        (rest.join().unwrap(), rpc.join().unwrap())
    });
    let took = started.elapsed();
    assert!(took < REFUSED_WITHIN, "refusals without a quorum took {took:?}");
    assert_refused("linearizable read without a quorum", &rest);
    assert_eq!(rpc.0, 503, "{}", rpc.1);
    assert_eq!(rpc.1["error"]["code"], -32002, "{}", rpc.1);
    assert_weak_read(at, expected);
    eprintln!("linearizable reads refused after {took:?} without a quorum");
}
