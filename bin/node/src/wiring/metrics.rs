//! The node's Prometheus recorder, and the metrics the node publishes by observing its parts:
//! Raft status (term, leader changes, commit and applied index), pool sizes, the live
//! replayer's lag, checkpoint writes and the fence state. The crates record their own metrics
//! through the facade; everything here is observation, so it lives in the node.
//!
//! Every series an alert in `docs/alerts.yml` reads is registered at start-up (at zero), so a
//! rule never sees a missing series on a healthy node; `docs/metrics.md` lists them all.

use std::{
    sync::{Arc, Weak},
    time::Duration,
};

use anyhow::Context;
use mempulse_api::{FenceState, MetricsRender};
use mempulse_cluster::{ClusterStatus, RaftNode};
use mempulse_primitives::{NodeId, Subpool};
use mempulse_replay::CheckpointMeta;
use mempulse_wal::SequencerHandle;
use metrics::Unit;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use openraft::async_runtime::WatchReceiver as _;
use tokio::sync::watch;

use super::{History, disk};

/// Raft term this node is in.
pub(crate) const TERM: &str = "mempulse_cluster_term";
/// Leaders this node saw elected (a new leader, or the same one in a new term).
pub(crate) const LEADER_CHANGES_TOTAL: &str = "mempulse_cluster_leader_changes_total";
/// `1` while this node knows a leader.
pub(crate) const LEADER_KNOWN: &str = "mempulse_cluster_leader_known";
/// `1` while this node is the leader.
pub(crate) const IS_LEADER: &str = "mempulse_cluster_is_leader";
/// Index of the last entry this node knows committed.
pub(crate) const COMMIT_INDEX: &str = "mempulse_cluster_commit_index";
/// Index of the last entry this node applied.
pub(crate) const APPLIED_INDEX: &str = "mempulse_cluster_applied_index";
/// Commit index minus applied index.
pub(crate) const APPLY_LAG_ENTRIES: &str = "mempulse_cluster_apply_lag_entries";
/// Transactions in the pool, by subpool.
pub(crate) const POOL_TXS: &str = "mempulse_mempool_pool_txs";
/// Encoded bytes of the pooled transactions.
pub(crate) const POOL_BYTES: &str = "mempulse_mempool_pool_bytes";
/// Height of the last committed block the pool knows.
pub(crate) const POOL_HEIGHT: &str = "mempulse_mempool_height";
/// Last durable seq of the event log minus the last seq the live replayer applied.
pub(crate) const REPLAY_LAG_EVENTS: &str = "mempulse_replay_lag_events";
/// Records of the event log written (and acknowledged) but not yet synced and published: under
/// `[wal] sync = "<N>ms"` what a power loss could take now.
pub(crate) const EVENT_LOG_UNSYNCED_RECORDS: &str = "mempulse_event_log_unsynced_records";
/// Time to write one checkpoint of the live replayer.
pub(crate) const CHECKPOINT_DURATION_SECONDS: &str = "mempulse_replay_checkpoint_duration_seconds";
/// Size of the last checkpoint written.
pub(crate) const CHECKPOINT_BYTES: &str = "mempulse_replay_checkpoint_bytes";
/// Checkpoint writes that failed.
pub(crate) const CHECKPOINT_FAILURES_TOTAL: &str = "mempulse_replay_checkpoint_failures_total";

/// How often the recorder folds its histogram buckets (it has no HTTP listener doing it).
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);
/// How often Raft status, pool sizes and the replay lag are sampled.
const SAMPLE_INTERVAL: Duration = Duration::from_secs(1);
/// Bucket bounds of every `*_seconds` histogram: 100 µs to 10 s.
const SECONDS_BUCKETS: &[f64] = &[
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// Installs the process's Prometheus recorder (before anything records), registers the
/// node's own series, and returns what renders it for `GET /metrics`.
pub(crate) fn install() -> anyhow::Result<MetricsRender> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), SECONDS_BUCKETS)
        .context("histogram buckets")?
        .install_recorder()
        .context("installing the Prometheus metrics recorder")?;
    register();
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(UPKEEP_INTERVAL);
        loop {
            tick.tick().await;
            upkeep.run_upkeep();
        }
    });
    Ok(Arc::new(move || handle.render()))
}

/// Describes every series the node publishes and registers each at zero.
fn register() {
    metrics::describe_gauge!(TERM, Unit::Count, "raft term this node is in");
    metrics::describe_counter!(LEADER_CHANGES_TOTAL, Unit::Count, "leaders seen elected");
    metrics::describe_gauge!(LEADER_KNOWN, Unit::Count, "1 while a leader is known");
    metrics::describe_gauge!(IS_LEADER, Unit::Count, "1 while this node leads");
    metrics::describe_gauge!(COMMIT_INDEX, Unit::Count, "last committed raft index");
    metrics::describe_gauge!(APPLIED_INDEX, Unit::Count, "last applied raft index");
    metrics::describe_gauge!(APPLY_LAG_ENTRIES, Unit::Count, "commit index minus applied index");
    metrics::describe_gauge!(POOL_TXS, Unit::Count, "pooled transactions by subpool");
    metrics::describe_gauge!(POOL_BYTES, Unit::Bytes, "encoded bytes of pooled transactions");
    metrics::describe_gauge!(POOL_HEIGHT, Unit::Count, "height of the last committed block");
    metrics::describe_gauge!(REPLAY_LAG_EVENTS, Unit::Count, "durable seq minus replayed seq");
    metrics::describe_gauge!(
        EVENT_LOG_UNSYNCED_RECORDS,
        Unit::Count,
        "event log records written but not yet synced"
    );
    metrics::describe_histogram!(
        CHECKPOINT_DURATION_SECONDS,
        Unit::Seconds,
        "time to write a checkpoint"
    );
    metrics::describe_gauge!(CHECKPOINT_BYTES, Unit::Bytes, "size of the last checkpoint");
    metrics::describe_counter!(CHECKPOINT_FAILURES_TOTAL, Unit::Count, "checkpoint writes failed");
    for name in [TERM, LEADER_KNOWN, IS_LEADER, COMMIT_INDEX, APPLIED_INDEX, APPLY_LAG_ENTRIES] {
        metrics::gauge!(name).set(0.0);
    }
    for subpool in Subpool::ALL {
        metrics::gauge!(POOL_TXS, "subpool" => subpool.as_str()).set(0.0);
    }
    for name in
        [POOL_BYTES, POOL_HEIGHT, REPLAY_LAG_EVENTS, EVENT_LOG_UNSYNCED_RECORDS, CHECKPOINT_BYTES]
    {
        metrics::gauge!(name).set(0.0);
    }
    metrics::counter!(LEADER_CHANGES_TOTAL).absolute(0);
    metrics::counter!(CHECKPOINT_FAILURES_TOTAL).absolute(0);
    let _ = metrics::histogram!(CHECKPOINT_DURATION_SECONDS);
    // Series of crates that register them only once their component runs: the ClickHouse
    // export is off unless configured, and its lag then stays 0.
    metrics::describe_gauge!(
        mempulse_sink_clickhouse::metrics::LAG_EVENTS,
        Unit::Count,
        "durable seq minus exported seq"
    );
    metrics::gauge!(mempulse_sink_clickhouse::metrics::LAG_EVENTS).set(0.0);
    mempulse_api::metrics::register();
}

/// Records one checkpoint write of the live replayer (`meta` is `None` when it failed).
pub(crate) fn checkpoint_written(elapsed: Duration, meta: Option<&CheckpointMeta>) {
    metrics::histogram!(CHECKPOINT_DURATION_SECONDS).record(elapsed.as_secs_f64());
    match meta {
        #[expect(clippy::cast_precision_loss, reason = "a gauge of a file size")]
        Some(meta) => metrics::gauge!(CHECKPOINT_BYTES).set(meta.bytes as f64),
        None => metrics::counter!(CHECKPOINT_FAILURES_TOTAL).increment(1),
    }
}

/// What the sampler observes. It holds the Raft member only weakly, so the node's shutdown
/// (which waits to own the member) never waits for it.
#[derive(Debug)]
pub(crate) struct Observed {
    /// The Raft member.
    pub(crate) node: Weak<RaftNode>,
    /// The live replayer.
    pub(crate) history: History,
    /// The event log.
    pub(crate) log: SequencerHandle,
    /// The fence state.
    pub(crate) fence: watch::Receiver<FenceState>,
    /// The node's directories (event log, Raft, checkpoints) by their `dir` label.
    pub(crate) dirs: disk::Dirs,
}

/// Starts the observers: one following leader changes as openraft reports them, one sampling
/// the rest every [`SAMPLE_INTERVAL`], one measuring the directories (`disk`), one following
/// the fence state. Each ends by itself: the first three with the member, the last with the
/// fence's sender.
pub(crate) fn observe(observed: Observed) {
    if let Some(node) = observed.node.upgrade() {
        count_leader_changes(&node);
    }
    disk::register(&observed.dirs);
    disk::watch(observed.dirs.clone(), observed.node.clone());
    tokio::spawn(mempulse_api::metrics::track_fence(observed.fence.clone()));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SAMPLE_INTERVAL);
        loop {
            tick.tick().await;
            if !sample(&observed) {
                return;
            }
        }
    });
}

/// Counts every (leader, term) this node sees with a leader in it, from openraft's metrics
/// watch (no change is missed between two samples).
fn count_leader_changes(node: &RaftNode) {
    let mut watch = node.raft().metrics();
    tokio::spawn(async move {
        let changes = metrics::counter!(LEADER_CHANGES_TOTAL);
        let mut seen: Option<(NodeId, u64)> = None;
        loop {
            let now = {
                let m = watch.borrow_watched();
                m.current_leader.map(|leader| (leader, m.current_term))
            };
            if now.is_some() && now != seen {
                seen = now;
                changes.increment(1);
            }
            if watch.changed().await.is_err() {
                return;
            }
        }
    });
}

/// Samples the gauges once; `false` once the member is gone.
fn sample(observed: &Observed) -> bool {
    let Some(node) = observed.node.upgrade() else { return false };
    publish_status(&node.status());
    let (pending, queued, bytes, height) = node.state().read(|view| {
        let pool = view.mempool;
        (pool.pending_len(), pool.queued_len(), pool.bytes(), pool.height())
    });
    drop(node);
    #[expect(clippy::cast_precision_loss, reason = "gauges of counts")]
    {
        for (subpool, count) in [(Subpool::Pending, pending), (Subpool::Queued, queued)] {
            metrics::gauge!(POOL_TXS, "subpool" => subpool.as_str()).set(count as f64);
        }
        metrics::gauge!(POOL_BYTES).set(bytes as f64);
        metrics::gauge!(POOL_HEIGHT).set(height.get() as f64);
        let durable = *observed.log.durable().borrow();
        let written = observed.log.reader().written_seq();
        let replayed = observed.history.read(|replayer| replayer.last_seq());
        metrics::gauge!(REPLAY_LAG_EVENTS).set(durable.get().saturating_sub(replayed.get()) as f64);
        metrics::gauge!(EVENT_LOG_UNSYNCED_RECORDS)
            .set(written.get().saturating_sub(durable.get()) as f64);
    }
    true
}

#[expect(clippy::cast_precision_loss, reason = "gauges of raft indexes and terms")]
fn publish_status(status: &ClusterStatus) {
    let committed = status.committed.unwrap_or(0);
    let applied = status.applied.unwrap_or(0);
    metrics::gauge!(TERM).set(status.term as f64);
    metrics::gauge!(LEADER_KNOWN).set(if status.leader.is_some() { 1.0 } else { 0.0 });
    metrics::gauge!(IS_LEADER).set(if status.leader == Some(status.node) { 1.0 } else { 0.0 });
    metrics::gauge!(COMMIT_INDEX).set(committed as f64);
    metrics::gauge!(APPLIED_INDEX).set(applied as f64);
    metrics::gauge!(APPLY_LAG_ENTRIES).set(committed.saturating_sub(applied) as f64);
}
