//! The stream lane with real processes on 127.0.0.1: `mempulse txsource` streaming into a
//! plaintext-loopback node and into a follower of a mutual-TLS cluster, refusals of clients
//! without a certificate of the deployment CA, and a bad frame closing only its own stream.

use std::{
    io::{Read as _, Write as _},
    net::{SocketAddr, TcpStream},
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use bytes::BytesMut;
use mempulse_net::{CloseReason, STREAM_PROTOCOL_VERSION, StreamFrame};
use mempulse_primitives::NodeId;
use serde_json::{Value, json};

use crate::support::{
    BIN, DEADLINE, LOG_SEGMENT_BYTES, Process, SEGMENT_BYTES, Single, free_ports, http, wait_until,
};

/// The stream listener's address, from the node's "node started" line.
fn stream_addr(process: &Process) -> String {
    process
        .logged_field("commands::run: node started", "stream")
        .expect("a stream address in the start line")
}

/// Runs `mempulse txsource <args>` with `stdin`; (exit success, last stdout line as JSON,
/// stderr).
fn txsource(args: &[&str], stdin: &str) -> (bool, Value, String) {
    let mut child = Command::new(BIN)
        .arg("txsource")
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    wait_until("txsource to finish", || child.try_wait().unwrap().map(|_| ()));
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report = stdout.lines().last().and_then(|l| serde_json::from_str(l).ok());
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.success(), report.unwrap_or(Value::Null), stderr)
}

fn rpc(addr: SocketAddr, method: &str) -> Value {
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": []});
    let (_, body) = http(addr, "POST", "/", "application/json", call.to_string().as_bytes());
    serde_json::from_str(&body).unwrap_or(Value::Null)
}

/// Transactions in `txpool_content` (pending and queued).
fn pooled(addr: SocketAddr) -> usize {
    let content = rpc(addr, "txpool_content");
    ["pending", "queued"]
        .iter()
        .filter_map(|part| content["result"][part].as_object())
        .flat_map(|senders| senders.values())
        .filter_map(Value::as_object)
        .map(serde_json::Map::len)
        .sum()
}

/// `tx_received` facts with source `source`.
fn received_from(addr: SocketAddr, source: &str) -> usize {
    let (_, body) =
        http(addr, "GET", "/v1/events?kinds=tx_received&limit=10000", "application/json", b"");
    let page: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    page["events"]
        .as_array()
        .map_or(0, |events| events.iter().filter(|e| e["source"] == source).count())
}

/// The value of metric sample `name{labels}` in `GET /metrics`, 0 when absent.
fn metric(addr: SocketAddr, sample: &str) -> u64 {
    let (_, body) = http(addr, "GET", "/metrics", "text/plain", b"");
    body.lines().find_map(|line| line.strip_prefix(sample)?.trim().parse::<u64>().ok()).unwrap_or(0)
}

fn encode(frames: &[StreamFrame]) -> Vec<u8> {
    let mut out = BytesMut::new();
    for frame in frames {
        frame.encode(&mut out, u32::MAX).unwrap();
    }
    out.to_vec()
}

#[test]
fn txsource_streams_into_a_plaintext_loopback_node_as_peer_facts_and_pooled_txs() {
    let node = Single::start();
    let addr = stream_addr(&node.process);
    let args = ["--node", &addr, "--source-id", "77", "--generate", "12", "--senders", "3"];
    let (ok, report, stderr) = txsource(&args, "");
    assert!(ok, "txsource failed: {stderr}");
    assert_eq!((report["sent"].as_u64(), report["accepted"].as_u64()), (Some(12), Some(12)));
    assert_eq!(report["answered"], true, "{report}");
    wait_until("12 pooled transactions", || (pooled(node.http) == 12).then_some(()));
    wait_until("12 tx_received facts from peer:77", || {
        (received_from(node.http, "peer:77") == 12).then_some(())
    });

    // Hex lines on stdin: a valid one, a bad line (skipped, counted, exit 1), the same one
    // again (a duplicate) and undecodable bytes.
    let vectors: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../crates/net/tests/vectors/txs.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let raw = vectors["valid"][0]["raw"].as_str().unwrap();
    let input = format!("{raw}\nnot hex\n\n{raw}\n0x02\n");
    let (ok, report, stderr) = txsource(&["--node", &addr, "--source-id", "78"], &input);
    assert!(!ok, "a bad line fails the command: {report}");
    assert_eq!((report["sent"].as_u64(), report["bad_lines"].as_u64()), (Some(3), Some(1)));
    assert_eq!(report["accepted"], 1, "{report} {stderr}");
    assert_eq!(report["refused"]["dropped"]["duplicate"], 1, "{report}");
    node.assert_healthy();
}

/// A raw stream as node `source`, past its hello and first credit.
fn open_raw(addr: &str, source: u64) -> TcpStream {
    let mut raw = TcpStream::connect(addr).unwrap();
    raw.set_read_timeout(Some(DEADLINE)).unwrap();
    let hello = StreamFrame::Hello { source: NodeId(source), version: STREAM_PROTOCOL_VERSION };
    raw.write_all(&encode(&[hello])).unwrap();
    let mut credit = [0u8; 9];
    raw.read_exact(&mut credit).unwrap();
    assert_eq!(credit[..], encode(&[StreamFrame::Credit { txs: 1024 }])[..]);
    raw
}

#[test]
fn a_bad_frame_closes_only_its_stream_with_a_reason_and_the_node_keeps_serving() {
    let node = Single::start();
    let addr = stream_addr(&node.process);
    let mut raw = open_raw(&addr, 5);
    // A frame of an unknown kind.
    raw.write_all(&[3, 0, 0, 0, 9, 1, 2]).unwrap();
    let mut answer = Vec::new();
    let _ = raw.read_to_end(&mut answer);
    let close = encode(&[StreamFrame::Close { reason: CloseReason::MalformedFrame }]);
    assert_eq!(answer, close, "the stream ends with close(malformed_frame)");

    let args = ["--node", &addr, "--source-id", "6", "--generate", "3", "--rate", "1000"];
    let (ok, report, stderr) = txsource(&args, "");
    assert!(ok, "another stream still works: {stderr}");
    assert_eq!(report["accepted"], 3, "{report}");
    let closed = r#"mempulse_net_streams_closed_total{reason="malformed_frame"}"#;
    assert_eq!(metric(node.http, closed), 1);
    node.assert_healthy();
}

/// Three nodes over mutual TLS with certificates for 1-3 and for source 100 from one CA, plus
/// another CA's certificate for 100.
struct TlsCluster {
    root: tempfile::TempDir,
    nodes: Vec<(u64, SocketAddr, Process)>,
}

fn cert(out: &Path, ids: &str) {
    let out = Command::new(BIN)
        .args(["cert", "--nodes", ids, "--out"])
        .arg(out)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(out.status.success(), "cert: {}", String::from_utf8_lossy(&out.stderr));
}

impl TlsCluster {
    fn start() -> Self {
        let root = tempfile::tempdir().unwrap();
        let certs = root.path().join("certs");
        cert(&certs, "1,2,3,100");
        cert(&root.path().join("other"), "100");
        let ports = free_ports(6);
        let (raft, api) = ports.split_at(3);
        let peers: Vec<String> =
            raft.iter().enumerate().map(|(i, p)| format!("\"{}@127.0.0.1:{p}\"", i + 1)).collect();
        let mut nodes = Vec::new();
        for id in 1..=3u64 {
            let i = usize::try_from(id - 1).unwrap();
            let config = root.path().join(format!("node-{id}.toml"));
            let toml = format!(
                "data-dir = {data:?}\n[api]\nhttp-addr = \"127.0.0.1:{http}\"\n\
                 [wal]\nsegment-size-bytes = {SEGMENT_BYTES}\n\
                 [cluster]\nnode-id = {id}\nlog-segment-size-bytes = {LOG_SEGMENT_BYTES}\nraft-addr = \"127.0.0.1:{port}\"\npeers = [{peers}]\n\
                 bootstrap = {boot}\nheartbeat-interval-ms = 50\nelection-timeout-min-ms = 300\n\
                 election-timeout-max-ms = 600\n\
                 [tls]\nca-cert = {ca:?}\nnode-cert = {cert:?}\nnode-key = {key:?}\n",
                data = root.path().join(format!("data-{id}")),
                http = api[i],
                port = raft[i],
                peers = peers.join(", "),
                boot = id == 1,
                ca = certs.join("ca.pem"),
                cert = certs.join(format!("node-{id}.pem")),
                key = certs.join(format!("node-{id}-key.pem")),
            );
            std::fs::write(&config, toml).unwrap();
            let args = ["run".as_ref(), "--config".as_ref(), config.as_os_str()];
            let process = Process::spawn(format!("node {id}"), &args);
            nodes.push((id, SocketAddr::from(([127, 0, 0, 1], api[i])), process));
        }
        for (_, _, process) in &nodes {
            process.wait_logged("commands::run: node started");
        }
        Self { root, nodes }
    }

    /// A node that follows an elected leader: (its id, HTTP address, stream address).
    fn follower(&self) -> (u64, SocketAddr, String) {
        wait_until("a leader and a follower", || {
            self.nodes.iter().find_map(|(id, http_addr, process)| {
                let (_, body) = http(*http_addr, "GET", "/v1/cluster", "application/json", b"");
                let view: Value = serde_json::from_str(&body).ok()?;
                let leader = view["leader"].as_u64()?;
                (leader != *id).then(|| (*id, *http_addr, stream_addr(process)))
            })
        })
    }

    fn file(&self, relative: &str) -> PathBuf {
        self.root.path().join(relative)
    }

    /// `--tls-*` arguments with the deployment CA and `cert_dir`'s certificate of source 100.
    fn tls_args(&self, cert_dir: &str) -> Vec<String> {
        let path = |p: PathBuf| p.to_string_lossy().into_owned();
        vec![
            "--tls-ca".into(),
            path(self.file("certs/ca.pem")),
            "--tls-cert".into(),
            path(self.file(&format!("{cert_dir}/node-100.pem"))),
            "--tls-key".into(),
            path(self.file(&format!("{cert_dir}/node-100-key.pem"))),
        ]
    }
}

#[test]
fn a_certified_source_streams_to_a_follower_and_uncertified_clients_are_refused() {
    let cluster = TlsCluster::start();
    let (id, follower_http, follower_stream) = cluster.follower();
    // By node id: the follower's certificate must name node-<id>.
    let target = format!("{id}@{follower_stream}");
    let mut args: Vec<String> = ["--node", &target, "--source-id", "100", "--generate", "10"]
        .iter()
        .map(ToString::to_string)
        .collect();
    args.extend(cluster.tls_args("certs"));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, report, stderr) = txsource(&argv, "");
    assert!(ok, "txsource failed: {stderr}");
    assert_eq!(report["accepted"], 10, "{report}");
    // Admitted through the leader: replicated to every node's pool.
    for (node, http_addr, _) in &cluster.nodes {
        wait_until(&format!("node {node} to pool the 10"), || {
            (pooled(*http_addr) == 10).then_some(())
        });
    }
    wait_until("the follower's 10 receipts to be durable", || {
        (received_from(follower_http, "peer:100") >= 10).then_some(())
    });
    assert_eq!(received_from(follower_http, "peer:100"), 10);

    // A certificate from another CA (the client trusts the node, the node not the client).
    let mut args: Vec<String> =
        ["--node", &follower_stream, "--source-id", "100", "--generate", "1"]
            .iter()
            .map(ToString::to_string)
            .collect();
    args.extend(cluster.tls_args("other"));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, _, _) = txsource(&argv, "");
    assert!(!ok, "another CA's certificate was accepted");
    let untrusted = r#"mempulse_net_streams_refused_total{reason="untrusted_certificate"}"#;
    wait_until("the untrusted certificate to be counted", || {
        (metric(follower_http, untrusted) == 1).then_some(())
    });

    // No certificate at all: plaintext to a TLS listener.
    let plain = ["--node", &follower_stream, "--source-id", "100", "--generate", "1"];
    let (ok, _, _) = txsource(&plain, "");
    assert!(!ok, "a plaintext client was accepted");
    let handshake = r#"mempulse_net_streams_refused_total{reason="tls_handshake"}"#;
    wait_until("the failed handshake to be counted", || {
        (metric(follower_http, handshake) >= 1).then_some(())
    });

    // A certified source claiming another id: the stream is closed with identity_mismatch.
    let mut args: Vec<String> =
        ["--node", &follower_stream, "--source-id", "101", "--generate", "1"]
            .iter()
            .map(ToString::to_string)
            .collect();
    args.extend(cluster.tls_args("certs"));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, _, stderr) = txsource(&argv, "");
    assert!(!ok && stderr.contains("identity_mismatch"), "{stderr}");
    assert_eq!(pooled(follower_http), 10, "nothing more was admitted");
}

#[test]
fn stopping_the_node_closes_its_streams_with_shutting_down() {
    let mut node = Single::start();
    let addr = stream_addr(&node.process);
    let mut raw = open_raw(&addr, 8);
    node.process.signal("-TERM");
    let mut answer = Vec::new();
    let _ = raw.read_to_end(&mut answer);
    let close = encode(&[StreamFrame::Close { reason: CloseReason::ShuttingDown }]);
    assert_eq!(answer, close, "the stream ends with close(shutting_down)");
    assert!(node.process.wait_exit(), "the node exits 0 with a stream open");
}
