//! The log's tail in memory: the entries most recently written, so that replication and apply,
//! which read what was just appended, clone them instead of reading them back from the WAL
//! (a `pread` copy, a CRC and a decode per entry).
//!
//! It holds a contiguous run of written entries, bounded by count and by encoded bytes (the
//! oldest go first). The store updates it from the caller's side of each write, in the order
//! openraft issues them (one at a time, each awaited): entries are added once the writer has
//! written them, cut after a truncation and dropped after a purge. Readers consult it under the
//! bounds' read lock, and only for indexes at or below the last written one, so a hit always
//! returns what the WAL holds at that moment.

use std::collections::VecDeque;

use crate::types::Entry;

/// A contiguous run of written entries `first ..`, with their encoded sizes.
#[derive(Debug)]
pub(crate) struct Tail {
    first: u64,
    entries: VecDeque<(Entry, usize)>,
    bytes: usize,
    entries_max: usize,
    bytes_max: usize,
}

impl Tail {
    /// An empty tail holding at most `entries_max` entries of at most `bytes_max` encoded
    /// bytes in all (a single larger entry is not kept).
    pub(crate) const fn new(entries_max: usize, bytes_max: usize) -> Self {
        Self { first: 0, entries: VecDeque::new(), bytes: 0, entries_max, bytes_max }
    }

    /// Index after the last entry held (`first` when empty).
    fn end(&self) -> u64 {
        self.first + self.entries.len() as u64
    }

    /// Adds entries just written (`sizes`: their encoded lengths). A run that does not continue
    /// the one held replaces it.
    pub(crate) fn extend(&mut self, entries: Vec<Entry>, sizes: &[usize]) {
        let Some(first) = entries.first().map(|e| e.log_id.index) else { return };
        if self.entries.is_empty() || first != self.end() {
            self.clear();
            self.first = first;
        }
        for (entry, &size) in entries.into_iter().zip(sizes) {
            self.entries.push_back((entry, size));
            self.bytes += size;
        }
        while self.entries.len() > self.entries_max || self.bytes > self.bytes_max {
            self.pop_front();
        }
    }

    fn pop_front(&mut self) {
        if let Some((_, size)) = self.entries.pop_front() {
            self.bytes -= size;
            self.first += 1;
        }
    }

    /// Forgets every entry after `after` (all of them for `None`).
    pub(crate) fn truncate_after(&mut self, after: Option<u64>) {
        let Some(after) = after else {
            self.clear();
            return;
        };
        while self.end() > self.first && self.end() - 1 > after {
            if let Some((_, size)) = self.entries.pop_back() {
                self.bytes -= size;
            }
        }
    }

    /// Forgets every entry up to `upto`, inclusive.
    pub(crate) fn purge(&mut self, upto: u64) {
        while !self.entries.is_empty() && self.first <= upto {
            self.pop_front();
        }
    }

    /// Forgets everything.
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }

    /// Copies of the `count` entries from `start`, when all of them are held.
    pub(crate) fn get(&self, start: u64, count: u64) -> Option<Vec<Entry>> {
        let end = start.checked_add(count)?;
        if start < self.first || end > self.end() {
            return None;
        }
        let skip = usize::try_from(start - self.first).ok()?;
        let take = usize::try_from(count).ok()?;
        Some(self.entries.range(skip..skip + take).map(|(e, _)| e.clone()).collect())
    }
}

#[cfg(test)]
mod tests {
    use mempulse_primitives::NodeId;

    use super::*;
    use crate::types::{LeaderId, LogId, Payload};

    fn entries(from: u64, to: u64, term: u64) -> Vec<Entry> {
        let log_id = |index| LogId { leader_id: LeaderId { term, node_id: NodeId(1) }, index };
        (from..=to).map(|i| Entry { log_id: log_id(i), payload: Payload::Blank }).collect()
    }

    fn terms(got: Option<Vec<Entry>>) -> Option<Vec<(u64, u64)>> {
        got.map(|v| v.iter().map(|e| (e.log_id.index, e.log_id.leader_id.term)).collect())
    }

    #[test]
    fn holds_a_bounded_contiguous_run_of_the_newest_entries() {
        let mut tail = Tail::new(4, 1000);
        tail.extend(entries(1, 3, 1), &[10, 10, 10]);
        assert_eq!(terms(tail.get(1, 3)), Some(vec![(1, 1), (2, 1), (3, 1)]));
        assert_eq!(tail.get(2, 3), None, "past the end");
        tail.extend(entries(4, 6, 1), &[10, 10, 10]);
        assert_eq!(tail.get(2, 1), None, "the oldest went first");
        assert_eq!(terms(tail.get(3, 4)).map(|v| v.len()), Some(4));
        // By bytes too: one large entry pushes the older ones out.
        tail.extend(entries(7, 7, 1), &[995]);
        assert_eq!(tail.get(6, 1), None);
        assert_eq!(terms(tail.get(7, 1)), Some(vec![(7, 1)]));
        // An entry larger than the bound is not kept at all.
        tail.extend(entries(8, 8, 1), &[2000]);
        assert_eq!(tail.get(8, 1), None);
        assert_eq!(tail.get(7, 1), None);
    }

    #[test]
    fn truncation_purge_and_a_gap_drop_what_the_log_no_longer_holds() {
        let mut tail = Tail::new(100, 1000);
        tail.extend(entries(1, 5, 1), &[1; 5]);
        tail.truncate_after(Some(3));
        assert_eq!(tail.get(4, 1), None);
        tail.extend(entries(4, 5, 2), &[1; 2]);
        assert_eq!(terms(tail.get(3, 3)), Some(vec![(3, 1), (4, 2), (5, 2)]));
        tail.purge(2);
        assert_eq!(tail.get(2, 1), None);
        assert_eq!(terms(tail.get(3, 1)), Some(vec![(3, 1)]));
        // A run that does not continue the held one (a log restarted after a snapshot)
        // replaces it.
        tail.extend(entries(10, 11, 3), &[1; 2]);
        assert_eq!(tail.get(5, 1), None);
        assert_eq!(terms(tail.get(10, 2)), Some(vec![(10, 3), (11, 3)]));
        tail.truncate_after(None);
        assert_eq!(tail.get(10, 1), None);
        tail.extend(entries(10, 11, 3), &[1; 2]);
        tail.purge(100);
        assert_eq!(tail.get(11, 1), None);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Against a model log under random appends, truncations and purges (in the order a
        /// store issues them), every hit equals the model's entries, and a run just appended
        /// within the bounds is always a hit.
        #[test]
        fn a_hit_always_equals_the_log(ops in proptest::collection::vec((0u8..4, 0u64..12, 1u64..6), 1..60)) {
            let mut tail = Tail::new(8, 40);
            let mut log: std::collections::BTreeMap<u64, u64> = std::collections::BTreeMap::new();
            let mut purged = 0u64;
            for (step, (op, a, b)) in ops.into_iter().enumerate() {
                let term = step as u64 + 1;
                match op {
                    0 | 1 => {
                        let first = log.keys().next_back().map_or(purged + 1, |l| l + 1);
                        let run = entries(first, first + b - 1, term);
                        let sizes = vec![usize::try_from(a).unwrap() + 1; run.len()];
                        for e in &run {
                            log.insert(e.log_id.index, term);
                        }
                        tail.extend(run, &sizes);
                        if sizes.iter().sum::<usize>() <= 40 {
                            proptest::prop_assert!(tail.get(first, b).is_some());
                        }
                    }
                    2 => {
                        let after = purged + a;
                        log.retain(|index, _| *index <= after);
                        tail.truncate_after(Some(after));
                    }
                    _ => {
                        let upto = purged + a.min(3);
                        purged = purged.max(upto);
                        log.retain(|index, _| *index > upto);
                        tail.purge(upto);
                    }
                }
                for start in 0..=purged + 14 {
                    for count in 1..=4 {
                        if let Some(hit) = terms(tail.get(start, count)) {
                            let want: Vec<(u64, u64)> =
                                (start..start + count).map(|i| (i, log[&i])).collect();
                            proptest::prop_assert_eq!(hit, want);
                        }
                    }
                }
            }
        }
    }
}
