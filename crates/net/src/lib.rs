//! Ingest for mempulse: Ethereum transaction decoding, sender recovery and stateless checks on
//! a bounded worker pool, before anything is sequenced.
//!
//! ## Role
//! ```text
//!  lanes (JSON-RPC, REST, streams; next slice) ── raw EIP-2718 bytes + caller tag
//!            ▼ Submitter::submit(batch)         full? ──► Refused { Full, batch } ──► TxDropped
//!  bounded worker pool, one thread per core: decode_tx
//!     size, type byte ─► RLP ─► exact + canonical ─► keccak hash ─► stateless checks ─► recover
//!            ▼ Completions::recv()  (reorder buffer: arrival order restored)
//!  Ok(Tx) ──► Command::AddTxs          Err(TxError) ──► verdict() ──► TxDropped / TxRejected
//! ```
//! Supported envelopes: legacy (with and without EIP-155), EIP-2930, EIP-1559, EIP-4844 (the
//! consensus form, without sidecar) and EIP-7702. Decoding and hashing are alloy's; recovery
//! uses libsecp256k1 (about five times faster than k256 here, see `docs/design/tx-decoding.md`).
//!
//! ## Invariants
//! - Bad bytes never panic: every failure is a [`TxError`] with a stable code and a
//!   [`Verdict`] naming the primitives reason to record ([`TxError::to_event_kind`]).
//! - One transaction, one byte string: an accepted [`Tx`](mempulse_primitives::Tx) keeps the
//!   exact input as `raw`, its hash is keccak-256 of it, and non-canonical or trailing bytes are
//!   refused, so no two encodings of one transaction get two hashes.
//! - High-s signatures (EIP-2) are refused for every type, pre-EIP-155 legacy included.
//! - The pool is bounded by one capacity covering queue, workers and reorder buffer; a full pool
//!   refuses the whole batch at once and hands it back; results leave in submission order no
//!   matter which worker finished first.
//!
//! ## Example
//! ```
//! use bytes::Bytes;
//! use mempulse_net::{CheckConfig, PoolConfig, Submission, decode_tx, spawn};
//! use mempulse_primitives::{Address, RejectReason, TxType};
//!
//! // The signed transaction printed in EIP-155 (chain 1, key 0x4646..46).
//! let raw = Bytes::from(hex::decode(
//!     "f86c098504a817c800825208943535353535353535353535353535353535353535880de0b6b3a7640000\
//!      8025a028ef61340bd939bc2195fe537567866003e1a15d3c71ff63e1590620aa636276a067cbe9d8997f\
//!      761aecb703304b3800ccf555c9f3dc64214b297fb1966a3b6d83",
//! )?);
//! let tx = decode_tx(raw.clone(), &CheckConfig::default())?;
//! assert_eq!(tx.tx_type, TxType::Legacy);
//! assert_eq!(tx.sender, Address::from_hex("0x9d8a62f656a8d1615c1294fd71e9cfb3e4855a4f")?);
//!
//! // Another chain refuses it with a typed reason, hash included.
//! let err = decode_tx(raw.clone(), &CheckConfig { chain_id: 5, ..CheckConfig::default() })
//!     .unwrap_err();
//! assert_eq!(err.verdict(), mempulse_net::Verdict::Reject(RejectReason::WrongChainId));
//! assert_eq!(err.hash(), Some(tx.hash));
//!
//! // The pool: submit batches from any thread, receive in arrival order.
//! let (submitter, mut completions) = spawn::<&str>(PoolConfig::default(), CheckConfig::default())?;
//! submitter.submit(vec![
//!     Submission { tag: "first", raw: raw.clone() },
//!     Submission { tag: "junk", raw: Bytes::from_static(b"\x02") },
//! ]).map_err(|refused| refused.error)?;
//! drop(submitter);
//! let first = completions.recv().unwrap();
//! assert_eq!((first.tag, first.result.map(|tx| tx.hash)), ("first", Ok(tx.hash)));
//! assert!(completions.recv().unwrap().result.is_err());
//! assert!(completions.recv().is_none()); // every submitter gone, everything handed out
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Feature flags
//! - `test-utils`: the `test_utils` module, deterministic signed transactions of every type
//!   (for tests, benches and `mempulse-bench recover`).

mod config;
mod decode;
mod error;
pub mod gas;
mod pool;
#[cfg(any(test, feature = "test-utils"))]
pub mod test_utils;

pub use config::{
    BLOBS_PER_TX_MAX, CHAIN_ID_DEFAULT, CheckConfig, INITCODE_BYTES_MAX, POOL_CAPACITY_DEFAULT,
    PoolConfig, TX_BYTES_MAX, TX_GAS_LIMIT_MAX,
};
pub use decode::decode_tx;
pub use error::{
    CheckFailure, DecodeFailure, Error, QueueDepth, Result, RlpFailure, TxError, Verdict,
};
pub use pool::{
    Arrival, BatchDecoder, Completed, Completions, RecvError, Refused, Submission, Submitter, spawn,
};
