//! HTTP: routes, extractors, request and response shapes, and the one error mapping.

mod activities;
mod auth;
mod bill_of_materials;
mod body;
pub mod client_address;
mod clients;
mod console;
mod dkim;
mod dmarc_reports;
mod email_domains;
mod environments;
pub mod errors;
pub mod hal;
mod mail_from;
mod messages;
pub mod middleware;
mod oauth;
mod paging;
mod path;
mod populations;
mod self_check;
mod subscriptions;
mod suppressions;
mod system;
mod trusted_emails;
mod verification;

use std::sync::Arc;

/// The API's JSON bodies, for the CLI's `--json`: the same shapes a client reads.
pub mod views {
    pub use super::{
        email_domains::EmailDomainView, environments::EnvironmentView,
        verification::VerificationView,
    };
}

use axum::{Router, http::header};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

pub use activities::activity_body;
pub use system::{MetricsAccess, metrics_router};

use crate::service::Service;

#[derive(Clone)]
pub struct AppState {
    pub service: Service,
    pub urls: hal::UrlBuilder,
    metrics: system::MetricsState,
    openapi: Arc<String>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "trustmail",
        description = "PingOne-compatible trusted email domains. Paths are absolute; send \
                       `Authorization: Bearer <token>` from `POST /{environmentId}/as/token`."
    ),
    components(schemas(errors::P1Error))
)]
struct ApiDoc;

/// Every route of the service, and the OpenAPI document generated from the same list.
pub fn routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(environments::routes())
        .merge(bill_of_materials::routes())
        .merge(populations::routes())
        .merge(clients::routes())
        .merge(email_domains::routes())
        .merge(dkim::routes())
        .merge(self_check::routes())
        .merge(dmarc_reports::routes())
        .merge(verification::routes())
        .merge(mail_from::routes())
        .merge(trusted_emails::routes())
        .merge(messages::routes())
        .merge(activities::routes())
        .merge(subscriptions::routes())
        .merge(suppressions::routes())
        .merge(oauth::routes())
        .merge(system::routes())
        .split_for_parts()
}

/// The OpenAPI document with `public_url` as its server.
pub fn openapi(public_url: &str) -> utoipa::openapi::OpenApi {
    let (_, mut doc) = routes();
    doc.servers = Some(vec![utoipa::openapi::Server::new(public_url)]);
    doc
}

/// Every route and the console, with the request time limit (`http.request_timeout_s`) inside the
/// correlation-id and metrics layer, so a timed-out request is logged and counted as its 503.
pub fn router(
    service: Service,
    public_url: &str,
    request_timeout: std::time::Duration,
    metrics: &MetricsAccess,
) -> Router {
    let (routes, mut doc) = routes();
    doc.servers = Some(vec![utoipa::openapi::Server::new(public_url)]);
    let openapi = doc.to_pretty_json().unwrap_or_else(|_| "{}".into());
    let state = AppState {
        service,
        urls: hal::UrlBuilder::new(public_url),
        metrics: system::MetricsState::new(
            middleware::metrics_handle(),
            metrics,
            metrics.on_api_listener,
        ),
        openapi: Arc::new(openapi),
    };
    routes
        .merge(console::routes())
        .fallback(middleware::not_found)
        .with_state(state)
        .layer(axum::middleware::map_response(
            middleware::p1_method_not_allowed,
        ))
        .layer(axum::middleware::from_fn_with_state(
            request_timeout,
            middleware::time_limit,
        ))
        .layer(axum::middleware::from_fn(middleware::observe))
        // Bearer tokens print as "Sensitive" should anything ever log a request's headers.
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            header::COOKIE,
        ]))
}
