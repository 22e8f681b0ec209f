//! Linearizable reads on any member (read index from the leader, then a local apply wait):
//! every acknowledged write is visible on every follower at once, and a member that cannot
//! confirm a read index answers an error, never a stale state.

use std::time::Duration;

use mempulse_cluster::{ClientError, ClusterCommand, ReadConsistency};
use mempulse_primitives::NodeId;
use tokio::time::Instant;

use crate::harness::{TestCluster, raft_config, tx};

/// Bound of one linearizable read in these tests.
const READ_TIMEOUT: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "current_thread")]
async fn a_follower_reads_every_acknowledged_write_at_once() {
    let cluster = TestCluster::start(3, raft_config()).await;
    let leader = cluster.leader().await;
    let followers: Vec<NodeId> = cluster.nodes.keys().copied().filter(|id| *id != leader).collect();
    let (writer, reader) = (&cluster.nodes[&followers[0]], &cluster.nodes[&followers[1]]);
    for i in 0..30 {
        // Written through one follower (forwarded), read on the other right after the ack:
        // the commit needed only the leader and the writer, so the reader may not have it
        // yet and must catch up before it answers.
        let response = writer.write(ClusterCommand::AddTxs(vec![tx(i)])).await.unwrap();
        let hash = tx(i).hash;
        let (present, applied) = reader
            .read_linearizable(READ_TIMEOUT, |v| {
                (v.mempool.get(&hash).is_some(), v.applied.map(|a| a.index))
            })
            .await
            .unwrap();
        assert!(present, "write {i} at index {} missing on the reader", response.index);
        assert!(applied >= Some(response.index.0), "write {i}: reader applied {applied:?}");
    }
    // The leader serves the same call locally.
    let len = cluster.nodes[&leader].read_linearizable(READ_TIMEOUT, |v| v.mempool.len()).await;
    assert_eq!(len.unwrap(), 30);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_member_without_a_quorum_refuses_linearizable_reads_but_serves_weak_ones() {
    let cluster = TestCluster::start(3, raft_config()).await;
    let leader = cluster.leader().await;
    cluster.write(ClusterCommand::AddTxs(vec![tx(0)])).await;
    let reader_id = cluster.nodes.keys().copied().find(|id| *id != leader).unwrap();
    let reader = &cluster.nodes[&reader_id];
    reader.read_linearizable(READ_TIMEOUT, |_| ()).await.unwrap();
    // Cut the reader off from both others: no read index can be confirmed any more.
    for id in cluster.nodes.keys().filter(|id| **id != reader_id) {
        cluster.net.isolate(*id);
    }
    let started = Instant::now();
    let refused = reader.read_linearizable(READ_TIMEOUT, |v| v.mempool.len()).await;
    let took = started.elapsed();
    assert!(
        matches!(
            refused,
            Err(ClientError::ForwardToLeader { leader_id: None, .. }
                | ClientError::LeaderUnreachable { .. }
                | ClientError::NoQuorum)
        ),
        "{refused:?}"
    );
    assert!(took < READ_TIMEOUT + Duration::from_secs(1), "refused after {took:?}");
    let weak = reader.read(ReadConsistency::Weak, |v| v.mempool.len()).await.unwrap();
    assert_eq!(weak, 1);
    cluster.shutdown().await;
}
