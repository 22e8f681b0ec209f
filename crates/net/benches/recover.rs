//! Sender recovery cost: the two secp256k1 backends alloy can use (k256 in pure Rust,
//! libsecp256k1 through the `secp256k1` crate) on identical signatures, `decode_tx` per
//! transaction on one core, and the worker pool's scaling with threads.
//!
//! Run: `cargo bench -p mempulse-net --bench recover`. Inputs are seeded (fixed keys, RFC 6979
//! signatures); setup happens outside the timed loops.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    reason = "benchmark harness: setup failures abort the run"
)]

use std::{hint::black_box, num::NonZeroUsize};

use alloy_primitives::keccak256;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use mempulse_net::{
    BatchDecoder, CheckConfig, PoolConfig, decode_tx,
    test_utils::{sample_key, sample_txs},
};

const SIGNATURES: usize = 64;
const POOL_BATCH: usize = 1024;

/// `(prehash, compact signature, recovery id)` triples signed by fixed keys.
fn signatures() -> Vec<([u8; 32], [u8; 64], u8)> {
    (0..SIGNATURES)
        .map(|i| {
            let index = u32::try_from(i).unwrap();
            let msg = keccak256(index.to_le_bytes()).0;
            let key = secp256k1::SecretKey::from_slice(sample_key(index).as_slice()).unwrap();
            let sig = secp256k1::SECP256K1
                .sign_ecdsa_recoverable(&secp256k1::Message::from_digest(msg), &key);
            let (recid, compact) = sig.serialize_compact();
            (msg, compact, u8::try_from(i32::from(recid)).unwrap())
        })
        .collect()
}

fn recover_libsecp256k1(msg: &[u8; 32], compact: &[u8; 64], recid: u8) -> [u8; 20] {
    let id = secp256k1::ecdsa::RecoveryId::try_from(i32::from(recid)).unwrap();
    let sig = secp256k1::ecdsa::RecoverableSignature::from_compact(compact, id).unwrap();
    let public =
        secp256k1::SECP256K1.recover_ecdsa(&secp256k1::Message::from_digest(*msg), &sig).unwrap();
    let hash = keccak256(&public.serialize_uncompressed()[1..]);
    hash.0[12..].try_into().unwrap()
}

fn recover_k256(msg: &[u8; 32], compact: &[u8; 64], recid: u8) -> [u8; 20] {
    let sig = k256::ecdsa::Signature::from_slice(compact).unwrap();
    let id = k256::ecdsa::RecoveryId::from_byte(recid).unwrap();
    let key = k256::ecdsa::VerifyingKey::recover_from_prehash(msg, &sig, id).unwrap();
    let hash = keccak256(&key.to_encoded_point(false).as_bytes()[1..]);
    hash.0[12..].try_into().unwrap()
}

fn backends(c: &mut Criterion) {
    let sigs = signatures();
    for (msg, compact, recid) in &sigs {
        assert_eq!(recover_k256(msg, compact, *recid), recover_libsecp256k1(msg, compact, *recid));
    }
    let mut group = c.benchmark_group("backend");
    group.throughput(Throughput::Elements(SIGNATURES as u64));
    group.bench_function("k256", |b| {
        b.iter(|| {
            for (msg, compact, recid) in &sigs {
                black_box(recover_k256(msg, compact, *recid));
            }
        });
    });
    group.bench_function("libsecp256k1", |b| {
        b.iter(|| {
            for (msg, compact, recid) in &sigs {
                black_box(recover_libsecp256k1(msg, compact, *recid));
            }
        });
    });
    group.finish();
}

fn decode_single_core(c: &mut Criterion) {
    let txs = sample_txs(SIGNATURES, 16);
    let config = CheckConfig::default();
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(txs.len() as u64));
    group.bench_function("decode_tx_mixed_types", |b| {
        b.iter(|| {
            for raw in &txs {
                black_box(decode_tx(raw.clone(), &config).unwrap());
            }
        });
    });
    group.finish();
}

fn pool_scaling(c: &mut Criterion) {
    let txs = sample_txs(POOL_BATCH, 64);
    let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    let mut group = c.benchmark_group("pool");
    group.throughput(Throughput::Elements(txs.len() as u64));
    group.sample_size(10);
    for threads in [1, 2, 4].into_iter().filter(|t| *t <= cores.max(2)) {
        let pool = PoolConfig {
            threads: NonZeroUsize::new(threads),
            capacity: NonZeroUsize::new(POOL_BATCH).unwrap(),
        };
        let mut decoder = BatchDecoder::new(pool, CheckConfig::default()).unwrap();
        group.bench_function(format!("threads_{threads}"), |b| {
            b.iter_batched(
                || txs.clone(),
                |batch| black_box(decoder.decode_all(batch).unwrap()),
                BatchSize::LargeInput,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, backends, decode_single_core, pool_scaling);
criterion_main!(benches);
