//! The replicated derived state: the pool view, per-sender nonce slots with their replacement
//! history, the reopen window and the running commitment. A function of replicated events
//! only; local events never reach it.
//!
//! Rules (each is part of [`crate::RULE_VERSION`]):
//! - `tx_admitted` puts the transaction in its (sender, nonce) slot with the given subpool. A
//!   slot already holding another transaction without a `tx_replaced` first is an anomaly: the
//!   holder leaves the view silently (counted in `anomalies`).
//! - `tx_replaced` takes `old` out of the view and appends it to the slot's history (the last
//!   [`REPLACEMENTS_PER_SLOT_MAX`] are kept, all are counted); the `tx_admitted` of `new`
//!   follows.
//! - `tx_promoted` moves a queued transaction to pending.
//! - `tx_evicted` and `tx_included` remove the slot (history included). An inclusion is recorded
//!   with its body for [`crate::REOPEN_WINDOW_HEIGHTS`] heights (at most
//!   [`crate::REOPEN_BODIES_MAX`] records; the rules are in `window.rs`).
//! - `tx_reopened` names only a hash: the body comes from the reopen window, and since the fact
//!   carries no subpool the view infers it: pending when the sender has no pooled transaction
//!   below it, or when the one right below (nonce − 1) is pending; queued otherwise. A body
//!   outside the window is an anomaly (the transaction stays out of the view).
//! - `block_committed` and `reorg_detected` set the height.
//! - Every other kind only counts. A fact naming a transaction the view does not hold where it
//!   must (promote, evict, include) is an anomaly and changes nothing else.

use mempulse_primitives::{
    Address, Decode, DecodeError, Digest, Encode, EventKind, Height, Nonce, RaftIndex, Reader, Seq,
    Subpool, Tx, TxHash,
    codec::{decode_tx_without_raw, encode_tx_without_raw},
};

use crate::{
    commitment::{Commitment, replaced_entry, slot_entry},
    config::{REPLACEMENTS_PER_SLOT_MAX, RULE_VERSION},
    lookup::TxIndex,
    slots::SlotMap,
    window::ReopenWindow,
};

/// A transaction in the pool view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Pooled {
    /// Without its raw bytes (`raw` is empty, `encoded_size` gives their length): they stay in
    /// the event log, at the seq of its `tx_admitted` fact, and nothing derived reads them.
    /// Boxed: a slot lives inline in the slot map's table, which moves it when it grows, and a
    /// pointer keeps the table's entries small.
    pub(crate) tx: Box<Tx>,
    pub(crate) subpool: Subpool,
    /// Its slot entry's hash in the commitment (`slot_entry` of its sender, nonce, hash and
    /// subpool), kept so removing it costs no second SHA-256.
    entry: Digest,
}

impl Pooled {
    pub(crate) fn new(mut tx: Box<Tx>, subpool: Subpool) -> Self {
        if !tx.raw.is_empty() {
            tx.raw = Default::default();
        }
        let entry = slot_entry(&tx.sender, tx.nonce, &tx.hash, subpool);
        Self { tx, subpool, entry }
    }
}

/// One (sender, nonce) slot: the transaction holding it and the ones it replaced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Slot {
    pub(crate) current: Option<Pooled>,
    /// Replaced hashes, oldest first, at most [`REPLACEMENTS_PER_SLOT_MAX`].
    pub(crate) replaced: Vec<TxHash>,
    /// Replacements ever recorded in this slot.
    pub(crate) replaced_total: u32,
}

impl Slot {
    /// Ordinal of `replaced[i]`.
    fn ordinal(&self, i: usize) -> u32 {
        let kept = u32::try_from(self.replaced.len()).unwrap_or(u32::MAX);
        let i = u32::try_from(i).unwrap_or(u32::MAX);
        self.replaced_total.saturating_sub(kept).saturating_add(i)
    }
}

/// A slot's (sender, nonce), ordered exactly as the tuple `(Address, Nonce)` (the sender's bytes
/// lexicographically, then the nonce), but compared as three big-endian words of the sender
/// instead of a 20-byte `memcmp` call (sorting every slot for a checkpoint compares them), and
/// hashed as those words and the nonce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SlotKey(pub(crate) Address, pub(crate) Nonce);

impl SlotKey {
    /// The sender as words whose numeric order is the bytes' lexicographic order.
    fn words(&self) -> (u64, u64, u32) {
        address_words(&self.0)
    }
}

/// An address as three big-endian words: their numeric order is the bytes' lexicographic order.
pub(crate) fn address_words(address: &Address) -> (u64, u64, u32) {
    let bytes = &address.0;
    let (mut hi, mut mid, mut lo) = ([0u8; 8], [0u8; 8], [0u8; 4]);
    hi.copy_from_slice(&bytes[..8]);
    mid.copy_from_slice(&bytes[8..16]);
    lo.copy_from_slice(&bytes[16..]);
    (u64::from_be_bytes(hi), u64::from_be_bytes(mid), u32::from_be_bytes(lo))
}

impl Ord for SlotKey {
    fn cmp(&self, other: &Self) -> core::cmp::Ordering {
        self.words().cmp(&other.words()).then(self.1.cmp(&other.1))
    }
}

/// Four words into the keyed hasher (the derived `Hash` would feed it the sender byte by byte).
impl core::hash::Hash for SlotKey {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        let (hi, mid, lo) = self.words();
        state.write_u64(hi);
        state.write_u64(mid);
        state.write_u64(u64::from(lo));
        state.write_u64(self.1.0);
    }
}

impl PartialOrd for SlotKey {
    fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// The replicated derived state.
#[derive(Clone, Debug, Default)]
pub(crate) struct ReplicatedState {
    slots: SlotMap,
    /// Where each pooled transaction sits (lookup only).
    by_hash: TxIndex<SlotKey>,
    /// Bodies of recently included transactions, for `tx_reopened`.
    included: ReopenWindow,
    pub(crate) height: Height,
    pub(crate) pending: u64,
    pub(crate) replicated_events: u64,
    pub(crate) anomalies: u64,
    /// Raft index of the last replicated event applied (0: none).
    pub(crate) last_index: RaftIndex,
    /// Seq of the last replicated event applied.
    pub(crate) last_seq: Seq,
    pub(crate) commitment: Commitment,
}

impl ReplicatedState {
    pub(crate) fn pool_len(&self) -> usize {
        self.by_hash.len()
    }

    pub(crate) fn contains(&self, hash: &TxHash) -> bool {
        self.by_hash.contains(hash)
    }

    pub(crate) fn pooled(&self, hash: &TxHash) -> Option<&Pooled> {
        let key = self.by_hash.get(hash)?;
        self.slots.get(key)?.current.as_ref()
    }

    pub(crate) fn slot(&self, sender: &Address, nonce: Nonce) -> Option<&Slot> {
        self.slots.get(&SlotKey(*sender, nonce))
    }

    /// The slots of one sender, in nonce order.
    pub(crate) fn sender_slots(&self, sender: Address) -> impl Iterator<Item = (Nonce, &Slot)> {
        self.slots.sender(sender)
    }

    /// Hashes of every pooled transaction, in (sender, nonce) order.
    pub(crate) fn pooled_hashes(&self) -> impl Iterator<Item = &TxHash> {
        let sorted = self.slots.sorted();
        sorted.into_iter().filter_map(|(_, s)| s.current.as_ref().map(|p| &p.tx.hash))
    }

    /// The digest of the state as it is now: SHA-256 over
    /// `b"MPRD" | rule u16 | raft_index u64 | height u64 | replicated_events u64 | pool u64 |
    /// pending u64 | anomalies u64 | commitment [32]` (little-endian).
    pub(crate) fn digest(&self) -> Digest {
        let mut buf = [0u8; 86];
        buf[..4].copy_from_slice(b"MPRD");
        buf[4..6].copy_from_slice(&RULE_VERSION.to_le_bytes());
        let words = [
            self.last_index.0,
            self.height.0,
            self.replicated_events,
            self.pool_len() as u64,
            self.pending,
            self.anomalies,
        ];
        for (chunk, word) in buf[6..54].chunks_exact_mut(8).zip(words) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        buf[54..].copy_from_slice(&self.commitment.to_bytes());
        Digest::sha256(&buf)
    }

    /// Applies one replicated event. Hashes that left the view as a side effect of the event
    /// (not as its subject) are pushed to `displaced`. Returns whether the event's subject
    /// (`EventKind::tx_hash`) is in the view afterwards when applying it told (`None`: look it
    /// up), which spares the caller a lookup for most transaction facts.
    pub(crate) fn apply(
        &mut self,
        seq: Seq,
        index: RaftIndex,
        kind: &EventKind,
        displaced: &mut Vec<TxHash>,
    ) -> Option<bool> {
        self.replicated_events += 1;
        self.last_seq = seq;
        if index < self.last_index {
            self.anomalies += 1;
        } else {
            self.last_index = index;
        }
        match kind {
            EventKind::TxAdmitted { tx, subpool } => {
                self.admit(tx, *subpool, displaced);
                Some(true)
            }
            EventKind::TxReplaced { old, new: _, sender, nonce } => {
                // `old` leaves the view (or was not in it).
                self.replace(*old, *sender, *nonce);
                Some(false)
            }
            EventKind::TxPromoted { hash } => Some(self.promote(hash)),
            EventKind::TxEvicted { hash, .. } => {
                if self.remove_slot_of(hash).is_none() {
                    self.anomalies += 1;
                }
                Some(false)
            }
            EventKind::TxIncluded { hash, height } => {
                match self.remove_slot_of(hash) {
                    Some(tx) => self.included.keep(*height, *tx),
                    None => self.anomalies += 1,
                }
                Some(false)
            }
            EventKind::TxReopened { hash, .. } => Some(self.reopen(hash)),
            EventKind::BlockCommitted { height, .. } => {
                self.height = *height;
                self.included.trim(*height);
                None
            }
            EventKind::ReorgDetected { fork_height, .. } => {
                self.height = *fork_height;
                None
            }
            // Facts that do not change the view (rejections, lane facts, proposals, cluster and
            // replay facts) and kinds newer than this build only count.
            _ => None,
        }
    }

    /// Adds a pooled transaction's slot entry; `key` is its (sender, nonce).
    fn add_entry(&mut self, key: &SlotKey, pooled: &Pooled) {
        debug_assert_eq!(*key, SlotKey(pooled.tx.sender, pooled.tx.nonce), "slot of its own");
        self.commitment.add(&pooled.entry);
        if pooled.subpool == Subpool::Pending {
            self.pending += 1;
        }
    }

    fn sub_entry(&mut self, key: &SlotKey, pooled: &Pooled) {
        debug_assert_eq!(*key, SlotKey(pooled.tx.sender, pooled.tx.nonce), "slot of its own");
        self.commitment.sub(&pooled.entry);
        if pooled.subpool == Subpool::Pending {
            self.pending = self.pending.saturating_sub(1);
        }
    }

    fn admit(&mut self, tx: &Tx, subpool: Subpool, displaced: &mut Vec<TxHash>) {
        if self.by_hash.contains(&tx.hash) {
            // Admitted twice: the later fact wins.
            self.anomalies += 1;
            self.remove_slot_of(&tx.hash);
        }
        let key = SlotKey(tx.sender, tx.nonce);
        let pooled = Pooled::new(Box::new(tx.clone()), subpool);
        let (hash, entry, pending) = (pooled.tx.hash, pooled.entry, pooled.subpool);
        // One lookup in the slot map: the slot is created or its holder swapped out in place.
        let holder = self.slots.get_or_default(key).current.replace(pooled);
        if let Some(holder) = holder {
            self.anomalies += 1;
            self.commitment.sub(&holder.entry);
            if holder.subpool == Subpool::Pending {
                self.pending = self.pending.saturating_sub(1);
            }
            self.by_hash.remove(&holder.tx.hash);
            displaced.push(holder.tx.hash);
        }
        self.commitment.add(&entry);
        if pending == Subpool::Pending {
            self.pending += 1;
        }
        self.by_hash.insert(hash, key);
    }

    fn replace(&mut self, old: TxHash, sender: Address, nonce: Nonce) {
        let key = SlotKey(sender, nonce);
        match self.by_hash.get(&old).copied() {
            Some(at) if at == key => {
                let taken = self.slots.get_mut(&key).and_then(|slot| slot.current.take());
                if let Some(holder) = taken {
                    self.sub_entry(&key, &holder);
                }
                self.by_hash.remove(&old);
            }
            Some(_) => {
                // The old transaction sits in another slot: take it out there.
                self.anomalies += 1;
                self.remove_slot_of(&old);
            }
            None => self.anomalies += 1,
        }
        let slot = self.slots.get_or_default(key);
        let ordinal = slot.replaced_total;
        slot.replaced.push(old);
        slot.replaced_total = slot.replaced_total.saturating_add(1);
        let dropped = if slot.replaced.len() > REPLACEMENTS_PER_SLOT_MAX {
            let first_ordinal = slot.ordinal(0);
            Some((slot.replaced.remove(0), first_ordinal))
        } else {
            None
        };
        self.commitment.add(&replaced_entry(&sender, nonce, &old, ordinal));
        if let Some((hash, ordinal)) = dropped {
            self.commitment.sub(&replaced_entry(&sender, nonce, &hash, ordinal));
        }
    }

    /// Returns whether `hash` is in the view.
    fn promote(&mut self, hash: &TxHash) -> bool {
        let Some(key) = self.by_hash.get(hash).copied() else {
            self.anomalies += 1;
            return false;
        };
        let pooled = self.slots.get_mut(&key).and_then(|s| s.current.as_mut());
        let Some(pooled) = pooled.filter(|p| p.subpool != Subpool::Pending) else {
            // Not in its slot, or pending already.
            self.anomalies += 1;
            return true;
        };
        let new = slot_entry(&key.0, key.1, hash, Subpool::Pending);
        self.commitment.sub(&pooled.entry);
        self.commitment.add(&new);
        pooled.subpool = Subpool::Pending;
        pooled.entry = new;
        self.pending += 1;
        true
    }

    /// Removes the slot holding `hash` (with its history) and returns the transaction.
    fn remove_slot_of(&mut self, hash: &TxHash) -> Option<Box<Tx>> {
        let key = self.by_hash.remove(hash)?;
        let slot = self.slots.remove(&key)?;
        for (i, old) in slot.replaced.iter().enumerate() {
            self.commitment.sub(&replaced_entry(&key.0, key.1, old, slot.ordinal(i)));
        }
        let pooled = slot.current?;
        self.sub_entry(&key, &pooled);
        Some(pooled.tx)
    }

    /// Returns whether `hash` is in the view afterwards.
    fn reopen(&mut self, hash: &TxHash) -> bool {
        if self.by_hash.contains(hash) {
            self.anomalies += 1;
            return true;
        }
        let Some((_, tx)) = self.included.take(hash) else {
            self.anomalies += 1;
            return false;
        };
        let key = SlotKey(tx.sender, tx.nonce);
        if self.slots.get(&key).is_some_and(|s| s.current.is_some()) {
            self.anomalies += 1;
            return false;
        }
        let below = self
            .slots
            .sender(tx.sender)
            .rev()
            .filter(|(nonce, _)| *nonce < key.1)
            .find_map(|(nonce, s)| s.current.as_ref().map(|p| (nonce, p.subpool)));
        let subpool = match below {
            None => Subpool::Pending,
            Some((nonce, Subpool::Pending)) if nonce.0.checked_add(1) == Some(key.1.0) => {
                Subpool::Pending
            }
            Some(_) => Subpool::Queued,
        };
        let pooled = Pooled::new(Box::new(tx), subpool);
        self.add_entry(&key, &pooled);
        self.by_hash.insert(*hash, key);
        self.slots.get_or_default(key).current = Some(pooled);
        true
    }

    /// Appends the canonical encoding (layout in `checkpoint/format.rs`).
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        for word in [
            self.height.0,
            self.replicated_events,
            self.anomalies,
            self.last_index.0,
            self.last_seq.0,
        ] {
            word.encode(out);
        }
        put_count(out, self.slots.len());
        for (SlotKey(sender, nonce), slot) in self.slots.sorted() {
            sender.encode(out);
            nonce.encode(out);
            match &slot.current {
                None => out.push(0),
                Some(p) => {
                    out.push(1);
                    encode_tx_without_raw(&p.tx, out);
                    p.subpool.encode(out);
                }
            }
            slot.replaced_total.encode(out);
            slot.replaced.encode(out);
        }
        self.included.encode(out);
    }

    /// Reads the encoding written by [`ReplicatedState::encode`] and rebuilds the indexes and
    /// the commitment.
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut state = Self {
            height: Height::decode(r)?,
            replicated_events: u64::decode(r)?,
            anomalies: u64::decode(r)?,
            last_index: RaftIndex::decode(r)?,
            last_seq: Seq::decode(r)?,
            ..Self::default()
        };
        // A slot encodes to at least 20 + 8 + 1 + 4 + 4 bytes.
        let slots = r.count(37)?;
        let mut last: Option<SlotKey> = None;
        for _ in 0..slots {
            let offset = r.position();
            let key = SlotKey(Address::decode(r)?, Nonce::decode(r)?);
            let current = Option::<Pooled>::decode(r)?;
            let replaced_total = u32::decode(r)?;
            let replaced = Vec::<TxHash>::decode(r)?;
            let out_of_order = last.is_some_and(|last| last >= key);
            last = Some(key);
            let too_long = replaced.len() > REPLACEMENTS_PER_SLOT_MAX
                || u64::try_from(replaced.len()).unwrap_or(u64::MAX) > u64::from(replaced_total);
            if out_of_order || too_long {
                return Err(DecodeError::InvalidValue { offset, what: "replay slot" });
            }
            let slot = Slot { current: None, replaced, replaced_total };
            for (i, old) in slot.replaced.iter().enumerate() {
                state.commitment.add(&replaced_entry(&key.0, key.1, old, slot.ordinal(i)));
            }
            *state.slots.get_or_default(key) = slot;
            if let Some(pooled) = current {
                let tx = &pooled.tx;
                if tx.sender != key.0 || tx.nonce != key.1 || state.by_hash.contains(&tx.hash) {
                    return Err(DecodeError::InvalidValue { offset, what: "replay slot" });
                }
                state.add_entry(&key, &pooled);
                state.by_hash.insert(pooled.tx.hash, key);
                if let Some(slot) = state.slots.get_mut(&key) {
                    slot.current = Some(pooled);
                }
            }
        }
        state.included = ReopenWindow::decode(r)?;
        Ok(state)
    }
}

/// Appends a `u32` count (the state's collections are bounded far below `u32::MAX`).
pub(crate) fn put_count(out: &mut Vec<u8>, len: usize) {
    mempulse_primitives::codec::put_len(out, len);
}

/// A pooled transaction as written in a slot: the transaction without its raw bytes
/// (`encode_tx_without_raw`), then the subpool code.
impl Decode for Pooled {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self::new(Box::new(decode_tx_without_raw(r)?), Subpool::decode(r)?))
    }
}

#[cfg(test)]
#[path = "state_test.rs"]
mod tests;
