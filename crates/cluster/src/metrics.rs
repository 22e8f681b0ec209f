//! Metrics of the cluster crate's transport: refused peers and rejected frames.
//!
//! Handles are created once per transport through the `metrics` facade (the binary installs the
//! recorder; without one they cost nothing). Each counter is mirrored in an atomic so the
//! transport can report its own counts ([`TcpTransport::stats`](crate::TcpTransport::stats))
//! to tests and status pages without a recorder.
//!
//! | name | type | labels |
//! |---|---|---|
//! | `mempulse_cluster_peer_refused_total` | counter | `reason` ([`RefusalReason::as_str`]) |
//! | `mempulse_cluster_frame_rejected_total` | counter | `reason` ([`FrameFault::as_str`]) |

use std::{
    collections::BTreeMap,
    sync::{
        Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use metrics::Counter;

/// Name of the counter of refused peer connections.
pub const PEER_REFUSED_TOTAL: &str = "mempulse_cluster_peer_refused_total";
/// Name of the counter of frames that closed their connection.
pub const FRAME_REJECTED_TOTAL: &str = "mempulse_cluster_frame_rejected_total";

/// At most one `warn` per reason per this interval; the others go to `debug`.
const WARN_INTERVAL: Duration = Duration::from_secs(1);

/// Why a peer connection was refused (inbound or outbound).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum RefusalReason {
    /// The peer presented no client certificate.
    NoCertificate,
    /// The peer's certificate does not chain to the deployment CA (or is expired, malformed).
    UntrustedCertificate,
    /// The TLS handshake failed for another reason (not TLS at all, protocol mismatch, timeout).
    TlsHandshake,
    /// The hello frame is missing, malformed or of another protocol version.
    BadHello,
    /// The certificate does not name the node id the peer claims in its hello.
    IdentityMismatch,
    /// The peer's node id is not a current member of this node's cluster.
    NotAMember,
    /// The hello is addressed to another node id than this one.
    WrongTarget,
    /// Plaintext is configured, but the peer's address is not on loopback.
    PlaintextNotLoopback,
    /// Every inbound connection slot is taken.
    TooManyConnections,
    /// The peer is a voter whose incarnation differs from the one this node met: its Raft
    /// directory was wiped or replaced, so it lost its log and its vote. It is refused until an
    /// operator removes it and adds it back as a learner (`docs/design/cluster-membership.md`).
    IncarnationChanged,
}

impl RefusalReason {
    /// Every reason, in label order.
    pub const ALL: [Self; 10] = [
        Self::NoCertificate,
        Self::UntrustedCertificate,
        Self::TlsHandshake,
        Self::BadHello,
        Self::IdentityMismatch,
        Self::NotAMember,
        Self::WrongTarget,
        Self::PlaintextNotLoopback,
        Self::TooManyConnections,
        Self::IncarnationChanged,
    ];

    /// Stable label value.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NoCertificate => "no_certificate",
            Self::UntrustedCertificate => "untrusted_certificate",
            Self::TlsHandshake => "tls_handshake",
            Self::BadHello => "bad_hello",
            Self::IdentityMismatch => "identity_mismatch",
            Self::NotAMember => "not_a_member",
            Self::WrongTarget => "wrong_target",
            Self::PlaintextNotLoopback => "plaintext_not_loopback",
            Self::TooManyConnections => "too_many_connections",
            Self::IncarnationChanged => "incarnation_changed",
        }
    }

    /// Stable wire code (in a refused hello answer).
    #[must_use]
    pub(crate) const fn code(self) -> u8 {
        match self {
            Self::NoCertificate => 1,
            Self::UntrustedCertificate => 2,
            Self::TlsHandshake => 3,
            Self::BadHello => 4,
            Self::IdentityMismatch => 5,
            Self::NotAMember => 6,
            Self::WrongTarget => 7,
            Self::PlaintextNotLoopback => 8,
            Self::TooManyConnections => 9,
            Self::IncarnationChanged => 10,
        }
    }

    /// The reason of a wire code.
    pub(crate) fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.code() == code)
    }

    const fn index(self) -> usize {
        self.code() as usize - 1
    }
}

impl std::fmt::Display for RefusalReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a frame from an authenticated peer closed its connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum FrameFault {
    /// The declared frame length exceeds the limit.
    TooLarge,
    /// The frame names a protocol version this build does not speak.
    BadVersion,
    /// The frame's kind is unknown or not expected at this point of the exchange.
    UnexpectedKind,
    /// The payload does not decode.
    Malformed,
    /// The answer does not carry the request id of the request.
    IdMismatch,
}

impl FrameFault {
    /// Every fault, in label order.
    pub const ALL: [Self; 5] =
        [Self::TooLarge, Self::BadVersion, Self::UnexpectedKind, Self::Malformed, Self::IdMismatch];

    /// Stable label value.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::TooLarge => "too_large",
            Self::BadVersion => "bad_version",
            Self::UnexpectedKind => "unexpected_kind",
            Self::Malformed => "malformed",
            Self::IdMismatch => "id_mismatch",
        }
    }

    const fn index(self) -> usize {
        match self {
            Self::TooLarge => 0,
            Self::BadVersion => 1,
            Self::UnexpectedKind => 2,
            Self::Malformed => 3,
            Self::IdMismatch => 4,
        }
    }
}

impl std::fmt::Display for FrameFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Counts of one transport, as [`TcpTransport::stats`](crate::TcpTransport::stats) reports
/// them. Keys are ordered; reasons never seen are absent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransportStats {
    /// Refused connections by reason.
    pub refused: BTreeMap<RefusalReason, u64>,
    /// Rejected frames by fault.
    pub rejected_frames: BTreeMap<FrameFault, u64>,
}

impl TransportStats {
    /// Refusals for `reason`.
    #[must_use]
    pub fn refused(&self, reason: RefusalReason) -> u64 {
        self.refused.get(&reason).copied().unwrap_or(0)
    }

    /// Rejected frames for `fault`.
    #[must_use]
    pub fn rejected_frames(&self, fault: FrameFault) -> u64 {
        self.rejected_frames.get(&fault).copied().unwrap_or(0)
    }
}

/// The described handles of one transport.
#[derive(Debug)]
pub(crate) struct TransportMetrics {
    refused: [(Counter, AtomicU64); RefusalReason::ALL.len()],
    rejected: [(Counter, AtomicU64); FrameFault::ALL.len()],
    last_warn: Mutex<[Option<Instant>; RefusalReason::ALL.len() + FrameFault::ALL.len()]>,
}

impl TransportMetrics {
    pub(crate) fn new() -> Self {
        metrics::describe_counter!(
            PEER_REFUSED_TOTAL,
            metrics::Unit::Count,
            "peer connections refused by the node-to-node transport, by reason"
        );
        metrics::describe_counter!(
            FRAME_REJECTED_TOTAL,
            metrics::Unit::Count,
            "frames from authenticated peers that closed their connection, by fault"
        );
        Self {
            refused: RefusalReason::ALL.map(|r| {
                (metrics::counter!(PEER_REFUSED_TOTAL, "reason" => r.as_str()), AtomicU64::new(0))
            }),
            rejected: FrameFault::ALL.map(|f| {
                (metrics::counter!(FRAME_REJECTED_TOTAL, "reason" => f.as_str()), AtomicU64::new(0))
            }),
            last_warn: Mutex::new([None; RefusalReason::ALL.len() + FrameFault::ALL.len()]),
        }
    }

    /// Whether a `warn` for slot `slot` is due (rate limit); records it when so.
    fn warn_due(&self, slot: usize) -> bool {
        let now = Instant::now();
        let mut last = self.last_warn.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(entry) = last.get_mut(slot) else { return false };
        if entry.is_some_and(|at| now.duration_since(at) < WARN_INTERVAL) {
            return false;
        }
        *entry = Some(now);
        true
    }

    /// Counts and logs (rate-limited) one refused peer.
    pub(crate) fn refused(&self, reason: RefusalReason, peer: &dyn std::fmt::Display) {
        if let Some((counter, count)) = self.refused.get(reason.index()) {
            counter.increment(1);
            count.fetch_add(1, Ordering::Relaxed);
        }
        if self.warn_due(reason.index()) {
            if reason == RefusalReason::IncarnationChanged {
                // An operator must act: remove the member and add it back as a learner.
                tracing::error!(reason = reason.as_str(), %peer, "peer refused");
            } else {
                tracing::warn!(reason = reason.as_str(), %peer, "peer refused");
            }
        } else {
            tracing::debug!(reason = reason.as_str(), %peer, "peer refused");
        }
    }

    /// Counts and logs (rate-limited) one rejected frame.
    pub(crate) fn rejected(&self, fault: FrameFault, peer: &dyn std::fmt::Display) {
        if let Some((counter, count)) = self.rejected.get(fault.index()) {
            counter.increment(1);
            count.fetch_add(1, Ordering::Relaxed);
        }
        if self.warn_due(RefusalReason::ALL.len() + fault.index()) {
            tracing::warn!(reason = fault.as_str(), %peer, "bad frame; connection closed");
        } else {
            tracing::debug!(reason = fault.as_str(), %peer, "bad frame; connection closed");
        }
    }

    pub(crate) fn stats(&self) -> TransportStats {
        let mut stats = TransportStats::default();
        for (reason, (_, count)) in RefusalReason::ALL.into_iter().zip(&self.refused) {
            let n = count.load(Ordering::Relaxed);
            if n > 0 {
                stats.refused.insert(reason, n);
            }
        }
        for (fault, (_, count)) in FrameFault::ALL.into_iter().zip(&self.rejected) {
            let n = count.load(Ordering::Relaxed);
            if n > 0 {
                stats.rejected_frames.insert(fault, n);
            }
        }
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_round_trip() {
        for reason in RefusalReason::ALL {
            assert_eq!(RefusalReason::from_code(reason.code()), Some(reason));
            assert_eq!(reason.index(), usize::from(reason.code()) - 1);
        }
        assert_eq!(RefusalReason::from_code(0), None);
        for (i, fault) in FrameFault::ALL.into_iter().enumerate() {
            assert_eq!(fault.index(), i);
        }
    }

    #[test]
    fn counts_are_reported_by_reason() {
        let metrics = TransportMetrics::new();
        metrics.refused(RefusalReason::NotAMember, &"peer");
        metrics.refused(RefusalReason::NotAMember, &"peer");
        metrics.rejected(FrameFault::TooLarge, &"peer");
        let stats = metrics.stats();
        assert_eq!(stats.refused(RefusalReason::NotAMember), 2);
        assert_eq!(stats.refused(RefusalReason::NoCertificate), 0);
        assert_eq!(stats.rejected_frames(FrameFault::TooLarge), 1);
        assert_eq!(stats.refused.len(), 1);
    }
}
