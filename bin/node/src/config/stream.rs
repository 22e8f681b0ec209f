//! `[stream]`: the tx-stream listener, where peer nodes and tx sources stream raw transactions
//! into the stream lane over the deployment CA's mutual TLS (plaintext on loopback only).

use std::{net::SocketAddr, time::Duration};

use anyhow::{Context, ensure};
use mempulse_net::{
    FRAME_BYTES_MAX_DEFAULT, STREAM_CLOSE_TIMEOUT_DEFAULT, STREAM_HELLO_TIMEOUT_DEFAULT,
    STREAM_WINDOW_TXS_DEFAULT, StreamLimits, TX_BYTES_MAX,
};
use serde::Deserialize;

/// Stream port of the embedded default (on 127.0.0.1).
pub(crate) const DEFAULT_STREAM_ADDR: &str = "127.0.0.1:7500";

/// Streams served at once by default; one more connection is refused (`too_many_streams`).
pub(crate) const STREAMS_MAX_DEFAULT: usize = 256;

/// `[stream]` section.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct StreamSection {
    /// Address the stream listener binds (an IP; plaintext only on loopback).
    pub(crate) listen_addr: String,
    /// Streams served at once (each one task); connections beyond are refused.
    pub(crate) streams_max: usize,
    /// Credit window: transactions one stream may have inside the node.
    pub(crate) window_txs: u32,
    /// Largest frame accepted.
    pub(crate) frame_bytes_max: u32,
    /// Deadline for the TLS handshake, and then again for the client's `Hello`.
    pub(crate) hello_timeout_ms: u64,
    /// Deadline for a closing stream's outstanding answers, and for the listener's streams at
    /// shutdown.
    pub(crate) close_timeout_ms: u64,
}

impl Default for StreamSection {
    fn default() -> Self {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Self {
            listen_addr: DEFAULT_STREAM_ADDR.to_owned(),
            streams_max: STREAMS_MAX_DEFAULT,
            window_txs: STREAM_WINDOW_TXS_DEFAULT,
            frame_bytes_max: FRAME_BYTES_MAX_DEFAULT,
            hello_timeout_ms: ms(STREAM_HELLO_TIMEOUT_DEFAULT),
            close_timeout_ms: ms(STREAM_CLOSE_TIMEOUT_DEFAULT),
        }
    }
}

impl StreamSection {
    /// The listen address.
    pub(crate) fn listen_addr(&self) -> anyhow::Result<SocketAddr> {
        self.listen_addr
            .parse()
            .with_context(|| format!("[stream] listen-addr `{}` is not ip:port", self.listen_addr))
    }

    /// The limits of each stream, checked: a frame must hold at least one largest
    /// transaction, and every count and deadline must be positive.
    pub(crate) fn limits(&self) -> anyhow::Result<StreamLimits> {
        ensure!(self.streams_max > 0, "[stream] streams-max must be at least 1");
        ensure!(self.window_txs > 0, "[stream] window-txs must be at least 1");
        let one_tx = TX_BYTES_MAX.saturating_add(16);
        ensure!(
            self.frame_bytes_max >= one_tx,
            "[stream] frame-bytes-max must be at least {one_tx} (one largest transaction)"
        );
        ensure!(self.hello_timeout_ms > 0, "[stream] hello-timeout-ms must be at least 1");
        ensure!(self.close_timeout_ms > 0, "[stream] close-timeout-ms must be at least 1");
        Ok(StreamLimits {
            frame_bytes_max: self.frame_bytes_max,
            window_txs: self.window_txs,
            hello_timeout: Duration::from_millis(self.hello_timeout_ms),
            close_timeout: Duration::from_millis(self.close_timeout_ms),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_listens_on_loopback_and_bad_limits_are_refused() {
        let section = StreamSection::default();
        assert!(section.listen_addr().unwrap().ip().is_loopback());
        assert_eq!(section.limits().unwrap(), StreamLimits::default());
        for bad in [
            StreamSection { streams_max: 0, ..StreamSection::default() },
            StreamSection { window_txs: 0, ..StreamSection::default() },
            StreamSection { frame_bytes_max: 1024, ..StreamSection::default() },
            StreamSection { hello_timeout_ms: 0, ..StreamSection::default() },
            StreamSection { close_timeout_ms: 0, ..StreamSection::default() },
        ] {
            assert!(bad.limits().is_err(), "{bad:?}");
        }
        let host = StreamSection { listen_addr: "localhost:7500".into(), ..Default::default() };
        assert!(host.listen_addr().is_err());
    }
}
