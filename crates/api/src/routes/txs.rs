//! `POST /v1/txs` (submit one or many raw transactions) and `GET /v1/txs/{hash}` (every fact
//! about one transaction).
//!
//! Fencing: submitting is a write and is refused while fenced; the lifecycle is history read
//! from the durable log and stays available (it shows how the node got where it is).

use std::net::SocketAddr;

use axum::{
    Json,
    body::Body,
    extract::{
        ConnectInfo, Extension, Path, Query, State,
        rejection::{PathRejection, QueryRejection},
    },
    http::HeaderMap,
};
use bytes::Bytes;
use mempulse_primitives::{Lane, SequencedEvent};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    ApiError, ErrorCode, TxVerdict,
    hex::{parse_bytes, parse_hash},
    routes::{NoParams, no_params},
    rpc::geth_message,
    state::{AppState, media_type, read_body, received_content_type},
};

/// JSON body of `POST /v1/txs`: exactly one of `raw` or `raws`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SubmitBody {
    /// One signed EIP-2718 transaction as `0x` hex.
    raw: Option<String>,
    /// Several signed EIP-2718 transactions as `0x` hex.
    raws: Option<Vec<String>>,
}

/// What became of one submitted transaction.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SubmitResult {
    /// Position in the request.
    index: u32,
    /// `accepted` or `refused`.
    status: &'static str,
    /// Transaction hash, when it decoded far enough to have one.
    hash: Option<String>,
    /// `pending` or `queued` for an accepted transaction whose subpool is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    subpool: Option<&'static str>,
    /// Stable reason of a refusal (`nonce_too_low`, `queue_full`, `malformed`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    /// Geth's message for the same refusal.
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'static str>,
}

/// Response of `POST /v1/txs`: one result per submitted transaction, in request order.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SubmitResponse {
    /// Results in request order.
    results: Vec<SubmitResult>,
}

/// Submits one or many raw transactions.
#[utoipa::path(
    post,
    path = "/v1/txs",
    tag = "txs",
    request_body(
        content(
            (SubmitBody = "application/json"),
            (Vec<u8> = "application/octet-stream"),
            (String = "text/plain"),
        ),
        description = "One raw transaction as bytes; `{\"raw\"}` or `{\"raws\"}` JSON; or \
                       whitespace-separated 0x hex text"
    ),
    responses(
        (status = 200, description = "One result per transaction", body = SubmitResponse),
        (status = 400, description = "Malformed body, bad hex, too many transactions, or a query parameter (the route takes none)", body = crate::error::ErrorBody),
        (status = 413, description = "Body too large", body = crate::error::ErrorBody),
        (status = 415, description = "Unsupported content type", body = crate::error::ErrorBody),
        (status = 503, description = "Fenced or unavailable", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn submit(
    State(state): State<AppState>,
    client: Option<Extension<ConnectInfo<SocketAddr>>>,
    query: Result<Query<NoParams>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<SubmitResponse>, ApiError> {
    no_params(query)?;
    let state = state.for_client(client);
    state.check_fence()?;
    let kind = media_type(&headers);
    let bytes = read_body(&headers, body, state.config.body_bytes_max).await?;
    let raws = match kind.as_deref() {
        Some("application/octet-stream") => {
            if bytes.is_empty() {
                return Err(ApiError::new(ErrorCode::InvalidBody, "empty transaction"));
            }
            vec![bytes]
        }
        Some("application/json") => parse_json(&bytes)?,
        Some("text/plain") => parse_text(&bytes)?,
        _ => {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                format!(
                    "content type {} is not one of application/octet-stream, \
                     application/json, text/plain",
                    received_content_type(&headers)
                ),
            ));
        }
    };
    let max = state.config.txs_per_request_max;
    if raws.len() > max {
        return Err(ApiError::new(
            ErrorCode::TooManyItems,
            format!("{} transactions, at most {max} per request", raws.len()),
        ));
    }
    let count = raws.len();
    let verdicts = state.services.txs.submit(Lane::Rest, state.client, raws).await?;
    if verdicts.len() != count {
        tracing::error!(count, got = verdicts.len(), "tx service answered the wrong count");
        return Err(ApiError::new(ErrorCode::Internal, "internal error"));
    }
    let results = verdicts.iter().zip(0u32..).map(|(v, index)| result(index, v)).collect();
    Ok(Json(SubmitResponse { results }))
}

fn result(index: u32, verdict: &TxVerdict) -> SubmitResult {
    match verdict {
        TxVerdict::Accepted { hash, subpool } => SubmitResult {
            index,
            status: "accepted",
            hash: Some(hash.to_string()),
            subpool: subpool.map(|s| s.as_str()),
            reason: None,
            message: None,
        },
        TxVerdict::Refused { hash, refusal } => SubmitResult {
            index,
            status: "refused",
            hash: hash.map(|h| h.to_string()),
            subpool: None,
            reason: Some(refusal.as_str()),
            message: Some(geth_message(*refusal).1),
        },
    }
}

fn parse_json(bytes: &[u8]) -> Result<Vec<Bytes>, ApiError> {
    let body: SubmitBody = crate::routes::json_body(bytes)?;
    let texts = match (body.raw, body.raws) {
        (Some(raw), None) => vec![raw],
        (None, Some(raws)) => raws,
        _ => {
            return Err(ApiError::new(ErrorCode::InvalidBody, "give exactly one of raw or raws"));
        }
    };
    decode_all(texts.iter().map(String::as_str))
}

fn parse_text(bytes: &[u8]) -> Result<Vec<Bytes>, ApiError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| ApiError::new(ErrorCode::InvalidBody, "text body is not UTF-8"))?;
    decode_all(text.split_whitespace())
}

fn decode_all<'a>(texts: impl Iterator<Item = &'a str>) -> Result<Vec<Bytes>, ApiError> {
    let mut out = Vec::new();
    for (i, text) in texts.enumerate() {
        let raw = parse_bytes(text)
            .map_err(|e| ApiError::new(ErrorCode::InvalidHex, format!("transaction {i}: {e}")))?;
        if raw.is_empty() {
            return Err(ApiError::new(ErrorCode::InvalidBody, format!("transaction {i} is empty")));
        }
        out.push(Bytes::from(raw));
    }
    if out.is_empty() {
        return Err(ApiError::new(ErrorCode::InvalidBody, "no transaction in the body"));
    }
    Ok(out)
}

/// Every fact about one transaction.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LifecycleResponse {
    /// The transaction hash.
    hash: String,
    /// Facts in seq order (the flat event JSON of `GET /v1/events`).
    #[schema(value_type = Vec<Object>)]
    events: Vec<SequencedEvent>,
    /// Whether more facts exist than the limit returned.
    truncated: bool,
}

/// The lifecycle of one transaction: every fact about it with its seq.
#[utoipa::path(
    get,
    path = "/v1/txs/{hash}",
    tag = "txs",
    params(("hash" = String, Path, description = "0x-prefixed 32-byte transaction hash")),
    responses(
        (status = 200, description = "Facts in seq order", body = LifecycleResponse),
        (status = 400, description = "Not a 32-byte hex hash, or a query parameter (the route takes none)", body = crate::error::ErrorBody),
        (status = 404, description = "The log knows nothing of the transaction", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn lifecycle(
    State(state): State<AppState>,
    hash: Result<Path<String>, PathRejection>,
    query: Result<Query<NoParams>, QueryRejection>,
) -> Result<Json<LifecycleResponse>, ApiError> {
    let Path(text) = hash.map_err(|e| ApiError::new(ErrorCode::InvalidHash, e.body_text()))?;
    let hash =
        parse_hash(&text).map_err(|e| ApiError::new(ErrorCode::InvalidHash, e.to_string()))?;
    no_params(query)?;
    let max = state.config.lifecycle_events_max;
    let mut events = state.services.history.lifecycle(hash, max.saturating_add(1)).await?;
    if events.is_empty() {
        return Err(ApiError::new(ErrorCode::NotFound, format!("transaction {hash} is unknown")));
    }
    let truncated = events.len() > max;
    events.truncate(max);
    Ok(Json(LifecycleResponse { hash: hash.to_string(), events, truncated }))
}
