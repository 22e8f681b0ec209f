//! The `recover` benchmark: decode + stateless checks + sender recovery of signed transactions on
//! the `mempulse-net` worker pool.
//!
//! 1. **generate** (untimed): `txs` signed transactions cycling through every envelope type
//!    (`mempulse_net::test_utils::sample_txs`, fixed keys, RFC 6979 signatures).
//! 2. **start** (untimed): a pool of `threads` workers with the default capacity.
//! 3. **recover** (timed): `BatchDecoder::decode_all` of the whole set; every transaction must
//!    decode, so a rate is never reported over failures.

use std::{num::NonZeroUsize, time::Instant};

use anyhow::ensure;
use mempulse_net::{BatchDecoder, CheckConfig, PoolConfig, test_utils::sample_txs};
use serde_json::{Value, json};

use crate::report::Report;

/// Distinct senders of the generated transactions.
const SENDERS: u32 = 1_000;

/// Arguments of `mempulse-bench recover`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Signed transactions to decode and recover.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    txs: u32,
    /// Worker threads (default: one per available core).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1024))]
    threads: Option<u32>,
}

/// Runs the benchmark and returns its one-line report.
///
/// # Errors
/// Fails if the pool cannot start or any transaction does not decode.
pub(crate) fn run(args: &Args) -> anyhow::Result<Report> {
    let txs = sample_txs(usize::try_from(args.txs)?, SENDERS);
    ensure!(txs.len() == usize::try_from(args.txs)?, "generated {} transactions", txs.len());
    let threads = match args.threads {
        Some(t) => NonZeroUsize::new(usize::try_from(t)?),
        None => None,
    };
    let pool = PoolConfig { threads, ..PoolConfig::default() };
    let threads_used = pool.thread_count().get();
    let mut decoder = BatchDecoder::new(pool, CheckConfig::default())?;

    let started = Instant::now();
    let results = decoder.decode_all(txs)?;
    let elapsed = started.elapsed();

    let failed = results.iter().filter(|r| r.is_err()).count();
    ensure!(failed == 0, "{failed} of {} transactions failed to decode", results.len());
    #[allow(clippy::cast_precision_loss, reason = "a rate for humans; counts stay below 2^53")]
    let recovers_per_s = results.len() as f64 / elapsed.as_secs_f64().max(1e-12);
    let fields = json!({
        "recovers_per_s": recovers_per_s,
        "txs": args.txs,
        "threads": threads_used,
        "elapsed_s": elapsed.as_secs_f64(),
    });
    let Value::Object(fields) = fields else { unreachable!("json! of an object literal") };
    Ok(Report::Measured(fields))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_every_field_for_a_tiny_run() {
        let Report::Measured(fields) = run(&Args { txs: 20, threads: Some(2) }).unwrap() else {
            unreachable!("recover is always measured");
        };
        assert_eq!(fields["txs"], 20);
        assert_eq!(fields["threads"], 2);
        assert!(fields["recovers_per_s"].as_f64().unwrap() > 0.0);
    }
}
