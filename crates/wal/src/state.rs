//! State shared between the single writer and any number of readers.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex, PoisonError, RwLock,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use mempulse_primitives::Seq;

use crate::{segment::Segment, storage::Storage};

/// Read buffers kept for reuse by scans (more concurrent scans allocate their own).
const SPARE_BUFFERS_MAX: usize = 4;

/// What the writer publishes to readers.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) segments: RwLock<BTreeMap<Seq, Arc<Segment>>>,
    /// Last seq written (readable from the page cache).
    written: AtomicU64,
    /// Last seq acknowledged under the sync policy (what sequencer readers may see).
    published: AtomicU64,
    /// First seq still in the log.
    first: AtomicU64,
    poisoned: AtomicBool,
    pub(crate) max_payload: u64,
    spare_buffers: Mutex<Vec<Vec<u8>>>,
}

impl Shared {
    pub(crate) fn new(storage: Arc<dyn Storage>, max_payload: u64, first: Seq, last: Seq) -> Self {
        Self {
            storage,
            segments: RwLock::new(BTreeMap::new()),
            written: AtomicU64::new(last.0),
            published: AtomicU64::new(last.0),
            first: AtomicU64::new(first.0),
            poisoned: AtomicBool::new(false),
            max_payload,
            spare_buffers: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn written(&self) -> Seq {
        Seq(self.written.load(Ordering::Acquire))
    }

    pub(crate) fn set_written(&self, seq: Seq) {
        self.written.store(seq.0, Ordering::Release);
    }

    pub(crate) fn published(&self) -> Seq {
        Seq(self.published.load(Ordering::Acquire))
    }

    /// Raises the published seq (never past what is written).
    pub(crate) fn publish(&self, seq: Seq) {
        self.published.fetch_max(seq.0, Ordering::AcqRel);
    }

    /// Lowers both marks after a truncation.
    pub(crate) fn cut_to(&self, seq: Seq) {
        self.written.store(seq.0, Ordering::Release);
        self.published.fetch_min(seq.0, Ordering::AcqRel);
    }

    pub(crate) fn first(&self) -> Seq {
        Seq(self.first.load(Ordering::Acquire))
    }

    pub(crate) fn set_first(&self, seq: Seq) {
        self.first.store(seq.0, Ordering::Release);
    }

    pub(crate) fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }

    pub(crate) fn poison(&self) {
        self.poisoned.store(true, Ordering::Release);
    }

    pub(crate) fn insert_segment(&self, segment: Arc<Segment>) {
        let mut map = self.segments.write().unwrap_or_else(PoisonError::into_inner);
        map.insert(segment.first, segment);
    }

    pub(crate) fn remove_segment(&self, first: Seq) -> Option<Arc<Segment>> {
        self.segments.write().unwrap_or_else(PoisonError::into_inner).remove(&first)
    }

    /// The segment holding `seq` and the first seq of the segment after it, if any.
    pub(crate) fn locate(&self, seq: Seq) -> Option<(Arc<Segment>, Option<Seq>)> {
        let map = self.segments.read().unwrap_or_else(PoisonError::into_inner);
        let (_, segment) = map.range(..=seq).next_back()?;
        let next = map.range(Seq(seq.0.saturating_add(1))..).next().map(|(first, _)| *first);
        Some((Arc::clone(segment), next))
    }

    /// All segments in seq order.
    pub(crate) fn segment_list(&self) -> Vec<Arc<Segment>> {
        let map = self.segments.read().unwrap_or_else(PoisonError::into_inner);
        map.values().cloned().collect()
    }

    pub(crate) fn take_buffer(&self) -> Vec<u8> {
        let mut spare = self.spare_buffers.lock().unwrap_or_else(PoisonError::into_inner);
        spare.pop().unwrap_or_default()
    }

    pub(crate) fn return_buffer(&self, buf: Vec<u8>) {
        let mut spare = self.spare_buffers.lock().unwrap_or_else(PoisonError::into_inner);
        if spare.len() < SPARE_BUFFERS_MAX {
            spare.push(buf);
        }
    }
}
