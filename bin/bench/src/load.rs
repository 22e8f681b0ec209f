//! Closed-loop clients for the end-to-end benchmarks, and the pre-signed transactions they send.
//!
//! Each client owns one keep-alive connection and keeps exactly one request in flight: send,
//! read the whole reply, classify it, send the next. Latency is measured from just before the
//! request is written to just after its reply is read. The run ends at the deadline, or as soon
//! as one client has sent every request it was given (then `exhausted` is reported), so the
//! concurrency stays what was asked for during the whole measured window.
//!
//! **Transactions** are EIP-1559 transfers signed before any clock starts
//! (`mempulse_net::test_utils::signed_tx`, deterministic keys). Client `c` of `C` owns senders
//! `base + c + C·k` for `k` in `0..senders/C` and cycles through them, so every sender's nonces
//! go out in order from one client and are admitted, not refused as gaps.
//!
//! **Blocks.** A node's pool holds at most 10 000 transactions (the mempool default), a few
//! seconds of load: a committer task plays the chain and commits, every `interval`, a block of
//! the hashes acknowledged since the previous one (`POST /v1/blocks/commit`), which removes
//! them from the pool. Commits go through the cluster like the load; they are not timed.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail, ensure};
use mempulse_net::test_utils::{TxSpec, signed_tx};
use mempulse_primitives::{DropReason, TxType};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::http_client::HttpConn;

/// Bound on one request; a request past it counts as `timeout` and its connection is replaced.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Acknowledged hashes waiting for the committer.
const HASHES_CAPACITY: usize = 1 << 18;
/// Most hashes in one committed block (the API's limit per commit).
const COMMIT_TXS_MAX: usize = 65_536;
/// Pause after a connection error before reconnecting (pacing only).
const RECONNECT_PACE: Duration = Duration::from_millis(10);
/// Headers of a JSON request.
pub(crate) const JSON_HEADERS: [(&str, &str); 1] = [("Content-Type", "application/json")];

/// The transactions of a run: how many, from whom, how large.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TxPlan {
    /// Clients (each gets its own senders).
    pub(crate) clients: usize,
    /// Transactions per client.
    pub(crate) per_client: usize,
    /// Senders over all clients (at least one per client).
    pub(crate) senders: u32,
    /// First sender index (distinct runs on one cluster use distinct senders).
    pub(crate) sender_base: u32,
    /// Calldata bytes of each transaction.
    pub(crate) input_len: usize,
}

/// Signs every client's transactions on all cores and returns, per client, the JSON-RPC
/// `eth_sendRawTransaction` bodies in send order.
///
/// # Errors
/// Fails if a transaction cannot be signed or the sender indexes overflow.
pub(crate) fn sign_bodies(plan: &TxPlan) -> anyhow::Result<Vec<Vec<Vec<u8>>>> {
    ensure!(plan.clients > 0, "at least one client");
    let per_sender_client = usize::try_from(plan.senders)?.div_ceil(plan.clients).max(1);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(plan.clients);
    let per_thread = plan.clients.div_ceil(threads);
    let mut out: Vec<anyhow::Result<Vec<Vec<u8>>>> = Vec::new();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..plan.clients)
            .step_by(per_thread)
            .map(|first| {
                let last = (first + per_thread).min(plan.clients);
                scope.spawn(move || {
                    (first..last)
                        .map(|client| client_bodies(plan, client, per_sender_client))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for handle in handles {
            match handle.join() {
                Ok(bodies) => out.extend(bodies),
                Err(_) => out.push(Err(anyhow::anyhow!("a signing thread panicked"))),
            }
        }
    });
    out.into_iter().collect()
}

fn client_bodies(plan: &TxPlan, client: usize, senders: usize) -> anyhow::Result<Vec<Vec<u8>>> {
    (0..plan.per_client)
        .map(|j| {
            let sender = client + plan.clients * (j % senders);
            let sender = plan.sender_base.checked_add(u32::try_from(sender)?).context("senders")?;
            let spec = TxSpec {
                input_len: plan.input_len,
                ..TxSpec::transfer(TxType::DynamicFee, sender, u64::try_from(j / senders)?)
            };
            let raw = signed_tx(&spec).context("signing a transaction")?;
            Ok(rpc_body(&raw))
        })
        .collect()
}

/// Encoded size of the bench's transaction with `input_len` calldata bytes.
///
/// # Errors
/// Fails if it cannot be signed.
pub(crate) fn tx_bytes(input_len: usize) -> anyhow::Result<usize> {
    let spec = TxSpec { input_len, ..TxSpec::transfer(TxType::DynamicFee, 0, 0) };
    Ok(signed_tx(&spec).context("signing a transaction")?.len())
}

/// The calldata length that makes the encoded transaction as close to `target` bytes as
/// possible without exceeding it.
///
/// # Errors
/// Fails if `target` is below the size of a transaction without calldata.
pub(crate) fn input_len_for(target: usize) -> anyhow::Result<usize> {
    let base = tx_bytes(0)?;
    ensure!(target >= base, "--value-size {target} is below a bare transaction's {base} bytes");
    let mut len = target - base;
    while len > 0 && tx_bytes(len)? > target {
        len -= 1;
    }
    while tx_bytes(len + 1)? <= target {
        len += 1;
    }
    Ok(len)
}

/// `{"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransaction","params":["0x…"]}`.
pub(crate) fn rpc_body(raw: &[u8]) -> Vec<u8> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut body =
        br#"{"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransaction","params":["0x"#.to_vec();
    for byte in raw {
        body.push(HEX[usize::from(byte >> 4)]);
        body.push(HEX[usize::from(byte & 0xf)]);
    }
    body.extend_from_slice(br#""]}"#);
    body
}

/// What a reply to one write said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Reply {
    /// Durable: the transaction hash (mempulse) or the key (etcd).
    Acked(String),
    /// Refused: `dropped:<reason>` (a lane dropped it), `rejected:<reason>` (the pool refused it,
    /// which is also durable), `unavailable:<CODE>`, `http_<status>`, `etcd_error:<code>`.
    Refused(String),
}

/// Classifies a JSON-RPC `eth_sendRawTransaction` reply.
pub(crate) fn classify_rpc(status: u16, body: &[u8]) -> Reply {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return Reply::Refused(format!("http_{status}"));
    };
    if let Some(hash) = value["result"].as_str() {
        return Reply::Acked(hash.to_owned());
    }
    let error = &value["error"];
    if let Some(reason) = error["data"]["reason"].as_str() {
        let dropped = DropReason::ALL.iter().any(|r| r.as_str() == reason && reason != "duplicate");
        let kind = if dropped { "dropped" } else { "rejected" };
        return Reply::Refused(format!("{kind}:{reason}"));
    }
    if let Some(code) = error["data"]["code"].as_str() {
        return Reply::Refused(format!("unavailable:{code}"));
    }
    match error["code"].as_i64() {
        Some(code) => Reply::Refused(format!("rpc_error:{code}")),
        None => Reply::Refused(format!("http_{status}")),
    }
}

/// Classifies an etcd JSON-gateway `PUT` reply (200 with a header means committed).
pub(crate) fn classify_etcd(status: u16, body: &[u8]) -> Reply {
    let value = serde_json::from_slice::<Value>(body).unwrap_or(Value::Null);
    if status == 200 && value.get("header").is_some() {
        return Reply::Acked(String::new());
    }
    match value["code"].as_i64() {
        Some(code) => Reply::Refused(format!("etcd_error:{code}")),
        None => Reply::Refused(format!("http_{status}")),
    }
}

/// An etcd v3 JSON-gateway put: `{"key": base64, "value": base64}`.
pub(crate) fn etcd_put_body(key: &str, value_b64: &str) -> Vec<u8> {
    format!(r#"{{"key":"{}","value":"{value_b64}"}}"#, base64(key.as_bytes())).into_bytes()
}

/// Standard base64 with padding.
pub(crate) fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(TABLE[usize::try_from((n >> shift) & 63).unwrap_or(0)]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The requests one client sends.
#[derive(Debug)]
pub(crate) enum Requests {
    /// Pre-built `eth_sendRawTransaction` bodies, in order.
    Rpc(Vec<Vec<u8>>),
    /// etcd puts of one value under keys `<prefix><n>`, `n` counting from 0.
    EtcdPut {
        /// Key prefix (distinct per client).
        prefix: String,
        /// The value, base64.
        value_b64: String,
    },
}

impl Requests {
    /// Request `n` as (path, body), or `None` when there is no such request.
    fn get(&self, n: usize) -> Option<(&'static str, std::borrow::Cow<'_, [u8]>)> {
        match self {
            Self::Rpc(bodies) => bodies.get(n).map(|b| ("/", b.as_slice().into())),
            Self::EtcdPut { prefix, value_b64 } => {
                Some(("/v3/kv/put", etcd_put_body(&format!("{prefix}{n}"), value_b64).into()))
            }
        }
    }

    fn classify(&self, status: u16, body: &[u8]) -> Reply {
        match self {
            Self::Rpc(_) => classify_rpc(status, body),
            Self::EtcdPut { .. } => classify_etcd(status, body),
        }
    }
}

/// One client: where it connects and what it sends.
#[derive(Debug)]
pub(crate) struct Client {
    /// HTTP address of the node it talks to.
    pub(crate) addr: SocketAddr,
    /// Its requests.
    pub(crate) requests: Requests,
}

/// The chain stand-in: commits acknowledged transactions as blocks.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Committer {
    /// HTTP address of the node to commit through.
    pub(crate) addr: SocketAddr,
    /// Time between two blocks.
    pub(crate) interval: Duration,
}

/// What a run measured.
#[derive(Debug, Default)]
pub(crate) struct LoadResult {
    /// From the first request to the last reply.
    pub(crate) elapsed: Duration,
    /// Latency of every acknowledged write, sorted, in nanoseconds.
    pub(crate) latencies_ns: Vec<u64>,
    /// Latency of every refusal (an answer that is not an acknowledgement), sorted.
    pub(crate) refused_latencies_ns: Vec<u64>,
    /// Replies by outcome (`acked`, `dropped:<reason>`, …, `timeout`, `io_error`).
    pub(crate) outcomes: BTreeMap<String, u64>,
    /// A client ran out of requests before the deadline (the run ended early).
    pub(crate) exhausted: bool,
    /// Blocks the committer committed.
    pub(crate) blocks_committed: u64,
    /// Commits that failed (the pool may then fill up and refuse).
    pub(crate) commit_failures: u64,
    /// Acknowledged hashes the committer could not take (its queue was full).
    pub(crate) commit_backlog_full: u64,
}

impl LoadResult {
    /// Acknowledged writes.
    pub(crate) fn acked(&self) -> u64 {
        self.outcomes.get("acked").copied().unwrap_or(0)
    }

    /// Acknowledged writes per second.
    pub(crate) fn per_s(&self) -> f64 {
        #[expect(clippy::cast_precision_loss, reason = "a rate for humans; counts below 2^53")]
        let acked = self.acked() as f64;
        acked / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Answers (acknowledgements and refusals) per second.
    pub(crate) fn replies_per_s(&self) -> f64 {
        #[expect(clippy::cast_precision_loss, reason = "a rate for humans; counts below 2^53")]
        let replies = (self.latencies_ns.len() + self.refused_latencies_ns.len()) as f64;
        replies / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Replies counting as lane drops (`dropped:*`).
    pub(crate) fn dropped(&self) -> u64 {
        self.outcomes.iter().filter(|(k, _)| k.starts_with("dropped:")).map(|(_, v)| v).sum()
    }

    /// Nearest-rank latency percentile (`permille` of 1000) in milliseconds; 0 without samples.
    pub(crate) fn percentile_ms(&self, permille: usize) -> f64 {
        percentile_ms(&self.latencies_ns, permille)
    }

    /// The outcomes as a JSON object.
    pub(crate) fn outcomes_json(&self) -> Value {
        Value::Object(self.outcomes.iter().map(|(k, v)| (k.clone(), Value::from(*v))).collect())
    }
}

/// Nearest-rank percentile of sorted nanosecond samples, in milliseconds; 0 without samples.
pub(crate) fn percentile_ms(sorted_ns: &[u64], permille: usize) -> f64 {
    let rank = (sorted_ns.len() * permille).div_ceil(1000);
    let ns = sorted_ns.get(rank.saturating_sub(1)).copied().unwrap_or(0);
    #[expect(clippy::cast_precision_loss, reason = "milliseconds for humans")]
    let ms = ns as f64 / 1e6;
    ms
}

/// One client's tally.
#[derive(Debug, Default)]
struct Tally {
    latencies_ns: Vec<u64>,
    refused_ns: Vec<u64>,
    outcomes: BTreeMap<String, u64>,
    exhausted: bool,
    backlog_full: u64,
}

impl Tally {
    fn count(&mut self, outcome: &str) {
        *self.outcomes.entry(outcome.to_owned()).or_default() += 1;
    }
}

/// Runs `clients` for `duration` (connections are made before the clock starts), with the
/// committer when given; returns the merged tally.
///
/// # Errors
/// Fails if a client cannot connect before the start or a task fails.
pub(crate) async fn run(
    clients: Vec<Client>,
    duration: Duration,
    committer: Option<Committer>,
) -> anyhow::Result<LoadResult> {
    let mut conns = Vec::with_capacity(clients.len());
    for client in &clients {
        conns.push(HttpConn::connect(client.addr).await.context("connecting a client")?);
    }
    let (hashes, commits) = match committer {
        Some(c) => {
            let (tx, rx) = mpsc::channel(HASHES_CAPACITY);
            (Some(tx), Some(tokio::spawn(commit_loop(c, rx))))
        }
        None => (None, None),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = clients
        .into_iter()
        .zip(conns)
        .map(|(client, conn)| {
            let run = ClientRun { client, conn, stop: Arc::clone(&stop), hashes: hashes.clone() };
            tokio::spawn(run.until(deadline))
        })
        .collect();
    drop(hashes);
    let mut result = LoadResult::default();
    for task in tasks {
        let tally = task.await.context("a client task failed")?;
        result.latencies_ns.extend(tally.latencies_ns);
        result.refused_latencies_ns.extend(tally.refused_ns);
        for (outcome, n) in tally.outcomes {
            *result.outcomes.entry(outcome).or_default() += n;
        }
        result.exhausted |= tally.exhausted;
        result.commit_backlog_full += tally.backlog_full;
    }
    result.elapsed = started.elapsed();
    result.latencies_ns.sort_unstable();
    result.refused_latencies_ns.sort_unstable();
    if let Some(commits) = commits {
        (result.blocks_committed, result.commit_failures) =
            commits.await.context("the committer failed")?;
    }
    Ok(result)
}

/// One client's loop and what it needs.
struct ClientRun {
    client: Client,
    conn: HttpConn,
    stop: Arc<AtomicBool>,
    hashes: Option<mpsc::Sender<String>>,
}

impl ClientRun {
    async fn until(mut self, deadline: Instant) -> Tally {
        let mut tally = Tally::default();
        let mut next = 0usize;
        while !self.stop.load(Ordering::Relaxed) && Instant::now() < deadline {
            let Some((path, body)) = self.client.requests.get(next) else {
                tally.exhausted = true;
                self.stop.store(true, Ordering::Relaxed);
                break;
            };
            next += 1;
            let sent = Instant::now();
            let reply = tokio::time::timeout(
                REQUEST_TIMEOUT,
                self.conn.request("POST", path, &JSON_HEADERS, &body),
            )
            .await;
            let latency = sent.elapsed();
            let healthy = match reply {
                Ok(Ok(response)) => {
                    match self.client.requests.classify(response.status, &response.body) {
                        Reply::Acked(hash) => {
                            tally.latencies_ns.push(nanos(latency));
                            tally.count("acked");
                            if let Some(hashes) = &self.hashes
                                && hashes.try_send(hash).is_err()
                            {
                                tally.backlog_full += 1;
                            }
                        }
                        Reply::Refused(outcome) => {
                            tally.refused_ns.push(nanos(latency));
                            tally.count(&outcome);
                        }
                    }
                    !self.conn.is_closed()
                }
                Ok(Err(_)) => {
                    tally.count("io_error");
                    false
                }
                Err(_) => {
                    tally.count("timeout");
                    false
                }
            };
            if !healthy && !self.reconnect().await {
                tally.count("reconnect_failed");
                break;
            }
        }
        tally
    }

    /// Replaces the connection; false if none could be made before the request timeout.
    async fn reconnect(&mut self) -> bool {
        let end = Instant::now() + REQUEST_TIMEOUT;
        while Instant::now() < end && !self.stop.load(Ordering::Relaxed) {
            if let Ok(conn) = HttpConn::connect(self.client.addr).await {
                self.conn = conn;
                return true;
            }
            tokio::time::sleep(RECONNECT_PACE).await;
        }
        false
    }
}

/// Commits the acknowledged hashes every `interval` as block `1, 2, …` until every client is
/// done; returns (blocks committed, failed commits).
async fn commit_loop(committer: Committer, mut hashes: mpsc::Receiver<String>) -> (u64, u64) {
    let (mut height, mut committed, mut failed) = (1u64, 0u64, 0u64);
    let mut conn = None;
    loop {
        tokio::time::sleep(committer.interval).await;
        let mut block = Vec::new();
        let mut closed = false;
        while block.len() < COMMIT_TXS_MAX {
            match hashes.try_recv() {
                Ok(hash) => block.push(hash),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    closed = true;
                    break;
                }
            }
        }
        if closed {
            return (committed, failed);
        }
        if block.is_empty() {
            continue;
        }
        let body = json!({ "height": height, "txs": block }).to_string();
        height += 1;
        match commit(&mut conn, committer.addr, body.as_bytes()).await {
            Ok(()) => committed += 1,
            Err(error) => {
                failed += 1;
                eprintln!("block commit failed: {error:#}");
            }
        }
    }
}

async fn commit(conn: &mut Option<HttpConn>, addr: SocketAddr, body: &[u8]) -> anyhow::Result<()> {
    if conn.as_ref().is_none_or(HttpConn::is_closed) {
        *conn = Some(HttpConn::connect(addr).await?);
    }
    let Some(c) = conn.as_mut() else { bail!("no connection") };
    let request = c.request("POST", "/v1/blocks/commit", &JSON_HEADERS, body);
    let response = match tokio::time::timeout(REQUEST_TIMEOUT, request).await {
        Ok(Ok(response)) => response,
        Ok(Err(error)) => {
            *conn = None;
            return Err(error.into());
        }
        Err(_) => {
            *conn = None;
            bail!("timed out");
        }
    };
    ensure!(
        response.status == 200,
        "status {}: {}",
        response.status,
        String::from_utf8_lossy(&response.body)
    );
    Ok(())
}

/// Nanoseconds of `elapsed`, saturating.
pub(crate) fn nanos(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_classified_by_their_stable_reason() {
        let ok = br#"{"jsonrpc":"2.0","id":1,"result":"0xabc"}"#;
        assert_eq!(classify_rpc(200, ok), Reply::Acked("0xabc".to_owned()));
        let full = br#"{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"txpool is full","data":{"reason":"queue_full"}}}"#;
        assert_eq!(classify_rpc(200, full), Reply::Refused("dropped:queue_full".to_owned()));
        let pool = br#"{"error":{"code":-32000,"message":"txpool is full","data":{"reason":"pool_full"}}}"#;
        assert_eq!(classify_rpc(200, pool), Reply::Refused("rejected:pool_full".to_owned()));
        let dup = br#"{"error":{"code":-32000,"data":{"reason":"duplicate"}}}"#;
        assert_eq!(classify_rpc(200, dup), Reply::Refused("rejected:duplicate".to_owned()));
        let busy = br#"{"error":{"code":-32002,"data":{"code":"UNAVAILABLE"}}}"#;
        assert_eq!(classify_rpc(503, busy), Reply::Refused("unavailable:UNAVAILABLE".to_owned()));
        assert_eq!(classify_rpc(502, b"<html>"), Reply::Refused("http_502".to_owned()));
        let put = br#"{"header":{"revision":"2"}}"#;
        assert_eq!(classify_etcd(200, put), Reply::Acked(String::new()));
        let lost = br#"{"error":"etcdserver: leader changed","code":14}"#;
        assert_eq!(classify_etcd(503, lost), Reply::Refused("etcd_error:14".to_owned()));
    }

    #[test]
    fn base64_and_rpc_bodies_are_standard() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        let body: Value = serde_json::from_slice(&rpc_body(&[0x02, 0xff])).unwrap();
        assert_eq!(body["params"][0], "0x02ff");
        assert_eq!(body["method"], "eth_sendRawTransaction");
        let put: Value = serde_json::from_slice(&etcd_put_body("k", "dg==")).unwrap();
        assert_eq!((put["key"].as_str(), put["value"].as_str()), (Some("aw=="), Some("dg==")));
    }

    #[test]
    fn padding_reaches_the_value_size_and_senders_keep_nonces_in_order() {
        let len = input_len_for(256).unwrap();
        let size = tx_bytes(len).unwrap();
        assert!((250..=256).contains(&size), "{size}");
        assert!(input_len_for(10).is_err());
        let plan = TxPlan { clients: 3, per_client: 4, senders: 6, sender_base: 100, input_len: 0 };
        let bodies = sign_bodies(&plan).unwrap();
        assert_eq!(bodies.iter().map(Vec::len).collect::<Vec<_>>(), [4, 4, 4]);
        // Client 1, tx 2 is sender 100 + 1 + 3·0 at nonce 1 (two senders per client).
        let spec = TxSpec { input_len: 0, ..TxSpec::transfer(TxType::DynamicFee, 101, 1) };
        assert_eq!(bodies[1][2], rpc_body(&signed_tx(&spec).unwrap()));
    }

    #[test]
    fn percentiles_are_nearest_rank_in_milliseconds() {
        let samples: Vec<u64> = (1..=100).map(|ms| ms * 1_000_000).collect();
        assert!((percentile_ms(&samples, 500) - 50.0).abs() < 1e-9);
        assert!((percentile_ms(&samples, 990) - 99.0).abs() < 1e-9);
        assert!(percentile_ms(&[], 500).abs() < 1e-9);
    }
}
