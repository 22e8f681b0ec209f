//! Read-only queries: sizes, lookups by hash, per-sender views (for `txpool_content`).

use mempulse_primitives::{Address, Height, Nonce, Subpool, Tx, TxHash};

use crate::pool::Known;
use crate::senders::Sender;
use crate::{Mempool, MempoolConfig};

impl Mempool {
    /// Number of transactions in the pool.
    #[must_use]
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether the pool is empty.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Sum of the encoded sizes of the pool's transactions.
    #[must_use]
    pub const fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Number of pending (buildable) transactions.
    #[must_use]
    pub const fn pending_len(&self) -> usize {
        self.len_pending
    }

    /// Number of queued transactions (waiting for a nonce gap to close).
    #[must_use]
    pub const fn queued_len(&self) -> usize {
        self.len - self.len_pending
    }

    /// Last committed height.
    #[must_use]
    pub const fn height(&self) -> Height {
        self.height
    }

    /// Base fee per gas used for effective tips.
    #[must_use]
    pub const fn base_fee_per_gas(&self) -> u128 {
        self.base_fee
    }

    /// The configuration.
    #[must_use]
    pub const fn config(&self) -> &MempoolConfig {
        &self.config
    }

    /// Number of hashes in the committed cache.
    #[must_use]
    pub fn committed_len(&self) -> usize {
        self.committed.len()
    }

    /// Whether a hash is in the committed cache.
    #[must_use]
    pub fn is_recently_committed(&self, hash: &TxHash) -> bool {
        matches!(self.known.get(hash), Some(Known::Committed(_)))
    }

    /// A pooled transaction by hash, with its subpool.
    #[must_use]
    pub fn get(&self, hash: &TxHash) -> Option<(&Tx, Subpool)> {
        match self.known.get(hash) {
            Some(Known::Pool(slot)) => {
                let e = self.entry(*slot);
                Some((&e.tx, e.subpool()))
            }
            _ => None,
        }
    }

    /// Senders with at least one transaction in the pool, in address order, each with its
    /// transactions in nonce order and their subpools (for `txpool_content`). Sorts the
    /// senders: O(senders × log senders).
    pub fn senders(&self) -> impl Iterator<Item = SenderView<'_>> + '_ {
        self.senders
            .sorted()
            .into_iter()
            .filter(|(_, s)| !s.txs.is_empty())
            .map(move |(addr, s)| SenderView { pool: self, sender: addr, state: s })
    }

    /// The transactions of one sender in nonce order, with their subpools.
    pub fn sender_txs(&self, sender: &Address) -> impl Iterator<Item = (&Tx, Subpool)> + '_ {
        self.senders.get(sender).into_iter().flat_map(move |s| {
            s.txs.values().map(move |&slot| {
                let e = self.entry(slot);
                (&e.tx, e.subpool())
            })
        })
    }
}

/// One sender's view, from [`Mempool::senders`].
#[derive(Debug, Clone, Copy)]
pub struct SenderView<'a> {
    pool: &'a Mempool,
    sender: &'a Address,
    state: &'a Sender,
}

impl<'a> SenderView<'a> {
    /// The sender.
    #[must_use]
    pub const fn sender(&self) -> &'a Address {
        self.sender
    }

    /// Committed nonce.
    #[must_use]
    pub const fn nonce(&self) -> Nonce {
        Nonce(self.state.nonce)
    }

    /// Transactions in nonce order with their subpools.
    pub fn txs(self) -> impl Iterator<Item = (&'a Tx, Subpool)> + 'a {
        let pool = self.pool;
        self.state.txs.values().map(move |&slot| {
            let e = pool.entry(slot);
            (&e.tx, e.subpool())
        })
    }
}
