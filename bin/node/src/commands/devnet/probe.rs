//! What the devnet asks each node's HTTP API once a second: `GET /v1/cluster`,
//! `GET /v1/catalog`, JSON-RPC `txpool_status` and `GET /metrics`, over a minimal HTTP/1.1
//! client (one request per connection, bounded in time and size).

use std::{net::SocketAddr, time::Duration};

use anyhow::{Context, bail, ensure};
use mempulse_primitives::NodeId;
use serde::{Deserialize, Serialize};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
};

/// Largest response read (a catalog of a few hundred nodes, a metrics page).
const RESPONSE_BYTES_MAX: u64 = 4 * 1024 * 1024;

/// `GET /v1/cluster`, the fields the summary uses.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct ClusterStatus {
    pub(crate) role: String,
    pub(crate) leader: Option<u64>,
    pub(crate) term: u64,
    pub(crate) commit_index: Option<u64>,
    pub(crate) schedule: Option<ScheduleStatus>,
}

/// The `schedule` object of `GET /v1/cluster`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct ScheduleStatus {
    pub(crate) height: u64,
    pub(crate) proposer: u64,
    pub(crate) validator: u64,
    pub(crate) tags: Vec<String>,
}

/// `GET /v1/catalog`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Catalog {
    pub(crate) nodes: Vec<CatalogEntry>,
}

/// One announcement of the catalog, the fields the summary uses.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct CatalogEntry {
    pub(crate) node: u64,
    pub(crate) validator: u64,
    pub(crate) tags: Vec<String>,
    pub(crate) role: String,
    pub(crate) height: u64,
}

/// JSON-RPC `txpool_status`, decoded from its hex quantities.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PoolStatus {
    pub(crate) pending: u64,
    pub(crate) queued: u64,
}

/// The counters of `GET /metrics` the summary turns into rates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Counters {
    /// `mempulse_net_admitted_total`, every lane.
    pub(crate) admitted: u64,
    /// `mempulse_net_lane_dropped_total`, every lane and reason.
    pub(crate) dropped: u64,
    /// `mempulse_net_streams_open`.
    pub(crate) streams_open: u64,
}

/// One node's answers (each `None` when that request failed).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct NodeSample {
    pub(crate) node: u64,
    pub(crate) validator: u64,
    /// Whether the devnet runs its process.
    pub(crate) running: bool,
    pub(crate) cluster: Option<ClusterStatus>,
    pub(crate) catalog: Option<Catalog>,
    pub(crate) pool: Option<PoolStatus>,
    pub(crate) counters: Option<Counters>,
}

/// Asks one node everything, each request bounded by `timeout`.
pub(crate) async fn sample(
    node: NodeId,
    validator: u64,
    http: SocketAddr,
    timeout: Duration,
) -> NodeSample {
    let get = |path: &'static str| request(http, "GET", path, "", timeout);
    let rpc_body = r#"{"jsonrpc":"2.0","id":1,"method":"txpool_status","params":[]}"#;
    let (cluster, catalog, pool, metrics) = tokio::join!(
        get("/v1/cluster"),
        get("/v1/catalog"),
        request(http, "POST", "/", rpc_body, timeout),
        get("/metrics"),
    );
    NodeSample {
        node: node.0,
        validator,
        running: true,
        cluster: cluster.ok().and_then(|body| serde_json::from_str(&body).ok()),
        catalog: catalog.ok().and_then(|body| serde_json::from_str(&body).ok()),
        pool: pool.ok().and_then(|body| parse_pool(&body)),
        counters: metrics.ok().map(|body| parse_counters(&body)),
    }
}

/// `txpool_status`'s `result`: `{"pending":"0x..","queued":"0x.."}`.
pub(crate) fn parse_pool(body: &str) -> Option<PoolStatus> {
    #[derive(Deserialize)]
    struct Reply {
        result: Quantities,
    }
    #[derive(Deserialize)]
    struct Quantities {
        pending: String,
        queued: String,
    }
    let reply: Reply = serde_json::from_str(body).ok()?;
    let hex = |q: &str| u64::from_str_radix(q.strip_prefix("0x")?, 16).ok();
    Some(PoolStatus { pending: hex(&reply.result.pending)?, queued: hex(&reply.result.queued)? })
}

/// Sums the series of the counters the summary uses in a Prometheus text page; other lines,
/// comments and unparsable values are skipped.
pub(crate) fn parse_counters(page: &str) -> Counters {
    let mut counters = Counters::default();
    for line in page.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else { continue };
        let name = series.split_once('{').map_or(series, |(name, _)| name);
        let slot = match name {
            "mempulse_net_admitted_total" => &mut counters.admitted,
            "mempulse_net_lane_dropped_total" => &mut counters.dropped,
            "mempulse_net_streams_open" => &mut counters.streams_open,
            _ => continue,
        };
        // Prometheus prints integral counters without a fraction; anything else is skipped.
        if let Ok(n) = value.trim().parse::<u64>() {
            *slot = slot.saturating_add(n);
        }
    }
    counters
}

/// One HTTP/1.1 request with `Connection: close`; the body of a 2xx answer.
///
/// # Errors
/// A connection or timeout error, a non-2xx status, or an answer past the size bound.
pub(crate) async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
    timeout: Duration,
) -> anyhow::Result<String> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await?;
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(head.as_bytes()).await?;
        let mut out = Vec::new();
        stream.take(RESPONSE_BYTES_MAX + 1).read_to_end(&mut out).await?;
        anyhow::Ok(out)
    };
    let out = tokio::time::timeout(timeout, exchange)
        .await
        .with_context(|| format!("{method} {path} on {addr} timed out"))??;
    ensure!(u64::try_from(out.len()).unwrap_or(u64::MAX) <= RESPONSE_BYTES_MAX, "answer too large");
    parse_response(&String::from_utf8_lossy(&out))
}

/// The body of an HTTP/1.1 response with a 2xx status (chunked or not).
fn parse_response(text: &str) -> anyhow::Result<String> {
    let (head, body) = text.split_once("\r\n\r\n").context("no end of the response head")?;
    let status: u16 =
        head.split(' ').nth(1).and_then(|s| s.parse().ok()).context("no status in the response")?;
    if !(200..300).contains(&status) {
        bail!("status {status}");
    }
    let chunked = head.to_ascii_lowercase().contains("transfer-encoding: chunked");
    Ok(if chunked { dechunk(body) } else { body.to_owned() })
}

/// The payload of a chunked body (hex size line, data, CRLF; size 0 ends).
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else { break };
        let Some(data) = rest.get(..size).filter(|_| size > 0) else { break };
        out.push_str(data);
        body = rest.get(size..).unwrap_or("").trim_start_matches("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_sum_every_series_and_skip_the_rest() {
        let page = "# HELP mempulse_net_admitted_total transactions admitted\n\
                    # TYPE mempulse_net_admitted_total counter\n\
                    mempulse_net_admitted_total{lane=\"rpc\"} 3\n\
                    mempulse_net_admitted_total{lane=\"stream\"} 40\n\
                    mempulse_net_lane_dropped_total{lane=\"stream\",reason=\"duplicate\"} 5\n\
                    mempulse_net_lane_dropped_total{lane=\"rpc\",reason=\"queue_full\"} 1\n\
                    mempulse_net_streams_open 2\n\
                    mempulse_net_admitted_total_other 99\n\
                    mempulse_net_lane_dropped_total{lane=\"x\"} 1.5\n";
        let c = parse_counters(page);
        assert_eq!(c, Counters { admitted: 43, dropped: 6, streams_open: 2 });
        assert_eq!(parse_counters(""), Counters::default());
    }

    #[test]
    fn pool_status_decodes_quantities() {
        let ok = r#"{"jsonrpc":"2.0","id":1,"result":{"pending":"0x1f","queued":"0x0"}}"#;
        assert_eq!(parse_pool(ok), Some(PoolStatus { pending: 31, queued: 0 }));
        let err = r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"fenced"}}"#;
        assert_eq!(parse_pool(err), None);
        assert_eq!(parse_pool(r#"{"result":{"pending":"12","queued":"0x0"}}"#), None);
    }

    #[test]
    fn responses_parse_plain_and_chunked_and_refuse_errors() {
        let plain = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
        assert_eq!(parse_response(plain).unwrap(), "{}");
        let chunked =
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked).unwrap(), "abcde");
        assert!(parse_response("HTTP/1.1 503 Service Unavailable\r\n\r\n{}").is_err());
        assert!(parse_response("garbage").is_err());
        let short = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nff\r\nabc";
        assert_eq!(parse_response(short).unwrap(), "");
    }

    #[test]
    fn recorded_cluster_and_catalog_bodies_decode() {
        let cluster = r#"{"node":4,"role":"leader","leader":4,"term":2,"last_log_index":9,
            "commit_index":9,"applied_index":9,"members":[],
            "schedule":{"height":7,"proposer":2,"validator":2,"tags":["proposer"]}}"#;
        let status: ClusterStatus = serde_json::from_str(cluster).unwrap();
        assert_eq!(status.leader, Some(4));
        assert_eq!(status.schedule.unwrap().tags, ["proposer"]);
        let catalog = r#"{"nodes":[{"node":1,"validator":1,"stream_addr":"127.0.0.1:1",
            "api_addr":"","tags":[],"role":"leader","height":7,"version":3,"age_ms":12}]}"#;
        let catalog: Catalog = serde_json::from_str(catalog).unwrap();
        assert_eq!(catalog.nodes[0].role, "leader");
    }
}
