//! Limits and timeouts of the API. Every bound has a named default here; the node may override
//! them from its configuration.

use std::time::Duration;

use crate::ServeOptions;

/// Largest request body any route reads, in bytes (JSON-RPC, `POST /v1/txs`, block routes).
pub const BODY_BYTES_MAX_DEFAULT: usize = 4 * 1024 * 1024;
/// Time a request may take from its first byte to its response head.
pub const REQUEST_TIMEOUT_DEFAULT: Duration = Duration::from_secs(10);
/// Most calls in one JSON-RPC batch.
pub const RPC_BATCH_MAX_DEFAULT: usize = 100;
/// Most transactions in one `POST /v1/txs`.
pub const TXS_PER_REQUEST_MAX_DEFAULT: usize = 256;
/// Events returned by `GET /v1/events` when no `limit` is given.
pub const EVENTS_LIMIT_DEFAULT: usize = 100;
/// Largest `limit` `GET /v1/events` accepts.
pub const EVENTS_LIMIT_MAX_DEFAULT: usize = 10_000;
/// Most log records one `GET /v1/events` examines while filtering by kind; the response's
/// `next` cursor says where the scan stopped.
pub const EVENTS_SCAN_RECORDS_MAX_DEFAULT: usize = 100_000;
/// Records read from the log per step of a scan or a live tail.
pub const EVENTS_READ_BATCH_DEFAULT: usize = 1_024;
/// Events a live tail buffers for its client before the client counts as slow.
pub const STREAM_BUFFER_EVENTS_DEFAULT: usize = 1_024;
/// How long a live tail's buffer may stay full before the client is cut off.
pub const STREAM_STALL_TIMEOUT_DEFAULT: Duration = Duration::from_secs(5);
/// Live tails served at once; more are refused with 503.
pub const STREAM_CONNECTIONS_MAX_DEFAULT: usize = 256;
/// Interval of the SSE keep-alive comment.
pub const STREAM_KEEP_ALIVE_DEFAULT: Duration = Duration::from_secs(15);
/// Most transactions `txpool_content` / `txpool_inspect` render; a larger pool is refused with
/// JSON-RPC error -32005 rather than truncated silently.
pub const TXPOOL_CONTENT_TXS_MAX_DEFAULT: usize = 10_000;
/// Most facts `GET /v1/txs/{hash}` returns for one transaction.
pub const LIFECYCLE_EVENTS_MAX_DEFAULT: usize = 1_000;
/// Most transaction hashes in one `POST /v1/blocks/commit`.
pub const BLOCK_TXS_MAX_DEFAULT: usize = 65_536;
/// Most sender nonce updates in one block commit or reorg.
pub const NONCE_UPDATES_MAX_DEFAULT: usize = 65_536;
/// Most orphaned blocks in one `POST /v1/reorg`.
pub const REORG_BLOCKS_MAX_DEFAULT: usize = 64;
/// Most Raft entries the applied index may trail the commit index while `/readyz` says ready.
pub const READY_APPLY_LAG_MAX_DEFAULT: u64 = 64;
/// Most events one `GET /v1/replay` may apply, counted from the checkpoint it starts from
/// (about a second of replay on one core).
pub const REPLAY_EVENTS_MAX_DEFAULT: u64 = 1_000_000;
/// Most digest points one `GET /v1/replay` reports.
pub const REPLAY_POINTS_MAX_DEFAULT: u64 = 10_000;
/// Distance between the digest points of `GET /v1/replay` when no `every` is given.
pub const REPLAY_EVERY_DEFAULT: u64 = 1_000;
/// How long `serve` waits for open connections after shutdown is signalled.
pub const SHUTDOWN_GRACE_DEFAULT: Duration = Duration::from_secs(5);
/// Time a connection has to deliver a whole request head (request line and headers), counted
/// from its opening or from the end of its previous response. A client that sends part of a
/// head and stalls (slowloris) is cut off after it, and so is a keep-alive connection that
/// stays idle that long.
pub const HEADER_READ_TIMEOUT_DEFAULT: Duration = Duration::from_secs(10);
/// Connections served at once. With that many open the server accepts no more (new ones wait
/// in the kernel's listen backlog) until one closes: far below a node's file descriptor limit,
/// far above what wallets, operators and the chain adapter open.
pub const CONNECTIONS_MAX_DEFAULT: usize = 4_096;

/// Limits and timeouts of the API. [`Default`] is the embedded default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiConfig {
    /// Chain id answered by `eth_chainId`.
    pub chain_id: u64,
    /// Largest request body, in bytes.
    pub body_bytes_max: usize,
    /// Time from a request's first byte to its response head (a live tail's body is not
    /// limited by it).
    pub request_timeout: Duration,
    /// Most calls in one JSON-RPC batch.
    pub rpc_batch_max: usize,
    /// Most transactions in one `POST /v1/txs`.
    pub txs_per_request_max: usize,
    /// Default `limit` of `GET /v1/events`.
    pub events_limit_default: usize,
    /// Largest `limit` of `GET /v1/events`.
    pub events_limit_max: usize,
    /// Most records one scan examines.
    pub events_scan_records_max: usize,
    /// Records read from the log per step.
    pub events_read_batch: usize,
    /// Events a live tail buffers per client.
    pub stream_buffer_events: usize,
    /// How long a full live-tail buffer is tolerated before the client is cut off.
    pub stream_stall_timeout: Duration,
    /// Live tails served at once.
    pub stream_connections_max: usize,
    /// SSE keep-alive interval.
    pub stream_keep_alive: Duration,
    /// Most transactions `txpool_content` / `txpool_inspect` render.
    pub txpool_content_txs_max: usize,
    /// Most facts in one transaction lifecycle.
    pub lifecycle_events_max: usize,
    /// Most transaction hashes in one block commit.
    pub block_txs_max: usize,
    /// Most nonce updates in one block commit or reorg.
    pub nonce_updates_max: usize,
    /// Most orphaned blocks in one reorg.
    pub reorg_blocks_max: usize,
    /// Most entries the applied index may trail the commit index while ready.
    pub ready_apply_lag_max: u64,
    /// Most events one offline replay may apply.
    pub replay_events_max: u64,
    /// Most digest points one offline replay reports.
    pub replay_points_max: u64,
    /// Default distance between an offline replay's digest points.
    pub replay_every_default: u64,
    /// How long `serve` waits for open connections after shutdown is signalled.
    pub shutdown_grace: Duration,
    /// Time a connection has to deliver a whole request head (also how long an idle
    /// keep-alive connection is kept).
    pub header_read_timeout: Duration,
    /// Connections served at once (`0` counts as 1); further ones wait to be accepted.
    pub connections_max: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            chain_id: 1,
            body_bytes_max: BODY_BYTES_MAX_DEFAULT,
            request_timeout: REQUEST_TIMEOUT_DEFAULT,
            rpc_batch_max: RPC_BATCH_MAX_DEFAULT,
            txs_per_request_max: TXS_PER_REQUEST_MAX_DEFAULT,
            events_limit_default: EVENTS_LIMIT_DEFAULT,
            events_limit_max: EVENTS_LIMIT_MAX_DEFAULT,
            events_scan_records_max: EVENTS_SCAN_RECORDS_MAX_DEFAULT,
            events_read_batch: EVENTS_READ_BATCH_DEFAULT,
            stream_buffer_events: STREAM_BUFFER_EVENTS_DEFAULT,
            stream_stall_timeout: STREAM_STALL_TIMEOUT_DEFAULT,
            stream_connections_max: STREAM_CONNECTIONS_MAX_DEFAULT,
            stream_keep_alive: STREAM_KEEP_ALIVE_DEFAULT,
            txpool_content_txs_max: TXPOOL_CONTENT_TXS_MAX_DEFAULT,
            lifecycle_events_max: LIFECYCLE_EVENTS_MAX_DEFAULT,
            block_txs_max: BLOCK_TXS_MAX_DEFAULT,
            nonce_updates_max: NONCE_UPDATES_MAX_DEFAULT,
            reorg_blocks_max: REORG_BLOCKS_MAX_DEFAULT,
            ready_apply_lag_max: READY_APPLY_LAG_MAX_DEFAULT,
            replay_events_max: REPLAY_EVENTS_MAX_DEFAULT,
            replay_points_max: REPLAY_POINTS_MAX_DEFAULT,
            replay_every_default: REPLAY_EVERY_DEFAULT,
            shutdown_grace: SHUTDOWN_GRACE_DEFAULT,
            header_read_timeout: HEADER_READ_TIMEOUT_DEFAULT,
            connections_max: CONNECTIONS_MAX_DEFAULT,
        }
    }
}

impl ApiConfig {
    /// What [`crate::serve_with`] needs of this configuration.
    #[must_use]
    pub const fn serve_options(&self) -> ServeOptions {
        ServeOptions {
            shutdown_grace: self.shutdown_grace,
            header_read_timeout: self.header_read_timeout,
            connections_max: self.connections_max,
        }
    }
}
