//! `kill -9` of the leader under write load, repeated (issue 4): three real `mempulse` processes
//! take signed Ethereum transactions over JSON-RPC on every node while the current leader is
//! killed with SIGKILL at seeded moments and restarted, `MEMPULSE_FAILOVER_KILLS` times (20 by
//! default; `MEMPULSE_FAILOVER_SEED` picks the moments). After each kill the two survivors must
//! elect a new leader that acknowledges a write sent after its election. At the end every
//! acknowledged transaction is in every node's pool exactly once, the three event logs hold the
//! same replicated facts (one admission per acknowledged transaction), and `mempulse replay` of
//! the three logs gives equal digests at equal Raft indexes.
//!
//! The helpers (a non-panicking HTTP client, the cluster view over `/v1/cluster`, signed
//! transactions, reading an event log, replay digests) are shared with `wiped_node.rs`.

use std::{
    collections::{BTreeMap, BTreeSet},
    io::{Read as _, Write as _},
    net::{SocketAddr, TcpStream},
    ops::ControlFlow,
    path::Path,
    process::Command,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use mempulse_net::{
    CheckConfig, decode_tx,
    test_utils::{TxSpec, signed_tx},
};
use mempulse_primitives::{Event, EventKind, Origin, TxHash, TxType};
use serde_json::{Value, json};

use crate::{
    cluster::Cluster,
    support::{BIN, wait_until},
};

/// Kills in CI; `MEMPULSE_FAILOVER_KILLS` overrides it.
const KILLS_DEFAULT: u64 = 20;
/// Seed of the kill moments and the clients' node choices; `MEMPULSE_FAILOVER_SEED` overrides.
const SEED_DEFAULT: u64 = 0x6d70_6b69_6c6c_0004;
/// Client threads.
const CLIENTS: u32 = 3;
/// Senders each client owns; a sender sends its nonces in order, one at a time.
const SENDERS_PER_CLIENT: u32 = 200;
/// Nonces per sender: the mempool's default `max_txs_per_sender`, so none is refused for that.
const NONCES_PER_SENDER: u64 = 16;
/// Transactions the clients may send in all: below the pool's default `max_txs` (10 000), so no
/// acknowledged transaction is ever evicted, and below `txpool_content`'s listing limit.
const SENDS_MAX: u64 = 9_000;
/// Sends allowed per kill round (fewer when many kills share [`SENDS_MAX`]).
const SENDS_PER_ROUND: u64 = 300;
/// Pause between two sends of one client: paces the workload (never used to synchronize).
const SEND_PACE: Duration = Duration::from_millis(10);
/// Bound of one HTTP exchange; a node killed mid-request is given up on after it.
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_secs(3);
/// The kill lands this long after the round starts (seeded, uniform), so it hits the writes at
/// varied points: batching, replication, apply, answer.
const KILL_OFFSET_MS: (u64, u64) = (10, 500);

/// A small seeded generator (SplitMix64): the kill moments and node choices of a run.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) const fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) const fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `low..high` (`high > low`).
    pub(crate) const fn range(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low)
    }
}

/// One HTTP/1.1 exchange with `Connection: close`, bounded by `timeout`: (status, body), or
/// `None` when the node cannot be reached or does not answer in time (it may be dead).
pub(crate) fn try_http_text(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
    timeout: Duration,
) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    stream.set_write_timeout(Some(timeout)).ok()?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).ok()?;
    stream.write_all(body.as_bytes()).ok()?;
    let mut out = Vec::new();
    stream.read_to_end(&mut out).ok()?;
    let text = String::from_utf8_lossy(&out);
    let status = text.split(' ').nth(1)?.parse().ok()?;
    Some((status, text.split_once("\r\n\r\n")?.1.to_owned()))
}

/// [`try_http_text`] with a JSON body (`None` also when the body is not JSON).
pub(crate) fn try_http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
    timeout: Duration,
) -> Option<(u16, Value)> {
    let (status, text) = try_http_text(addr, method, path, body, timeout)?;
    Some((status, serde_json::from_str(&text).ok()?))
}

/// A node's `GET /v1/cluster`, or `None` when it does not answer.
pub(crate) fn cluster_view(http: SocketAddr) -> Option<Value> {
    let (status, view) = try_http(http, "GET", "/v1/cluster", "", CALL_TIMEOUT)?;
    (status == 200).then_some(view)
}

/// Waits until every node in `nodes` (id, HTTP address) reports the same leader and term, that
/// leader is one of them and says it leads; returns the leader.
pub(crate) fn http_leader(nodes: &[(u64, SocketAddr)]) -> u64 {
    let ids: Vec<u64> = nodes.iter().map(|(id, _)| *id).collect();
    wait_until(&format!("nodes {ids:?} to agree on a leader over HTTP"), || {
        let mut seen = None;
        for (id, http) in nodes {
            let view = cluster_view(*http)?;
            let (leader, term) = (view["leader"].as_u64()?, view["term"].as_u64()?);
            let expected = if leader == *id { "leader" } else { "follower" };
            if view["role"] != expected || seen.is_some_and(|s| s != (leader, term)) {
                return None;
            }
            seen = Some((leader, term));
        }
        seen.map(|(leader, _)| leader).filter(|leader| ids.contains(leader))
    })
}

/// Waits until every node in `nodes` has applied the same index as it has committed, all
/// equal; returns that index.
pub(crate) fn wait_applied_equal(nodes: &[SocketAddr]) -> u64 {
    wait_until("every node to apply the same index", || {
        let mut seen = None;
        for http in nodes {
            let view = cluster_view(*http)?;
            let applied = view["applied_index"].as_u64()?;
            if view["commit_index"].as_u64()? != applied || seen.is_some_and(|s| s != applied) {
                return None;
            }
            seen = Some(applied);
        }
        seen
    })
}

/// The signed transaction of `(sender, nonce)` and its hash (as the node computes it).
pub(crate) fn transaction(sender: u32, nonce: u64) -> (String, TxHash) {
    // Transfers of the three fee-market types (blob and 7702 types bring rules of their own).
    let tx_type = [TxType::DynamicFee, TxType::Legacy, TxType::AccessList][(nonce % 3) as usize];
    let raw = signed_tx(&TxSpec::transfer(tx_type, sender, nonce)).unwrap();
    let hash = decode_tx(raw.clone(), &CheckConfig::default()).unwrap().hash;
    let mut hex = String::with_capacity(2 + raw.len() * 2);
    hex.push_str("0x");
    for byte in raw.iter() {
        hex.push_str(&format!("{byte:02x}"));
    }
    (hex, hash)
}

/// Sends `raw` with `eth_sendRawTransaction`; `true` when the node acknowledged it (answered
/// with its hash).
pub(crate) fn send_raw(http: SocketAddr, raw: &str, hash: TxHash) -> bool {
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "eth_sendRawTransaction",
                      "params": [raw]});
    try_http(http, "POST", "/", &call.to_string(), CALL_TIMEOUT)
        .is_some_and(|(status, reply)| status == 200 && reply["result"] == hash.to_string())
}

/// Every transaction hash in a node's pool (`txpool_content`, pending and queued), in listing
/// order (a hash listed twice appears twice).
pub(crate) fn pool_hashes(http: SocketAddr) -> Vec<TxHash> {
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "txpool_content", "params": []});
    let (status, reply) = try_http(http, "POST", "/", &call.to_string(), CALL_TIMEOUT).unwrap();
    assert_eq!(status, 200, "txpool_content: {reply}");
    let mut hashes = Vec::new();
    for subpool in ["pending", "queued"] {
        for nonces in reply["result"][subpool].as_object().unwrap().values() {
            for tx in nonces.as_object().unwrap().values() {
                hashes.push(TxHash::from_hex(tx["hash"].as_str().unwrap()).unwrap());
            }
        }
    }
    hashes
}

/// The replicated events of the event log in `dir`, in log order, encoded.
pub(crate) fn replicated_events(dir: &Path) -> Vec<Vec<u8>> {
    let reader = mempulse_wal::open_reader(dir).unwrap();
    let mut events = Vec::new();
    reader
        .scan_with(reader.first_seq(), usize::MAX, |_, payload| {
            let event = Event::from_bytes(payload).unwrap();
            if matches!(event.origin, Origin::Replicated { .. }) {
                events.push(payload.to_vec());
            }
            ControlFlow::Continue(())
        })
        .unwrap();
    events
}

/// How many replicated `tx_admitted` facts each transaction has in `events`.
pub(crate) fn admissions(events: &[Vec<u8>]) -> BTreeMap<TxHash, usize> {
    let mut counts = BTreeMap::new();
    for bytes in events {
        if let EventKind::TxAdmitted { tx, .. } = Event::from_bytes(bytes).unwrap().kind {
            *counts.entry(tx.hash).or_default() += 1;
        }
    }
    counts
}

/// `mempulse replay --wal DIR --json --every 1`: the sealed digest at each Raft index the
/// digest points report, and the summary's open `(raft index, digest)`.
pub(crate) fn replay_digests(dir: &Path) -> (BTreeMap<u64, String>, (u64, String)) {
    let out = Command::new(BIN)
        .args(["replay", "--json", "--every", "1", "--wal"])
        .arg(dir)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "replay of {}: {stderr}", dir.display());
    let mut sealed = BTreeMap::new();
    let mut open = None;
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let point: Value = serde_json::from_str(line).unwrap();
        if point["summary"] == true {
            let digest = point["open_digest"].as_str().unwrap().to_owned();
            open = Some((point["open_raft_index"].as_u64().unwrap(), digest));
        } else {
            let (index, digest) = (point["raft_index"].as_u64().unwrap(), &point["digest"]);
            let previous = sealed.insert(index, digest.as_str().unwrap().to_owned());
            assert!(previous.is_none_or(|p| p == digest.as_str().unwrap()), "{line}");
        }
    }
    (sealed, open.unwrap())
}

/// An acknowledged write: its hash and when its request was sent.
struct Ack {
    hash: TxHash,
    sent_at: Instant,
}

/// The client threads and what they saw.
struct Load {
    stop: Arc<AtomicBool>,
    /// Sends allowed so far (raised round by round).
    quota: Arc<AtomicU64>,
    sent: Arc<AtomicU64>,
    acks: Arc<Mutex<Vec<Ack>>>,
    clients: Vec<JoinHandle<()>>,
}

impl Load {
    /// Starts [`CLIENTS`] threads sending to random nodes of `nodes`.
    fn start(nodes: &[SocketAddr], seed: u64) -> Self {
        let load = Self {
            stop: Arc::default(),
            quota: Arc::default(),
            sent: Arc::default(),
            acks: Arc::default(),
            clients: Vec::new(),
        };
        let clients = (0..CLIENTS)
            .map(|client| {
                let (stop, quota, sent, acks) = (
                    Arc::clone(&load.stop),
                    Arc::clone(&load.quota),
                    Arc::clone(&load.sent),
                    Arc::clone(&load.acks),
                );
                let nodes = nodes.to_vec();
                let mut rng = Rng::new(seed ^ (u64::from(client) + 1).wrapping_mul(0x5851_f42d));
                std::thread::spawn(move || {
                    let first = client * SENDERS_PER_CLIENT;
                    let writes = (first..first + SENDERS_PER_CLIENT)
                        .flat_map(|sender| (0..NONCES_PER_SENDER).map(move |n| (sender, n)));
                    for (sender, nonce) in writes {
                        // Wait (paced) for room in the round's quota.
                        while sent.fetch_add(1, Ordering::SeqCst) >= quota.load(Ordering::SeqCst) {
                            sent.fetch_sub(1, Ordering::SeqCst);
                            if stop.load(Ordering::SeqCst) {
                                return;
                            }
                            std::thread::sleep(SEND_PACE);
                        }
                        if stop.load(Ordering::SeqCst) {
                            return;
                        }
                        let (raw, hash) = transaction(sender, nonce);
                        let pick = rng.next() % nodes.len() as u64;
                        let node = nodes[usize::try_from(pick).unwrap()];
                        let sent_at = Instant::now();
                        if send_raw(node, &raw, hash) {
                            acks.lock().unwrap().push(Ack { hash, sent_at });
                        }
                        std::thread::sleep(SEND_PACE);
                    }
                })
            })
            .collect();
        Self { clients, ..load }
    }

    fn allow(&self, sends: u64) {
        self.quota.store(sends, Ordering::SeqCst);
    }

    /// Whether a write sent after `since` was acknowledged.
    fn acked_since(&self, since: Instant) -> bool {
        self.acks.lock().unwrap().iter().rev().any(|ack| ack.sent_at > since)
    }

    /// Stops the clients (each finishes its request in flight) and returns the acknowledged
    /// hashes and how many were sent.
    fn stop(self) -> (Vec<TxHash>, u64) {
        self.stop.store(true, Ordering::SeqCst);
        for client in self.clients {
            client.join().unwrap();
        }
        let acks = std::mem::take(&mut *self.acks.lock().unwrap());
        (acks.into_iter().map(|a| a.hash).collect(), self.sent.load(Ordering::SeqCst))
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().map_or(default, |v| {
        let v = v.trim();
        let parsed = match v.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16),
            None => v.parse(),
        };
        parsed.unwrap_or_else(|e| panic!("{name}={v}: {e}"))
    })
}

/// One round: kill -9 the leader `offset` into the round, wait until the survivors elect a
/// leader that acknowledges a write sent after its election, restart the killed node and let
/// it catch up. Returns (killed, new leader, time from the kill to that acknowledgement).
fn kill_round(
    cluster: &mut Cluster,
    load: &Load,
    nodes: &[(u64, SocketAddr)],
    offset: Duration,
) -> (u64, u64, Duration) {
    let round_started = Instant::now();
    let leader = http_leader(nodes);
    // The kill's moment under load (the workload runs meanwhile; nothing waits on it).
    std::thread::sleep(offset);
    cluster.node(leader).signal("-KILL");
    let killed_at = Instant::now();
    assert!(!cluster.node(leader).wait_exit(), "a SIGKILLed process cannot exit 0");
    let survivors: Vec<(u64, SocketAddr)> =
        nodes.iter().copied().filter(|(id, _)| *id != leader).collect();
    let new_leader = http_leader(&survivors);
    let elected = Instant::now();
    wait_until("the new leader to acknowledge a write sent after its election", || {
        load.acked_since(elected).then_some(())
    });
    let failover = killed_at.elapsed();
    let node = cluster.node(leader);
    node.start();
    node.process.as_ref().unwrap().wait_logged("commands::run: node started");
    let http = node.http;
    let leader_http = nodes.iter().find(|(id, _)| *id == new_leader).unwrap().1;
    let committed = cluster_view(leader_http).unwrap()["commit_index"].as_u64().unwrap();
    wait_until("the restarted node to apply what the leader had committed", || {
        let applied = cluster_view(http)?["applied_index"].as_u64()?;
        (applied >= committed).then_some(())
    });
    eprintln!("  round {:?}", round_started.elapsed());
    (leader, new_leader, failover)
}

/// Every acknowledged write is in every node's pool, exactly once.
fn check_pools(nodes: &[(u64, SocketAddr)], acked: &BTreeSet<TxHash>) {
    for (id, http) in nodes {
        let pool = pool_hashes(*http);
        let listed: BTreeSet<TxHash> = pool.iter().copied().collect();
        assert_eq!(listed.len(), pool.len(), "node {id} lists a transaction twice");
        let missing: Vec<&TxHash> = acked.difference(&listed).collect();
        assert!(missing.is_empty(), "node {id} lost {} acknowledged writes: {missing:?}", {
            missing.len()
        });
    }
}

/// The stopped nodes' event logs hold the same replicated facts, with one admission per
/// acknowledged write.
fn check_logs(cluster: &Cluster, acked: &BTreeSet<TxHash>) {
    let logs: Vec<Vec<Vec<u8>>> =
        cluster.nodes.iter().map(|n| replicated_events(&n.data.join("events"))).collect();
    let counts = admissions(&logs[0]);
    for hash in acked {
        assert_eq!(counts.get(hash), Some(&1), "{hash}: admissions in node 1's log");
    }
    for (node, log) in cluster.nodes.iter().zip(&logs).skip(1) {
        assert_eq!(admissions(log), counts, "node {}: other admissions than node 1", node.id);
        assert!(log == &logs[0], "node {}: other replicated facts than node 1", node.id);
    }
}

/// Replays of the three logs: equal digests at every Raft index all three sealed, and the same
/// open digest at the end.
pub(crate) fn check_replays(cluster: &Cluster) {
    let replays: Vec<_> =
        cluster.nodes.iter().map(|n| replay_digests(&n.data.join("events"))).collect();
    let common: Vec<u64> = replays[0]
        .0
        .keys()
        .copied()
        .filter(|index| replays.iter().all(|(sealed, _)| sealed.contains_key(index)))
        .collect();
    let highest = *common.last().expect("no Raft index sealed by all three replays");
    for index in &common {
        let digests: BTreeSet<&String> = replays.iter().map(|(sealed, _)| &sealed[index]).collect();
        assert_eq!(digests.len(), 1, "digests differ at raft index {index}: {digests:?}");
    }
    let opens: BTreeSet<&(u64, String)> = replays.iter().map(|(_, open)| open).collect();
    assert_eq!(opens.len(), 1, "the replays end on different open digests: {opens:?}");
    eprintln!(
        "replays agree at {} sealed raft indexes (highest {highest}) and on the open digest \
         {opens:?}",
        common.len()
    );
}

#[test]
fn kill_9_of_the_leader_under_write_load_loses_no_acknowledged_write() {
    let kills = env_u64("MEMPULSE_FAILOVER_KILLS", KILLS_DEFAULT);
    let seed = env_u64("MEMPULSE_FAILOVER_SEED", SEED_DEFAULT);
    eprintln!("failover under load: {kills} kills, seed {seed:#x}");
    let started = Instant::now();
    let mut cluster = Cluster::start();
    let nodes: Vec<(u64, SocketAddr)> = cluster.nodes.iter().map(|n| (n.id, n.http)).collect();
    let https: Vec<SocketAddr> = nodes.iter().map(|(_, http)| *http).collect();
    http_leader(&nodes);
    let load = Load::start(&https, seed);
    let per_round = SENDS_PER_ROUND.min(SENDS_MAX / (kills + 2));
    let mut rng = Rng::new(seed);
    for round in 0..kills {
        load.allow(per_round * (round + 2));
        let offset = Duration::from_millis(rng.range(KILL_OFFSET_MS.0, KILL_OFFSET_MS.1));
        let (killed, leader, failover) = kill_round(&mut cluster, &load, &nodes, offset);
        eprintln!(
            "kill {}/{kills}: leader {killed} at +{offset:?}, new leader {leader} acknowledged \
             a write {failover:?} after the kill",
            round + 1
        );
    }
    let (acked, sent) = load.stop();
    let applied = wait_applied_equal(&https);
    eprintln!(
        "{} of {sent} writes acknowledged; all nodes applied index {applied}; {:?} in all",
        acked.len(),
        started.elapsed()
    );
    assert!(acked.len() as u64 >= kills, "too few acknowledged writes: {}", acked.len());
    let acked_set: BTreeSet<TxHash> = acked.iter().copied().collect();
    assert_eq!(acked_set.len(), acked.len(), "a hash was acknowledged twice");
    check_pools(&nodes, &acked_set);
    for node in &mut cluster.nodes {
        node.signal("-TERM");
    }
    for node in &mut cluster.nodes {
        assert!(node.wait_exit(), "node {} did not stop cleanly", node.id);
    }
    check_logs(&cluster, &acked_set);
    check_replays(&cluster);
}
