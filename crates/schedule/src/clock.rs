//! The slot clock: which proposer's slot is open now, as a pure state machine fed with
//! commits and times by the caller.

use std::{collections::VecDeque, time::Duration};

use mempulse_primitives::{Height, ValidatorId};

use crate::{
    Error, HeightTags, Result, Round, Schedule, SlotConfig, ValidatorSet, schedule::Cursor,
    window::height_tags,
};

/// The open slot: who may propose `height` in `round`, until `deadline`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    /// The height being decided.
    pub height: Height,
    /// The round within the height.
    pub round: Round,
    /// The proposer of this height and round.
    pub proposer: ValidatorId,
    /// When the slot closes (on the caller's monotonic time line).
    pub deadline: Duration,
}

/// A slot whose deadline passed without a commit: the round moved on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotMissed {
    /// The height still being decided.
    pub height: Height,
    /// The round that timed out.
    pub round: Round,
    /// The proposer that missed its slot.
    pub proposer: ValidatorId,
    /// The slot that opened in its place (the next round).
    pub next: Slot,
}

/// A pure slot clock over a [`Schedule`].
///
/// Time is an input: every method that needs "now" takes it as a [`Duration`] since an origin
/// the caller chooses on a monotonic clock (for example `start.elapsed()`). The clock never
/// reads a clock itself, so a replay that feeds the same commits and times gets the same slots.
///
/// - A commit of height `h` opens height `h + 1`, round 0, with a deadline one slot duration
///   after the commit time.
/// - When a tick finds the deadline passed, the round advances by one (the next proposer by
///   CometBFT's priorities) and the deadline by one slot duration; one tick reports at most one
///   missed slot, so a caller that fell behind calls [`SlotClock::on_tick`] until it returns
///   `None`.
#[derive(Clone, Debug)]
pub struct SlotClock {
    schedule: Schedule,
    slot_duration: Duration,
    /// The sets of heights `h`, `h + 1`, `h + 2` (fewer only at the end of the height range).
    window: VecDeque<Cursor>,
    round: Round,
    /// The set of `h` after `round` single increments; `None` in round 0.
    round_set: Option<ValidatorSet>,
    deadline: Duration,
}

impl SlotClock {
    /// A clock whose first open slot is `height`, round 0, starting at `now`.
    ///
    /// # Errors
    /// [`Error::ZeroSlotDuration`]; [`Error::HeightBeforeBase`] for a height below the
    /// schedule's base.
    pub fn new(
        schedule: Schedule,
        config: SlotConfig,
        height: Height,
        now: Duration,
    ) -> Result<Self> {
        if config.slot_duration.is_zero() {
            return Err(Error::ZeroSlotDuration);
        }
        let first = schedule.cursor_at(height)?;
        let mut clock = Self {
            schedule,
            slot_duration: config.slot_duration,
            window: VecDeque::from([first]),
            round: Round::ZERO,
            round_set: None,
            deadline: now.saturating_add(config.slot_duration),
        };
        clock.fill();
        Ok(clock)
    }

    /// The schedule the clock follows.
    #[must_use]
    pub const fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// The configured slot duration.
    #[must_use]
    pub const fn slot_duration(&self) -> Duration {
        self.slot_duration
    }

    /// When the open slot closes.
    #[must_use]
    pub const fn deadline(&self) -> Duration {
        self.deadline
    }

    /// The open slot.
    #[must_use]
    pub fn slot(&self) -> Slot {
        Slot {
            height: self.height(),
            round: self.round,
            proposer: self.proposer(),
            deadline: self.deadline,
        }
    }

    fn height(&self) -> Height {
        self.window.front().map_or(Height::ZERO, |c| c.height)
    }

    fn proposer(&self) -> ValidatorId {
        match (&self.round_set, self.window.front()) {
            (Some(set), _) => set.proposer(),
            (None, Some(cursor)) => cursor.set.proposer(),
            (None, None) => ValidatorId::default(),
        }
    }

    /// The validator set of the open height (round 0 priorities).
    #[must_use]
    pub fn current_set(&self) -> Option<&ValidatorSet> {
        self.window.front().map(|c| &c.set)
    }

    /// Block `height` committed at `now`: opens `height + 1`, round 0. A commit above the open
    /// height (the node learnt of several commits at once) skips ahead.
    ///
    /// # Errors
    /// [`Error::StaleCommit`] for a height below the open one, [`Error::HeightOverflow`] for
    /// `u64::MAX`; the clock is unchanged.
    pub fn on_commit(&mut self, height: Height, now: Duration) -> Result<Slot> {
        let current = self.height();
        if height < current {
            return Err(Error::StaleCommit { committed: height, current });
        }
        let next = height.checked_next().ok_or(Error::HeightOverflow { height })?;
        while self.height() < next {
            if !self.step() {
                break;
            }
        }
        self.round = Round::ZERO;
        self.round_set = None;
        self.deadline = now.saturating_add(self.slot_duration);
        Ok(self.slot())
    }

    /// Checks the deadline at `now`: when it passed, the round moves on to the next proposer
    /// and the missed slot is returned. Returns `None` before the deadline (and, never in
    /// practice, once the round reached `u32::MAX`).
    pub fn on_tick(&mut self, now: Duration) -> Option<SlotMissed> {
        if now < self.deadline {
            return None;
        }
        let missed = self.slot();
        let next_round = Round(self.round.get().checked_add(1)?);
        let set = match self.round_set.take() {
            Some(set) => set,
            None => self.window.front()?.set.clone(),
        };
        let mut set = set;
        set.increment(1);
        self.round_set = Some(set);
        self.round = next_round;
        self.deadline = self.deadline.saturating_add(self.slot_duration);
        Some(SlotMissed {
            height: missed.height,
            round: missed.round,
            proposer: missed.proposer,
            next: self.slot(),
        })
    }

    /// The tags of every cluster for the open slot: `proposer` for this round's proposer,
    /// `proposer-next` and `proposer-soon` for the next two heights' round-0 proposers.
    #[must_use]
    pub fn tags(&self) -> HeightTags {
        let mut proposers = vec![self.proposer()];
        proposers.extend(self.window.iter().skip(1).map(|c| c.set.proposer()));
        let members = self.window.front().into_iter().flat_map(|c| c.set.ids());
        height_tags(self.height(), members, &proposers)
    }

    /// Moves the window one height on; `false` at the end of the height range.
    fn step(&mut self) -> bool {
        if self.window.len() < 2 {
            return false;
        }
        self.window.pop_front();
        self.fill();
        true
    }

    fn fill(&mut self) {
        while self.window.len() < 3 {
            let Some(mut next) = self.window.back().cloned() else { return };
            if !next.advance(self.schedule.plans()) {
                return;
            }
            self.window.push_back(next);
        }
    }
}
