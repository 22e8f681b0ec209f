//! The `scan` benchmark: reading a node's event log over HTTP against reading the WAL directly,
//! and the live tail's latency from durable to client.
//!
//! 1. **fill** (untimed): `--events` events written with `mempulse_wal` into the node's
//!    `<data-dir>/events` before it starts, in the node's own record format (the primitives
//!    codec): transactions received on the JSON-RPC lane, one in eight dropped. All are local
//!    facts (no Raft index), so the node's replicated tail is untouched.
//! 2. **start** (untimed): one `mempulse` node on that data dir (it replays the log at start).
//! 3. **HTTP scan** (timed): `GET /v1/events?after=&limit=--page` with
//!    `Accept: application/x-ndjson` on one keep-alive connection, following the
//!    `x-mempulse-next` cursor; every line is parsed as JSON and the seqs must run 1, 2, … N.
//! 4. **WAL scan** (timed): `open_reader` on the same directory (the node still running) and
//!    `scan_with` from seq 1, decoding every record with `Event::from_bytes`.
//! 5. Steps 3 and 4 run `--rounds` times, alternating which goes first; the best of each is
//!    reported and `ratio` = HTTP rate ÷ WAL rate.
//! 6. **live tail**: one SSE connection on `GET /v1/events/stream?kinds=tx_admitted`; one
//!    client submits `--tail-txs` transactions one after the other with `eth_sendRawTransaction`
//!    and, after each acknowledgement (durable), waits for its `tx_admitted` event on the stream.
//!    `tail_*_ms` is acknowledgement → event arrival (negative when the event came first).

use std::{
    ops::ControlFlow,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail, ensure};
use mempulse_primitives::{DropReason, Event, EventKind, Lane, Origin, Seq, Source, UnixMillis};
use mempulse_wal::{SyncPolicy, Wal, WalConfig, open_reader};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::{
    http_client::{HttpConn, StreamBody},
    load::{self, JSON_HEADERS, REQUEST_TIMEOUT, Reply, TxPlan},
    nodes::{MempulseCluster, NodeOptions},
    procs::mempulse_bin,
    report::Report,
    synth::{hash, tx},
};

/// Records per append while filling the log.
const FILL_BATCH: u64 = 10_000;
/// Bound on one transaction's event reaching the live tail.
const TAIL_TIMEOUT: Duration = Duration::from_secs(10);
/// Events buffered between the SSE reader and the measuring loop.
const TAIL_BUFFER: usize = 1024;
/// First sender of the live-tail transactions.
const TAIL_SENDER_BASE: u32 = 5_000_000;

/// Arguments of `mempulse-bench scan`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Events in the log.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    events: u64,
    /// Events per HTTP page (`limit`; the node's maximum is 10 000).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    page: u32,
    /// Rounds of the two scans, alternating which goes first.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=10))]
    rounds: u32,
    /// Transactions whose live-tail latency is measured.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    tail_txs: u32,
    /// The `mempulse` binary (default: next to this executable).
    #[arg(long)]
    mempulse: Option<PathBuf>,
}

/// Runs the benchmark and returns its one-line report.
///
/// # Errors
/// Fails if the node does not start, a scan sees another sequence of events than the one
/// written, or a live-tail event does not arrive.
pub(crate) fn run(args: &Args) -> anyhow::Result<Report> {
    let bin = mempulse_bin(args.mempulse.as_deref())?;
    let plan = TxPlan {
        clients: 1,
        per_client: usize::try_from(args.tail_txs)?,
        senders: args.tail_txs,
        sender_base: TAIL_SENDER_BASE,
        input_len: 0,
    };
    let tail_bodies = load::sign_bodies(&plan)?.concat();
    let mut cluster =
        MempulseCluster::create(&bin, &NodeOptions { nodes: 1, ..NodeOptions::default() })?;
    let events_dir = cluster.data_dir(1)?.join("events");
    let filling = Instant::now();
    let payload_bytes = fill(&events_dir, args.events)?;
    eprintln!("wrote {} events in {:.1?}", args.events, filling.elapsed());
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let (scans, tail) = runtime.block_on(async {
        cluster.start_all().await?;
        let addr = cluster.http(1)?;
        let mut scans = Scans::default();
        for round in 0..args.rounds {
            if round % 2 == 0 {
                scans.http.push(scan_http(addr, args.events, args.page).await?);
                scans.wal.push(scan_wal(&events_dir, args.events)?);
            } else {
                scans.wal.push(scan_wal(&events_dir, args.events)?);
                scans.http.push(scan_http(addr, args.events, args.page).await?);
            }
        }
        let tail = live_tail(addr, args.events, tail_bodies).await?;
        anyhow::Ok((scans, tail))
    })?;
    let http_s = scans.http.iter().map(|s| s.elapsed).fold(f64::INFINITY, f64::min);
    let wal_s = scans.wal.iter().map(|s| s.elapsed).fold(f64::INFINITY, f64::min);
    #[expect(clippy::cast_precision_loss, reason = "rates for humans; counts below 2^53")]
    let rate = |elapsed: f64| args.events as f64 / elapsed.max(1e-12);
    let fields = json!({
        "events_per_s_http": rate(http_s),
        "events_per_s_wal": rate(wal_s),
        "ratio": rate(http_s) / rate(wal_s),
        "tail_p50_ms": signed_percentile_ms(&tail, 500),
        "tail_p99_ms": signed_percentile_ms(&tail, 990),
        "tail_max_ms": signed_percentile_ms(&tail, 1000),
        "tail_txs": args.tail_txs,
        "events": args.events,
        "page": args.page,
        "rounds": args.rounds,
        "http_elapsed_s": scans.http.iter().map(|s| s.elapsed).collect::<Vec<_>>(),
        "wal_elapsed_s": scans.wal.iter().map(|s| s.elapsed).collect::<Vec<_>>(),
        "http_bytes": scans.http.first().map_or(0, |s| s.bytes),
        "payload_bytes": payload_bytes,
        "http_client": "http1-keepalive-ndjson, every line parsed",
        "wal_reader": "open_reader + scan_with + Event::from_bytes",
    });
    let Value::Object(fields) = fields else { unreachable!("json! of an object literal") };
    Ok(Report::Measured(fields))
}

/// Every timed scan.
#[derive(Debug, Default)]
struct Scans {
    http: Vec<Scan>,
    wal: Vec<Scan>,
}

/// One timed scan: seconds and bytes read.
#[derive(Debug, Clone, Copy)]
struct Scan {
    elapsed: f64,
    bytes: u64,
}

/// Writes `events` generated events into a fresh log in `dir`; returns the payload bytes.
fn fill(dir: &Path, events: u64) -> anyhow::Result<u64> {
    let mut wal = Wal::open(WalConfig::new(dir).with_sync(SyncPolicy::Never))?;
    let (mut seq, mut bytes) = (1u64, 0u64);
    while seq <= events {
        let end = events.min(seq + FILL_BATCH - 1);
        let records: Vec<Vec<u8>> = (seq..=end).map(|s| event(s).to_bytes()).collect();
        bytes += records.iter().map(|r| r.len() as u64).sum::<u64>();
        let appended = wal.append(&records)?;
        ensure!(appended.last == Seq(end), "the log assigned other seqs than 1..N");
        seq = end + 1;
    }
    wal.sync()?;
    Ok(bytes)
}

/// The generated event at `seq`: a transaction received on the JSON-RPC lane, or one time in
/// eight a drop.
fn event(seq: u64) -> Event {
    let lane = Lane::Rpc;
    let kind = if seq.is_multiple_of(8) {
        EventKind::TxDropped {
            hash: Some(hash(seq)),
            reason: DropReason::QueueFull,
            lane,
            depth_current: 1024,
            depth_peak: 1024,
        }
    } else {
        EventKind::TxReceived { tx: tx(seq), lane }
    };
    Event {
        observed_at: UnixMillis(1_700_000_000_000 + seq),
        source: Source::Lane(lane),
        origin: Origin::Local,
        kind,
    }
}

/// A line of the NDJSON scan: only the seq is kept, every other field is parsed and skipped.
#[derive(Debug, Deserialize)]
struct SeqOnly {
    seq: u64,
}

/// Pages through seqs 1..=`events` over HTTP; checks they arrive in order without a gap.
async fn scan_http(addr: std::net::SocketAddr, events: u64, page: u32) -> anyhow::Result<Scan> {
    let mut conn = HttpConn::connect(addr).await?;
    let headers = [("Accept", "application/x-ndjson")];
    let (mut after, mut seen, mut bytes) = (0u64, 0u64, 0u64);
    let started = Instant::now();
    while seen < events {
        let path = format!("/v1/events?after={after}&limit={page}");
        let response = conn.request("GET", &path, &headers, b"").await?;
        ensure!(
            response.status == 200,
            "GET {path}: {} {}",
            response.status,
            String::from_utf8_lossy(&response.body)
        );
        bytes += response.body.len() as u64;
        for line in response.body.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let SeqOnly { seq } = serde_json::from_slice(line).context("an NDJSON line")?;
            if seq > events {
                break;
            }
            ensure!(seq == seen + 1, "HTTP scan: seq {seq} after {seen}");
            seen = seq;
        }
        let next = response
            .header("x-mempulse-next")
            .and_then(|v| v.parse::<u64>().ok())
            .context("no x-mempulse-next cursor")?;
        ensure!(next > after || seen >= events, "the cursor did not move past {after}");
        after = next;
    }
    Ok(Scan { elapsed: started.elapsed().as_secs_f64(), bytes })
}

/// Reads and decodes seqs 1..=`events` from the log directly.
fn scan_wal(dir: &Path, events: u64) -> anyhow::Result<Scan> {
    let started = Instant::now();
    let reader = open_reader(dir)?;
    let (mut seen, mut bytes, mut failed) = (0u64, 0u64, None);
    reader.scan_with(Seq(1), usize::try_from(events)?, |seq, payload| {
        match Event::from_bytes(payload) {
            Ok(event) if seq.0 == seen + 1 => {
                std::hint::black_box(event);
                seen = seq.0;
                bytes += payload.len() as u64;
                ControlFlow::Continue(())
            }
            Ok(_) => {
                failed = Some(format!("seq {} after {seen}", seq.0));
                ControlFlow::Break(())
            }
            Err(e) => {
                failed = Some(format!("seq {}: {e}", seq.0));
                ControlFlow::Break(())
            }
        }
    })?;
    let elapsed = started.elapsed().as_secs_f64();
    if let Some(why) = failed {
        bail!("WAL scan: {why}");
    }
    ensure!(seen == events, "WAL scan read {seen} of {events} events");
    Ok(Scan { elapsed, bytes })
}

/// Submits each body, waits for its acknowledgement, then for its `tx_admitted` event on the
/// live tail; returns acknowledgement → event in signed nanoseconds, sorted.
async fn live_tail(
    addr: std::net::SocketAddr,
    after: u64,
    bodies: Vec<Vec<u8>>,
) -> anyhow::Result<Vec<i64>> {
    let path = format!("/v1/events/stream?after={after}&kinds=tx_admitted");
    let (status, body) = HttpConn::connect(addr)
        .await?
        .open_stream(&path, &[("Accept", "text/event-stream")])
        .await?;
    ensure!(status == 200, "GET {path}: status {status}");
    let (events, mut arrivals) = mpsc::channel(TAIL_BUFFER);
    let reader = tokio::spawn(read_sse(body, events));
    let mut rpc = HttpConn::connect(addr).await?;
    let mut samples = Vec::with_capacity(bodies.len());
    for body in bodies {
        let response =
            tokio::time::timeout(REQUEST_TIMEOUT, rpc.request("POST", "/", &JSON_HEADERS, &body))
                .await
                .context("eth_sendRawTransaction timed out")??;
        let acked = Instant::now();
        let Reply::Acked(hash) = load::classify_rpc(response.status, &response.body) else {
            bail!("not acknowledged: {}", String::from_utf8_lossy(&response.body));
        };
        let arrived = tokio::time::timeout(TAIL_TIMEOUT, async {
            while let Some((seen, at)) = arrivals.recv().await {
                if seen.eq_ignore_ascii_case(&hash) {
                    return Some(at);
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
        .with_context(|| format!("tx_admitted of {hash} did not arrive on the live tail"))?;
        samples.push(signed_nanos(acked, arrived));
    }
    reader.abort();
    samples.sort_unstable();
    Ok(samples)
}

/// Forwards (hash, arrival time) of every `tx_admitted` event of the stream.
async fn read_sse(
    mut body: StreamBody,
    events: mpsc::Sender<(String, Instant)>,
) -> anyhow::Result<()> {
    let mut buffer = Vec::new();
    while let Some(chunk) = body.next_chunk().await? {
        let arrived = Instant::now();
        buffer.extend_from_slice(&chunk);
        while let Some(end) = buffer.windows(2).position(|w| w == b"\n\n") {
            let block: Vec<u8> = buffer.drain(..end + 2).collect();
            for hash in sse_hashes(&block) {
                events.send((hash, arrived)).await?;
            }
        }
    }
    Ok(())
}

/// The `tx.hash` of each `data:` line of one SSE event block.
fn sse_hashes(block: &[u8]) -> Vec<String> {
    block
        .split(|b| *b == b'\n')
        .filter_map(|line| line.strip_prefix(b"data:"))
        .filter_map(|data| serde_json::from_slice::<Value>(data.trim_ascii()).ok())
        .filter_map(|event| event["tx"]["hash"].as_str().map(str::to_owned))
        .collect()
}

/// `to - from` in nanoseconds, negative when `to` came first.
fn signed_nanos(from: Instant, to: Instant) -> i64 {
    match to.checked_duration_since(from) {
        Some(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        None => -i64::try_from(from.duration_since(to).as_nanos()).unwrap_or(i64::MAX),
    }
}

/// Nearest-rank percentile of sorted signed nanoseconds, in milliseconds.
fn signed_percentile_ms(sorted: &[i64], permille: usize) -> f64 {
    let rank = (sorted.len() * permille).div_ceil(1000);
    let ns = sorted.get(rank.saturating_sub(1)).copied().unwrap_or(0);
    #[expect(clippy::cast_precision_loss, reason = "milliseconds for humans")]
    let ms = ns as f64 / 1e6;
    ms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filled_log_reads_back_in_order_and_decodes() {
        let dir = tempfile::tempdir().unwrap();
        let events_dir = dir.path().join("events");
        let bytes = fill(&events_dir, 50).unwrap();
        assert!(bytes > 50 * u64::from(crate::synth::RAW_TX_BYTES) / 2);
        let scan = scan_wal(&events_dir, 50).unwrap();
        assert_eq!(scan.bytes, bytes);
        assert!(scan_wal(&events_dir, 51).is_err(), "a short log is an error");
        assert!(matches!(event(8).kind, EventKind::TxDropped { .. }));
        assert_eq!(event(9).origin, Origin::Local);
    }

    #[test]
    fn sse_blocks_yield_the_admitted_hashes() {
        let block =
            b"id: 7\ndata: {\"seq\":7,\"kind\":\"tx_admitted\",\"tx\":{\"hash\":\"0xab\"}}\n\n";
        assert_eq!(sse_hashes(block), ["0xab"]);
        assert!(sse_hashes(b": keep-alive\n\n").is_empty());
        assert!(sse_hashes(b"event: end\ndata: {\"reason\":\"slow_consumer\"}\n\n").is_empty());
    }

    #[test]
    fn signed_latencies_keep_their_sign() {
        let a = Instant::now();
        let b = a + Duration::from_millis(3);
        assert_eq!(signed_nanos(a, b), 3_000_000);
        assert_eq!(signed_nanos(b, a), -3_000_000);
        let sorted = [-2_000_000, 1_000_000, 5_000_000];
        assert!((signed_percentile_ms(&sorted, 500) - 1.0).abs() < 1e-9);
        assert!((signed_percentile_ms(&sorted, 1) + 2.0).abs() < 1e-9);
    }
}
