//! The reopen window: bodies of recently included transactions, kept so a `tx_reopened` fact
//! (which names only a hash) can put the transaction back into the view after a reorg.
//!
//! Rules (part of [`crate::RULE_VERSION`]):
//! - every `tx_included` of a transaction in the view is an *inclusion record* of its height;
//! - a hash's body is held while its newest record was neither reopened since nor forgotten;
//! - the window forgets its oldest heights (all their records) at a committed height beyond
//!   [`REOPEN_WINDOW_HEIGHTS`], and while it holds more than [`REOPEN_BODIES_MAX`] records
//!   (reopened or superseded ones count until their height is forgotten).
//!
//! Layout: the records in the order they were made, in one queue, with the first word of each
//! hash in a parallel queue. A reopen scans that word queue from its newest end: the first
//! record of the hash is its newest, and a reorg reopens what the last blocks included, so the
//! scan stops within a few blocks' worth of words. An inclusion only appends, and a forgotten
//! height only drops its entry in the height map: its records leave the front of the queue when
//! they reach it (a record is never removed before an older one, so a hash's newest record is
//! always still there while any older one is). No hash table is touched per inclusion: the
//! index this replaced cost two cache-missing probes per included transaction (in when
//! included, out when its height was forgotten) for the ~1 % of them ever reopened
//! (`docs/design/replay.md`, "eighth look"). A reopen of a hash the window never held scans
//! every record, at most twice the bound (the queue is compacted past that).

use std::collections::{BTreeMap, VecDeque, btree_map::Entry};

use mempulse_primitives::{
    Decode, DecodeError, Encode, Height, Reader, Tx, TxHash,
    codec::{decode_tx_without_raw, encode_tx_without_raw},
};

use crate::{
    config::{REOPEN_BODIES_MAX, REOPEN_WINDOW_HEIGHTS},
    lookup::{TxIndex, prefix},
    state::put_count,
};

/// One inclusion record.
#[derive(Clone, Debug)]
struct Record {
    height: Height,
    /// The generation of `height` it was made in: a height forgotten and included at again
    /// opens a new generation, whose records are not the forgotten ones.
    generation: u64,
    reopened: bool,
    tx: Tx,
}

/// A height the window holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct HeightRecords {
    generation: u64,
    /// Inclusion records made at this height since it entered the window.
    records: u64,
}

/// Inclusion records by height, in the order they were made.
#[derive(Clone, Debug)]
pub(crate) struct ReopenWindow {
    /// Records, oldest first; some are dead (reopened, superseded, or of a forgotten height).
    records: VecDeque<Record>,
    /// The first word of each record's hash, parallel to `records`.
    words: VecDeque<u64>,
    heights: BTreeMap<Height, HeightRecords>,
    /// Records of the heights held (the sum of their `records`).
    held_records: u64,
    /// The generation the next new height opens.
    next_generation: u64,
    /// The bound on `held_records` ([`REOPEN_BODIES_MAX`]; smaller in tests).
    max: u64,
}

impl Default for ReopenWindow {
    fn default() -> Self {
        Self::with_max(REOPEN_BODIES_MAX)
    }
}

impl ReopenWindow {
    fn with_max(max: usize) -> Self {
        Self {
            records: VecDeque::new(),
            words: VecDeque::new(),
            heights: BTreeMap::new(),
            held_records: 0,
            next_generation: 0,
            max: max as u64,
        }
    }

    /// Records `tx`'s inclusion at `height`, then forgets the oldest heights beyond
    /// [`REOPEN_BODIES_MAX`] records.
    pub(crate) fn keep(&mut self, height: Height, mut tx: Tx) {
        if !tx.raw.is_empty() {
            tx.raw = Default::default();
        }
        let generation = self.open(height, 1);
        self.words.push_back(prefix(&tx.hash));
        self.records.push_back(Record { height, generation, reopened: false, tx });
        self.held_records += 1;
        while self.held_records > self.max {
            if !self.drop_lowest_height() {
                break;
            }
        }
        // Dead records stuck behind a live one (heights forgotten out of inclusion order) are
        // bounded: past twice the bound the queue keeps only the held bodies.
        if self.records.len() as u64 > 2 * self.max.max(1) {
            self.compact();
        }
    }

    /// Adds `records` to `height`, opening it if the window does not hold it; returns its
    /// generation.
    fn open(&mut self, height: Height, records: u64) -> u64 {
        match self.heights.entry(height) {
            Entry::Occupied(held) => {
                let held = held.into_mut();
                held.records += records;
                held.generation
            }
            Entry::Vacant(slot) => {
                let generation = self.next_generation;
                self.next_generation += 1;
                slot.insert(HeightRecords { generation, records });
                generation
            }
        }
    }

    /// Whether `record`'s height generation is held.
    fn in_held_height(&self, record: &Record) -> bool {
        self.heights.get(&record.height).is_some_and(|h| h.generation == record.generation)
    }

    /// Whether `record` holds its body: not reopened and of a held height (the caller knows it
    /// is its hash's newest record).
    fn holds(&self, record: &Record) -> bool {
        !record.reopened && self.in_held_height(record)
    }

    /// The position of `hash`'s newest record.
    fn newest(&self, hash: &TxHash) -> Option<usize> {
        let word = prefix(hash);
        let mut end = self.words.len();
        loop {
            let at = self.words.range(..end).rposition(|w| *w == word)?;
            if self.records.get(at).is_some_and(|r| r.tx.hash == *hash) {
                return Some(at);
            }
            end = at;
        }
    }

    /// Takes the body of `hash` out of the window, with the height it was included at.
    pub(crate) fn take(&mut self, hash: &TxHash) -> Option<(Height, Tx)> {
        let at = self.newest(hash)?;
        let record = self.records.get(at)?;
        if !self.holds(record) {
            return None;
        }
        let record = self.records.get_mut(at)?;
        record.reopened = true;
        Some((record.height, record.tx.clone()))
    }

    fn drop_lowest_height(&mut self) -> bool {
        let Some((_, dropped)) = self.heights.pop_first() else { return false };
        self.held_records -= dropped.records;
        // Dead records at the front go: none is a newer record of a hash than one behind it.
        while self.records.front().is_some_and(|r| !self.holds(r)) {
            self.records.pop_front();
            self.words.pop_front();
        }
        true
    }

    /// For each record, oldest first, whether it holds its body: its hash's newest record, not
    /// reopened, of a held height.
    fn holding(&self) -> Vec<bool> {
        let mut seen: TxIndex<()> = TxIndex::default();
        let mut holding = vec![false; self.records.len()];
        for (at, record) in self.records.iter().enumerate().rev() {
            let newest = seen.insert(record.tx.hash, ()).is_none();
            if let Some(h) = holding.get_mut(at) {
                *h = newest && self.holds(record);
            }
        }
        holding
    }

    /// Keeps only the records that hold their body.
    fn compact(&mut self) {
        let mut keep = self.holding().into_iter();
        self.records.retain(|_| keep.next().unwrap_or(false));
        self.words = self.records.iter().map(|r| prefix(&r.tx.hash)).collect();
    }

    /// Forgets bodies included at or below `height - REOPEN_WINDOW_HEIGHTS`.
    pub(crate) fn trim(&mut self, height: Height) {
        let keep_above = Height(height.0.saturating_sub(REOPEN_WINDOW_HEIGHTS));
        while self.heights.first_key_value().is_some_and(|(h, _)| *h <= keep_above) {
            self.drop_lowest_height();
        }
    }

    /// The bodies held, ascending by hash, with their heights.
    fn held(&self) -> Vec<(Height, &Tx)> {
        let holding = self.holding();
        let mut held: Vec<(Height, &Tx)> = self
            .records
            .iter()
            .zip(holding)
            .filter(|(_, holds)| *holds)
            .map(|(r, _)| (r.height, &r.tx))
            .collect();
        held.sort_unstable_by_key(|(_, tx)| tx.hash);
        held
    }

    /// Appends `u32 h | h × (height u64, records u64)` ascending by height, then
    /// `u32 n | n × (height u64, Tx without its raw bytes)` ascending by hash.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        put_count(out, self.heights.len());
        for (height, held) in &self.heights {
            height.encode(out);
            held.records.encode(out);
        }
        let held = self.held();
        put_count(out, held.len());
        for (height, tx) in held {
            height.encode(out);
            encode_tx_without_raw(tx, out);
        }
    }

    /// Reads what [`ReopenWindow::encode`] wrote: heights strictly ascending, each body at a
    /// listed height, bodies strictly ascending by hash.
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut window = Self::default();
        // Bodies each listed height may still hold: at most its records.
        let mut room: BTreeMap<Height, u64> = BTreeMap::new();
        // A height encodes to 16 bytes.
        let heights = r.count(16)?;
        let mut last: Option<Height> = None;
        for _ in 0..heights {
            let offset = r.position();
            let height = Height::decode(r)?;
            let records = u64::decode(r)?;
            if last.is_some_and(|last| last >= height) || records == 0 {
                return Err(DecodeError::InvalidValue { offset, what: "reopen window height" });
            }
            last = Some(height);
            window.open(height, records);
            window.held_records = window.held_records.saturating_add(records);
            room.insert(height, records);
        }
        // A body encodes to at least 9 bytes.
        let count = r.count(9)?;
        let mut last: Option<TxHash> = None;
        for _ in 0..count {
            let offset = r.position();
            let height = Height::decode(r)?;
            let tx = decode_tx_without_raw(r)?;
            let generation = window.heights.get(&height).map(|h| h.generation);
            let room = room.get_mut(&height).and_then(|n| n.checked_sub(1).map(|left| *n = left));
            let in_order = last.is_none_or(|l| l < tx.hash);
            let (Some(generation), Some(()), true) = (generation, room, in_order) else {
                return Err(DecodeError::InvalidValue { offset, what: "replay included body" });
            };
            last = Some(tx.hash);
            window.words.push_back(prefix(&tx.hash));
            window.records.push_back(Record { height, generation, reopened: false, tx });
        }
        Ok(window)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use mempulse_primitives::{Address, Fees, Nonce, TxType};
    use proptest::prelude::*;

    use super::*;

    fn tx(n: u8) -> Tx {
        Tx {
            hash: TxHash([n; 32]),
            sender: Address([n; 20]),
            nonce: Nonce(u64::from(n)),
            gas_limit: 21_000,
            fees: Fees { max_fee_per_gas: 2, max_priority_fee_per_gas: 1 },
            tx_type: TxType::DynamicFee,
            chain_id: None,
            encoded_size: 0,
            raw: Default::default(),
        }
    }

    /// The rules written out plainly: bodies by hash, and per height its hashes and records.
    struct Model {
        bodies: BTreeMap<TxHash, (Height, Tx)>,
        by_height: BTreeMap<Height, (BTreeSet<TxHash>, u64)>,
        max: u64,
    }

    impl Model {
        fn new(max: u64) -> Self {
            Self { bodies: BTreeMap::new(), by_height: BTreeMap::new(), max }
        }

        fn keep(&mut self, height: Height, tx: Tx) {
            let hash = tx.hash;
            if let Some((old, _)) = self.bodies.insert(hash, (height, tx))
                && let Some((set, _)) = self.by_height.get_mut(&old)
            {
                set.remove(&hash);
            }
            let (set, records) = self.by_height.entry(height).or_default();
            set.insert(hash);
            *records += 1;
            while self.by_height.values().map(|(_, n)| n).sum::<u64>() > self.max {
                self.drop_lowest();
            }
        }

        fn drop_lowest(&mut self) {
            if let Some((_, (set, _))) = self.by_height.pop_first() {
                for hash in set {
                    self.bodies.remove(&hash);
                }
            }
        }

        fn take(&mut self, hash: &TxHash) -> Option<(Height, Tx)> {
            let (height, tx) = self.bodies.remove(hash)?;
            if let Some((set, _)) = self.by_height.get_mut(&height) {
                set.remove(hash);
            }
            Some((height, tx))
        }

        fn trim(&mut self, height: Height) {
            let keep_above = Height(height.0.saturating_sub(REOPEN_WINDOW_HEIGHTS));
            while self.by_height.first_key_value().is_some_and(|(h, _)| *h <= keep_above) {
                self.drop_lowest();
            }
        }

        fn encode(&self) -> Vec<u8> {
            let mut out = Vec::new();
            put_count(&mut out, self.by_height.len());
            for (height, (_, records)) in &self.by_height {
                height.encode(&mut out);
                records.encode(&mut out);
            }
            put_count(&mut out, self.bodies.len());
            for (height, tx) in self.bodies.values() {
                height.encode(&mut out);
                tx.encode(&mut out);
            }
            out
        }
    }

    #[test]
    fn a_reopen_finds_the_newest_record_and_only_once() {
        let mut window = ReopenWindow::default();
        for _ in 0..100 {
            window.keep(Height(5), tx(1));
        }
        window.keep(Height(6), tx(1));
        window.keep(Height(6), tx(2));
        assert_eq!(window.held_records, 102, "every inclusion is a record");
        window.trim(Height(5 + REOPEN_WINDOW_HEIGHTS));
        assert_eq!(window.heights.len(), 1);
        assert_eq!(window.records.len(), 2, "height 5's records left the front of the queue");
        assert_eq!(
            window.take(&TxHash([1; 32])).map(|(h, tx)| (h, tx.hash)),
            Some((Height(6), TxHash([1; 32])))
        );
        assert_eq!(window.take(&TxHash([1; 32])), None);
        assert_eq!(window.take(&TxHash([3; 32])), None, "never included");
    }

    #[test]
    fn a_forgotten_newest_record_is_not_replaced_by_an_older_one() {
        let mut window = ReopenWindow::default();
        window.keep(Height(100), tx(1));
        // Included again lower (a re-admitted transaction): the newest record is at 10.
        window.keep(Height(10), tx(1));
        window.trim(Height(10 + REOPEN_WINDOW_HEIGHTS));
        assert_eq!(window.take(&TxHash([1; 32])), None, "the record at 100 is superseded");
        // Height 10 included at again: a new generation, not the forgotten one.
        window.keep(Height(10), tx(2));
        assert_eq!(window.take(&TxHash([2; 32])).map(|(h, _)| h), Some(Height(10)));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Inclusions (again at the same or another height), reopens, trims and the records
        /// bound give the model's bodies and encoding, and the encoding reads back.
        #[test]
        fn the_window_behaves_as_the_model(
            max in 1..40usize,
            ops in prop::collection::vec((0..3u8, 0..12u8, 0..200u64), 0..300),
        ) {
            let mut window = ReopenWindow::with_max(max);
            let mut model = Model::new(max as u64);
            for (op, n, height) in ops {
                let (hash, height) = (TxHash([n; 32]), Height(height));
                match op {
                    0 => {
                        window.keep(height, tx(n));
                        model.keep(height, tx(n));
                    }
                    1 => {
                        let got = window.take(&hash).map(|(h, tx)| (h, tx.hash));
                        prop_assert_eq!(got, model.take(&hash).map(|(h, tx)| (h, tx.hash)));
                    }
                    _ => {
                        window.trim(height);
                        model.trim(height);
                    }
                }
                prop_assert!(window.records.len() <= 2 * max + 1);
            }
            let mut bytes = Vec::new();
            window.encode(&mut bytes);
            prop_assert_eq!(&bytes, &model.encode());
            let mut r = Reader::new(&bytes);
            let back = ReopenWindow::decode(&mut r).unwrap();
            r.finish().unwrap();
            let mut again = Vec::new();
            back.encode(&mut again);
            prop_assert_eq!(again, bytes);
        }
    }
}
