//! Append and scan throughput of the WAL: 256-byte records, groups of 1/64/1024, synced and
//! unsynced, the three preallocation strategies, warm scans and reopen time.
//!
//! Run: `cargo bench -p mempulse-wal --bench append`. The cross-engine comparison (raft-engine,
//! okaywal) lives in `bin/bench`.
#![allow(clippy::expect_used, reason = "bench setup: any failure should abort the run")]
#![allow(missing_docs, reason = "criterion's macros generate undocumented items")]

use std::{hint::black_box, ops::ControlFlow};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use mempulse_wal::{Preallocate, Seq, SyncPolicy, Wal, WalConfig};

const RECORD_BYTES: usize = 256;

fn records(count: usize, seed: u64) -> Vec<Vec<u8>> {
    // A cheap deterministic generator (splitmix64): inputs are seeded, never random.
    let mut state = seed;
    (0..count)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let word = state.to_le_bytes();
            (0..RECORD_BYTES).map(|i| word[i % 8] ^ u8::try_from(i % 251).unwrap_or(0)).collect()
        })
        .collect()
}

fn config(dir: &std::path::Path, sync: SyncPolicy, preallocate: Preallocate) -> WalConfig {
    WalConfig::new(dir).with_sync(sync).with_preallocate(preallocate)
}

fn bench_append(c: &mut Criterion) {
    let mut group = c.benchmark_group("wal_append");
    let cases = [
        ("unsynced", SyncPolicy::Never, Preallocate::Fallocate, [1usize, 64, 1024].as_slice()),
        ("synced", SyncPolicy::Always, Preallocate::Fallocate, [1, 64, 1024].as_slice()),
        ("unsynced-zero-fill", SyncPolicy::Never, Preallocate::ZeroFill, [1024].as_slice()),
        ("synced-zero-fill", SyncPolicy::Always, Preallocate::ZeroFill, [1, 64].as_slice()),
        ("synced-recycle", SyncPolicy::Always, Preallocate::Recycle, [64].as_slice()),
    ];
    for (name, sync, preallocate, sizes) in cases {
        for &size in sizes {
            let dir = tempfile::tempdir().expect("tempdir");
            let mut wal = Wal::open(config(dir.path(), sync, preallocate)).expect("open");
            let batch = records(size, 7);
            group.throughput(Throughput::Bytes((size * RECORD_BYTES) as u64));
            group.bench_with_input(BenchmarkId::new(name, size), &size, |b, _| {
                b.iter(|| {
                    let range = wal.append(&batch).expect("append");
                    // Keep the directory bounded during long runs.
                    if range.last.0 % (1 << 20) < size as u64 {
                        wal.purge_before(range.last).expect("purge");
                    }
                    black_box(range)
                });
            });
        }
    }
    group.finish();
}

fn populated(count: usize) -> (tempfile::TempDir, WalConfig) {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), SyncPolicy::Never, Preallocate::Fallocate);
    let mut wal = Wal::open(cfg.clone()).expect("open");
    let batch = records(1024, 11);
    for _ in 0..count / 1024 {
        wal.append(&batch).expect("append");
    }
    wal.sync().expect("sync");
    (dir, cfg)
}

fn bench_scan(c: &mut Criterion) {
    const COUNT: usize = 1 << 20;
    let (_dir, cfg) = populated(COUNT);
    let wal = Wal::open(cfg.clone()).expect("open");
    let reader = wal.reader();
    // Readers outlive the writer; the directory lock goes with it (reopen needs the lock).
    drop(wal);
    let mut group = c.benchmark_group("wal_scan");
    group.sample_size(10);
    group.throughput(Throughput::Bytes((COUNT * RECORD_BYTES) as u64));
    group.bench_function("warm-1m", |b| {
        b.iter(|| {
            let mut bytes = 0usize;
            let n = reader
                .scan_with(Seq(1), usize::MAX, |_, payload| {
                    bytes += payload.len();
                    ControlFlow::Continue(())
                })
                .expect("scan");
            black_box((n, bytes))
        });
    });
    group.throughput(Throughput::Elements(1));
    group.bench_function("reopen-1m", |b| {
        b.iter(|| black_box(Wal::open(cfg.clone()).expect("reopen").last_seq()));
    });
    group.finish();
}

criterion_group!(benches, bench_append, bench_scan);
criterion_main!(benches);
