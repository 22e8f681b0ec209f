//! Limits of the decoder, the worker pool, the ingest lanes and the tx streams, each a named
//! constant with its reason.

use core::{num::NonZeroUsize, time::Duration};

use mempulse_primitives::{Lane, NodeId};

use crate::Error;

/// Mainnet chain id, the embedded default.
pub const CHAIN_ID_DEFAULT: u64 = 1;

/// Largest accepted encoded transaction: 128 KiB, geth's `txMaxSize` (four 32 KiB slots). A blob
/// transaction arrives here without its sidecar, so the same bound covers every type.
pub const TX_BYTES_MAX: u32 = 128 * 1024;

/// Largest accepted gas limit: 2^24, the per-transaction cap of EIP-7825 (Osaka).
pub const TX_GAS_LIMIT_MAX: u64 = 1 << 24;

/// Largest contract-creation input: 49 152 bytes, EIP-3860 (twice the EIP-170 code limit).
pub const INITCODE_BYTES_MAX: u32 = 49_152;

/// Most blobs one EIP-4844 transaction may carry: 6, the per-transaction cap of EIP-7594 (Osaka).
pub const BLOBS_PER_TX_MAX: u32 = 6;

/// Capacity of the worker pool: transactions submitted but not yet handed back in order. It
/// bounds the job queue, the completion queue and the reorder buffer together.
pub const POOL_CAPACITY_DEFAULT: usize = 4096;

/// Stateless rules every transaction must pass before it may be queued for the pool.
///
/// `Default` is the embedded default: mainnet, the Osaka limits above, pre-EIP-155 legacy
/// transactions accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckConfig {
    /// The chain id a replay-protected transaction must carry.
    pub chain_id: u64,
    /// Whether a legacy transaction without EIP-155 replay protection is accepted. Consensus still
    /// accepts them; geth refuses them over RPC unless `--rpc.allow-unprotected-txs`.
    pub allow_unprotected: bool,
    /// Largest encoded transaction in bytes (`TX_BYTES_MAX`).
    pub tx_bytes_max: u32,
    /// Largest gas limit (`TX_GAS_LIMIT_MAX`).
    pub gas_limit_max: u64,
    /// Largest contract-creation input in bytes (`INITCODE_BYTES_MAX`).
    pub initcode_bytes_max: u32,
    /// Most blobs per EIP-4844 transaction (`BLOBS_PER_TX_MAX`).
    pub blobs_per_tx_max: u32,
    /// Whether the EIP-7623 calldata floor (Prague) is part of the intrinsic-gas check.
    pub calldata_floor: bool,
}

impl Default for CheckConfig {
    fn default() -> Self {
        Self {
            chain_id: CHAIN_ID_DEFAULT,
            allow_unprotected: true,
            tx_bytes_max: TX_BYTES_MAX,
            gas_limit_max: TX_GAS_LIMIT_MAX,
            initcode_bytes_max: INITCODE_BYTES_MAX,
            blobs_per_tx_max: BLOBS_PER_TX_MAX,
            calldata_floor: true,
        }
    }
}

/// Size of the decode worker pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolConfig {
    /// Worker threads; `None` means one per available core.
    pub threads: Option<NonZeroUsize>,
    /// Transactions in flight (queued, being decoded, or waiting in the reorder buffer) before
    /// `submit` answers `Full` (`POOL_CAPACITY_DEFAULT`).
    pub capacity: NonZeroUsize,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            threads: None,
            capacity: NonZeroUsize::MIN.saturating_add(POOL_CAPACITY_DEFAULT - 1),
        }
    }
}

impl PoolConfig {
    /// The number of worker threads this configuration starts.
    #[must_use]
    pub fn thread_count(&self) -> NonZeroUsize {
        self.threads
            .unwrap_or_else(|| std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN))
    }
}

/// Transactions each of the RPC and REST lanes may hold between `submit` and the end of decoding.
pub const RPC_QUEUE_CAPACITY_DEFAULT: usize = 4096;

/// Transactions the stream lane may hold; larger, since streams carry many sources' traffic.
pub const STREAM_QUEUE_CAPACITY_DEFAULT: usize = 8192;

/// Most transactions in one batch handed to [`crate::Admission`].
pub const BATCH_TXS_MAX_DEFAULT: usize = 512;

/// Most encoded bytes in one batch: a quarter of the cluster's 4 MiB entry limit, so several
/// ingest batches still share one Raft entry and none is ever refused as too large.
pub const BATCH_BYTES_MAX_DEFAULT: usize = 1 << 20;

/// Batches handed to [`crate::Admission`] and not yet answered.
pub const BATCHES_IN_FLIGHT_MAX_DEFAULT: usize = 4;

/// How long one admission call may take before its batch fails with
/// [`crate::AdmissionError::Timeout`]; above the cluster's own forwarding deadline.
pub const ADMISSION_TIMEOUT_DEFAULT: Duration = Duration::from_secs(10);

/// Transaction hashes the dedup cache remembers (about 100 bytes each, so ~13 MiB).
pub const DEDUP_CAPACITY_DEFAULT: usize = 131_072;

/// Sustained transactions per second one source may submit.
pub const SOURCE_RATE_PER_S_DEFAULT: u32 = 2_000;

/// Transactions one source may submit in a burst above its sustained rate.
pub const SOURCE_BURST_DEFAULT: u32 = 4_000;

/// Sources whose token buckets are tracked; the least recently seen is forgotten beyond it.
pub const SOURCES_TRACKED_MAX_DEFAULT: usize = 16_384;

/// Per-source token-bucket rate limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThrottleConfig {
    /// Sustained transactions per second per source; `0` turns the limit off.
    pub rate_per_s: u32,
    /// Bucket size: transactions a source may send at once after being idle.
    pub burst: u32,
    /// Sources tracked at most; beyond it the least recently seen source is forgotten (ties by
    /// source order), so a forgotten source starts again with a full bucket.
    pub sources_max: usize,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            rate_per_s: SOURCE_RATE_PER_S_DEFAULT,
            burst: SOURCE_BURST_DEFAULT,
            sources_max: SOURCES_TRACKED_MAX_DEFAULT,
        }
    }
}

/// Limits of the ingest pipeline. `Default` is the embedded default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IngestConfig {
    /// Capacity of the RPC lane (`RPC_QUEUE_CAPACITY_DEFAULT`).
    pub rpc_queue_capacity: usize,
    /// Capacity of the REST lane (`RPC_QUEUE_CAPACITY_DEFAULT`).
    pub rest_queue_capacity: usize,
    /// Capacity of the stream lane (`STREAM_QUEUE_CAPACITY_DEFAULT`).
    pub stream_queue_capacity: usize,
    /// Decode threads; `None` means one per available core.
    pub decode_threads: Option<NonZeroUsize>,
    /// Most transactions per admission batch (`BATCH_TXS_MAX_DEFAULT`).
    pub batch_txs_max: usize,
    /// Most encoded bytes per admission batch (`BATCH_BYTES_MAX_DEFAULT`); a single larger
    /// transaction still travels alone.
    pub batch_bytes_max: usize,
    /// Batches in flight to the admission at most (`BATCHES_IN_FLIGHT_MAX_DEFAULT`).
    pub batches_in_flight_max: usize,
    /// Deadline of one admission call (`ADMISSION_TIMEOUT_DEFAULT`).
    pub admission_timeout: Duration,
    /// Hashes remembered by the dedup cache (`DEDUP_CAPACITY_DEFAULT`).
    pub dedup_capacity: usize,
    /// Per-source rate limit.
    pub throttle: ThrottleConfig,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            rpc_queue_capacity: RPC_QUEUE_CAPACITY_DEFAULT,
            rest_queue_capacity: RPC_QUEUE_CAPACITY_DEFAULT,
            stream_queue_capacity: STREAM_QUEUE_CAPACITY_DEFAULT,
            decode_threads: None,
            batch_txs_max: BATCH_TXS_MAX_DEFAULT,
            batch_bytes_max: BATCH_BYTES_MAX_DEFAULT,
            batches_in_flight_max: BATCHES_IN_FLIGHT_MAX_DEFAULT,
            admission_timeout: ADMISSION_TIMEOUT_DEFAULT,
            dedup_capacity: DEDUP_CAPACITY_DEFAULT,
            throttle: ThrottleConfig::default(),
        }
    }
}

impl IngestConfig {
    /// The capacity of `lane`'s queue.
    #[must_use]
    pub fn queue_capacity(&self, lane: Lane) -> usize {
        match lane {
            Lane::Rpc => self.rpc_queue_capacity,
            Lane::Rest => self.rest_queue_capacity,
            // `Lane` is non-exhaustive: a lane added later shares the stream lane's bound.
            _ => self.stream_queue_capacity,
        }
    }

    /// Checks that every bound is at least one and the admission timeout is not zero.
    ///
    /// # Errors
    /// [`Error::Config`] naming the first field that is zero.
    pub fn validate(&self) -> Result<(), Error> {
        let fields = [
            ("rpc_queue_capacity", self.rpc_queue_capacity),
            ("rest_queue_capacity", self.rest_queue_capacity),
            ("stream_queue_capacity", self.stream_queue_capacity),
            ("batch_txs_max", self.batch_txs_max),
            ("batch_bytes_max", self.batch_bytes_max),
            ("batches_in_flight_max", self.batches_in_flight_max),
            ("dedup_capacity", self.dedup_capacity),
            ("throttle.sources_max", self.throttle.sources_max),
        ];
        if let Some((field, _)) = fields.iter().find(|(_, value)| *value == 0) {
            return Err(Error::Config { field });
        }
        if self.admission_timeout.is_zero() {
            return Err(Error::Config { field: "admission_timeout" });
        }
        Ok(())
    }
}

/// Largest stream frame accepted by default: 1 MiB, room for several maximum-size transactions.
pub const FRAME_BYTES_MAX_DEFAULT: u32 = 1 << 20;

/// Transactions a stream may have outstanding (sent, not yet answered) by default.
pub const STREAM_WINDOW_TXS_DEFAULT: u32 = 1024;

/// How long a stream server waits for the client's `Hello`.
pub const STREAM_HELLO_TIMEOUT_DEFAULT: Duration = Duration::from_secs(5);

/// How long a closing stream waits for its outstanding transactions and its last frame.
pub const STREAM_CLOSE_TIMEOUT_DEFAULT: Duration = Duration::from_secs(5);

/// Limits of one node tx stream, on the serving side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamLimits {
    /// Largest frame accepted (`FRAME_BYTES_MAX_DEFAULT`).
    pub frame_bytes_max: u32,
    /// Credit window: transactions the client may have outstanding
    /// (`STREAM_WINDOW_TXS_DEFAULT`).
    pub window_txs: u32,
    /// Deadline for the client's `Hello` (`STREAM_HELLO_TIMEOUT_DEFAULT`).
    pub hello_timeout: Duration,
    /// Deadline for draining outstanding transactions and writing the last frame when the
    /// stream ends (`STREAM_CLOSE_TIMEOUT_DEFAULT`).
    pub close_timeout: Duration,
}

impl Default for StreamLimits {
    fn default() -> Self {
        Self {
            frame_bytes_max: FRAME_BYTES_MAX_DEFAULT,
            window_txs: STREAM_WINDOW_TXS_DEFAULT,
            hello_timeout: STREAM_HELLO_TIMEOUT_DEFAULT,
            close_timeout: STREAM_CLOSE_TIMEOUT_DEFAULT,
        }
    }
}

/// Transactions a stream client buffers before `send` waits (`try_send` refuses).
pub const CLIENT_BUFFER_TXS_DEFAULT: usize = 1024;

/// Settings of a [`crate::TxStreamClient`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamClientConfig {
    /// The identity this client announces in its `Hello` (the server checks it against the
    /// authenticated peer).
    pub source: NodeId,
    /// Largest frame this client writes; the server's limit must be at least this.
    pub frame_bytes_max: u32,
    /// Transactions buffered before `send` waits (`CLIENT_BUFFER_TXS_DEFAULT`).
    pub buffer_txs: usize,
    /// Deadline for the server's first credit after `Hello`.
    pub hello_timeout: Duration,
    /// Deadline for flushing the buffer and writing `Close` in [`crate::TxStreamClient::close`].
    pub close_timeout: Duration,
}

impl StreamClientConfig {
    /// Defaults for a client announcing `source`.
    #[must_use]
    pub const fn new(source: NodeId) -> Self {
        Self {
            source,
            frame_bytes_max: FRAME_BYTES_MAX_DEFAULT,
            buffer_txs: CLIENT_BUFFER_TXS_DEFAULT,
            hello_timeout: STREAM_HELLO_TIMEOUT_DEFAULT,
            close_timeout: STREAM_CLOSE_TIMEOUT_DEFAULT,
        }
    }
}
