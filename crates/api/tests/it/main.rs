//! Integration tests of the API: the router driven in-process with fakes of the services, a
//! real server on loopback, and the event log over a real WAL.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap or assertion is the test report"
)]

mod bad_input;
mod catalog;
mod connections;
mod consistency;
mod events;
mod helpers;
mod rest;
mod rpc;
mod server;
mod state;
mod stream;
mod wal_log;
