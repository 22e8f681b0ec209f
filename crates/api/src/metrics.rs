//! Metrics of the API, recorded through the `metrics` facade (the node installs the recorder).
//!
//! Labels come from closed sets only: the route template of the router's table (or
//! `unmatched`), the status class, and the fixed reasons a live tail ends with.

use std::{sync::Once, time::Duration};

use axum::http::StatusCode;
use metrics::Unit;
use tokio::sync::watch;

use crate::FenceState;

/// Requests answered, by `route` template and `status` class (`2xx` … `5xx`).
pub const REQUESTS_TOTAL: &str = "mempulse_api_requests_total";
/// Live tails ended, by `reason` (`slow_consumer`, `shutting_down`, `purged`, `unavailable`,
/// `client_gone`).
pub const STREAMS_ENDED_TOTAL: &str = "mempulse_api_streams_ended_total";

/// Time from a validated `POST /v1/blocks/build` to its proposal (replication and apply
/// included), for successful builds.
pub const BLOCK_BUILD_DURATION_SECONDS: &str = "mempulse_api_block_build_duration_seconds";
/// `1` while the node is fenced (design rule 6), `0` while it serves.
pub const FENCED: &str = "mempulse_api_fenced";
/// HTTP connections open now.
pub const CONNECTIONS_OPEN: &str = "mempulse_api_connections_open";
/// Connections the server keeps open at most (`connections_max`).
pub const CONNECTIONS_MAX: &str = "mempulse_api_connections_max";
/// Times the accept loop found every connection slot taken and waited for one to close
/// (clients meanwhile wait in the listen backlog).
pub const CONNECTIONS_LIMITED_TOTAL: &str = "mempulse_api_connections_limited_total";
/// Connections closed because a request head did not arrive within `header_read_timeout`
/// (a keep-alive connection that stays idle that long is closed without being counted).
pub const HEADER_TIMEOUTS_TOTAL: &str = "mempulse_api_header_timeouts_total";

static DESCRIBE: Once = Once::new();

/// Describes and registers the API's metrics, so that every series without labels exists
/// (at zero) before anything happens. The node calls it after installing its recorder.
pub fn register() {
    let _ = ApiMetrics::get();
    let _ = metrics::histogram!(BLOCK_BUILD_DURATION_SECONDS);
    metrics::gauge!(FENCED).set(0.0);
    metrics::gauge!(CONNECTIONS_OPEN).set(0.0);
    let _ = metrics::gauge!(CONNECTIONS_MAX);
    metrics::counter!(CONNECTIONS_LIMITED_TOTAL).absolute(0);
    metrics::counter!(HEADER_TIMEOUTS_TOTAL).absolute(0);
}

/// Publishes `fence` as the [`FENCED`] gauge until its sender is dropped.
pub async fn track_fence(mut fence: watch::Receiver<FenceState>) {
    let gauge = metrics::gauge!(FENCED);
    loop {
        let fenced = matches!(*fence.borrow_and_update(), FenceState::Fenced { .. });
        gauge.set(if fenced { 1.0 } else { 0.0 });
        if fence.changed().await.is_err() {
            return;
        }
    }
}

/// Records the API's metrics. Handles are looked up per event so that a recorder installed
/// after the router was built still sees them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ApiMetrics;

impl ApiMetrics {
    pub(crate) fn get() -> Self {
        DESCRIBE.call_once(|| {
            metrics::describe_counter!(REQUESTS_TOTAL, Unit::Count, "requests answered");
            metrics::describe_counter!(STREAMS_ENDED_TOTAL, Unit::Count, "live tails ended");
            metrics::describe_histogram!(
                BLOCK_BUILD_DURATION_SECONDS,
                Unit::Seconds,
                "block build request to proposal"
            );
            metrics::describe_gauge!(FENCED, Unit::Count, "1 while the node is fenced");
            metrics::describe_gauge!(CONNECTIONS_OPEN, Unit::Count, "http connections open");
            metrics::describe_gauge!(CONNECTIONS_MAX, Unit::Count, "http connections kept at most");
            metrics::describe_counter!(
                CONNECTIONS_LIMITED_TOTAL,
                Unit::Count,
                "accepts delayed because every connection slot was taken"
            );
            metrics::describe_counter!(
                HEADER_TIMEOUTS_TOTAL,
                Unit::Count,
                "connections closed for a request head not received in time"
            );
        });
        Self
    }

    pub(crate) fn request(self, route: Option<&str>, status: StatusCode) {
        let class = match status.as_u16() {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        let route = route.unwrap_or("unmatched").to_owned();
        metrics::counter!(REQUESTS_TOTAL, "route" => route, "status" => class).increment(1);
    }

    pub(crate) fn block_built(self, elapsed: Duration) {
        metrics::histogram!(BLOCK_BUILD_DURATION_SECONDS).record(elapsed.as_secs_f64());
    }

    pub(crate) fn stream_ended(self, reason: &'static str) {
        metrics::counter!(STREAMS_ENDED_TOTAL, "reason" => reason).increment(1);
    }

    pub(crate) fn connections_max(self, slots: usize) {
        let slots = u32::try_from(slots).unwrap_or(u32::MAX);
        metrics::gauge!(CONNECTIONS_MAX).set(f64::from(slots));
    }

    pub(crate) fn connection_opened(self) {
        metrics::gauge!(CONNECTIONS_OPEN).increment(1.0);
    }

    pub(crate) fn connection_closed(self) {
        metrics::gauge!(CONNECTIONS_OPEN).decrement(1.0);
    }

    pub(crate) fn connections_limited(self) {
        metrics::counter!(CONNECTIONS_LIMITED_TOTAL).increment(1);
    }

    pub(crate) fn header_timeout(self) {
        metrics::counter!(HEADER_TIMEOUTS_TOTAL).increment(1);
    }
}
