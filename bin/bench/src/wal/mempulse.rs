//! mempulse-wal, driven two ways.
//!
//! - [`MempulseLog`] (`--impl mempulse`): the single-writer `Wal` called directly. `--sync always`
//!   is `SyncPolicy::Always` (`append` writes the group with one write, then fdatasyncs it),
//!   `--sync never` is `SyncPolicy::Never`. This is the same shape as the peers: one caller, one
//!   group in flight.
//! - [`MempulseSequencerLog`] (`--impl mempulse-seq`): the same `Wal` moved onto the `Sequencer`
//!   (a writer thread plus a sync thread). Each group is submitted and its ticket awaited before
//!   the next, so the run pays the queue and thread hand-offs and shows what one caller of the
//!   production path sees; the pipelining of writes and syncs only pays off with several
//!   producers in flight, which no peer here is given either.
//!
//! Both use the crate's default segment size unless `--segment-bytes` sets one; `--preallocate` picks `Preallocate` (the crate's
//! default when omitted). The scan is `WalReader::scan_with` from the first seq (payloads borrow
//! the read buffer). Reopen is `Wal::open` on the same directory (plus starting the sequencer
//! for `mempulse-seq`).

use std::ops::ControlFlow;

use anyhow::{Context as _, ensure};
use mempulse_wal::{
    Preallocate, Seq, Sequencer, SequencerConfig, SequencerHandle, SyncPolicy, Wal, WalConfig,
    WalReader,
};

use super::{LogOptions, LogUnderTest, PreallocateMode, ScanTally, SyncMode};

fn config(options: &LogOptions<'_>) -> WalConfig {
    let sync = match options.sync {
        SyncMode::Always => SyncPolicy::Always,
        SyncMode::Never => SyncPolicy::Never,
    };
    let mut config = WalConfig::new(options.dir).with_sync(sync);
    if let Some(bytes) = options.writeback_bytes {
        config = config.with_writeback_bytes(bytes);
    }
    if let Some(bytes) = options.write_padding_bytes {
        config = config.with_write_padding_bytes(bytes);
    }
    if let Some(bytes) = options.segment_bytes {
        config = config.with_segment_size_bytes(bytes);
    }
    match options.preallocate {
        None => config,
        Some(PreallocateMode::ZeroFill) => config.with_preallocate(Preallocate::ZeroFill),
        Some(PreallocateMode::Fallocate) => config.with_preallocate(Preallocate::Fallocate),
        Some(PreallocateMode::Recycle) => config.with_preallocate(Preallocate::Recycle),
    }
}

/// Reads every record from the first one and folds it into a tally.
fn scan(reader: &WalReader) -> anyhow::Result<ScanTally> {
    let mut tally = ScanTally::default();
    let visited = reader.scan_with(Seq(0), usize::MAX, |_, payload| {
        tally.add(payload);
        ControlFlow::Continue(())
    })?;
    ensure!(u64::try_from(visited)? == tally.records(), "scan_with count disagrees");
    Ok(tally)
}

/// Records between the reader's first and last seq.
fn count(reader: &WalReader) -> u64 {
    (reader.last_seq().0 + 1).saturating_sub(reader.first_seq().0)
}

/// The `Wal` called directly by one writer.
#[derive(Debug)]
pub(crate) struct MempulseLog {
    wal: Wal,
}

impl LogUnderTest for MempulseLog {
    fn unsupported(_options: &LogOptions<'_>) -> Option<String> {
        None
    }

    fn open(options: &LogOptions<'_>) -> anyhow::Result<Self> {
        Ok(Self { wal: Wal::open(config(options)).context("mempulse-wal open")? })
    }

    fn append_batch(&mut self, records: &[&[u8]]) -> anyhow::Result<()> {
        self.wal.append(records)?;
        Ok(())
    }

    fn scan_all(&mut self) -> anyhow::Result<ScanTally> {
        scan(&self.wal.reader())
    }

    fn record_count(&self) -> anyhow::Result<u64> {
        Ok(count(&self.wal.reader()))
    }

    fn close(self) -> anyhow::Result<()> {
        drop(self.wal);
        Ok(())
    }
}

/// The `Wal` behind the `Sequencer`, one group in flight.
#[derive(Debug)]
pub(crate) struct MempulseSequencerLog {
    handle: SequencerHandle,
}

impl LogUnderTest for MempulseSequencerLog {
    fn unsupported(_options: &LogOptions<'_>) -> Option<String> {
        None
    }

    fn open(options: &LogOptions<'_>) -> anyhow::Result<Self> {
        let wal = Wal::open(config(options)).context("mempulse-wal open")?;
        let handle = Sequencer::start(wal, SequencerConfig::default()).context("sequencer")?;
        Ok(Self { handle })
    }

    fn append_batch(&mut self, records: &[&[u8]]) -> anyhow::Result<()> {
        // The sequencer takes owned records (they cross to its thread): copying them is part
        // of the cost of this path.
        let batch = records.iter().map(|r| r.to_vec()).collect();
        self.handle.try_submit(batch)?.wait()?;
        Ok(())
    }

    fn scan_all(&mut self) -> anyhow::Result<ScanTally> {
        scan(&self.handle.reader())
    }

    fn record_count(&self) -> anyhow::Result<u64> {
        Ok(count(&self.handle.reader()))
    }

    fn close(self) -> anyhow::Result<()> {
        self.handle.shutdown_blocking()?;
        Ok(())
    }
}
