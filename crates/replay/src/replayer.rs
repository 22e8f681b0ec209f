//! [`Replayer`]: applies events strictly in seq order on one thread and keeps the derived state.

use std::collections::VecDeque;

use mempulse_primitives::{
    Address, Digest, Event, EventKind, Height, Nonce, Origin, RaftIndex, Seq, SequencedEvent,
    Subpool, Tx, TxHash,
};
use mempulse_wal::Record;

use crate::{
    DigestPoint, Error, IndexedDigest, ReplayConfig, Result,
    lifecycle::{FactRef, LifecycleIndex, LifecycleLookup},
    state::ReplicatedState,
};

/// A transaction in the pool view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PooledTx<'a> {
    /// The transaction, as its `tx_admitted` fact carried it but for its raw bytes: `raw` is
    /// empty and `encoded_size` gives their length. The bytes stay in the event log, at the
    /// seq of that fact (`Replayer::lifecycle` names it).
    pub tx: &'a Tx,
    /// Pending or queued.
    pub subpool: Subpool,
}

/// One (sender, nonce) slot of a nonce chain with its replacement history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NonceSlot<'a> {
    /// The nonce.
    pub nonce: Nonce,
    /// The transaction holding the nonce, if any (none between a `tx_replaced` and the
    /// replacement's `tx_admitted`).
    pub current: Option<PooledTx<'a>>,
    /// Hashes it replaced, oldest first (the last [`crate::REPLACEMENTS_PER_SLOT_MAX`]).
    pub replaced: &'a [TxHash],
    /// Replacements ever recorded in the slot.
    pub replaced_total: u32,
}

/// The replay engine: the mempool view, per-sender nonce chains with replacement history, the
/// lifecycle index and the digests, derived from events applied strictly in seq order.
///
/// Synchronous and single-threaded: a node drives it from one task (a cursor over the durable
/// log), the offline tool from a WAL scan.
#[derive(Clone, Debug)]
pub struct Replayer {
    config: ReplayConfig,
    state: ReplicatedState,
    lifecycle: LifecycleIndex,
    /// Seq the next event must have (`None` before the first event).
    next_seq: Option<Seq>,
    events: u64,
    /// Latest sealed index digest.
    sealed: IndexedDigest,
    /// Recently sealed index digests, oldest first.
    index_digests: VecDeque<IndexedDigest>,
    /// Scratch for hashes displaced from the view as a side effect.
    displaced: Vec<TxHash>,
}

impl Replayer {
    /// An empty replayer (genesis).
    #[must_use]
    pub fn new(config: ReplayConfig) -> Self {
        let state = ReplicatedState::default();
        let sealed =
            IndexedDigest { raft_index: RaftIndex(0), seq: Seq(0), digest: state.digest() };
        Self {
            lifecycle: LifecycleIndex::new(config.finished_txs_max, config.refs_per_tx_max),
            config,
            state,
            next_seq: None,
            events: 0,
            sealed,
            index_digests: VecDeque::new(),
            displaced: Vec::new(),
        }
    }

    /// Rebuilds a replayer from its parts (checkpoint loading).
    pub(crate) fn from_parts(config: ReplayConfig, parts: ReplayerParts) -> Self {
        let mut index_digests: VecDeque<IndexedDigest> = parts.index_digests.into();
        while index_digests.len() > config.index_digests_max {
            index_digests.pop_front();
        }
        Self {
            config,
            state: parts.state,
            lifecycle: parts.lifecycle,
            next_seq: parts.next_seq,
            events: parts.events,
            sealed: parts.sealed,
            index_digests,
            displaced: Vec::new(),
        }
    }

    pub(crate) const fn state(&self) -> &ReplicatedState {
        &self.state
    }

    pub(crate) const fn lifecycle_index(&self) -> &LifecycleIndex {
        &self.lifecycle
    }

    pub(crate) fn index_digest_list(&self) -> impl ExactSizeIterator<Item = &IndexedDigest> {
        self.index_digests.iter()
    }

    /// The configuration.
    #[must_use]
    pub const fn config(&self) -> &ReplayConfig {
        &self.config
    }

    /// Applies one event (cloning what the state keeps of it).
    ///
    /// # Errors
    /// [`Error::OutOfOrder`] when `event.seq` is not the seq after the last one applied; the
    /// state is unchanged.
    pub fn apply(&mut self, event: &SequencedEvent) -> Result<Option<DigestPoint>> {
        self.apply_event(event.seq, &event.event)
    }

    /// Applies one event at `seq`. The view copies what it keeps (an admitted transaction's
    /// fields, into its box) and nothing else of the event.
    ///
    /// # Errors
    /// As [`Replayer::apply`].
    pub fn apply_event(&mut self, seq: Seq, event: &Event) -> Result<Option<DigestPoint>> {
        match self.next_seq {
            Some(expected) if expected != seq => {
                return Err(Error::OutOfOrder { expected, found: seq });
            }
            Some(_) => {}
            None => self.lifecycle.start_at(seq),
        }
        let kind = &event.kind;
        let subject = kind.tx_hash();
        let code = kind.code();
        let new = match kind {
            EventKind::TxReplaced { new, .. } => Some(*new),
            _ => None,
        };
        let mut subject_in_pool = None;
        if let Origin::Replicated { raft_index } = event.origin {
            if raft_index > self.state.last_index && self.state.last_index > RaftIndex(0) {
                self.seal();
            }
            subject_in_pool = self.state.apply(seq, raft_index, kind, &mut self.displaced);
            for hash in self.displaced.drain(..) {
                self.lifecycle.finish(hash);
            }
        }
        let fact = FactRef { seq, kind: code };
        if let Some(hash) = subject {
            let in_pool = subject_in_pool.unwrap_or_else(|| self.state.contains(&hash));
            debug_assert_eq!(in_pool, self.state.contains(&hash), "the view's own answer");
            self.lifecycle.record(hash, fact, in_pool);
        }
        if let Some(hash) = new {
            self.lifecycle.record(hash, fact, self.state.contains(&hash));
        }
        self.next_seq = seq.checked_next();
        self.events += 1;
        let every = self.config.digest_every_events;
        let point = DigestPoint {
            seq,
            events: self.events,
            raft_index: self.sealed.raft_index,
            digest: self.sealed.digest,
        };
        Ok((every > 0 && seq.0.is_multiple_of(every)).then_some(point))
    }

    /// Decodes a stored payload and applies it. The decode has the checks and errors of
    /// `Event::from_bytes` but skips copying the raw bytes of a lane receipt or an admission
    /// (`Event::from_bytes_without_tx_bodies`): the replayer keeps neither.
    ///
    /// # Errors
    /// [`Error::Decode`] when the payload is not an event (the state is unchanged), otherwise as
    /// [`Replayer::apply`].
    pub fn apply_payload(&mut self, seq: Seq, payload: &[u8]) -> Result<Option<DigestPoint>> {
        let event = Event::from_bytes_without_tx_bodies(payload)
            .map_err(|source| Error::Decode { seq, source })?;
        self.apply_event(seq, &event)
    }

    /// Applies records read from the log (a cursor batch), in order, and returns the digest
    /// points they crossed.
    ///
    /// # Errors
    /// As [`Replayer::apply_payload`]; the records before the failing one stay applied.
    pub fn apply_records(&mut self, records: &[Record]) -> Result<Vec<DigestPoint>> {
        let mut points = Vec::new();
        for record in records {
            if let Some(point) = self.apply_payload(record.seq, &record.payload)? {
                points.push(point);
            }
        }
        Ok(points)
    }

    /// Records the digest of the state as it is now as the digest through the current Raft
    /// index.
    fn seal(&mut self) {
        let sealed = IndexedDigest {
            raft_index: self.state.last_index,
            seq: self.state.last_seq,
            digest: self.state.digest(),
        };
        if self.index_digests.back().is_some_and(|d| d.raft_index == sealed.raft_index) {
            self.index_digests.pop_back();
        }
        self.index_digests.push_back(sealed);
        while self.index_digests.len() > self.config.index_digests_max {
            self.index_digests.pop_front();
        }
        self.sealed = sealed;
    }

    /// Declares every Raft index up to `through` complete (the caller knows all their facts are
    /// applied, e.g. the node's state machine applied `through` and this replayer has read the
    /// log up to the durable seq) and returns the digest through the latest one. Without it,
    /// an index is sealed when the first fact of a higher index arrives.
    pub fn seal_through(&mut self, through: RaftIndex) -> IndexedDigest {
        let open = self.state.last_index;
        if open > RaftIndex(0) && open <= through && self.sealed.raft_index < open {
            self.seal();
        }
        self.sealed
    }

    /// The digest of the replicated state through the last complete Raft index.
    #[must_use]
    pub const fn digest(&self) -> IndexedDigest {
        self.sealed
    }

    /// The digest through `index`, when this replayer still holds it: the latest sealed index
    /// at or below `index`, provided no later index at or below `index` is still open.
    #[must_use]
    pub fn digest_at(&self, index: RaftIndex) -> Option<IndexedDigest> {
        if index > self.sealed.raft_index
            && self.state.last_index <= index
            && self.state.last_index > self.sealed.raft_index
        {
            // An open index at or below `index` may still receive facts.
            return None;
        }
        let pos = self.index_digests.partition_point(|d| d.raft_index <= index);
        match pos.checked_sub(1).and_then(|p| self.index_digests.get(p)) {
            Some(d) => Some(*d),
            // Nothing sealed at or below `index`: known only when nothing replicated came yet.
            None if self.state.last_index == RaftIndex(0) => Some(self.sealed),
            None => None,
        }
    }

    /// Recently sealed index digests, oldest first (at most `index_digests_max`).
    #[must_use]
    pub fn index_digests(&self) -> impl DoubleEndedIterator<Item = &IndexedDigest> {
        self.index_digests.iter()
    }

    /// The digest of the replicated state including the facts of the open (possibly
    /// incomplete) Raft index. Equal across replicas only when that index is complete.
    #[must_use]
    pub fn open_digest(&self) -> IndexedDigest {
        IndexedDigest {
            raft_index: self.state.last_index,
            seq: self.state.last_seq,
            digest: self.state.digest(),
        }
    }

    /// Digest of the local lifecycle index (SHA-256 of its canonical encoding, O(index size)):
    /// two replays of one log agree on it. Not comparable across replicas.
    #[must_use]
    pub fn local_digest(&self) -> Digest {
        let mut bytes = Vec::new();
        self.lifecycle.encode(self.state.pooled_hashes(), &mut bytes);
        Digest::sha256(&bytes)
    }

    /// The facts the lifecycle index holds about `hash`.
    #[must_use]
    pub fn lifecycle(&self, hash: &TxHash) -> LifecycleLookup {
        self.lifecycle.lookup(hash)
    }

    /// A transaction in the pool view.
    #[must_use]
    pub fn pooled(&self, hash: &TxHash) -> Option<PooledTx<'_>> {
        self.state.pooled(hash).map(|p| PooledTx { tx: &p.tx, subpool: p.subpool })
    }

    /// A sender's nonce chain in nonce order: every slot held or with replacement history.
    pub fn nonce_chain(&self, sender: Address) -> impl Iterator<Item = NonceSlot<'_>> {
        self.state.sender_slots(sender).map(|(nonce, slot)| NonceSlot {
            nonce,
            current: slot.current.as_ref().map(|p| PooledTx { tx: &p.tx, subpool: p.subpool }),
            replaced: &slot.replaced,
            replaced_total: slot.replaced_total,
        })
    }

    /// One (sender, nonce) slot.
    #[must_use]
    pub fn nonce_slot(&self, sender: &Address, nonce: Nonce) -> Option<NonceSlot<'_>> {
        self.state.slot(sender, nonce).map(|slot| NonceSlot {
            nonce,
            current: slot.current.as_ref().map(|p| PooledTx { tx: &p.tx, subpool: p.subpool }),
            replaced: &slot.replaced,
            replaced_total: slot.replaced_total,
        })
    }

    /// Transactions in the pool view.
    #[must_use]
    pub fn pool_len(&self) -> usize {
        self.state.pool_len()
    }

    /// Pending transactions in the pool view.
    #[must_use]
    pub const fn pending_len(&self) -> u64 {
        self.state.pending
    }

    /// Height of the last committed block (or the fork point after a reorg).
    #[must_use]
    pub const fn height(&self) -> Height {
        self.state.height
    }

    /// Replicated facts that did not fit the view (see the rules in `state.rs`); 0 on a log the
    /// mempool wrote.
    #[must_use]
    pub const fn anomalies(&self) -> u64 {
        self.state.anomalies
    }

    /// Raft index of the last replicated event applied (`0`: none).
    #[must_use]
    pub const fn last_raft_index(&self) -> RaftIndex {
        self.state.last_index
    }

    /// Seq of the last event applied (`0`: none).
    #[must_use]
    pub fn last_seq(&self) -> Seq {
        self.next_seq.map_or(Seq(0), |n| Seq(n.0.saturating_sub(1)))
    }

    /// Seq the next event must have (`None` before the first event: any seq starts the log).
    #[must_use]
    pub const fn next_seq(&self) -> Option<Seq> {
        self.next_seq
    }

    /// Events applied since the start of the log.
    #[must_use]
    pub const fn events(&self) -> u64 {
        self.events
    }

    /// Transactions the lifecycle index holds.
    #[must_use]
    pub fn lifecycle_len(&self) -> usize {
        self.lifecycle.len()
    }
}

/// The parts a checkpoint stores.
#[derive(Debug)]
pub(crate) struct ReplayerParts {
    pub(crate) state: ReplicatedState,
    pub(crate) lifecycle: LifecycleIndex,
    pub(crate) next_seq: Option<Seq>,
    pub(crate) events: u64,
    pub(crate) sealed: IndexedDigest,
    pub(crate) index_digests: Vec<IndexedDigest>,
}

#[path = "rebase.rs"]
mod rebase;

pub use rebase::Rebased;

#[cfg(test)]
#[path = "replayer_test.rs"]
mod tests;
