//! The slot clock of a producing node and the notice of a built block: pure, heights and
//! times are inputs.

use std::{collections::BTreeMap, time::Duration};

use mempulse_mempool::{BuiltBlock, CommitBlock};
use mempulse_net::peer::BlockNotice;
use mempulse_primitives::{Address, Height, Nonce, ValidatorId};
use mempulse_schedule::{Round, Schedule, Slot, SlotClock, SlotConfig, SlotMissed, ValidatorSet};

use super::MISSED_PER_TICK_MAX;
use crate::wiring::state::{follow, open_height};

/// The slot clock of one producing node, following its pool's height, and which slot it has
/// built in. Pure: heights and times are inputs.
#[derive(Debug)]
pub(crate) struct SlotDriver {
    genesis: Schedule,
    /// `genesis` with its base moved along (so restarting the clock costs little).
    schedule: Schedule,
    slot: SlotConfig,
    validator: ValidatorId,
    clock: SlotClock,
    /// The last slot this node built in.
    built: Option<(Height, Round)>,
}

impl SlotDriver {
    /// A driver for `validator` whose pool has committed `committed` at `now`.
    pub(crate) fn new(
        genesis: Schedule,
        slot: SlotConfig,
        validator: ValidatorId,
        committed: Height,
        now: Duration,
    ) -> mempulse_schedule::Result<Self> {
        let mut schedule = genesis.clone();
        let clock = start_clock(&genesis, &mut schedule, slot, committed, now)?;
        Ok(Self { genesis, schedule, slot, validator, clock, built: None })
    }

    /// The open slot.
    #[cfg(test)]
    pub(crate) fn slot(&self) -> Slot {
        self.clock.slot()
    }

    /// The validator set of the open height.
    pub(crate) fn members(&self) -> Option<&ValidatorSet> {
        self.clock.current_set()
    }

    /// Follows the pool, which has committed `committed` at `now`: a higher height opens the
    /// next one, a lower one (a reorg) restarts the clock there. Then every passed deadline
    /// moves the round on; returns those missed slots.
    ///
    /// # Errors
    /// A schedule error; the clock is unchanged.
    pub(crate) fn observe(
        &mut self,
        committed: Height,
        now: Duration,
    ) -> mempulse_schedule::Result<Vec<SlotMissed>> {
        let open = self.clock.slot().height;
        if committed >= open {
            self.clock.on_commit(committed, now)?;
        } else if open_height(&self.genesis, committed) < open {
            // A reorg: the reopened heights get new blocks.
            self.clock = start_clock(&self.genesis, &mut self.schedule, self.slot, committed, now)?;
            self.built = None;
        }
        let mut missed = Vec::new();
        while missed.len() < MISSED_PER_TICK_MAX {
            let Some(slot) = self.clock.on_tick(now) else { break };
            missed.push(slot);
        }
        Ok(missed)
    }

    /// The slot to build in at `now`, at most once per (height, round): the open slot when it
    /// is this validator's, this node is the caught-up leader, and half of it has passed (the
    /// first half gathers transactions, the second is the margin to build, commit and hand the
    /// block over before the other clusters count the slot missed).
    pub(crate) fn due(&mut self, now: Duration, ready_leader: bool) -> Option<Slot> {
        let slot = self.clock.slot();
        let key = (slot.height, slot.round);
        let build_at = slot.deadline.saturating_sub(self.slot.slot_duration / 2);
        let due = slot.proposer == self.validator
            && ready_leader
            && self.built != Some(key)
            && now >= build_at
            && now < slot.deadline;
        if due {
            self.built = Some(key);
        }
        due.then_some(slot)
    }
}

/// A clock whose open height follows `committed`, from `schedule` moved there.
fn start_clock(
    genesis: &Schedule,
    schedule: &mut Schedule,
    slot: SlotConfig,
    committed: Height,
    now: Duration,
) -> mempulse_schedule::Result<SlotClock> {
    let height = open_height(genesis, committed);
    follow(genesis, schedule, height)?;
    SlotClock::new(schedule.clone(), slot, height, now)
}

/// The notice of `block`, built in `slot`: its content comes from the block alone (next nonce
/// per sender in address order), so every node derives the same notice from the same block.
pub(crate) fn notice(slot: &Slot, block: &BuiltBlock) -> BlockNotice {
    let mut next: BTreeMap<Address, u64> = BTreeMap::new();
    for tx in &block.txs {
        let after = tx.nonce.get().saturating_add(1);
        let nonce = next.entry(tx.sender).or_insert(after);
        *nonce = (*nonce).max(after);
    }
    BlockNotice {
        height: slot.height,
        round: slot.round.get(),
        proposer: slot.proposer,
        txs: block.txs.iter().map(|tx| tx.hash).collect(),
        nonces: next.into_iter().map(|(sender, nonce)| (sender, Nonce(nonce))).collect(),
        base_fee_per_gas: None,
    }
}

/// The commit command of a notice.
pub(crate) fn commit_of(notice: &BlockNotice) -> CommitBlock {
    CommitBlock {
        height: notice.height,
        txs: notice.txs.clone(),
        nonces: notice.nonces.clone(),
        base_fee_per_gas: notice.base_fee_per_gas,
    }
}
