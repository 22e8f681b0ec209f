//! A member whose state machine diverged (the test-only `ApplyFault`) gets its mempool
//! reinstalled from a healthy member's (`MempoolReinstaller`), without leaving the cluster,
//! and then applies the same facts and reaches the same digests as the others.

use std::time::Duration;

use mempulse_cluster::{ApplyFault, ClusterCommand, ReinstallError};
use mempulse_primitives::{EventKind, NodeId, RaftIndex};

use crate::harness::{TestCluster, raft_config, tx};

/// Node 3 with the fault armed from the next entry on, and the index of the last write.
async fn diverged_cluster() -> (TestCluster, RaftIndex) {
    let mut cluster = TestCluster::start(3, raft_config()).await;
    let mut last = RaftIndex(0);
    for i in 0..5 {
        last = cluster.write(ClusterCommand::AddTxs(vec![tx(i)])).await.index;
    }
    cluster.wait_applied(last).await;
    let diverged = NodeId(3);
    cluster.stop_node(diverged).await;
    cluster.faults.insert(diverged, ApplyFault { first_index: RaftIndex(last.0 + 1) });
    cluster.start_node(diverged).await;
    for i in 5..15 {
        last = cluster.write(ClusterCommand::AddTxs(vec![tx(i)])).await.index;
    }
    cluster.wait_applied(last).await;
    (cluster, last)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_diverged_state_machine_is_reinstalled_from_a_healthy_member() {
    let (mut cluster, mut last) = diverged_cluster().await;
    let diverged = NodeId(3);
    let healthy = NodeId(1);
    let digests = cluster.digests().await;
    assert_eq!(digests[&healthy].0, digests[&diverged].0, "same applied index");
    assert_ne!(digests[&healthy].1, digests[&diverged].1, "the fault made node 3 diverge");
    let rejected = |id| {
        cluster
            .replicated(id)
            .iter()
            .filter(|e| matches!(e.kind, EventKind::TxRejected { .. }))
            .count()
    };
    assert_eq!((rejected(healthy), rejected(diverged)), (0, 1));

    let export = cluster.nodes[&healthy].state().export_mempool().unwrap();
    assert_eq!(export.digest, digests[&healthy].1);
    let reinstaller = cluster.nodes[&diverged].mempool_reinstaller();
    let done =
        tokio::task::spawn_blocking(move || reinstaller.reinstall(&export, Duration::from_secs(5)));
    let done = done.await.unwrap().unwrap();
    assert_eq!(done.from, last, "the healthy member had applied every write");
    assert!(done.through >= done.from);
    assert_eq!(done.reapplied, done.through.0 - done.from.0);
    assert_eq!(done.digest, digests[&healthy].1);
    assert_eq!(cluster.digests().await[&diverged].1, digests[&healthy].1);

    // From here on node 3 derives the same facts as the others.
    let before = cluster.replicated(diverged).len();
    for i in 15..25 {
        last = cluster.write(ClusterCommand::AddTxs(vec![tx(i)])).await.index;
    }
    cluster.wait_applied(last).await;
    let digests = cluster.digests().await;
    assert_eq!(digests[&diverged], digests[&healthy]);
    let after: Vec<_> = cluster.replicated(diverged).split_off(before);
    let healthy_facts = cluster.replicated(healthy);
    assert_eq!(after.len(), 10);
    assert_eq!(after[..], healthy_facts[healthy_facts.len() - 10..]);

    // A snapshot of the repaired state covers the applied index, and a restart starts from
    // it with the same state.
    let saved = cluster.nodes[&diverged].snapshot_now(Duration::from_secs(10)).await;
    assert!(saved.is_some_and(|index| index >= last.0), "{saved:?}");
    cluster.faults.clear();
    cluster.stop_node(diverged).await;
    cluster.start_node(diverged).await;
    cluster.wait_applied(last).await;
    let digests = cluster.digests().await;
    assert_eq!(digests[&diverged], digests[&healthy]);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reinstall_refuses_bad_bytes_and_a_state_ahead_of_this_member() {
    let (cluster, _) = diverged_cluster().await;
    let diverged = NodeId(3);
    let before = cluster.digests().await[&diverged];
    let reinstaller = cluster.nodes[&diverged].mempool_reinstaller();
    let good = cluster.nodes[&NodeId(1)].state().export_mempool().unwrap();

    let mut tampered = good.clone();
    tampered.bytes[10] ^= 1;
    let result = reinstaller.reinstall(&tampered, Duration::ZERO);
    assert!(matches!(result, Err(ReinstallError::DigestMismatch { .. })), "{result:?}");

    let mut garbage = good.clone();
    garbage.bytes.truncate(12);
    garbage.digest = mempulse_primitives::Digest::sha256(&garbage.bytes);
    let result = reinstaller.reinstall(&garbage, Duration::ZERO);
    assert!(matches!(result, Err(ReinstallError::Corrupt(_))), "{result:?}");

    let mut ahead = good;
    ahead.applied = RaftIndex(ahead.applied.0 + 1_000);
    let result = reinstaller.reinstall(&ahead, Duration::from_millis(50));
    assert!(matches!(result, Err(ReinstallError::Behind { .. })), "{result:?}");

    assert_eq!(cluster.digests().await[&diverged], before, "a refused reinstall changes nothing");
    cluster.shutdown().await;
}
