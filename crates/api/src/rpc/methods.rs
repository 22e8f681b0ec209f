//! The JSON-RPC methods: `eth_sendRawTransaction`, `eth_getTransactionByHash`, `eth_chainId`,
//! `txpool_status`, `txpool_content`, `txpool_inspect`.
//!
//! Fencing: every method but `eth_chainId` reads or changes the current pool, so a fenced node
//! refuses them with -32002 (and HTTP 503 for a single call).
//!
//! Read consistency: the pool reads (`eth_getTransactionByHash`, `txpool_*`) take an optional
//! trailing params object `{"consistency": "weak" | "linearizable"}` after their geth
//! arguments (`null` or absent: weak), so one batch can mix consistencies and geth clients
//! that send no options are unaffected. A linearizable read no leader can confirm in time is
//! -32002 (HTTP 503 for a single call) with the reason.

use std::collections::BTreeMap;

use bytes::Bytes;
use mempulse_primitives::{Address, Lane, Subpool, Tx};
use serde_json::{Map, Value, json};

use super::{
    error::{INTERNAL_ERROR, LIMIT_EXCEEDED, METHOD_NOT_FOUND, RpcError, SERVER_ERROR},
    render::{self, RenderError},
};
use crate::{
    Consistency, ServiceError, TxVerdict,
    hex::{self, quantity},
    state::AppState,
};

pub(super) async fn dispatch(
    state: &AppState,
    method: &str,
    params: Value,
) -> Result<Value, RpcError> {
    if method == "eth_chainId" {
        positional(params, 0)?;
        return Ok(quantity(state.config.chain_id));
    }
    let known = matches!(
        method,
        "eth_sendRawTransaction"
            | "eth_getTransactionByHash"
            | "txpool_status"
            | "txpool_content"
            | "txpool_inspect"
    );
    if !known {
        return Err(RpcError::new(
            METHOD_NOT_FOUND,
            format!("the method {method} does not exist/is not available"),
        ));
    }
    state.check_fence()?;
    match method {
        "eth_sendRawTransaction" => send_raw_transaction(state, params).await,
        "eth_getTransactionByHash" => transaction_by_hash(state, params).await,
        "txpool_status" => {
            let (_, consistency) = read_args(params, 0)?;
            let status =
                state.services.pool.status(consistency).await.map_err(read_failed(consistency))?;
            Ok(json!({ "pending": quantity(status.pending), "queued": quantity(status.queued) }))
        }
        "txpool_content" => {
            let (_, consistency) = read_args(params, 0)?;
            content(state, consistency, render::tx_object).await
        }
        _ => {
            let (_, consistency) = read_args(params, 0)?;
            content(state, consistency, |tx| render::summary(tx).map(Value::String)).await
        }
    }
}

/// Checks the params of a pool read: its `want` positional values, then optionally the read
/// options object (or `null`).
fn read_args(params: Value, want: usize) -> Result<(Vec<Value>, Consistency), RpcError> {
    let Value::Array(mut args) = params else {
        return Err(RpcError::invalid_params("non-array args"));
    };
    if args.len() > want + 1 {
        return Err(RpcError::invalid_params(format!(
            "too many arguments, want at most {}",
            want + 1
        )));
    }
    let consistency = if args.len() > want {
        read_options(args.pop().unwrap_or(Value::Null), want)?
    } else {
        Consistency::Weak
    };
    positional(Value::Array(args), want).map(|args| (args, consistency))
}

/// Parses the read options at argument `index`: `{"consistency": "weak" | "linearizable"}`,
/// `{}` or `null` (weak); anything else is invalid params with the reason.
fn read_options(options: Value, index: usize) -> Result<Consistency, RpcError> {
    let bad = |why: String| RpcError::invalid_params(format!("invalid argument {index}: {why}"));
    let options = match options {
        Value::Null => return Ok(Consistency::Weak),
        Value::Object(options) => options,
        _ => {
            return Err(bad(
                r#"read options must be an object such as {"consistency":"linearizable"}"#
                    .to_owned(),
            ));
        }
    };
    let mut consistency = Consistency::Weak;
    for (key, value) in options {
        match (key.as_str(), value) {
            ("consistency", Value::String(name)) => {
                consistency = Consistency::from_name(&name)
                    .ok_or_else(|| bad(Consistency::unknown(&name)))?;
            }
            ("consistency", _) => {
                return Err(bad("consistency must be a string: weak or linearizable".to_owned()));
            }
            (other, _) => {
                return Err(bad(format!(
                    "unknown read option {other:?}; the only one is consistency"
                )));
            }
        }
    }
    Ok(consistency)
}

/// The JSON-RPC error of a failed pool read at `consistency`.
fn read_failed(consistency: Consistency) -> impl FnOnce(ServiceError) -> RpcError {
    move |err| consistency.read_error(err).into()
}

/// Checks positional params: an array of exactly `want` values (geth's messages).
fn positional(params: Value, want: usize) -> Result<Vec<Value>, RpcError> {
    let Value::Array(args) = params else {
        return Err(RpcError::invalid_params("non-array args"));
    };
    if args.len() > want {
        return Err(RpcError::invalid_params(format!("too many arguments, want at most {want}")));
    }
    if args.len() < want {
        return Err(RpcError::invalid_params(format!(
            "missing value for required argument {}",
            args.len()
        )));
    }
    Ok(args)
}

fn string_arg(args: &[Value], index: usize) -> Result<&str, RpcError> {
    match args.get(index) {
        Some(Value::String(s)) => Ok(s),
        _ => Err(RpcError::invalid_params(format!(
            "invalid argument {index}: json: cannot unmarshal non-string into Go value"
        ))),
    }
}

async fn send_raw_transaction(state: &AppState, params: Value) -> Result<Value, RpcError> {
    let args = positional(params, 1)?;
    let text = string_arg(&args, 0)?;
    let raw = hex::parse_bytes(text)
        .map_err(|e| RpcError::invalid_params(format!("invalid argument 0: {e}")))?;
    if raw.is_empty() {
        return Err(RpcError::new(SERVER_ERROR, "typed transaction too short"));
    }
    let verdicts =
        state.services.txs.submit(Lane::Rpc, state.client, vec![Bytes::from(raw)]).await?;
    match verdicts.as_slice() {
        [TxVerdict::Accepted { hash, .. }] => Ok(Value::String(hash.to_string())),
        [TxVerdict::Refused { refusal, .. }] => Err(RpcError::refusal(*refusal)),
        _ => Err(wrong_verdict_count(1, verdicts.len())),
    }
}

pub(crate) fn wrong_verdict_count(want: usize, got: usize) -> RpcError {
    tracing::error!(want, got, "tx service answered the wrong number of verdicts");
    RpcError::new(INTERNAL_ERROR, "internal error")
}

async fn transaction_by_hash(state: &AppState, params: Value) -> Result<Value, RpcError> {
    let (args, consistency) = read_args(params, 1)?;
    let text = string_arg(&args, 0)?;
    let hash = hex::parse_hash(text)
        .map_err(|e| RpcError::invalid_params(format!("invalid argument 0: {e}")))?;
    let pooled = state
        .services
        .pool
        .transaction(hash, consistency)
        .await
        .map_err(read_failed(consistency))?;
    match pooled {
        Some((tx, _)) => render::tx_object(&tx).map_err(render_failed),
        None => Ok(Value::Null),
    }
}

fn render_failed(err: RenderError) -> RpcError {
    tracing::error!(error = %err, "pooled transaction does not render");
    RpcError::new(INTERNAL_ERROR, "internal error")
}

/// `txpool_content` / `txpool_inspect`: `{pending, queued}` maps of sender → nonce (decimal
/// string) → rendered transaction, in address then nonce order.
async fn content(
    state: &AppState,
    consistency: Consistency,
    render: impl Fn(&Tx) -> Result<Value, RenderError>,
) -> Result<Value, RpcError> {
    let max = state.config.txpool_content_txs_max;
    let content =
        state.services.pool.content(max, consistency).await.map_err(read_failed(consistency))?;
    let complete = u64::try_from(content.txs.len()).is_ok_and(|n| n >= content.total);
    if !complete || content.txs.len() > max {
        return Err(RpcError::new(
            LIMIT_EXCEEDED,
            format!("txpool holds {} transactions; at most {max} are listed", content.total),
        ));
    }
    let mut pending: BTreeMap<Address, BTreeMap<u64, Value>> = BTreeMap::new();
    let mut queued: BTreeMap<Address, BTreeMap<u64, Value>> = BTreeMap::new();
    for (tx, subpool) in &content.txs {
        let map = match subpool {
            Subpool::Pending => &mut pending,
            _ => &mut queued,
        };
        map.entry(tx.sender)
            .or_default()
            .insert(tx.nonce.get(), render(tx).map_err(render_failed)?);
    }
    Ok(json!({ "pending": by_sender(pending), "queued": by_sender(queued) }))
}

fn by_sender(map: BTreeMap<Address, BTreeMap<u64, Value>>) -> Value {
    let mut out = Map::new();
    for (sender, txs) in map {
        let nonces: Map<String, Value> =
            txs.into_iter().map(|(nonce, v)| (nonce.to_string(), v)).collect();
        out.insert(sender.to_string(), Value::Object(nonces));
    }
    Value::Object(out)
}
