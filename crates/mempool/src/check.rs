//! CheckTx: the admission verdict and, when the pool is full, the eviction plan.
//!
//! Checks run in a fixed order, and the first failing one is the verdict:
//! `duplicate`, `already_committed`, `tx_too_large`, `gas_limit_too_high`, `fee_too_low`,
//! `nonce_too_low`, `nonce_gap_too_large` (also for nonce `u64::MAX`, invalid under EIP-2681),
//! `replacement_underpriced`, `sender_slots_full`, `pool_full`.

use core::cmp::Reverse;
use core::iter::Peekable;
use std::collections::BTreeSet;
use std::collections::btree_set;

use mempulse_primitives::{Fees, RejectReason, Tx};

use crate::Mempool;
use crate::pool::{FeeKey, Known, Slot};

/// What admitting a transaction takes: the entry it replaces and the chains it evicts.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    /// Same sender and nonce, outbid by the new transaction.
    pub(crate) replaced: Option<Slot>,
    /// Heads of the chains to evict (each with its later nonces), worst first.
    pub(crate) victims: Vec<Slot>,
    /// The sender's next nonce (first gap from its committed nonce) before admission.
    pub(crate) next_nonce: u64,
}

/// Whether `new` outbids `old` by at least `bump_percent` on both fee fields.
#[must_use]
pub fn is_sufficient_bump(old: &Fees, new: &Fees, bump_percent: u32) -> bool {
    new.max_fee_per_gas >= bumped(old.max_fee_per_gas, bump_percent)
        && new.max_priority_fee_per_gas >= bumped(old.max_priority_fee_per_gas, bump_percent)
}

/// The size the pool measures: the length of `raw` (saturated to `u32`).
fn raw_size(tx: &Tx) -> u32 {
    u32::try_from(tx.raw.len()).unwrap_or(u32::MAX)
}

/// Makes `encoded_size` agree with `raw`, as the codec does on every replica, so that a
/// pooled transaction is the same value before and after a snapshot or a Raft round trip.
pub(crate) fn normalize(tx: &mut Tx) {
    tx.encoded_size = raw_size(tx);
}

/// `ceil(value * (100 + percent) / 100)` in saturating integer math.
fn bumped(value: u128, percent: u32) -> u128 {
    let percent = u128::from(percent);
    let whole = (value / 100).saturating_mul(percent);
    let part = ((value % 100) * percent).div_ceil(100);
    value.saturating_add(whole).saturating_add(part)
}

impl Mempool {
    /// The verdict the pool would give `tx` now, without changing anything.
    ///
    /// # Errors
    /// The [`RejectReason`] that [`crate::Mempool::add_txs`] would record.
    pub fn check_tx(&self, tx: &Tx) -> Result<(), RejectReason> {
        self.plan(tx).map(|_| ())
    }

    /// Runs every check and plans the evictions admission needs.
    pub(crate) fn plan(&self, tx: &Tx) -> Result<Plan, RejectReason> {
        match self.known.get(&tx.hash) {
            Some(Known::Pool(_)) => return Err(RejectReason::Duplicate),
            Some(Known::Committed(_)) => return Err(RejectReason::AlreadyCommitted),
            None => {}
        }
        let c = &self.config;
        if raw_size(tx) > c.max_tx_bytes {
            return Err(RejectReason::TxTooLarge);
        }
        if tx.gas_limit > c.max_block_gas {
            return Err(RejectReason::GasLimitTooHigh);
        }
        if tx.fees.max_priority_fee_per_gas < c.min_priority_fee_per_gas {
            return Err(RejectReason::FeeTooLow);
        }
        let nonce = tx.nonce.get();
        let sender = self.senders.get(&tx.sender);
        let (committed, next) = sender.map_or((0, 0), |s| (s.nonce, s.pending_end));
        if nonce < committed {
            return Err(RejectReason::NonceTooLow);
        }
        // `u64::MAX` is never a valid nonce (EIP-2681), and excluding it means `nonce + 1`
        // never overflows for a pooled transaction.
        if nonce == u64::MAX || (nonce > next && nonce - next > c.nonce_window) {
            return Err(RejectReason::NonceGapTooLarge);
        }
        // The sender's next nonce is never pooled (the run ends there): no lookup needed.
        let replaced = sender.filter(|_| nonce != next).and_then(|s| s.txs.get(&nonce).copied());
        if let Some(old) = replaced {
            let old = &self.entry(old).tx.fees;
            if !is_sufficient_bump(old, &tx.fees, c.replacement_bump_percent) {
                return Err(RejectReason::ReplacementUnderpriced);
            }
        } else if sender.map_or(0, |s| s.txs.len()) >= c.max_txs_per_sender as usize {
            return Err(RejectReason::SenderSlotsFull);
        }
        let victims = self.plan_room(tx, replaced)?;
        Ok(Plan { replaced, victims, next_nonce: next })
    }

    /// Chooses the chains to evict so that `tx` fits, or rejects it with `pool_full`.
    ///
    /// Eviction order is lowest [`eviction_fee`] first, then newest first. That fee is
    /// `min(tip, max_fee - base_fee)`, so merging the pool ordered by tip with the pool ordered
    /// by `max_fee - base_fee` (both strictly monotone maps of their index keys) and keeping
    /// each entry's first appearance yields exactly that order without any index that depends
    /// on the base fee. A victim must be strictly worse
    /// than `tx` and must not be `tx`'s own replaced entry or an earlier nonce of its sender.
    fn plan_room(&self, tx: &Tx, replaced: Option<Slot>) -> Result<Vec<Slot>, RejectReason> {
        let freed_bytes = replaced.map_or(0, |s| u64::from(self.entry(s).tx.encoded_size));
        let count_after = self.len + usize::from(replaced.is_none());
        let bytes_after = (self.bytes - freed_bytes) + u64::from(raw_size(tx));
        let mut need_count = count_after.saturating_sub(self.config.max_txs as usize);
        let mut need_bytes = bytes_after.saturating_sub(self.config.max_pool_bytes);
        if need_count == 0 && need_bytes == 0 {
            return Ok(Vec::new());
        }
        let new_fee = eviction_fee(&tx.fees, self.base_fee);
        let mut seen = BTreeSet::new();
        let mut victims = Vec::new();
        for slot in self.eviction_order() {
            if !seen.insert(slot) {
                continue;
            }
            let victim = &self.entry(slot).tx;
            let worse = eviction_fee(&victim.fees, self.base_fee) < new_fee;
            let own = victim.sender == tx.sender && victim.nonce <= tx.nonce;
            if !worse || own {
                return Err(RejectReason::PoolFull);
            }
            victims.push(slot);
            need_count = need_count.saturating_sub(1);
            need_bytes = need_bytes.saturating_sub(u64::from(victim.encoded_size));
            let later = self
                .senders
                .get(&victim.sender)
                .into_iter()
                .flat_map(|s| s.txs.range(victim.nonce.get() + 1..).map(|(_, &slot)| slot));
            for slot in later {
                if seen.insert(slot) {
                    need_count = need_count.saturating_sub(1);
                    let size = u64::from(self.entry(slot).tx.encoded_size);
                    need_bytes = need_bytes.saturating_sub(size);
                }
            }
            if need_count == 0 && need_bytes == 0 {
                return Ok(victims);
            }
        }
        Err(RejectReason::PoolFull)
    }

    /// Every entry, lowest effective tip first, then newest first (see [`Self::plan_room`]).
    /// An entry may appear twice; callers keep the first appearance.
    /// Without the eviction indexes (see `evict.rs`), sorts every entry by the same order.
    pub(crate) fn eviction_order(&self) -> EvictionOrder<'_> {
        match &self.evict {
            Some(index) => EvictionOrder::Merge(MergeOrder {
                by_tip: index.by_tip.iter().peekable(),
                by_max_fee: index.by_max_fee.iter().peekable(),
                base_fee: self.base_fee,
            }),
            None => {
                let mut all: Vec<(SignedFee, Reverse<u64>, Slot)> = (0..)
                    .zip(&self.slab)
                    .filter_map(|(slot, e)| {
                        let e = e.as_ref()?;
                        Some((eviction_fee(&e.tx.fees, self.base_fee), Reverse(e.seq), slot))
                    })
                    .collect();
                all.sort_unstable();
                EvictionOrder::Sorted(all.into_iter())
            }
        }
    }
}

/// A fee per gas that may be negative, as an order-preserving pair: `(true, v)` is `+v`,
/// `(false, u128::MAX - d)` is `-d` (so a larger deficit sorts first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct SignedFee(bool, u128);

impl SignedFee {
    const fn tip(tip: u128) -> Self {
        Self(true, tip)
    }

    /// `max_fee - base_fee`, negative when the max fee cannot pay the base fee.
    const fn headroom(max_fee: u128, base_fee: u128) -> Self {
        match max_fee.checked_sub(base_fee) {
            Some(v) => Self(true, v),
            None => Self(false, u128::MAX - (base_fee - max_fee)),
        }
    }
}

/// The eviction fee of a transaction: `min(tip, max_fee - base_fee)`, negative when its max
/// fee is below the base fee (the further below, the sooner it is evicted).
pub(crate) fn eviction_fee(fees: &Fees, base_fee: u128) -> SignedFee {
    SignedFee::tip(fees.max_priority_fee_per_gas)
        .min(SignedFee::headroom(fees.max_fee_per_gas, base_fee))
}

/// Every entry in eviction order: from the indexes, or from a sorted copy.
#[derive(Debug)]
pub(crate) enum EvictionOrder<'a> {
    /// Merge of the eviction indexes.
    Merge(MergeOrder<'a>),
    /// Every entry, sorted.
    Sorted(std::vec::IntoIter<(SignedFee, Reverse<u64>, Slot)>),
}

impl Iterator for EvictionOrder<'_> {
    type Item = Slot;

    fn next(&mut self) -> Option<Slot> {
        match self {
            Self::Merge(merge) => merge.next(),
            Self::Sorted(sorted) => sorted.next().map(|(_, _, slot)| slot),
        }
    }
}

/// Merge of the two fee indexes in effective-tip space.
#[derive(Debug)]
pub(crate) struct MergeOrder<'a> {
    by_tip: Peekable<btree_set::Iter<'a, FeeKey>>,
    by_max_fee: Peekable<btree_set::Iter<'a, FeeKey>>,
    base_fee: u128,
}

impl Iterator for MergeOrder<'_> {
    type Item = Slot;

    fn next(&mut self) -> Option<Slot> {
        let tip_key = self.by_tip.peek().map(|&&(tip, seq, _)| (SignedFee::tip(tip), seq));
        let fee_key = self
            .by_max_fee
            .peek()
            .map(|&&(max_fee, seq, _)| (SignedFee::headroom(max_fee, self.base_fee), seq));
        let take_tip = match (tip_key, fee_key) {
            (None, None) => return None,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(a), Some(b)) => a <= b,
        };
        let it = if take_tip { &mut self.by_tip } else { &mut self.by_max_fee };
        it.next().map(|&(_, _, slot)| slot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_utils::{SplitMix64, TxSpec};
    use crate::{Mempool, MempoolConfig};

    #[test]
    fn bump_is_ceiled_and_saturating() {
        assert_eq!(bumped(100, 10), 110);
        assert_eq!(bumped(101, 10), 112);
        assert_eq!(bumped(0, 10), 0);
        assert_eq!(bumped(u128::MAX, 10), u128::MAX);
        let old = Fees { max_fee_per_gas: 100, max_priority_fee_per_gas: 10 };
        assert!(is_sufficient_bump(
            &old,
            &Fees { max_fee_per_gas: 110, max_priority_fee_per_gas: 11 },
            10
        ));
        assert!(!is_sufficient_bump(
            &old,
            &Fees { max_fee_per_gas: 200, max_priority_fee_per_gas: 10 },
            10
        ));
        assert!(!is_sufficient_bump(
            &old,
            &Fees { max_fee_per_gas: 109, max_priority_fee_per_gas: 50 },
            10
        ));
    }

    #[test]
    fn signed_fee_orders_deficits_below_zero() {
        let minus_two = SignedFee::headroom(3, 5);
        let minus_one = SignedFee::headroom(4, 5);
        assert!(minus_two < minus_one && minus_one < SignedFee::tip(0));
        assert_eq!(SignedFee::headroom(5, 5), SignedFee::tip(0));
        assert_eq!(SignedFee::headroom(0, u128::MAX), SignedFee(false, 0));
    }

    /// The two-index merge equals sorting every entry by (eviction fee, newest first).
    #[test]
    fn eviction_order_equals_brute_force_sort() {
        let mut rng = SplitMix64::new(42);
        for round in 0..50u64 {
            let config = MempoolConfig { max_txs: 1000, ..MempoolConfig::default() };
            let mut p = Mempool::new(config).unwrap();
            p.base_fee = u128::from(rng.below(40));
            for i in 0..60 {
                let tip = u128::from(rng.below(30));
                let spec = TxSpec {
                    max_fee: tip + u128::from(rng.below(30)),
                    tip,
                    salt: round,
                    ..TxSpec::new(i, 0, 0)
                };
                p.add_txs([spec.build()]);
            }
            p.ensure_eviction_index();
            let mut seen = BTreeSet::new();
            let merged: Vec<Slot> = p.eviction_order().filter(|s| seen.insert(*s)).collect();
            let mut expected: Vec<(SignedFee, Reverse<u64>, Slot)> = (0..)
                .zip(&p.slab)
                .filter(|(_, e)| e.is_some())
                .map(|(slot, _)| {
                    let e = p.entry(slot);
                    (eviction_fee(&e.tx.fees, p.base_fee), Reverse(e.seq), slot)
                })
                .collect();
            expected.sort();
            let expected: Vec<Slot> = expected.into_iter().map(|(_, _, slot)| slot).collect();
            assert_eq!(merged, expected, "round {round}");
        }
    }
}
