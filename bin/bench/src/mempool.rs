//! The `mempool` benchmark: the pure mempool state machine on one core.
//!
//! Phases, in order, on one seeded workload (`mempulse_mempool::test_utils::Workload`: random
//! senders each sending their nonces in order, so every transaction is pending):
//! 1. **generate** (untimed): `pool_size` transactions from `senders` senders.
//! 2. **add**: `add_txs` of the whole batch into an empty pool sized to hold it (no eviction,
//!    no TTL, no per-sender cap in the way); median of `reps` runs, each on a fresh pool and a
//!    fresh copy of the batch made before the clock starts. Every transaction must be admitted.
//! 3. **build**: `build_block` with a byte limit of `block_txs` times the workload's mean size
//!    (about `block_txs` transactions); median of `reps`.
//! 4. **commit + recheck**: `commit_block` of that block's hashes at height 1, on a clone of the
//!    full pool made before the clock starts; median of `reps`.
//! 5. **snapshot + digest**: one `snapshot()` plus one `digest()`; median of `reps`.
//!
//! Dropping pools and batches is never timed.

use std::time::{Duration, Instant};

use anyhow::ensure;
use mempulse_mempool::test_utils::Workload;
use mempulse_mempool::{BlockLimits, CommitBlock, Mempool, MempoolConfig, OrderingPolicy};
use mempulse_primitives::{Digest, EventKind, Height};
use serde_json::{Value, json};

use crate::report::Report;

/// Mean encoded size of a workload transaction (sizes are uniform in 100..=600 bytes).
const MEAN_TX_BYTES: u64 = 350;

/// Arguments of `mempulse-bench mempool`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Transactions added, and the pool's capacity.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    pool_size: u32,
    /// Distinct senders of the workload.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    senders: u32,
    /// Seed of the workload generator.
    #[arg(long, default_value_t = 0x6d65_6d70)]
    seed: u64,
    /// Block building policy.
    #[arg(long, value_enum, default_value_t = Policy::Priority)]
    policy: Policy,
    /// Transactions a built block aims at (through its byte limit).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    block_txs: u32,
    /// Repetitions of every timed phase; the report gives the median.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    reps: u32,
}

/// The ordering policy, as a command-line value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Policy {
    /// Highest effective tip first (the default policy of the pool).
    Priority,
    /// Admission order.
    Fifo,
}

impl Policy {
    const fn as_str(self) -> &'static str {
        match self {
            Self::Priority => "priority",
            Self::Fifo => "fifo",
        }
    }

    const fn ordering(self) -> OrderingPolicy {
        match self {
            Self::Priority => OrderingPolicy::Priority,
            Self::Fifo => OrderingPolicy::Fifo,
        }
    }
}

/// A configuration that holds the whole workload: nothing is evicted, expired or refused.
fn config(args: &Args) -> MempoolConfig {
    MempoolConfig {
        max_txs: args.pool_size,
        max_pool_bytes: u64::MAX,
        max_txs_per_sender: args.pool_size,
        nonce_window: u64::from(args.pool_size),
        ttl_heights: 0,
        ordering: args.policy.ordering(),
        ..MempoolConfig::default()
    }
}

/// Median of `reps` runs of `f`, each timed on its own input from `setup`; the output of `f` is
/// dropped after the clock stops.
fn median_of<I, O>(
    reps: u32,
    mut setup: impl FnMut() -> I,
    mut f: impl FnMut(I) -> O,
) -> (Duration, O) {
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..reps {
        let input = setup();
        let start = Instant::now();
        let out = f(input);
        times.push(start.elapsed());
        // Replacing (and so dropping) the previous output happens outside the timed section.
        last = Some(out);
    }
    times.sort_unstable();
    let median = times.get(times.len() / 2).copied().unwrap_or_default();
    match last {
        Some(out) => (median, out),
        // `reps` is at least 1 (clap range), so `f` ran.
        None => unreachable!("median_of with zero repetitions"),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn ns_per(d: Duration, n: usize) -> f64 {
    d.as_secs_f64() * 1e9 / n.max(1) as f64
}

/// Runs one `mempool` benchmark and returns its report.
///
/// # Errors
///
/// Fails when the pool refuses a workload transaction (the configuration is meant to hold them
/// all), when the built block is empty, or when the digest differs from the snapshot's hash.
pub(crate) fn run(args: &Args) -> anyhow::Result<Report> {
    let empty = Mempool::new(config(args))?;
    let txs = Workload::new(args.seed, args.senders).batch(args.pool_size as usize);
    let n = txs.len();

    let (add, (pool, facts)) = median_of(
        args.reps,
        || (empty.clone(), txs.clone()),
        |(mut pool, txs)| {
            let facts = pool.add_txs(txs);
            (pool, facts)
        },
    );
    drop(txs);
    let admitted = facts.iter().filter(|f| matches!(f, EventKind::TxAdmitted { .. })).count();
    ensure!(admitted == n, "the pool admitted {admitted} of {n} transactions");

    let limits =
        BlockLimits { max_bytes: Some(u64::from(args.block_txs) * MEAN_TX_BYTES), max_gas: None };
    let (build, block) = median_of(args.reps, || (), |()| pool.build_block(limits));
    ensure!(!block.txs.is_empty(), "the built block is empty");
    let hashes: Vec<_> = block.txs.iter().map(|t| t.hash).collect();

    let (commit, committed) = median_of(
        args.reps,
        || {
            let block =
                CommitBlock { height: Height(1), txs: hashes.clone(), ..Default::default() };
            (pool.clone(), block)
        },
        |(mut pool, block)| {
            let facts = pool.commit_block(&block);
            (pool, facts)
        },
    );
    let left = committed.0.len();
    committed.1?;

    let (snapshot, bytes) = median_of(args.reps, || (), |()| pool.snapshot());
    let (digest, d) = median_of(args.reps, || (), |()| pool.digest());
    ensure!(d == Digest::sha256(&bytes), "digest differs from the snapshot's SHA-256");

    let fields = json!({
        "pool_size": n,
        "senders": args.senders,
        "policy": args.policy.as_str(),
        "seed": args.seed,
        "reps": args.reps,
        "admitted": admitted,
        "adds_per_s": n as f64 / add.as_secs_f64().max(1e-12),
        "add_ns_per_op": ns_per(add, n),
        "block_txs": block.txs.len(),
        "build_10k_ms": ms(build),
        "build_ns_per_tx": ns_per(build, block.txs.len()),
        "commit_recheck_ms": ms(commit),
        "pool_after_commit": left,
        "snapshot_ms": ms(snapshot),
        "digest_ms": ms(digest),
        "snapshot_digest_ms": ms(snapshot + digest),
        "snapshot_bytes": bytes.len(),
    });
    let Value::Object(fields) = fields else { unreachable!("json! of an object literal") };
    Ok(Report::Measured(fields))
}
