//! Forwarding: a follower sends a client write or an admin request to the leader it knows,
//! follows leader changes, and gives up at a deadline.
//!
//! ```text
//!  write(command) ──► this node leader? ──► local batcher
//!        │ no: ForwardToLeader{leader}
//!        ▼
//!  leader known? ── no ──► wait for a leader (metrics change, ≤ deadline) ──► retry
//!        │ yes
//!        ▼
//!  Forwarder::write(leader) ──► answer from the leader ──► return it
//!        │ ForwardToLeader (the leader moved) ─► wait until this node sees another leader
//!        │ NotSent (unreachable, refused)       ─► wait for a leader change or backoff, retry
//!        └ Lost (sent, no answer)               ─► Indeterminate (never resent blindly)
//! ```
//! At most [`FORWARD_ATTEMPTS_MAX`] attempts, all within the node's forward deadline. The
//! target serves the request itself and never forwards further, so a request takes at most
//! one hop and no loop can form.

use std::time::Duration;

use mempulse_primitives::NodeId;
use openraft::async_runtime::WatchReceiver;
use tokio::time::Instant;

use super::RaftNode;
use crate::{
    AdminError, AdminReply, AdminRequest, ClientError, ClusterCommand, ClusterNode,
    ClusterResponse, config::FORWARD_ATTEMPTS_MAX, network::ForwardFailure,
};

/// Where one attempt should go.
enum Route {
    Local,
    Leader(NodeId, ClusterNode),
}

/// What one forwarded attempt came back with.
enum Step<T> {
    Done(T),
    /// Retry once this node sees a leader other than the one given.
    Moved(Option<NodeId>),
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
        let deadline = Instant::now() + self.forward_deadline;
        let mut last_leader = None;
        for _ in 0..FORWARD_ATTEMPTS_MAX {
            let step = match self.route()? {
                Route::Local => match self.service.write_local(command.clone()).await {
                    Err(ClientError::ForwardToLeader { leader_id, .. }) => Step::Moved(leader_id),
                    result => Step::Done(result),
                },
                Route::Leader(leader, node) => {
                    last_leader = Some(leader);
                    let timeout = remaining(deadline)?;
                    let answer =
                        self.forwarder.write(leader, &node, command.clone(), timeout).await;
                    forwarded(ForwardKind::Write, forward_outcome(&answer));
                    match answer {
                        Ok(Err(ClientError::ForwardToLeader { .. }))
                        | Err(ForwardFailure::NotSent) => Step::Moved(Some(leader)),
                        Ok(result) => Step::Done(result),
                        Err(ForwardFailure::Lost) => Step::Done(Err(ClientError::Indeterminate {
                            leader_id: Some(leader),
                            leader: Some(node),
                        })),
                    }
                }
            };
            match step {
                Step::Done(result) => return result,
                Step::Moved(from) => self.await_leader_change(from, deadline).await,
            }
            if Instant::now() >= deadline {
                break;
            }
        }
        Err(self.gave_up(last_leader))
    }

    /// Serves `request` here ([`AdminRequest::Status`] and [`AdminRequest::StateRoot`] always)
    /// or at the leader, with the same
    /// forwarding as [`RaftNode::write`].
    ///
    /// # Errors
    /// [`AdminError`] from the leader, or [`AdminError::Client`] when no leader could serve it
    /// before the forward deadline.
    pub async fn admin(&self, request: AdminRequest) -> Result<AdminReply, AdminError> {
        if matches!(request, AdminRequest::Status | AdminRequest::StateRoot { .. }) {
            return self.service.admin_local(request).await;
        }
        let deadline = Instant::now() + self.forward_deadline;
        let mut last_leader = None;
        for _ in 0..FORWARD_ATTEMPTS_MAX {
            let step = match self.route()? {
                Route::Local => match self.service.admin_local(request.clone()).await {
                    Err(AdminError::Client(ClientError::ForwardToLeader { leader_id, .. })) => {
                        Step::Moved(leader_id)
                    }
                    result => Step::Done(result),
                },
                Route::Leader(leader, node) => {
                    last_leader = Some(leader);
                    let timeout = remaining(deadline)?;
                    let answer =
                        self.forwarder.admin(leader, &node, request.clone(), timeout).await;
                    forwarded(ForwardKind::Admin, forward_outcome(&answer));
                    match answer {
                        Ok(Err(AdminError::Client(ClientError::ForwardToLeader { .. })))
                        | Err(ForwardFailure::NotSent) => Step::Moved(Some(leader)),
                        Ok(result) => Step::Done(result),
                        Err(ForwardFailure::Lost) => {
                            Step::Done(Err(AdminError::Client(ClientError::Indeterminate {
                                leader_id: Some(leader),
                                leader: Some(node),
                            })))
                        }
                    }
                }
            };
            match step {
                Step::Done(result) => return result,
                Step::Moved(from) => self.await_leader_change(from, deadline).await,
            }
            if Instant::now() >= deadline {
                break;
            }
        }
        Err(AdminError::Client(self.gave_up(last_leader)))
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

    /// Waits until this node knows a leader other than `from` (bounded by `deadline` and by
    /// one election timeout, so an unreachable leader that stays leader is retried).
    async fn await_leader_change(&self, from: Option<NodeId>, deadline: Instant) {
        let mut metrics = self.service.raft.metrics();
        let step = Duration::from_millis(self.service.raft.config().election_timeout_max);
        let until = deadline.min(Instant::now() + step);
        let changed = async {
            loop {
                {
                    let m = metrics.borrow_watched();
                    if m.current_leader.is_some() && m.current_leader != from {
                        return;
                    }
                }
                if metrics.changed().await.is_err() {
                    return;
                }
            }
        };
        let _ = tokio::time::timeout_at(until, changed).await;
    }

    fn gave_up(&self, last_leader: Option<NodeId>) -> ClientError {
        match last_leader {
            Some(leader) => ClientError::LeaderUnreachable { leader_id: Some(leader) },
            None => ClientError::ForwardToLeader { leader_id: self.leader(), leader: None },
        }
    }
}

/// Time left before `deadline`, or the typed error when none is.
fn remaining(deadline: Instant) -> Result<Duration, ClientError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() { Err(ClientError::LeaderUnreachable { leader_id: None }) } else { Ok(left) }
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
