//! What is on disk: listing segments, checking headers, and scanning the active tail.
//!
//! Sealed segments are never scanned on open: their last seq is the next segment's first seq
//! minus one (a segment is synced before its successor is created). Only the active (last)
//! segment is read, to find where its written frames end.

use std::{collections::BTreeMap, ops::ControlFlow, sync::Arc};

use mempulse_primitives::Seq;

use crate::{
    codec::{self, HEADER_LEN, Peeked},
    error::{CorruptKind, Error, IoOp, Result},
    segment::{self, FileKind, Segment, Walk, WalkEnd, WalkFrom},
    storage::{Storage, read_full_at},
};

/// The files of a log directory, by kind.
#[derive(Debug, Default)]
pub(crate) struct Listing {
    pub(crate) segments: BTreeMap<Seq, String>,
    /// Purged segments and prepared spares, reusable as new segments.
    pub(crate) recycle: Vec<String>,
    /// Largest spare id seen.
    pub(crate) max_spare: Option<u64>,
    pub(crate) tmp: Vec<String>,
}

pub(crate) fn list(storage: &dyn Storage) -> Result<Listing> {
    let names = storage.list().map_err(|e| Error::io(IoOp::List, storage.path_of(""), e))?;
    let mut listing = Listing::default();
    for name in names {
        match segment::classify(&name) {
            FileKind::Segment(first) => {
                listing.segments.insert(first, name);
            }
            FileKind::Recycle => listing.recycle.push(name),
            FileKind::Spare(id) => {
                listing.max_spare = listing.max_spare.max(Some(id));
                listing.recycle.push(name);
            }
            FileKind::Tmp => listing.tmp.push(name),
            FileKind::Other => {}
        }
    }
    listing.recycle.sort();
    listing.tmp.sort();
    Ok(listing)
}

/// Opens every listed segment and checks its header against its name.
pub(crate) fn open_segments(storage: &dyn Storage, listing: &Listing) -> Result<Vec<Arc<Segment>>> {
    let mut out = Vec::with_capacity(listing.segments.len());
    for (first, name) in &listing.segments {
        let file =
            storage.open(name).map_err(|e| Error::io(IoOp::Open, storage.path_of(name), e))?;
        let mut header = [0u8; HEADER_LEN];
        let n = read_full_at(file.as_ref(), &mut header, 0)
            .map_err(|e| Error::io(IoOp::Read, storage.path_of(name), e))?;
        let stored = codec::decode_header(header.get(..n).unwrap_or_default())
            .map_err(|kind| Error::corrupt(name, 0, kind))?;
        if stored != *first {
            return Err(Error::corrupt(name, 16, CorruptKind::HeaderSeqMismatch));
        }
        let len = file.size().map_err(|e| Error::io(IoOp::Read, storage.path_of(name), e))?;
        out.push(Arc::new(Segment::new(*first, name.clone(), file, len)));
    }
    Ok(out)
}

/// Where the active segment's written frames end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tail {
    /// Seq the next record gets.
    pub(crate) next_seq: Seq,
    /// Byte offset after the last valid frame.
    pub(crate) end: u64,
    /// Whether damaged bytes (a torn write) follow `end`.
    pub(crate) torn: bool,
}

/// Scans the active segment, filling its sparse index as it goes.
pub(crate) fn scan_tail(
    storage: &dyn Storage,
    seg: &Segment,
    buf: &mut Vec<u8>,
    max_payload: u64,
) -> Result<Tail> {
    let read_err = |e| Error::io(IoOp::Read, storage.path_of(&seg.name), e);
    let from = WalkFrom {
        seq: seg.first,
        offset: HEADER_LEN as u64,
        last: None,
        read_end: seg.end(),
        max_payload,
    };
    let walk = segment::walk(seg.file.as_ref(), buf, from, |seq, offset, _| {
        if seg.is_index_point(seq) {
            seg.record(seq, offset);
        }
        ControlFlow::Continue(())
    })
    .map_err(read_err)?;
    let torn = match walk.end {
        WalkEnd::Limit | WalkEnd::Zero | WalkEnd::Eof => false,
        WalkEnd::Truncated | WalkEnd::BadLength => true,
        WalkEnd::BadChecksum { size } => {
            if next_frame_valid(seg, buf, &walk, size, max_payload).map_err(read_err)? {
                return Err(Error::corrupt(&seg.name, walk.offset, CorruptKind::FrameChecksum));
            }
            true
        }
    };
    if walk.end != WalkEnd::Eof
        && let Some((offset, seq)) =
            live_record_after(seg, walk.offset, walk.next_seq, max_payload).map_err(read_err)?
    {
        tracing::error!(
            segment = %seg.name,
            end = walk.offset,
            record_offset = offset,
            record_seq = seq.0,
            "wal damaged before its end: valid records follow unreadable bytes"
        );
        return Err(Error::corrupt(&seg.name, walk.offset, CorruptKind::RecordsAfterDamage));
    }
    Ok(Tail { next_seq: walk.next_seq, end: walk.offset, torn })
}

/// Bytes after the end of the readable frames read to look for records of the log.
const SEARCH_BYTES: usize = 1 << 20;

/// Frames followed by their length fields from the end (the first one is the unreadable one).
const CHAIN_FRAMES: u64 = 64;

/// Seqs tried per candidate frame after a run of zeros: a hole hides at most this many records.
const SEARCH_SEQS: u64 = 512;

/// Payload bytes checksummed at most while trying candidates after a run of zeros (~30 ms).
const SEARCH_CRC_BYTES: usize = 256 << 20;

/// The offset and seq of a valid frame of the log after `end`, where the active segment's
/// readable frames stop (seq `next` would come next), within [`SEARCH_BYTES`].
///
/// The walk cannot tell a hole (several damaged frames in a row, or zeroed bytes with records
/// after them) from the end of what was written, since a frame's position is only known from
/// the one before. Two looks, each cheap when there is nothing to find:
/// - the chain: frames after `end` by their length fields, each checked as the seq its position
///   gives (damaged frames whose lengths survived);
/// - past a run of zeros where the chain stops: every offset from the first non-zero byte on
///   whose length field is plausible, as a frame of each seq the gap could hide.
///
/// A frame's checksum covers its seq, so stale frames of a recycled or truncated segment (older
/// seqs) and preallocated zeros never match; a match means records the log wrote lie past
/// damage, which recovery must not cut off. Garbage that destroyed length fields is not searched
/// (in a recycled segment stale bytes follow the end on every open).
fn live_record_after(
    seg: &Segment,
    end: u64,
    next: Seq,
    max_payload: u64,
) -> std::io::Result<Option<(u64, Seq)>> {
    let room = usize::try_from(seg.end().saturating_sub(end)).unwrap_or(usize::MAX);
    let mut bytes = vec![0u8; room.min(SEARCH_BYTES)];
    let n = read_full_at(seg.file.as_ref(), &mut bytes, end)?;
    bytes.truncate(n);
    let peek = |at: usize| codec::peek_frame(bytes.get(at..).unwrap_or_default(), max_payload);
    // The chain.
    let mut at = 0;
    for k in 0..CHAIN_FRAMES {
        match peek(at) {
            Peeked::Frame { size, crc } => {
                let seq = Seq(next.0.saturating_add(k));
                let payload = bytes.get(at + codec::FRAME_HEADER_LEN..at + size);
                if k > 0 && payload.is_some_and(|p| codec::frame_crc(seq, p) == crc) {
                    return Ok(Some((end + at as u64, seq)));
                }
                at += size;
            }
            Peeked::End => break,
            Peeked::BadLength | Peeked::Incomplete { .. } => return Ok(None),
        }
    }
    if peek(at) != Peeked::End {
        return Ok(None);
    }
    // Past the zeros: a frame's length field holds a non-zero byte, so the first frame after
    // the run starts at most three bytes before its first non-zero byte.
    let Some(nonzero) = bytes.get(at..).and_then(|b| b.iter().position(|x| *x != 0)) else {
        return Ok(None);
    };
    let mut budget = SEARCH_CRC_BYTES;
    for q in (at + nonzero).saturating_sub(3)..bytes.len() {
        let Peeked::Frame { size, crc } = peek(q) else { continue };
        let Some(payload) = bytes.get(q + codec::FRAME_HEADER_LEN..q + size) else { continue };
        // The frames from `end` to here (seq `next` on) take at least a header and a byte each.
        let hidden = (q / (codec::FRAME_HEADER_LEN + 1)) as u64;
        for k in 1..=hidden.min(SEARCH_SEQS) {
            let Some(left) = budget.checked_sub(payload.len()) else { return Ok(None) };
            budget = left;
            let seq = Seq(next.0.saturating_add(k));
            if codec::frame_crc(seq, payload) == crc {
                return Ok(Some((end + q as u64, seq)));
            }
        }
    }
    Ok(None)
}

/// Whether a valid frame for the seq after a bad frame follows it: then the bad frame is damage
/// inside the log, not a torn write at its end.
fn next_frame_valid(
    seg: &Segment,
    buf: &mut Vec<u8>,
    bad: &Walk,
    bad_size: u64,
    max_payload: u64,
) -> std::io::Result<bool> {
    let seq = Seq(bad.next_seq.0.saturating_add(1));
    let offset = bad.offset + bad_size;
    let from = WalkFrom { seq, offset, last: Some(seq), read_end: seg.end(), max_payload };
    let mut found = false;
    segment::walk(seg.file.as_ref(), buf, from, |_, _, _| {
        found = true;
        ControlFlow::Break(())
    })?;
    Ok(found)
}

/// Walks a sealed segment `[seg.first, last]`, reporting any damage as an error.
pub(crate) fn check_sealed(
    seg: &Segment,
    buf: &mut Vec<u8>,
    last: Seq,
    max_payload: u64,
    mut visit: impl FnMut(Seq, &[u8]),
) -> Result<u64> {
    let from = WalkFrom {
        seq: seg.first,
        offset: HEADER_LEN as u64,
        last: Some(last),
        read_end: seg.end(),
        max_payload,
    };
    let walk = segment::walk(seg.file.as_ref(), buf, from, |seq, offset, payload| {
        if seg.is_index_point(seq) {
            seg.record(seq, offset);
        }
        visit(seq, payload);
        ControlFlow::Continue(())
    })
    .map_err(|e| Error::io(IoOp::Read, seg.name.clone(), e))?;
    walk_error(&seg.name, &walk)?;
    Ok(walk.offset)
}

/// Turns a walk that stopped before its last seq into the matching corruption error.
pub(crate) fn walk_error(segment: &str, walk: &Walk) -> Result<()> {
    let kind = match walk.end {
        WalkEnd::Limit => return Ok(()),
        WalkEnd::Zero | WalkEnd::Eof => CorruptKind::MissingRecords,
        WalkEnd::Truncated => CorruptKind::FrameTruncated,
        WalkEnd::BadLength => CorruptKind::FrameLength,
        WalkEnd::BadChecksum { .. } => CorruptKind::FrameChecksum,
    };
    Err(Error::corrupt(segment, walk.offset, kind))
}
