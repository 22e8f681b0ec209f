//! `mempulse txsource --catalog`: subscribes to a node's peer catalog and streams to the
//! clusters whose tags match (`subscribe_if`), printing (with `--status-interval-ms`) a JSON
//! status line of its open streams and what went to each node and cluster, and reporting
//! every stream opened and closed, how each was answered, and every proposer turn it saw
//! (from the tag appearing in its catalog to its first transaction handed to that cluster's
//! stream: `tag_to_first_sent`, a source-side figure; the time from a slot's start to the
//! first admission at the proposer is measured from the nodes' facts by `mempulse-bench
//! preconnect`).

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use mempulse_cluster::{Security, TlsIdentity, certs::node_name};
use mempulse_net::{
    StreamClientConfig,
    peer::{
        PeerClientConfig, PeerConnector, PeerSession, RouteConfig, RouteError, RouteStatus,
        RouteSummary, TxRouter, subscribe_if,
    },
};
use mempulse_primitives::NodeId;
use mempulse_schedule::{Tag, TagPredicate, Tags, default_source_predicate};
use serde_json::json;
use tracing::{info, warn};

use super::{Ended, Input, Pace, Stop, Target, Ticks, elapsed_ms, print_line};
use crate::{cli::TxSourceArgs, wiring::TlsPeerConnector};

/// How long a transaction waits for a matching stream before the source gives up.
const NO_STREAM_WAIT_MAX: Duration = Duration::from_secs(30);
/// Pause between two looks for a matching stream.
const NO_STREAM_POLL: Duration = Duration::from_millis(5);
/// How often the open streams are logged without `--status-interval-ms`.
const LOG_STREAMS_EVERY: Duration = Duration::from_secs(1);

/// Parses `--subscribe`.
pub(crate) fn predicate(text: &str) -> anyhow::Result<TagPredicate> {
    let tags = |list: &str| -> anyhow::Result<Tags> {
        list.parse::<Tags>().with_context(|| format!("--subscribe `{text}`"))
    };
    Ok(match text {
        "default" => default_source_predicate(),
        "reactive" => TagPredicate::any_of([Tag::Proposer]),
        other => match other.split_once(':') {
            Some(("any", list)) => TagPredicate::AnyOf(tags(list)?),
            Some(("all", list)) => TagPredicate::AllOf(tags(list)?),
            _ => bail!(
                "--subscribe must be default, reactive, any:TAG,.. or all:TAG,.., got `{text}`"
            ),
        },
    })
}

/// Subscribes to the first catalog node that answers, then streams the input by tags until
/// it ends or a stop signal arrives.
pub(super) async fn stream(
    args: &TxSourceArgs,
    catalogs: &[String],
    tls: Option<TlsIdentity>,
    stop: &mut Stop,
) -> anyhow::Result<RouteReport> {
    let predicate = predicate(&args.subscribe)?;
    let security = tls.map_or(Security::InsecurePlaintextLoopback, Security::MutualTls);
    let connector = TlsPeerConnector::new(&security)?;
    let source = NodeId(args.source_id);
    let started = Instant::now();
    let stopped_early = |ended| RouteReport {
        txs: 0,
        unrouted: 0,
        bad_lines: 0,
        elapsed_ms: elapsed_ms(started),
        ended,
        summary: RouteSummary::default(),
    };
    let subscribing = async {
        let session = subscribe(&connector, catalogs, source).await?;
        let catalog = session.subscribe().await.context("subscribing to the catalog")?;
        anyhow::Ok((session, catalog))
    };
    let (session, catalog) = tokio::select! {
        subscribed = subscribing => subscribed?,
        ended = stop.requested() => return Ok(stopped_early(ended)),
    };
    let mut stream = StreamClientConfig::new(source);
    stream.close_timeout = Duration::from_millis(args.close_timeout_ms);
    let connector: Arc<dyn PeerConnector> = Arc::new(connector);
    let router = subscribe_if(
        predicate,
        catalog,
        connector,
        RouteConfig { stream, ..RouteConfig::new(source) },
    );
    let mut input = Input::open(args)?;
    let status = Status { router: &router, source: args.source_id, started };
    let settled = async {
        let deadline = Instant::now() + NO_STREAM_WAIT_MAX;
        while !router.settled() && Instant::now() < deadline {
            tokio::time::sleep(NO_STREAM_POLL).await;
        }
    };
    let stopped = tokio::select! {
        () = settled => None,
        ended = stop.requested() => Some(ended),
    };
    status.print(0, 0, false);
    let (txs, unrouted, ended) = match stopped {
        Some(ended) => (0, 0, ended),
        None => send_input(args, &status, &mut input, stop).await?,
    };
    status.print(txs, unrouted, args.status_interval_ms.is_some());
    let summary = router.close().await;
    drop(session);
    Ok(RouteReport {
        txs,
        unrouted,
        bad_lines: input.bad_lines,
        elapsed_ms: elapsed_ms(started),
        ended,
        summary,
    })
}

/// What the periodic status reads.
struct Status<'a> {
    router: &'a TxRouter,
    source: u64,
    started: Instant,
}

impl Status<'_> {
    /// Logs the open streams and, with `json`, prints the status line.
    fn print(&self, txs: u64, unrouted: u64, json: bool) {
        let now = self.router.status();
        log_streams(&now);
        if json {
            let line = status_json(self.source, elapsed_ms(self.started), txs, unrouted, &now);
            print_line(&line.to_string());
        }
    }
}

/// Sends the input through the router (paced, with a status every tick) until it ends or a
/// stop signal arrives: (transactions read, of which unrouted, why it ended).
async fn send_input(
    args: &TxSourceArgs,
    status: &Status<'_>,
    input: &mut Input,
    stop: &mut Stop,
) -> anyhow::Result<(u64, u64, Ended)> {
    let mut ticks = Ticks::new(args.status_interval_ms, Some(LOG_STREAMS_EVERY));
    let pace = args.rate.map(|rate| Pace { started: Instant::now(), rate });
    let (mut txs, mut unrouted) = (0u64, 0u64);
    loop {
        let result = {
            let step = async {
                if let Some(pace) = &pace {
                    pace.wait(txs).await;
                }
                match input.next().await? {
                    Some(raw) => send(status.router, raw).await.map(Some),
                    None => Ok(None),
                }
            };
            tokio::pin!(step);
            loop {
                tokio::select! {
                    biased;
                    stopped = stop.requested() => break Err(stopped),
                    () = ticks.tick() => status.print(txs, unrouted, ticks.json),
                    sent = &mut step => break Ok(sent),
                }
            }
        };
        match result {
            Err(stopped) => return Ok((txs, unrouted, stopped)),
            Ok(sent) => match sent? {
                Some(routed) => {
                    txs += 1;
                    unrouted += u64::from(!routed);
                }
                None => return Ok((txs, unrouted, Ended::Input)),
            },
        }
    }
}

/// A catalog session to the first of `catalogs` that answers.
async fn subscribe(
    connector: &TlsPeerConnector,
    catalogs: &[String],
    source: NodeId,
) -> anyhow::Result<PeerSession> {
    for text in catalogs {
        let target = Target::parse(text)?;
        let name = target.id.map_or_else(|| target.host.clone(), node_name);
        let config = PeerClientConfig { expect: target.id, ..PeerClientConfig::new(source) };
        match PeerSession::connect(|| connector.dial_name(&name, &target.addr), config).await {
            Ok(session) => {
                info!(catalog = %target.addr, node = session.peer().0, "catalog subscribed");
                return Ok(session);
            }
            Err(error) => warn!(catalog = %target.addr, %error, "catalog node did not answer"),
        }
    }
    bail!("no --catalog node answered")
}

/// Sends `raw` to the matching clusters, waiting (bounded) while none has an open stream.
/// `false` when it could not be sent.
async fn send(router: &TxRouter, raw: bytes::Bytes) -> anyhow::Result<bool> {
    let deadline = Instant::now() + NO_STREAM_WAIT_MAX;
    loop {
        match router.send(raw.clone()).await {
            Ok(_) => return Ok(true),
            Err(RouteError::TooLarge) => return Ok(false),
            Err(RouteError::Closed) => bail!("the router closed"),
            Err(RouteError::NoStream) if Instant::now() < deadline => {
                tokio::time::sleep(NO_STREAM_POLL).await;
            }
            Err(RouteError::NoStream) => {
                bail!("no matching stream opened within {NO_STREAM_WAIT_MAX:?}")
            }
            Err(other) => bail!("routing failed: {other}"),
        }
    }
}

fn log_streams(status: &RouteStatus) {
    let nodes: Vec<String> = status
        .nodes
        .iter()
        .filter(|n| n.open)
        .map(|n| format!("{}@v{}", n.node, n.validator))
        .collect();
    info!(open = nodes.len(), nodes = %nodes.join(","), "routed tx streams");
}

/// The periodic status line: what was read and sent, the matching clusters, and per node and
/// per cluster whether streams are open and how many transactions went through them.
fn status_json(
    source: u64,
    elapsed_ms: u64,
    txs: u64,
    unrouted: u64,
    status: &RouteStatus,
) -> serde_json::Value {
    let nodes: Vec<serde_json::Value> = status
        .nodes
        .iter()
        .map(|n| json!({"node": n.node.0, "validator": n.validator.0, "open": n.open, "sent": n.sent}))
        .collect();
    let mut clusters: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    for n in &status.nodes {
        let cluster = clusters.entry(n.validator.0).or_default();
        cluster.0 += u64::from(n.open);
        cluster.1 += n.sent;
    }
    let clusters: Vec<serde_json::Value> = clusters
        .into_iter()
        .map(
            |(validator, (open, sent))| json!({"validator": validator, "open": open, "sent": sent}),
        )
        .collect();
    json!({
        "event": "status",
        "source": source,
        "elapsed_ms": elapsed_ms,
        "txs": txs,
        "sent": status.sent,
        "unrouted": unrouted,
        "matching": status.matching.iter().map(|v| v.0).collect::<Vec<_>>(),
        "open": status.nodes.iter().filter(|n| n.open).count(),
        "nodes": nodes,
        "clusters": clusters,
    })
}

/// What the routed source prints.
pub(super) struct RouteReport {
    txs: u64,
    unrouted: u64,
    pub(super) bad_lines: u64,
    elapsed_ms: u64,
    ended: Ended,
    summary: RouteSummary,
}

/// Median and maximum of `values` (milliseconds), with their count.
fn spread(mut values: Vec<u64>) -> serde_json::Value {
    values.sort_unstable();
    let median = values.get(values.len() / 2).copied();
    json!({"count": values.len(), "p50_ms": median, "max_ms": values.last().copied()})
}

impl RouteReport {
    pub(super) fn to_json(&self) -> serde_json::Value {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let s = &self.summary;
        let streams: Vec<serde_json::Value> = s
            .events
            .iter()
            .map(|e| {
                json!({"node": e.node.0, "validator": e.validator.0,
                    "event": if e.opened { "opened" } else { "closed" }, "at_ms": e.at.0})
            })
            .collect();
        let turns: Vec<serde_json::Value> = s
            .turns
            .iter()
            .map(|t| {
                json!({"validator": t.validator.0, "height": t.height.0,
                    "preconnected": t.preconnected, "first_sent_ms": t.first_sent.map(ms)})
            })
            .collect();
        let latency = |pre: bool| {
            spread(
                s.turns
                    .iter()
                    .filter(|t| t.preconnected == pre)
                    .filter_map(|t| t.first_sent.map(ms))
                    .collect(),
            )
        };
        // Every tally of a node (streams closed while routing, then the one open at the end).
        let mut answers: BTreeMap<u64, Option<u64>> = BTreeMap::new();
        let (mut answered, mut unanswered) = (0u64, 0u64);
        let closed = s.closed.iter().map(|(node, tally)| (node, tally.as_ref()));
        let open_at_end = s.tallies.iter().map(|(node, tally)| (node, tally.as_ref()));
        for (node, tally) in closed.chain(open_at_end) {
            let entry = answers.entry(node.0).or_default();
            match tally {
                Some(tally) => {
                    answered += 1;
                    *entry = Some(entry.unwrap_or(0) + tally.in_pool());
                }
                None => unanswered += 1,
            }
        }
        let accepted: serde_json::Map<String, serde_json::Value> =
            answers.into_iter().map(|(node, n)| (node.to_string(), json!(n))).collect();
        json!({
            "event": "report",
            "ended": self.ended.as_str(),
            "txs": self.txs,
            "sent": s.sent,
            "unrouted": self.unrouted,
            "bad_lines": self.bad_lines,
            "elapsed_ms": self.elapsed_ms,
            "accepted": accepted,
            "streams_answered": answered,
            "streams_unanswered": unanswered,
            "tag_to_first_sent": {"preconnected": latency(true), "reactive": latency(false)},
            "streams": streams,
            "turns": turns,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribe_flags_parse_to_predicates() {
        let all = Tags::ALL;
        assert!(predicate("default").unwrap().matches(Tags::one(Tag::ProposerSoon)));
        let reactive = predicate("reactive").unwrap();
        assert!(reactive.matches(Tags::one(Tag::Proposer)));
        assert!(!reactive.matches(Tags::one(Tag::ProposerNext)));
        let any = predicate("any:proposer,proposer-next").unwrap();
        assert!(any.matches(Tags::one(Tag::ProposerNext)) && !any.matches(Tags::EMPTY));
        let both = predicate("all:proposer,proposer-soon").unwrap();
        assert!(both.matches(all) && !both.matches(Tags::one(Tag::Proposer)));
        for bad in ["", "some", "any:leader", "none:proposer"] {
            assert!(predicate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_report_splits_turn_latency_by_preconnection() {
        let report = RouteReport {
            txs: 3,
            unrouted: 0,
            bad_lines: 0,
            elapsed_ms: 9,
            ended: Ended::Terminate,
            summary: RouteSummary::default(),
        };
        let json = report.to_json();
        assert_eq!(json["tag_to_first_sent"]["reactive"]["count"], 0);
        assert_eq!((&json["event"], &json["ended"]), (&json!("report"), &json!("terminate")));
        assert_eq!(json["txs"], 3);
        assert_eq!(spread(vec![5, 1, 9]), json!({"count": 3, "p50_ms": 5, "max_ms": 9}));
    }
}
