//! Errors of the schedule crate.
//!
//! Every error is a property of the input (a validator list, a change set, a height, a
//! configuration file): the same input fails the same way on every node, and retrying it
//! cannot succeed. An operation that fails leaves its receiver unchanged.

use mempulse_primitives::{Address, Height, ParseHexError, ValidatorId};

use crate::{NodeAddr, NodeAddrErrorKind};

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// A validator set, change set, height or configuration the schedule refuses.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The validator set would have no validator.
    #[error("the validator set would be empty")]
    EmptySet,
    /// Two validators (or two entries of one change set) share an id.
    #[error("validator id {id} appears twice")]
    DuplicateId {
        /// The repeated id.
        id: ValidatorId,
    },
    /// Two validators (or two entries of one change set) share an address.
    #[error("validator address {address} appears twice")]
    DuplicateAddress {
        /// The repeated address.
        address: Address,
    },
    /// Two validators list the same member node endpoint (`host:port`), or one validator lists
    /// one node id twice.
    #[error("member node {node} is listed by validators {first} and {second}")]
    DuplicateNode {
        /// The repeated node address.
        node: NodeAddr,
        /// One validator listing it.
        first: ValidatorId,
        /// The other validator listing it (may equal `first` when one validator lists it twice).
        second: ValidatorId,
    },
    /// A validator of a new set has zero voting power (only a change set may remove).
    #[error("validator {id} has zero voting power")]
    ZeroPower {
        /// The validator.
        id: ValidatorId,
    },
    /// One validator's power exceeds [`MAX_TOTAL_VOTING_POWER`](crate::MAX_TOTAL_VOTING_POWER).
    #[error("validator {id} has voting power {power}, above the maximum {max}", max = crate::MAX_TOTAL_VOTING_POWER)]
    PowerTooLarge {
        /// The validator.
        id: ValidatorId,
        /// Its power.
        power: u64,
    },
    /// The total power would exceed [`MAX_TOTAL_VOTING_POWER`](crate::MAX_TOTAL_VOTING_POWER).
    #[error("total voting power {total} exceeds the maximum {max}", max = crate::MAX_TOTAL_VOTING_POWER)]
    TotalPowerTooLarge {
        /// The total the set would have.
        total: u128,
    },
    /// A change set removes an address that is not in the set.
    #[error("cannot remove validator {address}: not in the set")]
    UnknownValidator {
        /// The address.
        address: Address,
    },
    /// A change set names an address of the set with another validator id.
    #[error("validator {address} has id {expected}, the change says {got}")]
    IdMismatch {
        /// The address.
        address: Address,
        /// The id the set knows.
        expected: ValidatorId,
        /// The id in the change.
        got: ValidatorId,
    },
    /// A height below the schedule's base height was asked for.
    #[error("height {height} is below the schedule's base height {base}")]
    HeightBeforeBase {
        /// The height asked for.
        height: Height,
        /// The first height the schedule knows.
        base: Height,
    },
    /// Validator changes must be added at heights above the base and above every earlier change.
    #[error("validator changes at height {height} must come after height {after}")]
    ChangeHeightNotAscending {
        /// The height of the refused change set.
        height: Height,
        /// The base height or the last change height.
        after: Height,
    },
    /// A commit reported to the slot clock is below its current height.
    #[error("commit of height {committed} is below the current height {current}")]
    StaleCommit {
        /// The committed height reported.
        committed: Height,
        /// The height the clock is at.
        current: Height,
    },
    /// A height one above `u64::MAX` was needed.
    #[error("height {height} is the last representable height")]
    HeightOverflow {
        /// The height that cannot be followed.
        height: Height,
    },
    /// The slot duration is zero.
    #[error("the slot duration must be positive")]
    ZeroSlotDuration,
    /// The validators file is not valid TOML of the expected shape.
    #[error("invalid validators file")]
    Parse {
        /// The TOML error, with line and column.
        #[source]
        source: toml::de::Error,
    },
    /// A validator's address is not 20 bytes of hex.
    #[error("validator {id}: address `{text}` is not 20 bytes of hex")]
    BadAddress {
        /// The validator.
        id: ValidatorId,
        /// The text found.
        text: String,
        /// Why it did not parse.
        #[source]
        source: ParseHexError,
    },
    /// A member node address does not parse.
    #[error(
        "validator {id}: member node `{text}` is not `host:port` or `node-id@host:port`: {kind}"
    )]
    BadNode {
        /// The validator.
        id: ValidatorId,
        /// The text found.
        text: String,
        /// What is wrong with it.
        kind: NodeAddrErrorKind,
    },
}
