//! Connection-level bounds over a real server on 127.0.0.1: the header-read timeout
//! (slowloris), the cap on open connections, and a request body the client stops sending.

use std::{net::SocketAddr, time::Duration};

use mempulse_api::{ApiConfig, router, serve_with, test_utils::TestNode};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
    sync::oneshot,
    task::JoinHandle,
};

use crate::helpers::DEADLINE;

/// A server on loopback, stopped by [`Running::stop`].
struct Running {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Running {
    async fn start(node: &TestNode, config: ApiConfig) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let options = config.serve_options();
        let app = router(config, node.services());
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let task = tokio::spawn(serve_with(listener, app, shutdown, options));
        Self { addr, stop, task }
    }

    async fn stop(self) {
        self.stop.send(()).unwrap();
        tokio::time::timeout(DEADLINE, self.task).await.unwrap().unwrap().unwrap();
    }
}

/// Reads from `stream` until `needle` shows up in everything read so far.
async fn read_until(stream: &mut TcpStream, needle: &str) -> String {
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    while !seen.contains(needle) {
        let n = tokio::time::timeout(DEADLINE, stream.read(&mut buf)).await.unwrap().unwrap();
        assert!(n > 0, "connection closed before {needle:?}; got {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    seen
}

/// Waits (bounded) until the server closes `stream`: end of stream or a reset, and no reply.
async fn closed_by_server(stream: &mut TcpStream, what: &str) {
    let mut buf = [0u8; 256];
    let read = tokio::time::timeout(DEADLINE, stream.read(&mut buf))
        .await
        .unwrap_or_else(|_| panic!("{what}: the server kept the connection open"));
    match read {
        Ok(0) | Err(_) => {}
        Ok(n) => panic!("{what}: got a reply instead of a close: {:?}", &buf[..n]),
    }
}

/// A connection that made one keep-alive request and stays open.
async fn open_keep_alive(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n").await.unwrap();
    let seen = read_until(&mut stream, r#"{"status":"ok"}"#).await;
    assert!(seen.starts_with("HTTP/1.1 200 OK"), "{seen}");
    stream
}

/// One request with `Connection: close`; the whole answer.
async fn exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(DEADLINE, stream.read_to_end(&mut out)).await.unwrap().unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_request_head_is_closed_after_the_header_timeout() {
    let node = TestNode::default();
    let config =
        ApiConfig { header_read_timeout: Duration::from_millis(200), ..ApiConfig::default() };
    let server = Running::start(&node, config).await;

    let mut partial = TcpStream::connect(server.addr).await.unwrap();
    partial.write_all(b"GET /v1/pool HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    let started = tokio::time::Instant::now();
    closed_by_server(&mut partial, "partial head").await;
    closed_by_server(&mut silent, "nothing sent").await;
    assert!(started.elapsed() < DEADLINE);

    // Prompt clients are served as before, on fresh and on kept-alive connections.
    let answer = exchange(server.addr, HEALTHZ).await;
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    let mut kept = open_keep_alive(server.addr).await;
    kept.write_all(HEALTHZ).await.unwrap();
    read_until(&mut kept, r#"{"status":"ok"}"#).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_cap_a_client_waits_until_a_connection_closes() {
    let node = TestNode::default();
    let config = ApiConfig { connections_max: 2, ..ApiConfig::default() };
    let server = Running::start(&node, config).await;
    let first = open_keep_alive(server.addr).await;
    let _second = open_keep_alive(server.addr).await;

    // The kernel completes the third handshake, but the server does not take it yet.
    let mut third = TcpStream::connect(server.addr).await.unwrap();
    third.write_all(HEALTHZ).await.unwrap();
    let mut byte = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(300), third.read(&mut byte)).await;
    assert!(early.is_err(), "a connection past the cap was served: {early:?}");

    drop(first);
    let mut out = Vec::new();
    tokio::time::timeout(DEADLINE, third.read_to_end(&mut out)).await.unwrap().unwrap();
    let answer = String::from_utf8_lossy(&out);
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_the_client_stops_sending_is_a_408_and_a_close() {
    let node = TestNode::default();
    let config = ApiConfig { request_timeout: Duration::from_millis(300), ..ApiConfig::default() };
    let server = Running::start(&node, config).await;

    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let head = "POST /v1/txs HTTP/1.1\r\nHost: test\r\nContent-Type: application/octet-stream\r\n\
                Content-Length: 100\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&[7; 10]).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(DEADLINE, stream.read_to_end(&mut out))
        .await
        .expect("the server kept the stalled connection open")
        .unwrap();
    let answer = String::from_utf8_lossy(&out);
    assert!(answer.starts_with("HTTP/1.1 408 Request Timeout"), "{answer}");
    assert!(answer.contains(r#""code":"REQUEST_TIMEOUT""#), "{answer}");
    assert!(node.pool.submitted.lock().unwrap().is_empty());
    server.stop().await;
}
