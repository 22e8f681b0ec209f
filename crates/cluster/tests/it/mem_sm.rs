//! A minimal in-memory state machine: what openraft's storage suite needs next to the log
//! store under test. It records the applied log id, the membership and the applied commands.

use std::{
    io,
    sync::{Arc, Mutex},
};

use futures_util::{Stream, TryStreamExt};
use mempulse_cluster::{ApplyResponse, LogId, Payload, StoredMembership, TypeConfig};
use mempulse_primitives::RaftIndex;
use openraft::{
    OptionalSend, RaftSnapshotBuilder,
    storage::{EntryResponder, RaftStateMachine, Snapshot, SnapshotMeta},
};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct MemState {
    pub(crate) applied: Option<LogId>,
    pub(crate) membership: StoredMembership,
    pub(crate) commands: Vec<String>,
}

type Meta = SnapshotMeta<
    mempulse_cluster::LeaderId,
    mempulse_primitives::NodeId,
    mempulse_cluster::ClusterNode,
>;
/// The current snapshot, shared with the builders (which run off the state machine's task).
type SnapshotSlot = Arc<Mutex<Option<(Meta, MemState)>>>;

#[derive(Debug, Default)]
pub(crate) struct MemStateMachine {
    pub(crate) state: MemState,
    pub(crate) snapshot: SnapshotSlot,
}

pub(crate) type MemSnapshot = Snapshot<
    mempulse_cluster::LeaderId,
    mempulse_primitives::NodeId,
    mempulse_cluster::ClusterNode,
    MemState,
>;

/// The builder holds a copy of the state taken when the snapshot is requested (it is small).
#[derive(Debug)]
pub(crate) struct MemBuilder {
    state: MemState,
    slot: SnapshotSlot,
}

impl RaftSnapshotBuilder<TypeConfig> for MemBuilder {
    type SnapshotData = MemState;

    async fn build_snapshot(&mut self) -> io::Result<MemSnapshot> {
        let meta = SnapshotMeta {
            last_log_id: self.state.applied,
            last_membership: self.state.membership.clone(),
        };
        *self.slot.lock().unwrap() = Some((meta.clone(), self.state.clone()));
        Ok(Snapshot { meta, snapshot: self.state.clone() })
    }
}

impl RaftStateMachine<TypeConfig> for MemStateMachine {
    type SnapshotData = MemState;
    type SnapshotBuilder = MemBuilder;

    async fn applied_state(&mut self) -> io::Result<(Option<LogId>, StoredMembership)> {
        Ok((self.state.applied, self.state.membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> io::Result<()>
    where
        Strm: Stream<Item = io::Result<EntryResponder<TypeConfig>>> + Unpin + OptionalSend,
    {
        while let Some((entry, responder)) = entries.try_next().await? {
            self.state.applied = Some(entry.log_id);
            match entry.payload {
                Payload::Blank => {}
                Payload::Normal(command) => self.state.commands.push(command.to_string()),
                Payload::Membership(membership) => {
                    self.state.membership = StoredMembership::new(Some(entry.log_id), membership);
                }
            }
            if let Some(responder) = responder {
                responder.send(ApplyResponse::empty(RaftIndex(entry.log_id.index)));
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        MemBuilder { state: self.state.clone(), slot: Arc::clone(&self.snapshot) }
    }

    async fn install_snapshot(&mut self, meta: &Meta, snapshot: MemState) -> io::Result<()> {
        self.state = snapshot;
        *self.snapshot.lock().unwrap() = Some((meta.clone(), self.state.clone()));
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> io::Result<Option<MemSnapshot>> {
        let current = self.snapshot.lock().unwrap().clone();
        Ok(current.map(|(meta, state)| Snapshot { meta, snapshot: state }))
    }
}
