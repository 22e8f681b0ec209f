//! The head indexes: each sender's first pending entry, ordered by effective tip, for priority
//! building without visiting every sender.
//!
//! An entry is a head exactly when it is pending and its sender has no pooled entry at the
//! previous nonce (so its nonce is the sender's committed nonce). [`Mempool::refresh_head`]
//! restores that equivalence after any change to an entry's subpool or links.
//!
//! Priority building wants heads by effective tip `min(tip, max_fee - base_fee)`, highest
//! first. The heads are split by the current base fee: a head is *tip-bound* when its slack
//! `max_fee - tip` is at least the base fee (its effective tip is its tip) and *fee-bound*
//! otherwise (its effective tip is `max_fee - base_fee`). The tip-bound set is keyed by tip,
//! the fee-bound set by max fee, so each set lists its heads in exact effective-tip order, and
//! merging the two is exact: building visits only the heads it takes (plus one per set), never
//! the whole pool. When the base fee moves, only the heads whose slack lies between the old and
//! the new base fee change sets; a third index by slack finds exactly those.

use core::cmp::Reverse;
use core::iter::{Peekable, Rev};
use std::collections::btree_set;

use crate::Mempool;
use crate::pool::{Entry, FeeKey, Slot};

/// Key of the slack index: `max_fee - tip`, then the seq and slot of the head.
pub(crate) type SlackKey = (u128, u64, Slot);

/// A head's keys: its slack key (none when the tip exceeds the max fee: always fee-bound), and
/// its key in the tip-bound or fee-bound set under `base_fee`, with `true` for tip-bound.
fn head_keys(e: &Entry, slot: Slot, base_fee: u128) -> (Option<SlackKey>, bool, FeeKey) {
    let fees = &e.tx.fees;
    let slack = fees.max_fee_per_gas.checked_sub(fees.max_priority_fee_per_gas);
    let tip_bound = slack.is_some_and(|s| s >= base_fee);
    let fee = if tip_bound { fees.max_priority_fee_per_gas } else { fees.max_fee_per_gas };
    (slack.map(|s| (s, e.seq, slot)), tip_bound, (fee, Reverse(e.seq), slot))
}

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
        let (slack, tip_bound, key) = head_keys(e, slot, self.base_fee);
        let set = if tip_bound { &mut self.heads_tip } else { &mut self.heads_fee };
        if want {
            set.insert(key);
            slack.map(|k| self.heads_slack.insert(k));
        } else {
            set.remove(&key);
            slack.map(|k| self.heads_slack.remove(&k));
        }
        if let Some(Some(e)) = self.slab.get_mut(slot as usize) {
            e.is_head = want;
        }
    }

    /// Removes a head that is leaving the arena.
    pub(crate) fn drop_head(&mut self, e: &Entry, slot: Slot) {
        let (slack, tip_bound, key) = head_keys(e, slot, self.base_fee);
        let set = if tip_bound { &mut self.heads_tip } else { &mut self.heads_fee };
        set.remove(&key);
        slack.map(|k| self.heads_slack.remove(&k));
    }

    /// Sets the base fee and moves the heads whose slack lies between the old and the new
    /// value to their new set.
    pub(crate) fn set_base_fee(&mut self, base_fee: u128) {
        let old = self.base_fee;
        self.base_fee = base_fee;
        if !self.keeps_heads() || old == base_fee {
            return;
        }
        let (low, high) = (old.min(base_fee), old.max(base_fee));
        let movers: Vec<Slot> =
            self.heads_slack.range((low, 0, 0)..(high, 0, 0)).map(|&(_, _, slot)| slot).collect();
        for slot in movers {
            let e = self.entry(slot);
            let (tip, max_fee, seq) =
                (e.tx.fees.max_priority_fee_per_gas, e.tx.fees.max_fee_per_gas, Reverse(e.seq));
            if base_fee > old {
                // Slack below the new base fee: now fee-bound.
                self.heads_tip.remove(&(tip, seq, slot));
                self.heads_fee.insert((max_fee, seq, slot));
            } else {
                self.heads_fee.remove(&(max_fee, seq, slot));
                self.heads_tip.insert((tip, seq, slot));
            }
        }
    }

    /// Heads that can pay the base fee, highest effective tip first, ties oldest first.
    pub(crate) fn best_heads(&self) -> BestHeads<'_> {
        BestHeads {
            tip_bound: self.heads_tip.iter().rev().peekable(),
            fee_bound: self.heads_fee.iter().rev().peekable(),
            base_fee: self.base_fee,
        }
    }
}

/// Exact descending merge of the tip-bound and fee-bound heads; see the module docs.
#[derive(Debug)]
pub(crate) struct BestHeads<'a> {
    tip_bound: Peekable<Rev<btree_set::Iter<'a, FeeKey>>>,
    fee_bound: Peekable<Rev<btree_set::Iter<'a, FeeKey>>>,
    base_fee: u128,
}

impl Iterator for BestHeads<'_> {
    /// (effective tip, reversed seq, slot): the priority building key.
    type Item = (u128, Reverse<u64>, Slot);

    fn next(&mut self) -> Option<Self::Item> {
        let tip = self.tip_bound.peek().map(|&&key| key);
        // A fee-bound head that cannot pay the base fee ends its set: the rest pay less.
        let fee = self.fee_bound.peek().and_then(|&&(max_fee, seq, slot)| {
            max_fee.checked_sub(self.base_fee).map(|eff| (eff, seq, slot))
        });
        if tip >= fee {
            self.tip_bound.next();
            tip
        } else {
            self.fee_bound.next();
            fee
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
            let indexed = p.heads_tip.len() + p.heads_fee.len();
            assert_eq!((heads, indexed), (pending_senders, pending_senders));
            let tip_bound = p.heads_tip.iter().all(|&(_, _, slot)| {
                let f = &p.entry(slot).tx.fees;
                f.max_fee_per_gas.checked_sub(f.max_priority_fee_per_gas) >= Some(p.base_fee)
            });
            assert!(tip_bound, "height {height}");
            let slack = p.heads_slack.len();
            assert!(slack <= pending_senders);
            assert_eq!(p.best_heads().collect::<Vec<_>>(), expected, "height {height}");
        }
    }
}
