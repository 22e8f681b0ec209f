//! The transaction lifecycle index: for each transaction, the (seq, kind) of the facts about it.
//!
//! Bounded by design (rule 4):
//! - a transaction in the pool view is *live*: its references are always kept;
//! - every other transaction is *finished* and sits in a least-recently-touched set ordered by
//!   the seq of its last fact; past [`crate::ReplayConfig::finished_txs_max`] the oldest is
//!   forgotten and `pruned_through` moves up to its last seq;
//! - each transaction keeps its first [`crate::ReplayConfig::refs_per_tx_max`] references and
//!   counts the rest in `omitted`.
//!
//! So memory is O(pool × refs per tx + finished max). A lookup of a forgotten transaction says
//! so ([`LifecycleLookup::Pruned`]); the full history is always in the event log
//! ([`crate::scan_lifecycle`]). The index covers local facts too: it is never part of the
//! replicated digest. Block facts (`block_proposed`, `block_committed`) name many transactions
//! and are not indexed per transaction; `tx_included` carries the per-transaction fact.

use std::collections::{BTreeMap, VecDeque};

use mempulse_primitives::{DecodeError, Encode, KindCode, Reader, Seq, TxHash};

use crate::{lookup::TxSlab, state::put_count};

/// One fact about a transaction: where it is in the log and what it was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FactRef {
    /// Seq of the event in the canonical event log (read it back with a WAL scan).
    pub seq: Seq,
    /// Its kind.
    pub kind: KindCode,
}

impl FactRef {
    /// `seq << 8 | kind code`: seqs stay far below 2^56.
    const fn pack(self) -> u64 {
        (self.seq.0 << 8) | self.kind.code() as u64
    }

    fn unpack(word: u64) -> Option<Self> {
        let kind = KindCode::from_code(u8::try_from(word & 0xff).ok()?)?;
        Some(Self { seq: Seq(word >> 8), kind })
    }
}

/// What the index holds about one transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxLifecycle {
    /// The transaction.
    pub hash: TxHash,
    /// Its facts in seq order (the first `refs_per_tx_max`).
    pub facts: Vec<FactRef>,
    /// Facts seen beyond the kept ones.
    pub omitted: u32,
    /// Seq of its last fact.
    pub last_seq: Seq,
    /// Whether it is in the pool view now.
    pub in_pool: bool,
}

/// The answer to a lifecycle lookup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LifecycleLookup {
    /// The index holds the transaction.
    Found(TxLifecycle),
    /// Not held, and finished transactions whose last fact is at or before `pruned_through`
    /// were forgotten: the transaction may have facts there. Scan the log to know
    /// ([`crate::scan_lifecycle`]).
    Pruned {
        /// Highest last-fact seq of a forgotten transaction (or the seq before the first event
        /// this replayer saw).
        pruned_through: Seq,
    },
    /// No fact about the transaction since the replayer's first event, and nothing was
    /// forgotten: it was never seen.
    Unknown,
}

/// References kept inline in an entry; more go to a spill list. Most transactions have three
/// facts (received, admitted, included or evicted), so most entries never spill.
const INLINE_REFS: usize = 4;

/// A transaction's kept references (`seq << 8 | kind code`), in seq order.
///
/// `Copy`, with the references past [`INLINE_REFS`] in a [`Spills`] list named by handle: an
/// entry owns no allocation, so overwriting a forgotten entry's slot with a new one is plain
/// stores. The slot of the entry forgotten last is the next one taken, and it is cold by then;
/// a value with a destructor would first be read to drop it.
#[derive(Clone, Copy, Debug, Default)]
struct Refs {
    len: u32,
    /// `0`: no spill list; else its handle in [`Spills`] plus one.
    spill: u32,
    inline: [u64; INLINE_REFS],
}

impl Refs {
    const fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether it has a spill list (told by `len`, which shares a line with the inline words).
    const fn spilled(&self) -> bool {
        self.len() > INLINE_REFS
    }

    fn push(&mut self, word: u64, spills: &mut Spills) {
        let len = self.len();
        match self.inline.get_mut(len) {
            Some(slot) => *slot = word,
            None => {
                if self.spill == 0 {
                    self.spill = spills.open();
                }
                spills.push(self.spill, word);
            }
        }
        self.len = self.len.saturating_add(1);
    }

    fn iter<'a>(&'a self, spills: &'a Spills) -> impl Iterator<Item = u64> + 'a {
        let inline = self.inline.get(..self.len().min(INLINE_REFS)).unwrap_or_default();
        inline.iter().chain(spills.list(self.spill)).copied()
    }
}

/// The references of entries past their first [`INLINE_REFS`], one list per entry that has
/// more, reused once its entry is forgotten.
#[derive(Clone, Debug, Default)]
struct Spills {
    lists: Vec<Vec<u64>>,
    free: Vec<u32>,
}

impl Spills {
    /// A new empty list's handle plus one.
    fn open(&mut self) -> u32 {
        if let Some(handle) = self.free.pop() {
            return handle;
        }
        self.lists.push(Vec::new());
        // More lists than entries a slab can hold cannot be made.
        u32::try_from(self.lists.len()).unwrap_or(u32::MAX)
    }

    /// The list a handle names (`None` for `0`, no list).
    fn get_mut(&mut self, handle: u32) -> Option<&mut Vec<u64>> {
        self.lists.get_mut(handle.checked_sub(1)? as usize)
    }

    fn push(&mut self, handle: u32, word: u64) {
        if let Some(list) = self.get_mut(handle) {
            list.push(word);
        }
    }

    fn list(&self, handle: u32) -> &[u64] {
        handle.checked_sub(1).and_then(|i| self.lists.get(i as usize)).map_or(&[], Vec::as_slice)
    }

    /// Empties a list for reuse.
    fn close(&mut self, handle: u32) {
        if let Some(list) = self.get_mut(handle) {
            list.clear();
            self.free.push(handle);
        }
    }
}

/// Tombstones the finished queue may hold beyond as many as its valid items before it is
/// compacted (small in tests, so the property test compacts).
#[cfg(not(test))]
const COMPACT_SLACK: usize = 1024;
#[cfg(test)]
const COMPACT_SLACK: usize = 3;

/// `Life::pos` of a finished entry kept in the out-of-order set rather than the queue.
const LATE: u64 = u64::MAX;

/// Live transactions the index is sized for beyond `finished_max` (more grow it).
const LIVE_PRESIZE: usize = 4_096;

/// The largest index sized up front; a larger `finished_max` grows to its size as it fills.
const PRESIZE_MAX: usize = 1 << 20;

/// `Queued::at` of a tombstone.
const GONE: usize = usize::MAX;

#[derive(Clone, Copy, Debug)]
struct Life {
    last_seq: Seq,
    /// While finished: the absolute position of its item in the finished queue, or [`LATE`].
    pos: u64,
    omitted: u32,
    finished: bool,
    refs: Refs,
}

/// An item of the finished queue: the slab handle of a finished transaction whose last fact is
/// at `seq`, or a tombstone (`at == GONE`) once it was touched again, came back into the view
/// or was forgotten. `tag` is its hash's slab tag and `spilled` whether it has a spill list,
/// so forgetting it reads nothing of its (by then cold) entry.
#[derive(Clone, Copy, Debug)]
struct Queued {
    seq: Seq,
    at: usize,
    tag: u32,
    spilled: bool,
}

/// The index. Its order-bearing parts are the finished transactions (by last seq, then hash)
/// and, for live entries, the pool view's slot order; the hash index is lookup-only.
///
/// The finished transactions are forgotten oldest first by (last seq, hash). A fact's seq is
/// the highest so far, so a transaction that finishes with a fact goes to the back of a queue
/// (`finished`) in that order; its entry remembers the item's position, and touching it again
/// (or bringing it back into the view) turns the item into a tombstone in place, which trimming
/// pops without looking anything up. The few that would break the queue's order (finished as
/// a side effect with an older seq, or a second one at the same seq with a lower hash) go to a
/// small ordered set (`late`), and trimming takes the lower of the two fronts. The queue is
/// compacted (positions renumbered) once it holds more than twice as many items as are valid.
/// This replaced a `BTreeSet<(Seq, TxHash)>` whose insert, remove and pop walked a tree of
/// 40-byte keys on every fact.
#[derive(Clone, Debug)]
pub(crate) struct LifecycleIndex {
    entries: TxSlab<Life>,
    spills: Spills,
    finished: VecDeque<Queued>,
    /// Absolute position of `finished[0]`.
    base: u64,
    /// Key of the last item pushed to `finished`: every item in it is at or below.
    back: Option<(Seq, TxHash)>,
    late: BTreeMap<(Seq, TxHash), usize>,
    /// Finished transactions: valid items in `finished` plus `late`.
    finished_len: usize,
    pruned_through: Seq,
    finished_max: usize,
    refs_max: usize,
}

impl LifecycleIndex {
    pub(crate) fn new(finished_max: usize, refs_max: usize) -> Self {
        // Sized for its steady state (the finished bound plus the live transactions of a
        // pool), so a replay from genesis does not copy and rehash it at every doubling.
        let capacity = finished_max
            .saturating_add(finished_max / 8)
            .saturating_add(LIVE_PRESIZE)
            .min(PRESIZE_MAX);
        Self {
            entries: TxSlab::with_capacity(capacity),
            spills: Spills::default(),
            finished: VecDeque::with_capacity(finished_max.min(PRESIZE_MAX)),
            base: 0,
            back: None,
            late: BTreeMap::new(),
            finished_len: 0,
            pruned_through: Seq(0),
            finished_max,
            refs_max,
        }
    }

    /// Marks everything before `first` as not seen by this index (a log that starts later).
    pub(crate) fn start_at(&mut self, first: Seq) {
        self.pruned_through = self.pruned_through.max(Seq(first.0.saturating_sub(1)));
    }

    /// Records a fact about `hash`; `in_pool` is the pool view's membership after the fact.
    pub(crate) fn record(&mut self, hash: TxHash, fact: FactRef, in_pool: bool) {
        let refs_max = self.refs_max;
        let made = self.entries.find_or_insert_with(hash, || Life {
            last_seq: fact.seq,
            pos: 0,
            omitted: 0,
            finished: false,
            refs: Refs::default(),
        });
        let Some((at, _)) = made else { return };
        let Some(life) = self.entries.get_mut(at) else { return };
        let (was_finished, pos, old_seq) = (life.finished, life.pos, life.last_seq);
        if life.refs.len() < refs_max {
            life.refs.push(fact.pack(), &mut self.spills);
        } else {
            life.omitted = life.omitted.saturating_add(1);
        }
        life.last_seq = fact.seq;
        life.finished = !in_pool;
        let spilled = life.refs.spilled();
        if was_finished {
            self.dequeue(pos, old_seq, &hash);
        }
        if !in_pool {
            self.enqueue(at, hash, fact.seq, spilled);
            self.trim();
        }
    }

    /// Marks a live transaction finished without a fact about it (it left the view as a side
    /// effect of another transaction's fact).
    pub(crate) fn finish(&mut self, hash: TxHash) {
        let Some(at) = self.entries.find(&hash) else { return };
        let Some(life) = self.entries.get_mut(at) else { return };
        if !life.finished {
            life.finished = true;
            let (seq, spilled) = (life.last_seq, life.refs.spilled());
            self.enqueue(at, hash, seq, spilled);
            self.trim();
        }
    }

    /// Marks a finished transaction live again without a fact about it (it came back into the
    /// view as a side effect, e.g. a peer's state installed over this one's).
    pub(crate) fn revive(&mut self, hash: TxHash) {
        let Some(at) = self.entries.find(&hash) else { return };
        if let Some(life) = self.entries.get_mut(at)
            && life.finished
        {
            life.finished = false;
            let (pos, seq) = (life.pos, life.last_seq);
            self.dequeue(pos, seq, &hash);
        }
    }

    /// Adds the finished entry `at` (`hash`, last fact at `seq`): at the back of the queue when
    /// that keeps it in (seq, hash) order, else to `late`.
    fn enqueue(&mut self, at: usize, hash: TxHash, seq: Seq, spilled: bool) {
        let key = (seq, hash);
        let pos = if self.back.is_none_or(|back| back <= key) {
            let tag = self.entries.tag(&hash);
            self.finished.push_back(Queued { seq, at, tag, spilled });
            self.back = Some(key);
            self.base + self.finished.len() as u64 - 1
        } else {
            self.late.insert(key, at);
            LATE
        };
        if let Some(life) = self.entries.get_mut(at) {
            life.pos = pos;
        }
        self.finished_len += 1;
        if self.finished.len() > 2 * self.finished_len + COMPACT_SLACK {
            self.compact();
        }
    }

    /// Takes a finished entry out (its item at `pos`, its key `(seq, hash)`).
    fn dequeue(&mut self, pos: u64, seq: Seq, hash: &TxHash) {
        let removed = if pos == LATE {
            self.late.remove(&(seq, *hash)).is_some()
        } else {
            let index = pos.checked_sub(self.base).and_then(|i| usize::try_from(i).ok());
            match index.and_then(|i| self.finished.get_mut(i)) {
                Some(item) if item.at != GONE => {
                    item.at = GONE;
                    true
                }
                _ => false,
            }
        };
        if removed {
            self.finished_len -= 1;
        }
    }

    /// Drops the tombstones and renumbers the queue's positions.
    fn compact(&mut self) {
        self.finished.retain(|q| q.at != GONE);
        self.base = 0;
        for (pos, q) in self.finished.iter().enumerate() {
            if let Some(life) = self.entries.get_mut(q.at) {
                life.pos = pos as u64;
            }
        }
    }

    /// The queue's first valid item (tombstones before it are popped).
    fn queue_front(&mut self) -> Option<Queued> {
        while self.finished.front().is_some_and(|q| q.at == GONE) {
            self.finished.pop_front();
            self.base += 1;
        }
        self.finished.front().copied()
    }

    /// Forgets the oldest finished transactions beyond `finished_max`.
    fn trim(&mut self) {
        while self.finished_len > self.finished_max {
            let queued = self.queue_front();
            let late = self.late.first_key_value().map(|(&key, &at)| (key, at));
            // The queue's front loses to `late`'s only when its key is higher: its hash is read
            // (from its entry) only when `late` has anything.
            let late_first = match (queued, late) {
                (Some(q), Some(((seq, hash), _))) => {
                    let front = self.entries.entry(q.at).map(|(h, _)| (q.seq, *h));
                    front.is_some_and(|front| (seq, hash) < front)
                }
                (None, Some(_)) => true,
                (_, None) => false,
            };
            let seq = match (queued, late) {
                (_, Some(((seq, hash), at))) if late_first => {
                    self.late.pop_first();
                    let spilled = self.entries.get(at).is_some_and(|life| life.refs.spilled());
                    self.forget_entry(at, self.entries.tag(&hash), spilled);
                    seq
                }
                (Some(q), _) => {
                    self.finished.pop_front();
                    self.base += 1;
                    self.forget_entry(q.at, q.tag, q.spilled);
                    q.seq
                }
                _ => break,
            };
            self.finished_len -= 1;
            self.pruned_through = self.pruned_through.max(seq);
        }
    }

    /// Frees the entry `at`: its bucket (by its hash's slab `tag`), and its spill list when it
    /// has one (the only read of the entry).
    fn forget_entry(&mut self, at: usize, tag: u32, spilled: bool) {
        if spilled {
            let handle = self.entries.get(at).map_or(0, |life| life.refs.spill);
            self.spills.close(handle);
        }
        self.entries.forget(at, tag);
    }

    pub(crate) fn lookup(&self, hash: &TxHash) -> LifecycleLookup {
        match self.entries.lookup(hash) {
            Some(life) => LifecycleLookup::Found(TxLifecycle {
                hash: *hash,
                facts: life.refs.iter(&self.spills).filter_map(FactRef::unpack).collect(),
                omitted: life.omitted,
                last_seq: life.last_seq,
                in_pool: !life.finished,
            }),
            None if self.pruned_through > Seq(0) => {
                LifecycleLookup::Pruned { pruned_through: self.pruned_through }
            }
            None => LifecycleLookup::Unknown,
        }
    }

    /// Transactions held (live and finished).
    pub(crate) const fn len(&self) -> usize {
        self.entries.len()
    }

    /// The finished entries by (last seq, hash): the queue and `late` merged.
    fn finished_in_order(&self) -> Vec<(&TxHash, &Life)> {
        let valid = self.finished.iter().filter(|q| q.at != GONE);
        let mut queued = valid.filter_map(|q| self.entries.entry(q.at)).peekable();
        let mut late = self.late.values().filter_map(|at| self.entries.entry(*at)).peekable();
        let mut out = Vec::with_capacity(self.finished_len);
        loop {
            let take_late = match (queued.peek(), late.peek()) {
                (Some((qh, ql)), Some((lh, ll))) => (ll.last_seq, lh) < (ql.last_seq, qh),
                (None, Some(_)) => true,
                (_, None) => false,
            };
            match if take_late { late.next() } else { queued.next() } {
                Some(entry) => out.push(entry),
                None => break,
            }
        }
        out
    }

    /// Appends the canonical encoding: `pruned_through`, the live entries in the order of
    /// `live` (the pool view's slot order), then the finished ones by (last seq, hash).
    pub(crate) fn encode<'a>(&self, live: impl Iterator<Item = &'a TxHash>, out: &mut Vec<u8>) {
        self.pruned_through.encode(out);
        let live: Vec<(&TxHash, &Life)> = live
            .filter_map(|h| self.entries.lookup(h).filter(|l| !l.finished).map(|l| (h, l)))
            .collect();
        put_count(out, live.len());
        for (hash, life) in live {
            encode_life(hash, life, &self.spills, out);
        }
        let finished = self.finished_in_order();
        put_count(out, finished.len());
        for (hash, life) in finished {
            encode_life(hash, life, &self.spills, out);
        }
    }

    /// Reads what [`LifecycleIndex::encode`] wrote.
    pub(crate) fn decode(
        r: &mut Reader<'_>,
        finished_max: usize,
        refs_max: usize,
    ) -> Result<Self, DecodeError> {
        let mut index = Self::new(finished_max, refs_max);
        index.pruned_through = mempulse_primitives::Decode::decode(r)?;
        for finished in [false, true] {
            // An entry encodes to at least 32 + 4 + 8 + 4 bytes.
            let count = r.count(48)?;
            for _ in 0..count {
                let offset = r.position();
                let (hash, mut life) = decode_life(r, &mut index.spills)?;
                life.finished = finished;
                let seq = life.last_seq;
                let made = index.entries.find_or_insert_with(hash, || life);
                let Some((at, true)) = made else {
                    return Err(DecodeError::InvalidValue { offset, what: "lifecycle entry" });
                };
                if finished {
                    // The writer lists them by (last seq, hash), so all go to the queue.
                    if index.back.is_some_and(|back| back >= (seq, hash)) {
                        return Err(DecodeError::InvalidValue { offset, what: "lifecycle order" });
                    }
                    index.enqueue(at, hash, seq, life.refs.spilled());
                }
            }
        }
        // A smaller bound than the writer's applies now; live references are never cut.
        index.trim();
        Ok(index)
    }
}

/// `hash [32] | omitted u32 | last_seq u64 | u32 n | n × u64 (seq << 8 | kind code)`.
fn encode_life(hash: &TxHash, life: &Life, spills: &Spills, out: &mut Vec<u8>) {
    hash.encode(out);
    life.omitted.encode(out);
    life.last_seq.encode(out);
    put_count(out, life.refs.len());
    for word in life.refs.iter(spills) {
        word.encode(out);
    }
}

fn decode_life(r: &mut Reader<'_>, spills: &mut Spills) -> Result<(TxHash, Life), DecodeError> {
    use mempulse_primitives::Decode;
    let hash = TxHash::decode(r)?;
    let omitted = u32::decode(r)?;
    let last_seq = Seq::decode(r)?;
    let offset = r.position();
    let words = Vec::<u64>::decode(r)?;
    if words.iter().any(|w| FactRef::unpack(*w).is_none()) {
        return Err(DecodeError::InvalidValue { offset, what: "lifecycle fact kind" });
    }
    let mut refs = Refs::default();
    for word in words {
        refs.push(word, spills);
    }
    Ok((hash, Life { last_seq, pos: 0, omitted, finished: false, refs }))
}

#[cfg(test)]
#[path = "lifecycle_test.rs"]
mod tests;
