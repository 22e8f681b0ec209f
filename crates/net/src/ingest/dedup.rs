//! The dedup cache: which transaction hashes ingest has seen, and when and from whom first.
//!
//! An entry is **in flight** from the submit that first carried the hash until the pool's
//! verdict, and **settled** after it. In-flight entries are bounded by the pipeline itself (lane
//! capacities plus batches in flight) and never evicted, so one batch never carries a hash
//! twice. Settled entries are bounded by the capacity and evicted oldest-settled first: a
//! deterministic order that does not depend on hash-map iteration.
//!
//! A verdict that leaves the transaction out of the pool (a rejection other than `duplicate` or
//! `already_committed`, an invalid transaction, a failed batch, a drop after the dedup check)
//! forgets the hash, so the same bytes may be submitted again and are decoded and offered anew.

use std::collections::{BTreeMap, HashMap};

use mempulse_primitives::TxHash;

use super::outcome::FirstSeen;

#[derive(Clone, Copy, Debug)]
enum State {
    InFlight,
    /// Settled, with its position in the eviction order.
    Settled(u64),
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    first: FirstSeen,
    state: State,
}

/// What [`DedupCache::observe`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sighting {
    /// Not known: now in flight with this sighting as its first.
    New,
    /// Known (in flight or settled) since this first sighting.
    Duplicate(FirstSeen),
}

#[derive(Debug)]
pub(crate) struct DedupCache {
    capacity: usize,
    /// Private lookup index, never iterated.
    entries: HashMap<TxHash, Entry>,
    /// Settled hashes by settle order, oldest first.
    settled: BTreeMap<u64, TxHash>,
    next_order: u64,
}

impl DedupCache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            entries: HashMap::new(),
            settled: BTreeMap::new(),
            next_order: 0,
        }
    }

    /// Records a sighting: a new hash goes in flight, a known one is a duplicate.
    pub(crate) fn observe(&mut self, hash: TxHash, sighting: FirstSeen) -> Sighting {
        match self.entries.get(&hash) {
            Some(entry) => Sighting::Duplicate(entry.first),
            None => {
                self.entries.insert(hash, Entry { first: sighting, state: State::InFlight });
                Sighting::New
            }
        }
    }

    /// Forgets the hash, in flight or settled.
    pub(crate) fn forget(&mut self, hash: &TxHash) {
        if let Some(Entry { state: State::Settled(order), .. }) = self.entries.remove(hash) {
            self.settled.remove(&order);
        }
    }

    /// Moves an in-flight hash to the settled entries, evicting the oldest beyond capacity.
    pub(crate) fn settle(&mut self, hash: &TxHash) {
        let Some(entry) = self.entries.get_mut(hash) else {
            return;
        };
        if let State::Settled(_) = entry.state {
            return;
        }
        let order = self.next_order;
        self.next_order = self.next_order.saturating_add(1);
        entry.state = State::Settled(order);
        self.settled.insert(order, *hash);
        while self.settled.len() > self.capacity {
            match self.settled.pop_first() {
                Some((_, oldest)) => {
                    self.entries.remove(&oldest);
                }
                None => break,
            }
        }
    }

    /// The first sighting of `hash`, while the cache remembers it.
    pub(crate) fn first_seen(&self, hash: &TxHash) -> Option<FirstSeen> {
        self.entries.get(hash).map(|entry| entry.first)
    }

    /// Settled entries (bounded by the capacity).
    pub(crate) fn settled_len(&self) -> usize {
        self.settled.len()
    }

    /// Entries in flight.
    #[cfg(test)]
    pub(crate) fn in_flight_len(&self) -> usize {
        self.entries.len() - self.settled.len()
    }
}

#[cfg(test)]
mod tests {
    use mempulse_primitives::{Lane, UnixMillis};

    use super::*;
    use crate::SourceId;

    fn seen(at: u64) -> FirstSeen {
        FirstSeen { at: UnixMillis(at), source: SourceId::Local, lane: Lane::Rpc }
    }

    fn hash(n: u8) -> TxHash {
        TxHash([n; 32])
    }

    #[test]
    fn second_sighting_is_a_duplicate_of_the_first() {
        let mut cache = DedupCache::new(4);
        assert_eq!(cache.observe(hash(1), seen(10)), Sighting::New);
        assert_eq!(cache.observe(hash(1), seen(20)), Sighting::Duplicate(seen(10)));
        cache.settle(&hash(1));
        assert_eq!(cache.observe(hash(1), seen(30)), Sighting::Duplicate(seen(10)));
        assert_eq!(cache.first_seen(&hash(1)), Some(seen(10)));
    }

    #[test]
    fn forgotten_hashes_are_new_again() {
        let mut cache = DedupCache::new(4);
        cache.observe(hash(1), seen(10));
        cache.forget(&hash(1));
        assert_eq!(cache.observe(hash(1), seen(20)), Sighting::New);
        cache.settle(&hash(1));
        cache.forget(&hash(1));
        assert_eq!(cache.settled_len(), 0);
        assert_eq!(cache.observe(hash(1), seen(30)), Sighting::New);
        assert_eq!(cache.first_seen(&hash(1)), Some(seen(30)));
    }

    #[test]
    fn settled_entries_are_evicted_oldest_settled_first_and_in_flight_never() {
        let mut cache = DedupCache::new(2);
        for n in 1..=5 {
            cache.observe(hash(n), seen(u64::from(n)));
        }
        // Settle in an order different from the sighting order.
        for n in [3, 1, 2] {
            cache.settle(&hash(n));
        }
        assert_eq!(cache.settled_len(), 2);
        assert_eq!(cache.in_flight_len(), 2);
        assert_eq!(cache.first_seen(&hash(3)), None, "settled first, evicted first");
        assert!(cache.first_seen(&hash(1)).is_some() && cache.first_seen(&hash(2)).is_some());
        assert!(cache.first_seen(&hash(4)).is_some() && cache.first_seen(&hash(5)).is_some());
        // Settling twice changes nothing.
        cache.settle(&hash(1));
        assert_eq!(cache.settled_len(), 2);
        cache.settle(&hash(9));
        assert_eq!(cache.settled_len(), 2);
    }

    #[derive(Clone, Copy, Debug)]
    enum Op {
        Observe(u8),
        Settle(u8),
        Forget(u8),
    }

    fn arb_op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            (0u8..12).prop_map(Op::Observe),
            (0u8..12).prop_map(Op::Settle),
            (0u8..12).prop_map(Op::Forget),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 256, failure_persistence: None, ..Default::default()
        })]

        /// Against a naive model (a list of in-flight hashes and a settle-ordered list):
        /// the same sightings, the same first-seen answers, the same evictions.
        #[test]
        fn behaves_like_the_naive_model(
            capacity in 1usize..5,
            ops in proptest::collection::vec(arb_op(), 0..80),
        ) {
            let mut cache = DedupCache::new(capacity);
            let mut in_flight: Vec<(u8, u64)> = Vec::new();
            let mut settled: Vec<(u8, u64)> = Vec::new();
            for (t, op) in ops.into_iter().enumerate() {
                let t = t as u64;
                match op {
                    Op::Observe(n) => {
                        let known = in_flight.iter().chain(&settled).find(|(h, _)| *h == n);
                        let want = match known {
                            Some((_, at)) => Sighting::Duplicate(seen(*at)),
                            None => {
                                in_flight.push((n, t));
                                Sighting::New
                            }
                        };
                        proptest::prop_assert_eq!(cache.observe(hash(n), seen(t)), want);
                    }
                    Op::Settle(n) => {
                        cache.settle(&hash(n));
                        if let Some(i) = in_flight.iter().position(|(h, _)| *h == n) {
                            settled.push(in_flight.remove(i));
                            if settled.len() > capacity {
                                settled.remove(0);
                            }
                        }
                    }
                    Op::Forget(n) => {
                        cache.forget(&hash(n));
                        in_flight.retain(|(h, _)| *h != n);
                        settled.retain(|(h, _)| *h != n);
                    }
                }
                proptest::prop_assert_eq!(cache.settled_len(), settled.len());
                proptest::prop_assert_eq!(cache.in_flight_len(), in_flight.len());
            }
            for n in 0..12 {
                let want = in_flight.iter().chain(&settled).find(|(h, _)| *h == n);
                proptest::prop_assert_eq!(cache.first_seen(&hash(n)), want.map(|(_, at)| seen(*at)));
            }
        }
    }
}
