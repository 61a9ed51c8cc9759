//! `/{environmentId}/as/token` (OAuth 2.0 client credentials) and `/{environmentId}/as/jwks`.
//! The token endpoint's errors are RFC 6749's, not P1Error; the JWKS route's 404 is a P1Error.

use axum::{
    Json,
    extract::{Path, State, rejection::PathRejection},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    AppState,
    body::RawBody,
    client_address::ClientAddress,
    errors::{ApiResult, P1Error},
};
use crate::{
    domain::{ClientId, EnvironmentId},
    service::{TOKEN_LIFETIME_S, TokenGrant},
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(issue_token))
        .routes(routes!(read_jwks))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OAuthError {
    error: &'static str,
    error_description: String,
}

fn oauth_error(status: StatusCode, error: &'static str, description: &str) -> Response {
    let mut response = (
        status,
        Json(OAuthError {
            error,
            error_description: description.to_owned(),
        }),
    )
        .into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if status == StatusCode::UNAUTHORIZED {
        headers.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"trustmail\""),
        );
    }
    response
}

/// `error` as it is set, plus `Retry-After`.
fn retry_later(
    status: StatusCode,
    error: &'static str,
    description: &str,
    seconds: u64,
) -> Response {
    let mut response = oauth_error(status, error, description);
    if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

fn invalid_request(description: &str) -> Response {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_request", description)
}

fn invalid_client() -> Response {
    oauth_error(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "Client authentication failed.",
    )
}

/// `client_secret_basic`: the id and secret are form-urlencoded before base64 (RFC 6749 §2.3.1).
fn basic_credentials(headers: &HeaderMap) -> Option<Result<(String, String), ()>> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|raw| String::from_utf8(raw).ok());
    Some(
        decoded
            .as_deref()
            .and_then(|text| text.split_once(':'))
            .map(|(id, secret)| (form_decode(id), form_decode(secret)))
            .ok_or(()),
    )
}

fn form_decode(s: &str) -> String {
    form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

#[utoipa::path(post, path = "/{environmentId}/as/token", tag = "Authorization",
    params(("environmentId" = String, Path)),
    request_body(content_type = "application/x-www-form-urlencoded",
                 description = "`grant_type=client_credentials`, with `client_id` and `client_secret` here or in HTTP Basic"),
    responses((status = 200, body = TokenResponse), (status = 400, body = OAuthError),
              (status = 401, body = OAuthError),
              (status = 429, body = OAuthError, description = "`REQUEST_LIMITED`: too many wrong secrets for this client from this address; see `Retry-After`"),
              (status = 503, body = OAuthError, description = "`temporarily_unavailable`: too many secrets being checked; see `Retry-After`")))]
async fn issue_token(
    State(state): State<AppState>,
    environment: Result<Path<String>, PathRejection>,
    ClientAddress(source): ClientAddress,
    headers: HeaderMap,
    body: RawBody,
) -> ApiResult<Response> {
    // A segment that is not UTF-8 once decoded names no environment; axum would answer in text.
    let Ok(Path(environment)) = environment else {
        return Ok(invalid_request(
            "The environment id in the path is not valid.",
        ));
    };
    if body.media_type().as_deref() != Some("application/x-www-form-urlencoded") {
        return Ok(invalid_request(
            "The Content-Type must be application/x-www-form-urlencoded.",
        ));
    }
    let Some(raw) = body.bytes() else {
        return Ok(invalid_request("The request body is too large."));
    };
    if std::str::from_utf8(raw).is_err() {
        return Ok(invalid_request("The request body is not UTF-8."));
    }
    let mut grant_type = None;
    let mut form_id = None;
    let mut form_secret = None;
    for (key, value) in form_urlencoded::parse(raw) {
        let slot = match key.as_ref() {
            "grant_type" => &mut grant_type,
            "client_id" => &mut form_id,
            "client_secret" => &mut form_secret,
            _ => continue,
        };
        if slot.replace(value.into_owned()).is_some() {
            return Ok(invalid_request(&format!(
                "The parameter {key} appears twice."
            )));
        }
    }
    match grant_type.as_deref() {
        None => return Ok(invalid_request("The grant_type parameter is required.")),
        Some("client_credentials") => {}
        Some(_) => {
            return Ok(oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "Only the client_credentials grant is supported.",
            ));
        }
    }
    let (client_id, secret) = match (basic_credentials(&headers), form_id, form_secret) {
        (Some(Ok(_)), Some(_), _) | (Some(Ok(_)), _, Some(_)) => {
            return Ok(invalid_request(
                "Use one client authentication method, not both.",
            ));
        }
        (Some(Ok(pair)), None, None) => pair,
        (Some(Err(())), _, _) => return Ok(invalid_client()),
        (None, Some(id), Some(secret)) => (id, secret),
        (None, _, _) => return Ok(invalid_client()),
    };
    let (Ok(environment_id), Ok(client_id)) = (
        environment.parse::<EnvironmentId>(),
        client_id.parse::<ClientId>(),
    ) else {
        return Ok(invalid_client());
    };
    match state
        .service
        .issue_token(environment_id, client_id, &secret, source)
        .await?
    {
        TokenGrant::Issued(access_token) => {
            let mut response = Json(TokenResponse {
                access_token,
                token_type: "Bearer",
                expires_in: TOKEN_LIFETIME_S,
            })
            .into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            Ok(response)
        }
        TokenGrant::Refused => {
            tracing::info!(%client_id, %source, "token refused: unknown client or wrong secret");
            Ok(invalid_client())
        }
        TokenGrant::Locked { retry_after_s } => {
            tracing::warn!(%client_id, %source, "token refused: too many wrong secrets from this source");
            Ok(retry_later(
                StatusCode::TOO_MANY_REQUESTS,
                "REQUEST_LIMITED",
                &format!(
                    "Too many failed client authentications; retry after {retry_after_s} seconds."
                ),
                retry_after_s,
            ))
        }
        TokenGrant::Busy => Ok(retry_later(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "Too many client authentications in progress; retry shortly.",
            1,
        )),
    }
}

#[utoipa::path(get, path = "/{environmentId}/as/jwks", tag = "Authorization",
    params(("environmentId" = String, Path)),
    responses((status = 200, description = "JSON Web Key Set"), (status = 404, body = P1Error)))]
async fn read_jwks(
    State(state): State<AppState>,
    environment: Result<Path<String>, PathRejection>,
) -> ApiResult<impl IntoResponse> {
    // Not UTF-8 once decoded: 404 `NOT_FOUND` (`From<PathRejection>`), not axum's text.
    let Path(environment) = environment?;
    let id = environment
        .parse()
        .map_err(|_| super::errors::ApiError::NotFound)?;
    state.service.environment(id).await?;
    Ok(Json(state.service.tokens().jwks()))
}
