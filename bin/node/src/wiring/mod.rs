//! Glue between the crates inside `mempulse run`: the cluster as the lanes' admission, the
//! API's services over the node's parts, the live replayer, and the metrics recorder.

mod admission;
mod history;
mod services;
mod stream;

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use mempulse_api::MetricsRender;
use metrics_exporter_prometheus::PrometheusBuilder;

pub(crate) use self::{
    admission::ClusterAdmission,
    history::{Follower, History, HistoryOptions},
    services::{LaneSubmit, NodeBlocks, NodeCluster, NodePool},
    stream::{StreamListener, StreamOptions},
};

/// How often the recorder folds its histogram buckets (it has no HTTP listener doing it).
const METRICS_UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Installs the process's Prometheus recorder (before anything records) and returns what
/// renders it for `GET /metrics`.
pub(crate) fn install_metrics() -> anyhow::Result<MetricsRender> {
    let handle = PrometheusBuilder::new()
        .install_recorder()
        .context("installing the Prometheus metrics recorder")?;
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(METRICS_UPKEEP_INTERVAL);
        loop {
            tick.tick().await;
            upkeep.run_upkeep();
        }
    });
    Ok(Arc::new(move || handle.render()))
}
