//! Tags for consecutive heights: a window over the sets of `h`, `h + 1` and `h + 2`.

use std::{collections::BTreeMap, collections::VecDeque, sync::Arc};

use mempulse_primitives::{Height, ValidatorId};

use crate::{
    HeightTags, Result, Schedule, Tag, Tags,
    schedule::Cursor,
    set::{ChangePlan, ValidatorSet},
};

/// Builds the tags of one height from its members and the proposers of it and the next two
/// heights (fewer at the end of the height range).
pub(crate) fn height_tags(
    height: Height,
    members: impl Iterator<Item = ValidatorId>,
    proposers: &[ValidatorId],
) -> HeightTags {
    let mut tags: BTreeMap<ValidatorId, Tags> = members.map(|id| (id, Tags::EMPTY)).collect();
    for (offset, &id) in (0u64..).zip(proposers) {
        if let Some(tag) = Tag::for_offset(offset) {
            tags.entry(id).or_default().insert(tag);
        }
    }
    let proposer = proposers.first().copied().unwrap_or_default();
    HeightTags { height, proposer, tags }
}

/// One height in the window: its round-0 proposer and its validator ids (shared between
/// heights until a change set alters them).
#[derive(Clone, Debug)]
struct Entry {
    height: Height,
    proposer: ValidatorId,
    members: Arc<[ValidatorId]>,
}

fn ids(set: &ValidatorSet) -> Arc<[ValidatorId]> {
    set.ids().collect()
}

/// Iterator over the tags of consecutive heights (see [`Schedule::tags`]): one increment per
/// height, plus a map of the height's validators.
#[derive(Debug)]
pub struct TagsIter<'a> {
    changes: &'a BTreeMap<Height, ChangePlan>,
    ahead: Cursor,
    /// Entries for `h`, `h + 1`, `h + 2`; shorter only at the end of the height range.
    window: VecDeque<Entry>,
}

impl<'a> TagsIter<'a> {
    pub(crate) fn new(schedule: &'a Schedule, from: Height) -> Result<Self> {
        let ahead = schedule.cursor_at(from)?;
        let first = Entry {
            height: ahead.height,
            proposer: ahead.set.proposer(),
            members: ids(&ahead.set),
        };
        let mut iter = Self { changes: schedule.plans(), ahead, window: VecDeque::from([first]) };
        iter.fill();
        Ok(iter)
    }

    /// Advances the look-ahead cursor until the window spans three heights.
    fn fill(&mut self) {
        while self.window.len() < 3 {
            let Some(last) = self.window.back() else { return };
            let members = Arc::clone(&last.members);
            let next = self.ahead.height.checked_next();
            if !self.ahead.advance(self.changes) {
                return;
            }
            let changed = next.is_some_and(|h| self.changes.contains_key(&h));
            let members = if changed { ids(&self.ahead.set) } else { members };
            self.window.push_back(Entry {
                height: self.ahead.height,
                proposer: self.ahead.set.proposer(),
                members,
            });
        }
    }
}

impl Iterator for TagsIter<'_> {
    type Item = HeightTags;

    fn next(&mut self) -> Option<HeightTags> {
        let front = self.window.front()?;
        let proposers: Vec<ValidatorId> = self.window.iter().map(|e| e.proposer).collect();
        let tags = height_tags(front.height, front.members.iter().copied(), &proposers);
        self.window.pop_front();
        self.fill();
        Some(tags)
    }
}

impl Schedule {
    /// The tags of every cluster at `from` and each later height: `proposer` for the height's
    /// proposer, `proposer-next` for the next height's, `proposer-soon` for the one after.
    ///
    /// # Errors
    /// [`crate::Error::HeightBeforeBase`].
    pub fn tags(&self, from: Height) -> Result<TagsIter<'_>> {
        TagsIter::new(self, from)
    }

    /// The tags of every cluster at `height`.
    ///
    /// # Errors
    /// [`crate::Error::HeightBeforeBase`].
    pub fn tags_at(&self, height: Height) -> Result<HeightTags> {
        let mut iter = self.tags(height)?;
        Ok(iter.next().unwrap_or_else(|| height_tags(height, core::iter::empty(), &[])))
    }
}
