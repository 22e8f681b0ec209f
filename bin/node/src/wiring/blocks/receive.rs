//! Committing the blocks other clusters built, through this cluster's Raft log.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use mempulse_api::{BlockOps, ServiceError};
use mempulse_cluster::RaftNode;
use mempulse_net::{
    CheckConfig,
    peer::{BlockAck, BlockHandler, BlockNotice},
};
use mempulse_primitives::NodeId;
use tracing::{debug, info, warn};

use super::{Chain, MemberBlocks, MemberChain, RECEIVED_TOTAL, commit_of, register_metrics};

/// Commits the blocks other clusters send through this cluster's Raft log.
#[derive(Clone)]
pub(crate) struct NodeBlockHandler {
    pub(super) chain: Arc<dyn Chain>,
    pub(super) blocks: Arc<dyn BlockOps>,
}

impl std::fmt::Debug for NodeBlockHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeBlockHandler").finish_non_exhaustive()
    }
}

impl NodeBlockHandler {
    /// The handler of `node`'s cluster (held weakly).
    pub(crate) fn new(node: &Arc<RaftNode>, check: CheckConfig) -> Self {
        register_metrics();
        Self {
            chain: Arc::new(MemberChain(Arc::downgrade(node))),
            blocks: Arc::new(MemberBlocks { node: Arc::downgrade(node), check }),
        }
    }
}

impl BlockHandler for NodeBlockHandler {
    fn on_block(&self, from: NodeId, block: BlockNotice) -> BoxFuture<'static, BlockAck> {
        let this = self.clone();
        Box::pin(async move {
            let (height, round, proposer) = (block.height, block.round, block.proposer.0);
            let ack = receive(&*this.chain, &*this.blocks, &block).await;
            metrics::counter!(RECEIVED_TOTAL, "outcome" => ack.as_str()).increment(1);
            match &ack {
                BlockAck::Committed => info!(from = from.0, %height, round, proposer,
                                             txs = block.txs.len(), "block from a peer committed"),
                BlockAck::Stale { height: ours } => debug!(from = from.0, %height, %ours,
                                                           "block from a peer is stale"),
                BlockAck::Refused { reason } => warn!(from = from.0, %height, %reason,
                                                      "block from a peer refused"),
            }
            ack
        })
    }
}

/// Commits `notice` unless the pool is already at or past its height.
async fn receive(chain: &dyn Chain, blocks: &dyn BlockOps, notice: &BlockNotice) -> BlockAck {
    if !notice.nonces.windows(2).all(|w| matches!(w, [a, b] if a.0 < b.0)) {
        return BlockAck::refused("nonces are not strictly ascending by sender address");
    }
    let Some(ours) = chain.height() else {
        return BlockAck::refused("the node is shutting down");
    };
    if notice.height <= ours {
        return BlockAck::Stale { height: ours };
    }
    match blocks.commit(commit_of(notice)).await {
        Ok(_) => BlockAck::Committed,
        Err(ServiceError::Conflict(mempulse_mempool::Error::HeightNotAscending {
            current,
            ..
        })) => BlockAck::Stale { height: current },
        Err(error) => BlockAck::refused(&error.to_string()),
    }
}
