//! The route table and the middleware every route shares (the server loop is in `serve`).

use axum::{
    Router,
    extract::{MatchedPath, Request},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use tower_http::catch_panic::CatchPanicLayer;

use crate::{
    ApiConfig, ApiError, ErrorCode, Services,
    deadline::deadline,
    metrics::ApiMetrics,
    routes::{blocks, digests, events, pool, status, stream, txs},
    rpc,
    state::AppState,
};

/// Every route as (method, path), in the order of the routes table of `docs/design/api.md`.
pub const ROUTES: &[(&str, &str)] = &[
    ("post", "/"),
    ("post", "/rpc"),
    ("post", "/v1/txs"),
    ("get", "/v1/txs/{hash}"),
    ("get", "/v1/pool"),
    ("get", "/v1/pool/txs/{hash}"),
    ("get", "/v1/events"),
    ("get", "/v1/events/stream"),
    ("post", "/v1/blocks/build"),
    ("post", "/v1/blocks/commit"),
    ("post", "/v1/reorg"),
    ("get", "/v1/cluster"),
    ("get", "/v1/catalog"),
    ("get", "/v1/state-root"),
    ("get", "/v1/replay"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/v1/openapi.json"),
];

/// The API's router: every route with its limits, timeouts and JSON errors, over `services`.
///
/// Serve it with [`crate::serve_with`] (or [`crate::serve`]), or drive it in-process with `tower::ServiceExt::oneshot`.
pub fn router(config: ApiConfig, services: Services) -> Router {
    let timeout = config.request_timeout;
    let state = AppState::new(config, services);
    Router::new()
        .route("/", post(rpc::handle))
        .route("/rpc", post(rpc::handle))
        .route("/v1/txs", post(txs::submit))
        .route("/v1/txs/{hash}", get(txs::lifecycle))
        .route("/v1/pool", get(pool::status))
        .route("/v1/pool/txs/{hash}", get(pool::transaction))
        .route("/v1/events", get(events::scan_handler))
        .route("/v1/events/stream", get(stream::stream_handler))
        .route("/v1/blocks/build", post(blocks::build))
        .route("/v1/blocks/commit", post(blocks::commit))
        .route("/v1/reorg", post(blocks::reorg))
        .route("/v1/cluster", get(status::cluster))
        .route("/v1/catalog", get(status::catalog))
        .route("/v1/state-root", get(digests::state_root))
        .route("/v1/replay", get(digests::replay))
        .route("/healthz", get(status::healthz))
        .route("/readyz", get(status::readyz))
        .route("/metrics", get(status::metrics))
        .route("/v1/openapi.json", get(status::openapi))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(middleware::from_fn_with_state(timeout, deadline))
        .layer(middleware::from_fn(count))
        .layer(CatchPanicLayer::custom(|_| {
            tracing::error!("api handler panicked");
            ApiError::new(ErrorCode::Internal, "internal error").into_response()
        }))
}

async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::RouteNotFound, "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(ErrorCode::MethodNotAllowed, "method not allowed on this route")
}

/// Counts requests by route template and status class.
async fn count(request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let response = next.run(request).await;
    ApiMetrics::get().request(route.as_deref(), response.status());
    response
}

#[cfg(test)]
mod tests {
    use utoipa::OpenApi as _;

    use super::ROUTES;

    #[test]
    fn every_route_is_in_the_openapi_document() {
        let doc = serde_json::to_value(crate::openapi::ApiDoc::openapi()).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        for (method, path) in ROUTES {
            assert!(paths.get(*path).and_then(|p| p.get(*method)).is_some(), "{method} {path}");
        }
        let documented: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
        assert_eq!(documented, ROUTES.len(), "the document has routes the router lacks");
    }
}
