//! State shared by every handler, and the helpers they all use: the fence check and bounded
//! body reading.

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
