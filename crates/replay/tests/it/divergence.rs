//! `first_divergence` agrees with a linear scan: on abstract probe sequences of the documented
//! shape, and on two real replays of one generated log, one with a corrupted admission.

use std::convert::Infallible;

use mempulse_primitives::{EventKind, RaftIndex};
use mempulse_replay::{Divergence, Probe, Replayer, first_divergence, test_utils::MixConfig};
use proptest::prelude::*;

use crate::{apply_all, config};

/// Runs the search over `status` (index → probe) and returns the result and the probe count.
fn search(floor: u64, hi: u64, status: &dyn Fn(u64) -> Probe) -> (Divergence, usize) {
    let mut asked = 0;
    let found = first_divergence(RaftIndex(floor), RaftIndex(hi), |i| {
        assert!(i.0 > floor && i.0 <= hi, "probed {i} outside ({floor}, {hi}]");
        asked += 1;
        Ok::<_, Infallible>(status(i.0))
    });
    let Ok(found) = found;
    (found, asked)
}

/// The answer of a linear scan downward from `hi`.
fn linear(floor: u64, hi: u64, status: &dyn Fn(u64) -> Probe) -> Divergence {
    match status(hi) {
        Probe::Match => return Divergence::Agree { through: RaftIndex(hi) },
        Probe::Missing => return Divergence::NotComparable(RaftIndex(hi)),
        Probe::Mismatch => {}
    }
    let mut bad = hi;
    while bad - 1 > floor {
        match status(bad - 1) {
            Probe::Mismatch => bad -= 1,
            Probe::Match => return Divergence::FirstAt(RaftIndex(bad)),
            Probe::Missing => return Divergence::AtOrBefore(RaftIndex(bad)),
        }
    }
    Divergence::FirstAt(RaftIndex(bad))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Missing below `missing_to`, matching below `first_bad`, mismatching from there.
    #[test]
    fn bisection_equals_a_linear_scan(
        floor in 0u64..1_000,
        span in 1u64..100_000,
        missing_per_mille in 0u64..=1000,
        bad_per_mille in 0u64..=1000,
    ) {
        let hi = floor + span;
        let first_bad = floor + 1 + (span * bad_per_mille / 1000).min(span);
        let missing_to = floor + 1 + (first_bad - floor - 1) * missing_per_mille / 1000;
        let status = move |i: u64| {
            if i >= first_bad {
                Probe::Mismatch
            } else if i < missing_to {
                Probe::Missing
            } else {
                Probe::Match
            }
        };
        let (found, asked) = search(floor, hi, &status);
        prop_assert_eq!(found, linear(floor, hi, &status));
        // Doubling down, then halving: about 2·log2(span) probes plus the top one.
        let bound = 2 * (64 - span.leading_zeros() as usize) + 2;
        prop_assert!(asked <= bound, "{} probes for a span of {}", asked, span);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// Two replicas of one log, one with an admitted transaction's hash changed: the search
    /// over their sealed digests finds the corrupted entry's index (or, where the damage later
    /// healed, a mismatch right after a match).
    #[test]
    fn a_corrupted_admission_is_found_at_its_raft_index(
        seed in any::<u64>(),
        len in 300usize..1_500,
        pick_per_mille in 0usize..1000,
    ) {
        let mix = MixConfig { seed, senders: 20, pool_txs_max: 64, ..MixConfig::default() };
        let events = mempulse_replay::test_utils::generate(&mix, len).unwrap();
        let admissions: Vec<usize> = events
            .iter()
            .enumerate()
            .filter(|(_, e)| matches!(e.kind, EventKind::TxAdmitted { .. })
                && e.origin.raft_index().is_some())
            .map(|(i, _)| i)
            .collect();
        prop_assume!(!admissions.is_empty());
        let at = admissions[pick_per_mille * admissions.len() / 1000];
        let bad_index = events[at].origin.raft_index().unwrap();
        let mut corrupted = events.clone();
        if let EventKind::TxAdmitted { tx, .. } = &mut corrupted[at].kind {
            tx.hash.0[0] ^= 0xff;
        }
        let (mut ours, mut theirs) = (Replayer::new(config(0)), Replayer::new(config(0)));
        apply_all(&mut ours, 1, &events);
        apply_all(&mut theirs, 1, &corrupted);
        let hi = ours.digest().raft_index;
        prop_assume!(hi >= bad_index);
        let probe = |i: u64| match (ours.digest_at(RaftIndex(i)), theirs.digest_at(RaftIndex(i))) {
            (Some(a), Some(b)) if a == b => Probe::Match,
            (Some(_), Some(_)) => Probe::Mismatch,
            _ => Probe::Missing,
        };
        let (found, _) = search(0, hi.0, &probe);
        match found {
            Divergence::FirstAt(first) if first == bad_index => {}
            Divergence::FirstAt(first) => {
                // The damage healed (the tx left the pool) and a later one began; still a
                // mismatch right after a match, and never before the corruption.
                prop_assert!(first > bad_index);
                prop_assert_eq!(probe(first.0), Probe::Mismatch);
                prop_assert_eq!(probe(first.0 - 1), Probe::Match);
            }
            Divergence::Agree { .. } => {
                // Healed by the end: the corrupted index itself still differs.
                prop_assert_eq!(probe(bad_index.0), Probe::Mismatch);
            }
            other => prop_assert!(false, "unexpected {:?}", other),
        }
    }
}
