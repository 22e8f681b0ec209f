//! CometBFT's documented behaviour of validator set changes and round increments, case by
//! case; each test names the CometBFT test or specification section it comes from.

use std::num::NonZeroU32;

use mempulse_primitives::{Height, ValidatorId};
use mempulse_schedule::{Error, MAX_TOTAL_VOTING_POWER, Schedule, Validator, ValidatorSet};

use crate::{id_of, named, named_address};

/// (name, power) pairs as CometBFT's tests write them.
type Vals<'a> = Vec<(&'a str, u64)>;

const MAX: u64 = MAX_TOTAL_VOTING_POWER as u64;

fn set_of(vals: &[(&str, u64)]) -> ValidatorSet {
    let list: Vec<Validator> = vals.iter().map(|(n, p)| named(n, *p)).collect();
    ValidatorSet::new(&list).unwrap()
}

fn changes(vals: &[(&str, u64)]) -> Vec<Validator> {
    vals.iter().map(|(n, p)| named(n, *p)).collect()
}

/// (name, power) sorted by name: the membership, whatever order the set keeps.
fn members(set: &ValidatorSet) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = set
        .iter()
        .map(|(v, _)| {
            let name = v.address.0.iter().take_while(|b| **b != 0).map(|b| char::from(*b));
            (name.collect(), v.power)
        })
        .collect();
    out.sort();
    out
}

fn sorted(vals: &[(&str, u64)]) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = vals.iter().map(|(n, p)| ((*n).to_owned(), *p)).collect();
    out.sort();
    out
}

/// `verifyValidatorSet` of CometBFT's `types/validator_set_test.go`: centred (sum in
/// `(-n, n)`) and scaled (spread at most `2 × total power`).
fn assert_centred_and_scaled(set: &ValidatorSet) {
    let n = i128::try_from(set.len()).unwrap();
    let sum: i128 = set.iter().map(|(_, p)| i128::from(p)).sum();
    assert!(sum > -n && sum < n, "sum {sum} not in (-{n}, {n})");
    let max = set.iter().map(|(_, p)| p).max().unwrap();
    let min = set.iter().map(|(_, p)| p).min().unwrap();
    assert!(i128::from(max) - i128::from(min) <= 2 * i128::from(set.total_power()));
}

fn vs(n: usize, power: u64) -> Vec<(String, u64)> {
    (1..=n).map(|i| (format!("v{i}"), power)).collect()
}

fn refs(v: &[(String, u64)]) -> Vec<(&str, u64)> {
    v.iter().map(|(n, p)| (n.as_str(), *p)).collect()
}

/// `TestValSetUpdatesBasicTestsExecute`.
#[test]
fn basic_updates() {
    let cases: [(Vals<'_>, Vals<'_>, Vals<'_>); 6] = [
        (vec![("v1", 10), ("v2", 10)], vec![], vec![("v1", 10), ("v2", 10)]),
        (vec![("v1", 10), ("v2", 10)], vec![("v2", 22), ("v1", 11)], vec![("v2", 22), ("v1", 11)]),
        (
            vec![("v2", 20), ("v1", 10)],
            vec![("v4", 40), ("v3", 30)],
            vec![("v4", 40), ("v3", 30), ("v2", 20), ("v1", 10)],
        ),
        (vec![("v3", 20), ("v1", 10)], vec![("v2", 30)], vec![("v2", 30), ("v3", 20), ("v1", 10)]),
        (vec![("v3", 20), ("v2", 10)], vec![("v1", 30)], vec![("v1", 30), ("v3", 20), ("v2", 10)]),
        (vec![("v3", 30), ("v2", 20), ("v1", 10)], vec![("v2", 0)], vec![("v3", 30), ("v1", 10)]),
    ];
    for (i, (start, update, want)) in cases.into_iter().enumerate() {
        let mut set = set_of(&start);
        set.update_with_change_set(&changes(&update)).unwrap();
        assert_eq!(members(&set), sorted(&want), "case {i}");
        assert_centred_and_scaled(&set);
    }
}

/// `TestValSetUpdatesDuplicateEntries`, `TestValSetUpdatesOverflows`,
/// `TestValSetUpdatesOtherErrors` and `TestUpdatesForNewValidatorSet`: refused, set unchanged.
#[test]
fn refused_updates_leave_the_set_unchanged() {
    let two = vs(2, 10);
    let cases: Vec<(Vec<(String, u64)>, Vals<'_>)> = vec![
        (two.clone(), vec![("v1", 11), ("v1", 22)]),
        (two.clone(), vec![("v2", 11), ("v2", 22)]),
        (two.clone(), vec![("v1", 11), ("v2", 22), ("v1", 12)]),
        (vs(3, 10), vec![("v1", 11), ("v3", 22), ("v1", 12)]),
        (two.clone(), vec![("v1", 0), ("v1", 0)]),
        (two.clone(), vec![("v1", 0), ("v2", 0), ("v1", 0)]),
        (two.clone(), vec![("v1", 0), ("v2", 20), ("v1", 30)]),
        (two.clone(), vec![("v1", u64::try_from(i64::MAX).unwrap())]),
        (vs(1, MAX), vec![("v2", u64::try_from(i64::MAX).unwrap())]),
        (vs(1, MAX - 1), vec![("v2", 5)]),
        (vs(2, MAX / 3), vec![("v3", MAX / 2)]),
        (vs(1, MAX), vec![("v2", MAX)]),
        (two.clone(), vec![("v3", 0)]),
        (
            vec![("v1".into(), 10), ("v2".into(), 20), ("v3".into(), 30)],
            vec![("v1", 0), ("v2", 0), ("v3", 0)],
        ),
    ];
    for (i, (start, update)) in cases.iter().enumerate() {
        let mut set = set_of(&refs(start));
        let before = set.clone();
        assert!(set.update_with_change_set(&changes(update)).is_err(), "case {i}");
        assert_eq!(set, before, "case {i}");
    }
    let mut set = set_of(&refs(&two));
    let err = |set: &mut ValidatorSet, c: &[(&str, u64)]| set.update_with_change_set(&changes(c));
    assert_eq!(
        err(&mut set, &[("v2", 1), ("v2", 2)]),
        Err(Error::DuplicateAddress { address: named_address("v2") })
    );
    assert_eq!(
        err(&mut set, &[("v3", 0)]),
        Err(Error::UnknownValidator { address: named_address("v3") })
    );
    assert_eq!(err(&mut set, &[("v1", 0), ("v2", 0)]), Err(Error::EmptySet));
    assert_eq!(
        err(&mut set, &[("v1", MAX + 1)]),
        Err(Error::PowerTooLarge { id: id_of("v1"), power: MAX + 1 })
    );
    assert!(matches!(err(&mut set, &[("v3", MAX)]), Err(Error::TotalPowerTooLarge { .. })));
    // New sets: duplicates, zero power and an empty list are refused too.
    assert!(ValidatorSet::new(&changes(&[("v1", 100), ("v1", 123)])).is_err());
    assert_eq!(
        ValidatorSet::new(&changes(&[("v1", 0), ("v2", 22)])),
        Err(Error::ZeroPower { id: id_of("v1") })
    );
    assert_eq!(ValidatorSet::new(&[]), Err(Error::EmptySet));
}

/// `TestValSetUpdatesOrderIndependenceTestsExecute`: every order of a change set gives the
/// same set (here: all rotations and the reversal).
#[test]
fn update_order_does_not_matter() {
    let cases: [(Vals<'_>, Vals<'_>); 4] = [
        (
            vec![("v4", 40), ("v3", 30), ("v2", 10), ("v1", 10)],
            vec![("v4", 44), ("v3", 33), ("v2", 22), ("v1", 11)],
        ),
        (vec![("v2", 20), ("v1", 10)], vec![("v3", 30), ("v4", 40), ("v5", 50), ("v6", 60)]),
        (
            vec![("v4", 40), ("v3", 30), ("v2", 20), ("v1", 10)],
            vec![("v1", 0), ("v3", 0), ("v4", 0)],
        ),
        (
            vec![("v4", 40), ("v3", 30), ("v2", 20), ("v1", 10)],
            vec![("v1", 0), ("v3", 0), ("v2", 22), ("v5", 50), ("v4", 44)],
        ),
    ];
    for (start, update) in cases {
        let mut base = set_of(&start);
        base.increment_proposer_priority(NonZeroU32::new(3).unwrap());
        let mut want = base.clone();
        want.update_with_change_set(&changes(&update)).unwrap();
        assert_centred_and_scaled(&want);
        let mut orders: Vec<Vec<(&str, u64)>> = (0..update.len())
            .map(|r| {
                let mut u = update.clone();
                u.rotate_left(r);
                u
            })
            .collect();
        orders.push(update.iter().rev().copied().collect());
        for order in orders {
            let mut got = base.clone();
            got.update_with_change_set(&changes(&order)).unwrap();
            assert_eq!(got, want, "order {order:?}");
        }
    }
}

/// `TestValSetUpdatePriorityOrderTests` (the three explicit cases): after elections and a
/// change set, the added validators have the lowest priority, all the same.
#[test]
fn added_validators_start_last_and_equal() {
    let cases: [(Vals<'_>, Vals<'_>, Vec<&str>); 3] = [
        (vec![("v3", 1000), ("v1", 1), ("v2", 1)], vec![("v3", 0)], vec![]),
        (vec![("v3", 1000), ("v2", 10), ("v1", 1)], vec![("v3", 0)], vec![]),
        (
            vec![("v3", 1000), ("v2", 2), ("v1", 1)],
            vec![("v5", 50), ("v4", 40), ("v2", 1), ("v3", 0)],
            vec!["v5", "v4"],
        ),
    ];
    for (start, update, added) in cases {
        for elections in [1, 7, 4999] {
            let mut set = set_of(&start);
            set.increment_proposer_priority(NonZeroU32::new(elections).unwrap());
            set.update_with_change_set(&changes(&update)).unwrap();
            assert_centred_and_scaled(&set);
            let added_prio: Vec<i64> =
                added.iter().map(|n| set.priority(id_of(n)).unwrap()).collect();
            if let Some(first) = added_prio.first() {
                assert!(added_prio.iter().all(|p| p == first));
                for (v, p) in set.iter() {
                    if !added.iter().any(|n| id_of(n) == v.id) {
                        assert!(p > *first, "an old validator is below the added ones");
                    }
                }
            }
        }
    }
}

/// `TestValSetUpdateOverflowRelated`: no false overflow for updates applied in order of their
/// power change, and a refused overflow leaves the set as it was.
#[test]
fn overflow_related_updates() {
    let ok_cases: [(Vals<'_>, Vals<'_>, Vals<'_>); 4] = [
        (
            vec![("v2", MAX - 1), ("v1", 1)],
            vec![("v1", MAX - 1), ("v2", 1)],
            vec![("v1", MAX - 1), ("v2", 1)],
        ),
        (
            vec![("v2", MAX - 1), ("v1", 1)],
            vec![("v1", MAX / 2 - 1), ("v2", MAX / 2)],
            vec![("v2", MAX / 2), ("v1", MAX / 2 - 1)],
        ),
        (
            vec![("v1", MAX - 2), ("v2", 1), ("v3", 1)],
            vec![("v4", MAX - 2), ("v1", 0)],
            vec![("v4", MAX - 2), ("v2", 1), ("v3", 1)],
        ),
        (
            vec![("v1", MAX / 4), ("v2", MAX / 4), ("v3", MAX / 4), ("v4", MAX / 4)],
            vec![("v5", 3), ("v1", MAX / 2 - 2), ("v3", MAX / 2 - 3), ("v4", 2), ("v2", 0)],
            vec![("v1", MAX / 2 - 2), ("v3", MAX / 2 - 3), ("v5", 3), ("v4", 2)],
        ),
    ];
    for (i, (start, update, want)) in ok_cases.into_iter().enumerate() {
        let mut set = set_of(&start);
        assert_centred_and_scaled(&set);
        set.update_with_change_set(&changes(&update)).unwrap();
        assert_eq!(members(&set), sorted(&want), "case {i}");
        assert_centred_and_scaled(&set);
    }
    let start = vs(9, 1);
    let mut set = set_of(&refs(&start));
    let mut update: Vec<(String, u64)> = (1..=8).map(|i| (format!("v{i}"), MAX)).collect();
    update.push(("v9".into(), 8));
    let before = set.clone();
    assert!(matches!(
        set.update_with_change_set(&changes(&refs(&update))),
        Err(Error::TotalPowerTooLarge { .. })
    ));
    assert_eq!(set, before);
}

/// `TestProposerSelection3`: with equal powers the proposers cycle in address order forever,
/// even when some increments run several rounds at once (`times` from a fixed sequence here,
/// random there).
#[test]
fn equal_powers_cycle_with_multi_round_increments() {
    let names = [
        "avalidator_address12",
        "bvalidator_address12",
        "cvalidator_address12",
        "dvalidator_address12",
    ];
    let mut set = set_of(&names.map(|n| (n, 1)));
    let order: Vec<ValidatorId> = names.iter().map(|n| id_of(n)).collect();
    let mut elected: u64 = 0;
    let mut x: u64 = 12_345;
    for i in 0..10_000 {
        let want = order[usize::try_from(elected % 4).unwrap()];
        assert_eq!(set.proposer(), want, "iteration {i}");
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let times = if (x >> 60) < 10 { 1 } else { u32::try_from((x >> 33) % 4).unwrap() + 1 };
        set.increment_proposer_priority(NonZeroU32::new(times).unwrap());
        elected += u64::from(times);
    }
}

/// `TestProposerPriorityDoesNotGetResetToZero` (`state/state_test.go`): a validator added at
/// height 3 and a power change at height 4, priorities checked step by step, including the
/// rescale by `(77 + 22 - 1) / 22 = 4` and the Euclidean average `(0 - 123) / 2 = -62`.
#[test]
fn priorities_survive_additions_and_power_changes() {
    let (a, b) = (named("val1", 10), named("val2", 100));
    let mut schedule = Schedule::genesis(Height(1), std::slice::from_ref(&a)).unwrap();
    schedule.add_changes(Height(3), std::slice::from_ref(&b)).unwrap();
    schedule.add_changes(Height(4), &[Validator { power: 1, ..b.clone() }]).unwrap();
    let at = |h| schedule.set_at(Height(h)).unwrap();
    assert_eq!(at(2).priority(a.id), Some(0));
    // Added at -(110 + 13) = -123; centred by -62: 62, -61; +power: 72, 39; val1 proposes: -38.
    assert_eq!((at(3).priority(a.id), at(3).priority(b.id)), (Some(-38), Some(39)));
    assert_eq!(at(3).proposer(), a.id);
    // Power 1: spread 77 > 22, divided by 4: -9, 9; +power: 1, 10; val2 proposes: -1.
    assert_eq!((at(4).priority(a.id), at(4).priority(b.id)), (Some(1), Some(-1)));
    assert_eq!(at(4).proposer(), b.id);
}

/// `TestProposerPriorityProposerAlternates` (`state/state_test.go`): two validators of equal
/// power, the second added at height 3, alternate from then on with cyclic priorities.
#[test]
fn equal_validators_alternate_after_an_addition() {
    let (a, b) = (named("val1", 10), named("val2", 10));
    let mut schedule = Schedule::genesis(Height(1), std::slice::from_ref(&a)).unwrap();
    schedule.add_changes(Height(3), std::slice::from_ref(&b)).unwrap();
    let prios = |set: &ValidatorSet| (set.priority(a.id).unwrap(), set.priority(b.id).unwrap());
    let at3 = schedule.set_at(Height(3)).unwrap();
    assert_eq!((at3.proposer(), prios(&at3)), (a.id, (1, -1)));
    let at4 = schedule.set_at(Height(4)).unwrap();
    assert_eq!((at4.proposer(), prios(&at4)), (a.id, (-9, 9)));
    let mut iter = schedule.proposers(Height(5)).unwrap();
    for h in 5..1005u64 {
        let p = iter.next().unwrap();
        let set = iter.current_set().unwrap();
        if h % 2 == 1 {
            assert_eq!((p.proposer, prios(set)), (b.id, (1, -1)), "height {h}");
        } else {
            assert_eq!((p.proposer, prios(set)), (a.id, (-9, 9)), "height {h}");
        }
    }
}

/// `spec/consensus/proposer-selection.md`, "Validator Removal": p1 (1), p2 (2), p3 (3) at
/// priorities 1, 2, -3; p2 leaves; centring by -1, then p1 proposes and ends at -1, p3 at 1.
#[test]
fn spec_validator_removal() {
    let (p1, p2, p3) = (named("p1", 1), named("p2", 2), named("p3", 3));
    let mut set =
        ValidatorSet::with_priorities(vec![(p1.clone(), 1), (p2.clone(), 2), (p3.clone(), -3)])
            .unwrap();
    set.update_with_change_set(&[Validator { power: 0, ..p2 }]).unwrap();
    assert_eq!((set.priority(p1.id), set.priority(p3.id)), (Some(2), Some(-2)));
    assert_eq!(set.increment_proposer_priority(NonZeroU32::MIN), p1.id);
    assert_eq!((set.priority(p1.id), set.priority(p3.id)), (Some(-1), Some(1)));
}

/// `spec/consensus/proposer-selection.md`, "New Validator": p3 (8) joins p1 (1, priority 2)
/// and p2 (3, priority -2) at `-(12 + 12 >> 3) = -13`. The spec's table centres with an average
/// of -4; CometBFT's code divides with `big.Int.Div` (Euclidean): -13 / 3 = -5. This follows
/// the code: 7, 3, -8; +power: 8, 6, 0; p1 proposes and ends at -4. (The proposer is p1 either
/// way.)
#[test]
fn spec_new_validator_follows_the_code() {
    let (p1, p2, p3) = (named("p1", 1), named("p2", 3), named("p3", 8));
    let mut set = ValidatorSet::with_priorities(vec![(p1.clone(), 2), (p2.clone(), -2)]).unwrap();
    set.update_with_change_set(std::slice::from_ref(&p3)).unwrap();
    let prios = |s: &ValidatorSet| [p1.id, p2.id, p3.id].map(|id| s.priority(id).unwrap());
    assert_eq!(prios(&set), [7, 3, -8]);
    assert_eq!(set.increment_proposer_priority(NonZeroU32::MIN), p1.id);
    assert_eq!(prios(&set), [-4, 6, 0]);
}

/// `spec/consensus/proposer-selection.md`, "Proposer Priority Range": a late small validator
/// must not wait thousands of heights after a large one leaves; rescaling keeps the spread
/// within `2 × total power`.
#[test]
fn spec_priority_range_is_rescaled() {
    let (p1, p2, p3) = (named("p1", 80_000), named("p2", 10), named("p3", 10));
    let mut schedule = Schedule::genesis(Height(1), std::slice::from_ref(&p1)).unwrap();
    schedule.add_changes(Height(2), std::slice::from_ref(&p2)).unwrap();
    schedule.add_changes(Height(3), std::slice::from_ref(&p3)).unwrap();
    schedule.add_changes(Height(4), &[Validator { power: 0, ..p1.clone() }]).unwrap();
    // p2 joins at -(80010 + 10001) = -90011; centred by -45006: 45006, -45005; p1 proposes.
    let at2 = schedule.set_at(Height(2)).unwrap();
    assert_eq!((at2.priority(p1.id), at2.priority(p2.id)), (Some(44_996), Some(-44_995)));
    let at4 = schedule.set_at(Height(4)).unwrap();
    let spread =
        at4.iter().map(|(_, p)| p).max().unwrap() - at4.iter().map(|(_, p)| p).min().unwrap();
    assert!(spread <= 40, "spread {spread} after p1 left (total power 20)");
    // Without rescaling p3 would wait about 4 500 heights; here both propose within 4.
    let next: Vec<ValidatorId> =
        schedule.proposers(Height(4)).unwrap().take(4).map(|p| p.proposer).collect();
    assert!(next.contains(&p2.id) && next.contains(&p3.id), "{next:?}");
}

/// `TestLargeGenesisValidator`-style: one validator alone keeps priority 0 height after
/// height.
#[test]
fn a_lone_validator_keeps_priority_zero() {
    let big = named("genesis", MAX / 1000);
    let schedule = Schedule::genesis(Height(1), std::slice::from_ref(&big)).unwrap();
    let mut iter = schedule.proposers(Height(1)).unwrap();
    for _ in 0..10 {
        assert_eq!(iter.next().unwrap().proposer, big.id);
        assert_eq!(iter.current_set().unwrap().priority(big.id), Some(0));
    }
}
