//! Cross-cutting: correlation ids, request logs and metrics, and P1Error bodies for the
//! responses axum makes itself (unknown route, wrong method).

use std::{
    collections::HashSet,
    sync::{OnceLock, RwLock},
    time::{Duration, Instant},
};

use axum::{
    extract::{MatchedPath, Request, State},
    http::{HeaderName, HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing::Instrument;

use super::errors::ApiError;

pub const CORRELATION_ID: HeaderName = HeaderName::from_static("correlation-id");

/// The process-wide Prometheus recorder (one per process, shared by every app in tests).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets(&[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                ])
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder is installed; then ours simply records nothing.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// One span per request carrying its correlation id; request count and latency by route.
pub async fn observe(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let mut id_buf = uuid::Uuid::encode_buffer();
    let correlation_id: &str = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut id_buf);
    let correlation_header = HeaderValue::from_str(correlation_id).ok();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| intern(p.as_str()));
    let span = tracing::info_span!(
        "request",
        correlation_id,
        environment_id = tracing::field::Empty,
        client_id = tracing::field::Empty,
    );
    let mut response = next.run(request).instrument(span.clone()).await;
    let status = response.status();
    let elapsed = started.elapsed();
    // Successful reads are the bulk of the traffic and are counted in the metrics; logging each
    // at info would cost a third of the throughput. Writes and failures are always logged.
    let elapsed_ms = elapsed.as_secs_f64() * 1e3;
    let routine_read = (method == Method::GET || method == Method::HEAD) && status.as_u16() < 400;
    span.in_scope(|| {
        if routine_read {
            tracing::debug!(%method, route, status = status.as_u16(), elapsed_ms, "request");
        } else {
            tracing::info!(%method, route, status = status.as_u16(), elapsed_ms, "request");
        }
    });
    // Interned label values: no allocation per request.
    let labels = [
        ("method", method_label(&method)),
        ("route", route),
        ("status", intern(status.as_str())),
    ];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels).record(elapsed.as_secs_f64());
    if let Some(value) = correlation_header {
        response.headers_mut().insert(CORRELATION_ID, value);
    }
    response
}

/// The `method` label: a standard method by name, any other as "other", so that clients
/// inventing methods (`FOO1`, `FOO2`, …) cannot grow the label table.
fn method_label(method: &Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        "OPTIONS" => "OPTIONS",
        "CONNECT" => "CONNECT",
        "TRACE" => "TRACE",
        _ => "other",
    }
}

/// Answers 503 (`ApiError::TimedOut`) for a request still unanswered after `limit`
/// (`http.request_timeout_s`, plus the wait a long poll asked for); the handler is dropped, and
/// with it whatever it awaited.
pub async fn time_limit(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    let limit = limit + super::verification::long_poll_allowance(request.uri());
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(limit_s = limit.as_secs(), "request timed out");
            ApiError::TimedOut.into_response()
        }
    }
}

/// A `'static` copy of a label value. Values come from a bounded set (routes, methods, status
/// codes); past `MAX_INTERNED` distinct ones, the rest share one label instead of growing memory.
fn intern(value: &str) -> &'static str {
    const MAX_INTERNED: usize = 512;
    static INTERNED: OnceLock<RwLock<HashSet<&'static str>>> = OnceLock::new();
    let set = INTERNED.get_or_init(Default::default);
    if let Some(found) = set.read().ok().and_then(|s| s.get(value).copied()) {
        return found;
    }
    let Ok(mut set) = set.write() else {
        return "other";
    };
    if let Some(found) = set.get(value) {
        return found;
    }
    if set.len() >= MAX_INTERNED {
        return "other";
    }
    let leaked: &'static str = Box::leak(value.to_owned().into_boxed_str());
    set.insert(leaked);
    leaked
}

/// Drains histogram samples into buckets; without it they pile up until the next scrape.
pub async fn metrics_upkeep() {
    let handle = metrics_handle();
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
    loop {
        tick.tick().await;
        handle.run_upkeep();
    }
}

pub async fn not_found() -> ApiError {
    ApiError::NotFound
}

/// axum answers a known path with the wrong method itself, with an empty body; keep its
/// headers (`Allow`, and the console's security headers) and give it PingOne's body.
pub async fn p1_method_not_allowed(response: Response) -> Response {
    if response.status() != StatusCode::METHOD_NOT_ALLOWED
        || response.headers().contains_key(header::CONTENT_TYPE)
    {
        return response;
    }
    let mut replaced = ApiError::MethodNotAllowed.into_response();
    for (name, value) in response.headers() {
        if name != header::CONTENT_LENGTH {
            replaced.headers_mut().append(name, value.clone());
        }
    }
    replaced
}
