//! Lane queues as reserved shares of the decode pool.
//!
//! Each lane owns `capacity` slots; a transaction holds one from `submit` until the decode stage
//! hands it on (decoded or failed). The pool's own capacity is the sum of the lanes', so a lane
//! that has a slot always finds room in the pool, and a flooded lane can never take another
//! lane's room. Arrival order across lanes is the pool's arrival order.

use std::sync::atomic::{AtomicUsize, Ordering};

use mempulse_primitives::Lane;

use crate::{IngestConfig, QueueDepth};

#[derive(Debug)]
struct Slots {
    capacity: usize,
    current: AtomicUsize,
    peak: AtomicUsize,
}

impl Slots {
    fn depth(&self) -> QueueDepth {
        let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        QueueDepth {
            current: clamp(self.current.load(Ordering::Acquire)),
            peak: clamp(self.peak.load(Ordering::Acquire)),
        }
    }
}

#[derive(Debug)]
pub(crate) struct Lanes {
    /// Indexed by lane code minus one (`Lane::ALL` order).
    slots: Vec<Slots>,
}

impl Lanes {
    pub(crate) fn new(config: &IngestConfig) -> Self {
        let slots = Lane::ALL
            .iter()
            .map(|&lane| Slots {
                capacity: config.queue_capacity(lane),
                current: AtomicUsize::new(0),
                peak: AtomicUsize::new(0),
            })
            .collect();
        Self { slots }
    }

    fn slots(&self, lane: Lane) -> Option<&Slots> {
        self.slots.get(usize::from(lane.code()).checked_sub(1)?)
    }

    /// The sum of the lanes' capacities: the decode pool's capacity.
    pub(crate) fn total_capacity(&self) -> usize {
        self.slots.iter().map(|s| s.capacity).fold(0, usize::saturating_add)
    }

    pub(crate) fn capacity(&self, lane: Lane) -> usize {
        self.slots(lane).map_or(0, |s| s.capacity)
    }

    /// Takes a slot; when the lane is full, its depth instead. Returns the new depth.
    pub(crate) fn reserve(&self, lane: Lane) -> Result<usize, QueueDepth> {
        let Some(slots) = self.slots(lane) else {
            return Err(QueueDepth::default());
        };
        let mut current = slots.current.load(Ordering::Acquire);
        loop {
            if current >= slots.capacity {
                return Err(slots.depth());
            }
            match slots.current.compare_exchange_weak(
                current,
                current + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    slots.peak.fetch_max(current + 1, Ordering::AcqRel);
                    return Ok(current + 1);
                }
                Err(seen) => current = seen,
            }
        }
    }

    /// Gives a slot back. Returns the new depth.
    pub(crate) fn release(&self, lane: Lane) -> usize {
        self.slots(lane).map_or(0, |slots| {
            let before = slots
                .current
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| Some(n.saturating_sub(1)))
                .unwrap_or(0);
            before.saturating_sub(1)
        })
    }

    pub(crate) fn depth(&self, lane: Lane) -> QueueDepth {
        self.slots(lane).map_or_else(QueueDepth::default, Slots::depth)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lane_fills_alone_and_reports_its_depth() {
        let config = IngestConfig {
            rpc_queue_capacity: 2,
            rest_queue_capacity: 1,
            stream_queue_capacity: 3,
            ..IngestConfig::default()
        };
        let lanes = Lanes::new(&config);
        assert_eq!(lanes.total_capacity(), 6);
        assert_eq!(lanes.reserve(Lane::Rpc), Ok(1));
        assert_eq!(lanes.reserve(Lane::Rpc), Ok(2));
        assert_eq!(lanes.reserve(Lane::Rpc), Err(QueueDepth { current: 2, peak: 2 }));
        assert_eq!(lanes.reserve(Lane::Rest), Ok(1), "another lane keeps its room");
        assert_eq!(lanes.release(Lane::Rpc), 1);
        assert_eq!(lanes.depth(Lane::Rpc), QueueDepth { current: 1, peak: 2 });
        assert_eq!(lanes.release(Lane::Rpc), 0);
        assert_eq!(lanes.release(Lane::Rpc), 0, "never below zero");
        assert_eq!(lanes.capacity(Lane::Stream), 3);
    }
}
