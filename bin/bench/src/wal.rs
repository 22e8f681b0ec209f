//! The `wal` benchmark: append, scan back warm, reopen; the same driver for every implementation.
//!
//! Phases, in order, each on the same directory:
//! 1. **generate** (untimed): `records` payloads of `size` bytes from a seeded RNG, and the
//!    expected [`ScanTally`] (count and CRC32C of every payload in order).
//! 2. **create** (timed as `create_s`, not part of any rate): open the log in the empty directory.
//! 3. **append**: groups of `batch` records; each `append_batch` returns once the group is durable
//!    under `--sync always`, or once the implementation has accepted it under `--sync never`.
//!    Every group's latency is recorded for the percentiles.
//! 4. **scan** (warm, right after appending): every record in append order, folded into a tally
//!    that must equal the expected one, so no implementation can skip reading payloads.
//! 5. **reopen**: close, then time `open` until the log is ready to append and read, and check it
//!    holds all `records`.

mod mempulse;
mod okaywal;
mod raft_engine;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use rand::rngs::SmallRng;
use rand::{RngCore as _, SeedableRng as _};
use serde_json::{Map, Value, json};

use mempulse_wal::{MAX_SEGMENT_SIZE_BYTES, MIN_SEGMENT_SIZE_BYTES};

use crate::report::Report;

/// Upper bound on `records * size`: the payloads are generated in memory before timing.
const PAYLOAD_BYTES_MAX: u64 = 8 << 30;

/// Arguments of `mempulse-bench wal`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The log implementation under test.
    #[arg(long = "impl", value_enum)]
    implementation: Impl,
    /// Directory of the log; must be missing or empty.
    #[arg(long)]
    dir: PathBuf,
    /// Number of records to append.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    records: u64,
    /// Payload size of every record, in bytes.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=(16 << 20)))]
    size: u64,
    /// Records per append call (the last group may be smaller).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=65_536))]
    batch: u64,
    /// Whether every group is made durable before the next one is appended.
    #[arg(long, value_enum)]
    sync: SyncMode,
    /// How mempulse prepares new segment files (mempulse only; its default when omitted).
    #[arg(long, value_enum)]
    preallocate: Option<PreallocateMode>,
    /// Bytes mempulse writes to the active segment before its helper thread starts writing
    /// them back (unsynced runs only; 0 turns it off; mempulse only; its default when omitted).
    #[arg(long)]
    writeback_bytes: Option<u64>,
    /// Block to which mempulse pads small unsynced writes with zeros, so the page cache holds
    /// its segments in folios of that size (unsynced runs only; 0 turns it off; mempulse
    /// only; its default, 256 KiB, when omitted).
    #[arg(long)]
    write_padding_bytes: Option<u64>,
    /// Size of mempulse's segment files (mempulse only; its default, 64 MiB, when omitted).
    #[arg(long, value_parser = clap::value_parser!(u64).range(MIN_SEGMENT_SIZE_BYTES..=MAX_SEGMENT_SIZE_BYTES))]
    segment_bytes: Option<u64>,
    /// Seed of the payload generator.
    #[arg(long, default_value_t = 0x6d65_6d70)]
    seed: u64,
}

/// A log implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Impl {
    /// mempulse-wal's `Wal`, called directly.
    Mempulse,
    /// mempulse-wal's `Wal` behind its `Sequencer` (writer and sync threads).
    MempulseSeq,
    /// tikv/raft-engine 0.4.
    RaftEngine,
    /// khonsulabs/okaywal 0.3.
    Okaywal,
}

impl Impl {
    const fn as_str(self) -> &'static str {
        match self {
            Self::Mempulse => "mempulse",
            Self::MempulseSeq => "mempulse-seq",
            Self::RaftEngine => "raft-engine",
            Self::Okaywal => "okaywal",
        }
    }
}

/// When appended records are made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum SyncMode {
    /// Each group is durable (fdatasync or equivalent) before `append_batch` returns.
    Always,
    /// No sync while appending; the OS writes back when it likes.
    Never,
}

impl SyncMode {
    const fn as_str(self) -> &'static str {
        match self {
            Self::Always => "always",
            Self::Never => "never",
        }
    }
}

/// How new segment files are prepared (a mempulse option).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum PreallocateMode {
    /// Write zeros over the whole segment when it is created.
    ZeroFill,
    /// Reserve the segment's blocks with `fallocate`.
    Fallocate,
    /// Reuse purged segment files.
    Recycle,
}

impl PreallocateMode {
    const fn as_str(self) -> &'static str {
        match self {
            Self::ZeroFill => "zero-fill",
            Self::Fallocate => "fallocate",
            Self::Recycle => "recycle",
        }
    }
}

/// What every implementation opens its log with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LogOptions<'a> {
    /// Directory of the log.
    pub(crate) dir: &'a Path,
    /// Sync policy of appends.
    pub(crate) sync: SyncMode,
    /// Segment preparation, when the run asks for one.
    pub(crate) preallocate: Option<PreallocateMode>,
    /// Background writeback threshold, when the run asks for one.
    pub(crate) writeback_bytes: Option<u64>,
    /// Write padding block, when the run asks for one.
    pub(crate) write_padding_bytes: Option<u64>,
    /// Segment size, when the run asks for one.
    pub(crate) segment_bytes: Option<u64>,
}

impl LogOptions<'_> {
    /// Why a peer refuses these options: it runs its own defaults, and the run asked for a
    /// mempulse-only option.
    pub(crate) fn peer_refusal(&self, peer: &str) -> Option<String> {
        let option = if self.preallocate.is_some() {
            "--preallocate"
        } else if self.writeback_bytes.is_some() {
            "--writeback-bytes"
        } else if self.write_padding_bytes.is_some() {
            "--write-padding-bytes"
        } else if self.segment_bytes.is_some() {
            "--segment-bytes"
        } else {
            return None;
        };
        Some(format!("{option} is a mempulse option; {peer} runs its defaults"))
    }
}

/// Count and order-sensitive checksum of payloads; a scan must reproduce the appended one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ScanTally {
    records: u64,
    crc32c: u32,
}

impl ScanTally {
    /// Folds one payload (the next in log order) into the tally.
    pub(crate) fn add(&mut self, payload: &[u8]) {
        self.records += 1;
        self.crc32c = crc32c::crc32c_append(self.crc32c, payload);
    }

    /// Number of payloads folded in so far.
    pub(crate) const fn records(&self) -> u64 {
        self.records
    }
}

/// A log implementation as the driver sees it.
pub(crate) trait LogUnderTest: Sized {
    /// Why this implementation cannot run with `options`, if it cannot.
    fn unsupported(options: &LogOptions<'_>) -> Option<String>;

    /// Creates the log in an empty directory or recovers the one there, until it is ready to
    /// append and read (this is what `reopen_s` times).
    fn open(options: &LogOptions<'_>) -> anyhow::Result<Self>;

    /// Appends one group of records after the previous ones; under [`SyncMode::Always`] the
    /// group is durable when this returns.
    fn append_batch(&mut self, records: &[&[u8]]) -> anyhow::Result<()>;

    /// Reads every record in append order and folds its payload into a tally.
    fn scan_all(&mut self) -> anyhow::Result<ScanTally>;

    /// Number of records the log holds (checks that a reopen recovered everything).
    fn record_count(&self) -> anyhow::Result<u64>;

    /// Closes the log, releasing its files.
    fn close(self) -> anyhow::Result<()>;
}

/// Runs one `wal` benchmark and returns its report.
///
/// # Errors
///
/// Fails when the directory is not empty, when the log fails, or when the scan or the reopen
/// does not return exactly what was appended.
pub(crate) fn run(args: &Args) -> anyhow::Result<Report> {
    match args.implementation {
        Impl::Mempulse => measure::<mempulse::MempulseLog>(args),
        Impl::MempulseSeq => measure::<mempulse::MempulseSequencerLog>(args),
        Impl::RaftEngine => measure::<raft_engine::RaftEngineLog>(args),
        Impl::Okaywal => measure::<okaywal::OkayWalLog>(args),
    }
}

/// The run's parameters, which open every report.
fn parameters(args: &Args) -> Map<String, Value> {
    let fields = json!({
        "impl": args.implementation.as_str(),
        "records": args.records,
        "size": args.size,
        "batch": args.batch,
        "sync": args.sync.as_str(),
        "preallocate": args.preallocate.map(PreallocateMode::as_str),
        "writeback_bytes": args.writeback_bytes,
        "write_padding_bytes": args.write_padding_bytes,
        "segment_bytes": args.segment_bytes,
        "seed": args.seed,
    });
    match fields {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// Payloads of one run: one contiguous buffer and a slice per record.
struct Payloads {
    bytes: Vec<u8>,
    size: usize,
}

impl Payloads {
    fn generate(args: &Args) -> anyhow::Result<Self> {
        let total = args.records.checked_mul(args.size).filter(|&t| t <= PAYLOAD_BYTES_MAX);
        let total = total.with_context(|| {
            format!("records * size exceeds {PAYLOAD_BYTES_MAX} bytes of in-memory payload")
        })?;
        let mut bytes = vec![0_u8; usize::try_from(total)?];
        SmallRng::seed_from_u64(args.seed).fill_bytes(&mut bytes);
        Ok(Self { bytes, size: usize::try_from(args.size)? })
    }

    fn records(&self) -> Vec<&[u8]> {
        self.bytes.chunks_exact(self.size).collect()
    }
}

fn measure<L: LogUnderTest>(args: &Args) -> anyhow::Result<Report> {
    let mut fields = parameters(args);
    let options = LogOptions {
        dir: &args.dir,
        sync: args.sync,
        preallocate: args.preallocate,
        writeback_bytes: args.writeback_bytes,
        write_padding_bytes: args.write_padding_bytes,
        segment_bytes: args.segment_bytes,
    };
    if let Some(reason) = L::unsupported(&options) {
        return Ok(Report::unsupported(fields, &reason));
    }
    prepare_empty_dir(&args.dir)?;
    let payloads = Payloads::generate(args)?;
    let records = payloads.records();
    let mut expected = ScanTally::default();
    records.iter().for_each(|r| expected.add(r));
    let batch = usize::try_from(args.batch)?;

    let started = Instant::now();
    let mut log = L::open(&options).context("create")?;
    let create = started.elapsed();

    let mut latencies_ns = Vec::with_capacity(records.len().div_ceil(batch));
    let started = Instant::now();
    for group in records.chunks(batch) {
        let group_started = Instant::now();
        log.append_batch(group)?;
        latencies_ns.push(nanos(group_started.elapsed()));
    }
    let append = started.elapsed();

    let started = Instant::now();
    let scanned = log.scan_all().context("scan")?;
    let scan = started.elapsed();
    ensure!(scanned == expected, "scan returned {scanned:?}, appended {expected:?}");

    log.close().context("close")?;
    let started = Instant::now();
    let reopened = L::open(&options).context("reopen")?;
    let reopen = started.elapsed();
    let recovered = reopened.record_count()?;
    reopened.close().context("close after reopen")?;
    ensure!(recovered == args.records, "reopen recovered {recovered} of {} records", args.records);

    let payload_bytes = args.records.saturating_mul(args.size) as f64;
    latencies_ns.sort_unstable();
    let figures = json!({
        "create_s": create.as_secs_f64(),
        "append_s": append.as_secs_f64(),
        "append_rec_per_s": args.records as f64 / append.as_secs_f64(),
        "append_MB_per_s": payload_bytes / 1e6 / append.as_secs_f64(),
        "batch_lat_p50_us": percentile_us(&latencies_ns, 500),
        "batch_lat_p99_us": percentile_us(&latencies_ns, 990),
        "batch_lat_max_us": percentile_us(&latencies_ns, 1000),
        "scan_s": scan.as_secs_f64(),
        "scan_rec_per_s": args.records as f64 / scan.as_secs_f64(),
        "reopen_s": reopen.as_secs_f64(),
        "dir_bytes": dir_bytes(&args.dir)?,
    });
    if let Value::Object(figures) = figures {
        fields.extend(figures);
    }
    Ok(Report::Measured(fields))
}

/// Creates `dir` if missing; refuses one that holds anything, since a stale log skews a run.
fn prepare_empty_dir(dir: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let mut entries = fs::read_dir(dir).with_context(|| format!("list {}", dir.display()))?;
    if entries.next().is_some() {
        bail!("{} is not empty; every run needs a fresh directory", dir.display());
    }
    Ok(())
}

/// Apparent size of every file under `dir`, in bytes.
fn dir_bytes(dir: &Path) -> anyhow::Result<u64> {
    let mut total = 0_u64;
    for entry in fs::read_dir(dir).with_context(|| format!("list {}", dir.display()))? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() { dir_bytes(&entry.path())? } else { meta.len() };
    }
    Ok(total)
}

fn nanos(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX)
}

/// Nearest-rank percentile of sorted samples (`permille` of 1000); 0 when there are none.
fn percentile(sorted: &[u64], permille: usize) -> u64 {
    let rank = (sorted.len() * permille).div_ceil(1000);
    sorted.get(rank.saturating_sub(1)).copied().unwrap_or(0)
}

/// Nearest-rank percentile of sorted nanosecond samples, in microseconds.
fn percentile_us(sorted_ns: &[u64], permille: usize) -> f64 {
    percentile(sorted_ns, permille) as f64 / 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_is_nearest_rank() {
        let samples: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&samples, 500), 50);
        assert_eq!(percentile(&samples, 990), 99);
        assert_eq!(percentile(&samples, 1000), 100);
        assert_eq!(percentile(&[7], 990), 7);
        assert_eq!(percentile(&[], 500), 0);
    }

    #[test]
    fn tally_depends_on_order() {
        let (mut ab, mut ba) = (ScanTally::default(), ScanTally::default());
        ab.add(b"a");
        ab.add(b"b");
        ba.add(b"b");
        ba.add(b"a");
        assert_eq!(ab.records(), 2);
        assert_ne!(ab, ba);
    }
}
