//! Administration served by a node itself: status, membership changes and leader transfer.
//! Membership changes and transfers only work on the leader; elsewhere they answer
//! [`ClientError::ForwardToLeader`] and [`RaftNode::admin`] forwards them.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
    time::Duration,
};

use mempulse_primitives::NodeId;
use openraft::{
    ChangeMembers, Instant as _, RaftMetrics, ServerState,
    async_runtime::WatchReceiver,
    errors::{ChangeMembershipError, ClientWriteError, RaftError},
    metrics::WaitError,
};
use tokio::time::Instant;

use super::{NodeService, RaftNode};
use crate::{
    AdminError, AdminReply, AdminRequest, ClientError, ClusterNode, StateRootSource, TypeConfig,
    admin::{ChangeState, ClusterStatus, LearnerLag, NodeRole, millis},
    config::{MEMBERSHIP_ANSWER_MARGIN, PROMOTE_ACK_AGE_MAX, PROMOTE_LAG_ENTRIES_MAX},
};

impl NodeService {
    /// This node's view of the cluster.
    #[must_use]
    pub fn status(&self) -> ClusterStatus {
        let metrics = self.raft.metrics();
        let m = metrics.borrow_watched();
        let membership = m.membership_config.membership();
        ClusterStatus {
            node: self.id,
            role: match m.state {
                ServerState::Leader => NodeRole::Leader,
                ServerState::Follower => NodeRole::Follower,
                ServerState::Candidate => NodeRole::Candidate,
                ServerState::Learner => NodeRole::Learner,
                ServerState::Shutdown => NodeRole::Shutdown,
            },
            leader: m.current_leader,
            term: m.current_term,
            last_log_index: m.last_log_index,
            committed: m.cluster_committed.map(|c| c.index),
            applied: m.last_applied.map(|a| a.index),
            voters: membership.voter_ids().collect::<BTreeSet<_>>(),
            members: membership
                .nodes()
                .map(|(id, node)| (*id, node.clone()))
                .collect::<BTreeMap<_, _>>(),
            replication: if m.state == ServerState::Leader {
                membership
                    .nodes()
                    .map(|(id, _)| *id)
                    .filter(|id| *id != self.id)
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .map(|id| learner_lag(&m, id, m.last_log_index))
                    .collect()
            } else {
                Vec::new()
            },
        }
    }

    /// Serves `request` on this node, without forwarding.
    ///
    /// # Errors
    /// [`AdminError::Client`] with [`ClientError::ForwardToLeader`] on a follower; the other
    /// [`AdminError`]s for changes the leader refuses.
    pub async fn admin_local(&self, request: AdminRequest) -> Result<AdminReply, AdminError> {
        let raft = &self.raft;
        let written = match request {
            AdminRequest::Status => return Ok(AdminReply::Status(self.status())),
            AdminRequest::AddLearner { id, node, catch_up_timeout } => {
                return self.add_learner(id, node, catch_up_timeout).await;
            }
            AdminRequest::Promote { ids, timeout } => return self.promote(ids, timeout).await,
            AdminRequest::Remove { id } => {
                let status = self.status();
                let change = if status.voters.contains(&id) {
                    // `retain = false`: a removed voter does not stay on as a learner.
                    ChangeMembers::RemoveVoters(BTreeSet::from([id]))
                } else if status.members.contains_key(&id) {
                    ChangeMembers::RemoveNodes(BTreeSet::from([id]))
                } else {
                    return Err(AdminError::UnknownNode(id));
                };
                raft.change_membership(change, false).await
            }
            AdminRequest::TransferLeader { to } => return self.transfer_leader(to).await,
            AdminRequest::ReadIndex => return self.read_index().await,
            AdminRequest::StateRoot { .. }
            | AdminRequest::Checkpoint { .. }
            | AdminRequest::MempoolRoot
            | AdminRequest::MempoolSnapshot { .. }
            | AdminRequest::Facts { .. } => return self.replica_query(request).await,
        };
        match written {
            Ok(response) => Ok(AdminReply::Done { log_index: Some(response.log_id.index) }),
            Err(e) => Err(admin_error(e)),
        }
    }

    /// This node's answer about its own replicated state (state root, checkpoint chunk,
    /// mempool root, mempool export chunk) from the installed [`StateRootSource`]; refused while none is.
    async fn replica_query(&self, request: AdminRequest) -> Result<AdminReply, AdminError> {
        let Some(source) = self.state_roots.get().cloned() else {
            return Err(AdminError::Refused);
        };
        // The source may wait for the replayer's lock while it applies a batch.
        tokio::task::spawn_blocking(move || crate::admin::answer_from(source.as_ref(), &request))
            .await
            .ok()
            .flatten()
            .ok_or(AdminError::Refused)
    }

    /// Installs where [`AdminRequest::StateRoot`] answers come from (once; later calls are
    /// ignored and return `false`).
    pub fn serve_state_roots(&self, source: Arc<dyn StateRootSource>) -> bool {
        self.state_roots.set(source).is_ok()
    }

    /// `Ok` on the leader, else where to forward.
    fn leader_only(&self) -> Result<(), AdminError> {
        match self.raft.as_leader() {
            Ok(_) => Ok(()),
            Err(forward) => Err(AdminError::Client(ClientError::forward(forward))),
        }
    }

    /// Adds `id` as a learner unless it is a member, then waits (at most `timeout`) until its
    /// log holds the membership entry that added it. openraft's own blocking wait is no use
    /// here: it ends once the learner is within `replication_lag_threshold` (5000) entries,
    /// which a young cluster's learner is before it acknowledged anything.
    async fn add_learner(
        &self,
        id: NodeId,
        node: ClusterNode,
        timeout: Duration,
    ) -> Result<AdminReply, AdminError> {
        self.leader_only()?;
        let status = self.status();
        if status.members.contains_key(&id) {
            return Err(AdminError::AlreadyMember { id, voter: status.voters.contains(&id) });
        }
        let started = Instant::now();
        let written = self.raft.add_learner(id, node, false).await.map_err(admin_error)?;
        let log_index = written.log_id.index;
        let left = timeout.saturating_sub(started.elapsed());
        let caught_up =
            |m: &RaftMetrics<TypeConfig>| matched(m, id).is_some_and(|i| i >= log_index);
        match self.raft.wait(Some(left)).metrics(caught_up, "learner caught up").await {
            Ok(_) => Ok(AdminReply::Done { log_index: Some(log_index) }),
            Err(WaitError::ShuttingDown) => Err(AdminError::Client(ClientError::Stopped)),
            Err(WaitError::Timeout(..)) => {
                let lag = learner_lag(&self.raft.metrics().borrow_watched(), id, Some(log_index));
                Err(AdminError::LearnerNotCaughtUp {
                    lag,
                    log_index,
                    waited_ms: millis(started.elapsed()),
                })
            }
        }
    }

    /// Makes learners voters once each is within [`PROMOTE_LAG_ENTRIES_MAX`] of the commit
    /// index and acknowledged the leader recently ([`PROMOTE_ACK_AGE_MAX`], or twice the
    /// election timeout when longer); nothing is proposed otherwise. openraft would promote an
    /// unreachable learner, and a one-voter cluster would then need it for every commit (this
    /// one included).
    async fn promote(
        &self,
        ids: BTreeSet<NodeId>,
        timeout: Duration,
    ) -> Result<AdminReply, AdminError> {
        self.leader_only()?;
        let election_ms = self.raft.config().election_timeout_max.saturating_mul(2);
        let ack_age_max_ms = millis(PROMOTE_ACK_AGE_MAX).max(election_ms);
        let behind = {
            let metrics = self.raft.metrics();
            let m = metrics.borrow_watched();
            let membership = m.membership_config.membership();
            let committed = m.cluster_committed.map(|c| c.index);
            let mut behind = Vec::new();
            for id in &ids {
                if membership.get_node(id).is_none() {
                    return Err(AdminError::LearnerNotFound(*id));
                }
                if membership.voter_ids().any(|voter| voter == *id) {
                    continue;
                }
                let lag = learner_lag(&m, *id, committed);
                let silent = lag.ack_age_ms.is_none_or(|age| age > ack_age_max_ms);
                if lag.matched.is_none() || lag.entries() > PROMOTE_LAG_ENTRIES_MAX || silent {
                    behind.push(lag);
                }
            }
            behind
        };
        if !behind.is_empty() {
            return Err(AdminError::LearnersBehind(behind));
        }
        self.change_within(ChangeMembers::AddVoterIds(ids), timeout).await
    }

    /// Proposes `change` and waits at most `timeout` for it to commit; on timeout, says how
    /// far it got (the change itself goes on: a proposed entry cannot be withdrawn).
    async fn change_within(
        &self,
        change: ChangeMembers<NodeId, ClusterNode>,
        timeout: Duration,
    ) -> Result<AdminReply, AdminError> {
        let membership_index =
            |m: &RaftMetrics<TypeConfig>| m.membership_config.log_id().map(|l| l.index);
        let before = membership_index(&self.raft.metrics().borrow_watched());
        let started = Instant::now();
        match tokio::time::timeout(timeout, self.raft.change_membership(change, false)).await {
            Ok(Ok(response)) => Ok(AdminReply::Done { log_index: Some(response.log_id.index) }),
            Ok(Err(e)) => Err(admin_error(e)),
            Err(_elapsed) => {
                let metrics = self.raft.metrics();
                let m = metrics.borrow_watched();
                let latest = membership_index(&m);
                let committed = m.committed_membership_config.log_id().map(|l| l.index);
                let state = match latest {
                    Some(log_index) if latest != before && committed == latest => {
                        ChangeState::Committed { log_index }
                    }
                    Some(log_index) if latest != before => ChangeState::Proposed { log_index },
                    _ => ChangeState::NotProposed,
                };
                Err(AdminError::ChangeTimedOut { state, waited_ms: millis(started.elapsed()) })
            }
        }
    }

    async fn transfer_leader(&self, to: NodeId) -> Result<AdminReply, AdminError> {
        self.leader_only()?;
        let status = self.status();
        if !status.voters.contains(&to) {
            if status.members.contains_key(&to) {
                return Err(AdminError::NotVoter(to));
            }
            return Err(AdminError::UnknownNode(to));
        }
        if to != self.id {
            self.raft
                .trigger()
                .transfer_leader(to)
                .await
                .map_err(|_| AdminError::Client(ClientError::Stopped))?;
        }
        Ok(AdminReply::Done { log_index: None })
    }
}

/// The last log index the leader knows `id` holds (`None` off the leader, or nothing yet).
fn matched(m: &RaftMetrics<TypeConfig>, id: NodeId) -> Option<u64> {
    m.replication.as_ref()?.get(&id).copied().flatten().map(|l| l.index)
}

/// How far `id` is from `target`, and how long ago the leader last heard from it.
fn learner_lag(m: &RaftMetrics<TypeConfig>, id: NodeId, target: Option<u64>) -> LearnerLag {
    let acked = m.heartbeat.as_ref().and_then(|h| h.get(&id).copied().flatten());
    LearnerLag {
        id,
        matched: matched(m, id),
        target,
        ack_age_ms: acked.map(|at| millis(at.elapsed())),
    }
}

fn admin_error(e: RaftError<TypeConfig, ClientWriteError<TypeConfig>>) -> AdminError {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => {
            AdminError::Client(ClientError::forward(f))
        }
        RaftError::APIError(ClientWriteError::LogEntryDiscarded(f)) => {
            AdminError::Client(ClientError::Indeterminate {
                leader_id: f.leader_id,
                leader: f.leader_node,
            })
        }
        RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => match e {
            ChangeMembershipError::InProgress(_) => AdminError::InProgress,
            ChangeMembershipError::EmptyMembership(_) => AdminError::EmptyMembership,
            ChangeMembershipError::LearnerNotFound(e) => AdminError::LearnerNotFound(e.node_id),
            ChangeMembershipError::UnsupportedMembershipTransition(_)
            | ChangeMembershipError::UncommittedLeaderLog(_)
            | ChangeMembershipError::NodeMetadataChanged(_) => AdminError::Refused,
        },
        RaftError::APIError(ClientWriteError::PreconditionFailed(_)) => AdminError::Refused,
        RaftError::Fatal(_) => AdminError::Client(ClientError::Stopped),
    }
}

impl RaftNode {
    /// This node's view of the cluster (never forwarded).
    #[must_use]
    pub fn status(&self) -> ClusterStatus {
        self.service.status()
    }

    /// Adds `id` at `node` as a learner (through the leader) and waits until it caught up,
    /// at most the forward deadline less [`MEMBERSHIP_ANSWER_MARGIN`].
    ///
    /// # Errors
    /// [`AdminError::AlreadyMember`] for a member; [`AdminError::LearnerNotCaughtUp`] when it
    /// was added but did not catch up in time; as [`RaftNode::admin`].
    pub async fn add_learner(
        &self,
        id: NodeId,
        node: ClusterNode,
    ) -> Result<AdminReply, AdminError> {
        let catch_up_timeout = self.membership_wait();
        self.admin(AdminRequest::AddLearner { id, node, catch_up_timeout }).await
    }

    /// Makes the learners `ids` voters (through the leader), waiting for the change to commit
    /// at most the forward deadline less [`MEMBERSHIP_ANSWER_MARGIN`].
    ///
    /// # Errors
    /// [`AdminError::LearnerNotFound`] for an id that is not a member;
    /// [`AdminError::LearnersBehind`] for learners that have not caught up (nothing is
    /// proposed); [`AdminError::ChangeTimedOut`]; as [`RaftNode::admin`].
    pub async fn promote(&self, ids: BTreeSet<NodeId>) -> Result<AdminReply, AdminError> {
        self.admin(AdminRequest::Promote { ids, timeout: self.membership_wait() }).await
    }

    /// How long the leader may wait inside a membership request this node forwards: its
    /// answer must arrive within the forward deadline (half of it at least).
    fn membership_wait(&self) -> Duration {
        let deadline = self.forward_deadline;
        deadline.saturating_sub(MEMBERSHIP_ANSWER_MARGIN).max(deadline / 2)
    }

    /// Removes `id` from the cluster (through the leader).
    ///
    /// # Errors
    /// [`AdminError::UnknownNode`] when it is not a member; [`AdminError::EmptyMembership`]
    /// for the last voter; as [`RaftNode::admin`].
    pub async fn remove(&self, id: NodeId) -> Result<AdminReply, AdminError> {
        self.admin(AdminRequest::Remove { id }).await
    }

    /// Asks the leader to hand leadership to voter `to`; returns once the leader started the
    /// transfer (watch [`RaftNode::leader`] for the outcome).
    ///
    /// # Errors
    /// [`AdminError::UnknownNode`] when `to` is not a member, [`AdminError::NotVoter`] when
    /// it is a learner; as [`RaftNode::admin`].
    pub async fn transfer_leader(&self, to: NodeId) -> Result<AdminReply, AdminError> {
        self.admin(AdminRequest::TransferLeader { to }).await
    }
}
