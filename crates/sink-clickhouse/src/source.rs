//! Where the sink reads the event log: a running node's log, or a read-only copy.

use mempulse_primitives::Seq;
use mempulse_wal::{SequencerHandle, WalReader};
use tokio::sync::watch;

/// The log the sink exports.
///
/// Both kinds read through a [`WalReader`] that sees only durable records (design rule 1: a
/// record is exported only after its append is durable), starting at the seq after the highest
/// one already in ClickHouse — a position known only once the sink has asked the server, which
/// is why the sink takes the source rather than a ready-made [`mempulse_wal::Cursor`]. Payloads
/// are borrowed from the reader's buffer while a batch is filled, without a copy per record.
#[derive(Clone, Debug)]
pub enum LogSource {
    /// A running node's canonical event log: follows the durable tail until shutdown, or until
    /// the sequencer stops and every record is exported.
    Live {
        /// Reader of durable records ([`SequencerHandle::reader`]).
        reader: WalReader,
        /// The durable seq ([`SequencerHandle::durable`]), which wakes the sink on new records.
        durable: watch::Receiver<Seq>,
    },
    /// A read-only log ([`mempulse_wal::open_reader`], e.g. segments copied off a node): exports
    /// what it holds, then returns.
    Offline(WalReader),
}

impl LogSource {
    /// The live log behind a running sequencer.
    #[must_use]
    pub fn live(handle: &SequencerHandle) -> Self {
        Self::Live { reader: handle.reader(), durable: handle.durable() }
    }

    /// A log opened read-only with [`mempulse_wal::open_reader`].
    #[must_use]
    pub const fn offline(reader: WalReader) -> Self {
        Self::Offline(reader)
    }

    pub(crate) const fn reader(&self) -> &WalReader {
        match self {
            Self::Live { reader, .. } | Self::Offline(reader) => reader,
        }
    }
}
