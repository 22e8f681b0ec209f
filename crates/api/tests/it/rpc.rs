//! JSON-RPC: methods, geth-compatible errors, batches, notifications, fencing.

use axum::http::StatusCode;
use mempulse_api::{
    ApiConfig, FenceState, Refusal, Unavailable, router,
    test_utils::{FakePool, TestNode},
};
use mempulse_primitives::{DropReason, FenceReason, Lane, RejectReason, Subpool, TxType};
use serde_json::{Value, json};

use crate::helpers::{app, post, post_json, rpc, sample_pool};

#[tokio::test]
async fn chain_id_comes_from_the_config() {
    let node = TestNode::default();
    let config = ApiConfig { chain_id: 0x2105, ..ApiConfig::default() };
    let app = router(config, node.services());
    let (status, body) = rpc(&app, "eth_chainId", json!([])).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"jsonrpc": "2.0", "id": 7, "result": "0x2105"}));
}

#[tokio::test]
async fn send_raw_transaction_returns_the_hash_and_uses_the_rpc_lane() {
    let node = TestNode::default();
    let app = app(&node);
    let raw = format!("0x{}", "ab".repeat(40));
    let (status, body) = rpc(&app, "eth_sendRawTransaction", json!([raw])).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["result"], json!(format!("0x{}", "ab".repeat(32))));
    let submitted = node.pool.submitted.lock().unwrap();
    assert_eq!(submitted.len(), 1);
    assert_eq!(submitted[0].0, Lane::Rpc);
    assert_eq!(submitted[0].1.len(), 40);
}

#[tokio::test]
async fn refusals_answer_geths_messages() {
    let cases = [
        (Refusal::Rejected(RejectReason::NonceTooLow), "nonce too low", "nonce_too_low"),
        (
            Refusal::Rejected(RejectReason::ReplacementUnderpriced),
            "replacement transaction underpriced",
            "replacement_underpriced",
        ),
        (Refusal::Rejected(RejectReason::Duplicate), "already known", "duplicate"),
        (Refusal::Rejected(RejectReason::InvalidSignature), "invalid sender", "invalid_signature"),
        (
            Refusal::Rejected(RejectReason::IntrinsicGasTooLow),
            "intrinsic gas too low",
            "intrinsic_gas_too_low",
        ),
        (
            Refusal::Rejected(RejectReason::WrongChainId),
            "invalid chain id for signer",
            "wrong_chain_id",
        ),
        (Refusal::UnsupportedType, "transaction type not supported", "unsupported_type"),
        (Refusal::Dropped(DropReason::Oversize), "oversized data", "oversize"),
        (Refusal::Rejected(RejectReason::PoolFull), "txpool is full", "pool_full"),
        (Refusal::Dropped(DropReason::QueueFull), "txpool is full", "queue_full"),
    ];
    let node = TestNode::default();
    let app = app(&node);
    for (refusal, message, reason) in cases {
        node.pool.refuse_with(Some(refusal));
        let (status, body) = rpc(&app, "eth_sendRawTransaction", json!(["0x02aa"])).await;
        assert_eq!(status, StatusCode::OK, "{refusal:?}");
        assert_eq!(body["error"]["code"], json!(-32000), "{refusal:?}");
        assert_eq!(body["error"]["message"], json!(message), "{refusal:?}");
        assert_eq!(body["error"]["data"]["reason"], json!(reason), "{refusal:?}");
        assert_eq!(body["id"], json!(7));
    }
}

#[tokio::test]
async fn an_unavailable_service_is_a_503_with_resource_unavailable() {
    let node = TestNode::default();
    node.pool.fail_with(Some(Unavailable::NoLeader));
    let (status, body) = rpc(&app(&node), "eth_sendRawTransaction", json!(["0x02aa"])).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"]["code"], json!(-32002));
    assert_eq!(body["error"]["data"]["code"], json!("UNAVAILABLE"));
}

#[tokio::test]
async fn fenced_nodes_refuse_state_but_answer_the_chain_id() {
    let node = TestNode::new(FakePool::with_txs(sample_pool()));
    let app = app(&node);
    node.fence.send_replace(FenceState::Fenced { reason: FenceReason::Divergence, index: None });
    for method in ["eth_sendRawTransaction", "eth_getTransactionByHash", "txpool_status"] {
        let params = if method == "txpool_status" { json!([]) } else { json!(["0x00"]) };
        let (status, body) = rpc(&app, method, params).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{method}");
        assert_eq!(body["error"]["code"], json!(-32002), "{method}");
        assert_eq!(body["error"]["data"]["code"], json!("SELF_FENCED"), "{method}");
        assert!(body["error"]["message"].as_str().unwrap().contains("divergence"), "{method}");
    }
    assert!(node.pool.submitted.lock().unwrap().is_empty());
    let (status, body) = rpc(&app, "eth_chainId", json!([])).await;
    assert_eq!((status, body["result"].clone()), (StatusCode::OK, json!("0x1")));
    node.fence.send_replace(FenceState::Serving);
    let (status, _) = rpc(&app, "txpool_status", json!([])).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn get_transaction_by_hash_renders_geths_object_for_every_type() {
    let pool = sample_pool();
    let node = TestNode::new(FakePool::with_txs(pool.clone()));
    let app = app(&node);
    for (tx, _) in &pool {
        let (status, body) =
            rpc(&app, "eth_getTransactionByHash", json!([tx.hash.to_string()])).await;
        assert_eq!(status, StatusCode::OK);
        let o = &body["result"];
        let what = tx.tx_type.as_str();
        assert_eq!(o["hash"], json!(tx.hash.to_string()), "{what}");
        assert_eq!(o["from"], json!(tx.sender.to_string()), "{what}");
        assert_eq!(o["nonce"], json!(format!("{:#x}", tx.nonce.get())), "{what}");
        assert_eq!(o["gas"], json!(format!("{:#x}", tx.gas_limit)), "{what}");
        assert_eq!(o["type"], json!(format!("{:#x}", tx.tx_type.code())), "{what}");
        assert_eq!(o["to"], json!(format!("0x{}", "35".repeat(20))), "{what}");
        assert_eq!(o["value"], json!("0x3e8"), "{what}");
        assert_eq!(o["input"], json!("0x"), "{what}");
        assert_eq!(o["blockHash"], Value::Null, "{what}");
        assert_eq!(o["blockNumber"], Value::Null, "{what}");
        assert_eq!(o["chainId"], json!("0x1"), "{what}");
        assert!(o["r"].as_str().unwrap().starts_with("0x"), "{what}");
        assert!(o["s"].as_str().unwrap().starts_with("0x"), "{what}");
        assert_eq!(o["gasPrice"], json!(format!("{:#x}", tx.fees.max_fee_per_gas)), "{what}");
        if tx.tx_type == TxType::Legacy {
            let v =
                u64::from_str_radix(o["v"].as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
            assert!(v == 37 || v == 38, "EIP-155 v for chain 1, got {v}");
            assert!(o.get("yParity").is_none());
        } else {
            assert_eq!(o["v"], o["yParity"], "{what}");
            assert!(o["accessList"].is_array(), "{what}");
        }
        if matches!(tx.tx_type, TxType::DynamicFee | TxType::Blob | TxType::SetCode) {
            assert_eq!(
                o["maxFeePerGas"],
                json!(format!("{:#x}", tx.fees.max_fee_per_gas)),
                "{what}"
            );
            let tip = format!("{:#x}", tx.fees.max_priority_fee_per_gas);
            assert_eq!(o["maxPriorityFeePerGas"], json!(tip), "{what}");
        }
        if tx.tx_type == TxType::Blob {
            assert_eq!(o["blobVersionedHashes"].as_array().unwrap().len(), 1);
            assert!(o["maxFeePerBlobGas"].is_string());
        }
        if tx.tx_type == TxType::SetCode {
            let auth = &o["authorizationList"][0];
            assert!(auth["address"].is_string() && auth["yParity"].is_string(), "{auth}");
        }
    }
    let unknown = format!("0x{}", "11".repeat(32));
    let (_, body) = rpc(&app, "eth_getTransactionByHash", json!([unknown])).await;
    assert_eq!(body["result"], Value::Null);
}

#[tokio::test]
async fn txpool_namespace_has_geths_shapes() {
    let pool = sample_pool();
    let node = TestNode::new(FakePool::with_txs(pool.clone()));
    let app = app(&node);
    let (_, status) = rpc(&app, "txpool_status", json!([])).await;
    assert_eq!(status["result"], json!({"pending": "0x5", "queued": "0x1"}));

    let (_, content) = rpc(&app, "txpool_content", json!([])).await;
    let (_, inspect) = rpc(&app, "txpool_inspect", json!([])).await;
    for (tx, subpool) in &pool {
        let part = if *subpool == Subpool::Pending { "pending" } else { "queued" };
        let sender = tx.sender.to_string();
        let nonce = tx.nonce.get().to_string();
        assert_eq!(content["result"][part][&sender][&nonce]["hash"], json!(tx.hash.to_string()));
        let line = inspect["result"][part][&sender][&nonce].as_str().unwrap().to_owned();
        let want = format!(
            "0x3535353535353535353535353535353535353535: 1000 wei + {} gas × {} wei",
            tx.gas_limit, tx.fees.max_fee_per_gas
        );
        assert_eq!(line, want);
    }
}

#[tokio::test]
async fn txpool_content_over_the_limit_is_refused_not_truncated() {
    let node = TestNode::new(FakePool::with_txs(sample_pool()));
    let config = ApiConfig { txpool_content_txs_max: 3, ..ApiConfig::default() };
    let app = router(config, node.services());
    let (status, body) = rpc(&app, "txpool_content", json!([])).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["error"]["code"], json!(-32005));
}

#[tokio::test]
async fn batches_answer_in_order_and_skip_notifications() {
    let node = TestNode::default();
    let app = app(&node);
    let batch = json!([
        {"jsonrpc": "2.0", "id": "a", "method": "eth_chainId"},
        {"jsonrpc": "2.0", "method": "eth_chainId"},
        {"jsonrpc": "2.0", "id": 2, "method": "nope"},
        {"jsonrpc": "1.0", "id": 3, "method": "eth_chainId"},
        5,
    ]);
    let answer = post_json(&app, "/rpc", &batch).await;
    assert_eq!(answer.status, StatusCode::OK);
    let out = answer.json();
    let out = out.as_array().unwrap();
    assert_eq!(out.len(), 4, "{out:?}");
    assert_eq!(out[0], json!({"jsonrpc": "2.0", "id": "a", "result": "0x1"}));
    assert_eq!(out[1]["error"]["code"], json!(-32601));
    assert_eq!(out[1]["id"], json!(2));
    assert_eq!(out[2]["error"]["code"], json!(-32600));
    assert_eq!(out[2]["id"], json!(3));
    assert_eq!(out[3]["error"]["code"], json!(-32600));
    assert_eq!(out[3]["id"], Value::Null);
}

#[tokio::test]
async fn notifications_alone_get_no_content() {
    let node = TestNode::default();
    let app = app(&node);
    let one = json!({"jsonrpc": "2.0", "method": "eth_sendRawTransaction", "params": ["0x02aa"]});
    let answer = post_json(&app, "/", &one).await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT);
    assert!(answer.body.is_empty());
    // The notification still ran.
    assert_eq!(node.pool.submitted.lock().unwrap().len(), 1);
    let batch =
        json!([{"jsonrpc": "2.0", "method": "eth_chainId"}, {"jsonrpc": "2.0", "method": "nope"}]);
    assert_eq!(post_json(&app, "/", &batch).await.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn json_rpc_content_types_follow_geth() {
    let node = TestNode::default();
    let app = app(&node);
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}"#;
    for ok in ["application/json", "application/json; charset=utf-8", "application/json-rpc"] {
        assert_eq!(post(&app, "/", ok, body).await.status, StatusCode::OK, "{ok}");
    }
    let refused = post(&app, "/", "text/plain", body).await;
    assert_eq!(refused.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(refused.code(), "UNSUPPORTED_MEDIA_TYPE");
}

/// Ids as clients send them, each with the exact text it must come back as.
const IDS: [&str; 7] = [
    "18446744073709551617",
    "1e2",
    "-42",
    "-0.50",
    "123456789012345678901234567890.000",
    r#""a\"b\\c\u00e9\n""#,
    "null",
];

#[tokio::test]
async fn ids_are_echoed_exactly_as_sent() {
    let node = TestNode::default();
    let app = app(&node);
    for id in IDS {
        let body = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"eth_chainId"}}"#);
        let answer = post(&app, "/", "application/json", body).await;
        let text = String::from_utf8_lossy(&answer.body).into_owned();
        assert!(text.contains(&format!(r#""id":{id},"#)), "{id}: {text}");
        assert_eq!(answer.json()["result"], json!("0x1"), "{id}");
    }
    // Errors echo the id too (an invalid envelope with a valid id, an unknown method).
    let body = r#"{"jsonrpc":"1.0","id":1e2,"method":"eth_chainId"}"#;
    let text =
        String::from_utf8_lossy(&post(&app, "/", "application/json", body).await.body).into_owned();
    assert!(text.contains(r#""id":1e2,"#) && text.contains("-32600"), "{text}");

    let calls: Vec<String> = IDS
        .iter()
        .map(|id| format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"eth_mine"}}"#))
        .collect();
    let answer = post(&app, "/rpc", "application/json", format!("[{}]", calls.join(","))).await;
    let text = String::from_utf8_lossy(&answer.body).into_owned();
    let replies = answer.json();
    assert_eq!(replies.as_array().unwrap().len(), IDS.len(), "{text}");
    let mut rest = text.as_str();
    for id in IDS {
        let at = rest.find(&format!(r#""id":{id},"#)).unwrap_or_else(|| panic!("{id}: {text}"));
        rest = &rest[at..];
    }
    assert!(replies.as_array().unwrap().iter().all(|r| r["error"]["code"] == json!(-32601)));
}

#[tokio::test]
async fn ids_that_are_not_a_string_number_or_null_are_refused() {
    let node = TestNode::default();
    let app = app(&node);
    for id in ["{}", "[1]", "true", "false"] {
        let body = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"eth_chainId"}}"#);
        let reply = post(&app, "/", "application/json", body).await.json();
        assert_eq!(reply["error"]["code"], json!(-32600), "{id}");
        assert_eq!(reply["id"], Value::Null, "{id}");
    }
}

#[tokio::test]
async fn a_content_type_that_does_not_parse_is_shown_as_received() {
    let node = TestNode::default();
    let app = app(&node);
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}"#;
    let cases = [
        ("/", b";;;/".to_vec(), r#"";;;/""#.to_owned()),
        ("/v1/txs", "applicati\u{f6}n/json".into(), r#""applicati\xc3\xb6n/json""#.to_owned()),
        ("/v1/reorg", vec![b'x'; 300], format!("\"{}\"... is", "x".repeat(64))),
    ];
    for (uri, value, shown) in cases {
        let request = axum::http::Request::post(uri)
            .header("content-type", axum::http::HeaderValue::from_bytes(&value).unwrap())
            .body(axum::body::Body::from(body))
            .unwrap();
        let answer = crate::helpers::send(&app, request).await;
        assert_eq!(answer.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{uri}");
        let message = answer.json()["message"].as_str().unwrap().to_owned();
        assert!(message.contains(&shown), "{uri}: {message}");
        assert!(!message.contains(r#""""#), "{uri}: {message}");
    }
}
