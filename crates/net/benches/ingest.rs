//! The ingest path, submit to verdict: lane checks, dedup, decode and recovery on the pool, the
//! order thread's facts into a real event log (unsynced), batching and a trivial admission. The
//! peer in the same run is the bare worker pool on the same transactions, so the ratio is the
//! cost of the pipeline around decoding.
//!
//! Run: `cargo bench -p mempulse-net --bench ingest`. Inputs are seeded (fixed keys, RFC 6979
//! signatures); setup happens outside the timed loops.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    reason = "benchmark harness: setup failures abort the run"
)]

use std::{hint::black_box, num::NonZeroUsize, sync::Arc, time::Duration};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures_util::future::join_all;
use mempulse_net::{
    Admission, AdmissionFuture, BatchDecoder, CheckConfig, FactWriter, Ingest, IngestConfig,
    IngestHandle, PoolConfig, PoolVerdict, SourceId, ThrottleConfig, TxOutcome,
    test_utils::sample_txs,
};
use mempulse_primitives::{Lane, RejectReason, Subpool, Tx};
use mempulse_wal::{Sequencer, SequencerConfig, SequencerHandle, SyncPolicy, Wal, WalConfig};

const TXS: usize = 1024;

/// Rejects every transaction as `fee_too_low` except the ones marked to keep, so the dedup cache
/// forgets the rest and the same transactions can be submitted again each iteration.
struct Verdicts;

impl Admission for Verdicts {
    fn admit(&self, txs: Vec<Tx>) -> AdmissionFuture {
        let verdicts = txs
            .iter()
            .map(|tx| {
                if tx.nonce.0 == u64::MAX - 1 {
                    PoolVerdict::Admitted { subpool: Subpool::Pending }
                } else {
                    PoolVerdict::Rejected { reason: RejectReason::FeeTooLow }
                }
            })
            .collect();
        Box::pin(async move { Ok(verdicts) })
    }
}

fn pipeline(
    runtime: &tokio::runtime::Runtime,
    dir: &std::path::Path,
) -> (IngestHandle, SequencerHandle) {
    let wal = Wal::open(WalConfig::new(dir).with_sync(SyncPolicy::Never)).unwrap();
    let events = Sequencer::start(wal, SequencerConfig::default()).unwrap();
    let config = IngestConfig {
        throttle: ThrottleConfig { rate_per_s: 0, ..ThrottleConfig::default() },
        ..IngestConfig::default()
    };
    let _guard = runtime.enter();
    let ingest = Ingest::start(
        config,
        CheckConfig::default(),
        Arc::new(Verdicts),
        FactWriter::new(events.clone()),
    )
    .unwrap();
    (ingest, events)
}

fn ingest(c: &mut Criterion) {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (handle, events) = pipeline(&runtime, dir.path());
    let txs = sample_txs(TXS, 64);
    let threads = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);

    let mut group = c.benchmark_group("ingest");
    group.throughput(Throughput::Elements(TXS as u64));
    group.sample_size(10);
    group.bench_function("submit_to_verdict", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let submitted = txs
                    .iter()
                    .map(|raw| handle.submit(Lane::Rpc, SourceId::Local, raw.clone()))
                    .collect::<Vec<_>>();
                for outcome in join_all(submitted).await {
                    assert!(matches!(outcome, TxOutcome::Accepted { .. }), "{outcome:?}");
                }
            });
        });
    });
    let pool = PoolConfig {
        threads: NonZeroUsize::new(threads),
        capacity: NonZeroUsize::new(TXS).unwrap(),
    };
    let mut decoder = BatchDecoder::new(pool, CheckConfig::default()).unwrap();
    group.bench_function("pool_only_peer", |b| {
        b.iter(|| black_box(decoder.decode_all(txs.clone()).unwrap()));
    });
    group.finish();

    // The cheap path: a transaction the pool holds, submitted again, dropped as a duplicate
    // (keccak, dedup lookup, one TxDropped fact).
    let held = mempulse_net::test_utils::signed_tx(&mempulse_net::test_utils::TxSpec::transfer(
        mempulse_primitives::TxType::DynamicFee,
        7,
        u64::MAX - 1,
    ))
    .unwrap();
    let first = runtime.block_on(handle.submit(Lane::Rpc, SourceId::Local, held.clone()));
    assert!(matches!(first, TxOutcome::Accepted { .. }), "{first:?}");
    let mut group = c.benchmark_group("ingest_drop");
    group.throughput(Throughput::Elements(1));
    group.bench_function("duplicate", |b| {
        b.iter(|| black_box(handle.submit(Lane::Rpc, SourceId::Local, held.clone())));
    });
    group.finish();

    runtime.block_on(async {
        handle.shutdown(Duration::from_secs(30)).await.unwrap();
        events.shutdown().await.unwrap();
    });
}

criterion_group!(benches, ingest);
criterion_main!(benches);
