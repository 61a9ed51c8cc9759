//! Typed paths: one type per nested resource, and the extractors that resolve one.
//!
//! A handler names the one permission it needs in its signature: `Read(domain): Read<DomainPath>`,
//! `Write<…>` or `Manage<…>`. The extractor takes the `Caller` first (401), then checks the
//! permission in the path's environment (403), then loads the resource (404, also when a parent
//! does not exist). Only then does the handler read its body (400). That order is PingOne's.

use std::{str::FromStr, sync::Arc};

use axum::{
    Json,
    extract::{FromRequestParts, Path, Query},
    http::{StatusCode, Uri, request::Parts},
};
use serde::{Deserialize, de::DeserializeOwned};
use utoipa::IntoParams;

use super::{
    AppState,
    auth::Caller,
    errors::{ApiError, ApiResult},
    hal::{Page, Shown, UrlBuilder},
};
use crate::{
    domain::{
        Client, Environment, EnvironmentId, Permission, Population, Subscription, TrustedEmail,
    },
    feedback::Suppression,
    mail::StoredMessage,
    service::{Actor, Created, DomainSnapshot, Service},
    store::Child,
};

/// A typed path that resolves to the resource it names.
pub trait Load: FromRequestParts<AppState, Rejection = ApiError> + Send {
    type Output;

    /// The resource, once `access` allows it in the path's environment.
    fn load(self, access: Access<'_>) -> impl Future<Output = ApiResult<Self::Output>> + Send;
}

/// `P`'s resource, loaded for `Permission::Read`, and what the handler acts with.
pub struct Read<P: Load>(pub P::Output, pub Api);

/// `P`'s resource, loaded for `Permission::Write`, and what the handler acts with.
pub struct Write<P: Load>(pub P::Output, pub Api);

/// `P`'s resource (an environment), loaded for `Permission::ManageEnvironments`, and what the
/// handler acts with.
pub struct Manage<P: Load>(pub P::Output, pub Api);

/// What a handler acts with once its path is resolved: the service, the URLs its views link
/// to, and the verified caller it acts for.
pub struct Api {
    pub service: Service,
    pub urls: UrlBuilder,
    pub actor: Actor,
}

impl Api {
    /// `resource` as the API shows it.
    pub fn show<T: Shown>(&self, resource: &T) -> Json<T::View> {
        Json(resource.view(self))
    }

    /// What a create made (201) or found already (200), as the API shows it.
    pub fn show_created<T: Shown>(&self, outcome: Created<T>) -> (StatusCode, Json<T::View>) {
        match outcome {
            Created::New(resource) => (StatusCode::CREATED, self.show(&resource)),
            Created::Existing(resource) => (StatusCode::OK, self.show(&resource)),
        }
    }

    /// All of `resources` on one page, `_embedded.<key>`, linked to itself at `this`.
    pub fn page<T: Shown>(
        &self,
        key: &'static str,
        all: &[T],
        this: String,
    ) -> Json<Page<T::View>> {
        Json(Page::of(key, all, |r| r.view(self), this))
    }
}

impl<P: Load> FromRequestParts<AppState> for Read<P> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let (resource, api) = extract::<P>(parts, state, Permission::Read).await?;
        Ok(Self(resource, api))
    }
}

impl<P: Load> FromRequestParts<AppState> for Write<P> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let (resource, api) = extract::<P>(parts, state, Permission::Write).await?;
        Ok(Self(resource, api))
    }
}

impl<P: Load> FromRequestParts<AppState> for Manage<P> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let permission = Permission::ManageEnvironments;
        let (resource, api) = extract::<P>(parts, state, permission).await?;
        Ok(Self(resource, api))
    }
}

/// The caller (401), then the path, then its resource for `permission` (403, then 404).
async fn extract<P: Load>(
    parts: &mut Parts,
    state: &AppState,
    permission: Permission,
) -> ApiResult<(P::Output, Api)> {
    let caller = Caller::from_request_parts(parts, state).await?;
    let path = P::from_request_parts(parts, state).await?;
    let access = Access {
        state,
        caller: &caller,
        permission,
    };
    let resource = path.load(access).await?;
    let api = Api {
        service: state.service.clone(),
        urls: state.urls.clone(),
        actor: caller.0,
    };
    Ok((resource, api))
}

/// What a path is resolved with: the state, the caller and the one permission.
pub struct Access<'a> {
    state: &'a AppState,
    caller: &'a Caller,
    permission: Permission,
}

impl Access<'_> {
    /// The environment named by the path: 403 unless the caller has the permission there, 404
    /// when there is none.
    async fn environment(&self, environment: &str) -> ApiResult<Arc<Environment>> {
        let id = self.caller.authorize(environment, self.permission)?;
        Ok(self.state.service.environment(id).await?)
    }

    /// The `T` with the path's id, found in the path's environment.
    async fn in_environment<T>(&self, environment: &str, id: &str) -> ApiResult<T>
    where
        T: Child<Parent = EnvironmentId>,
        T::Id: FromStr,
    {
        let environment = self.environment(environment).await?;
        Ok(self
            .state
            .service
            .find(environment.id, parse_id(id)?)
            .await?)
    }

    /// The domain named by the path, in its environment, as `environment` answers for it.
    async fn domain(&self, environment: &str, domain: &str) -> ApiResult<Arc<DomainSnapshot>> {
        let environment_id = self.caller.authorize(environment, self.permission)?;
        Ok(self
            .state
            .service
            .domain(environment_id, parse_id(domain)?)
            .await?)
    }
}

/// A path's id: one that does not parse names nothing there (404).
fn parse_id<I: FromStr>(raw: &str) -> ApiResult<I> {
    raw.parse().map_err(|_| ApiError::NotFound)
}

/// A typed path: the route's segments as `String` members (camelCase in the route), read by
/// axum's `Path` with P1Error rejections and documented as OpenAPI path parameters.
macro_rules! typed_path {
    ($(#[$doc:meta])* $name:ident { $($(#[$field_doc:meta])* $field:ident),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Deserialize, IntoParams, FromRequestParts)]
        #[serde(rename_all = "camelCase")]
        #[into_params(parameter_in = Path)]
        #[from_request(via(Path), rejection(ApiError))]
        pub struct $name {
            $($(#[$field_doc])* $field: String),+
        }
    };
}

typed_path!(
    /// `/v1/environments/{environmentId}`.
    EnvironmentPath {
        environment_id,
    }
);

impl Load for EnvironmentPath {
    type Output = Arc<Environment>;

    async fn load(self, access: Access<'_>) -> ApiResult<Arc<Environment>> {
        access.environment(&self.environment_id).await
    }
}

typed_path!(
    /// `…/populations/{populationId}`.
    PopulationPath {
        environment_id,
        population_id,
    }
);

impl Load for PopulationPath {
    type Output = Population;

    /// The population, found in its environment.
    async fn load(self, access: Access<'_>) -> ApiResult<Population> {
        access
            .in_environment(&self.environment_id, &self.population_id)
            .await
    }
}

typed_path!(
    /// `…/clients/{clientId}`.
    ClientPath {
        environment_id,
        client_id,
    }
);

impl Load for ClientPath {
    type Output = Client;

    /// The client, found in its environment.
    async fn load(self, access: Access<'_>) -> ApiResult<Client> {
        access
            .in_environment(&self.environment_id, &self.client_id)
            .await
    }
}

typed_path!(
    /// `…/subscriptions/{subscriptionId}`.
    SubscriptionPath {
        environment_id,
        subscription_id,
    }
);

impl Load for SubscriptionPath {
    type Output = Subscription;

    /// The subscription, found in its environment.
    async fn load(self, access: Access<'_>) -> ApiResult<Subscription> {
        let environment = access.environment(&self.environment_id).await?;
        let id = parse_id(&self.subscription_id)?;
        Ok(access.state.service.subscription(&environment, id).await?)
    }
}

typed_path!(
    /// `…/messages/{messageId}`.
    MessagePath {
        environment_id,
        message_id,
    }
);

impl Load for MessagePath {
    type Output = StoredMessage;

    /// The message, found among the environment's customer mail.
    async fn load(self, access: Access<'_>) -> ApiResult<StoredMessage> {
        let environment = access.environment(&self.environment_id).await?;
        let id = parse_id(&self.message_id)?;
        Ok(access.state.service.message(&environment, id).await?)
    }
}

typed_path!(
    /// `…/emailDomains/{emailDomainId}`.
    DomainPath {
        environment_id,
        email_domain_id,
    }
);

impl Load for DomainPath {
    type Output = Arc<DomainSnapshot>;

    async fn load(self, access: Access<'_>) -> ApiResult<Arc<DomainSnapshot>> {
        access
            .domain(&self.environment_id, &self.email_domain_id)
            .await
    }
}

typed_path!(
    /// `…/trustedEmails/{trustedEmailId}`.
    TrustedEmailPath {
        environment_id,
        email_domain_id,
        trusted_email_id,
    }
);

impl Load for TrustedEmailPath {
    type Output = TrustedEmail;

    /// The address, found in its domain.
    async fn load(self, access: Access<'_>) -> ApiResult<TrustedEmail> {
        let domain = access
            .domain(&self.environment_id, &self.email_domain_id)
            .await?;
        let id = parse_id(&self.trusted_email_id)?;
        Ok(access.state.service.find(domain.id, id).await?)
    }
}

typed_path!(
    /// `…/suppressions/{emailAddress}`: an entry of the environment's suppression list.
    SuppressionPath {
        environment_id,
        /// The address, percent-encoded where a path needs it.
        email_address,
    }
);

impl Load for SuppressionPath {
    type Output = Suppression;

    /// The entry, found in its environment's list.
    async fn load(self, access: Access<'_>) -> ApiResult<Suppression> {
        let environment = access.environment(&self.environment_id).await?;
        let service = &access.state.service;
        Ok(service
            .suppression(&environment, &self.email_address)
            .await?)
    }
}

/// `…/suppressions/{emailAddress}` where an entry is to be: the environment, and the address
/// as the path names it, listed or not.
pub struct ToSuppress(SuppressionPath);

impl FromRequestParts<AppState> for ToSuppress {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        SuppressionPath::from_request_parts(parts, state)
            .await
            .map(Self)
    }
}

impl Load for ToSuppress {
    type Output = (Arc<Environment>, String);

    async fn load(self, access: Access<'_>) -> ApiResult<Self::Output> {
        let environment = access.environment(&self.0.environment_id).await?;
        Ok((environment, self.0.email_address))
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
