//! Metric handles of ingest, created once through the `metrics` facade.
//!
//! The crate only records; the binary installs a recorder before starting ingest (handles made
//! without one record nowhere). Labels come only from closed enums.

use std::{sync::Once, time::Duration};

use mempulse_primitives::{DropReason, Lane, RejectReason};
use metrics::{Counter, Gauge, Histogram, Unit};

use crate::{AdmissionError, CloseReason};

/// Transactions in a lane's queue (submitted, not yet through decoding).
pub const LANE_DEPTH: &str = "mempulse_net_lane_depth";
/// Capacity of a lane's queue.
pub const LANE_CAPACITY: &str = "mempulse_net_lane_capacity";
/// Transactions dropped at a lane, by lane and reason.
pub const LANE_DROPPED_TOTAL: &str = "mempulse_net_lane_dropped_total";
/// Time from submit to decoded (queue wait, decoding and sender recovery), seconds.
pub const DECODE_LATENCY_SECONDS: &str = "mempulse_net_decode_latency_seconds";
/// Transactions the pool admitted (including replacements), by lane.
pub const ADMITTED_TOTAL: &str = "mempulse_net_admitted_total";
/// Transactions rejected, by the stateless checks or by the pool, by reason.
pub const REJECTED_TOTAL: &str = "mempulse_net_rejected_total";
/// Admission batches that failed as a whole, by error.
pub const ADMISSION_FAILED_TOTAL: &str = "mempulse_net_admission_failed_total";
/// Transactions per admission batch.
pub const BATCH_SIZE_TXS: &str = "mempulse_net_batch_size_txs";
/// For a duplicate sighting, its arrival minus the first sighting's arrival, seconds.
pub const FIRST_SEEN_DELAY_SECONDS: &str = "mempulse_net_first_seen_delay_seconds";
/// Settled hashes in the dedup cache.
pub const DEDUP_ENTRIES: &str = "mempulse_net_dedup_entries";
/// Capacity of the dedup cache.
pub const DEDUP_CAPACITY: &str = "mempulse_net_dedup_capacity";
/// Sources with a tracked token bucket.
pub const THROTTLE_SOURCES: &str = "mempulse_net_throttle_sources";
/// Most sources tracked.
pub const THROTTLE_SOURCES_CAPACITY: &str = "mempulse_net_throttle_sources_capacity";
/// Local facts ingest could not hand to the event-log sequencer, by reason.
pub const FACTS_DROPPED_TOTAL: &str = "mempulse_net_facts_dropped_total";
/// Node tx streams being served.
pub const STREAMS_OPEN: &str = "mempulse_net_streams_open";
/// Node tx streams ended, by close reason.
pub const STREAMS_CLOSED_TOTAL: &str = "mempulse_net_streams_closed_total";
/// Connections to a stream listener refused before their stream began, by reason.
pub const STREAMS_REFUSED_TOTAL: &str = "mempulse_net_streams_refused_total";

/// Why a fact did not reach the sequencer (label values of [`FACTS_DROPPED_TOTAL`]).
pub(crate) const FACT_DROP_REASONS: [&str; 3] = ["queue_full", "closed", "invalid"];

static DESCRIBE: Once = Once::new();

fn describe() {
    DESCRIBE.call_once(|| {
        use metrics::{describe_counter, describe_gauge, describe_histogram};
        describe_gauge!(LANE_DEPTH, Unit::Count, "transactions queued in a lane");
        describe_gauge!(LANE_CAPACITY, Unit::Count, "capacity of a lane");
        describe_counter!(LANE_DROPPED_TOTAL, Unit::Count, "transactions dropped at a lane");
        describe_histogram!(DECODE_LATENCY_SECONDS, Unit::Seconds, "submit to decoded");
        describe_counter!(ADMITTED_TOTAL, Unit::Count, "transactions the pool admitted");
        describe_counter!(REJECTED_TOTAL, Unit::Count, "transactions rejected");
        describe_counter!(ADMISSION_FAILED_TOTAL, Unit::Count, "admission batches failed");
        describe_histogram!(BATCH_SIZE_TXS, Unit::Count, "transactions per admission batch");
        describe_histogram!(FIRST_SEEN_DELAY_SECONDS, Unit::Seconds, "duplicate after first");
        describe_gauge!(DEDUP_ENTRIES, Unit::Count, "settled hashes in the dedup cache");
        describe_gauge!(DEDUP_CAPACITY, Unit::Count, "capacity of the dedup cache");
        describe_gauge!(THROTTLE_SOURCES, Unit::Count, "sources with a token bucket");
        describe_gauge!(THROTTLE_SOURCES_CAPACITY, Unit::Count, "most sources tracked");
        describe_counter!(FACTS_DROPPED_TOTAL, Unit::Count, "local facts not sequenced");
        describe_gauge!(STREAMS_OPEN, Unit::Count, "node tx streams being served");
        describe_counter!(STREAMS_CLOSED_TOTAL, Unit::Count, "node tx streams ended");
        describe_counter!(STREAMS_REFUSED_TOTAL, Unit::Count, "stream connections refused");
    });
}

/// The handle for a closed enum's variant, looked up by its stable code (codes run from 1).
fn by_code<T>(handles: &[T], code: u8) -> Option<&T> {
    handles.get(usize::from(code).checked_sub(1)?)
}

/// Handles of the ingest pipeline.
#[derive(Clone, Debug)]
pub(crate) struct IngestMetrics {
    lane_depth: Vec<Gauge>,
    lane_capacity: Vec<Gauge>,
    /// `[lane][reason]`.
    lane_dropped: Vec<Vec<Counter>>,
    pub(crate) decode_latency: Histogram,
    admitted: Vec<Counter>,
    rejected: Vec<Counter>,
    admission_failed: Vec<Counter>,
    pub(crate) batch_size: Histogram,
    pub(crate) first_seen_delay: Histogram,
    pub(crate) dedup_entries: Gauge,
    pub(crate) dedup_capacity: Gauge,
    pub(crate) throttle_sources: Gauge,
    pub(crate) throttle_sources_capacity: Gauge,
    facts_dropped: Vec<Counter>,
}

impl IngestMetrics {
    pub(crate) fn new() -> Self {
        describe();
        let per_lane = |name: &'static str| -> Vec<Gauge> {
            Lane::ALL.iter().map(|lane| metrics::gauge!(name, "lane" => lane.as_str())).collect()
        };
        let lane_dropped = Lane::ALL
            .iter()
            .map(|lane| {
                DropReason::ALL
                    .iter()
                    .map(|reason| {
                        metrics::counter!(
                            LANE_DROPPED_TOTAL,
                            "lane" => lane.as_str(),
                            "reason" => reason.as_str()
                        )
                    })
                    .collect()
            })
            .collect();
        Self {
            lane_depth: per_lane(LANE_DEPTH),
            lane_capacity: per_lane(LANE_CAPACITY),
            lane_dropped,
            decode_latency: metrics::histogram!(DECODE_LATENCY_SECONDS),
            admitted: Lane::ALL
                .iter()
                .map(|lane| metrics::counter!(ADMITTED_TOTAL, "lane" => lane.as_str()))
                .collect(),
            rejected: RejectReason::ALL
                .iter()
                .map(|reason| metrics::counter!(REJECTED_TOTAL, "reason" => reason.as_str()))
                .collect(),
            admission_failed: AdmissionError::ALL
                .iter()
                .map(|error| metrics::counter!(ADMISSION_FAILED_TOTAL, "error" => error.as_str()))
                .collect(),
            batch_size: metrics::histogram!(BATCH_SIZE_TXS),
            first_seen_delay: metrics::histogram!(FIRST_SEEN_DELAY_SECONDS),
            dedup_entries: metrics::gauge!(DEDUP_ENTRIES),
            dedup_capacity: metrics::gauge!(DEDUP_CAPACITY),
            throttle_sources: metrics::gauge!(THROTTLE_SOURCES),
            throttle_sources_capacity: metrics::gauge!(THROTTLE_SOURCES_CAPACITY),
            facts_dropped: FACT_DROP_REASONS
                .iter()
                .map(|reason| metrics::counter!(FACTS_DROPPED_TOTAL, "reason" => *reason))
                .collect(),
        }
    }

    pub(crate) fn lane_depth(&self, lane: Lane, depth: usize) {
        if let Some(gauge) = by_code(&self.lane_depth, lane.code()) {
            gauge.set(depth as f64);
        }
    }

    pub(crate) fn lane_capacity(&self, lane: Lane, capacity: usize) {
        if let Some(gauge) = by_code(&self.lane_capacity, lane.code()) {
            gauge.set(capacity as f64);
        }
    }

    pub(crate) fn dropped(&self, lane: Lane, reason: DropReason) {
        let lane = by_code(&self.lane_dropped, lane.code());
        if let Some(counter) = lane.and_then(|reasons| by_code(reasons, reason.code())) {
            counter.increment(1);
        }
    }

    pub(crate) fn admitted(&self, lane: Lane) {
        if let Some(counter) = by_code(&self.admitted, lane.code()) {
            counter.increment(1);
        }
    }

    pub(crate) fn rejected(&self, reason: RejectReason) {
        if let Some(counter) = by_code(&self.rejected, reason.code()) {
            counter.increment(1);
        }
    }

    pub(crate) fn admission_failed(&self, error: AdmissionError) {
        if let Some(counter) = self.admission_failed.get(error.index()) {
            counter.increment(1);
        }
    }

    /// `reason` indexes [`FACT_DROP_REASONS`].
    pub(crate) fn fact_dropped(&self, reason: usize, facts: usize) {
        if let Some(counter) = self.facts_dropped.get(reason) {
            counter.increment(u64::try_from(facts).unwrap_or(u64::MAX));
        }
    }

    pub(crate) fn first_seen_delay(&self, delay_ms: u64) {
        self.first_seen_delay.record(Duration::from_millis(delay_ms).as_secs_f64());
    }
}

/// Handles of the stream servers.
#[derive(Clone, Debug)]
pub(crate) struct StreamMetrics {
    pub(crate) open: Gauge,
    closed: Vec<Counter>,
}

impl StreamMetrics {
    pub(crate) fn new() -> Self {
        describe();
        Self {
            open: metrics::gauge!(STREAMS_OPEN),
            closed: CloseReason::ALL
                .iter()
                .map(|reason| metrics::counter!(STREAMS_CLOSED_TOTAL, "reason" => reason.as_str()))
                .collect(),
        }
    }

    pub(crate) fn closed(&self, reason: CloseReason) {
        if let Some(counter) = by_code(&self.closed, reason.code()) {
            counter.increment(1);
        }
    }
}

/// Why a stream listener refused a connection before its stream began (label values of
/// [`STREAMS_REFUSED_TOTAL`]; a refused `Hello` is a stream closed with its reason instead).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum StreamRefusal {
    /// The client presented no certificate.
    NoCertificate,
    /// The client's certificate does not chain to the deployment CA.
    UntrustedCertificate,
    /// The TLS handshake failed otherwise (not TLS, a protocol mismatch, too slow).
    TlsHandshake,
    /// Plaintext is configured and the client is not on loopback.
    PlaintextNotLoopback,
    /// Every stream slot is taken.
    TooManyStreams,
}

impl StreamRefusal {
    /// Every reason, in label order.
    pub const ALL: &'static [Self] = &[
        Self::NoCertificate,
        Self::UntrustedCertificate,
        Self::TlsHandshake,
        Self::PlaintextNotLoopback,
        Self::TooManyStreams,
    ];

    /// Stable label value.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NoCertificate => "no_certificate",
            Self::UntrustedCertificate => "untrusted_certificate",
            Self::TlsHandshake => "tls_handshake",
            Self::PlaintextNotLoopback => "plaintext_not_loopback",
            Self::TooManyStreams => "too_many_streams",
        }
    }

    const fn index(self) -> usize {
        match self {
            Self::NoCertificate => 0,
            Self::UntrustedCertificate => 1,
            Self::TlsHandshake => 2,
            Self::PlaintextNotLoopback => 3,
            Self::TooManyStreams => 4,
        }
    }
}

/// Counters of a stream listener's refusals, created once per listener.
#[derive(Clone, Debug)]
pub struct StreamRefusals {
    refused: Vec<Counter>,
}

impl StreamRefusals {
    /// Registers the counters (one per [`StreamRefusal`]) with the installed recorder.
    #[must_use]
    pub fn new() -> Self {
        describe();
        let refused = StreamRefusal::ALL
            .iter()
            .map(|reason| metrics::counter!(STREAMS_REFUSED_TOTAL, "reason" => reason.as_str()))
            .collect();
        Self { refused }
    }

    /// Counts one refused connection.
    pub fn count(&self, reason: StreamRefusal) {
        if let Some(counter) = self.refused.get(reason.index()) {
            counter.increment(1);
        }
    }
}

impl Default for StreamRefusals {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The handle lookups index by code: every enum used must number its variants 1, 2, 3...
    #[test]
    fn label_enums_have_dense_codes_from_one() {
        let dense =
            |codes: Vec<u8>| codes.iter().enumerate().all(|(i, &c)| usize::from(c) == i + 1);
        assert!(dense(Lane::ALL.iter().map(|v| v.code()).collect()));
        assert!(dense(DropReason::ALL.iter().map(|v| v.code()).collect()));
        assert!(dense(RejectReason::ALL.iter().map(|v| v.code()).collect()));
        assert!(dense(CloseReason::ALL.iter().map(|v| v.code()).collect()));
        assert!(by_code(&[1, 2], 0).is_none());
        let indexes: Vec<usize> = StreamRefusal::ALL.iter().map(|r| r.index()).collect();
        assert_eq!(indexes, (0..StreamRefusal::ALL.len()).collect::<Vec<_>>());
        assert_eq!(by_code(&[1, 2], 2), Some(&2));
    }
}
