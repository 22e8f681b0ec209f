//! The `preconnect` benchmark: how soon a new proposer admits a source's first transaction of
//! its turn, for a source pre-connected by tags against one that connects reactively.
//!
//! It runs `mempulse devnet` (the `mempulse` binary next to this one) with V validator
//! clusters × N nodes and two sources at the same rate: source 1 with `--subscribe default`
//! (streams to the clusters tagged `proposer`, `proposer-next` or `proposer-soon`, so it is
//! connected two heights ahead) and source 2 with `--subscribe reactive` (`proposer` only: it
//! connects when the tag appears). Once both stream it measures for `--duration-s`, reads every
//! cluster's facts (`GET /v1/events`), stops the devnet with SIGTERM and collects the sources'
//! final reports.
//!
//! What is measured, per proposer turn (a cluster `v` that built a block at height `h`):
//! - **slot start**: the `observed_at_ms` of `block_committed{h - 1}` in `v`'s own log, the
//!   moment `v`'s height `h` opened (from then on `v` announces itself `proposer`);
//! - **first admission**: the first `tx_admitted` after it in `v`'s log (by seq, before
//!   `v`'s `block_committed{h}`) whose sender is one of the source's generated senders;
//! - the turn's figure is the difference. Both stamps are the one `v`'s Raft leader put on the
//!   entry carrying the fact (every replica copies it), so they come from one clock; the
//!   admission entry commits a replication round after its stamp. Millisecond resolution.
//!
//! A turn whose source had nothing admitted before the turn ended counts in
//! `*_turns_without_admission`; `*_admitted_before_build` counts the turns whose first
//! admission came before the cluster's `block_proposed{h}` (it could be in the turn's block).
//! A pre-connected source's transactions reach every matching cluster all the time, so its
//! figure is bounded below by its send interval (`1000 / --rate` ms); the reactive source's
//! includes the tag's way to the source (announcer tick, catalog push), TCP, TLS, the stream's
//! `Hello` and first credit, and the admission.
//!
//! The sources' own figure (`tag_to_first_sent`: from the tag appearing in their catalog to
//! the first transaction handed to that cluster's stream) is copied from their reports.

use std::{
    collections::{BTreeMap, BTreeSet},
    io::{BufRead as _, BufReader},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex},
    thread::JoinHandle,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context as _, bail, ensure};
use mempulse_net::{CHAIN_ID_DEFAULT, TransferGenerator};
use serde_json::{Map, Value, json};

use crate::{
    interrupt::{Stop, Tracked, WorkDir},
    procs::{POLL_PACE, START_DEADLINE, http_json, mempulse_bin},
    report::Report,
};

/// Generated senders of each source (the sources' key sets differ by their seeds).
const SENDERS: u32 = 256;
/// The devnet's seed (no kills are asked for; it only names the run).
const DEVNET_SEED: u64 = 0;
/// The facts read from each cluster.
const FACT_KINDS: &str = "tx_admitted,block_proposed,block_committed";
/// Events per page of `GET /v1/events` (the API's default maximum).
const PAGE_LIMIT: u32 = 10_000;
/// Bound on one page.
const PAGE_TIMEOUT: Duration = Duration::from_secs(30);
/// Most pages read from one node (a bound on the loop, far above a run's log).
const PAGES_MAX: u32 = 100_000;
/// Bound on the devnet's stop (sources' reports, then the nodes).
const STOP_DEADLINE: Duration = Duration::from_secs(90);
/// Environment variable: when set, the devnet's directory is kept and its path printed.
const KEEP_ENV: &str = "MEMPULSE_BENCH_KEEP";

/// Arguments of `mempulse-bench preconnect`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Seconds measured, counted from the moment both sources stream.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    duration_s: u64,
    /// Slot duration of the devnet's validators file.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(50..=60_000))]
    slot_ms: u64,
    /// Transactions per second of each source.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    rate: u64,
    /// Validator clusters.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(2..=32))]
    validators: u32,
    /// Nodes per cluster.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=9))]
    nodes: u32,
    /// The `mempulse` binary (default: next to this executable).
    #[arg(long)]
    mempulse: Option<PathBuf>,
}

/// Runs the benchmark and returns its one-line report.
///
/// # Errors
/// Fails if the binary is missing, the devnet does not start or stop within its bounds, a
/// cluster's facts cannot be read, or a source left no report.
pub(crate) fn run(args: &Args) -> anyhow::Result<Report> {
    let bin = mempulse_bin(args.mempulse.as_deref())?;
    let mut root = WorkDir::new("mempulse-bench-preconnect-")?;
    if std::env::var_os(KEEP_ENV).is_some() {
        root.keep();
        eprintln!("{KEEP_ENV}: devnet files kept in {}", root.path().display());
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let mut devnet = Devnet::start(&bin, args, root.path())?;
    let started =
        devnet.wait("the devnet's started event", START_DEADLINE, |d| d.event("started"))?;
    let layout = Layout::parse(&started)?;
    devnet.wait("both sources to stream", START_DEADLINE, |d| {
        let summary = d.last("summary")?;
        let sources = summary["sources"].as_array()?;
        let streaming = sources.iter().all(|s| {
            s["status"]["sent"].as_u64().is_some_and(|n| n > 0)
                && s["status"]["open"].as_u64().is_some_and(|n| n > 0)
        });
        (sources.len() == 2 && streaming).then_some(())
    })?;
    let window_start = unix_ms();
    let end = Instant::now() + Duration::from_secs(args.duration_s);
    while Instant::now() < end {
        devnet.check_running()?;
        // Pacing of the measured run (it lasts `--duration-s`), not a synchronization.
        std::thread::sleep(POLL_PACE.max(Duration::from_millis(200)).min(end - Instant::now()));
    }
    let window_end = unix_ms();
    let mut facts = BTreeMap::new();
    for (validator, members) in &layout.clusters {
        let cluster = runtime.block_on(read_facts(members))?;
        facts.insert(*validator, cluster);
    }
    let reports = devnet.stop()?;
    let mut fields = Map::new();
    fields.insert("bench".into(), json!("preconnect"));
    fields.insert("validators".into(), json!(args.validators));
    fields.insert("nodes".into(), json!(args.nodes));
    fields.insert("slot_ms".into(), json!(args.slot_ms));
    fields.insert("rate_per_source".into(), json!(args.rate));
    fields.insert("duration_s".into(), json!(args.duration_s));
    let window = (window_start, window_end);
    let heights = committed_heights(facts.values().next().map_or(&[][..], Vec::as_slice), window);
    fields.insert("heights".into(), json!(heights.len()));
    let intervals: Vec<u64> = heights.windows(2).map(|w| w[1].saturating_sub(w[0])).collect();
    fields.insert("height_interval_median_ms".into(), json!(Spread::of(intervals).median));
    let mut medians = BTreeMap::new();
    for source in &layout.sources {
        let report =
            reports.get(&source.id).with_context(|| format!("no report of {}", source.id))?;
        let median = source_fields(&mut fields, source, &facts, window, report)?;
        medians.insert(source.name(), median);
    }
    let (pre, reactive) = (medians.get("preconnected"), medians.get("reactive"));
    if let (Some(pre), Some(reactive)) = (pre, reactive) {
        // A zero median (below the millisecond stamps) counts as 1 ms.
        let ratio = f64::from(u32::try_from(*reactive).unwrap_or(u32::MAX))
            / f64::from(u32::try_from((*pre).max(1)).unwrap_or(u32::MAX));
        fields.insert("ratio".into(), json!((ratio * 10.0).round() / 10.0));
    }
    fields.insert(
        "measure".into(),
        json!(
            "per proposer turn (cluster v builds height h): from v's block_committed{h-1} to the \
             first tx_admitted of the source's senders in v's log, both stamped by v's leader"
        ),
    );
    Ok(Report::Measured(fields))
}

/// One source's figures into `fields` (named by its mode); returns its median.
fn source_fields(
    fields: &mut Map<String, Value>,
    source: &SourceSpec,
    facts: &BTreeMap<u64, Vec<Fact>>,
    window: (u64, u64),
    report: &Value,
) -> anyhow::Result<u64> {
    let senders = source.senders()?;
    let turns: Vec<Turn> = facts
        .iter()
        .flat_map(|(validator, cluster)| turns(*validator, cluster, &senders, window))
        .collect();
    let name = source.name();
    let latencies: Vec<u64> = turns.iter().filter_map(|t| t.first_admitted_ms).collect();
    ensure!(!latencies.is_empty(), "no turn with an admission from the {name} source");
    let spread = Spread::of(latencies);
    fields.insert(format!("turns_{name}"), json!(turns.len()));
    fields.insert(format!("{name}_median_ms"), json!(spread.median));
    fields.insert(format!("{name}_p90_ms"), json!(spread.p90));
    fields.insert(format!("{name}_max_ms"), json!(spread.max));
    let without = turns.iter().filter(|t| t.first_admitted_ms.is_none()).count();
    fields.insert(format!("{name}_turns_without_admission"), json!(without));
    let before_build = turns.iter().filter(|t| t.before_build).count();
    fields.insert(format!("{name}_admitted_before_build"), json!(before_build));
    fields.insert(format!("{name}_tag_to_first_sent"), report["tag_to_first_sent"].clone());
    fields.insert(format!("{name}_txs"), report["txs"].clone());
    Ok(spread.median)
}

/// Milliseconds since the Unix epoch (the nodes stamp facts with the same clock).
fn unix_ms() -> u64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

/// The `mempulse devnet` process, its JSON lines read on a thread.
struct Devnet {
    child: Option<Child>,
    /// Registered while it runs: an interrupted bench sends it SIGTERM so it stops its nodes.
    _tracked: Tracked,
    lines: Arc<Mutex<Vec<Value>>>,
    reader: Option<JoinHandle<()>>,
    log: PathBuf,
}

impl Devnet {
    fn start(bin: &Path, args: &Args, root: &Path) -> anyhow::Result<Self> {
        let log = root.join("devnet.log");
        let stderr = std::fs::File::create(&log).context("creating the devnet's log")?;
        let mut command = Command::new(bin);
        command
            .args(["devnet", "--json", "--sources", "2"])
            .args(["--source-subscribe", "default,reactive"])
            .args(["--validators", &args.validators.to_string()])
            .args(["--nodes", &args.nodes.to_string()])
            .args(["--slot-ms", &args.slot_ms.to_string()])
            .args(["--source-rate", &args.rate.to_string()])
            .args(["--source-senders", &SENDERS.to_string()])
            .args(["--chain-id", &CHAIN_ID_DEFAULT.to_string()])
            .args(["--seed", &DEVNET_SEED.to_string()])
            .arg("--dir")
            .arg(root.join("devnet"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        let (mut child, tracked) =
            Tracked::spawn(&mut command, Stop::Term).context("starting mempulse devnet")?;
        let out = child.stdout.take().context("the devnet's stdout")?;
        let lines: Arc<Mutex<Vec<Value>>> = Arc::default();
        let sink = Arc::clone(&lines);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if let Ok(value) = serde_json::from_str::<Value>(&line) {
                    sink.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(value);
                }
            }
        });
        Ok(Self { child: Some(child), _tracked: tracked, lines, reader: Some(reader), log })
    }

    fn lines(&self) -> std::sync::MutexGuard<'_, Vec<Value>> {
        self.lines.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The first line of `event`.
    fn event(&self, event: &str) -> Option<Value> {
        self.lines().iter().find(|l| l["event"] == event).cloned()
    }

    /// The latest line of `event`.
    fn last(&self, event: &str) -> Option<Value> {
        self.lines().iter().rev().find(|l| l["event"] == event).cloned()
    }

    /// Fails, with the end of the devnet's log, once it has exited.
    fn check_running(&mut self) -> anyhow::Result<()> {
        let exited = match self.child.as_mut() {
            Some(child) => child.try_wait()?,
            None => bail!("the devnet is not running"),
        };
        if let Some(status) = exited {
            self.child = None;
            bail!("the devnet exited ({status}); its log ends with:\n{}", self.log_tail());
        }
        Ok(())
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Polls `probe` until it returns a value, while the devnet runs, at most `deadline`.
    fn wait<T>(
        &mut self,
        what: &str,
        deadline: Duration,
        mut probe: impl FnMut(&Self) -> Option<T>,
    ) -> anyhow::Result<T> {
        let end = Instant::now() + deadline;
        loop {
            if let Some(value) = probe(self) {
                return Ok(value);
            }
            self.check_running()?;
            ensure!(Instant::now() < end, "timed out after {deadline:?} waiting for {what}");
            std::thread::sleep(POLL_PACE);
        }
    }

    /// SIGTERM: the devnet stops its sources (each prints its report), then its nodes. The
    /// sources' reports by source id.
    fn stop(&mut self) -> anyhow::Result<BTreeMap<u64, Value>> {
        let child = self.child.as_mut().context("the devnet is not running")?;
        terminate(child.id())?;
        let end = Instant::now() + STOP_DEADLINE;
        let status: ExitStatus = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            ensure!(Instant::now() < end, "the devnet did not stop within {STOP_DEADLINE:?}");
            std::thread::sleep(POLL_PACE);
        };
        self.child = None;
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        ensure!(status.success(), "the devnet failed ({status}):\n{}", self.log_tail());
        let mut reports = BTreeMap::new();
        for line in self.lines().iter().filter(|l| l["event"] == "source_report") {
            let source = line["source"].as_u64().context("a source_report without source")?;
            ensure!(line["report"]["event"] == "report", "source {source} left no report");
            reports.insert(source, line["report"].clone());
        }
        Ok(reports)
    }

    /// Every child pid the devnet reported.
    fn child_pids(&self) -> BTreeSet<u32> {
        let mut pids = BTreeSet::new();
        for line in self.lines().iter() {
            let nodes = line["nodes"].as_array().cloned().unwrap_or_default();
            for pid in nodes.iter().map(|n| &n["pid"]).chain([&line["pid"]]) {
                if let Some(pid) = pid.as_u64().and_then(|p| u32::try_from(p).ok()) {
                    pids.insert(pid);
                }
            }
        }
        pids
    }
}

impl Drop for Devnet {
    /// A devnet still running (an error on the way) gets SIGTERM, then SIGKILL; if it had to be
    /// killed, its children are killed too (a killed devnet cannot stop them).
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        let _ = terminate(child.id());
        let end = Instant::now() + STOP_DEADLINE;
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < end {
            std::thread::sleep(POLL_PACE);
        }
        if matches!(child.try_wait(), Ok(None)) {
            let _ = child.kill();
            let _ = child.wait();
            for pid in self.child_pids() {
                let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            }
        }
    }
}

/// `kill -TERM pid`.
fn terminate(pid: u32) -> anyhow::Result<()> {
    let status = Command::new("kill").args(["-TERM", &pid.to_string()]).status()?;
    ensure!(status.success(), "kill -TERM {pid} failed");
    Ok(())
}

/// What the devnet's `started` event says: each cluster's HTTP addresses and the sources.
struct Layout {
    clusters: BTreeMap<u64, Vec<SocketAddr>>,
    sources: Vec<SourceSpec>,
}

/// One source of the devnet.
struct SourceSpec {
    id: u64,
    seed: u64,
    subscribe: String,
}

impl SourceSpec {
    /// `preconnected` for the default predicate, `reactive` for `proposer` only.
    fn name(&self) -> &'static str {
        if self.subscribe == "reactive" { "reactive" } else { "preconnected" }
    }

    /// Its senders' addresses as the nodes print them (`0x`, lowercase hex).
    fn senders(&self) -> anyhow::Result<BTreeSet<String>> {
        let generator = TransferGenerator::new(CHAIN_ID_DEFAULT, SENDERS, self.seed)?;
        (0..SENDERS)
            .map(|i| {
                let address = generator.sender(i).context("a generated sender")?;
                Ok(format!("{address:#x}"))
            })
            .collect()
    }
}

impl Layout {
    fn parse(started: &Value) -> anyhow::Result<Self> {
        let mut clusters: BTreeMap<u64, Vec<SocketAddr>> = BTreeMap::new();
        for node in started["nodes"].as_array().context("no nodes in the started event")? {
            let validator = node["validator"].as_u64().context("a node without validator")?;
            let http = node["http"].as_str().context("a node without http")?.parse()?;
            clusters.entry(validator).or_default().push(http);
        }
        let mut sources = Vec::new();
        for source in started["sources"].as_array().context("no sources in the started event")? {
            sources.push(SourceSpec {
                id: source["source"].as_u64().context("a source without id")?,
                seed: source["seed"].as_u64().context("a source without seed")?,
                subscribe: source["subscribe"].as_str().unwrap_or("default").to_owned(),
            });
        }
        ensure!(sources.len() == 2, "the devnet started {} sources, not 2", sources.len());
        Ok(Self { clusters, sources })
    }
}

/// One fact of a cluster's log, the fields the measurement uses.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Fact {
    seq: u64,
    at_ms: u64,
    kind: FactKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum FactKind {
    Admitted { sender: String },
    Proposed { height: u64, proposer: u64 },
    Committed { height: u64 },
}

impl Fact {
    fn parse(event: &Value) -> Option<Self> {
        let kind = match event["kind"].as_str()? {
            "tx_admitted" => {
                FactKind::Admitted { sender: event["tx"]["sender"].as_str()?.to_ascii_lowercase() }
            }
            "block_proposed" => FactKind::Proposed {
                height: event["height"].as_u64()?,
                proposer: event["proposer"].as_u64()?,
            },
            "block_committed" => FactKind::Committed { height: event["height"].as_u64()? },
            _ => return None,
        };
        Some(Self { seq: event["seq"].as_u64()?, at_ms: event["observed_at_ms"].as_u64()?, kind })
    }
}

/// Every fact of [`FACT_KINDS`] in the log of the first of `members` that answers, in seq
/// order.
async fn read_facts(members: &[SocketAddr]) -> anyhow::Result<Vec<Fact>> {
    let mut last_error = None;
    for addr in members {
        match read_node_facts(*addr).await {
            Ok(facts) => return Ok(facts),
            Err(error) => last_error = Some(error),
        }
    }
    Err(last_error.unwrap_or_else(|| anyhow::anyhow!("a cluster without members")))
}

async fn read_node_facts(addr: SocketAddr) -> anyhow::Result<Vec<Fact>> {
    let mut facts = Vec::new();
    let mut after = 0u64;
    for _ in 0..PAGES_MAX {
        let path = format!("/v1/events?kinds={FACT_KINDS}&after={after}&limit={PAGE_LIMIT}");
        let (status, page) = http_json(addr, "GET", &path, b"", PAGE_TIMEOUT).await?;
        ensure!(status == 200, "GET http://{addr}{path}: status {status}");
        let events = page["events"].as_array().context("a page without events")?;
        facts.extend(events.iter().filter_map(Fact::parse));
        let next = page["next"].as_u64().context("a page without next")?;
        if next == after {
            return Ok(facts);
        }
        after = next;
    }
    bail!("http://{addr} had more than {PAGES_MAX} pages of events")
}

/// The heights whose `block_committed` a cluster stamped within `window`, as their stamps.
fn committed_heights(facts: &[Fact], window: (u64, u64)) -> Vec<u64> {
    let mut seen = BTreeSet::new();
    facts
        .iter()
        .filter(|f| (window.0..=window.1).contains(&f.at_ms))
        .filter_map(|f| match f.kind {
            FactKind::Committed { height } if seen.insert(height) => Some(f.at_ms),
            _ => None,
        })
        .collect()
}

/// One proposer turn of a cluster, as one source fared in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Turn {
    height: u64,
    /// From the slot start to the source's first admission in the turn.
    first_admitted_ms: Option<u64>,
    /// Whether that admission came before the cluster's block of the turn was proposed.
    before_build: bool,
}

/// `validator`'s turns whose slot started within `window`, from its own log `facts`: each
/// height it proposed, the slot start (its `block_committed` of the height before) and the
/// first admission after it from `senders`, before its `block_committed` of the height.
fn turns(
    validator: u64,
    facts: &[Fact],
    senders: &BTreeSet<String>,
    window: (u64, u64),
) -> Vec<Turn> {
    let mut committed: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    let mut proposed: BTreeMap<u64, u64> = BTreeMap::new();
    for fact in facts {
        match fact.kind {
            FactKind::Committed { height } => {
                committed.entry(height).or_insert((fact.seq, fact.at_ms));
            }
            FactKind::Proposed { height, proposer } if proposer == validator => {
                proposed.entry(height).or_insert(fact.seq);
            }
            FactKind::Proposed { .. } | FactKind::Admitted { .. } => {}
        }
    }
    let admissions: Vec<(u64, u64)> = facts
        .iter()
        .filter_map(|f| match &f.kind {
            FactKind::Admitted { sender } if senders.contains(sender) => Some((f.seq, f.at_ms)),
            _ => None,
        })
        .collect();
    let mut out = Vec::new();
    for (height, proposed_seq) in proposed {
        let Some(previous) = height.checked_sub(1) else { continue };
        let Some(&(start_seq, start_ms)) = committed.get(&previous) else { continue };
        if !(window.0..=window.1).contains(&start_ms) {
            continue;
        }
        let end_seq = committed.get(&height).map_or(u64::MAX, |(seq, _)| *seq);
        let first = admissions.iter().find(|(seq, _)| *seq > start_seq && *seq < end_seq);
        out.push(Turn {
            height,
            first_admitted_ms: first.map(|(_, at)| at.saturating_sub(start_ms)),
            before_build: first.is_some_and(|(seq, _)| *seq < proposed_seq),
        });
    }
    out
}

/// Lower median, 90th percentile and maximum.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Spread {
    median: u64,
    p90: u64,
    max: u64,
}

impl Spread {
    fn of(mut values: Vec<u64>) -> Self {
        values.sort_unstable();
        let at = |q: usize| {
            let n = values.len();
            if n == 0 { 0 } else { values[(n - 1) * q / 100] }
        };
        Self { median: at(50), p90: at(90), max: values.last().copied().unwrap_or(0) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn committed(seq: u64, at_ms: u64, height: u64) -> Fact {
        Fact { seq, at_ms, kind: FactKind::Committed { height } }
    }

    fn proposed(seq: u64, at_ms: u64, height: u64, proposer: u64) -> Fact {
        Fact { seq, at_ms, kind: FactKind::Proposed { height, proposer } }
    }

    fn admitted(seq: u64, at_ms: u64, sender: &str) -> Fact {
        Fact { seq, at_ms, kind: FactKind::Admitted { sender: sender.to_owned() } }
    }

    #[test]
    fn a_turn_runs_from_the_previous_commit_to_the_first_admission_of_the_source() {
        let facts = [
            committed(1, 1_000, 4),
            admitted(2, 1_001, "0xother"),
            admitted(3, 1_040, "0xa"),
            proposed(4, 1_250, 5, 2),
            admitted(5, 1_260, "0xa"),
            committed(6, 1_300, 5),
            // Height 7 (after another cluster's 6): the source's first admission comes after
            // the build.
            committed(7, 1_900, 6),
            proposed(8, 2_150, 7, 2),
            admitted(9, 2_160, "0xa"),
            committed(10, 2_200, 7),
            // Height 9: nothing admitted before the turn ended.
            committed(11, 2_800, 8),
            proposed(12, 3_050, 9, 2),
            committed(13, 3_100, 9),
            admitted(14, 3_110, "0xa"),
        ];
        let senders = BTreeSet::from(["0xa".to_owned()]);
        let all = turns(2, &facts, &senders, (0, u64::MAX));
        assert_eq!(
            all,
            [
                Turn { height: 5, first_admitted_ms: Some(40), before_build: true },
                Turn { height: 7, first_admitted_ms: Some(260), before_build: false },
                Turn { height: 9, first_admitted_ms: None, before_build: false },
            ]
        );
        // Another validator's blocks are not this cluster's turns; the window bounds the
        // slot starts.
        assert!(turns(3, &facts, &senders, (0, u64::MAX)).is_empty());
        let late = turns(2, &facts, &senders, (1_500, 2_000));
        assert_eq!(late.iter().map(|t| t.height).collect::<Vec<_>>(), [7]);
        assert_eq!(committed_heights(&facts, (1_500, 3_000)), [1_900, 2_200, 2_800]);
    }

    #[test]
    fn facts_parse_from_the_event_json_and_skip_other_kinds() {
        let admitted = json!({"seq": 7, "observed_at_ms": 1_795_484_179_669_u64,
            "kind": "tx_admitted", "tx": {"sender": "0x10E1daca3c462ccd59337f4c066178f844a7d1bb"}});
        assert_eq!(
            Fact::parse(&admitted),
            Some(Fact {
                seq: 7,
                at_ms: 1_795_484_179_669,
                kind: FactKind::Admitted {
                    sender: "0x10e1daca3c462ccd59337f4c066178f844a7d1bb".to_owned()
                },
            })
        );
        let block = json!({"seq": 1, "observed_at_ms": 5, "kind": "block_proposed", "height": 3,
            "proposer": 2, "txs": []});
        assert_eq!(
            Fact::parse(&block).unwrap().kind,
            FactKind::Proposed { height: 3, proposer: 2 }
        );
        assert_eq!(
            Fact::parse(&json!({"seq": 1, "observed_at_ms": 5, "kind": "tx_received"})),
            None
        );
    }

    #[test]
    fn senders_are_lowercase_hex_addresses_and_differ_by_seed() {
        let spec = |seed| SourceSpec { id: 1000 + seed, seed, subscribe: "default".to_owned() };
        let (one, two) = (spec(1).senders().unwrap(), spec(2).senders().unwrap());
        assert_eq!(one.len(), SENDERS as usize);
        assert!(one.iter().all(|a| a.len() == 42 && a.starts_with("0x") && *a == a.to_lowercase()));
        assert!(one.is_disjoint(&two));
    }

    #[test]
    fn spreads_take_the_lower_median() {
        assert_eq!(Spread::of(vec![9, 1, 5, 7]), Spread { median: 5, p90: 7, max: 9 });
        assert_eq!(Spread::of(Vec::new()), Spread::default());
    }
}
