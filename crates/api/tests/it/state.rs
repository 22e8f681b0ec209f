//! State roots, offline replays and the proposer schedule in the cluster view, over the fakes.

use axum::http::StatusCode;
use mempulse_api::{
    ApiConfig, FenceState, ScheduleView, router,
    test_utils::{FakeStateRoots, TestNode},
};
use mempulse_primitives::{FenceReason, Height, Seq, ValidatorId};
use serde_json::json;

use crate::helpers::{DEADLINE, app, get};

#[tokio::test]
async fn state_root_reports_the_latest_or_the_digest_through_an_index() {
    let node = TestNode::default();
    let app = app(&node);
    let latest = get(&app, "/v1/state-root").await;
    assert_eq!(latest.status, StatusCode::OK);
    let body = latest.json();
    assert_eq!(body["raft_index"], 10);
    assert_eq!(body["seq"], 20);
    assert_eq!(body["digest"], FakeStateRoots::digest_at(Seq(20)).to_string());
    assert!(body.get("requested").is_none(), "{body}");

    let at = get(&app, "/v1/state-root?index=5").await.json();
    assert_eq!((at["requested"].as_u64(), at["raft_index"].as_u64()), (Some(5), Some(5)));
    assert_eq!(at["digest"], FakeStateRoots::digest_at(Seq(10)).to_string());

    let ahead = get(&app, "/v1/state-root?index=11").await;
    assert_eq!((ahead.status, ahead.code().as_str()), (StatusCode::NOT_FOUND, "NOT_FOUND"));
    assert!(ahead.json()["message"].as_str().unwrap().contains("latest sealed index is 10"));
    let old = get(&app, "/v1/state-root?index=2").await;
    assert_eq!((old.status, old.code().as_str()), (StatusCode::NOT_FOUND, "NOT_FOUND"));
    assert!(old.json()["message"].as_str().unwrap().contains("oldest: 3"), "{:?}", old.json());
}

#[tokio::test]
async fn replay_reports_points_and_the_diff_against_the_live_digests() {
    let node = TestNode::default();
    let app = app(&node);
    let body = get(&app, "/v1/replay?from=3&to=20&every=5").await.json();
    assert_eq!((body["from"].as_u64(), body["to"].as_u64()), (Some(3), Some(20)));
    let seqs: Vec<u64> =
        body["points"].as_array().unwrap().iter().map(|p| p["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [5, 10, 15, 20]);
    assert_eq!(body["points"][0]["status"], "matched");
    assert_eq!(body["end"]["seq"], 20);
    assert_eq!(
        body["summary"],
        json!({"matched": 5, "mismatched": 0, "unverified": 0, "first_mismatch": null})
    );

    node.state.diverged.lock().unwrap().extend([Seq(10), Seq(15)]);
    let body = get(&app, "/v1/replay?from=3&to=20&every=5").await.json();
    assert_eq!(body["summary"]["mismatched"], 2, "{body}");
    assert_eq!(body["summary"]["first_mismatch"]["seq"], 10, "{body}");
    assert_eq!(body["points"][1]["status"], "mismatched");

    // `to` defaults to the end of the log; `every` to the configured default.
    let body = get(&app, "/v1/replay?from=1").await.json();
    assert_eq!(body["to"], 100);
    assert_eq!(body["every"], 1000);
    let request = *node.state.requests.lock().unwrap().last().unwrap();
    assert_eq!((request.to, request.every), (None, 1000));
}

#[tokio::test]
async fn replay_limits_and_range_are_clear_errors() {
    let node = TestNode::default();
    let config = ApiConfig { replay_events_max: 50, replay_points_max: 3, ..ApiConfig::default() };
    let app = router(config, node.services());
    let too_long = get(&app, "/v1/replay?from=1&to=60&every=30").await;
    assert_eq!(too_long.status, StatusCode::BAD_REQUEST);
    assert_eq!(too_long.code(), "TOO_MANY_ITEMS");
    assert!(too_long.json()["message"].as_str().unwrap().contains("events to replay 60"));
    let too_many = get(&app, "/v1/replay?from=1&to=40&every=10").await;
    assert_eq!(too_many.code(), "TOO_MANY_ITEMS");
    assert!(too_many.json()["message"].as_str().unwrap().contains("digest points 4"));
    let beyond = get(&app, "/v1/replay?from=101").await;
    assert_eq!((beyond.status, beyond.code().as_str()), (StatusCode::NOT_FOUND, "NOT_FOUND"));
    assert!(beyond.json()["message"].as_str().unwrap().contains("last durable seq 100"));
    *node.state.first_seq.lock().unwrap() = Seq(40);
    let purged = get(&app, "/v1/replay?from=50&to=60").await;
    assert_eq!((purged.status, purged.code().as_str()), (StatusCode::GONE, "PURGED"));
    let message = purged.json()["message"].as_str().unwrap().to_owned();
    assert!(message.contains("starts at seq 40") && message.contains("seq 49"), "{message}");
}

#[tokio::test]
async fn state_routes_are_served_while_fenced() {
    let node = TestNode::default();
    let app = app(&node);
    node.fence.send_replace(FenceState::Fenced { reason: FenceReason::Divergence, index: None });
    assert_eq!(get(&app, "/v1/state-root").await.status, StatusCode::OK);
    assert_eq!(get(&app, "/v1/replay?from=1&to=10").await.status, StatusCode::OK);
}

#[tokio::test]
async fn the_cluster_view_shows_the_schedule_only_when_configured() {
    let node = TestNode::default();
    let app = app(&node);
    let body = get(&app, "/v1/cluster").await.json();
    assert!(body.get("schedule").is_none(), "{body}");
    node.cluster.update(|v| {
        v.schedule = Some(ScheduleView {
            height: Height(7),
            proposer: ValidatorId(2),
            validator: ValidatorId(1),
            tags: vec!["proposer-next"],
        });
    });
    let body = get(&app, "/v1/cluster").await.json();
    assert_eq!(
        body["schedule"],
        json!({"height": 7, "proposer": 2, "validator": 1, "tags": ["proposer-next"]})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_replay_while_one_runs_is_told_so() {
    let node = TestNode::default();
    let app = app(&node);
    node.state.hold.send_replace(true);
    let first = tokio::spawn({
        let app = app.clone();
        async move { get(&app, "/v1/replay?from=1&to=10").await }
    });
    tokio::time::timeout(DEADLINE, async {
        while node.state.replays_running() == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("the first replay never started");

    let second = get(&app, "/v1/replay?from=1&to=10").await;
    assert_eq!(
        (second.status, second.code().as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE")
    );
    assert_eq!(second.headers["retry-after"], "1");
    let message = second.json()["message"].as_str().unwrap().to_owned();
    assert!(message.contains("another replay is already running"), "{message}");

    node.state.hold.send_replace(false);
    let first = tokio::time::timeout(DEADLINE, first).await.unwrap().unwrap();
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(get(&app, "/v1/replay?from=1&to=10").await.status, StatusCode::OK);
}
