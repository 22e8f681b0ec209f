//! Linearizable reads on any member (the read-index protocol): the leader confirms its
//! leadership with a quorum and names its read index; the member that serves the read waits
//! until its own state machine has applied through that index, then reads locally.
//!
//! ```text
//!  read_linearizable(timeout, read)
//!        │
//!        ▼  AdminRequest::ReadIndex, here or forwarded to the leader (as RaftNode::admin)
//!  leader: get_read_linearizer(ReadIndex) ── heartbeat round confirms leadership ──►
//!          ReadIndex { index } = max(its term's first entry, its commit index)
//!        │
//!        ▼  this node: wait until applied ≥ index
//!  read(StateView)   (sees every write acknowledged before the call started)
//! ```
//! Every write acknowledged before the call was committed at an index at or below the read
//! index, so a state that applied through it contains the write. A member that cannot get a
//! confirmed index before the deadline answers an error and never a stale state.

use std::time::Duration;

use mempulse_primitives::RaftIndex;
use openraft::{
    ReadPolicy,
    errors::{LinearizableReadError, RaftError},
    metrics::WaitError,
};
use tokio::time::Instant;

use super::{NodeService, RaftNode};
use crate::{
    AdminError, AdminReply, AdminRequest, ClientError, TypeConfig, state_machine::StateView,
};

impl NodeService {
    /// Serves [`AdminRequest::ReadIndex`] on this node: confirms with a quorum that it still
    /// leads and answers the index a reader's state must have applied through.
    ///
    /// # Errors
    /// [`ClientError::ForwardToLeader`] on a follower, [`ClientError::NoQuorum`] when no quorum
    /// confirmed the leadership, [`ClientError::Stopped`] when the node stops.
    pub(crate) async fn read_index(&self) -> Result<AdminReply, AdminError> {
        let linearizer = self
            .raft
            .get_read_linearizer(ReadPolicy::ReadIndex)
            .await
            .map_err(|e| AdminError::Client(linearizable_error(e)))?;
        Ok(AdminReply::ReadIndex { index: RaftIndex(linearizer.read_log_id().index()) })
    }
}

impl RaftNode {
    /// Runs `read` on this node's replicated state once that state contains every write
    /// acknowledged (by any member) before this call: the leader confirms its leadership with
    /// a quorum and names its read index (this node when it leads, else the leader it knows,
    /// asked over the transport and followed across leader changes as [`RaftNode::admin`]
    /// does), then this node waits until it has applied through that index. Any member serves
    /// it; the whole call takes at most `timeout`.
    ///
    /// [`RaftNode::read`] with [`super::ReadConsistency::Linearizable`] is the leader-only form.
    ///
    /// # Errors
    /// [`ClientError::ForwardToLeader`] (without a leader) when no leader was known before the
    /// deadline; [`ClientError::LeaderUnreachable`] when the leader did not answer in time or
    /// this node did not catch up with it in time; [`ClientError::NoQuorum`] when the leader
    /// could not confirm its leadership; [`ClientError::Stopped`] when the node is stopping.
    pub async fn read_linearizable<R>(
        &self,
        timeout: Duration,
        read: impl FnOnce(StateView<'_>) -> R,
    ) -> Result<R, ClientError> {
        let deadline = Instant::now() + timeout;
        let index =
            match tokio::time::timeout_at(deadline, self.admin(AdminRequest::ReadIndex)).await {
                Ok(Ok(AdminReply::ReadIndex { index })) => index,
                Ok(Ok(other)) => {
                    tracing::warn!(reply = ?other, "read index answered with another reply");
                    return Err(ClientError::NoQuorum);
                }
                Ok(Err(AdminError::Client(e))) => return Err(e),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "read index refused");
                    return Err(ClientError::NoQuorum);
                }
                Err(_) => return Err(self.unconfirmed()),
            };
        let left = deadline.saturating_duration_since(Instant::now());
        let applied = self
            .service
            .raft
            .wait(Some(left))
            .applied_index_at_least(Some(index.0), "linearizable read")
            .await;
        match applied {
            Ok(_) => Ok(self.state.read(read)),
            Err(WaitError::Timeout(..)) => {
                Err(ClientError::LeaderUnreachable { leader_id: self.leader() })
            }
            Err(WaitError::ShuttingDown) => Err(ClientError::Stopped),
        }
    }

    /// Why a read index could not be had before the deadline, from this node's view now.
    fn unconfirmed(&self) -> ClientError {
        match self.leader() {
            None => ClientError::ForwardToLeader { leader_id: None, leader: None },
            Some(leader) if leader == self.service.id => ClientError::NoQuorum,
            Some(leader) => ClientError::LeaderUnreachable { leader_id: Some(leader) },
        }
    }
}

/// openraft's answer to a linearizable read, in client terms.
pub(super) fn linearizable_error(
    e: RaftError<TypeConfig, LinearizableReadError<TypeConfig>>,
) -> ClientError {
    match e {
        RaftError::APIError(LinearizableReadError::ForwardToLeader(f)) => ClientError::forward(f),
        RaftError::APIError(LinearizableReadError::QuorumNotEnough(_)) => ClientError::NoQuorum,
        RaftError::Fatal(_) => ClientError::Stopped,
    }
}
