//! Node tx streams: client and server over an in-memory duplex and loopback TCP, credits and
//! back-pressure, protocol violations closing only their own stream, and shutdown.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use mempulse_net::{
    CheckConfig, CloseReason, FrameDecoder, SendError, SourceId, StreamClientConfig, StreamError,
    StreamFrame, StreamLimits, TxStreamClient, serve_stream, serve_stream_verified,
    test_utils::sample_txs,
};
use mempulse_primitives::{DropReason, EventKind, Lane, NodeId, Source};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

use super::support::{Recording, config, eventually, kinds, start};

const PEER: NodeId = NodeId(42);

fn limits(window_txs: u32) -> StreamLimits {
    StreamLimits { window_txs, ..StreamLimits::default() }
}

fn client_config() -> StreamClientConfig {
    StreamClientConfig { buffer_txs: 4, ..StreamClientConfig::new(PEER) }
}

/// Reads frames from a raw socket until `Close` (or the end), bounded.
async fn read_until_close(io: &mut (impl AsyncReadExt + Unpin)) -> Vec<StreamFrame> {
    let mut decoder = FrameDecoder::new(1 << 20);
    let mut frames = Vec::new();
    let mut buf = [0u8; 1024];
    let read = async {
        loop {
            while let Ok(Some(frame)) = decoder.next_frame() {
                let close = matches!(frame, StreamFrame::Close { .. });
                frames.push(frame);
                if close {
                    return;
                }
            }
            match io.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => decoder.extend(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), read).await.unwrap();
    frames
}

fn encode(frames: &[StreamFrame]) -> Vec<u8> {
    let mut out = BytesMut::new();
    for frame in frames {
        frame.encode(&mut out, u32::MAX).unwrap();
    }
    out.to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_streams_transactions_into_the_stream_lane() {
    let (admission, _gate) = Recording::admitting();
    let rig = start(config(), CheckConfig::default(), admission.clone());
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let server =
        tokio::spawn(serve_stream(server_io, SourceId::Peer(PEER), rig.ingest.clone(), limits(8)));
    let client =
        TxStreamClient::connect(|| async { Ok(client_io) }, client_config()).await.unwrap();
    let raws = sample_txs(30, 6);
    for raw in &raws {
        client.send(raw.clone()).await.unwrap();
    }
    // A duplicate and an undecodable one: the tally names their reasons.
    client.send(raws[0].clone()).await.unwrap();
    client.send(Bytes::from_static(b"\x02junk")).await.unwrap();
    let sent = client.close().await.unwrap();
    assert_eq!(sent.txs, 32);
    let served = server.await.unwrap().unwrap();
    assert_eq!((served.txs, served.accepted, served.unanswered), (32, 30, 0));
    assert_eq!(served.reason, Some(CloseReason::Normal));
    let tally = sent.tally.expect("the server's tally");
    assert_eq!(tally, served.tally);
    assert_eq!((tally.admitted, tally.total()), (30, 32));
    assert_eq!(
        tally.dropped.into_iter().collect::<Vec<_>>(),
        [(DropReason::DecodeFailed, 1), (DropReason::Duplicate, 1)]
    );
    let hashes: Vec<_> = raws
        .iter()
        .map(|raw| mempulse_primitives::TxHash(alloy_primitives::keccak256(raw).0))
        .collect();
    assert_eq!(admission.hashes(), hashes, "every transaction reached the pool, in order");
    rig.ingest.shutdown(Duration::from_secs(10)).await.unwrap();
    let events = rig.log.events().await;
    let events: Vec<_> =
        events.into_iter().filter(|e| matches!(e.kind, EventKind::TxReceived { .. })).collect();
    assert_eq!(events.len(), 30);
    for event in &events {
        assert_eq!(event.source, Source::Peer(PEER));
        assert!(matches!(event.kind, EventKind::TxReceived { lane: Lane::Stream, .. }));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credits_hold_a_client_back_while_the_pool_does_not_answer() {
    let (admission, gate) = Recording::admitting();
    gate.send_replace(false);
    let rig = start(config(), CheckConfig::default(), admission.clone());
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let server =
        tokio::spawn(serve_stream(server_io, SourceId::Peer(PEER), rig.ingest.clone(), limits(4)));
    let client =
        TxStreamClient::connect(|| async { Ok(client_io) }, client_config()).await.unwrap();
    let raws = sample_txs(20, 20);
    // The task takes the window (4) from the buffer (4 more): after 8 the buffer stays full,
    // since no credit comes back while the pool does not answer.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut queued = 0;
    while queued < 8 {
        match client.try_send(raws[queued].clone()) {
            Ok(()) => queued += 1,
            Err(SendError::Full) => {
                assert!(tokio::time::Instant::now() < deadline, "the client never drained");
                tokio::task::yield_now().await;
            }
            Err(other) => panic!("{other}"),
        }
    }
    eventually("the window to reach the pool", || admission.hashes().len() == 4).await;
    assert_eq!(client.try_send(raws[19].clone()), Err(SendError::Full));
    assert_eq!(admission.hashes().len(), 4, "no more than the window while unanswered");
    gate.send_replace(true);
    let sent = client.close().await.unwrap();
    let served = server.await.unwrap().unwrap();
    assert_eq!((sent.txs, served.txs, served.accepted), (8, 8, 8));
    assert_eq!(admission.hashes().len() as u64, served.txs);
    rig.ingest.shutdown(Duration::from_secs(10)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tcp_a_bad_frame_closes_only_its_own_stream() {
    let (admission, _gate) = Recording::admitting();
    let rig = start(config(), CheckConfig::default(), admission.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let ingest = rig.ingest.clone();
    let acceptor = tokio::spawn(async move {
        let mut served = Vec::new();
        for _ in 0..2 {
            let (io, _) = listener.accept().await.unwrap();
            served.push(tokio::spawn(serve_stream(
                io,
                SourceId::Peer(PEER),
                ingest.clone(),
                limits(16),
            )));
        }
        served
    });
    // A good client first, kept open across the bad one.
    let good = TxStreamClient::connect(|| TcpStream::connect(addr), client_config()).await.unwrap();
    let raws = sample_txs(10, 2);
    for raw in &raws[..5] {
        good.send(raw.clone()).await.unwrap();
    }
    // A connection that says hello and then sends garbage.
    let mut bad = TcpStream::connect(addr).await.unwrap();
    let hello = StreamFrame::Hello { source: PEER, version: 1 };
    bad.write_all(&encode(&[hello])).await.unwrap();
    bad.write_all(&[3, 0, 0, 0, 0x77, 1, 2]).await.unwrap();
    let frames = read_until_close(&mut bad).await;
    assert_eq!(frames.first(), Some(&StreamFrame::Credit { txs: 16 }));
    assert_eq!(frames.last(), Some(&StreamFrame::Close { reason: CloseReason::MalformedFrame }));

    for raw in &raws[5..] {
        good.send(raw.clone()).await.unwrap();
    }
    assert_eq!(good.close().await.unwrap().txs, 10);
    let served = acceptor.await.unwrap();
    let mut results = Vec::new();
    for task in served {
        results.push(task.await.unwrap());
    }
    assert_eq!(results[0].as_ref().unwrap().accepted, 10);
    assert!(matches!(results[1], Err(StreamError::Frame(_))), "{:?}", results[1]);
    assert_eq!(results[1].as_ref().unwrap_err().close_reason(), CloseReason::MalformedFrame);
    rig.ingest.shutdown(Duration::from_secs(10)).await.unwrap();
}

/// Runs a server on a duplex, writes `input` from the raw client side, and returns what the
/// server answered and how it ended.
async fn raw_session(
    input: Vec<u8>,
    peer: SourceId,
    window: u32,
) -> (Vec<StreamFrame>, Result<mempulse_net::StreamSummary, StreamError>) {
    let (admission, _gate) = Recording::admitting();
    let rig = start(config(), CheckConfig::default(), admission);
    let (mut client_io, server_io) = tokio::io::duplex(64 * 1024);
    let server = tokio::spawn(serve_stream(server_io, peer, rig.ingest.clone(), limits(window)));
    client_io.write_all(&input).await.unwrap();
    let frames = read_until_close(&mut client_io).await;
    let result = server.await.unwrap();
    rig.ingest.shutdown(Duration::from_secs(10)).await.unwrap();
    (frames, result)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_violations_get_their_close_reason() {
    let hello = StreamFrame::Hello { source: PEER, version: 1 };
    let txs = |n| StreamFrame::Txs(sample_txs(n, 1));
    let cases: Vec<(Vec<StreamFrame>, CloseReason)> = vec![
        (vec![StreamFrame::Hello { source: NodeId(7), version: 1 }], CloseReason::IdentityMismatch),
        (vec![StreamFrame::Hello { source: PEER, version: 99 }], CloseReason::UnsupportedVersion),
        (vec![txs(1)], CloseReason::UnexpectedFrame),
        (vec![hello.clone(), hello.clone()], CloseReason::UnexpectedFrame),
        (vec![hello.clone(), txs(3)], CloseReason::CreditExceeded),
    ];
    for (input, want) in cases {
        let (frames, result) = raw_session(encode(&input), SourceId::Peer(PEER), 2).await;
        assert_eq!(frames.last(), Some(&StreamFrame::Close { reason: want }), "{input:?}");
        assert_eq!(result.unwrap_err().close_reason(), want);
    }
    // An oversize length prefix is refused before its bytes arrive.
    let mut input = encode(&[hello]);
    input.extend_from_slice(&u32::MAX.to_le_bytes());
    let (frames, result) = raw_session(input, SourceId::Peer(PEER), 2).await;
    assert_eq!(frames.last(), Some(&StreamFrame::Close { reason: CloseReason::FrameTooLarge }));
    assert!(matches!(result, Err(StreamError::Frame(_))));
    // A client that is not a peer node: its hello's source is not checked against anything.
    let local = encode(&[StreamFrame::Hello { source: NodeId(7), version: 1 }]);
    let (admission, _gate) = Recording::admitting();
    let rig = start(config(), CheckConfig::default(), admission);
    let (mut client_io, server_io) = tokio::io::duplex(1024);
    let server =
        tokio::spawn(serve_stream(server_io, SourceId::Local, rig.ingest.clone(), limits(2)));
    client_io.write_all(&local).await.unwrap();
    let mut buf = [0u8; 9];
    client_io.read_exact(&mut buf).await.unwrap();
    assert_eq!(buf, encode(&[StreamFrame::Credit { txs: 2 }])[..]);
    drop(client_io);
    assert_eq!(server.await.unwrap(), Err(StreamError::ConnectionLost));
    rig.ingest.shutdown(Duration::from_secs(10)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusing_server_fails_the_connect() {
    let (admission, _gate) = Recording::admitting();
    let rig = start(config(), CheckConfig::default(), admission);
    let (client_io, server_io) = tokio::io::duplex(1024);
    let server = tokio::spawn(serve_stream(
        server_io,
        SourceId::Peer(NodeId(1)),
        rig.ingest.clone(),
        limits(2),
    ));
    let err = TxStreamClient::connect(|| async { Ok(client_io) }, client_config()).await;
    assert_eq!(
        err.err(),
        Some(StreamError::ClosedByPeer { reason: CloseReason::IdentityMismatch })
    );
    assert!(matches!(server.await.unwrap(), Err(StreamError::IdentityMismatch { .. })));
    let refused = TxStreamClient::connect(
        || async {
            Err::<tokio::io::DuplexStream, _>(std::io::ErrorKind::ConnectionRefused.into())
        },
        client_config(),
    )
    .await;
    assert!(matches!(refused.err(), Some(StreamError::Io { .. })));
    rig.ingest.shutdown(Duration::from_secs(10)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutting_ingest_down_closes_its_streams() {
    let (admission, _gate) = Recording::admitting();
    let rig = start(config(), CheckConfig::default(), admission);
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let server =
        tokio::spawn(serve_stream(server_io, SourceId::Peer(PEER), rig.ingest.clone(), limits(8)));
    let client =
        TxStreamClient::connect(|| async { Ok(client_io) }, client_config()).await.unwrap();
    let raw = sample_txs(1, 1).remove(0);
    client.send(raw).await.unwrap();
    rig.ingest.shutdown(Duration::from_secs(10)).await.unwrap();
    let served = server.await.unwrap().unwrap();
    assert_eq!(served.reason, Some(CloseReason::ShuttingDown));
    eventually("the client to see the close", || client.is_closed()).await;
    assert_eq!(client.send(Bytes::from_static(b"x")).await, Err(SendError::Closed));
    assert_eq!(
        client.close().await,
        Err(StreamError::ClosedByPeer { reason: CloseReason::ShuttingDown })
    );
    let _ = kinds(&rig.log.events().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verified_stream_takes_the_proven_claim_as_its_source() {
    let (admission, _gate) = Recording::admitting();
    let rig = start(config(), CheckConfig::default(), admission);
    // The credentials prove node 42 only.
    let proves = |claimed: NodeId| claimed == PEER;
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let server =
        tokio::spawn(serve_stream_verified(server_io, proves, rig.ingest.clone(), limits(8)));
    let client =
        TxStreamClient::connect(|| async { Ok(client_io) }, client_config()).await.unwrap();
    client.send(sample_txs(1, 1).remove(0)).await.unwrap();
    assert_eq!(client.close().await.unwrap().tally.map(|t| t.admitted), Some(1));
    assert_eq!(server.await.unwrap().unwrap().txs, 1);

    let (client_io, server_io) = tokio::io::duplex(1024);
    let server =
        tokio::spawn(serve_stream_verified(server_io, proves, rig.ingest.clone(), limits(8)));
    let other = StreamClientConfig::new(NodeId(7));
    let refused = TxStreamClient::connect(|| async { Ok(client_io) }, other).await;
    assert_eq!(
        refused.err(),
        Some(StreamError::ClosedByPeer { reason: CloseReason::IdentityMismatch })
    );
    assert_eq!(server.await.unwrap(), Err(StreamError::NotAuthenticated { claimed: NodeId(7) }));
    rig.ingest.shutdown(Duration::from_secs(10)).await.unwrap();
    let sources: Vec<_> = rig.log.events().await.iter().map(|e| e.source).collect();
    assert!(sources.contains(&Source::Peer(PEER)), "{sources:?}");
}
