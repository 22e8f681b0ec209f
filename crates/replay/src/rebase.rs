//! [`Replayer::rebase`]: installs a healthy peer's replicated state through one complete Raft
//! index over this replica's, and continues on this replica's own log and seqs.
//!
//! A replica whose event log holds a wrong fact (a bad encoder, a bad disk, a buggy sink) has a
//! replicated digest that differs from its peers' from that fact's index on, forever: replaying
//! its own log reproduces the wrong fact. The peer's checkpoint carries the right replicated
//! state, but in the peer's seqs and with the peer's local lifecycle index. Rebasing keeps what
//! is local (seqs, event count, the lifecycle index, digest points) and takes what is
//! replicated (the pool view, slots, reopen window, counters, commitment and the sealed
//! digests through the peer's index) from the peer; this log's replicated facts after that
//! index are then re-applied on top, read back from the log.
//!
//! The peer's index digests name the peer's seqs; each is mapped to the seq where the same
//! index ends in this log (this replayer's own digest through it), and dropped when this
//! replayer no longer holds that index.

use std::ops::ControlFlow;

use mempulse_primitives::{Event, Origin, RaftIndex, Seq};
use mempulse_wal::WalReader;

use super::Replayer;
use crate::{Error, IndexedDigest, Result, error::RebaseRefusal};

/// What [`Replayer::rebase`] installed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rebased {
    /// The peer's digest through the index its state is complete through (`seq`: where that
    /// index ends in this log).
    pub installed: IndexedDigest,
    /// This log's replicated facts after the installed index, re-applied over the peer's state.
    pub reapplied: u64,
    /// The digest through the last sealed index after re-applying them.
    pub sealed: IndexedDigest,
}

impl Replayer {
    /// Replaces this replayer's replicated state with `peer`'s — a healthy replica's replayer
    /// (usually decoded from its checkpoint, [`crate::checkpoint_from_bytes`]) whose state is
    /// complete through its last sealed index *I* — and re-applies this log's replicated facts
    /// with an index above *I* (read from `reader`, up to this replayer's last seq). Local
    /// state stays: seqs, event count, the lifecycle index (its pool membership follows the new
    /// view), and the configuration. Afterwards the digest through every index ≥ *I* is the one
    /// the peer's own replay has, as long as this log's facts above *I* are right.
    ///
    /// # Errors
    /// [`Error::Rebase`] when the peer's state is not complete through its sealed index, this
    /// replayer has not sealed *I* yet, or no longer holds where *I* ends in its log;
    /// [`Error::Wal`], [`Error::Purged`] or [`Error::Decode`] when this log's facts after *I*
    /// cannot be read back. On any error this replayer is unchanged.
    pub fn rebase(&mut self, peer: Self, reader: &WalReader) -> Result<Rebased> {
        let through = peer.sealed.raft_index;
        if peer.state.last_index != through {
            let open = peer.state.last_index;
            return Err(Error::Rebase(RebaseRefusal::PeerIndexOpen { sealed: through, open }));
        }
        if self.sealed.raft_index < through {
            let local = self.sealed.raft_index;
            return Err(Error::Rebase(RebaseRefusal::LocalBehind { local, peer: through }));
        }
        let Some(ends) = self.digest_at(through) else {
            return Err(Error::Rebase(RebaseRefusal::NotHeld { index: through }));
        };
        let installed = IndexedDigest { seq: ends.seq, ..peer.sealed };
        let mut rebased = Self {
            config: self.config,
            state: peer.state,
            lifecycle: self.lifecycle.clone(),
            next_seq: self.next_seq,
            events: self.events,
            sealed: installed,
            index_digests: peer
                .index_digests
                .iter()
                .filter(|d| d.raft_index <= through)
                .filter_map(|d| {
                    self.digest_at(d.raft_index).map(|l| IndexedDigest { seq: l.seq, ..*d })
                })
                .collect(),
            displaced: Vec::new(),
        };
        if rebased.index_digests.back().is_none_or(|d| d.raft_index != through) {
            rebased.index_digests.push_back(installed);
        }
        while rebased.index_digests.len() > rebased.config.index_digests_max {
            rebased.index_digests.pop_front();
        }
        rebased.state.last_seq = ends.seq;
        let reapplied = rebased.reapply_after(through, ends.seq, self.last_seq(), reader)?;
        rebased.follow_pool_view(self);
        *self = rebased;
        Ok(Rebased { installed, reapplied, sealed: self.sealed })
    }

    /// Applies, to the replicated state only, this log's replicated facts with an index above
    /// `through` in the seqs `after + 1 ..= to`. The lifecycle index already holds them.
    fn reapply_after(
        &mut self,
        through: RaftIndex,
        after: Seq,
        to: Seq,
        reader: &WalReader,
    ) -> Result<u64> {
        let Some(from) = after.checked_next().filter(|from| *from <= to) else { return Ok(0) };
        let limit = usize::try_from(to.0 - from.0 + 1).unwrap_or(usize::MAX);
        let (mut reapplied, mut failure) = (0_u64, None);
        reader
            .scan_with(from, limit, |seq, payload| {
                let event = match Event::from_bytes_without_tx_bodies(payload) {
                    Ok(event) => event,
                    Err(source) => {
                        failure = Some(Error::Decode { seq, source });
                        return ControlFlow::Break(());
                    }
                };
                if let Origin::Replicated { raft_index } = event.origin
                    && raft_index > through
                {
                    if raft_index > self.state.last_index && self.state.last_index > RaftIndex(0) {
                        self.seal();
                    }
                    let _ = self.state.apply(seq, raft_index, &event.kind, &mut self.displaced);
                    self.displaced.clear();
                    reapplied += 1;
                }
                ControlFlow::Continue(())
            })
            .map_err(|e| match e {
                mempulse_wal::Error::Purged { first, requested } => {
                    Error::Purged { first, needed: requested }
                }
                other => Error::Wal(other),
            })?;
        match failure {
            Some(error) => Err(error),
            None => Ok(reapplied),
        }
    }

    /// Makes the lifecycle index's live entries the new pool view's transactions: those that
    /// left the view (`before` held them) are finished, those back in it are live again.
    fn follow_pool_view(&mut self, before: &Self) {
        // Revive first: finishing may trim the oldest finished entries.
        for hash in self.state.pooled_hashes() {
            self.lifecycle.revive(*hash);
        }
        for hash in before.state.pooled_hashes() {
            if !self.state.contains(hash) {
                self.lifecycle.finish(*hash);
            }
        }
    }
}
