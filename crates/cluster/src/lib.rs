//! openraft glue for mempulse: the Raft type configuration, the replicated request and its
//! encoding, a Raft log store on `mempulse-wal`, the mempool state machine adapter with its
//! snapshots, the node assembly with its write batcher, forwarding and administration, and
//! the node-to-node transports (TCP with mutual TLS, and in-process).
//!
//! ## Role
//! ```text
//!  RaftNode::write(ClusterCommand) ──► batcher (bounded queue) ──► ClusterRequest
//!    (follower: forwarded to the leader,         { leader stamp, commands of many callers }
//!     one hop, following leader changes)
//!                        │ encode (request.rs, command.rs, codec.rs): versioned, explicit LE
//!                        ▼
//!  openraft core ──► LogStore::append ──► writer thread: WAL write ──► readable
//!                        │                      └─► fdatasync (grouped) ──► IOFlushed callback
//!                        ├─ save_vote / purge ──► raft-meta (temp, fsync, rename, dir fsync)
//!                        └─ truncate_after ────► Wal::truncate_after (synced)
//!  replication tasks ◄── LogReader ──► Transport: TcpTransport (mutual TLS, members only,
//!                                       counted refusals) or InProcessNetwork
//!                        ▼ committed, in log order
//!  ClusterStateMachine: Mempool::apply per command ──► facts as replicated Events
//!                        ──► FactSink::append (WalFactSink: event-log sequencer) ──► durable
//!                        ──► answer each caller ──► openraft marks the entries applied
//!  snapshots: pool copy under the lock ──► encode + write off the lock (snapshots/ dir)
//! ```
//! Admin requests (status, add-learner, promote, remove, transfer-leader) travel the same
//! authenticated protocol; [`certs`] creates the CA and node certificates.
//!
//! ## Invariants
//! - **Durable before acknowledged.** An append's openraft callback fires only after the
//!   `fdatasync` that covers it; a vote is fsynced before `save_vote` returns; a purge point and
//!   a re-anchor are fsynced before the WAL changes. No `fsync` runs on an async worker.
//! - **Facts before applied.** An entry is reported applied, and its client answered, only
//!   after the sink made its facts durable; a snapshot never covers an entry whose facts are
//!   not durable. A restart skips the facts the event log already holds
//!   ([`WrittenThrough`]).
//! - **Same entries, same events.** Facts carry the leader's stamp and the entry's Raft index;
//!   apply reads no clock, so every replica writes identical replicated events.
//! - **Serial writes.** One writer thread runs appends, votes, truncations and purges in arrival
//!   order; appends queued before another request are synced and reported before it runs.
//! - **No holes.** An append that does not continue the log is refused
//!   ([`Error::NotContiguous`]) and writes nothing; every read checks that each record holds
//!   the index its position implies.
//! - **Deterministic bytes.** Entries, memberships, votes and snapshots have one encoding each;
//!   decoding any bytes returns a value or a typed error, never panics.
//! - **Bounded.** The write queue, the in-flight proposals, the transport inboxes, the apply
//!   batches, frames, snapshots, connection pools and inbound connections all have named
//!   capacities in `config.rs`.
//! - **Only members talk.** A TCP peer is served only if its certificate chains to the
//!   deployment CA, names `node-<id>` of the id it claims, and that id is a current member;
//!   every refusal is counted by reason (`mempulse_cluster_peer_refused_total`).
//!
//! The on-disk layout and the index ↔ WAL seq mapping are in `docs/design/raft-log.md`; the
//! state machine, snapshots, batching and node assembly in
//! `docs/design/cluster-state-machine.md`; the transport, its authentication rule,
//! forwarding and administration in `docs/design/cluster-transport.md`.
//!
//! ## Example
//! ```
//! use mempulse_cluster::{
//!     ClusterCommand, ClusterRequest, Entry, LeaderId, LogId, LogStore, LogStoreConfig, Payload,
//!     TypeConfig, decode_entry, encode_entry,
//! };
//! use mempulse_primitives::{NodeId, UnixMillis};
//! use openraft::{
//!     storage::{IOFlushed, RaftLogStorage},
//!     type_config::TypeConfigExt,
//! };
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let log_id = LogId { leader_id: LeaderId { term: 1, node_id: NodeId(1) }, index: 0 };
//! let request = ClusterRequest::single(UnixMillis(1), ClusterCommand::AddTxs(vec![]));
//! let entry = Entry { log_id, payload: Payload::Normal(request) };
//! assert_eq!(decode_entry(&encode_entry(&entry))?, entry);
//!
//! let dir = tempfile::tempdir()?;
//! let runtime = tokio::runtime::Builder::new_current_thread().build()?;
//! runtime.block_on(async {
//!     let mut store = LogStore::open(&LogStoreConfig::new(dir.path()))?;
//!     let (flushed, durable) = TypeConfig::oneshot();
//!     store.append([entry], IOFlushed::signal(flushed)).await?;
//!     durable.await??;
//!     assert_eq!(store.log_state().last_log_id, Some(log_id));
//!     store.close().await;
//!     Ok(())
//! })
//! # }
//! ```
//!
//! A one-node cluster (the embedded default runs the same code path):
//! ```
//! use std::{collections::BTreeMap, sync::Arc, time::Duration};
//!
//! use mempulse_cluster::{
//!     ClusterCommand, ClusterNode, FactSink, InProcessNetwork, MemorySink, NodeConfig, RaftNode,
//!     ReadConsistency,
//! };
//! use mempulse_primitives::NodeId;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! runtime.block_on(async {
//!     let sink = MemorySink::new();
//!     let facts: Arc<dyn FactSink> = Arc::new(sink.clone());
//!     let network = InProcessNetwork::new();
//!     let node = RaftNode::start(NodeConfig::new(NodeId(1), dir.path()), facts, &network).await?;
//!     node.initialize(BTreeMap::from([(NodeId(1), ClusterNode::new("n1:7000", "n1:8080"))]))
//!         .await?;
//!     node.raft()
//!         .wait(Some(Duration::from_secs(10)))
//!         .metrics(|m| m.current_leader == Some(NodeId(1)), "leader")
//!         .await?;
//!     let tx = mempulse_mempool::test_utils::tx(7, 0, 10);
//!     let response = node.write(ClusterCommand::AddTxs(vec![tx.clone()])).await?;
//!     assert_eq!(response.result?.facts.len(), 1); // admitted
//!     assert_eq!(sink.len(), 1); // the same fact, durable in the sink
//!     let len = node.read(ReadConsistency::Linearizable, |v| v.mempool.len()).await?;
//!     assert_eq!(len, 1);
//!     node.shutdown(Duration::from_secs(5)).await;
//!     Ok(())
//! })
//! # }
//! ```
//!
//! ## Feature flags
//! - `sim`: the deterministic simulation of a cluster (module `sim`): `SimTypeConfig` on
//!   openraft's simulated runtime, a simulated network, disks that lose unsynced bytes on a
//!   crash, a client workload, a fault schedule and the invariant checks
//!   (`docs/design/cluster-simulation.md`).
//!
//! openraft is built with only `tokio-rt` (no `clap`, no `serde`): every byte this crate
//! stores or sends has its own explicit encoding. TLS is rustls on the `ring` provider only
//! (no aws-lc, no OpenSSL).
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

mod admin;
mod admin_error;
pub mod certs;
mod codec;
mod command;
mod config;
mod error;
mod identity;
mod log_store;
mod meta;
mod metrics;
mod network;
mod node;
mod request;
#[cfg(feature = "sim")]
pub mod sim;
mod state_machine;
mod transport;
mod types;

pub use admin::{
    AdminError, AdminReply, AdminRequest, CHECKPOINT_CHUNK_BYTES_MAX, ChangeState, CheckpointChunk,
    ClusterStatus, FACTS_CHUNK_BYTES_MAX, FactsChunk, FactsCollector, LearnerLag, MempoolRootReply,
    NodeRole, StateRootReply, StateRootSource,
};

pub use codec::{ENTRY_VERSION, decode_entry, encode_entry};
pub use command::ClusterCommand;
pub use config::{
    APPLY_BATCH_ENTRIES_MAX, BACKFILL_CHUNK_TIMEOUT, BACKFILL_DEADLINE, BACKOFF_FIRST, BACKOFF_MAX,
    BatchConfig, CONNECTIONS_PER_PEER_MAX, FLUSH_GROUP_MAX, FORWARD_ATTEMPTS_MAX,
    FORWARD_DEADLINE_DEFAULT, FRAME_BYTES_MAX_DEFAULT, HANDSHAKE_TIMEOUT, IDLE_TIMEOUT,
    INBOUND_CONNECTIONS_MAX, INBOX_CAPACITY, INBOX_CONCURRENCY_MAX, LogStoreConfig,
    MEMBERSHIP_ANSWER_MARGIN, POOL_IDLE_PER_PEER, PROMOTE_ACK_AGE_MAX, PROMOTE_LAG_ENTRIES_MAX,
    READ_BATCH_ENTRIES_MAX, RaftConfig, SINK_BACKOFF_FIRST, SINK_BACKOFF_MAX, SINK_FULL_WAIT_MAX,
    SNAPSHOT_BYTES_MAX_DEFAULT, SNAPSHOT_CHUNK_BYTES, SNAPSHOTS_KEPT, TAIL_CACHE_BYTES_MAX,
    TAIL_CACHE_ENTRIES_MAX, TAIL_SCAN_WINDOW_RECORDS, WAL_DIR, WRITE_QUEUE_CAPACITY,
    WRITE_QUEUE_CAPACITY_DEFAULT, WRITES_IN_FLIGHT_MAX,
};
pub use error::{ClientError, Error, MetaCorruptKind, MetaOp, Result, StartError};
pub use identity::{IDENTITY_FILE, NodeIdentity, PEERS_FILE};
pub use log_store::{LogReader, LogStore, LogWriterTask};
pub use metrics::{
    FRAME_REJECTED_TOTAL, FrameFault, PEER_REFUSED_TOTAL, RefusalReason, TransportStats,
};
pub use network::{
    ForwardFailure, Forwarder, InProcessConnection, InProcessFactory, InProcessNetwork, LinkError,
    Transport,
};
pub use node::{ClusterRaft, NodeConfig, NodeService, RaftNode, ReadConsistency, SNAPSHOT_DIR};
pub use request::ClusterRequest;
pub use state_machine::{
    ApplyFault, BACKFILL_FACTS_TOTAL, BACKFILL_FAILURES_TOTAL, ClusterSnapshot,
    ClusterStateMachine, FactSink, FactSource, FactSourceSlot, MembershipObserver, MembershipSlot,
    MemorySink, MempoolExport, MempoolReinstaller, ReinstallError, Reinstalled,
    SNAPSHOT_FILE_VERSION, SinkError, SinkFuture, SnapshotBuilder, SnapshotError, StateHandle,
    StateView, WalFactSink, WrittenThrough, facts_in_log,
};
pub use transport::{
    CallFailure, NotSentReason, PeerClient, Security, TcpConfig, TcpConnection, TcpFactory,
    TcpTransport, TlsIdentity, TransportError, WIRE_VERSION, certificate_names_node,
    handshake_refusal,
};
#[cfg(feature = "sim")]
pub use types::SimTypeConfig;
pub use types::{
    ApplyResponse, ClusterNode, ClusterResponse, ClusterTypeConfig, Entry, LeaderId, LogId,
    Membership, Payload, Snapshot, SnapshotMeta, StoredMembership, TypeConfig, Vote,
};
