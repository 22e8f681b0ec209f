//! Three nodes in one process over real TCP and mutual TLS on 127.0.0.1: forwarding, failover,
//! snapshot transfer, admin requests, and the transport's refusals and bad frames.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::SocketAddr,
    sync::Arc,
    time::Duration,
};

use mempulse_cluster::{
    AdminReply, AdminRequest, ClientError, ClusterCommand, ClusterNode, ClusterResponse, FactSink,
    FrameFault, LogStoreConfig, MemorySink, NodeConfig, NodeIdentity, NodeRole, RaftConfig,
    RaftNode, ReadConsistency, RefusalReason, Security, TcpConfig, TcpTransport, TlsIdentity,
    TransportError,
    certs::{CertAuthority, NodeCert, generate_ca, issue_node_cert},
};
use mempulse_primitives::{Digest, Event, NodeId, RaftIndex};
use openraft::async_runtime::WatchReceiver;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::{MemoryFacts, WAIT, batch_config, raft_config, tx, wait_metrics};

const LOOPBACK_ANY_PORT: &str = "127.0.0.1:0";

fn identity(ca: &CertAuthority, cert: &NodeCert) -> TlsIdentity {
    TlsIdentity::from_pem(ca.cert_pem(), &cert.cert_pem, &cert.key_pem).unwrap()
}

struct TcpCluster {
    ca: CertAuthority,
    certs: BTreeMap<NodeId, NodeCert>,
    config: RaftConfig,
    dirs: BTreeMap<NodeId, TempDir>,
    addrs: BTreeMap<NodeId, SocketAddr>,
    transports: BTreeMap<NodeId, TcpTransport>,
    nodes: BTreeMap<NodeId, RaftNode>,
    /// Each node's facts, kept across its restarts.
    sinks: BTreeMap<NodeId, MemorySink>,
}

impl TcpCluster {
    async fn start(config: RaftConfig) -> Self {
        let ca = generate_ca("test").unwrap();
        let mut cluster = Self {
            certs: (1..=3)
                .map(|id| (NodeId(id), issue_node_cert(&ca, NodeId(id), &[]).unwrap()))
                .collect(),
            ca,
            config,
            dirs: BTreeMap::new(),
            addrs: BTreeMap::new(),
            transports: BTreeMap::new(),
            nodes: BTreeMap::new(),
            sinks: BTreeMap::new(),
        };
        for id in 1..=3 {
            cluster.dirs.insert(NodeId(id), tempfile::tempdir().unwrap());
            cluster.start_node(NodeId(id), LOOPBACK_ANY_PORT.parse().unwrap()).await;
        }
        let members: BTreeMap<NodeId, ClusterNode> = cluster
            .addrs
            .iter()
            .map(|(id, addr)| (*id, ClusterNode::new(addr.to_string(), "")))
            .collect();
        cluster.nodes[&NodeId(1)].initialize(members).await.unwrap();
        cluster.leader().await;
        cluster
    }

    async fn start_node(&mut self, id: NodeId, addr: SocketAddr) {
        let security = Security::MutualTls(identity(&self.ca, &self.certs[&id]));
        let tcp = TcpConfig::new(id, addr, security).with_bootstrap_members((1..=3).map(NodeId));
        let transport = TcpTransport::bind(tcp).await.unwrap();
        let dir = self.dirs[&id].path();
        let config = NodeConfig::new(id, dir)
            .with_log(LogStoreConfig::new(dir).with_segment_size_bytes(256 << 10))
            .with_raft(self.config.clone())
            .with_batch(batch_config());
        let sink = self.sinks.entry(id).or_default().clone();
        let node = RaftNode::start(config, Arc::new(sink.clone()), &transport).await.unwrap();
        node.service().serve_state_roots(Arc::new(MemoryFacts(sink)));
        self.addrs.insert(id, transport.local_addr());
        self.transports.insert(id, transport);
        self.nodes.insert(id, node);
    }

    async fn stop_node(&mut self, id: NodeId) {
        self.nodes.remove(&id).unwrap().shutdown(WAIT).await;
        let transport = self.transports.remove(&id).unwrap();
        tokio::time::timeout(WAIT, transport.stopped()).await.unwrap();
    }

    /// Restarts a stopped node on its old address (its directory is kept).
    async fn restart_node(&mut self, id: NodeId) {
        self.start_node(id, self.addrs[&id]).await;
    }

    async fn shutdown(mut self) {
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        for id in ids {
            self.stop_node(id).await;
        }
    }

    /// Waits until every running node names the same running leader; returns it.
    async fn leader(&self) -> NodeId {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let first = self.nodes.values().next().unwrap();
            let leader = wait_metrics(first, "a leader", |m| m.current_leader.is_some())
                .await
                .current_leader
                .unwrap();
            let agreed = self.nodes.values().all(|n| n.leader() == Some(leader));
            if agreed && self.nodes.get(&leader).is_some_and(RaftNode::is_ready_leader) {
                return leader;
            }
            assert!(tokio::time::Instant::now() < deadline, "no agreed leader within {WAIT:?}");
            let mut rx = first.raft().metrics();
            let _ = tokio::time::timeout(Duration::from_millis(500), rx.changed()).await;
        }
    }

    fn follower(&self, leader: NodeId) -> NodeId {
        self.nodes.keys().copied().find(|id| *id != leader).unwrap()
    }

    /// Writes through `via`, retrying an outcome the node reports unknown (an `AddTxs` that
    /// did commit comes back as a duplicate rejection).
    async fn write_via(&self, via: NodeId, command: ClusterCommand) -> ClusterResponse {
        for _ in 0..20 {
            match self.nodes[&via].write(command.clone()).await {
                Ok(response) => return response,
                Err(ClientError::Indeterminate { .. } | ClientError::LeaderUnreachable { .. }) => {}
                Err(e) => panic!("write through node {via} failed: {e}"),
            }
        }
        panic!("write through node {via} not acknowledged after 20 attempts");
    }

    async fn wait_applied(&self, index: RaftIndex) {
        for node in self.nodes.values() {
            node.raft()
                .wait(Some(WAIT))
                .applied_index_at_least(Some(index.0), "applied")
                .await
                .unwrap();
        }
    }

    async fn digests(&self) -> BTreeMap<NodeId, (Option<u64>, Digest)> {
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

    /// The incarnation recorded in node `id`'s Raft directory.
    fn incarnation(&self, id: NodeId) -> u64 {
        NodeIdentity::open(id, self.dirs[&id].path()).unwrap().incarnation()
    }

    /// Waits until node `id` has recorded an incarnation for each of `peers`.
    async fn wait_met(&self, id: NodeId, peers: &[NodeId]) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let met = NodeIdentity::open(id, self.dirs[&id].path()).unwrap().peers();
            if peers.iter().all(|p| met.contains_key(p)) {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "node {id} met only {met:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn assert_same_state(&self) {
        let digests = self.digests().await;
        let first = digests.values().next().unwrap();
        assert!(digests.values().all(|d| d == first), "{digests:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_through_a_follower_are_forwarded_and_applied_everywhere() {
    let cluster = TcpCluster::start(raft_config()).await;
    let leader = cluster.leader().await;
    let follower = cluster.follower(leader);
    let mut last = RaftIndex(0);
    for i in 0..10 {
        let response = cluster.write_via(follower, ClusterCommand::AddTxs(vec![tx(i)])).await;
        assert!(response.result.is_ok(), "{response:?}");
        last = response.index;
    }
    cluster.wait_applied(last).await;
    cluster.assert_same_state().await;
    for node in cluster.nodes.values() {
        let len = node.read(ReadConsistency::Weak, |v| v.mempool.len()).await.unwrap();
        assert_eq!(len, 10);
    }
    // Linearizable reads are served by the leader only; a follower answers with the leader.
    let err = cluster.nodes[&follower].read(ReadConsistency::Linearizable, |_| ()).await;
    assert!(
        matches!(err, Err(ClientError::ForwardToLeader { leader_id: Some(l), .. }) if l == leader)
    );

    // Admin over the transport: status from the leader, a transfer forwarded by a follower.
    let status = cluster.nodes[&follower].status();
    assert_eq!(status.leader, Some(leader));
    assert_eq!(status.voters.len(), 3);
    assert_eq!(status.role, NodeRole::Follower);
    let client = cluster.transports[&follower].client();
    let node = ClusterNode::new(cluster.addrs[&leader].to_string(), "");
    let reply = client.admin(leader, &node, AdminRequest::Status, WAIT).await.unwrap().unwrap();
    assert!(
        matches!(reply, AdminReply::Status(s) if s.role == NodeRole::Leader && s.node == leader)
    );
    let reply = cluster.nodes[&follower].transfer_leader(follower).await.unwrap();
    assert_eq!(reply, AdminReply::Done { log_index: None });
    wait_metrics(&cluster.nodes[&follower], "leadership transferred", |m| {
        m.current_leader == Some(follower)
    })
    .await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_shutdown_elects_a_new_leader_and_writes_continue() {
    let mut cluster = TcpCluster::start(raft_config()).await;
    let old = cluster.leader().await;
    let follower = cluster.follower(old);
    for i in 0..5 {
        cluster.write_via(follower, ClusterCommand::AddTxs(vec![tx(i)])).await;
    }
    cluster.stop_node(old).await;
    let new = cluster.leader().await;
    assert_ne!(new, old);
    let via = cluster.follower(new);
    let mut last = RaftIndex(0);
    for i in 5..10 {
        last = cluster.write_via(via, ClusterCommand::AddTxs(vec![tx(i)])).await.index;
    }
    cluster.wait_applied(last).await;
    cluster.assert_same_state().await;
    let len = cluster.nodes[&new].read(ReadConsistency::Linearizable, |v| v.mempool.len()).await;
    assert_eq!(len.unwrap(), 10);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_follower_receives_a_snapshot_over_tcp() {
    let mut config = raft_config();
    config.snapshot_logs_since_last = 10;
    config.max_in_snapshot_log_to_keep = 0;
    config.replication_lag_threshold = 10;
    let mut cluster = TcpCluster::start(config).await;
    let leader = cluster.leader().await;
    let lagging = cluster.follower(leader);
    cluster.write_via(leader, ClusterCommand::AddTxs(vec![tx(0)])).await;
    cluster.stop_node(lagging).await;
    let mut last = RaftIndex(0);
    for i in 1..=40 {
        last = cluster.write_via(leader, ClusterCommand::AddTxs(vec![tx(i)])).await.index;
    }
    wait_metrics(&cluster.nodes[&leader], "log purged past the lagging node", |m| {
        m.purged.is_some_and(|p| p.index > 20)
    })
    .await;
    cluster.restart_node(lagging).await;
    cluster.wait_applied(last).await;
    let m = wait_metrics(&cluster.nodes[&lagging], "a snapshot", |m| m.snapshot.is_some()).await;
    assert!(m.snapshot.unwrap().index > 20, "{m:?}");
    cluster.assert_same_state().await;
    // The facts of the entries the snapshot covers came over TLS from the leader.
    let replicated = |id: NodeId| -> Vec<Event> {
        cluster.sinks[&id].events().into_iter().filter(Event::is_replicated).collect()
    };
    assert_eq!(replicated(lagging), replicated(leader));
    cluster.shutdown().await;
}

/// A raw TLS client: trusts `roots`, presents `cert` (or no certificate).
fn raw_tls(roots_pem: &str, cert: Option<&NodeCert>) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(roots_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match cert {
        None => builder.with_no_client_auth(),
        Some(cert) => {
            let chain = vec![CertificateDer::from_pem_slice(cert.cert_pem.as_bytes()).unwrap()];
            let key = PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes()).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
    };
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// Connects with `connector` as server `node-<to>`, writes `bytes`, and reads until the
/// server closes the connection (bounded by [`WAIT`]); returns what was read.
async fn exchange_until_closed(
    connector: &tokio_rustls::TlsConnector,
    addr: SocketAddr,
    to: NodeId,
    bytes: &[u8],
) -> Vec<u8> {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from(format!("node-{}", to.0)).unwrap();
    let Ok(mut tls) = connector.connect(name, tcp).await else { return Vec::new() };
    let mut read = Vec::new();
    let run = async {
        if tls.write_all(bytes).await.is_ok() && tls.flush().await.is_ok() {
            let _ = tls.read_to_end(&mut read).await;
        }
    };
    tokio::time::timeout(WAIT, run).await.expect("the server did not close the connection");
    read
}

/// A hello frame as `wire.rs` lays it out.
fn hello(from: u64, to: u64, incarnation: u64) -> Vec<u8> {
    let mut body = vec![mempulse_cluster::WIRE_VERSION, 1];
    body.extend_from_slice(&0u64.to_le_bytes());
    body.extend_from_slice(b"MPRT");
    body.extend_from_slice(&from.to_le_bytes());
    body.extend_from_slice(&to.to_le_bytes());
    body.extend_from_slice(&incarnation.to_le_bytes());
    let mut frame = u32::try_from(body.len()).unwrap().to_le_bytes().to_vec();
    frame.extend_from_slice(&body);
    frame
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_peers_are_refused_and_counted_members_are_accepted() {
    let cluster = TcpCluster::start(raft_config()).await;
    let target = NodeId(1);
    let addr = cluster.addrs[&target];
    let stats = || cluster.transports[&target].stats();

    // No client certificate.
    let no_cert = raw_tls(cluster.ca.cert_pem(), None);
    exchange_until_closed(&no_cert, addr, target, &hello(2, 1, 0)).await;
    assert_eq!(stats().refused(RefusalReason::NoCertificate), 1, "{:?}", stats());

    // A certificate for a member id, from another CA.
    let other_ca = generate_ca("other").unwrap();
    let foreign = issue_node_cert(&other_ca, NodeId(2), &[]).unwrap();
    let foreign_tls = raw_tls(cluster.ca.cert_pem(), Some(&foreign));
    exchange_until_closed(&foreign_tls, addr, target, &hello(2, 1, 0)).await;
    assert_eq!(stats().refused(RefusalReason::UntrustedCertificate), 1, "{:?}", stats());

    // A valid certificate naming a node that is not a member, through the real client.
    let outsider = issue_node_cert(&cluster.ca, NodeId(9), &[]).unwrap();
    let security = Security::MutualTls(identity(&cluster.ca, &outsider));
    let tcp = TcpConfig::new(NodeId(9), LOOPBACK_ANY_PORT.parse().unwrap(), security);
    let outsider = TcpTransport::bind(tcp).await.unwrap();
    let node = ClusterNode::new(addr.to_string(), "");
    let refused = outsider.client().admin(target, &node, AdminRequest::Status, WAIT).await;
    assert_eq!(refused, Err(mempulse_cluster::ForwardFailure::NotSent));
    assert_eq!(stats().refused(RefusalReason::NotAMember), 1, "{:?}", stats());

    // A member's certificate claiming another member's id.
    let member2 = raw_tls(cluster.ca.cert_pem(), Some(&cluster.certs[&NodeId(2)]));
    let answer = exchange_until_closed(&member2, addr, target, &hello(3, 1, 0)).await;
    // The hello answer carries refusal code 5, identity mismatch (metrics.rs).
    assert_eq!(answer.last(), Some(&5), "{answer:?}");
    assert_eq!(stats().refused(RefusalReason::IdentityMismatch), 1, "{:?}", stats());

    // A member is accepted: its status request is answered.
    let member = cluster.transports[&NodeId(2)].client();
    let reply = member.admin(target, &node, AdminRequest::Status, WAIT).await.unwrap();
    assert!(matches!(reply, Ok(AdminReply::Status(s)) if s.node == target));
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbage_frame_closes_its_connection_and_the_node_keeps_serving() {
    let cluster = TcpCluster::start(raft_config()).await;
    let leader = cluster.leader().await;
    let target = cluster.follower(leader);
    let addr = cluster.addrs[&target];
    let member = raw_tls(cluster.ca.cert_pem(), Some(&cluster.certs[&leader]));
    let incarnation = cluster.incarnation(leader);

    // Accepted hello (its answer's status byte follows the frame header), then a frame of an
    // unknown version.
    let mut bytes = hello(leader.0, target.0, incarnation);
    bytes.extend_from_slice(&[10, 0, 0, 0, 0xEE, 2, 0, 0, 0, 0, 0, 0, 0, 0]);
    let answer = exchange_until_closed(&member, addr, target, &bytes).await;
    assert_eq!(answer.get(14), Some(&0), "hello accepted: {answer:?}");
    let stats = cluster.transports[&target].stats();
    assert_eq!(stats.rejected_frames(FrameFault::BadVersion), 1, "{stats:?}");

    // A declared length far above the limit: refused before anything is allocated.
    let mut bytes = hello(leader.0, target.0, incarnation);
    bytes.extend_from_slice(&u32::MAX.to_le_bytes());
    exchange_until_closed(&member, addr, target, &bytes).await;
    let stats = cluster.transports[&target].stats();
    assert_eq!(stats.rejected_frames(FrameFault::TooLarge), 1, "{stats:?}");

    // An append-entries frame whose payload does not decode.
    let mut bytes = hello(leader.0, target.0, incarnation);
    bytes.extend_from_slice(&[
        13,
        0,
        0,
        0,
        mempulse_cluster::WIRE_VERSION,
        2,
        1,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0xFF,
        0xFF,
        0xFF,
    ]);
    exchange_until_closed(&member, addr, target, &bytes).await;
    let stats = cluster.transports[&target].stats();
    assert_eq!(stats.rejected_frames(FrameFault::Malformed), 1, "{stats:?}");

    // Garbage before TLS is a failed handshake. (At least one: on a loaded machine a member's
    // own handshake may also time out and be counted under the same reason.)
    let before = cluster.transports[&target].stats().refused(RefusalReason::TlsHandshake);
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    let mut sink = Vec::new();
    tokio::time::timeout(WAIT, tcp.read_to_end(&mut sink)).await.unwrap().ok();
    let stats = cluster.transports[&target].stats();
    assert!(stats.refused(RefusalReason::TlsHandshake) > before, "{stats:?}");

    // The node still serves: a write through it is forwarded and applied.
    let response = cluster.write_via(target, ClusterCommand::AddTxs(vec![tx(1)])).await;
    cluster.wait_applied(response.index).await;
    cluster.assert_same_state().await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "current_thread")]
async fn insecure_or_mismatched_settings_refuse_to_start() {
    let any: SocketAddr = "0.0.0.0:0".parse().unwrap();
    let err =
        TcpTransport::bind(TcpConfig::new(NodeId(1), any, Security::InsecurePlaintextLoopback))
            .await
            .unwrap_err();
    assert!(matches!(err, TransportError::PlaintextNotLoopback { .. }), "{err:?}");

    let ca = generate_ca("test").unwrap();
    let cert = issue_node_cert(&ca, NodeId(2), &["127.0.0.1".to_owned()]).unwrap();
    let security = Security::MutualTls(identity(&ca, &cert));
    let err =
        TcpTransport::bind(TcpConfig::new(NodeId(1), LOOPBACK_ANY_PORT.parse().unwrap(), security))
            .await
            .unwrap_err();
    assert!(matches!(err, TransportError::CertificateNotForNode { id: NodeId(1) }), "{err:?}");

    let err = TlsIdentity::from_pem("not pem", &cert.cert_pem, &cert.key_pem).unwrap_err();
    assert!(matches!(err, TransportError::Tls { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plaintext_loopback_cluster_forwards_writes() {
    let mut nodes = BTreeMap::new();
    let mut transports = Vec::new();
    let mut dirs = Vec::new();
    for id in 1..=3 {
        let tcp = TcpConfig::new(
            NodeId(id),
            LOOPBACK_ANY_PORT.parse().unwrap(),
            Security::InsecurePlaintextLoopback,
        )
        .with_bootstrap_members((1..=3).map(NodeId));
        let transport = TcpTransport::bind(tcp).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let config = NodeConfig::new(NodeId(id), dir.path())
            .with_raft(raft_config())
            .with_batch(batch_config());
        let sink: Arc<dyn FactSink> = Arc::new(MemorySink::new());
        let node = RaftNode::start(config, sink, &transport).await.unwrap();
        nodes.insert(NodeId(id), (node, ClusterNode::new(transport.local_addr().to_string(), "")));
        transports.push(transport);
        dirs.push(dir);
    }
    let members = nodes.iter().map(|(id, (_, n))| (*id, n.clone())).collect();
    nodes[&NodeId(1)].0.initialize(members).await.unwrap();
    let leader = wait_metrics(&nodes[&NodeId(2)].0, "a leader", |m| m.current_leader.is_some())
        .await
        .current_leader
        .unwrap();
    let via = nodes.keys().copied().find(|id| *id != leader).unwrap();
    let mut response = nodes[&via].0.write(ClusterCommand::AddTxs(vec![tx(1)])).await;
    // A leader elected but not yet known to every node: retry once the outcome is known.
    for _ in 0..20 {
        if !matches!(
            response,
            Err(ClientError::Indeterminate { .. } | ClientError::LeaderUnreachable { .. })
        ) {
            break;
        }
        response = nodes[&via].0.write(ClusterCommand::AddTxs(vec![tx(1)])).await;
    }
    let response = response.unwrap();
    for (node, _) in nodes.values() {
        node.raft()
            .wait(Some(WAIT))
            .applied_index_at_least(Some(response.index.0), "applied")
            .await
            .unwrap();
    }
    for (_, (node, _)) in nodes {
        node.shutdown(WAIT).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_member_is_refused_until_it_rejoins_as_a_learner() {
    let mut cluster = TcpCluster::start(raft_config()).await;
    let leader = cluster.leader().await;
    let wiped = cluster.follower(leader);
    let other = (1..=3).map(NodeId).find(|id| *id != leader && *id != wiped).unwrap();
    cluster.write_via(wiped, ClusterCommand::AddTxs(vec![tx(0)])).await;
    // Every pair has met (the followers through the introductions).
    for id in [leader, wiped, other] {
        let peers: Vec<NodeId> = (1..=3).map(NodeId).filter(|p| *p != id).collect();
        cluster.wait_met(id, &peers).await;
    }
    let old = cluster.incarnation(wiped);

    // Its Raft directory is lost; it comes back under its old id and address.
    cluster.stop_node(wiped).await;
    cluster.dirs.insert(wiped, tempfile::tempdir().unwrap());
    cluster.restart_node(wiped).await;
    assert_ne!(cluster.incarnation(wiped), old);
    let refused =
        |id: NodeId| cluster.transports[&id].stats().refused(RefusalReason::IncarnationChanged);
    // The leader refuses it when it dials it to replicate (its hello answer shows the change).
    let deadline = tokio::time::Instant::now() + WAIT;
    while refused(leader) == 0 {
        assert!(tokio::time::Instant::now() < deadline, "the leader did not refuse it");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A follower refuses its hello too (here, an admin request it sends).
    let to_other = ClusterNode::new(cluster.addrs[&other].to_string(), "");
    let client = cluster.transports[&wiped].client();
    let answer = client.admin(other, &to_other, AdminRequest::Status, WAIT).await;
    assert_eq!(answer, Err(mempulse_cluster::ForwardFailure::NotSent));
    assert_eq!(refused(other), 1);
    // The others keep committing without it; it receives nothing.
    let mut last = RaftIndex(0);
    for i in 1..4 {
        last = cluster.write_via(other, ClusterCommand::AddTxs(vec![tx(i)])).await.index;
    }
    let applied = cluster.nodes[&wiped].raft().metrics().borrow_watched().last_applied;
    assert_eq!(applied, None, "the wiped node applied entries while refused");
    assert_eq!(cluster.nodes[&wiped].status().voters, BTreeSet::new());

    // The operator re-adds it: remove, add as a learner (it catches up), promote.
    let node = ClusterNode::new(cluster.addrs[&wiped].to_string(), "");
    cluster.nodes[&other].remove(wiped).await.unwrap();
    cluster.nodes[&other].add_learner(wiped, node).await.unwrap();
    cluster.nodes[&other].promote(BTreeSet::from([wiped])).await.unwrap();
    cluster.wait_applied(last).await;
    let voters = cluster.nodes[&cluster.leader().await].status().voters;
    assert_eq!(voters, (1..=3).map(NodeId).collect::<BTreeSet<_>>());
    let last = cluster.write_via(wiped, ClusterCommand::AddTxs(vec![tx(9)])).await.index;
    cluster.wait_applied(last).await;
    cluster.assert_same_state().await;
    cluster.shutdown().await;
}
