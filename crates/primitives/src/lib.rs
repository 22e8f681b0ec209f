//! Identifiers, the normalized transaction, and the versioned event schema every mempulse crate
//! shares, with its stable binary encoding and digest type.
//!
//! ## Role
//! ```text
//!  net (decode) ──► Tx ──► mempool ──► EventKind facts ──► Event::to_bytes ──► wal (opaque bytes)
//!                                                                  │
//!        replay / api / sinks ◄── Event::from_bytes ◄──────────────┘
//!        replay digests ◄── Digest::of / DigestWriter over canonical encodings
//! ```
//! This crate is layer 0: no IO, no async runtime, no clock. Everything it defines is a value.
//!
//! ## Invariants
//! - Every reason, lane and kind has a stable wire code and a stable name; codes are never reused.
//! - The binary encoding ([`codec`]) is deterministic and canonical: one value, one byte string,
//!   and any bytes that decode re-encode to themselves. Integers are fixed-width little-endian.
//! - A stored event payload opens with [`SCHEMA_VERSION`]; an unknown version is a typed error.
//!   The golden vectors in `tests/vectors/` fail on any format change.
//! - Decoding arbitrary bytes returns a [`DecodeError`], never panics, and never allocates more
//!   than the input could hold.
//!
//! ## Example
//! ```
//! use mempulse_primitives::{
//!     Digest, Event, EventKind, Origin, RaftIndex, RejectReason, Source, TxHash, UnixMillis,
//!     codec::{decode_exact, encode_to_vec},
//! };
//!
//! let event = Event {
//!     observed_at: UnixMillis(1_700_000_000_000),
//!     source: Source::Mempool,
//!     origin: Origin::Replicated { raft_index: RaftIndex(42) },
//!     kind: EventKind::TxRejected { hash: TxHash([7; 32]), reason: RejectReason::NonceTooLow },
//! };
//!
//! // The stored payload: version byte, then the canonical body.
//! let payload = event.to_bytes();
//! assert_eq!(Event::from_bytes(&payload)?, event);
//! assert_eq!(event.kind.tx_hash(), Some(TxHash([7; 32])));
//! assert!(event.is_replicated());
//!
//! // Any schema value round-trips through the codec, and hashes its encoding.
//! let bytes = encode_to_vec(&event.kind);
//! assert_eq!(decode_exact::<EventKind>(&bytes)?, event.kind);
//! assert_eq!(Digest::of(&event.kind), Digest::sha256(&bytes));
//!
//! // Bad input is a typed error, never a panic.
//! assert!(Event::from_bytes(&payload[..payload.len() - 1]).is_err());
//! # Ok::<(), mempulse_primitives::DecodeError>(())
//! ```
//!
//! ## Feature flags
//! - `test-utils`: proptest strategies for every schema type in the `test_utils` module (pulls in
//!   `proptest`; for tests of this and other crates only).
//! - `serde`: `serde::Serialize` for events, transactions, ids and reasons — the JSON view used by
//!   `mempulse wal dump` and the HTTP API (the binary codec stays the storage format).

pub mod codec;
mod digest;
mod error;
mod event;
mod ids;
mod reason;
#[cfg(feature = "serde")]
mod serde_impls;
#[cfg(any(test, feature = "test-utils"))]
pub mod test_utils;
mod tx;

pub use codec::{Decode, Encode, Reader, SCHEMA_VERSION, decode_exact, encode_to_vec};
pub use digest::{DigestWriter, Sha256Chain};
pub use error::{DecodeError, ParseHexError};
pub use event::{Event, EventKind, KindCode, Origin, SequencedEvent, Source};
pub use ids::{
    Address, Digest, Height, NodeId, Nonce, RaftIndex, Seq, TxHash, UnixMillis, ValidatorId,
};
pub use reason::{DropReason, EvictReason, FenceReason, Lane, RejectReason, Subpool};
pub use tx::{Fees, Tx, TxType};
