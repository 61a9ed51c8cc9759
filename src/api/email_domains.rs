//! `/v1/environments/{environmentId}/emailDomains`: PingOne's trusted email domain operations
//! (`contract/pingone-email-domains.openapi.yml`: create, read all, read one, delete, and the
//! ownership, DKIM and SPF status reads).

use axum::{
    Json,
    body::Bytes,
    http::{StatusCode, header},
    response::IntoResponse,
};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    AppState,
    body::{Body, JsonObject, RequestBody},
    errors::{ApiError, ApiResult, P1Error, ResourceErrors},
    hal::{IdRef, Links, Shown, UrlBuilder, wire_time},
    path::{Api, DomainPath, EnvironmentPath, Read, Write},
};

use crate::domain::{DnsRecord, EmailDomain, RecordKind};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_domain, list_domains))
        .routes(routes!(read_domain, delete_domain))
        .routes(routes!(read_ownership))
        .routes(routes!(read_spf))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EmailDomainView {
    #[serde(rename = "_links")]
    #[schema(value_type = Object)]
    links: Links,
    id: String,
    environment: IdRef,
    domain_name: String,
    created_at: String,
    updated_at: String,
}

impl Shown for EmailDomain {
    type View = EmailDomainView;

    fn view(&self, api: &Api) -> EmailDomainView {
        EmailDomainView::new(self, &api.urls)
    }
}

impl EmailDomainView {
    pub fn new(domain: &EmailDomain, urls: &UrlBuilder) -> Self {
        let env = domain.environment_id;
        let this = urls.domain(env, domain.id);
        Self {
            links: Links::from([
                ("self", UrlBuilder::link(this.clone())),
                ("environment", UrlBuilder::link(urls.environment(env))),
                ("ownership", UrlBuilder::link(format!("{this}/ownership"))),
                ("dkim", UrlBuilder::link(format!("{this}/dkim"))),
                ("spf", UrlBuilder::link(format!("{this}/spf"))),
            ]),
            id: domain.id.to_string(),
            environment: IdRef::new(env),
            domain_name: domain.written_name.clone(),
            created_at: wire_time(domain.created_at),
            updated_at: wire_time(domain.updated_at),
        }
    }
}

/// Request body of a domain create.
#[derive(Debug, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateEmailDomain {
    /// e.g. `auth.shopco.com`; no wildcards.
    domain_name: String,
}

impl RequestBody for CreateEmailDomain {
    fn read(body: &JsonObject) -> ApiResult<Self> {
        Ok(Self {
            domain_name: body.required_str("domainName")?.to_owned(),
        })
    }
}

#[utoipa::path(post, path = "/v1/environments/{environmentId}/emailDomains",
    tag = "Trusted Email Domains", params(EnvironmentPath), request_body = CreateEmailDomain,
    responses((status = 201, body = EmailDomainView), (status = 400, body = P1Error),
              ResourceErrors))]
async fn create_domain(
    Write(environment, api): Write<EnvironmentPath>,
    Body(body): Body<CreateEmailDomain>,
) -> ApiResult<impl IntoResponse> {
    let domain = api
        .service
        .create_domain(&api.actor, &environment, &body.domain_name)
        .await?;
    tracing::info!(domain_id = %domain.id, domain = %domain.name, "email domain created");
    Ok((StatusCode::CREATED, api.show(&domain)))
}

#[utoipa::path(get, path = "/v1/environments/{environmentId}/emailDomains",
    tag = "Trusted Email Domains", params(EnvironmentPath),
    responses((status = 200, description = "`_embedded.emailDomains`"), ResourceErrors))]
async fn list_domains(
    Read(environment, api): Read<EnvironmentPath>,
) -> ApiResult<impl IntoResponse> {
    let domains = api.service.list::<EmailDomain>(environment.id).await?;
    let this = api.urls.domains(environment.id);
    Ok(api.page("emailDomains", &domains, this))
}

#[utoipa::path(get, path = "/v1/environments/{environmentId}/emailDomains/{emailDomainId}",
    tag = "Trusted Email Domains", params(DomainPath),
    responses((status = 200, body = EmailDomainView), ResourceErrors))]
async fn read_domain(Read(domain, api): Read<DomainPath>) -> ApiResult<impl IntoResponse> {
    // The hottest read: serialised once per cached snapshot, then served as bytes.
    let body = match domain.rendered() {
        Some(body) => body,
        None => {
            let body = Bytes::from(
                serde_json::to_vec(&EmailDomainView::new(&domain, &api.urls))
                    .map_err(|e| ApiError::Unexpected(Box::new(e)))?,
            );
            domain.keep_rendered(body.clone());
            body
        }
    };
    Ok(([(header::CONTENT_TYPE, "application/json")], body))
}

#[utoipa::path(delete, path = "/v1/environments/{environmentId}/emailDomains/{emailDomainId}",
    tag = "Trusted Email Domains", params(DomainPath),
    responses((status = 204), ResourceErrors))]
async fn delete_domain(Write(domain, api): Write<DomainPath>) -> ApiResult<impl IntoResponse> {
    api.service.delete_domain(&api.actor, &domain).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TxtRecordView {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    status: String,
    key: String,
    value: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OwnershipView {
    #[serde(rename = "_links")]
    #[schema(value_type = Object)]
    links: Links,
    r#type: &'static str,
    regions: Vec<TxtRecordView>,
    environment_dns_record: Option<TxtRecordView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SpfView {
    #[serde(rename = "_links")]
    #[schema(value_type = Object)]
    links: Links,
    r#type: &'static str,
    status: String,
    key: String,
    value: String,
}

fn txt_view(record: &DnsRecord) -> TxtRecordView {
    TxtRecordView {
        name: record.region.clone(),
        status: record.status.to_string(),
        key: record.key.clone(),
        value: record.value.clone(),
    }
}

#[utoipa::path(get, path = "/v1/environments/{environmentId}/emailDomains/{emailDomainId}/ownership",
    tag = "Trusted Email Domains", params(DomainPath),
    responses((status = 200, body = OwnershipView), ResourceErrors))]
async fn read_ownership(Read(domain, api): Read<DomainPath>) -> ApiResult<impl IntoResponse> {
    let kinds = [RecordKind::Ownership, RecordKind::Environment];
    let records = api
        .service
        .domain_records(&api.actor, &domain, &kinds)
        .await?;
    let regions = records
        .iter()
        .filter(|r| r.kind == RecordKind::Ownership)
        .map(txt_view)
        .collect();
    let environment_dns_record = records
        .iter()
        .find(|r| r.kind == RecordKind::Environment)
        .map(txt_view);
    Ok(Json(OwnershipView {
        links: api.urls.domain_leaf_links(&domain, "ownership"),
        r#type: "TXT",
        regions,
        environment_dns_record,
    }))
}

#[utoipa::path(get, path = "/v1/environments/{environmentId}/emailDomains/{emailDomainId}/spf",
    tag = "Trusted Email Domains", params(DomainPath),
    responses((status = 200, body = SpfView), ResourceErrors))]
async fn read_spf(Read(domain, api): Read<DomainPath>) -> ApiResult<impl IntoResponse> {
    let kinds = [RecordKind::Spf];
    let records = api
        .service
        .domain_records(&api.actor, &domain, &kinds)
        .await?;
    let spf = records.first().ok_or_else(|| {
        ApiError::Unexpected(format!("domain {} has no SPF record", domain.id).into())
    })?;
    Ok(Json(SpfView {
        links: api.urls.domain_leaf_links(&domain, "spf"),
        r#type: "TXT",
        status: spf.status.to_string(),
        key: spf.key.clone(),
        value: spf.value.clone(),
    }))
}
