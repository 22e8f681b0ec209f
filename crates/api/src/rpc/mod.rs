//! JSON-RPC 2.0 over HTTP at `POST /` and `POST /rpc`: envelope validation, batches and
//! notifications here; the methods in [`methods`].
//!
//! HTTP statuses: 415 for a content type other than JSON and 413 for a body over the limit
//! (as geth); 204 when every call was a notification; 503 for a single call refused because
//! the node is fenced or unavailable; 200 otherwise, with JSON-RPC errors in the body.

mod envelope;
mod error;
mod methods;
mod render;

use std::net::SocketAddr;

use axum::{
    Json,
    body::Body,
    extract::{ConnectInfo, Extension, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use envelope::{Body as RpcBody, Envelope, is_valid_id};
use futures_util::future::join_all;
use serde::Serialize;
use serde_json::{Map, Value, value::RawValue};

pub(crate) use error::geth_message;
use error::{PARSE_ERROR, RpcError};
pub(crate) use render::tx_object;

use crate::{
    ApiError, ErrorCode,
    state::{AppState, media_type, read_body, received_content_type},
};

/// Content types geth accepts for JSON-RPC.
const JSON_MEDIA_TYPES: [&str; 3] =
    ["application/json", "application/json-rpc", "application/jsonrequest"];

/// One answered call: its id (the JSON text the client sent) and its result or error.
struct Reply {
    id: Box<RawValue>,
    outcome: Result<Value, RpcError>,
}

/// A response object as it is written.
#[derive(Serialize)]
struct ReplyBody<'a> {
    jsonrpc: &'static str,
    /// Written as the client sent it.
    id: &'a RawValue,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<Value>,
}

impl Reply {
    fn body(&self) -> ReplyBody<'_> {
        let (result, error) = match &self.outcome {
            Ok(result) => (Some(result), None),
            Err(e) => (None, Some(e.to_json())),
        };
        ReplyBody { jsonrpc: "2.0", id: &self.id, result, error }
    }

    /// An error answered with id `null` (the call had no valid id).
    fn anonymous(err: RpcError) -> Self {
        Self { id: RawValue::NULL.to_owned(), outcome: Err(err) }
    }
}

/// A JSON-RPC 2.0 request or batch.
#[utoipa::path(
    post,
    path = "/",
    tag = "json-rpc",
    request_body(content = crate::openapi::RpcRequestDoc, content_type = "application/json",
        description = "A request object or a batch (array) of them"),
    responses(
        (status = 200, description = "Response object or batch", body = crate::openapi::RpcResponseDoc),
        (status = 204, description = "Only notifications were sent"),
        (status = 413, description = "Body too large", body = crate::error::ErrorBody),
        (status = 415, description = "Content type is not JSON", body = crate::error::ErrorBody),
        (status = 503, description = "Fenced or unavailable (single call)", body = crate::openapi::RpcResponseDoc),
    )
)]
pub(crate) async fn handle(
    State(state): State<AppState>,
    client: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let state = state.for_client(client);
    match handle_inner(&state, &headers, body).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

async fn handle_inner(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    if !media_type(headers).is_some_and(|t| JSON_MEDIA_TYPES.contains(&t.as_str())) {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            format!(
                "invalid content type {}, only application/json is supported",
                received_content_type(headers)
            ),
        ));
    }
    let bytes = read_body(headers, body, state.config.body_bytes_max).await?;
    let Ok(body) = serde_json::from_slice::<RpcBody>(&bytes) else {
        return Ok(single(&Reply::anonymous(RpcError::new(PARSE_ERROR, "parse error"))));
    };
    Ok(match body {
        RpcBody::Batch(calls) => batch(state, calls).await,
        RpcBody::Single(call) => match call_one(state, call).await {
            Some(reply) => single(&reply),
            None => StatusCode::NO_CONTENT.into_response(),
        },
    })
}

fn single(reply: &Reply) -> Response {
    let status = match &reply.outcome {
        Err(e) if e.unavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::OK,
    };
    (status, Json(reply.body())).into_response()
}

async fn batch(state: &AppState, calls: Vec<Envelope>) -> Response {
    if calls.is_empty() {
        return single(&Reply::anonymous(RpcError::invalid_request("empty batch")));
    }
    if calls.len() > state.config.rpc_batch_max {
        let err = RpcError::invalid_request(format!(
            "batch too large: {} calls, at most {}",
            calls.len(),
            state.config.rpc_batch_max
        ));
        return single(&Reply::anonymous(err));
    }
    let replies = join_all(calls.into_iter().map(|c| call_one(state, c))).await;
    let out: Vec<ReplyBody<'_>> = replies.iter().flatten().map(Reply::body).collect();
    if out.is_empty() {
        return StatusCode::NO_CONTENT.into_response();
    }
    Json(out).into_response()
}

/// A validated request object.
struct Call {
    /// `None` for a notification; otherwise the id as sent.
    id: Option<Box<RawValue>>,
    method: String,
    params: Value,
}

/// Validates the envelope; an invalid one is answered with id `null` (or its id when valid).
fn parse_call(envelope: Envelope) -> Result<Call, Reply> {
    let Envelope::Object { id, members } = envelope else {
        return Err(Reply::anonymous(RpcError::invalid_request("invalid request")));
    };
    if id.as_deref().is_some_and(|id| !is_valid_id(id)) {
        return Err(Reply::anonymous(RpcError::invalid_request("invalid id")));
    }
    match method_and_params(members) {
        Ok((method, params)) => Ok(Call { id, method, params }),
        Err(message) => Err(Reply {
            id: id.unwrap_or_else(|| RawValue::NULL.to_owned()),
            outcome: Err(RpcError::invalid_request(message)),
        }),
    }
}

/// The method and params of a call whose `jsonrpc` is `"2.0"`, or why the call is invalid.
fn method_and_params(mut members: Map<String, Value>) -> Result<(String, Value), &'static str> {
    match members.get("jsonrpc") {
        Some(Value::String(v)) if v == "2.0" => {}
        _ => return Err("invalid request: jsonrpc must be \"2.0\""),
    }
    let Some(Value::String(method)) = members.remove("method") else {
        return Err("invalid request: method must be a string");
    };
    let params = match members.remove("params") {
        None | Some(Value::Null) => Value::Array(Vec::new()),
        Some(p @ (Value::Array(_) | Value::Object(_))) => p,
        Some(_) => return Err("invalid request: params must be an array or object"),
    };
    Ok((method, params))
}

async fn call_one(state: &AppState, envelope: Envelope) -> Option<Reply> {
    let call = match parse_call(envelope) {
        Ok(call) => call,
        Err(reply) => return Some(reply),
    };
    let outcome = methods::dispatch(state, &call.method, call.params).await;
    call.id.map(|id| Reply { id, outcome })
}
