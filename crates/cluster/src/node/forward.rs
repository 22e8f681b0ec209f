//! Forwarding: a follower sends a client write or an admin request to the leader it knows,
//! follows leader changes, and gives up at a deadline.
//!
//! ```text
//!  write(command) ──► this node leader? ──► local batcher
//!        │ no: ForwardToLeader{hint}
//!        ▼
//!  leader known? ── no ──► wait (leader change, or a short backoff) ──► retry
//!        │ yes
//!        ▼
//!  Forwarder::write(leader) ──► answer from the leader ──► return it
//!        │ ForwardToLeader{hint} ─► hint names another node: retry there at once
//!        │                          no usable hint: wait (leader change or backoff), retry
//!        │ NotSent (unreachable, refused) ─► wait (leader change or backoff), retry
//!        └ Lost (sent, no answer)   ─► Indeterminate (never resent blindly)
//! ```
//! A wait ends as soon as this node's view of the leader changes, or names a leader other than
//! the node just tried; otherwise after a backoff that starts at [`FORWARD_RETRY_FIRST`] and
//! doubles up to the heartbeat interval. The backoff covers the views that lag the truth
//! without any local change to wake on: right after an election the new leader's replication
//! reaches this node before the leader's own metrics say it leads, so its first answers are
//! `ForwardToLeader` without a hint. A hint is followed at once, but never twice in a row, so
//! two nodes naming each other cannot bounce a request without pause. At most
//! [`FORWARD_ATTEMPTS_MAX`] attempts, all within the node's forward deadline. The target serves
//! the request itself and never forwards further, so a request takes at most one hop and no
//! loop can form.

use std::time::Duration;

use mempulse_primitives::NodeId;
use openraft::async_runtime::WatchReceiver;
use tokio::time::Instant;

use super::RaftNode;
use crate::{
    AdminError, AdminReply, AdminRequest, ClientError, ClusterCommand, ClusterNode,
    ClusterResponse,
    config::{FORWARD_ATTEMPTS_MAX, FORWARD_RETRY_FIRST},
    network::ForwardFailure,
};

/// Where one attempt should go.
enum Route {
    Local,
    Leader(NodeId, ClusterNode),
}

/// One attempt of a request.
struct Attempt {
    route: Route,
    /// The node it goes to (this node for [`Route::Local`]).
    target: NodeId,
    /// Whether it follows a hint from the previous answer.
    hinted: bool,
    /// Time left before the forward deadline when it starts.
    time_left: Duration,
}

/// Where a request stands between attempts.
struct Retrying {
    deadline: Instant,
    attempts: u32,
    /// The next wait without a leader change to end it.
    backoff: Duration,
    backoff_max: Duration,
    /// The route an answer's hint named, for the next attempt.
    hinted: Option<Route>,
    /// The last leader a request was sent to.
    last_leader: Option<NodeId>,
}

/// What one attempt came back with.
enum Step<T> {
    Done(T),
    /// Not served (refused as not the leader, or not delivered): safe to retry. `hint` is the
    /// leader the answer named, if any.
    Retry {
        hint: Option<NodeId>,
    },
}

impl RaftNode {
    /// Replicates `command` and returns its outcome once it is applied on the leader and its
    /// facts are durable there. On a follower the command is forwarded to the leader (one
    /// hop), following leader changes until the node's forward deadline. Concurrent writes
    /// share log entries (see the batcher); each caller still gets its own command's outcome.
    ///
    /// # Errors
    /// [`ClientError::TooLarge`] for a command larger than one entry may be;
    /// [`ClientError::Overloaded`] when the leader's write queue is full;
    /// [`ClientError::Indeterminate`] when a leader change discarded the entry, or a forwarded
    /// write's answer was lost; [`ClientError::ForwardToLeader`] when no leader was known
    /// before the deadline; [`ClientError::LeaderUnreachable`] when the leader could not be
    /// reached before it; [`ClientError::Stopped`] when the node is stopping.
    pub async fn write(&self, command: ClusterCommand) -> Result<ClusterResponse, ClientError> {
        let mut retrying = self.retrying();
        while let Some(attempt) = self.next_attempt(&mut retrying)? {
            let step = match &attempt.route {
                Route::Local => match self.service.write_local(command.clone()).await {
                    Err(ClientError::ForwardToLeader { leader_id, .. }) => {
                        Step::Retry { hint: leader_id }
                    }
                    result => Step::Done(result),
                },
                Route::Leader(leader, node) => {
                    let (leader, timeout) = (*leader, attempt.time_left);
                    let answer = self.forwarder.write(leader, node, command.clone(), timeout).await;
                    forwarded(ForwardKind::Write, forward_outcome(&answer));
                    match answer {
                        Ok(Err(ClientError::ForwardToLeader { leader_id, .. })) => {
                            Step::Retry { hint: leader_id }
                        }
                        Err(ForwardFailure::NotSent) => Step::Retry { hint: None },
                        Ok(result) => Step::Done(result),
                        Err(ForwardFailure::Lost) => Step::Done(Err(ClientError::Indeterminate {
                            leader_id: Some(leader),
                            leader: Some(node.clone()),
                        })),
                    }
                }
            };
            match step {
                Step::Done(result) => return result,
                Step::Retry { hint } => self.retry(&mut retrying, &attempt, hint).await,
            }
        }
        Err(self.gave_up(retrying.last_leader))
    }

    /// Serves `request` here when it asks about this node's own state
    /// ([`AdminRequest::is_local`]: status, state root, checkpoint, mempool root) or at the
    /// leader, with the same forwarding as [`RaftNode::write`].
    ///
    /// # Errors
    /// [`AdminError`] from the leader, or [`AdminError::Client`] when no leader could serve it
    /// before the forward deadline.
    pub async fn admin(&self, request: AdminRequest) -> Result<AdminReply, AdminError> {
        if request.is_local() {
            return self.service.admin_local(request).await;
        }
        let mut retrying = self.retrying();
        while let Some(attempt) = self.next_attempt(&mut retrying)? {
            let step = match &attempt.route {
                Route::Local => match self.service.admin_local(request.clone()).await {
                    Err(AdminError::Client(ClientError::ForwardToLeader { leader_id, .. })) => {
                        Step::Retry { hint: leader_id }
                    }
                    result => Step::Done(result),
                },
                Route::Leader(leader, node) => {
                    let (leader, timeout) = (*leader, attempt.time_left);
                    let answer = self.forwarder.admin(leader, node, request.clone(), timeout).await;
                    forwarded(ForwardKind::Admin, forward_outcome(&answer));
                    match answer {
                        Ok(Err(AdminError::Client(ClientError::ForwardToLeader {
                            leader_id,
                            ..
                        }))) => Step::Retry { hint: leader_id },
                        Err(ForwardFailure::NotSent) => Step::Retry { hint: None },
                        Ok(result) => Step::Done(result),
                        Err(ForwardFailure::Lost) => {
                            Step::Done(Err(AdminError::Client(ClientError::Indeterminate {
                                leader_id: Some(leader),
                                leader: Some(node.clone()),
                            })))
                        }
                    }
                }
            };
            match step {
                Step::Done(result) => return result,
                Step::Retry { hint } => self.retry(&mut retrying, &attempt, hint).await,
            }
        }
        Err(AdminError::Client(self.gave_up(retrying.last_leader)))
    }

    /// The retry state of a new request: its deadline is the node's forward deadline from now.
    fn retrying(&self) -> Retrying {
        let heartbeat = Duration::from_millis(self.service.raft.config().heartbeat_interval);
        Retrying {
            deadline: Instant::now() + self.forward_deadline,
            attempts: 0,
            backoff: FORWARD_RETRY_FIRST,
            backoff_max: heartbeat.max(FORWARD_RETRY_FIRST),
            hinted: None,
            last_leader: None,
        }
    }

    /// The next attempt: to the hinted node if the last answer named one to follow, else to
    /// the leader this node knows (or here). `None` once the attempts or the time ran out.
    ///
    /// # Errors
    /// [`ClientError::Stopped`] when the node stops.
    fn next_attempt(&self, retrying: &mut Retrying) -> Result<Option<Attempt>, ClientError> {
        let time_left = retrying.deadline.saturating_duration_since(Instant::now());
        if retrying.attempts >= FORWARD_ATTEMPTS_MAX || time_left.is_zero() {
            return Ok(None);
        }
        retrying.attempts += 1;
        let (route, hinted) = match retrying.hinted.take() {
            Some(route) => (route, true),
            None => (self.route()?, false),
        };
        let target = match &route {
            Route::Local => self.service.id,
            Route::Leader(leader, _) => {
                retrying.last_leader = Some(*leader);
                *leader
            }
        };
        Ok(Some(Attempt { route, target, hinted, time_left }))
    }

    /// Prepares the attempt after `attempt` was not served: at once to the node `hint` names
    /// (unless `attempt` itself followed a hint), else after [`RaftNode::await_retry`].
    async fn retry(&self, retrying: &mut Retrying, attempt: &Attempt, hint: Option<NodeId>) {
        tracing::debug!(
            node = self.service.id.0,
            tried = attempt.target.0,
            hint = hint.map(|h| h.0),
            left_ms = retrying.deadline.saturating_duration_since(Instant::now()).as_millis(),
            "forwarding retries"
        );
        if let Some(next) = hint.filter(|h| *h != attempt.target)
            && !attempt.hinted
            && let Some(route) = self.route_to(next)
        {
            retrying.hinted = Some(route);
            return;
        }
        retrying.backoff =
            if self.await_retry(attempt.target, retrying.backoff, retrying.deadline).await {
                // A new view of the leader starts the backoff afresh: a leader elected a moment
                // ago refuses writes until a quorum acknowledged it (its lease), a few ms.
                FORWARD_RETRY_FIRST
            } else {
                (retrying.backoff * 2).min(retrying.backoff_max)
            };
    }

    /// This node when it leads (or knows no leader: it answers with the typed error), else
    /// the leader and its addresses.
    fn route(&self) -> Result<Route, ClientError> {
        let metrics = self.service.raft.metrics();
        let m = metrics.borrow_watched();
        if m.running_state.is_err() {
            return Err(ClientError::Stopped);
        }
        match m.current_leader {
            Some(leader) if leader != self.service.id => {
                let node = m.membership_config.membership().get_node(&leader).cloned();
                Ok(node.map_or(Route::Local, |node| Route::Leader(leader, node)))
            }
            _ => Ok(Route::Local),
        }
    }

    /// The route to `node` named by a hint: this node, or a member with its addresses (`None`
    /// for a node this node does not know).
    fn route_to(&self, node: NodeId) -> Option<Route> {
        if node == self.service.id {
            return Some(Route::Local);
        }
        let metrics = self.service.raft.metrics();
        let m = metrics.borrow_watched();
        let addrs = m.membership_config.membership().get_node(&node).cloned()?;
        Some(Route::Leader(node, addrs))
    }

    /// Waits until this node's view of the leader changes, or names a leader other than
    /// `tried`, for at most `backoff` (and never past `deadline`). Returns whether the view
    /// changed (rather than the time ran out).
    async fn await_retry(&self, tried: NodeId, backoff: Duration, deadline: Instant) -> bool {
        let mut metrics = self.service.raft.metrics();
        let seen = metrics.borrow_watched().current_leader;
        let until = deadline.min(Instant::now() + backoff);
        let changed = async {
            loop {
                {
                    let m = metrics.borrow_watched();
                    let membership = m.membership_config.membership();
                    let view = LeaderView {
                        stopped: m.running_state.is_err(),
                        seen,
                        now: m.current_leader,
                        tried,
                        me: self.service.id,
                    };
                    if view.worth_retrying(|leader| membership.get_node(&leader).is_some()) {
                        return;
                    }
                }
                if metrics.changed().await.is_err() {
                    return;
                }
            }
        };
        tokio::time::timeout_at(until, changed).await.is_ok()
    }

    fn gave_up(&self, last_leader: Option<NodeId>) -> ClientError {
        match last_leader {
            Some(leader) => ClientError::LeaderUnreachable { leader_id: Some(leader) },
            None => ClientError::ForwardToLeader { leader_id: self.leader(), leader: None },
        }
    }
}

/// What a waiting retry sees of the leader.
#[derive(Clone, Copy, Debug)]
struct LeaderView {
    stopped: bool,
    /// The leader when the wait began.
    seen: Option<NodeId>,
    /// The leader now.
    now: Option<NodeId>,
    /// The node the last attempt went to.
    tried: NodeId,
    me: NodeId,
}

impl LeaderView {
    /// Whether to end the wait and try again now: the node stops, the leader changed, or a
    /// leader other than `tried` can be reached (this node, or a member whose address it
    /// knows). A leader heard of before the membership naming it was applied is not reachable
    /// yet: retrying at once would spin through the attempts in a moment.
    fn worth_retrying(&self, known: impl Fn(NodeId) -> bool) -> bool {
        let reachable =
            |leader: NodeId| leader != self.tried && (leader == self.me || known(leader));
        self.stopped || self.now != self.seen || self.now.is_some_and(reachable)
    }
}

/// Name of the counter of requests a follower forwarded to its leader.
pub(crate) const FORWARDED_TOTAL: &str = "mempulse_cluster_forwarded_total";

/// What was forwarded (metric label `request`).
#[derive(Clone, Copy, Debug)]
enum ForwardKind {
    Write,
    Admin,
}

/// How one forwarding attempt ended (metric label `outcome`): `answered` by the leader,
/// `moved` (the target no longer leads, or it was unreachable before sending), or `lost`
/// (sent, no answer: the write's fate is unknown).
fn forward_outcome<T>(answer: &Result<T, ForwardFailure>) -> &'static str {
    match answer {
        Ok(_) => "answered",
        Err(ForwardFailure::NotSent) => "moved",
        Err(ForwardFailure::Lost) => "lost",
    }
}

/// Counts one forwarding attempt.
fn forwarded(kind: ForwardKind, outcome: &'static str) {
    let request = match kind {
        ForwardKind::Write => "write",
        ForwardKind::Admin => "admin",
    };
    metrics::counter!(FORWARDED_TOTAL, "request" => request, "outcome" => outcome).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_waits_for_a_leader_it_cannot_reach_yet() {
        let view = LeaderView {
            stopped: false,
            seen: Some(NodeId(1)),
            now: Some(NodeId(1)),
            tried: NodeId(2),
            me: NodeId(2),
        };
        // Node 2 tried itself and knows leader 1 only by name: wait (no busy loop).
        assert!(!view.worth_retrying(|_| false));
        // Once the membership naming node 1 is applied, go.
        assert!(view.worth_retrying(|id| id == NodeId(1)));
        // The same leader as the one tried: wait for a change.
        assert!(!LeaderView { tried: NodeId(1), ..view }.worth_retrying(|_| true));
        // A change of leader, this node leading, or stopping: go.
        assert!(LeaderView { now: Some(NodeId(3)), ..view }.worth_retrying(|_| false));
        assert!(
            LeaderView { now: Some(NodeId(2)), seen: Some(NodeId(2)), tried: NodeId(1), ..view }
                .worth_retrying(|_| false)
        );
        assert!(LeaderView { stopped: true, ..view }.worth_retrying(|_| false));
    }
}
