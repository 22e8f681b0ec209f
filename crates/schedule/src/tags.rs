//! Tags of validator clusters for a height (`proposer`, `proposer-next`, `proposer-soon`) and
//! the predicates tx sources subscribe with.

use core::{fmt, str::FromStr};
use std::{collections::BTreeMap, sync::Arc};

use mempulse_primitives::{Height, ValidatorId};

/// One tag a validator cluster can carry at a height.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tag {
    /// Proposes this height.
    Proposer,
    /// Proposes the next height.
    ProposerNext,
    /// Proposes the height after next.
    ProposerSoon,
}

impl Tag {
    /// Every tag, in canonical order.
    pub const ALL: [Self; 3] = [Self::Proposer, Self::ProposerNext, Self::ProposerSoon];

    /// The kebab-case name: `proposer`, `proposer-next`, `proposer-soon`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Proposer => "proposer",
            Self::ProposerNext => "proposer-next",
            Self::ProposerSoon => "proposer-soon",
        }
    }

    /// The tag of the validator proposing `offset` heights ahead (0, 1 or 2).
    #[must_use]
    pub const fn for_offset(offset: u64) -> Option<Self> {
        match offset {
            0 => Some(Self::Proposer),
            1 => Some(Self::ProposerNext),
            2 => Some(Self::ProposerSoon),
            _ => None,
        }
    }

    const fn bit(self) -> u8 {
        match self {
            Self::Proposer => 1,
            Self::ProposerNext => 2,
            Self::ProposerSoon => 4,
        }
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Text that names no tag.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown tag `{text}` (expected proposer, proposer-next or proposer-soon)")]
pub struct ParseTagError {
    /// The unknown name.
    pub text: String,
}

impl FromStr for Tag {
    type Err = ParseTagError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == text)
            .ok_or_else(|| ParseTagError { text: text.to_owned() })
    }
}

/// A set of tags (a small bitset). Displays as the names in canonical order joined by commas,
/// the empty set as the empty string; parses the same form (spaces around names allowed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tags(u8);

impl Tags {
    /// No tag.
    pub const EMPTY: Self = Self(0);

    /// Every tag.
    pub const ALL: Self = Self(0b111);

    /// The set with one tag.
    #[must_use]
    pub const fn one(tag: Tag) -> Self {
        Self(tag.bit())
    }

    /// This set plus `tag`.
    #[must_use]
    pub const fn with(self, tag: Tag) -> Self {
        Self(self.0 | tag.bit())
    }

    /// Adds a tag.
    pub const fn insert(&mut self, tag: Tag) {
        self.0 |= tag.bit();
    }

    /// Whether the set holds `tag`.
    #[must_use]
    pub const fn contains(self, tag: Tag) -> bool {
        self.0 & tag.bit() != 0
    }

    /// Whether the set holds at least one tag of `other`.
    #[must_use]
    pub const fn intersects(self, other: Self) -> bool {
        self.0 & other.0 != 0
    }

    /// Whether the set holds every tag of `other`.
    #[must_use]
    pub const fn contains_all(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether the set is empty.
    #[must_use]
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The tags, in canonical order.
    pub fn iter(self) -> impl Iterator<Item = Tag> {
        Tag::ALL.into_iter().filter(move |t| self.contains(*t))
    }

    /// The tag names, in canonical order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        self.iter().map(Tag::as_str)
    }
}

impl FromIterator<Tag> for Tags {
    fn from_iter<I: IntoIterator<Item = Tag>>(iter: I) -> Self {
        iter.into_iter().fold(Self::EMPTY, Self::with)
    }
}

impl fmt::Display for Tags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, name) in self.names().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(name)?;
        }
        Ok(())
    }
}

impl FromStr for Tags {
    type Err = ParseTagError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.trim().is_empty() {
            return Ok(Self::EMPTY);
        }
        text.split(',').map(|name| name.trim().parse::<Tag>()).collect()
    }
}

/// A custom predicate over tags.
pub type TagFn = Arc<dyn Fn(Tags) -> bool + Send + Sync>;

/// A condition over a cluster's tags: a tx source keeps streams open to every node of every
/// cluster whose tags match (`subscribe_if`).
#[derive(Clone)]
#[non_exhaustive]
pub enum TagPredicate {
    /// Matches when the tags hold at least one of these (never, for the empty set).
    AnyOf(Tags),
    /// Matches when the tags hold all of these (always, for the empty set).
    AllOf(Tags),
    /// Matches when the inner predicate does not.
    Not(Box<Self>),
    /// Matches when every inner predicate does (always, when there are none).
    And(Vec<Self>),
    /// Matches when some inner predicate does (never, when there are none).
    Or(Vec<Self>),
    /// Matches when the function returns `true`.
    Custom(TagFn),
}

impl TagPredicate {
    /// [`TagPredicate::AnyOf`] these tags.
    pub fn any_of(tags: impl IntoIterator<Item = Tag>) -> Self {
        Self::AnyOf(tags.into_iter().collect())
    }

    /// [`TagPredicate::AllOf`] these tags.
    pub fn all_of(tags: impl IntoIterator<Item = Tag>) -> Self {
        Self::AllOf(tags.into_iter().collect())
    }

    /// A predicate from a function.
    pub fn custom(f: impl Fn(Tags) -> bool + Send + Sync + 'static) -> Self {
        Self::Custom(Arc::new(f))
    }

    /// Whether `tags` satisfy the predicate.
    #[must_use]
    pub fn matches(&self, tags: Tags) -> bool {
        match self {
            Self::AnyOf(want) => tags.intersects(*want),
            Self::AllOf(want) => tags.contains_all(*want),
            Self::Not(inner) => !inner.matches(tags),
            Self::And(all) => all.iter().all(|p| p.matches(tags)),
            Self::Or(any) => any.iter().any(|p| p.matches(tags)),
            Self::Custom(f) => f(tags),
        }
    }
}

impl core::ops::Not for TagPredicate {
    type Output = Self;

    /// [`TagPredicate::Not`] of this predicate: `!TagPredicate::any_of([Tag::Proposer])`.
    fn not(self) -> Self {
        Self::Not(Box::new(self))
    }
}

impl fmt::Debug for TagPredicate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AnyOf(tags) => write!(f, "AnyOf({tags})"),
            Self::AllOf(tags) => write!(f, "AllOf({tags})"),
            Self::Not(inner) => f.debug_tuple("Not").field(inner).finish(),
            Self::And(all) => f.debug_tuple("And").field(all).finish(),
            Self::Or(any) => f.debug_tuple("Or").field(any).finish(),
            Self::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

/// What a tx source subscribes with by default: any of `proposer`, `proposer-next`,
/// `proposer-soon`, so streams to a cluster are open two heights before its slot.
#[must_use]
pub fn default_source_predicate() -> TagPredicate {
    TagPredicate::AnyOf(Tags::ALL)
}

/// The tags of every cluster at one height.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeightTags {
    /// The height.
    pub height: Height,
    /// Its proposer (the cluster tagged `proposer`).
    pub proposer: ValidatorId,
    /// Tags per validator, ascending by id: every validator of the height's set (possibly with
    /// no tag), plus the proposers of the next two heights if they join later.
    pub tags: BTreeMap<ValidatorId, Tags>,
}

impl HeightTags {
    /// The tags of one validator (empty when it has none or is not listed).
    #[must_use]
    pub fn tags_of(&self, id: ValidatorId) -> Tags {
        self.tags.get(&id).copied().unwrap_or_default()
    }

    /// The validators whose tags match `predicate`, ascending by id.
    pub fn matching<'a>(
        &'a self,
        predicate: &'a TagPredicate,
    ) -> impl Iterator<Item = ValidatorId> + 'a {
        self.tags.iter().filter(|(_, t)| predicate.matches(**t)).map(|(id, _)| *id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_display_and_parse() {
        let t = Tags::one(Tag::ProposerSoon).with(Tag::Proposer);
        assert_eq!(t.to_string(), "proposer,proposer-soon");
        assert_eq!("proposer-soon, proposer".parse::<Tags>().unwrap(), t);
        assert_eq!(Tags::EMPTY.to_string(), "");
        assert_eq!("".parse::<Tags>().unwrap(), Tags::EMPTY);
        assert_eq!(Tags::ALL.to_string(), "proposer,proposer-next,proposer-soon");
        assert!("proposer,leader".parse::<Tags>().is_err());
        assert!("Proposer".parse::<Tag>().is_err());
        for tag in Tag::ALL {
            assert_eq!(tag.to_string().parse::<Tag>().unwrap(), tag);
        }
        assert_eq!(Tag::for_offset(1), Some(Tag::ProposerNext));
        assert_eq!(Tag::for_offset(3), None);
    }

    #[test]
    fn every_subset_round_trips() {
        for bits in 0..8u8 {
            let tags = Tags(bits);
            assert_eq!(tags.to_string().parse::<Tags>().unwrap(), tags);
            assert_eq!(tags.iter().collect::<Tags>(), tags);
        }
    }

    #[test]
    fn predicates() {
        let proposer = Tags::one(Tag::Proposer);
        let soon = Tags::one(Tag::ProposerSoon);
        let both = proposer.with(Tag::ProposerSoon);
        let any = TagPredicate::any_of([Tag::Proposer, Tag::ProposerNext]);
        assert!(any.matches(proposer) && any.matches(both) && !any.matches(soon));
        assert!(!any.matches(Tags::EMPTY));
        let all = TagPredicate::all_of([Tag::Proposer, Tag::ProposerSoon]);
        assert!(all.matches(both) && !all.matches(proposer));
        assert!(TagPredicate::all_of([]).matches(Tags::EMPTY));
        assert!(!TagPredicate::any_of([]).matches(Tags::ALL));
        let not = !TagPredicate::any_of([Tag::Proposer]);
        assert!(not.matches(soon) && !not.matches(both));
        let custom = TagPredicate::custom(|t| t.iter().count() >= 2);
        assert!(custom.matches(both) && !custom.matches(soon));
        let and = TagPredicate::And(vec![any, not]);
        assert!(!and.matches(both));
        assert!(and.matches(Tags::one(Tag::ProposerNext)));
        let or = TagPredicate::Or(vec![all, custom]);
        assert!(or.matches(both) && !or.matches(soon));
        let default = default_source_predicate();
        assert!(
            default.matches(soon) && default.matches(proposer) && !default.matches(Tags::EMPTY)
        );
        assert_eq!(format!("{:?}", !default), "Not(AnyOf(proposer,proposer-next,proposer-soon))");
    }
}
