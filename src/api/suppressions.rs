//! `/v1/environments/{environmentId}/suppressions`: the addresses the environment no longer
//! sends to (feedback/suppression.rs). Listed, read, added by hand (`PUT`) and removed.

use axum::{
    Json,
    http::{StatusCode, Uri},
    response::IntoResponse,
};
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    AppState,
    errors::{ApiError, ApiResult, P1Error, ResourceErrors},
    hal::{IdRef, Links, Shown, UrlBuilder, wire_time},
    paging::{PageQuery, PageRequest},
    path::{Api, EnvironmentPath, Read, SuppressionPath, ToSuppress, Write, query},
};
use crate::{
    domain::{EnvironmentId, UnknownValue},
    feedback::{Suppression, SuppressionReason},
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_suppressions))
        .routes(routes!(
            read_suppression,
            put_suppression,
            delete_suppression
        ))
}

/// What an address needs escaped as one path segment (RFC 3986 §3.3): a local part may hold
/// `/`, `?`, `#`, `%` and more.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'\\')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// The URL of the environment's suppression list.
fn suppressions_url(api: &Api, environment: EnvironmentId) -> String {
    format!("{}/suppressions", api.urls.environment(environment))
}

/// One entry of the suppression list.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SuppressionView {
    #[serde(rename = "_links")]
    #[schema(value_type = Object)]
    links: Links,
    environment: IdRef,
    /// Lowercased.
    email_address: String,
    /// `BOUNCE`, `COMPLAINT` or `MANUAL`.
    reason: &'static str,
    /// The message whose bounce or complaint listed the address.
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<IdRef>,
    /// A bounce's diagnostic, or a complaint's feedback type.
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
    created_at: String,
}

impl Shown for Suppression {
    type View = SuppressionView;

    fn view(&self, api: &Api) -> SuppressionView {
        let list = suppressions_url(api, self.environment_id);
        let address = utf8_percent_encode(self.address.as_str(), SEGMENT);
        SuppressionView {
            links: Links::from([
                ("self", UrlBuilder::link(format!("{list}/{address}"))),
                (
                    "environment",
                    UrlBuilder::link(api.urls.environment(self.environment_id)),
                ),
            ]),
            environment: IdRef::new(self.environment_id),
            email_address: self.address.to_string(),
            reason: self.reason.as_str(),
            message: self.message_id.map(IdRef::new),
            detail: self.detail.clone(),
            created_at: wire_time(self.created_at),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReasonQuery {
    /// Only entries listed for this reason: `BOUNCE`, `COMPLAINT` or `MANUAL`.
    reason: Option<String>,
}

#[utoipa::path(get, path = "/v1/environments/{environmentId}/suppressions", tag = "Suppressions",
    params(EnvironmentPath, ReasonQuery, PageQuery),
    responses((status = 200, description = "`_embedded.suppressions`, newest first"),
              (status = 400, body = P1Error), ResourceErrors))]
async fn list_suppressions(
    Read(environment, api): Read<EnvironmentPath>,
    uri: Uri,
) -> ApiResult<impl IntoResponse> {
    let page = PageRequest::from_uri(&uri)?;
    let filter: ReasonQuery = query(&uri)?;
    let reason = filter
        .reason
        .as_deref()
        .map(|raw| {
            raw.parse::<SuppressionReason>()
                .map_err(|e: UnknownValue| ApiError::invalid_value("reason", e.to_string()))
        })
        .transpose()?;
    let (entries, count) = api
        .service
        .list_suppressions(&environment, reason, (page.limit, page.offset))
        .await?;
    let views = entries.iter().map(|entry| entry.view(&api)).collect();
    let mut base = suppressions_url(&api, environment.id);
    if let Some(reason) = reason {
        base.push_str(&format!("?reason={reason}"));
    }
    Ok(Json(page.page("suppressions", &base, views, count)))
}

#[utoipa::path(get, path = "/v1/environments/{environmentId}/suppressions/{emailAddress}",
    tag = "Suppressions", params(SuppressionPath),
    responses((status = 200, body = SuppressionView), ResourceErrors))]
async fn read_suppression(
    Read(suppression, api): Read<SuppressionPath>,
) -> ApiResult<impl IntoResponse> {
    Ok(api.show(&suppression))
}

/// Lists the address by hand (`MANUAL`): 201, or 200 with the entry as it was when the
/// address is listed already. No body is read.
#[utoipa::path(put, path = "/v1/environments/{environmentId}/suppressions/{emailAddress}",
    tag = "Suppressions", params(SuppressionPath),
    responses((status = 201, body = SuppressionView), (status = 200, body = SuppressionView),
              (status = 400, body = P1Error), ResourceErrors))]
async fn put_suppression(
    Write((environment, address), api): Write<ToSuppress>,
) -> ApiResult<impl IntoResponse> {
    let outcome = api
        .service
        .suppress(&api.actor, &environment, &address)
        .await?;
    Ok(api.show_created(outcome))
}

/// 204: the address is sent to again.
#[utoipa::path(delete, path = "/v1/environments/{environmentId}/suppressions/{emailAddress}",
    tag = "Suppressions", params(SuppressionPath),
    responses((status = 204), ResourceErrors))]
async fn delete_suppression(
    Write(suppression, api): Write<SuppressionPath>,
) -> ApiResult<impl IntoResponse> {
    api.service.unsuppress(&api.actor, &suppression).await?;
    Ok(StatusCode::NO_CONTENT)
}
