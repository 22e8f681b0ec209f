//! Integration tests of mempulse-cluster, in one binary (one link on a 2-core CI).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap or assertion is the test report"
)]

mod cluster;
mod forward;
mod harness;
mod mem_sm;
mod power_loss;
mod read;
mod reinstall;
mod reopen;
mod sim;
mod suite;
mod tcp;
mod wal_sink;
