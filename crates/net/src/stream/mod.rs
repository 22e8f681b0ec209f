//! Node tx streams: long-lived, credit-controlled streams of raw transactions between nodes
//! (and from tx sources), over a connection the node has already authenticated.
//!
//! ```text
//!  TxStreamClient ── Hello{source, version} ──────────────────────► serve_stream
//!                 ◄────────────────────────────── Credit{window} ──  (or Close{reason})
//!                 ── Txs[..] (≤ credit) ──► IngestHandle::submit(Lane::Stream, peer, raw)
//!                 ◄── Credit{n} as the n transactions are answered ──
//!                 ── Close{normal} ─────────────────────────────────► drain
//!                 ◄──────────────── Tally{admitted, replaced, refused by reason} ──  return
//! ```

mod client;
mod conn;
mod error;
mod frame;
mod framing;
mod server;
mod tally;

pub(crate) use self::framing::{ConnError, FramedConn, LEN_BYTES};
pub use self::framing::{LengthPrefixed, WireFrame};
pub use self::{
    client::{ClientSummary, TxStreamClient},
    error::{IoOp, SendError, StreamError},
    frame::{
        CloseReason, FrameDecoder, FrameError, HELLO_MAGIC, STREAM_PROTOCOL_VERSION, StreamFrame,
        TX_OVERHEAD, TXS_FRAME_OVERHEAD,
    },
    server::{StreamSummary, serve_stream, serve_stream_verified},
    tally::StreamTally,
};
