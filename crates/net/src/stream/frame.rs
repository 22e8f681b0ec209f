//! The node tx stream frame codec. Byte layout (all integers little-endian; see
//! `docs/design/tx-stream.md`):
//!
//! ```text
//! frame   = u32 len | u8 kind | body          len = 1 + body bytes, 1 ..= frame_bytes_max
//! Hello   kind 1:  b"mptx" | u16 version | u64 source node id                (14 bytes)
//! Txs     kind 2:  u32 count | count × (u32 tx_len | tx_len bytes)
//! Credit  kind 3:  u32 txs (≥ 1)
//! Close   kind 4:  u8 reason code
//! Tally   kind 5:  u64 admitted | u64 replaced | u64 unanswered | u16 n |
//!                  n × (u8 class | u8 code | u64 count)      class 1 rejected, 2 dropped,
//!                                                            3 unavailable; (class, code) ascending
//! ```
//! The length prefix is checked against the limit before anything is buffered for the frame,
//! every count and length is checked against the bytes actually present, and a frame must be
//! consumed exactly. Any violation is a typed [`FrameError`]; nothing here panics on input.

use bytes::{BufMut, Bytes, BytesMut};
use mempulse_primitives::NodeId;

use super::{
    framing::{LEN_BYTES, LengthPrefixed, WireFrame},
    tally::StreamTally,
};

/// Version of the stream protocol this build speaks (carried in `Hello`).
pub const STREAM_PROTOCOL_VERSION: u16 = 1;

/// Opens every `Hello` body, so a connection from something that is not a tx stream fails on
/// its first frame.
pub const HELLO_MAGIC: [u8; 4] = *b"mptx";

const KIND_HELLO: u8 = 1;
const KIND_TXS: u8 = 2;
const KIND_CREDIT: u8 = 3;
const KIND_CLOSE: u8 = 4;
const KIND_TALLY: u8 = 5;

/// Bytes a `Txs` frame adds around its transactions: kind and count (per transaction: 4 more).
pub const TXS_FRAME_OVERHEAD: usize = 1 + 4;
/// Bytes each transaction adds in a `Txs` frame besides its own: its length.
pub const TX_OVERHEAD: usize = 4;

/// Why a stream ended, sent in `Close` and counted in `mempulse_net_streams_closed_total`.
/// Codes are part of the protocol: never renumber, only add.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum CloseReason {
    /// The sender is done.
    Normal,
    /// The node is shutting down.
    ShuttingDown,
    /// `Hello` carried a protocol version this side does not speak.
    UnsupportedVersion,
    /// `Hello` named a source other than the authenticated peer.
    IdentityMismatch,
    /// A frame did not decode.
    MalformedFrame,
    /// A frame's length exceeded the limit.
    FrameTooLarge,
    /// A frame of a kind not allowed at that point (no `Hello` first, a second `Hello`, `Txs`
    /// sent to a client...).
    UnexpectedFrame,
    /// More transactions than the credit granted.
    CreditExceeded,
    /// No `Hello` (server) or first credit (client) in time.
    HelloTimeout,
    /// The connection failed or ended without `Close`.
    ConnectionLost,
}

impl CloseReason {
    /// Every variant, in code order.
    pub const ALL: &'static [Self] = &[
        Self::Normal,
        Self::ShuttingDown,
        Self::UnsupportedVersion,
        Self::IdentityMismatch,
        Self::MalformedFrame,
        Self::FrameTooLarge,
        Self::UnexpectedFrame,
        Self::CreditExceeded,
        Self::HelloTimeout,
        Self::ConnectionLost,
    ];

    /// Stable wire code.
    #[must_use]
    pub const fn code(self) -> u8 {
        match self {
            Self::Normal => 1,
            Self::ShuttingDown => 2,
            Self::UnsupportedVersion => 3,
            Self::IdentityMismatch => 4,
            Self::MalformedFrame => 5,
            Self::FrameTooLarge => 6,
            Self::UnexpectedFrame => 7,
            Self::CreditExceeded => 8,
            Self::HelloTimeout => 9,
            Self::ConnectionLost => 10,
        }
    }

    /// Parses a stable wire code.
    #[must_use]
    pub const fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::Normal),
            2 => Some(Self::ShuttingDown),
            3 => Some(Self::UnsupportedVersion),
            4 => Some(Self::IdentityMismatch),
            5 => Some(Self::MalformedFrame),
            6 => Some(Self::FrameTooLarge),
            7 => Some(Self::UnexpectedFrame),
            8 => Some(Self::CreditExceeded),
            9 => Some(Self::HelloTimeout),
            10 => Some(Self::ConnectionLost),
            _ => None,
        }
    }

    /// Stable snake-case name (metric label, logs).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::ShuttingDown => "shutting_down",
            Self::UnsupportedVersion => "unsupported_version",
            Self::IdentityMismatch => "identity_mismatch",
            Self::MalformedFrame => "malformed_frame",
            Self::FrameTooLarge => "frame_too_large",
            Self::UnexpectedFrame => "unexpected_frame",
            Self::CreditExceeded => "credit_exceeded",
            Self::HelloTimeout => "hello_timeout",
            Self::ConnectionLost => "connection_lost",
        }
    }
}

impl core::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One frame of a node tx stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamFrame {
    /// Client → server, first frame: who is sending, in which protocol version.
    Hello {
        /// The sending node (checked against the authenticated peer).
        source: NodeId,
        /// [`STREAM_PROTOCOL_VERSION`] of the sender.
        version: u16,
    },
    /// Client → server: raw EIP-2718 transactions, each taking one credit.
    Txs(Vec<Bytes>),
    /// Server → client: this many more transactions may be sent (flow control; also the
    /// acknowledgement that earlier ones were processed).
    Credit {
        /// Transactions granted, at least one.
        txs: u32,
    },
    /// Either way: the stream ends, for this reason.
    Close {
        /// Why.
        reason: CloseReason,
    },
    /// Server → client, the last frame after the client's `Close{normal}`: how the stream's
    /// transactions were answered.
    Tally(StreamTally),
}

impl StreamFrame {
    /// Stable name of the frame's kind (logs, errors).
    #[must_use]
    pub const fn kind_str(&self) -> &'static str {
        match self {
            Self::Hello { .. } => "hello",
            Self::Txs(_) => "txs",
            Self::Credit { .. } => "credit",
            Self::Close { .. } => "close",
            Self::Tally(_) => "tally",
        }
    }

    /// Bytes of the encoded frame, length prefix included (saturating).
    #[must_use]
    pub fn encoded_len(&self) -> usize {
        LEN_BYTES.saturating_add(self.body_len())
    }

    /// Bytes after the length prefix: kind and body.
    fn body_len(&self) -> usize {
        match self {
            Self::Hello { .. } => 1 + HELLO_MAGIC.len() + 2 + 8,
            Self::Txs(txs) => txs.iter().fold(TXS_FRAME_OVERHEAD, |n, tx| {
                n.saturating_add(TX_OVERHEAD).saturating_add(tx.len())
            }),
            Self::Credit { .. } => 1 + 4,
            Self::Close { .. } => 1 + 1,
            Self::Tally(tally) => 1 + tally.encoded_len(),
        }
    }

    /// Appends the encoded frame to `out`, after checking it against `frame_bytes_max` (the
    /// limit counts the bytes after the length prefix, as the decoder does).
    ///
    /// # Errors
    /// [`FrameError::TooLarge`] when the frame exceeds the limit (nothing is written);
    /// [`FrameError::ZeroCredit`] for a credit of zero, which the decoder would refuse.
    pub fn encode(&self, out: &mut BytesMut, frame_bytes_max: u32) -> Result<(), FrameError> {
        let len = self.body_len();
        let len32 = u32::try_from(len)
            .map_err(|_| FrameError::TooLarge { len: u64_of(len), max: frame_bytes_max })?;
        if len32 > frame_bytes_max {
            return Err(FrameError::TooLarge { len: u64::from(len32), max: frame_bytes_max });
        }
        if let Self::Credit { txs: 0 } = self {
            return Err(FrameError::ZeroCredit);
        }
        out.reserve(LEN_BYTES + len);
        out.put_u32_le(len32);
        match self {
            Self::Hello { source, version } => {
                out.put_u8(KIND_HELLO);
                out.put_slice(&HELLO_MAGIC);
                out.put_u16_le(*version);
                out.put_u64_le(source.0);
            }
            Self::Txs(txs) => {
                out.put_u8(KIND_TXS);
                // Both fit: the whole frame's length fits a u32.
                out.put_u32_le(u32::try_from(txs.len()).unwrap_or(u32::MAX));
                for tx in txs {
                    out.put_u32_le(u32::try_from(tx.len()).unwrap_or(u32::MAX));
                    out.put_slice(tx);
                }
            }
            Self::Credit { txs } => {
                out.put_u8(KIND_CREDIT);
                out.put_u32_le(*txs);
            }
            Self::Close { reason } => {
                out.put_u8(KIND_CLOSE);
                out.put_u8(reason.code());
            }
            Self::Tally(tally) => {
                out.put_u8(KIND_TALLY);
                tally.encode(out);
            }
        }
        Ok(())
    }
}

fn u64_of(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// Why bytes are not a valid frame. The stream that carried them is closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The length prefix exceeds the limit (checked before buffering the frame).
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// Announced length.
        len: u64,
        /// The limit.
        max: u32,
    },
    /// A length prefix of zero (no kind byte).
    #[error("empty frame")]
    Empty,
    /// A kind byte this protocol does not define.
    #[error("unknown frame kind {kind}")]
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
    /// A `Hello` without the protocol magic.
    #[error("hello without the stream magic")]
    BadMagic,
    /// A `Close` with a reason code this side does not know.
    #[error("unknown close reason {code}")]
    UnknownCloseReason {
        /// The code.
        code: u8,
    },
    /// A credit of zero transactions.
    #[error("zero credit")]
    ZeroCredit,
    /// A tally entry of a class or reason code this side does not know.
    #[error("unknown tally entry (class {class}, code {code})")]
    UnknownTallyEntry {
        /// The entry class.
        class: u8,
        /// The reason code.
        code: u8,
    },
    /// Tally entries out of order, repeated, or with a zero count.
    #[error("unordered tally entries")]
    UnorderedTally,
}

impl FrameError {
    /// The reason to close the stream with.
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
            | Self::ZeroCredit
            | Self::UnknownTallyEntry { .. }
            | Self::UnorderedTally => CloseReason::MalformedFrame,
        }
    }
}

/// Splits a byte stream, fed in chunks of any size, into [`StreamFrame`]s.
///
/// It holds at most one partial frame plus the last chunk: a length prefix above the limit
/// fails before the frame's bytes are awaited. After an error it keeps returning that error.
pub type FrameDecoder = LengthPrefixed<StreamFrame>;

impl WireFrame for StreamFrame {
    type Error = FrameError;

    fn too_large(len: u64, max: u32) -> FrameError {
        FrameError::TooLarge { len, max }
    }

    fn empty() -> FrameError {
        FrameError::Empty
    }

    fn decode_body(body: Bytes) -> Result<Self, FrameError> {
        decode_body(body)
    }

    fn encode_frame(&self, out: &mut BytesMut, frame_bytes_max: u32) -> Result<(), FrameError> {
        self.encode(out, frame_bytes_max)
    }
}

/// Decodes one frame from exactly its bytes after the length prefix.
fn decode_body(mut body: Bytes) -> Result<StreamFrame, FrameError> {
    let kind = take(&mut body, 1, "frame")?.first().copied().unwrap_or(0);
    let frame = match kind {
        KIND_HELLO => {
            let name = "hello";
            let magic = take(&mut body, HELLO_MAGIC.len(), name)?;
            if magic.as_ref() != HELLO_MAGIC {
                return Err(FrameError::BadMagic);
            }
            let version = u16_le(&take(&mut body, 2, name)?);
            let source = NodeId(u64_le(&take(&mut body, 8, name)?));
            StreamFrame::Hello { source, version }
        }
        KIND_TXS => {
            let name = "txs";
            let count = u32_le(&take(&mut body, 4, name)?);
            // Each transaction needs at least its 4-byte length: a count the body cannot hold is
            // refused before anything is allocated for it.
            if u64::from(count).saturating_mul(TX_OVERHEAD as u64) > u64_of(body.len()) {
                return Err(FrameError::Truncated { kind: name });
            }
            let mut txs = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
            for _ in 0..count {
                let len = u32_le(&take(&mut body, 4, name)?);
                let len = usize::try_from(len).map_err(|_| FrameError::Truncated { kind: name })?;
                // Copied out, so a transaction kept by the pool does not pin the whole frame.
                txs.push(Bytes::copy_from_slice(&take(&mut body, len, name)?));
            }
            StreamFrame::Txs(txs)
        }
        KIND_CREDIT => {
            let txs = u32_le(&take(&mut body, 4, "credit")?);
            if txs == 0 {
                return Err(FrameError::ZeroCredit);
            }
            StreamFrame::Credit { txs }
        }
        KIND_CLOSE => {
            let code = take(&mut body, 1, "close")?.first().copied().unwrap_or(0);
            let reason =
                CloseReason::from_code(code).ok_or(FrameError::UnknownCloseReason { code })?;
            StreamFrame::Close { reason }
        }
        KIND_TALLY => StreamFrame::Tally(StreamTally::decode(&mut body)?),
        kind => return Err(FrameError::UnknownKind { kind }),
    };
    if !body.is_empty() {
        return Err(FrameError::TrailingBytes {
            kind: frame.kind_str(),
            extra: u64_of(body.len()),
        });
    }
    Ok(frame)
}

fn take(body: &mut Bytes, n: usize, kind: &'static str) -> Result<Bytes, FrameError> {
    if body.len() < n {
        return Err(FrameError::Truncated { kind });
    }
    Ok(body.split_to(n))
}

fn u16_le(bytes: &[u8]) -> u16 {
    let mut out = [0u8; 2];
    out.copy_from_slice(bytes.get(..2).unwrap_or(&[0, 0]));
    u16::from_le_bytes(out)
}

fn u32_le(bytes: &[u8]) -> u32 {
    let mut out = [0u8; 4];
    out.copy_from_slice(bytes.get(..4).unwrap_or(&[0; 4]));
    u32::from_le_bytes(out)
}

fn u64_le(bytes: &[u8]) -> u64 {
    let mut out = [0u8; 8];
    out.copy_from_slice(bytes.get(..8).unwrap_or(&[0; 8]));
    u64::from_le_bytes(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_utils::decode_in_chunks;

    fn encode(frame: &StreamFrame) -> Vec<u8> {
        let mut out = BytesMut::new();
        frame.encode(&mut out, u32::MAX).unwrap();
        out.to_vec()
    }

    #[test]
    fn golden_layouts() {
        let hello = StreamFrame::Hello { source: NodeId(0x0102), version: 1 };
        assert_eq!(
            encode(&hello),
            [&[15, 0, 0, 0, 1][..], b"mptx", &[1, 0], &[2, 1, 0, 0, 0, 0, 0, 0]].concat()
        );
        let txs = StreamFrame::Txs(vec![Bytes::from_static(b"\xaa"), Bytes::new()]);
        assert_eq!(encode(&txs), [14, 0, 0, 0, 2, 2, 0, 0, 0, 1, 0, 0, 0, 0xaa, 0, 0, 0, 0]);
        assert_eq!(encode(&StreamFrame::Credit { txs: 7 }), [5, 0, 0, 0, 3, 7, 0, 0, 0]);
        let close = StreamFrame::Close { reason: CloseReason::CreditExceeded };
        assert_eq!(encode(&close), [2, 0, 0, 0, 4, 8]);
        let mut tally = StreamTally { admitted: 2, ..StreamTally::default() };
        tally.dropped.insert(mempulse_primitives::DropReason::Duplicate, 1);
        let code = mempulse_primitives::DropReason::Duplicate.code();
        assert_eq!(
            encode(&StreamFrame::Tally(tally.clone())),
            [
                &[37, 0, 0, 0, 5, 2, 0, 0, 0, 0, 0, 0, 0][..],
                &[0; 16],
                &[1, 0, 2, code, 1, 0, 0, 0, 0, 0, 0, 0],
            ]
            .concat()
        );
        for frame in [hello, txs, close, StreamFrame::Tally(tally)] {
            assert_eq!(encode(&frame).len(), frame.encoded_len());
        }
    }

    #[test]
    fn byte_by_byte_feeding_yields_the_same_frames() {
        let frames = vec![
            StreamFrame::Hello { source: NodeId(9), version: STREAM_PROTOCOL_VERSION },
            StreamFrame::Txs(vec![Bytes::from_static(b"abc"), Bytes::from_static(b"de")]),
            StreamFrame::Credit { txs: 1 },
            StreamFrame::Close { reason: CloseReason::Normal },
            StreamFrame::Tally(StreamTally {
                replaced: 3,
                unanswered: 1,
                ..StreamTally::default()
            }),
        ];
        let bytes: Vec<u8> = frames.iter().flat_map(encode).collect();
        assert_eq!(decode_in_chunks::<StreamFrame>(1024, &bytes, &[1]), (frames, None));
    }

    #[test]
    fn an_oversize_prefix_fails_before_its_bytes_arrive_and_the_error_sticks() {
        let mut decoder = FrameDecoder::new(16);
        decoder.extend(&17u32.to_le_bytes());
        let err = FrameError::TooLarge { len: 17, max: 16 };
        assert_eq!(decoder.next_frame(), Err(err));
        assert_eq!(err.close_reason(), CloseReason::FrameTooLarge);
        decoder.extend(&encode(&StreamFrame::Credit { txs: 1 }));
        assert_eq!(decoder.next_frame(), Err(err));
        assert_eq!(decoder.buffered(), 0);
    }

    #[test]
    fn malformed_frames_get_typed_errors() {
        let cases: Vec<(Vec<u8>, FrameError)> = vec![
            (vec![0, 0, 0, 0], FrameError::Empty),
            (vec![1, 0, 0, 0, 9], FrameError::UnknownKind { kind: 9 }),
            (vec![2, 0, 0, 0, 3, 1], FrameError::Truncated { kind: "credit" }),
            (
                vec![6, 0, 0, 0, 3, 1, 0, 0, 0, 0],
                FrameError::TrailingBytes { kind: "credit", extra: 1 },
            ),
            (vec![5, 0, 0, 0, 3, 0, 0, 0, 0], FrameError::ZeroCredit),
            (vec![2, 0, 0, 0, 4, 0], FrameError::UnknownCloseReason { code: 0 }),
            ([&[15, 0, 0, 0, 1][..], b"mpxx", &[0; 10]].concat(), FrameError::BadMagic),
            // A count far beyond what the body holds fails without allocating for it.
            (vec![5, 0, 0, 0, 2, 0xff, 0xff, 0xff, 0xff], FrameError::Truncated { kind: "txs" }),
            (vec![9, 0, 0, 0, 2, 1, 0, 0, 0, 9, 0, 0, 0], FrameError::Truncated { kind: "txs" }),
        ];
        for (bytes, want) in cases {
            let mut decoder = FrameDecoder::new(1024);
            decoder.extend(&bytes);
            assert_eq!(decoder.next_frame(), Err(want), "{bytes:?}");
        }
    }

    #[test]
    fn encode_checks_the_limit_and_zero_credit() {
        let mut out = BytesMut::new();
        let big = StreamFrame::Txs(vec![Bytes::from(vec![0; 100])]);
        assert_eq!(big.encode(&mut out, 108), Err(FrameError::TooLarge { len: 109, max: 108 }));
        assert!(out.is_empty());
        big.encode(&mut out, 109).unwrap();
        assert_eq!(
            StreamFrame::Credit { txs: 0 }.encode(&mut out, 100),
            Err(FrameError::ZeroCredit)
        );
    }

    #[test]
    fn close_reason_codes_round_trip() {
        for (i, reason) in CloseReason::ALL.iter().enumerate() {
            assert_eq!(usize::from(reason.code()), i + 1);
            assert_eq!(CloseReason::from_code(reason.code()), Some(*reason));
        }
        assert_eq!(CloseReason::from_code(0), None);
    }
}
