//! The peer protocol over loopback TCP: announcements into the catalog and pushes to
//! subscribers, block requests and answers, links that reconnect and heartbeat, one listener
//! serving both protocols, and bad frames closing only their own session.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use bytes::BytesMut;
use futures_util::future::BoxFuture;
use mempulse_net::{
    CloseReason, StreamClientConfig, TxStreamClient,
    peer::{
        Announcement, BlockAck, BlockHandler, BlockNotice, BoxPeerIo, Catalog, CatalogConfig,
        PeerClientConfig, PeerConnector, PeerError, PeerFrame, PeerLimits, PeerLinks,
        PeerLinksConfig, PeerRole, PeerService, PeerSession, Protocol, detect_protocol, serve_peer,
    },
};
use mempulse_primitives::{Address, Height, NodeId, Nonce, TxHash, ValidatorId};
use mempulse_schedule::{Tag, Tags};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::{Notify, watch},
    task::JoinHandle,
};

use super::support::eventually;

const WAIT: Duration = Duration::from_secs(20);

pub fn announcement(node: u64, version: u64, tags: Tags) -> Announcement {
    Announcement {
        node: NodeId(node),
        validator: ValidatorId(node.div_ceil(3)),
        stream_addr: format!("127.0.0.1:{}", 7500 + node),
        api_addr: format!("127.0.0.1:{}", 8500 + node),
        tags,
        role: if node % 3 == 1 { PeerRole::Leader } else { PeerRole::Follower },
        height: Height(1),
        version,
    }
}

fn notice(height: u64) -> BlockNotice {
    BlockNotice {
        height: Height(height),
        round: 0,
        proposer: ValidatorId(2),
        txs: vec![TxHash([9; 32])],
        nonces: vec![(Address([1; 20]), Nonce(3))],
        base_fee_per_gas: None,
    }
}

/// Commits blocks at or above its height, counts calls, and can be held.
struct Blocks {
    height: u64,
    calls: AtomicUsize,
    gate: Arc<Notify>,
    held: bool,
}

impl BlockHandler for Blocks {
    fn on_block(&self, _from: NodeId, block: BlockNotice) -> BoxFuture<'static, BlockAck> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let (gate, held, height) = (Arc::clone(&self.gate), self.held, self.height);
        Box::pin(async move {
            if held {
                gate.notified().await;
            }
            if block.height.0 < height {
                BlockAck::Stale { height: Height(height) }
            } else {
                BlockAck::Committed
            }
        })
    }
}

fn blocks(height: u64, held: bool) -> Arc<Blocks> {
    Arc::new(Blocks { height, calls: AtomicUsize::new(0), gate: Arc::new(Notify::new()), held })
}

/// A node's listener: detects the protocol, serves peer sessions (any claimed id is taken,
/// as plaintext loopback does) and answers tx streams with a close (no ingest here).
struct Listener {
    addr: SocketAddr,
    /// Sessions being served.
    open: Arc<AtomicUsize>,
    stop: watch::Sender<bool>,
    task: JoinHandle<Vec<Result<mempulse_net::peer::PeerSummary, PeerError>>>,
}

impl Listener {
    async fn start(service: PeerService) -> Self {
        Self::start_on(service, TcpListener::bind("127.0.0.1:0").await.unwrap()).await
    }

    async fn start_on(service: PeerService, listener: TcpListener) -> Self {
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = watch::channel(false);
        let open = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&open);
        let task = tokio::spawn(async move {
            let mut sessions = tokio::task::JoinSet::new();
            let mut stopping = stopped.clone();
            loop {
                tokio::select! {
                    _ = stopping.wait_for(|s| *s) => break,
                    Ok((tcp, _)) = listener.accept() => {
                        let service = service.clone();
                        let mut closing = stopped.clone();
                        let counter = Arc::clone(&counter);
                        counter.fetch_add(1, Ordering::SeqCst);
                        sessions.spawn(async move {
                            let served = async {
                            let (protocol, io) =
                                detect_protocol(tcp, Duration::from_secs(5)).await?;
                            assert_eq!(protocol, Protocol::Peer, "only peers in this rig");
                            let closing = async move {
                                let _ = closing.wait_for(|s| *s).await;
                            };
                            serve_peer(io, |_| true, service, closing).await
                            };
                            let result = served.await;
                            counter.fetch_sub(1, Ordering::SeqCst);
                            result
                        });
                    }
                }
            }
            let mut results = Vec::new();
            while let Some(result) = sessions.join_next().await {
                results.push(result.unwrap());
            }
            results
        });
        Self { addr, open, stop, task }
    }

    async fn stop(self) -> Vec<Result<mempulse_net::peer::PeerSummary, PeerError>> {
        self.stop.send_replace(true);
        tokio::time::timeout(WAIT, self.task).await.unwrap().unwrap()
    }
}

fn service(node: u64, catalog: &Catalog, blocks: Option<Arc<Blocks>>) -> PeerService {
    PeerService {
        node: NodeId(node),
        catalog: catalog.clone(),
        blocks: blocks.map(|b| b as Arc<dyn BlockHandler>),
        limits: PeerLimits { blocks_in_flight_max: 2, ..PeerLimits::default() },
    }
}

async fn session(addr: SocketAddr, node: u64) -> PeerSession {
    let config = PeerClientConfig::new(NodeId(node));
    PeerSession::connect(|| TcpStream::connect(addr), config).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announcements_reach_the_catalog_and_subscribers_get_every_change() {
    let catalog = Catalog::new(CatalogConfig::default());
    let listener = Listener::start(service(1, &catalog, None)).await;
    let node = session(listener.addr, 4).await;
    assert_eq!(node.peer(), NodeId(1), "the server answers as itself");
    let source = session(listener.addr, 100).await;
    let mut pushed = source.subscribe().await.unwrap();

    node.announce(announcement(4, 1, Tags::EMPTY)).await.unwrap();
    let got = tokio::time::timeout(WAIT, pushed.wait_for(|c| !c.is_empty())).await.unwrap();
    assert_eq!(**got.unwrap(), [announcement(4, 1, Tags::EMPTY)]);

    // A newer version replaces the entry; an older one is refused; a foreign node's
    // announcement on this session is refused too. The session goes on (frames of one session
    // are handled in order: once the last one is in, so are the others).
    node.announce(announcement(4, 2, Tags::one(Tag::Proposer))).await.unwrap();
    node.announce(announcement(4, 1, Tags::EMPTY)).await.unwrap();
    node.announce(announcement(5, 9, Tags::EMPTY)).await.unwrap();
    let last = announcement(4, 3, Tags::one(Tag::Proposer).with(Tag::ProposerNext));
    node.announce(last.clone()).await.unwrap();
    let got =
        tokio::time::timeout(WAIT, pushed.wait_for(|c| c.first() == Some(&last))).await.unwrap();
    assert_eq!(got.unwrap().len(), 1);
    let other = session(listener.addr, 2).await;
    other.announce(announcement(2, 1, Tags::EMPTY)).await.unwrap();
    let got = tokio::time::timeout(WAIT, pushed.wait_for(|c| c.len() == 2)).await.unwrap();
    let nodes: Vec<u64> = got.unwrap().iter().map(|a| a.node.0).collect();
    assert_eq!(nodes, [2, 4], "ascending by node");
    assert_eq!(catalog.get(NodeId(4)), Some(last));

    drop((node, source, other));
    let summaries = listener.stop().await;
    let node4 = summaries.iter().flatten().find(|s| s.peer == NodeId(4)).unwrap();
    assert_eq!((node4.announcements, node4.refused), (3, 2));
    let source = summaries.iter().flatten().find(|s| s.peer == NodeId(100)).unwrap();
    assert!(source.catalogs >= 2, "pushed on subscribe and on changes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_are_answered_by_id_and_refused_without_a_handler_or_room() {
    let catalog = Catalog::new(CatalogConfig::default());
    let handler = blocks(5, false);
    let listener = Listener::start(service(1, &catalog, Some(Arc::clone(&handler)))).await;
    let client = session(listener.addr, 4).await;
    assert_eq!(client.send_block(notice(5), WAIT).await, Ok(BlockAck::Committed));
    assert_eq!(client.send_block(notice(4), WAIT).await, Ok(BlockAck::Stale { height: Height(5) }));
    assert_eq!(handler.calls.load(Ordering::SeqCst), 2);
    listener.stop().await;

    let none = Listener::start(service(1, &catalog, None)).await;
    let client = session(none.addr, 4).await;
    assert_eq!(
        client.send_block(notice(5), WAIT).await,
        Ok(BlockAck::Refused { reason: "blocks not enabled".into() })
    );
    none.stop().await;

    // Two in flight at most: a third is refused at once, the two held ones then commit.
    let held = blocks(0, true);
    let busy = Listener::start(service(1, &catalog, Some(Arc::clone(&held)))).await;
    let client = session(busy.addr, 4).await;
    let first = tokio::spawn({
        let client = client.clone();
        async move { client.send_block(notice(1), WAIT).await }
    });
    let second = tokio::spawn({
        let client = client.clone();
        async move { client.send_block(notice(2), WAIT).await }
    });
    eventually("two blocks with the handler", || held.calls.load(Ordering::SeqCst) == 2).await;
    assert_eq!(
        client.send_block(notice(3), WAIT).await,
        Ok(BlockAck::Refused { reason: "too many blocks in flight".into() })
    );
    held.gate.notify_waiters();
    assert_eq!(first.await.unwrap(), Ok(BlockAck::Committed));
    assert_eq!(second.await.unwrap(), Ok(BlockAck::Committed));
    // A request that gets no answer in time times out without ending the session.
    let timed_out = client.send_block(notice(4), Duration::from_millis(20)).await;
    assert_eq!(timed_out, Err(PeerError::Timeout));
    held.gate.notify_waiters();
    assert!(!client.is_closed());
    drop(client);
    busy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_frame_closes_only_its_own_session() {
    let catalog = Catalog::new(CatalogConfig::default());
    let listener = Listener::start(service(1, &catalog, None)).await;
    let good = session(listener.addr, 4).await;
    let mut subscribed = good.subscribe().await.unwrap();

    // A raw connection: a valid hello, then a frame of an unknown kind.
    let mut raw = TcpStream::connect(listener.addr).await.unwrap();
    let mut out = BytesMut::new();
    PeerFrame::Hello { node: NodeId(7), version: 1 }.encode(&mut out, 1024).unwrap();
    out.extend_from_slice(&[1, 0, 0, 0, 99]);
    raw.write_all(&out).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(WAIT, raw.read_to_end(&mut answer)).await.unwrap().unwrap();
    let mut decoder = mempulse_net::peer::PeerFrameDecoder::new(1024);
    decoder.extend(&answer);
    assert!(matches!(decoder.next_frame(), Ok(Some(PeerFrame::Hello { node: NodeId(1), .. }))));
    assert_eq!(
        decoder.next_frame(),
        Ok(Some(PeerFrame::Close { reason: CloseReason::MalformedFrame }))
    );

    // A raw connection that sends a tx stream's frame after its hello.
    let mut raw = TcpStream::connect(listener.addr).await.unwrap();
    let mut out = BytesMut::new();
    PeerFrame::Hello { node: NodeId(8), version: 1 }.encode(&mut out, 1024).unwrap();
    PeerFrame::Catalog(Vec::new()).encode(&mut out, 1024).unwrap();
    raw.write_all(&out).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(WAIT, raw.read_to_end(&mut answer)).await.unwrap().unwrap();
    assert!(answer.ends_with(&[2, 0, 0, 0, 22, CloseReason::UnexpectedFrame.code()]));

    // The good session still works.
    good.announce(announcement(4, 1, Tags::EMPTY)).await.unwrap();
    let got = tokio::time::timeout(WAIT, subscribed.wait_for(|c| c.len() == 1)).await.unwrap();
    assert_eq!(got.unwrap()[0].node, NodeId(4));
    drop(good);
    let results = listener.stop().await;
    assert_eq!(results.iter().filter(|r| r.is_err()).count(), 2);
    assert!(results.iter().any(|r| matches!(r, Err(PeerError::Frame(_)))));
    assert!(results.iter().any(|r| matches!(r, Err(PeerError::UnexpectedFrame { .. }))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_identity_or_version_ends_the_handshake_with_a_reason() {
    let catalog = Catalog::new(CatalogConfig::default());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let mut results = Vec::new();
        for _ in 0..2 {
            let (tcp, _) = listener.accept().await.unwrap();
            let service = service(1, &catalog, None);
            let closing = std::future::pending();
            results.push(serve_peer(tcp, |claimed| claimed == NodeId(4), service, closing).await);
        }
        results
    });
    let liar = PeerSession::connect(|| TcpStream::connect(addr), PeerClientConfig::new(NodeId(5)));
    assert_eq!(
        liar.await.unwrap_err(),
        PeerError::ClosedByPeer { reason: CloseReason::IdentityMismatch }
    );
    let expect = PeerClientConfig { expect: Some(NodeId(2)), ..PeerClientConfig::new(NodeId(4)) };
    let wrong = PeerSession::connect(|| TcpStream::connect(addr), expect).await;
    assert_eq!(
        wrong.unwrap_err(),
        PeerError::WrongPeer { expected: NodeId(2), answered: NodeId(1) }
    );
    let results = server.await.unwrap();
    assert_eq!(results[0], Err(PeerError::NotAuthenticated { claimed: NodeId(5) }));
    // The client hung up on the wrong peer.
    assert_eq!(results[1], Err(PeerError::ConnectionLost));
}

/// Connects over plain TCP to whatever address the link names.
struct Tcp;

impl PeerConnector for Tcp {
    fn connect(&self, _node: NodeId, addr: &str) -> BoxFuture<'static, std::io::Result<BoxPeerIo>> {
        let addr = addr.to_owned();
        Box::pin(async move {
            let tcp = TcpStream::connect(addr).await?;
            Ok(Box::pin(tcp) as BoxPeerIo)
        })
    }
}

fn links_config(node: u64) -> PeerLinksConfig {
    PeerLinksConfig {
        heartbeat: Duration::from_millis(20),
        backoff_min: Duration::from_millis(5),
        backoff_max: Duration::from_millis(50),
        ..PeerLinksConfig::new(NodeId(node))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_announce_heartbeat_reconnect_and_carry_blocks() {
    // Node 1 announces to node 4 (and would to itself: skipped).
    let catalog4 = Catalog::new(CatalogConfig::default());
    let handler = blocks(0, false);
    let listener = Listener::start(service(4, &catalog4, Some(Arc::clone(&handler)))).await;
    let addr = listener.addr;
    let (own_tx, own) = watch::channel(None);
    let targets =
        BTreeMap::from([(NodeId(1), "127.0.0.1:1".to_owned()), (NodeId(4), addr.to_string())]);
    let connector: Arc<dyn PeerConnector> = Arc::new(Tcp);
    let links = PeerLinks::start(links_config(1), &connector, &own, targets);
    assert_eq!(links.status().len(), 1, "no link to itself");
    eventually("link up", || links.connected() == 1).await;
    assert!(catalog4.is_empty(), "nothing announced while there is no announcement");

    own_tx.send_replace(Some(announcement(1, 1, Tags::EMPTY)));
    eventually("announced", || catalog4.get(NodeId(1)).is_some()).await;
    // Heartbeats refresh the entry without changing the catalog: its receive time moves on.
    let mut changes = catalog4.subscribe();
    changes.mark_unchanged();
    let received = |catalog: &Catalog| {
        let now = tokio::time::Instant::now();
        now - catalog.entries_at(now)[0].age
    };
    let first = received(&catalog4);
    eventually("a heartbeat", || received(&catalog4) > first).await;
    assert!(!changes.has_changed().unwrap(), "heartbeats are no changes");
    // A change reaches the peer.
    let next = announcement(1, 2, Tags::one(Tag::ProposerSoon));
    own_tx.send_replace(Some(next.clone()));
    eventually("change announced", || catalog4.get(NodeId(1)) == Some(next.clone())).await;
    assert_eq!(links.send_block(NodeId(4), notice(1), WAIT).await, Ok(BlockAck::Committed));
    assert_eq!(
        links.send_block(NodeId(9), notice(1), WAIT).await,
        Err(PeerError::UnknownPeer { node: NodeId(9) })
    );

    // The peer restarts on the same port: the link comes back and announces again.
    listener.stop().await;
    eventually("link down", || links.connected() == 0).await;
    assert!(matches!(
        links.send_block(NodeId(4), notice(1), WAIT).await,
        Err(PeerError::NotConnected { .. })
    ));
    let catalog4 = Catalog::new(CatalogConfig::default());
    let rebound = loop {
        match TcpListener::bind(addr).await {
            Ok(listener) => break listener,
            Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    };
    let listener = Listener::start_on(service(4, &catalog4, None), rebound).await;
    eventually("re-announced", || catalog4.get(NodeId(1)) == Some(next.clone())).await;
    assert!(links.status()[0].sessions >= 2);
    links.shutdown(WAIT).await;
    eventually("the session ended", || listener.open.load(Ordering::SeqCst) == 0).await;
    let summaries = listener.stop().await;
    assert!(
        summaries.iter().flatten().any(|s| s.reason == Some(CloseReason::Normal)),
        "links close in order: {summaries:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_listener_serves_tx_streams_and_peer_sessions() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let catalog = Catalog::new(CatalogConfig::default());
    let service = service(1, &catalog, None);
    let server = tokio::spawn(async move {
        let mut seen = Vec::new();
        for _ in 0..2 {
            let (tcp, _) = listener.accept().await.unwrap();
            let (protocol, io) = detect_protocol(tcp, WAIT).await.unwrap();
            seen.push(protocol);
            match protocol {
                Protocol::Peer => {
                    let closing = std::future::pending();
                    serve_peer(io, |_| true, service.clone(), closing).await.unwrap();
                }
                Protocol::TxStream => {
                    // No ingest in this rig: read the hello, refuse the stream.
                    let mut conn = io;
                    let mut hello = [0u8; 19];
                    conn.read_exact(&mut hello).await.unwrap();
                    assert_eq!(&hello[5..9], b"mptx", "the sniffed bytes are replayed");
                    conn.write_all(&[2, 0, 0, 0, 4, CloseReason::ShuttingDown.code()])
                        .await
                        .unwrap();
                }
            }
        }
        seen
    });
    let stream =
        TxStreamClient::connect(|| TcpStream::connect(addr), StreamClientConfig::new(NodeId(3)));
    assert!(matches!(
        stream.await.unwrap_err(),
        mempulse_net::StreamError::ClosedByPeer { reason: CloseReason::ShuttingDown }
    ));
    let peer = session(addr, 3).await;
    peer.announce(announcement(3, 1, Tags::EMPTY)).await.unwrap();
    drop(peer);
    assert_eq!(server.await.unwrap(), [Protocol::TxStream, Protocol::Peer]);
    assert_eq!(catalog.snapshot(), [announcement(3, 1, Tags::EMPTY)]);
}
