//! The `failover` benchmark: `kill -9` of the leader and the time until a surviving node
//! commits a write again, for a 3-node `mempulse` cluster and a 3-member etcd cluster with the
//! same election timeout, in the same run.
//!
//! Timings from `--election-timeout-ms T`: etcd runs with `--election-timeout T
//! --heartbeat-interval H` (H = T/5 unless `--heartbeat-interval-ms` says otherwise, for both
//! systems): a follower campaigns after `[T, 2T)` without hearing from the leader. mempulse
//! runs with `heartbeat-interval-ms = H`, `send-timeout-ms = 2T/5` and an election window of
//! width `s = min(T/5, 50 ms)`: `election-timeout-min-ms = (T - s)/2` and
//! `election-timeout-max-ms = (T + s)/2`. openraft's followers hold a leader lease of
//! `election-timeout-max` after the leader's last message and only then start their election
//! timer from `[min, max)`, so a mempulse follower campaigns after `[T, T + s)` of silence: the
//! same earliest campaign as etcd's nominal one (see `RaftConfig` in `mempulse-cluster`; etcd
//! counts its timeout in heartbeat ticks, so its followers may campaign up to one heartbeat
//! earlier). `--mempulse-election-min-ms` and `--mempulse-election-max-ms` override the two
//! (e.g. `T` and `2T`, the mapping of earlier runs, which waits `[3T, 4T)`).
//!
//! Each trial:
//! 1. waits until every node agrees on the leader, and picks a follower as the target;
//! 2. starts a prober on the target: every `--probe-interval-ms` a new write (a fresh
//!    transaction of a fresh sender for mempulse, a put for etcd) on its own keep-alive
//!    connection, at most [`IN_FLIGHT_MAX`] in flight. An open loop, so a request stuck in the
//!    election never holds the next one back;
//! 3. once a write succeeded, `kill -9`s the leader;
//! 4. measures from the kill to the first success of a write *sent after the kill*;
//! 5. restarts the killed node on its data and waits for it to rejoin.
//!
//! Reported per system: `median_ms`, `min_ms`, `max_ms` and every trial; and, to split the
//! time, `leader_*`: from the kill until the target names a new leader (polled every probe
//! interval: `GET /v1/cluster`, etcd's `POST /v3/maintenance/status`).

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};
use tokio::{
    sync::{Semaphore, mpsc},
    task::JoinHandle,
};

use crate::{
    cluster::Peer,
    etcd::{ETCD_CLIENT, EtcdCluster, EtcdTimings, etcd_bin, etcd_version, member_status},
    http_client::HttpConn,
    load::{self, JSON_HEADERS, REQUEST_TIMEOUT, Reply, TxPlan},
    nodes::{MempulseCluster, NodeOptions, RaftTimings},
    procs::{http_json, mempulse_bin},
    report::Report,
};

/// Most probe writes in flight.
pub(crate) const IN_FLIGHT_MAX: usize = 2048;
/// Bound on the cluster committing a write again after the kill (and on the warm-up write).
const FAILOVER_DEADLINE: Duration = Duration::from_secs(30);
/// Bound on one status request.
const STATUS_TIMEOUT: Duration = Duration::from_secs(2);
/// Probe results buffered for the measuring loop.
const RESULTS_CAPACITY: usize = 1 << 16;
/// First sender of the probe transactions (one sender, nonce 0, per probe).
const PROBE_SENDER_BASE: u32 = 10_000_000;
/// Bytes of each etcd probe value.
const ETCD_VALUE_BYTES: usize = 256;

/// Arguments of `mempulse-bench failover`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Leader kills per system.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    trials: u32,
    /// Election timeout T: the least silence after which a follower campaigns (etcd: T, drawn
    /// from [T, 2T); mempulse: min + max = T, from [T, T + min(T/5, 50 ms))); heartbeat T/5.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(50..=60_000))]
    election_timeout_ms: u64,
    /// Override of mempulse's shortest election timeout (default (T - s)/2, s = min(T/5, 50)).
    #[arg(long, value_parser = clap::value_parser!(u64).range(2..=120_000))]
    mempulse_election_min_ms: Option<u64>,
    /// Override of mempulse's longest election timeout (default (T + s)/2). openraft's leader
    /// lease equals it: followers neither vote nor start their election timer until it has
    /// passed since the leader's last message.
    #[arg(long, value_parser = clap::value_parser!(u64).range(3..=120_000))]
    mempulse_election_max_ms: Option<u64>,
    /// Heartbeat interval of both systems (default T/5; etcd's defaults are 100 ms with T =
    /// 1000 ms). Must stay below mempulse's shortest election timeout.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    heartbeat_interval_ms: Option<u64>,
    /// Milliseconds between two probe writes.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=1000))]
    probe_interval_ms: u64,
    /// The peer measured in the same run.
    #[arg(long, value_enum, default_value_t = Peer::Etcd)]
    peer: Peer,
    /// The `mempulse` binary (default: next to this executable).
    #[arg(long)]
    mempulse: Option<PathBuf>,
}

/// Runs the benchmark and returns its one-line report.
///
/// # Errors
/// Fails if a binary is missing, a cluster does not start, or a cluster does not commit again
/// within 30 s of a kill.
pub(crate) fn run(args: &Args) -> anyhow::Result<Report> {
    let bin = mempulse_bin(args.mempulse.as_deref())?;
    let etcd = match args.peer {
        Peer::Etcd => Some(etcd_bin()?),
        Peer::None => None,
    };
    let t = args.election_timeout_ms;
    let timings = mempulse_timings(args);
    let interval = Duration::from_millis(args.probe_interval_ms);
    let per_trial =
        usize::try_from(FAILOVER_DEADLINE.as_millis() / u128::from(args.probe_interval_ms))?;
    let probes = per_trial * usize::try_from(args.trials)?;
    let plan = TxPlan {
        clients: 1,
        per_client: probes,
        senders: u32::try_from(probes)?,
        sender_base: PROBE_SENDER_BASE,
        input_len: 0,
    };
    let bodies = Arc::new(load::sign_bodies(&plan)?.concat());
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let mempulse =
        runtime.block_on(mempulse_trials(&bin, timings, args.trials, interval, bodies))?;
    let peer = match &etcd {
        Some(etcd) => Some(runtime.block_on(etcd_trials(
            etcd,
            EtcdTimings { heartbeat_ms: Some(timings.heartbeat_ms), election_ms: Some(t) },
            args.trials,
            interval,
        ))?),
        None => None,
    };
    let writes = |r: &[Recovery]| r.iter().map(|r| r.write_ms).collect::<Vec<_>>();
    let leaders = |r: &[Recovery]| r.iter().map(|r| r.leader_ms).collect::<Vec<_>>();
    let seen = |r: &[Recovery]| r.iter().filter_map(|r| r.leader_ms).collect::<Vec<_>>();
    let summary = |trials: &[f64]| (median(trials), min(trials), max(trials));
    let (median_ms, min_ms, max_ms) = summary(&writes(&mempulse));
    let etcd_summary = peer.as_deref().map(|p| summary(&writes(p)));
    let fields = json!({
        "median_ms": median_ms,
        "min_ms": min_ms,
        "max_ms": max_ms,
        "trials_ms": writes(&mempulse),
        "leader_median_ms": median(&seen(&mempulse)),
        "leader_trials_ms": leaders(&mempulse),
        "etcd_median_ms": etcd_summary.map(|s| s.0),
        "etcd_min_ms": etcd_summary.map(|s| s.1),
        "etcd_max_ms": etcd_summary.map(|s| s.2),
        "etcd_trials_ms": peer.as_deref().map(writes),
        "etcd_leader_median_ms": peer.as_deref().map(|p| median(&seen(p))),
        "etcd_leader_trials_ms": peer.as_deref().map(leaders),
        "ratio": etcd_summary.map(|s| median_ms / s.0.max(1e-12)),
        "trials": args.trials,
        "election_timeout_ms": t,
        "mempulse_timings": {
            "heartbeat_interval_ms": timings.heartbeat_ms,
            "election_timeout_min_ms": timings.election_min_ms,
            "election_timeout_max_ms": timings.election_max_ms,
            "send_timeout_ms": timings.send_timeout_ms,
            // The silence after which a follower campaigns: the lease, then the timer.
            "campaign_after_ms": [
                timings.election_max_ms + timings.election_min_ms,
                2 * timings.election_max_ms,
            ],
        },
        "etcd_timings": etcd.as_ref().map(|_| json!({
            "heartbeat_interval_ms": timings.heartbeat_ms,
            "election_timeout_ms": t,
        })),
        "probe_interval_ms": args.probe_interval_ms,
        "target": "a follower of the killed leader",
        "etcd_client": etcd.as_ref().map(|_| ETCD_CLIENT),
        "etcd_version": etcd.as_deref().map(etcd_version),
    });
    let Value::Object(fields) = fields else { unreachable!("json! of an object literal") };
    Ok(Report::Measured(fields))
}

/// `trials` leader kills on a 3-node mempulse cluster; milliseconds to recovery each.
async fn mempulse_trials(
    bin: &std::path::Path,
    timings: RaftTimings,
    trials: u32,
    interval: Duration,
    bodies: Arc<Vec<Vec<u8>>>,
) -> anyhow::Result<Vec<Recovery>> {
    let options = NodeOptions { nodes: 3, timings: Some(timings), ..NodeOptions::default() };
    let mut cluster = MempulseCluster::create(bin, &options)?;
    cluster.start_all().await?;
    let ids = cluster.ids();
    let next = Arc::new(AtomicUsize::new(0));
    let mut results = Vec::new();
    for trial in 0..trials {
        let leader = cluster.agreed_leader(&ids).await?;
        let target = *ids.iter().find(|&&id| id != leader).context("no follower")?;
        let source = ProbeSource::Rpc { bodies: Arc::clone(&bodies), next: Arc::clone(&next) };
        let prober = Prober::start(cluster.http(target)?, source, interval);
        let recovery =
            prober.measure(|| cluster.kill(leader), System::Mempulse).await.with_context(|| {
                format!(
                    "mempulse trial {trial}, node {target}'s log:\n{}",
                    cluster.log_tail(target)
                )
            })?;
        eprintln!("mempulse trial {trial}: leader {leader} killed: {recovery:?}");
        results.push(recovery);
        cluster.start(leader)?;
        cluster.wait_started(leader).await?;
    }
    Ok(results)
}

/// `trials` leader kills on a 3-member etcd cluster; milliseconds to recovery each.
async fn etcd_trials(
    bin: &std::path::Path,
    timings: EtcdTimings,
    trials: u32,
    interval: Duration,
) -> anyhow::Result<Vec<Recovery>> {
    let mut cluster = EtcdCluster::create(bin, timings)?;
    cluster.start_all().await?;
    let addrs = cluster.client_addrs();
    let all: Vec<usize> = (0..addrs.len()).collect();
    let value_b64 = Arc::new(load::base64(&[0xab; ETCD_VALUE_BYTES]));
    let next = Arc::new(AtomicUsize::new(0));
    let mut results = Vec::new();
    for trial in 0..trials {
        let leader = cluster.agreed_leader(&all).await?;
        let target = *all.iter().find(|&&i| i != leader).context("no follower")?;
        let source =
            ProbeSource::Etcd { value_b64: Arc::clone(&value_b64), next: Arc::clone(&next) };
        let addr = *addrs.get(target).context("no such member")?;
        let prober = Prober::start(addr, source, interval);
        let recovery = prober
            .measure(|| cluster.kill(leader), System::Etcd)
            .await
            .with_context(|| format!("etcd trial {trial}"))?;
        eprintln!("etcd trial {trial}: member {leader} killed: {recovery:?}");
        results.push(recovery);
        cluster.start(leader)?;
    }
    Ok(results)
}

/// What the probes write.
#[derive(Clone, Debug)]
enum ProbeSource {
    /// Pre-signed `eth_sendRawTransaction` bodies, each used once.
    Rpc { bodies: Arc<Vec<Vec<u8>>>, next: Arc<AtomicUsize> },
    /// etcd puts under `failover/<n>`.
    Etcd { value_b64: Arc<String>, next: Arc<AtomicUsize> },
}

impl ProbeSource {
    /// The next write as (path, body), or `None` when the pre-signed bodies ran out.
    fn next(&self) -> Option<(&'static str, Vec<u8>)> {
        match self {
            Self::Rpc { bodies, next } => {
                bodies.get(next.fetch_add(1, Ordering::Relaxed)).map(|b| ("/", b.clone()))
            }
            Self::Etcd { value_b64, next } => {
                let key = format!("failover/{}", next.fetch_add(1, Ordering::Relaxed));
                Some(("/v3/kv/put", load::etcd_put_body(&key, value_b64)))
            }
        }
    }

    fn succeeded(&self, status: u16, body: &[u8]) -> bool {
        let reply = match self {
            Self::Rpc { .. } => load::classify_rpc(status, body),
            Self::Etcd { .. } => load::classify_etcd(status, body),
        };
        matches!(reply, Reply::Acked(_))
    }
}

/// Which system a prober writes to.
#[derive(Clone, Copy, Debug)]
enum System {
    Mempulse,
    Etcd,
}

/// The leader node `addr` names, if any (as text: a node id or an etcd member id).
async fn known_leader(system: System, addr: SocketAddr) -> Option<String> {
    match system {
        System::Mempulse => {
            let (status, view) =
                http_json(addr, "GET", "/v1/cluster", b"", STATUS_TIMEOUT).await.ok()?;
            (status == 200).then_some(())?;
            view["leader"].as_u64().map(|id| id.to_string())
        }
        System::Etcd => member_status(addr).await.map(|(_, leader)| leader).filter(|l| l != "0"),
    }
}

/// How long one trial took to recover, from the kill.
#[derive(Clone, Copy, Debug)]
struct Recovery {
    /// To the first success of a write sent after the kill.
    write_ms: f64,
    /// To the target naming a new leader (`None` if it was not seen, e.g. between polls).
    leader_ms: Option<f64>,
}

/// One probe write's outcome.
#[derive(Clone, Copy, Debug)]
struct Probe {
    sent: Instant,
    done: Instant,
    ok: bool,
}

/// An open-loop writer against one node.
#[derive(Debug)]
struct Prober {
    addr: SocketAddr,
    interval: Duration,
    stop: Arc<AtomicBool>,
    task: JoinHandle<()>,
    results: mpsc::Receiver<Probe>,
}

impl Prober {
    /// Starts writing to `addr` every `interval`.
    fn start(addr: SocketAddr, source: ProbeSource, interval: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, results) = mpsc::channel(RESULTS_CAPACITY);
        let task = tokio::spawn(probe_loop(addr, source, interval, Arc::clone(&stop), tx));
        Self { addr, interval, stop, task, results }
    }

    /// Waits for a successful write, calls `kill`, then measures from the kill to the first
    /// success of a write sent after it, and to the target naming a new leader (polled every
    /// probe interval). Stops the prober.
    async fn measure(
        mut self,
        kill: impl FnOnce() -> anyhow::Result<()>,
        system: System,
    ) -> anyhow::Result<Recovery> {
        let warm = self
            .first_success_after(Instant::now())
            .await
            .context("no write succeeded before the kill");
        let measured = match warm {
            Ok(_) => self.after_kill(kill, system).await,
            Err(error) => Err(error),
        };
        self.stop.store(true, Ordering::Relaxed);
        self.task.abort();
        measured
    }

    async fn after_kill(
        &mut self,
        kill: impl FnOnce() -> anyhow::Result<()>,
        system: System,
    ) -> anyhow::Result<Recovery> {
        let before = known_leader(system, self.addr).await;
        let killed = Instant::now();
        kill()?;
        let (addr, interval) = (self.addr, self.interval);
        let poll = tokio::spawn(async move {
            while killed.elapsed() < FAILOVER_DEADLINE {
                let now = known_leader(system, addr).await;
                if now.is_some() && now != before {
                    return Some(Instant::now());
                }
                tokio::time::sleep(interval).await;
            }
            None
        });
        let write =
            self.first_success_after(killed).await.context("no write succeeded after the kill");
        let leader = match write {
            Ok(_) => tokio::time::timeout(FAILOVER_DEADLINE, poll)
                .await
                .ok()
                .and_then(Result::ok)
                .flatten(),
            Err(_) => {
                poll.abort();
                None
            }
        };
        let ms = |at: Instant| at.duration_since(killed).as_secs_f64() * 1e3;
        Ok(Recovery { write_ms: ms(write?), leader_ms: leader.map(ms) })
    }

    /// When the first write sent at or after `since` succeeded, within [`FAILOVER_DEADLINE`].
    async fn first_success_after(&mut self, since: Instant) -> anyhow::Result<Instant> {
        let results = &mut self.results;
        let found = tokio::time::timeout(FAILOVER_DEADLINE, async {
            while let Some(probe) = results.recv().await {
                if probe.ok && probe.sent >= since {
                    return Some(probe.done);
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(done)) => Ok(done),
            Ok(None) => bail!("the probes stopped (pre-signed writes ran out?)"),
            Err(_) => bail!("timed out after {FAILOVER_DEADLINE:?}"),
        }
    }
}

/// Every `interval`, one write on a pooled connection (or a new one), at most
/// [`IN_FLIGHT_MAX`] in flight; each outcome goes to `results`.
async fn probe_loop(
    addr: SocketAddr,
    source: ProbeSource,
    interval: Duration,
    stop: Arc<AtomicBool>,
    results: mpsc::Sender<Probe>,
) {
    let permits = Arc::new(Semaphore::new(IN_FLIGHT_MAX));
    let pool: Arc<Mutex<Vec<HttpConn>>> = Arc::default();
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    while !stop.load(Ordering::Relaxed) {
        ticks.tick().await;
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else { continue };
        let Some((path, body)) = source.next() else { break };
        let (source, pool, results) = (source.clone(), Arc::clone(&pool), results.clone());
        tokio::spawn(async move {
            let pooled = pool.lock().ok().and_then(|mut p| p.pop());
            let sent = Instant::now();
            let exchange = async {
                let mut conn = match pooled {
                    Some(conn) => conn,
                    None => HttpConn::connect(addr).await?,
                };
                let response = conn.request("POST", path, &JSON_HEADERS, &body).await?;
                std::io::Result::Ok((conn, response))
            };
            let ok = match tokio::time::timeout(REQUEST_TIMEOUT, exchange).await {
                Ok(Ok((conn, response))) => {
                    let ok = source.succeeded(response.status, &response.body);
                    if !conn.is_closed()
                        && let Ok(mut p) = pool.lock()
                    {
                        p.push(conn);
                    }
                    ok
                }
                Ok(Err(_)) | Err(_) => false,
            };
            let _ = results.try_send(Probe { sent, done: Instant::now(), ok });
            drop(permit);
        });
    }
}

/// mempulse's timings for the arguments (see the module documentation).
fn mempulse_timings(args: &Args) -> RaftTimings {
    let t = args.election_timeout_ms;
    let window = election_window(t);
    RaftTimings {
        heartbeat_ms: args.heartbeat_interval_ms.unwrap_or(t / 5).max(1),
        election_min_ms: args.mempulse_election_min_ms.unwrap_or(window.0),
        election_max_ms: args.mempulse_election_max_ms.unwrap_or(window.1),
        send_timeout_ms: (2 * t / 5).max(1),
    }
}

/// mempulse's election timeouts `(min, max)` for an etcd election timeout of `t` ms: `min + max
/// = t` (a follower campaigns after the lease `max` plus a timer from `[min, max)`), `max - min
/// = min(t/5, 50)`, a spread wide against one vote round trip on a LAN.
const fn election_window(t: u64) -> (u64, u64) {
    let spread = if t / 5 < 50 { t / 5 } else { 50 };
    ((t - spread) / 2, (t + spread) / 2)
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => 0.0,
        _ if n % 2 == 1 => sorted[n / 2],
        _ => f64::midpoint(sorted[n / 2 - 1], sorted[n / 2]),
    }
}

fn min(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::INFINITY, f64::min)
}

fn max(values: &[f64]) -> f64 {
    values.iter().copied().fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn election_windows_campaign_after_t() {
        assert_eq!(election_window(1000), (475, 525));
        assert_eq!(election_window(250), (100, 150));
        assert_eq!(election_window(50), (20, 30));
        for t in [50, 51, 99, 250, 333, 1000, 60_000] {
            let (min, max) = election_window(t);
            assert!(min + max <= t && t - (min + max) <= 1, "t = {t}");
            assert!(min > t / 5 && min < max, "heartbeat < min < max for t = {t}");
        }
    }

    #[test]
    fn summaries_of_trials() {
        assert!((median(&[3.0, 1.0, 2.0]) - 2.0).abs() < 1e-9);
        assert!((median(&[4.0, 1.0, 2.0, 3.0]) - 2.5).abs() < 1e-9);
        assert!((min(&[4.0, 1.5]) - 1.5).abs() < 1e-9);
        assert!((max(&[4.0, 1.5]) - 4.0).abs() < 1e-9);
    }

    #[test]
    fn rpc_probes_use_each_body_once_and_etcd_probes_distinct_keys() {
        let bodies = Arc::new(vec![b"a".to_vec(), b"b".to_vec()]);
        let rpc = ProbeSource::Rpc { bodies, next: Arc::default() };
        assert_eq!(rpc.next().map(|(_, b)| b), Some(b"a".to_vec()));
        assert_eq!(rpc.next().map(|(_, b)| b), Some(b"b".to_vec()));
        assert!(rpc.next().is_none());
        let etcd =
            ProbeSource::Etcd { value_b64: Arc::new("dg==".to_owned()), next: Arc::default() };
        let (path, first) = etcd.next().unwrap();
        assert_eq!(path, "/v3/kv/put");
        assert_ne!(first, etcd.next().unwrap().1);
        assert!(etcd.succeeded(200, br#"{"header":{}}"#));
        assert!(!rpc.succeeded(200, br#"{"error":{"code":-32002,"data":{"code":"UNAVAILABLE"}}}"#));
    }
}
