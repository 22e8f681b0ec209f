//! Layout of [`Event`], [`EventKind`], [`Source`] and [`Origin`], and the versioned payload.
//!
//! ```text
//! payload (Event::to_bytes; the WAL frame around it carries the seq)
//!   version      u8   SCHEMA_VERSION = 1
//!   event        Event
//!
//! Event
//!   kind         u8   KindCode (first, so a scan can filter by kind without decoding)
//!   origin       Origin
//!   source       Source
//!   observed_at  u64 LE  UnixMillis
//!   fields       the kind's fields, below
//!
//! Origin   u8 1 | u64 raft_index      Replicated
//!          u8 2                       Local
//! Source   u8 1 | u8 Lane             Lane
//!          u8 2 | u64 NodeId          Peer
//!          u8 3 Mempool · 4 Cluster · 5 Replay · 6 Operator
//!
//! EventKind = u8 KindCode | fields, in declaration order:
//!   1  TxReceived          tx: Tx, lane: u8
//!   2  TxAdmitted          tx: Tx, subpool: u8
//!   3  TxRejected          hash: [32], reason: u8
//!   4  TxReplaced          old: [32], new: [32], sender: [20], nonce: u64
//!   5  TxDropped           hash: Option<[32]>, reason: u8, lane: u8, depth_current: u32,
//!                          depth_peak: u32
//!   6  TxEvicted           hash: [32], reason: u8
//!   7  TxPromoted          hash: [32]
//!   8  TxIncluded          hash: [32], height: u64
//!   9  TxReopened          hash: [32], orphaned_height: u64
//!   10 BlockProposed       height: u64, proposer: u64, txs: Vec<[32]>, total_bytes: u64,
//!                          total_gas: u64
//!   11 BlockCommitted      height: u64, txs: Vec<[32]>
//!   12 ReorgDetected       fork_height: u64, orphaned: Vec<u64>
//!   13 LeaderChanged       term: u64, leader: Option<u64>
//!   14 ProposerChanged     height: u64, proposer: u64
//!   15 CheckpointTaken     seq: u64, raft_index: u64, digest: [32]
//!   16 DivergenceDetected  peer: u64, index: u64, ours: [32], theirs: [32]
//!   17 Fenced              reason: u8, index: Option<u64>
//!   18 Unfenced            index: u64, root: [32]
//! ```

use super::{Decode, Encode, Reader, SCHEMA_VERSION};
use crate::{DecodeError, Event, EventKind, KindCode, Lane, NodeId, Origin, RaftIndex, Source};

impl Encode for Origin {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Replicated { raft_index } => {
                out.push(1);
                raft_index.encode(out);
            }
            Self::Local => out.push(2),
        }
    }
    fn encoded_len(&self) -> usize {
        match self {
            Self::Replicated { .. } => 9,
            Self::Local => 1,
        }
    }
}

impl Decode for Origin {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let offset = r.position();
        match r.u8()? {
            1 => Ok(Self::Replicated { raft_index: RaftIndex::decode(r)? }),
            2 => Ok(Self::Local),
            tag => Err(DecodeError::UnknownTag { offset, what: "Origin", tag }),
        }
    }
}

impl Encode for Source {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Lane(lane) => {
                out.push(1);
                lane.encode(out);
            }
            Self::Peer(node) => {
                out.push(2);
                node.encode(out);
            }
            Self::Mempool => out.push(3),
            Self::Cluster => out.push(4),
            Self::Replay => out.push(5),
            Self::Operator => out.push(6),
        }
    }
    fn encoded_len(&self) -> usize {
        match self {
            Self::Lane(_) => 2,
            Self::Peer(_) => 9,
            Self::Mempool | Self::Cluster | Self::Replay | Self::Operator => 1,
        }
    }
}

impl Decode for Source {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let offset = r.position();
        match r.u8()? {
            1 => Ok(Self::Lane(Lane::decode(r)?)),
            2 => Ok(Self::Peer(NodeId::decode(r)?)),
            3 => Ok(Self::Mempool),
            4 => Ok(Self::Cluster),
            5 => Ok(Self::Replay),
            6 => Ok(Self::Operator),
            tag => Err(DecodeError::UnknownTag { offset, what: "Source", tag }),
        }
    }
}

/// Generates the field codec of [`EventKind`] from one table, so the encode order and the decode
/// order cannot drift apart. Fields are written in the order listed, which is the declaration
/// order of the variant.
macro_rules! kind_fields {
    ($($variant:ident { $($field:ident),+ }),+ $(,)?) => {
        /// Appends the fields of `kind` (not its tag).
        fn encode_fields(kind: &EventKind, out: &mut Vec<u8>) {
            match kind {
                $(EventKind::$variant { $($field),+ } => { $($field.encode(out);)+ })+
            }
        }

        /// Length of the fields of `kind` (not its tag).
        fn fields_len(kind: &EventKind) -> usize {
            match kind {
                $(EventKind::$variant { $($field),+ } => 0 $(+ $field.encoded_len())+,)+
            }
        }

        /// Reads the fields of the kind `code`. Struct-expression fields evaluate in the order
        /// written, which is the order listed in the table.
        fn decode_fields(code: KindCode, r: &mut Reader<'_>) -> Result<EventKind, DecodeError> {
            Ok(match code {
                $(KindCode::$variant => EventKind::$variant { $($field: Decode::decode(r)?),+ },)+
            })
        }
    };
}

kind_fields! {
    TxReceived { tx, lane },
    TxAdmitted { tx, subpool },
    TxRejected { hash, reason },
    TxReplaced { old, new, sender, nonce },
    TxDropped { hash, reason, lane, depth_current, depth_peak },
    TxEvicted { hash, reason },
    TxPromoted { hash },
    TxIncluded { hash, height },
    TxReopened { hash, orphaned_height },
    BlockProposed { height, proposer, txs, total_bytes, total_gas },
    BlockCommitted { height, txs },
    ReorgDetected { fork_height, orphaned },
    LeaderChanged { term, leader },
    ProposerChanged { height, proposer },
    CheckpointTaken { seq, raft_index, digest },
    DivergenceDetected { peer, index, ours, theirs },
    Fenced { reason, index },
    Unfenced { index, root },
}

/// `u8 KindCode | fields`.
impl Encode for EventKind {
    fn encode(&self, out: &mut Vec<u8>) {
        self.code().encode(out);
        encode_fields(self, out);
    }
    fn encoded_len(&self) -> usize {
        1 + fields_len(self)
    }
}

impl Decode for EventKind {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let code = KindCode::decode(r)?;
        decode_fields(code, r)
    }
}

/// `u8 KindCode | Origin | Source | u64 observed_at | fields` (no version byte; see
/// [`Event::to_bytes`]).
impl Encode for Event {
    fn encode(&self, out: &mut Vec<u8>) {
        self.kind.code().encode(out);
        self.origin.encode(out);
        self.source.encode(out);
        self.observed_at.encode(out);
        encode_fields(&self.kind, out);
    }
    fn encoded_len(&self) -> usize {
        1 + self.origin.encoded_len() + self.source.encoded_len() + 8 + fields_len(&self.kind)
    }
}

impl Decode for Event {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let code = KindCode::decode(r)?;
        let origin = Origin::decode(r)?;
        let source = Source::decode(r)?;
        let observed_at = Decode::decode(r)?;
        let kind = decode_fields(code, r)?;
        Ok(Self { observed_at, source, origin, kind })
    }
}

impl Event {
    /// The stored payload: `u8 SCHEMA_VERSION | Event`. The seq is not included; the WAL frame
    /// that carries the payload carries it.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + self.encoded_len());
        out.push(SCHEMA_VERSION);
        self.encode(&mut out);
        out
    }

    /// Decodes a payload written by [`Event::to_bytes`].
    ///
    /// # Errors
    /// [`DecodeError::UnsupportedVersion`] when the first byte is not [`SCHEMA_VERSION`], any
    /// other [`DecodeError`] when the body does not decode, and [`DecodeError::TrailingBytes`]
    /// when input remains after it.
    pub fn from_bytes(payload: &[u8]) -> Result<Self, DecodeError> {
        check_version(payload)?;
        // Offsets in errors count from the start of the payload, version byte included.
        let mut r = Reader::new(payload);
        r.u8()?;
        let event = Self::decode(&mut r)?;
        r.finish()?;
        Ok(event)
    }

    /// Decodes a payload written by [`Event::to_bytes`] with the same checks and errors as
    /// [`Event::from_bytes`], but leaves the `tx.raw` of a [`EventKind::TxReceived`] and of a
    /// [`EventKind::TxAdmitted`] empty (its `encoded_size` still gives the length): for
    /// consumers that keep no transaction bodies (the replayer indexes a receipt by hash and
    /// keeps admitted transactions without their bytes, which stay in the log), which spares
    /// an allocation and a copy per transaction. Every other kind decodes in full.
    ///
    /// # Errors
    /// As [`Event::from_bytes`].
    pub fn from_bytes_without_tx_bodies(payload: &[u8]) -> Result<Self, DecodeError> {
        check_version(payload)?;
        let mut r = Reader::new(payload);
        r.u8()?;
        let code = KindCode::decode(&mut r)?;
        let origin = Origin::decode(&mut r)?;
        let source = Source::decode(&mut r)?;
        let observed_at = Decode::decode(&mut r)?;
        let kind = match code {
            KindCode::TxReceived => EventKind::TxReceived {
                tx: super::tx::decode_tx(&mut r, false)?,
                lane: Decode::decode(&mut r)?,
            },
            KindCode::TxAdmitted => EventKind::TxAdmitted {
                tx: super::tx::decode_tx(&mut r, false)?,
                subpool: Decode::decode(&mut r)?,
            },
            _ => decode_fields(code, &mut r)?,
        };
        r.finish()?;
        Ok(Self { observed_at, source, origin, kind })
    }

    /// The kind of a payload written by [`Event::to_bytes`], read from its first two bytes
    /// without decoding the rest (for scans that filter by kind).
    ///
    /// # Errors
    /// [`DecodeError::UnsupportedVersion`], or [`DecodeError::UnexpectedEnd`] /
    /// [`DecodeError::UnknownTag`] when the kind byte is missing or unknown.
    pub fn peek_kind(payload: &[u8]) -> Result<KindCode, DecodeError> {
        check_version(payload)?;
        let mut r = Reader::new(payload);
        r.u8()?;
        KindCode::decode(&mut r)
    }
}

/// Checks the version byte of a payload.
fn check_version(payload: &[u8]) -> Result<(), DecodeError> {
    match payload.first() {
        None => Err(DecodeError::UnexpectedEnd { offset: 0, needed: 1 }),
        Some(&SCHEMA_VERSION) => Ok(()),
        Some(&found) => Err(DecodeError::UnsupportedVersion { found, supported: SCHEMA_VERSION }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{decode_exact, encode_to_vec};
    use crate::{Digest, FenceReason, Height, TxHash, UnixMillis};

    fn sample() -> Event {
        Event {
            observed_at: UnixMillis(1_700_000_000_000),
            source: Source::Operator,
            origin: Origin::Replicated { raft_index: RaftIndex(7) },
            kind: EventKind::Fenced { reason: FenceReason::Divergence, index: Some(RaftIndex(6)) },
        }
    }

    #[test]
    fn payload_round_trips_with_version_byte() {
        let e = sample();
        let bytes = e.to_bytes();
        assert_eq!(bytes[0], SCHEMA_VERSION);
        assert_eq!(bytes[1], KindCode::Fenced.code());
        assert_eq!(bytes.len(), 1 + e.encoded_len());
        assert_eq!(Event::from_bytes(&bytes).unwrap(), e);
        assert_eq!(Event::peek_kind(&bytes).unwrap(), KindCode::Fenced);
        assert_eq!(decode_exact::<Event>(&bytes[1..]).unwrap(), e);
    }

    #[test]
    fn unknown_version_and_kind_are_typed_errors() {
        let mut bytes = sample().to_bytes();
        bytes[0] = 2;
        assert_eq!(
            Event::from_bytes(&bytes),
            Err(DecodeError::UnsupportedVersion { found: 2, supported: 1 })
        );
        bytes[0] = SCHEMA_VERSION;
        bytes[1] = 0;
        assert_eq!(
            Event::from_bytes(&bytes),
            Err(DecodeError::UnknownTag { offset: 1, what: "KindCode", tag: 0 })
        );
        assert_eq!(
            Event::from_bytes(&[]),
            Err(DecodeError::UnexpectedEnd { offset: 0, needed: 1 })
        );
    }

    #[test]
    fn error_offsets_count_from_the_payload_start() {
        let bytes = sample().to_bytes();
        // Cut inside observed_at: version(1) + kind(1) + origin(9) + source(1) = 12.
        assert_eq!(
            Event::from_bytes(&bytes[..14]),
            Err(DecodeError::UnexpectedEnd { offset: 12, needed: 8 })
        );
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(
            Event::from_bytes(&long),
            Err(DecodeError::TrailingBytes { offset: bytes.len(), count: 1 })
        );
    }

    #[test]
    fn kind_encoding_is_tag_then_fields() {
        let kind = EventKind::TxIncluded { hash: TxHash([3; 32]), height: Height(9) };
        let bytes = encode_to_vec(&kind);
        assert_eq!(bytes[0], 8);
        assert_eq!(&bytes[1..33], &[3; 32]);
        assert_eq!(&bytes[33..], &9u64.to_le_bytes());
        assert_eq!(decode_exact::<EventKind>(&bytes).unwrap(), kind);
        let root = EventKind::Unfenced { index: RaftIndex(1), root: Digest([0; 32]) };
        assert_eq!(root.encoded_len(), encode_to_vec(&root).len());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// The lean decode agrees with the full one on every event and on every cut or
        /// lengthened payload: same value (the raw bytes of a receipt or an admission aside,
        /// whose length it keeps), same error.
        #[test]
        fn lean_decode_equals_full_decode_but_for_tx_bodies(
            event in crate::test_utils::arb_event(),
        ) {
            let bytes = event.to_bytes();
            let mut expected = event;
            if let EventKind::TxReceived { tx, .. } | EventKind::TxAdmitted { tx, .. } =
                &mut expected.kind
            {
                proptest::prop_assert_eq!(tx.encoded_size as usize, tx.raw.len());
                tx.raw = bytes::Bytes::new();
            }
            let lean = Event::from_bytes_without_tx_bodies(&bytes).unwrap();
            proptest::prop_assert_eq!(&lean, &expected);
            let mut long = bytes.clone();
            long.push(0);
            for cut in (0..bytes.len()).map(|n| &bytes[..n]).chain([long.as_slice()]) {
                proptest::prop_assert_eq!(
                    Event::from_bytes_without_tx_bodies(cut).err(),
                    Event::from_bytes(cut).err()
                );
            }
        }
    }
}
