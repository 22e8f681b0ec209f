//! Identifiers, the normalized transaction, and the versioned event schema every mempulse crate shares.
//!
//! ## Role
//! ```text
//!  net (decode) ──► Tx ──► mempool ──► EventKind facts ──► codec ──► wal (opaque bytes)
//!                                                     ▲
//!                    replay / api / sinks decode ─────┘
//! ```
//! This crate is layer 0: no IO, no async runtime, no clock. Everything it defines is a value.
//!
//! ## Invariants
//! - Every reason, lane and kind has a stable wire code and a stable name; codes are never reused.
//! - The binary encoding is deterministic: one value, one byte string (see `codec`).
//! - Decoding arbitrary bytes returns an error, never panics.
//!
//! ## Example
//! ```
//! use mempulse_primitives::{Seq, TxHash, RejectReason};
//! assert_eq!(Seq(1).checked_next(), Some(Seq(2)));
//! assert_eq!(RejectReason::NonceTooLow.as_str(), "nonce_too_low");
//! assert!(TxHash::from_hex("0x00").is_err());
//! ```
//!
//! ## Feature flags
//! None.

pub mod codec;
mod digest;
mod error;
mod event;
mod ids;
mod reason;
mod tx;

pub use codec::{Decode, Encode, Reader, SCHEMA_VERSION, decode_exact, encode_to_vec};
pub use digest::DigestWriter;
pub use error::{DecodeError, ParseHexError};
pub use event::{Event, EventKind, KindCode, Origin, SequencedEvent, Source};
pub use ids::{
    Address, Digest, Height, NodeId, Nonce, RaftIndex, Seq, TxHash, UnixMillis, ValidatorId,
};
pub use reason::{DropReason, EvictReason, FenceReason, Lane, RejectReason, Subpool};
pub use tx::{Fees, Tx, TxType};
