//! The time source of ingest: arrival times for facts and propagation timing, and the refill of
//! the per-source token buckets. A trait, so tests drive time by hand instead of sleeping.

use core::fmt::Debug;
use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::{SystemTime, UNIX_EPOCH},
};

use mempulse_primitives::UnixMillis;

/// Where ingest reads the time. Arrival times are recorded for analysis only, never used to
/// order anything; a clock that steps backwards only delays token refills.
pub trait Clock: Send + Sync + Debug + 'static {
    /// Milliseconds since the Unix epoch.
    fn now(&self) -> UnixMillis;
}

/// The operating system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixMillis {
        let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        UnixMillis(u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
    }
}

/// A clock that moves only when told to: for deterministic tests of rate limits and timing.
#[derive(Debug, Default)]
pub struct ManualClock {
    millis: AtomicU64,
}

impl ManualClock {
    /// A clock reading `start`.
    #[must_use]
    pub const fn new(start: UnixMillis) -> Self {
        Self { millis: AtomicU64::new(start.0) }
    }

    /// Moves the clock forward by `millis` (saturating).
    pub fn advance_ms(&self, millis: u64) {
        let _ = self.millis.fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
            Some(now.saturating_add(millis))
        });
    }

    /// Sets the clock to `at` (backwards too, to test a stepping wall clock).
    pub fn set(&self, at: UnixMillis) {
        self.millis.store(at.0, Ordering::Release);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> UnixMillis {
        UnixMillis(self.millis.load(Ordering::Acquire))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(UnixMillis(10));
        assert_eq!(clock.now(), UnixMillis(10));
        clock.advance_ms(5);
        assert_eq!(clock.now(), UnixMillis(15));
        clock.set(UnixMillis(3));
        assert_eq!(clock.now(), UnixMillis(3));
        clock.advance_ms(u64::MAX);
        assert_eq!(clock.now(), UnixMillis(u64::MAX));
    }

    #[test]
    fn system_clock_is_after_2020() {
        assert!(SystemClock.now().0 > 1_577_836_800_000);
    }
}
