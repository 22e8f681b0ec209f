#![doc = include_str!("../README.md")]

mod arith;
mod clock;
mod config;
mod error;
mod schedule;
mod set;
mod tags;
mod validator;
mod window;

pub use arith::{MAX_TOTAL_VOTING_POWER, PRIORITY_WINDOW_SIZE_FACTOR};
pub use clock::{Slot, SlotClock, SlotMissed};
pub use config::{
    ChangeEntry, DEFAULT_SLOT_DURATION, SlotConfig, ValidatorEntry, ValidatorsConfig,
};
pub use error::{Error, Result};
pub use schedule::{HeightProposer, Proposers, Round, Schedule};
pub use set::ValidatorSet;
pub use tags::{
    HeightTags, ParseTagError, Tag, TagFn, TagPredicate, Tags, default_source_predicate,
};
pub use validator::{NodeAddr, NodeAddrErrorKind, Validator};
pub use window::TagsIter;
