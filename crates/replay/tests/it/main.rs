//! Integration tests of `mempulse-replay`: one binary (style B10).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_possible_truncation,
    clippy::type_complexity,
    reason = "test code: a failed assumption is a failed test"
)]

mod checkpoints;
mod determinism;
mod differential;
mod divergence;
mod props;
mod rebase;
mod wal;

use mempulse_primitives::{Event, Seq, SequencedEvent};
use mempulse_replay::{DigestPoint, ReplayConfig, Replayer};

/// Applies `events` as seqs `first..` and returns the digest points crossed.
pub(crate) fn apply_all(replayer: &mut Replayer, first: u64, events: &[Event]) -> Vec<DigestPoint> {
    let mut points = Vec::new();
    for (i, event) in events.iter().enumerate() {
        let seq = Seq(first + i as u64);
        if let Some(p) = replayer.apply(&SequencedEvent { seq, event: event.clone() }).unwrap() {
            points.push(p);
        }
    }
    points
}

pub(crate) fn config(every: u64) -> ReplayConfig {
    ReplayConfig { digest_every_events: every, ..ReplayConfig::default() }
}
