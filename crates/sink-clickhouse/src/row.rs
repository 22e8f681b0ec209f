//! One event as one ClickHouse row: the typed columns analysts filter on, plus the payload.

use std::borrow::Cow;

use mempulse_primitives::{Event, EventKind, Seq, Source};
use serde::{Serialize, Serializer};

/// The table's columns in order, as `(name, type)`: the type as ClickHouse reports it in
/// `system.columns`. The sink writes every row with its fields in this order.
pub const COLUMNS: [(&str, &str); 11] = [
    ("seq", "UInt64"),
    ("ts", "DateTime64(3, 'UTC')"),
    ("kind", "LowCardinality(String)"),
    ("source", "LowCardinality(String)"),
    ("origin", "LowCardinality(String)"),
    ("raft_index", "Nullable(UInt64)"),
    ("tx_hash", "Nullable(FixedString(32))"),
    ("sender", "Nullable(FixedString(20))"),
    ("height", "Nullable(UInt64)"),
    ("reason", "LowCardinality(String)"),
    ("payload", "String"),
];

/// The columns of one event other than its seq and payload, decoded once when the record enters
/// a batch (a retried batch is not decoded again).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Columns {
    /// `observed_at` in Unix milliseconds (saturated into `i64`, the `DateTime64` range).
    pub(crate) ts_ms: i64,
    pub(crate) kind: &'static str,
    pub(crate) source: Cow<'static, str>,
    pub(crate) origin: &'static str,
    pub(crate) raft_index: Option<u64>,
    pub(crate) tx_hash: Option<[u8; 32]>,
    pub(crate) sender: Option<[u8; 20]>,
    pub(crate) height: Option<u64>,
    pub(crate) reason: &'static str,
}

impl Columns {
    pub(crate) fn of(event: &Event) -> Self {
        let (height, sender, reason) = kind_columns(&event.kind);
        Self {
            ts_ms: i64::try_from(event.observed_at.0).unwrap_or(i64::MAX),
            kind: event.kind.as_str(),
            source: source_name(event.source),
            origin: if event.is_replicated() { "replicated" } else { "local" },
            raft_index: event.origin.raft_index().map(|i| i.0),
            tx_hash: event.kind.tx_hash().map(|h| h.0),
            sender,
            height,
            reason,
        }
    }

    /// Heap bytes held beyond the struct itself (for the batch's byte cap).
    pub(crate) fn heap_bytes(&self) -> usize {
        match &self.source {
            Cow::Borrowed(_) => 0,
            Cow::Owned(s) => s.capacity(),
        }
    }
}

/// `"lane:rpc"`, `"peer:7"`, `"mempool"`, …: the same text as the JSON view of events.
fn source_name(source: Source) -> Cow<'static, str> {
    match source {
        Source::Lane(lane) => Cow::Owned(format!("lane:{lane}")),
        Source::Peer(node) => Cow::Owned(format!("peer:{node}")),
        // Kinds without a parameter (and any added later) are their stable name.
        other => Cow::Borrowed(other.as_str()),
    }
}

/// `(height, sender, reason)` of a kind: the block height it is about, the sender it names, and
/// the stable code of its reason; `None`/empty where the kind has none.
#[expect(
    clippy::match_same_arms,
    reason = "the kinds without these columns are named, so the list shows every kind is decided"
)]
fn kind_columns(kind: &EventKind) -> (Option<u64>, Option<[u8; 20]>, &'static str) {
    match kind {
        EventKind::TxReceived { tx, .. } | EventKind::TxAdmitted { tx, .. } => {
            (None, Some(tx.sender.0), "")
        }
        EventKind::TxReplaced { sender, .. } => (None, Some(sender.0), ""),
        EventKind::TxRejected { reason, .. } => (None, None, reason.as_str()),
        EventKind::TxDropped { reason, .. } => (None, None, reason.as_str()),
        EventKind::TxEvicted { reason, .. } => (None, None, reason.as_str()),
        EventKind::Fenced { reason, .. } => (None, None, reason.as_str()),
        EventKind::TxIncluded { height, .. }
        | EventKind::TxReopened { orphaned_height: height, .. }
        | EventKind::BlockProposed { height, .. }
        | EventKind::BlockCommitted { height, .. }
        | EventKind::ReorgDetected { fork_height: height, .. }
        | EventKind::ProposerChanged { height, .. } => (Some(height.0), None, ""),
        EventKind::TxPromoted { .. }
        | EventKind::LeaderChanged { .. }
        | EventKind::CheckpointTaken { .. }
        | EventKind::DivergenceDetected { .. }
        | EventKind::Unfenced { .. } => (None, None, ""),
        // `EventKind` is non-exhaustive; `tests::every_kind_is_mapped` fails on a new kind.
        _ => (None, None, ""),
    }
}

/// One row as the `clickhouse` crate serializes it (`RowBinary`, fields in [`COLUMNS`] order).
#[derive(Debug, clickhouse::Row, Serialize)]
pub(crate) struct EventRow<'a> {
    seq: u64,
    ts: i64,
    kind: &'a str,
    source: &'a str,
    origin: &'a str,
    raft_index: Option<u64>,
    tx_hash: Option<[u8; 32]>,
    sender: Option<[u8; 20]>,
    height: Option<u64>,
    reason: &'a str,
    #[serde(serialize_with = "as_bytes")]
    payload: &'a [u8],
}

impl<'a> EventRow<'a> {
    pub(crate) fn new(seq: Seq, columns: &'a Columns, payload: &'a [u8]) -> Self {
        Self {
            seq: seq.0,
            ts: columns.ts_ms,
            kind: columns.kind,
            source: &columns.source,
            origin: columns.origin,
            raft_index: columns.raft_index,
            tx_hash: columns.tx_hash,
            sender: columns.sender,
            height: columns.height,
            reason: columns.reason,
            payload,
        }
    }
}

#[cfg(test)]
impl<'a> EventRow<'a> {
    pub(crate) const fn seq_for_test(&self) -> u64 {
        self.seq
    }

    pub(crate) const fn payload_for_test(&self) -> &'a [u8] {
        self.payload
    }
}

/// The payload goes into a `String` column as raw bytes (serde would write `&[u8]` as an array).
fn as_bytes<S: Serializer>(bytes: &&[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use mempulse_primitives::KindCode;

    use super::*;

    #[test]
    fn every_kind_is_mapped() {
        // `kind_columns` lists 18 kinds by name. A new kind must be mapped there (its height,
        // sender and reason columns) before this count is raised.
        assert_eq!(KindCode::ALL.len(), 18, "a new event kind: map its columns in row.rs");
    }

    #[test]
    fn columns_match_the_row_struct() {
        let names: Vec<&str> = COLUMNS.iter().map(|(name, _)| *name).collect();
        // The derive's column list (doc-hidden, but what the INSERT statement names).
        assert_eq!(names, <EventRow<'_> as clickhouse::Row>::COLUMN_NAMES);
    }
}
