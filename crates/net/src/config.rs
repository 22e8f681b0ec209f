//! Limits of the decoder and the worker pool, each a named constant with its reason.

use core::num::NonZeroUsize;

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
