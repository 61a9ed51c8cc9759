//! `…/emailDomains/{emailDomainId}/mailFromDomain`: PingOne's PUT and GET, and DELETE (an
//! addition).

use axum::{Json, http::StatusCode, response::IntoResponse};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    AppState,
    body::{Body, JsonObject, RequestBody},
    errors::{ApiError, ApiResult, P1Error, ResourceErrors},
    hal::{Links, UrlBuilder},
    path::{Api, DomainPath, Read, Write},
};
use crate::domain::{DnsRecord, EmailDomain, MAIL_FROM_PRIORITY, RecordKind};

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
#[serde(rename_all = "camelCase")]
pub struct SetMailFrom {
    /// `{"domain": "bounce.auth.shopco.com"}`: a subdomain of the trusted domain.
    mail_from: MailFromName,
}

impl RequestBody for SetMailFrom {
    fn read(body: &JsonObject) -> ApiResult<Self> {
        let domain = body.required_str_at(&["mailFrom", "domain"], "mailFrom.domain")?;
        Ok(Self {
            mail_from: MailFromName {
                domain: domain.to_owned(),
            },
        })
    }
}

fn view(api: &Api, domain: &EmailDomain, records: &[DnsRecord]) -> ApiResult<MailFromView> {
    let mx = records
        .iter()
        .find(|r| r.kind == RecordKind::MailFrom)
        .ok_or_else(|| {
            ApiError::Unexpected(format!("domain {} has no MAIL FROM record", domain.id).into())
        })?;
    let mut links = api.urls.domain_leaf_links(domain, "mailFromDomain");
    links.insert("spf", UrlBuilder::link(api.urls.domain_leaf(domain, "spf")));
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
    tag = "Trusted Email Domains", params(DomainPath),
    request_body = SetMailFrom,
    responses((status = 200, body = MailFromView), (status = 400, body = P1Error),
              ResourceErrors))]
async fn put_mail_from(
    Write(domain, api): Write<DomainPath>,
    Body(body): Body<SetMailFrom>,
) -> ApiResult<impl IntoResponse> {
    let records = api
        .service
        .set_mail_from(&api.actor, &domain, &body.mail_from.domain)
        .await?;
    Ok(Json(view(&api, &domain, &records)?))
}

#[utoipa::path(get, path = "/v1/environments/{environmentId}/emailDomains/{emailDomainId}/mailFromDomain",
    tag = "Trusted Email Domains", params(DomainPath),
    responses((status = 200, body = MailFromView), ResourceErrors))]
async fn read_mail_from(Read(domain, api): Read<DomainPath>) -> ApiResult<impl IntoResponse> {
    let records = api.service.mail_from(&api.actor, &domain).await?;
    Ok(Json(view(&api, &domain, &records)?))
}

#[utoipa::path(delete, path = "/v1/environments/{environmentId}/emailDomains/{emailDomainId}/mailFromDomain",
    tag = "Trusted Email Domains", params(DomainPath),
    responses((status = 204), ResourceErrors))]
async fn delete_mail_from(Write(domain, api): Write<DomainPath>) -> ApiResult<impl IntoResponse> {
    api.service.delete_mail_from(&domain).await?;
    Ok(StatusCode::NO_CONTENT)
}
