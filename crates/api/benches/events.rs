//! The `GET /v1/events` handler end to end in-process (routing, query parsing, log read,
//! decoding, kind filter, JSON or NDJSON rendering) over an in-memory log of mixed facts.
//!
//! `cargo bench -p mempulse-api --bench events`
#![allow(missing_docs, reason = "criterion's macros generate undocumented items")]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "bench setup")]

use std::hint::black_box;

use axum::{Router, body::Body, http::Request};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mempulse_api::{ApiConfig, router, test_utils::TestNode};
use mempulse_primitives::{EventKind, Height, RejectReason, TxHash};
use tower::ServiceExt as _;

const EVENTS: u64 = 20_000;
const PAGE: u64 = 1_000;

fn node() -> TestNode {
    let node = TestNode::default();
    for i in 0..EVENTS {
        let hash = TxHash([u8::try_from(i % 256).unwrap(); 32]);
        let kind = match i % 4 {
            0 => EventKind::TxRejected { hash, reason: RejectReason::NonceTooLow },
            1 => EventKind::TxPromoted { hash },
            2 => EventKind::TxIncluded { hash, height: Height(i) },
            _ if i % 400 == 3 => {
                EventKind::BlockCommitted { height: Height(i), txs: vec![hash; 8] }
            }
            _ => EventKind::TxPromoted { hash },
        };
        node.log.append_kind(kind);
    }
    node
}

fn fetch(runtime: &tokio::runtime::Runtime, app: &Router, uri: &str, ndjson: bool) -> usize {
    runtime.block_on(async {
        let mut request = Request::get(uri);
        if ndjson {
            request = request.header("accept", "application/x-ndjson");
        }
        let response = app.clone().oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
        assert!(response.status().is_success());
        axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap().len()
    })
}

fn bench_scan(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let node = node();
    let app = router(ApiConfig::default(), node.services());
    let mut group = c.benchmark_group("events_scan");
    group.throughput(Throughput::Elements(PAGE));
    group.bench_function("json_page_1000", |b| {
        b.iter(|| black_box(fetch(&runtime, &app, "/v1/events?after=5000&limit=1000", false)));
    });
    group.bench_function("ndjson_page_1000", |b| {
        b.iter(|| black_box(fetch(&runtime, &app, "/v1/events?after=5000&limit=1000", true)));
    });
    // A sparse filter examines every record of the log to return 50 block commits.
    group.throughput(Throughput::Elements(EVENTS));
    group.bench_function("sparse_filter_full_log", |b| {
        b.iter(|| {
            black_box(fetch(&runtime, &app, "/v1/events?kinds=block_committed&limit=10000", false))
        });
    });
    group.finish();
}

criterion_group!(benches, bench_scan);
criterion_main!(benches);
