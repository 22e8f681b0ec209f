//! Rule constants (which decide the replicated digest) and the local configuration (which does
//! not). `Default` is the embedded default.

use std::time::Duration;

/// Version of the derivation rules: how events change the derived state and how the digest is
/// computed. Recorded in every checkpoint; a checkpoint written under another version is never
/// resumed from (replay falls back to genesis). Bump it with any change to `state.rs`,
/// `commitment.rs`, `digest.rs` or the constants marked *rule* below.
/// Version 2: commitment entries are one compressed block each (`commitment.rs`), and the
/// reopen window's bound counts inclusion records (`window.rs`).
pub const RULE_VERSION: u16 = 2;

/// *Rule.* Replaced hashes kept per (sender, nonce) slot, newest last; older ones are counted
/// only. Part of the replicated state, so the same on every replica.
pub const REPLACEMENTS_PER_SLOT_MAX: usize = 8;

/// *Rule.* Included transactions keep their bodies for this many heights, so a reorg's
/// `tx_reopened` (which names only the hash) can put the transaction back in the pool view.
pub const REOPEN_WINDOW_HEIGHTS: u64 = 64;

/// *Rule.* At most this many inclusion records are kept (oldest heights go first); every
/// `tx_included` of a height still held counts, reopened or included again since or not.
pub const REOPEN_BODIES_MAX: usize = 65_536;

/// Default distance between digest points, in seqs (a point at every multiple).
pub const DEFAULT_DIGEST_EVERY_EVENTS: u64 = 10_000;

/// Default number of finished transactions whose lifecycles are kept (least recent first out).
pub const DEFAULT_FINISHED_TXS_MAX: usize = 100_000;

/// Default number of fact references kept per transaction (later ones are counted only).
pub const DEFAULT_REFS_PER_TX_MAX: usize = 16;

/// Default number of per-Raft-index digests kept for state-root comparison and bisection.
pub const DEFAULT_INDEX_DIGESTS_MAX: usize = 4_096;

/// Default number of checkpoint files a [`crate::CheckpointStore`] keeps.
pub const DEFAULT_CHECKPOINTS_RETAINED: usize = 3;

/// Default checkpoint interval in events.
pub const DEFAULT_CHECKPOINT_EVERY_EVENTS: u64 = 1_000_000;

/// Default checkpoint interval in time.
pub const DEFAULT_CHECKPOINT_EVERY: Duration = Duration::from_secs(300);

/// Local configuration of a [`crate::Replayer`]. None of it reaches the replicated digest, so
/// replicas may differ here; the lifecycle bounds do shape the local lifecycle index, so a
/// genesis replay and a checkpoint replay agree only under the same values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplayConfig {
    /// A digest point after every seq that is a multiple of this (`0`: no digest points).
    /// Seq-aligned, so a replay from a checkpoint reports the same points as one from genesis.
    pub digest_every_events: u64,
    /// Finished transactions (not in the pool view) whose lifecycles are kept, least recently
    /// touched first out.
    pub finished_txs_max: usize,
    /// Fact references kept per transaction; later ones are counted in `omitted`.
    pub refs_per_tx_max: usize,
    /// Sealed per-Raft-index digests kept, newest last.
    pub index_digests_max: usize,
}

impl Default for ReplayConfig {
    fn default() -> Self {
        Self {
            digest_every_events: DEFAULT_DIGEST_EVERY_EVENTS,
            finished_txs_max: DEFAULT_FINISHED_TXS_MAX,
            refs_per_tx_max: DEFAULT_REFS_PER_TX_MAX,
            index_digests_max: DEFAULT_INDEX_DIGESTS_MAX,
        }
    }
}

/// When the caller should write a checkpoint: every `every_events` events or every `every` of
/// the caller's clock, whichever comes first. The crate reads no clock: the caller passes the
/// time elapsed since its last checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckpointPolicy {
    /// Events between checkpoints (`0`: no event trigger).
    pub every_events: u64,
    /// Time between checkpoints (`Duration::ZERO`: no time trigger).
    pub every: Duration,
}

impl Default for CheckpointPolicy {
    fn default() -> Self {
        Self { every_events: DEFAULT_CHECKPOINT_EVERY_EVENTS, every: DEFAULT_CHECKPOINT_EVERY }
    }
}

impl CheckpointPolicy {
    /// Whether a checkpoint is due, given the events applied and the time elapsed since the last
    /// one. Nothing is due when no event was applied since.
    #[must_use]
    pub fn should_checkpoint(&self, events_since: u64, elapsed: Duration) -> bool {
        events_since > 0
            && ((self.every_events > 0 && events_since >= self.every_events)
                || (!self.every.is_zero() && elapsed >= self.every))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_is_due_on_either_trigger_and_never_without_events() {
        let p = CheckpointPolicy { every_events: 100, every: Duration::from_secs(10) };
        assert!(!p.should_checkpoint(99, Duration::from_secs(9)));
        assert!(p.should_checkpoint(100, Duration::ZERO));
        assert!(p.should_checkpoint(1, Duration::from_secs(10)));
        assert!(!p.should_checkpoint(0, Duration::from_secs(3600)));
        let events_only = CheckpointPolicy { every_events: 5, every: Duration::ZERO };
        assert!(!events_only.should_checkpoint(4, Duration::from_secs(3600)));
        let never = CheckpointPolicy { every_events: 0, every: Duration::ZERO };
        assert!(!never.should_checkpoint(u64::MAX, Duration::MAX));
    }
}
