//! `GET /v1/events`: paging, kind filters, NDJSON, cursors, purges.

use axum::{
    body::Body,
    http::{Request, StatusCode},
};
use mempulse_api::{ApiConfig, router, test_utils::TestNode};
use mempulse_primitives::{EventKind, Height, Seq, TxHash};
use serde_json::{Value, json};

use crate::helpers::{app, get, send};

/// Appends `n` facts cycling through three kinds; returns the kind name of each seq (index 0 =
/// seq 1).
fn fill(node: &TestNode, n: u64) -> Vec<&'static str> {
    (1..=n)
        .map(|i| {
            let hash = TxHash([u8::try_from(i % 251).unwrap(); 32]);
            let kind = match i % 3 {
                0 => EventKind::TxPromoted { hash },
                1 => EventKind::TxIncluded { hash, height: Height(i) },
                _ => EventKind::BlockCommitted { height: Height(i), txs: vec![hash] },
            };
            let name = kind.as_str();
            node.log.append_kind(kind);
            name
        })
        .collect()
}

fn seqs(page: &Value) -> Vec<u64> {
    page["events"].as_array().unwrap().iter().map(|e| e["seq"].as_u64().unwrap()).collect()
}

#[tokio::test]
async fn pages_cover_the_log_in_order_without_gaps() {
    let node = TestNode::default();
    fill(&node, 250);
    let app = app(&node);
    let mut after = 0;
    let mut seen = Vec::new();
    for _ in 0..10 {
        let answer = get(&app, &format!("/v1/events?after={after}&limit=100")).await;
        assert_eq!(answer.status, StatusCode::OK);
        let page = answer.json();
        assert_eq!(answer.headers["x-mempulse-next"], page["next"].to_string().as_str());
        let got = seqs(&page);
        if got.is_empty() {
            assert_eq!(page["next"], json!(after));
            break;
        }
        seen.extend(got);
        after = page["next"].as_u64().unwrap();
    }
    assert_eq!(seen, (1..=250).collect::<Vec<_>>());
    let first = get(&app, "/v1/events").await.json();
    assert_eq!(seqs(&first).len(), 100, "default limit");
    assert_eq!(first["events"][0]["kind"], json!("tx_included"));
    assert_eq!(first["events"][0]["origin"], json!("replicated"));
}

#[tokio::test]
async fn kind_filters_move_the_cursor_past_what_they_skip() {
    let node = TestNode::default();
    let kinds = fill(&node, 30);
    let app = app(&node);
    let page = get(&app, "/v1/events?kinds=tx_promoted&limit=4").await.json();
    assert_eq!(seqs(&page), [3, 6, 9, 12]);
    assert_eq!(page["next"], json!(12));
    let page =
        get(&app, "/v1/events?after=12&kinds=tx_promoted,block_committed&limit=1000").await.json();
    let want: Vec<u64> = (13..=30)
        .filter(|s| {
            matches!(kinds[usize::try_from(*s - 1).unwrap()], "tx_promoted" | "block_committed")
        })
        .collect();
    assert_eq!(seqs(&page), want);
    assert_eq!(page["next"], json!(30));
}

#[tokio::test]
async fn the_scan_budget_bounds_a_sparse_filter() {
    let node = TestNode::default();
    fill(&node, 90);
    let config =
        ApiConfig { events_scan_records_max: 10, events_read_batch: 4, ..ApiConfig::default() };
    let app = router(config, node.services());
    let page = get(&app, "/v1/events?kinds=fenced&limit=5").await.json();
    assert_eq!(seqs(&page), Vec::<u64>::new());
    assert_eq!(page["next"], json!(10), "examined exactly the budget");
}

#[tokio::test]
async fn ndjson_is_one_event_per_line() {
    let node = TestNode::default();
    fill(&node, 5);
    let request = Request::get("/v1/events?after=1&limit=3")
        .header("accept", "application/json;q=0.5, application/x-ndjson")
        .body(Body::empty())
        .unwrap();
    let answer = send(&app(&node), request).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.headers["content-type"], "application/x-ndjson");
    assert_eq!(answer.headers["x-mempulse-next"], "4");
    let text = String::from_utf8(answer.body.to_vec()).unwrap();
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let got: Vec<u64> = lines.iter().map(|l| l["seq"].as_u64().unwrap()).collect();
    assert_eq!(got, [2, 3, 4]);
    assert!(text.ends_with('\n'));
}

#[tokio::test]
async fn purged_positions_answer_410_and_zero_starts_at_the_first_kept() {
    let node = TestNode::default();
    fill(&node, 20);
    node.log.purge_before(Seq(11));
    let app = app(&node);
    let gone = get(&app, "/v1/events?after=3").await;
    assert_eq!((gone.status, gone.code().as_str()), (axum::http::StatusCode::GONE, "PURGED"));
    assert!(gone.json()["message"].as_str().unwrap().contains("after=10"));
    assert_eq!(seqs(&get(&app, "/v1/events?after=0&limit=2").await.json()), [11, 12]);
    assert_eq!(seqs(&get(&app, "/v1/events?after=10&limit=2").await.json()), [11, 12]);
    let end = get(&app, &format!("/v1/events?after={}", u64::MAX)).await.json();
    assert_eq!((seqs(&end), end["next"].as_u64()), (vec![], Some(u64::MAX)));
}
