//! A framed connection: frames in through a [`FrameDecoder`], frames out through one buffer.

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{
    error::{IoOp, StreamError},
    frame::{FrameDecoder, StreamFrame},
};

/// Free room kept in the read buffer before each read, so reads are not tiny.
const READ_CHUNK_BYTES: usize = 64 * 1024;

#[derive(Debug)]
pub(crate) struct Conn<IO> {
    pub(crate) io: IO,
    decoder: FrameDecoder,
    out: BytesMut,
    frame_bytes_max: u32,
}

impl<IO: AsyncRead + AsyncWrite + Unpin> Conn<IO> {
    pub(crate) fn new(io: IO, frame_bytes_max: u32) -> Self {
        Self {
            io,
            decoder: FrameDecoder::new(frame_bytes_max),
            out: BytesMut::new(),
            frame_bytes_max,
        }
    }

    /// The next frame. Cancel-safe: bytes read stay in the decoder.
    pub(crate) async fn read_frame(&mut self) -> Result<StreamFrame, StreamError> {
        loop {
            if let Some(frame) = self.decoder.next_frame()? {
                return Ok(frame);
            }
            let buf = self.decoder.buffer_mut();
            if buf.capacity() - buf.len() < READ_CHUNK_BYTES / 8 {
                buf.reserve(READ_CHUNK_BYTES);
            }
            let n = self.io.read_buf(buf).await.map_err(|e| StreamError::io(IoOp::Read, &e))?;
            if n == 0 {
                return Err(StreamError::ConnectionLost);
            }
        }
    }

    /// Writes and flushes one frame (not cancel-safe: never used inside `select!`).
    pub(crate) async fn write_frame(&mut self, frame: &StreamFrame) -> Result<(), StreamError> {
        self.out.clear();
        frame.encode(&mut self.out, self.frame_bytes_max)?;
        self.io.write_all(&self.out).await.map_err(|e| StreamError::io(IoOp::Write, &e))?;
        self.io.flush().await.map_err(|e| StreamError::io(IoOp::Write, &e))
    }

    /// Shuts the write side down, ignoring failures (the stream is over either way).
    pub(crate) async fn finish(&mut self) {
        let _ = self.io.shutdown().await;
    }
}
