//! khonsulabs/okaywal 0.3 as a single append-only log.
//!
//! Configuration, chosen to be fair:
//! - `Configuration::default_for(dir)` (1 MiB preallocated segments, 16 KiB buffers) except
//!   `checkpoint_after_bytes = u64::MAX`. okaywal is a WAL in front of another store: once a
//!   segment passes `checkpoint_after_bytes` (768 KiB by default) it is handed to the
//!   `LogManager` and then recycled, and its entries can no longer be read. A permanent,
//!   scannable log (what mempulse is) is only possible with checkpointing off, so every record
//!   goes to one segment that grows past its preallocation.
//! - Each group is one entry: `begin_entry`, one `write_chunk` per record, `commit`.
//! - `commit` always fsyncs, so `--sync never` is unsupported (the run reports an error, exit 2).
//! - okaywal has no sequential reader: `read_at` opens the file for every chunk, by position.
//!   Its only sequential path is recovery, so **`scan_all` shuts the log down and recovers it
//!   with a `LogManager` that reads and CRC-checks every chunk: for okaywal, scan and reopen are
//!   one and the same operation** (the scan time includes a reopen). A reopen cannot do less:
//!   okaywal walks every entry to find the end of the log, and a manager that skips chunk bytes
//!   hits a 0.3.1 bug (`EntryChunk::skip_remaining_bytes` skips the CRC twice, so
//!   recovery stops at the first skipped chunk and places the end of the log there).

use std::io::{self, Read as _};
use std::sync::{Arc, Mutex};

use ::okaywal::{
    Configuration, Entry, EntryId, LogManager, ReadChunkResult, SegmentReader, WriteAheadLog,
};
use anyhow::{Context as _, anyhow};

use super::{LogOptions, LogUnderTest, ScanTally, SyncMode};

/// The bench's `LogManager`: reads, CRC-checks and tallies every chunk recovery finds; refuses
/// to checkpoint.
#[derive(Debug)]
struct Tallier {
    tally: Arc<Mutex<ScanTally>>,
    buffer: Vec<u8>,
}

impl Tallier {
    fn visit_chunks(&mut self, entry: &mut Entry<'_>, tally: &mut ScanTally) -> io::Result<()> {
        loop {
            let mut chunk = match entry.read_chunk()? {
                ReadChunkResult::Chunk(chunk) => chunk,
                // A torn (aborted) entry ends the entry too: okaywal ignores it.
                ReadChunkResult::EndOfEntry | ReadChunkResult::AbortedEntry => return Ok(()),
            };
            // Read every byte rather than `skip_remaining_bytes`: in 0.3.1 that skips the CRC
            // and then its `Drop` skips 4 more bytes, so recovery stops there.
            let len = usize::try_from(chunk.bytes_remaining()).map_err(io::Error::other)?;
            self.buffer.resize(len, 0);
            chunk.read_exact(&mut self.buffer)?;
            if !chunk.check_crc()? {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "okaywal chunk crc"));
            }
            tally.add(&self.buffer);
        }
    }
}

impl LogManager for Tallier {
    fn recover(&mut self, entry: &mut Entry<'_>) -> io::Result<()> {
        let shared = Arc::clone(&self.tally);
        let mut tally = shared.lock().map_err(|_| io::Error::other("tally lock poisoned"))?;
        // Chunks of an entry that turns out aborted were already counted; the bench never
        // aborts an entry, so a torn one could only come from a crash, which a run never has.
        self.visit_chunks(entry, &mut tally)
    }

    fn checkpoint_to(
        &mut self,
        _last_checkpointed_id: EntryId,
        _checkpointed_entries: &mut SegmentReader,
        _wal: &WriteAheadLog,
    ) -> io::Result<()> {
        // Checkpointing would make the entries unreadable; the configuration never triggers it.
        Err(io::Error::other("the bench log is never checkpointed"))
    }
}

/// An okaywal log with checkpointing off.
#[derive(Debug)]
pub(crate) struct OkayWalLog {
    wal: Option<WriteAheadLog>,
    options_dir: std::path::PathBuf,
    recovered: ScanTally,
}

impl OkayWalLog {
    /// Shuts the log down if open, then recovers it, reading every record.
    fn recover(&mut self) -> anyhow::Result<ScanTally> {
        if let Some(wal) = self.wal.take() {
            wal.shutdown().context("okaywal shutdown")?;
        }
        let tally = Arc::new(Mutex::new(ScanTally::default()));
        let manager = Tallier { tally: Arc::clone(&tally), buffer: Vec::new() };
        let wal = Configuration::default_for(&self.options_dir)
            .checkpoint_after_bytes(u64::MAX)
            .open(manager)
            .context("okaywal recover")?;
        self.wal = Some(wal);
        let tally = *tally.lock().map_err(|_| anyhow!("tally lock poisoned"))?;
        Ok(tally)
    }

    fn wal(&self) -> anyhow::Result<&WriteAheadLog> {
        self.wal.as_ref().context("okaywal log is closed")
    }
}

impl LogUnderTest for OkayWalLog {
    fn unsupported(options: &LogOptions<'_>) -> Option<String> {
        match options.sync {
            SyncMode::Never => {
                Some("okaywal fsyncs on every commit; it has no unsynced mode".to_owned())
            }
            SyncMode::Always => options.peer_refusal("okaywal"),
        }
    }

    fn open(options: &LogOptions<'_>) -> anyhow::Result<Self> {
        let mut log = Self {
            wal: None,
            options_dir: options.dir.to_path_buf(),
            recovered: ScanTally::default(),
        };
        log.recovered = log.recover()?;
        Ok(log)
    }

    fn append_batch(&mut self, records: &[&[u8]]) -> anyhow::Result<()> {
        let mut entry = self.wal()?.begin_entry()?;
        for record in records {
            entry.write_chunk(record)?;
        }
        entry.commit()?;
        Ok(())
    }

    fn scan_all(&mut self) -> anyhow::Result<ScanTally> {
        self.recover()
    }

    fn record_count(&self) -> anyhow::Result<u64> {
        Ok(self.recovered.records())
    }

    fn close(mut self) -> anyhow::Result<()> {
        if let Some(wal) = self.wal.take() {
            wal.shutdown().context("okaywal shutdown")?;
        }
        Ok(())
    }
}
