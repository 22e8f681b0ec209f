//! State shared by every handler, and the helpers they all use: the fence check, the content
//! type, and bounded body reading.

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
};

use axum::{
    Extension,
    body::Body,
    extract::ConnectInfo,
    http::{HeaderMap, header},
};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt as _;
use tokio::sync::Semaphore;

use crate::{ApiConfig, ApiError, ErrorCode, FenceState, Services};

/// What every handler can reach.
#[derive(Clone, Debug)]
pub(crate) struct AppState {
    pub(crate) config: Arc<ApiConfig>,
    pub(crate) services: Services,
    /// Permits for concurrent live tails.
    pub(crate) streams: Arc<Semaphore>,
    /// The address of the client this request came from, when the server knows it.
    pub(crate) client: Option<IpAddr>,
}

impl AppState {
    pub(crate) fn new(config: ApiConfig, services: Services) -> Self {
        let streams = Arc::new(Semaphore::new(config.stream_connections_max));
        Self { config: Arc::new(config), services, streams, client: None }
    }

    /// This state for one request from `client` (`None` when the server was not started with
    /// connection info, as in-process tests are not).
    pub(crate) fn for_client(mut self, client: Option<Extension<ConnectInfo<SocketAddr>>>) -> Self {
        self.client = client.map(|Extension(ConnectInfo(addr))| addr.ip());
        self
    }

    /// The fence state now.
    pub(crate) fn fence(&self) -> FenceState {
        *self.services.fence.borrow()
    }

    /// `Err(SELF_FENCED)` when the node is fenced.
    pub(crate) fn check_fence(&self) -> Result<(), ApiError> {
        ApiError::check_fence(self.fence())
    }
}

/// The media type of a request, lowercased and without parameters (`None` when absent).
pub(crate) fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let essence = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    Some(essence)
}

/// Most bytes of a received header an error message quotes.
const QUOTED_HEADER_BYTES_MAX: usize = 64;

/// The `Content-Type` as received, for an error message: in quotes, with every byte outside
/// printable ASCII escaped (`\xff`, `\t`, `\"`), cut after 64 bytes (`...` after the quote
/// says so); `(none)` when the header is absent. Unlike [`media_type`] it shows a value that
/// does not parse (`;;;/`, bytes that are not ASCII) as it came.
pub(crate) fn received_content_type(headers: &HeaderMap) -> String {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return "(none)".to_owned();
    };
    let bytes = value.as_bytes();
    let shown = bytes.get(..QUOTED_HEADER_BYTES_MAX).unwrap_or(bytes);
    let cut = if shown.len() < bytes.len() { "..." } else { "" };
    format!("\"{}\"{cut}", shown.escape_ascii())
}

/// Reads a whole body of at most `limit` bytes. A declared `Content-Length` above the limit is
/// refused before reading; a body that grows past it is refused as soon as it does.
pub(crate) async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let too_large =
        || ApiError::new(ErrorCode::PayloadTooLarge, format!("body exceeds {limit} bytes"));
    if let Some(len) = headers.get(header::CONTENT_LENGTH) {
        let declared = len
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .ok_or_else(|| ApiError::new(ErrorCode::InvalidBody, "invalid content-length"))?;
        if declared > u64::try_from(limit).unwrap_or(u64::MAX) {
            return Err(too_large());
        }
    }
    let mut stream = body.into_data_stream();
    let mut out = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| ApiError::new(ErrorCode::InvalidBody, "body read failed"))?;
        if out.len().saturating_add(chunk.len()) > limit {
            return Err(too_large());
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out.freeze())
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn shown(value: &[u8]) -> String {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_bytes(value).unwrap());
        received_content_type(&headers)
    }

    #[test]
    fn content_types_are_shown_as_received_and_escaped() {
        assert_eq!(received_content_type(&HeaderMap::new()), "(none)");
        assert_eq!(shown(b"image/png"), r#""image/png""#);
        assert_eq!(shown(b";;;/"), r#"";;;/""#);
        assert_eq!(shown("t\u{e9}xt/\"x\"".as_bytes()), r#""t\xc3\xa9xt/\"x\"""#);
        assert_eq!(shown(&[b'a', 0xff, b'\t', b'b']), r#""a\xff\tb""#);
        let long = shown(&[b'x'; 100]);
        assert_eq!(long, format!("\"{}\"...", "x".repeat(64)));
    }
}
