//! Ingest for mempulse: the lanes between "raw bytes arrived" and "a batch of checked
//! transactions handed to the cluster", with Ethereum decoding, sender recovery, dedup, rate
//! limits and node tx streams.
//!
//! ## Role
//! ```text
//!  JSON-RPC / REST (crates/api)        node tx streams: serve_stream(io, peer, handle, limits)
//!            └──────── IngestHandle::submit(lane, source, raw) ────────┘   (never blocks)
//!   shutting down · oversize · throttled (token bucket per source) · duplicate (dedup cache)
//!   · lane full  ──► TxDropped{reason, lane, depth} fact (local) ──► Dropped{reason, hash}
//!            ▼ lanes: reserved shares of the bounded worker pool, one thread per core
//!  decode_tx: size, type byte ─► RLP ─► canonical ─► keccak ─► stateless checks ─► recover
//!            ▼ arrival order restored
//!  Err ──► TxRejected / TxDropped{decode_failed} fact ──► Invalid(TxError)
//!  Ok  ──► TxReceived fact ──► batches (bounded, in order, ≤ N in flight)
//!            ▼ Admission::admit(Vec<Tx>)  (the node: Command::AddTxs through Raft)
//!  per-tx PoolVerdict ──► Accepted{hash, verdict}    batch error ──► Unavailable(error)
//! ```
//! Supported envelopes: legacy (with and without EIP-155), EIP-2930, EIP-1559, EIP-4844 (the
//! consensus form, without sidecar) and EIP-7702. Decoding and hashing are alloy's; recovery
//! uses libsecp256k1 (about five times faster than k256 here, see `docs/design/tx-decoding.md`).
//! The lanes, dedup and streams are described in `docs/design/tx-stream.md`.
//!
//! ## Invariants
//! - Bad bytes never panic: every failure is a [`TxError`] with a stable code and a
//!   [`Verdict`] naming the primitives reason to record ([`TxError::to_event_kind`]); a bad
//!   stream frame is a [`FrameError`] that closes only its stream.
//! - One transaction, one byte string: an accepted [`Tx`](mempulse_primitives::Tx) keeps the
//!   exact input as `raw`, its hash is keccak-256 of it, and non-canonical or trailing bytes are
//!   refused, so no two encodings of one transaction get two hashes.
//! - High-s signatures (EIP-2) are refused for every type, pre-EIP-155 legacy included.
//! - Everything is bounded: lanes, pool, batches in flight, dedup cache, tracked sources, stream
//!   credit windows and client buffers. `submit` never blocks; every refusal is a recorded drop.
//! - Order: transactions reach [`Admission`] in arrival order, batch after batch; net relays the
//!   pool's verdicts and never decides admission. Clock readings are recorded for analysis and
//!   never order anything.
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
//! The pipeline, with an admission that admits everything and a real event log:
//! ```
//! use std::{sync::Arc, time::Duration};
//! use mempulse_net::{
//!     Admission, AdmissionFuture, CheckConfig, FactWriter, Ingest, IngestConfig, PoolVerdict,
//!     SourceId, TxOutcome, test_utils::sample_txs,
//! };
//! use mempulse_primitives::{Lane, Subpool, Tx};
//! use mempulse_wal::{Sequencer, SequencerConfig, SyncPolicy, Wal, WalConfig};
//!
//! struct AdmitAll;
//! impl Admission for AdmitAll {
//!     fn admit(&self, txs: Vec<Tx>) -> AdmissionFuture {
//!         let verdicts = txs.iter().map(|_| PoolVerdict::Admitted { subpool: Subpool::Pending });
//!         let verdicts = verdicts.collect();
//!         Box::pin(async move { Ok(verdicts) })
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let wal = Wal::open(WalConfig::new(dir.path()).with_sync(SyncPolicy::Never))?;
//! let events = Sequencer::start(wal, SequencerConfig::default())?;
//! let ingest = Ingest::start(
//!     IngestConfig::default(),
//!     CheckConfig::default(),
//!     Arc::new(AdmitAll),
//!     FactWriter::new(events.clone()),
//! )?;
//! let raw = sample_txs(1, 1).remove(0);
//! let outcome = ingest.submit(Lane::Rpc, SourceId::Local, raw.clone()).await;
//! assert!(matches!(outcome, TxOutcome::Accepted { verdict: PoolVerdict::Admitted { .. }, .. }));
//! // The same bytes again are a duplicate, answered at once.
//! let again = ingest.submit(Lane::Rpc, SourceId::Local, raw).await;
//! assert!(matches!(again, TxOutcome::Dropped { .. }));
//! ingest.shutdown(Duration::from_secs(5)).await?;
//! events.shutdown().await?;
//! # Ok(())
//! # }
//! ```
//!
//! ## Feature flags
//! - `test-utils`: the `test_utils` module, deterministic signed transactions of every type
//!   (for tests, benches and `mempulse-bench recover`).

mod clock;
mod config;
mod decode;
mod error;
mod facts;
pub mod gas;
mod ingest;
pub mod metrics;
pub mod peer;
mod pool;
mod stream;
#[cfg(any(test, feature = "test-utils"))]
pub mod test_utils;
mod txgen;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{
    ADMISSION_TIMEOUT_DEFAULT, BATCH_BYTES_MAX_DEFAULT, BATCH_TXS_MAX_DEFAULT,
    BATCHES_IN_FLIGHT_MAX_DEFAULT, BLOBS_PER_TX_MAX, CHAIN_ID_DEFAULT, CLIENT_BUFFER_TXS_DEFAULT,
    CheckConfig, DEDUP_CAPACITY_DEFAULT, FRAME_BYTES_MAX_DEFAULT, INITCODE_BYTES_MAX, IngestConfig,
    POOL_CAPACITY_DEFAULT, PoolConfig, RPC_QUEUE_CAPACITY_DEFAULT, SOURCE_BURST_DEFAULT,
    SOURCE_RATE_PER_S_DEFAULT, SOURCES_TRACKED_MAX_DEFAULT, STREAM_CLOSE_TIMEOUT_DEFAULT,
    STREAM_HELLO_TIMEOUT_DEFAULT, STREAM_QUEUE_CAPACITY_DEFAULT, STREAM_WINDOW_TXS_DEFAULT,
    StreamClientConfig, StreamLimits, TX_BYTES_MAX, TX_GAS_LIMIT_MAX, ThrottleConfig,
};
pub use decode::decode_tx;
pub use error::{
    CheckFailure, DecodeFailure, Error, QueueDepth, Result, RlpFailure, TxError, Verdict,
};
pub use facts::FactWriter;
pub use ingest::{
    Admission, AdmissionError, AdmissionFuture, FirstSeen, Ingest, IngestHandle, PoolVerdict,
    SourceId, Submitted, TxOutcome,
};
pub use pool::{
    Arrival, BatchDecoder, Completed, Completions, RecvError, Refused, Submission, Submitter, spawn,
};
pub use stream::{
    ClientSummary, CloseReason, FrameDecoder, FrameError, HELLO_MAGIC, IoOp,
    STREAM_PROTOCOL_VERSION, SendError, StreamError, StreamFrame, StreamSummary, StreamTally,
    TX_OVERHEAD, TXS_FRAME_OVERHEAD, TxStreamClient, serve_stream, serve_stream_verified,
};
pub use txgen::{GenerateError, TransferGenerator};
