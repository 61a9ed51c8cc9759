//! Operator endpoints: health, metrics and the OpenAPI document. No token needed.

use std::sync::Arc;

use aws_lc_rs::{constant_time::verify_slices_are_equal, digest};
use axum::{
    Json, Router,
    extract::{FromRef, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use metrics_exporter_prometheus::PrometheusHandle;
use secrecy::{ExposeSecret, SecretString};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    AppState,
    errors::{ApiError, ErrorChain},
};

/// Where `/metrics` answers and whom (`[metrics]`): on the API's listener or on its own, with
/// or without a bearer token.
#[derive(Clone)]
pub struct MetricsAccess {
    /// False when `metrics.listen` serves them elsewhere: the API's listener answers 404.
    pub on_api_listener: bool,
    pub token: Option<SecretString>,
}

#[derive(Clone)]
pub(super) struct MetricsState {
    handle: PrometheusHandle,
    here: bool,
    /// SHA-256 of the token: comparing digests takes the same time whatever the token's length.
    token_digest: Option<Arc<digest::Digest>>,
}

impl MetricsState {
    pub(super) fn new(handle: PrometheusHandle, access: &MetricsAccess, here: bool) -> Self {
        Self {
            handle,
            here,
            token_digest: access.token.as_ref().map(|t| {
                Arc::new(digest::digest(
                    &digest::SHA256,
                    t.expose_secret().as_bytes(),
                ))
            }),
        }
    }

    /// Whether the request carries the token, when one is required (in constant time).
    fn admits(&self, headers: &HeaderMap) -> bool {
        let Some(expected) = &self.token_digest else {
            return true;
        };
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
            .unwrap_or_default();
        let presented = digest::digest(&digest::SHA256, presented);
        verify_slices_are_equal(presented.as_ref(), expected.as_ref().as_ref()).is_ok()
    }
}

impl FromRef<AppState> for MetricsState {
    fn from_ref(state: &AppState) -> Self {
        state.metrics.clone()
    }
}

/// The router of `metrics.listen`: `/metrics` and nothing else.
pub fn metrics_router(handle: PrometheusHandle, access: &MetricsAccess) -> Router {
    Router::new()
        .route("/metrics", axum::routing::get(metrics))
        .fallback(super::middleware::not_found)
        .with_state(MetricsState::new(handle, access, true))
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(metrics))
        .routes(routes!(openapi_json))
}

#[utoipa::path(get, path = "/healthz", tag = "Operations",
    responses((status = 200, description = "Ready: the store answers"),
              (status = 503, description = "The store does not answer")))]
async fn healthz(State(state): State<AppState>) -> Response {
    match state.service.ready().await {
        Ok(()) => Json(serde_json::json!({ "status": "UP" })).into_response(),
        Err(e) => {
            tracing::warn!(error = %ErrorChain(&e), "health check: store unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({ "status": "DOWN" })),
            )
                .into_response()
        }
    }
}

#[utoipa::path(get, path = "/metrics", tag = "Operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain"),
              (status = 401, description = "`metrics.token` is set and the request lacks it"),
              (status = 404, description = "`metrics.listen` serves them on another address")))]
async fn metrics(State(state): State<MetricsState>, headers: HeaderMap) -> Response {
    if !state.here {
        return ApiError::NotFound.into_response();
    }
    if !state.admits(&headers) {
        return ApiError::Unauthorized.into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        state.handle.render(),
    )
        .into_response()
}

#[utoipa::path(get, path = "/openapi.json", tag = "Operations",
    responses((status = 200, description = "This document")))]
async fn openapi_json(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        state.openapi.as_str().to_owned(),
    )
        .into_response()
}
