//! Replay throughput on one core: decoding stored payloads and applying them, against decoding
//! alone (the floor a replay cannot beat), plus a checkpoint write and load of the final state.
//! Seeded `test_utils::generate` mix; generation and encoding happen outside the timed loops.
//! The end-to-end figures (WAL reads, cold cache, start-up) come from `mempulse-bench replay`.

#![allow(missing_docs, reason = "criterion macros generate undocumented items")]
#![allow(clippy::unwrap_used, reason = "bench setup: a failure is a bug")]

use std::{hint::black_box, sync::Arc};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use mempulse_primitives::{Event, Seq};
use mempulse_replay::{
    CheckpointStore, ReplayConfig, Replayer,
    test_utils::{MixConfig, generate},
};
use mempulse_wal::test_utils::SimStorage;

const EVENTS: usize = 100_000;

fn payloads() -> Vec<Vec<u8>> {
    generate(&MixConfig::default(), EVENTS).unwrap().iter().map(Event::to_bytes).collect()
}

fn replay(payloads: &[Vec<u8>]) -> Replayer {
    let mut r = Replayer::new(ReplayConfig::default());
    for (i, p) in payloads.iter().enumerate() {
        r.apply_payload(Seq(i as u64 + 1), p).unwrap();
    }
    r
}

fn bench(c: &mut Criterion) {
    let payloads = payloads();
    let mut group = c.benchmark_group("replay");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.sample_size(10);
    group.bench_function("decode_only", |b| {
        b.iter(|| {
            for p in &payloads {
                black_box(Event::from_bytes(p).unwrap());
            }
        });
    });
    group.bench_function("decode_and_apply", |b| {
        b.iter_batched(|| (), |()| replay(&payloads), BatchSize::PerIteration);
    });
    group.finish();

    let state = replay(&payloads);
    let mut group = c.benchmark_group("checkpoint");
    group.sample_size(10);
    group.bench_function("write", |b| {
        b.iter_batched(
            || CheckpointStore::with_storage(Arc::new(SimStorage::new()), 1).unwrap(),
            |store| store.write(&state).unwrap(),
            BatchSize::PerIteration,
        );
    });
    let store = CheckpointStore::with_storage(Arc::new(SimStorage::new()), 1).unwrap();
    store.write(&state).unwrap();
    group.bench_function("load", |b| {
        b.iter(|| store.load_newest_valid(ReplayConfig::default(), None).unwrap().loaded.unwrap());
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
