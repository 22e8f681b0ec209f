//! The writer: appends groups of records with one write each, rolls, syncs per policy,
//! truncates and purges.

use std::{
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use mempulse_primitives::Seq;
use tracing::{info, warn};

use crate::{
    codec::{self, HEADER_LEN},
    config::{READ_CHUNK_BYTES, SyncPolicy, WalConfig},
    crc,
    error::{Error, IoOp, Result},
    metrics::WalMetrics,
    prepare::{self, Preparer, create_segment},
    reader::{Visibility, WalReader},
    record::SeqRange,
    recovery,
    segment::Segment,
    state::Shared,
    storage::{FsStorage, Storage, StorageFile},
    writeback::Writeback,
};

/// A segment write-ahead log: the single writer.
///
/// Records are opaque, non-empty byte strings; each gets the next gapless [`Seq`]. Readers
/// ([`Wal::reader`]) run concurrently on other threads.
#[derive(Debug)]
pub struct Wal {
    pub(crate) shared: Arc<Shared>,
    pub(crate) config: WalConfig,
    pub(crate) active: Arc<Segment>,
    pub(crate) write_offset: u64,
    pub(crate) next_seq: Seq,
    pub(crate) buf: Vec<u8>,
    /// Checksums of the group being framed (reused).
    pub(crate) crcs: Vec<u32>,
    /// Payload offset and length of each frame in `buf` (reused).
    pub(crate) frames: Vec<(usize, usize)>,
    /// Spare files (purged segments, prepared spares) to reuse as new segments.
    pub(crate) recycle: Vec<String>,
    pub(crate) preparer: Option<Preparer>,
    /// Background writeback of the active segment (real filesystem, unsynced policies).
    pub(crate) writeback: Option<Writeback>,
    pub(crate) last_sync: Instant,
    pub(crate) dirty: bool,
    pub(crate) metrics: WalMetrics,
    /// Exclusive lock on the directory (real filesystem only), released on drop.
    pub(crate) _lock: Option<std::fs::File>,
}

/// Name of the lock file in a log directory.
const LOCK_FILE: &str = "LOCK";

fn lock_dir(dir: &std::path::Path) -> Result<std::fs::File> {
    let path = dir.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| Error::io(IoOp::Create, path.clone(), e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Locked { path }),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::io(IoOp::Open, path, e)),
    }
}

/// What the sequencer's sync thread needs to make a written prefix durable.
#[derive(Debug, Clone)]
pub(crate) struct SyncTarget {
    file: Arc<dyn StorageFile>,
    path: PathBuf,
    pub(crate) upto: Seq,
}

impl Wal {
    /// Opens (or creates) the log in `config.dir` on the real filesystem, taking an exclusive
    /// lock on the directory for as long as the `Wal` lives.
    ///
    /// # Errors
    /// [`Error::Config`] for a bad config, [`Error::Locked`] when another writer has the
    /// directory, [`Error::Io`] when the directory or a segment cannot be read or written,
    /// [`Error::Corrupt`] for damage other than a torn tail.
    pub fn open(config: WalConfig) -> Result<Self> {
        std::fs::create_dir_all(&config.dir)
            .map_err(|e| Error::io(IoOp::Create, config.dir.clone(), e))?;
        let lock = lock_dir(&config.dir)?;
        let storage = Arc::new(FsStorage::new(config.dir.clone()));
        let mut wal = Self::open_with_storage(config, storage)?;
        wal._lock = Some(lock);
        if wal.config.sync != SyncPolicy::Always && wal.config.writeback_bytes > 0 {
            let writeback = Writeback::start(Arc::clone(&wal.shared), wal.config.writeback_bytes)?;
            wal.writeback = Some(writeback);
        }
        Ok(wal)
    }

    /// Opens (or creates) the log on any [`Storage`] (`config.dir` is then only a label).
    ///
    /// # Errors
    /// As [`Wal::open`].
    pub fn open_with_storage(config: WalConfig, storage: Arc<dyn Storage>) -> Result<Self> {
        config.validate()?;
        let max_payload = codec::max_payload(config.segment_size_bytes);
        let listing = recovery::list(storage.as_ref())?;
        for tmp in &listing.tmp {
            storage.remove(tmp).map_err(|e| Error::io(IoOp::Remove, storage.path_of(tmp), e))?;
        }
        let segments = recovery::open_segments(storage.as_ref(), &listing)?;
        let first = segments.first().map_or(config.first_seq, |s| s.first);
        let mut recycle = listing.recycle;
        let (active, fresh) = match segments.last() {
            Some(last) => (Arc::clone(last), false),
            None => (create_segment(storage.as_ref(), &config, &mut recycle, first)?, true),
        };
        let shared = Arc::new(Shared::new(storage, max_payload, first, Seq(0)));
        for seg in segments.iter().chain(fresh.then_some(&active)) {
            shared.insert_segment(Arc::clone(seg));
        }
        let mut wal = Self {
            active,
            shared,
            write_offset: HEADER_LEN as u64,
            next_seq: first,
            buf: Vec::with_capacity(READ_CHUNK_BYTES),
            crcs: Vec::new(),
            frames: Vec::new(),
            recycle,
            preparer: None,
            writeback: None,
            last_sync: Instant::now(),
            dirty: false,
            metrics: WalMetrics::new(config.metrics_label),
            config,
            _lock: None,
        };
        if !fresh {
            wal.recover_tail()?;
        }
        if wal.config.prepare_ahead {
            let next_id = listing.max_spare.map_or(0, |id| id + 1);
            let storage = Arc::clone(&wal.shared.storage);
            wal.preparer = Some(Preparer::start(storage, wal.config.clone(), next_id)?);
            wal.refill_pool();
        }
        wal.shared.cut_to(wal.last_seq());
        wal.shared.publish(wal.last_seq());
        info!(first = %wal.first_seq(), last = %wal.last_seq(), "wal opened");
        Ok(wal)
    }

    fn recover_tail(&mut self) -> Result<()> {
        let mut buf = std::mem::take(&mut self.buf);
        let tail =
            recovery::scan_tail(self.storage(), &self.active, &mut buf, self.shared.max_payload);
        self.buf = buf;
        let tail = tail?;
        if tail.torn {
            warn!(segment = %self.active.name, offset = tail.end, "wal torn tail truncated");
            self.metrics.torn_tails.increment(1);
            self.cut_active(tail.end)?;
        }
        // The recovered frames may sit only in the page cache (a process crash): make what
        // open reports as the log durable before anything builds on it. Under `Never` the log
        // promises nothing beyond the OS, so open does not either: after an unsynced run this
        // sync would write back up to a whole segment (tens of ms). The next roll seals the
        // segment with a sync, as always, so a sealed segment is still complete.
        if self.config.sync == SyncPolicy::Never {
            self.dirty = true;
        } else {
            let name = self.active.name.clone();
            self.active.file.sync_data().map_err(self.io_err(IoOp::Sync, &name))?;
        }
        self.active.set_end(tail.end);
        self.write_offset = tail.end;
        self.next_seq = tail.next_seq;
        Ok(())
    }

    pub(crate) fn storage(&self) -> &dyn Storage {
        self.shared.storage.as_ref()
    }

    pub(crate) fn io_err(
        &self,
        op: IoOp,
        name: &str,
    ) -> impl FnOnce(std::io::Error) -> Error + use<> {
        let path = self.storage().path_of(name);
        move |e| Error::io(op, path, e)
    }

    /// First seq still in the log (after purges); `last_seq() + 1` when it is empty.
    #[must_use]
    pub fn first_seq(&self) -> Seq {
        self.shared.first()
    }

    /// Seq of the last record written; `first_seq() - 1` when the log is empty.
    #[must_use]
    pub fn last_seq(&self) -> Seq {
        Seq(self.next_seq.0 - 1)
    }

    /// The configuration the log was opened with.
    #[must_use]
    pub const fn config(&self) -> &WalConfig {
        &self.config
    }

    /// A reader that sees every record written so far (not only the synced ones).
    #[must_use]
    pub fn reader(&self) -> WalReader {
        WalReader::new(Arc::clone(&self.shared), Visibility::Written)
    }

    pub(crate) fn published_reader(&self) -> WalReader {
        WalReader::new(Arc::clone(&self.shared), Visibility::Published)
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Appends `records` as one group (one write, plus one per segment roll) and syncs it as
    /// the [`SyncPolicy`] says. Returns the seqs assigned.
    ///
    /// # Errors
    /// [`Error::EmptyRecord`] or [`Error::RecordTooLarge`] before anything is written (the group
    /// is all or nothing); [`Error::Poisoned`] after an earlier failure; [`Error::Io`] when a
    /// write or sync fails, which poisons the log.
    pub fn append<R: AsRef<[u8]>>(&mut self, records: &[R]) -> Result<SeqRange> {
        let range = self.write_records(records.iter().map(AsRef::as_ref))?;
        // Readers see a record once it is durable under the policy: `sync` publishes what it
        // made durable; under `Never` a written record counts.
        match self.config.sync {
            SyncPolicy::Always => self.sync()?,
            SyncPolicy::Interval(every) => self.sync_if_due(every)?,
            SyncPolicy::Never => self.shared.publish(range.last),
        }
        Ok(range)
    }

    /// Forces every written record to stable storage.
    ///
    /// # Errors
    /// [`Error::Poisoned`] after an earlier failure; [`Error::Io`] when the sync fails, which
    /// poisons the log.
    pub fn sync(&mut self) -> Result<()> {
        self.check_poisoned()?;
        if self.dirty {
            let target = self.sync_target();
            target.sync(&self.shared, &self.metrics)?;
            self.dirty = false;
            if let Some(writeback) = &mut self.writeback {
                writeback.synced();
            }
        }
        self.last_sync = Instant::now();
        self.shared.publish(self.last_seq());
        Ok(())
    }

    pub(crate) fn sync_if_due(&mut self, every: Duration) -> Result<()> {
        if self.dirty && self.last_sync.elapsed() >= every { self.sync() } else { Ok(()) }
    }

    pub(crate) fn check_poisoned(&self) -> Result<()> {
        if self.shared.is_poisoned() { Err(Error::Poisoned) } else { Ok(()) }
    }

    /// The active segment's file and the last seq written into it: syncing it makes every
    /// written record durable (sealed segments were synced when they were sealed).
    pub(crate) fn sync_target(&self) -> SyncTarget {
        SyncTarget {
            file: Arc::clone(&self.active.file),
            path: self.storage().path_of(&self.active.name),
            upto: self.last_seq(),
        }
    }

    /// Frames and writes records without syncing. All records are checked first.
    pub(crate) fn write_records<'a, I>(&mut self, records: I) -> Result<SeqRange>
    where
        I: Iterator<Item = &'a [u8]> + Clone,
    {
        self.check_poisoned()?;
        let max = self.shared.max_payload;
        let mut count = 0u64;
        for record in records.clone() {
            if record.is_empty() {
                return Err(Error::EmptyRecord);
            }
            if record.len() as u64 > max {
                return Err(Error::RecordTooLarge { len: record.len() as u64, max });
            }
            count += 1;
        }
        // Every seq of the group, and the one after it, must exist.
        if self.next_seq.0.checked_add(count).is_none() {
            return Err(Error::SeqOverflow);
        }
        let started = Instant::now();
        let first = self.next_seq;
        let result = self.write_framed(records);
        if result.is_err() {
            // The file now holds an unknown prefix of the group: refuse further writes.
            self.shared.poison();
        }
        result?;
        self.metrics.append_duration.record(started.elapsed());
        let range = SeqRange { first, last: self.last_seq() };
        self.metrics.records_appended.increment(range.len());
        Ok(range)
    }

    fn write_framed<'a>(&mut self, records: impl Iterator<Item = &'a [u8]>) -> Result<()> {
        let size = self.config.segment_size_bytes;
        let mut crcs = std::mem::take(&mut self.crcs);
        let mut frames = std::mem::take(&mut self.frames);
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        frames.clear();
        let mut buf_first = self.next_seq;
        let mut result = Ok(());
        for record in records {
            let frame = codec::frame_len(record.len()) as u64;
            if self.write_offset + buf.len() as u64 + frame > size {
                fill_crcs(&mut buf, buf_first, &frames, &mut crcs);
                result = self.flush(&mut buf).and_then(|()| self.roll());
                buf.clear();
                frames.clear();
                buf_first = self.next_seq;
                if result.is_err() {
                    break;
                }
            }
            let seq = self.next_seq;
            if self.active.is_index_point(seq) {
                self.active.record(seq, self.write_offset + buf.len() as u64);
            }
            frames.push((buf.len() + codec::FRAME_HEADER_LEN, record.len()));
            // The checksum is filled in once the group's payloads sit in `buf` (see
            // `fill_crcs`), so each payload is read from memory once, not twice.
            codec::encode_frame_with_crc(&mut buf, 0, record);
            // Cannot overflow: a log would need 2^64 records.
            self.next_seq = Seq(seq.0 + 1);
        }
        let result = result.and_then(|()| {
            fill_crcs(&mut buf, buf_first, &frames, &mut crcs);
            self.flush(&mut buf)
        });
        self.buf = buf;
        self.crcs = crcs;
        self.frames = frames;
        result
    }

    /// Writes the framed group `buf` at the end of the active segment, with its padding
    /// (zeros) when [`padding`] asks for some; `buf` is left as it came.
    fn flush(&mut self, buf: &mut Vec<u8>) -> Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        let len = buf.len();
        let pad = padding(
            self.write_offset,
            len as u64,
            self.config.effective_write_padding(),
            self.config.segment_size_bytes,
        );
        // Cannot truncate: the padding ends within the segment, whose size is a `usize`.
        buf.resize(len + usize::try_from(pad).unwrap_or(0), 0);
        let name = self.active.name.clone();
        let written = self.active.file.write_all_at(buf, self.write_offset);
        buf.truncate(len);
        written.map_err(self.io_err(IoOp::Write, &name))?;
        self.write_offset += len as u64;
        self.active.set_end(self.write_offset);
        self.shared.set_written(self.last_seq());
        self.metrics.bytes_written.increment(len as u64);
        self.dirty = true;
        if let Some(writeback) = &mut self.writeback {
            writeback.written(len as u64, self.write_offset, &self.active.file);
        }
        Ok(())
    }

    /// Seals the active segment (synced, so its last seq is implied by its successor's first)
    /// and starts a new one.
    fn roll(&mut self) -> Result<()> {
        self.sync_target().sync(&self.shared, &self.metrics)?;
        self.dirty = false;
        if let Some(writeback) = &mut self.writeback {
            writeback.synced();
        }
        let seg = self.new_segment(self.next_seq)?;
        self.shared.insert_segment(Arc::clone(&seg));
        info!(seq = %self.next_seq, segment = %seg.name, "wal segment rolled");
        self.metrics.segments_rolled.increment(1);
        self.active = seg;
        self.write_offset = HEADER_LEN as u64;
        Ok(())
    }

    fn new_segment(&mut self, first: Seq) -> Result<Arc<Segment>> {
        if let Some(preparer) = &mut self.preparer
            && let Some(spare) = preparer.take_spare()
        {
            self.recycle.push(spare);
        }
        let seg =
            create_segment(self.shared.storage.as_ref(), &self.config, &mut self.recycle, first);
        self.refill_pool();
        seg
    }

    /// Asks the helper thread for a spare when the pool is empty.
    fn refill_pool(&mut self) {
        if self.recycle.is_empty()
            && let Some(preparer) = &mut self.preparer
        {
            preparer.request();
        }
    }

    /// Cuts the active segment at `offset` (zeroing what followed) and makes that durable.
    pub(crate) fn cut_active(&mut self, offset: u64) -> Result<()> {
        let seg = Arc::clone(&self.active);
        seg.file.set_len(offset).map_err(self.io_err(IoOp::SetLen, &seg.name))?;
        prepare::extend(self.storage(), &self.config, seg.file.as_ref(), &seg.name, offset)?;
        seg.file.sync_data().map_err(self.io_err(IoOp::Sync, &seg.name))?;
        Ok(())
    }
}

/// Zeros to write after a group of `len` bytes written at `offset`, under padding blocks of
/// `block` bytes (0: none): when a small write (under a block) ends in a block it did not start
/// in, or starts one, the zeros fill that block to its end (at most to the segment's `size`),
/// so the page cache allocates the whole block at once, in large folios, rather than a small
/// folio per write. The zeros lie past the log's end, where recovery already reads zeros or
/// stale frames as the end, and the next records overwrite them.
pub(crate) fn padding(offset: u64, len: u64, block: u64, size: u64) -> u64 {
    if block == 0 || len >= block {
        return 0;
    }
    let end = offset + len;
    let starts_block = offset.is_multiple_of(block);
    if !starts_block && offset / block == end / block {
        return 0;
    }
    let block_end = end.div_ceil(block).saturating_mul(block).min(size);
    block_end.saturating_sub(end)
}

/// Computes the checksums of the frames framed into `buf` (payload offset and length each, the
/// first at seq `first`) from their payloads there, while they are still in cache, and writes
/// each into its frame header (`len | crc | payload`).
fn fill_crcs(buf: &mut [u8], first: Seq, frames: &[(usize, usize)], crcs: &mut Vec<u32>) {
    let payloads = frames.iter().map(|&(at, len)| buf.get(at..at + len).unwrap_or_default());
    crc::frame_crcs(first, payloads, crcs);
    for (&(at, _), crc) in frames.iter().zip(crcs.iter()) {
        if let Some(field) = buf.get_mut(at - 4..at) {
            field.copy_from_slice(&crc.to_le_bytes());
        }
    }
}

impl SyncTarget {
    /// `fdatasync`; a failure poisons the log (it is never retried and then acknowledged).
    pub(crate) fn sync(&self, shared: &Shared, metrics: &WalMetrics) -> Result<()> {
        let started = Instant::now();
        if let Err(e) = self.file.sync_data() {
            shared.poison();
            return Err(Error::io(IoOp::Sync, self.path.clone(), e));
        }
        metrics.fsync_duration.record(started.elapsed());
        Ok(())
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        // Interval promises a bounded loss window; a clean close should not widen it.
        if matches!(self.config.sync, SyncPolicy::Interval(_))
            && !self.shared.is_poisoned()
            && let Err(error) = self.sync()
        {
            warn!(%error, "wal sync on close failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::padding;

    #[test]
    fn padding_fills_the_block_a_small_write_reaches_into_and_nothing_else() {
        const B: u64 = 4096;
        const SIZE: u64 = 10_000;
        // Off, or a write as large as a block: never.
        assert_eq!(padding(32, 100, 0, SIZE), 0);
        assert_eq!(padding(32, B, B, SIZE), 0);
        // Starting a block (the first write after a header-only segment starts mid-block).
        assert_eq!(padding(0, 100, B, SIZE), B - 100);
        assert_eq!(padding(B, 100, B, SIZE), B - 100);
        // Within a block another write already reached into: nothing.
        assert_eq!(padding(132, 100, B, SIZE), 0);
        // Crossing into the next block: to that block's end.
        assert_eq!(padding(4000, 200, B, SIZE), 2 * B - 4200);
        // Ending exactly on a boundary: the next write starts the next block.
        assert_eq!(padding(4000, 96, B, SIZE), 0);
        // Never past the segment.
        assert_eq!(padding(8000, 300, B, SIZE), SIZE - 8300);
        assert_eq!(padding(9900, 100, B, SIZE), 0);
    }
}
