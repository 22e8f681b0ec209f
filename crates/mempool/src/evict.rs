//! The eviction indexes, kept only while the pool is close to a cap.
//!
//! Eviction needs every entry ordered by tip and by max fee (see `check.rs` for the merge), but
//! only when an admission would break the count or byte cap. Maintaining two ordered trees on
//! every admission and removal costs two random-position inserts and removes per transaction,
//! the largest share of add and commit. So the pool builds them the first time an admission may
//! need room (one sort of the pool) and keeps them in step from then on, until the pool has
//! drained to half of both caps (with room for a largest transaction), when it drops them.
//!
//! Amortized cost: a build follows at least `max_txs / 2` admissions or half the byte cap
//! since the last drop, and a drop follows at least as many removals since the last build, so
//! each admission or removal pays O(log n) for builds on average. Whether the indexes exist
//! never changes a verdict or an order: [`crate::Mempool::check_tx`] on a pool without them (it
//! is read-only and cannot build them) sorts a copy of the same keys.

use core::cmp::Reverse;
use std::collections::BTreeSet;

use crate::Mempool;
use crate::pool::{Entry, FeeKey, Slot};

/// Every entry by tip and by max fee (ties: newest first).
#[derive(Clone, Debug, Default)]
pub(crate) struct EvictionIndex {
    pub(crate) by_tip: BTreeSet<FeeKey>,
    pub(crate) by_max_fee: BTreeSet<FeeKey>,
}

impl EvictionIndex {
    fn keys(e: &Entry, slot: Slot) -> (FeeKey, FeeKey) {
        let seq = Reverse(e.seq);
        ((e.tx.fees.max_priority_fee_per_gas, seq, slot), (e.tx.fees.max_fee_per_gas, seq, slot))
    }

    pub(crate) fn insert(&mut self, e: &Entry, slot: Slot) {
        let (tip, max_fee) = Self::keys(e, slot);
        self.by_tip.insert(tip);
        self.by_max_fee.insert(max_fee);
    }

    pub(crate) fn remove(&mut self, e: &Entry, slot: Slot) {
        let (tip, max_fee) = Self::keys(e, slot);
        self.by_tip.remove(&tip);
        self.by_max_fee.remove(&max_fee);
    }

    /// The indexes over every live entry of `slab` (bulk-built from sorted keys).
    pub(crate) fn build(slab: &[Option<Entry>]) -> Self {
        let (mut tips, mut max_fees): (Vec<FeeKey>, Vec<FeeKey>) =
            (0..).zip(slab).filter_map(|(slot, e)| e.as_ref().map(|e| Self::keys(e, slot))).unzip();
        tips.sort_unstable();
        max_fees.sort_unstable();
        Self { by_tip: tips.into_iter().collect(), by_max_fee: max_fees.into_iter().collect() }
    }
}

impl Mempool {
    /// Whether admitting `size` more bytes may need room: the pool is at its count cap or the
    /// bytes would pass the byte cap.
    pub(crate) const fn may_need_room(&self, size: u32) -> bool {
        self.len >= self.config.max_txs as usize
            || self.bytes.saturating_add(size as u64) > self.config.max_pool_bytes
    }

    /// Builds the eviction indexes if they are not kept yet.
    pub(crate) fn ensure_eviction_index(&mut self) {
        if self.evict.is_none() {
            self.evict = Some(EvictionIndex::build(&self.slab));
        }
    }

    /// Drops the eviction indexes once the pool is at most half of both caps, counting room
    /// for a largest transaction against the byte cap.
    pub(crate) fn maybe_drop_eviction_index(&mut self) {
        let c = &self.config;
        let low_count = self.len.saturating_mul(2) < c.max_txs as usize;
        let low_bytes = self.bytes.saturating_add(u64::from(c.max_tx_bytes)).saturating_mul(2)
            < c.max_pool_bytes;
        if low_count && low_bytes {
            self.evict = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::test_utils::tx;
    use crate::{Mempool, MempoolConfig};

    #[test]
    fn built_when_room_may_be_needed_and_dropped_at_half() {
        let config = MempoolConfig { max_txs: 4, ..MempoolConfig::default() };
        let mut p = Mempool::new(config).unwrap();
        p.add_txs((0..4).map(|i| tx(i, 0, 10)));
        assert!(p.evict.is_none(), "nothing needed room yet");
        // Full: the next admission builds the indexes and evicts the worst (none is worse).
        p.add_txs([tx(9, 0, 5)]);
        assert_eq!(p.evict.as_ref().map(|e| e.by_tip.len()), Some(4));
        p.add_txs([tx(9, 0, 50)]);
        assert_eq!(p.evict.as_ref().map(|e| (e.by_tip.len(), e.by_max_fee.len())), Some((4, 4)));
        let hashes = [tx(0, 0, 10).hash, tx(1, 0, 10).hash, tx(2, 0, 10).hash];
        let block = crate::CommitBlock {
            height: mempulse_primitives::Height(1),
            txs: hashes.to_vec(),
            ..Default::default()
        };
        p.commit_block(&block).unwrap();
        assert_eq!(p.len(), 1);
        assert!(p.evict.is_none(), "dropped below half");
    }

    /// `check_tx` without the indexes gives the verdict `add_txs` gives with them.
    #[test]
    fn check_tx_without_the_indexes_agrees() {
        let config = MempoolConfig { max_txs: 3, ..MempoolConfig::default() };
        let mut p = Mempool::new(config).unwrap();
        p.add_txs([tx(1, 0, 10), tx(2, 0, 3), tx(2, 1, 30)]);
        assert!(p.evict.is_none());
        for candidate in [tx(3, 0, 2), tx(3, 0, 4), tx(2, 2, 40)] {
            let without = p.check_tx(&candidate);
            let mut q = p.clone();
            q.ensure_eviction_index();
            assert_eq!(without, q.check_tx(&candidate));
        }
        assert_eq!(p.check_tx(&tx(3, 0, 2)), Err(mempulse_primitives::RejectReason::PoolFull));
        assert_eq!(p.check_tx(&tx(3, 0, 4)), Ok(()));
    }
}
