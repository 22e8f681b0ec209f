//! `mempulse txsource --catalog`: subscribes to a node's peer catalog and streams to the
//! clusters whose tags match (`subscribe_if`), logging the open streams periodically and
//! reporting every stream opened and closed and every proposer turn it saw (from the tag
//! appearing to its first transaction sent there).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use mempulse_cluster::{Security, TlsIdentity, certs::node_name};
use mempulse_net::{
    StreamClientConfig,
    peer::{
        PeerClientConfig, PeerConnector, PeerSession, RouteConfig, RouteError, RouteSummary,
        TxRouter, subscribe_if,
    },
};
use mempulse_primitives::NodeId;
use mempulse_schedule::{Tag, TagPredicate, Tags, default_source_predicate};
use serde_json::json;
use tracing::{info, warn};

use super::{Input, Pace, Target};
use crate::{cli::TxSourceArgs, wiring::TlsPeerConnector};

/// How long a transaction waits for a matching stream before the source gives up.
const NO_STREAM_WAIT_MAX: Duration = Duration::from_secs(30);
/// Pause between two looks for a matching stream.
const NO_STREAM_POLL: Duration = Duration::from_millis(5);

/// Parses `--subscribe`.
pub(super) fn predicate(text: &str) -> anyhow::Result<TagPredicate> {
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

/// Subscribes to the first catalog node that answers, then streams the input by tags.
pub(super) async fn stream(
    args: &TxSourceArgs,
    catalogs: &[String],
    tls: Option<TlsIdentity>,
) -> anyhow::Result<RouteReport> {
    let predicate = predicate(&args.subscribe)?;
    let security = tls.map_or(Security::InsecurePlaintextLoopback, Security::MutualTls);
    let connector = TlsPeerConnector::new(&security)?;
    let source = NodeId(args.source_id);
    let session = subscribe(&connector, catalogs, source).await?;
    let catalog = session.subscribe().await.context("subscribing to the catalog")?;
    let mut stream = StreamClientConfig::new(source);
    stream.close_timeout = Duration::from_millis(args.close_timeout_ms);
    let connector: Arc<dyn PeerConnector> = Arc::new(connector);
    let router = subscribe_if(
        predicate,
        catalog,
        connector,
        RouteConfig { stream, ..RouteConfig::new(source) },
    );
    let deadline = Instant::now() + NO_STREAM_WAIT_MAX;
    while !router.settled() && Instant::now() < deadline {
        tokio::time::sleep(NO_STREAM_POLL).await;
    }
    log_streams(&router);
    let started = Instant::now();
    let mut input = Input::open(args)?;
    let pace = args.rate.map(|rate| Pace { started: Instant::now(), rate });
    let status_every = Duration::from_millis(args.status_interval_ms.max(1));
    let mut last_status = Instant::now();
    let (mut txs, mut unrouted) = (0u64, 0u64);
    while let Some(raw) = input.next().await? {
        if let Some(pace) = &pace {
            pace.wait(txs).await;
        }
        txs += 1;
        if !send(&router, raw).await? {
            unrouted += 1;
        }
        if last_status.elapsed() >= status_every {
            last_status = Instant::now();
            log_streams(&router);
        }
    }
    log_streams(&router);
    let summary = router.close().await;
    drop(session);
    let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    Ok(RouteReport { txs, unrouted, bad_lines: input.bad_lines, elapsed_ms, summary })
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

fn log_streams(router: &TxRouter) {
    let open = router.open_streams();
    let nodes: Vec<String> = open.iter().map(|(n, v)| format!("{n}@v{v}")).collect();
    info!(open = open.len(), nodes = %nodes.join(","), "routed tx streams");
}

/// What the routed source prints.
pub(super) struct RouteReport {
    txs: u64,
    unrouted: u64,
    pub(super) bad_lines: u64,
    elapsed_ms: u64,
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
        let accepted: serde_json::Map<String, serde_json::Value> = s
            .tallies
            .iter()
            .map(|(node, tally)| (node.0.to_string(), json!(tally.as_ref().map(|t| t.in_pool()))))
            .collect();
        json!({
            "txs": self.txs,
            "sent": s.sent,
            "unrouted": self.unrouted,
            "bad_lines": self.bad_lines,
            "elapsed_ms": self.elapsed_ms,
            "accepted": accepted,
            "turn_latency": {"preconnected": latency(true), "reactive": latency(false)},
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
            summary: RouteSummary::default(),
        };
        let json = report.to_json();
        assert_eq!(json["turn_latency"]["reactive"]["count"], 0);
        assert_eq!(json["txs"], 3);
        assert_eq!(spread(vec![5, 1, 9]), json!({"count": 3, "p50_ms": 5, "max_ms": 9}));
    }
}
