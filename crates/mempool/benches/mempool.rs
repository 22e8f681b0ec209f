//! Criterion benches of the mempool state machine: add, build, commit + recheck, snapshot +
//! digest, at pool sizes 10k and 100k (set `MEMPOOL_BENCH_1M=1` to add 1M).
//!
//! Inputs are seeded workloads from `test_utils`; setup runs outside the timed loop.

#![allow(missing_docs, reason = "criterion macros generate undocumented items")]
#![allow(clippy::expect_used, reason = "bench setup with a known-valid config")]

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use mempulse_mempool::test_utils::Workload;
use mempulse_mempool::{BlockLimits, CommitBlock, Mempool, MempoolConfig, OrderingPolicy};
use mempulse_primitives::{Height, Tx};

const SEED: u64 = 0x6d65_6d70;

fn sizes() -> Vec<usize> {
    let mut v = vec![10_000, 100_000];
    if std::env::var_os("MEMPOOL_BENCH_1M").is_some() {
        v.push(1_000_000);
    }
    v
}

fn config(n: usize, ordering: OrderingPolicy) -> MempoolConfig {
    MempoolConfig {
        max_txs: u32::try_from(n).unwrap_or(u32::MAX),
        max_pool_bytes: u64::MAX,
        max_txs_per_sender: 64,
        ordering,
        ttl_heights: 0,
        ..MempoolConfig::default()
    }
}

/// `n` transactions from `n / 8` senders (about 8 nonces each).
fn workload(n: usize) -> Vec<Tx> {
    let senders = u32::try_from(n / 8).unwrap_or(u32::MAX).max(1);
    Workload::new(SEED, senders).batch(n)
}

fn filled(n: usize, ordering: OrderingPolicy) -> Mempool {
    let mut pool = Mempool::new(config(n, ordering)).expect("valid config");
    pool.add_txs(workload(n));
    pool
}

fn bench_add(c: &mut Criterion) {
    let mut g = c.benchmark_group("add");
    for n in sizes() {
        let txs = workload(n);
        g.throughput(Throughput::Elements(n as u64));
        g.sample_size(10);
        g.bench_function(format!("{n}"), |b| {
            b.iter_batched(
                || {
                    (
                        Mempool::new(config(n, OrderingPolicy::Priority)).expect("valid config"),
                        txs.clone(),
                    )
                },
                // Return the pool so that dropping it is not timed.
                |(mut pool, txs)| {
                    let facts = pool.add_txs(txs);
                    (pool, black_box(facts))
                },
                BatchSize::LargeInput,
            );
        });
    }
    g.finish();
}

fn bench_build(c: &mut Criterion) {
    let mut g = c.benchmark_group("build_10k");
    let limits = BlockLimits { max_bytes: None, max_gas: None };
    for n in sizes() {
        for ordering in [OrderingPolicy::Fifo, OrderingPolicy::Priority] {
            let pool = filled(n, ordering);
            // About 10k transactions: 350 bytes each on average.
            let limits = BlockLimits { max_bytes: Some(3_500_000), ..limits };
            g.sample_size(20);
            g.bench_function(format!("{ordering:?}/{n}"), |b| {
                b.iter(|| black_box(pool.build_block(limits)));
            });
        }
    }
    g.finish();
}

fn bench_commit(c: &mut Criterion) {
    let mut g = c.benchmark_group("commit_recheck");
    for n in sizes() {
        let pool = filled(n, OrderingPolicy::Priority);
        let block = pool.build_block(BlockLimits { max_bytes: Some(3_500_000), max_gas: None });
        let hashes: Vec<_> = block.txs.iter().map(|t| t.hash).collect();
        g.sample_size(10);
        g.bench_function(format!("{n}"), |b| {
            b.iter_batched(
                || (pool.clone(), hashes.clone()),
                |(mut pool, txs)| {
                    let facts = black_box(pool.commit_block(&CommitBlock {
                        height: Height(1),
                        txs,
                        ..CommitBlock::default()
                    }));
                    (pool, facts)
                },
                BatchSize::LargeInput,
            );
        });
    }
    g.finish();
}

fn bench_snapshot(c: &mut Criterion) {
    let mut g = c.benchmark_group("snapshot_digest");
    for n in sizes() {
        let pool = filled(n, OrderingPolicy::Priority);
        g.sample_size(10);
        g.bench_function(format!("snapshot/{n}"), |b| b.iter(|| black_box(pool.snapshot())));
        g.bench_function(format!("digest/{n}"), |b| b.iter(|| black_box(pool.digest())));
        let bytes = pool.snapshot();
        g.bench_function(format!("restore/{n}"), |b| {
            b.iter(|| black_box(Mempool::restore(&bytes)))
        });
    }
    g.finish();
}

criterion_group!(benches, bench_add, bench_build, bench_commit, bench_snapshot);
criterion_main!(benches);
