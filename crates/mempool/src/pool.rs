//! The pool's state: an arena of entries and the ordered indexes over it.
//!
//! Every index that is ever iterated is a `BTreeMap`/`BTreeSet` keyed by values computed from
//! the transactions (fees, admission seq, heights, nonces), so iteration order is a function of
//! the command log. Arena slot numbers are reused and may differ between replicas (a restored
//! snapshot compacts them); they only ever break ties that the unique admission `seq` already
//! broke, so they never reach an output.

use core::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

use mempulse_primitives::{Address, EventKind, EvictReason, Height, Nonce, Subpool, Tx, TxHash};

use crate::MempoolConfig;
use crate::age::AgeIndex;
use crate::evict::EvictionIndex;
use crate::heads::SlackKey;
use crate::lookup::HashIndex;
use crate::senders::SenderTable;

/// Index of an entry in the arena.
pub(crate) type Slot = u32;

/// One transaction in the pool.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub(crate) tx: Tx,
    /// Admission order: unique, increasing across the life of the pool.
    pub(crate) seq: u64,
    /// Last committed height when the transaction was admitted (for the TTL).
    pub(crate) admitted_at: Height,
    /// Whether the transaction is in the pending subpool.
    pub(crate) pending: bool,
    /// Slot of the same sender's transaction at `nonce - 1`, when pooled.
    pub(crate) prev: Option<Slot>,
    /// Slot of the same sender's transaction at `nonce + 1`, when pooled.
    pub(crate) next: Option<Slot>,
    /// Whether the entry is in the head indexes (see `heads.rs`).
    pub(crate) is_head: bool,
}

impl Entry {
    /// A new entry, not yet linked to its sender's neighbours.
    pub(crate) const fn new(tx: Tx, seq: u64, admitted_at: Height, pending: bool) -> Self {
        Self { tx, seq, admitted_at, pending, prev: None, next: None, is_head: false }
    }
}

impl Entry {
    pub(crate) const fn subpool(&self) -> Subpool {
        if self.pending { Subpool::Pending } else { Subpool::Queued }
    }
}

/// What the hash index knows about a hash.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Known {
    /// In the pool, at this slot.
    Pool(Slot),
    /// In the committed cache, at this cache seq.
    Committed(u64),
}

/// Key of the eviction indexes: a fee, then newest first, then the slot (never reached).
pub(crate) type FeeKey = (u128, Reverse<u64>, Slot);

/// The mempool state machine. See the crate docs for the rules it enforces.
#[derive(Clone, Debug)]
pub struct Mempool {
    pub(crate) config: MempoolConfig,
    /// Last committed height.
    pub(crate) height: Height,
    /// Base fee per gas used for effective tips.
    pub(crate) base_fee: u128,
    pub(crate) next_seq: u64,
    pub(crate) next_cache_seq: u64,
    pub(crate) next_idle_seq: u64,
    pub(crate) slab: Vec<Option<Entry>>,
    pub(crate) free: Vec<Slot>,
    pub(crate) known: HashIndex<Known>,
    pub(crate) senders: SenderTable,
    /// Every entry by tip and by max fee, while the pool is near a cap (see `evict.rs`).
    pub(crate) evict: Option<EvictionIndex>,
    /// Entries by admission height, with lazy deletion: TTL expiry (empty when the TTL is
    /// off; see `age.rs`).
    pub(crate) by_age: AgeIndex,
    /// Pending entries by seq: FIFO building (maintained under the FIFO policy only).
    pub(crate) fifo: BTreeMap<u64, Slot>,
    /// Heads (each sender's first pending entry) whose slack covers the base fee, by tip:
    /// priority building (maintained under the priority policy only; see `heads.rs`).
    pub(crate) heads_tip: BTreeSet<FeeKey>,
    /// The other heads, by max fee.
    pub(crate) heads_fee: BTreeSet<FeeKey>,
    /// Heads by slack `max_fee - tip` (those whose tip does not exceed their max fee).
    pub(crate) heads_slack: BTreeSet<SlackKey>,
    /// Committed cache: cache seq to hash, oldest first.
    pub(crate) committed: BTreeMap<u64, TxHash>,
    /// Idle senders (no transaction, nonzero nonce), oldest first.
    pub(crate) idle: BTreeMap<u64, Address>,
    pub(crate) len: usize,
    pub(crate) len_pending: usize,
    /// While set, head-index updates of neighbours are skipped; the caller refreshes the
    /// heads of every sender it touched before the command ends (transient, never encoded).
    pub(crate) defer_heads: bool,
    pub(crate) bytes: u64,
}

impl Mempool {
    /// An empty pool at height 0 with the configuration's initial base fee.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] when the configuration is unusable.
    pub fn new(config: MempoolConfig) -> crate::Result<Self> {
        config.validate()?;
        Ok(Self {
            height: Height::ZERO,
            base_fee: config.initial_base_fee_per_gas,
            config,
            next_seq: 0,
            next_cache_seq: 0,
            next_idle_seq: 0,
            slab: Vec::new(),
            free: Vec::new(),
            known: Default::default(),
            senders: SenderTable::default(),
            evict: None,
            by_age: AgeIndex::default(),
            fifo: BTreeMap::new(),
            heads_tip: BTreeSet::new(),
            heads_fee: BTreeSet::new(),
            heads_slack: BTreeSet::new(),
            committed: BTreeMap::new(),
            idle: BTreeMap::new(),
            len: 0,
            len_pending: 0,
            defer_heads: false,
            bytes: 0,
        })
    }

    pub(crate) fn entry(&self, slot: Slot) -> &Entry {
        match self.slab.get(slot as usize) {
            Some(Some(e)) => e,
            // Indexes only ever hold live slots; anything else is a bug in this crate.
            _ => unreachable!("index points at a free arena slot"),
        }
    }

    /// Whether `slot` holds the entry admitted with `seq` (seqs are never reused).
    pub(crate) fn holds(slab: &[Option<Entry>], slot: Slot, seq: u64) -> bool {
        matches!(slab.get(slot as usize), Some(Some(e)) if e.seq == seq)
    }

    fn entry_mut(&mut self, slot: Slot) -> &mut Entry {
        match self.slab.get_mut(slot as usize) {
            Some(Some(e)) => e,
            _ => unreachable!("index points at a free arena slot"),
        }
    }

    /// Reserves arena and hash-index room for `additional` admissions, within the count cap,
    /// so that a large batch does not grow (and copy) the arena step by step.
    pub(crate) fn reserve(&mut self, additional: usize) {
        let cap = self.config.max_txs as usize;
        let arena = additional.min(cap.saturating_sub(self.len)).saturating_sub(self.free.len());
        self.slab.reserve(arena);
        self.known.reserve(additional.min(cap.saturating_sub(self.len)));
    }

    /// Inserts a transaction, admitted now, into every index. The caller has checked
    /// admission and will fix the sender's `pending_end`.
    pub(crate) fn insert(&mut self, tx: Tx, pending: bool) -> Slot {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.insert_entry(Entry::new(tx, seq, self.height, pending))
    }

    /// Inserts an entry with its recorded seq and admission height (also used by restore).
    pub(crate) fn insert_entry(&mut self, entry: Entry) -> Slot {
        let (seq, pending, age) = (entry.seq, entry.pending, entry.admitted_at.get());
        let (sender, nonce, hash) = (entry.tx.sender, entry.tx.nonce.get(), entry.tx.hash);
        self.bytes += u64::from(entry.tx.encoded_size);
        let slot = match self.free.pop() {
            Some(slot) => {
                if let Some(free) = self.slab.get_mut(slot as usize) {
                    *free = Some(entry);
                }
                slot
            }
            None => {
                // Fits: the pool never holds more than `max_txs: u32` entries plus one.
                let slot = Slot::try_from(self.slab.len()).unwrap_or(Slot::MAX);
                self.slab.push(Some(entry));
                slot
            }
        };
        if let (Some(index), Some(Some(e))) = (&mut self.evict, self.slab.get(slot as usize)) {
            index.insert(e, slot);
        }
        if self.config.ttl_heights > 0 {
            self.by_age.push(age, seq, slot);
            if self.by_age.wants_compaction(self.len) {
                let slab = &self.slab;
                self.by_age.retain(|seq, slot| Self::holds(slab, slot, seq));
            }
        }
        if pending {
            self.len_pending += 1;
            if self.keeps_fifo() {
                self.fifo.insert(seq, slot);
            }
        }
        self.known.insert(hash, Known::Pool(slot));
        let s = self.senders.get_or_default(sender);
        s.txs.insert(nonce, slot);
        let prev = nonce.checked_sub(1).and_then(|n| s.txs.get(&n).copied());
        let next = nonce.checked_add(1).and_then(|n| s.txs.get(&n).copied());
        if let Some(idle) = s.idle_seq.take() {
            self.idle.remove(&idle);
        }
        self.link(prev, Some(slot));
        self.link(Some(slot), next);
        self.refresh_head(slot);
        if let Some(next) = next {
            self.refresh_head(next);
        }
        self.len += 1;
        slot
    }

    /// Links two consecutive nonces of one sender (either side may be absent).
    fn link(&mut self, prev: Option<Slot>, next: Option<Slot>) {
        if let Some(p) = prev {
            self.entry_mut(p).next = next;
        }
        if let Some(n) = next {
            self.entry_mut(n).prev = prev;
        }
    }

    /// Removes an entry from every index and returns it. The caller fixes `pending_end` and
    /// calls [`Self::touch_idle`].
    pub(crate) fn remove(&mut self, slot: Slot) -> Entry {
        let Some(entry) = self.slab.get_mut(slot as usize).and_then(Option::take) else {
            unreachable!("removing a free arena slot")
        };
        self.free.push(slot);
        let seq = entry.seq;
        if let Some(index) = &mut self.evict {
            index.remove(&entry, slot);
        }
        if entry.pending {
            self.len_pending -= 1;
            if self.keeps_fifo() {
                self.fifo.remove(&seq);
            }
        }
        self.known.remove(&entry.tx.hash);
        if let Some(s) = self.senders.get_mut(&entry.tx.sender) {
            s.txs.remove(&entry.tx.nonce.get());
        }
        // Unlink: the neighbours are no longer consecutive.
        if let Some(p) = entry.prev {
            self.entry_mut(p).next = None;
        }
        if let Some(n) = entry.next {
            self.entry_mut(n).prev = None;
            self.refresh_head(n);
        }
        if entry.is_head {
            self.drop_head(&entry, slot);
        }
        self.len -= 1;
        self.bytes -= u64::from(entry.tx.encoded_size);
        if self.evict.is_some() {
            self.maybe_drop_eviction_index();
        }
        entry
    }

    /// Whether the FIFO index is maintained: only the FIFO policy reads it.
    pub(crate) const fn keeps_fifo(&self) -> bool {
        matches!(self.config.ordering, crate::OrderingPolicy::Fifo)
    }

    /// Moves an entry between the subpools.
    pub(crate) fn set_pending(&mut self, slot: Slot, pending: bool) {
        let e = self.entry_mut(slot);
        if e.pending == pending {
            return;
        }
        e.pending = pending;
        let seq = e.seq;
        if pending {
            self.len_pending += 1;
        } else {
            self.len_pending -= 1;
        }
        if self.keeps_fifo() {
            if pending {
                self.fifo.insert(seq, slot);
            } else {
                self.fifo.remove(&seq);
            }
        }
        self.refresh_head(slot);
    }

    /// Evicts `slot` with `reason` and every later nonce of the same sender: without the
    /// evicted nonce they can no longer become pending. A successor admitted at or before
    /// `expired_at_or_before` is reported `Expired`, any other `SenderReset`.
    pub(crate) fn evict_chain(
        &mut self,
        slot: Slot,
        reason: EvictReason,
        expired_at_or_before: Option<u64>,
        facts: &mut Vec<EventKind>,
    ) {
        let (sender, nonce) = {
            let e = self.entry(slot);
            (e.tx.sender, e.tx.nonce.get())
        };
        let later: Vec<Slot> = match self.senders.get(&sender) {
            Some(s) => s.txs.range(nonce + 1..).map(|(_, &slot)| slot).collect(),
            None => Vec::new(),
        };
        let head = self.remove(slot);
        facts.push(EventKind::TxEvicted { hash: head.tx.hash, reason });
        for slot in later {
            let e = self.remove(slot);
            let expired = expired_at_or_before.is_some_and(|cut| e.admitted_at.get() <= cut);
            let reason = if expired { EvictReason::Expired } else { EvictReason::SenderReset };
            facts.push(EventKind::TxEvicted { hash: e.tx.hash, reason });
        }
        if let Some(s) = self.senders.get_mut(&sender) {
            s.pending_end = s.pending_end.min(nonce.max(s.nonce));
        }
        self.touch_idle(sender);
    }

    /// Keeps the idle queue in step with a sender's contents: a sender with no transaction
    /// and nonce 0 is forgotten, one with a nonzero nonce joins the idle queue.
    pub(crate) fn touch_idle(&mut self, sender: Address) {
        let Some(s) = self.senders.get_mut(&sender) else { return };
        if !s.txs.is_empty() {
            return;
        }
        if s.nonce == 0 {
            if let Some(idle) = s.idle_seq {
                self.idle.remove(&idle);
            }
            self.senders.remove(&sender);
            return;
        }
        if let Some(old) = s.idle_seq.take() {
            self.idle.remove(&old);
        }
        s.idle_seq = Some(self.next_idle_seq);
        self.idle.insert(self.next_idle_seq, sender);
        self.next_idle_seq += 1;
    }

    /// Forgets the oldest idle senders beyond the configured cap.
    pub(crate) fn trim_idle(&mut self) {
        while self.idle.len() > self.config.max_idle_senders as usize {
            let Some((_, sender)) = self.idle.pop_first() else { break };
            self.senders.remove(&sender);
        }
    }

    /// Remembers a committed hash, evicting the oldest beyond the cap.
    pub(crate) fn remember_committed(&mut self, hash: TxHash) {
        let seq = self.next_cache_seq;
        self.next_cache_seq += 1;
        if let Some(Known::Committed(old)) = self.known.insert(hash, Known::Committed(seq)) {
            self.committed.remove(&old);
        }
        self.committed.insert(seq, hash);
        while self.committed.len() > self.config.committed_cache_size as usize {
            let Some((_, old)) = self.committed.pop_first() else { break };
            self.known.remove(&old);
        }
    }

    /// Forgets a committed hash (its block was orphaned).
    pub(crate) fn forget_committed(&mut self, hash: &TxHash) {
        if let Some(Known::Committed(seq)) = self.known.get(hash) {
            self.committed.remove(seq);
            self.known.remove(hash);
        }
    }

    /// The committed nonce of a sender (0 when unknown).
    #[must_use]
    pub fn sender_nonce(&self, sender: &Address) -> Nonce {
        Nonce(self.senders.get(sender).map_or(0, |s| s.nonce))
    }

    /// The next nonce a sender should use: the first one at or above its committed nonce that
    /// is not in the pool.
    #[must_use]
    pub fn next_nonce(&self, sender: &Address) -> Nonce {
        Nonce(self.senders.get(sender).map_or(0, |s| s.pending_end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_utils::tx;

    #[test]
    fn insert_and_remove_keep_indexes_in_step() {
        let config =
            MempoolConfig { ordering: crate::OrderingPolicy::Fifo, ..MempoolConfig::default() };
        let mut p = Mempool::new(config).unwrap();
        let a = p.insert(tx(1, 0, 10), true);
        let b = p.insert(tx(1, 1, 5), false);
        assert_eq!((p.len, p.len_pending, p.fifo.len()), (2, 1, 1));
        assert_eq!(p.entry(b).seq, 1);
        let e = p.remove(a);
        assert_eq!(e.tx.nonce, Nonce(0));
        assert_eq!((p.len, p.len_pending, p.by_age.records()), (1, 0, 2));
        // The freed slot is reused.
        assert_eq!(p.insert(tx(2, 0, 1), true), a);
    }
}
