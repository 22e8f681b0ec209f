//! The proposer of every height: a validator set at a base height plus the change sets that
//! take effect at later heights, advanced the way CometBFT's `state/execution.go` does.

use core::fmt;
use std::collections::BTreeMap;

use mempulse_primitives::{Height, ValidatorId};

use crate::{Error, Result, Validator, ValidatorSet, set::ChangePlan};

/// A consensus round within one height: 0 first, +1 after each missed slot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Round(pub u32);

impl Round {
    /// The first round of a height.
    pub const ZERO: Self = Self(0);

    /// The raw integer.
    #[must_use]
    pub const fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for Round {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// The proposer of one height (round 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeightProposer {
    /// The height.
    pub height: Height,
    /// Its round-0 proposer.
    pub proposer: ValidatorId,
}

/// The proposer schedule: the validator set of a base height with its proposer priorities, and
/// the validator change sets that take effect at later heights.
///
/// Heights map to sets as in CometBFT, where `V(h)` is the set that proposes and votes at
/// height `h`:
/// - `V(base)` is given ([`Schedule::genesis`] builds it with `NewValidatorSet`);
/// - `V(h + 1)` is `V(h)` with the change set of height `h + 1` applied (`UpdateWithChangeSet`),
///   then incremented once (`IncrementProposerPriority(1)`);
/// - the proposer of `(h, 0)` is the one `V(h)`'s last increment elected, and the proposer of
///   `(h, r)` is elected by `r` further increments of a copy of `V(h)`, one round at a time.
///
/// A change set the application returned while finalizing block `H` belongs at height `H + 2`
/// (see [`Schedule::effective_height`]). Every change set is validated when it is added, so
/// answering a query never fails for a height at or above the base.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    base: Height,
    base_set: ValidatorSet,
    changes: BTreeMap<Height, ChangePlan>,
    /// `base_set` with every change applied and no increment: the membership new change sets
    /// are validated against (its priorities are never read).
    tail: ValidatorSet,
}

impl Schedule {
    /// A schedule from the validator set of height `base` (priorities included).
    #[must_use]
    pub fn new(base: Height, set: ValidatorSet) -> Self {
        Self { base, tail: set.clone(), base_set: set, changes: BTreeMap::new() }
    }

    /// The schedule of a chain whose first height is `initial_height`, with these genesis
    /// validators (CometBFT's `MakeGenesisState`: `V(initial) = NewValidatorSet(validators)`).
    ///
    /// # Errors
    /// As [`ValidatorSet::new`].
    pub fn genesis(initial_height: Height, validators: &[Validator]) -> Result<Self> {
        Ok(Self::new(initial_height, ValidatorSet::new(validators)?))
    }

    /// The height whose set first includes the validator updates returned while finalizing
    /// block `finalized` (`finalized + 2`, as CometBFT applies them), or `None` on overflow.
    #[must_use]
    pub fn effective_height(finalized: Height) -> Option<Height> {
        finalized.checked_next()?.checked_next()
    }

    /// Adds the change set that takes effect at `height` (see [`ValidatorSet::update_with_change_set`]
    /// for the entries). Change sets are added in ascending height order, each above the base.
    ///
    /// # Errors
    /// [`Error::ChangeHeightNotAscending`] for a height at or below the base or the last change;
    /// any error of [`ValidatorSet::update_with_change_set`] against the membership at that
    /// height. On error the schedule is unchanged. An empty change set changes nothing.
    pub fn add_changes(&mut self, height: Height, changes: &[Validator]) -> Result<()> {
        let after = self.changes.keys().next_back().copied().unwrap_or(self.base);
        if height <= after {
            return Err(Error::ChangeHeightNotAscending { height, after });
        }
        if changes.is_empty() {
            // CometBFT skips `UpdateWithChangeSet` for an empty update list.
            return Ok(());
        }
        let plan = self.tail.plan_changes(changes, true)?;
        self.tail.apply_plan(&plan);
        self.changes.insert(height, plan);
        Ok(())
    }

    /// The first height the schedule knows.
    #[must_use]
    pub const fn base_height(&self) -> Height {
        self.base
    }

    /// The validator set of the base height.
    #[must_use]
    pub const fn base_set(&self) -> &ValidatorSet {
        &self.base_set
    }

    /// The heights that have a change set, ascending.
    pub fn change_heights(&self) -> impl Iterator<Item = Height> + '_ {
        self.changes.keys().copied()
    }

    /// The validator set of `height` (round 0). Costs one increment per height above the base.
    ///
    /// # Errors
    /// [`Error::HeightBeforeBase`].
    pub fn set_at(&self, height: Height) -> Result<ValidatorSet> {
        Ok(self.cursor_at(height)?.set)
    }

    /// The round-0 proposer of `height`.
    ///
    /// # Errors
    /// [`Error::HeightBeforeBase`].
    pub fn proposer(&self, height: Height) -> Result<ValidatorId> {
        Ok(self.set_at(height)?.proposer())
    }

    /// The proposer of `round` at `height`: `round` single increments of the height's set.
    ///
    /// # Errors
    /// [`Error::HeightBeforeBase`].
    pub fn proposer_at_round(&self, height: Height, round: Round) -> Result<ValidatorId> {
        let mut set = self.set_at(height)?;
        for _ in 0..round.get() {
            set.increment(1);
        }
        Ok(set.proposer())
    }

    /// The round-0 proposers of `from` and every later height, in order: one increment per
    /// height. The iterator ends only when the height would overflow.
    ///
    /// # Errors
    /// [`Error::HeightBeforeBase`].
    pub fn proposers(&self, from: Height) -> Result<Proposers<'_>> {
        let cursor = self.cursor_at(from)?;
        Ok(Proposers { changes: &self.changes, cursor: Some(cursor), fresh: true })
    }

    /// Moves the base forward to `height` (a node does this as blocks commit, so later queries
    /// start near the tip). Change sets at or below the new base are folded into it.
    ///
    /// # Errors
    /// [`Error::HeightBeforeBase`] for a height below the current base.
    pub fn advance_base(&mut self, height: Height) -> Result<()> {
        let set = self.set_at(height)?;
        self.base = height;
        self.base_set = set;
        self.changes = self.changes.split_off(&height.checked_next().unwrap_or(height));
        self.changes.remove(&height);
        Ok(())
    }

    /// The set of `height`, reached from the base one increment per height.
    pub(crate) fn cursor_at(&self, height: Height) -> Result<Cursor> {
        if height < self.base {
            return Err(Error::HeightBeforeBase { height, base: self.base });
        }
        let mut cursor = Cursor { height: self.base, set: self.base_set.clone() };
        while cursor.height < height {
            cursor.advance(&self.changes);
        }
        Ok(cursor)
    }

    pub(crate) const fn plans(&self) -> &BTreeMap<Height, ChangePlan> {
        &self.changes
    }
}

/// The set of one height, advanced height by height.
#[derive(Clone, Debug)]
pub(crate) struct Cursor {
    pub(crate) height: Height,
    pub(crate) set: ValidatorSet,
}

impl Cursor {
    /// Moves to the next height: applies its change set, if any, then one increment. Returns
    /// `false` (and stays) when the height would overflow.
    pub(crate) fn advance(&mut self, changes: &BTreeMap<Height, ChangePlan>) -> bool {
        let Some(next) = self.height.checked_next() else { return false };
        if let Some(plan) = changes.get(&next) {
            self.set.apply_plan(plan);
        }
        self.set.increment(1);
        self.height = next;
        true
    }
}

/// Iterator over the round-0 proposers of consecutive heights (see [`Schedule::proposers`]).
#[derive(Debug)]
pub struct Proposers<'a> {
    changes: &'a BTreeMap<Height, ChangePlan>,
    cursor: Option<Cursor>,
    fresh: bool,
}

impl Proposers<'_> {
    /// The validator set of the height the iterator returned last (or will return first).
    #[must_use]
    pub fn current_set(&self) -> Option<&ValidatorSet> {
        self.cursor.as_ref().map(|c| &c.set)
    }
}

impl Iterator for Proposers<'_> {
    type Item = HeightProposer;

    fn next(&mut self) -> Option<HeightProposer> {
        let cursor = self.cursor.as_mut()?;
        if !core::mem::take(&mut self.fresh) && !cursor.advance(self.changes) {
            self.cursor = None;
            return None;
        }
        Some(HeightProposer { height: cursor.height, proposer: cursor.set.proposer() })
    }
}
