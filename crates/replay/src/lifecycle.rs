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

use std::collections::BTreeSet;

use mempulse_primitives::{DecodeError, Encode, KindCode, Reader, Seq, TxHash};

use crate::{lookup::TxIndex, state::put_count};

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

#[derive(Clone, Debug, PartialEq, Eq)]
struct Life {
    refs: Vec<u64>,
    omitted: u32,
    last_seq: Seq,
    finished: bool,
}

/// The index. Its order-bearing parts are the finished set (by last seq, then hash) and, for
/// live entries, the pool view's slot order; the hash index is lookup-only.
#[derive(Clone, Debug)]
pub(crate) struct LifecycleIndex {
    entries: TxIndex<Life>,
    finished: BTreeSet<(Seq, TxHash)>,
    pruned_through: Seq,
    finished_max: usize,
    refs_max: usize,
}

impl LifecycleIndex {
    pub(crate) fn new(finished_max: usize, refs_max: usize) -> Self {
        Self {
            entries: TxIndex::default(),
            finished: BTreeSet::new(),
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
        let life = self.entries.get_or_insert_with(hash, || Life {
            refs: Vec::with_capacity(4),
            omitted: 0,
            last_seq: fact.seq,
            finished: false,
        });
        if life.finished {
            self.finished.remove(&(life.last_seq, hash));
        }
        if life.refs.len() < refs_max {
            life.refs.push(fact.pack());
        } else {
            life.omitted = life.omitted.saturating_add(1);
        }
        life.last_seq = fact.seq;
        life.finished = !in_pool;
        if !in_pool {
            self.finished.insert((fact.seq, hash));
            self.trim();
        }
    }

    /// Marks a live transaction finished without a fact about it (it left the view as a side
    /// effect of another transaction's fact).
    pub(crate) fn finish(&mut self, hash: TxHash) {
        if let Some(life) = self.entries.get_mut(&hash)
            && !life.finished
        {
            life.finished = true;
            self.finished.insert((life.last_seq, hash));
            self.trim();
        }
    }

    /// Marks a finished transaction live again without a fact about it (it came back into the
    /// view as a side effect, e.g. a peer's state installed over this one's).
    pub(crate) fn revive(&mut self, hash: TxHash) {
        if let Some(life) = self.entries.get_mut(&hash)
            && life.finished
        {
            life.finished = false;
            self.finished.remove(&(life.last_seq, hash));
        }
    }

    fn trim(&mut self) {
        while self.finished.len() > self.finished_max {
            let Some((seq, hash)) = self.finished.pop_first() else { break };
            self.entries.remove(&hash);
            self.pruned_through = self.pruned_through.max(seq);
        }
    }

    pub(crate) fn lookup(&self, hash: &TxHash) -> LifecycleLookup {
        match self.entries.get(hash) {
            Some(life) => LifecycleLookup::Found(TxLifecycle {
                hash: *hash,
                facts: life.refs.iter().filter_map(|w| FactRef::unpack(*w)).collect(),
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
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Appends the canonical encoding: `pruned_through`, the live entries in the order of
    /// `live` (the pool view's slot order), then the finished ones by (last seq, hash).
    pub(crate) fn encode<'a>(&self, live: impl Iterator<Item = &'a TxHash>, out: &mut Vec<u8>) {
        self.pruned_through.encode(out);
        let live: Vec<(&TxHash, &Life)> = live
            .filter_map(|h| self.entries.get(h).filter(|l| !l.finished).map(|l| (h, l)))
            .collect();
        put_count(out, live.len());
        for (hash, life) in live {
            encode_life(hash, life, out);
        }
        put_count(out, self.finished.len());
        for (_, hash) in &self.finished {
            if let Some(life) = self.entries.get(hash) {
                encode_life(hash, life, out);
            }
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
                let (hash, mut life) = decode_life(r)?;
                life.finished = finished;
                if index.entries.insert(hash, life.clone()).is_some() {
                    return Err(DecodeError::InvalidValue { offset, what: "lifecycle entry" });
                }
                if finished {
                    index.finished.insert((life.last_seq, hash));
                }
            }
        }
        // A smaller bound than the writer's applies now; live references are never cut.
        index.trim();
        Ok(index)
    }
}

/// `hash [32] | omitted u32 | last_seq u64 | u32 n | n × u64 (seq << 8 | kind code)`.
fn encode_life(hash: &TxHash, life: &Life, out: &mut Vec<u8>) {
    hash.encode(out);
    life.omitted.encode(out);
    life.last_seq.encode(out);
    life.refs.encode(out);
}

fn decode_life(r: &mut Reader<'_>) -> Result<(TxHash, Life), DecodeError> {
    use mempulse_primitives::Decode;
    let hash = TxHash::decode(r)?;
    let omitted = u32::decode(r)?;
    let last_seq = Seq::decode(r)?;
    let offset = r.position();
    let refs = Vec::<u64>::decode(r)?;
    if refs.iter().any(|w| FactRef::unpack(*w).is_none()) {
        return Err(DecodeError::InvalidValue { offset, what: "lifecycle fact kind" });
    }
    Ok((hash, Life { refs, omitted, last_seq, finished: false }))
}

#[cfg(test)]
#[allow(clippy::panic, reason = "test code: a failed assumption is a failed test")]
mod tests {
    use super::*;

    fn fact(seq: u64, kind: KindCode) -> FactRef {
        FactRef { seq: Seq(seq), kind }
    }

    #[test]
    fn live_entries_stay_and_finished_ones_leave_oldest_first() {
        let mut index = LifecycleIndex::new(2, 3);
        let (a, b, c, d) = (TxHash([1; 32]), TxHash([2; 32]), TxHash([3; 32]), TxHash([4; 32]));
        index.record(a, fact(1, KindCode::TxAdmitted), true);
        index.record(b, fact(2, KindCode::TxRejected), false);
        index.record(c, fact(3, KindCode::TxDropped), false);
        index.record(d, fact(4, KindCode::TxDropped), false);
        assert_eq!(index.lookup(&b), LifecycleLookup::Pruned { pruned_through: Seq(2) });
        let LifecycleLookup::Found(life) = index.lookup(&a) else { panic!("live entry kept") };
        assert!(life.in_pool);
        // Touching c again makes d the oldest finished entry.
        index.record(c, fact(5, KindCode::TxRejected), false);
        index.record(a, fact(6, KindCode::TxIncluded), false);
        assert_eq!(index.lookup(&d), LifecycleLookup::Pruned { pruned_through: Seq(4) });
        let LifecycleLookup::Found(life) = index.lookup(&c) else { panic!("recent entry kept") };
        assert_eq!(life.facts, [fact(3, KindCode::TxDropped), fact(5, KindCode::TxRejected)]);
        assert_eq!(index.len(), 2);
    }

    #[test]
    fn refs_beyond_the_cap_are_counted_and_unknown_means_never_seen() {
        let mut index = LifecycleIndex::new(10, 2);
        let a = TxHash([1; 32]);
        assert_eq!(index.lookup(&a), LifecycleLookup::Unknown);
        for seq in 1..=5 {
            index.record(a, fact(seq, KindCode::TxRejected), false);
        }
        let LifecycleLookup::Found(life) = index.lookup(&a) else { panic!("kept") };
        assert_eq!((life.facts.len(), life.omitted, life.last_seq), (2, 3, Seq(5)));
    }

    #[test]
    fn encoding_round_trips() {
        let mut index = LifecycleIndex::new(10, 4);
        let (a, b) = (TxHash([1; 32]), TxHash([2; 32]));
        index.record(a, fact(1, KindCode::TxAdmitted), true);
        index.record(b, fact(2, KindCode::TxDropped), false);
        index.start_at(Seq(1));
        let mut bytes = Vec::new();
        index.encode([a].iter(), &mut bytes);
        let mut r = Reader::new(&bytes);
        let back = LifecycleIndex::decode(&mut r, 10, 4).unwrap();
        r.finish().unwrap();
        assert_eq!(back.lookup(&a), index.lookup(&a));
        assert_eq!(back.lookup(&b), index.lookup(&b));
        let mut again = Vec::new();
        back.encode([a].iter(), &mut again);
        assert_eq!(again, bytes);
    }
}
