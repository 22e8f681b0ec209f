//! `GET /v1/pool` (pending and queued counts) and `GET /v1/pool/txs/{hash}` (one pooled
//! transaction): the replicated pool as it is now, at the consistency the client asks for
//! with `?consistency=weak|linearizable` (default `weak`).
//!
//! Fencing: both read current state and answer 503 `SELF_FENCED` while fenced.

use axum::{
    Json,
    extract::{Path, Query, State, rejection::PathRejection, rejection::QueryRejection},
};
use mempulse_primitives::RaftIndex;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::query_error;
use crate::{ApiError, Consistency, ErrorCode, hex::parse_hash, rpc::tx_object, state::AppState};

/// Query of the pool routes.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ReadQuery {
    /// `weak` (default): this node's state as it is, may lag the leader; `linearizable`:
    /// answered once this node has applied through the leader's confirmed commit point, so
    /// every write acknowledged before the request is visible (503 when no leader can confirm
    /// it in time).
    consistency: Option<String>,
}

impl ReadQuery {
    fn parse(query: Result<Query<Self>, QueryRejection>) -> Result<Consistency, ApiError> {
        let Query(query) = query.map_err(|e| query_error(&e))?;
        Consistency::parse_param(query.consistency.as_deref())
    }
}

/// Sizes of the pool.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PoolBody {
    /// Pending (buildable) transactions.
    pending: u64,
    /// Queued transactions (waiting for a nonce gap to close).
    queued: u64,
    /// The last Raft index applied to the state the counts come from (`null`: none yet).
    applied_index: Option<u64>,
    /// The consistency the counts were read at: `weak` or `linearizable`.
    consistency: &'static str,
}

/// Pending and queued counts of the replicated pool.
#[utoipa::path(
    get,
    path = "/v1/pool",
    tag = "pool",
    params(ReadQuery),
    responses(
        (status = 200, description = "The pool's sizes", body = PoolBody),
        (status = 400, description = "Unknown parameter or consistency", body = crate::error::ErrorBody),
        (status = 503, description = "Fenced, or a linearizable read no leader confirmed in time", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn status(
    State(state): State<AppState>,
    query: Result<Query<ReadQuery>, QueryRejection>,
) -> Result<Json<PoolBody>, ApiError> {
    let consistency = ReadQuery::parse(query)?;
    state.check_fence()?;
    let status =
        state.services.pool.status(consistency).await.map_err(|e| consistency.read_error(e))?;
    Ok(Json(PoolBody {
        pending: status.pending,
        queued: status.queued,
        applied_index: status.applied.map(RaftIndex::get),
        consistency: consistency.as_str(),
    }))
}

/// One pooled transaction.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PooledTxBody {
    /// The transaction hash.
    hash: String,
    /// `pending` or `queued`.
    subpool: &'static str,
    /// The consistency it was read at: `weak` or `linearizable`.
    consistency: &'static str,
    /// Geth's RPC transaction object (as `eth_getTransactionByHash` answers it).
    #[schema(value_type = Object)]
    tx: serde_json::Value,
}

/// A transaction in the replicated pool, by hash.
#[utoipa::path(
    get,
    path = "/v1/pool/txs/{hash}",
    tag = "pool",
    params(("hash" = String, Path, description = "0x-prefixed 32-byte transaction hash"), ReadQuery),
    responses(
        (status = 200, description = "The pooled transaction", body = PooledTxBody),
        (status = 400, description = "Bad hash, unknown parameter or consistency", body = crate::error::ErrorBody),
        (status = 404, description = "Not in the pool (at the consistency asked for)", body = crate::error::ErrorBody),
        (status = 503, description = "Fenced, or a linearizable read no leader confirmed in time", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn transaction(
    State(state): State<AppState>,
    hash: Result<Path<String>, PathRejection>,
    query: Result<Query<ReadQuery>, QueryRejection>,
) -> Result<Json<PooledTxBody>, ApiError> {
    let Path(text) = hash.map_err(|e| ApiError::new(ErrorCode::InvalidHash, e.body_text()))?;
    let hash =
        parse_hash(&text).map_err(|e| ApiError::new(ErrorCode::InvalidHash, e.to_string()))?;
    let consistency = ReadQuery::parse(query)?;
    state.check_fence()?;
    let pooled = state
        .services
        .pool
        .transaction(hash, consistency)
        .await
        .map_err(|e| consistency.read_error(e))?;
    let Some((tx, subpool)) = pooled else {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            format!("transaction {hash} is not in the pool"),
        ));
    };
    let rendered = tx_object(&tx).map_err(|e| {
        tracing::error!(error = %e, "pooled transaction does not render");
        ApiError::new(ErrorCode::Internal, "internal error")
    })?;
    Ok(Json(PooledTxBody {
        hash: hash.to_string(),
        subpool: subpool.as_str(),
        consistency: consistency.as_str(),
        tx: rendered,
    }))
}
