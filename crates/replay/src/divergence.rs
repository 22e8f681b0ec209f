//! Finding the first Raft index at which two replicas' state digests differ, by bisection over
//! a comparison the caller supplies (in memory, over a peer's HTTP API, against checkpoints).
//!
//! Pure: the search reads nothing but its probe, so it is property-tested against a linear
//! scan (`tests/it/divergence.rs`).

use mempulse_primitives::RaftIndex;

/// The outcome of comparing the two replicas' digests through one Raft index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// Both sides hold a digest through the index and the digests are equal.
    Match,
    /// Both sides hold a digest through the index and the digests differ.
    Mismatch,
    /// One side (or both) no longer holds a digest through the index (older than its
    /// retained digests).
    Missing,
}

/// Where two replicas' digests part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Divergence {
    /// The digests agree through `through` (the upper bound searched).
    Agree {
        /// The index compared.
        through: RaftIndex,
    },
    /// The digests agree through `first − 1` and differ through `first`: `first` is the
    /// first divergent index.
    FirstAt(RaftIndex),
    /// The digests differ through the oldest index both sides still hold, `oldest`: the first
    /// divergent index is `oldest` or an earlier one no longer comparable.
    AtOrBefore(RaftIndex),
    /// The upper bound itself cannot be compared (a side does not hold it).
    NotComparable(RaftIndex),
}

/// Finds the first index in `(floor, hi]` at which two replicas' digests differ, asking
/// `probe` for O(log(hi − floor)) indexes: first downward by doubling steps from `hi` to a
/// matching (or no longer held) index, then by halving the interval.
///
/// `floor` is an index the sides agree through by construction (`RaftIndex(0)`: the empty
/// state, the same on every replica of one rule version); it is never probed.
///
/// The search assumes the probe results, read upward from `floor`, are some `Missing`, then
/// some `Match`, then some `Mismatch`: digests are retained for a suffix of indexes, and a
/// divergence persists once it has happened. The running commitment could in principle heal
/// (a corrupted entry later removed from the pool); the search then reports the boundary it
/// finds, which is still a true first mismatch after a match.
///
/// # Errors
/// The first error of `probe`, which ends the search.
pub fn first_divergence<E>(
    floor: RaftIndex,
    hi: RaftIndex,
    mut probe: impl FnMut(RaftIndex) -> Result<Probe, E>,
) -> Result<Divergence, E> {
    match probe(hi)? {
        Probe::Match => return Ok(Divergence::Agree { through: hi }),
        Probe::Missing => return Ok(Divergence::NotComparable(hi)),
        Probe::Mismatch => {}
    }
    if hi <= floor {
        return Ok(Divergence::FirstAt(hi));
    }
    // `bad` mismatches; `low` matches (or is the floor) when `low_matches`, else is missing.
    let mut bad = hi.0;
    let (mut low, mut low_matches);
    let mut step: u64 = 1;
    loop {
        let at = bad.saturating_sub(step).max(floor.0);
        if at == floor.0 {
            (low, low_matches) = (at, true);
            break;
        }
        match probe(RaftIndex(at))? {
            Probe::Mismatch => {
                bad = at;
                step = step.saturating_mul(2);
            }
            Probe::Match => {
                (low, low_matches) = (at, true);
                break;
            }
            Probe::Missing => {
                (low, low_matches) = (at, false);
                break;
            }
        }
    }
    while bad - low > 1 {
        let mid = low + (bad - low) / 2;
        match probe(RaftIndex(mid))? {
            Probe::Mismatch => bad = mid,
            Probe::Match => (low, low_matches) = (mid, true),
            Probe::Missing => (low, low_matches) = (mid, false),
        }
    }
    Ok(if low_matches {
        Divergence::FirstAt(RaftIndex(bad))
    } else {
        Divergence::AtOrBefore(RaftIndex(bad))
    })
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use super::*;

    fn search(floor: u64, hi: u64, status: impl Fn(u64) -> Probe) -> (Divergence, Vec<u64>) {
        let mut asked = Vec::new();
        let found = first_divergence(RaftIndex(floor), RaftIndex(hi), |i| {
            asked.push(i.0);
            Ok::<_, Infallible>(status(i.0))
        });
        let Ok(found) = found;
        (found, asked)
    }

    #[test]
    fn agreement_at_the_top_asks_once() {
        let (found, asked) = search(0, 50, |_| Probe::Match);
        assert_eq!(found, Divergence::Agree { through: RaftIndex(50) });
        assert_eq!(asked, [50]);
    }

    #[test]
    fn divergence_right_after_the_floor_never_probes_the_floor() {
        let (found, asked) = search(0, 40, |_| Probe::Mismatch);
        assert_eq!(found, Divergence::FirstAt(RaftIndex(1)));
        assert!(!asked.contains(&0));
    }

    #[test]
    fn missing_history_bounds_the_answer() {
        let (found, _) = search(0, 100, |i| if i < 30 { Probe::Missing } else { Probe::Mismatch });
        assert_eq!(found, Divergence::AtOrBefore(RaftIndex(30)));
        let (found, _) = search(0, 100, |_| Probe::Missing);
        assert_eq!(found, Divergence::NotComparable(RaftIndex(100)));
    }

    #[test]
    fn probe_errors_end_the_search() {
        let found = first_divergence(RaftIndex(0), RaftIndex(9), |i| {
            if i.0 == 9 { Ok(Probe::Mismatch) } else { Err(i) }
        });
        assert_eq!(found, Err(RaftIndex(8)));
    }
}
