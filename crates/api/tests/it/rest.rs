//! REST: transaction submission and lifecycle, block commands, cluster, probes, metrics,
//! OpenAPI.

use axum::http::StatusCode;
use mempulse_api::{FenceState, ROUTES, Refusal, test_utils::TestNode};
use mempulse_cluster::{ClusterNode, LearnerLag};
use mempulse_primitives::{
    EventKind, FenceReason, Height, Lane, NodeId, RaftIndex, RejectReason, Subpool, TxHash,
};
use serde_json::{Value, json};

use crate::helpers::{app, get, post, post_json, sample_tx};

#[tokio::test]
async fn submit_reads_bytes_json_and_hex_text() {
    let node = TestNode::default();
    let app = app(&node);
    let one = post(&app, "/v1/txs", "application/octet-stream", vec![0xaa_u8; 40]).await;
    assert_eq!(one.status, StatusCode::OK);
    let body = one.json();
    assert_eq!(body["results"][0]["status"], json!("accepted"));
    assert_eq!(body["results"][0]["subpool"], json!("pending"));
    assert_eq!(body["results"][0]["hash"], json!(format!("0x{}", "aa".repeat(32))));

    let json_one = post_json(&app, "/v1/txs", &json!({"raw": "0x01bb"})).await;
    assert_eq!(json_one.json()["results"].as_array().unwrap().len(), 1);
    let json_many = post_json(&app, "/v1/txs", &json!({"raws": ["0x01", "0x0203", "0x04"]})).await;
    let results = json_many.json()["results"].as_array().unwrap().clone();
    assert_eq!(results.len(), 3);
    assert_eq!(results[2]["index"], json!(2));
    let text = post(&app, "/v1/txs", "text/plain", "0x0a\n0x0b 0x0c\n").await;
    assert_eq!(text.json()["results"].as_array().unwrap().len(), 3);

    let submitted = node.pool.submitted.lock().unwrap();
    assert_eq!(submitted.len(), 1 + 1 + 3 + 3);
    assert!(submitted.iter().all(|(lane, _)| *lane == Lane::Rest));
    assert_eq!(submitted[3].1.as_ref(), &[0x02, 0x03]);
}

#[tokio::test]
async fn submit_reports_refusals_per_transaction() {
    let node = TestNode::default();
    node.pool.refuse_with(Some(Refusal::Rejected(RejectReason::FeeTooLow)));
    let answer = post_json(&app(&node), "/v1/txs", &json!({"raws": ["0x01", "0x02"]})).await;
    assert_eq!(answer.status, StatusCode::OK);
    let r = &answer.json()["results"][1];
    assert_eq!(r["status"], json!("refused"));
    assert_eq!(r["reason"], json!("fee_too_low"));
    assert_eq!(r["message"], json!("transaction underpriced"));
}

#[tokio::test]
async fn writes_are_fenced_history_is_not() {
    let node = TestNode::default();
    let app = app(&node);
    let tx = sample_tx(mempulse_primitives::TxType::DynamicFee, 1, 0);
    node.log.append_kind(EventKind::TxAdmitted { tx: tx.clone(), subpool: Subpool::Pending });
    node.fence.send_replace(FenceState::Fenced {
        reason: FenceReason::Operator,
        index: Some(RaftIndex(9)),
    });
    let writes = [
        post(&app, "/v1/txs", "application/octet-stream", vec![1_u8]).await,
        post_json(&app, "/v1/blocks/build", &json!({"proposer": 1})).await,
        post_json(&app, "/v1/blocks/commit", &json!({"height": 1, "txs": []})).await,
        post_json(
            &app,
            "/v1/reorg",
            &json!({"fork_height": 0, "orphaned": [{"height": 1, "txs": []}]}),
        )
        .await,
        get(&app, "/readyz").await,
    ];
    for answer in writes {
        assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(answer.code(), "SELF_FENCED");
        assert!(answer.json()["message"].as_str().unwrap().contains("operator"));
        assert_eq!(answer.headers["retry-after"], "1");
    }
    assert!(node.pool.submitted.lock().unwrap().is_empty());
    for uri in ["/healthz", "/v1/cluster", "/metrics", "/v1/events", "/v1/openapi.json"] {
        assert_eq!(get(&app, uri).await.status, StatusCode::OK, "{uri}");
    }
    assert_eq!(get(&app, &format!("/v1/txs/{}", tx.hash)).await.status, StatusCode::OK);
}

#[tokio::test]
async fn lifecycle_lists_every_fact_with_its_seq() {
    let node = TestNode::default();
    let tx = sample_tx(mempulse_primitives::TxType::Legacy, 2, 0);
    let other = TxHash([9; 32]);
    node.log.append_kind(EventKind::TxAdmitted { tx: tx.clone(), subpool: Subpool::Pending });
    node.log.append_kind(EventKind::TxPromoted { hash: other });
    node.log.append_kind(EventKind::TxIncluded { hash: tx.hash, height: Height(3) });
    let answer = get(&app(&node), &format!("/v1/txs/{}", tx.hash)).await;
    assert_eq!(answer.status, StatusCode::OK);
    let body = answer.json();
    assert_eq!(body["hash"], json!(tx.hash.to_string()));
    assert_eq!(body["truncated"], json!(false));
    let events = body["events"].as_array().unwrap();
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [1, 3]);
    assert_eq!(events[0]["kind"], json!("tx_admitted"));
    assert_eq!(events[1]["kind"], json!("tx_included"));
    assert_eq!(events[1]["height"], json!(3));

    let unknown = get(&app(&node), &format!("/v1/txs/0x{}", "42".repeat(32))).await;
    assert_eq!((unknown.status, unknown.code().as_str()), (StatusCode::NOT_FOUND, "NOT_FOUND"));
}

#[tokio::test]
async fn block_commands_validate_and_reach_the_service() {
    let node = TestNode::default();
    let app = app(&node);
    let built =
        post_json(&app, "/v1/blocks/build", &json!({"proposer": 4, "max_gas": 30_000_000})).await;
    assert_eq!(built.status, StatusCode::OK);
    assert_eq!(built.json()["facts"][0]["kind"], json!("block_proposed"));
    assert_eq!(built.json()["block"]["txs"], json!([]));
    let request = node.blocks.builds.lock().unwrap()[0];
    assert_eq!(request.limits.max_gas, Some(30_000_000));
    assert_eq!(request.limits.max_bytes, None);

    let hash = format!("0x{}", "ab".repeat(32));
    let sender = format!("0x{}", "cd".repeat(20));
    let commit = json!({"height": 5, "txs": [hash], "nonces": [{"sender": sender, "nonce": 9}],
        "base_fee_per_gas": "0x3b9aca00"});
    let committed = post_json(&app, "/v1/blocks/commit", &commit).await;
    assert_eq!(committed.status, StatusCode::OK, "{:?}", committed.body);
    assert_eq!(committed.json()["raft_index"], json!(2));
    assert_eq!(committed.json()["facts"][0]["kind"], json!("block_committed"));
    let stored = node.blocks.commits.lock().unwrap()[0].clone();
    assert_eq!(stored.height, Height(5));
    assert_eq!(stored.base_fee_per_gas, Some(1_000_000_000));
    assert_eq!(stored.nonces[0].1.get(), 9);

    let again = post_json(&app, "/v1/blocks/commit", &commit).await;
    assert_eq!((again.status, again.code().as_str()), (StatusCode::CONFLICT, "CONFLICT"));

    let reorg = json!({"fork_height": 3, "orphaned": [
        {"height": 5, "txs": ["0x02f0"]}, {"height": 4, "txs": []}]});
    let answer = post_json(&app, "/v1/reorg", &reorg).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json()["facts"][0]["orphaned"], json!([4, 5]));
    let stored = node.blocks.reorgs.lock().unwrap()[0].clone();
    assert_eq!(stored.orphaned[1].txs[0].as_ref(), &[0x02, 0xf0]);
}

#[tokio::test]
async fn cluster_and_probes() {
    let node = TestNode::default();
    let app = app(&node);
    let cluster = get(&app, "/v1/cluster").await.json();
    assert_eq!(cluster["leader"], json!(1));
    assert_eq!(cluster["role"], json!("leader"));
    assert_eq!(cluster["commit_index"], json!(5));
    assert_eq!(cluster["applied_index"], json!(5));
    assert_eq!(
        cluster["members"][0],
        json!({"id": 1, "raft_addr": "127.0.0.1:7001",
        "api_addr": "127.0.0.1:8081", "voter": true})
    );
    // A leader reports how far every other member is behind.
    node.cluster.update(|v| {
        v.members.insert(NodeId(2), ClusterNode::new("127.0.0.1:7002", "127.0.0.1:8082"));
        v.replication.insert(
            NodeId(2),
            LearnerLag { id: NodeId(2), matched: Some(3), target: Some(5), ack_age_ms: Some(40) },
        );
    });
    let cluster = get(&app, "/v1/cluster").await.json();
    assert_eq!(
        cluster["members"][1],
        json!({"id": 2, "raft_addr": "127.0.0.1:7002", "api_addr": "127.0.0.1:8082",
        "voter": false, "replication": {"matched_index": 3, "behind": 2, "last_heard_ms": 40}})
    );
    assert_eq!(get(&app, "/healthz").await.json(), json!({"status": "ok"}));
    assert_eq!(get(&app, "/readyz").await.json(), json!({"status": "ready"}));

    node.cluster.update(|v| v.leader = None);
    let no_leader = get(&app, "/readyz").await;
    assert_eq!(
        (no_leader.status, no_leader.code().as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "NOT_READY")
    );
    node.cluster.update(|v| {
        v.leader = Some(NodeId(2));
        v.committed = Some(1_000);
    });
    let behind = get(&app, "/readyz").await;
    assert_eq!(behind.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(behind.json()["message"].as_str().unwrap().contains("trails"));
    assert_eq!(get(&app, "/healthz").await.status, StatusCode::OK);

    let metrics = get(&app, "/metrics").await;
    assert!(metrics.headers["content-type"].to_str().unwrap().starts_with("text/plain"));
    assert!(String::from_utf8_lossy(&metrics.body).contains("mempulse_test_total 1"));
}

#[tokio::test]
async fn the_openapi_document_lists_every_route() {
    let node = TestNode::default();
    let doc = get(&app(&node), "/v1/openapi.json").await.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for (method, path) in ROUTES {
        assert!(doc["paths"][path][method].is_object(), "{method} {path} undocumented");
    }
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
}

#[tokio::test]
async fn every_route_in_the_table_is_served() {
    let node = TestNode::default();
    let app = app(&node);
    for (method, path) in ROUTES {
        let path = path.replace("{hash}", &format!("0x{}", "00".repeat(32)));
        if *path == *"/v1/events/stream" {
            continue; // a live tail never ends; covered by the stream tests
        }
        let request = axum::http::Request::builder()
            .method(method.to_uppercase().as_str())
            .uri(&path)
            .header("content-type", "application/json")
            .body(axum::body::Body::from("{}"))
            .unwrap();
        let answer = crate::helpers::send(&app, request).await;
        let code = serde_json::from_slice::<Value>(&answer.body)
            .ok()
            .and_then(|v| v["code"].as_str().map(str::to_owned));
        assert_ne!(code.as_deref(), Some("ROUTE_NOT_FOUND"), "{method} {path}");
        assert_ne!(code.as_deref(), Some("METHOD_NOT_ALLOWED"), "{method} {path}");
    }
}

#[tokio::test]
async fn an_empty_query_is_no_parameter_and_non_v1_routes_ignore_the_query() {
    let node = TestNode::default();
    let tx = sample_tx(mempulse_primitives::TxType::Legacy, 2, 0);
    node.log.append_kind(EventKind::TxAdmitted { tx: tx.clone(), subpool: Subpool::Pending });
    let app = app(&node);
    let lifecycle = format!("/v1/txs/{}?", tx.hash);
    for uri in ["/v1/cluster?", "/v1/catalog?", lifecycle.as_str()] {
        let answer = get(&app, uri).await;
        assert_eq!(answer.status, StatusCode::OK, "{uri}: {:?}", answer.json());
    }
    // Probes, scrapers and JSON-RPC clients may add parameters of their own.
    for uri in
        ["/healthz?probe=1", "/readyz?x=1&x=2", "/metrics?format=text", "/v1/openapi.json?v=3"]
    {
        assert_eq!(get(&app, uri).await.status, StatusCode::OK, "{uri}");
    }
    let rpc = json!({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"});
    let answer = post_json(&app, "/rpc?apikey=x", &rpc).await;
    assert_eq!(answer.json()["result"], json!("0x1"));
}
