//! `mempulse devnet` end to end: 3 validator clusters × 3 nodes and 3 tx sources (two
//! pre-connected by tags, one reactive) as real processes, driven through the phases of the
//! multi-validator design, one bounded wait each (the devnet's JSON lines, the sources' status
//! lines and the nodes' HTTP APIs are the only windows in).

use std::{
    collections::{BTreeMap, BTreeSet},
    io::{BufRead as _, BufReader, Read as _, Write as _},
    net::{SocketAddr, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use mempulse_net::TransferGenerator;
use serde_json::{Value, json};

use crate::support::{BIN, Single, dechunk};

/// Seed of the transactions the test sends itself (the sources use seeds 1 to 3).
const OWN_SEED: u64 = 99;
/// Seed of the queued transactions of the read phase (a nonce gap each).
const GAP_SEED: u64 = 98;
/// The sources: 1 and 2 pre-connect by tags (`default`), 3 connects when the tag appears.
const SOURCES: [(u64, &str); 3] = [(1, "default"), (2, "default"), (3, "reactive")];
/// The pre-connected sources.
const DEFAULT_SOURCES: [u64; 2] = [1, 2];

/// Gas of one generated transfer.
const TRANSFER_GAS: u64 = 21_000;
/// Block gas limit of the devnet: 20 transfers, so busy slots fill blocks to the limit.
const BLOCK_GAS_LIMIT: u64 = 20 * TRANSFER_GAS;
/// Block byte limit of the devnet.
const BLOCK_BYTES_LIMIT: u64 = 64 * 1024;
/// A killed node stays down this long (the test reads its event log meanwhile).
const RESTART_AFTER_MS: u64 = 5_000;
/// Transactions per second each source sends (until the devnet stops them: each prints its
/// report on SIGTERM).
const SOURCE_RATE: u64 = 40;
/// Pause between two polls (pacing only: every wait has a deadline).
const POLL: Duration = Duration::from_millis(100);
/// Bound of one HTTP exchange.
const HTTP_TIMEOUT: Duration = Duration::from_secs(5);

/// The devnet process, its JSON lines and its stderr.
struct Devnet {
    child: Option<Child>,
    lines: Arc<Mutex<Vec<Value>>>,
    stderr: Arc<Mutex<Vec<String>>>,
    readers: Vec<JoinHandle<()>>,
    dir: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Devnet {
    fn start() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("devnet");
        let mut child = Command::new(BIN)
            .args(["devnet", "--validators", "3", "--nodes", "3", "--sources", "3", "--json"])
            .args(["--duration-s", "240", "--slot-ms", "500", "--seed", "7"])
            .args(["--source-rate", &SOURCE_RATE.to_string(), "--source-senders", "64"])
            .args(["--source-subscribe", "default,default,reactive"])
            .args(["--restart-after-ms", &RESTART_AFTER_MS.to_string()])
            .args(["--block-gas-limit", &BLOCK_GAS_LIMIT.to_string()])
            .args(["--block-bytes-limit", &BLOCK_BYTES_LIMIT.to_string()])
            .arg("--dir")
            .arg(&dir)
            .env("RUST_LOG", "info,openraft=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines: Arc<Mutex<Vec<Value>>> = Arc::default();
        let stderr: Arc<Mutex<Vec<String>>> = Arc::default();
        let (out, err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
        let sink = Arc::clone(&lines);
        let json_reader = std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                let value = serde_json::from_str(&line)
                    .unwrap_or_else(|_| json!({"event": "not_json", "line": line}));
                sink.lock().unwrap().push(value);
            }
        });
        let sink = Arc::clone(&stderr);
        let err_reader = std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line);
            }
        });
        Self {
            child: Some(child),
            lines,
            stderr,
            readers: vec![json_reader, err_reader],
            dir,
            _tmp: tmp,
        }
    }

    /// Polls `probe` until it returns a value; panics with `what` and the last summary after
    /// `bound`, or as soon as the devnet stops.
    fn wait<T>(&self, what: &str, bound: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
        let end = Instant::now() + bound;
        loop {
            if let Some(value) = probe() {
                return value;
            }
            let stopped = self.lines().iter().any(|l| l["event"] == "stopped");
            assert!(!stopped, "the devnet stopped while waiting for {what}");
            assert!(
                Instant::now() < end,
                "timed out after {bound:?} waiting for {what}; last summary: {}",
                self.summary().unwrap_or(Value::Null)
            );
            std::thread::sleep(POLL);
        }
    }

    fn lines(&self) -> Vec<Value> {
        self.lines.lock().unwrap().clone()
    }

    fn events(&self, event: &str) -> Vec<Value> {
        self.lines().into_iter().filter(|l| l["event"] == event).collect()
    }

    /// The latest summary.
    fn summary(&self) -> Option<Value> {
        self.lines().into_iter().rev().find(|l| l["event"] == "summary")
    }

    /// The `started` event: nodes with their addresses, the validators file.
    fn started(&self) -> Value {
        self.wait("the started event", Duration::from_secs(30), || {
            self.events("started").into_iter().next()
        })
    }

    /// Node id → (validator, HTTP address).
    fn nodes(&self) -> BTreeMap<u64, (u64, SocketAddr)> {
        let started = self.started();
        started["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| {
                let http: SocketAddr = n["http"].as_str().unwrap().parse().unwrap();
                (n["node"].as_u64().unwrap(), (n["validator"].as_u64().unwrap(), http))
            })
            .collect()
    }

    fn signal(&self, name: &str) {
        let pid = self.child.as_ref().unwrap().id().to_string();
        assert!(Command::new("kill").args([name, &pid]).status().unwrap().success());
    }

    /// Every pid the devnet reported for a child.
    fn child_pids(&self) -> BTreeSet<u32> {
        let mut pids = BTreeSet::new();
        for line in self.lines() {
            let nodes = line["nodes"].as_array().cloned().unwrap_or_default();
            for pid in nodes.iter().map(|n| &n["pid"]).chain([&line["pid"]]) {
                if let Some(pid) = pid.as_u64() {
                    pids.insert(u32::try_from(pid).unwrap());
                }
            }
        }
        pids
    }
}

impl Drop for Devnet {
    fn drop(&mut self) {
        let pids = self.child_pids();
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            let end = Instant::now() + Duration::from_secs(40);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < end {
                std::thread::sleep(POLL);
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        // A backstop: no child may outlive the test, whatever happened to the devnet.
        for pid in pids.iter().filter(|pid| alive(**pid)) {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        }
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        if std::thread::panicking() {
            eprintln!("--- devnet stderr ---");
            for line in self.stderr.lock().unwrap().iter() {
                eprintln!("{line}");
            }
            print_log_tails(&self.dir.join("logs"));
        }
    }
}

/// Polls `probe` until it returns a value; panics naming `what` after `bound`.
fn wait_for<T>(what: &str, bound: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + bound;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(Instant::now() < end, "timed out after {bound:?} waiting for {what}");
        std::thread::sleep(POLL);
    }
}

/// Polls `probe` until it returns a value or `bound` passes.
fn wait_for_opt<T>(bound: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + bound;
    loop {
        if let Some(value) = probe() {
            return Some(value);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(POLL);
    }
}

/// The hashes in `addr`'s pool (`txpool_content`).
fn pooled(addr: SocketAddr) -> BTreeSet<String> {
    let content = rpc(addr, "txpool_content", &json!([])).unwrap();
    let mut out = BTreeSet::new();
    for subpool in ["pending", "queued"] {
        for txs in content["result"][subpool].as_object().unwrap().values() {
            for tx in txs.as_object().unwrap().values() {
                out.insert(tx["hash"].as_str().unwrap().to_owned());
            }
        }
    }
    out
}

/// Whether `pid` is a live process (not a zombie).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| !stat.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'))
}

/// The last lines of every child's log, for a failed test.
fn print_log_tails(logs: &Path) {
    let Ok(entries) = std::fs::read_dir(logs) else { return };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| Some(e.ok()?.path())).collect();
    paths.sort();
    for path in paths {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        eprintln!("--- {} (last 40 lines) ---", path.display());
        for line in &lines[lines.len().saturating_sub(40)..] {
            eprintln!("{line}");
        }
    }
}

/// One HTTP/1.1 exchange (`Connection: close`); `None` when the node does not answer.
fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, HTTP_TIMEOUT).ok()?;
    stream.set_read_timeout(Some(HTTP_TIMEOUT)).ok()?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(head.as_bytes()).ok()?;
    let mut out = Vec::new();
    stream.read_to_end(&mut out).ok()?;
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let chunked = head.to_ascii_lowercase().contains("transfer-encoding: chunked");
    Some((status, if chunked { dechunk(body) } else { body.to_owned() }))
}

/// `GET path` as JSON, `None` unless the node answers 200.
fn get(addr: SocketAddr, path: &str) -> Option<Value> {
    let (status, body) = http(addr, "GET", path, "")?;
    (status == 200).then(|| serde_json::from_str(&body).ok()).flatten()
}

/// A JSON-RPC call's whole reply.
fn rpc(addr: SocketAddr, method: &str, params: &Value) -> Option<Value> {
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let (_, body) = http(addr, "POST", "/", &call.to_string())?;
    serde_json::from_str(&body).ok()
}

#[test]
fn devnet_goes_through_every_phase_of_the_multi_validator_design() {
    let devnet = Devnet::start();
    let start = Instant::now();
    let phase = |name: &str| eprintln!("{:>6} ms  {name}", start.elapsed().as_millis());
    phase("clusters up and leaders elected");
    clusters_up_and_leaders_elected(&devnet);
    phase("discovery complete");
    discovery_complete(&devnet);
    phase("proposer tagged");
    proposer_tagged(&devnet);
    phase("sources stream to the proposer");
    sources_stream_to_the_proposer(&devnet);
    phase("blocks within limits");
    blocks_within_limits(&devnet);
    phase("leader killed in the proposer cluster");
    leader_killed_in_the_proposer_cluster(&devnet);
    let mut own = TransferGenerator::new(1, 8, OWN_SEED).unwrap();
    phase("follower forwarding and reads");
    follower_forwarding_and_reads(&devnet, &mut own);
    phase("weak vs linearizable reads");
    weak_vs_linearizable_reads(&devnet);
    phase("pools independent");
    pools_independent(&devnet, &mut own);
    phase("stop");
    let mut devnet = devnet;
    let reports = stop_cleanly(&mut devnet);
    phase("preconnected by tags");
    preconnected_by_tags(&devnet, &reports);
    phase("done");
}

/// `mempulse txsource` stops on Ctrl-C and on SIGTERM alike (the path the devnet's stop
/// relies on): it stops sending, closes its stream in order and prints its report after its
/// status lines, and exits 0; everything it sent was answered.
#[test]
fn txsource_stops_on_ctrl_c_or_sigterm_with_its_report() {
    let node = Single::start();
    let addr = node.process.logged_field("commands::run: node started", "stream").unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (seed, signal, ended) in [(1u64, "-INT", "interrupt"), (2, "-TERM", "terminate")] {
        let out = dir.path().join(format!("source-{seed}.jsonl"));
        let mut child = Command::new(BIN)
            .args(["txsource", "--node", &addr, "--source-id", "90", "--seed", &seed.to_string()])
            .args(["--generate", "1000000", "--senders", "256", "--rate", "200"])
            .args(["--status-interval-ms", "50"])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let lines = || -> Vec<Value> {
            std::fs::read_to_string(&out)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect()
        };
        wait_for("two status lines with transactions sent", Duration::from_secs(20), || {
            let lines = lines();
            let sending = lines.iter().filter(|l| l["event"] == "status" && l["sent"] != 0);
            (sending.count() >= 2).then_some(())
        });
        assert!(
            Command::new("kill")
                .args([signal, &child.id().to_string()])
                .status()
                .unwrap()
                .success()
        );
        let status =
            wait_for("txsource to exit", Duration::from_secs(20), || child.try_wait().unwrap());
        assert!(status.success(), "{signal}: {status}");
        let lines = lines();
        let (report, statuses) = lines.split_last().unwrap();
        assert_eq!((&report["event"], &report["ended"]), (&json!("report"), &json!(ended)));
        assert!(statuses.iter().all(|l| l["event"] == "status" && l["open"] == true), "{lines:?}");
        let last_sent = statuses.last().unwrap()["sent"].as_u64().unwrap();
        let sent = report["sent"].as_u64().unwrap();
        assert!(sent >= last_sent && sent > 0, "{report}");
        assert_eq!(report["answered"], true, "{report}");
        assert_eq!(
            (report["accepted"].as_u64(), report["unanswered"].as_u64()),
            (Some(sent), Some(0))
        );
    }
    node.assert_healthy();
}

/// Every cluster has its 3 members answering and a leader they agree on.
fn clusters_up_and_leaders_elected(devnet: &Devnet) -> BTreeMap<u64, u64> {
    devnet.wait("3 clusters of 3 with a leader each", Duration::from_secs(90), || {
        let summary = devnet.summary()?;
        let clusters = summary["clusters"].as_array()?;
        let mut leaders = BTreeMap::new();
        for c in clusters {
            let agreed =
                c["nodes"].as_array()?.iter().all(|n| n["cluster"]["leader"] == c["leader"]);
            if c["up"] != 3 || !c["leader"].is_u64() || !agreed {
                return None;
            }
            leaders.insert(c["validator"].as_u64()?, c["leader"].as_u64()?);
        }
        (leaders.len() == 3).then_some(leaders)
    })
}

/// Every node's catalog lists all nine nodes, each under its own validator.
fn discovery_complete(devnet: &Devnet) {
    let nodes = devnet.nodes();
    let want: BTreeMap<u64, u64> = nodes.iter().map(|(id, (v, _))| (*id, *v)).collect();
    for (id, (_, addr)) in &nodes {
        devnet.wait(
            &format!("node {id}'s catalog to list all 9 nodes"),
            Duration::from_secs(30),
            || {
                let catalog = get(*addr, "/v1/catalog")?;
                let seen: BTreeMap<u64, u64> = catalog["nodes"]
                    .as_array()?
                    .iter()
                    .filter_map(|n| Some((n["node"].as_u64()?, n["validator"].as_u64()?)))
                    .collect();
                (seen == want).then_some(())
            },
        );
    }
}

/// At a height all three clusters report, exactly one carries `proposer`, and every cluster's
/// tags are what `mempulse schedule` prints for the same validators file.
fn proposer_tagged(devnet: &Devnet) {
    let file = devnet.started()["validators_file"].as_str().unwrap().to_owned();
    let out = Command::new(BIN)
        .args([
            "schedule",
            "--validators",
            &file,
            "--from-height",
            "1",
            "--count",
            "2000",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let schedule: BTreeMap<u64, Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|row| (row["height"].as_u64().unwrap(), row))
        .collect();
    let nodes = devnet.nodes();
    let (height, tags) =
        devnet.wait("the 3 clusters at one height", Duration::from_secs(20), || {
            let mut heights = BTreeSet::new();
            let mut tags = BTreeMap::new();
            for v in 1..=3 {
                let (_, (_, addr)) = nodes.iter().find(|(_, (nv, _))| *nv == v)?;
                let status = get(*addr, "/v1/cluster")?;
                let schedule = &status["schedule"];
                heights.insert(schedule["height"].as_u64()?);
                tags.insert(v.to_string(), schedule["tags"].clone());
            }
            (heights.len() == 1).then(|| (heights.pop_first().unwrap(), tags))
        });
    let proposers: Vec<&String> = tags
        .iter()
        .filter(|(_, t)| t.as_array().unwrap().iter().any(|t| t == "proposer"))
        .map(|(v, _)| v)
        .collect();
    assert_eq!(proposers.len(), 1, "height {height}: {tags:?}");
    let row = &schedule[&height];
    assert_eq!(proposers[0], &row["proposer"].to_string(), "height {height}: {row}");
    for (v, t) in &tags {
        assert_eq!(t, &row["tags"][v], "validator {v} at height {height}: {row}");
    }
}

/// SIGTERM: the sources, then the nodes, stop within the devnet's bounds; it says where its
/// files are and leaves no child behind. Each source, stopped by SIGTERM, closed its streams
/// and printed its final report (the devnet's `source_report`, by source index).
fn stop_cleanly(devnet: &mut Devnet) -> BTreeMap<u64, Value> {
    let pids = devnet.child_pids();
    devnet.signal("-TERM");
    let stopped = wait_for("the stopped event", Duration::from_secs(40), || {
        devnet.lines().into_iter().find(|l| l["event"] == "stopped")
    });
    assert_eq!(stopped["reason"], "terminate", "{stopped}");
    assert_eq!(stopped["dir"], devnet.dir.to_str().unwrap(), "{stopped}");
    let killed = stopped["killed_after_bound"].as_array().unwrap();
    assert!(
        killed.iter().all(|k| !k.as_str().unwrap().starts_with("source")),
        "every source stopped on SIGTERM within the bound: {stopped}"
    );
    let mut child = devnet.child.take().unwrap();
    let status =
        wait_for("the devnet to exit", Duration::from_secs(20), || child.try_wait().unwrap());
    assert!(status.success(), "{status}: {:?}", devnet.events("exited"));
    let orphans: Vec<u32> = pids.into_iter().filter(|pid| alive(*pid)).collect();
    assert!(orphans.is_empty(), "children left running: {orphans:?}");
    assert!(devnet.dir.join("logs/node-1.log").exists());
    let mut reports = BTreeMap::new();
    for event in devnet.events("source_report") {
        let k = event["source"].as_u64().unwrap() - 1000;
        assert!(reports.insert(k, event["report"].clone()).is_none(), "reported twice: {event}");
    }
    for (k, subscribe) in SOURCES {
        let report = &reports[&k];
        assert_eq!(report["event"], "report", "source {k}: {report}");
        assert_eq!(report["ended"], "terminate", "source {k} was stopped by SIGTERM: {report}");
        // Every transaction it read went to a matching cluster, and it sent at least what its
        // last status line said.
        let statuses = source_statuses(devnet, k);
        let last = statuses.last().unwrap_or_else(|| panic!("source {k} printed no status"));
        let txs = report["txs"].as_u64().unwrap();
        assert!(txs >= last["txs"].as_u64().unwrap() && txs > 0, "source {k}: {report}");
        assert!(report["sent"].as_u64().unwrap() >= txs, "source {k}: {report}");
        assert_eq!(report["unrouted"], 0, "source {k}: {report}");
        assert_eq!(last["event"], "status");
        // Its streams were answered with tallies; what the nodes accepted is in the report.
        let accepted: u64 =
            report["accepted"].as_object().unwrap().values().filter_map(Value::as_u64).sum();
        assert!(accepted > 0, "source {k} ({subscribe}): {report}");
        assert!(report["streams_answered"].as_u64().unwrap() > 0, "source {k}: {report}");
    }
    reports
}

/// Each pre-connected source's turns (a cluster's height as proposer) found its streams to
/// that cluster already open, opened while the cluster was `proposer-next` or
/// `proposer-soon`; the reactive source's turns found them closed, for every cluster.
fn preconnected_by_tags(devnet: &Devnet, reports: &BTreeMap<u64, Value>) {
    let started = devnet.started();
    for (k, subscribe) in SOURCES {
        let report = &reports[&k];
        let source = &started["sources"][usize::try_from(k - 1).unwrap()];
        assert_eq!(source["subscribe"], subscribe, "{source}");
        let turns = report["turns"].as_array().unwrap();
        let preconnected = subscribe == "default";
        let kind = if preconnected { "preconnected" } else { "reactive" };
        let found: BTreeSet<u64> = turns
            .iter()
            .filter(|t| t["preconnected"] == preconnected)
            .filter_map(|t| t["validator"].as_u64())
            .collect();
        assert_eq!(found, BTreeSet::from([1, 2, 3]), "source {k} ({subscribe}): {report}");
        let count = report["tag_to_first_sent"][kind]["count"].as_u64().unwrap();
        assert!(count > 0, "source {k} ({subscribe}): {report}");
    }
}

/// The members of validator `v`, ascending.
fn members(devnet: &Devnet, v: u64) -> Vec<(u64, SocketAddr)> {
    devnet.nodes().into_iter().filter(|(_, (nv, _))| *nv == v).map(|(id, (_, a))| (id, a)).collect()
}

/// The leader of validator `v`'s cluster and one of its followers, as the members say.
fn leader_and_follower(devnet: &Devnet, v: u64) -> (SocketAddr, SocketAddr) {
    let members = members(devnet, v);
    devnet.wait(&format!("validator {v}'s leader"), Duration::from_secs(20), || {
        let leader = get(members[0].1, "/v1/cluster")?["leader"].as_u64()?;
        let leader_addr = members.iter().find(|(id, _)| *id == leader)?.1;
        let follower = members.iter().find(|(id, _)| *id != leader)?.1;
        Some((leader_addr, follower))
    })
}

/// `eth_sendRawTransaction` of the next generated transfer through `addr`; its hash.
fn send(addr: SocketAddr, own: &mut TransferGenerator) -> String {
    let raw = format!("0x{}", hex::encode(own.next_tx().unwrap()));
    let reply = rpc(addr, "eth_sendRawTransaction", &json!([raw])).unwrap();
    reply["result"].as_str().unwrap_or_else(|| panic!("not admitted: {reply}")).to_owned()
}

/// The kinds of the facts `addr`'s lifecycle index holds for `hash` (empty when unknown).
fn lifecycle(addr: SocketAddr, hash: &str) -> Vec<String> {
    get(addr, &format!("/v1/txs/{hash}"))
        .and_then(|l| l["events"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|e| e["kind"].as_str().map(str::to_owned))
        .collect()
}

/// A write through a follower is forwarded to its leader and answered with the admission;
/// every member then reads the same replicated fact (a weak, local read each).
fn follower_forwarding_and_reads(devnet: &Devnet, own: &mut TransferGenerator) {
    let (_, follower) = leader_and_follower(devnet, 1);
    let hash = send(follower, own);
    let mut indexes = BTreeSet::new();
    for (id, addr) in members(devnet, 1) {
        let index =
            devnet.wait(&format!("node {id} to read {hash}"), Duration::from_secs(10), || {
                let lifecycle = get(addr, &format!("/v1/txs/{hash}"))?;
                let events = lifecycle["events"].as_array()?.clone();
                let admitted = events.iter().find(|e| e["kind"] == "tx_admitted")?;
                admitted["raft_index"].as_u64()
            });
        indexes.insert(index);
    }
    assert_eq!(indexes.len(), 1, "one replicated admission, read at every member: {indexes:?}");
}

/// Writes acknowledged by a cluster's leader are in a linearizable read on a follower at
/// once, over REST and JSON-RPC (no retry: the follower waits for the leader's read index);
/// a weak read there is the follower's own state, which has them once it applied them. The
/// transactions leave a nonce gap, so they stay queued: no block takes them out of the pool
/// between the write and the reads.
fn weak_vs_linearizable_reads(devnet: &Devnet) {
    const WRITES: u32 = 5;
    let (leader, follower) = leader_and_follower(devnet, 2);
    let mut gaps = TransferGenerator::new(1, WRITES, GAP_SEED).unwrap();
    // Nonce 0 of every sender, never sent.
    for _ in 0..WRITES {
        gaps.next_tx().unwrap();
    }
    for _ in 0..WRITES {
        let hash = send(leader, &mut gaps);
        let path = format!("/v1/pool/txs/{hash}?consistency=linearizable");
        let read = get(follower, &path).unwrap_or_else(|| panic!("{path} on a follower"));
        assert_eq!((&read["hash"], &read["subpool"]), (&json!(hash), &json!("queued")), "{read}");
        assert_eq!(read["consistency"], "linearizable", "{read}");
        let params = json!([hash, {"consistency": "linearizable"}]);
        let reply = rpc(follower, "eth_getTransactionByHash", &params).unwrap();
        assert_eq!(reply["result"]["hash"], hash, "{reply}");
        devnet.wait(
            &format!("a weak read of {hash} on the follower"),
            Duration::from_secs(10),
            || {
                let weak = get(follower, &format!("/v1/pool/txs/{hash}?consistency=weak"))?;
                (weak["consistency"] == "weak" && weak["subpool"] == "queued").then_some(())
            },
        );
    }
    let status = get(follower, "/v1/pool?consistency=linearizable").unwrap();
    assert!(status["queued"].as_u64().unwrap() >= u64::from(WRITES), "{status}");
}

/// A transaction sent to one cluster is in that cluster's pool only.
fn pools_independent(devnet: &Devnet, own: &mut TransferGenerator) {
    let mut sent = BTreeMap::new();
    for v in 1..=3 {
        let (leader, _) = leader_and_follower(devnet, v);
        sent.insert(v, send(leader, own));
    }
    for (v, hash) in &sent {
        for (id, addr) in members(devnet, *v) {
            devnet.wait(
                &format!("node {id} (v{v}) to know {hash}"),
                Duration::from_secs(10),
                || lifecycle(addr, hash).iter().any(|k| k == "tx_admitted").then_some(()),
            );
        }
        for other in (1..=3).filter(|o| o != v) {
            for (id, addr) in members(devnet, other) {
                let kinds = lifecycle(addr, hash);
                assert!(kinds.is_empty(), "node {id} (v{other}) knows v{v}'s {hash}: {kinds:?}");
            }
        }
    }
}

/// The facts of `kinds` at `addr`, every page.
fn facts(addr: SocketAddr, kinds: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let page = get(addr, &format!("/v1/events?kinds={kinds}&after={after}&limit=10000"))
            .unwrap_or_else(|| panic!("{addr} did not answer /v1/events"));
        let events = page["events"].as_array().unwrap().clone();
        let next = page["next"].as_u64().unwrap();
        if events.is_empty() || next == after {
            return out;
        }
        out.extend(events);
        after = next;
    }
}

/// Blocks are built by the proposer's cluster within the byte and gas limits (the sources
/// fill some to the gas limit) and committed by every other cluster with the same
/// transactions.
fn blocks_within_limits(devnet: &Devnet) {
    let leaders: BTreeMap<u64, SocketAddr> =
        (1..=3).map(|v| (v, leader_and_follower(devnet, v).0)).collect();
    let (full, height) =
        devnet.wait("a block filled to the gas limit", Duration::from_secs(40), || {
            leaders.values().flat_map(|a| facts(*a, "block_proposed")).find_map(|b| {
                let gas = b["total_gas"].as_u64()?;
                (gas + TRANSFER_GAS > BLOCK_GAS_LIMIT).then(|| (b.clone(), b["height"].as_u64()))
            })
        });
    let height = height.unwrap();
    for (v, addr) in &leaders {
        for block in facts(*addr, "block_proposed") {
            let (gas, bytes) =
                (block["total_gas"].as_u64().unwrap(), block["total_bytes"].as_u64().unwrap());
            assert!(gas <= BLOCK_GAS_LIMIT && bytes <= BLOCK_BYTES_LIMIT, "v{v} built {block}");
            let txs = u64::try_from(block["txs"].as_array().unwrap().len()).unwrap();
            assert_eq!(gas, txs * TRANSFER_GAS, "v{v}: {block}");
        }
        let committed = devnet.wait(
            &format!("v{v} to commit height {height}"),
            Duration::from_secs(20),
            || facts(*addr, "block_committed").into_iter().find(|b| b["height"] == height),
        );
        assert_eq!(committed["txs"], full["txs"], "v{v} committed another block at {height}");
    }
}

/// The hashes a node's own event log (read offline) says it admitted.
fn admitted_in_wal(dir: &Path) -> BTreeSet<String> {
    let out = Command::new(BIN)
        .args(["wal", "dump", "--limit", "10000000"])
        .arg(dir)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "wal dump {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["kind"] == "tx_admitted")
        .filter_map(|e| e["tx"]["hash"].as_str().map(str::to_owned))
        .collect()
}

/// `kill -USR1`: the devnet kills the proposer cluster's leader; the cluster elects another,
/// the sources keep streaming, and every transaction the killed leader admitted is, at the
/// new leader, still pooled or included in a committed block (or ended by a recorded fact).
fn leader_killed_in_the_proposer_cluster(devnet: &Devnet) {
    let before = devnet.events("killed").len();
    let lines_before: Vec<usize> =
        DEFAULT_SOURCES.iter().map(|k| source_streams(devnet, *k).len()).collect();
    devnet.signal("-USR1");
    let killed = devnet.wait("the leader kill", Duration::from_secs(10), || {
        devnet.events("killed").get(before).cloned()
    });
    assert_eq!(killed["target"], "leader", "{killed}");
    let (node, v) = (killed["node"].as_u64().unwrap(), killed["validator"].as_u64().unwrap());
    let survivors: Vec<(u64, SocketAddr)> =
        members(devnet, v).into_iter().filter(|(id, _)| *id != node).collect();
    let new_leader = devnet.wait(
        &format!("v{v} to elect a leader other than {node}"),
        Duration::from_secs(20),
        || {
            let status = get(survivors[0].1, "/v1/cluster")?;
            let leader = status["leader"].as_u64().filter(|l| *l != node)?;
            survivors.iter().find(|(id, _)| *id == leader).copied()
        },
    );
    streams_survive(devnet, v, &survivors, &lines_before);
    no_admission_lost(devnet, node, new_leader.1);
    devnet.wait(
        &format!("v{v} to admit again under node {}", new_leader.0),
        Duration::from_secs(20),
        || {
            let summary = devnet.summary()?;
            let c = summary["clusters"].as_array()?.iter().find(|c| c["validator"] == v)?.clone();
            (c["leader"] == new_leader.0 && c["tx_per_s"].as_u64()? > 0).then_some(())
        },
    );
    let restarted =
        devnet.wait(&format!("node {node} to come back"), Duration::from_secs(30), || {
            devnet.events("restarted").into_iter().find(|r| r["node"] == node)
        });
    assert!(restarted["pid"].is_u64());
    devnet.wait(&format!("v{v} to have its 3 members again"), Duration::from_secs(30), || {
        let summary = devnet.summary()?;
        let cluster = summary["clusters"].as_array()?.iter().find(|c| c["validator"] == v)?.clone();
        (cluster["up"] == 3).then_some(())
    });
}

/// Every status line source `k` printed so far (its `--status-interval-ms` JSON lines).
fn source_statuses(devnet: &Devnet, k: u64) -> Vec<Value> {
    let out = std::fs::read_to_string(devnet.dir.join(format!("logs/source-{k}.jsonl")))
        .unwrap_or_default();
    out.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["event"] == "status")
        .collect()
}

/// The (node, validator) pairs source `k` had a stream open to, one set per status line.
fn source_streams(devnet: &Devnet, k: u64) -> Vec<BTreeSet<(u64, u64)>> {
    source_statuses(devnet, k)
        .iter()
        .map(|status| {
            status["nodes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|n| n["open"] == true)
                .filter_map(|n| Some((n["node"].as_u64()?, n["validator"].as_u64()?)))
                .collect()
        })
        .collect()
}

/// The validator whose cluster carries `proposer`, as its leader says.
fn proposer(devnet: &Devnet) -> u64 {
    devnet.wait("a cluster tagged proposer", Duration::from_secs(10), || {
        (1..=3).find(|v| {
            let (leader, _) = leader_and_follower(devnet, *v);
            get(leader, "/v1/cluster").is_some_and(|c| {
                c["schedule"]["tags"].as_array().is_some_and(|t| t.iter().any(|t| t == "proposer"))
            })
        })
    })
}

/// The pre-connected sources hold a stream to every member of the proposer cluster (with 3
/// validators the default predicate matches every cluster, so to all 9 nodes); the reactive
/// one to the 3 members of one cluster at a time (the devnet's summary shows what their
/// status lines say); and the nodes admit what they stream.
fn sources_stream_to_the_proposer(devnet: &Devnet) {
    let all: BTreeSet<(u64, u64)> = devnet.nodes().iter().map(|(id, (v, _))| (*id, *v)).collect();
    devnet.wait("source 3 to stream to one whole cluster", Duration::from_secs(30), || {
        let open = source_streams(devnet, 3).last()?.clone();
        let validators: BTreeSet<u64> = open.iter().map(|(_, v)| *v).collect();
        let v = *validators.first()?;
        let cluster: BTreeSet<(u64, u64)> =
            all.iter().filter(|(_, nv)| *nv == v).copied().collect();
        (validators.len() == 1 && open == cluster).then_some(())
    });
    devnet.wait("the summary to show the sources' status", Duration::from_secs(10), || {
        let summary = devnet.summary()?;
        let sources = summary["sources"].as_array()?;
        let shown =
            sources.iter().all(|s| s["status"]["event"] == "status" && s["running"] == true);
        (sources.len() == 3 && shown).then_some(())
    });
    for k in DEFAULT_SOURCES {
        devnet.wait(
            &format!("source {k} to stream to all 9 nodes"),
            Duration::from_secs(30),
            || source_streams(devnet, k).last().is_some_and(|open| *open == all).then_some(()),
        );
    }
    let v = proposer(devnet);
    devnet.wait(
        &format!("the proposer cluster v{v} to admit streamed transactions"),
        Duration::from_secs(20),
        || {
            let summary = devnet.summary()?;
            let cluster =
                summary["clusters"].as_array()?.iter().find(|c| c["validator"] == v)?.clone();
            (cluster["tx_per_s"].as_u64()? > 0 && cluster["streams_open"].as_u64()? >= 6)
                .then_some(())
        },
    );
}

/// The pre-connected sources' streams to the surviving members of validator `v` stay open
/// through the kill (every status line each source prints after it), and the sources keep
/// running.
fn streams_survive(
    devnet: &Devnet,
    v: u64,
    survivors: &[(u64, SocketAddr)],
    lines_before: &[usize],
) {
    for (k, seen) in DEFAULT_SOURCES.into_iter().zip(lines_before.iter().copied()) {
        let lines = devnet.wait(
            &format!("source {k} to print its streams twice more"),
            Duration::from_secs(10),
            || {
                let lines = source_streams(devnet, k);
                (lines.len() >= seen + 2).then_some(lines)
            },
        );
        for open in &lines[seen..] {
            for (id, _) in survivors {
                assert!(
                    open.contains(&(*id, v)),
                    "source {k} lost its stream to node {id}: {open:?}"
                );
            }
        }
        assert!(
            devnet.summary().unwrap()["sources"][usize::try_from(k - 1).unwrap()]["running"]
                == true
        );
    }
}

/// Every transaction the killed `node` admitted (its own event log, read offline) is known
/// to the new leader at `addr` and still pooled there or ended by a recorded fact (included
/// in a committed block, evicted, replaced).
fn no_admission_lost(devnet: &Devnet, node: u64, addr: SocketAddr) {
    let admitted = admitted_in_wal(&devnet.dir.join(format!("node-{node}/events")));
    assert!(!admitted.is_empty(), "node {node} admitted nothing before its kill");
    devnet.wait(
        "the new leader to hold every admission of the old one",
        Duration::from_secs(20),
        || {
            let known: BTreeSet<String> = facts(addr, "tx_admitted")
                .iter()
                .filter_map(|e| e["tx"]["hash"].as_str().map(str::to_owned))
                .collect();
            admitted.is_subset(&known).then_some(())
        },
    );
    // The pool first, then the facts: a transaction that leaves the pool in between has its
    // fact in the second read (retried while a fact may still be on its way to the log).
    let mut lost = Vec::new();
    let accounted = wait_for_opt(Duration::from_secs(10), || {
        let pooled = pooled(addr);
        let ended: BTreeSet<String> = facts(addr, "tx_included,tx_evicted,tx_replaced")
            .iter()
            .filter_map(|e| e["hash"].as_str().or_else(|| e["old"].as_str()).map(str::to_owned))
            .collect();
        lost = admitted
            .iter()
            .filter(|h| !ended.contains(*h) && !pooled.contains(*h))
            .cloned()
            .collect();
        lost.is_empty().then_some(())
    });
    assert!(accounted.is_some(), "{} of {} admissions lost: {lost:?}", lost.len(), admitted.len());
}
