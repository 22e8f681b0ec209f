//! Proposer selection for 10 000 consecutive heights with 4, 100 and 1 000 validators, and the
//! tags of 10 000 heights with 100 validators.
//!
//! `cargo bench -p mempulse-schedule --bench schedule`

#![allow(missing_docs, reason = "criterion macros generate undocumented items")]
#![allow(clippy::expect_used, reason = "bench setup with known-valid validator sets")]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mempulse_primitives::{Address, Height, ValidatorId};
use mempulse_schedule::{Schedule, Validator};

const HEIGHTS: u64 = 10_000;

/// `n` validators with powers 1..=1000 from a fixed linear congruential sequence (seed 7).
fn validators(n: u64) -> Vec<Validator> {
    let mut x: u64 = 7;
    (1..=n)
        .map(|id| {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            let mut address = [0u8; 20];
            address[..8].copy_from_slice(&x.to_be_bytes());
            address[12..].copy_from_slice(&id.to_be_bytes());
            Validator::new(ValidatorId(id), Address(address), (x >> 33) % 1000 + 1)
        })
        .collect()
}

fn bench_proposers(c: &mut Criterion) {
    let mut group = c.benchmark_group("proposers_10k_heights");
    group.throughput(Throughput::Elements(HEIGHTS));
    for n in [4u64, 100, 1000] {
        let schedule = Schedule::genesis(Height(1), &validators(n)).expect("valid set");
        group.bench_function(format!("{n}_validators"), |b| {
            b.iter(|| {
                let iter = schedule.proposers(Height(1)).expect("base height");
                let last = iter.take(usize::try_from(HEIGHTS).expect("fits")).last();
                black_box(last)
            });
        });
    }
    group.finish();
}

fn bench_tags(c: &mut Criterion) {
    let mut group = c.benchmark_group("tags_10k_heights");
    group.throughput(Throughput::Elements(HEIGHTS));
    let schedule = Schedule::genesis(Height(1), &validators(100)).expect("valid set");
    group.bench_function("100_validators", |b| {
        b.iter(|| {
            let iter = schedule.tags(Height(1)).expect("base height");
            black_box(iter.take(usize::try_from(HEIGHTS).expect("fits")).count())
        });
    });
    group.finish();
}

criterion_group!(benches, bench_proposers, bench_tags);
criterion_main!(benches);
