//! One listener, two protocols: the first frame's kind byte says whether a connection is a tx
//! stream or a peer session. The bytes read to find out are replayed to whichever server
//! takes the connection.

use core::{
    pin::Pin,
    task::{Context, Poll},
};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

use super::{error::PeerError, frame::PEER_HELLO_KIND};
use crate::{IoOp, stream::ConnError};

/// Bytes read before the protocol is known: the length prefix and the kind.
const SNIFF_BYTES: usize = 5;

/// The protocol a connection speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// A node tx stream (the first frame is not a `PeerHello`; the stream server judges it).
    TxStream,
    /// A peer session (the first frame is a `PeerHello`).
    Peer,
}

/// A connection with bytes already read from it put back in front.
#[derive(Debug)]
pub struct Rewind<IO> {
    prefix: [u8; SNIFF_BYTES],
    start: usize,
    end: usize,
    io: IO,
}

impl<IO> Rewind<IO> {
    /// The connection inside.
    pub fn get_ref(&self) -> &IO {
        &self.io
    }
}

/// Reads the first frame's length prefix and kind (within `timeout`) and says which protocol
/// the connection speaks; the returned connection replays those bytes.
///
/// # Errors
/// [`PeerError::HelloTimeout`] when the bytes do not come in time, [`PeerError::ConnectionLost`]
/// when the connection ends first, [`PeerError::Io`] when reading fails.
pub async fn detect_protocol<IO: AsyncRead + Unpin>(
    mut io: IO,
    timeout: Duration,
) -> Result<(Protocol, Rewind<IO>), PeerError> {
    let mut prefix = [0u8; SNIFF_BYTES];
    let read = async {
        let mut got = 0;
        while got < SNIFF_BYTES {
            let slot = prefix.get_mut(got..).unwrap_or_default();
            let n = io.read(slot).await.map_err(|e| PeerError::io(IoOp::Read, &e))?;
            if n == 0 {
                return Err(PeerError::ConnectionLost);
            }
            got += n;
        }
        Ok(())
    };
    tokio::time::timeout(timeout, read).await.map_err(|_| PeerError::HelloTimeout)??;
    let protocol = if prefix[SNIFF_BYTES - 1] == PEER_HELLO_KIND {
        Protocol::Peer
    } else {
        Protocol::TxStream
    };
    Ok((protocol, Rewind { prefix, start: 0, end: SNIFF_BYTES, io }))
}

impl<IO: AsyncRead + Unpin> AsyncRead for Rewind<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.start < this.end {
            let n = (this.end - this.start).min(buf.remaining());
            if let Some(bytes) = this.prefix.get(this.start..this.start + n) {
                buf.put_slice(bytes);
            }
            this.start += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Rewind<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;

    use super::*;

    #[tokio::test]
    async fn the_first_kind_byte_picks_the_protocol_and_the_bytes_are_replayed() {
        for (first, want) in [
            (&[15u8, 0, 0, 0, 16, b'm'][..], Protocol::Peer),
            (&[15u8, 0, 0, 0, 1, b'm'][..], Protocol::TxStream),
            (&[0u8, 0, 0, 0, 0][..], Protocol::TxStream),
        ] {
            let (mut client, server) = tokio::io::duplex(64);
            // Written in two pieces: the prefix may arrive split.
            client.write_all(&first[..2]).await.unwrap();
            let sniff = tokio::spawn(detect_protocol(server, Duration::from_secs(10)));
            client.write_all(&first[2..]).await.unwrap();
            drop(client);
            let (protocol, mut rewound) = sniff.await.unwrap().unwrap();
            assert_eq!(protocol, want);
            let mut all = Vec::new();
            rewound.read_to_end(&mut all).await.unwrap();
            assert_eq!(all, first);
        }
    }

    #[tokio::test]
    async fn a_silent_or_short_connection_is_a_typed_error() {
        let (client, server) = tokio::io::duplex(64);
        let silent = detect_protocol(server, Duration::from_millis(10)).await;
        assert_eq!(silent.unwrap_err(), PeerError::HelloTimeout);
        drop(client);
        let (mut client, server) = tokio::io::duplex(64);
        client.write_all(&[1, 0]).await.unwrap();
        drop(client);
        let short = detect_protocol(server, Duration::from_secs(10)).await;
        assert_eq!(short.unwrap_err(), PeerError::ConnectionLost);
    }
}
