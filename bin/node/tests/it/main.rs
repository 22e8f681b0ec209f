//! Integration tests of the `mempulse` binary: real processes, bounded waits.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed assumption is a failed test"
)]

mod blocks;
mod catalog;
mod cluster;
mod cluster_admin;
mod devnet;
mod divergence;
mod failover_load;
mod metrics;
mod reads;
mod replay;
mod rpc;
mod run;
mod schedule;
mod sink;
mod snapshot_catchup;
mod stream;
mod support;
mod verify_state;
mod wal_cli;
mod wiped_node;
