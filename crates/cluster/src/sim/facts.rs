//! The simulated nodes' [`FactSource`]: a member installing a snapshot asks the leader it
//! knows for the facts the snapshot covers, over the simulated network (a partition, a crashed
//! end or a lost message fails the fill), answered from the leader's event log as the node
//! binary answers from its own (`facts_in_log`): only by a leader that applied the range.

use std::collections::BTreeMap;

use futures_util::future::BoxFuture;
use mempulse_primitives::{NodeId, RaftIndex};
use openraft::{async_runtime::WatchReceiver, type_config::TypeConfigExt};

use super::{disk::SimEventLog, history::History, network::SimNetwork};
use crate::{FactSource, FactsChunk, FactsCollector, SimTypeConfig};

/// One incarnation's source.
pub(crate) struct SimFacts {
    pub(crate) id: NodeId,
    pub(crate) incarnation: u64,
    pub(crate) network: SimNetwork,
    /// Every node's event log (they outlive incarnations).
    pub(crate) logs: BTreeMap<NodeId, SimEventLog>,
    pub(crate) history: History,
}

impl FactSource for SimFacts {
    fn facts(
        &self,
        after: RaftIndex,
        skip: u32,
        through: RaftIndex,
    ) -> BoxFuture<'static, Result<FactsChunk, String>> {
        let (id, incarnation, network) = (self.id, self.incarnation, self.network.clone());
        let (logs, history) = (self.logs.clone(), self.history.clone());
        Box::pin(async move {
            let answer = async {
                let me = network.route(id, incarnation, id).map_err(|e| e.to_string())?;
                let leader = me.metrics().borrow_watched().current_leader;
                let leader = leader.filter(|l| *l != id).ok_or("no other member leads")?;
                let (delay, lost) = network.draw();
                SimTypeConfig::sleep(delay).await;
                let raft = network.route(id, incarnation, leader).map_err(|e| e.to_string())?;
                if lost {
                    return Err("message lost".to_owned());
                }
                let applied = raft.metrics().borrow_watched().last_applied.map(|l| l.index);
                if applied.is_none_or(|a| a < through.0) {
                    return Err(format!("n{} has not applied {}", leader.0, through.0));
                }
                let log = logs.get(&leader).ok_or("no such node")?;
                Ok(FactsCollector::collect(after, skip, through, log.events()))
            };
            let result = answer.await;
            if let Err(reason) = &result {
                history.note(format_args!("n{} facts {after:?}..={through:?}: {reason}", id.0));
                history.gap(id, after.0, through.0);
            }
            result
        })
    }
}
