//! The head indexes: each sender's first pending entry, by tip and by max fee, for priority
//! building without visiting every sender.
//!
//! An entry is a head exactly when it is pending and its sender has no pooled entry at the
//! previous nonce (so its nonce is the sender's committed nonce). [`Mempool::refresh_head`]
//! restores that equivalence after any change to an entry's subpool or links.
//!
//! Priority building wants heads by effective tip `min(tip, max_fee - base_fee)`, highest
//! first. Walking both indexes downwards in effective-tip space, an entry's *second*
//! appearance is at its effective tip, so emitting entries on their second appearance yields
//! them in exactly that order (ties: oldest first) with no index that depends on the base fee.

use core::cmp::Reverse;
use core::iter::{Peekable, Rev};
use std::collections::btree_set;

use crate::Mempool;
use crate::pool::{Entry, FeeKey, Slot};

impl Mempool {
    /// Whether the head indexes are maintained: only the priority policy reads them.
    const fn keeps_heads(&self) -> bool {
        !self.keeps_fifo()
    }

    /// Puts `slot` in or out of the head indexes to match its subpool and links.
    pub(crate) fn refresh_head(&mut self, slot: Slot) {
        if !self.keeps_heads() || self.defer_heads {
            return;
        }
        let e = self.entry(slot);
        let want = e.pending && e.prev.is_none();
        if want == e.is_head {
            return;
        }
        let (tip, max_fee, seq) =
            (e.tx.fees.max_priority_fee_per_gas, e.tx.fees.max_fee_per_gas, Reverse(e.seq));
        if want {
            self.heads_by_tip.insert((tip, seq, slot));
            self.heads_by_max_fee.insert((max_fee, seq, slot));
        } else {
            self.heads_by_tip.remove(&(tip, seq, slot));
            self.heads_by_max_fee.remove(&(max_fee, seq, slot));
        }
        if let Some(Some(e)) = self.slab.get_mut(slot as usize) {
            e.is_head = want;
        }
    }

    /// Removes a head that is leaving the arena.
    pub(crate) fn drop_head(&mut self, e: &Entry, slot: Slot) {
        let seq = Reverse(e.seq);
        self.heads_by_tip.remove(&(e.tx.fees.max_priority_fee_per_gas, seq, slot));
        self.heads_by_max_fee.remove(&(e.tx.fees.max_fee_per_gas, seq, slot));
    }

    /// Heads that can pay the base fee, highest effective tip first, ties oldest first.
    pub(crate) fn best_heads(&self) -> BestHeads<'_> {
        BestHeads {
            by_tip: self.heads_by_tip.iter().rev().peekable(),
            by_max_fee: self.heads_by_max_fee.iter().rev().peekable(),
            base_fee: self.base_fee,
            seen: vec![false; self.slab.len()],
        }
    }
}

/// Descending merge of the head indexes; see the module docs.
#[derive(Debug)]
pub(crate) struct BestHeads<'a> {
    by_tip: Peekable<Rev<btree_set::Iter<'a, FeeKey>>>,
    by_max_fee: Peekable<Rev<btree_set::Iter<'a, FeeKey>>>,
    base_fee: u128,
    /// Slots met once already.
    seen: Vec<bool>,
}

impl Iterator for BestHeads<'_> {
    /// (effective tip, reversed seq, slot): the priority building key.
    type Item = (u128, Reverse<u64>, Slot);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let tip_key = self.by_tip.peek().map(|&&(tip, seq, _)| (Some(tip), seq));
            let fee_key = self
                .by_max_fee
                .peek()
                .map(|&&(max_fee, seq, _)| (max_fee.checked_sub(self.base_fee), seq));
            let take_tip = match (tip_key, fee_key) {
                (None, None) => return None,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (Some(a), Some(b)) => a >= b,
            };
            let (key, seq) = if take_tip { tip_key } else { fee_key }?;
            let it = if take_tip { &mut self.by_tip } else { &mut self.by_max_fee };
            let &(_, _, slot) = it.next()?;
            let seen = self.seen.get_mut(slot as usize)?;
            if !*seen {
                *seen = true;
                continue;
            }
            // Second appearance: `key` is the effective tip. Once it is `None` every
            // remaining head cannot pay the base fee.
            return key.map(|tip| (tip, seq, slot));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_utils::{SplitMix64, TxSpec, address};
    use crate::{CommitBlock, MempoolConfig};
    use mempulse_primitives::{Height, Nonce};

    #[test]
    fn heads_match_brute_force_after_adds_and_commits() {
        let mut rng = SplitMix64::new(9);
        let config = MempoolConfig { max_txs: 200, ttl_heights: 0, ..MempoolConfig::default() };
        let mut p = Mempool::new(config).unwrap();
        for height in 1..40u64 {
            for _ in 0..8 {
                let tip = u128::from(rng.below(20));
                let spec = TxSpec {
                    max_fee: tip + u128::from(rng.below(20)),
                    tip,
                    salt: rng.next_u64(),
                    ..TxSpec::new(rng.below(12), rng.below(6), 0)
                };
                p.add_txs([spec.build()]);
            }
            let nonces = vec![(address(rng.below(12)), Nonce(rng.below(4)))];
            let base_fee_per_gas = Some(u128::from(rng.below(15)));
            let limits = crate::BlockLimits { max_bytes: Some(rng.below(800)), max_gas: None };
            let txs = p.build_block(limits).txs.iter().map(|t| t.hash).collect();
            let block = CommitBlock { height: Height(height), txs, nonces, base_fee_per_gas };
            p.commit_block(&block).unwrap();

            let mut expected: Vec<(u128, Reverse<u64>, Slot)> = p
                .senders
                .values_unordered()
                .filter(|s| s.pending_end > s.nonce)
                .filter_map(|s| s.txs.get(&s.nonce).copied())
                .filter_map(|slot| {
                    let e = p.entry(slot);
                    e.tx.fees.effective_tip(p.base_fee).map(|t| (t, Reverse(e.seq), slot))
                })
                .collect();
            expected.sort_unstable_by(|a, b| b.cmp(a));
            let heads = p.slab.iter().flatten().filter(|e| e.is_head).count();
            let pending_senders =
                p.senders.values_unordered().filter(|s| s.pending_end > s.nonce).count();
            assert_eq!((heads, p.heads_by_tip.len()), (pending_senders, pending_senders));
            assert_eq!(p.best_heads().collect::<Vec<_>>(), expected, "height {height}");
        }
    }
}
