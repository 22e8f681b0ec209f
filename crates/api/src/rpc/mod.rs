//! JSON-RPC 2.0 over HTTP at `POST /` and `POST /rpc`: envelope validation, batches and
//! notifications here; the methods in [`methods`].
//!
//! HTTP statuses: 415 for a content type other than JSON and 413 for a body over the limit
//! (as geth); 204 when every call was a notification; 503 for a single call refused because
//! the node is fenced or unavailable; 200 otherwise, with JSON-RPC errors in the body.

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
use futures_util::future::join_all;
use serde_json::{Value, json};

pub(crate) use error::geth_message;
use error::{PARSE_ERROR, RpcError};
pub(crate) use render::tx_object;

use crate::{
    ApiError, ErrorCode,
    state::{AppState, media_type, read_body},
};

/// Content types geth accepts for JSON-RPC.
const JSON_MEDIA_TYPES: [&str; 3] =
    ["application/json", "application/json-rpc", "application/jsonrequest"];

/// One answered call: its id and its result or error.
struct Reply {
    id: Value,
    outcome: Result<Value, RpcError>,
}

impl Reply {
    fn to_json(&self) -> Value {
        match &self.outcome {
            Ok(result) => json!({ "jsonrpc": "2.0", "id": self.id, "result": result }),
            Err(e) => json!({ "jsonrpc": "2.0", "id": self.id, "error": e.to_json() }),
        }
    }

    fn error(id: Value, err: RpcError) -> Self {
        Self { id, outcome: Err(err) }
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
    match media_type(headers) {
        Some(t) if JSON_MEDIA_TYPES.contains(&t.as_str()) => {}
        other => {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                format!(
                    "invalid content type {:?}, only application/json is supported",
                    other.unwrap_or_default()
                ),
            ));
        }
    }
    let bytes = read_body(headers, body, state.config.body_bytes_max).await?;
    let Ok(value) = serde_json::from_slice::<Value>(&bytes) else {
        let err = RpcError::new(PARSE_ERROR, "parse error");
        return Ok(single(&Reply::error(Value::Null, err)));
    };
    Ok(match value {
        Value::Array(calls) => batch(state, calls).await,
        call => match call_one(state, call).await {
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
    (status, Json(reply.to_json())).into_response()
}

async fn batch(state: &AppState, calls: Vec<Value>) -> Response {
    if calls.is_empty() {
        return single(&Reply::error(Value::Null, RpcError::invalid_request("empty batch")));
    }
    if calls.len() > state.config.rpc_batch_max {
        let err = RpcError::invalid_request(format!(
            "batch too large: {} calls, at most {}",
            calls.len(),
            state.config.rpc_batch_max
        ));
        return single(&Reply::error(Value::Null, err));
    }
    let replies = join_all(calls.into_iter().map(|c| call_one(state, c))).await;
    let out: Vec<Value> = replies.iter().flatten().map(Reply::to_json).collect();
    if out.is_empty() {
        return StatusCode::NO_CONTENT.into_response();
    }
    Json(Value::Array(out)).into_response()
}

/// A validated request object.
struct Call {
    /// `None` for a notification.
    id: Option<Value>,
    method: String,
    params: Value,
}

/// Validates the envelope; an invalid one is answered with id `null` (or its id when valid).
fn parse_call(value: Value) -> Result<Call, Reply> {
    let Value::Object(mut obj) = value else {
        return Err(Reply::error(Value::Null, RpcError::invalid_request("invalid request")));
    };
    let id = obj.remove("id");
    let reply_id = match &id {
        None | Some(Value::Null) => Value::Null,
        Some(v @ (Value::String(_) | Value::Number(_))) => v.clone(),
        Some(_) => {
            return Err(Reply::error(Value::Null, RpcError::invalid_request("invalid id")));
        }
    };
    let invalid =
        |message: &str| Reply::error(reply_id.clone(), RpcError::invalid_request(message));
    match obj.get("jsonrpc") {
        Some(Value::String(v)) if v == "2.0" => {}
        _ => return Err(invalid("invalid request: jsonrpc must be \"2.0\"")),
    }
    let Some(Value::String(method)) = obj.remove("method") else {
        return Err(invalid("invalid request: method must be a string"));
    };
    let params = match obj.remove("params") {
        None | Some(Value::Null) => Value::Array(Vec::new()),
        Some(p @ (Value::Array(_) | Value::Object(_))) => p,
        Some(_) => return Err(invalid("invalid request: params must be an array or object")),
    };
    Ok(Call { id, method, params })
}

async fn call_one(state: &AppState, value: Value) -> Option<Reply> {
    let call = match parse_call(value) {
        Ok(call) => call,
        Err(reply) => return Some(reply),
    };
    let outcome = methods::dispatch(state, &call.method, call.params).await;
    call.id.map(|id| Reply { id, outcome })
}
