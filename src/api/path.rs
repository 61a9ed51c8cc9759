//! Typed paths: one type per nested resource, with the method that resolves it.
//!
//! A handler takes `Caller` first (401), then its path type, and calls `load` with the one
//! permission it needs: 403 when the caller lacks it, 404 when the resource (or a parent) does
//! not exist. Only then does it read its body (400). That order is PingOne's.

use std::sync::Arc;

use axum::{
    extract::{FromRequestParts, Path, Query},
    http::Uri,
};
use serde::{Deserialize, de::DeserializeOwned};
use utoipa::IntoParams;

use super::{
    AppState,
    auth::Caller,
    errors::{ApiError, ApiResult},
};
use crate::{
    domain::{Client, Environment, Permission, Population, Subscription, TrustedEmail},
    mail::StoredMessage,
    service::DomainSnapshot,
};

/// `/v1/environments/{environmentId}`.
#[derive(Debug, Deserialize, IntoParams, FromRequestParts)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Path)]
#[from_request(via(Path), rejection(ApiError))]
pub struct EnvironmentPath {
    environment_id: String,
}

impl EnvironmentPath {
    pub async fn load(
        &self,
        state: &AppState,
        caller: &Caller,
        permission: Permission,
    ) -> ApiResult<Arc<Environment>> {
        let id = caller.authorize(&self.environment_id, permission)?;
        Ok(state.service.environment(id).await?)
    }
}

/// `…/populations/{populationId}`.
#[derive(Debug, Deserialize, IntoParams, FromRequestParts)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Path)]
#[from_request(via(Path), rejection(ApiError))]
pub struct PopulationPath {
    environment_id: String,
    population_id: String,
}

impl PopulationPath {
    /// The population, found in its environment.
    pub async fn load(
        &self,
        state: &AppState,
        caller: &Caller,
        permission: Permission,
    ) -> ApiResult<Population> {
        let environment_id = caller.authorize(&self.environment_id, permission)?;
        let environment = state.service.environment(environment_id).await?;
        let id = self.population_id.parse().map_err(|_| ApiError::NotFound)?;
        Ok(state.service.find::<Population>(environment.id, id).await?)
    }
}

/// `…/clients/{clientId}`.
#[derive(Debug, Deserialize, IntoParams, FromRequestParts)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Path)]
#[from_request(via(Path), rejection(ApiError))]
pub struct ClientPath {
    environment_id: String,
    client_id: String,
}

impl ClientPath {
    /// The client, found in its environment.
    pub async fn load(
        &self,
        state: &AppState,
        caller: &Caller,
        permission: Permission,
    ) -> ApiResult<Client> {
        let environment_id = caller.authorize(&self.environment_id, permission)?;
        let environment = state.service.environment(environment_id).await?;
        let id = self.client_id.parse().map_err(|_| ApiError::NotFound)?;
        Ok(state.service.find::<Client>(environment.id, id).await?)
    }
}

/// `…/subscriptions/{subscriptionId}`.
#[derive(Debug, Deserialize, IntoParams, FromRequestParts)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Path)]
#[from_request(via(Path), rejection(ApiError))]
pub struct SubscriptionPath {
    environment_id: String,
    subscription_id: String,
}

impl SubscriptionPath {
    /// The subscription, found in its environment.
    pub async fn load(
        &self,
        state: &AppState,
        caller: &Caller,
        permission: Permission,
    ) -> ApiResult<Subscription> {
        let environment_id = caller.authorize(&self.environment_id, permission)?;
        let environment = state.service.environment(environment_id).await?;
        let id = self
            .subscription_id
            .parse()
            .map_err(|_| ApiError::NotFound)?;
        Ok(state.service.subscription(&environment, id).await?)
    }
}

/// `…/messages/{messageId}`.
#[derive(Debug, Deserialize, IntoParams, FromRequestParts)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Path)]
#[from_request(via(Path), rejection(ApiError))]
pub struct MessagePath {
    environment_id: String,
    message_id: String,
}

impl MessagePath {
    /// The message, found among the environment's customer mail.
    pub async fn load(
        &self,
        state: &AppState,
        caller: &Caller,
        permission: Permission,
    ) -> ApiResult<StoredMessage> {
        let environment_id = caller.authorize(&self.environment_id, permission)?;
        let environment = state.service.environment(environment_id).await?;
        let id = self.message_id.parse().map_err(|_| ApiError::NotFound)?;
        Ok(state.service.message(&environment, id).await?)
    }
}

/// `…/emailDomains/{emailDomainId}`.
#[derive(Debug, Deserialize, IntoParams, FromRequestParts)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Path)]
#[from_request(via(Path), rejection(ApiError))]
pub struct DomainPath {
    environment_id: String,
    email_domain_id: String,
}

impl DomainPath {
    pub async fn load(
        &self,
        state: &AppState,
        caller: &Caller,
        permission: Permission,
    ) -> ApiResult<Arc<DomainSnapshot>> {
        load_domain(
            state,
            caller,
            permission,
            &self.environment_id,
            &self.email_domain_id,
        )
        .await
    }
}

/// `…/trustedEmails/{trustedEmailId}`.
#[derive(Debug, Deserialize, IntoParams, FromRequestParts)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Path)]
#[from_request(via(Path), rejection(ApiError))]
pub struct TrustedEmailPath {
    environment_id: String,
    email_domain_id: String,
    trusted_email_id: String,
}

impl TrustedEmailPath {
    /// The address, found in its domain.
    pub async fn load(
        &self,
        state: &AppState,
        caller: &Caller,
        permission: Permission,
    ) -> ApiResult<TrustedEmail> {
        let domain = load_domain(
            state,
            caller,
            permission,
            &self.environment_id,
            &self.email_domain_id,
        )
        .await?;
        let id = self
            .trusted_email_id
            .parse()
            .map_err(|_| ApiError::NotFound)?;
        Ok(state.service.find::<TrustedEmail>(domain.id, id).await?)
    }
}

/// The query string as `T`, read by the handler after `load`, so that a malformed one is a
/// 400 P1Error in its turn (axum's `Query` extractor would answer first, in plain text).
pub fn query<T: DeserializeOwned>(uri: &Uri) -> ApiResult<T> {
    Query::<T>::try_from_uri(uri)
        .map(|Query(query)| query)
        .map_err(|e| {
            let text = e.body_text();
            let reason = text
                .strip_prefix("Failed to deserialize query string: ")
                .unwrap_or(&text);
            ApiError::InvalidRequest(format!(
                "The request could not be completed. The query string is not valid: {reason}."
            ))
        })
}

/// A whole-number query parameter from `min` to `max`, `default` when absent.
pub fn query_number(
    raw: Option<&str>,
    name: &str,
    default: u32,
    min: u32,
    max: u32,
) -> ApiResult<u32> {
    match raw {
        None => Ok(default),
        Some(raw) => raw
            .parse::<u32>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| {
                ApiError::invalid_value(
                    name,
                    format!("{name} must be a whole number from {min} to {max}."),
                )
            }),
    }
}

async fn load_domain(
    state: &AppState,
    caller: &Caller,
    permission: Permission,
    environment: &str,
    domain: &str,
) -> ApiResult<Arc<DomainSnapshot>> {
    let environment_id = caller.authorize(environment, permission)?;
    let id = domain.parse().map_err(|_| ApiError::NotFound)?;
    Ok(state.service.domain(environment_id, id).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Page {
        limit: Option<String>,
        offset: Option<String>,
    }

    fn uri(query: &str) -> Option<Uri> {
        format!("/v1/x?{query}").parse().ok()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

        /// Any query string a request line can carry: a page or a 400, never a panic.
        #[test]
        fn any_query_is_read_or_invalid_request(text in "[a-z0-9=&%+;._~!$'()*,:@/?-]{0,60}") {
            if let Some(uri) = uri(&text)
                && let Err(e) = query::<Page>(&uri)
            {
                prop_assert!(matches!(e, ApiError::InvalidRequest(_)));
            }
        }

        /// Any string, form-encoded as a value, reads back as itself.
        #[test]
        fn any_encoded_value_reads_back(value in any::<String>()) {
            let encoded: String = form_urlencoded::byte_serialize(value.as_bytes()).collect();
            let uri = uri(&format!("limit={encoded}")).unwrap();
            let page = query::<Page>(&uri).ok();
            prop_assert_eq!(page, Some(Page { limit: Some(value), offset: None }));
        }

        /// A repeated parameter is a 400, whatever its values.
        #[test]
        fn a_repeated_parameter_is_invalid_request(a in "[a-z0-9]{0,5}", b in "[a-z0-9]{0,5}") {
            let uri = uri(&format!("limit={a}&offset=1&limit={b}")).unwrap();
            prop_assert!(matches!(query::<Page>(&uri), Err(ApiError::InvalidRequest(_))));
        }
    }
}
