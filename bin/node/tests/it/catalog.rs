//! The peer catalog with real processes: two validators of two nodes each, mutual TLS under
//! one deployment CA, every node announcing itself to the others over its stream listener.
//! Every node's `GET /v1/catalog` lists all four nodes with their validator, their cluster's
//! tags (as that node's own `/v1/cluster` schedule says) and their Raft role; a tx source
//! routed by the catalog streams to the matching clusters.

use std::{net::SocketAddr, path::Path, process::Command};

use serde_json::Value;

use super::support::{
    BIN, LOG_SEGMENT_BYTES, Process, SEGMENT_BYTES, free_ports, http, wait_until,
};

/// Node ids per validator (ids are unique across the deployment).
const LAYOUT: [(u64, [u64; 2]); 2] = [(1, [1, 2]), (2, [4, 5])];

struct Node {
    id: u64,
    http: SocketAddr,
    _process: Process,
}

fn get(addr: SocketAddr, path: &str) -> Option<Value> {
    let (status, body) = http(addr, "GET", path, "application/json", b"");
    (status == 200).then(|| serde_json::from_str(&body).ok()).flatten()
}

/// The validators file: two validators of equal power, each with its members' Raft and
/// stream listeners.
fn validators_toml(raft: &[u16], stream: &[u16]) -> String {
    let mut out = String::from("initial-height = 1\nslot-duration-ms = 400\n");
    for (i, (validator, ids)) in LAYOUT.iter().enumerate() {
        let list = |ports: &[u16]| {
            let entries: Vec<String> = ids
                .iter()
                .enumerate()
                .map(|(j, id)| format!("\"{id}@127.0.0.1:{}\"", ports[i * 2 + j]))
                .collect();
            entries.join(", ")
        };
        out.push_str(&format!(
            "[[validators]]\nid = {validator}\naddress = \"0x{validator:040x}\"\npower = 1\n\
             nodes = [{}]\nstreams = [{}]\n",
            list(raft),
            list(stream)
        ));
    }
    out
}

fn node_toml(
    root: &Path,
    (validator, id): (u64, u64),
    ports: (u16, u16, u16),
    peers: &str,
) -> String {
    let (raft, http, stream) = ports;
    let certs = root.join("certs");
    format!(
        "data-dir = {data:?}\n[api]\nhttp-addr = \"127.0.0.1:{http}\"\n\
         [wal]\nsegment-size-bytes = {SEGMENT_BYTES}\n\
         [cluster]\nnode-id = {id}\nlog-segment-size-bytes = {LOG_SEGMENT_BYTES}\nraft-addr = \"127.0.0.1:{raft}\"\npeers = [{peers}]\n\
         bootstrap = {bootstrap}\nheartbeat-interval-ms = 50\nelection-timeout-min-ms = 300\n\
         election-timeout-max-ms = 600\n\
         [stream]\nlisten-addr = \"127.0.0.1:{stream}\"\n\
         [schedule]\nvalidators = {file:?}\nvalidator-id = {validator}\n\
         [tls]\nca-cert = {ca:?}\nnode-cert = {cert:?}\nnode-key = {key:?}\n",
        data = root.join(format!("data-{id}")),
        bootstrap = id % 3 == 1,
        file = root.join("validators.toml"),
        ca = certs.join("ca.pem"),
        cert = certs.join(format!("node-{id}.pem")),
        key = certs.join(format!("node-{id}-key.pem")),
    )
}

fn start(root: &Path) -> (Vec<Node>, Vec<u16>) {
    let out = Command::new(BIN)
        .args(["cert", "--nodes", "1,2,4,5,100", "--out"])
        .arg(root.join("certs"))
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(out.status.success(), "cert: {}", String::from_utf8_lossy(&out.stderr));
    let ports = free_ports(12);
    let (raft, rest) = ports.split_at(4);
    let (http_ports, stream) = rest.split_at(4);
    std::fs::write(root.join("validators.toml"), validators_toml(raft, stream)).unwrap();
    let mut nodes = Vec::new();
    for (i, (validator, ids)) in LAYOUT.iter().enumerate() {
        let peers: Vec<String> = ids
            .iter()
            .enumerate()
            .map(|(j, id)| format!("\"{id}@127.0.0.1:{}\"", raft[i * 2 + j]))
            .collect();
        for (j, id) in ids.iter().enumerate() {
            let k = i * 2 + j;
            let config = root.join(format!("node-{id}.toml"));
            let ports = (raft[k], http_ports[k], stream[k]);
            std::fs::write(&config, node_toml(root, (*validator, *id), ports, &peers.join(", ")))
                .unwrap();
            // The stream listener on the file's port.
            let stream_addr = format!("127.0.0.1:{}", stream[k]);
            let process = Process::run_node(format!("node {id}"), &config, &stream_addr);
            nodes.push(Node {
                id: *id,
                http: SocketAddr::from(([127, 0, 0, 1], http_ports[k])),
                _process: process,
            });
        }
    }
    for node in &nodes {
        node._process.wait_logged("commands::run: node started");
    }
    (nodes, stream.to_vec())
}

/// What a node says about itself in `/v1/cluster`: (role, schedule tags).
fn own_view(node: &Node) -> Option<(String, Value)> {
    let cluster = get(node.http, "/v1/cluster")?;
    Some((cluster["role"].as_str()?.to_owned(), cluster["schedule"]["tags"].clone()))
}

#[test]
fn every_node_lists_every_node_with_its_validator_tags_and_role() {
    let root = tempfile::tempdir().unwrap();
    let (nodes, stream_ports) = start(root.path());
    // Each cluster elects a leader.
    wait_until("a leader in each cluster", || {
        let leaders =
            nodes.iter().filter_map(own_view).filter(|(role, _)| role == "leader").count();
        (leaders == 2).then_some(())
    });
    wait_until("every catalog to list every node as it is", || {
        let truth: Vec<(String, Value)> = nodes.iter().map(own_view).collect::<Option<_>>()?;
        for node in &nodes {
            let catalog = get(node.http, "/v1/catalog")?;
            let listed = catalog["nodes"].as_array()?;
            let ids: Vec<u64> = listed.iter().filter_map(|e| e["node"].as_u64()).collect();
            if ids != [1, 2, 4, 5] {
                return None;
            }
            for (entry, (other, (role, tags))) in listed.iter().zip(nodes.iter().zip(&truth)) {
                let validator = if other.id < 3 { 1 } else { 2 };
                let port = stream_ports[nodes.iter().position(|n| n.id == other.id)?];
                let want_addr = format!("127.0.0.1:{port}");
                let matches = entry["validator"] == validator
                    && entry["role"] == role.as_str()
                    && entry["tags"] == *tags
                    && entry["stream_addr"] == want_addr.as_str()
                    && entry["api_addr"] == other.http.to_string().as_str()
                    && entry["age_ms"].as_u64()? < 2_000;
                if !matches {
                    return None;
                }
            }
        }
        Some(())
    });
    // Every validator has one tag set at the initial height; the two clusters differ.
    let catalog = get(nodes[0].http, "/v1/catalog").unwrap();
    let tags: Vec<&Value> =
        catalog["nodes"].as_array().unwrap().iter().map(|e| &e["tags"]).collect();
    assert_eq!((tags[0], tags[2]), (tags[1], tags[3]), "members share their cluster's tags");
    assert_ne!(tags[0], tags[2], "{catalog}");
    let proposers =
        tags.iter().filter(|t| t.as_array().is_some_and(|a| a.contains(&"proposer".into())));
    assert_eq!(proposers.count(), 2, "one proposer cluster: {catalog}");

    // A source routed by the catalog streams to the proposer cluster only (reactive), through
    // mutual TLS as node 100.
    let certs = root.path().join("certs");
    let catalog_arg = format!("1@127.0.0.1:{}", stream_ports[0]);
    let out = Command::new(BIN)
        .args(["txsource", "--catalog", &catalog_arg, "--subscribe", "reactive"])
        .args(["--source-id", "100", "--generate", "20", "--rate", "2000"])
        .arg("--tls-ca")
        .arg(certs.join("ca.pem"))
        .arg("--tls-cert")
        .arg(certs.join("node-100.pem"))
        .arg("--tls-key")
        .arg(certs.join("node-100-key.pem"))
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "txsource: {stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((report["txs"].as_u64(), report["sent"].as_u64()), (Some(20), Some(20)), "{report}");
    let opened: Vec<u64> = report["streams"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "opened")
        .filter_map(|e| e["validator"].as_u64())
        .collect();
    let proposer = if tags[0].as_array().unwrap().contains(&"proposer".into()) { 1 } else { 2 };
    assert_eq!(opened, [proposer, proposer], "both members of the proposer cluster: {report}");
    let accepted: u64 =
        report["accepted"].as_object().unwrap().values().filter_map(Value::as_u64).sum();
    assert_eq!(accepted, 20, "{report}");
    assert!(stderr.contains("routed tx streams"), "the source logs its streams");
}
