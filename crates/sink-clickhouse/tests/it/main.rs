//! Integration tests of mempulse-sink-clickhouse against a real ClickHouse server, in one binary.
//!
//! The server is `MEMPULSE_CLICKHOUSE_URL`; when unset, the tests start one with
//! `ci/clickhouse.sh start` (it keeps running; `ci/clickhouse.sh stop` stops it).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::cast_possible_truncation,
    reason = "test code: a failed unwrap or assertion is the test report"
)]

mod common;
mod export;
mod kill;
mod retry;
