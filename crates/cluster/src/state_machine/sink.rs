//! Where the state machine writes the facts it derives: the [`FactSink`] trait and the
//! in-memory sink for tests and embedders without an event log.

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex, PoisonError},
};

use mempulse_primitives::{DecodeError, Event, RaftIndex, Seq};

/// A boxed future returned by [`FactSink::append`].
pub type SinkFuture = Pin<Box<dyn Future<Output = Result<(), SinkError>> + Send + 'static>>;

/// How far the replicated facts already in a sink's log reach: the highest Raft index with a
/// fact there, and how many facts of that index it holds.
///
/// After a restart the state machine re-applies entries from its last snapshot; their facts are
/// already in the event log up to this point, so it skips them instead of writing them twice.
/// The count covers a batch cut short by a crash: facts of the last index beyond `facts` are
/// written again, the first `facts` are not.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WrittenThrough {
    /// Highest Raft index of a replicated fact in the log.
    pub index: RaftIndex,
    /// Number of replicated facts with that index in the log.
    pub facts: u64,
}

/// The durable destination of the facts derived by applying Raft entries (the node's
/// canonical event log).
///
/// The state machine reports an entry applied, and answers its client, only after
/// [`FactSink::append`] resolved `Ok` for the entry's facts (design rule 1).
pub trait FactSink: Send + Sync + 'static {
    /// Appends `events` in order (after every batch appended before) and resolves once they are
    /// durable as the log's sync policy defines it for an acknowledgement (the event log's
    /// `Interval` policy acknowledges once written and syncs within the interval). `events` is
    /// never empty. The state machine awaits each append before the next.
    ///
    /// # Errors
    /// [`SinkError`] when the events could not be made durable; the state machine then stops
    /// applying (the node must restart, and re-applies from its last snapshot).
    fn append(&self, events: Vec<Event>) -> SinkFuture;

    /// Resolves once every event appended before the call is on stable storage, whatever the
    /// sync policy. A Raft snapshot waits on it before it is saved: entries a snapshot covers
    /// are never applied again, so their facts must not be lost to a power loss after it (the
    /// facts of later entries are derived again on restart when they are missing).
    ///
    /// # Errors
    /// [`SinkError`] when the log could not sync; the snapshot is then not saved.
    fn sync(&self) -> SinkFuture;

    /// How far the replicated facts already in the log reach (`None` when it holds none).
    fn written_through(&self) -> Option<WrittenThrough>;
}

/// Why a [`FactSink`] could not make facts durable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// The event log failed or refused the batch.
    #[error("event log append failed")]
    Wal(#[source] mempulse_wal::Error),
    /// The event log's queue stayed full for longer than the configured bound.
    #[error("event log queue stayed full for {waited_ms} ms")]
    Stalled {
        /// How long the sink retried.
        waited_ms: u64,
    },
    /// The event log's sequencer refused the batch for a reason this build does not know.
    #[error("event log refused the batch")]
    Refused(#[source] mempulse_wal::SubmitError),
    /// The event log's sequencer has shut down.
    #[error("event log closed")]
    Closed,
    /// A record of the event log is not an event.
    #[error("event log record at seq {seq} does not decode")]
    Corrupt {
        /// Seq of the record.
        seq: Seq,
        /// Why it does not decode.
        #[source]
        source: DecodeError,
    },
}

/// An in-memory [`FactSink`]: keeps every appended event, durable at once. For tests and for
/// embedders that consume facts from the responses only. Clones share the same log.
#[derive(Clone, Debug, Default)]
pub struct MemorySink {
    events: Arc<Mutex<Vec<Event>>>,
}

impl MemorySink {
    /// An empty sink.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of every event appended so far, in order.
    #[must_use]
    pub fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Number of events appended so far.
    #[must_use]
    pub fn len(&self) -> usize {
        self.events.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Whether nothing was appended yet.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl FactSink for MemorySink {
    fn append(&self, events: Vec<Event>) -> SinkFuture {
        self.events.lock().unwrap_or_else(PoisonError::into_inner).extend(events);
        Box::pin(async { Ok(()) })
    }

    fn sync(&self) -> SinkFuture {
        // Durable at once.
        Box::pin(async { Ok(()) })
    }

    fn written_through(&self) -> Option<WrittenThrough> {
        let events = self.events.lock().unwrap_or_else(PoisonError::into_inner);
        written_through(events.iter().rev())
    }
}

/// [`WrittenThrough`] of a log read backwards (newest first): the first replicated event names
/// the index, and the replicated events of that index are counted until an older index shows
/// up. Local events in between are skipped.
pub(crate) fn written_through<'a>(
    newest_first: impl Iterator<Item = &'a Event>,
) -> Option<WrittenThrough> {
    let mut found: Option<WrittenThrough> = None;
    for event in newest_first {
        let Some(index) = event.origin.raft_index() else { continue };
        match &mut found {
            None => found = Some(WrittenThrough { index, facts: 1 }),
            Some(w) if w.index == index => w.facts += 1,
            Some(_) => break,
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use mempulse_primitives::{EventKind, Origin, Source, TxHash, UnixMillis};

    use super::*;

    fn event(origin: Origin) -> Event {
        Event {
            observed_at: UnixMillis(1),
            source: Source::Mempool,
            origin,
            kind: EventKind::TxPromoted { hash: TxHash([1; 32]) },
        }
    }

    fn replicated(index: u64) -> Event {
        event(Origin::Replicated { raft_index: RaftIndex(index) })
    }

    #[test]
    fn written_through_counts_the_last_index_and_skips_local_events() {
        let log = [
            replicated(3),
            replicated(4),
            event(Origin::Local),
            replicated(4),
            replicated(4),
            event(Origin::Local),
        ];
        assert_eq!(
            written_through(log.iter().rev()),
            Some(WrittenThrough { index: RaftIndex(4), facts: 3 })
        );
        assert_eq!(written_through([event(Origin::Local)].iter()), None);
        assert_eq!(written_through([].iter()), None);
    }

    #[tokio::test]
    async fn memory_sink_keeps_events_in_order() {
        let sink = MemorySink::new();
        assert!(sink.is_empty());
        sink.append(vec![replicated(1), replicated(2)]).await.unwrap();
        sink.append(vec![replicated(2)]).await.unwrap();
        assert_eq!(sink.events(), vec![replicated(1), replicated(2), replicated(2)]);
        assert_eq!(sink.written_through(), Some(WrittenThrough { index: RaftIndex(2), facts: 2 }));
    }
}
