//! Maintenance of the log: conflict truncation and purging whole segments.

use std::ops::ControlFlow;

use mempulse_primitives::Seq;
use tracing::info;

use crate::{
    codec::HEADER_LEN,
    config::{Preallocate, RECYCLE_POOL_MAX},
    error::{Error, IoOp, Result},
    recovery,
    segment::{self, Segment, WalkFrom},
    wal::Wal,
};

impl Wal {
    /// Removes every record after `seq`; the next append gets `seq + 1`. Used for Raft log
    /// conflict truncation. A no-op when `seq >= last_seq()`. The cut is durable when this
    /// returns: later segments are deleted and the rest of the cut segment is re-preallocated
    /// (re-zeroed under [`Preallocate::ZeroFill`]), so no stale frame can reappear.
    ///
    /// # Errors
    /// [`Error::TruncateBeforeFirst`] when `seq + 1 < first_seq()`; [`Error::Io`] or
    /// [`Error::Corrupt`] when the log cannot be cut (the log is then poisoned).
    pub fn truncate_after(&mut self, seq: Seq) -> Result<()> {
        self.check_poisoned()?;
        if seq >= self.last_seq() {
            return Ok(());
        }
        let first = self.first_seq();
        if seq.0.saturating_add(1) < first.0 {
            return Err(Error::TruncateBeforeFirst { seq, first });
        }
        let result = self.truncate_inner(seq);
        if result.is_err() {
            self.shared.poison();
        }
        result
    }

    fn truncate_inner(&mut self, seq: Seq) -> Result<()> {
        let target = Seq(seq.0 + 1);
        // Newest first, so a crash part way leaves a log that is a prefix of the old one.
        for seg in self.shared.segment_list().into_iter().rev() {
            if seg.first <= target {
                break;
            }
            self.shared.remove_segment(seg.first);
            self.storage().remove(&seg.name).map_err(self.io_err(IoOp::Remove, &seg.name))?;
        }
        let (seg, _) = self.shared.locate(target).ok_or(Error::Poisoned)?;
        let offset = self.offset_of(&seg, target)?;
        self.shared.cut_to(seq);
        self.active = seg;
        self.cut_active(offset)?;
        self.storage().sync_dir().map_err(self.io_err(IoOp::SyncDir, ""))?;
        self.active.forget_after(seq);
        self.active.set_end(offset);
        self.write_offset = offset;
        self.next_seq = target;
        self.dirty = false;
        info!(after = %seq, segment = %self.active.name, "wal truncated");
        Ok(())
    }

    /// Byte offset of the frame `target` in `seg` (which must hold every seq before it).
    fn offset_of(&mut self, seg: &Segment, target: Seq) -> Result<u64> {
        if target == seg.first {
            return Ok(HEADER_LEN as u64);
        }
        let (seq, offset) = seg.seek(target);
        let from = WalkFrom {
            seq,
            offset,
            last: Some(Seq(target.0 - 1)),
            read_end: seg.end(),
            max_payload: self.shared.max_payload,
        };
        let mut buf = std::mem::take(&mut self.buf);
        let walk =
            segment::walk(seg.file.as_ref(), &mut buf, from, |_, _, _| ControlFlow::Continue(()));
        self.buf = buf;
        let walk = walk.map_err(self.io_err(IoOp::Read, &seg.name))?;
        recovery::walk_error(&seg.name, &walk)?;
        Ok(walk.offset)
    }

    /// Removes every whole segment whose records all lie below `seq` (never the active one).
    /// Under [`Preallocate::Recycle`] up to a few are kept for reuse.
    ///
    /// # Errors
    /// [`Error::Io`] when a file cannot be removed or renamed (the log is then poisoned).
    pub fn purge_before(&mut self, seq: Seq) -> Result<()> {
        self.check_poisoned()?;
        let result = self.purge_inner(seq);
        if result.is_err() {
            self.shared.poison();
        }
        result
    }

    fn purge_inner(&mut self, seq: Seq) -> Result<()> {
        let segments = self.shared.segment_list();
        let mut purged = 0usize;
        for pair in segments.windows(2) {
            let [seg, next] = pair else { break };
            if next.first > seq {
                break;
            }
            // Readers are redirected first; the file goes after.
            self.shared.set_first(next.first);
            self.shared.remove_segment(seg.first);
            let recycle = self.config.effective_preallocate() == Preallocate::Recycle
                && self.recycle.len() < RECYCLE_POOL_MAX;
            if recycle {
                let to = segment::recycle_name(seg.first);
                self.storage()
                    .rename(&seg.name, &to)
                    .map_err(self.io_err(IoOp::Rename, &seg.name))?;
                self.recycle.push(to);
            } else {
                self.storage().remove(&seg.name).map_err(self.io_err(IoOp::Remove, &seg.name))?;
            }
            purged += 1;
        }
        if purged > 0 {
            self.storage().sync_dir().map_err(self.io_err(IoOp::SyncDir, ""))?;
            info!(before = %seq, purged, first = %self.first_seq(), "wal purged");
        }
        Ok(())
    }
}
