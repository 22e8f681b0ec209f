//! An in-process cluster of `RaftNode`s for tests: bounded waits on openraft's metrics, writes
//! that follow the leader, and per-node in-memory fact sinks that survive restarts.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use mempulse_cluster::{
    ApplyFault, BatchConfig, ClientError, ClusterCommand, ClusterNode, ClusterResponse, FactSink,
    FactsChunk, FactsCollector, InProcessNetwork, LogStoreConfig, MemorySink, NodeConfig,
    RaftConfig, RaftNode, ReadConsistency, StateRootReply, StateRootSource,
};
use mempulse_primitives::{Digest, Event, NodeId, RaftIndex, Tx};
/// Small segments (purges free real files), larger than any batched entry of these tests.
const SEGMENT_SIZE_BYTES: u64 = 256 << 10;
use openraft::{RaftMetrics, ServerState, async_runtime::WatchReceiver};
use tempfile::TempDir;

/// Upper bound of every wait in these tests.
pub(crate) const WAIT: Duration = Duration::from_secs(20);

/// Short timings, so elections and failovers take a fraction of a second.
pub(crate) fn raft_config() -> RaftConfig {
    let mut config = RaftConfig::default();
    config.heartbeat_interval = Duration::from_millis(50);
    config.election_timeout_min = Duration::from_millis(200);
    config.election_timeout_max = Duration::from_millis(400);
    config.send_timeout = Duration::from_millis(200);
    config
}

/// [`raft_config`] with a snapshot every 10 entries and the log purged right after, so a node
/// cut off for a few dozen writes can catch up only by a snapshot.
pub(crate) fn purging_raft_config() -> RaftConfig {
    let mut config = raft_config();
    config.snapshot_logs_since_last = 10;
    config.max_in_snapshot_log_to_keep = 0;
    config.replication_lag_threshold = 10;
    config
}

/// Entries of at most 64 KiB, well inside the test segments.
pub(crate) fn batch_config() -> BatchConfig {
    let mut batch = BatchConfig::default();
    batch.tx_bytes_max = 64 << 10;
    batch
}

pub(crate) struct TestCluster {
    pub(crate) net: InProcessNetwork,
    pub(crate) config: RaftConfig,
    pub(crate) dirs: BTreeMap<NodeId, TempDir>,
    pub(crate) sinks: BTreeMap<NodeId, MemorySink>,
    /// Sinks used instead of the in-memory ones (a real event log under test).
    pub(crate) custom_sinks: BTreeMap<NodeId, Arc<dyn FactSink>>,
    pub(crate) nodes: BTreeMap<NodeId, RaftNode>,
    /// Test-only state-machine faults, armed when the node (re)starts.
    pub(crate) faults: BTreeMap<NodeId, ApplyFault>,
}

impl TestCluster {
    /// Starts `n` nodes (ids 1..=n) and initializes them as one cluster.
    pub(crate) async fn start(n: u64, config: RaftConfig) -> Self {
        Self::start_with_sinks(n, config, BTreeMap::new()).await
    }

    /// As [`TestCluster::start`], with `custom_sinks` in place of the in-memory sinks of
    /// their nodes.
    pub(crate) async fn start_with_sinks(
        n: u64,
        config: RaftConfig,
        custom_sinks: BTreeMap<NodeId, Arc<dyn FactSink>>,
    ) -> Self {
        let mut cluster = Self {
            net: InProcessNetwork::new(),
            config,
            dirs: BTreeMap::new(),
            sinks: BTreeMap::new(),
            custom_sinks,
            nodes: BTreeMap::new(),
            faults: BTreeMap::new(),
        };
        for id in 1..=n {
            cluster.dirs.insert(NodeId(id), tempfile::tempdir().unwrap());
            cluster.sinks.insert(NodeId(id), MemorySink::new());
            cluster.start_node(NodeId(id)).await;
        }
        let members: BTreeMap<NodeId, ClusterNode> = (1..=n)
            .map(|id| {
                (NodeId(id), ClusterNode::new(format!("node{id}:7000"), format!("node{id}:8080")))
            })
            .collect();
        cluster.nodes[&NodeId(1)].initialize(members).await.unwrap();
        cluster.leader().await;
        cluster
    }

    /// Starts (or restarts) node `id` from its directory, with its sink.
    pub(crate) async fn start_node(&mut self, id: NodeId) {
        let log =
            LogStoreConfig::new(self.dirs[&id].path()).with_segment_size_bytes(SEGMENT_SIZE_BYTES);
        let config = NodeConfig::new(id, self.dirs[&id].path())
            .with_log(log)
            .with_raft(self.config.clone())
            .with_batch(batch_config())
            .with_apply_fault(self.faults.get(&id).copied());
        let sink: Arc<dyn FactSink> = match self.custom_sinks.get(&id) {
            Some(sink) => Arc::clone(sink),
            None => Arc::new(self.sinks[&id].clone()),
        };
        let node = RaftNode::start(config, sink, &self.net).await.unwrap();
        if !self.custom_sinks.contains_key(&id) {
            // Serve the in-memory log's facts to members that install a snapshot.
            node.service().serve_state_roots(Arc::new(MemoryFacts(self.sinks[&id].clone())));
        }
        self.nodes.insert(id, node);
    }

    /// Stops node `id` (its directory and sink are kept).
    pub(crate) async fn stop_node(&mut self, id: NodeId) {
        let node = self.nodes.remove(&id).unwrap();
        node.shutdown(WAIT).await;
    }

    pub(crate) async fn shutdown(mut self) {
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        for id in ids {
            self.stop_node(id).await;
        }
    }

    /// Waits until every running node agrees on a leader that is running and ready (it has
    /// applied an entry of its own term); returns it.
    pub(crate) async fn leader(&self) -> NodeId {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let first = self.nodes.values().next().unwrap();
            let m = wait_metrics(first, "a leader", |m| m.current_leader.is_some()).await;
            let leader = m.current_leader.unwrap();
            if let Some(node) = self.nodes.get(&leader) {
                let ready = wait_metrics_for(node, Duration::from_secs(2), |m| {
                    m.state == ServerState::Leader
                        && m.last_applied.is_some_and(|a| a.leader_id == m.vote.leader_id)
                })
                .await;
                let agreed = self
                    .nodes
                    .values()
                    .all(|n| n.raft().metrics().borrow_watched().current_leader == Some(leader));
                if ready.is_some() && node.is_ready_leader() && agreed {
                    return leader;
                }
            }
            assert!(tokio::time::Instant::now() < deadline, "no ready leader within {WAIT:?}");
            // Leadership is still settling: wait for the next metrics change, then look again.
            let mut rx = first.raft().metrics();
            let _ = tokio::time::timeout(Duration::from_millis(500), rx.changed()).await;
        }
    }

    /// Writes `command` through the leader, following leader changes, until it is
    /// acknowledged.
    pub(crate) async fn write(&self, command: ClusterCommand) -> ClusterResponse {
        for _ in 0..50 {
            let leader = self.leader().await;
            match self.nodes[&leader].write(command.clone()).await {
                Ok(response) => return response,
                // The leader moved or the outcome is unknown: retry at the leader (an AddTxs
                // that did commit comes back as a duplicate rejection).
                Err(
                    ClientError::ForwardToLeader { .. }
                    | ClientError::Indeterminate { .. }
                    | ClientError::Stopped,
                ) => {}
                Err(e) => panic!("write failed: {e}"),
            }
        }
        panic!("write not acknowledged after 50 attempts");
    }

    /// Cuts `lagging` off, writes transactions `writes` through the leader, and waits until the
    /// leader purged its log past index 20 (the raft config must snapshot and purge often);
    /// then heals `lagging` and returns the index of the last write. `lagging` can then catch
    /// up only by a snapshot.
    pub(crate) async fn fall_behind_a_purged_log(
        &self,
        lagging: NodeId,
        writes: std::ops::RangeInclusive<u64>,
    ) -> RaftIndex {
        self.net.isolate(lagging);
        let mut last = RaftIndex(0);
        for i in writes {
            last = self.write(ClusterCommand::AddTxs(vec![tx(i)])).await.index;
        }
        let leader = self.leader().await;
        wait_metrics(&self.nodes[&leader], "log purged past the lagging node", |m| {
            m.purged.is_some_and(|p| p.index > 20)
        })
        .await;
        self.net.heal(lagging);
        last
    }

    /// Waits until every running node has applied at least `index`.
    pub(crate) async fn wait_applied(&self, index: RaftIndex) {
        for node in self.nodes.values() {
            node.raft()
                .wait(Some(WAIT))
                .applied_index_at_least(Some(index.0), "applied")
                .await
                .unwrap();
        }
    }

    /// The (applied log index, digest) of every running node.
    pub(crate) async fn digests(&self) -> BTreeMap<NodeId, (Option<u64>, Digest)> {
        let mut out = BTreeMap::new();
        for (id, node) in &self.nodes {
            let state = node
                .read(ReadConsistency::Weak, |v| (v.applied.map(|a| a.index), v.mempool.digest()))
                .await
                .unwrap();
            out.insert(*id, state);
        }
        out
    }

    /// The replicated events node `id`'s sink received.
    pub(crate) fn replicated(&self, id: NodeId) -> Vec<Event> {
        self.sinks[&id].events().into_iter().filter(Event::is_replicated).collect()
    }
}

/// Answers [`mempulse_cluster::AdminRequest::Facts`] from a node's in-memory fact log, as the
/// node binary does from its event log; no state roots.
pub(crate) struct MemoryFacts(pub(crate) MemorySink);

impl StateRootSource for MemoryFacts {
    fn state_root(&self, _: Option<RaftIndex>) -> Option<StateRootReply> {
        None
    }

    fn facts(&self, after: RaftIndex, skip: u32, through: RaftIndex) -> Option<FactsChunk> {
        Some(FactsCollector::collect(after, skip, through, self.0.events()))
    }
}

pub(crate) async fn wait_metrics(
    node: &RaftNode,
    what: &str,
    condition: impl Fn(&RaftMetrics<mempulse_cluster::TypeConfig>) -> bool + Send,
) -> RaftMetrics<mempulse_cluster::TypeConfig> {
    node.raft().wait(Some(WAIT)).metrics(condition, what).await.unwrap()
}

async fn wait_metrics_for(
    node: &RaftNode,
    timeout: Duration,
    condition: impl Fn(&RaftMetrics<mempulse_cluster::TypeConfig>) -> bool + Send,
) -> Option<RaftMetrics<mempulse_cluster::TypeConfig>> {
    node.raft().wait(Some(timeout)).metrics(condition, "condition").await.ok()
}

/// A distinct admissible transaction per `i` (its own sender, nonce 0).
pub(crate) fn tx(i: u64) -> Tx {
    mempulse_mempool::test_utils::tx(1000 + i, 0, 10)
}
