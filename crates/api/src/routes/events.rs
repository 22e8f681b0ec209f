//! `GET /v1/events?after=SEQ&limit=N&kinds=a,b`: a page of durable events in seq order, as a
//! JSON object or as NDJSON (`Accept: application/x-ndjson`).
//!
//! The cursor is the seq of the last record *examined*, not of the last event returned: with a
//! kind filter a page may hold fewer than `limit` events (or none) while the scan still moved,
//! and `next` resumes exactly after it, so paging never skips or repeats a record. Each request
//! examines at most `events_scan_records_max` records.
//!
//! Fencing: the log is history and stays readable while fenced.

use axum::{
    Json,
    extract::{Query, State, rejection::QueryRejection},
    http::{HeaderMap, HeaderName, HeaderValue, header},
    response::{IntoResponse, Response},
};
use mempulse_primitives::{Event, Seq, SequencedEvent};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{KindFilter, parse_cursor, parse_kinds, parse_limit, query_error};
use crate::{ApiError, ErrorCode, state::AppState};

/// Header carrying the `next` cursor (also set on NDJSON responses, which have no envelope).
pub(crate) const NEXT_HEADER: HeaderName = HeaderName::from_static("x-mempulse-next");

/// NDJSON media type.
pub(crate) const NDJSON: &str = "application/x-ndjson";

/// Query of `GET /v1/events`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct EventsQuery {
    /// Seq of the last event already seen; events with a greater seq are returned (default 0:
    /// from the first record kept).
    #[param(value_type = Option<u64>)]
    after: Option<String>,
    /// Most events to return (default 100, at most 10 000 by default).
    #[param(value_type = Option<u32>)]
    limit: Option<String>,
    /// Comma-separated kind names (`tx_admitted,block_committed`); default every kind.
    kinds: Option<String>,
}

/// A page of events.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EventsPage {
    /// Events in seq order: the flat JSON of each fact with its `seq`.
    #[schema(value_type = Vec<Object>)]
    pub(crate) events: Vec<SequencedEvent>,
    /// Cursor for the next page: pass it as `after`.
    pub(crate) next: u64,
}

/// Validated scan parameters.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ScanParams {
    pub(crate) after: Seq,
    pub(crate) limit: usize,
    pub(crate) kinds: KindFilter,
}

impl ScanParams {
    fn parse(state: &AppState, query: &EventsQuery) -> Result<Self, ApiError> {
        let after = query.after.as_deref().map(parse_cursor).transpose()?.unwrap_or(Seq(0));
        let limit = match query.limit.as_deref() {
            Some(text) => parse_limit(text, state.config.events_limit_max)?,
            None => state.config.events_limit_default,
        };
        let kinds = query.kinds.as_deref().map(parse_kinds).transpose()?.unwrap_or(KindFilter::ALL);
        Ok(Self { after, limit, kinds })
    }
}

/// A page of durable events after a cursor.
#[utoipa::path(
    get,
    path = "/v1/events",
    tag = "events",
    params(EventsQuery),
    responses(
        (status = 200, description = "Events in seq order; NDJSON when `Accept: application/x-ndjson` \
            (the cursor then comes in the `x-mempulse-next` header)", body = EventsPage),
        (status = 400, description = "Bad cursor, limit, kind or parameter", body = crate::error::ErrorBody),
        (status = 410, description = "The records after the cursor were purged", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn scan_handler(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| query_error(&e))?;
    let params = ScanParams::parse(&state, &query)?;
    let page = scan(&state, params).await?;
    let next = HeaderValue::from(page.next);
    if wants_ndjson(&headers) {
        let mut body = Vec::new();
        for event in &page.events {
            serde_json::to_writer(&mut body, event).map_err(|e| {
                tracing::error!(error = %e, "event does not serialize");
                ApiError::new(ErrorCode::Internal, "internal error")
            })?;
            body.push(b'\n');
        }
        let headers =
            [(header::CONTENT_TYPE, HeaderValue::from_static(NDJSON)), (NEXT_HEADER, next)];
        return Ok((headers, body).into_response());
    }
    Ok(([(NEXT_HEADER, next)], Json(page)).into_response())
}

fn wants_ndjson(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| item.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case(NDJSON))
}

/// Decodes one durable record.
pub(crate) fn decode_record(seq: Seq, payload: &[u8]) -> Result<SequencedEvent, ApiError> {
    let event = Event::from_bytes(payload).map_err(|e| {
        tracing::error!(seq = seq.0, error = %e, "event record does not decode");
        ApiError::new(ErrorCode::Internal, "internal error")
    })?;
    Ok(SequencedEvent { seq, event })
}

/// Reads up to `limit` matching events after `after`, examining at most the scan budget.
pub(crate) async fn scan(state: &AppState, params: ScanParams) -> Result<EventsPage, ApiError> {
    let config = &state.config;
    let mut cursor = params.after;
    let mut events = Vec::new();
    let mut budget = config.events_scan_records_max.max(params.limit);
    let unfiltered = params.kinds.is_all();
    while events.len() < params.limit && budget > 0 {
        let mut want = config.events_read_batch.max(1).min(budget);
        if unfiltered {
            want = want.min(params.limit - events.len());
        }
        let records = state.services.events.read_after(cursor, want).await?;
        if records.is_empty() {
            break;
        }
        for record in records {
            if record.seq <= cursor {
                tracing::error!(seq = record.seq.0, cursor = cursor.0, "event log went backwards");
                return Err(ApiError::new(ErrorCode::Internal, "internal error"));
            }
            cursor = record.seq;
            budget = budget.saturating_sub(1);
            let event = decode_record(record.seq, &record.payload)?;
            if params.kinds.accepts(event.event.kind.code()) {
                events.push(event);
                if events.len() == params.limit {
                    break;
                }
            }
            if budget == 0 {
                break;
            }
        }
    }
    Ok(EventsPage { events, next: cursor.0 })
}
