//! A real server on 127.0.0.1 (port 0), spoken to over plain TCP with hand-written HTTP/1.1.

use std::{net::SocketAddr, time::Duration};

use mempulse_api::{ApiConfig, router, serve, test_utils::TestNode};
use mempulse_primitives::{EventKind, TxHash};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
    sync::oneshot,
    task::JoinHandle,
};

use crate::helpers::DEADLINE;

async fn start(
    node: &TestNode,
) -> (SocketAddr, oneshot::Sender<()>, JoinHandle<std::io::Result<()>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = ApiConfig { body_bytes_max: 1024, ..ApiConfig::default() };
    let app = router(config, node.services());
    let (stop, stopped) = oneshot::channel::<()>();
    let shutdown = async move {
        let _ = stopped.await;
    };
    let server = tokio::spawn(serve(listener, app, shutdown, Duration::from_secs(5)));
    (addr, stop, server)
}

/// Sends one request with `Connection: close` and returns the status line and the rest.
async fn exchange(addr: SocketAddr, head: &str, body: &[u8]) -> (String, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "{head}\r\nHost: test\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(DEADLINE, stream.read_to_end(&mut out)).await.unwrap().unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let (status, rest) = text.split_once("\r\n").unwrap_or((&text, ""));
    (status.to_owned(), rest.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_server_answers_rpc_rest_and_refuses_oversize() {
    let node = TestNode::default();
    node.log.append_kind(EventKind::TxPromoted { hash: TxHash([1; 32]) });
    let (addr, stop, server) = start(&node).await;

    let rpc = br#"{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}"#;
    let (status, rest) =
        exchange(addr, "POST / HTTP/1.1\r\nContent-Type: application/json", rpc).await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(rest.contains(r#""result":"0x1""#), "{rest}");

    let (status, rest) = exchange(addr, "GET /v1/events?limit=5 HTTP/1.1", b"").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(rest.contains(r#""kind":"tx_promoted""#), "{rest}");

    let big = vec![b'x'; 4096];
    let (status, rest) =
        exchange(addr, "POST /v1/txs HTTP/1.1\r\nContent-Type: application/octet-stream", &big)
            .await;
    assert_eq!(status, "HTTP/1.1 413 Payload Too Large");
    assert!(rest.contains("PAYLOAD_TOO_LARGE"), "{rest}");

    let (status, _) = exchange(addr, "GET /healthz HTTP/1.1", b"").await;
    assert_eq!(status, "HTTP/1.1 200 OK");

    // The lanes learn who submitted (the key of the per-source rate limit).
    let raw = br#"{"jsonrpc":"2.0","id":2,"method":"eth_sendRawTransaction","params":["0x0102"]}"#;
    let (status, rest) =
        exchange(addr, "POST / HTTP/1.1\r\nContent-Type: application/json", raw).await;
    assert_eq!(status, "HTTP/1.1 200 OK", "{rest}");
    let (status, rest) =
        exchange(addr, "POST /v1/txs HTTP/1.1\r\nContent-Type: application/octet-stream", &[2, 3])
            .await;
    assert_eq!(status, "HTTP/1.1 200 OK", "{rest}");
    let loopback = Some(std::net::IpAddr::from([127, 0, 0, 1]));
    assert_eq!(*node.pool.clients.lock().unwrap(), [loopback, loopback]);

    stop.send(()).unwrap();
    tokio::time::timeout(DEADLINE, server).await.unwrap().unwrap().unwrap();
}

/// Reads from `stream` until `needle` shows up in everything read so far.
async fn read_until(stream: &mut TcpStream, seen: &mut String, needle: &str) {
    let mut buf = [0u8; 4096];
    while !seen.contains(needle) {
        let n = tokio::time::timeout(DEADLINE, stream.read(&mut buf)).await.unwrap().unwrap();
        assert!(n > 0, "connection closed before {needle:?}; got {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_tail_over_tcp_follows_appends_and_ends_on_shutdown() {
    let node = TestNode::default();
    node.log.append_kind(EventKind::TxPromoted { hash: TxHash([1; 32]) });
    let (addr, stop, server) = start(&node).await;

    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /v1/events/stream?after=0 HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    let mut seen = String::new();
    read_until(&mut stream, &mut seen, "id: 1\n").await;
    assert!(seen.starts_with("HTTP/1.1 200 OK"), "{seen}");
    assert!(seen.to_ascii_lowercase().contains("content-type: text/event-stream"), "{seen}");

    node.log.append_kind(EventKind::TxPromoted { hash: TxHash([2; 32]) });
    read_until(&mut stream, &mut seen, "id: 2\n").await;

    stop.send(()).unwrap();
    read_until(&mut stream, &mut seen, r#"{"reason":"shutting_down","resume_after":2}"#).await;
    assert!(seen.contains("event: end"), "{seen}");
    tokio::time::timeout(DEADLINE, server).await.unwrap().unwrap().unwrap();
}
