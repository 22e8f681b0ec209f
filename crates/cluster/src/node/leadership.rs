//! Leadership as an operator sees it: leader changes logged as they happen, and the hand-over
//! before a leader stops (design: "on shutdown a leader hands leadership over first"), so the
//! cluster does not wait out an election timeout to replace it.

use std::time::Duration;

use mempulse_primitives::NodeId;
use openraft::{ServerState, async_runtime::WatchReceiver};
use tokio::task::JoinHandle;

use super::RaftNode;

impl RaftNode {
    /// Spawns a task that logs (info) every change of the leader or the term this node sees,
    /// `leader changed` with the leader (absent while unknown), the term and this node's role;
    /// it ends when the node shuts down.
    #[must_use = "the task runs until the node stops; dropping the handle detaches it"]
    pub fn log_leader_changes(&self) -> JoinHandle<()> {
        let me = self.service.id;
        let mut metrics = self.service.raft.metrics();
        tokio::spawn(async move {
            let mut seen = None;
            loop {
                let now = {
                    let m = metrics.borrow_watched();
                    (m.current_leader, m.current_term, m.state)
                };
                if seen != Some((now.0, now.1)) {
                    seen = Some((now.0, now.1));
                    let (leader, term, state) = now;
                    let role = if leader == Some(me) { "leader" } else { state_name(state) };
                    tracing::info!(
                        node = me.0,
                        leader = leader.map(|l| l.0),
                        term,
                        role,
                        "leader changed"
                    );
                }
                if metrics.changed().await.is_err() {
                    return;
                }
            }
        })
    }

    /// If this node leads, hands leadership to a voter whose log has caught up with the
    /// leader's last entry, and waits until another node leads, for at most `timeout`.
    ///
    /// The target is the caught-up voter with the lowest id (a deterministic choice). When no
    /// voter has caught up yet the leader keeps watching its replication progress until one
    /// has, within the same bound. Returns the node that leads now when that is not this node;
    /// `None` when this node was not the leader, has no other voter, or the bound passed (the
    /// caller then simply stops, and the others elect a leader after their election timeout).
    pub async fn hand_over_leadership(&self, timeout: Duration) -> Option<NodeId> {
        let me = self.service.id;
        let deadline = tokio::time::Instant::now() + timeout;
        let mut metrics = self.service.raft.metrics();
        let mut asked: Option<NodeId> = None;
        loop {
            let target = {
                let m = metrics.borrow_watched();
                if m.state != ServerState::Leader {
                    let other = m.current_leader.filter(|leader| *leader != me);
                    // After asking, wait until the new leader is known (it may take a
                    // heartbeat after this node stepped down).
                    if asked.is_none() || other.is_some() {
                        return other;
                    }
                    None
                } else {
                    let voters = m.membership_config.membership().voter_ids().collect::<Vec<_>>();
                    if voters.iter().all(|id| *id == me) {
                        return None;
                    }
                    let last = m.last_log_index;
                    let matched = m.replication.as_ref();
                    voters.into_iter().filter(|id| *id != me).find(|id| {
                        let index =
                            matched.and_then(|r| r.get(id)).copied().flatten().map(|l| l.index);
                        index.is_some() && index == last
                    })
                }
            };
            if let Some(to) = target
                && asked != Some(to)
            {
                tracing::info!(node = me.0, to = to.0, "handing leadership over");
                if self.service.raft.trigger().transfer_leader(to).await.is_err() {
                    return None;
                }
                asked = Some(to);
            }
            let changed = tokio::time::timeout_at(deadline, metrics.changed()).await;
            match changed {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => {
                    tracing::warn!(node = me.0, "leadership hand-over did not finish in time");
                    return None;
                }
            }
        }
    }
}

const fn state_name(state: ServerState) -> &'static str {
    match state {
        ServerState::Leader => "leader",
        ServerState::Follower => "follower",
        ServerState::Candidate => "candidate",
        ServerState::Learner => "learner",
        ServerState::Shutdown => "shutdown",
    }
}
