//! Local facts of ingest (`TxReceived`, `TxDropped`, stateless `TxRejected`) into the canonical
//! event log, through the sequencer's non-blocking submit.

use mempulse_primitives::Event;
use mempulse_wal::{SequencerHandle, SubmitError};

use crate::metrics::IngestMetrics;

/// Appends ingest's local facts to the event log. Never blocks: when the sequencer's queue is
/// full the facts are counted in `mempulse_net_facts_dropped_total{reason="queue_full"}` and
/// given up, so a slow disk can never stall the lanes (the drops stay visible in the metrics).
#[derive(Clone, Debug)]
pub struct FactWriter {
    handle: SequencerHandle,
}

impl FactWriter {
    /// A writer over the event log's sequencer.
    #[must_use]
    pub const fn new(handle: SequencerHandle) -> Self {
        Self { handle }
    }

    /// Queues `events` as one batch; the append's durability is not awaited (local facts are
    /// observations, and nothing waits on them).
    pub(crate) fn write(&self, events: &[Event], metrics: &IngestMetrics) {
        if events.is_empty() {
            return;
        }
        let records = events.iter().map(Event::to_bytes).collect();
        match self.handle.try_submit(records) {
            // The ticket is dropped: the writer acknowledges into a closed channel, harmlessly.
            Ok(_ticket) => {}
            Err(error) => {
                let reason = match error {
                    SubmitError::Full { .. } => 0,
                    SubmitError::Closed => 1,
                    // `SubmitError` is non-exhaustive; anything else is a refused batch.
                    _ => 2,
                };
                metrics.fact_dropped(reason, events.len());
                tracing::debug!(
                    error = error.as_str(),
                    facts = events.len(),
                    "ingest facts dropped"
                );
            }
        }
    }
}
