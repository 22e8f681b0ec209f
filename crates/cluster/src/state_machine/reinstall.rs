//! Reinstalling a diverged member's mempool from a healthy member's (design rule 6,
//! `docs/design/divergence.md`).
//!
//! openraft only sends a snapshot to a member whose log ends below the leader's purge point,
//! and a member ignores one that is not newer than what it applied, so an up-to-date member
//! whose state machine diverged cannot be repaired through Raft. This does it beside Raft:
//!
//! ```text
//!  peer's mempool at its applied index P (MempoolExport: bytes + SHA-256)
//!        │ restore (checked digest)
//!        ▼
//!  re-apply this member's own log entries P+1 ..= L (L: what it has applied; read from the
//!        │  Raft log store; facts discarded: the event log already holds this member's)
//!        ▼
//!  swap it in under the state lock, at exactly L: entries L+1.. apply to the repaired pool
//! ```
//! Waits (bounded) until this member has applied P, so the peer's state is never ahead of
//! this member's log position. The Raft log, the vote and the event log are untouched.

use std::{fmt, thread, time::Duration};

use mempulse_mempool::Mempool;
use mempulse_primitives::{Digest, RaftIndex};

use super::StateHandle;
use crate::{LogReader, types::Payload};

/// Pause between two looks at the applied index while waiting for the snapshot's index.
const APPLIED_POLL: Duration = Duration::from_millis(5);

/// A member's mempool at its last applied index, as another member installs it.
#[derive(Clone, PartialEq, Eq)]
pub struct MempoolExport {
    /// The index the mempool reflects (the member's last applied one).
    pub applied: RaftIndex,
    /// SHA-256 of `bytes` (equal to `Mempool::digest` of the state).
    pub digest: Digest,
    /// The mempool's canonical snapshot encoding (`Mempool::snapshot`).
    pub bytes: Vec<u8>,
}

impl fmt::Debug for MempoolExport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MempoolExport")
            .field("applied", &self.applied)
            .field("digest", &self.digest)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

impl StateHandle {
    /// The mempool at the last applied index, encoded for another member (`None` before the
    /// first entry was applied). Encodes under the state lock (apply waits meanwhile).
    #[must_use]
    pub fn export_mempool(&self) -> Option<MempoolExport> {
        let (applied, bytes) = {
            let state = self.lock();
            (state.applied?, state.mempool.snapshot())
        };
        Some(MempoolExport {
            applied: RaftIndex(applied.index),
            digest: Digest::sha256(&bytes),
            bytes,
        })
    }
}

/// What a reinstall did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reinstalled {
    /// The index of the peer's mempool that was installed.
    pub from: RaftIndex,
    /// The index this member's mempool now reflects (its applied index at the swap).
    pub through: RaftIndex,
    /// Log entries re-applied on top of the peer's mempool (`through − from`).
    pub reapplied: u64,
    /// Digest of the mempool installed, at `through`.
    pub digest: Digest,
}

/// Why a reinstall did not happen (the state is unchanged).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReinstallError {
    /// The bytes do not hash to the digest announced with them.
    #[error("the mempool received hashes to {actual}, not the {announced} announced")]
    DigestMismatch {
        /// The digest announced.
        announced: Digest,
        /// The digest of the bytes.
        actual: Digest,
    },
    /// The bytes are not a mempool snapshot this build can restore.
    #[error("the mempool received does not restore")]
    Corrupt(#[source] mempulse_mempool::Error),
    /// This member did not apply the snapshot's index within the wait.
    #[error("this member applied {applied:?}, not yet {snapshot} (the snapshot's index)")]
    Behind {
        /// This member's applied index.
        applied: Option<RaftIndex>,
        /// The snapshot's index.
        snapshot: RaftIndex,
    },
    /// This member's log no longer holds the entries after the snapshot's index (purged).
    #[error("the log does not hold entries {from}..={through} (holds {held} of them)")]
    LogMissing {
        /// First entry needed.
        from: RaftIndex,
        /// Last entry needed.
        through: RaftIndex,
        /// How many of them the log returned.
        held: u64,
    },
    /// Reading the log failed.
    #[error("reading the Raft log failed")]
    Log(#[source] crate::Error),
}

/// Reinstalls this member's mempool from a healthy member's ([`MempoolExport`]); obtained
/// from [`crate::RaftNode::mempool_reinstaller`].
#[derive(Clone)]
pub struct MempoolReinstaller {
    state: StateHandle,
    log: LogReader,
}

impl fmt::Debug for MempoolReinstaller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MempoolReinstaller").field("applied", &self.state.applied()).finish()
    }
}

impl MempoolReinstaller {
    pub(crate) const fn new(state: StateHandle, log: LogReader) -> Self {
        Self { state, log }
    }

    /// Replaces this member's mempool with `export` brought forward to this member's applied
    /// index by re-applying its own log entries after `export.applied`. Waits up to `wait` for
    /// this member to apply `export.applied`. Blocking (log reads, re-apply): call it off the
    /// async workers. The replaced state's facts stay in the event log as they were written.
    ///
    /// # Errors
    /// [`ReinstallError`]; the state is then unchanged.
    pub fn reinstall(
        &self,
        export: &MempoolExport,
        wait: Duration,
    ) -> Result<Reinstalled, ReinstallError> {
        let actual = Digest::sha256(&export.bytes);
        if actual != export.digest {
            return Err(ReinstallError::DigestMismatch { announced: export.digest, actual });
        }
        let mut mempool = Mempool::restore(&export.bytes).map_err(ReinstallError::Corrupt)?;
        let from = export.applied;
        let mut through = self.wait_applied(from, wait)?;
        // Most of the catching up happens outside the state lock; the entries applied in the
        // meantime are re-applied under it, so the swap lands exactly at the applied index.
        self.reapply(&mut mempool, from, through)?;
        let mut state = self.state.lock();
        let applied = state.applied.map_or(RaftIndex(0), |id| RaftIndex(id.index));
        self.reapply(&mut mempool, through, applied)?;
        through = applied;
        let digest = mempool.digest();
        state.mempool = mempool;
        drop(state);
        Ok(Reinstalled { from, through, reapplied: through.0 - from.0, digest })
    }

    /// This member's applied index once it is at least `index`, waiting up to `wait`.
    fn wait_applied(&self, index: RaftIndex, wait: Duration) -> Result<RaftIndex, ReinstallError> {
        let deadline = std::time::Instant::now() + wait;
        loop {
            let applied = self.state.applied().map(|id| RaftIndex(id.index));
            match applied {
                Some(applied) if applied >= index => return Ok(applied),
                _ if std::time::Instant::now() >= deadline => {
                    return Err(ReinstallError::Behind { applied, snapshot: index });
                }
                _ => thread::sleep(APPLIED_POLL),
            }
        }
    }

    /// Applies this member's log entries `after + 1 ..= through` to `mempool`.
    fn reapply(
        &self,
        mempool: &mut Mempool,
        after: RaftIndex,
        through: RaftIndex,
    ) -> Result<(), ReinstallError> {
        if through <= after {
            return Ok(());
        }
        let entries =
            self.log.entries(after.0 + 1..=through.0, u64::MAX).map_err(ReinstallError::Log)?;
        let held = entries.len() as u64;
        let contiguous = entries.iter().zip(after.0 + 1..).all(|(e, i)| e.log_id.index == i);
        if held != through.0 - after.0 || !contiguous {
            return Err(ReinstallError::LogMissing { from: RaftIndex(after.0 + 1), through, held });
        }
        for entry in entries {
            if let Payload::Normal(request) = entry.payload {
                for command in request.commands {
                    // The outcome (and its facts) only matter for the pool it leaves behind.
                    let _ = mempool.apply(command);
                }
            }
        }
        Ok(())
    }
}
