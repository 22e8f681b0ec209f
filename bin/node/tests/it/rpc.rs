//! The ingest lanes of a real `mempulse run` over its HTTP port: transactions signed by real
//! Ethereum client libraries (eth-account, web3) go in over JSON-RPC and come back with the
//! hashes the libraries computed; bad input gets a clear error, the node stays healthy, and the
//! refusals are facts in the event log.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use serde_json::{Value, json};

use crate::support::{Single, wait_until};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The Python interpreter with eth-account and web3 (provisioned by `ci/python-env.sh`).
fn python() -> PathBuf {
    let out = Command::new("bash").arg(workspace().join("ci/python-env.sh")).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ci/python-env.sh failed: {stderr}");
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

#[test]
fn wallet_libraries_sign_and_submit_and_the_node_agrees_on_every_hash() {
    let node = Single::start();
    let script = workspace().join("bin/node/tests/e2e/eth_clients.py");
    let out = Command::new(python())
        .arg(script)
        .arg(format!("http://{}", node.http))
        .arg("1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "eth_clients.py failed:\n{stdout}\n{stderr}");
    let summary: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(summary["sent"], 24, "{summary}");
    assert_eq!(summary["pending"], 24, "{summary}");
    assert_eq!(summary["queued"], 0, "{summary}");
    assert!(summary["via_web3"].as_u64().unwrap() > 0, "web3 sent nothing: {summary}");
    // The admissions are replicated facts in the event log, with their Raft index (published
    // by the event log's next sync, within its interval of the acknowledgement).
    let admitted = wait_until("the 24 admissions to be durable", || {
        let (status, events) = node.get_json("/v1/events?kinds=tx_admitted&limit=100");
        assert_eq!(status, 200, "{events}");
        let admitted = events["events"].as_array()?.clone();
        (admitted.len() >= 24).then_some(admitted)
    });
    assert_eq!(admitted.len(), 24, "{admitted:?}");
    assert!(admitted.iter().all(|e| e["origin"] == "replicated" && e["raft_index"].is_u64()));
    node.assert_healthy();
}

#[test]
fn bad_transactions_are_clear_rpc_errors_and_recorded_facts() {
    let node = Single::start();
    let vectors: Value = serde_json::from_str(
        &std::fs::read_to_string(workspace().join("crates/net/tests/vectors/txs.json")).unwrap(),
    )
    .unwrap();
    let mut submitted = 0;
    let mut hashes = Vec::new();
    for vector in vectors["invalid"].as_array().unwrap() {
        let raw = vector["raw"].as_str().unwrap();
        let call = json!({"jsonrpc": "2.0", "id": 7, "method": "eth_sendRawTransaction",
                          "params": [raw]});
        let (status, reply) = node.rpc(&call.to_string());
        let name = &vector["name"];
        assert_eq!(status, 200, "{name}: {reply}");
        assert!(reply["error"]["message"].is_string(), "{name}: no JSON-RPC error: {reply}");
        assert!(reply.get("result").is_none(), "{name}: {reply}");
        if raw != "0x" {
            submitted += 1;
        }
        if let Some(hash) = vector["hash"].as_str() {
            hashes.push((hash.to_owned(), vector["error"].as_str().unwrap().to_owned()));
        }
    }
    let wrong_chain = node.rpc(
        &json!({"jsonrpc": "2.0", "id": 1, "method": "eth_sendRawTransaction",
                "params": [vectors["invalid"].as_array().unwrap().iter()
                    .find(|v| v["error"] == "wrong_chain_id").unwrap()["raw"]]})
        .to_string(),
    );
    assert_eq!(wrong_chain.1["error"]["code"], -32000, "{}", wrong_chain.1);
    submitted += 1;
    // Every refusal that reached a lane is a local fact (written without blocking the lane).
    let facts = wait_until("the refusal facts to be durable", || {
        let (_, page) = node.get_json("/v1/events?kinds=tx_rejected,tx_dropped&limit=1000");
        let events = page["events"].as_array()?.clone();
        (events.len() >= submitted).then_some(events)
    });
    assert_eq!(facts.len(), submitted, "one fact per refused transaction");
    assert!(facts.iter().all(|e| e["origin"] == "local"), "refusals are local facts");
    for (hash, error) in &hashes {
        let (status, lifecycle) = node.get_json(&format!("/v1/txs/{hash}"));
        assert_eq!(status, 200, "{hash} ({error}): {lifecycle}");
        let kinds: Vec<&str> = lifecycle["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap())
            .collect();
        let refused = kinds.iter().any(|k| matches!(*k, "tx_rejected" | "tx_dropped"));
        assert!(refused, "{hash} ({error}): {kinds:?}");
    }
    node.assert_healthy();
}

#[test]
fn malformed_requests_are_4xx_or_json_rpc_errors_and_the_node_stays_healthy() {
    let node = Single::start();
    let rpc_error = |body: &str, code: i64| {
        let (status, reply) = node.rpc(body);
        assert!(status == 200 || status == 400, "{body}: HTTP {status} {reply}");
        assert_eq!(reply["error"]["code"], code, "{body}: {reply}");
    };
    rpc_error("{", -32700);
    rpc_error(r#"{"jsonrpc":"1.0","id":1,"method":"eth_chainId"}"#, -32600);
    rpc_error(r#"{"jsonrpc":"2.0","id":1,"method":"eth_mine"}"#, -32601);
    rpc_error(
        r#"{"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransaction","params":["zz"]}"#,
        -32602,
    );
    rpc_error(
        r#"{"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransaction","params":["0x123"]}"#,
        -32602,
    );
    rpc_error(r#"{"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransaction","params":[]}"#, -32602);
    let huge_batch = format!(
        "[{}]",
        vec![r#"{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}"#; 10_000].join(",")
    );
    let (status, reply) = node.rpc(&huge_batch);
    assert!(status == 413 || reply["error"].is_object(), "huge batch: HTTP {status} {reply}");
    let oversize = vec![b'['; 8 << 20];
    let (status, _) = node.http("POST", "/", "application/json", &oversize);
    assert_eq!(status, 413, "oversize body");
    let (status, body) = node.http("POST", "/v1/txs", "text/plain", b"0xnothex");
    assert_eq!(status, 400, "{body}");
    let (status, body) = node.http("GET", "/v1/txs/0x1234", "text/plain", b"");
    assert_eq!(status, 400, "{body}");
    let (status, body) = node.http("GET", "/v1/events?after=-1", "text/plain", b"");
    assert_eq!(status, 400, "{body}");
    let (status, body) = node.http("GET", "/v1/events?kinds=nope", "text/plain", b"");
    assert_eq!(status, 400, "{body}");
    node.assert_healthy();
    let (status, chain) = node.rpc(r#"{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}"#);
    assert_eq!((status, &chain["result"]), (200, &json!("0x1")));
    node.process.signal("-TERM");
}
