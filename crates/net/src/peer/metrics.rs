//! Metric handles of the peer protocol (next to the module rather than in `crate::metrics`,
//! which holds ingest's; same facade, same naming). Labels come only from closed enums.

use std::sync::{Once, OnceLock};

use metrics::{Counter, Gauge, Unit};

use super::catalog::AnnounceRefusal;
use crate::CloseReason;

/// Announcements this node sent to its peers (heartbeats included).
pub const ANNOUNCEMENTS_SENT_TOTAL: &str = "mempulse_net_peer_announcements_sent_total";
/// Announcements received and merged into the catalog (refreshes included).
pub const ANNOUNCEMENTS_RECEIVED_TOTAL: &str = "mempulse_net_peer_announcements_received_total";
/// Announcements received and refused, by reason.
pub const ANNOUNCEMENTS_REFUSED_TOTAL: &str = "mempulse_net_peer_announcements_refused_total";
/// Nodes in this node's catalog.
pub const CATALOG_NODES: &str = "mempulse_net_peer_catalog_nodes";
/// Peer sessions being served.
pub const SESSIONS_OPEN: &str = "mempulse_net_peer_sessions_open";
/// Peer sessions served that ended, by close reason.
pub const SESSIONS_CLOSED_TOTAL: &str = "mempulse_net_peer_sessions_closed_total";
/// Outgoing peer links with a session up.
pub const LINKS_CONNECTED: &str = "mempulse_net_peer_links_connected";
/// Outgoing peer link connection attempts that failed.
pub const LINK_FAILURES_TOTAL: &str = "mempulse_net_peer_link_failures_total";
/// Blocks received from peers, by answer (`committed`, `stale`, `refused`).
pub const BLOCKS_RECEIVED_TOTAL: &str = "mempulse_net_peer_blocks_received_total";

static DESCRIBE: Once = Once::new();

fn describe() {
    DESCRIBE.call_once(|| {
        use metrics::{describe_counter, describe_gauge};
        describe_counter!(ANNOUNCEMENTS_SENT_TOTAL, Unit::Count, "announcements sent");
        describe_counter!(ANNOUNCEMENTS_RECEIVED_TOTAL, Unit::Count, "announcements merged");
        describe_counter!(ANNOUNCEMENTS_REFUSED_TOTAL, Unit::Count, "announcements refused");
        describe_gauge!(CATALOG_NODES, Unit::Count, "nodes in the peer catalog");
        describe_gauge!(SESSIONS_OPEN, Unit::Count, "peer sessions being served");
        describe_counter!(SESSIONS_CLOSED_TOTAL, Unit::Count, "peer sessions ended");
        describe_gauge!(LINKS_CONNECTED, Unit::Count, "outgoing peer links connected");
        describe_counter!(LINK_FAILURES_TOTAL, Unit::Count, "peer link attempts failed");
        describe_counter!(BLOCKS_RECEIVED_TOTAL, Unit::Count, "blocks received from peers");
    });
}

/// Handles of the peer protocol, created once per process (the recorder is installed first).
#[derive(Debug)]
pub(crate) struct PeerMetrics {
    pub(crate) sent: Counter,
    pub(crate) received: Counter,
    refused: Vec<Counter>,
    pub(crate) catalog_nodes: Gauge,
    pub(crate) sessions_open: Gauge,
    closed: Vec<Counter>,
    pub(crate) links_connected: Gauge,
    pub(crate) link_failures: Counter,
    blocks: [Counter; 3],
}

impl PeerMetrics {
    pub(crate) fn get() -> &'static Self {
        static METRICS: OnceLock<PeerMetrics> = OnceLock::new();
        METRICS.get_or_init(Self::new)
    }

    fn new() -> Self {
        describe();
        let refused = AnnounceRefusal::ALL
            .iter()
            .map(|r| metrics::counter!(ANNOUNCEMENTS_REFUSED_TOTAL, "reason" => r.as_str()))
            .collect();
        let closed = CloseReason::ALL
            .iter()
            .map(|r| metrics::counter!(SESSIONS_CLOSED_TOTAL, "reason" => r.as_str()))
            .collect();
        let block =
            |answer: &'static str| metrics::counter!(BLOCKS_RECEIVED_TOTAL, "answer" => answer);
        Self {
            sent: metrics::counter!(ANNOUNCEMENTS_SENT_TOTAL),
            received: metrics::counter!(ANNOUNCEMENTS_RECEIVED_TOTAL),
            refused,
            catalog_nodes: metrics::gauge!(CATALOG_NODES),
            sessions_open: metrics::gauge!(SESSIONS_OPEN),
            closed,
            links_connected: metrics::gauge!(LINKS_CONNECTED),
            link_failures: metrics::counter!(LINK_FAILURES_TOTAL),
            blocks: [block("committed"), block("stale"), block("refused")],
        }
    }

    pub(crate) fn refused(&self, reason: AnnounceRefusal) {
        if let Some(counter) = self.refused.get(reason.index()) {
            counter.increment(1);
        }
    }

    pub(crate) fn closed(&self, reason: CloseReason) {
        let index = usize::from(reason.code()).checked_sub(1);
        if let Some(counter) = index.and_then(|i| self.closed.get(i)) {
            counter.increment(1);
        }
    }

    pub(crate) fn block(&self, ack: &super::BlockAck) {
        let counter = match ack {
            super::BlockAck::Committed => &self.blocks[0],
            super::BlockAck::Stale { .. } => &self.blocks[1],
            super::BlockAck::Refused { .. } => &self.blocks[2],
        };
        counter.increment(1);
    }
}
