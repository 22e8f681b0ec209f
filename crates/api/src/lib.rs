//! The HTTP API of a mempulse node: JSON-RPC, REST, event scans and live tail, transaction
//! lifecycle, block commands, cluster status, probes, metrics and the OpenAPI document.
//!
//! ## Role
//! ```text
//!  client ──► axum router (body limit, timeout, JSON errors, fence check per route)
//!               │  POST / , /rpc ──────► JSON-RPC 2.0 (eth_*, txpool_*) ─┐
//!               │  POST /v1/txs ───────────────────────────────────────┤► TxSubmit
//!               │  GET /v1/txs/{hash} ───────────────────────────────────► TxHistory
//!               │  GET /v1/pool, /v1/pool/txs/{hash} ?consistency= ──────► PoolQuery
//!               │  GET /v1/events, /v1/events/stream (SSE) ──────────────► EventLog
//!               │  POST /v1/blocks/build|commit, /v1/reorg ──────────────► BlockOps
//!               │  GET /v1/cluster, /readyz ─────────────────────────────► ClusterInfo
//!               │  GET /v1/state-root, /v1/replay ───────────────────────► StateRoots
//!               └  GET /metrics ─────────────────────────────────────────► MetricsRender
//! ```
//! The node implements the service traits over its lanes, cluster and event log; this crate
//! owns no business logic. [`WalEventLog`] implements [`EventLog`] over a `mempulse-wal` log.
//!
//! ## Invariants
//! - **Durable before visible.** Events come only from [`EventLog`], which returns only
//!   acknowledged records; the live tail starts from disk and follows the durable seq, with
//!   `id:` = seq, so a reconnect with `Last-Event-ID` has no gap and no duplicate.
//! - **Bounded.** Bodies, batches, transactions per request, page sizes, records scanned per
//!   request, live-tail buffers, concurrent live tails, open connections and the time a
//!   connection has to send a request head all have limits in [`ApiConfig`]; a slow live-tail
//!   client is cut off with a reason instead of buffered without bound, and a client that
//!   stalls mid-head (slowloris) is disconnected.
//! - **Bad input never panics.** Every input is parsed into typed values with a JSON error
//!   `{code, message}` ([`ErrorCode`]); a panic in a handler would still answer 500.
//! - **Fenced nodes refuse state.** Routes that write or read current state answer 503
//!   `SELF_FENCED` with the reason while [`FenceState::Fenced`]; history stays readable.
//!
//! Routes, error codes, fencing per route and limits: `docs/design/api.md`.
//!
//! ## Example
//! ```
//! use mempulse_api::{ApiConfig, router, test_utils::TestNode};
//! use tower::ServiceExt as _;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let node = TestNode::default(); // in-memory fakes of every service
//! let app = router(ApiConfig::default(), node.services());
//! let request = axum::http::Request::get("/healthz").body(axum::body::Body::empty())?;
//! let response = app.oneshot(request).await?;
//! assert_eq!(response.status(), 200);
//! # Ok(())
//! # }
//! ```
//!
//! ## Feature flags
//! - `test-utils`: in-memory fakes of every service trait (module `test_utils`) for tests and
//!   benches.
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

mod config;
mod consistency;
mod deadline;
mod error;
mod hex;
pub mod metrics;
mod openapi;
mod router;
mod routes;
mod rpc;
mod serve;
mod service;
mod state;
#[cfg(any(test, feature = "test-utils"))]
pub mod test_utils;
mod wal_log;

pub use config::{
    ApiConfig, BLOCK_TXS_MAX_DEFAULT, BODY_BYTES_MAX_DEFAULT, CONNECTIONS_MAX_DEFAULT,
    EVENTS_LIMIT_DEFAULT, EVENTS_LIMIT_MAX_DEFAULT, EVENTS_READ_BATCH_DEFAULT,
    EVENTS_SCAN_RECORDS_MAX_DEFAULT, HEADER_READ_TIMEOUT_DEFAULT, LIFECYCLE_EVENTS_MAX_DEFAULT,
    NONCE_UPDATES_MAX_DEFAULT, READY_APPLY_LAG_MAX_DEFAULT, REORG_BLOCKS_MAX_DEFAULT,
    REPLAY_EVENTS_MAX_DEFAULT, REPLAY_EVERY_DEFAULT, REPLAY_POINTS_MAX_DEFAULT,
    REQUEST_TIMEOUT_DEFAULT, RPC_BATCH_MAX_DEFAULT, SHUTDOWN_GRACE_DEFAULT,
    STREAM_BUFFER_EVENTS_DEFAULT, STREAM_CONNECTIONS_MAX_DEFAULT, STREAM_KEEP_ALIVE_DEFAULT,
    STREAM_STALL_TIMEOUT_DEFAULT, TXPOOL_CONTENT_TXS_MAX_DEFAULT, TXS_PER_REQUEST_MAX_DEFAULT,
};
pub use consistency::Consistency;
pub use error::{ApiError, ErrorCode, Limit, ServiceError, Unavailable};
pub use router::{ROUTES, router};
pub use serve::{ServeOptions, serve, serve_with};
pub use service::{
    BlockOps, BlockOutcome, BuildRequest, CatalogNode, ClusterInfo, ClusterView, EventLog,
    FenceState, MetricsRender, OrphanedRaw, PoolContent, PoolQuery, PoolStatus, Refusal,
    ReorgRequest, ReplayPoint, ReplayReport, ReplayRequest, ScheduleView, ServiceResult, Services,
    StateRoot, StateRootLookup, StateRoots, TxHistory, TxSubmit, TxVerdict,
};
pub use wal_log::WalEventLog;
