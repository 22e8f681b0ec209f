//! `mempulse run` with `[sink.clickhouse]` exports its event log to a real ClickHouse server
//! (`MEMPULSE_CLICKHOUSE_URL`, or one `ci/clickhouse.sh start` starts), row for row, and stops
//! the export with the node.

use std::{net::SocketAddr, path::Path, process::Command};

use serde_json::json;

use crate::support::{Single, http, wait_until};

/// The server: `MEMPULSE_CLICKHOUSE_URL`, or the one `ci/clickhouse.sh start` starts or finds.
fn clickhouse_url() -> String {
    if let Ok(url) = std::env::var("MEMPULSE_CLICKHOUSE_URL") {
        return url;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ci/clickhouse.sh");
    let out = Command::new(&script).arg("start").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "MEMPULSE_CLICKHOUSE_URL is unset and {script:?} failed: {stderr}"
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Runs `query` on the server and returns its answer as tab-separated text.
fn query(server: SocketAddr, query: &str) -> String {
    let query = if query.starts_with("SELECT") {
        format!("{query} FORMAT TabSeparated")
    } else {
        query.to_owned()
    };
    let (status, body) = http(server, "POST", "/", "text/plain", query.as_bytes());
    assert_eq!(status, 200, "{query}: {body}");
    body.trim().to_owned()
}

#[test]
fn a_node_exports_every_durable_event_to_clickhouse() {
    let url = clickhouse_url();
    let server: SocketAddr =
        url.trim_start_matches("http://").trim_end_matches('/').parse().unwrap();
    let database = format!("node_sink_{}", std::process::id());
    query(server, &format!("DROP DATABASE IF EXISTS {database}"));
    query(server, &format!("CREATE DATABASE {database}"));
    let node = Single::start_with(&format!(
        "[sink.clickhouse]\nurl = {url:?}\ndatabase = {database:?}\nflush-interval-ms = 50\n"
    ));
    assert!(node.process.logged("clickhouse export started"));
    // Refused transactions are local facts: the node writes one per submission.
    for nonce in 0..20_u8 {
        let raw = format!("0xf8{nonce:02x}");
        let call = json!({"jsonrpc": "2.0", "id": 1, "method": "eth_sendRawTransaction",
                          "params": [raw]});
        let (status, reply) = node.rpc(&call.to_string());
        assert!(status == 200 && reply["error"].is_object(), "{reply}");
    }
    let durable = wait_until("20 durable facts", || {
        let (_, page) = node.get_json("/v1/events?limit=1000");
        let events = page["events"].as_array()?.len();
        (events >= 20).then_some(events)
    });
    let table = format!("{database}.mempulse_events");
    let exported = wait_until("the export to catch up", || {
        let count = query(
            server,
            &format!("SELECT count(), uniqExact(seq), min(seq), max(seq) FROM {table}"),
        );
        (count.split_whitespace().next() == Some(&durable.to_string())).then_some(count)
    });
    assert_eq!(exported, format!("{durable}\t{durable}\t1\t{durable}"), "one row per seq, no gap");
    let kinds = query(server, &format!("SELECT DISTINCT kind FROM {table} ORDER BY kind"));
    assert!(kinds.contains("tx_dropped") || kinds.contains("tx_rejected"), "{kinds}");
    node.process.signal("-TERM");
    let mut node = node;
    assert!(node.process.wait_exit(), "the node did not stop cleanly");
    assert!(node.process.logged("clickhouse export stopped"));
    query(server, &format!("DROP DATABASE {database}"));
}
