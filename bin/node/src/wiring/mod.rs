//! Glue between the crates inside `mempulse run`: the cluster as the lanes' admission, the
//! API's services over the node's parts, the live replayer, state roots and replays, the
//! proposer schedule, and the metrics recorder with the node's own observations.

mod admission;
mod blocks;
mod disk;
mod fence;
mod history;
mod metrics;
mod peer;
mod reconcile;
mod services;
mod state;
mod stream;

use mempulse_api::MetricsRender;

pub(crate) use self::{
    admission::ClusterAdmission,
    blocks::{BlockLink, BlockProducer, NodeBlockHandler, PeerBlockLink, ProducerOptions},
    fence::{
        Fence, FenceOptions, FencedAdmission, ReplayerRoots, mempool_test_fault, watch_peers,
        with_test_fault,
    },
    history::{Follower, History, HistoryOptions},
    metrics::{Observed, observe},
    peer::{CatalogCluster, NodePeers, PeerPlan, TlsPeerConnector, listen},
    services::{LaneSubmit, NodeBlocks, NodeCluster, NodePool},
    state::state_views,
    stream::{StreamListener, StreamOptions},
};

/// Installs the process's Prometheus recorder (before anything records) and returns what
/// renders it for `GET /metrics`.
pub(crate) fn install_metrics() -> anyhow::Result<MetricsRender> {
    metrics::install()
}
