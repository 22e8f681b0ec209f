//! Offline checks for operators: `verify` reads every frame, `stats` reads headers and the
//! active tail. Both open files read-only and change nothing.

use std::{path::Path, sync::Arc};

use mempulse_primitives::Seq;

use crate::{
    WalReader,
    codec::{self, HEADER_LEN},
    error::{Error, IoOp, Result},
    reader::Visibility,
    recovery::{self, Tail},
    segment::Segment,
    state::Shared,
    storage::{FsStorage, Storage},
};

/// Damaged bytes at the end of the active segment that the next open will cut off.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    /// File name of the active segment.
    pub segment: String,
    /// Byte offset where the damage starts.
    pub offset: u64,
}

/// Result of [`verify`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Segment files.
    pub segments: u64,
    /// Records checked.
    pub records: u64,
    /// Payload bytes checked.
    pub payload_bytes: u64,
    /// First seq in the log.
    pub first_seq: Seq,
    /// Last seq in the log (`first_seq - 1` when empty).
    pub last_seq: Seq,
    /// A torn tail, if one is present.
    pub torn_tail: Option<TornTail>,
}

/// Result of [`stats`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WalStats {
    /// Segment files.
    pub segments: u64,
    /// Records in the log.
    pub records: u64,
    /// Total size of the segment files (including preallocated space).
    pub file_bytes: u64,
    /// First seq in the log.
    pub first_seq: Seq,
    /// Last seq in the log (`first_seq - 1` when empty).
    pub last_seq: Seq,
}

/// Checks every frame of every segment in `dir`.
///
/// # Errors
/// [`Error::Corrupt`] naming the segment and offset of the first damage (a torn tail is not an
/// error; it is reported in [`VerifyReport::torn_tail`]); [`Error::Io`] when a file cannot be
/// read.
pub fn verify(dir: impl AsRef<Path>) -> Result<VerifyReport> {
    verify_storage(&FsStorage::read_only(dir.as_ref()))
}

/// [`verify`] over any [`Storage`].
///
/// # Errors
/// As [`verify`].
pub fn verify_storage(storage: &dyn Storage) -> Result<VerifyReport> {
    let segments = recovery::open_segments(storage, &recovery::list(storage)?)?;
    let mut buf = Vec::new();
    let (mut records, mut payload_bytes) = (0u64, 0u64);
    for pair in segments.windows(2) {
        let [seg, next] = pair else { break };
        let last = Seq(next.first.0.saturating_sub(1));
        recovery::check_sealed(seg, &mut buf, last, max_payload_of(seg), |_, payload| {
            records += 1;
            payload_bytes += payload.len() as u64;
        })?;
    }
    let Some(active) = segments.last() else {
        return Ok(VerifyReport {
            segments: 0,
            records: 0,
            payload_bytes: 0,
            first_seq: Seq(1),
            last_seq: Seq(0),
            torn_tail: None,
        });
    };
    let tail = active_tail(storage, active, &mut buf)?;
    // Count the active segment's records and bytes with a second, checked pass.
    if tail.next_seq > active.first {
        let last = Seq(tail.next_seq.0 - 1);
        recovery::check_sealed(active, &mut buf, last, max_payload_of(active), |_, payload| {
            records += 1;
            payload_bytes += payload.len() as u64;
        })?;
    }
    let first_seq = segments.first().map_or(active.first, |s| s.first);
    Ok(VerifyReport {
        segments: segments.len() as u64,
        records,
        payload_bytes,
        first_seq,
        last_seq: Seq(tail.next_seq.0 - 1),
        torn_tail: tail.torn.then(|| TornTail { segment: active.name.clone(), offset: tail.end }),
    })
}

/// Opens `dir` for reading only: no lock is taken, nothing is created, truncated or synced, so
/// it is safe on a log another process is writing or on segments copied off a node. A torn tail
/// is treated as the end of the log (the writer's next open would cut it).
///
/// # Errors
/// [`Error::Corrupt`] for a bad header or damage before the active tail; [`Error::Io`] when a
/// file cannot be read.
pub fn open_reader(dir: impl AsRef<Path>) -> Result<WalReader> {
    open_reader_storage(Arc::new(FsStorage::read_only(dir.as_ref())))
}

/// [`open_reader`] over any [`Storage`].
///
/// # Errors
/// As [`open_reader`].
pub fn open_reader_storage(storage: Arc<dyn Storage>) -> Result<WalReader> {
    let segments = recovery::open_segments(storage.as_ref(), &recovery::list(storage.as_ref())?)?;
    let mut buf = Vec::new();
    let (first, last, max_payload) = match segments.last() {
        Some(active) => {
            let tail = active_tail(storage.as_ref(), active, &mut buf)?;
            active.set_end(tail.end);
            let first = segments.first().map_or(active.first, |s| s.first);
            // Frames may be as large as the largest segment allows, sealed ones included.
            let max_payload = segments.iter().map(|s| max_payload_of(s)).max().unwrap_or(0);
            (first, Seq(tail.next_seq.0 - 1), max_payload)
        }
        None => (Seq(1), Seq(0), 0),
    };
    let shared = Arc::new(Shared::new(storage, max_payload, first, last));
    for seg in segments {
        shared.insert_segment(seg);
    }
    Ok(WalReader::new(shared, Visibility::Published))
}

fn max_payload_of(seg: &Segment) -> u64 {
    codec::max_payload(seg.end().max(HEADER_LEN as u64))
}

fn active_tail(storage: &dyn Storage, active: &Arc<Segment>, buf: &mut Vec<u8>) -> Result<Tail> {
    recovery::scan_tail(storage, active, buf, max_payload_of(active))
}

/// Counts segments and records in `dir` from the segment headers and the active tail, without
/// reading sealed segments.
///
/// # Errors
/// [`Error::Corrupt`] for a bad header or damage before the active tail; [`Error::Io`] when a
/// file cannot be read.
pub fn stats(dir: impl AsRef<Path>) -> Result<WalStats> {
    stats_storage(&FsStorage::read_only(dir.as_ref()))
}

/// [`stats`] over any [`Storage`].
///
/// # Errors
/// As [`stats`].
pub fn stats_storage(storage: &dyn Storage) -> Result<WalStats> {
    let segments = recovery::open_segments(storage, &recovery::list(storage)?)?;
    let mut file_bytes = 0u64;
    for seg in &segments {
        file_bytes +=
            seg.file.size().map_err(|e| Error::io(IoOp::Read, storage.path_of(&seg.name), e))?;
    }
    let (first_seq, last_seq) = match (segments.first(), segments.last()) {
        (Some(first), Some(active)) => {
            let tail = active_tail(storage, active, &mut Vec::new())?;
            (first.first, Seq(tail.next_seq.0 - 1))
        }
        _ => (Seq(1), Seq(0)),
    };
    Ok(WalStats {
        segments: segments.len() as u64,
        records: (last_seq.0 + 1).saturating_sub(first_seq.0),
        file_bytes,
        first_seq,
        last_seq,
    })
}
