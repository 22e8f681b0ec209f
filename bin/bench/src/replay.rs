//! The `replay` benchmark: rebuilding the derived state from an event log on one core.
//!
//! 1. **generate** (untimed): `events` events from `senders` senders of the realistic mix of
//!    `mempulse_replay::test_utils::generate` (lane receipts and drops, admissions,
//!    replacements, promotions, evictions, blocks with inclusions, reorgs), written to a fresh
//!    log (64 MiB segments unless `--segment-bytes` says otherwise) and synced.
//! 2. **warm**: open the log read-only and replay it from genesis (WAL reads, CRC checks,
//!    `Event::from_bytes`, apply, digest points every `every` seqs); the page cache holds the
//!    files (they were just written and read once untimed). Best of `reps`.
//! 3. **cold**: the same after dropping the segment files from the page cache with
//!    `posix_fadvise(POSIX_FADV_DONTNEED)` (the files are synced, so their pages are clean and
//!    the kernel drops them). Best of `reps`.
//! 4. **checkpoint**: writing a checkpoint of the final state (encode, write, fsync, rename,
//!    directory fsync).
//! 5. **start-up**: from the newest checkpoint (taken `tail` events before the end: open the
//!    log, load and check the checkpoint, replay the tail), and from genesis (open, replay all).

use std::{
    fs,
    os::fd::AsFd,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Context, ensure};
use mempulse_primitives::{Event, Seq};
use mempulse_replay::{
    CheckpointStore, ReplayConfig, Replayer, replay_wal, resume,
    test_utils::{MixConfig, generate, write_wal},
};
use mempulse_wal::{DEFAULT_SEGMENT_SIZE_BYTES, MAX_SEGMENT_SIZE_BYTES, MIN_SEGMENT_SIZE_BYTES};
use serde_json::{Value, json};

use crate::{interrupt::WorkDir, report::Report};

/// Arguments of `mempulse-bench replay`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Events in the generated log.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1_000..=100_000_000))]
    events: u64,
    /// Seed of the generator.
    #[arg(long, default_value_t = 0x7265_706c)]
    seed: u64,
    /// Distinct senders of the generated transactions (`MixConfig::senders`). With the
    /// generator's 2 000, lane drops and evictions leave every sender a nonce gap by ~500 k
    /// events and the log turns into `nonce_gap_too_large` rejections; 20 000 keeps admissions,
    /// inclusions and evictions going through 4 M events.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u32).range(1..))]
    senders: u32,
    /// Digest point distance in seqs.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    every: u64,
    /// Events after the checkpoint the start-up from a checkpoint replays.
    #[arg(long, default_value_t = 10_000)]
    tail: u64,
    /// Repetitions of the warm and cold replays; the report gives the best.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=20))]
    reps: u32,
    /// Keep the generated log in this directory and reuse it on later runs with the same
    /// `--events` and `--seed` (profiling and A/B runs skip the generation); by default the
    /// log is generated into a temp dir and removed.
    #[arg(long)]
    wal: Option<PathBuf>,
    /// Segment size of the generated log (the event log's default, 64 MiB, when omitted).
    #[arg(long, default_value_t = DEFAULT_SEGMENT_SIZE_BYTES, value_parser = clap::value_parser!(u64).range(MIN_SEGMENT_SIZE_BYTES..=MAX_SEGMENT_SIZE_BYTES))]
    segment_bytes: u64,
}

/// Time spent by the calling thread: on a CPU, and runnable but waiting for one (from
/// `/proc/thread-self/schedstat`, nanoseconds). On a shared machine the wall time of a replay
/// moves with the other processes; its CPU time far less.
#[derive(Clone, Copy, Debug, Default)]
struct ThreadTimes {
    cpu: Duration,
    wait: Duration,
}

impl ThreadTimes {
    fn now() -> Self {
        let text = fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
        let mut fields = text.split_whitespace().map(|f| f.parse::<u64>().unwrap_or(0));
        let (cpu, wait) = (fields.next().unwrap_or(0), fields.next().unwrap_or(0));
        Self { cpu: Duration::from_nanos(cpu), wait: Duration::from_nanos(wait) }
    }

    fn since(self, start: Self) -> Self {
        Self { cpu: self.cpu.saturating_sub(start.cpu), wait: self.wait.saturating_sub(start.wait) }
    }
}

/// One timed replay: wall time and the thread's CPU and run-queue wait times.
#[derive(Clone, Copy, Debug)]
struct Timed {
    wall: Duration,
    thread: ThreadTimes,
}

impl Timed {
    const NONE: Self = Self {
        wall: Duration::MAX,
        thread: ThreadTimes { cpu: Duration::MAX, wait: Duration::MAX },
    };

    /// The faster of two runs by wall time; CPU time is the lower of the two on its own.
    fn best(self, other: Self) -> Self {
        let cpu = self.thread.cpu.min(other.thread.cpu);
        let mut best = if other.wall < self.wall { other } else { self };
        best.thread.cpu = cpu;
        best
    }
}

/// Replays the whole log from genesis and returns the replayer and the time taken.
fn replay_genesis(dir: &Path, config: ReplayConfig) -> anyhow::Result<(Replayer, Timed)> {
    let (started, thread) = (Instant::now(), ThreadTimes::now());
    let reader = mempulse_wal::open_reader(dir)?;
    let mut replayer = Replayer::new(config);
    replay_wal(&mut replayer, &reader, None, |_, _| Ok(()))?;
    let timed = Timed { wall: started.elapsed(), thread: ThreadTimes::now().since(thread) };
    Ok((replayer, timed))
}

/// Drops the log's files from the page cache.
fn drop_cache(dir: &Path) -> anyhow::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "seg") {
            let file = fs::File::open(&path)?;
            rustix::fs::fadvise(file.as_fd(), 0, None, rustix::fs::Advice::DontNeed)
                .with_context(|| format!("posix_fadvise on {}", path.display()))?;
        }
    }
    Ok(())
}

#[allow(clippy::cast_precision_loss, reason = "rates for humans; counts stay below 2^53")]
fn per_s(events: u64, d: Duration) -> f64 {
    events as f64 / d.as_secs_f64().max(1e-12)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Runs the benchmark and returns its one-line report.
///
/// # Errors
/// Fails if the log cannot be written or read, or a replay disagrees with another.
pub(crate) fn run(args: &Args) -> anyhow::Result<Report> {
    // Removed when the run ends, whether it succeeds or fails.
    let work = WorkDir::new("mempulse-bench-replay-")?;
    let wal_dir = args.wal.clone().unwrap_or_else(|| work.path().join("wal"));
    let ckpt_dir = work.path().join("checkpoints");
    let (payload_bytes, reused) = prepare_log(args, &wal_dir)?;
    let file_bytes = mempulse_wal::stats(&wal_dir)?.file_bytes;
    let config = ReplayConfig { digest_every_events: args.every, ..ReplayConfig::default() };

    let (reference, _) = replay_genesis(&wal_dir, config)?;
    let (mut warm, mut cold) = (Timed::NONE, Timed::NONE);
    for _ in 0..args.reps {
        let (r, d) = replay_genesis(&wal_dir, config)?;
        ensure!(r.open_digest() == reference.open_digest(), "warm replays disagree");
        warm = warm.best(d);
    }
    for _ in 0..args.reps {
        drop_cache(&wal_dir)?;
        let (r, d) = replay_genesis(&wal_dir, config)?;
        ensure!(r.open_digest() == reference.open_digest(), "cold replays disagree");
        cold = cold.best(d);
    }

    let store = CheckpointStore::open(&ckpt_dir, 2)?;
    let started = Instant::now();
    let written = store.write(&reference)?;
    let checkpoint = started.elapsed();
    let checkpoint_bytes = written.bytes;

    // The checkpoint the start-up uses: `tail` events before the end.
    fs::remove_dir_all(&ckpt_dir)?;
    let store = CheckpointStore::open(&ckpt_dir, 1)?;
    let reader = mempulse_wal::open_reader(&wal_dir)?;
    let at = Seq(args.events.saturating_sub(args.tail).max(1));
    let mut partial = Replayer::new(config);
    replay_wal(&mut partial, &reader, Some(at), |_, _| Ok(()))?;
    store.write(&partial)?;
    drop((partial, reader));
    let started = Instant::now();
    let reader = mempulse_wal::open_reader(&wal_dir)?;
    let resumed = resume(&reader, Some(&store), config, None)?;
    ensure!(resumed.checkpoint.is_some_and(|m| m.seq == at), "start-up did not use the checkpoint");
    let mut replayer = resumed.replayer;
    replay_wal(&mut replayer, &reader, None, |_, _| Ok(()))?;
    let from_checkpoint = started.elapsed();
    ensure!(replayer.open_digest() == reference.open_digest(), "checkpoint start-up disagrees");
    let (_, from_genesis) = replay_genesis(&wal_dir, config)?;

    drop(work);
    let fields = json!({
        "events": args.events,
        "bytes": payload_bytes,
        "file_bytes": file_bytes,
        "segment_bytes": args.segment_bytes,
        "events_per_s_warm": per_s(args.events, warm.wall),
        "events_per_s_warm_cpu": per_s(args.events, warm.thread.cpu),
        "warm_runqueue_wait_ms": ms(warm.thread.wait),
        "events_per_s_cold": per_s(args.events, cold.wall),
        "cold_method": "posix_fadvise_dontneed",
        "checkpoint_ms": ms(checkpoint),
        "checkpoint_bytes": checkpoint_bytes,
        "start_from_checkpoint_ms": ms(from_checkpoint),
        "start_from_checkpoint_tail_events": args.events - at.0,
        "start_from_genesis_ms": ms(from_genesis.wall),
        "pool_txs": reference.pool_len(),
        "lifecycle_txs": reference.lifecycle_len(),
        "digest": reference.digest().digest.to_string(),
        "lifecycle_digest": reference.local_digest().to_string(),
        "reps": args.reps,
        "senders": args.senders,
        "wal_reused": reused,
    });
    let Value::Object(fields) = fields else { unreachable!("json! of an object literal") };
    Ok(Report::Measured(fields))
}

/// Generates the log into `dir`, or reuses the one a previous run with the same `--events` and
/// `--seed` left there (`--wal`). Returns the payload bytes and whether the log was reused.
fn prepare_log(args: &Args, dir: &Path) -> anyhow::Result<(u64, bool)> {
    let stamp = dir.join("bench-replay.json");
    let want = json!({
        "events": args.events,
        "seed": args.seed,
        "senders": args.senders,
        "segment_bytes": args.segment_bytes,
    });
    if let Ok(text) = fs::read_to_string(&stamp) {
        let found: Value = serde_json::from_str(&text)?;
        if found.get("log") == Some(&want) {
            let bytes =
                found.get("bytes").and_then(Value::as_u64).context("stamp without bytes")?;
            return Ok((bytes, true));
        }
    }
    if dir.exists() {
        ensure!(
            fs::read_dir(dir)?.next().is_none() || stamp.exists(),
            "{} holds something other than a bench log",
            dir.display()
        );
        fs::remove_dir_all(dir)?;
    }
    let n = usize::try_from(args.events)?;
    let mix = MixConfig { seed: args.seed, senders: args.senders, ..MixConfig::default() };
    let events = generate(&mix, n)?;
    let payload_bytes: u64 = events.iter().map(|e| Event::to_bytes(e).len() as u64).sum();
    write_wal(dir, &events, args.segment_bytes)?;
    fs::write(&stamp, json!({ "log": want, "bytes": payload_bytes }).to_string())?;
    Ok((payload_bytes, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_every_field_for_a_tiny_run() {
        let args = Args {
            events: 3_000,
            seed: 1,
            senders: 2_000,
            every: 500,
            tail: 500,
            reps: 1,
            wal: None,
            segment_bytes: 1 << 20,
        };
        let Report::Measured(fields) = run(&args).unwrap() else {
            unreachable!("replay is always measured");
        };
        assert_eq!(fields["events"], 3_000);
        assert_eq!(fields["start_from_checkpoint_tail_events"], 500);
        for key in
            ["events_per_s_warm", "events_per_s_cold", "checkpoint_ms", "start_from_genesis_ms"]
        {
            assert!(fields[key].as_f64().unwrap() > 0.0, "{key}");
        }
    }
}
