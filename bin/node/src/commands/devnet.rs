//! `mempulse devnet`: V validator clusters × N nodes and S tx sources as real processes on
//! loopback, with generated certificates, validators file and configurations, and a live
//! summary once a second (text, or one JSON object per line). Optional timers `kill -9` the
//! proposer cluster's leader or a seeded random node and restart it. Ctrl-C, SIGTERM or
//! `--duration-s` stop every child (SIGTERM, then SIGKILL past a bound).
//!
//! Glue only: the nodes and sources are the `run` and `txsource` commands of this same
//! executable; this module lays out their files ([`plan`]), supervises them ([`children`]),
//! asks their HTTP APIs ([`probe`]), folds the answers ([`summary`]) and runs the kill timers
//! ([`chaos`]).

mod chaos;
mod children;
mod plan;
mod probe;
mod summary;

use std::{
    collections::{BTreeMap, BTreeSet},
    ffi::OsString,
    io::{IsTerminal as _, Write as _},
    path::{Path, PathBuf},
    process::ExitCode,
    time::Duration,
};

use anyhow::Context;
use clap::Args;
use futures_util::future::join_all;
use mempulse_primitives::NodeId;
use serde_json::json;
use tokio::{
    signal::unix::{Signal, SignalKind, signal},
    time::{Instant, MissedTickBehavior},
};

use self::{
    chaos::{Candidate, Chaos, KillTarget},
    children::{ChildKey, ChildSpec, Children},
    plan::{Plan, RaftTimings, Shape, SourcePlan},
    probe::NodeSample,
    summary::{Previous, SourceSummary, Summary},
};

/// Time between two summaries.
const SUMMARY_INTERVAL: Duration = Duration::from_secs(1);
/// Bound on one node's answers to the summary's requests.
const PROBE_TIMEOUT: Duration = Duration::from_millis(800);
/// Sources start once every node answers, or after this long anyway.
const SOURCES_START_AFTER_MAX: Duration = Duration::from_secs(30);
/// Bound on the sources' graceful stop (closing their streams, printing their tallies).
const SOURCES_STOP_BOUND: Duration = Duration::from_secs(10);
/// Bound on the nodes' graceful stop (hand-over, drain).
const NODES_STOP_BOUND: Duration = Duration::from_secs(15);
/// Generated transactions per source when the devnet runs until stopped: a day at its rate.
const SOURCE_RUN_S_UNBOUNDED: u64 = 86_400;
/// Bytes first read from the end of a source's output to find its last line (doubled until
/// the line fits, up to [`SOURCE_LINE_BYTES_MAX`]).
const SOURCE_TAIL_BYTES: u64 = 64 * 1024;
/// The longest last line read from a source's output (a report with its full history).
const SOURCE_LINE_BYTES_MAX: u64 = 16 * 1024 * 1024;
/// Milliseconds between two status lines of a source (`--status-interval-ms`).
const SOURCE_STATUS_INTERVAL_MS: u64 = 500;
/// A source's bound on closing its streams and waiting for the tallies when stopped
/// (`--close-timeout-ms`), within [`SOURCES_STOP_BOUND`].
const SOURCE_CLOSE_TIMEOUT_MS: u64 = 5_000;

/// Arguments of `mempulse devnet`.
#[derive(Debug, Args)]
pub(crate) struct DevnetArgs {
    /// Validator clusters.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=32))]
    pub(crate) validators: u32,
    /// Nodes per cluster.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=9))]
    pub(crate) nodes: u32,
    /// Tx sources (`mempulse txsource` processes).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(0..=64))]
    pub(crate) sources: u32,
    /// Directory for certificates, configurations, data and logs (absent or empty; kept
    /// after exit).
    #[arg(long, default_value = "mempulse-devnet")]
    pub(crate) dir: PathBuf,
    /// First of 3 ports per node (Raft, HTTP, stream), contiguous (default: free ports).
    #[arg(long)]
    pub(crate) base_port: Option<u16>,
    /// Slot duration of the validators file.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) slot_ms: u64,
    /// `kill -9` the proposer cluster's leader this often (restarted after
    /// `--restart-after-ms`).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) kill_leader_every_s: Option<u64>,
    /// `kill -9` a node drawn with `--seed` this often (restarted after `--restart-after-ms`).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) kill_node_every_s: Option<u64>,
    /// Delay before a killed node is started again.
    #[arg(long, default_value_t = 3_000)]
    pub(crate) restart_after_ms: u64,
    /// Seed of the random choices (victims of `--kill-node-every-s`).
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// Stop after this many seconds (default: run until Ctrl-C or SIGTERM).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) duration_s: Option<u64>,
    /// One JSON object per line (lifecycle events and a summary a second) instead of text.
    #[arg(long)]
    pub(crate) json: bool,
    /// Transactions per second each source sends at most.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) source_rate: u64,
    /// Transactions each source sends before it ends and prints its report (default: its
    /// rate times `--duration-s`, or a day's worth).
    #[arg(long)]
    pub(crate) source_txs: Option<u64>,
    /// Each source's tag predicate, `mempulse txsource --subscribe`: one entry for every
    /// source or one per source, comma separated (`default,reactive`: the first source
    /// connects two heights ahead, the second when the tag appears); a tag list is written
    /// with `+` (`any:proposer+proposer-next`).
    #[arg(long, value_delimiter = ',', default_value = "default")]
    pub(crate) source_subscribe: Vec<String>,
    /// Senders each source's generated transfers rotate through.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) source_senders: u32,
    /// Chain id of the nodes and the generated transfers.
    #[arg(long, default_value_t = mempulse_net::CHAIN_ID_DEFAULT)]
    pub(crate) chain_id: u64,
    /// Most total gas of a built block (`[blocks] gas-limit`).
    #[arg(long, default_value_t = 30_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) block_gas_limit: u64,
    /// Most total encoded bytes of a built block (`[blocks] bytes-limit`).
    #[arg(long, default_value_t = 1 << 20, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) block_bytes_limit: u64,
}

pub(crate) fn run(args: &DevnetArgs) -> anyhow::Result<ExitCode> {
    let shape = Shape {
        validators: args.validators,
        nodes: args.nodes,
        sources: args.sources,
        slot_ms: args.slot_ms,
        chain_id: args.chain_id,
        base_port: args.base_port,
        raft: RaftTimings::default(),
        block_gas_limit: args.block_gas_limit,
        block_bytes_limit: args.block_bytes_limit,
        source_subscribe: args.source_subscribe.clone(),
    };
    let dir = absolute(&args.dir)?;
    let plan = Plan::new(&dir, shape)?;
    plan.write()?;
    let exe = std::env::current_exe().context("locating the mempulse executable")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let mut devnet = Devnet::new(args, plan, exe)?;
        devnet.run().await
    })
}

/// The directory as an absolute path (children run with the same working directory, but
/// the printed paths must make sense from anywhere).
fn absolute(dir: &Path) -> anyhow::Result<PathBuf> {
    if dir.is_absolute() {
        return Ok(dir.to_owned());
    }
    Ok(std::env::current_dir().context("reading the working directory")?.join(dir))
}

/// Why the devnet stops.
#[derive(Clone, Copy, Debug)]
enum StopReason {
    Interrupt,
    Terminate,
    Hangup,
    Duration,
}

impl StopReason {
    const fn as_str(self) -> &'static str {
        match self {
            Self::Interrupt => "interrupt",
            Self::Terminate => "terminate",
            Self::Hangup => "hangup",
            Self::Duration => "duration",
        }
    }
}

/// What the devnet's signals ask for.
enum Request {
    Stop(StopReason),
    Kill(KillTarget),
}

/// SIGINT, SIGTERM and SIGHUP stop; SIGUSR1 kills the proposer cluster's leader now,
/// SIGUSR2 a random node (as the timers do).
struct Signals {
    interrupt: Signal,
    terminate: Signal,
    hangup: Signal,
    user1: Signal,
    user2: Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Self> {
        let install = |kind: SignalKind| signal(kind).context("installing a signal handler");
        Ok(Self {
            interrupt: install(SignalKind::interrupt())?,
            terminate: install(SignalKind::terminate())?,
            hangup: install(SignalKind::hangup())?,
            user1: install(SignalKind::user_defined1())?,
            user2: install(SignalKind::user_defined2())?,
        })
    }

    async fn recv(&mut self) -> Request {
        tokio::select! {
            _ = self.interrupt.recv() => Request::Stop(StopReason::Interrupt),
            _ = self.terminate.recv() => Request::Stop(StopReason::Terminate),
            _ = self.hangup.recv() => Request::Stop(StopReason::Hangup),
            _ = self.user1.recv() => Request::Kill(KillTarget::Leader),
            _ = self.user2.recv() => Request::Kill(KillTarget::Node),
        }
    }
}

/// The running devnet.
struct Devnet {
    plan: Plan,
    children: Children,
    chaos: Chaos,
    /// Kills asked for by signal, done at the next summary (which knows the leaders).
    kill_now: Vec<KillTarget>,
    start: Instant,
    duration: Option<Duration>,
    source_args: SourceArgs,
    sources_started: bool,
    previous: Previous,
    last: Vec<NodeSample>,
    out: Output,
    /// Children that ended on their own with a failure.
    failures: u32,
    /// Each source's latest status line.
    source_status: BTreeMap<NodeId, serde_json::Value>,
    /// Sources whose final report was printed.
    reported: BTreeSet<NodeId>,
}

/// What every source is started with besides its own id and seed.
struct SourceArgs {
    rate: u64,
    senders: u32,
    chain_id: u64,
    count: u64,
}

impl Devnet {
    fn new(args: &DevnetArgs, plan: Plan, exe: PathBuf) -> anyhow::Result<Self> {
        let start = Instant::now();
        let every = |s: Option<u64>| s.map(Duration::from_secs);
        let chaos = Chaos::new(
            start.into_std(),
            every(args.kill_leader_every_s),
            every(args.kill_node_every_s),
            Duration::from_millis(args.restart_after_ms),
            args.seed,
        );
        let run_s = args.duration_s.unwrap_or(SOURCE_RUN_S_UNBOUNDED);
        let prefix = vec![OsString::from("--log-format"), OsString::from("compact")];
        Ok(Self {
            plan,
            children: Children::new(exe, prefix),
            chaos,
            kill_now: Vec::new(),
            start,
            duration: args.duration_s.map(Duration::from_secs),
            source_args: SourceArgs {
                rate: args.source_rate,
                senders: args.source_senders,
                chain_id: args.chain_id,
                count: args.source_txs.unwrap_or(args.source_rate.saturating_mul(run_s)),
            },
            sources_started: false,
            previous: Previous::default(),
            last: Vec::new(),
            out: Output::new(args.json),
            failures: 0,
            source_status: BTreeMap::new(),
            reported: BTreeSet::new(),
        })
    }

    async fn run(&mut self) -> anyhow::Result<ExitCode> {
        let mut signals = Signals::install()?;
        let started = self.start_nodes();
        let reason = match started {
            Ok(()) => self.serve(&mut signals).await,
            Err(err) => Err(err),
        };
        let stopped = self.stop(reason.as_ref().map_or("error", |r| r.as_str())).await;
        reason?;
        stopped?;
        Ok(if self.failures == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
    }

    /// Summaries, kills and restarts until a stop is asked for.
    async fn serve(&mut self, signals: &mut Signals) -> anyhow::Result<StopReason> {
        let mut ticks = tokio::time::interval(SUMMARY_INTERVAL);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let end = self.duration.map(|d| self.start + d);
        loop {
            tokio::select! {
                _ = ticks.tick() => self.tick().await?,
                request = signals.recv() => match request {
                    Request::Stop(reason) => return Ok(reason),
                    Request::Kill(target) => self.kill_now.push(target),
                },
                () = sleep_until(end) => return Ok(StopReason::Duration),
            }
        }
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn start_nodes(&mut self) -> anyhow::Result<()> {
        let mut nodes = Vec::with_capacity(self.plan.nodes.len());
        for node in &self.plan.nodes {
            let spec = ChildSpec {
                args: vec!["run".into(), "--config".into(), node.config.clone().into()],
                stdout: None,
                stderr: node.log.clone(),
            };
            let pid = self.children.start(ChildKey::Node(node.id), spec)?;
            nodes.push(json!({
                "node": node.id.0, "validator": node.validator, "pid": pid,
                "raft": node.raft, "http": node.http, "stream": node.stream,
                "config": node.config, "data_dir": node.data_dir, "log": node.log,
            }));
        }
        let sources: Vec<_> = self
            .plan
            .sources
            .iter()
            .map(|s| {
                json!({"source": s.id.0, "seed": s.seed, "subscribe": s.subscribe,
                    "log": s.log, "out": s.out})
            })
            .collect();
        self.out.event(
            &json!({
                "event": "started", "dir": self.plan.dir, "certs": self.plan.certs,
                "validators_file": self.plan.validators_file, "nodes": nodes, "sources": sources,
            }),
            &format!(
                "devnet: {} validators x {} nodes, {} sources in {}",
                self.plan.shape.validators,
                self.plan.shape.nodes,
                self.plan.shape.sources,
                self.plan.dir.display()
            ),
        )
    }

    /// One second: exits, restarts, samples, sources, kills, the summary.
    async fn tick(&mut self) -> anyhow::Result<()> {
        for exited in self.children.reap() {
            if !exited.status.success() {
                self.failures += 1;
            }
            let code = exited.status.code();
            self.out.event(
                &json!({"event": "exited", "child": exited.key.name(), "code": code}),
                &format!("{} exited on its own ({})", exited.key.name(), exited.status),
            )?;
            if let ChildKey::Source(id) = exited.key {
                self.source_report(id)?;
            }
        }
        for node in self.chaos.restarts_due(Instant::now().into_std()) {
            let pid = self.children.restart(ChildKey::Node(node))?;
            self.out.event(
                &json!({"event": "restarted", "node": node.0, "pid": pid}),
                &format!("node {} restarted (pid {pid})", node.0),
            )?;
        }
        let samples = self.sample().await;
        if !self.sources_started
            && (samples.iter().all(|s| s.cluster.is_some())
                || self.start.elapsed() >= SOURCES_START_AFTER_MAX)
        {
            self.start_sources()?;
        }
        self.last = samples.clone();
        self.kills().await?;
        let sources = self.source_summaries();
        let previous = std::mem::take(&mut self.previous);
        let (summary, next) = summary::summarize(self.elapsed_ms(), samples, sources, &previous);
        self.previous = next;
        self.out.summary(&summary)
    }

    async fn sample(&self) -> Vec<NodeSample> {
        let probes = self.plan.nodes.iter().map(|node| {
            let running = self.children.pid(ChildKey::Node(node.id)).is_some();
            async move {
                if running {
                    probe::sample(node.id, node.validator, node.http, PROBE_TIMEOUT).await
                } else {
                    NodeSample {
                        node: node.id.0,
                        validator: node.validator,
                        ..NodeSample::default()
                    }
                }
            }
        });
        join_all(probes).await
    }

    fn start_sources(&mut self) -> anyhow::Result<()> {
        self.sources_started = true;
        for source in &self.plan.sources {
            let spec = ChildSpec {
                args: self.source_command(source),
                stdout: Some(source.out.clone()),
                stderr: source.log.clone(),
            };
            let pid = self.children.start(ChildKey::Source(source.id), spec)?;
            self.out.event(
                &json!({"event": "source_started", "source": source.id.0, "pid": pid}),
                &format!("source {} started (pid {pid})", source.id.0),
            )?;
        }
        Ok(())
    }

    /// `mempulse txsource` for `source`: the catalog from one node of each cluster, its tag
    /// predicate, generated transfers at the configured rate, a status line every
    /// [`SOURCE_STATUS_INTERVAL_MS`].
    fn source_command(&self, source: &SourcePlan) -> Vec<OsString> {
        let catalog: Vec<String> = self
            .plan
            .validator_ids()
            .filter_map(|v| self.plan.cluster(v).next())
            .map(|n| format!("{}@{}", n.id.0, n.stream))
            .collect();
        let cert = |suffix: &str| self.plan.certs.join(format!("node-{}{suffix}.pem", source.id.0));
        let a = &self.source_args;
        let mut args: Vec<OsString> = vec!["txsource".into(), "--catalog".into()];
        args.push(catalog.join(",").into());
        for (flag, value) in [
            ("--subscribe", source.subscribe.clone()),
            ("--status-interval-ms", SOURCE_STATUS_INTERVAL_MS.to_string()),
            ("--close-timeout-ms", SOURCE_CLOSE_TIMEOUT_MS.to_string()),
            ("--source-id", source.id.0.to_string()),
            ("--generate", a.count.to_string()),
            ("--senders", a.senders.to_string()),
            ("--seed", source.seed.to_string()),
            ("--rate", a.rate.to_string()),
            ("--chain-id", a.chain_id.to_string()),
        ] {
            args.push(flag.into());
            args.push(value.into());
        }
        args.extend(["--tls-ca".into(), self.plan.certs.join("ca.pem").into()]);
        args.extend(["--tls-cert".into(), cert("").into()]);
        args.extend(["--tls-key".into(), cert("-key").into()]);
        args
    }

    /// The kills the timers and signals ask for, chosen from the last samples.
    async fn kills(&mut self) -> anyhow::Result<()> {
        let candidates: Vec<Candidate> = self
            .last
            .iter()
            .map(|s| {
                let status = s.cluster.as_ref();
                Candidate {
                    node: NodeId(s.node),
                    validator: s.validator,
                    running: self.children.pid(ChildKey::Node(NodeId(s.node))).is_some(),
                    leader: status.is_some_and(|c| c.role == "leader"),
                    proposer: status
                        .and_then(|c| c.schedule.as_ref())
                        .is_some_and(|sc| sc.tags.iter().any(|t| t == "proposer")),
                }
            })
            .collect();
        let now = Instant::now().into_std();
        let mut due = self.chaos.due(now, &candidates);
        for target in std::mem::take(&mut self.kill_now) {
            match self.chaos.choose_now(now, target, &candidates) {
                Some(node) => due.push((node, target)),
                None => self.out.event(
                    &json!({"event": "kill_skipped", "target": target.as_str()}),
                    &format!("no {} to kill now", target.as_str()),
                )?,
            }
        }
        for (node, target) in due {
            let Some(pid) = self.children.kill9(ChildKey::Node(node)).await else { continue };
            let validator = candidates.iter().find(|c| c.node == node).map_or(0, |c| c.validator);
            self.out.event(
                &json!({
                    "event": "killed", "node": node.0, "validator": validator, "pid": pid,
                    "target": target.as_str(), "restart_in_ms": self.chaos.restart_after_ms(),
                }),
                &format!(
                    "kill -9 node {} ({} of v{validator}, pid {pid}); restart in {} ms",
                    node.0,
                    target.as_str(),
                    self.chaos.restart_after_ms()
                ),
            )?;
        }
        Ok(())
    }

    /// Each source's latest status line (kept once it printed its report) and its report.
    fn source_summaries(&mut self) -> Vec<SourceSummary> {
        let mut out = Vec::with_capacity(self.plan.sources.len());
        for s in &self.plan.sources {
            let last = last_json_line(&s.out);
            let event = last.as_ref().and_then(|l| l["event"].as_str()).map(str::to_owned);
            let report = match (event.as_deref(), last) {
                (Some("status"), Some(status)) => {
                    self.source_status.insert(s.id, status);
                    None
                }
                (Some("report"), report) => report,
                _ => None,
            };
            out.push(SourceSummary {
                source: s.id.0,
                subscribe: s.subscribe.clone(),
                running: self.children.pid(ChildKey::Source(s.id)).is_some(),
                status: self.source_status.get(&s.id).cloned(),
                report,
            });
        }
        out
    }

    /// Prints source `id`'s final report (the last line of its output) once.
    fn source_report(&mut self, id: NodeId) -> anyhow::Result<()> {
        let Some(source) = self.plan.sources.iter().find(|s| s.id == id) else { return Ok(()) };
        if !self.reported.insert(id) {
            return Ok(());
        }
        let report = last_json_line(&source.out).filter(|l| l["event"] == "report");
        let text = report.as_ref().map_or_else(
            || format!("source {} ({}) left no report", id.0, source.subscribe),
            |r| summary::render_report(id.0, &source.subscribe, r),
        );
        self.out.event(
            &json!({"event": "source_report", "source": id.0, "subscribe": source.subscribe,
                "report": report}),
            &text,
        )
    }

    /// Sources first (they close their streams and print their tallies), then the nodes.
    async fn stop(&mut self, reason: &str) -> anyhow::Result<()> {
        let _ = self.out.event(
            &json!({"event": "stopping", "reason": reason}),
            &format!("devnet stopping ({reason})"),
        );
        let mut killed =
            self.children.stop(|k| matches!(k, ChildKey::Source(_)), SOURCES_STOP_BOUND).await;
        if self.sources_started {
            let ids: Vec<NodeId> = self.plan.sources.iter().map(|s| s.id).collect();
            for id in ids {
                let _ = self.source_report(id);
            }
        }
        killed
            .extend(self.children.stop(|k| matches!(k, ChildKey::Node(_)), NODES_STOP_BOUND).await);
        let killed: Vec<String> = killed.iter().map(|k| k.name()).collect();
        self.out.event(
            &json!({
                "event": "stopped", "reason": reason, "dir": self.plan.dir,
                "killed_after_bound": killed,
            }),
            &format!(
                "devnet stopped ({reason}){}: certificates, configurations, data and logs \
                 are in {} (node-<id>/, node-<id>.toml, logs/)",
                if killed.is_empty() {
                    String::new()
                } else {
                    format!(", {} needed SIGKILL", killed.join(", "))
                },
                self.plan.dir.display()
            ),
        )
    }
}

/// Resolves at `end`, never without one.
async fn sleep_until(end: Option<Instant>) {
    match end {
        Some(end) => tokio::time::sleep_until(end).await,
        None => std::future::pending().await,
    }
}

/// The last complete line of a file as JSON: read from its last [`SOURCE_TAIL_BYTES`], more
/// while that holds no whole line (up to [`SOURCE_LINE_BYTES_MAX`]); a line still being
/// written (no newline yet) is skipped. `None` when there is no complete line, it is not
/// JSON, or it is longer than the bound.
fn last_json_line(path: &Path) -> Option<serde_json::Value> {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let mut file = std::fs::File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    let mut window = SOURCE_TAIL_BYTES;
    loop {
        let start = len.saturating_sub(window);
        file.seek(SeekFrom::Start(start)).ok()?;
        let mut tail = Vec::new();
        (&mut file).take(window).read_to_end(&mut tail).ok()?;
        let complete = tail.iter().rposition(|b| *b == b'\n').map(|end| &tail[..end]);
        let line = match complete {
            Some(lines) => match lines.iter().rposition(|b| *b == b'\n') {
                Some(at) => Some(&lines[at + 1..]),
                None if start == 0 => Some(lines),
                None => None,
            },
            None if start == 0 => return None,
            None => None,
        };
        if let Some(line) = line {
            return serde_json::from_slice(line).ok();
        }
        if window >= SOURCE_LINE_BYTES_MAX {
            return None;
        }
        window = window.saturating_mul(2);
    }
}

/// Where the devnet prints: text (redrawn in place on a terminal) or JSON lines.
struct Output {
    json: bool,
    redraw: bool,
    /// Summary lines printed last on a terminal (erased before the next ones).
    drawn: usize,
}

impl Output {
    fn new(json: bool) -> Self {
        Self { json, redraw: !json && std::io::stdout().is_terminal(), drawn: 0 }
    }

    /// A lifecycle event: its JSON object, or its text line (kept above the summary).
    fn event(&mut self, object: &serde_json::Value, text: &str) -> anyhow::Result<()> {
        let line = if self.json { object.to_string() } else { text.to_owned() };
        self.write(&[line], false)
    }

    fn summary(&mut self, summary: &Summary) -> anyhow::Result<()> {
        if self.json {
            let line = serde_json::to_string(summary).context("encoding the summary")?;
            return self.write(&[line], false);
        }
        self.write(&summary::render(summary), true)
    }

    fn write(&mut self, lines: &[String], summary: bool) -> anyhow::Result<()> {
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        if self.redraw && self.drawn > 0 {
            // Up over the last summary and clear to the end of the screen.
            write!(out, "\x1b[{}A\x1b[J", self.drawn)?;
        }
        for line in lines {
            writeln!(out, "{line}")?;
        }
        self.drawn = if summary { lines.len() } else { 0 };
        out.flush().context("writing to stdout")
    }
}
