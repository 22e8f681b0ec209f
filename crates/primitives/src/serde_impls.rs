//! The JSON shape of events (feature `serde`): what `mempulse wal dump` prints and the HTTP API
//! returns. Serialize only: the binary codec is the storage format; JSON is a view of it.
//!
//! A [`SequencedEvent`] is one flat object:
//! `{"seq", "observed_at_ms", "source", "origin", "raft_index", "kind", ...kind fields}`.
//! Hashes and addresses are `0x` hex strings; `u128` fee amounts are decimal strings (JSON
//! numbers lose precision above 2^53); `raft_index` is `null` for local facts.

use serde::{
    Serialize, Serializer,
    ser::{SerializeMap, SerializeStruct},
};

use crate::{Event, EventKind, Origin, SequencedEvent, Source, Tx, TxType};

impl Serialize for TxType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl Serialize for Source {
    /// `"lane:rpc"`, `"peer:7"`, `"mempool"`, `"cluster"`, `"replay"`, `"operator"`.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Lane(lane) => s.collect_str(&format_args!("lane:{lane}")),
            Self::Peer(node) => s.collect_str(&format_args!("peer:{node}")),
            Self::Mempool | Self::Cluster | Self::Replay | Self::Operator => {
                s.serialize_str(self.as_str())
            }
        }
    }
}

impl Serialize for Origin {
    /// `"replicated"` or `"local"` (the Raft index is a separate field of the event).
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match self {
            Self::Replicated { .. } => "replicated",
            Self::Local => "local",
        })
    }
}

impl Serialize for Tx {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Tx", 10)?;
        st.serialize_field("hash", &self.hash)?;
        st.serialize_field("sender", &self.sender)?;
        st.serialize_field("nonce", &self.nonce)?;
        st.serialize_field("gas_limit", &self.gas_limit)?;
        st.serialize_field("max_fee_per_gas", &self.fees.max_fee_per_gas.to_string())?;
        st.serialize_field(
            "max_priority_fee_per_gas",
            &self.fees.max_priority_fee_per_gas.to_string(),
        )?;
        st.serialize_field("type", &self.tx_type)?;
        st.serialize_field("chain_id", &self.chain_id)?;
        st.serialize_field("encoded_size", &self.encoded_size)?;
        st.serialize_field("raw", &Hex(&self.raw))?;
        st.end()
    }
}

/// Bytes as a `0x` hex string.
struct Hex<'a>(&'a [u8]);

impl Serialize for Hex<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("0x{}", hex::encode(self.0)))
    }
}

impl Serialize for SequencedEvent {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("seq", &self.seq)?;
        serialize_event_fields(&self.event, &mut map)?;
        map.end()
    }
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        serialize_event_fields(self, &mut map)?;
        map.end()
    }
}

impl Serialize for EventKind {
    /// `{"kind": "...", ...fields}`.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        serialize_kind_fields(self, &mut map)?;
        map.end()
    }
}

fn serialize_event_fields<M: SerializeMap>(event: &Event, map: &mut M) -> Result<(), M::Error> {
    map.serialize_entry("observed_at_ms", &event.observed_at)?;
    map.serialize_entry("source", &event.source)?;
    map.serialize_entry("origin", &event.origin)?;
    map.serialize_entry("raft_index", &event.origin.raft_index())?;
    serialize_kind_fields(&event.kind, map)
}

#[expect(clippy::too_many_lines, reason = "one arm per event kind; splitting hides the schema")]
fn serialize_kind_fields<M: SerializeMap>(kind: &EventKind, map: &mut M) -> Result<(), M::Error> {
    map.serialize_entry("kind", kind.as_str())?;
    match kind {
        EventKind::TxReceived { tx, lane } => {
            map.serialize_entry("tx", tx)?;
            map.serialize_entry("lane", lane)
        }
        EventKind::TxAdmitted { tx, subpool } => {
            map.serialize_entry("tx", tx)?;
            map.serialize_entry("subpool", subpool)
        }
        EventKind::TxRejected { hash, reason } => {
            map.serialize_entry("hash", hash)?;
            map.serialize_entry("reason", reason)
        }
        EventKind::TxReplaced { old, new, sender, nonce } => {
            map.serialize_entry("old", old)?;
            map.serialize_entry("new", new)?;
            map.serialize_entry("sender", sender)?;
            map.serialize_entry("nonce", nonce)
        }
        EventKind::TxDropped { hash, reason, lane, depth_current, depth_peak } => {
            map.serialize_entry("hash", hash)?;
            map.serialize_entry("reason", reason)?;
            map.serialize_entry("lane", lane)?;
            map.serialize_entry("depth_current", depth_current)?;
            map.serialize_entry("depth_peak", depth_peak)
        }
        EventKind::TxEvicted { hash, reason } => {
            map.serialize_entry("hash", hash)?;
            map.serialize_entry("reason", reason)
        }
        EventKind::TxPromoted { hash } => map.serialize_entry("hash", hash),
        EventKind::TxIncluded { hash, height } => {
            map.serialize_entry("hash", hash)?;
            map.serialize_entry("height", height)
        }
        EventKind::TxReopened { hash, orphaned_height } => {
            map.serialize_entry("hash", hash)?;
            map.serialize_entry("orphaned_height", orphaned_height)
        }
        EventKind::BlockProposed { height, proposer, txs, total_bytes, total_gas } => {
            map.serialize_entry("height", height)?;
            map.serialize_entry("proposer", proposer)?;
            map.serialize_entry("txs", txs)?;
            map.serialize_entry("total_bytes", total_bytes)?;
            map.serialize_entry("total_gas", total_gas)
        }
        EventKind::BlockCommitted { height, txs } => {
            map.serialize_entry("height", height)?;
            map.serialize_entry("txs", txs)
        }
        EventKind::ReorgDetected { fork_height, orphaned } => {
            map.serialize_entry("fork_height", fork_height)?;
            map.serialize_entry("orphaned", orphaned)
        }
        EventKind::LeaderChanged { term, leader } => {
            map.serialize_entry("term", term)?;
            map.serialize_entry("leader", leader)
        }
        EventKind::ProposerChanged { height, proposer } => {
            map.serialize_entry("height", height)?;
            map.serialize_entry("proposer", proposer)
        }
        EventKind::CheckpointTaken { seq, raft_index, digest } => {
            map.serialize_entry("checkpoint_seq", seq)?;
            map.serialize_entry("checkpoint_raft_index", raft_index)?;
            map.serialize_entry("digest", digest)
        }
        EventKind::DivergenceDetected { peer, index, ours, theirs } => {
            map.serialize_entry("peer", peer)?;
            map.serialize_entry("index", index)?;
            map.serialize_entry("ours", ours)?;
            map.serialize_entry("theirs", theirs)
        }
        EventKind::Fenced { reason, index } => {
            map.serialize_entry("reason", reason)?;
            map.serialize_entry("index", index)
        }
        EventKind::Unfenced { index, root } => {
            map.serialize_entry("index", index)?;
            map.serialize_entry("root", root)
        }
    }
}
