//! CometBFT's proposer-priority arithmetic, step by step, with Go's int64 semantics.
//!
//! Each function here is one step of `types/validator_set.go` in CometBFT and reproduces its
//! integer behaviour exactly, including the corner cases no sane input reaches:
//! - `safeAddClip` / `safeSubClip` clip to the int64 bounds: Rust's saturating operations.
//! - The average of `computeAvgProposerPriority` is a `big.Int` sum divided with `big.Int.Div`,
//!   which is *Euclidean* division (for a positive divisor: rounds toward negative infinity),
//!   not Go's truncating `/`. Here: an `i128` sum and `div_euclid`.
//! - `computeMaxMinPriorityDiff` subtracts with int64 wrap-around and negates a negative
//!   result (again wrapping): `wrapping_sub` and `wrapping_neg`.
//! - `RescalePriorities` computes `(diff + diffMax - 1) / diffMax` with wrap-around, then
//!   divides every priority by that ratio with Go's `/`, which truncates toward zero like
//!   Rust's `/` (and `wrapping_div` gives `MinInt64 / -1 == MinInt64` as Go does).
//!
//! All functions work on a slice of [`Member`]s in any order: every result depends only on the
//! multiset of (address, power, priority), because ties are broken by address.

use mempulse_primitives::Address;

use crate::set::Member;

/// CometBFT's `MaxTotalVotingPower`: `MaxInt64 / 8`. Bounding the total power this way keeps
/// `-1.125 × total` (the priority of a new validator) and the rescale ratio in int64 range.
pub const MAX_TOTAL_VOTING_POWER: i64 = i64::MAX / 8;

/// CometBFT's `PriorityWindowSizeFactor`: priorities are rescaled when `max - min` exceeds this
/// factor times the total power.
pub const PRIORITY_WINDOW_SIZE_FACTOR: i64 = 2;

/// `safeAddClip`: `a + b`, clipped to the int64 bounds.
pub(crate) const fn add_clip(a: i64, b: i64) -> i64 {
    a.saturating_add(b)
}

/// `safeSubClip`: `a - b`, clipped to the int64 bounds.
pub(crate) const fn sub_clip(a: i64, b: i64) -> i64 {
    a.saturating_sub(b)
}

/// One pass over the priorities: minimum, maximum and exact sum (`None` when empty).
fn stats(members: &[Member]) -> Option<(i64, i64, i128)> {
    let first = members.first()?.priority;
    let init = (first, first, 0i128);
    Some(members.iter().fold(init, |(min, max, sum), m| {
        (min.min(m.priority), max.max(m.priority), sum + i128::from(m.priority))
    }))
}

/// `computeAvgProposerPriority` from the exact sum: the Euclidean quotient by the count.
fn average_of(sum: i128, len: usize) -> i64 {
    let Ok(n) = i128::try_from(len) else { return 0 };
    if n == 0 {
        return 0;
    }
    let avg = sum.div_euclid(n);
    // The average of int64 values is an int64; the fallback only satisfies the type system.
    i64::try_from(avg).unwrap_or(if avg < 0 { i64::MIN } else { i64::MAX })
}

/// `computeAvgProposerPriority`: the Euclidean quotient of the exact sum by the count.
/// Returns 0 for an empty slice (CometBFT panics; a set here is never empty). The elections
/// use [`rescale_and_centre`], which shares one pass; this is CometBFT's step on its own.
#[cfg(test)]
pub(crate) fn average_priority(members: &[Member]) -> i64 {
    stats(members).map_or(0, |(_, _, sum)| average_of(sum, members.len()))
}

/// `computeMaxMinPriorityDiff` from the extremes: `max - min` with int64 wrap-around, negated
/// when negative.
const fn diff_of(min: i64, max: i64) -> i64 {
    let diff = max.wrapping_sub(min);
    if diff < 0 { diff.wrapping_neg() } else { diff }
}

/// `computeMaxMinPriorityDiff`: `max - min` with int64 wrap-around, negated when negative.
#[cfg(test)]
pub(crate) fn max_min_diff(members: &[Member]) -> i64 {
    stats(members).map_or(0, |(min, max, _)| diff_of(min, max))
}

/// The division of `RescalePriorities` given the extremes; returns whether it divided.
fn rescale_with(members: &mut [Member], diff_max: i64, min: i64, max: i64) -> bool {
    if diff_max <= 0 {
        return false;
    }
    let diff = diff_of(min, max);
    let ratio = diff.wrapping_add(diff_max).wrapping_sub(1) / diff_max;
    // `ratio` is at least 2 whenever `diff > diff_max` for any `diff_max` up to
    // `2 * MAX_TOTAL_VOTING_POWER`; the zero check stands where Go would divide by zero.
    if diff <= diff_max || ratio == 0 {
        return false;
    }
    for m in members {
        m.priority = m.priority.wrapping_div(ratio);
    }
    true
}

/// `RescalePriorities(diffMax)`: when the spread exceeds `diff_max`, divides every priority by
/// `ceil(spread / diff_max)` (truncating toward zero). CometBFT's step on its own, as
/// [`average_priority`].
#[cfg(test)]
pub(crate) fn rescale(members: &mut [Member], diff_max: i64) {
    if let Some((min, max, _)) = stats(members) {
        rescale_with(members, diff_max, min, max);
    }
}

/// `shiftByAvgProposerPriority` given the average (subtracting 0 changes nothing).
fn shift_by(members: &mut [Member], avg: i64) {
    if avg != 0 {
        for m in members {
            m.priority = sub_clip(m.priority, avg);
        }
    }
}

/// Rescale then centre, as `IncrementProposerPriority` starts, with one pass for the extremes
/// and the sum (and a second for the sum only when the rescale divided).
pub(crate) fn rescale_and_centre(members: &mut [Member], diff_max: i64) {
    let Some((min, max, sum)) = stats(members) else { return };
    let sum = if rescale_with(members, diff_max, min, max) {
        stats(members).map_or(0, |(_, _, s)| s)
    } else {
        sum
    };
    shift_by(members, average_of(sum, members.len()));
}

/// `incrementProposerPriority` (one round): every priority grows by its power, the highest
/// priority wins (the smaller address on a tie) and drops by the total power. Returns the
/// winner's index, or `None` for an empty slice.
pub(crate) fn increment_once(members: &mut [Member], total_power: i64) -> Option<usize> {
    let mut best: Option<(usize, i64, &Address)> = None;
    for (i, m) in members.iter_mut().enumerate() {
        m.priority = add_clip(m.priority, m.power);
        let wins = match best {
            None => true,
            Some((_, p, addr)) => {
                m.priority > p || (m.priority == p && m.validator.address < *addr)
            }
        };
        if wins {
            best = Some((i, m.priority, &m.validator.address));
        }
    }
    let (index, _, _) = best?;
    let winner = members.get_mut(index)?;
    winner.priority = sub_clip(winner.priority, total_power);
    Some(index)
}

/// `IncrementProposerPriority(times)`: rescale to the window and centre once, then `times`
/// rounds. Returns the proposer of the last round (`None` for an empty slice or `times == 0`).
pub(crate) fn increment(members: &mut [Member], total_power: i64, times: u32) -> Option<usize> {
    rescale_and_centre(members, PRIORITY_WINDOW_SIZE_FACTOR.saturating_mul(total_power));
    let mut proposer = None;
    for _ in 0..times {
        proposer = increment_once(members, total_power);
    }
    proposer
}

#[cfg(test)]
mod tests {
    use mempulse_primitives::ValidatorId;

    use super::*;
    use crate::Validator;

    /// A member with an arbitrary power (zero included, as CometBFT's own tests use) and priority.
    fn member(name: &[u8], power: i64, priority: i64) -> Member {
        let mut address = [0u8; 20];
        address[..name.len()].copy_from_slice(name);
        let validator = Validator {
            id: ValidatorId(u64::from(name[0])),
            address: Address(address),
            power: u64::try_from(power).unwrap(),
            nodes: Vec::new(),
            streams: Vec::new(),
        };
        Member { validator, power, priority }
    }

    fn priorities(members: &[Member]) -> Vec<i64> {
        members.iter().map(|m| m.priority).collect()
    }

    /// `TestSafeAddClip` and `TestSafeSubClip` in CometBFT's `types/validator_set_test.go`.
    #[test]
    fn clipping_matches_safe_add_and_sub_clip() {
        assert_eq!(add_clip(i64::MAX, 10), i64::MAX);
        assert_eq!(add_clip(i64::MAX, i64::MAX), i64::MAX);
        assert_eq!(add_clip(i64::MIN, -10), i64::MIN);
        assert_eq!(sub_clip(i64::MIN, 10), i64::MIN);
        assert_eq!(sub_clip(i64::MIN, i64::MIN), 0);
        assert_eq!(sub_clip(i64::MIN, i64::MAX), i64::MIN);
        assert_eq!(sub_clip(i64::MAX, -10), i64::MAX);
    }

    /// `TestAvgProposerPriority` in CometBFT's `types/validator_set_test.go`, plus the negative
    /// cases where Euclidean division and truncation differ.
    #[test]
    fn average_is_the_euclidean_quotient() {
        let avg = |ps: &[i64]| {
            let ms: Vec<_> = ps.iter().map(|&p| member(b"a", 0, p)).collect();
            average_priority(&ms)
        };
        assert_eq!(avg(&[0, 0, 0]), 0);
        assert_eq!(avg(&[i64::MAX, 0, 0]), i64::MAX / 3);
        assert_eq!(avg(&[i64::MAX, 0]), i64::MAX / 2);
        assert_eq!(avg(&[i64::MAX, i64::MAX]), i64::MAX);
        assert_eq!(avg(&[i64::MIN, i64::MIN]), i64::MIN);
        // big.Int.Div rounds toward negative infinity for a positive divisor.
        assert_eq!(avg(&[0, -123]), -62);
        assert_eq!(avg(&[2, -2, -13]), -5);
        assert_eq!(avg(&[-1, 0, 0]), -1);
        assert_eq!(avg(&[i64::MIN, i64::MIN, 2]), -6_148_914_691_236_517_205);
    }

    #[test]
    fn max_min_diff_wraps_like_go() {
        let ms = |ps: &[i64]| ps.iter().map(|&p| member(b"a", 0, p)).collect::<Vec<_>>();
        assert_eq!(max_min_diff(&ms(&[5, -7, 2])), 12);
        // MaxInt64 - MinInt64 wraps to -1 in Go; negated: 1.
        assert_eq!(max_min_diff(&ms(&[i64::MAX, i64::MIN])), 1);
        // MaxInt64 - (-2) wraps to MinInt64 + 1; negated: MaxInt64.
        assert_eq!(max_min_diff(&ms(&[i64::MAX, -2])), i64::MAX);
        assert_eq!(max_min_diff(&[]), 0);
    }

    /// The rescaling step of `TestProposerPriorityDoesNotGetResetToZero` in CometBFT's
    /// `state/state_test.go`: priorities -38 and 39 with total power 11 (window 22) divide by
    /// `(77 + 22 - 1) / 22 = 4`, truncating toward zero.
    #[test]
    fn rescale_divides_by_the_rounded_up_ratio() {
        let mut ms = vec![member(b"a", 10, -38), member(b"b", 1, 39)];
        rescale(&mut ms, 22);
        assert_eq!(priorities(&ms), [-9, 9]);
        // Within the window: untouched.
        let mut ms = vec![member(b"a", 10, -11), member(b"b", 1, 11)];
        rescale(&mut ms, 22);
        assert_eq!(priorities(&ms), [-11, 11]);
        // A non-positive window is ignored, as in Go.
        rescale(&mut ms, 0);
        assert_eq!(priorities(&ms), [-11, 11]);
    }

    /// `TestAveragingInIncrementProposerPriority` in CometBFT's `types/validator_set_test.go`:
    /// zero voting power, so only the centring moves the priorities.
    #[test]
    fn averaging_in_increment_proposer_priority() {
        let cases: [([i64; 3], u32, i64); 3] =
            [([1, 2, 3], 1, 2), ([10, -10, 1], 11, 0), ([100, -10, 1], 1, 91 / 3)];
        for (start, times, avg) in cases {
            let mut ms: Vec<_> =
                [b"a", b"b", b"c"].iter().zip(start).map(|(name, p)| member(*name, 0, p)).collect();
            increment(&mut ms, 0, times);
            let want: Vec<i64> = start.iter().map(|p| p - avg).collect();
            assert_eq!(priorities(&ms), want, "start {start:?}, times {times}");
        }
    }

    /// `TestAveragingInIncrementProposerPriorityWithVotingPower` in CometBFT's
    /// `types/validator_set_test.go`: powers 10, 1, 1 from zero priorities, `times` 1 to 11.
    #[test]
    fn averaging_with_voting_power() {
        let (vp0, vp1, vp2) = (10, 1, 1);
        let total = vp0 + vp1 + vp2;
        // (times, expected priorities, expected proposer index)
        let cases: [(u32, [i64; 3], usize); 11] = [
            (1, [vp0 - total, vp1, vp2], 0),
            (2, [2 * (vp0 - total), 2 * vp1, 2 * vp2], 0),
            (3, [3 * (vp0 - total), 3 * vp1, 3 * vp2], 0),
            (4, [4 * (vp0 - total), 4 * vp1, 4 * vp2], 0),
            (5, [4 * (vp0 - total) + vp0, 5 * vp1 - total, 5 * vp2], 1),
            (6, [6 * vp0 - 5 * total, 6 * vp1 - total, 6 * vp2], 0),
            (7, [7 * vp0 - 6 * total, 7 * vp1 - total, 7 * vp2], 0),
            (8, [8 * vp0 - 7 * total, 8 * vp1 - total, 8 * vp2], 0),
            (9, [9 * vp0 - 7 * total, 9 * vp1 - total, 9 * vp2 - total], 2),
            (10, [10 * vp0 - 8 * total, 10 * vp1 - total, 10 * vp2 - total], 0),
            (11, [11 * vp0 - 9 * total, 11 * vp1 - total, 11 * vp2 - total], 0),
        ];
        for (times, want, proposer) in cases {
            let mut ms = vec![member(&[0], vp0, 0), member(&[1], vp1, 0), member(&[2], vp2, 0)];
            let got = increment(&mut ms, total, times);
            assert_eq!(got, Some(proposer), "times {times}");
            assert_eq!(priorities(&ms), want, "times {times}");
        }
    }

    #[test]
    fn ties_go_to_the_smaller_address() {
        let mut ms = vec![member(b"c", 1, 0), member(b"a", 1, 0), member(b"b", 1, 0)];
        assert_eq!(increment_once(&mut ms, 3), Some(1));
        assert_eq!(increment_once(&mut ms, 3), Some(2));
        assert_eq!(increment_once(&mut ms, 3), Some(0));
        assert_eq!(increment_once(&mut [], 3), None);
    }
}
