//! `GET /v1/events/stream`: disk then live without gaps or duplicates, resume by
//! `Last-Event-ID`, kind filters, slow clients cut off with a reason.

use std::time::Duration;

use axum::{
    body::Body,
    http::{Request, StatusCode},
};
use mempulse_api::{ApiConfig, router, test_utils::TestNode};
use mempulse_primitives::{EventKind, Height, TxHash};
use serde_json::{Value, json};
use tower::ServiceExt as _;

use crate::helpers::{DEADLINE, SseReader, app};

fn promoted(node: &TestNode, n: u8) {
    for i in 0..n {
        node.log.append_kind(EventKind::TxPromoted { hash: TxHash([i; 32]) });
    }
}

async fn open(app: &axum::Router, request: Request<Body>) -> (StatusCode, SseReader) {
    let response =
        tokio::time::timeout(DEADLINE, app.clone().oneshot(request)).await.unwrap().unwrap();
    (response.status(), SseReader::new(response.into_body()))
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

#[tokio::test]
async fn a_tail_reads_disk_then_follows_live() {
    let node = TestNode::default();
    promoted(&node, 5);
    let app = app(&node);
    let (status, mut sse) = open(&app, get("/v1/events/stream?after=2")).await;
    assert_eq!(status, StatusCode::OK);
    for want in 3..=5 {
        let frame = sse.next().await.unwrap();
        assert_eq!(frame.id.as_deref(), Some(want.to_string().as_str()));
        let event: Value = serde_json::from_str(&frame.data).unwrap();
        assert_eq!(event["seq"], json!(want));
        assert_eq!(event["kind"], json!("tx_promoted"));
    }
    for i in 0..50u8 {
        node.log.append_kind(EventKind::TxIncluded { hash: TxHash([i; 32]), height: Height(9) });
    }
    for want in 6..=55 {
        assert_eq!(sse.next().await.unwrap().id, Some(want.to_string()));
    }
}

#[tokio::test]
async fn last_event_id_resumes_and_kinds_filter() {
    let node = TestNode::default();
    promoted(&node, 3);
    node.log.append_kind(EventKind::BlockCommitted { height: Height(1), txs: vec![] });
    promoted(&node, 2);
    let app = app(&node);
    let request = Request::get("/v1/events/stream?after=0&kinds=block_committed,tx_promoted")
        .header("last-event-id", "2")
        .body(Body::empty())
        .unwrap();
    let (_, mut sse) = open(&app, request).await;
    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(sse.next().await.unwrap().id.unwrap());
    }
    assert_eq!(got, ["3", "4", "5", "6"]);
    let (_, mut only_blocks) = open(&app, get("/v1/events/stream?kinds=block_committed")).await;
    assert_eq!(only_blocks.next().await.unwrap().id.as_deref(), Some("4"));
    node.log.append_kind(EventKind::BlockCommitted { height: Height(2), txs: vec![] });
    assert_eq!(only_blocks.next().await.unwrap().id.as_deref(), Some("7"));
}

#[tokio::test]
async fn a_slow_client_is_cut_off_with_a_reason_and_resumes_without_gaps() {
    let node = TestNode::default();
    promoted(&node, 20);
    let config = ApiConfig {
        stream_buffer_events: 4,
        stream_stall_timeout: Duration::from_millis(20),
        stream_connections_max: 1,
        events_read_batch: 3,
        ..ApiConfig::default()
    };
    let app = router(config, node.services());
    let (status, mut slow) = open(&app, get("/v1/events/stream")).await;
    assert_eq!(status, StatusCode::OK);
    // The producer holds the only stream permit until it gives up on the client: wait until a
    // second stream is admitted (bounded by the deadline), which proves the cut-off happened.
    let start = tokio::time::Instant::now();
    let second = loop {
        let (status, sse) = open(&app, get(&format!("/v1/events/stream?after={}", 20))).await;
        if status == StatusCode::OK {
            break sse;
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "only the stream limit refuses");
        assert!(start.elapsed() < DEADLINE, "the slow client was never cut off");
        tokio::task::yield_now().await;
    };
    drop(second);
    let mut ids = Vec::new();
    let end = loop {
        let frame = slow.next().await.unwrap();
        if frame.event.as_deref() == Some("end") {
            break frame;
        }
        ids.push(frame.id.unwrap().parse::<u64>().unwrap());
    };
    assert_eq!(ids, [1, 2, 3, 4], "exactly the buffer was delivered");
    let end: Value = serde_json::from_str(&end.data).unwrap();
    assert_eq!(end, json!({"reason": "slow_consumer", "resume_after": 4}));
    assert!(slow.next().await.is_none(), "the stream ends after the reason");
}

#[tokio::test]
async fn bad_resume_ids_are_refused() {
    let node = TestNode::default();
    let request = Request::get("/v1/events/stream")
        .header("last-event-id", "abc")
        .body(Body::empty())
        .unwrap();
    let answer = crate::helpers::send(&app(&node), request).await;
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (StatusCode::BAD_REQUEST, "INVALID_CURSOR")
    );
}
