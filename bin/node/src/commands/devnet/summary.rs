//! The devnet's live summary: the nodes' samples folded into one line per cluster and a
//! header (height, proposer, leaders, pool sizes, tx/s, drops), as text or as one JSON
//! object. Pure: a summary is a function of the samples, the previous counters and the
//! elapsed time, so it can be checked from recorded answers.

use std::{collections::BTreeMap, fmt::Write as _};

use serde::Serialize;

use super::probe::{Counters, NodeSample, PoolStatus};

/// One second of the devnet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct Summary {
    /// Always `summary` (the JSON lines also carry lifecycle events).
    pub(crate) event: &'static str,
    /// Milliseconds since the devnet started.
    pub(crate) elapsed_ms: u64,
    /// The highest height any node reports.
    pub(crate) height: Option<u64>,
    /// The round-0 proposer of that height.
    pub(crate) proposer: Option<u64>,
    /// Node processes running, of all.
    pub(crate) nodes_running: usize,
    pub(crate) nodes_total: usize,
    /// Transactions admitted per second, every cluster.
    pub(crate) tx_per_s: u64,
    /// Lane drops since the previous summary, every cluster.
    pub(crate) drops: u64,
    pub(crate) clusters: Vec<ClusterSummary>,
    pub(crate) sources: Vec<SourceSummary>,
}

/// One validator cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct ClusterSummary {
    pub(crate) validator: u64,
    /// Its tags at its height (from its leader, else any member).
    pub(crate) tags: Vec<String>,
    /// The leader its members name (the most common answer).
    pub(crate) leader: Option<u64>,
    pub(crate) term: Option<u64>,
    pub(crate) height: Option<u64>,
    /// Its pool (the leader's view, else any member's).
    pub(crate) pool: Option<PoolStatus>,
    pub(crate) tx_per_s: u64,
    pub(crate) drops: u64,
    /// Tx streams its members serve.
    pub(crate) streams_open: u64,
    /// Members answering, of all.
    pub(crate) up: usize,
    pub(crate) members: usize,
    /// The fewest announcements any answering member's catalog holds.
    pub(crate) catalog_min: Option<usize>,
    pub(crate) nodes: Vec<NodeSample>,
}

/// One tx source.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct SourceSummary {
    pub(crate) source: u64,
    /// Its tag predicate (`--subscribe`).
    pub(crate) subscribe: String,
    pub(crate) running: bool,
    /// Its latest status line, verbatim (`mempulse txsource`'s format: what it sent, its open
    /// streams per node and cluster).
    pub(crate) status: Option<serde_json::Value>,
    /// Its final report, verbatim, once it printed one.
    pub(crate) report: Option<serde_json::Value>,
}

/// Counters of the previous summary, for rates.
#[derive(Clone, Debug, Default)]
pub(crate) struct Previous {
    elapsed_ms: u64,
    counters: BTreeMap<u64, Counters>,
}

/// Folds the samples taken at `elapsed_ms` into a summary; returns it and the counters the
/// next call needs.
pub(crate) fn summarize(
    elapsed_ms: u64,
    nodes: Vec<NodeSample>,
    sources: Vec<SourceSummary>,
    previous: &Previous,
) -> (Summary, Previous) {
    let window_ms = elapsed_ms.saturating_sub(previous.elapsed_ms).max(1);
    let mut next = Previous { elapsed_ms, counters: BTreeMap::new() };
    let nodes_total = nodes.len();
    let nodes_running = nodes.iter().filter(|n| n.running).count();
    let mut by_cluster: BTreeMap<u64, Vec<NodeSample>> = BTreeMap::new();
    for node in nodes {
        by_cluster.entry(node.validator).or_default().push(node);
    }
    let clusters: Vec<ClusterSummary> = by_cluster
        .into_iter()
        .map(|(validator, nodes)| cluster(validator, nodes, previous, &mut next, window_ms))
        .collect();
    let top = clusters
        .iter()
        .flat_map(|c| c.nodes.iter())
        .filter_map(|n| n.cluster.as_ref()?.schedule.as_ref())
        .max_by_key(|s| s.height);
    let (tx_per_s, drops) = clusters.iter().fold((0, 0), |(t, d), c| (t + c.tx_per_s, d + c.drops));
    let summary = Summary {
        event: "summary",
        elapsed_ms,
        height: top.map(|s| s.height),
        proposer: top.map(|s| s.proposer),
        nodes_running,
        nodes_total,
        tx_per_s,
        drops,
        clusters,
        sources,
    };
    (summary, next)
}

fn cluster(
    validator: u64,
    nodes: Vec<NodeSample>,
    previous: &Previous,
    next: &mut Previous,
    window_ms: u64,
) -> ClusterSummary {
    let statuses = || nodes.iter().filter_map(|n| n.cluster.as_ref().map(|c| (n, c)));
    let leader = most_common(statuses().filter_map(|(_, c)| c.leader));
    let leader_sample = nodes.iter().find(|n| Some(n.node) == leader && n.cluster.is_some());
    let pick = |n: &&NodeSample| n.cluster.is_some();
    let view = leader_sample.or_else(|| nodes.iter().find(pick));
    let schedule = view.and_then(|n| n.cluster.as_ref()?.schedule.as_ref());
    let pool = leader_sample.and_then(|n| n.pool).or_else(|| nodes.iter().find_map(|n| n.pool));
    let (mut admitted, mut dropped, mut streams_open) = (0, 0, 0);
    for node in &nodes {
        let Some(now) = node.counters else { continue };
        let before = previous.counters.get(&node.node).copied().unwrap_or_default();
        admitted += since(before.admitted, now.admitted);
        dropped += since(before.dropped, now.dropped);
        streams_open += now.streams_open;
        next.counters.insert(node.node, now);
    }
    ClusterSummary {
        validator,
        tags: schedule.map(|s| s.tags.clone()).unwrap_or_default(),
        leader,
        term: statuses().map(|(_, c)| c.term).max(),
        height: statuses().filter_map(|(_, c)| c.schedule.as_ref().map(|s| s.height)).max(),
        pool,
        tx_per_s: admitted.saturating_mul(1000) / window_ms,
        drops: dropped,
        streams_open,
        up: statuses().count(),
        members: nodes.len(),
        catalog_min: nodes.iter().filter_map(|n| n.catalog.as_ref().map(|c| c.nodes.len())).min(),
        nodes,
    }
}

/// The increase of a counter; a restarted process counts from zero again.
const fn since(before: u64, now: u64) -> u64 {
    if now >= before { now - before } else { now }
}

/// The most frequent value, the lowest on a tie.
fn most_common(values: impl Iterator<Item = u64>) -> Option<u64> {
    let mut counts: BTreeMap<u64, usize> = BTreeMap::new();
    for value in values {
        *counts.entry(value).or_default() += 1;
    }
    let best = counts.values().copied().max()?;
    counts.into_iter().find(|(_, count)| *count == best).map(|(value, _)| value)
}

/// The text form: a header line, then one line per cluster.
pub(crate) fn render(summary: &Summary) -> Vec<String> {
    let or_dash =
        |v: Option<u64>, prefix: &str| v.map_or_else(|| "-".to_owned(), |v| format!("{prefix}{v}"));
    let sources_up = summary.sources.iter().filter(|s| s.running).count();
    let mut lines = vec![format!(
        "devnet {:>4}s  height {}  proposer {}  nodes {}/{}  sources {}/{}  tx/s {}  drops {}",
        summary.elapsed_ms / 1000,
        or_dash(summary.height, ""),
        or_dash(summary.proposer, "v"),
        summary.nodes_running,
        summary.nodes_total,
        sources_up,
        summary.sources.len(),
        summary.tx_per_s,
        summary.drops,
    )];
    for c in &summary.clusters {
        let tags = if c.tags.is_empty() { "-".to_owned() } else { c.tags.join(",") };
        let pool = c.pool.map_or_else(|| "-".to_owned(), |p| format!("{}+{}", p.pending, p.queued));
        let mut line = format!(
            "  v{:<3} {:<14} leader {:<4} term {:<4} h {:<6} pool {:<10} tx/s {:<6} drops {:<5} up {}/{}",
            c.validator,
            tags,
            or_dash(c.leader, "n"),
            or_dash(c.term, ""),
            or_dash(c.height, ""),
            pool,
            c.tx_per_s,
            c.drops,
            c.up,
            c.members,
        );
        let catalog = c.catalog_min.map_or_else(|| "-".to_owned(), |n| n.to_string());
        let _ = write!(line, "  streams {}  catalog {catalog}", c.streams_open);
        lines.push(line);
    }
    for s in &summary.sources {
        let status = s.status.as_ref();
        let figure = |key: &str| {
            status.and_then(|st| st[key].as_u64()).map_or_else(|| "-".to_owned(), |n| n.to_string())
        };
        let clusters: Vec<String> = status
            .and_then(|st| st["clusters"].as_array())
            .into_iter()
            .flatten()
            .filter(|c| c["open"].as_u64().is_some_and(|open| open > 0))
            .filter_map(|c| Some(format!("v{}:{}", c["validator"].as_u64()?, c["open"].as_u64()?)))
            .collect();
        let state = if s.report.is_some() {
            "reported"
        } else if s.running {
            "running"
        } else {
            "down"
        };
        lines.push(format!(
            "  s{:<4} {:<14} {:<8} txs {:<7} sent {:<8} open {}",
            s.source,
            s.subscribe,
            state,
            figure("txs"),
            figure("sent"),
            if clusters.is_empty() { "-".to_owned() } else { clusters.join(" ") },
        ));
    }
    lines
}

/// One line of text for a source's final report: how it ended, what it sent, how much was
/// accepted, and how soon after seeing a cluster's `proposer` tag it sent there.
pub(crate) fn render_report(source: u64, subscribe: &str, report: &serde_json::Value) -> String {
    let n = |v: &serde_json::Value| v.as_u64().map_or_else(|| "-".to_owned(), |n| n.to_string());
    let accepted: u64 = report["accepted"]
        .as_object()
        .map_or(0, |nodes| nodes.values().filter_map(serde_json::Value::as_u64).sum());
    let latency = |kind: &str| {
        let l = &report["tag_to_first_sent"][kind];
        format!("{} turns p50 {} ms max {} ms", n(&l["count"]), n(&l["p50_ms"]), n(&l["max_ms"]))
    };
    format!(
        "source {source} ({subscribe}) ended ({}): txs {}, sent {}, accepted {accepted}; \
         proposer tag to first send: pre-connected {}, reactive {}",
        report["ended"].as_str().unwrap_or("-"),
        n(&report["txs"]),
        n(&report["sent"]),
        latency("preconnected"),
        latency("reactive"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::devnet::probe::{Catalog, CatalogEntry, ClusterStatus, ScheduleStatus};

    fn sample(node: u64, leader: u64, height: u64, tags: &[&str], admitted: u64) -> NodeSample {
        let validator = (node - 1) / 3 + 1;
        NodeSample {
            node,
            validator,
            running: true,
            cluster: Some(ClusterStatus {
                role: if node == leader { "leader" } else { "follower" }.to_owned(),
                leader: Some(leader),
                term: 2,
                commit_index: Some(10),
                schedule: Some(ScheduleStatus {
                    height,
                    proposer: 2,
                    validator,
                    tags: tags.iter().map(|t| (*t).to_owned()).collect(),
                }),
            }),
            catalog: Some(Catalog { nodes: vec![CatalogEntry::default(); 6] }),
            pool: Some(PoolStatus { pending: node * 10, queued: 0 }),
            counters: Some(Counters { admitted, dropped: node, streams_open: 1 }),
        }
    }

    fn two_clusters(admitted: u64) -> Vec<NodeSample> {
        let mut nodes: Vec<NodeSample> =
            (1..=3).map(|n| sample(n, 2, 7, &["proposer-soon"], admitted)).collect();
        nodes.extend((4..=6).map(|n| sample(n, 4, 8, &["proposer"], admitted * 2)));
        nodes
    }

    #[test]
    fn clusters_fold_leaders_pools_heights_and_rates() {
        let (first, previous) =
            summarize(1000, two_clusters(100), Vec::new(), &Previous::default());
        assert_eq!(first.height, Some(8));
        assert_eq!(first.proposer, Some(2));
        let c1 = &first.clusters[0];
        assert_eq!((c1.validator, c1.leader, c1.height), (1, Some(2), Some(7)));
        assert_eq!(c1.pool, Some(PoolStatus { pending: 20, queued: 0 }), "the leader's pool");
        assert_eq!(c1.tags, ["proposer-soon"]);
        assert_eq!((c1.up, c1.members, c1.catalog_min), (3, 3, Some(6)));
        // 2 s later, 100 more admitted at each node of cluster 1 and 200 at cluster 2's.
        let (second, _) = summarize(3000, two_clusters(200), Vec::new(), &previous);
        assert_eq!(second.clusters[0].tx_per_s, 150);
        assert_eq!(second.clusters[1].tx_per_s, 300);
        assert_eq!(second.tx_per_s, 450);
        assert_eq!(second.drops, 0, "drop counters did not move");
    }

    #[test]
    fn a_restarted_node_and_a_silent_node_are_counted_honestly() {
        let (_, previous) = summarize(1000, two_clusters(100), Vec::new(), &Previous::default());
        let mut nodes = two_clusters(100);
        nodes[0].counters = Some(Counters { admitted: 30, dropped: 0, streams_open: 0 });
        nodes[1] = NodeSample {
            running: false,
            ..NodeSample { node: 2, validator: 1, ..NodeSample::default() }
        };
        let (s, _) = summarize(2000, nodes, Vec::new(), &previous);
        let c1 = &s.clusters[0];
        assert_eq!(c1.tx_per_s, 30, "node 1 restarted: 30 since zero");
        assert_eq!(c1.leader, Some(2), "the members still name 2");
        assert_eq!(c1.pool, Some(PoolStatus { pending: 10, queued: 0 }), "the leader is silent");
        assert_eq!((c1.up, s.nodes_running, s.nodes_total), (2, 5, 6));
    }

    #[test]
    fn the_text_form_has_a_header_and_a_line_per_cluster_and_source() {
        let status = serde_json::json!({"event": "status", "txs": 40, "sent": 80,
            "clusters": [{"validator": 1, "open": 3, "sent": 40},
                {"validator": 2, "open": 0, "sent": 40}]});
        let sources = vec![
            SourceSummary {
                source: 1001,
                subscribe: "default".to_owned(),
                running: true,
                status: Some(status),
                report: None,
            },
            SourceSummary {
                source: 1002,
                subscribe: "reactive".to_owned(),
                running: false,
                status: None,
                report: None,
            },
        ];
        let (s, _) = summarize(12_345, two_clusters(1), sources, &Previous::default());
        let lines = render(&s);
        assert_eq!(lines.len(), 5);
        assert!(lines[3].contains("s1001 default        running  txs 40"), "{}", lines[3]);
        assert!(lines[3].ends_with("open v1:3"), "{}", lines[3]);
        assert!(lines[4].contains("reactive       down     txs -"), "{}", lines[4]);
        assert!(
            lines[0].starts_with("devnet   12s  height 8  proposer v2  nodes 6/6  sources 1/2"),
            "{}",
            lines[0]
        );
        assert!(lines[2].contains("v2   proposer       leader n4"), "{}", lines[2]);
        assert!(lines[1].contains("pool 20+0"), "{}", lines[1]);
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["event"], "summary");
        assert_eq!(json["clusters"][1]["tags"][0], "proposer");
    }

    #[test]
    fn a_report_line_names_how_the_source_ended_and_its_turns() {
        let report = serde_json::json!({"event": "report", "ended": "terminate", "txs": 10,
            "sent": 30, "accepted": {"1": 9, "2": null, "4": 10},
            "tag_to_first_sent": {"preconnected": {"count": 4, "p50_ms": 0, "max_ms": 2},
                "reactive": {"count": 1, "p50_ms": 80, "max_ms": 80}}});
        let line = render_report(1001, "default", &report);
        assert_eq!(
            line,
            "source 1001 (default) ended (terminate): txs 10, sent 30, accepted 19; proposer \
             tag to first send: pre-connected 4 turns p50 0 ms max 2 ms, reactive 1 turns p50 80 \
             ms max 80 ms"
        );
    }
}
