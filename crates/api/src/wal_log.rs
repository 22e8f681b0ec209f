//! [`EventLog`] over a `mempulse-wal` event log: a reader that sees only acknowledged records
//! and the sequencer's durable-seq watch.

use futures_util::{FutureExt as _, future::BoxFuture};
use mempulse_primitives::Seq;
use mempulse_wal::{Error as WalError, Record, SequencerHandle, WalReader};
use tokio::sync::watch;

use crate::{EventLog, ServiceError, Unavailable, service::ServiceResult};

/// The node's event log as an [`EventLog`]. Scans run on the blocking pool (they are
/// positional reads that may miss the page cache), so a long scan never stalls a runtime
/// worker.
#[derive(Clone, Debug)]
pub struct WalEventLog {
    reader: WalReader,
    durable: watch::Receiver<Seq>,
}

impl WalEventLog {
    /// A log over `reader` (which must see only acknowledged records, as
    /// [`SequencerHandle::reader`] does) woken by `durable`.
    #[must_use]
    pub const fn new(reader: WalReader, durable: watch::Receiver<Seq>) -> Self {
        Self { reader, durable }
    }

    /// The durable view of the sequencer's log.
    #[must_use]
    pub fn from_sequencer(handle: &SequencerHandle) -> Self {
        Self::new(handle.reader(), handle.durable())
    }

    async fn scan(&self, after: Seq, max: usize) -> ServiceResult<Vec<Record>> {
        // Seq(0) means "from the first record kept", which the reader spells the same way.
        let from = if after == Seq(0) {
            Seq(0)
        } else {
            match after.checked_next() {
                Some(next) => next,
                None => return Ok(Vec::new()),
            }
        };
        let reader = self.reader.clone();
        let scanned = tokio::task::spawn_blocking(move || reader.scan(from, max))
            .await
            .map_err(ServiceError::internal)?;
        scanned.map_err(|e| match e {
            WalError::Purged { first, .. } => ServiceError::Purged { first },
            WalError::Closed => ServiceError::Unavailable(Unavailable::ShuttingDown),
            other => ServiceError::internal(other),
        })
    }
}

impl EventLog for WalEventLog {
    fn read_after(&self, after: Seq, max: usize) -> BoxFuture<'_, ServiceResult<Vec<Record>>> {
        async move { if max == 0 { Ok(Vec::new()) } else { self.scan(after, max).await } }.boxed()
    }

    fn wait_after(&self, after: Seq, max: usize) -> BoxFuture<'_, ServiceResult<Vec<Record>>> {
        async move {
            if max == 0 {
                return Ok(Vec::new());
            }
            let mut durable = self.durable.clone();
            loop {
                // Mark the value seen before reading, so a publish after the read wakes us.
                let last = *durable.borrow_and_update();
                if last > after || self.reader.last_seq() > after {
                    let records = self.scan(after, max).await?;
                    if !records.is_empty() {
                        return Ok(records);
                    }
                }
                if durable.changed().await.is_err() && self.reader.last_seq() <= after {
                    return Err(ServiceError::Unavailable(Unavailable::ShuttingDown));
                }
            }
        }
        .boxed()
    }
}
