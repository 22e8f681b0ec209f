//! The peer protocol frame codec. It shares the tx stream's framing (a little-endian `u32`
//! length, then a kind byte) with kinds of its own, so one listener tells the two protocols
//! apart by the first frame's kind. Byte layout (all integers little-endian; see
//! `docs/design/peer-catalog.md`):
//!
//! ```text
//! frame      = u32 len | u8 kind | body        len = 1 + body bytes, 1 ..= frame_bytes_max
//! PeerHello  kind 16: b"mppr" | u16 version | u64 node                         (14 bytes)
//! Announce   kind 17: announcement
//! Subscribe  kind 18: (empty)
//! Catalog    kind 19: u32 count | count × announcement          (strictly ascending node)
//! Block      kind 20: u64 request id | notice
//! BlockAck   kind 21: u64 request id | u8 answer (1 committed, 2 stale, 3 refused)
//!                     | stale: u64 height | refused: u16 len | len bytes UTF-8 (≤ 512)
//! Close      kind 22: u8 reason code (the tx stream's CloseReason codes)
//!
//! announcement = u64 node | u64 validator | u64 height | u64 version | u8 tags (bit 0
//!                proposer, 1 proposer-next, 2 proposer-soon) | u8 role code
//!                | u8 len | stream_addr (UTF-8) | u8 len | api_addr (UTF-8)
//! notice       = u64 height | u32 round | u64 proposer | u32 n | n × 32-byte hash
//!                | u32 m | m × (20-byte address | u64 next nonce)   (strictly ascending address)
//!                | u8 has base fee (0 or 1) | [u128 base fee]
//! ```
//! The length prefix is checked against the limit before the frame is buffered, every count is
//! checked against the bytes present before anything is allocated for it, and a frame must be
//! consumed exactly. Any violation is a typed [`PeerFrameError`]; nothing here panics on input.

use bytes::{BufMut, Bytes, BytesMut};
use mempulse_primitives::{Address, Height, NodeId, Nonce, TxHash, ValidatorId};
use mempulse_schedule::{Tag, Tags};

use super::types::{Announcement, BlockAck, BlockNotice, PeerRole, REASON_BYTES_MAX};
use crate::{
    CloseReason,
    stream::{LEN_BYTES, LengthPrefixed, WireFrame},
};

/// Version of the peer protocol this build speaks (carried in `PeerHello`).
pub const PEER_PROTOCOL_VERSION: u16 = 1;

/// Opens every `PeerHello` body.
pub const PEER_HELLO_MAGIC: [u8; 4] = *b"mppr";

/// The kind byte of `PeerHello`: a connection whose first frame has this kind speaks the peer
/// protocol; any other kind goes to the tx stream server.
pub const PEER_HELLO_KIND: u8 = KIND_HELLO;

/// Largest peer frame accepted by default (a block notice of many transactions).
pub const PEER_FRAME_BYTES_MAX_DEFAULT: u32 = 4 << 20;

/// Longest address (`host:port`) in an announcement.
pub const ADDR_BYTES_MAX: usize = u8::MAX as usize;

const KIND_HELLO: u8 = 16;
const KIND_ANNOUNCE: u8 = 17;
const KIND_SUBSCRIBE: u8 = 18;
const KIND_CATALOG: u8 = 19;
const KIND_BLOCK: u8 = 20;
const KIND_BLOCK_ACK: u8 = 21;
const KIND_CLOSE: u8 = 22;

const ACK_COMMITTED: u8 = 1;
const ACK_STALE: u8 = 2;
const ACK_REFUSED: u8 = 3;

/// Fixed bytes of an announcement (ids, height, version, tags, role, two lengths).
const ANNOUNCEMENT_FIXED_BYTES: usize = 8 * 4 + 1 + 1 + 1 + 1;
/// Bytes of one nonce entry.
const NONCE_ENTRY_BYTES: usize = Address::LEN + 8;

/// One frame of a peer session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerFrame {
    /// First frame each way: who speaks, in which version (the server answers with its own).
    Hello {
        /// The sending node (the server checks it against the connection's credentials).
        node: NodeId,
        /// [`PEER_PROTOCOL_VERSION`] of the sender.
        version: u16,
    },
    /// Client → server: the client node's announcement (also its heartbeat).
    Announce(Announcement),
    /// Client → server: push the catalog now and on every change.
    Subscribe,
    /// Server → client: the full catalog, ascending by node.
    Catalog(Vec<Announcement>),
    /// Client → server: commit this block; answered by a `BlockAck` with the same id.
    Block {
        /// The request's id, unique among the client's outstanding requests.
        id: u64,
        /// The block.
        notice: BlockNotice,
    },
    /// Server → client: the answer to `Block` `id`.
    BlockAck {
        /// The request's id.
        id: u64,
        /// The answer.
        ack: BlockAck,
    },
    /// Either way: the session ends, for this reason.
    Close {
        /// Why.
        reason: CloseReason,
    },
}

impl PeerFrame {
    /// Stable name of the frame's kind (logs, errors).
    #[must_use]
    pub const fn kind_str(&self) -> &'static str {
        match self {
            Self::Hello { .. } => "peer_hello",
            Self::Announce(_) => "announce",
            Self::Subscribe => "subscribe",
            Self::Catalog(_) => "catalog",
            Self::Block { .. } => "block",
            Self::BlockAck { .. } => "block_ack",
            Self::Close { .. } => "close",
        }
    }

    /// Bytes after the length prefix: kind and body (saturating).
    fn body_len(&self) -> usize {
        1usize.saturating_add(match self {
            Self::Hello { .. } => PEER_HELLO_MAGIC.len() + 2 + 8,
            Self::Announce(a) => announcement_len(a),
            Self::Subscribe => 0,
            Self::Catalog(all) => {
                all.iter().fold(4usize, |n, a| n.saturating_add(announcement_len(a)))
            }
            Self::Block { notice, .. } => 8usize.saturating_add(notice_len(notice)),
            Self::BlockAck { ack, .. } => {
                8 + 1
                    + match ack {
                        BlockAck::Committed => 0,
                        BlockAck::Stale { .. } => 8,
                        BlockAck::Refused { reason } => 2usize.saturating_add(reason.len()),
                    }
            }
            Self::Close { .. } => 1,
        })
    }

    /// Bytes of the encoded frame, length prefix included (saturating).
    #[must_use]
    pub fn encoded_len(&self) -> usize {
        LEN_BYTES.saturating_add(self.body_len())
    }

    /// Appends the encoded frame to `out` after checking everything the decoder checks.
    ///
    /// # Errors
    /// [`PeerFrameError::TooLarge`] above `frame_bytes_max`, [`PeerFrameError::FieldTooLong`]
    /// for an address or reason over its bound, [`PeerFrameError::Unordered`] for catalog
    /// entries or nonces out of order; nothing is written then.
    pub fn encode(&self, out: &mut BytesMut, frame_bytes_max: u32) -> Result<(), PeerFrameError> {
        self.check()?;
        let len = self.body_len();
        let too_large = || PeerFrameError::TooLarge {
            len: u64::try_from(len).unwrap_or(u64::MAX),
            max: frame_bytes_max,
        };
        let len32 = u32::try_from(len).map_err(|_| too_large())?;
        if len32 > frame_bytes_max {
            return Err(too_large());
        }
        out.reserve(LEN_BYTES + len);
        out.put_u32_le(len32);
        match self {
            Self::Hello { node, version } => {
                out.put_u8(KIND_HELLO);
                out.put_slice(&PEER_HELLO_MAGIC);
                out.put_u16_le(*version);
                out.put_u64_le(node.0);
            }
            Self::Announce(a) => {
                out.put_u8(KIND_ANNOUNCE);
                put_announcement(out, a);
            }
            Self::Subscribe => out.put_u8(KIND_SUBSCRIBE),
            Self::Catalog(all) => {
                out.put_u8(KIND_CATALOG);
                // Fits: the whole frame's length fits a u32.
                out.put_u32_le(u32::try_from(all.len()).unwrap_or(u32::MAX));
                for a in all {
                    put_announcement(out, a);
                }
            }
            Self::Block { id, notice } => {
                out.put_u8(KIND_BLOCK);
                out.put_u64_le(*id);
                put_notice(out, notice);
            }
            Self::BlockAck { id, ack } => {
                out.put_u8(KIND_BLOCK_ACK);
                out.put_u64_le(*id);
                put_ack(out, ack);
            }
            Self::Close { reason } => {
                out.put_u8(KIND_CLOSE);
                out.put_u8(reason.code());
            }
        }
        Ok(())
    }

    /// The checks the decoder makes on fields, made before encoding.
    fn check(&self) -> Result<(), PeerFrameError> {
        let check_addrs = |a: &Announcement| {
            if a.stream_addr.len() > ADDR_BYTES_MAX || a.api_addr.len() > ADDR_BYTES_MAX {
                return Err(PeerFrameError::FieldTooLong { field: "address" });
            }
            Ok(())
        };
        match self {
            Self::Announce(a) => check_addrs(a),
            Self::Catalog(all) => {
                all.iter().try_for_each(check_addrs)?;
                if all.windows(2).any(|w| matches!(w, [a, b] if a.node >= b.node)) {
                    return Err(PeerFrameError::Unordered { field: "catalog" });
                }
                Ok(())
            }
            Self::Block { notice, .. } => {
                if notice.nonces.windows(2).any(|w| matches!(w, [a, b] if a.0 >= b.0)) {
                    return Err(PeerFrameError::Unordered { field: "nonces" });
                }
                Ok(())
            }
            Self::BlockAck { ack: BlockAck::Refused { reason }, .. }
                if reason.len() > REASON_BYTES_MAX =>
            {
                Err(PeerFrameError::FieldTooLong { field: "reason" })
            }
            Self::Hello { .. } | Self::Subscribe | Self::BlockAck { .. } | Self::Close { .. } => {
                Ok(())
            }
        }
    }
}

fn announcement_len(a: &Announcement) -> usize {
    ANNOUNCEMENT_FIXED_BYTES.saturating_add(a.stream_addr.len()).saturating_add(a.api_addr.len())
}

fn notice_len(n: &BlockNotice) -> usize {
    let fixed = 8 + 4 + 8 + 4 + 4 + 1 + if n.base_fee_per_gas.is_some() { 16 } else { 0 };
    n.txs
        .len()
        .saturating_mul(TxHash::LEN)
        .saturating_add(n.nonces.len().saturating_mul(NONCE_ENTRY_BYTES))
        .saturating_add(fixed)
}

/// The tags as wire bits.
fn tag_bits(tags: Tags) -> u8 {
    tags.iter().fold(0, |bits, tag| {
        bits | match tag {
            Tag::Proposer => 1,
            Tag::ProposerNext => 2,
            Tag::ProposerSoon => 4,
        }
    })
}

fn tags_of_bits(bits: u8) -> Result<Tags, PeerFrameError> {
    if bits & !0b111 != 0 {
        return Err(PeerFrameError::UnknownTags { bits });
    }
    Ok(Tag::ALL.into_iter().filter(|t| bits & tag_bits(Tags::one(*t)) != 0).collect())
}

fn put_announcement(out: &mut BytesMut, a: &Announcement) {
    out.put_u64_le(a.node.0);
    out.put_u64_le(a.validator.0);
    out.put_u64_le(a.height.0);
    out.put_u64_le(a.version);
    out.put_u8(tag_bits(a.tags));
    out.put_u8(a.role.code());
    for addr in [&a.stream_addr, &a.api_addr] {
        // Checked against ADDR_BYTES_MAX before encoding.
        out.put_u8(u8::try_from(addr.len()).unwrap_or(u8::MAX));
        out.put_slice(addr.as_bytes());
    }
}

fn put_notice(out: &mut BytesMut, n: &BlockNotice) {
    out.put_u64_le(n.height.0);
    out.put_u32_le(n.round);
    out.put_u64_le(n.proposer.0);
    out.put_u32_le(u32::try_from(n.txs.len()).unwrap_or(u32::MAX));
    for hash in &n.txs {
        out.put_slice(hash.as_bytes());
    }
    out.put_u32_le(u32::try_from(n.nonces.len()).unwrap_or(u32::MAX));
    for (address, nonce) in &n.nonces {
        out.put_slice(address.as_bytes());
        out.put_u64_le(nonce.0);
    }
    match n.base_fee_per_gas {
        Some(fee) => {
            out.put_u8(1);
            out.put_u128_le(fee);
        }
        None => out.put_u8(0),
    }
}

fn put_ack(out: &mut BytesMut, ack: &BlockAck) {
    match ack {
        BlockAck::Committed => out.put_u8(ACK_COMMITTED),
        BlockAck::Stale { height } => {
            out.put_u8(ACK_STALE);
            out.put_u64_le(height.0);
        }
        BlockAck::Refused { reason } => {
            out.put_u8(ACK_REFUSED);
            // Checked against REASON_BYTES_MAX before encoding.
            out.put_u16_le(u16::try_from(reason.len()).unwrap_or(u16::MAX));
            out.put_slice(reason.as_bytes());
        }
    }
}

/// Why bytes are not a valid peer frame. The session that carried them is closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PeerFrameError {
    /// The length prefix exceeds the limit (checked before buffering the frame).
    #[error("peer frame of {len} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// Announced length.
        len: u64,
        /// The limit.
        max: u32,
    },
    /// A length prefix of zero (no kind byte).
    #[error("empty peer frame")]
    Empty,
    /// A kind byte this protocol does not define.
    #[error("unknown peer frame kind {kind}")]
    UnknownKind {
        /// The kind byte.
        kind: u8,
    },
    /// The body ends before its fields do.
    #[error("truncated {kind} frame")]
    Truncated {
        /// Which frame kind.
        kind: &'static str,
    },
    /// Bytes left in the frame after its fields.
    #[error("{extra} trailing bytes in a {kind} frame")]
    TrailingBytes {
        /// Which frame kind.
        kind: &'static str,
        /// How many.
        extra: u64,
    },
    /// A `PeerHello` without the protocol magic.
    #[error("peer hello without the peer magic")]
    BadMagic,
    /// A close reason code this side does not know.
    #[error("unknown close reason {code}")]
    UnknownCloseReason {
        /// The code.
        code: u8,
    },
    /// A role code this side does not know.
    #[error("unknown role {code}")]
    UnknownRole {
        /// The code.
        code: u8,
    },
    /// Tag bits this side does not know.
    #[error("unknown tag bits {bits:#04x}")]
    UnknownTags {
        /// The bits.
        bits: u8,
    },
    /// A block answer code this side does not know.
    #[error("unknown block answer {code}")]
    UnknownAck {
        /// The code.
        code: u8,
    },
    /// A base-fee flag other than 0 or 1.
    #[error("bad base-fee flag {flag}")]
    BadFlag {
        /// The flag byte.
        flag: u8,
    },
    /// A text field that is not UTF-8.
    #[error("{field} is not utf-8")]
    NotUtf8 {
        /// Which field.
        field: &'static str,
    },
    /// A field over its bound.
    #[error("{field} too long")]
    FieldTooLong {
        /// Which field.
        field: &'static str,
    },
    /// Entries out of order or repeated.
    #[error("unordered {field}")]
    Unordered {
        /// Which list.
        field: &'static str,
    },
}

impl PeerFrameError {
    /// The reason to close the session with.
    #[must_use]
    pub const fn close_reason(&self) -> CloseReason {
        match self {
            Self::TooLarge { .. } => CloseReason::FrameTooLarge,
            Self::Empty
            | Self::UnknownKind { .. }
            | Self::Truncated { .. }
            | Self::TrailingBytes { .. }
            | Self::BadMagic
            | Self::UnknownCloseReason { .. }
            | Self::UnknownRole { .. }
            | Self::UnknownTags { .. }
            | Self::UnknownAck { .. }
            | Self::BadFlag { .. }
            | Self::NotUtf8 { .. }
            | Self::FieldTooLong { .. }
            | Self::Unordered { .. } => CloseReason::MalformedFrame,
        }
    }
}

/// Splits a byte stream, fed in chunks of any size, into [`PeerFrame`]s. It holds at most one
/// partial frame plus the last chunk; after an error it keeps returning that error.
pub type PeerFrameDecoder = LengthPrefixed<PeerFrame>;

impl WireFrame for PeerFrame {
    type Error = PeerFrameError;

    fn too_large(len: u64, max: u32) -> PeerFrameError {
        PeerFrameError::TooLarge { len, max }
    }

    fn empty() -> PeerFrameError {
        PeerFrameError::Empty
    }

    fn decode_body(body: Bytes) -> Result<Self, PeerFrameError> {
        decode_body(body)
    }

    fn encode_frame(&self, out: &mut BytesMut, frame_bytes_max: u32) -> Result<(), PeerFrameError> {
        self.encode(out, frame_bytes_max)
    }
}

/// A frame body being read field by field; every read checks the bytes left.
struct Body {
    bytes: Bytes,
    kind: &'static str,
}

impl Body {
    fn take(&mut self, n: usize) -> Result<Bytes, PeerFrameError> {
        if self.bytes.len() < n {
            return Err(PeerFrameError::Truncated { kind: self.kind });
        }
        Ok(self.bytes.split_to(n))
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], PeerFrameError> {
        let bytes = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(&bytes);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, PeerFrameError> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, PeerFrameError> {
        self.array().map(u16::from_le_bytes)
    }

    fn u32(&mut self) -> Result<u32, PeerFrameError> {
        self.array().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Result<u64, PeerFrameError> {
        self.array().map(u64::from_le_bytes)
    }

    fn u128(&mut self) -> Result<u128, PeerFrameError> {
        self.array().map(u128::from_le_bytes)
    }

    fn text(&mut self, len: usize, field: &'static str) -> Result<String, PeerFrameError> {
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| PeerFrameError::NotUtf8 { field })
    }

    /// A count of entries of `entry_bytes` each, refused when the body cannot hold them
    /// (before anything is allocated for them).
    fn count(&mut self, entry_bytes: usize) -> Result<usize, PeerFrameError> {
        let count = usize::try_from(self.u32()?)
            .map_err(|_| PeerFrameError::Truncated { kind: self.kind })?;
        if count.saturating_mul(entry_bytes) > self.bytes.len() {
            return Err(PeerFrameError::Truncated { kind: self.kind });
        }
        Ok(count)
    }

    fn announcement(&mut self) -> Result<Announcement, PeerFrameError> {
        let node = NodeId(self.u64()?);
        let validator = ValidatorId(self.u64()?);
        let height = Height(self.u64()?);
        let version = self.u64()?;
        let tags = tags_of_bits(self.u8()?)?;
        let code = self.u8()?;
        let role = PeerRole::from_code(code).ok_or(PeerFrameError::UnknownRole { code })?;
        let len = usize::from(self.u8()?);
        let stream_addr = self.text(len, "stream_addr")?;
        let len = usize::from(self.u8()?);
        let api_addr = self.text(len, "api_addr")?;
        Ok(Announcement { node, validator, stream_addr, api_addr, tags, role, height, version })
    }

    fn notice(&mut self) -> Result<BlockNotice, PeerFrameError> {
        let height = Height(self.u64()?);
        let round = self.u32()?;
        let proposer = ValidatorId(self.u64()?);
        let n = self.count(TxHash::LEN)?;
        let mut txs = Vec::with_capacity(n);
        for _ in 0..n {
            txs.push(TxHash(self.array()?));
        }
        let m = self.count(NONCE_ENTRY_BYTES)?;
        let mut nonces: Vec<(Address, Nonce)> = Vec::with_capacity(m);
        for _ in 0..m {
            let address = Address(self.array()?);
            if nonces.last().is_some_and(|(last, _)| *last >= address) {
                return Err(PeerFrameError::Unordered { field: "nonces" });
            }
            nonces.push((address, Nonce(self.u64()?)));
        }
        let base_fee_per_gas = match self.u8()? {
            0 => None,
            1 => Some(self.u128()?),
            flag => return Err(PeerFrameError::BadFlag { flag }),
        };
        Ok(BlockNotice { height, round, proposer, txs, nonces, base_fee_per_gas })
    }

    fn ack(&mut self) -> Result<BlockAck, PeerFrameError> {
        Ok(match self.u8()? {
            ACK_COMMITTED => BlockAck::Committed,
            ACK_STALE => BlockAck::Stale { height: Height(self.u64()?) },
            ACK_REFUSED => {
                let len = usize::from(self.u16()?);
                if len > REASON_BYTES_MAX {
                    return Err(PeerFrameError::FieldTooLong { field: "reason" });
                }
                BlockAck::Refused { reason: self.text(len, "reason")? }
            }
            code => return Err(PeerFrameError::UnknownAck { code }),
        })
    }
}

/// Decodes one frame from exactly its bytes after the length prefix.
fn decode_body(bytes: Bytes) -> Result<PeerFrame, PeerFrameError> {
    let mut body = Body { bytes, kind: "frame" };
    let kind = body.u8()?;
    let frame = match kind {
        KIND_HELLO => {
            body.kind = "peer_hello";
            if body.array::<4>()? != PEER_HELLO_MAGIC {
                return Err(PeerFrameError::BadMagic);
            }
            let version = body.u16()?;
            PeerFrame::Hello { node: NodeId(body.u64()?), version }
        }
        KIND_ANNOUNCE => {
            body.kind = "announce";
            PeerFrame::Announce(body.announcement()?)
        }
        KIND_SUBSCRIBE => PeerFrame::Subscribe,
        KIND_CATALOG => {
            body.kind = "catalog";
            let count = body.count(ANNOUNCEMENT_FIXED_BYTES)?;
            let mut all: Vec<Announcement> = Vec::with_capacity(count);
            for _ in 0..count {
                let a = body.announcement()?;
                if all.last().is_some_and(|last| last.node >= a.node) {
                    return Err(PeerFrameError::Unordered { field: "catalog" });
                }
                all.push(a);
            }
            PeerFrame::Catalog(all)
        }
        KIND_BLOCK => {
            body.kind = "block";
            let id = body.u64()?;
            PeerFrame::Block { id, notice: body.notice()? }
        }
        KIND_BLOCK_ACK => {
            body.kind = "block_ack";
            let id = body.u64()?;
            PeerFrame::BlockAck { id, ack: body.ack()? }
        }
        KIND_CLOSE => {
            body.kind = "close";
            let code = body.u8()?;
            let reason =
                CloseReason::from_code(code).ok_or(PeerFrameError::UnknownCloseReason { code })?;
            PeerFrame::Close { reason }
        }
        kind => return Err(PeerFrameError::UnknownKind { kind }),
    };
    if !body.bytes.is_empty() {
        return Err(PeerFrameError::TrailingBytes {
            kind: frame.kind_str(),
            extra: u64::try_from(body.bytes.len()).unwrap_or(u64::MAX),
        });
    }
    Ok(frame)
}

#[cfg(test)]
#[path = "frame_test.rs"]
mod tests;
