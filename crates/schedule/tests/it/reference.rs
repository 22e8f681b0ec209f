//! A naive reference of CometBFT's proposer selection for differential tests, written from the
//! pseudo-code of `spec/consensus/proposer-selection.md` and the steps of
//! `UpdateWithChangeSet`, with wide integers and no attention to speed: every step clips to
//! the int64 bounds explicitly, the average is a floor division (as `big.Int.Div` for a
//! positive divisor), and ties go to the smaller address.

use mempulse_primitives::{Height, ValidatorId};
use mempulse_schedule::Validator;

#[derive(Clone, Debug)]
struct Entry {
    id: ValidatorId,
    address: [u8; 20],
    power: i128,
    priority: i128,
}

fn clip(x: i128) -> i128 {
    x.clamp(i128::from(i64::MIN), i128::from(i64::MAX))
}

/// A validator set with priorities, in insertion order.
#[derive(Clone, Debug)]
pub(crate) struct RefSet {
    entries: Vec<Entry>,
    pub(crate) proposer: ValidatorId,
}

impl RefSet {
    /// `NewValidatorSet`: priorities 0, then one election.
    pub(crate) fn new(validators: &[Validator]) -> Self {
        let entries = validators
            .iter()
            .map(|v| Entry {
                id: v.id,
                address: v.address.0,
                power: i128::from(v.power),
                priority: 0,
            })
            .collect();
        let mut set = Self { entries, proposer: ValidatorId(0) };
        set.increment();
        set
    }

    fn total(&self) -> i128 {
        self.entries.iter().map(|e| e.power).sum()
    }

    fn rescale_and_centre(&mut self) {
        let window = 2 * self.total();
        let max = self.entries.iter().map(|e| e.priority).max().unwrap();
        let min = self.entries.iter().map(|e| e.priority).min().unwrap();
        let diff = max - min;
        if window > 0 && diff > window {
            let ratio = (diff + window - 1) / window;
            for e in &mut self.entries {
                e.priority /= ratio; // truncates toward zero, as Go's `/`
            }
        }
        let n = i128::try_from(self.entries.len()).unwrap();
        let sum: i128 = self.entries.iter().map(|e| e.priority).sum();
        let mut avg = sum / n;
        if sum % n != 0 && sum < 0 {
            avg -= 1; // floor
        }
        for e in &mut self.entries {
            e.priority = clip(e.priority - avg);
        }
    }

    /// One `IncrementProposerPriority(1)`.
    pub(crate) fn increment(&mut self) {
        self.rescale_and_centre();
        let total = self.total();
        for e in &mut self.entries {
            e.priority = clip(e.priority + e.power);
        }
        let mut best = 0;
        for (i, e) in self.entries.iter().enumerate() {
            let b = &self.entries[best];
            if e.priority > b.priority || (e.priority == b.priority && e.address < b.address) {
                best = i;
            }
        }
        self.entries[best].priority = clip(self.entries[best].priority - total);
        self.proposer = self.entries[best].id;
    }

    /// `UpdateWithChangeSet` for a valid change set: power 0 removes, a known address takes
    /// the new power, a new one starts at `-(T + T / 8)` with `T` the total after the updates
    /// and before the removals.
    pub(crate) fn update(&mut self, changes: &[Validator]) {
        if changes.is_empty() {
            return;
        }
        let mut t = self.total();
        for c in changes.iter().filter(|c| c.power > 0) {
            let old = self.entries.iter().find(|e| e.address == c.address.0).map_or(0, |e| e.power);
            t += i128::from(c.power) - old;
        }
        let start = -(t + t / 8);
        for c in changes {
            let pos = self.entries.iter().position(|e| e.address == c.address.0);
            match (pos, c.power) {
                (Some(i), 0) => {
                    self.entries.remove(i);
                }
                (Some(i), p) => self.entries[i].power = i128::from(p),
                (None, p) => self.entries.push(Entry {
                    id: c.id,
                    address: c.address.0,
                    power: i128::from(p),
                    priority: start,
                }),
            }
        }
        self.rescale_and_centre();
    }

    /// The priority of `id`.
    pub(crate) fn priority(&self, id: ValidatorId) -> Option<i64> {
        let e = self.entries.iter().find(|e| e.id == id)?;
        i64::try_from(e.priority).ok()
    }

    pub(crate) fn ids(&self) -> Vec<ValidatorId> {
        let mut ids: Vec<ValidatorId> = self.entries.iter().map(|e| e.id).collect();
        ids.sort();
        ids
    }
}

/// The reference schedule: the set of each height from `base`, applying `changes` (height,
/// change set) on the way.
pub(crate) fn sets(
    genesis: &[Validator],
    changes: &[(Height, Vec<Validator>)],
    base: Height,
    heights: u64,
) -> Vec<RefSet> {
    let mut set = RefSet::new(genesis);
    let mut out = vec![set.clone()];
    for h in base.get() + 1..base.get() + heights {
        for (_, c) in changes.iter().filter(|(at, _)| at.get() == h) {
            set.update(c);
        }
        set.increment();
        out.push(set.clone());
    }
    out
}
