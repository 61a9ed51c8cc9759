//! Identity as an extractor; each handler then states the one permission it needs.

use axum::{
    extract::FromRequestParts,
    http::{header, request::Parts},
};

use super::{AppState, errors::ApiError};
use crate::{
    domain::{EnvironmentId, Permission},
    service::Actor,
};

/// The verified caller. Missing, malformed, forged or expired tokens are a 401. Verified once
/// a request: the path extractors (`path::Read` and the others) and the handler share it.
#[derive(Debug, Clone)]
pub struct Caller(pub Actor);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| {
                let (scheme, token) = value.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .filter(|token| !token.is_empty())
            .ok_or(ApiError::Unauthorized)?;
        let actor = state
            .service
            .tokens()
            .verify(token)
            .await
            .map_err(|e| match e {
                crate::service::TokenError::Invalid => ApiError::Unauthorized,
                crate::service::TokenError::Store(e) if e.is_unavailable() => {
                    ApiError::Unavailable(Box::new(e))
                }
                e @ crate::service::TokenError::StoreUnavailable => {
                    ApiError::Unavailable(Box::new(e))
                }
                other => ApiError::Unexpected(Box::new(other)),
            })?;
        tracing::Span::current().record("client_id", tracing::field::display(actor.client_id));
        let caller = Caller(actor);
        parts.extensions.insert(caller.clone());
        Ok(caller)
    }
}

impl Caller {
    /// 403 unless the caller may do `permission` in the environment named by the path; then the
    /// parsed id. A malformed id is a 404 for those who may see every environment, a 403 for
    /// the rest (whose only environment it cannot be).
    pub fn authorize(
        &self,
        environment: &str,
        permission: Permission,
    ) -> Result<EnvironmentId, ApiError> {
        let actor = &self.0;
        if !actor.role.grants(permission) {
            return Err(ApiError::Forbidden);
        }
        match environment.parse::<EnvironmentId>() {
            Ok(id) if actor.role.spans_environments() || id == actor.environment_id => {
                tracing::Span::current().record("environment_id", tracing::field::display(id));
                Ok(id)
            }
            Err(_) if actor.role.spans_environments() => Err(ApiError::NotFound),
            _ => Err(ApiError::Forbidden),
        }
    }

    /// 403 unless the caller holds `permission` at all (for routes without an environment).
    pub fn require(&self, permission: Permission) -> Result<(), ApiError> {
        if self.0.role.grants(permission) {
            Ok(())
        } else {
            Err(ApiError::Forbidden)
        }
    }
}
