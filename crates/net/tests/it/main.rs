//! Integration tests of mempulse-net (one binary, see style B10).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_possible_truncation,
    unreachable_pub,
    reason = "test code: a failed expectation is a test failure"
)]

mod checks;
mod ethereum_tests;
mod frames;
mod ingest;
mod peer;
mod peer_props;
mod pool;
mod props;
mod route;
mod stream;
mod support;
mod vectors;
