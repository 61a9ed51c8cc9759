//! `…/emailDomains/{emailDomainId}/mailFromDomain`: contract §1.8 (PUT, GET) and DELETE (an
//! addition).

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
    response::IntoResponse,
};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    AppState,
    auth::Caller,
    body::RawBody,
    email_domains::{domain_path, status_links},
    errors::{ApiError, ApiResult, P1Error},
    hal::{Links, UrlBuilder},
};
use crate::domain::{DnsRecord, EmailDomain, MAIL_FROM_PRIORITY, Permission, RecordKind};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(put_mail_from, read_mail_from, delete_mail_from))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MailFromName {
    domain: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MailFromView {
    #[serde(rename = "_links")]
    #[schema(value_type = Object)]
    links: Links,
    mail_from: MailFromName,
    /// Always `MX`.
    r#type: &'static str,
    /// The full name to publish the MX at.
    key: String,
    /// The mail exchanger to point it at.
    value: String,
    priority: u16,
    status: String,
}

/// Request body of a MAIL FROM update.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct SetMailFrom {
    /// `{"domain": "bounce.auth.shopco.com"}`: a subdomain of the trusted domain.
    #[schema(value_type = Object)]
    mail_from: MailFromName,
}

fn view(state: &AppState, domain: &EmailDomain, records: &[DnsRecord]) -> ApiResult<MailFromView> {
    let mx = records
        .iter()
        .find(|r| r.kind == RecordKind::MailFrom)
        .ok_or_else(|| {
            ApiError::Unexpected(format!("domain {} has no MAIL FROM record", domain.id).into())
        })?;
    let mut links = status_links(&state.urls, domain, "mailFromDomain");
    let this = state.urls.domain(domain.environment_id, domain.id);
    links.insert("spf", UrlBuilder::link(format!("{this}/spf")));
    Ok(MailFromView {
        links,
        mail_from: MailFromName {
            domain: mx.key.clone(),
        },
        r#type: mx.record_type,
        key: mx.key.clone(),
        value: mx.value.clone(),
        priority: MAIL_FROM_PRIORITY,
        status: mx.status.to_string(),
    })
}

#[utoipa::path(put, path = "/v1/environments/{environmentId}/emailDomains/{emailDomainId}/mailFromDomain",
    tag = "Trusted Email Domains",
    params(("environmentId" = String, Path), ("emailDomainId" = String, Path)),
    request_body = SetMailFrom,
    responses((status = 200, body = MailFromView), (status = 400, body = P1Error),
              (status = 401, body = P1Error), (status = 403, body = P1Error),
              (status = 404, body = P1Error)))]
async fn put_mail_from(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<(String, String)>,
    body: RawBody,
) -> ApiResult<impl IntoResponse> {
    let (environment_id, domain_id) = domain_path(&caller, &path, Permission::Write)?;
    state.service.domain(environment_id, domain_id).await?;
    let body = body.json_object()?;
    let name = body.required_str_at(&["mailFrom", "domain"], "mailFrom.domain")?;
    let (domain, records) = state
        .service
        .set_mail_from(&caller.0, environment_id, domain_id, name)
        .await?;
    Ok(Json(view(&state, &domain, &records)?))
}

#[utoipa::path(get, path = "/v1/environments/{environmentId}/emailDomains/{emailDomainId}/mailFromDomain",
    tag = "Trusted Email Domains",
    params(("environmentId" = String, Path), ("emailDomainId" = String, Path)),
    responses((status = 200, body = MailFromView), (status = 401, body = P1Error),
              (status = 403, body = P1Error), (status = 404, body = P1Error)))]
async fn read_mail_from(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<(String, String)>,
) -> ApiResult<impl IntoResponse> {
    let (environment_id, domain_id) = domain_path(&caller, &path, Permission::Read)?;
    let (domain, records) = state
        .service
        .mail_from(&caller.0, environment_id, domain_id)
        .await?;
    Ok(Json(view(&state, &domain, &records)?))
}

#[utoipa::path(delete, path = "/v1/environments/{environmentId}/emailDomains/{emailDomainId}/mailFromDomain",
    tag = "Trusted Email Domains",
    params(("environmentId" = String, Path), ("emailDomainId" = String, Path)),
    responses((status = 204), (status = 401, body = P1Error), (status = 403, body = P1Error),
              (status = 404, body = P1Error)))]
async fn delete_mail_from(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<(String, String)>,
) -> ApiResult<impl IntoResponse> {
    let (environment_id, domain_id) = domain_path(&caller, &path, Permission::Write)?;
    state
        .service
        .delete_mail_from(environment_id, domain_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
