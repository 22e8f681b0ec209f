//! Model-based property test: gapless seqs and exact contents across segment rolls, truncation,
//! purge, reopen and power loss (small segments, bounded cases).

use std::{collections::BTreeMap, ops::ControlFlow};

use mempulse_wal::{
    Seq, Wal,
    test_utils::{CrashMode, SimStorage},
};
use proptest::prelude::*;

use crate::common::{ALL_PREALLOCATE, open_sim, small_config};

#[derive(Debug, Clone)]
enum Op {
    Append(Vec<usize>),
    Sync,
    TruncateBack(u64),
    PurgePercent(u64),
    Reopen,
    PowerLoss,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => proptest::collection::vec(1usize..700, 1..25).prop_map(Op::Append),
        1 => Just(Op::Sync),
        1 => (0u64..60).prop_map(Op::TruncateBack),
        1 => (0u64..=100).prop_map(Op::PurgePercent),
        1 => Just(Op::Reopen),
        1 => Just(Op::PowerLoss),
    ]
}

fn content(seq: u64, epoch: usize, len: usize) -> Vec<u8> {
    (0..len).map(|i| (seq as u8) ^ (epoch as u8).wrapping_mul(17) ^ (i as u8)).collect()
}

struct Model {
    records: BTreeMap<u64, Vec<u8>>,
    first: u64,
    synced: u64,
}

impl Model {
    fn last(&self) -> u64 {
        self.records.keys().next_back().copied().unwrap_or(self.first - 1)
    }
}

fn check(wal: &Wal, model: &Model) -> Result<(), TestCaseError> {
    prop_assert_eq!(wal.first_seq(), Seq(model.first));
    prop_assert_eq!(wal.last_seq(), Seq(model.last()));
    let mut expect = model.records.iter();
    let mut failure = None;
    wal.reader()
        .scan_with(Seq(model.first), usize::MAX, |seq, bytes| {
            let ok = expect.next().is_some_and(|(s, b)| *s == seq.0 && b.as_slice() == bytes);
            if !ok {
                failure = Some(seq);
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        })
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(failure, None);
    prop_assert!(expect.next().is_none(), "records missing from the log");
    Ok(())
}

fn apply(sim: &mut SimStorage, slot: &mut Option<Wal>, model: &mut Model, op: &Op, epoch: usize) {
    let wal = slot.as_mut().unwrap();
    let config = wal.config().clone();
    match op {
        Op::Append(sizes) => {
            let first = model.last() + 1;
            let batch: Vec<Vec<u8>> = sizes
                .iter()
                .enumerate()
                .map(|(i, len)| content(first + i as u64, epoch, *len))
                .collect();
            let range = wal.append(&batch).unwrap();
            assert_eq!(range.first, Seq(first));
            for (i, record) in batch.into_iter().enumerate() {
                model.records.insert(first + i as u64, record);
            }
        }
        Op::Sync => {
            wal.sync().unwrap();
            model.synced = model.last();
        }
        Op::TruncateBack(back) => {
            let to = model.last().saturating_sub(*back).max(model.first - 1);
            wal.truncate_after(Seq(to)).unwrap();
            model.records.retain(|s, _| *s <= to);
            model.synced = model.synced.min(to);
        }
        Op::PurgePercent(percent) => {
            let span = model.last() + 1 - model.first;
            let before = model.first + span * percent / 100;
            wal.purge_before(Seq(before)).unwrap();
            let first = wal.first_seq().0;
            assert!(first >= model.first && (first <= before || first == model.first));
            model.first = first;
            model.records.retain(|s, _| *s >= first);
        }
        Op::Reopen => {
            // Close first: its spare-preparing thread must be done with the directory.
            drop(slot.take());
            *slot = Some(open_sim(sim, config).unwrap());
        }
        Op::PowerLoss => {
            *sim = sim.crash_image(CrashMode::DropUnsynced);
            drop(slot.take());
            let wal = slot.insert(open_sim(sim, config).unwrap());
            let last = wal.last_seq().0;
            assert!(last >= model.synced && last <= model.last(), "{last} vs {}", model.synced);
            model.records.retain(|s, _| *s <= last);
            model.synced = last;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn seqs_stay_gapless_and_contents_exact(
        ops in proptest::collection::vec(op(), 1..40),
        prealloc in 0usize..3,
        first in prop_oneof![Just(1u64), 2u64..1_000_000],
        prepare_ahead in proptest::bool::ANY,
    ) {
        let mut sim = SimStorage::new();
        let config = small_config(ALL_PREALLOCATE[prealloc])
            .with_first_seq(Seq(first))
            .with_prepare_ahead(prepare_ahead);
        let mut wal = Some(open_sim(&sim, config).unwrap());
        let mut model = Model { records: BTreeMap::new(), first, synced: first - 1 };
        for (epoch, op) in ops.iter().enumerate() {
            apply(&mut sim, &mut wal, &mut model, op, epoch);
            check(wal.as_ref().unwrap(), &model)?;
        }
    }
}
