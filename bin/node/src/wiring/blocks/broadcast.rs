//! Handing built blocks to the other clusters: one worker per cluster with a bounded queue,
//! one node at a time, bounded retries within the broadcast timeout.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use futures_util::future::BoxFuture;
use mempulse_net::peer::{BlockAck, BlockNotice, Catalog, PeerLinks, PeerRole};
use mempulse_primitives::{Height, NodeId, ValidatorId};
use mempulse_schedule::ValidatorSet;
use tokio::{
    sync::mpsc::{self, error::TrySendError},
    task::JoinSet,
};
use tracing::{debug, error, warn};

use super::{
    ATTEMPT_SHARE, ATTEMPT_TIMEOUT_MIN, ATTEMPTS_MAX, BROADCAST_QUEUE_CAPACITY, BROADCAST_TOTAL,
    RETRY_PAUSE_MAX, RETRY_PAUSE_MIN,
};

/// How the producer reaches the other clusters (the node's peer links and catalog).
pub(crate) trait BlockLink: Send + Sync + 'static {
    /// The leader of `validator`'s cluster as the catalog knows it.
    fn leader_of(&self, validator: ValidatorId) -> Option<NodeId>;

    /// Sends `notice` to `node` and waits for its answer, at most `timeout`.
    fn send(
        &self,
        node: NodeId,
        notice: BlockNotice,
        timeout: Duration,
    ) -> BoxFuture<'static, anyhow::Result<BlockAck>>;
}

/// [`BlockLink`] over the node's peer links, with leaders from its peer catalog.
#[derive(Clone, Debug)]
pub(crate) struct PeerBlockLink {
    links: PeerLinks,
    catalog: Catalog,
}

impl PeerBlockLink {
    pub(crate) const fn new(links: PeerLinks, catalog: Catalog) -> Self {
        Self { links, catalog }
    }
}

impl BlockLink for PeerBlockLink {
    fn leader_of(&self, validator: ValidatorId) -> Option<NodeId> {
        // Two nodes may both still announce themselves leader after an election: the one
        // that saw the higher height knows more (ties: the lower id, as listed).
        let leaders = self.catalog.snapshot().into_iter();
        leaders
            .filter(|a| a.validator == validator && a.role == PeerRole::Leader)
            .fold(None, |best: Option<(Height, NodeId)>, a| match best {
                Some((height, _)) if height >= a.height => best,
                _ => Some((a.height, a.node)),
            })
            .map(|(_, node)| node)
    }

    fn send(
        &self,
        node: NodeId,
        notice: BlockNotice,
        timeout: Duration,
    ) -> BoxFuture<'static, anyhow::Result<BlockAck>> {
        let links = self.links.clone();
        Box::pin(async move { Ok(links.send_block(node, notice, timeout).await?) })
    }
}

/// Monotonic time for the broadcast (the producer's own; a manual one in tests).
pub(crate) trait TimeSource: Send + Sync + 'static {
    /// Time since the source's origin.
    fn now(&self) -> Duration;

    /// Waits `duration`.
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()>;
}

/// Tokio's monotonic clock, from the moment it was made.
#[derive(Debug)]
pub(super) struct TokioTime {
    pub(super) origin: tokio::time::Instant,
}

impl TimeSource for TokioTime {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// What became of offering one block to one cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BroadcastOutcome {
    /// The cluster committed it.
    Committed,
    /// The cluster was already at or past its height.
    Stale,
    /// No node of the cluster took it before the broadcast timeout (or the attempts ran out).
    Failed,
    /// The cluster's queue was full: never sent.
    Dropped,
}

impl BroadcastOutcome {
    pub(super) const ALL: [Self; 4] = [Self::Committed, Self::Stale, Self::Failed, Self::Dropped];

    /// Stable label.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::Committed => "committed",
            Self::Stale => "stale",
            Self::Failed => "failed",
            Self::Dropped => "dropped",
        }
    }
}

/// The other validators of `set` and the nodes (by id, in file order) of each one's `streams`.
pub(crate) fn targets(set: &ValidatorSet, own: ValidatorId) -> Vec<(ValidatorId, Vec<NodeId>)> {
    let mut out: BTreeMap<ValidatorId, Vec<NodeId>> =
        set.ids().filter(|id| *id != own).map(|id| (id, Vec::new())).collect();
    for (validator, addr) in set.streams() {
        if let (Some(members), Some(node)) = (out.get_mut(&validator), addr.node) {
            members.push(node);
        }
    }
    out.into_iter().collect()
}

/// Where one cluster's next attempt goes: its leader per the catalog unless that node failed
/// during this offer, else the first member from `cursor` on that did not; `None` once every
/// candidate failed.
pub(crate) fn pick(
    leader: Option<NodeId>,
    failed: &[NodeId],
    members: &[NodeId],
    cursor: usize,
) -> Option<NodeId> {
    if let Some(leader) = leader.filter(|l| !failed.contains(l)) {
        return Some(leader);
    }
    let len = members.len();
    (0..len)
        .filter_map(|i| members.get(cursor.wrapping_add(i).checked_rem(len)?).copied())
        .find(|node| !failed.contains(node))
}

/// One block for one cluster.
#[derive(Debug)]
pub(super) struct Offer {
    pub(super) notice: Arc<BlockNotice>,
    /// The cluster's members (stream listeners), in file order.
    pub(super) members: Vec<NodeId>,
    /// When the offer is given up (on the broadcast's time line).
    pub(super) deadline: Duration,
}

/// How delivering one offer went.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Delivery {
    pub(super) outcome: BroadcastOutcome,
    /// The node that answered last (or was tried last).
    pub(super) node: Option<NodeId>,
    pub(super) attempts: u32,
}

/// Offers a block to one cluster, one node at a time, until a node commits it (or is past
/// it), the attempts run out, or the deadline passes. Nodes that failed are skipped until
/// every candidate has failed once; then the round starts over. `cursor` remembers which
/// member to try first when the catalog names no leader: the last one that answered.
pub(super) async fn deliver(
    link: &dyn BlockLink,
    time: &dyn TimeSource,
    validator: ValidatorId,
    offer: &Offer,
    cursor: &mut usize,
    attempt_timeout: Duration,
) -> Delivery {
    let mut failed: Vec<NodeId> = Vec::new();
    let mut pause = RETRY_PAUSE_MIN;
    let mut attempts = 0;
    while attempts < ATTEMPTS_MAX {
        let Some(remaining) = offer.deadline.checked_sub(time.now()).filter(|r| !r.is_zero())
        else {
            break;
        };
        let leader = link.leader_of(validator);
        let next = pick(leader, &failed, &offer.members, *cursor).or_else(|| {
            failed.clear();
            pick(leader, &failed, &offer.members, *cursor)
        });
        let Some(node) = next else { break };
        attempts += 1;
        let answer = link.send(node, (*offer.notice).clone(), attempt_timeout.min(remaining)).await;
        let outcome = match answer {
            Ok(BlockAck::Committed) => Some(BroadcastOutcome::Committed),
            Ok(BlockAck::Stale { .. }) => Some(BroadcastOutcome::Stale),
            Ok(BlockAck::Refused { reason }) => {
                debug!(validator = validator.0, node = node.0, %reason, "block refused");
                None
            }
            Err(error) => {
                debug!(validator = validator.0, node = node.0, %error, "block not sent");
                None
            }
        };
        if let Some(outcome) = outcome {
            if let Some(i) = offer.members.iter().position(|m| *m == node) {
                *cursor = i;
            }
            return Delivery { outcome, node: Some(node), attempts };
        }
        failed.push(node);
        let Some(remaining) = offer.deadline.checked_sub(time.now()) else { break };
        time.sleep(pause.min(remaining)).await;
        pause = pause.saturating_mul(2).min(RETRY_PAUSE_MAX);
    }
    Delivery { outcome: BroadcastOutcome::Failed, node: failed.last().copied(), attempts }
}

/// Hands built blocks to the other clusters: one task per cluster with a bounded queue, so a
/// dead cluster delays only its own offers, and each cluster gets its blocks in height order.
pub(super) struct Broadcaster {
    link: Arc<dyn BlockLink>,
    time: Arc<dyn TimeSource>,
    own: ValidatorId,
    timeout: Duration,
    queues: BTreeMap<ValidatorId, mpsc::Sender<Offer>>,
    tasks: JoinSet<()>,
}

impl Broadcaster {
    pub(super) fn new(
        link: Arc<dyn BlockLink>,
        time: Arc<dyn TimeSource>,
        own: ValidatorId,
        timeout: Duration,
    ) -> Self {
        Self { link, time, own, timeout, queues: BTreeMap::new(), tasks: JoinSet::new() }
    }

    /// Queues `notice` for every other validator of `set`.
    pub(super) fn offer(&mut self, notice: BlockNotice, set: &ValidatorSet) {
        let notice = Arc::new(notice);
        let deadline = self.time.now().saturating_add(self.timeout);
        for (validator, members) in targets(set, self.own) {
            let offer = Offer { notice: Arc::clone(&notice), members, deadline };
            let queue = self.queue(validator);
            match queue.try_send(offer) {
                Ok(()) => {}
                Err(TrySendError::Full(offer)) => {
                    record_broadcast(validator, &offer, BroadcastOutcome::Dropped);
                    warn!(validator = validator.0, height = %offer.notice.height,
                          "broadcast queue full: block not offered");
                }
                Err(TrySendError::Closed(_)) => {
                    error!(validator = validator.0, "broadcast task gone");
                }
            }
        }
    }

    fn queue(&mut self, validator: ValidatorId) -> &mpsc::Sender<Offer> {
        let Self { link, time, timeout, queues, tasks, .. } = self;
        queues.entry(validator).or_insert_with(|| {
            let (queue, offers) = mpsc::channel(BROADCAST_QUEUE_CAPACITY);
            let attempt_timeout = (*timeout / ATTEMPT_SHARE).max(ATTEMPT_TIMEOUT_MIN);
            let worker = Worker {
                link: Arc::clone(link),
                time: Arc::clone(time),
                validator,
                attempt_timeout,
            };
            tasks.spawn(worker.run(offers));
            queue
        })
    }
}

/// Delivers one cluster's offers in order.
struct Worker {
    link: Arc<dyn BlockLink>,
    time: Arc<dyn TimeSource>,
    validator: ValidatorId,
    attempt_timeout: Duration,
}

impl Worker {
    async fn run(self, mut offers: mpsc::Receiver<Offer>) {
        let mut cursor = 0;
        while let Some(offer) = offers.recv().await {
            let delivery = deliver(
                &*self.link,
                &*self.time,
                self.validator,
                &offer,
                &mut cursor,
                self.attempt_timeout,
            )
            .await;
            record_broadcast(self.validator, &offer, delivery.outcome);
            let (validator, height) = (self.validator.0, offer.notice.height);
            let node = delivery.node.map(|n| n.0);
            match delivery.outcome {
                BroadcastOutcome::Failed => warn!(
                    validator, %height, ?node, attempts = delivery.attempts,
                    "block not delivered to a cluster"
                ),
                outcome => debug!(
                    validator, %height, ?node, outcome = outcome.as_str(), "block delivered"
                ),
            }
        }
    }
}

fn record_broadcast(validator: ValidatorId, offer: &Offer, outcome: BroadcastOutcome) {
    metrics::counter!(BROADCAST_TOTAL, "outcome" => outcome.as_str()).increment(1);
    debug!(validator = validator.0, height = %offer.notice.height, outcome = outcome.as_str(),
           "block offer settled");
}
