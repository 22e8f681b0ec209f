//! The validator set with CometBFT's proposer priorities (`types/validator_set.go`).

use std::{collections::BTreeMap, num::NonZeroU32};

use mempulse_primitives::{Address, NodeId, ValidatorId};

use crate::{
    Error, MAX_TOTAL_VOTING_POWER, NodeAddr, PRIORITY_WINDOW_SIZE_FACTOR, Result, Validator, arith,
};

/// A validator with its power as an int64 and its proposer priority.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Member {
    pub(crate) validator: Validator,
    /// `validator.power` as CometBFT's int64 (at most [`MAX_TOTAL_VOTING_POWER`]).
    pub(crate) power: i64,
    pub(crate) priority: i64,
}

/// The proposer elected by the last increment, kept by value: CometBFT keeps it even when a
/// later change set removed the validator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Elected {
    id: ValidatorId,
    address: Address,
}

/// A validated change set: what `UpdateWithChangeSet` applies after its checks passed. It
/// depends only on the membership and powers of the set it was planned against, never on the
/// priorities, so a [`crate::Schedule`] plans every change once and applies it infallibly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ChangePlan {
    /// Added or updated validators, ascending by address.
    updates: Vec<Member>,
    /// Removed addresses, ascending.
    removals: Vec<Address>,
    /// Priority of every added validator: `-(T + T >> 3)` (about `-1.125 × T`), where `T` is the
    /// total power after the updates and before the removals.
    new_priority: i64,
}

/// A validator set at one height and round: the validators, their voting power and their
/// proposer priorities, with CometBFT's proposer selection.
///
/// The set is never empty, its ids and addresses are unique, every power is positive and the
/// total power is at most [`MAX_TOTAL_VOTING_POWER`]. Validators are kept in ascending address
/// order; the algorithm's results do not depend on the order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatorSet {
    members: Vec<Member>,
    total_power: i64,
    by_id: BTreeMap<ValidatorId, usize>,
    elected: Elected,
}

impl ValidatorSet {
    /// CometBFT's `NewValidatorSet`: every validator starts at priority 0 (as new validators of
    /// an empty set, centred), then one increment elects the first proposer. This is the set of
    /// the chain's initial height.
    ///
    /// # Errors
    /// [`Error::EmptySet`] for no validators; [`Error::ZeroPower`], [`Error::PowerTooLarge`],
    /// [`Error::TotalPowerTooLarge`], [`Error::DuplicateAddress`], [`Error::DuplicateId`] or
    /// [`Error::DuplicateNode`] for an invalid list.
    pub fn new(validators: &[Validator]) -> Result<Self> {
        let mut set = Self::empty();
        let plan = set.plan_changes(validators, false)?;
        set.apply_plan(&plan);
        set.increment(1);
        Ok(set)
    }

    /// CometBFT's `ValidatorSetFromExistingValidators`: a set restored with the given
    /// priorities, unchanged. Its proposer is the validator with the lowest priority (the larger
    /// address on a tie): the one the last increment moved back (`findPreviousProposer`).
    ///
    /// # Errors
    /// As [`ValidatorSet::new`].
    pub fn with_priorities(validators: Vec<(Validator, i64)>) -> Result<Self> {
        let (list, priorities): (Vec<Validator>, Vec<i64>) = validators.into_iter().unzip();
        let mut set = Self::empty();
        let plan = set.plan_changes(&list, false)?;
        set.apply_plan(&plan);
        for (validator, priority) in list.iter().zip(priorities) {
            if let Some(m) =
                set.position(&validator.address).ok().and_then(|i| set.members.get_mut(i))
            {
                m.priority = priority;
            }
        }
        let lowest = set.members.iter().min_by(|a, b| {
            a.priority.cmp(&b.priority).then_with(|| b.validator.address.cmp(&a.validator.address))
        });
        if let Some(m) = lowest {
            set.elected = Elected { id: m.validator.id, address: m.validator.address };
        }
        Ok(set)
    }

    fn empty() -> Self {
        Self {
            members: Vec::new(),
            total_power: 0,
            by_id: BTreeMap::new(),
            elected: Elected { id: ValidatorId(0), address: Address::default() },
        }
    }

    /// The proposer: elected by the last increment (or restored by
    /// [`ValidatorSet::with_priorities`]).
    #[must_use]
    pub const fn proposer(&self) -> ValidatorId {
        self.elected.id
    }

    /// The proposer's address.
    #[must_use]
    pub const fn proposer_address(&self) -> Address {
        self.elected.address
    }

    /// Sum of the voting powers.
    #[must_use]
    pub fn total_power(&self) -> u64 {
        u64::try_from(self.total_power).unwrap_or(0)
    }

    /// Number of validators (at least 1).
    #[must_use]
    pub const fn len(&self) -> usize {
        self.members.len()
    }

    /// Always `false`: a set has at least one validator.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The validators with their proposer priorities, ascending by address.
    #[must_use = "iterators are lazy"]
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&Validator, i64)> + '_ {
        self.members.iter().map(|m| (&m.validator, m.priority))
    }

    /// The validator ids, ascending.
    #[must_use = "iterators are lazy"]
    pub fn ids(&self) -> impl ExactSizeIterator<Item = ValidatorId> + '_ {
        self.by_id.keys().copied()
    }

    /// The validator with this id.
    #[must_use]
    pub fn get(&self, id: ValidatorId) -> Option<&Validator> {
        self.member_by_id(id).map(|m| &m.validator)
    }

    /// The validator with this address.
    #[must_use]
    pub fn by_address(&self, address: &Address) -> Option<&Validator> {
        let i = self.position(address).ok()?;
        self.members.get(i).map(|m| &m.validator)
    }

    /// The proposer priority of the validator with this id.
    #[must_use]
    pub fn priority(&self, id: ValidatorId) -> Option<i64> {
        self.member_by_id(id).map(|m| m.priority)
    }

    /// CometBFT's `IncrementProposerPriority(times)`: rescales the priorities into the window
    /// of `2 × total power` and centres them once, then runs `times` elections. Returns the
    /// new proposer. A `times` above 1 is what a node does when it jumps several rounds at
    /// once; [`crate::Schedule`] steps one round at a time.
    pub fn increment_proposer_priority(&mut self, times: NonZeroU32) -> ValidatorId {
        self.increment(times.get())
    }

    /// CometBFT's `UpdateWithChangeSet`: applies a change set between two heights. Each entry
    /// adds a validator (new address; priority `-1.125 × total`), changes one's power and nodes
    /// (known address; priority kept) or removes one (power 0). Then the priorities are
    /// rescaled into the window and centred (unless `changes` is empty: then nothing happens). The proposer is left as it was; the next
    /// increment elects a new one.
    ///
    /// # Errors
    /// [`Error::DuplicateAddress`] for two entries with one address, [`Error::PowerTooLarge`],
    /// [`Error::EmptySet`] when everything would be removed, [`Error::UnknownValidator`] for
    /// removing an absent address, [`Error::TotalPowerTooLarge`], [`Error::IdMismatch`] when
    /// an entry names a known address with another id, [`Error::DuplicateId`] or
    /// [`Error::DuplicateNode`] for a resulting set with a repeated id or node. On error the
    /// set is unchanged.
    pub fn update_with_change_set(&mut self, changes: &[Validator]) -> Result<()> {
        // CometBFT returns before rescaling and centring when there is nothing to change.
        if changes.is_empty() {
            return Ok(());
        }
        let plan = self.plan_changes(changes, true)?;
        self.apply_plan(&plan);
        Ok(())
    }

    /// One increment with the usual rescale and centring; the election of the next height or
    /// round.
    pub(crate) fn increment(&mut self, times: u32) -> ValidatorId {
        let elected = arith::increment(&mut self.members, self.total_power, times)
            .and_then(|i| self.members.get(i));
        if let Some(m) = elected {
            self.elected = Elected { id: m.validator.id, address: m.validator.address };
        }
        self.elected.id
    }

    fn position(&self, address: &Address) -> core::result::Result<usize, usize> {
        self.members.binary_search_by(|m| m.validator.address.cmp(address))
    }

    fn member_by_id(&self, id: ValidatorId) -> Option<&Member> {
        self.by_id.get(&id).and_then(|&i| self.members.get(i))
    }

    /// The checks of `updateWithChangeSet`, in CometBFT's order (`processChanges`, the empty
    /// check, `verifyRemovals`, `verifyUpdates`), then this crate's id and node checks.
    pub(crate) fn plan_changes(
        &self,
        changes: &[Validator],
        allow_removals: bool,
    ) -> Result<ChangePlan> {
        let mut sorted: Vec<&Validator> = changes.iter().collect();
        sorted.sort_by_key(|v| v.address);
        let mut updates = Vec::with_capacity(sorted.len());
        let mut removals: Vec<&Validator> = Vec::new();
        for (i, v) in sorted.iter().enumerate() {
            if i > 0 && sorted.get(i - 1).is_some_and(|p| p.address == v.address) {
                return Err(Error::DuplicateAddress { address: v.address });
            }
            let power = match i64::try_from(v.power) {
                Ok(p) if p <= MAX_TOTAL_VOTING_POWER => p,
                _ => return Err(Error::PowerTooLarge { id: v.id, power: v.power }),
            };
            if power == 0 {
                removals.push(v);
            } else {
                updates.push(Member { validator: (*v).clone(), power, priority: 0 });
            }
        }
        if let (false, Some(v)) = (allow_removals, removals.first()) {
            return Err(Error::ZeroPower { id: v.id });
        }
        let added = updates.iter().filter(|u| self.position(&u.validator.address).is_err());
        if added.count() == 0 && self.members.len() == removals.len() {
            return Err(Error::EmptySet);
        }
        let mut removed_power = 0i128;
        for r in &removals {
            let m = self.existing(r)?.ok_or(Error::UnknownValidator { address: r.address })?;
            removed_power += i128::from(m.power);
        }
        let mut after_updates = i128::from(self.total_power);
        for u in &updates {
            let old = self.existing(&u.validator)?.map_or(0, |m| m.power);
            after_updates += i128::from(u.power) - i128::from(old);
        }
        let total = after_updates - removed_power;
        if total > i128::from(MAX_TOTAL_VOTING_POWER) {
            return Err(Error::TotalPowerTooLarge { total: u128::try_from(total).unwrap_or(0) });
        }
        let removals: Vec<Address> = removals.iter().map(|v| v.address).collect();
        self.check_unique(&updates, &removals)?;
        // `after_updates` is below 2 × MAX_TOTAL_VOTING_POWER, so this stays in int64 range.
        let t = i64::try_from(after_updates).unwrap_or(i64::MAX);
        Ok(ChangePlan { updates, removals, new_priority: -(t + (t >> 3)) })
    }

    /// The member with the change's address, checking that the ids agree.
    fn existing(&self, change: &Validator) -> Result<Option<&Member>> {
        let Ok(i) = self.position(&change.address) else { return Ok(None) };
        let m = self.members.get(i);
        match m {
            Some(m) if m.validator.id != change.id => Err(Error::IdMismatch {
                address: change.address,
                expected: m.validator.id,
                got: change.id,
            }),
            _ => Ok(m),
        }
    }

    /// Ids and member node endpoints (Raft and stream listeners alike) must stay unique across
    /// the resulting set; node ids only within one validator's `nodes` and within its
    /// `streams`.
    fn check_unique(&self, updates: &[Member], removals: &[Address]) -> Result<()> {
        let changed = |a: &Address| {
            removals.binary_search(a).is_ok()
                || updates.binary_search_by(|u| u.validator.address.cmp(a)).is_ok()
        };
        let kept = self.members.iter().filter(|m| !changed(&m.validator.address));
        let mut ids = BTreeMap::new();
        let mut endpoints: BTreeMap<(&str, u16), ValidatorId> = BTreeMap::new();
        for v in kept.chain(updates).map(|m| &m.validator) {
            if ids.insert(v.id, ()).is_some() {
                return Err(Error::DuplicateId { id: v.id });
            }
            // Keyed by (is a stream listener, node id): one id per list.
            let mut node_ids: BTreeMap<(bool, NodeId), ()> = BTreeMap::new();
            let listed = v.nodes.iter().map(|n| (false, n));
            for (stream, node) in listed.chain(v.streams.iter().map(|n| (true, n))) {
                let dup = |first: ValidatorId| Error::DuplicateNode {
                    node: node.clone(),
                    first,
                    second: v.id,
                };
                if let Some(first) = endpoints.insert((&node.host, node.port), v.id) {
                    return Err(dup(first));
                }
                if node.node.is_some_and(|n| node_ids.insert((stream, n), ()).is_some()) {
                    return Err(dup(v.id));
                }
            }
        }
        Ok(())
    }

    /// Applies a plan made against this membership: merge updates, drop removals, recompute
    /// the total, rescale and centre (the tail of `updateWithChangeSet`).
    pub(crate) fn apply_plan(&mut self, plan: &ChangePlan) {
        let old = core::mem::take(&mut self.members);
        let mut merged = Vec::with_capacity(old.len() + plan.updates.len());
        let mut updates = plan.updates.iter().peekable();
        for m in old {
            while let Some(u) = updates.next_if(|u| u.validator.address < m.validator.address) {
                merged.push(Member { priority: plan.new_priority, ..u.clone() });
            }
            if let Some(u) = updates.next_if(|u| u.validator.address == m.validator.address) {
                merged.push(Member { priority: m.priority, ..u.clone() });
            } else if plan.removals.binary_search(&m.validator.address).is_err() {
                merged.push(m);
            }
        }
        merged.extend(updates.map(|u| Member { priority: plan.new_priority, ..u.clone() }));
        self.members = merged;
        self.total_power = self.members.iter().map(|m| m.power).sum();
        self.by_id = self.members.iter().enumerate().map(|(i, m)| (m.validator.id, i)).collect();
        arith::rescale_and_centre(
            &mut self.members,
            PRIORITY_WINDOW_SIZE_FACTOR * self.total_power,
        );
    }

    /// The member nodes of every validator, ascending by validator id.
    pub fn nodes(&self) -> impl Iterator<Item = (ValidatorId, &NodeAddr)> + '_ {
        self.by_id
            .iter()
            .filter_map(|(_, &i)| self.members.get(i))
            .flat_map(|m| m.validator.nodes.iter().map(move |n| (m.validator.id, n)))
    }

    /// The member nodes' stream listeners of every validator, ascending by validator id.
    pub fn streams(&self) -> impl Iterator<Item = (ValidatorId, &NodeAddr)> + '_ {
        self.by_id
            .iter()
            .filter_map(|(_, &i)| self.members.get(i))
            .flat_map(|m| m.validator.streams.iter().map(move |n| (m.validator.id, n)))
    }
}
