//! Readers: scans that run concurrently with the writer, reading large chunks and parsing
//! frames in place.

use std::{ops::ControlFlow, sync::Arc};

use mempulse_primitives::Seq;

use crate::{
    error::{Error, Result},
    record::Record,
    recovery,
    segment::{self, WalkFrom},
    state::Shared,
};

/// Which records a reader may see.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Visibility {
    /// Everything written (the writer's own view).
    Written,
    /// Only what the sequencer has acknowledged (durable under the sync policy).
    Published,
}

/// A cloneable handle that scans the log while the writer appends.
///
/// Obtained from [`Wal::reader`](crate::Wal::reader) it sees every written record; obtained
/// from [`SequencerHandle::reader`](crate::SequencerHandle::reader) it sees only acknowledged
/// (durable) ones. A scan racing a `truncate_after` may return records that are being cut.
#[derive(Clone, Debug)]
pub struct WalReader {
    shared: Arc<Shared>,
    visibility: Visibility,
}

impl WalReader {
    pub(crate) const fn new(shared: Arc<Shared>, visibility: Visibility) -> Self {
        Self { shared, visibility }
    }

    /// First seq still in the log.
    #[must_use]
    pub fn first_seq(&self) -> Seq {
        self.shared.first()
    }

    /// Last seq this reader may see now.
    #[must_use]
    pub fn last_seq(&self) -> Seq {
        match self.visibility {
            Visibility::Written => self.shared.written(),
            Visibility::Published => self.shared.published(),
        }
    }

    /// Last seq the writer has written, whether or not this reader may see it yet: a reader of
    /// published records under `Interval` trails it by up to one interval. A consumer that must
    /// know it has seen every record written before some moment (every fact of an applied
    /// Raft index) compares its position with this, read after that moment.
    #[must_use]
    pub fn written_seq(&self) -> Seq {
        self.shared.written()
    }

    /// Calls `visit(seq, payload)` for up to `limit` records from `from` (inclusive; `Seq(0)`
    /// means the first record still in the log) in order, until `visit` breaks. Returns how many
    /// were visited.
    /// The payload slice borrows the read buffer: no allocation per record.
    ///
    /// # Errors
    /// [`Error::Purged`] when `from` lies before the first record; [`Error::Corrupt`] when a
    /// frame fails its checksum; [`Error::Io`] when a read fails.
    pub fn scan_with<F>(&self, from: Seq, limit: usize, mut visit: F) -> Result<usize>
    where
        F: FnMut(Seq, &[u8]) -> ControlFlow<()>,
    {
        let first = self.shared.first();
        let from = if from == Seq(0) { first } else { from };
        if from < first {
            return Err(Error::Purged { requested: from, first });
        }
        let visible = self.last_seq();
        if from > visible || limit == 0 {
            return Ok(0);
        }
        let last = Seq(visible.0.min(from.0.saturating_add(limit as u64 - 1)));
        let mut buf = self.shared.take_buffer();
        let result = self.scan_range(&mut buf, from, last, &mut visit);
        self.shared.return_buffer(buf);
        result
    }

    fn scan_range<F>(&self, buf: &mut Vec<u8>, from: Seq, last: Seq, visit: &mut F) -> Result<usize>
    where
        F: FnMut(Seq, &[u8]) -> ControlFlow<()>,
    {
        let (mut seq, mut count) = (from, 0usize);
        while seq <= last {
            let Some((seg, next)) = self.shared.locate(seq) else {
                return Err(Error::Purged { requested: seq, first: self.shared.first() });
            };
            let stop_at = next.map_or(last, |n| Seq(last.0.min(n.0 - 1)));
            let (start, offset) = seg.seek(seq);
            let from = WalkFrom {
                seq: start,
                offset,
                last: Some(stop_at),
                read_end: seg.end(),
                max_payload: self.shared.max_payload,
            };
            let mut stopped = false;
            let walk = segment::walk(seg.file.as_ref(), buf, from, |s, off, payload| {
                if seg.is_index_point(s) {
                    seg.record(s, off);
                }
                if s < seq {
                    return ControlFlow::Continue(());
                }
                count += 1;
                let flow = visit(s, payload);
                stopped = flow.is_break();
                flow
            });
            let walk = walk.map_err(|e| {
                Error::io(crate::error::IoOp::Read, self.shared.storage.path_of(&seg.name), e)
            })?;
            if !stopped && let Err(e) = recovery::walk_error(&seg.name, &walk) {
                // A purge may have recycled the file under us.
                let first = self.shared.first();
                return Err(if seq < first { Error::Purged { requested: seq, first } } else { e });
            }
            if stopped {
                break;
            }
            seq = walk.next_seq;
        }
        Ok(count)
    }

    /// Reads up to `limit` records from `from` (inclusive) into owned [`Record`]s.
    ///
    /// # Errors
    /// As [`WalReader::scan_with`].
    pub fn scan(&self, from: Seq, limit: usize) -> Result<Vec<Record>> {
        let mut out = Vec::new();
        self.scan_with(from, limit, |seq, payload| {
            out.push(Record { seq, payload: payload.to_vec() });
            ControlFlow::Continue(())
        })?;
        Ok(out)
    }
}
