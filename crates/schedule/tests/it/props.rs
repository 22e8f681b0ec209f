//! Property tests: the schedule against the naive reference (differential), CometBFT's
//! fairness bound, the centring and window invariants, and determinism.

use mempulse_primitives::{Address, Height, ValidatorId};
use mempulse_schedule::{Round, Schedule, Tag, Validator, ValidatorSet};
use proptest::prelude::*;

use crate::reference::{self, RefSet};

/// A validator with id `id` and an address that orders validators by `rank` first.
fn validator(id: u64, rank: u8, power: u64) -> Validator {
    let mut address = [0u8; 20];
    address[0] = rank;
    address[12..].copy_from_slice(&id.to_be_bytes());
    Validator::new(ValidatorId(id), Address(address), power)
}

fn arb_genesis(max_n: usize, max_power: u64) -> impl Strategy<Value = Vec<Validator>> {
    prop::collection::vec((any::<u8>(), 1..=max_power), 1..=max_n).prop_map(|v| {
        v.into_iter().zip(1u64..).map(|((rank, power), id)| validator(id, rank, power)).collect()
    })
}

/// An intended change: 0 adds, 1 changes a power, 2 removes; the index picks a member.
type Intent = (u8, usize, u8, u64);

/// Resolves intents against the running membership into valid change sets (no duplicate
/// address in a set, never removing every validator).
fn resolve(
    genesis: &[Validator],
    intents: Vec<(u64, Vec<Intent>)>,
) -> Vec<(Height, Vec<Validator>)> {
    let mut members: Vec<Validator> = genesis.to_vec();
    let mut next_id = 100;
    let mut heights: Vec<u64> = intents.iter().map(|(h, _)| *h).collect();
    heights.sort_unstable();
    heights.dedup();
    let mut out = Vec::new();
    for (height, (_, ops)) in heights.into_iter().zip(intents) {
        let mut set: Vec<Validator> = Vec::new();
        let mut removed = 0;
        for (kind, pick, rank, power) in ops {
            let target = members[pick % members.len()].clone();
            if set.iter().any(|c| c.address == target.address) {
                continue;
            }
            match kind % 3 {
                0 => {
                    next_id += 1;
                    set.push(validator(next_id, rank, power));
                }
                1 => set.push(Validator { power, ..target }),
                _ if removed + 1 < members.len() => {
                    removed += 1;
                    set.push(Validator { power: 0, ..target });
                }
                _ => {}
            }
        }
        for c in &set {
            members.retain(|m| m.address != c.address);
            if c.power > 0 {
                members.push(c.clone());
            }
        }
        out.push((Height(height), set));
    }
    out
}

fn arb_changes() -> impl Strategy<Value = Vec<(u64, Vec<Intent>)>> {
    let op = (any::<u8>(), any::<usize>(), any::<u8>(), 1..=1000u64);
    prop::collection::vec((2..60u64, prop::collection::vec(op, 1..5)), 0..5)
}

fn assert_same_set(got: &ValidatorSet, want: &RefSet, height: u64) {
    assert_eq!(got.proposer(), want.proposer, "proposer at height {height}");
    assert_eq!(got.ids().collect::<Vec<_>>(), want.ids(), "members at height {height}");
    for id in got.ids() {
        assert_eq!(got.priority(id), want.priority(id), "priority of {id} at height {height}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Every height's set (proposer, members, every priority) equals the reference's, across
    /// additions, power changes and removals.
    #[test]
    fn schedule_matches_the_reference(
        genesis in arb_genesis(6, 1000),
        intents in arb_changes(),
    ) {
        let changes = resolve(&genesis, intents);
        let mut schedule = Schedule::genesis(Height(1), &genesis).unwrap();
        for (h, c) in &changes {
            schedule.add_changes(*h, c).unwrap();
        }
        let want = reference::sets(&genesis, &changes, Height(1), 80);
        let mut iter = schedule.proposers(Height(1)).unwrap();
        for (i, r) in (1u64..).zip(&want) {
            let p = iter.next().unwrap();
            prop_assert_eq!(p.height, Height(i));
            assert_same_set(iter.current_set().unwrap(), r, i);
        }
        // Rounds: single increments of the height's set.
        for (h, r) in [(1u64, 3u32), (17, 1), (59, 5)] {
            let mut reference = want[usize::try_from(h - 1).unwrap()].clone();
            for _ in 0..r {
                reference.increment();
            }
            prop_assert_eq!(schedule.proposer_at_round(Height(h), Round(r)).unwrap(), reference.proposer);
        }
    }

    /// Huge powers near `MAX_TOTAL_VOTING_POWER` (where clipping and wide sums matter) agree
    /// with the reference too.
    #[test]
    fn huge_powers_match_the_reference(
        powers in prop::collection::vec(1u64..=(mempulse_schedule::MAX_TOTAL_VOTING_POWER as u64 / 8), 1..=8),
        ranks in prop::collection::vec(any::<u8>(), 8),
    ) {
        let genesis: Vec<Validator> =
            (1u64..).zip(&powers).zip(&ranks).map(|((id, p), r)| validator(id, *r, *p)).collect();
        let schedule = Schedule::genesis(Height(1), &genesis).unwrap();
        let want = reference::sets(&genesis, &[], Height(1), 40);
        let mut iter = schedule.proposers(Height(1)).unwrap();
        for (i, r) in (1u64..).zip(&want) {
            iter.next().unwrap();
            assert_same_set(iter.current_set().unwrap(), r, i);
        }
    }

    /// CometBFT's fairness bound (`TestProposerFrequency` in `state/state_test.go`): over
    /// `total power` consecutive heights, each validator proposes its power's number of times,
    /// within `n - 1`.
    #[test]
    fn proposal_frequency_is_proportional_to_power(genesis in arb_genesis(6, 60)) {
        let schedule = Schedule::genesis(Height(1), &genesis).unwrap();
        let total = schedule.base_set().total_power();
        let mut counts = std::collections::BTreeMap::new();
        for p in schedule.proposers(Height(1)).unwrap().take(usize::try_from(total).unwrap()) {
            *counts.entry(p.proposer).or_insert(0u64) += 1;
        }
        let bound = u64::try_from(genesis.len()).unwrap() - 1;
        for v in &genesis {
            let got = counts.get(&v.id).copied().unwrap_or(0);
            prop_assert!(got.abs_diff(v.power) <= bound, "{} proposed {got} times, power {}", v.id, v.power);
        }
    }

    /// Priorities stay centred (sum in `[0, n)`) at every height and after every change set
    /// within the window (`max - min <= 2 × total`); after one election they move by less than
    /// `2 × total` more (each by its power, the proposer by its power minus the total).
    #[test]
    fn priorities_stay_centred_and_within_the_window(
        genesis in arb_genesis(6, 1000),
        intents in arb_changes(),
    ) {
        let changes = resolve(&genesis, intents);
        let mut set = ValidatorSet::new(&genesis).unwrap();
        for h in 2..80u64 {
            if let Some((_, c)) = changes.iter().find(|(at, _)| at.get() == h) {
                set.update_with_change_set(c).unwrap();
                if !c.is_empty() {
                    let (sum, spread) = sum_and_spread(&set);
                    prop_assert!(sum >= 0 && sum < i128::try_from(set.len()).unwrap(), "sum {sum}");
                    prop_assert!(spread <= 2 * i128::from(set.total_power()), "spread {spread}");
                }
            }
            set.increment_proposer_priority(std::num::NonZeroU32::MIN);
            let (sum, spread) = sum_and_spread(&set);
            prop_assert!(sum >= 0 && sum < i128::try_from(set.len()).unwrap(), "sum {sum} at {h}");
            prop_assert!(spread < 4 * i128::from(set.total_power()), "spread {spread} at {h}");
        }
    }

    /// The same file in any order gives the same answers, whichever way they are asked:
    /// iterator, point query, a moved base, tags.
    #[test]
    fn answers_are_deterministic_and_consistent(
        genesis in arb_genesis(6, 100),
        intents in arb_changes(),
        rotate in 0usize..6,
    ) {
        let changes = resolve(&genesis, intents);
        let build = |vals: &[Validator]| {
            let mut s = Schedule::genesis(Height(10), vals).unwrap();
            for (h, c) in &changes {
                let mut c = c.clone();
                c.reverse();
                s.add_changes(Height(h.get() + 9), &c).unwrap();
            }
            s
        };
        let schedule = build(&genesis);
        let mut rotated = genesis.clone();
        rotated.rotate_left(rotate % genesis.len());
        let other = build(&rotated);
        let a: Vec<_> = schedule.proposers(Height(10)).unwrap().take(70).collect();
        let b: Vec<_> = other.proposers(Height(10)).unwrap().take(70).collect();
        prop_assert_eq!(&a, &b);
        for p in a.iter().step_by(7) {
            prop_assert_eq!(schedule.proposer(p.height).unwrap(), p.proposer);
        }
        let mut moved = schedule.clone();
        moved.advance_base(Height(40)).unwrap();
        let c: Vec<_> = moved.proposers(Height(40)).unwrap().take(40).collect();
        prop_assert_eq!(&a[30..], &c[..]);
        let tags: Vec<_> = schedule.tags(Height(10)).unwrap().take(68).collect();
        prop_assert_eq!(&tags, &other.tags(Height(10)).unwrap().take(68).collect::<Vec<_>>());
        for (i, t) in tags.iter().enumerate() {
            prop_assert_eq!(t.height, a[i].height);
            prop_assert_eq!(t.proposer, a[i].proposer);
            prop_assert!(t.tags_of(a[i].proposer).contains(Tag::Proposer));
            prop_assert!(t.tags_of(a[i + 1].proposer).contains(Tag::ProposerNext));
            prop_assert!(t.tags_of(a[i + 2].proposer).contains(Tag::ProposerSoon));
            let tagged: usize = t.tags.values().map(|x| x.iter().count()).sum();
            prop_assert_eq!(tagged, 3);
            let set = schedule.set_at(t.height).unwrap();
            prop_assert!(set.ids().all(|id| t.tags.contains_key(&id)));
        }
    }
}

fn sum_and_spread(set: &ValidatorSet) -> (i128, i128) {
    let prios: Vec<i128> = set.iter().map(|(_, p)| i128::from(p)).collect();
    let sum = prios.iter().sum();
    let spread = prios.iter().max().unwrap() - prios.iter().min().unwrap();
    (sum, spread)
}
