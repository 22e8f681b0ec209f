//! Blocks across validator clusters: the producer that builds, commits and broadcasts a block
//! in this validator's slots, and the handler that commits the blocks other clusters built
//! (`docs/design/blocks.md`). Glue over `mempulse-schedule` (the slot clock), the cluster's
//! block commands (the same path as `POST /v1/blocks/build` and `/v1/blocks/commit`) and the
//! peer links of `mempulse-net`.
//!
//! ```text
//!  every tick: the pool's height ─► SlotDriver (a commit opens the next height; a passed
//!     deadline moves the round to the next proposer: slot missed)
//!     ─► our validator's slot, ready leader, (height, round) not built yet, half the slot gone
//!     ─► BuildBlock (the [blocks] limits) ─► CommitBlock in this cluster (hashes in block
//!        order, next nonce per sender by address)
//!     ─► BlockNotice to every other validator of the height's set: one worker per validator
//!        (bounded queue), one node at a time (its leader per the catalog, else the next member
//!        of its `streams`), bounded retries until the broadcast timeout
//!  peer session ─► NodeBlockHandler::on_block ─► CommitBlock through this cluster's Raft log
//!     (a follower forwards) ─► Committed | Stale{our height} | Refused{reason}
//! ```

mod broadcast;
mod receive;
mod slots;

use std::{
    sync::{Arc, Once, Weak},
    time::Duration,
};

use futures_util::future::{self, BoxFuture};
use mempulse_api::{
    BlockOps, BlockOutcome, BuildRequest, ReorgRequest, ServiceError, ServiceResult, Unavailable,
};
use mempulse_cluster::RaftNode;
use mempulse_mempool::{BlockLimits, CommitBlock};
use mempulse_net::{CheckConfig, peer::BlockNotice};
use mempulse_primitives::{Height, ValidatorId};
use mempulse_schedule::{Schedule, Slot, SlotConfig, SlotMissed};
use metrics::Unit;
use tokio::task::JoinHandle;
use tracing::{debug, error, info, warn};

pub(crate) use self::{
    broadcast::{BlockLink, PeerBlockLink},
    receive::NodeBlockHandler,
};
use self::{
    broadcast::{BroadcastOutcome, Broadcaster, TimeSource, TokioTime},
    slots::{SlotDriver, commit_of, notice},
};
use super::{NodeBlocks, state::pool_height};

/// Blocks this node built (`BuildBlock` answered with a proposal).
pub(crate) const BUILT_TOTAL: &str = "mempulse_blocks_built_total";
/// Blocks this node built and committed in its own cluster.
pub(crate) const COMMITTED_TOTAL: &str = "mempulse_blocks_committed_total";
/// Slots in which this node should have produced a block but could not, by stage.
pub(crate) const PRODUCE_FAILED_TOTAL: &str = "mempulse_blocks_produce_failed_total";
/// Offers of a built block to another cluster, by outcome.
pub(crate) const BROADCAST_TOTAL: &str = "mempulse_blocks_broadcast_total";
/// Slots whose deadline passed without a commit, as this node's slot clock saw them.
pub(crate) const SLOTS_MISSED_TOTAL: &str = "mempulse_blocks_slots_missed_total";
/// Blocks other clusters sent here, by answer.
pub(crate) const RECEIVED_TOTAL: &str = "mempulse_blocks_received_total";

/// Slots one tick may report missed (a node that stalled catches up over several ticks).
const MISSED_PER_TICK_MAX: usize = 64;
/// The producer's tick is the slot duration over this, within the bounds below.
const TICKS_PER_SLOT: u32 = 10;
/// Shortest and longest producer tick.
const TICK_MIN: Duration = Duration::from_millis(5);
const TICK_MAX: Duration = Duration::from_millis(50);
/// Blocks waiting to be offered to one other cluster; an offer beyond is dropped (counted).
const BROADCAST_QUEUE_CAPACITY: usize = 8;
/// Attempts to hand one block to one cluster.
const ATTEMPTS_MAX: u32 = 8;
/// One attempt may take the broadcast timeout over this (at least the minimum below).
const ATTEMPT_SHARE: u32 = 3;
const ATTEMPT_TIMEOUT_MIN: Duration = Duration::from_millis(50);
/// Pause after a failed attempt: doubling from the minimum up to the maximum.
const RETRY_PAUSE_MIN: Duration = Duration::from_millis(10);
const RETRY_PAUSE_MAX: Duration = Duration::from_millis(160);

/// Describes this module's series and registers them at zero (once: the handler and the
/// producer both call it, and a later call must not reset what the first one counted).
fn register_metrics() {
    static REGISTERED: Once = Once::new();
    REGISTERED.call_once(register_metrics_once);
}

fn register_metrics_once() {
    metrics::describe_counter!(BUILT_TOTAL, Unit::Count, "blocks this node built");
    metrics::describe_counter!(COMMITTED_TOTAL, Unit::Count, "built blocks committed here");
    metrics::describe_counter!(PRODUCE_FAILED_TOTAL, Unit::Count, "own slots without a block");
    metrics::describe_counter!(BROADCAST_TOTAL, Unit::Count, "blocks offered to other clusters");
    metrics::describe_counter!(SLOTS_MISSED_TOTAL, Unit::Count, "slots that timed out");
    metrics::describe_counter!(RECEIVED_TOTAL, Unit::Count, "blocks other clusters sent");
    for name in [BUILT_TOTAL, COMMITTED_TOTAL, SLOTS_MISSED_TOTAL] {
        metrics::counter!(name).absolute(0);
    }
    for stage in [Stage::Build, Stage::Commit] {
        metrics::counter!(PRODUCE_FAILED_TOTAL, "stage" => stage.as_str()).absolute(0);
    }
    for outcome in BroadcastOutcome::ALL {
        metrics::counter!(BROADCAST_TOTAL, "outcome" => outcome.as_str()).absolute(0);
    }
    for outcome in ["committed", "stale", "refused"] {
        metrics::counter!(RECEIVED_TOTAL, "outcome" => outcome).absolute(0);
    }
}

/// Which step of producing a block failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Build,
    Commit,
}

impl Stage {
    const fn as_str(self) -> &'static str {
        match self {
            Self::Build => "build",
            Self::Commit => "commit",
        }
    }
}

/// What producing a block in a slot came to.
#[derive(Debug)]
enum Produced {
    /// Built and committed here: to be offered to the other clusters.
    Committed(BlockNotice),
    /// Another block of this height (or above) was committed here first.
    Overtaken {
        /// The pool's height.
        height: Height,
    },
    /// A step failed.
    Failed {
        /// Which.
        stage: Stage,
        /// Why.
        error: ServiceError,
    },
}

/// Builds a block for `slot` within `limits` and commits it in this cluster.
async fn produce(blocks: &dyn BlockOps, slot: Slot, limits: BlockLimits) -> Produced {
    let request = BuildRequest { limits, proposer: slot.proposer };
    let block = match blocks.build(request).await {
        Ok(BlockOutcome { block: Some(block), .. }) => block,
        Ok(BlockOutcome { block: None, .. }) => {
            let error = ServiceError::Unavailable(Unavailable::Overloaded);
            return Produced::Failed { stage: Stage::Build, error };
        }
        Err(error) => return Produced::Failed { stage: Stage::Build, error },
    };
    metrics::counter!(BUILT_TOTAL).increment(1);
    let notice = notice(&slot, &block);
    match blocks.commit(commit_of(&notice)).await {
        Ok(_) => Produced::Committed(notice),
        Err(ServiceError::Conflict(mempulse_mempool::Error::HeightNotAscending {
            current,
            ..
        })) => Produced::Overtaken { height: current },
        Err(error) => Produced::Failed { stage: Stage::Commit, error },
    }
}

/// What the producer and the handler read of this node's member.
pub(crate) trait Chain: Send + Sync + 'static {
    /// The pool's committed height; `None` once the member is gone.
    fn height(&self) -> Option<Height>;

    /// Whether this node leads its cluster and has applied an entry of its term.
    fn is_ready_leader(&self) -> bool;
}

/// [`Chain`] over the Raft member, held weakly (the node's shutdown waits to own it).
#[derive(Debug)]
struct MemberChain(Weak<RaftNode>);

impl Chain for MemberChain {
    fn height(&self) -> Option<Height> {
        self.0.upgrade().map(|node| pool_height(&node))
    }

    fn is_ready_leader(&self) -> bool {
        self.0.upgrade().is_some_and(|node| node.is_ready_leader())
    }
}

/// [`BlockOps`] over the Raft member, held weakly: the same commands as the HTTP API's.
#[derive(Debug)]
struct MemberBlocks {
    node: Weak<RaftNode>,
    check: CheckConfig,
}

impl MemberBlocks {
    fn ops(&self) -> ServiceResult<NodeBlocks> {
        let node =
            self.node.upgrade().ok_or(ServiceError::Unavailable(Unavailable::ShuttingDown))?;
        Ok(NodeBlocks::new(node, self.check.clone()))
    }
}

impl BlockOps for MemberBlocks {
    fn build(&self, request: BuildRequest) -> BoxFuture<'_, ServiceResult<BlockOutcome>> {
        match self.ops() {
            Ok(ops) => Box::pin(async move { ops.build(request).await }),
            Err(error) => Box::pin(future::ready(Err(error))),
        }
    }

    fn commit(&self, request: CommitBlock) -> BoxFuture<'_, ServiceResult<BlockOutcome>> {
        match self.ops() {
            Ok(ops) => Box::pin(async move { ops.commit(request).await }),
            Err(error) => Box::pin(future::ready(Err(error))),
        }
    }

    fn reorg(&self, request: ReorgRequest) -> BoxFuture<'_, ServiceResult<BlockOutcome>> {
        match self.ops() {
            Ok(ops) => Box::pin(async move { ops.reorg(request).await }),
            Err(error) => Box::pin(future::ready(Err(error))),
        }
    }
}

/// What the producer needs besides the member.
#[derive(Clone, Debug)]
pub(crate) struct ProducerOptions {
    /// The schedule of the validators file.
    pub(crate) genesis: Schedule,
    /// This node's validator.
    pub(crate) validator: ValidatorId,
    /// The slot duration of the validators file.
    pub(crate) slot: SlotConfig,
    /// Limits of every block built.
    pub(crate) limits: BlockLimits,
    /// How long a block is offered to each other cluster.
    pub(crate) broadcast_timeout: Duration,
}

/// The running producer; stopping it also stops its broadcast tasks.
#[derive(Debug)]
pub(crate) struct BlockProducer {
    task: JoinHandle<()>,
}

impl BlockProducer {
    /// Starts producing for `node`'s cluster; without `link` built blocks stay in this cluster.
    pub(crate) fn start(
        node: &Arc<RaftNode>,
        check: CheckConfig,
        options: ProducerOptions,
        link: Option<Arc<dyn BlockLink>>,
    ) -> Self {
        register_metrics();
        let chain = Arc::new(MemberChain(Arc::downgrade(node)));
        let blocks = Arc::new(MemberBlocks { node: Arc::downgrade(node), check });
        if link.is_none() {
            warn!("no peer links: built blocks stay in this cluster");
        }
        info!(
            validator = options.validator.0,
            slot_ms = options.slot.slot_duration.as_millis(),
            "block producer started"
        );
        Self { task: tokio::spawn(run(options, chain, blocks, link)) }
    }

    /// Stops producing (a block being built or offered is abandoned).
    pub(crate) fn stop(self) {
        self.task.abort();
    }
}

/// The producer's loop: follow the pool every tick, report missed slots, build when due.
async fn run(
    options: ProducerOptions,
    chain: Arc<dyn Chain>,
    blocks: Arc<dyn BlockOps>,
    link: Option<Arc<dyn BlockLink>>,
) {
    let time: Arc<dyn TimeSource> = Arc::new(TokioTime { origin: tokio::time::Instant::now() });
    let Some(committed) = chain.height() else { return };
    let ProducerOptions { genesis, validator, slot, limits, broadcast_timeout } = options;
    let mut driver = match SlotDriver::new(genesis, slot, validator, committed, time.now()) {
        Ok(driver) => driver,
        Err(error) => {
            error!(%error, height = %committed, "no slot clock at the pool's height: not producing");
            return;
        }
    };
    let mut broadcaster =
        link.map(|link| Broadcaster::new(link, Arc::clone(&time), validator, broadcast_timeout));
    let period = (slot.slot_duration / TICKS_PER_SLOT).clamp(TICK_MIN, TICK_MAX);
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(committed) = chain.height() else { return };
        let now = time.now();
        match driver.observe(committed, now) {
            Ok(missed) => missed.iter().for_each(report_missed),
            Err(error) => warn!(%error, height = %committed, "slot clock did not follow the pool"),
        }
        let Some(slot) = driver.due(now, chain.is_ready_leader()) else { continue };
        match produce(&*blocks, slot, limits).await {
            Produced::Committed(notice) => {
                metrics::counter!(COMMITTED_TOTAL).increment(1);
                info!(height = %notice.height, round = notice.round, txs = notice.txs.len(),
                      "block built and committed");
                if let (Some(broadcaster), Some(set)) = (broadcaster.as_mut(), driver.members()) {
                    broadcaster.offer(notice, set);
                }
            }
            Produced::Overtaken { height } => {
                debug!(slot = %slot.height, %height, "another block of the height came first");
            }
            Produced::Failed { stage, error } => {
                metrics::counter!(PRODUCE_FAILED_TOTAL, "stage" => stage.as_str()).increment(1);
                warn!(stage = stage.as_str(), %error, height = %slot.height, round = %slot.round,
                      "block production failed");
            }
        }
    }
}

fn report_missed(missed: &SlotMissed) {
    metrics::counter!(SLOTS_MISSED_TOTAL).increment(1);
    info!(height = %missed.height, round = %missed.round, proposer = missed.proposer.0,
          next_round = %missed.next.round, next_proposer = missed.next.proposer.0,
          "slot missed");
}

#[cfg(test)]
mod tests;
