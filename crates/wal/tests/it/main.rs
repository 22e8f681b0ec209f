//! Integration tests of mempulse-wal, in one binary (one link on a 2-core CI).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_possible_truncation,
    clippy::print_stdout,
    reason = "test code: a failed unwrap or assertion is the test report"
)]

mod basic;
mod common;
mod corruption;
mod crash;
mod power_loss;
mod props;
mod sequencer;
