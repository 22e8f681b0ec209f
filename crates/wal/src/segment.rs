//! Segment files: names, the sparse seek index, and the frame walker shared by recovery, scans
//! and verification.

use std::{
    io,
    ops::ControlFlow,
    sync::{
        Arc, RwLock,
        atomic::{AtomicU64, Ordering},
    },
};

use mempulse_primitives::Seq;

use crate::{
    codec::{self, HEADER_LEN, Peeked},
    config::{INDEX_INTERVAL_RECORDS, READ_CHUNK_BYTES},
    storage::{StorageFile, read_full_at},
};

const SEGMENT_SUFFIX: &str = ".seg";
const RECYCLE_SUFFIX: &str = ".recycle";
const SPARE_SUFFIX: &str = ".spare";
const TMP_SUFFIX: &str = ".tmp";

/// File name of the segment whose first record is `first`: zero-padded so names sort by seq.
pub(crate) fn segment_name(first: Seq) -> String {
    format!("{:020}{SEGMENT_SUFFIX}", first.0)
}

/// Name a segment gets while it is being created, before the rename that publishes it.
pub(crate) fn tmp_name(first: Seq) -> String {
    format!("{:020}{SEGMENT_SUFFIX}{TMP_SUFFIX}", first.0)
}

/// Name a purged segment is parked under for reuse.
pub(crate) fn recycle_name(old_first: Seq) -> String {
    format!("{:020}{RECYCLE_SUFFIX}", old_first.0)
}

/// Name of a spare file prepared ahead of need.
pub(crate) fn spare_name(id: u64) -> String {
    format!("{id:020}{SPARE_SUFFIX}")
}

/// Name of a spare file while it is being prepared.
pub(crate) fn spare_tmp_name(id: u64) -> String {
    format!("{id:020}{SPARE_SUFFIX}{TMP_SUFFIX}")
}

/// What a directory entry is.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FileKind {
    Segment(Seq),
    Recycle,
    Spare(u64),
    Tmp,
    Other,
}

fn parse_seq(digits: &str) -> Option<Seq> {
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok().map(Seq))
        .flatten()
}

/// Classifies a file name.
pub(crate) fn classify(name: &str) -> FileKind {
    if name.ends_with(TMP_SUFFIX) {
        return FileKind::Tmp;
    }
    if let Some(seq) = name.strip_suffix(SEGMENT_SUFFIX).and_then(parse_seq) {
        return FileKind::Segment(seq);
    }
    if name.strip_suffix(RECYCLE_SUFFIX).and_then(parse_seq).is_some() {
        return FileKind::Recycle;
    }
    if let Some(id) = name.strip_suffix(SPARE_SUFFIX).and_then(parse_seq) {
        return FileKind::Spare(id.0);
    }
    FileKind::Other
}

/// One segment file as the log sees it.
#[derive(Debug)]
pub(crate) struct Segment {
    pub(crate) first: Seq,
    pub(crate) name: String,
    pub(crate) file: Arc<dyn StorageFile>,
    /// Byte offset after the last frame known to be written (bounds reads).
    end: AtomicU64,
    /// `offsets[k]` is the byte offset of the frame with seq `first + k * INTERVAL`; it covers a
    /// prefix of the segment and grows as the writer appends or as scans pass new ground.
    index: RwLock<Vec<u64>>,
}

impl Segment {
    pub(crate) fn new(first: Seq, name: String, file: Arc<dyn StorageFile>, end: u64) -> Self {
        Self {
            first,
            name,
            file,
            end: AtomicU64::new(end),
            index: RwLock::new(vec![HEADER_LEN as u64]),
        }
    }

    pub(crate) fn end(&self) -> u64 {
        self.end.load(Ordering::Acquire)
    }

    pub(crate) fn set_end(&self, end: u64) {
        self.end.store(end, Ordering::Release);
    }

    /// The closest indexed position at or before `seq`: (seq, offset).
    pub(crate) fn seek(&self, seq: Seq) -> (Seq, u64) {
        let index = self.index.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let wanted = seq.0.saturating_sub(self.first.0) / INDEX_INTERVAL_RECORDS;
        let k = usize::try_from(wanted).unwrap_or(usize::MAX).min(index.len().saturating_sub(1));
        let offset = index.get(k).copied().unwrap_or(HEADER_LEN as u64);
        (Seq(self.first.0 + k as u64 * INDEX_INTERVAL_RECORDS), offset)
    }

    /// Whether a frame at `seq` is the next index point (cheap check before `record`).
    #[inline]
    pub(crate) fn is_index_point(&self, seq: Seq) -> bool {
        (seq.0 - self.first.0).is_multiple_of(INDEX_INTERVAL_RECORDS)
    }

    /// Records that the frame with `seq` (an index point) starts at `offset`.
    pub(crate) fn record(&self, seq: Seq, offset: u64) {
        let k = (seq.0 - self.first.0) / INDEX_INTERVAL_RECORDS;
        // Scans pass known points far more often than new ones: check under the read lock.
        if self.index.read().unwrap_or_else(std::sync::PoisonError::into_inner).len() as u64 > k {
            return;
        }
        let mut index = self.index.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if index.len() as u64 == k {
            index.push(offset);
        }
    }

    /// Forgets index points above `last` (after a truncation).
    pub(crate) fn forget_after(&self, last: Seq) {
        let keep = last.0.saturating_sub(self.first.0) / INDEX_INTERVAL_RECORDS + 1;
        let mut index = self.index.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        index.truncate(usize::try_from(keep).unwrap_or(usize::MAX).max(1));
    }
}

/// Why a walk stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WalkEnd {
    /// Reached the requested last seq, or the visitor stopped.
    Limit,
    /// A zero length field (end of written data).
    Zero,
    /// The file ended exactly at a frame boundary.
    Eof,
    /// The file ended inside a frame that needs `need` bytes.
    Truncated,
    /// A length field too large for the segment.
    BadLength,
    /// A complete frame with a checksum mismatch, `size` bytes long per its length field.
    BadChecksum { size: u64 },
}

/// Where a walk stopped: the seq expected next and the byte offset of its frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Walk {
    pub(crate) next_seq: Seq,
    pub(crate) offset: u64,
    pub(crate) end: WalkEnd,
}

/// Parameters of one walk over a segment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WalkFrom {
    pub(crate) seq: Seq,
    pub(crate) offset: u64,
    /// Stop after this seq (inclusive).
    pub(crate) last: Option<Seq>,
    /// Never read at or past this offset.
    pub(crate) read_end: u64,
    pub(crate) max_payload: u64,
}

/// Frames read but not yet checked: checksums are verified three at a time.
struct Pending {
    /// (position in the buffer, frame size, stored checksum)
    frames: [(usize, usize, u32); 3],
    len: usize,
}

/// Checks the pending frames (the first at `first`) and visits the valid ones in order.
/// Returns where to stop when a checksum fails or the visitor breaks.
fn check_pending(
    buf: &[u8],
    buf_off: u64,
    pending: &mut Pending,
    first: Seq,
    visit: &mut impl FnMut(Seq, u64, &[u8]) -> ControlFlow<()>,
) -> Option<Walk> {
    let frames = pending.frames;
    let count = std::mem::take(&mut pending.len);
    let payload = |k: usize| {
        let (pos, size, _) = frames[k];
        buf.get(pos + codec::FRAME_HEADER_LEN..pos + size).unwrap_or_default()
    };
    let seq_of = |k: usize| Seq(first.0 + k as u64);
    let computed = if count == 3 {
        crate::crc::frame_crc3([
            (payload(0), seq_of(0)),
            (payload(1), seq_of(1)),
            (payload(2), seq_of(2)),
        ])
    } else {
        let mut out = [0; 3];
        for (k, crc) in out.iter_mut().enumerate().take(count) {
            *crc = codec::frame_crc(seq_of(k), payload(k));
        }
        out
    };
    for k in 0..count {
        let (pos, size, stored) = frames[k];
        let offset = buf_off + pos as u64;
        if computed[k] != stored {
            let end = WalkEnd::BadChecksum { size: size as u64 };
            return Some(Walk { next_seq: seq_of(k), offset, end });
        }
        if visit(seq_of(k), offset, payload(k)).is_break() {
            let offset = offset + size as u64;
            return Some(Walk { next_seq: seq_of(k + 1), offset, end: WalkEnd::Limit });
        }
    }
    None
}

/// Reads frames from `from` in large chunks, calling `visit(seq, offset, payload)` for each
/// valid one, parsing in place in `buf` (kept by the caller for reuse).
pub(crate) fn walk(
    file: &dyn StorageFile,
    buf: &mut Vec<u8>,
    from: WalkFrom,
    mut visit: impl FnMut(Seq, u64, &[u8]) -> ControlFlow<()>,
) -> io::Result<Walk> {
    // Big reads, but no bigger than the readable range (small segments, short tails).
    let range = usize::try_from(from.read_end.saturating_sub(from.offset)).unwrap_or(usize::MAX);
    let chunk = range.clamp(codec::FRAME_HEADER_LEN, READ_CHUNK_BYTES);
    if buf.len() < chunk {
        buf.resize(chunk, 0);
    }
    let (mut seq, mut buf_off, mut pos, mut filled) = (from.seq, from.offset, 0usize, 0usize);
    let mut eof = false;
    let mut pending = Pending { frames: [(0, 0, 0); 3], len: 0 };
    loop {
        let peeked = if from.last.is_some_and(|last| seq > last) {
            None
        } else {
            Some(codec::peek_frame(buf.get(pos..filled).unwrap_or_default(), from.max_payload))
        };
        if let Some(Peeked::Frame { size, crc }) = peeked {
            pending.frames[pending.len] = (pos, size, crc);
            pending.len += 1;
            pos += size;
            seq = Seq(seq.0 + 1);
            if pending.len < 3 {
                continue;
            }
        }
        // Check what is pending before stopping or moving the buffer.
        if pending.len > 0 {
            let first = Seq(seq.0 - pending.len as u64);
            if let Some(stop) = check_pending(buf, buf_off, &mut pending, first, &mut visit) {
                return Ok(stop);
            }
        }
        let stop = |end| Walk { next_seq: seq, offset: buf_off + pos as u64, end };
        match peeked {
            Some(Peeked::Frame { .. }) => {}
            None => return Ok(stop(WalkEnd::Limit)),
            Some(Peeked::End) => return Ok(stop(WalkEnd::Zero)),
            Some(Peeked::BadLength) => return Ok(stop(WalkEnd::BadLength)),
            Some(Peeked::Incomplete { need }) => {
                if eof {
                    let end = if pos == filled { WalkEnd::Eof } else { WalkEnd::Truncated };
                    return Ok(stop(end));
                }
                if buf_off + (pos + need) as u64 > from.read_end {
                    // The frame claims more bytes than the readable range holds.
                    return Ok(stop(WalkEnd::Truncated));
                }
                let (read, want) =
                    refill(file, buf, &mut buf_off, &mut pos, &mut filled, need, from.read_end)?;
                // A short read means the file (or the readable range) ended.
                eof = want == 0 || read < want;
            }
        }
    }
}

/// Moves the unparsed bytes to the front of `buf` and reads more after them; returns
/// (bytes read, bytes asked for).
fn refill(
    file: &dyn StorageFile,
    buf: &mut Vec<u8>,
    buf_off: &mut u64,
    pos: &mut usize,
    filled: &mut usize,
    need: usize,
    read_end: u64,
) -> io::Result<(usize, usize)> {
    buf.copy_within(*pos..*filled, 0);
    *buf_off += *pos as u64;
    *filled -= *pos;
    *pos = 0;
    if buf.len() < need {
        buf.resize(need, 0);
    }
    let room = read_end.saturating_sub(*buf_off + *filled as u64);
    let want = (buf.len() - *filled).min(usize::try_from(room).unwrap_or(usize::MAX));
    let target = buf.get_mut(*filled..*filled + want).unwrap_or_default();
    let read = read_full_at(file, target, *buf_off + *filled as u64)?;
    *filled += read;
    Ok((read, want))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_and_classify() {
        let a = segment_name(Seq(9));
        let b = segment_name(Seq(10));
        assert!(a < b);
        assert_eq!(classify(&a), FileKind::Segment(Seq(9)));
        assert_eq!(classify(&recycle_name(Seq(3))), FileKind::Recycle);
        assert_eq!(classify(&tmp_name(Seq(3))), FileKind::Tmp);
        assert_eq!(classify(&spare_name(4)), FileKind::Spare(4));
        assert_eq!(classify(&spare_tmp_name(4)), FileKind::Tmp);
        assert_eq!(classify("x.seg"), FileKind::Other);
        assert_eq!(classify("0000000000000000000a.seg"), FileKind::Other);
    }
}
