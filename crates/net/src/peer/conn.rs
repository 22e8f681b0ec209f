//! A framed peer connection: frames in through a [`PeerFrameDecoder`], out through one buffer.

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{
    error::PeerError,
    frame::{PeerFrame, PeerFrameDecoder},
};
use crate::IoOp;

/// Free room kept in the read buffer before each read.
const READ_CHUNK_BYTES: usize = 16 * 1024;

#[derive(Debug)]
pub(crate) struct PeerConn<IO> {
    io: IO,
    decoder: PeerFrameDecoder,
    out: BytesMut,
    frame_bytes_max: u32,
}

impl<IO: AsyncRead + AsyncWrite + Unpin> PeerConn<IO> {
    pub(crate) fn new(io: IO, frame_bytes_max: u32) -> Self {
        Self {
            io,
            decoder: PeerFrameDecoder::new(frame_bytes_max),
            out: BytesMut::new(),
            frame_bytes_max,
        }
    }

    /// The next frame. Cancel-safe: bytes read stay in the decoder.
    pub(crate) async fn read_frame(&mut self) -> Result<PeerFrame, PeerError> {
        loop {
            if let Some(frame) = self.decoder.next_frame()? {
                return Ok(frame);
            }
            let buf = self.decoder.buffer_mut();
            if buf.capacity() - buf.len() < READ_CHUNK_BYTES / 8 {
                buf.reserve(READ_CHUNK_BYTES);
            }
            let n = self.io.read_buf(buf).await.map_err(|e| PeerError::io(IoOp::Read, &e))?;
            if n == 0 {
                return Err(PeerError::ConnectionLost);
            }
        }
    }

    /// Writes and flushes one frame (not cancel-safe: never used inside `select!`).
    pub(crate) async fn write_frame(&mut self, frame: &PeerFrame) -> Result<(), PeerError> {
        self.out.clear();
        frame.encode(&mut self.out, self.frame_bytes_max)?;
        self.io.write_all(&self.out).await.map_err(|e| PeerError::io(IoOp::Write, &e))?;
        self.io.flush().await.map_err(|e| PeerError::io(IoOp::Write, &e))
    }

    /// Shuts the write side down, ignoring failures (the session is over either way).
    pub(crate) async fn finish(&mut self) {
        let _ = self.io.shutdown().await;
    }
}
