//! Three-node in-process clusters: replication, identical facts and digests, failover, catch-up
//! by snapshot and restart without duplicate facts.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
};

use futures_util::future::join_all;
use mempulse_cluster::{
    ClientError, ClusterCommand, FactSink, InProcessNetwork, LogStoreConfig, MemorySink,
    NodeConfig, RaftNode, ReadConsistency, StartError,
};
use mempulse_primitives::{EventKind, NodeId, RaftIndex, TxHash};

use crate::harness::{TestCluster, WAIT, purging_raft_config, raft_config, tx, wait_metrics};

/// Every replicated event stream of the running nodes is the same.
fn assert_same_facts(cluster: &TestCluster) {
    let mut streams = cluster.nodes.keys().map(|id| (*id, cluster.replicated(*id)));
    let (first_id, first) = streams.next().unwrap();
    assert!(!first.is_empty());
    for (id, events) in streams {
        assert_eq!(events, first, "facts of node {id} differ from node {first_id}");
    }
}

/// Every running node reports the same applied index and digest.
async fn assert_same_state(cluster: &TestCluster) {
    let digests = cluster.digests().await;
    let distinct: BTreeSet<_> = digests.values().collect();
    assert_eq!(distinct.len(), 1, "{digests:?}");
}

/// Every node's pool holds every transaction in `hashes`.
async fn assert_all_present(cluster: &TestCluster, hashes: &[TxHash]) {
    for (id, node) in &cluster.nodes {
        let missing = node
            .read(ReadConsistency::Weak, |v| {
                hashes.iter().filter(|h| v.mempool.get(h).is_none()).count()
            })
            .await
            .unwrap();
        assert_eq!(missing, 0, "node {id} lost acknowledged transactions");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn three_nodes_apply_the_same_batched_writes() {
    let cluster = TestCluster::start(3, raft_config()).await;
    let leader = cluster.leader().await;
    let node = &cluster.nodes[&leader];
    assert!(node.is_ready_leader());
    let follower = cluster.nodes.keys().copied().find(|id| *id != leader).unwrap();
    // A follower forwards the write to the leader; its outcome comes back.
    let forwarded = cluster.nodes[&follower].write(ClusterCommand::AddTxs(vec![tx(0)])).await;
    let forwarded = forwarded.unwrap();
    let forwarded_index = forwarded.index;
    let facts = forwarded.result.unwrap().facts;
    assert!(matches!(&facts[..], [EventKind::TxAdmitted { .. }]), "{facts:?}");
    assert!(!cluster.nodes[&follower].is_ready_leader());
    let huge = ClusterCommand::AddTxs((0..1000).map(tx).collect());
    let err = node.write(huge).await;
    assert!(matches!(err, Err(ClientError::TooLarge { max, .. }) if max == 64 << 10), "{err:?}");

    // Concurrent writers: the batcher coalesces them into few entries, each caller still gets
    // exactly its own transaction's facts.
    let writes = (1..=40).map(|i| node.write(ClusterCommand::AddTxs(vec![tx(i)])));
    let responses = join_all(writes).await;
    let mut indexes = BTreeSet::new();
    for (i, response) in (1..=40).zip(responses) {
        let response = response.unwrap();
        indexes.insert(response.index);
        let facts = response.result.unwrap().facts;
        assert!(
            matches!(&facts[..], [EventKind::TxAdmitted { tx: admitted, .. }] if *admitted == tx(i)),
            "{facts:?}"
        );
    }
    assert!(indexes.len() < 20, "40 writes took {} entries", indexes.len());
    indexes.insert(forwarded_index);
    let last = *indexes.last().unwrap();
    cluster.wait_applied(last).await;
    assert_same_state(&cluster).await;
    assert_same_facts(&cluster);

    // Every fact carries its entry's index and the leader's stamp, identical on all replicas.
    let events = cluster.replicated(leader);
    assert_eq!(events.len(), 41);
    assert!(events.iter().all(|e| e.origin.raft_index().is_some_and(|i| indexes.contains(&i))));

    // A linearizable read on the leader sees every acknowledged write; a follower forwards.
    let len = node.read(ReadConsistency::Linearizable, |v| v.mempool.len()).await.unwrap();
    assert_eq!(len, 41);
    let err = cluster.nodes[&follower].read(ReadConsistency::Linearizable, |_| ()).await;
    assert!(matches!(err, Err(ClientError::ForwardToLeader { .. })), "{err:?}");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_batch_limit_larger_than_half_a_segment_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = LogStoreConfig::new(dir.path()).with_segment_size_bytes(64 << 10);
    let config = NodeConfig::new(NodeId(1), dir.path()).with_log(log);
    let sink: Arc<dyn FactSink> = Arc::new(MemorySink::new());
    let err = RaftNode::start(config, sink, &InProcessNetwork::new()).await.unwrap_err();
    assert!(
        matches!(err, StartError::BatchTooLarge { tx_bytes_max, entry_bytes_max: 32768 } if tx_bytes_max == 4 << 20),
        "{err:?}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn leader_shutdown_elects_a_new_leader_and_keeps_acknowledged_writes() {
    let mut cluster = TestCluster::start(3, raft_config()).await;
    let mut acknowledged = Vec::new();
    for i in 0..10 {
        cluster.write(ClusterCommand::AddTxs(vec![tx(i)])).await;
        acknowledged.push(tx(i).hash);
    }
    let old = cluster.leader().await;
    cluster.stop_node(old).await;

    let new = cluster.leader().await;
    assert_ne!(new, old);
    let mut last = RaftIndex(0);
    for i in 10..20 {
        last = cluster.write(ClusterCommand::AddTxs(vec![tx(i)])).await.index;
        acknowledged.push(tx(i).hash);
    }
    cluster.wait_applied(last).await;
    assert_all_present(&cluster, &acknowledged).await;
    assert_same_state(&cluster).await;
    assert_same_facts(&cluster);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_follower_behind_a_purged_log_catches_up_by_snapshot() {
    let config = purging_raft_config();
    let cluster = TestCluster::start(3, config).await;
    let leader = cluster.leader().await;
    let lagging = cluster.nodes.keys().copied().find(|id| *id != leader).unwrap();
    cluster.write(ClusterCommand::AddTxs(vec![tx(0)])).await;
    let last = cluster.fall_behind_a_purged_log(lagging, 1..=40).await;
    let leader = cluster.leader().await;
    cluster.wait_applied(last).await;
    let m = wait_metrics(&cluster.nodes[&lagging], "a snapshot", |m| m.snapshot.is_some()).await;
    let snapshot_index = m.snapshot.unwrap().index;
    assert!(snapshot_index > 1, "{m:?}");
    assert_same_state(&cluster).await;
    assert_all_present(&cluster, &(0..=40).map(|i| tx(i).hash).collect::<Vec<_>>()).await;

    // The entries the snapshot covers were never applied on the lagging node, but it fetched
    // their facts from the leader before installing it: its facts are the leader's, in order.
    assert_eq!(cluster.replicated(lagging), cluster.replicated(leader));
    let indexes: BTreeSet<RaftIndex> =
        cluster.replicated(lagging).iter().filter_map(|e| e.origin.raft_index()).collect();
    assert!(indexes.contains(&RaftIndex(snapshot_index)), "{indexes:?}");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_restarted_node_rebuilds_its_state_without_duplicate_facts() {
    let mut cluster = TestCluster::start(3, raft_config()).await;
    for i in 0..10 {
        cluster.write(ClusterCommand::AddTxs(vec![tx(i)])).await;
    }
    let leader = cluster.leader().await;
    let restarted = cluster.nodes.keys().copied().find(|id| *id != leader).unwrap();
    // A snapshot in the middle: the restart restores it, then re-applies the entries after it,
    // whose facts are already in the sink.
    let node = &cluster.nodes[&restarted];
    node.raft().trigger().snapshot().await.unwrap();
    wait_metrics(node, "a snapshot", |m| m.snapshot.is_some()).await;
    let mut last = RaftIndex(0);
    for i in 10..20 {
        last = cluster.write(ClusterCommand::AddTxs(vec![tx(i)])).await.index;
    }
    cluster.wait_applied(last).await;
    cluster.stop_node(restarted).await;

    for i in 20..30 {
        last = cluster.write(ClusterCommand::AddTxs(vec![tx(i)])).await.index;
    }
    cluster.start_node(restarted).await;
    cluster.wait_applied(last).await;
    assert_same_state(&cluster).await;
    assert_same_facts(&cluster);
    let admitted = cluster
        .replicated(restarted)
        .iter()
        .filter(|e| matches!(e.kind, EventKind::TxAdmitted { .. }))
        .count();
    assert_eq!(admitted, 30);
    let by_node: BTreeMap<NodeId, usize> =
        cluster.nodes.keys().map(|id| (*id, cluster.replicated(*id).len())).collect();
    assert!(by_node.values().all(|n| *n == 30), "{by_node:?} within {WAIT:?}");
    cluster.shutdown().await;
}
