//! Read consistency: `?consistency=` on the REST pool routes and the trailing read-options
//! object of the JSON-RPC pool reads reach the pool service; bad values say why; a
//! linearizable read the node cannot confirm is a 503 that names the reason.

use axum::http::StatusCode;
use mempulse_api::{
    Consistency, FenceState, Unavailable, test_utils::FakePool, test_utils::TestNode,
};
use mempulse_primitives::{FenceReason, RaftIndex, Subpool};
use serde_json::{Value, json};

use crate::helpers::{app, get, post_json, rpc, sample_pool};

fn node() -> TestNode {
    TestNode::new(FakePool::with_txs(sample_pool()))
}

fn reads(node: &TestNode) -> Vec<Consistency> {
    std::mem::take(&mut *node.pool.reads.lock().unwrap())
}

#[tokio::test]
async fn rest_pool_routes_pass_the_consistency_down() {
    let node = node();
    *node.pool.applied.lock().unwrap() = Some(RaftIndex(12));
    let app = app(&node);
    let answer = get(&app, "/v1/pool").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.json(),
        json!({"pending": 5, "queued": 1, "applied_index": 12, "consistency": "weak"})
    );
    let answer = get(&app, "/v1/pool?consistency=linearizable").await;
    assert_eq!(answer.json()["consistency"], "linearizable");
    let answer = get(&app, "/v1/pool?consistency=weak").await;
    assert_eq!(answer.json()["consistency"], "weak");
    assert_eq!(reads(&node), [Consistency::Weak, Consistency::Linearizable, Consistency::Weak]);

    let (queued, _) = sample_pool().into_iter().find(|(_, s)| *s == Subpool::Queued).unwrap();
    let uri = format!("/v1/pool/txs/{}?consistency=linearizable", queued.hash);
    let answer = get(&app, &uri).await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    let body = answer.json();
    assert_eq!(body["hash"], queued.hash.to_string());
    assert_eq!(body["subpool"], "queued");
    assert_eq!(body["consistency"], "linearizable");
    assert_eq!(body["tx"]["hash"], queued.hash.to_string());
    assert_eq!(body["tx"]["from"], queued.sender.to_string());
    let missing = get(&app, &format!("/v1/pool/txs/0x{}", "ab".repeat(32))).await;
    assert_eq!((missing.status, missing.code()), (StatusCode::NOT_FOUND, "NOT_FOUND".into()));
    assert_eq!(reads(&node), [Consistency::Linearizable, Consistency::Weak]);
}

#[tokio::test]
async fn json_rpc_pool_reads_take_a_trailing_options_object() {
    let node = node();
    let app = app(&node);
    let linearizable = json!({"consistency": "linearizable"});
    let hash = sample_pool()[0].0.hash.to_string();
    let calls: [(&str, Value, Consistency); 8] = [
        ("txpool_status", json!([]), Consistency::Weak),
        ("txpool_status", json!([linearizable]), Consistency::Linearizable),
        ("txpool_status", json!([null]), Consistency::Weak),
        ("txpool_content", json!([{"consistency": "weak"}]), Consistency::Weak),
        ("txpool_content", json!([linearizable]), Consistency::Linearizable),
        ("txpool_inspect", json!([{}]), Consistency::Weak),
        ("txpool_inspect", json!([linearizable]), Consistency::Linearizable),
        ("eth_getTransactionByHash", json!([hash, linearizable]), Consistency::Linearizable),
    ];
    for (method, params, want) in calls {
        let (status, body) = rpc(&app, method, params.clone()).await;
        assert_eq!(status, StatusCode::OK, "{method} {params}: {body}");
        assert!(body.get("result").is_some(), "{method} {params}: {body}");
        assert_eq!(reads(&node), [want], "{method} {params}");
    }
    let (_, body) = rpc(&app, "eth_getTransactionByHash", json!([hash])).await;
    assert_eq!(body["result"]["hash"], hash);
    assert_eq!(reads(&node), [Consistency::Weak]);

    // One batch may mix consistencies: each call is read at its own.
    let batch = json!([
        {"jsonrpc": "2.0", "id": 1, "method": "txpool_status", "params": [linearizable]},
        {"jsonrpc": "2.0", "id": 2, "method": "txpool_status", "params": []},
    ]);
    let answer = post_json(&app, "/", &batch).await;
    assert_eq!(answer.json().as_array().map(Vec::len), Some(2));
    let mut seen = reads(&node);
    seen.sort();
    assert_eq!(seen, [Consistency::Weak, Consistency::Linearizable]);
}

#[tokio::test]
async fn bad_consistencies_name_the_valid_ones() {
    let node = node();
    let app = app(&node);
    let answer = get(&app, "/v1/pool?consistency=strong").await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.code(), "INVALID_CONSISTENCY");
    assert_eq!(
        answer.json()["message"],
        r#"consistency "strong" is not one of weak, linearizable"#
    );
    let (_, body) = rpc(&app, "txpool_status", json!([{"consistency": "strong"}])).await;
    assert_eq!(body["error"]["code"], -32602);
    assert_eq!(
        body["error"]["message"],
        r#"invalid argument 0: consistency "strong" is not one of weak, linearizable"#
    );
    let (_, body) = rpc(&app, "eth_getTransactionByHash", json!(["0x00", {"fresh": true}])).await;
    assert_eq!(
        body["error"]["message"],
        r#"invalid argument 1: unknown read option "fresh"; the only one is consistency"#
    );
    assert!(reads(&node).is_empty(), "no bad request reached the pool");
}

#[tokio::test]
async fn an_unconfirmed_linearizable_read_is_a_503_with_its_reason() {
    let node = node();
    let app = app(&node);
    let reasons = [
        (Unavailable::NoLeader, "the cluster has no leader"),
        (Unavailable::NoQuorum, "the leader could not confirm its leadership with a quorum"),
        (Unavailable::LeaderUnreachable, "the leader is unreachable"),
    ];
    for (why, text) in reasons {
        node.pool.fail_with(Some(why));
        let answer = get(&app, "/v1/pool?consistency=linearizable").await;
        assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(answer.code(), "UNAVAILABLE");
        assert_eq!(answer.json()["message"], format!("linearizable read refused: {text}"));
        assert_eq!(answer.headers["retry-after"], "1");
        let params = json!([{"consistency": "linearizable"}]);
        let (status, body) = rpc(&app, "txpool_status", params).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["error"]["code"], -32002);
        assert_eq!(body["error"]["message"], format!("linearizable read refused: {text}"));
    }
    node.pool.fail_with(None);
    node.fence.send_replace(FenceState::Fenced { reason: FenceReason::Divergence, index: None });
    let answer = get(&app, "/v1/pool?consistency=linearizable").await;
    assert_eq!(
        (answer.status, answer.code()),
        (StatusCode::SERVICE_UNAVAILABLE, "SELF_FENCED".into())
    );
    let answer = get(&app, &format!("/v1/pool/txs/0x{}", "ab".repeat(32))).await;
    assert_eq!(answer.code(), "SELF_FENCED");
}
