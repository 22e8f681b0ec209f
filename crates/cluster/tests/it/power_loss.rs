//! A power loss under the event log's `Interval` sync policy loses no replicated fact.
//!
//! Under `Interval` the event log acknowledges facts once written and syncs them within the
//! interval, so a power loss takes the last unsynced facts. Entries after the last Raft
//! snapshot are applied again on restart and their missing facts derived again; the entries a
//! snapshot covers are not, so the snapshot syncs the event log before it is saved. Here the
//! event log lives on a simulated disk whose crash image keeps only synced bytes, the Raft log
//! and snapshots on a real directory (synced per append), and the interval is an hour, so
//! nothing is synced unless something asks.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use mempulse_cluster::{
    ClusterCommand, ClusterNode, FactSink, InProcessNetwork, LogStoreConfig, NodeConfig, RaftNode,
    WalFactSink,
};
use mempulse_primitives::{Event, EventKind, NodeId, RaftIndex, Seq};
use mempulse_wal::{
    Sequencer, SequencerConfig, SequencerHandle, SyncPolicy, Wal, WalConfig,
    test_utils::{CrashMode, SimStorage},
};
use tempfile::TempDir;

use crate::harness::{
    TestCluster, WAIT, batch_config, purging_raft_config, raft_config, tx, wait_metrics,
};

const NODE: NodeId = NodeId(1);

/// The event log on `disk`, synced only when asked (or when a segment is sealed).
fn event_log(disk: &SimStorage) -> (Arc<dyn FactSink>, SequencerHandle) {
    let config =
        WalConfig::new("/events").with_sync(SyncPolicy::Interval(Duration::from_secs(3600)));
    let wal = Wal::open_with_storage(config, Arc::new(disk.clone())).unwrap();
    let handle = Sequencer::start(wal, SequencerConfig::default()).unwrap();
    let sink = WalFactSink::open(handle.clone(), Duration::from_secs(5)).unwrap();
    (Arc::new(sink), handle)
}

async fn start(dir: &TempDir, sink: Arc<dyn FactSink>, net: &InProcessNetwork) -> RaftNode {
    let config = NodeConfig::new(NODE, dir.path())
        .with_log(LogStoreConfig::new(dir.path()).with_segment_size_bytes(1 << 20))
        .with_raft(raft_config())
        .with_batch(batch_config());
    RaftNode::start(config, sink, net).await.unwrap()
}

/// Writes one transaction per `i` and returns the (Raft index, fact) pairs they produced.
async fn write(node: &RaftNode, range: std::ops::Range<u64>) -> Vec<(RaftIndex, EventKind)> {
    let mut facts = Vec::new();
    for i in range {
        let response = node.write(ClusterCommand::AddTxs(vec![tx(i)])).await.unwrap();
        let outcome = response.result.unwrap();
        assert!(matches!(outcome.facts[..], [EventKind::TxAdmitted { .. }]), "{outcome:?}");
        facts.extend(outcome.facts.into_iter().map(|kind| (response.index, kind)));
    }
    facts
}

/// Every replicated fact of the durable event log, in log order.
fn replicated(handle: &SequencerHandle) -> Vec<(RaftIndex, EventKind)> {
    let reader = handle.reader();
    let records = reader.scan(Seq(0), usize::MAX).unwrap();
    records
        .iter()
        .map(|r| Event::from_bytes(&r.payload).unwrap())
        .filter_map(|e| e.origin.raft_index().map(|index| (index, e.kind)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_power_loss_under_interval_sync_loses_no_replicated_fact() {
    let dir = tempfile::tempdir().unwrap();
    let net = InProcessNetwork::new();
    let disk = SimStorage::new();
    let (sink, handle) = event_log(&disk);
    let node = start(&dir, sink, &net).await;
    let members = BTreeMap::from([(NODE, ClusterNode::new("node1:7000", "node1:8080"))]);
    node.initialize(members).await.unwrap();

    let mut expected = write(&node, 0..8).await;
    // Acknowledged but not synced: no consumer of the log sees these facts yet.
    assert_eq!(replicated(&handle), []);
    let covered = node.snapshot_now(WAIT).await.unwrap();
    assert!(covered >= expected.last().unwrap().0.0, "the snapshot covers every write");
    // The snapshot synced the event log first: its facts are durable and published.
    assert_eq!(replicated(&handle), expected);

    // More writes after the snapshot, then the power goes: only synced bytes survive.
    expected.extend(write(&node, 8..16).await);
    let last = expected.last().unwrap().0;
    let image = disk.crash_image(CrashMode::DropUnsynced);
    node.shutdown(WAIT).await;
    handle.shutdown().await.unwrap();

    let (sink, handle) = event_log(&image);
    assert!(replicated(&handle).len() < expected.len(), "the power loss took the last facts");
    let node = start(&dir, sink, &net).await;
    node.raft().wait(Some(WAIT)).applied_index_at_least(Some(last.0), "re-applied").await.unwrap();
    // Facts reach the log when applied; a sync publishes them to the reader.
    handle.try_sync().unwrap().await.unwrap();
    assert_eq!(replicated(&handle), expected, "every replicated fact, once, in order");
    node.shutdown(WAIT).await;
    handle.shutdown().await.unwrap();
}

/// A follower installs a leader's snapshot while facts it derived itself are still unsynced:
/// the install syncs them first, since a restart from the installed snapshot never applies the
/// entries they came from again.
#[tokio::test(flavor = "current_thread")]
async fn installing_a_snapshot_syncs_the_facts_the_member_derived_before() {
    let config = purging_raft_config();
    let disks: BTreeMap<NodeId, SimStorage> =
        (1..=3).map(|id| (NodeId(id), SimStorage::new())).collect();
    let logs: BTreeMap<NodeId, (Arc<dyn FactSink>, SequencerHandle)> =
        disks.iter().map(|(id, disk)| (*id, event_log(disk))).collect();
    let sinks = logs.iter().map(|(id, (sink, _))| (*id, Arc::clone(sink))).collect();
    let cluster = TestCluster::start_with_sinks(3, config, sinks).await;
    let leader = cluster.leader().await;
    let lagging = cluster.nodes.keys().copied().find(|id| *id != leader).unwrap();

    // The lagging member applies the first write (its fact is written, not synced), then is
    // cut off while the leader writes on, snapshots and purges its log.
    let first = cluster.write(ClusterCommand::AddTxs(vec![tx(0)])).await.index;
    cluster.wait_applied(first).await;
    let last = cluster.fall_behind_a_purged_log(lagging, 1..=40).await;
    cluster.wait_applied(last).await;
    let m = wait_metrics(&cluster.nodes[&lagging], "an installed snapshot", |m| {
        m.snapshot.is_some_and(|s| s.index > first.0)
    })
    .await;
    assert!(m.snapshot.unwrap().index > first.0);

    // The power goes: the fact of the first write is on disk.
    let image = disks[&lagging].crash_image(CrashMode::DropUnsynced);
    cluster.shutdown().await;
    for (_, handle) in logs.values() {
        handle.shutdown().await.unwrap();
    }
    let (_, survived) = event_log(&image);
    let facts = replicated(&survived);
    assert!(
        facts.iter().any(|(index, kind)| *index == first
            && matches!(kind, EventKind::TxAdmitted { tx: admitted, .. } if admitted.hash == tx(0).hash)),
        "the first write's fact did not survive: {facts:?}"
    );
    survived.shutdown().await.unwrap();
}
