//! Configuration of the mempool state machine.
//!
//! Every replica of one cluster must run with the same configuration: it is part of the
//! replicated state, is stored in snapshots and is covered by the digest.

use serde::{Deserialize, Serialize};

use crate::{ConfigField, Error, Result};

/// How [`crate::Mempool::build_block`] orders pending transactions.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum OrderingPolicy {
    /// First in, first out by admission order, as CometBFT's `ReapMaxBytesMaxGas`.
    Fifo,
    /// Highest effective tip first, ties broken by admission order, as reth's best-transactions
    /// iterator: a heap over each sender's next pending transaction.
    #[default]
    Priority,
}

impl OrderingPolicy {
    /// Stable wire code (snapshots).
    #[must_use]
    pub const fn code(self) -> u8 {
        match self {
            Self::Fifo => 1,
            Self::Priority => 2,
        }
    }

    /// Parses a stable wire code.
    #[must_use]
    pub const fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::Fifo),
            2 => Some(Self::Priority),
            _ => None,
        }
    }
}

/// Limits and policies of the pool. [`Default`] is the embedded default.
///
/// | field | default | model |
/// |---|---|---|
/// | `max_txs` | 10 000 | reth pending + queued limits are 10 000 each; CometBFT `size` is 5 000 |
/// | `max_pool_bytes` | 1 GiB | CometBFT `max_txs_bytes` |
/// | `max_tx_bytes` | 128 KiB | reth `max_tx_input_bytes` (CometBFT: 1 MiB) |
/// | `max_txs_per_sender` | 16 | reth `max_account_slots` |
/// | `nonce_window` | 64 | how far past a sender's next nonce a queued transaction may sit |
/// | `replacement_bump_percent` | 10 | reth `price_bump` |
/// | `committed_cache_size` | 10 000 | CometBFT `cache_size` |
/// | `ttl_heights` | 900 | reth `max_queued_lifetime` (3 h) at 12 s blocks; 0 disables |
/// | `ordering` | `priority` | reth; CometBFT is `fifo` |
/// | `min_priority_fee_per_gas` | 0 | reth `minimal_protocol_basefee` is separate; 0 admits all |
/// | `max_block_gas` | 30 000 000 | Ethereum mainnet block gas limit (2023) |
/// | `initial_base_fee_per_gas` | 0 | updated by every commit that carries a base fee |
/// | `max_idle_senders` | 100 000 | nonces remembered for senders with no transaction in the pool |
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default, deny_unknown_fields)]
pub struct MempoolConfig {
    /// Most transactions in the pool (pending plus queued).
    pub max_txs: u32,
    /// Most encoded bytes in the pool.
    pub max_pool_bytes: u64,
    /// Largest encoded transaction admitted.
    pub max_tx_bytes: u32,
    /// Most transactions one sender may hold.
    pub max_txs_per_sender: u32,
    /// Largest distance between a transaction's nonce and its sender's next nonce (the first
    /// nonce not in the pool, counting from the committed nonce).
    pub nonce_window: u64,
    /// Minimum fee bump, in percent, on both the max fee and the tip, for a replacement.
    pub replacement_bump_percent: u32,
    /// Committed transaction hashes remembered to reject resubmissions (FIFO eviction).
    pub committed_cache_size: u32,
    /// A transaction admitted at height `h` expires at commit of height `h + ttl_heights`;
    /// 0 disables expiry.
    pub ttl_heights: u64,
    /// Block building policy.
    pub ordering: OrderingPolicy,
    /// Smallest `max_priority_fee_per_gas` admitted.
    pub min_priority_fee_per_gas: u128,
    /// Largest gas limit of a block, hence of a transaction.
    pub max_block_gas: u64,
    /// Base fee before the first commit that carries one.
    pub initial_base_fee_per_gas: u128,
    /// Senders with no transaction in the pool whose committed nonce is remembered (oldest
    /// forgotten first).
    pub max_idle_senders: u32,
}

impl Default for MempoolConfig {
    fn default() -> Self {
        Self {
            max_txs: 10_000,
            max_pool_bytes: 1 << 30,
            max_tx_bytes: 128 * 1024,
            max_txs_per_sender: 16,
            nonce_window: 64,
            replacement_bump_percent: 10,
            committed_cache_size: 10_000,
            ttl_heights: 900,
            ordering: OrderingPolicy::Priority,
            min_priority_fee_per_gas: 0,
            max_block_gas: 30_000_000,
            initial_base_fee_per_gas: 0,
            max_idle_senders: 100_000,
        }
    }
}

impl MempoolConfig {
    /// Checks that every limit is usable.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the first field that is zero where a positive value is
    /// required.
    pub fn validate(&self) -> Result<()> {
        let zero = [
            (self.max_txs == 0, ConfigField::MaxTxs),
            (self.max_pool_bytes == 0, ConfigField::MaxPoolBytes),
            (self.max_tx_bytes == 0, ConfigField::MaxTxBytes),
            (self.max_txs_per_sender == 0, ConfigField::MaxTxsPerSender),
            (self.max_block_gas == 0, ConfigField::MaxBlockGas),
        ];
        match zero.iter().find(|(bad, _)| *bad) {
            Some((_, field)) => Err(Error::InvalidConfig { field: *field }),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_zero_limits_are_not() {
        assert!(MempoolConfig::default().validate().is_ok());
        let c = MempoolConfig { max_txs: 0, ..MempoolConfig::default() };
        assert_eq!(c.validate(), Err(Error::InvalidConfig { field: ConfigField::MaxTxs }));
    }

    #[test]
    fn ordering_codes_round_trip() {
        for p in [OrderingPolicy::Fifo, OrderingPolicy::Priority] {
            assert_eq!(OrderingPolicy::from_code(p.code()), Some(p));
        }
        assert_eq!(OrderingPolicy::from_code(0), None);
    }
}
