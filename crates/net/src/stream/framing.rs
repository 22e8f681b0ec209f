//! Length-prefixed framing shared by the tx stream and the peer protocol: a little-endian `u32`
//! length, then that many bytes of frame (kind and body). [`LengthPrefixed`] splits a byte stream
//! into frames of any [`WireFrame`] type; [`FramedConn`] reads and writes them on a connection.

use core::{future::Future, time::Duration};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::error::IoOp;

/// Bytes of the length prefix.
pub(crate) const LEN_BYTES: usize = 4;

/// A frame type carried in length-prefixed frames: how its bytes after the prefix decode, and
/// the errors the shared decoder reports in its terms.
pub trait WireFrame: Sized {
    /// Why bytes are not a valid frame.
    type Error: Copy + std::fmt::Debug;

    /// The error for a length prefix above `max` (or not addressable).
    fn too_large(len: u64, max: u32) -> Self::Error;

    /// The error for a length prefix of zero.
    fn empty() -> Self::Error;

    /// Decodes one frame from exactly its bytes after the length prefix.
    ///
    /// # Errors
    /// When the bytes are not exactly one valid frame.
    fn decode_body(body: Bytes) -> Result<Self, Self::Error>;

    /// Appends the encoded frame, length prefix included, after checking it against
    /// `frame_bytes_max`.
    ///
    /// # Errors
    /// When the frame cannot be encoded within the limit (nothing is written then).
    fn encode_frame(&self, out: &mut BytesMut, frame_bytes_max: u32) -> Result<(), Self::Error>;
}

/// Splits a byte stream, fed in chunks of any size, into frames of type `F`.
///
/// It holds at most one partial frame plus the last chunk: a length prefix above the limit
/// fails before the frame's bytes are awaited. After an error it keeps returning that error.
#[derive(Debug)]
pub struct LengthPrefixed<F: WireFrame> {
    buf: BytesMut,
    frame_bytes_max: u32,
    failed: Option<F::Error>,
}

impl<F: WireFrame> LengthPrefixed<F> {
    /// A decoder refusing frames longer than `frame_bytes_max` (after the length prefix).
    #[must_use]
    pub fn new(frame_bytes_max: u32) -> Self {
        Self { buf: BytesMut::new(), frame_bytes_max, failed: None }
    }

    /// Appends received bytes.
    pub fn extend(&mut self, chunk: &[u8]) {
        if self.failed.is_none() {
            self.buf.extend_from_slice(chunk);
        }
    }

    /// The buffer to read into directly (for `read_buf`); same effect as [`Self::extend`].
    pub fn buffer_mut(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Bytes received and not yet returned as frames.
    #[must_use]
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete frame, `None` when more bytes are needed.
    ///
    /// # Errors
    /// The frame type's error when the bytes are not a valid frame; every later call returns it
    /// too.
    pub fn next_frame(&mut self) -> Result<Option<F>, F::Error> {
        if let Some(error) = self.failed {
            return Err(error);
        }
        let result = self.decode_next();
        if let Err(error) = result {
            self.failed = Some(error);
            self.buf = BytesMut::new();
        }
        result
    }

    fn decode_next(&mut self) -> Result<Option<F>, F::Error> {
        let Some(prefix) = self.buf.get(..LEN_BYTES) else { return Ok(None) };
        let mut len_bytes = [0u8; LEN_BYTES];
        len_bytes.copy_from_slice(prefix);
        let len = u32::from_le_bytes(len_bytes);
        let too_large = || F::too_large(u64::from(len), self.frame_bytes_max);
        if len > self.frame_bytes_max {
            return Err(too_large());
        }
        if len == 0 {
            return Err(F::empty());
        }
        let len = usize::try_from(len).map_err(|_| too_large())?;
        if self.buf.len() - LEN_BYTES < len {
            // Room for the rest of this frame, once (bounded by the limit checked above).
            self.buf.reserve(LEN_BYTES + len - self.buf.len());
            return Ok(None);
        }
        self.buf.advance(LEN_BYTES);
        let body = self.buf.split_to(len).freeze();
        F::decode_body(body).map(Some)
    }
}

/// The session error of a protocol over [`FramedConn`]: a bad frame, a failed read or write, or
/// the connection ending.
pub(crate) trait ConnError: Sized {
    /// The IO operation `op` failed with `err`.
    fn io(op: IoOp, err: &std::io::Error) -> Self;

    /// The connection ended (a read of zero bytes).
    fn connection_lost() -> Self;

    /// The other side's first frame did not come in time.
    fn hello_timeout() -> Self;
}

/// A framed connection: frames in through a [`LengthPrefixed`] decoder, frames out through one
/// buffer. `E` is the protocol's session error; about `READ_CHUNK` bytes of free room are kept
/// in the read buffer before each read, so reads are not tiny.
#[derive(Debug)]
pub(crate) struct FramedConn<IO, F: WireFrame, E, const READ_CHUNK: usize> {
    io: IO,
    decoder: LengthPrefixed<F>,
    out: BytesMut,
    frame_bytes_max: u32,
    error: std::marker::PhantomData<fn() -> E>,
}

impl<IO, F, E, const READ_CHUNK: usize> FramedConn<IO, F, E, READ_CHUNK>
where
    IO: AsyncRead + AsyncWrite + Unpin,
    F: WireFrame,
    E: ConnError + From<F::Error>,
{
    /// A connection refusing frames over `frame_bytes_max` (either way).
    pub(crate) fn new(io: IO, frame_bytes_max: u32) -> Self {
        Self {
            io,
            decoder: LengthPrefixed::new(frame_bytes_max),
            out: BytesMut::new(),
            frame_bytes_max,
            error: std::marker::PhantomData,
        }
    }

    /// Opens the connection through `connector` (a failure is an [`IoOp::Connect`] error).
    pub(crate) async fn connect<C, Fut>(connector: C, frame_bytes_max: u32) -> Result<Self, E>
    where
        C: FnOnce() -> Fut,
        Fut: Future<Output = std::io::Result<IO>>,
    {
        let io = connector().await.map_err(|e| E::io(IoOp::Connect, &e))?;
        Ok(Self::new(io, frame_bytes_max))
    }

    /// The other side's first frame, failing with the hello timeout after `timeout`.
    pub(crate) async fn read_hello(&mut self, timeout: Duration) -> Result<F, E> {
        tokio::time::timeout(timeout, self.read_frame()).await.map_err(|_| E::hello_timeout())?
    }

    /// The next frame. Cancel-safe: bytes read stay in the decoder.
    pub(crate) async fn read_frame(&mut self) -> Result<F, E> {
        loop {
            if let Some(frame) = self.decoder.next_frame()? {
                return Ok(frame);
            }
            let buf = self.decoder.buffer_mut();
            if buf.capacity() - buf.len() < READ_CHUNK / 8 {
                buf.reserve(READ_CHUNK);
            }
            let n = self.io.read_buf(buf).await.map_err(|e| E::io(IoOp::Read, &e))?;
            if n == 0 {
                return Err(E::connection_lost());
            }
        }
    }

    /// Writes and flushes one frame (not cancel-safe: never used inside `select!`).
    pub(crate) async fn write_frame(&mut self, frame: &F) -> Result<(), E> {
        self.out.clear();
        frame.encode_frame(&mut self.out, self.frame_bytes_max)?;
        self.io.write_all(&self.out).await.map_err(|e| E::io(IoOp::Write, &e))?;
        self.io.flush().await.map_err(|e| E::io(IoOp::Write, &e))
    }

    /// Shuts the write side down, ignoring failures (the session is over either way).
    pub(crate) async fn finish(&mut self) {
        let _ = self.io.shutdown().await;
    }
}
