//! Unit tests of the lifecycle index, and a differential property test against the
//! straightforward model it replaced (a map of entries plus a `BTreeSet<(Seq, TxHash)>` of the
//! finished ones).
#![allow(clippy::panic, reason = "test code: a failed assumption is a failed test")]

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

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

/// The model: what the index did before the slab and the finished queue, kept obvious.
#[derive(Debug, Default)]
struct Model {
    entries: BTreeMap<TxHash, (Vec<u64>, u32, Seq, bool)>,
    finished: BTreeSet<(Seq, TxHash)>,
    pruned_through: Seq,
    finished_max: usize,
    refs_max: usize,
}

impl Model {
    fn record(&mut self, hash: TxHash, fact: FactRef, in_pool: bool) {
        let life = self.entries.entry(hash).or_insert((Vec::new(), 0, fact.seq, false));
        if life.3 {
            self.finished.remove(&(life.2, hash));
        }
        if life.0.len() < self.refs_max {
            life.0.push(fact.pack());
        } else {
            life.1 = life.1.saturating_add(1);
        }
        life.2 = fact.seq;
        life.3 = !in_pool;
        if !in_pool {
            self.finished.insert((fact.seq, hash));
            self.trim();
        }
    }

    fn finish(&mut self, hash: TxHash) {
        if let Some(life) = self.entries.get_mut(&hash)
            && !life.3
        {
            life.3 = true;
            self.finished.insert((life.2, hash));
            self.trim();
        }
    }

    fn revive(&mut self, hash: TxHash) {
        if let Some(life) = self.entries.get_mut(&hash)
            && life.3
        {
            life.3 = false;
            self.finished.remove(&(life.2, hash));
        }
    }

    fn trim(&mut self) {
        while self.finished.len() > self.finished_max {
            let Some((seq, hash)) = self.finished.pop_first() else { break };
            self.entries.remove(&hash);
            self.pruned_through = self.pruned_through.max(seq);
        }
    }

    fn lookup(&self, hash: &TxHash) -> LifecycleLookup {
        match self.entries.get(hash) {
            Some((refs, omitted, last_seq, finished)) => LifecycleLookup::Found(TxLifecycle {
                hash: *hash,
                facts: refs.iter().filter_map(|w| FactRef::unpack(*w)).collect(),
                omitted: *omitted,
                last_seq: *last_seq,
                in_pool: !finished,
            }),
            None if self.pruned_through > Seq(0) => {
                LifecycleLookup::Pruned { pruned_through: self.pruned_through }
            }
            None => LifecycleLookup::Unknown,
        }
    }

    /// The canonical encoding, live entries in hash order.
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let put = |hash: &TxHash, life: &(Vec<u64>, u32, Seq, bool), out: &mut Vec<u8>| {
            hash.encode(out);
            life.1.encode(out);
            life.2.encode(out);
            life.0.encode(out);
        };
        self.pruned_through.encode(&mut out);
        let live: Vec<_> = self.entries.iter().filter(|(_, l)| !l.3).collect();
        put_count(&mut out, live.len());
        for (hash, life) in live {
            put(hash, life, &mut out);
        }
        put_count(&mut out, self.finished.len());
        for (_, hash) in &self.finished {
            put(hash, &self.entries[hash], &mut out);
        }
        out
    }
}

#[derive(Clone, Debug)]
enum Op {
    /// A fact about hash `h` at the current seq, or at the next one (`next`).
    Record {
        h: usize,
        next: bool,
        in_pool: bool,
    },
    /// A fact at an arbitrary seq (the index must not rely on seqs growing).
    RecordAt {
        h: usize,
        seq: u64,
        in_pool: bool,
    },
    Finish {
        h: usize,
    },
    Revive {
        h: usize,
    },
}

/// Ten hashes; the first six share their first word in pairs (collision chains in the slab).
fn hashes() -> Vec<TxHash> {
    (0..10u8)
        .map(|i| {
            let mut h = TxHash([i / 2 + if i < 6 { 0 } else { i }; 32]);
            h.0[31] = i;
            h
        })
        .collect()
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..10usize, any::<bool>(), any::<bool>())
            .prop_map(|(h, next, in_pool)| Op::Record { h, next, in_pool }),
        1 => (0..10usize, 1..40u64, any::<bool>())
            .prop_map(|(h, seq, in_pool)| Op::RecordAt { h, seq, in_pool }),
        2 => (0..10usize).prop_map(|h| Op::Finish { h }),
        1 => (0..10usize).prop_map(|h| Op::Revive { h }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_index_behaves_as_the_model(
        finished_max in 0..6usize,
        refs_max in 0..7usize,
        ops in prop::collection::vec(op(), 0..300),
    ) {
        let hashes = hashes();
        let mut index = LifecycleIndex::new(finished_max, refs_max);
        let mut model = Model { finished_max, refs_max, ..Model::default() };
        let mut seq = 1;
        for op in ops {
            match op {
                Op::Record { h, next, in_pool } => {
                    seq += u64::from(next);
                    let f = fact(seq, KindCode::TxAdmitted);
                    index.record(hashes[h], f, in_pool);
                    model.record(hashes[h], f, in_pool);
                }
                Op::RecordAt { h, seq, in_pool } => {
                    let f = fact(seq, KindCode::TxDropped);
                    index.record(hashes[h], f, in_pool);
                    model.record(hashes[h], f, in_pool);
                }
                Op::Finish { h } => {
                    index.finish(hashes[h]);
                    model.finish(hashes[h]);
                }
                Op::Revive { h } => {
                    index.revive(hashes[h]);
                    model.revive(hashes[h]);
                }
            }
            for h in &hashes {
                prop_assert_eq!(index.lookup(h), model.lookup(h));
            }
            prop_assert_eq!(index.len(), model.entries.len());
        }
        let mut live: Vec<TxHash> = model.entries.iter().filter(|(_, l)| !l.3).map(|(h, _)| *h).collect();
        live.sort();
        let mut bytes = Vec::new();
        index.encode(live.iter(), &mut bytes);
        prop_assert_eq!(&bytes, &model.encode());
        let mut r = Reader::new(&bytes);
        let back = LifecycleIndex::decode(&mut r, finished_max, refs_max).unwrap();
        r.finish().unwrap();
        let mut again = Vec::new();
        back.encode(live.iter(), &mut again);
        prop_assert_eq!(again, bytes);
    }
}

#[test]
fn finished_entries_out_of_order_are_refused() {
    let mut index = LifecycleIndex::new(10, 4);
    let (a, b) = (TxHash([1; 32]), TxHash([2; 32]));
    index.record(a, fact(1, KindCode::TxDropped), false);
    index.record(b, fact(2, KindCode::TxDropped), false);
    let mut bytes = Vec::new();
    index.encode([].iter(), &mut bytes);
    // Swap the two finished entries (pruned seq, no live entry, a count, then 56 bytes each).
    assert_eq!(bytes.len(), 8 + 4 + 4 + 2 * 56);
    let (first, second) = (bytes[16..72].to_vec(), bytes[72..128].to_vec());
    bytes[16..72].copy_from_slice(&second);
    bytes[72..128].copy_from_slice(&first);
    let err = LifecycleIndex::decode(&mut Reader::new(&bytes), 10, 4).unwrap_err();
    assert!(matches!(err, DecodeError::InvalidValue { what: "lifecycle order", .. }), "{err:?}");
}
