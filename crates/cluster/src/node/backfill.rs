//! The node's [`FactSource`]: the facts a snapshot covers, asked of the leader that sent it
//! and, when it cannot serve them, of the other members in id order
//! (`state_machine/backfill.rs` has the why).

use std::{sync::Arc, time::Duration};

use futures_util::future::BoxFuture;
use mempulse_primitives::{NodeId, RaftIndex};
use openraft::{RaftMetrics, async_runtime::WatchReceiver, type_config::alias::WatchReceiverOf};

use crate::{
    AdminReply, AdminRequest, ClusterNode, FactSource, FactsChunk, network::Forwarder,
    state_machine::ask_order, types::TypeConfig,
};

/// Asks members for replicated facts through the node's forwarder. Holds the metrics watch
/// rather than the Raft handle: the state machine owning this lives inside Raft.
pub(crate) struct PeerFacts {
    pub(crate) id: NodeId,
    pub(crate) metrics: WatchReceiverOf<TypeConfig, RaftMetrics<TypeConfig>>,
    pub(crate) forwarder: Arc<dyn Forwarder>,
    pub(crate) timeout: Duration,
}

impl PeerFacts {
    /// The members to ask, the leader first, then the others in id order (never this node).
    fn candidates(&self) -> Vec<(NodeId, ClusterNode)> {
        let m = self.metrics.borrow_watched();
        let membership = m.membership_config.membership();
        let order = ask_order(self.id, m.current_leader, membership.nodes().map(|(id, _)| *id));
        order
            .into_iter()
            .filter_map(|id| membership.get_node(&id).map(|node| (id, node.clone())))
            .collect()
    }
}

impl FactSource for PeerFacts {
    fn facts(
        &self,
        after: RaftIndex,
        skip: u32,
        through: RaftIndex,
    ) -> BoxFuture<'static, Result<FactsChunk, String>> {
        let candidates = self.candidates();
        let forwarder = Arc::clone(&self.forwarder);
        let timeout = self.timeout;
        Box::pin(async move {
            let mut reasons = Vec::new();
            for (peer, node) in candidates {
                let request = AdminRequest::Facts { after, skip, through };
                let reason = match forwarder.admin(peer, &node, request, timeout).await {
                    Ok(Ok(AdminReply::Facts(Some(chunk)))) => return Ok(chunk),
                    Ok(Ok(AdminReply::Facts(None))) => "cannot serve them".to_owned(),
                    Ok(Ok(other)) => format!("answered {other:?}"),
                    Ok(Err(error)) => format!("refused: {error}"),
                    Err(failure) => format!("unreachable: {failure:?}"),
                };
                reasons.push(format!("n{}: {reason}", peer.0));
            }
            if reasons.is_empty() {
                return Err("no other member".to_owned());
            }
            Err(reasons.join("; "))
        })
    }
}
