//! Blocks across validator clusters with real processes: two validators of one node each,
//! both producing. Blocks alternate by the schedule, each is committed on both clusters (the
//! included transactions leave both pools, at the same height), and once one validator's node
//! is killed its slots are missed and the next proposer takes them over.

use std::{collections::BTreeMap, net::SocketAddr, path::Path};

use mempulse_primitives::{Height, TxHash, ValidatorId};
use mempulse_schedule::{Round, Schedule, ValidatorsConfig};

use crate::{
    failover_load::{CALL_TIMEOUT, pool_hashes, send_raw, transaction, try_http},
    support::{LOG_SEGMENT_BYTES, Process, SEGMENT_BYTES, free_ports, wait_until},
};

/// Slot duration of the test's validators file.
const SLOT_MS: u64 = 400;
/// Sender keys of this test (distinct from the other tests').
const SENDER: u32 = 7_000;
/// Transactions sent to both clusters.
const TXS: u64 = 6;

/// One validator's one node.
struct Node {
    process: Process,
    http: SocketAddr,
}

/// The validators file: validators 1 and 2 (equal power), node `v` in validator `v`.
fn validators_file(raft: [u16; 2], stream: [u16; 2]) -> String {
    let mut text = format!("initial-height = 1\nslot-duration-ms = {SLOT_MS}\n");
    for v in 0..2 {
        let id = v + 1;
        text.push_str(&format!(
            "[[validators]]\nid = {id}\naddress = \"0x00000000000000000000000000000000000000b{id}\"\n\
             power = 1\nnodes = [\"{id}@127.0.0.1:{}\"]\nstreams = [\"{id}@127.0.0.1:{}\"]\n",
            raft[v], stream[v]
        ));
    }
    text
}

fn start(dir: &Path, id: u64, ports: [u16; 3]) -> Node {
    let [raft, http, stream] = ports;
    let config = dir.join(format!("node-{id}.toml"));
    let data = dir.join(format!("data-{id}"));
    let validators = dir.join("validators.toml");
    let toml = format!(
        "data-dir = {data:?}\n[wal]\nsegment-size-bytes = {SEGMENT_BYTES}\n\
         [cluster]\nnode-id = {id}\nraft-addr = \"127.0.0.1:{raft}\"\n\
         log-segment-size-bytes = {LOG_SEGMENT_BYTES}\n\
         [api]\nhttp-addr = \"127.0.0.1:{http}\"\n\
         [schedule]\nvalidators = {validators:?}\nvalidator-id = {id}\n\
         [blocks]\nproduce = true\n"
    );
    std::fs::write(&config, toml).unwrap();
    let process = Process::run_node(format!("node {id}"), &config, &format!("127.0.0.1:{stream}"));
    process.wait_logged("commands::run: node started");
    Node { process, http: SocketAddr::from(([127, 0, 0, 1], http)) }
}

/// A node's `block_committed` facts: height to included hashes.
fn committed_blocks(http: SocketAddr) -> BTreeMap<u64, Vec<String>> {
    let path = "/v1/events?kinds=block_committed&limit=1000";
    let Some((200, page)) = try_http(http, "GET", path, "", CALL_TIMEOUT) else {
        return BTreeMap::new();
    };
    let events = page["events"].as_array().cloned().unwrap_or_default();
    events
        .iter()
        .filter_map(|e| {
            let txs = e["txs"].as_array()?.iter().filter_map(|t| t.as_str().map(str::to_owned));
            Some((e["height"].as_u64()?, txs.collect()))
        })
        .collect()
}

/// The height of the block that included each of `hashes`, when every one is in a block.
fn inclusion(blocks: &BTreeMap<u64, Vec<String>>, hashes: &[TxHash]) -> Option<Vec<u64>> {
    hashes
        .iter()
        .map(|hash| {
            let text = hash.to_string();
            blocks.iter().find(|(_, txs)| txs.contains(&text)).map(|(height, _)| *height)
        })
        .collect()
}

/// The heights of the node's `tx_included` facts for `hashes` (the ones its pool held).
fn included(http: SocketAddr, hashes: &[TxHash]) -> Vec<u64> {
    let path = "/v1/events?kinds=tx_included&limit=1000";
    let Some((200, page)) = try_http(http, "GET", path, "", CALL_TIMEOUT) else {
        return Vec::new();
    };
    let texts: Vec<String> = hashes.iter().map(ToString::to_string).collect();
    let events = page["events"].as_array().cloned().unwrap_or_default();
    events
        .iter()
        .filter(|e| e["hash"].as_str().is_some_and(|h| texts.iter().any(|t| t == h)))
        .filter_map(|e| e["height"].as_u64())
        .collect()
}

/// The `height=` and `round=` fields of every line of `process` containing `needle`.
fn logged_slots(process: &Process, needle: &str) -> Vec<(u64, u32)> {
    let field = |line: &str, key: &str| -> Option<String> {
        let prefix = format!("{key}=");
        let word = line.split_whitespace().find_map(|w| w.strip_prefix(&prefix))?;
        Some(word.trim_end_matches(',').to_owned())
    };
    process
        .logged_lines(needle)
        .iter()
        .filter_map(|line| {
            Some((field(line, "height")?.parse().ok()?, field(line, "round")?.parse().ok()?))
        })
        .collect()
}

#[test]
fn blocks_alternate_by_the_schedule_reach_both_pools_and_a_dead_proposer_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let ports = free_ports(6);
    let (raft, http, stream) = ([ports[0], ports[1]], [ports[2], ports[3]], [ports[4], ports[5]]);
    let file = validators_file(raft, stream);
    std::fs::write(dir.path().join("validators.toml"), &file).unwrap();
    let schedule = ValidatorsConfig::from_toml_str(&file).unwrap().to_schedule().unwrap();
    let mut nodes: Vec<Node> =
        (0..2).map(|v| start(dir.path(), v as u64 + 1, [raft[v], http[v], stream[v]])).collect();

    // Until both are up and linked each commits alone (the first heights may differ): wait
    // until each has committed a block the other built.
    let synced = wait_until("each cluster to commit a block of the other", || {
        let received = |node: &Node| {
            metric(&scrape(node.http), "mempulse_blocks_received_total{outcome=\"committed\"}")
        };
        let top = |node: &Node| committed_blocks(node.http).keys().next_back().copied();
        (received(&nodes[0]) >= 1.0 && received(&nodes[1]) >= 1.0)
            .then(|| top(&nodes[0]).max(top(&nodes[1])))
            .flatten()
    });
    let heights = include_on_both(&nodes);
    // Both clusters commit the same blocks from there on, and their heights meet.
    let from = synced + 1;
    let agreed = wait_until("both clusters at the same height, several blocks in", || {
        let (a, b) = (committed_blocks(nodes[0].http), committed_blocks(nodes[1].http));
        let (a, b): (Vec<_>, Vec<_>) = (a.range(from..).collect(), b.range(from..).collect());
        let top = *a.last()?.0;
        (top >= from + 4 && top >= heights.iter().max().copied()? && a == b)
            .then(|| a.iter().map(|(h, _)| **h).collect::<Vec<u64>>())
    });
    assert!(heights.iter().all(|h| agreed.contains(h)), "{heights:?} in {agreed:?}");

    // Each node built only in its validator's slots, and both built.
    let mut builders: BTreeMap<u64, u64> = BTreeMap::new();
    for (v, node) in nodes.iter().enumerate() {
        let validator = ValidatorId(v as u64 + 1);
        for (height, round) in logged_slots(&node.process, "block built and committed") {
            let proposer = schedule.proposer_at_round(Height(height), Round(round)).unwrap();
            assert_eq!(proposer, validator, "node {validator} built height {height} round {round}");
            builders.insert(height, validator.0);
        }
    }
    let both = builders.values().any(|v| *v == 1) && builders.values().any(|v| *v == 2);
    assert!(both, "{builders:?}");

    // Validator 2's node dies: its slots are missed, validator 1 takes them in the next round.
    let mut dead = nodes.pop().unwrap();
    dead.process.signal("-9");
    assert!(!dead.process.wait_exit());
    take_over(&nodes[0], &schedule);
}

/// Sends the same transactions to both clusters' pools (pools are independent) and waits
/// until blocks committed on both include them; returns those blocks' heights. The first copy
/// of each must be admitted; the second may come after a block already included it.
fn include_on_both(nodes: &[Node]) -> Vec<u64> {
    let txs: Vec<(String, TxHash)> = (0..TXS).map(|nonce| transaction(SENDER, nonce)).collect();
    for (i, (raw, hash)) in txs.iter().enumerate() {
        let (first, second) = (&nodes[i % 2], &nodes[(i + 1) % 2]);
        wait_until("a transaction admitted", || send_raw(first.http, raw, *hash).then_some(()));
        let _ = send_raw(second.http, raw, *hash);
    }
    let hashes: Vec<TxHash> = txs.iter().map(|(_, hash)| *hash).collect();
    let heights = wait_until("the transactions in blocks committed on both clusters", || {
        let first = inclusion(&committed_blocks(nodes[0].http), &hashes)?;
        let second = inclusion(&committed_blocks(nodes[1].http), &hashes)?;
        (first == second).then_some(first)
    });
    for node in nodes {
        let pool = pool_hashes(node.http);
        assert!(hashes.iter().all(|h| !pool.contains(h)), "an included tx stayed: {pool:?}");
        let included = included(node.http, &hashes);
        assert!(included.iter().all(|h| heights.contains(h)), "{included:?} vs {heights:?}");
    }
    heights
}

/// With validator 2 dead, `live` (validator 1) keeps building in its own turns and, after
/// each missed slot of validator 2, in the next round.
fn take_over(live: &Node, schedule: &Schedule) {
    let killed_at = committed_blocks(live.http).keys().next_back().copied().unwrap_or(0);
    let taken_over = wait_until("validator 1 to build in validator 2's turns", || {
        let built = logged_slots(&live.process, "block built and committed");
        let over: Vec<u64> = built
            .iter()
            .filter(|(h, r)| *h > killed_at && *r > 0)
            .filter(|(h, _)| schedule.proposer(Height(*h)).unwrap() == ValidatorId(2))
            .map(|(h, _)| *h)
            .collect();
        let own = built.iter().filter(|(h, r)| *h > killed_at && *r == 0).count();
        (over.len() >= 2 && own >= 1).then_some(over)
    });
    let missed = logged_slots(&live.process, "slot missed");
    for height in &taken_over {
        assert!(missed.iter().any(|(h, r)| h == height && *r == 0), "height {height}: {missed:?}");
    }
    let metrics = scrape(live.http);
    for (series, least) in [
        ("mempulse_blocks_slots_missed_total", 2.0),
        ("mempulse_blocks_built_total", 3.0),
        ("mempulse_blocks_broadcast_total{outcome=\"committed\"}", 1.0),
        ("mempulse_blocks_broadcast_total{outcome=\"failed\"}", 1.0),
        ("mempulse_blocks_received_total{outcome=\"committed\"}", 1.0),
    ] {
        assert!(metric(&metrics, series) >= least, "{series} below {least}: {metrics}");
    }
}

fn scrape(http: SocketAddr) -> String {
    let (status, text) = crate::support::http(http, "GET", "/metrics", "text/plain", b"");
    assert_eq!(status, 200, "{text}");
    text
}

/// The value of one series as exposed (`name` or `name{labels}`), 0 when absent.
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn producing_without_a_schedule_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("node.toml");
    std::fs::write(&config, "[blocks]\nproduce = true\n").unwrap();
    let args = ["run".as_ref(), "--config".as_ref(), config.as_os_str()];
    let mut process = Process::spawn("node", &args);
    assert!(!process.wait_exit(), "started without a schedule");
    assert!(process.logged("[blocks] produce = true needs [schedule]"), "no clear message");
}
