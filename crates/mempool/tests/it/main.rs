//! Integration tests of the mempool state machine (one binary, see style B10).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub,
    reason = "test code: a failed expectation is a test failure"
)]

mod model;
mod props;
mod scenarios;
