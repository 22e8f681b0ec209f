//! Per-source token buckets, in integer milli-tokens so refills are exact.
//!
//! At most `sources_max` sources are tracked. A new source beyond that evicts the least recently
//! seen one (ties broken by source order): a deterministic choice, made from an ordered index and
//! never from hash-map iteration. An evicted source starts over with a full bucket, which is what
//! it would have after being idle anyway.

use std::collections::{BTreeSet, HashMap};

use mempulse_primitives::UnixMillis;

use super::outcome::SourceId;
use crate::ThrottleConfig;

/// Milli-tokens per transaction.
const MILLI: u64 = 1000;

#[derive(Clone, Copy, Debug)]
struct Bucket {
    milli_tokens: u64,
    /// Last refill time (never moves backwards).
    refilled_ms: u64,
    /// Last sighting, the key in the recency index.
    seen_ms: u64,
}

#[derive(Debug)]
pub(crate) struct Throttle {
    config: ThrottleConfig,
    /// Private lookup index, never iterated.
    buckets: HashMap<SourceId, Bucket>,
    /// `(last seen, source)`, least recent first.
    recency: BTreeSet<(u64, SourceId)>,
}

impl Throttle {
    pub(crate) fn new(config: ThrottleConfig) -> Self {
        Self { config, buckets: HashMap::new(), recency: BTreeSet::new() }
    }

    fn capacity_milli(&self) -> u64 {
        u64::from(self.config.burst.max(1)).saturating_mul(MILLI)
    }

    /// Takes one token for `source` at `now`; `false` means throttled.
    pub(crate) fn take(&mut self, source: SourceId, now: UnixMillis) -> bool {
        if self.config.rate_per_s == 0 {
            return true;
        }
        let now = now.0;
        let capacity = self.capacity_milli();
        let bucket = match self.buckets.get(&source) {
            Some(bucket) => {
                self.recency.remove(&(bucket.seen_ms, source));
                let elapsed = now.saturating_sub(bucket.refilled_ms);
                // r tokens per second is r milli-tokens per millisecond.
                let refill = elapsed.saturating_mul(u64::from(self.config.rate_per_s));
                Bucket {
                    milli_tokens: bucket.milli_tokens.saturating_add(refill).min(capacity),
                    refilled_ms: bucket.refilled_ms.max(now),
                    seen_ms: now,
                }
            }
            None => {
                self.make_room();
                Bucket { milli_tokens: capacity, refilled_ms: now, seen_ms: now }
            }
        };
        let allowed = bucket.milli_tokens >= MILLI;
        let bucket = Bucket {
            milli_tokens: if allowed { bucket.milli_tokens - MILLI } else { bucket.milli_tokens },
            ..bucket
        };
        self.buckets.insert(source, bucket);
        self.recency.insert((bucket.seen_ms, source));
        allowed
    }

    fn make_room(&mut self) {
        while self.buckets.len() >= self.config.sources_max.max(1) {
            match self.recency.pop_first() {
                Some((_, oldest)) => {
                    self.buckets.remove(&oldest);
                }
                None => break,
            }
        }
    }

    /// Sources tracked now.
    pub(crate) fn len(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use mempulse_primitives::NodeId;

    use super::*;

    fn config(rate_per_s: u32, burst: u32, sources_max: usize) -> ThrottleConfig {
        ThrottleConfig { rate_per_s, burst, sources_max }
    }

    fn client(n: u8) -> SourceId {
        SourceId::Client(IpAddr::V4(Ipv4Addr::new(10, 0, 0, n)))
    }

    #[test]
    fn a_burst_then_the_sustained_rate() {
        let mut throttle = Throttle::new(config(10, 3, 8));
        let at = |ms| UnixMillis(ms);
        assert!((0..3).all(|_| throttle.take(client(1), at(1_000))));
        assert!(!throttle.take(client(1), at(1_000)));
        // 10 per second: one token every 100 ms, exactly.
        assert!(!throttle.take(client(1), at(1_099)));
        assert!(throttle.take(client(1), at(1_100)));
        assert!(!throttle.take(client(1), at(1_100)));
        // Long idle refills to the burst, not beyond.
        assert!((0..3).all(|_| throttle.take(client(1), at(60_000))));
        assert!(!throttle.take(client(1), at(60_000)));
        // Another source has its own bucket.
        assert!(throttle.take(SourceId::Peer(NodeId(1)), at(60_000)));
    }

    #[test]
    fn a_clock_stepping_back_refills_nothing() {
        let mut throttle = Throttle::new(config(1000, 1, 8));
        assert!(throttle.take(client(1), UnixMillis(5_000)));
        assert!(!throttle.take(client(1), UnixMillis(1_000)));
        assert!(!throttle.take(client(1), UnixMillis(5_000)));
        assert!(throttle.take(client(1), UnixMillis(5_001)));
    }

    #[test]
    fn rate_zero_turns_the_limit_off() {
        let mut throttle = Throttle::new(config(0, 1, 1));
        assert!((0..100).all(|_| throttle.take(client(1), UnixMillis(0))));
        assert_eq!(throttle.len(), 0);
    }

    #[test]
    fn the_least_recently_seen_source_is_evicted_with_ties_by_order() {
        let mut throttle = Throttle::new(config(1, 1, 2));
        assert!(throttle.take(client(2), UnixMillis(10)));
        assert!(throttle.take(client(1), UnixMillis(10)));
        // Both empty; a third source evicts client(1) (same time, smaller order).
        assert!(throttle.take(client(3), UnixMillis(10)));
        assert_eq!(throttle.len(), 2);
        assert!(!throttle.take(client(2), UnixMillis(20)), "client 2 still tracked, still empty");
        // client(2) was seen last; client(3) is now the least recent and is evicted.
        assert!(throttle.take(client(1), UnixMillis(20)), "client 1 forgotten: full bucket");
        assert!(!throttle.take(client(2), UnixMillis(20)), "client 2 kept");
        assert!(throttle.take(client(3), UnixMillis(20)), "client 3 forgotten: full bucket");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 128, failure_persistence: None, ..Default::default()
        })]

        /// Over any schedule, a source never gets more than its burst plus the rate times the
        /// time elapsed, and after an empty bucket one token's worth of time always suffices.
        #[test]
        fn never_more_than_burst_plus_rate_and_always_refills(
            rate in 1u32..5_000,
            burst in 1u32..50,
            steps in proptest::collection::vec((0u64..3_000, 0usize..20), 1..40),
        ) {
            let mut throttle = Throttle::new(config(rate, burst, 4));
            let mut now = 1_000_000u64;
            let start = now;
            let mut allowed = 0u64;
            for (advance, takes) in steps {
                now += advance;
                for _ in 0..takes {
                    allowed += u64::from(throttle.take(client(1), UnixMillis(now)));
                }
            }
            let bound = u64::from(burst) + u64::from(rate) * (now - start) / 1000;
            proptest::prop_assert!(allowed <= bound, "{allowed} > {bound}");
            while throttle.take(client(1), UnixMillis(now)) {}
            let one_token_ms = 1000u64.div_ceil(u64::from(rate));
            proptest::prop_assert!(throttle.take(client(1), UnixMillis(now + one_token_ms)));
        }
    }
}
