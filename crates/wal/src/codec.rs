//! Byte layout of segment headers and record frames.
//!
//! ```text
//! segment file = header | frame* | unused space (zeros or stale frames)
//!
//! header (32 bytes, integers little-endian):
//!   0..8    magic       b"MPLSWAL\0"
//!   8..12   version     u32 = 1
//!   12..16  flags       u32 = 0 (reserved)
//!   16..24  first_seq   u64 seq of the first frame in this segment
//!   24..28  reserved    u32 = 0
//!   28..32  crc         u32 crc32c of bytes 0..28
//!
//! frame (8 + len bytes):
//!   0..4    len         u32 payload length, >= 1 (0 marks the end of written data)
//!   4..8    crc         u32 crc32c(seq u64 le || len u32 le || payload)
//!   8..     payload     len opaque bytes
//! ```
//!
//! A frame's seq is not stored: it is implied by position (the header's `first_seq` plus the
//! number of frames before it) but covered by the checksum, so a stale frame left in a recycled
//! or truncated segment can never be read as the live record at that position.

use mempulse_primitives::Seq;

use crate::error::CorruptKind;

/// Magic bytes opening every segment.
pub(crate) const MAGIC: [u8; 8] = *b"MPLSWAL\0";
/// The only format version this build writes and reads.
pub(crate) const FORMAT_VERSION: u32 = 1;
/// Length of the segment header.
pub(crate) const HEADER_LEN: usize = 32;
/// Length of a frame header (length and checksum).
pub(crate) const FRAME_HEADER_LEN: usize = 8;

/// Encodes a segment header.
pub(crate) fn encode_header(first_seq: Seq) -> [u8; HEADER_LEN] {
    let mut out = [0u8; HEADER_LEN];
    out[0..8].copy_from_slice(&MAGIC);
    out[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    out[16..24].copy_from_slice(&first_seq.0.to_le_bytes());
    let crc = crc32c::crc32c(&out[..28]);
    out[28..32].copy_from_slice(&crc.to_le_bytes());
    out
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    let raw: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
    Some(u32::from_le_bytes(raw))
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    let raw: [u8; 8] = bytes.get(at..at + 8)?.try_into().ok()?;
    Some(u64::from_le_bytes(raw))
}

/// Decodes a segment header, returning its first seq.
pub(crate) fn decode_header(bytes: &[u8]) -> Result<Seq, CorruptKind> {
    let Some(header) = bytes.get(..HEADER_LEN) else {
        return Err(CorruptKind::HeaderTruncated);
    };
    if header.get(0..8) != Some(&MAGIC[..]) {
        return Err(CorruptKind::BadMagic);
    }
    let stored_crc = u32_at(header, 28).ok_or(CorruptKind::HeaderTruncated)?;
    if crc32c::crc32c(header.get(..28).unwrap_or_default()) != stored_crc {
        return Err(CorruptKind::HeaderChecksum);
    }
    if u32_at(header, 8) != Some(FORMAT_VERSION) {
        return Err(CorruptKind::UnsupportedVersion);
    }
    u64_at(header, 16).map(Seq).ok_or(CorruptKind::HeaderTruncated)
}

/// Checksum of one frame.
#[inline]
pub(crate) fn frame_crc(seq: Seq, payload: &[u8]) -> u32 {
    let mut prefix = [0u8; 12];
    prefix[..8].copy_from_slice(&seq.0.to_le_bytes());
    // Callers only frame payloads whose length was checked to fit a u32.
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    prefix[8..].copy_from_slice(&len.to_le_bytes());
    crc32c::crc32c_append(crc32c::crc32c(&prefix), payload)
}

/// Bytes a frame of this payload takes.
#[inline]
pub(crate) const fn frame_len(payload_len: usize) -> usize {
    FRAME_HEADER_LEN + payload_len
}

/// Appends the frame of `payload` at `seq` to `buf`. The payload must be non-empty and at most
/// `u32::MAX` bytes (the writer checks both before framing; it computes checksums in bulk and
/// uses [`encode_frame_with_crc`]).
#[cfg(test)]
pub(crate) fn encode_frame(buf: &mut Vec<u8>, seq: Seq, payload: &[u8]) {
    debug_assert!(!payload.is_empty() && u32::try_from(payload.len()).is_ok());
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&frame_crc(seq, payload).to_le_bytes());
    buf.extend_from_slice(payload);
}

/// Appends the frame of `payload` whose checksum `crc` was computed already (see `crc.rs`).
#[inline]
pub(crate) fn encode_frame_with_crc(buf: &mut Vec<u8>, crc: u32, payload: &[u8]) {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&crc.to_le_bytes());
    buf.extend_from_slice(payload);
}

/// Outcome of decoding the bytes at one frame position (the one-frame reference decoder; the
/// reading path uses [`peek_frame`] and checks checksums three at a time).
#[cfg(test)]
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decoded<'a> {
    /// A valid frame for the expected seq; `size` is its total length.
    Frame {
        /// The payload.
        payload: &'a [u8],
        /// Header plus payload.
        size: usize,
    },
    /// The bytes end before the frame does; `need` bytes would be needed.
    Incomplete {
        /// Total bytes the frame needs from its start.
        need: usize,
    },
    /// A zero length field: the end of written data.
    End,
    /// The length field is larger than a segment can hold.
    BadLength,
    /// A complete frame whose checksum does not match the expected seq; `size` is its length.
    BadChecksum {
        /// Header plus payload, per the length field.
        size: usize,
    },
}

/// A frame header read without checking the checksum.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Peeked {
    /// A complete frame of `size` bytes whose stored checksum is `crc`.
    Frame {
        /// Header plus payload.
        size: usize,
        /// The stored checksum.
        crc: u32,
    },
    /// The bytes end before the frame does; `need` bytes would be needed.
    Incomplete {
        /// Total bytes the frame needs from its start.
        need: usize,
    },
    /// A zero length field: the end of written data.
    End,
    /// The length field is larger than a segment can hold.
    BadLength,
}

/// Reads the frame header at the start of `bytes` (the checksum is checked by the caller,
/// possibly for several frames at once).
#[inline]
pub(crate) fn peek_frame(bytes: &[u8], max_payload: u64) -> Peeked {
    let (Some(len), Some(crc)) = (u32_at(bytes, 0), u32_at(bytes, 4)) else {
        return Peeked::Incomplete { need: FRAME_HEADER_LEN };
    };
    if len == 0 {
        return Peeked::End;
    }
    if u64::from(len) > max_payload {
        return Peeked::BadLength;
    }
    // `len <= max_payload <= segment size`, which fits usize on supported (64-bit) targets.
    let Ok(len) = usize::try_from(len) else {
        return Peeked::BadLength;
    };
    let size = frame_len(len);
    if bytes.len() < size {
        return Peeked::Incomplete { need: size };
    }
    Peeked::Frame { size, crc }
}

/// Decodes and checks the frame at the start of `bytes`, expected to carry `seq`.
#[cfg(test)]
pub(crate) fn decode_frame(bytes: &[u8], seq: Seq, max_payload: u64) -> Decoded<'_> {
    match peek_frame(bytes, max_payload) {
        Peeked::Frame { size, crc } => {
            let payload = bytes.get(FRAME_HEADER_LEN..size).unwrap_or_default();
            if frame_crc(seq, payload) == crc {
                Decoded::Frame { payload, size }
            } else {
                Decoded::BadChecksum { size }
            }
        }
        Peeked::Incomplete { need } => Decoded::Incomplete { need },
        Peeked::End => Decoded::End,
        Peeked::BadLength => Decoded::BadLength,
    }
}

/// Largest payload a segment of `segment_size` bytes can hold.
pub(crate) const fn max_payload(segment_size: u64) -> u64 {
    let room = segment_size.saturating_sub((HEADER_LEN + FRAME_HEADER_LEN) as u64);
    if room > u32::MAX as u64 { u32::MAX as u64 } else { room }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_damage() {
        let h = encode_header(Seq(42));
        assert_eq!(decode_header(&h), Ok(Seq(42)));
        assert_eq!(decode_header(&h[..31]), Err(CorruptKind::HeaderTruncated));
        for i in 0..HEADER_LEN {
            let mut bad = h;
            bad[i] ^= 0x10;
            assert!(decode_header(&bad).is_err(), "flip at {i} accepted");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        #[test]
        fn frames_round_trip(
            seq in 0u64..u64::MAX,
            payloads in proptest::collection::vec(proptest::collection::vec(0u8.., 1..300), 1..20),
        ) {
            let mut buf = Vec::new();
            for (i, p) in payloads.iter().enumerate() {
                encode_frame(&mut buf, Seq(seq.wrapping_add(i as u64)), p);
            }
            let mut at = 0;
            for (i, p) in payloads.iter().enumerate() {
                let got = decode_frame(&buf[at..], Seq(seq.wrapping_add(i as u64)), 1 << 20);
                proptest::prop_assert_eq!(got, Decoded::Frame { payload: p, size: p.len() + 8 });
                at += p.len() + 8;
            }
            proptest::prop_assert_eq!(decode_frame(&buf[at..], Seq(0), 1 << 20), Decoded::Incomplete { need: 8 });
        }

        #[test]
        fn decoding_any_bytes_never_panics(bytes in proptest::collection::vec(0u8.., 0..600), seq in 0u64..) {
            let _ = decode_header(&bytes);
            match decode_frame(&bytes, Seq(seq), 512) {
                Decoded::Frame { payload, size } => {
                    proptest::prop_assert_eq!(payload.len() + 8, size);
                    proptest::prop_assert_eq!(frame_crc(Seq(seq), payload), u32_at(&bytes, 4).unwrap_or(0));
                }
                Decoded::Incomplete { need } => proptest::prop_assert!(need > bytes.len()),
                Decoded::End | Decoded::BadLength | Decoded::BadChecksum { .. } => {}
            }
        }
    }

    #[test]
    fn frame_round_trip_and_seq_binding() {
        let mut buf = Vec::new();
        encode_frame(&mut buf, Seq(7), b"hello");
        assert_eq!(decode_frame(&buf, Seq(7), 100), Decoded::Frame { payload: b"hello", size: 13 });
        assert_eq!(decode_frame(&buf, Seq(8), 100), Decoded::BadChecksum { size: 13 });
        assert_eq!(decode_frame(&buf[..12], Seq(7), 100), Decoded::Incomplete { need: 13 });
        assert_eq!(decode_frame(&buf[..3], Seq(7), 100), Decoded::Incomplete { need: 8 });
        assert_eq!(decode_frame(&buf, Seq(7), 4), Decoded::BadLength);
        assert_eq!(decode_frame(&[0u8; 16], Seq(7), 100), Decoded::End);
    }
}
