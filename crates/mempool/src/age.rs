//! The TTL index: entries by admission height, append-only with lazy deletion.
//!
//! Admission appends `(seq, slot)` to the bucket of the current height (seqs only grow, so each
//! bucket stays in seq order, also after a reorg lowers the height). Removing an entry from the
//! pool does not touch the index: the entry's record goes stale, and expiry skips any record
//! whose slot no longer holds an entry with that seq (seqs are never reused). So the hot paths
//! (add, commit) pay one append and nothing, and only expiry, at commit, reads the buckets at
//! or below the cutoff height.
//!
//! Bound: when stale records outnumber live entries (plus a small slack), the index is
//! compacted, so it never holds more than about twice the pool. With `ttl_heights = 0` the pool
//! keeps no index at all.

use std::collections::BTreeMap;

use crate::pool::Slot;

/// Stale records tolerated beyond the number of live entries before a compaction.
const STALE_SLACK: usize = 1024;

/// Entries by admission height; see the module docs.
#[derive(Clone, Debug, Default)]
pub(crate) struct AgeIndex {
    /// Admission height to `(seq, slot)` records, in seq order.
    buckets: BTreeMap<u64, Vec<(u64, Slot)>>,
    /// Records held, live or stale.
    records: usize,
}

impl AgeIndex {
    /// Records an entry admitted at `height`.
    pub(crate) fn push(&mut self, height: u64, seq: u64, slot: Slot) {
        self.buckets.entry(height).or_default().push((seq, slot));
        self.records += 1;
    }

    /// Whether the index should be compacted, given the number of live entries.
    pub(crate) const fn wants_compaction(&self, live: usize) -> bool {
        self.records > live.saturating_mul(2).saturating_add(STALE_SLACK)
    }

    /// Keeps only the records for which `is_live(seq, slot)` holds.
    pub(crate) fn retain(&mut self, mut is_live: impl FnMut(u64, Slot) -> bool) {
        self.buckets.retain(|_, records| {
            records.retain(|&(seq, slot)| is_live(seq, slot));
            !records.is_empty()
        });
        self.records = self.buckets.values().map(Vec::len).sum();
    }

    /// Removes and returns the oldest bucket if it was admitted at or before `cutoff`: its
    /// height and records in seq order (live or stale).
    pub(crate) fn pop_expired(&mut self, cutoff: u64) -> Option<(u64, Vec<(u64, Slot)>)> {
        let (&height, _) = self.buckets.first_key_value()?;
        if height > cutoff {
            return None;
        }
        let (height, records) = self.buckets.pop_first()?;
        self.records -= records.len();
        Some((height, records))
    }

    /// Records held, live or stale.
    #[cfg(test)]
    pub(crate) const fn records(&self) -> usize {
        self.records
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_pop_oldest_first_and_retain_drops_stale_records() {
        let mut a = AgeIndex::default();
        a.push(5, 1, 10);
        a.push(3, 2, 11);
        a.push(5, 3, 12);
        assert_eq!(a.pop_expired(2), None);
        assert_eq!(a.pop_expired(4), Some((3, vec![(2, 11)])));
        a.retain(|seq, _| seq != 1);
        assert_eq!(a.records(), 1);
        assert!(!a.wants_compaction(0));
        assert_eq!(a.pop_expired(9), Some((5, vec![(3, 12)])));
        assert_eq!((a.pop_expired(9), a.records()), (None, 0));
    }
}
