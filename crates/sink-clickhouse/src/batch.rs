//! One batch: consecutive records of the log, decoded once, held until ClickHouse acknowledges
//! their `INSERT` (so a retry resends exactly the same rows).

use std::ops::ControlFlow;

use mempulse_primitives::{Event, Seq};
use mempulse_wal::WalReader;

use crate::{
    error::{Error, Result},
    row::{Columns, EventRow},
};

/// Bookkeeping bytes counted per record on top of its payload: its columns, seq and offset.
const RECORD_OVERHEAD_BYTES: usize = size_of::<Columns>() + 2 * size_of::<u64>();

/// Records `first..=last` of the log with their decoded columns; bounded in rows and bytes.
#[derive(Debug)]
pub(crate) struct Batch {
    rows_max: usize,
    bytes_max: usize,
    seqs: Vec<Seq>,
    columns: Vec<Columns>,
    /// End offset in `payloads` of each record's payload.
    ends: Vec<usize>,
    payloads: Vec<u8>,
    size_bytes: usize,
}

impl Batch {
    pub(crate) fn new(rows_max: u32, bytes_max: u64) -> Self {
        Self {
            rows_max: usize::try_from(rows_max).unwrap_or(usize::MAX),
            bytes_max: usize::try_from(bytes_max).unwrap_or(usize::MAX),
            seqs: Vec::new(),
            columns: Vec::new(),
            ends: Vec::new(),
            payloads: Vec::new(),
            size_bytes: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.seqs.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.seqs.is_empty()
    }

    /// Whether another record could not be added: the row cap is reached, or the byte cap
    /// leaves no room for even an empty payload.
    pub(crate) fn is_full(&self) -> bool {
        self.len() >= self.rows_max || self.size_bytes + RECORD_OVERHEAD_BYTES > self.bytes_max
    }

    pub(crate) fn first(&self) -> Option<Seq> {
        self.seqs.first().copied()
    }

    pub(crate) fn last(&self) -> Option<Seq> {
        self.seqs.last().copied()
    }

    /// Bytes accounted to the batch (payloads plus per-record bookkeeping).
    pub(crate) const fn size_bytes(&self) -> usize {
        self.size_bytes
    }

    pub(crate) fn clear(&mut self) {
        self.seqs.clear();
        self.columns.clear();
        self.ends.clear();
        self.payloads.clear();
        self.size_bytes = 0;
    }

    /// Appends the records visible to `reader` from `next` on, until the batch is full or the
    /// reader has no more. Returns how many were added. A record alone larger than the byte cap
    /// still enters an empty batch (the log bounds record sizes).
    ///
    /// # Errors
    /// [`Error::Wal`] when the log cannot be read (purged, corrupt, IO); [`Error::Decode`] when a
    /// record is not an event.
    pub(crate) fn fill(&mut self, reader: &WalReader, next: Seq) -> Result<usize> {
        let room = self.rows_max.saturating_sub(self.len());
        if room == 0 || next == Seq(0) {
            return Ok(0);
        }
        let mut added = 0usize;
        let mut failed = None;
        reader.scan_with(next, room, |seq, payload| {
            let size = payload.len() + RECORD_OVERHEAD_BYTES;
            if !self.is_empty() && self.size_bytes + size > self.bytes_max {
                return ControlFlow::Break(());
            }
            match Event::from_bytes(payload) {
                Ok(event) => {
                    let columns = Columns::of(&event);
                    self.size_bytes += size + columns.heap_bytes();
                    self.payloads.extend_from_slice(payload);
                    self.ends.push(self.payloads.len());
                    self.columns.push(columns);
                    self.seqs.push(seq);
                    added += 1;
                    ControlFlow::Continue(())
                }
                Err(source) => {
                    failed = Some(Error::Decode { seq, source });
                    ControlFlow::Break(())
                }
            }
        })?;
        match failed {
            Some(e) => Err(e),
            None => Ok(added),
        }
    }

    /// The rows to insert, in seq order.
    pub(crate) fn rows(&self) -> impl Iterator<Item = EventRow<'_>> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        self.seqs.iter().zip(&self.columns).zip(starts.zip(&self.ends)).map(
            |((seq, columns), (start, end))| {
                EventRow::new(*seq, columns, self.payloads.get(start..*end).unwrap_or_default())
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use mempulse_primitives::{EventKind, Origin, Source, TxHash, UnixMillis};
    use mempulse_wal::{Wal, WalConfig};

    use super::*;

    fn promoted(i: u8) -> Vec<u8> {
        Event {
            observed_at: UnixMillis(u64::from(i)),
            source: Source::Mempool,
            origin: Origin::Local,
            kind: EventKind::TxPromoted { hash: TxHash([i; 32]) },
        }
        .to_bytes()
    }

    fn log(records: &[Vec<u8>]) -> (tempfile::TempDir, WalReader) {
        let dir = tempfile::tempdir().unwrap();
        let mut wal =
            Wal::open(WalConfig::new(dir.path()).with_segment_size_bytes(1 << 20)).unwrap();
        wal.append(records).unwrap();
        let reader = wal.reader();
        (dir, reader)
    }

    #[test]
    fn fills_up_to_the_row_cap_then_continues_from_next() {
        let records: Vec<Vec<u8>> = (1..=10).map(promoted).collect();
        let (_dir, reader) = log(&records);
        let mut batch = Batch::new(4, 1 << 20);
        assert_eq!(batch.fill(&reader, Seq(1)).unwrap(), 4);
        assert!(batch.is_full());
        assert_eq!((batch.first(), batch.last()), (Some(Seq(1)), Some(Seq(4))));
        assert_eq!(batch.fill(&reader, Seq(5)).unwrap(), 0, "a full batch takes nothing");
        let rows: Vec<u64> = batch.rows().map(|r| r.seq_for_test()).collect();
        assert_eq!(rows, [1, 2, 3, 4]);
        batch.clear();
        assert_eq!(batch.fill(&reader, Seq(9)).unwrap(), 2);
        assert_eq!((batch.first(), batch.last()), (Some(Seq(9)), Some(Seq(10))));
    }

    #[test]
    fn the_byte_cap_bounds_a_batch_but_one_record_always_fits() {
        let records: Vec<Vec<u8>> = (1..=10).map(promoted).collect();
        let per_record = records[0].len() + RECORD_OVERHEAD_BYTES;
        let (_dir, reader) = log(&records);
        let mut batch = Batch::new(1_000, u64::try_from(3 * per_record).unwrap());
        assert_eq!(batch.fill(&reader, Seq(1)).unwrap(), 3);
        assert!(batch.size_bytes() <= 3 * per_record);
        let mut tiny = Batch::new(1_000, 1);
        assert_eq!(tiny.fill(&reader, Seq(1)).unwrap(), 1);
        assert!(tiny.is_full());
    }

    #[test]
    fn an_undecodable_record_stops_with_its_seq() {
        let (_dir, reader) = log(&[promoted(1), vec![0xFF, 1, 2], promoted(3)]);
        let mut batch = Batch::new(100, 1 << 20);
        let err = batch.fill(&reader, Seq(1)).unwrap_err();
        assert!(matches!(err, Error::Decode { seq: Seq(2), .. }), "{err:?}");
    }

    #[test]
    fn payloads_are_the_stored_bytes() {
        let records = vec![promoted(7), promoted(8)];
        let (_dir, reader) = log(&records);
        let mut batch = Batch::new(100, 1 << 20);
        batch.fill(&reader, Seq(1)).unwrap();
        let payloads: Vec<&[u8]> = batch.rows().map(|r| r.payload_for_test()).collect();
        assert_eq!(payloads, [records[0].as_slice(), records[1].as_slice()]);
    }
}
