//! Metrics of the API, recorded through the `metrics` facade (the node installs the recorder).
//!
//! Labels come from closed sets only: the route template of the router's table (or
//! `unmatched`), the status class, and the fixed reasons a live tail ends with.

use std::sync::Once;

use axum::http::StatusCode;
use metrics::Unit;

/// Requests answered, by `route` template and `status` class (`2xx` … `5xx`).
pub const REQUESTS_TOTAL: &str = "mempulse_api_requests_total";
/// Live tails ended, by `reason` (`slow_consumer`, `shutting_down`, `purged`, `unavailable`,
/// `client_gone`).
pub const STREAMS_ENDED_TOTAL: &str = "mempulse_api_streams_ended_total";

static DESCRIBE: Once = Once::new();

/// Records the API's metrics. Handles are looked up per event so that a recorder installed
/// after the router was built still sees them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ApiMetrics;

impl ApiMetrics {
    pub(crate) fn get() -> Self {
        DESCRIBE.call_once(|| {
            metrics::describe_counter!(REQUESTS_TOTAL, Unit::Count, "requests answered");
            metrics::describe_counter!(STREAMS_ENDED_TOTAL, Unit::Count, "live tails ended");
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

    pub(crate) fn stream_ended(self, reason: &'static str) {
        metrics::counter!(STREAMS_ENDED_TOTAL, "reason" => reason).increment(1);
    }
}
