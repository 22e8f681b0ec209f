//! `subscribe_if` over loopback: streams open and close as the catalog's tags change, every
//! member of a matching cluster stays connected, sends go to the leader's stream and move to
//! another member when it fails, and proposer turns record whether the source was connected.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use bytes::{Bytes, BytesMut};
use futures_util::future::BoxFuture;
use mempulse_net::{
    FrameDecoder, StreamFrame, StreamTally,
    peer::{
        Announcement, BoxPeerIo, PeerConnector, PeerRole, RouteConfig, RouteError, TxRouter,
        subscribe_if,
    },
};
use mempulse_primitives::{Height, NodeId, ValidatorId};
use mempulse_schedule::{Tag, TagPredicate, Tags, default_source_predicate};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::watch,
    task::{JoinHandle, JoinSet},
};

use super::support::eventually;

/// A fake node's tx-stream listener: grants credit, counts the transactions it receives.
struct FakeNode {
    addr: SocketAddr,
    received: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl FakeNode {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&received);
        let task = tokio::spawn(async move {
            let mut streams = JoinSet::new();
            while let Ok((tcp, _)) = listener.accept().await {
                streams.spawn(serve(tcp, Arc::clone(&counter)));
            }
        });
        Self { addr, received, task }
    }

    fn received(&self) -> u64 {
        self.received.load(Ordering::SeqCst)
    }
}

async fn serve(mut tcp: TcpStream, received: Arc<AtomicU64>) {
    let mut decoder = FrameDecoder::new(1 << 20);
    let mut buf = vec![0u8; 4096];
    loop {
        while let Ok(Some(frame)) = decoder.next_frame() {
            let reply = match frame {
                StreamFrame::Hello { .. } => StreamFrame::Credit { txs: 1000 },
                StreamFrame::Txs(txs) => {
                    received.fetch_add(txs.len() as u64, Ordering::SeqCst);
                    StreamFrame::Credit { txs: txs.len() as u32 }
                }
                _ => StreamFrame::Tally(StreamTally::default()),
            };
            let last = matches!(reply, StreamFrame::Tally(_));
            let mut out = BytesMut::new();
            reply.encode(&mut out, 1 << 20).unwrap();
            if tcp.write_all(&out).await.is_err() || last {
                return;
            }
        }
        match tcp.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => decoder.extend(&buf[..n]),
        }
    }
}

/// Plain TCP to the announced address.
struct Tcp;

impl PeerConnector for Tcp {
    fn connect(&self, _node: NodeId, addr: &str) -> BoxFuture<'static, std::io::Result<BoxPeerIo>> {
        let addr = addr.to_owned();
        Box::pin(async move { Ok(Box::pin(TcpStream::connect(addr).await?) as BoxPeerIo) })
    }
}

/// Two clusters of two fake nodes: validator 1 = nodes 1, 2; validator 2 = nodes 4, 5.
struct Rig {
    nodes: BTreeMap<u64, FakeNode>,
    catalog: watch::Sender<Arc<Vec<Announcement>>>,
}

impl Rig {
    async fn start() -> Self {
        let mut nodes = BTreeMap::new();
        for id in [1, 2, 4, 5] {
            nodes.insert(id, FakeNode::start().await);
        }
        let (catalog, _) = watch::channel(Arc::new(Vec::new()));
        Self { nodes, catalog }
    }

    /// Publishes a catalog: `(node, tags, role)` each, at `height`.
    fn publish(&self, height: u64, entries: &[(u64, Tags, PeerRole)]) {
        let all = entries
            .iter()
            .map(|(node, tags, role)| Announcement {
                node: NodeId(*node),
                validator: ValidatorId(node.div_ceil(3)),
                stream_addr: self.nodes[node].addr.to_string(),
                api_addr: String::new(),
                tags: *tags,
                role: *role,
                height: Height(height),
                version: height,
            })
            .collect();
        self.catalog.send_replace(Arc::new(all));
    }

    fn router(&self, predicate: TagPredicate) -> TxRouter {
        let config =
            RouteConfig { retry: Duration::from_millis(20), ..RouteConfig::new(NodeId(100)) };
        subscribe_if(predicate, self.catalog.subscribe(), Arc::new(Tcp), config)
    }
}

fn open(router: &TxRouter) -> Vec<u64> {
    router.open_streams().iter().map(|(n, _)| n.0).collect()
}

const P: Tags = Tags::EMPTY;
use PeerRole::{Follower as F, Leader as L};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_follow_the_tags_of_whole_clusters() {
    let rig = Rig::start().await;
    let proposer = Tags::one(Tag::Proposer);
    // Node 2 lags behind (no tags yet): it is still a member of a matching cluster.
    rig.publish(1, &[(1, proposer, L), (2, P, F), (4, P, L), (5, P, F)]);
    let router = rig.router(default_source_predicate());
    eventually("cluster 1 connected", || open(&router) == [1, 2]).await;
    assert!(router.settled());
    assert_eq!(router.matching(), [ValidatorId(1)]);

    // Cluster 2 becomes next: connected too. Then cluster 1 loses its tags: closed.
    let next = Tags::one(Tag::ProposerNext);
    rig.publish(2, &[(1, proposer, L), (2, proposer, F), (4, next, L), (5, next, F)]);
    eventually("both clusters connected", || open(&router) == [1, 2, 4, 5]).await;
    rig.publish(3, &[(1, P, L), (2, P, F), (4, proposer, L), (5, proposer, F)]);
    eventually("cluster 1 closed", || open(&router) == [4, 5]).await;

    let summary = router.close().await;
    let opened: Vec<u64> =
        summary.events.iter().filter(|e| e.opened).map(|e| e.node.0).collect::<Vec<_>>();
    assert_eq!(opened.len(), 4, "{:?}", summary.events);
    let closed: Vec<u64> = summary.events.iter().filter(|e| !e.opened).map(|e| e.node.0).collect();
    assert_eq!(closed.len(), 2);
    assert_eq!(summary.tallies.keys().map(|n| n.0).collect::<Vec<_>>(), [4, 5]);
    assert!(summary.tallies.values().all(Option::is_some), "closed in order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_go_to_each_matching_leader_and_move_on_when_its_stream_fails() {
    let mut rig = Rig::start().await;
    let (proposer, next) = (Tags::one(Tag::Proposer), Tags::one(Tag::ProposerNext));
    rig.publish(1, &[(1, proposer, F), (2, proposer, L), (4, next, L), (5, next, F)]);
    let router = rig.router(default_source_predicate());
    eventually("all connected", || open(&router).len() == 4).await;
    for i in 0..10u8 {
        assert_eq!(router.send(Bytes::from(vec![i; 8])).await, Ok(2), "one stream per cluster");
    }
    eventually("leaders got them", || rig.nodes[&2].received() == 10).await;
    eventually("leaders got them", || rig.nodes[&4].received() == 10).await;
    assert_eq!((rig.nodes[&1].received(), rig.nodes[&5].received()), (0, 0));
    let status = router.status();
    assert_eq!((status.sent, status.matching.len()), (20, 2), "{status:?}");
    let by_node: Vec<(u64, u64, bool, u64)> =
        status.nodes.iter().map(|n| (n.node.0, n.validator.0, n.open, n.sent)).collect();
    assert_eq!(by_node, [(1, 1, true, 0), (2, 1, true, 10), (4, 2, true, 10), (5, 2, true, 0)]);

    // Cluster 1's leader goes away: the other member takes the flow, nothing is refused.
    let gone = rig.nodes.remove(&2).unwrap();
    gone.task.abort();
    let _ = gone.task.await;
    let mut sent = 0;
    while rig.nodes[&1].received() == 0 {
        assert_eq!(router.send(Bytes::from_static(b"after")).await.map(|n| n > 0), Ok(true));
        sent += 1;
        assert!(sent < 10_000, "the flow did not move to node 1");
        tokio::task::yield_now().await;
    }
    router.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reactive_sources_connect_when_the_tag_appears_preconnected_ones_before() {
    let rig = Rig::start().await;
    let (proposer, soon) = (Tags::one(Tag::Proposer), Tags::one(Tag::ProposerSoon));
    rig.publish(1, &[(1, proposer, L), (2, proposer, F), (4, soon, L), (5, soon, F)]);
    let reactive = rig.router(TagPredicate::any_of([Tag::Proposer]));
    let ahead = rig.router(default_source_predicate());
    eventually("reactive: cluster 1 only", || open(&reactive) == [1, 2]).await;
    eventually("ahead: both", || open(&ahead).len() == 4).await;
    assert_eq!(reactive.send(Bytes::from_static(b"x")).await, Ok(1));

    // Cluster 2's turn.
    rig.publish(3, &[(1, P, L), (2, P, F), (4, proposer, L), (5, proposer, F)]);
    eventually("reactive: cluster 2", || open(&reactive) == [4, 5]).await;
    eventually("ahead: cluster 2", || ahead.matching() == [ValidatorId(2)]).await;
    for router in [&reactive, &ahead] {
        assert_eq!(router.send(Bytes::from_static(b"y")).await, Ok(1));
    }
    let turns = |summary: &mempulse_net::peer::RouteSummary| {
        summary
            .turns
            .iter()
            .map(|t| (t.validator.0, t.height.0, t.preconnected))
            .collect::<Vec<_>>()
    };
    let reactive = reactive.close().await;
    assert_eq!(turns(&reactive), [(1, 1, false), (2, 3, false)]);
    assert!(reactive.turns.iter().all(|t| t.first_sent.is_some()));
    // Cluster 1's streams closed when its turn ended; their tallies are kept.
    let closed: Vec<u64> = reactive.closed.iter().map(|(n, _)| n.0).collect();
    assert_eq!(closed.iter().copied().collect::<BTreeSet<u64>>(), BTreeSet::from([1, 2]));
    assert!(reactive.closed.iter().all(|(_, tally)| tally.is_some()), "{:?}", reactive.closed);
    assert_eq!(reactive.tallies.keys().map(|n| n.0).collect::<Vec<_>>(), [4, 5]);
    let ahead = ahead.close().await;
    assert_eq!(turns(&ahead), [(1, 1, false), (2, 3, true)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_matching_is_a_typed_refusal() {
    let rig = Rig::start().await;
    rig.publish(1, &[(1, P, L), (4, P, L)]);
    let router = rig.router(default_source_predicate());
    assert_eq!(router.send(Bytes::from_static(b"x")).await, Err(RouteError::NoStream));
    assert!(router.close().await.events.is_empty());
}
