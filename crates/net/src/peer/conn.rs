//! A framed peer connection: [`PeerFrame`]s in and out, failing with [`PeerError`].

use super::{error::PeerError, frame::PeerFrame};
use crate::stream::FramedConn;

/// Free room kept in the read buffer before each read.
const READ_CHUNK_BYTES: usize = 16 * 1024;

/// A peer connection.
pub(crate) type PeerConn<IO> = FramedConn<IO, PeerFrame, PeerError, READ_CHUNK_BYTES>;
