//! tikv/raft-engine 0.4 as a single append-only log.
//!
//! Configuration, chosen to be fair and to match how `TiKV` drives it:
//! - `Config::default()` except `dir`: 128 MiB target files, LZ4 for batches over 8 KiB (the
//!   payloads are random, so compression costs CPU and saves nothing, but it is the default
//!   every user gets), log recycling on, tolerate-tail-corruption recovery, 4 recovery threads.
//! - One region (Raft group id [`REGION`]); record `seq` (from 1) is entry index `seq`.
//! - Each group is one `LogBatch` written with `Engine::write(batch, sync)`, `sync = true` under
//!   `--sync always` (the engine's write group then ends with one fdatasync) and `false` under
//!   `--sync never`.
//! - raft-engine stores protobuf messages, so each record is a protobuf `BytesValue` whose value
//!   is the 8-byte little-endian index followed by the payload (`MessageExt` must find the index
//!   inside the message; a Raft `Entry` carries index and term the same way). Building these
//!   messages is part of the append cost, as it is for every raft-engine user (`TiKV` builds `Entry` messages).
//! - The scan reads the whole range with `fetch_entries_to`, in pages of [`SCAN_PAGE`] entries so
//!   that memory stays bounded; the engine's block cache decodes each written batch once.
//! - Reopen is `Engine::open` on the same directory (it replays every file into its memtables).

use ::raft_engine::{Config, Engine, LogBatch, MessageExt};
use anyhow::{Context as _, ensure};
use protobuf::well_known_types::BytesValue;

use super::{LogOptions, LogUnderTest, ScanTally, SyncMode};

/// The one Raft group the bench writes.
const REGION: u64 = 1;
/// Entries fetched per `fetch_entries_to` call while scanning.
const SCAN_PAGE: u64 = 4096;
/// Bytes of the index prefix in each message value.
const INDEX_LEN: usize = 8;

/// Finds the Raft index in a bench message: its value's 8-byte little-endian prefix.
#[derive(Debug)]
struct IndexedBytes;

impl MessageExt for IndexedBytes {
    type Entry = BytesValue;

    fn index(e: &Self::Entry) -> u64 {
        e.value.first_chunk::<INDEX_LEN>().map_or(0, |b| u64::from_le_bytes(*b))
    }
}

/// A raft-engine instance holding one region.
pub(crate) struct RaftEngineLog {
    engine: Engine,
    sync: bool,
    next_index: u64,
    batch: LogBatch,
    entries: Vec<BytesValue>,
}

impl std::fmt::Debug for RaftEngineLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftEngineLog")
            .field("next_index", &self.next_index)
            .finish_non_exhaustive()
    }
}

impl LogUnderTest for RaftEngineLog {
    fn unsupported(options: &LogOptions<'_>) -> Option<String> {
        options.peer_refusal("raft-engine")
    }

    fn open(options: &LogOptions<'_>) -> anyhow::Result<Self> {
        let dir = options.dir.to_str().context("raft-engine needs a UTF-8 directory")?;
        let config = Config { dir: dir.to_owned(), ..Config::default() };
        let engine = Engine::open(config).context("raft-engine open")?;
        let next_index = engine.last_index(REGION).map_or(1, |last| last + 1);
        Ok(Self {
            engine,
            sync: options.sync == SyncMode::Always,
            next_index,
            batch: LogBatch::default(),
            entries: Vec::new(),
        })
    }

    fn append_batch(&mut self, records: &[&[u8]]) -> anyhow::Result<()> {
        self.entries.clear();
        for (index, payload) in (self.next_index..).zip(records) {
            let mut value = Vec::with_capacity(INDEX_LEN + payload.len());
            value.extend_from_slice(&index.to_le_bytes());
            value.extend_from_slice(payload);
            self.entries.push(BytesValue { value, ..BytesValue::default() });
        }
        self.batch.add_entries::<IndexedBytes>(REGION, &self.entries)?;
        self.engine.write(&mut self.batch, self.sync)?;
        self.next_index += u64::try_from(records.len())?;
        Ok(())
    }

    fn scan_all(&mut self) -> anyhow::Result<ScanTally> {
        let mut tally = ScanTally::default();
        let (Some(first), Some(last)) =
            (self.engine.first_index(REGION), self.engine.last_index(REGION))
        else {
            return Ok(tally);
        };
        let mut page = Vec::new();
        let mut begin = first;
        while begin <= last {
            let end = last.saturating_add(1).min(begin.saturating_add(SCAN_PAGE));
            page.clear();
            let fetched = self
                .engine
                .fetch_entries_to::<IndexedBytes>(REGION, begin, end, None, &mut page)?;
            ensure!(fetched > 0, "raft-engine returned no entry at index {begin}");
            for entry in &page {
                let payload = entry.value.get(INDEX_LEN..).context("entry without index prefix")?;
                tally.add(payload);
            }
            begin += u64::try_from(fetched)?;
        }
        Ok(tally)
    }

    fn record_count(&self) -> anyhow::Result<u64> {
        match (self.engine.first_index(REGION), self.engine.last_index(REGION)) {
            (Some(first), Some(last)) => Ok(last + 1 - first),
            _ => Ok(0),
        }
    }

    fn close(self) -> anyhow::Result<()> {
        drop(self.engine);
        Ok(())
    }
}
