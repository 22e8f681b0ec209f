//! The node's [`FactSource`]: the facts a snapshot covers, asked of the leader that sent it
//! (`state_machine/backfill.rs` has the why).

use std::{sync::Arc, time::Duration};

use futures_util::future::BoxFuture;
use mempulse_primitives::{NodeId, RaftIndex};
use openraft::{RaftMetrics, async_runtime::WatchReceiver, type_config::alias::WatchReceiverOf};

use crate::{
    AdminReply, AdminRequest, FactSource, FactsChunk, network::Forwarder, types::TypeConfig,
};

/// Asks the current leader (through the node's forwarder) for replicated facts. Holds the
/// metrics watch rather than the Raft handle: the state machine owning this lives inside Raft.
pub(crate) struct LeaderFacts {
    pub(crate) id: NodeId,
    pub(crate) metrics: WatchReceiverOf<TypeConfig, RaftMetrics<TypeConfig>>,
    pub(crate) forwarder: Arc<dyn Forwarder>,
    pub(crate) timeout: Duration,
}

impl FactSource for LeaderFacts {
    fn facts(
        &self,
        after: RaftIndex,
        skip: u32,
        through: RaftIndex,
    ) -> BoxFuture<'static, Result<FactsChunk, String>> {
        let target = {
            let m = self.metrics.borrow_watched();
            m.current_leader.filter(|leader| *leader != self.id).and_then(|leader| {
                let node = m.membership_config.membership().get_node(&leader).cloned();
                node.map(|node| (leader, node))
            })
        };
        let forwarder = Arc::clone(&self.forwarder);
        let timeout = self.timeout;
        Box::pin(async move {
            let Some((leader, node)) = target else {
                return Err("no other member is known to lead".to_owned());
            };
            let request = AdminRequest::Facts { after, skip, through };
            match forwarder.admin(leader, &node, request, timeout).await {
                Ok(Ok(AdminReply::Facts(Some(chunk)))) => Ok(chunk),
                Ok(Ok(AdminReply::Facts(None))) => {
                    Err(format!("leader {} cannot serve them", leader.0))
                }
                Ok(Ok(other)) => Err(format!("leader {} answered {other:?}", leader.0)),
                Ok(Err(error)) => Err(format!("leader {} refused: {error}", leader.0)),
                Err(failure) => Err(format!("leader {} unreachable: {failure:?}", leader.0)),
            }
        })
    }
}
