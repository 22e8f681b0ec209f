//! Bootstrapping a cluster from configuration: every start of a node configured to bootstrap
//! may ask, and only a node that has never been part of a cluster initializes.

use std::collections::BTreeMap;

use mempulse_primitives::NodeId;
use openraft::errors::{InitializeError, RaftError};

use super::RaftNode;
use crate::{ClusterNode, TypeConfig};

impl RaftNode {
    /// Initializes a cluster of `members` unless this node already has a log or a vote
    /// (it was initialized before, joined a cluster, or voted in one). Safe to call on every
    /// start, and on several nodes given the same `members`. Returns whether it initialized.
    ///
    /// # Errors
    /// openraft's [`InitializeError::NotInMembers`] when `members` does not include this node,
    /// or a fatal error when the node stopped.
    pub async fn initialize_if_new(
        &self,
        members: BTreeMap<NodeId, ClusterNode>,
    ) -> Result<bool, RaftError<TypeConfig, InitializeError<TypeConfig>>> {
        match self.initialize(members).await {
            Ok(()) => Ok(true),
            Err(RaftError::APIError(InitializeError::NotAllowed(_))) => Ok(false),
            Err(e) => Err(e),
        }
    }
}
