//! The simulated nodes' [`FactSource`]: a member installing a snapshot asks the leader it
//! knows, then the other members in id order, for the facts the snapshot covers, over the
//! simulated network (a partition, a crashed end or a lost message fails that attempt),
//! answered from the member's event log as the node binary answers from its own
//! (`facts_in_log`): only by a member that applied the range.

use std::collections::BTreeMap;

use futures_util::future::BoxFuture;
use mempulse_primitives::{NodeId, RaftIndex};
use openraft::{async_runtime::WatchReceiver, type_config::TypeConfigExt};

use super::{disk::SimEventLog, history::History, network::SimNetwork};
use crate::{FactSource, FactsChunk, FactsCollector, SimTypeConfig, state_machine::ask_order};

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
                let candidates: Vec<NodeId> = {
                    let metrics = me.metrics();
                    let m = metrics.borrow_watched();
                    let members = m.membership_config.membership().nodes().map(|(n, _)| *n);
                    ask_order(id, m.current_leader, members)
                };
                let mut reasons = Vec::new();
                for peer in candidates {
                    let (delay, lost) = network.draw();
                    SimTypeConfig::sleep(delay).await;
                    let raft = match network.route(id, incarnation, peer) {
                        Ok(raft) if !lost => raft,
                        Ok(_) => {
                            reasons.push(format!("n{}: message lost", peer.0));
                            continue;
                        }
                        Err(e) => {
                            reasons.push(format!("n{}: {e}", peer.0));
                            continue;
                        }
                    };
                    let applied = raft.metrics().borrow_watched().last_applied.map(|l| l.index);
                    match logs.get(&peer) {
                        Some(log) if applied.is_some_and(|a| a >= through.0) => {
                            // A gap of the serving member's own log is copied with its facts.
                            for (a, t) in history.gaps_within(peer, after.0, through.0) {
                                history.gap(id, a.max(after.0), t.min(through.0));
                            }
                            return Ok(FactsCollector::collect(after, skip, through, log.events()));
                        }
                        _ => reasons.push(format!("n{}: has not applied {}", peer.0, through.0)),
                    }
                }
                Err(if reasons.is_empty() {
                    "no other member".to_owned()
                } else {
                    reasons.join("; ")
                })
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
