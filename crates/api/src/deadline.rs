//! The per-request deadline, and who missed it: a client that stopped sending its body (408
//! `REQUEST_TIMEOUT`) or the node (503 `TIMEOUT`).
//!
//! The middleware wraps a request body that has not ended yet in a stream that notes whether
//! its last poll found no data ready. Handlers read their body before any slow work (only
//! checks of headers, query and fence come first) and poll nothing else meanwhile, so when the
//! deadline passes with that note set the handler was waiting for bytes the client had not
//! sent; otherwise it was the node's own work (or a service behind it) that took too long.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use axum::{
    body::{Body, HttpBody as _},
    extract::{Request, State},
    http::{HeaderValue, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use futures_util::StreamExt as _;

use crate::{ApiError, ErrorCode};

/// Answers 503 `TIMEOUT` when a request's handler (body reading included) takes longer than
/// the deadline, or 408 `REQUEST_TIMEOUT` when at that moment the handler was waiting for the
/// rest of a body the client stopped sending. A live tail's handler returns at once, so its
/// stream is not limited.
pub(crate) async fn deadline(
    State(timeout): State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    let (request, body) = watch_body(request);
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) if body.is_waiting() => {
            let mut response = ApiError::new(
                ErrorCode::RequestTimeout,
                "request timed out waiting for the rest of its body",
            )
            .into_response();
            // The unread rest of the body cannot be told apart from a next request.
            response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            response
        }
        Err(_) => ApiError::new(ErrorCode::Timeout, "request timed out").into_response(),
    }
}

/// Whether the handler is waiting on the client for body bytes: set when a poll of the body
/// found none ready, cleared when data, an error or the end arrives.
#[derive(Clone, Debug, Default)]
struct BodyWait(Arc<AtomicBool>);

impl BodyWait {
    fn is_waiting(&self) -> bool {
        // The body is polled inside the handler's future, which this middleware polls on the
        // same task: no other thread writes the flag.
        self.0.load(Ordering::Relaxed)
    }
}

/// `request` with its body wrapped to track [`BodyWait`]; a body that has already ended (no
/// body, `Content-Length: 0`) is left as it is.
fn watch_body(request: Request) -> (Request, BodyWait) {
    let wait = BodyWait::default();
    if request.body().is_end_stream() {
        return (request, wait);
    }
    let flag = Arc::clone(&wait.0);
    let (parts, body) = request.into_parts();
    let mut data = body.into_data_stream();
    let watched = futures_util::stream::poll_fn(move |cx| {
        let polled = data.poll_next_unpin(cx);
        flag.store(polled.is_pending(), Ordering::Relaxed);
        polled
    });
    (Request::from_parts(parts, Body::from_stream(watched)), wait)
}

#[cfg(test)]
mod tests {
    use axum::{Router, http::StatusCode, middleware, routing::post};
    use bytes::Bytes;
    use tokio::sync::mpsc;
    use tower::ServiceExt as _;

    use super::*;
    use crate::state::read_body;

    const TIMEOUT: Duration = Duration::from_millis(100);

    /// A route that reads its whole body, then takes `work` more.
    fn app(work: Duration) -> Router {
        let handler = move |headers: axum::http::HeaderMap, body: Body| async move {
            let bytes = read_body(&headers, body, 1024).await?;
            tokio::time::sleep(work).await;
            Ok::<_, ApiError>(bytes.len().to_string())
        };
        Router::new()
            .route("/", post(handler))
            .layer(middleware::from_fn_with_state(TIMEOUT, deadline))
    }

    async fn code(response: Response) -> (StatusCode, String) {
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 4096).await.unwrap();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        (status, json["code"].as_str().unwrap_or_default().to_owned())
    }

    #[tokio::test]
    async fn a_body_the_client_stopped_sending_is_408() {
        let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(1);
        tx.send(Ok(Bytes::from_static(b"0123456789"))).await.unwrap();
        let stalled = Body::from_stream(tokio_stream_of(rx));
        let request = Request::post("/").body(stalled).unwrap();
        let response = app(Duration::ZERO).oneshot(request).await.unwrap();
        assert_eq!(response.headers()[header::CONNECTION], "close");
        assert_eq!(code(response).await, (StatusCode::REQUEST_TIMEOUT, "REQUEST_TIMEOUT".into()));
        drop(tx);
    }

    #[tokio::test]
    async fn a_slow_handler_after_a_whole_body_is_503() {
        let request = Request::post("/").body(Body::from("0123456789")).unwrap();
        let response = app(TIMEOUT * 20).oneshot(request).await.unwrap();
        assert_eq!(code(response).await, (StatusCode::SERVICE_UNAVAILABLE, "TIMEOUT".into()));
    }

    #[tokio::test]
    async fn a_prompt_request_is_answered_unchanged() {
        let request = Request::post("/").body(Body::from("0123456789")).unwrap();
        let response = app(Duration::ZERO).oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body = axum::body::to_bytes(response.into_body(), 64).await.unwrap();
        assert_eq!(&body[..], b"10");
    }

    /// A stream over a channel's receiver (what `tokio-stream` would provide).
    fn tokio_stream_of<T: Send + 'static>(
        mut rx: mpsc::Receiver<T>,
    ) -> impl futures_util::Stream<Item = T> + Send + 'static {
        futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
    }
}
