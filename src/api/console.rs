//! The web console: the files of `console/` (plain HTML, CSS and JavaScript modules), compiled
//! into the binary and served at `/console/`. It is a same-origin client of the API and holds no
//! logic the API does not; every answer here carries the security headers (`SECURITY_HEADERS`).

use std::{collections::HashMap, sync::LazyLock};

use axum::{
    Router,
    body::Body,
    http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri, header},
    response::{IntoResponse, Redirect, Response},
    routing::get,
};
use base64::Engine;

use super::{AppState, errors::ApiError};

/// Where the console lives; `/console` redirects here.
pub const PREFIX: &str = "/console/";

const HTML: &str = "text/html; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
// Module scripts are refused by browsers unless served with a JavaScript type.
const JS: &str = "text/javascript; charset=utf-8";

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! assets {
    ($($name:literal => $type:expr),* $(,)?) => {
        &[$(Asset {
            name: $name,
            content_type: $type,
            body: include_bytes!(concat!("../../console/", $name)),
        }),*]
    };
}

/// Every file of `console/`; a file not listed here is not served (404).
static ASSETS: &[Asset] = assets![
    "index.html" => HTML,
    "console.css" => CSS,
    "app.js" => JS,
    "api.js" => JS,
    "dom.js" => JS,
    "session.js" => JS,
    "signin.js" => JS,
    "environments.js" => JS,
    "domains.js" => JS,
    "records.js" => JS,
    "senders.js" => JS,
    "mail_from.js" => JS,
    "self_check.js" => JS,
    "activities.js" => JS,
];

/// No inline script or style, no framing, nothing fetched but from this origin (the API);
/// `img-src data:` for the empty favicon that keeps browsers from asking for `/favicon.ico`.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

const SECURITY_HEADERS: [(HeaderName, &str); 6] = [
    (header::CONTENT_SECURITY_POLICY, CSP),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::REFERRER_POLICY, "no-referrer"),
    (
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    ),
    (
        HeaderName::from_static("cross-origin-resource-policy"),
        "same-origin",
    ),
];

/// Asset names are not hashed (modules import each other by name), so browsers revalidate
/// every time and get a 304 while the binary is the same: a new release is never served stale.
const CACHE_CONTROL: &str = "no-cache";

/// Each asset's ETag: a digest of its bytes, so it changes exactly when the file does.
static ETAGS: LazyLock<HashMap<&'static str, HeaderValue>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .filter_map(|asset| {
            let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, asset.body);
            let tag =
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref().get(..16)?);
            Some((
                asset.name,
                HeaderValue::from_str(&format!("\"{tag}\"")).ok()?,
            ))
        })
        .collect()
});

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console", get(|| async { Redirect::permanent(PREFIX) }))
        .route(PREFIX, get(serve))
        .route("/console/{*asset}", get(serve))
        .layer(axum::middleware::map_response(security_headers))
}

async fn serve(uri: Uri, headers: HeaderMap) -> Response {
    let name = match uri.path().strip_prefix(PREFIX) {
        Some("") => "index.html",
        Some(name) => name,
        None => return ApiError::NotFound.into_response(),
    };
    let (Some(asset), Some(etag)) = (
        ASSETS.iter().find(|a| a.name == name),
        ETAGS.get(name).cloned(),
    ) else {
        return ApiError::NotFound.into_response();
    };
    let cached = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| {
            let tag = tag.trim();
            tag == "*" || tag.trim_start_matches("W/").as_bytes() == etag.as_bytes()
        });
    let cache = [
        (header::ETAG, etag),
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static(CACHE_CONTROL),
        ),
    ];
    if cached {
        return (StatusCode::NOT_MODIFIED, cache).into_response();
    }
    (
        cache,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        )],
        Body::from(asset.body),
    )
        .into_response()
}

/// Every console answer (assets, 304s, 404s, redirects, 405s) gets the same headers.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}
