//! `POST /v1/blocks/build`, `POST /v1/blocks/commit`, `POST /v1/reorg`: validated JSON bodies
//! handed to [`crate::BlockOps`], which applies them through the cluster.
//!
//! The API checks what it can without state (shapes, bounds, hex, hashes, duplicates, heights
//! relative to each other); the pool checks the rest (a height that does not move up, a fork
//! point above the current height) and answers 409 `CONFLICT`.
//!
//! Fencing: all three write replicated state and are refused while fenced.

use std::{collections::BTreeSet, time::Instant};

use axum::{
    Json,
    body::Body,
    extract::{Query, State, rejection::QueryRejection},
    http::HeaderMap,
};
use bytes::Bytes;
use mempulse_mempool::{BlockLimits, CommitBlock};
use mempulse_primitives::{Address, EventKind, Height, Nonce, ValidatorId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{NoParams, json_body, no_params};
use crate::{
    ApiError, BlockOutcome, BuildRequest, ErrorCode, OrphanedRaw, ReorgRequest,
    hex::{parse_bytes, parse_hash},
    metrics::ApiMetrics,
    state::{AppState, media_type, read_body, received_content_type},
};

/// Body of `POST /v1/blocks/build`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BuildBody {
    /// Validator the proposal is for.
    proposer: u64,
    /// Most total encoded bytes (absent or null: unlimited; at least 1).
    max_bytes: Option<u64>,
    /// Most total gas (absent or null: unlimited; at least 1).
    max_gas: Option<u64>,
}

/// A sender's authoritative committed nonce.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NonceBody {
    /// 0x-prefixed 20-byte address.
    sender: String,
    /// Next nonce the chain accepts.
    nonce: u64,
}

/// Body of `POST /v1/blocks/commit`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CommitBody {
    /// Height of the committed block (at least 1, above the pool's height).
    height: u64,
    /// Hashes of the included transactions, in block order, without duplicates.
    txs: Vec<String>,
    /// Authoritative committed nonces of senders, each sender once.
    #[serde(default)]
    nonces: Vec<NonceBody>,
    /// Base fee per gas of the next block: a decimal or 0x hex string.
    base_fee_per_gas: Option<String>,
}

/// One orphaned block.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct OrphanedBody {
    /// Its height, above `fork_height`.
    height: u64,
    /// Its transactions as 0x hex EIP-2718 bytes, in block order.
    txs: Vec<String>,
}

/// Body of `POST /v1/reorg`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReorgBody {
    /// Highest height still canonical.
    fork_height: u64,
    /// The orphaned blocks (at least one), each height once.
    orphaned: Vec<OrphanedBody>,
    /// Authoritative committed nonces after the reorg, each sender once.
    #[serde(default)]
    nonces: Vec<NonceBody>,
    /// Base fee per gas after the reorg: a decimal or 0x hex string.
    base_fee_per_gas: Option<String>,
}

/// A transaction of a built block.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BlockTx {
    /// Its hash.
    hash: String,
    /// Its signed EIP-2718 bytes as 0x hex.
    raw: String,
}

/// A built proposal.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BlockBody {
    /// Transactions in block order.
    txs: Vec<BlockTx>,
    /// Sum of encoded sizes.
    total_bytes: u64,
    /// Sum of gas limits.
    total_gas: u64,
}

/// What a block command produced.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BlockResponse {
    /// Raft index of the entry that applied it, when known.
    raft_index: Option<u64>,
    /// Derived facts in order (`{"kind", ...fields}` each).
    #[schema(value_type = Vec<Object>)]
    facts: Vec<EventKind>,
    /// The proposal, for a build.
    block: Option<BlockBody>,
}

impl From<BlockOutcome> for BlockResponse {
    fn from(o: BlockOutcome) -> Self {
        let block = o.block.map(|b| BlockBody {
            txs: b
                .txs
                .iter()
                .map(|tx| BlockTx {
                    hash: tx.hash.to_string(),
                    raw: format!("0x{}", hex::encode(&tx.raw)),
                })
                .collect(),
            total_bytes: b.total_bytes,
            total_gas: b.total_gas,
        });
        Self { raft_index: o.raft_index.map(|i| i.0), facts: o.facts, block }
    }
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidBody, message)
}

/// The JSON body of a block command, after the checks every one of them makes: no query
/// parameters, not fenced, a JSON content type.
async fn read_json<T: serde::de::DeserializeOwned>(
    state: &AppState,
    query: Result<Query<NoParams>, QueryRejection>,
    headers: &HeaderMap,
    body: Body,
) -> Result<T, ApiError> {
    no_params(query)?;
    state.check_fence()?;
    if media_type(headers).as_deref() != Some("application/json") {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            format!("content type {} is not application/json", received_content_type(headers)),
        ));
    }
    let bytes = read_body(headers, body, state.config.body_bytes_max).await?;
    json_body(&bytes)
}

/// Builds a block proposal for the next height.
#[utoipa::path(
    post, path = "/v1/blocks/build", tag = "blocks",
    request_body = BuildBody,
    responses(
        (status = 200, description = "The proposal and its `block_proposed` fact", body = BlockResponse),
        (status = 400, description = "Invalid body, or a query parameter (the route takes none)", body = crate::error::ErrorBody),
        (status = 503, description = "Fenced or unavailable", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn build(
    State(state): State<AppState>,
    query: Result<Query<NoParams>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<BlockResponse>, ApiError> {
    let body: BuildBody = read_json(&state, query, &headers, body).await?;
    if body.max_bytes == Some(0) || body.max_gas == Some(0) {
        return Err(invalid("max_bytes and max_gas must be at least 1 (or null for unlimited)"));
    }
    let request = BuildRequest {
        limits: BlockLimits { max_bytes: body.max_bytes, max_gas: body.max_gas },
        proposer: ValidatorId(body.proposer),
    };
    let started = Instant::now();
    let outcome = state.services.blocks.build(request).await?;
    ApiMetrics::get().block_built(started.elapsed());
    Ok(Json(outcome.into()))
}

/// Commits a block: removes included transactions and rechecks the rest.
#[utoipa::path(
    post, path = "/v1/blocks/commit", tag = "blocks",
    request_body = CommitBody,
    responses(
        (status = 200, description = "The facts the commit derived", body = BlockResponse),
        (status = 400, description = "Invalid body, or a query parameter (the route takes none)", body = crate::error::ErrorBody),
        (status = 409, description = "Height not above the pool's", body = crate::error::ErrorBody),
        (status = 503, description = "Fenced or unavailable", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn commit(
    State(state): State<AppState>,
    query: Result<Query<NoParams>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<BlockResponse>, ApiError> {
    let body: CommitBody = read_json(&state, query, &headers, body).await?;
    if body.height == 0 {
        return Err(invalid("height must be at least 1"));
    }
    let max = state.config.block_txs_max;
    if body.txs.len() > max {
        return Err(ApiError::new(
            ErrorCode::TooManyItems,
            format!("{} txs, at most {max}", body.txs.len()),
        ));
    }
    let mut seen = BTreeSet::new();
    let mut txs = Vec::with_capacity(body.txs.len());
    for (i, text) in body.txs.iter().enumerate() {
        let hash = parse_hash(text)
            .map_err(|e| ApiError::new(ErrorCode::InvalidHash, format!("txs[{i}]: {e}")))?;
        if !seen.insert(hash) {
            return Err(invalid(format!("txs[{i}]: duplicate hash {hash}")));
        }
        txs.push(hash);
    }
    let request = CommitBlock {
        height: Height(body.height),
        txs,
        nonces: nonces(&state, &body.nonces)?,
        base_fee_per_gas: body.base_fee_per_gas.as_deref().map(parse_u128).transpose()?,
    };
    Ok(Json(state.services.blocks.commit(request).await?.into()))
}

/// Applies a reorg: appends `reorg_detected` and reopens the orphaned transactions.
#[utoipa::path(
    post, path = "/v1/reorg", tag = "blocks",
    request_body = ReorgBody,
    responses(
        (status = 200, description = "The facts the reorg derived", body = BlockResponse),
        (status = 400, description = "Invalid body or orphaned transaction, or a query parameter (the route takes none)", body = crate::error::ErrorBody),
        (status = 409, description = "The pool refuses the reorg", body = crate::error::ErrorBody),
        (status = 503, description = "Fenced or unavailable", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn reorg(
    State(state): State<AppState>,
    query: Result<Query<NoParams>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<BlockResponse>, ApiError> {
    let body: ReorgBody = read_json(&state, query, &headers, body).await?;
    let config = &state.config;
    if body.orphaned.is_empty() {
        return Err(invalid("orphaned must name at least one block"));
    }
    if body.orphaned.len() > config.reorg_blocks_max {
        return Err(ApiError::new(
            ErrorCode::TooManyItems,
            format!("{} orphaned blocks, at most {}", body.orphaned.len(), config.reorg_blocks_max),
        ));
    }
    let total: usize = body.orphaned.iter().map(|b| b.txs.len()).sum();
    if total > config.block_txs_max {
        return Err(ApiError::new(
            ErrorCode::TooManyItems,
            format!("{total} orphaned txs, at most {}", config.block_txs_max),
        ));
    }
    let mut heights = BTreeSet::new();
    let mut orphaned = Vec::with_capacity(body.orphaned.len());
    for (b, block) in body.orphaned.iter().enumerate() {
        if block.height <= body.fork_height {
            return Err(invalid(format!(
                "orphaned[{b}]: height {} is not above fork_height {}",
                block.height, body.fork_height
            )));
        }
        if !heights.insert(block.height) {
            return Err(invalid(format!("orphaned[{b}]: height {} repeated", block.height)));
        }
        let mut txs = Vec::with_capacity(block.txs.len());
        for (i, text) in block.txs.iter().enumerate() {
            let raw = parse_bytes(text).map_err(|e| {
                ApiError::new(ErrorCode::InvalidHex, format!("orphaned[{b}].txs[{i}]: {e}"))
            })?;
            if raw.is_empty() {
                return Err(invalid(format!("orphaned[{b}].txs[{i}] is empty")));
            }
            txs.push(Bytes::from(raw));
        }
        orphaned.push(OrphanedRaw { height: Height(block.height), txs });
    }
    orphaned.sort_by_key(|b| b.height);
    let request = ReorgRequest {
        fork_height: Height(body.fork_height),
        orphaned,
        nonces: nonces(&state, &body.nonces)?,
        base_fee_per_gas: body.base_fee_per_gas.as_deref().map(parse_u128).transpose()?,
    };
    Ok(Json(state.services.blocks.reorg(request).await?.into()))
}

fn nonces(state: &AppState, list: &[NonceBody]) -> Result<Vec<(Address, Nonce)>, ApiError> {
    let max = state.config.nonce_updates_max;
    if list.len() > max {
        return Err(ApiError::new(
            ErrorCode::TooManyItems,
            format!("{} nonces, at most {max}", list.len()),
        ));
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let bytes = parse_bytes(&item.sender).map_err(|e| {
            ApiError::new(ErrorCode::InvalidHex, format!("nonces[{i}].sender: {e}"))
        })?;
        let sender = <[u8; 20]>::try_from(bytes.as_slice()).map(Address).map_err(|_| {
            invalid(format!("nonces[{i}].sender: want 20 bytes, got {}", bytes.len()))
        })?;
        if !seen.insert(sender) {
            return Err(invalid(format!("nonces[{i}]: sender {sender} repeated")));
        }
        out.push((sender, Nonce(item.nonce)));
    }
    Ok(out)
}

/// A u128 as decimal digits or 0x hex.
fn parse_u128(text: &str) -> Result<u128, ApiError> {
    let bad = || invalid(format!("base_fee_per_gas {text:?} is not a decimal or 0x hex integer"));
    if let Some(hex) = text.strip_prefix("0x") {
        if hex.is_empty() || hex.len() > 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        return u128::from_str_radix(hex, 16).map_err(|_| bad());
    }
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    text.parse().map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_fees_parse_strictly() {
        assert_eq!(parse_u128("0").unwrap(), 0);
        assert_eq!(parse_u128("0x1a").unwrap(), 26);
        assert_eq!(parse_u128(&u128::MAX.to_string()).unwrap(), u128::MAX);
        for bad in ["", "0x", "-1", "+1", "1e9", "0xg", "340282366920938463463374607431768211456"] {
            assert!(parse_u128(bad).is_err(), "{bad}");
        }
    }
}
