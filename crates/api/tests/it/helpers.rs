//! Shared helpers: build the router over fakes, send requests, decode answers.

use std::time::Duration;

use axum::{
    Router,
    body::Body,
    http::{HeaderMap, Request, StatusCode},
};
use bytes::Bytes;
use futures_util::StreamExt as _;
use mempulse_api::{ApiConfig, router, test_utils::TestNode};
use mempulse_primitives::{Subpool, Tx, TxType};
use serde_json::Value;
use tower::ServiceExt as _;

/// Every wait in these tests ends by this deadline.
pub(crate) const DEADLINE: Duration = Duration::from_secs(10);

/// A router over `node` with the default config.
pub(crate) fn app(node: &TestNode) -> Router {
    router(ApiConfig::default(), node.services())
}

/// An answered request.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Answer {
    /// The body as JSON (panics with the body text when it is not).
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// The `code` of a REST error body.
    pub(crate) fn code(&self) -> String {
        self.json()["code"].as_str().unwrap_or_default().to_owned()
    }
}

/// Sends `request` through `app` and collects the whole answer.
pub(crate) async fn send(app: &Router, request: Request<Body>) -> Answer {
    let response = tokio::time::timeout(DEADLINE, app.clone().oneshot(request))
        .await
        .expect("request timed out")
        .expect("router is infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let body =
        tokio::time::timeout(DEADLINE, axum::body::to_bytes(response.into_body(), usize::MAX))
            .await
            .expect("body timed out")
            .expect("body reads");
    Answer { status, headers, body }
}

pub(crate) async fn get(app: &Router, uri: &str) -> Answer {
    send(app, Request::get(uri).body(Body::empty()).unwrap()).await
}

pub(crate) async fn post(
    app: &Router,
    uri: &str,
    content_type: &str,
    body: impl Into<Body>,
) -> Answer {
    let request =
        Request::post(uri).header("content-type", content_type).body(body.into()).unwrap();
    send(app, request).await
}

pub(crate) async fn post_json(app: &Router, uri: &str, body: &Value) -> Answer {
    post(app, uri, "application/json", body.to_string()).await
}

/// One JSON-RPC call; returns the HTTP status and the response object.
pub(crate) async fn rpc(app: &Router, method: &str, params: Value) -> (StatusCode, Value) {
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params});
    let answer = post_json(app, "/", &body).await;
    (answer.status, answer.json())
}

/// A signed, decoded transaction of `tx_type` from sample sender `sender`.
pub(crate) fn sample_tx(tx_type: TxType, sender: u32, nonce: u64) -> Tx {
    let spec = mempulse_net::test_utils::TxSpec::transfer(tx_type, sender, nonce);
    let raw = mempulse_net::test_utils::signed_tx(&spec).expect("sample signs");
    mempulse_net::decode_tx(raw, &mempulse_net::CheckConfig::default()).expect("sample decodes")
}

/// A pool holding one transaction of every type, pending, plus one queued.
pub(crate) fn sample_pool() -> Vec<(Tx, Subpool)> {
    let mut txs: Vec<(Tx, Subpool)> = TxType::ALL
        .iter()
        .zip(0u32..)
        .map(|(&t, sender)| (sample_tx(t, sender, 0), Subpool::Pending))
        .collect();
    txs.push((sample_tx(TxType::DynamicFee, 0, 5), Subpool::Queued));
    txs
}

/// Reads SSE frames from a body until `count` frames arrived (each frame's fields as pairs).
pub(crate) struct SseReader {
    stream: axum::body::BodyDataStream,
    buf: String,
}

/// One SSE frame.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Frame {
    pub(crate) id: Option<String>,
    pub(crate) event: Option<String>,
    pub(crate) data: String,
}

impl SseReader {
    pub(crate) fn new(body: Body) -> Self {
        Self { stream: body.into_data_stream(), buf: String::new() }
    }

    /// The next frame with data (comments and keep-alives skipped); `None` at the end.
    pub(crate) async fn next(&mut self) -> Option<Frame> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut frame = Frame::default();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        frame.id = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("event:") {
                        frame.event = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        frame.data.push_str(v.trim_start());
                    }
                }
                if frame.data.is_empty() {
                    continue;
                }
                return Some(frame);
            }
            let chunk = tokio::time::timeout(DEADLINE, self.stream.next())
                .await
                .expect("sse read timed out")?;
            self.buf.push_str(std::str::from_utf8(&chunk.ok()?).expect("sse is UTF-8"));
        }
    }
}
