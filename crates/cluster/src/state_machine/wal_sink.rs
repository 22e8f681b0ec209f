//! The real [`FactSink`]: the node's canonical event log, through its `mempulse-wal` sequencer.

use std::{ops::ControlFlow, time::Duration};

use mempulse_primitives::{Event, RaftIndex, Seq};
use mempulse_wal::{SequencerHandle, SubmitError, WalReader};
use tokio::time::Instant;

use super::sink::{FactSink, SinkError, SinkFuture, WrittenThrough};
use crate::{
    admin::{FactsChunk, FactsCollector},
    config::{SINK_BACKOFF_FIRST, SINK_BACKOFF_MAX, TAIL_SCAN_WINDOW_RECORDS},
};

/// A [`FactSink`] that appends facts to the canonical event log through its sequencer.
///
/// **A full queue never loses facts.** Replicated facts cannot be dropped and recorded as a
/// drop the way ingest does: every replica must write the same facts. When the sequencer's
/// queue is full the sink retries with an exponential backoff (1 ms doubling to 64 ms between
/// tries), for at most `full_wait_max`; meanwhile the state machine does not apply further
/// entries, which is back-pressure on apply only (Raft keeps replicating and committing, the
/// log grows, clients wait). Past the bound the sink fails with [`SinkError::Stalled`], which
/// stops the state machine: the node restarts and re-applies from its last snapshot, skipping
/// the facts already in the log.
#[derive(Clone, Debug)]
pub struct WalFactSink {
    handle: SequencerHandle,
    written: Option<WrittenThrough>,
    full_wait_max: Duration,
}

impl WalFactSink {
    /// A sink over `handle`, after reading the log's tail to learn how far the replicated facts
    /// already in it reach ([`FactSink::written_through`]).
    ///
    /// This reads the log (blocking IO): call it before starting the node, or from a blocking
    /// task.
    ///
    /// # Errors
    /// [`SinkError::Wal`] when the tail cannot be read; [`SinkError::Corrupt`] when a record
    /// there is not an event.
    pub fn open(handle: SequencerHandle, full_wait_max: Duration) -> Result<Self, SinkError> {
        let written = scan_written_through(&handle.reader())?;
        Ok(Self { handle, written, full_wait_max })
    }
}

impl FactSink for WalFactSink {
    fn append(&self, events: Vec<Event>) -> SinkFuture {
        let records: Vec<Vec<u8>> = events.iter().map(Event::to_bytes).collect();
        let handle = self.handle.clone();
        let full_wait_max = self.full_wait_max;
        Box::pin(async move {
            let ticket = submit(full_wait_max, || handle.try_submit(records.clone())).await?;
            ticket.await.map(|_| ()).map_err(SinkError::Wal)
        })
    }

    fn sync(&self) -> SinkFuture {
        let handle = self.handle.clone();
        let full_wait_max = self.full_wait_max;
        Box::pin(async move {
            let ticket = submit(full_wait_max, || handle.try_sync()).await?;
            ticket.await.map_err(SinkError::Wal)
        })
    }

    fn written_through(&self) -> Option<WrittenThrough> {
        self.written
    }
}

/// Submits to the sequencer, retrying a full queue with an exponential backoff for at most
/// `full_wait_max`.
async fn submit<T>(
    full_wait_max: Duration,
    mut try_submit: impl FnMut() -> Result<T, SubmitError>,
) -> Result<T, SinkError> {
    let started = Instant::now();
    let mut backoff = SINK_BACKOFF_FIRST;
    loop {
        match try_submit() {
            Ok(ticket) => return Ok(ticket),
            Err(SubmitError::Full { .. }) => {
                let waited = started.elapsed();
                if waited >= full_wait_max {
                    let waited_ms = u64::try_from(waited.as_millis()).unwrap_or(u64::MAX);
                    return Err(SinkError::Stalled { waited_ms });
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(SINK_BACKOFF_MAX);
            }
            Err(SubmitError::Closed) => return Err(SinkError::Closed),
            Err(SubmitError::Invalid(e)) => return Err(SinkError::Wal(e)),
            Err(e) => return Err(SinkError::Refused(e)),
        }
    }
}

/// Reads the log backwards, one window of records at a time, until the replicated facts of the
/// newest Raft index are all counted.
fn scan_written_through(reader: &WalReader) -> Result<Option<WrittenThrough>, SinkError> {
    let first = reader.first_seq().0.max(1);
    let mut high = reader.last_seq().0;
    let mut found: Option<WrittenThrough> = None;
    while high >= first {
        let low = high.saturating_sub(TAIL_SCAN_WINDOW_RECORDS - 1).max(first);
        let window = read_origins(reader, Seq(low), high - low + 1)?;
        for index in window.iter().rev().flatten() {
            match &mut found {
                None => found = Some(WrittenThrough { index: *index, facts: 1 }),
                Some(w) if w.index == *index => w.facts += 1,
                Some(_) => return Ok(found),
            }
        }
        high = low - 1;
    }
    Ok(found)
}

/// The Raft index of each record in `[from, from + count)` (`None` for a local event).
fn read_origins(
    reader: &WalReader,
    from: Seq,
    count: u64,
) -> Result<Vec<Option<RaftIndex>>, SinkError> {
    let mut out = Vec::new();
    let mut failure: Option<SinkError> = None;
    let limit = usize::try_from(count).unwrap_or(usize::MAX);
    reader
        .scan_with(from, limit, |seq, payload| match Event::from_bytes(payload) {
            Ok(event) => {
                out.push(event.origin.raft_index());
                ControlFlow::Continue(())
            }
            Err(source) => {
                failure = Some(SinkError::Corrupt { seq, source });
                ControlFlow::Break(())
            }
        })
        .map_err(SinkError::Wal)?;
    failure.map_or(Ok(out), Err)
}

/// The next replicated facts of Raft indexes `after ..= through` in an event log, skipping the
/// first `skip` facts of `after`, at most [`crate::FACTS_CHUNK_BYTES_MAX`] bytes of them (at least
/// one when any is left): the answer to [`crate::AdminRequest::Facts`]. `None` when the log
/// may no longer hold all the facts asked for (its head was purged at or after their start).
///
/// The start is found by bisecting the seqs (a log's replicated facts never go back in index),
/// so a request costs O(log n) short reads plus the chunk it returns.
///
/// # Errors
/// [`SinkError::Wal`] when the log cannot be read; [`SinkError::Corrupt`] for a record that is
/// not an event.
pub fn facts_in_log(
    reader: &WalReader,
    after: RaftIndex,
    skip: u32,
    through: RaftIndex,
) -> Result<Option<FactsChunk>, SinkError> {
    let first = reader.first_seq().0.max(1);
    let end = reader.last_seq().0.saturating_add(1);
    // The first seq whose next replicated fact (at or after it) has an index >= `after`.
    let (mut low, mut high) = (first, end);
    while low < high {
        let mid = low + (high - low) / 2;
        match next_replicated_index(reader, Seq(mid), end)? {
            Some(index) if index < after => low = mid + 1,
            _ => high = mid,
        }
    }
    if low == first && first > 1 {
        // Facts of `after` may sit in the purged part.
        return Ok(None);
    }
    let mut collector = FactsCollector::new(after, skip, through);
    let mut failure = None;
    let limit = usize::try_from(end - low).unwrap_or(usize::MAX);
    reader
        .scan_with(Seq(low), limit, |seq, payload| match Event::from_bytes(payload) {
            Ok(event) => collector.offer(event, payload.len()),
            Err(source) => {
                failure = Some(SinkError::Corrupt { seq, source });
                ControlFlow::Break(())
            }
        })
        .map_err(SinkError::Wal)?;
    failure.map_or_else(|| Ok(Some(collector.finish())), Err)
}

/// The Raft index of the first replicated fact at or after `from` (before `end`), reading a
/// window of records at a time; `None` when there is none.
fn next_replicated_index(
    reader: &WalReader,
    from: Seq,
    end: u64,
) -> Result<Option<RaftIndex>, SinkError> {
    let mut at = from.0;
    while at < end {
        let count = (end - at).min(TAIL_SCAN_WINDOW_RECORDS);
        if let Some(index) = read_origins(reader, Seq(at), count)?.into_iter().flatten().next() {
            return Ok(Some(index));
        }
        at += count;
    }
    Ok(None)
}
