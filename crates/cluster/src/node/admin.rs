//! Administration served by a node itself: status, membership changes and leader transfer.
//! Membership changes and transfers only work on the leader; elsewhere they answer
//! [`ClientError::ForwardToLeader`] and [`RaftNode::admin`] forwards them.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
};

use mempulse_primitives::NodeId;
use openraft::{
    ChangeMembers, ServerState,
    async_runtime::WatchReceiver,
    errors::{ChangeMembershipError, ClientWriteError, RaftError},
};

use super::{NodeService, RaftNode};
use crate::{
    AdminError, AdminReply, AdminRequest, ClientError, ClusterNode, StateRootSource, TypeConfig,
    admin::{ClusterStatus, NodeRole},
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
            AdminRequest::AddLearner { id, node } => raft.add_learner(id, node, true).await,
            AdminRequest::Promote { ids } => {
                raft.change_membership(ChangeMembers::AddVoterIds(ids), false).await
            }
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

    async fn transfer_leader(&self, to: NodeId) -> Result<AdminReply, AdminError> {
        if let Err(forward) = self.raft.as_leader() {
            return Err(AdminError::Client(ClientError::forward(forward)));
        }
        if !self.status().voters.contains(&to) {
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

    /// Adds `id` at `node` as a learner (through the leader) and waits until it caught up.
    ///
    /// # Errors
    /// As [`RaftNode::admin`].
    pub async fn add_learner(
        &self,
        id: NodeId,
        node: ClusterNode,
    ) -> Result<AdminReply, AdminError> {
        self.admin(AdminRequest::AddLearner { id, node }).await
    }

    /// Makes the learners `ids` voters (through the leader).
    ///
    /// # Errors
    /// [`AdminError::LearnerNotFound`] for an id that is not a learner; as
    /// [`RaftNode::admin`].
    pub async fn promote(&self, ids: BTreeSet<NodeId>) -> Result<AdminReply, AdminError> {
        self.admin(AdminRequest::Promote { ids }).await
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
    /// [`AdminError::UnknownNode`] when `to` is not a voter; as [`RaftNode::admin`].
    pub async fn transfer_leader(&self, to: NodeId) -> Result<AdminReply, AdminError> {
        self.admin(AdminRequest::TransferLeader { to }).await
    }
}
