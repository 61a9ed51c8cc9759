//! `/v1/environments/{environmentId}/subscriptions`: webhooks in PingOne's `Subscription`
//! shape, plus two additions: the signing secret (shown by the create and by `POST …/secret`)
//! and `GET …/deliveries`, where each delivery stands.

use axum::{Json, http::StatusCode, http::Uri, response::IntoResponse};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    AppState,
    body::{Body, JsonObject, RequestBody},
    errors::{ApiError, ApiResult, P1Error, ResourceErrors},
    hal::{IdRef, Links, Shown, UrlBuilder, wire_time},
    paging::{PageQuery, PageRequest},
    path::{Api, EnvironmentPath, Read, SubscriptionPath, Write},
};
use crate::{
    domain::{
        ActivityType, EndpointHeaders, EndpointUrl, InvalidField, Permission, SigningSecret,
        Subscription, SubscriptionFormat, SubscriptionSettings, UnknownValue, parse_action_types,
    },
    service::Delivery,
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_subscription, list_subscriptions))
        .routes(routes!(
            read_subscription,
            update_subscription,
            delete_subscription
        ))
        .routes(routes!(rotate_subscription_secret))
        .routes(routes!(list_deliveries))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HttpEndpointView {
    url: String,
    /// Sent with every delivery; absent when there are none.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    headers: BTreeMap<String, String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FilterOptionsView {
    included_action_types: Vec<&'static str>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionView {
    #[serde(rename = "_links")]
    #[schema(value_type = Object)]
    links: Links,
    id: String,
    environment: IdRef,
    name: String,
    enabled: bool,
    http_endpoint: HttpEndpointView,
    /// `ACTIVITY`.
    format: &'static str,
    filter_options: FilterOptionsView,
    verify_tls_certificates: bool,
    created_at: String,
    updated_at: String,
    /// Addition: the `whsec_…` secret that signs deliveries; only in the answer to the create.
    #[serde(skip_serializing_if = "Option::is_none")]
    signing_secret: Option<String>,
}

/// What a header value reads as to a caller who may not change the subscription.
const MASKED_HEADER: &str = "****";

impl Shown for Subscription {
    type View = SubscriptionView;

    /// Header values for a caller who may change the subscription; masked for the rest.
    fn view(&self, api: &Api) -> SubscriptionView {
        let caller_writes = api.actor.role.grants(Permission::Write);
        SubscriptionView::new(self, &api.urls, caller_writes)
    }
}

impl SubscriptionView {
    /// `caller_writes`: the caller may change the subscription, so it may read the endpoint's
    /// header values (usually the receiver's own credentials); a READ_ONLY caller sees their
    /// names with the values masked.
    fn new(subscription: &Subscription, urls: &UrlBuilder, caller_writes: bool) -> Self {
        let environment = urls.environment(subscription.environment_id);
        let this = format!("{environment}/subscriptions/{}", subscription.id);
        let settings = &subscription.settings;
        Self {
            links: Links::from([
                ("self", UrlBuilder::link(this.clone())),
                ("environment", UrlBuilder::link(environment)),
                ("deliveries", UrlBuilder::link(format!("{this}/deliveries"))),
            ]),
            id: subscription.id.to_string(),
            environment: IdRef::new(subscription.environment_id),
            name: settings.name.clone(),
            enabled: settings.enabled,
            http_endpoint: HttpEndpointView {
                url: settings.url.as_str().to_owned(),
                headers: settings
                    .headers
                    .as_map()
                    .iter()
                    .map(|(name, value)| {
                        let shown = if caller_writes { value } else { MASKED_HEADER };
                        (name.clone(), shown.to_owned())
                    })
                    .collect(),
            },
            format: settings.format.as_str(),
            filter_options: FilterOptionsView {
                included_action_types: settings.action_types.iter().map(|a| a.as_str()).collect(),
            },
            verify_tls_certificates: settings.verify_tls,
            created_at: wire_time(subscription.created_at),
            updated_at: wire_time(subscription.updated_at),
            signing_secret: None,
        }
    }
}

/// Request body of a create or update (PUT): PingOne's `Subscription`. Members trustmail does
/// not implement (`payloadOptions`, `tlsClientAuthKeyPair`, `connectionDetails`, and
/// `filterOptions`' `includedApplications`, `includedPopulations`, `includedTags`,
/// `ipAddressExposed`, `userAgentExposed`) are accepted only absent, null, `false` or `[]`
/// (README § Webhooks).
#[derive(Debug, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionBody {
    /// Checked, nothing to keep: HTTPS is the only protocol.
    #[schema(rename = "protocol")]
    _protocol: Option<Protocol>,
    /// Absent: `ACTIVITY`.
    #[schema(required = false)]
    format: SubscriptionFormat,
    filter_options: FilterOptions,
    name: String,
    enabled: bool,
    http_endpoint: HttpEndpoint,
    verify_tls_certificates: bool,
}

/// The protocol deliveries use.
#[derive(Debug, ToSchema)]
pub enum Protocol {
    #[serde(rename = "HTTPS")]
    Https,
}

#[derive(Debug, ToSchema)]
pub struct HttpEndpoint {
    #[schema(value_type = String)]
    url: EndpointUrl,
    /// Sent with every delivery (names as HTTP reads them); absent: none.
    #[schema(value_type = BTreeMap<String, String>, required = false)]
    headers: EndpointHeaders,
}

#[derive(Debug, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FilterOptions {
    /// At least one; repeats are kept once.
    included_action_types: Vec<ActivityType>,
}

/// A new signing secret: deliveries from now on are signed with it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SigningSecretView {
    signing_secret: String,
}

/// One delivery of an activity to the subscription's endpoint.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryView {
    activity: IdRef,
    /// `PENDING`, `DELIVERED` or `FAILED`.
    state: &'static str,
    attempts: u32,
    /// The endpoint's status in answer to the last attempt.
    #[serde(skip_serializing_if = "Option::is_none")]
    last_status: Option<u16>,
    /// Why the last attempt failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    last_error: Option<String>,
    /// When a `PENDING` delivery is next attempted.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_attempt_at: Option<String>,
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    delivered_at: Option<String>,
}

impl From<&Delivery> for DeliveryView {
    fn from(d: &Delivery) -> Self {
        Self {
            activity: IdRef::new(d.activity_id),
            state: d.state.as_str(),
            attempts: d.attempts,
            last_status: d.last_status,
            last_error: d.last_error.clone(),
            next_attempt_at: d.next_attempt_at.map(wire_time),
            created_at: wire_time(d.created_at),
            delivered_at: d.delivered_at.map(wire_time),
        }
    }
}

impl From<InvalidField> for ApiError {
    fn from(e: InvalidField) -> Self {
        ApiError::invalid_value(e.target, e.message)
    }
}

/// PingOne members that ask for what trustmail does not do: absent, null, `false` or `[]`
/// are accepted (clients send those for "none"), anything else is 400 `INVALID_VALUE`.
const UNSUPPORTED: &[&[&str]] = &[
    &["filterOptions", "includedApplications"],
    &["filterOptions", "includedPopulations"],
    &["filterOptions", "includedTags"],
    &["filterOptions", "ipAddressExposed"],
    &["filterOptions", "userAgentExposed"],
    &["payloadOptions"],
    &["tlsClientAuthKeyPair"],
    &["connectionDetails"],
];

impl RequestBody for SubscriptionBody {
    fn read(body: &JsonObject) -> ApiResult<Self> {
        refuse_unsupported(body)?;
        let protocol = match body.at(&["protocol"]) {
            None => None,
            Some(Value::String(p)) if p == "HTTPS" => Some(Protocol::Https),
            Some(_) => {
                return Err(ApiError::invalid_value(
                    "protocol",
                    "protocol must be HTTPS (the only one trustmail delivers over).",
                ));
            }
        };
        let format = match body.at(&["format"]) {
            None => SubscriptionFormat::Activity,
            Some(Value::String(f)) => f
                .parse()
                .map_err(|e: UnknownValue| ApiError::invalid_value("format", e.to_string()))?,
            Some(_) => {
                return Err(ApiError::invalid_value(
                    "format",
                    "format must be a string.",
                ));
            }
        };
        // The action types are read here and judged after the endpoint, as they always were.
        let action_types = body.string_list_at(
            &["filterOptions", "includedActionTypes"],
            "filterOptions.includedActionTypes",
            true,
        )?;
        let name = body.required_str("name")?.to_owned();
        let enabled = body.required_bool("enabled")?;
        let http_endpoint = HttpEndpoint {
            url: EndpointUrl::parse(
                body.required_str_at(&["httpEndpoint", "url"], "httpEndpoint.url")?,
            )?,
            headers: EndpointHeaders::parse(
                body.string_map_at(&["httpEndpoint", "headers"], "httpEndpoint.headers")?,
            )?,
        };
        let filter_options = FilterOptions {
            included_action_types: parse_action_types(&action_types)?,
        };
        Ok(Self {
            _protocol: protocol,
            format,
            filter_options,
            name,
            enabled,
            http_endpoint,
            verify_tls_certificates: body.required_bool("verifyTlsCertificates")?,
        })
    }
}

impl From<SubscriptionBody> for SubscriptionSettings {
    fn from(body: SubscriptionBody) -> Self {
        Self {
            name: body.name,
            enabled: body.enabled,
            url: body.http_endpoint.url,
            headers: body.http_endpoint.headers,
            format: body.format,
            action_types: body.filter_options.included_action_types,
            verify_tls: body.verify_tls_certificates,
        }
    }
}

/// 400 on the first member of `UNSUPPORTED` that asks for something.
fn refuse_unsupported(body: &JsonObject) -> ApiResult<()> {
    for path in UNSUPPORTED {
        let asks = match body.at(path) {
            None | Some(Value::Bool(false)) => false,
            Some(Value::Array(items)) => !items.is_empty(),
            Some(_) => true,
        };
        if asks {
            let target = path.join(".");
            return Err(ApiError::invalid_value(
                &target,
                format!("{target} is not supported by trustmail."),
            ));
        }
    }
    Ok(())
}

#[utoipa::path(post, path = "/v1/environments/{environmentId}/subscriptions", tag = "Subscriptions",
    params(EnvironmentPath), request_body = SubscriptionBody,
    responses((status = 201, body = SubscriptionView), (status = 400, body = P1Error),
              ResourceErrors))]
async fn create_subscription(
    Write(environment, api): Write<EnvironmentPath>,
    Body(body): Body<SubscriptionBody>,
) -> ApiResult<impl IntoResponse> {
    let settings = body.into();
    let created = api
        .service
        .create_subscription(&api.actor, &environment, settings)
        .await?;
    let mut view = SubscriptionView::new(&created.subscription, &api.urls, true);
    view.signing_secret = Some(created.signing_secret.expose().to_owned());
    Ok((StatusCode::CREATED, Json(view)))
}

#[utoipa::path(get, path = "/v1/environments/{environmentId}/subscriptions", tag = "Subscriptions",
    params(EnvironmentPath),
    responses((status = 200, description = "`_embedded.subscriptions`"), ResourceErrors))]
async fn list_subscriptions(
    Read(environment, api): Read<EnvironmentPath>,
) -> ApiResult<impl IntoResponse> {
    let subscriptions = api.service.list_subscriptions(&environment).await?;
    let this = format!("{}/subscriptions", api.urls.environment(environment.id));
    Ok(api.page("subscriptions", &subscriptions, this))
}

#[utoipa::path(get, path = "/v1/environments/{environmentId}/subscriptions/{subscriptionId}",
    tag = "Subscriptions", params(SubscriptionPath),
    responses((status = 200, body = SubscriptionView), ResourceErrors))]
async fn read_subscription(
    Read(subscription, api): Read<SubscriptionPath>,
) -> ApiResult<impl IntoResponse> {
    Ok(api.show(&subscription))
}

#[utoipa::path(put, path = "/v1/environments/{environmentId}/subscriptions/{subscriptionId}",
    tag = "Subscriptions", params(SubscriptionPath), request_body = SubscriptionBody,
    responses((status = 200, body = SubscriptionView), (status = 400, body = P1Error),
              ResourceErrors))]
async fn update_subscription(
    Write(subscription, api): Write<SubscriptionPath>,
    Body(body): Body<SubscriptionBody>,
) -> ApiResult<impl IntoResponse> {
    let settings = body.into();
    let updated = api
        .service
        .update_subscription(&api.actor, &subscription, settings)
        .await?;
    Ok(api.show(&updated))
}

#[utoipa::path(delete, path = "/v1/environments/{environmentId}/subscriptions/{subscriptionId}",
    tag = "Subscriptions", params(SubscriptionPath),
    responses((status = 204), ResourceErrors))]
async fn delete_subscription(
    Write(subscription, api): Write<SubscriptionPath>,
) -> ApiResult<impl IntoResponse> {
    api.service
        .delete_subscription(&api.actor, &subscription)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post,
    path = "/v1/environments/{environmentId}/subscriptions/{subscriptionId}/secret",
    tag = "Subscriptions", params(SubscriptionPath),
    responses((status = 200, body = SigningSecretView), ResourceErrors))]
async fn rotate_subscription_secret(
    Write(subscription, api): Write<SubscriptionPath>,
) -> ApiResult<impl IntoResponse> {
    let secret: SigningSecret = api
        .service
        .rotate_subscription_secret(&api.actor, &subscription)
        .await?;
    Ok(Json(SigningSecretView {
        signing_secret: secret.expose().to_owned(),
    }))
}

#[utoipa::path(get,
    path = "/v1/environments/{environmentId}/subscriptions/{subscriptionId}/deliveries",
    tag = "Subscriptions", params(SubscriptionPath, PageQuery),
    responses((status = 200, description = "`_embedded.deliveries`, newest first"),
              (status = 400, body = P1Error), ResourceErrors))]
async fn list_deliveries(
    Read(subscription, api): Read<SubscriptionPath>,
    uri: Uri,
) -> ApiResult<impl IntoResponse> {
    let page = PageRequest::from_uri(&uri)?;
    let (deliveries, count) = api
        .service
        .list_deliveries(&subscription, page.limit, page.offset)
        .await?;
    let views = deliveries.iter().map(DeliveryView::from).collect();
    let base = format!(
        "{}/subscriptions/{}/deliveries",
        api.urls.environment(subscription.environment_id),
        subscription.id
    );
    Ok(Json(page.page("deliveries", &base, views, count)))
}
