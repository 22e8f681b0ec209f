//! `CommitBlock` and the recheck that follows it.
//!
//! Recheck touches only the senders named by the block (included transactions and explicit
//! nonce updates) plus the transactions the age index says have expired: never the whole pool.

use std::collections::BTreeSet;

use mempulse_primitives::{Address, EventKind, EvictReason, Height, Nonce, TxHash};

use crate::pool::Known;
use crate::{Error, Mempool, Result};

/// A committed block, as the chain reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommitBlock {
    /// Height of the block; must be above the pool's current height.
    pub height: Height,
    /// Hashes of the included transactions, in block order (pooled or not).
    pub txs: Vec<TxHash>,
    /// Authoritative committed nonces (next nonce the chain accepts) of senders, for
    /// transactions this pool never saw. A nonce never moves down at commit; see reorg.
    pub nonces: Vec<(Address, Nonce)>,
    /// Base fee per gas of the next block, when the chain has one.
    pub base_fee_per_gas: Option<u128>,
}

impl Mempool {
    /// Removes included transactions, advances nonces, remembers committed hashes, then
    /// rechecks: evicts stale nonces, promotes closed gaps, expires by TTL.
    ///
    /// Facts, in order: `block_committed`; `tx_included` per pooled transaction in block
    /// order; per touched sender in address order, `tx_evicted{stale}` in nonce order then
    /// `tx_promoted` in nonce order; `tx_evicted{expired}` (with `sender_reset` or `expired`
    /// for later nonces) oldest first.
    ///
    /// # Errors
    /// [`Error::HeightNotAscending`] when `height` is not above the current height; the pool is
    /// unchanged.
    pub fn commit_block(&mut self, block: &CommitBlock) -> Result<Vec<EventKind>> {
        if block.height <= self.height {
            return Err(Error::HeightNotAscending { current: self.height, got: block.height });
        }
        let mut facts = Vec::new();
        facts.push(EventKind::BlockCommitted { height: block.height, txs: block.txs.clone() });
        let mut touched: Vec<Address> = Vec::new();
        // Removing a chain prefix would promote each next nonce to head only to remove it
        // again; resettle refreshes each touched sender's head instead.
        self.defer_heads = true;
        for hash in &block.txs {
            if let Some(&Known::Pool(slot)) = self.known.get(hash) {
                let e = self.remove(slot);
                self.raise_nonce(e.tx.sender, e.tx.nonce.get().saturating_add(1));
                touched.push(e.tx.sender);
                facts.push(EventKind::TxIncluded { hash: *hash, height: block.height });
            }
            self.remember_committed(*hash);
        }
        self.defer_heads = false;
        for &(sender, nonce) in &block.nonces {
            self.raise_nonce(sender, nonce.get());
            touched.push(sender);
        }
        // Address order, each sender once.
        touched.sort_unstable();
        touched.dedup();
        for sender in touched {
            self.resettle(sender, &BTreeSet::new(), &mut facts);
        }
        if let Some(base_fee) = block.base_fee_per_gas {
            self.set_base_fee(base_fee);
        }
        self.height = block.height;
        self.expire(&mut facts);
        self.trim_idle();
        Ok(facts)
    }

    /// Moves a sender's committed nonce up to `nonce` (never down).
    fn raise_nonce(&mut self, sender: Address, nonce: u64) {
        let s = self.senders.get_or_default(sender);
        if nonce > s.nonce {
            s.nonce = nonce;
        }
    }

    /// Restores a sender's chain invariant after its nonce moved or entries were added:
    /// evicts entries below the nonce (`stale`), marks the contiguous run from the nonce
    /// pending (`tx_promoted` for entries that were queued, unless in `quiet`), and evicts
    /// entries that were pending but are no longer contiguous (`sender_reset`).
    pub(crate) fn resettle(
        &mut self,
        sender: Address,
        quiet: &BTreeSet<u32>,
        facts: &mut Vec<EventKind>,
    ) {
        let Some(nonce) = self.senders.get(&sender).map(|s| s.nonce) else { return };
        while let Some(slot) = self.senders.get(&sender).and_then(|s| s.first_below(nonce)) {
            let e = self.remove(slot);
            facts.push(EventKind::TxEvicted { hash: e.tx.hash, reason: EvictReason::Stale });
        }
        // Entries in `[nonce, pending_end)` are already pending and contiguous (`pending_end`
        // is at most `nonce` when the caller wants the run re-derived), so walk from there.
        let Some(s) = self.senders.get(&sender) else { return };
        let mut end = s.pending_end.max(nonce);
        let mut cursor = s.txs.get(&end).copied();
        while let Some(slot) = cursor {
            if !self.entry(slot).pending {
                self.set_pending(slot, true);
                if !quiet.contains(&slot) {
                    facts.push(EventKind::TxPromoted { hash: self.entry(slot).tx.hash });
                }
            }
            end += 1;
            cursor = self.entry(slot).next;
        }
        let mut broken = Vec::new();
        if let Some(s) = self.senders.get_mut(&sender) {
            s.pending_end = end;
            broken.extend(s.txs.range(end..).map(|(_, &slot)| slot));
        }
        for slot in broken {
            if self.entry(slot).pending {
                let e = self.remove(slot);
                let reason = EvictReason::SenderReset;
                facts.push(EventKind::TxEvicted { hash: e.tx.hash, reason });
            }
        }
        if let Some(head) = self.senders.get(&sender).and_then(|s| s.txs.get(&s.nonce).copied()) {
            self.refresh_head(head);
        }
        self.touch_idle(sender);
    }

    /// Evicts every entry admitted at or before `height - ttl_heights`, with its later nonces.
    fn expire(&mut self, facts: &mut Vec<EventKind>) {
        let ttl = self.config.ttl_heights;
        if ttl == 0 || self.height.get() < ttl {
            return;
        }
        let cutoff = self.height.get() - ttl;
        // Oldest height first, then admission order: records of entries that left the pool
        // (or that an earlier eviction of this loop took) are stale and skipped.
        while let Some((_, records)) = self.by_age.pop_expired(cutoff) {
            for (seq, slot) in records {
                if Self::holds(&self.slab, slot, seq) {
                    self.evict_chain(slot, EvictReason::Expired, Some(cutoff), facts);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MempoolConfig;
    use crate::test_utils::{address, tx};

    #[test]
    fn commit_touches_only_named_senders_and_keeps_untouched_runs() {
        let mut p = Mempool::new(MempoolConfig::default()).unwrap();
        p.add_txs([tx(1, 0, 5), tx(1, 1, 5), tx(2, 0, 5), tx(2, 2, 5)]);
        let block = CommitBlock {
            height: Height(1),
            txs: vec![tx(1, 0, 5).hash],
            nonces: vec![(address(2), Nonce(1))],
            base_fee_per_gas: None,
        };
        let facts = p.commit_block(&block).unwrap();
        // Sender 2's nonce 0 is stale; nonce 2 stays queued behind the gap at 1.
        assert_eq!(facts.len(), 3);
        assert_eq!(p.senders.get(&address(1)).map(|s| (s.nonce, s.pending_end)), Some((1, 2)));
        assert_eq!(p.senders.get(&address(2)).map(|s| (s.nonce, s.pending_end)), Some((1, 1)));
        assert_eq!((p.pending_len(), p.queued_len()), (1, 1));
    }

    #[test]
    fn ttl_zero_never_expires() {
        let config = MempoolConfig { ttl_heights: 0, ..MempoolConfig::default() };
        let mut p = Mempool::new(config).unwrap();
        p.add_txs([tx(1, 0, 5)]);
        for h in 1..50 {
            p.commit_block(&CommitBlock { height: Height(h), ..CommitBlock::default() }).unwrap();
        }
        assert_eq!(p.len(), 1);
    }
}
