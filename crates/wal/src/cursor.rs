//! Cursors for fan-out: read from disk while behind, follow the live tail when caught up.

use mempulse_primitives::Seq;
use tokio::sync::watch;

use crate::{
    error::{Error, Result},
    reader::WalReader,
    record::Record,
};

/// A position in the log that yields acknowledged records in order, without gaps or
/// duplicates. A slow consumer only falls behind (it reads older records from disk later);
/// it never loses records and never blocks the writer.
///
/// Reads are positional reads issued by the calling task (usually served from the page cache,
/// and bounded by `max` records per call). A consumer expected to read far behind on cold
/// storage can call [`Cursor::try_next_batch`] from `spawn_blocking` instead.
#[derive(Debug)]
pub struct Cursor {
    reader: WalReader,
    durable: watch::Receiver<Seq>,
    next: Seq,
}

impl Cursor {
    pub(crate) fn new(reader: WalReader, durable: watch::Receiver<Seq>, from: Seq) -> Self {
        let next = if from == Seq(0) { reader.first_seq() } else { from };
        Self { reader, durable, next }
    }

    /// Seq of the next record this cursor yields.
    #[must_use]
    pub const fn next_seq(&self) -> Seq {
        self.next
    }

    /// Up to `max` records available now (possibly none), without waiting.
    ///
    /// # Errors
    /// As [`WalReader::scan_with`].
    pub fn try_next_batch(&mut self, max: usize) -> Result<Vec<Record>> {
        let records = self.reader.scan(self.next, max)?;
        if let Some(last) = records.last() {
            self.next = Seq(last.seq.0 + 1);
        }
        Ok(records)
    }

    /// The next 1..=`max` records, waiting until at least one is durable. Returns an empty
    /// batch only when `max` is 0.
    ///
    /// # Errors
    /// [`Error::Closed`] once the sequencer has stopped and every record was read; otherwise as
    /// [`WalReader::scan_with`].
    pub async fn next_batch(&mut self, max: usize) -> Result<Vec<Record>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        loop {
            // Mark the current value seen before reading, so a publish after the read wakes us.
            let durable = *self.durable.borrow_and_update();
            if self.next <= durable || self.next <= self.reader.last_seq() {
                let records = self.try_next_batch(max)?;
                if !records.is_empty() {
                    return Ok(records);
                }
            }
            if self.durable.changed().await.is_err() && self.next > self.reader.last_seq() {
                return Err(Error::Closed);
            }
        }
    }
}
