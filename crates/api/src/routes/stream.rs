//! `GET /v1/events/stream?after=SEQ&kinds=…`: a live tail over Server-Sent Events.
//!
//! One producer task per connection reads durable records after the cursor (from disk while
//! behind, then waiting on the durable seq), filters them and hands them to a bounded buffer of
//! `stream_buffer_events`; the response body drains that buffer. Each event carries `id: <seq>`,
//! so a client that reconnects with `Last-Event-ID` resumes right after the last event it got:
//! no gap, no duplicate. When the buffer stays full for `stream_stall_timeout` the client is
//! too slow: the producer stops, the body delivers what is buffered and then one
//! `event: end` with `{"reason": "slow_consumer", "resume_after": seq}`. Memory per connection
//! is therefore bounded by the buffer, never by the client's lag.
//!
//! Fencing: the log is history; a live tail stays open while fenced.

use std::{convert::Infallible, time::Duration};

use axum::{
    Extension,
    extract::{Query, State, rejection::QueryRejection},
    http::HeaderMap,
    response::{
        IntoResponse, Response,
        sse::{Event as SseEvent, KeepAlive, Sse},
    },
};
use futures_util::{Stream, stream};
use mempulse_primitives::{Seq, SequencedEvent};
use serde::{Deserialize, Serialize};
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot, watch};
use utoipa::IntoParams;

use super::{KindFilter, events::decode_record, parse_cursor, parse_kinds, query_error};
use crate::{ApiError, ErrorCode, EventLog, ServiceError, state::AppState};

/// Set by `serve` when shutdown begins: live tails end with `reason: shutting_down` so the
/// server can drain.
#[derive(Clone, Debug)]
pub(crate) struct StopSignal(pub(crate) watch::Receiver<bool>);

/// Query of `GET /v1/events/stream`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct StreamQuery {
    /// Seq of the last event already seen (default 0). A `Last-Event-ID` header takes
    /// precedence, so an `EventSource` reconnecting to the same URL resumes where it stopped.
    #[param(value_type = Option<u64>)]
    after: Option<String>,
    /// Comma-separated kind names; default every kind.
    kinds: Option<String>,
}

/// Why a live tail ended (the data of its final `end` event).
#[derive(Clone, Copy, Debug, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
enum End {
    /// The client did not keep up; resume after `resume_after`.
    SlowConsumer { resume_after: u64 },
    /// The server is shutting down; resume after `resume_after` elsewhere or later.
    ShuttingDown { resume_after: u64 },
    /// The records after the cursor were purged; the log starts at `first`.
    Purged { first: u64 },
    /// The log closed or failed; resume after `resume_after` later.
    Unavailable { resume_after: u64 },
}

impl End {
    /// Stable name (metric label).
    const fn as_str(self) -> &'static str {
        match self {
            Self::SlowConsumer { .. } => "slow_consumer",
            Self::ShuttingDown { .. } => "shutting_down",
            Self::Purged { .. } => "purged",
            Self::Unavailable { .. } => "unavailable",
        }
    }
}

/// Live tail of durable events over Server-Sent Events.
#[utoipa::path(
    get,
    path = "/v1/events/stream",
    tag = "events",
    params(
        StreamQuery,
        ("Last-Event-ID" = Option<u64>, Header, description = "Resume after this seq"),
    ),
    responses(
        (status = 200, description = "text/event-stream: `id: <seq>` and the event JSON as data; \
            a final `event: end` says why the stream stopped", content_type = "text/event-stream", body = String),
        (status = 400, description = "Bad cursor, kind or parameter", body = crate::error::ErrorBody),
        (status = 503, description = "Too many live tails", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn stream_handler(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<StreamQuery>, QueryRejection>,
    stop: Option<Extension<StopSignal>>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| query_error(&e))?;
    let after = match headers.get("last-event-id") {
        Some(value) => parse_cursor(value.to_str().unwrap_or("\u{fffd}").trim())?,
        None => query.after.as_deref().map(parse_cursor).transpose()?.unwrap_or(Seq(0)),
    };
    let kinds = query.kinds.as_deref().map(parse_kinds).transpose()?.unwrap_or(KindFilter::ALL);
    let permit = state.streams.clone().try_acquire_owned().map_err(|_| {
        ApiError::new(ErrorCode::TooManyStreams, "too many live tails are open; retry later")
    })?;
    let config = &state.config;
    let (tx, rx) = mpsc::channel(config.stream_buffer_events.max(1));
    let (end_tx, end_rx) = oneshot::channel();
    let producer = Producer {
        log: state.services.events.clone(),
        kinds,
        batch: config.events_read_batch.max(1),
        stall: config.stream_stall_timeout,
        stop: stop.map(|Extension(s)| s.0),
        _permit: permit,
    };
    tokio::spawn(producer.run(after, tx, end_tx));
    let keep_alive = KeepAlive::new().interval(config.stream_keep_alive);
    Ok(Sse::new(body(rx, end_rx)).keep_alive(keep_alive).into_response())
}

/// The response body: buffered events, then the end event once the producer stops.
fn body(
    rx: mpsc::Receiver<SseEvent>,
    end_rx: oneshot::Receiver<End>,
) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    stream::unfold((rx, Some(end_rx)), |(mut rx, end_rx)| async move {
        if let Some(event) = rx.recv().await {
            return Some((Ok(event), (rx, end_rx)));
        }
        let end = end_rx?.await.ok()?;
        let data = serde_json::to_string(&end).ok()?;
        Some((Ok(SseEvent::default().event("end").data(data)), (rx, None)))
    })
}

struct Producer {
    log: std::sync::Arc<dyn EventLog>,
    kinds: KindFilter,
    batch: usize,
    stall: Duration,
    stop: Option<watch::Receiver<bool>>,
    /// Held for the life of the connection's producer.
    _permit: OwnedSemaphorePermit,
}

/// How one step of the producer ended.
enum Step {
    /// Keep going from this cursor.
    Continue(Seq),
    /// Stop and tell the client why.
    End(End),
    /// The client is gone: stop silently.
    Gone,
}

impl Producer {
    async fn run(self, after: Seq, tx: mpsc::Sender<SseEvent>, end_tx: oneshot::Sender<End>) {
        let end = self.follow(after, &tx).await;
        let metrics = crate::metrics::ApiMetrics::get();
        match end {
            Some(end) => {
                metrics.stream_ended(end.as_str());
                // The body may be gone already; then nobody is left to tell.
                let _ = end_tx.send(end);
            }
            None => metrics.stream_ended("client_gone"),
        }
    }

    /// Forwards events until the tail must end (`Some`) or the client is gone (`None`).
    async fn follow(&self, after: Seq, tx: &mpsc::Sender<SseEvent>) -> Option<End> {
        let mut cursor = after;
        loop {
            let mut stop = self.stop.clone();
            let stopped = async move {
                match stop.as_mut() {
                    Some(rx) => {
                        // An error means the server is gone: stop as well.
                        let _ = rx.wait_for(|stopping| *stopping).await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let read = tokio::select! {
                read = self.log.wait_after(cursor, self.batch) => read,
                () = stopped => return Some(End::ShuttingDown { resume_after: cursor.0 }),
                () = tx.closed() => return None,
            };
            match self.forward(cursor, read, tx).await {
                Step::Continue(next) => cursor = next,
                Step::End(end) => return Some(end),
                Step::Gone => return None,
            }
        }
    }

    async fn forward(
        &self,
        mut cursor: Seq,
        read: Result<Vec<mempulse_wal::Record>, ServiceError>,
        tx: &mpsc::Sender<SseEvent>,
    ) -> Step {
        let records = match read {
            Ok(records) => records,
            Err(ServiceError::Purged { first }) => {
                return Step::End(End::Purged { first: first.0 });
            }
            Err(e) => {
                tracing::warn!(error = %e, "live tail read failed");
                return Step::End(End::Unavailable { resume_after: cursor.0 });
            }
        };
        for record in records {
            if record.seq <= cursor {
                tracing::error!(seq = record.seq.0, cursor = cursor.0, "event log went backwards");
                return Step::End(End::Unavailable { resume_after: cursor.0 });
            }
            let Ok(event) = decode_record(record.seq, &record.payload) else {
                return Step::End(End::Unavailable { resume_after: cursor.0 });
            };
            if self.kinds.accepts(event.event.kind.code()) {
                let Some(sse) = render(&event) else {
                    return Step::End(End::Unavailable { resume_after: cursor.0 });
                };
                match tokio::time::timeout(self.stall, tx.reserve()).await {
                    Ok(Ok(slot)) => slot.send(sse),
                    Ok(Err(_)) => return Step::Gone,
                    Err(_) => return Step::End(End::SlowConsumer { resume_after: cursor.0 }),
                }
            }
            cursor = record.seq;
        }
        Step::Continue(cursor)
    }
}

fn render(event: &SequencedEvent) -> Option<SseEvent> {
    let data = serde_json::to_string(event)
        .map_err(|e| tracing::error!(seq = event.seq.0, error = %e, "event does not serialize"))
        .ok()?;
    Some(SseEvent::default().id(event.seq.0.to_string()).data(data))
}
