//! A framed tx stream connection: [`StreamFrame`]s in and out, failing with [`StreamError`].

use super::{error::StreamError, frame::StreamFrame, framing::FramedConn};

/// Free room kept in the read buffer before each read, so reads are not tiny.
const READ_CHUNK_BYTES: usize = 64 * 1024;

/// A tx stream connection.
pub(crate) type Conn<IO> = FramedConn<IO, StreamFrame, StreamError, READ_CHUNK_BYTES>;
