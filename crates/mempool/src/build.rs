//! `BuildBlock` (PrepareProposal): reap pending transactions within the block limits.
//!
//! Building is read-only: the block is only proposed, and its commit removes the transactions.
//! Both policies keep each sender's nonce order. A transaction that does not fit, or cannot pay
//! the base fee, is skipped together with every later nonce of its sender; building stops once
//! [`SKIPPED_MAX`] transactions in a row did not fit, so a nearly full block never scans the
//! whole pool.

use core::cmp::Reverse;
use std::collections::BinaryHeap;

use mempulse_primitives::Tx;

use crate::pool::{Entry, Slot};
use crate::{Mempool, OrderingPolicy};

/// Consecutive transactions that may fail to fit before building stops.
pub const SKIPPED_MAX: u32 = 256;

/// Block limits. `None` means unlimited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct BlockLimits {
    /// Most total encoded bytes.
    pub max_bytes: Option<u64>,
    /// Most total gas (sum of gas limits).
    pub max_gas: Option<u64>,
}

impl BlockLimits {
    /// CometBFT's convention: a negative value (`-1`) means unlimited.
    #[must_use]
    pub fn from_cometbft(max_bytes: i64, max_gas: i64) -> Self {
        Self { max_bytes: u64::try_from(max_bytes).ok(), max_gas: u64::try_from(max_gas).ok() }
    }
}

/// A proposed block.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BuiltBlock {
    /// Transactions in block order.
    pub txs: Vec<Tx>,
    /// Sum of encoded sizes.
    pub total_bytes: u64,
    /// Sum of gas limits.
    pub total_gas: u64,
}

/// Running totals of a block under construction.
struct Budget {
    limits: BlockLimits,
    block: BuiltBlock,
    skipped_in_row: u32,
}

impl Budget {
    /// Adds `tx` if it fits.
    fn try_push(&mut self, tx: &Tx) -> bool {
        let bytes = self.block.total_bytes.saturating_add(u64::from(tx.encoded_size));
        let gas = self.block.total_gas.saturating_add(tx.gas_limit);
        let fits = self.limits.max_bytes.is_none_or(|m| bytes <= m)
            && self.limits.max_gas.is_none_or(|m| gas <= m);
        if fits {
            self.block.total_bytes = bytes;
            self.block.total_gas = gas;
            self.block.txs.push(tx.clone());
            self.skipped_in_row = 0;
        } else {
            self.skipped_in_row += 1;
        }
        fits
    }

    const fn exhausted(&self) -> bool {
        self.skipped_in_row >= SKIPPED_MAX
    }
}

impl Mempool {
    /// Builds a block from pending transactions under the configured [`OrderingPolicy`].
    #[must_use]
    pub fn build_block(&self, limits: BlockLimits) -> BuiltBlock {
        let block = BuiltBlock {
            txs: Vec::with_capacity(self.expected_block_len(limits)),
            ..BuiltBlock::default()
        };
        let mut budget = Budget { limits, block, skipped_in_row: 0 };
        match self.config.ordering {
            OrderingPolicy::Fifo => self.build_fifo(&mut budget),
            OrderingPolicy::Priority => self.build_priority(&mut budget),
        }
        budget.block
    }

    /// About how many transactions a block under `limits` takes: the byte limit over the mean
    /// pooled size (plus an eighth), at most the pending count. Reserving it up front saves
    /// regrowing and copying the block, which costs as much as choosing its transactions.
    fn expected_block_len(&self, limits: BlockLimits) -> usize {
        let mean = self.bytes.checked_div(self.len as u64).unwrap_or(1).max(1);
        let by_bytes =
            limits.max_bytes.map_or(u64::MAX, |b| (b / mean).saturating_add(b / mean / 8));
        usize::try_from(by_bytes).unwrap_or(usize::MAX).min(self.len_pending)
    }

    /// Admission order; a transaction reached before its sender's earlier nonce waits for it
    /// and follows it straight away.
    fn build_fifo(&self, budget: &mut Budget) {
        // A pending entry is the head of its sender's run when it has no pooled predecessor,
        // and otherwise its predecessor is pending too: it may go in once that one went in.
        let mut included = vec![false; self.slab.len()];
        for (&seq, &head) in &self.fifo {
            if budget.exhausted() {
                return;
            }
            if self.entry(head).prev.is_some_and(|p| !included[p as usize]) {
                continue;
            }
            let mut slot = head;
            loop {
                let e = self.entry(slot);
                if !self.pays_base_fee(&e.tx) || !budget.try_push(&e.tx) {
                    break;
                }
                included[slot as usize] = true;
                // Pull in a later nonce that the scan already passed.
                match self.pending_next(e) {
                    Some(later) if self.entry(later).seq < seq => slot = later,
                    _ => break,
                }
            }
        }
    }

    /// Highest effective tip first (ties: earliest admitted), over each sender's next nonce:
    /// the best remaining head (from the head indexes, see `heads.rs`) competes with a heap of
    /// the successors of the transactions already taken.
    fn build_priority(&self, budget: &mut Budget) {
        let mut heads = self.best_heads();
        let mut next_head = heads.next();
        let mut successors: BinaryHeap<(u128, Reverse<u64>, Slot)> = BinaryHeap::new();
        loop {
            if budget.exhausted() {
                return;
            }
            let take_head = match (next_head, successors.peek()) {
                (None, None) => return,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (Some(h), Some(s)) => h > *s,
            };
            let slot = if take_head {
                let slot = next_head.map(|(_, _, slot)| slot);
                next_head = heads.next();
                slot
            } else {
                successors.pop().map(|(_, _, slot)| slot)
            };
            let Some(slot) = slot else { return };
            let e = self.entry(slot);
            if !budget.try_push(&e.tx) {
                continue;
            }
            if let Some(key) = self.pending_next(e).and_then(|next| self.priority_key(next)) {
                successors.push(key);
            }
        }
    }

    fn priority_key(&self, slot: Slot) -> Option<(u128, Reverse<u64>, Slot)> {
        let e = self.entry(slot);
        e.tx.fees.effective_tip(self.base_fee).map(|tip| (tip, Reverse(e.seq), slot))
    }

    fn pays_base_fee(&self, tx: &Tx) -> bool {
        tx.fees.effective_tip(self.base_fee).is_some()
    }

    /// The same sender's next nonce, when it is pending.
    fn pending_next(&self, e: &Entry) -> Option<Slot> {
        e.next.filter(|&next| self.entry(next).pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cometbft_negative_limits_are_unlimited() {
        let l = BlockLimits::from_cometbft(-1, 100);
        assert_eq!(l, BlockLimits { max_bytes: None, max_gas: Some(100) });
    }
}
