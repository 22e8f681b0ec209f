//! Filling the event log's gap when a member installs a snapshot.
//!
//! A member that installs a leader's snapshot at index *S* never applies the entries the
//! snapshot covers, so it never derives their facts: its event log would jump from the last
//! index it applied itself to *S* + 1, and its offline replay, its API and its sinks would lack
//! that stretch of history for good. Before the snapshot is installed, the member asks a peer
//! (the leader first, which built the snapshot from the same entries) for exactly those facts
//! ([`crate::AdminRequest::Facts`]) and appends them to its own log, in chunks, then syncs:
//!
//! ```text
//!  own log:  … facts of ≤ A │                      │ facts of S+1 … (applied after install)
//!  leader:   … facts of ≤ A │ facts of A+1 ..= S   │
//!                           └── fetched, appended ─┘
//! ```
//! The facts are the leader's records, unchanged (observation time and source included):
//! replicated facts are the same on every replica by construction. The fill is best effort:
//! when no peer can serve them (their logs were purged, or they are unreachable), the
//! snapshot is installed anyway, the gap stays and is logged and counted
//! (`mempulse_cluster_snapshot_backfill_failures_total`), as before this existed. So does a
//! fill still running after [`crate::BACKFILL_DEADLINE`] (a learner joining a long history
//! whose leader still holds it all): the leader waits for the install only so long.

use futures_util::future::BoxFuture;
use mempulse_primitives::{Event, NodeId, RaftIndex};

use super::{FactSink, SinkError, WrittenThrough};
use crate::admin::FactsChunk;

/// Counter of replicated facts appended from a peer while installing a snapshot.
pub const BACKFILL_FACTS_TOTAL: &str = "mempulse_cluster_snapshot_backfill_facts_total";
/// Counter of snapshot installs that left a gap in the event log (no peer served the facts).
pub const BACKFILL_FAILURES_TOTAL: &str = "mempulse_cluster_snapshot_backfill_failures_total";

/// Where a member fetches the replicated facts a snapshot covers: a peer's event log.
pub trait FactSource: Send + Sync + 'static {
    /// The next chunk of replicated facts of `after ..= through`, skipping the first `skip` of
    /// `after` ([`crate::AdminRequest::Facts`]); an empty chunk when none is left.
    ///
    /// # Errors
    /// Why no peer served them (a description for the log).
    fn facts(
        &self,
        after: RaftIndex,
        skip: u32,
        through: RaftIndex,
    ) -> BoxFuture<'static, Result<FactsChunk, String>>;
}

/// The members a fill asks, in order: the leader first (it built the snapshot from the same
/// entries), then the other `members` in the order given (id order); never `me`.
pub(crate) fn ask_order(
    me: NodeId,
    leader: Option<NodeId>,
    members: impl IntoIterator<Item = NodeId>,
) -> Vec<NodeId> {
    let leader = leader.filter(|l| *l != me);
    let others = members.into_iter().filter(|n| *n != me && Some(*n) != leader);
    leader.into_iter().chain(others).collect()
}

/// Where the facts a member holds end: every fact of the indexes before `after` and the first
/// `skip` of `after`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Position {
    pub(crate) after: RaftIndex,
    pub(crate) skip: u32,
}

impl Position {
    /// The position of a member that applied through `applied` and whose log held `written`
    /// when it started: the facts of every entry it applied are in its log, and so are those
    /// its log held beyond them (entries it had applied before a restart, not re-applied yet).
    pub(crate) fn of(applied: Option<u64>, written: Option<WrittenThrough>) -> Self {
        let applied = applied.unwrap_or(0);
        match written {
            Some(w) if w.index.0 > applied => {
                Self { after: w.index, skip: u32::try_from(w.facts).unwrap_or(u32::MAX) }
            }
            _ => Self { after: RaftIndex(applied.saturating_add(1)), skip: 0 },
        }
    }

    /// The position after `events` (replicated facts in log order, checked by `accept`).
    fn advance(self, events: &[Event]) -> Self {
        let mut next = self;
        for index in events.iter().filter_map(|e| e.origin.raft_index()) {
            if index == next.after {
                next.skip = next.skip.saturating_add(1);
            } else {
                next = Self { after: index, skip: 1 };
            }
        }
        next
    }
}

/// Why a fetched chunk was not appended.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum BadChunk {
    /// A fact without a Raft index.
    #[error("the peer sent a local fact")]
    Local,
    /// A fact outside the range asked for, or before the one it follows.
    #[error("the peer sent a fact of index {found} outside {low}..={through}")]
    OutOfRange { found: u64, low: u64, through: u64 },
}

/// Checks that `events` are replicated facts of `from.after ..= through` in index order.
fn accept(from: Position, through: RaftIndex, events: &[Event]) -> Result<(), BadChunk> {
    let mut low = from.after;
    for event in events {
        let index = event.origin.raft_index().ok_or(BadChunk::Local)?;
        if index < low || index > through {
            return Err(BadChunk::OutOfRange { found: index.0, low: low.0, through: through.0 });
        }
        low = index;
    }
    Ok(())
}

/// What a fill did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Filled {
    /// Facts appended.
    pub(crate) facts: u64,
    /// Whether the source answered through to the end (else the gap stays after `facts`).
    pub(crate) complete: bool,
}

/// Fetches the facts from `from` through `through` from `source` and appends them to `sink`,
/// chunk by chunk, then syncs them. A source failure, a bad chunk or `expired()` before a chunk
/// stops the fill (what was appended stays: a correct prefix); only a sink failure is an error.
pub(crate) async fn fill(
    source: &dyn FactSource,
    sink: &dyn FactSink,
    from: Position,
    through: RaftIndex,
    expired: &(dyn Fn() -> bool + Send + Sync),
) -> Result<Filled, SinkError> {
    let mut at = from;
    let mut filled = Filled { facts: 0, complete: false };
    while at.after <= through {
        if expired() {
            tracing::warn!(
                after = at.after.0,
                through = through.0,
                "filling the facts a snapshot covers took too long; the event log keeps a gap"
            );
            break;
        }
        let chunk = match source.facts(at.after, at.skip, through).await {
            Ok(chunk) => chunk,
            Err(reason) => {
                tracing::warn!(
                    after = at.after.0,
                    through = through.0,
                    %reason,
                    "no peer served the facts a snapshot covers; the event log keeps a gap"
                );
                break;
            }
        };
        if chunk.events.is_empty() {
            filled.complete = true;
            break;
        }
        if let Err(bad) = accept(at, through, &chunk.events) {
            tracing::warn!(%bad, "refused facts from a peer; the event log keeps a gap");
            break;
        }
        let next = at.advance(&chunk.events);
        filled.facts += chunk.events.len() as u64;
        sink.append(chunk.events).await?;
        at = next;
    }
    if at.after > through {
        filled.complete = true;
    }
    if filled.facts > 0 {
        sink.sync().await?;
    }
    metrics::counter!(BACKFILL_FACTS_TOTAL).increment(filled.facts);
    if !filled.complete {
        metrics::counter!(BACKFILL_FAILURES_TOTAL).increment(1);
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use mempulse_primitives::{EventKind, Height, Origin, Source, UnixMillis};

    use super::*;
    use crate::state_machine::MemorySink;

    fn fact(index: u64, n: u64) -> Event {
        Event {
            observed_at: UnixMillis(n),
            source: Source::Mempool,
            origin: Origin::Replicated { raft_index: RaftIndex(index) },
            kind: EventKind::BlockCommitted { height: Height(n), txs: Vec::new() },
        }
    }

    /// A peer log: facts 1..=3 of index 5, none of 6, two of 7, one of 9; chunks of `per`.
    struct Peer {
        log: Vec<Event>,
        per: usize,
        asked: Mutex<Vec<(u64, u32)>>,
    }

    impl Peer {
        fn new(per: usize) -> Self {
            let log = vec![fact(5, 1), fact(5, 2), fact(5, 3), fact(7, 4), fact(7, 5), fact(9, 6)];
            Self { log, per, asked: Mutex::new(Vec::new()) }
        }
    }

    impl FactSource for Peer {
        fn facts(
            &self,
            after: RaftIndex,
            skip: u32,
            through: RaftIndex,
        ) -> BoxFuture<'static, Result<FactsChunk, String>> {
            self.asked.lock().unwrap().push((after.0, skip));
            let mut seen_at_after = 0;
            let events: Vec<Event> = self
                .log
                .iter()
                .filter(|e| {
                    let i = e.origin.raft_index().unwrap();
                    if i == after {
                        seen_at_after += 1;
                        seen_at_after > skip
                    } else {
                        i > after && i <= through
                    }
                })
                .take(self.per)
                .cloned()
                .collect();
            Box::pin(async move { Ok(FactsChunk { events }) })
        }
    }

    #[tokio::test]
    async fn fills_the_rest_of_a_partial_index_and_every_later_one_in_chunks() {
        let peer = Peer::new(2);
        let sink = MemorySink::default();
        let from = Position { after: RaftIndex(5), skip: 1 };
        let filled = fill(&peer, &sink, from, RaftIndex(7), &|| false).await.unwrap();
        assert_eq!(filled, Filled { facts: 4, complete: true });
        assert_eq!(sink.events(), vec![fact(5, 2), fact(5, 3), fact(7, 4), fact(7, 5)]);
        // Each request starts right after the last fact received.
        assert_eq!(*peer.asked.lock().unwrap(), vec![(5, 1), (5, 3), (7, 2)]);
    }

    #[tokio::test]
    async fn a_failing_or_lying_peer_leaves_a_counted_gap_but_keeps_what_was_good() {
        struct Failing;
        impl FactSource for Failing {
            fn facts(
                &self,
                _: RaftIndex,
                _: u32,
                _: RaftIndex,
            ) -> BoxFuture<'static, Result<FactsChunk, String>> {
                Box::pin(async { Err("unreachable".to_owned()) })
            }
        }
        let sink = MemorySink::default();
        let from = Position { after: RaftIndex(3), skip: 0 };
        let filled = fill(&Failing, &sink, from, RaftIndex(9), &|| false).await.unwrap();
        assert_eq!(filled, Filled { facts: 0, complete: false });
        assert!(sink.events().is_empty());

        // A peer that answers past `through` is refused at that chunk; the good chunk before
        // it stays appended.
        let lying = Peer::new(2);
        let sink = MemorySink::default();
        let filled = fill(
            &Lying(lying),
            &sink,
            Position { after: RaftIndex(5), skip: 0 },
            RaftIndex(5),
            &|| false,
        )
        .await
        .unwrap();
        assert_eq!(filled, Filled { facts: 2, complete: false });
        assert_eq!(sink.events(), vec![fact(5, 1), fact(5, 2)]);
    }

    /// Ignores `through`: sends everything after the position.
    struct Lying(Peer);

    impl FactSource for Lying {
        fn facts(
            &self,
            after: RaftIndex,
            skip: u32,
            _: RaftIndex,
        ) -> BoxFuture<'static, Result<FactsChunk, String>> {
            self.0.facts(after, skip, RaftIndex(u64::MAX))
        }
    }

    #[tokio::test]
    async fn a_fill_past_its_deadline_stops_between_chunks_and_keeps_what_it_appended() {
        let peer = Peer::new(2);
        let sink = MemorySink::default();
        let asked = std::sync::atomic::AtomicU32::new(0);
        // Expired from the second check on: one chunk is fetched and appended.
        let expired = || asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst) >= 1;
        let from = Position { after: RaftIndex(5), skip: 0 };
        let filled = fill(&peer, &sink, from, RaftIndex(9), &expired).await.unwrap();
        assert_eq!(filled, Filled { facts: 2, complete: false });
        assert_eq!(sink.events(), vec![fact(5, 1), fact(5, 2)]);
    }

    #[test]
    fn the_leader_is_asked_first_then_the_others_and_never_oneself() {
        let members = || (1..=4).map(NodeId);
        let ids = |v: Vec<NodeId>| v.into_iter().map(|n| n.0).collect::<Vec<_>>();
        assert_eq!(ids(ask_order(NodeId(2), Some(NodeId(3)), members())), vec![3, 1, 4]);
        assert_eq!(ids(ask_order(NodeId(2), None, members())), vec![1, 3, 4]);
        assert_eq!(ids(ask_order(NodeId(2), Some(NodeId(2)), members())), vec![1, 3, 4]);
    }

    #[test]
    fn a_chunk_must_hold_replicated_facts_in_range_and_order() {
        let from = Position { after: RaftIndex(5), skip: 0 };
        assert_eq!(accept(from, RaftIndex(9), &[fact(5, 1), fact(9, 2)]), Ok(()));
        assert_eq!(
            accept(from, RaftIndex(9), &[fact(7, 1), fact(6, 2)]),
            Err(BadChunk::OutOfRange { found: 6, low: 7, through: 9 })
        );
        assert_eq!(
            accept(from, RaftIndex(9), &[fact(4, 1)]),
            Err(BadChunk::OutOfRange { found: 4, low: 5, through: 9 })
        );
        let local = Event { origin: Origin::Local, ..fact(5, 1) };
        assert_eq!(accept(from, RaftIndex(9), &[local]), Err(BadChunk::Local));
    }

    #[test]
    fn the_position_follows_what_was_applied_or_written_beyond_it() {
        let written = |index, facts| Some(WrittenThrough { index: RaftIndex(index), facts });
        assert_eq!(Position::of(None, None), Position { after: RaftIndex(1), skip: 0 });
        assert_eq!(Position::of(Some(8), written(8, 4)), Position { after: RaftIndex(9), skip: 0 });
        // Facts written before a restart, beyond what was re-applied since.
        assert_eq!(
            Position::of(Some(8), written(12, 2)),
            Position { after: RaftIndex(12), skip: 2 }
        );
    }
}
