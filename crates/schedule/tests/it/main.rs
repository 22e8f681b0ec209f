//! Integration tests of mempulse-schedule: CometBFT's published sequences and examples, the
//! schedule and slot clock APIs, and property tests against a naive reference.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed assumption is a failed test"
)]

mod clock;
mod cometbft;
mod props;
mod reference;
mod schedule;
mod sequences;

use mempulse_primitives::{Address, ValidatorId};
use mempulse_schedule::Validator;

/// The address CometBFT's tests give a validator named `name` (its ASCII bytes), padded with
/// zero bytes to 20 bytes, which keeps the byte order of names.
pub(crate) fn named_address(name: &str) -> Address {
    let mut address = [0u8; 20];
    address[..name.len()].copy_from_slice(name.as_bytes());
    Address(address)
}

/// A validator named like CometBFT's test validators; its id is the first 8 address bytes.
pub(crate) fn named(name: &str, power: u64) -> Validator {
    let address = named_address(name);
    let id = u64::from_be_bytes(address.0[..8].try_into().unwrap());
    Validator::new(ValidatorId(id), address, power)
}

/// The id [`named`] gives `name`.
pub(crate) fn id_of(name: &str) -> ValidatorId {
    named(name, 1).id
}

/// A validator with id `id` and an address whose last byte is `id` (ids below 256).
pub(crate) fn numbered(id: u8, power: u64) -> Validator {
    let mut address = [0u8; 20];
    address[19] = id;
    Validator::new(ValidatorId(u64::from(id)), Address(address), power)
}
