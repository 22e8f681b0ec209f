//! `GET /v1/cluster`, `GET /v1/catalog`, `GET /healthz`, `GET /readyz`, `GET /metrics`, `GET /v1/openapi.json`.
//!
//! Query strings: `/v1/cluster` and `/v1/catalog` take no parameters and refuse any with 400
//! `INVALID_QUERY`, as every `/v1` route refuses one it does not know; the probes, `/metrics`
//! and the OpenAPI document ignore the query string (probes and scrapers may add their own).
//!
//! Fencing: `/readyz` answers 503 `SELF_FENCED` (a fenced node must leave load balancers);
//! the others keep answering, since they describe the node rather than its state.

use axum::{
    Json,
    extract::{Query, State, rejection::QueryRejection},
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use utoipa::{OpenApi as _, ToSchema};

use crate::{
    ApiError, ErrorCode,
    routes::{NoParams, no_params},
    state::AppState,
};

/// One cluster member.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MemberBody {
    /// Node id.
    id: u64,
    /// Node-to-node Raft address.
    raft_addr: String,
    /// Client API address.
    api_addr: String,
    /// Whether it votes.
    voter: bool,
    /// How far it is behind the leader: reported by the leader for every other member,
    /// absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    replication: Option<ReplicationBody>,
}

/// A member's replication progress, as the leader sees it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ReplicationBody {
    /// The last log index the leader knows it holds (`null`: none acknowledged yet).
    matched_index: Option<u64>,
    /// Entries between `matched_index` and the leader's last log index.
    behind: u64,
    /// Milliseconds since the leader last heard from it (`null`: never).
    last_heard_ms: Option<u64>,
}

/// This node's view of its cluster.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ClusterBody {
    /// The node reporting.
    node: u64,
    /// Its role: `leader`, `follower`, `candidate`, `learner` or `shutdown`.
    role: &'static str,
    /// The leader it knows.
    leader: Option<u64>,
    /// Its current term.
    term: u64,
    /// Index of its last log entry.
    last_log_index: Option<u64>,
    /// Index of the last entry known committed.
    commit_index: Option<u64>,
    /// Index of the last entry applied.
    applied_index: Option<u64>,
    /// Members in id order.
    members: Vec<MemberBody>,
    /// The proposer schedule at the current height; absent when the node has no validators
    /// file.
    #[serde(skip_serializing_if = "Option::is_none")]
    schedule: Option<ScheduleBody>,
}

/// The proposer schedule at the current height.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ScheduleBody {
    /// The height being proposed (one above the last committed block).
    height: u64,
    /// Its round-0 proposer (a validator id).
    proposer: u64,
    /// The validator this node's cluster runs as.
    validator: u64,
    /// This cluster's tags at `height`: `proposer`, `proposer-next`, `proposer-soon`.
    tags: Vec<&'static str>,
}

/// Cluster status: members, leader, term, commit and applied index, and the proposer schedule.
#[utoipa::path(get, path = "/v1/cluster", tag = "node",
    responses(
        (status = 200, description = "This node's view of its cluster", body = ClusterBody),
        (status = 400, description = "A query parameter (the route takes none)", body = crate::error::ErrorBody),
    ))]
pub(crate) async fn cluster(
    State(state): State<AppState>,
    query: Result<Query<NoParams>, QueryRejection>,
) -> Result<Json<ClusterBody>, ApiError> {
    no_params(query)?;
    let view = state.services.cluster.status();
    let members = view
        .members
        .iter()
        .map(|(id, node)| MemberBody {
            id: id.0,
            raft_addr: node.raft_addr.clone(),
            api_addr: node.api_addr.clone(),
            voter: view.voters.contains(id),
            replication: view.replication.get(id).map(|lag| ReplicationBody {
                matched_index: lag.matched,
                behind: lag.entries(),
                last_heard_ms: lag.ack_age_ms,
            }),
        })
        .collect();
    Ok(Json(ClusterBody {
        node: view.node.0,
        role: view.role,
        leader: view.leader.map(|l| l.0),
        term: view.term,
        last_log_index: view.last_log_index,
        commit_index: view.committed,
        applied_index: view.applied,
        members,
        schedule: view.schedule.map(|s| ScheduleBody {
            height: s.height.get(),
            proposer: s.proposer.get(),
            validator: s.validator.get(),
            tags: s.tags,
        }),
    }))
}

/// One node of the peer catalog.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CatalogNodeBody {
    /// The announcing node.
    node: u64,
    /// The validator its cluster runs as.
    validator: u64,
    /// `host:port` of its tx-stream and peer listener.
    stream_addr: String,
    /// `host:port` of its HTTP API (empty when unknown).
    api_addr: String,
    /// Its cluster's tags at `height`: `proposer`, `proposer-next`, `proposer-soon`.
    tags: Vec<&'static str>,
    /// Its Raft role: `leader`, `follower`, `candidate`, `learner` or `unknown`.
    role: &'static str,
    /// The height it is at (one above its pool's last block).
    height: u64,
    /// The announcement's version (newer replaces older).
    version: u64,
    /// Milliseconds since the announcement was last received.
    age_ms: u64,
}

/// The peer catalog as this node sees it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CatalogBody {
    /// Every node this node hears from (itself included), ascending by node.
    nodes: Vec<CatalogNodeBody>,
}

/// The peer catalog: every node's latest announcement (validator, addresses, tags, role).
#[utoipa::path(get, path = "/v1/catalog", tag = "node",
    responses(
        (status = 200, description = "The peer catalog", body = CatalogBody),
        (status = 400, description = "A query parameter (the route takes none)", body = crate::error::ErrorBody),
    ))]
pub(crate) async fn catalog(
    State(state): State<AppState>,
    query: Result<Query<NoParams>, QueryRejection>,
) -> Result<Json<CatalogBody>, ApiError> {
    no_params(query)?;
    let nodes = state
        .services
        .cluster
        .catalog()
        .into_iter()
        .map(|n| CatalogNodeBody {
            node: n.node.0,
            validator: n.validator.0,
            stream_addr: n.stream_addr,
            api_addr: n.api_addr,
            tags: n.tags,
            role: n.role,
            height: n.height.0,
            version: n.version,
            age_ms: n.age_ms,
        })
        .collect();
    Ok(Json(CatalogBody { nodes }))
}

/// Status of a probe.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ProbeBody {
    /// `ok` or `ready`.
    status: &'static str,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "node",
    responses((status = 200, description = "The process is up", body = ProbeBody)))]
pub(crate) async fn healthz() -> Json<ProbeBody> {
    Json(ProbeBody { status: "ok" })
}

/// Readiness: not fenced, the cluster has a leader, and this node has applied what is committed
/// (within `ready_apply_lag_max` entries).
#[utoipa::path(get, path = "/readyz", tag = "node",
    responses(
        (status = 200, description = "Ready", body = ProbeBody),
        (status = 503, description = "Fenced, no leader, or not caught up", body = crate::error::ErrorBody),
    ))]
pub(crate) async fn readyz(State(state): State<AppState>) -> Result<Json<ProbeBody>, ApiError> {
    state.check_fence()?;
    let view = state.services.cluster.status();
    if view.leader.is_none() {
        return Err(ApiError::new(ErrorCode::NotReady, "the cluster has no leader"));
    }
    let committed = view.committed.unwrap_or(0);
    let applied = view.applied.unwrap_or(0);
    let lag = committed.saturating_sub(applied);
    if lag > state.config.ready_apply_lag_max {
        return Err(ApiError::new(
            ErrorCode::NotReady,
            format!("applied index {applied} trails commit index {committed} by {lag} entries"),
        ));
    }
    Ok(Json(ProbeBody { status: "ready" }))
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "node",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)))]
pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    let text = (state.services.metrics)();
    let content_type = HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8");
    ([(header::CONTENT_TYPE, content_type)], text).into_response()
}

/// The OpenAPI document of this API, generated from the handlers and types.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "node",
    responses((status = 200, description = "OpenAPI 3.1 document", content_type = "application/json", body = Object)))]
pub(crate) async fn openapi() -> Response {
    Json(crate::openapi::ApiDoc::openapi()).into_response()
}
