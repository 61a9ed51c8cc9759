//! The one mapping from failures to PingOne's P1Error bodies (README § API lists the codes and
//! the order in which checks answer).

use std::collections::BTreeMap;

use axum::{
    extract::rejection::PathRejection,
    http::{HeaderValue, StatusCode, header},
    response::IntoResponse,
};
use serde::Serialize;
use utoipa::{
    ToSchema,
    openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder, response::Response},
};

pub use crate::error_chain::ErrorChain;
use crate::{domain::FieldError, service::ServiceError};

pub const MSG_INVALID_DATA: &str =
    "The request could not be completed. One or more validation errors were in the request.";
pub const MSG_NOT_FOUND: &str =
    "The request could not be completed. The requested resource was not found.";
pub const MSG_UNAUTHORIZED: &str = "You do not have access to this resource.";
pub const MSG_FORBIDDEN: &str =
    "You do not have permissions or are not licensed to make this request.";
pub const MSG_UNEXPECTED: &str =
    "An unexpected error occurred. The request could not be completed.";

/// What a 503 for an unreachable database asks clients to wait.
const UNAVAILABLE_RETRY_AFTER_S: u64 = 5;

/// PingOne's error body.
#[derive(Debug, Serialize, ToSchema)]
pub struct P1Error {
    pub id: String,
    pub code: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<P1ErrorDetail>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct P1ErrorDetail {
    pub code: &'static str,
    pub target: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inner_error: Option<InnerError>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InnerError {
    pub maximum_value: u32,
}

#[derive(Debug)]
pub enum ApiError {
    /// 400 `INVALID_REQUEST`: the request itself is unreadable.
    InvalidRequest(String),
    /// 400 `INVALID_DATA` with one detail.
    InvalidData(P1ErrorDetail),
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    /// 429 `REQUEST_LIMITED` with `Retry-After`.
    RequestLimited {
        retry_after_s: u64,
    },
    /// 503 `SERVICE_UNAVAILABLE`: no answer within `http.request_timeout_s`.
    TimedOut,
    /// 503 `SERVICE_UNAVAILABLE` with `Retry-After`: the database cannot be reached; the cause
    /// is logged, never shown.
    Unavailable(Box<dyn std::error::Error + Send + Sync>),
    /// 500; the cause is logged, never shown.
    Unexpected(Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    pub fn invalid_value(target: &str, message: impl Into<String>) -> Self {
        Self::detail("INVALID_VALUE", target, message)
    }

    pub fn required_value(target: &str) -> Self {
        Self::detail("REQUIRED_VALUE", target, format!("{target} is required."))
    }

    fn detail(code: &'static str, target: &str, message: impl Into<String>) -> Self {
        Self::InvalidData(P1ErrorDetail {
            code,
            target: target.to_owned(),
            message: message.into(),
            inner_error: None,
        })
    }

    fn parts(self) -> (StatusCode, &'static str, String, Vec<P1ErrorDetail>) {
        match self {
            ApiError::InvalidRequest(message) => {
                (StatusCode::BAD_REQUEST, "INVALID_REQUEST", message, vec![])
            }
            ApiError::InvalidData(detail) => (
                StatusCode::BAD_REQUEST,
                "INVALID_DATA",
                MSG_INVALID_DATA.into(),
                vec![detail],
            ),
            ApiError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "ACCESS_FAILED",
                MSG_UNAUTHORIZED.into(),
                vec![],
            ),
            ApiError::Forbidden => (
                StatusCode::FORBIDDEN,
                "ACCESS_FAILED",
                MSG_FORBIDDEN.into(),
                vec![],
            ),
            ApiError::NotFound => (
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                MSG_NOT_FOUND.into(),
                vec![],
            ),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "METHOD_NOT_ALLOWED",
                "The request could not be completed. The method is not allowed on this resource."
                    .into(),
                vec![],
            ),
            ApiError::RequestLimited { retry_after_s } => (
                StatusCode::TOO_MANY_REQUESTS,
                "REQUEST_LIMITED",
                format!(
                    "The request could not be completed. Too many requests; retry after {retry_after_s} seconds."
                ),
                vec![],
            ),
            ApiError::TimedOut => (
                StatusCode::SERVICE_UNAVAILABLE,
                "SERVICE_UNAVAILABLE",
                "The request could not be completed. The service did not answer in time; try again later."
                    .into(),
                vec![],
            ),
            ApiError::Unavailable(cause) => {
                tracing::warn!(error = %ErrorChain(cause.as_ref()), "database unavailable");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "SERVICE_UNAVAILABLE",
                    "The request could not be completed. The service is temporarily unavailable; try again later."
                        .into(),
                    vec![],
                )
            }
            ApiError::Unexpected(cause) => {
                tracing::error!(error = %ErrorChain(cause.as_ref()), "unexpected error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "UNEXPECTED_ERROR",
                    MSG_UNEXPECTED.into(),
                    vec![],
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> axum::response::Response {
        let unauthorized = matches!(self, ApiError::Unauthorized);
        let retry_after = match self {
            ApiError::RequestLimited { retry_after_s } => Some(retry_after_s),
            ApiError::Unavailable(_) => Some(UNAVAILABLE_RETRY_AFTER_S),
            _ => None,
        };
        let (status, code, message, details) = self.parts();
        let body = P1Error {
            id: uuid::Uuid::new_v4().to_string(),
            code,
            message,
            details,
        };
        let mut response = (status, axum::Json(body)).into_response();
        if let Some(seconds) = retry_after
            && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        if unauthorized {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::NotFound => ApiError::NotFound,
            ServiceError::InvalidValue { target, message } => {
                ApiError::invalid_value(&target, message)
            }
            ServiceError::RequiredValue { target } => ApiError::required_value(&target),
            ServiceError::Uniqueness { target, message } => {
                ApiError::detail("UNIQUENESS_VIOLATION", &target, message)
            }
            ServiceError::SizeLimit {
                target,
                maximum,
                message,
            } => ApiError::InvalidData(P1ErrorDetail {
                code: "SIZE_LIMIT_EXCEEDED",
                target,
                message,
                inner_error: Some(InnerError {
                    maximum_value: maximum,
                }),
            }),
            ServiceError::Constraint { target, message } => {
                ApiError::detail("CONSTRAINT_VIOLATION", &target, message)
            }
            ServiceError::InvalidRequest(message) => ApiError::InvalidRequest(message),
            ServiceError::Forbidden => ApiError::Forbidden,
            ServiceError::RateLimited { retry_after_s } => {
                ApiError::RequestLimited { retry_after_s }
            }
            ServiceError::Store(e) if e.is_unavailable() => ApiError::Unavailable(Box::new(e)),
            e @ (ServiceError::Store(_)
            | ServiceError::Token(_)
            | ServiceError::Dkim(_)
            | ServiceError::Secrets(_)) => ApiError::Unexpected(Box::new(e)),
        }
    }
}

/// A body member that is missing or wrong, as `domain` names it.
impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        match e {
            FieldError::Required(target) => ApiError::required_value(&target),
            FieldError::Invalid { target, message } => ApiError::invalid_value(&target, message),
        }
    }
}

/// A path whose parameters cannot be read (not UTF-8) names nothing that exists.
impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        match rejection {
            PathRejection::FailedToDeserializePathParams(_) => ApiError::NotFound,
            other => ApiError::Unexpected(Box::new(other)),
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// For the OpenAPI document: the P1Error answers every route under an environment shares
/// (401 no valid token, 403 not allowed, 404 no such resource). Routes list only what is theirs.
pub struct ResourceErrors;

impl utoipa::IntoResponses for ResourceErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        ["401", "403", "404"]
            .into_iter()
            .map(|status| (status.to_owned(), p1_error_response().into()))
            .collect()
    }
}

fn p1_error_response() -> Response {
    ResponseBuilder::new()
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("P1Error")))
                .build(),
        )
        .build()
}
