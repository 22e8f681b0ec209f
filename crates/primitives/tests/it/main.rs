//! Integration tests of `mempulse-primitives`: one test binary (see `Cargo.toml` `[[test]]`).

// Helpers outside `#[test]` functions are test code too; clippy's `allow-*-in-tests` only covers
// the test functions themselves.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed assumption is a failed test"
)]

mod codec_props;
mod json;
mod vectors;
