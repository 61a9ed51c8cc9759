//! Operator endpoints: health, metrics and the OpenAPI document. No token needed.

use axum::{
    Json,
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{AppState, errors::ErrorChain};

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
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        state.metrics.render(),
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
