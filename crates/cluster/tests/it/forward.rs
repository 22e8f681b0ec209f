//! Forwarding through leader changes: a follower follows an answer's hint at once, and when
//! the leader it knows refuses a write without naming another (a leader elected a moment ago,
//! whose own view still lags), it retries after a short backoff instead of waiting for a
//! different leader that will never come.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use futures_util::future::BoxFuture;
use mempulse_cluster::{
    AdminError, AdminReply, AdminRequest, ClientError, ClusterCommand, ClusterNode,
    ClusterResponse, FactSink, ForwardFailure, Forwarder, InProcessNetwork, LogStoreConfig,
    MemorySink, NodeConfig, NodeIdentity, NodeService, RaftNode, Transport,
};
use mempulse_mempool::test_utils::tx;
use mempulse_primitives::NodeId;

use crate::harness::{WAIT, batch_config, raft_config, wait_metrics};

/// What the faulty forwarder answers instead of delivering, while it has answers left.
#[derive(Clone, Copy, Debug)]
enum Refusal {
    /// "Not the leader", naming no one.
    NoHint,
    /// "Not the leader", naming this node.
    HintAt(NodeId),
}

/// An in-process network whose forwarders refuse the first writes as configured.
#[derive(Clone, Debug)]
struct Refusing {
    inner: InProcessNetwork,
    refusal: Refusal,
    left: Arc<AtomicU32>,
    /// Targets of every forwarded write, in order.
    seen: Arc<Mutex<Vec<NodeId>>>,
}

#[derive(Debug)]
struct RefusingForwarder {
    inner: Arc<dyn Forwarder>,
    refusal: Refusal,
    left: Arc<AtomicU32>,
    seen: Arc<Mutex<Vec<NodeId>>>,
}

impl Forwarder for RefusingForwarder {
    fn write<'a>(
        &'a self,
        target: NodeId,
        node: &'a ClusterNode,
        command: ClusterCommand,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Result<ClusterResponse, ClientError>, ForwardFailure>> {
        self.seen.lock().unwrap().push(target);
        let refuse =
            self.left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if refuse.is_ok() {
            let leader_id = match self.refusal {
                Refusal::NoHint => None,
                Refusal::HintAt(id) => Some(id),
            };
            return Box::pin(async move {
                Ok(Err(ClientError::ForwardToLeader { leader_id, leader: None }))
            });
        }
        self.inner.write(target, node, command, timeout)
    }

    fn admin<'a>(
        &'a self,
        target: NodeId,
        node: &'a ClusterNode,
        request: AdminRequest,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Result<AdminReply, AdminError>, ForwardFailure>> {
        self.inner.admin(target, node, request, timeout)
    }
}

impl Transport for Refusing {
    type Factory = <InProcessNetwork as Transport>::Factory;

    fn connect(&self, id: NodeId, send_timeout: Duration) -> Self::Factory {
        self.inner.connect(id, send_timeout)
    }

    fn serve(&self, id: NodeId, node: NodeService) {
        self.inner.serve(id, node);
    }

    fn stop_serving(&self, id: NodeId) {
        self.inner.stop_serving(id);
    }

    fn forwarder(&self, id: NodeId) -> Arc<dyn Forwarder> {
        Arc::new(RefusingForwarder {
            inner: self.inner.forwarder(id),
            refusal: self.refusal,
            left: Arc::clone(&self.left),
            seen: Arc::clone(&self.seen),
        })
    }

    fn attach_identity(&self, id: NodeId, identity: Arc<NodeIdentity>) {
        self.inner.attach_identity(id, identity);
    }
}

/// Three nodes on `net`, each with forward deadline `deadline`; returns them once node 1 leads
/// and every node knows it.
async fn three_nodes(
    net: &Refusing,
    deadline: Duration,
    dirs: &[tempfile::TempDir],
) -> Vec<RaftNode> {
    let mut nodes = Vec::new();
    for (id, dir) in (1..=3).zip(dirs) {
        let config = NodeConfig::new(NodeId(id), dir.path())
            .with_log(LogStoreConfig::new(dir.path()).with_segment_size_bytes(256 << 10))
            .with_raft(raft_config())
            .with_batch(batch_config())
            .with_forward_deadline(deadline);
        let sink: Arc<dyn FactSink> = Arc::new(MemorySink::new());
        nodes.push(RaftNode::start(config, sink, net).await.unwrap());
    }
    let members = (1..=3)
        .map(|id| {
            (NodeId(id), ClusterNode::new(format!("node{id}:7000"), format!("node{id}:8080")))
        })
        .collect();
    nodes[0].initialize(members).await.unwrap();
    for node in &nodes {
        wait_metrics(node, "node 1 to lead", |m| m.current_leader == Some(NodeId(1))).await;
    }
    // A write on the leader itself (never forwarded, so never seen) returns once the leader
    // serves writes: a forward sent before that would be refused by the real leader too, and
    // the test would count a retry it did not script.
    let ready = nodes[0].write(ClusterCommand::AddTxs(vec![tx(9, 0, 1)])).await;
    assert!(ready.is_ok(), "{ready:?}");
    nodes
}

async fn shutdown(nodes: Vec<RaftNode>) {
    for node in nodes {
        node.shutdown(WAIT).await;
    }
}

/// Eight refusals without a hint from the leader the follower knows: the old rule (wait for a
/// leader other than the one that refused, up to an election timeout of 400 ms each) would
/// spend over 3 s and miss the 2 s deadline; backoffs of 2 ms doubling up to the heartbeat
/// (50 ms) spend about 0.2 s.
#[tokio::test(flavor = "current_thread")]
async fn a_refusal_without_a_hint_is_retried_after_a_short_backoff() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let net = Refusing {
        inner: InProcessNetwork::new(),
        refusal: Refusal::NoHint,
        left: Arc::new(AtomicU32::new(8)),
        seen: Arc::default(),
    };
    let nodes = three_nodes(&net, Duration::from_secs(2), &dirs).await;
    let answer = nodes[1].write(ClusterCommand::AddTxs(vec![tx(1, 0, 1)])).await;
    assert!(answer.is_ok(), "{answer:?}");
    assert_eq!(*net.seen.lock().unwrap(), vec![NodeId(1); 9], "eight refusals, then served");
    shutdown(nodes).await;
}

/// A refusal naming another node sends the next attempt there at once (the old rule waited
/// for this node's own view to change); a refusal there naming itself is no new hint, and the
/// follower goes back to the leader it knows, which serves.
#[tokio::test(flavor = "current_thread")]
async fn a_hint_naming_another_node_is_followed_at_once() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let net = Refusing {
        inner: InProcessNetwork::new(),
        refusal: Refusal::HintAt(NodeId(3)),
        left: Arc::new(AtomicU32::new(2)),
        seen: Arc::default(),
    };
    let nodes = three_nodes(&net, WAIT, &dirs).await;
    let answer = nodes[1].write(ClusterCommand::AddTxs(vec![tx(1, 0, 1)])).await;
    assert!(answer.is_ok(), "{answer:?}");
    assert_eq!(*net.seen.lock().unwrap(), vec![NodeId(1), NodeId(3), NodeId(1)]);
    shutdown(nodes).await;
}
