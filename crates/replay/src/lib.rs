//! Deterministic replay of the canonical event log: the derived pool view, transaction
//! lifecycles, state digests indexed by seq and Raft index, and checkpoints.
//!
//! ## Role
//! ```text
//!  event WAL ──(cursor batch / offline scan)──► Event::from_bytes ──► Replayer::apply (one thread,
//!                                                                     strict seq order)
//!     replicated facts ──► pool view · nonce slots + replacement history · reopen window
//!                          └─► running commitment ──► digest through each Raft index
//!     every fact       ──► lifecycle index (bounded: pooled txs + LRU of finished ones)
//!  every N seqs: DigestPoint { seq, events, raft_index, digest }
//!  every N events or T seconds (caller's clock): CheckpointStore::write (atomic, checksummed)
//!  start-up: resume() = newest valid checkpoint (damaged ones skipped) + replay_wal(tail)
//!  repair:   Replayer::rebase(peer's checkpoint, complete through index I) = the peer's
//!            replicated state + this log's facts above I; local seqs and lifecycle kept
//! ```
//!
//! ## Invariants
//! - The replicated digest is a function of the replicated events only (`Origin::Replicated`):
//!   local facts (drops, receipts, leader changes) reach the lifecycle index, never the digest.
//!   So replicas of one cluster agree on [`Replayer::digest`] through every Raft index.
//! - A digest point reports the last *complete* Raft index: an index is sealed when a fact of a
//!   higher index arrives (or when the caller says so with [`Replayer::seal_through`]).
//! - Replay from any checkpoint equals replay from genesis: same digest points, same state,
//!   same lifecycle index (property-tested; the CI determinism gate replays a committed fixture
//!   both ways against golden digests).
//! - A rebased replayer has the peer's digest through every index from the installed one on
//!   (given this log's later facts are right), and a checkpoint of it resumes to the same
//!   state (property-tested on seeded logs with a corrupted admission before the index).
//! - Everything hashed, encoded or listed iterates ordered structures; the hash indexes are
//!   lookup-only and cannot be iterated (`lookup.rs`).
//! - Memory is bounded: the pool view by the pool's own caps, replacement history per slot, the
//!   reopen window, the finished-lifecycle LRU and references per transaction by constants.
//! - A checkpoint is trusted only after its magic, format, CRC, rule and schema versions, strict
//!   body decode and state digest all check out; otherwise the next older one is tried.
//! - This crate never writes to the event log; offline replays open it read-only.
//!
//! ## Example
//! ```
//! use mempulse_primitives::{Event, EventKind, Origin, RaftIndex, Seq, SequencedEvent, Source,
//!     Subpool, UnixMillis};
//! use mempulse_replay::{LifecycleLookup, ReplayConfig, Replayer};
//! # let mut enc = vec![1u8; 32]; // a transaction in the primitives codec: hash,
//! # enc.extend([2u8; 20]); // sender,
//! # enc.extend(0u64.to_le_bytes()); // nonce,
//! # enc.extend(21_000u64.to_le_bytes()); // gas limit,
//! # enc.extend([0u8; 32]); // fees,
//! # enc.extend([2, 0]); // type, no chain id,
//! # enc.extend(0u32.to_le_bytes()); // no raw bytes
//! # let tx: mempulse_primitives::Tx = mempulse_primitives::decode_exact(&enc).unwrap();
//!
//! let mut replayer = Replayer::new(ReplayConfig { digest_every_events: 2, ..Default::default() });
//! let admitted = |raft_index| Event {
//!     observed_at: UnixMillis(0),
//!     source: Source::Mempool,
//!     origin: Origin::Replicated { raft_index: RaftIndex(raft_index) },
//!     kind: EventKind::TxAdmitted { tx: tx.clone(), subpool: Subpool::Pending },
//! };
//! assert_eq!(replayer.apply(&SequencedEvent { seq: Seq(1), event: admitted(7) })?, None);
//! let promoted = Event {
//!     origin: Origin::Replicated { raft_index: RaftIndex(8) },
//!     kind: EventKind::TxPromoted { hash: tx.hash },
//!     ..admitted(8)
//! };
//! // Seq 2 is a digest point; index 7 is complete once a fact of index 8 arrives.
//! let point = replayer.apply(&SequencedEvent { seq: Seq(2), event: promoted })?.unwrap();
//! assert_eq!(point.raft_index, RaftIndex(7));
//! assert_eq!(replayer.pool_len(), 1);
//! let LifecycleLookup::Found(life) = replayer.lifecycle(&tx.hash) else { unreachable!() };
//! assert_eq!(life.facts.len(), 2);
//! # Ok::<(), mempulse_replay::Error>(())
//! ```
//!
//! ## Feature flags
//! - `test-utils`: a seeded event-log generator driving the real mempool (`test_utils`), for
//!   the determinism fixture, benches and `mempulse-bench replay`. Pulls in `mempulse-mempool`.

#![cfg_attr(not(test), warn(unused_crate_dependencies))]

mod checkpoint;
mod commitment;
mod config;
mod digest;
mod divergence;
mod error;
mod lifecycle;
mod lookup;
mod replayer;
mod slots;
mod state;
#[cfg(feature = "test-utils")]
pub mod test_utils;
mod wal_replay;
mod window;

pub use checkpoint::{
    CHECKPOINT_FORMAT_VERSION, CHECKPOINT_MAGIC, CheckpointMeta, CheckpointStore, LoadedCheckpoint,
    NewestValid, checkpoint_bytes, checkpoint_from_bytes,
};
pub use config::{
    CheckpointPolicy, DEFAULT_CHECKPOINT_EVERY, DEFAULT_CHECKPOINT_EVERY_EVENTS,
    DEFAULT_CHECKPOINTS_RETAINED, DEFAULT_DIGEST_EVERY_EVENTS, DEFAULT_FINISHED_TXS_MAX,
    DEFAULT_INDEX_DIGESTS_MAX, DEFAULT_REFS_PER_TX_MAX, REOPEN_BODIES_MAX, REOPEN_WINDOW_HEIGHTS,
    REPLACEMENTS_PER_SLOT_MAX, RULE_VERSION, ReplayConfig,
};
pub use digest::{DigestPoint, IndexedDigest};
pub use divergence::{Divergence, Probe, first_divergence};
pub use error::{CheckpointDefect, Error, IoOp, RebaseRefusal, Result};
pub use lifecycle::{FactRef, LifecycleLookup, TxLifecycle};
pub use replayer::{NonceSlot, PooledTx, Rebased, Replayer};
pub use wal_replay::{Resumed, replay_wal, resume, scan_lifecycle};
