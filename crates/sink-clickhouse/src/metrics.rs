//! Metric handles of the sink, created once through the `metrics` facade.
//!
//! The crate only records; the binary installs a recorder (embedders pay nothing otherwise).

use std::sync::Once;

use metrics::{Counter, Gauge, Unit};

use crate::error::Operation;

/// Durable seq of the log minus the highest seq exported: events not yet in ClickHouse.
pub const LAG_EVENTS: &str = "mempulse_sink_clickhouse_lag_events";
/// Rows inserted (acknowledged by ClickHouse).
pub const ROWS_TOTAL: &str = "mempulse_sink_clickhouse_rows_total";
/// Batches inserted (one `INSERT` each).
pub const BATCHES_TOTAL: &str = "mempulse_sink_clickhouse_batches_total";
/// Failed requests to ClickHouse, each retried or fatal.
pub const ERRORS_TOTAL: &str = "mempulse_sink_clickhouse_errors_total";
/// Label of [`ERRORS_TOTAL`]: the [`Operation`] that failed.
pub const OPERATION_LABEL: &str = "operation";

const OPERATIONS: [Operation; 4] =
    [Operation::CreateTable, Operation::ReadSchema, Operation::ReadExported, Operation::Insert];

static DESCRIBE: Once = Once::new();

fn describe() {
    DESCRIBE.call_once(|| {
        metrics::describe_gauge!(LAG_EVENTS, Unit::Count, "durable seq minus exported seq");
        metrics::describe_counter!(ROWS_TOTAL, Unit::Count, "rows inserted into clickhouse");
        metrics::describe_counter!(BATCHES_TOTAL, Unit::Count, "insert batches acknowledged");
        metrics::describe_counter!(ERRORS_TOTAL, Unit::Count, "failed clickhouse requests");
    });
}

/// Handles used by the export loop.
#[derive(Clone, Debug)]
pub(crate) struct SinkMetrics {
    pub(crate) lag: Gauge,
    pub(crate) rows: Counter,
    pub(crate) batches: Counter,
    errors: [Counter; OPERATIONS.len()],
}

impl SinkMetrics {
    pub(crate) fn new() -> Self {
        describe();
        Self {
            lag: metrics::gauge!(LAG_EVENTS),
            rows: metrics::counter!(ROWS_TOTAL),
            batches: metrics::counter!(BATCHES_TOTAL),
            errors: OPERATIONS
                .map(|op| metrics::counter!(ERRORS_TOTAL, OPERATION_LABEL => op.as_str())),
        }
    }

    pub(crate) fn error(&self, operation: Operation) {
        let index = match operation {
            Operation::CreateTable => 0,
            Operation::ReadSchema => 1,
            Operation::ReadExported => 2,
            Operation::Insert => 3,
        };
        if let Some(counter) = self.errors.get(index) {
            counter.increment(1);
        }
    }
}
