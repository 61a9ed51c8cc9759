//! Additions PingOne lacks: `…/verification` (why each record is or is not ACTIVE) and
//! `…/zoneFile` (every record as BIND lines, or for Route 53, Cloudflare or Terraform).

use axum::{
    Json,
    extract::State,
    http::{Uri, header},
    response::IntoResponse,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    AppState,
    auth::Caller,
    errors::{ApiError, ApiResult, P1Error, ResourceErrors},
    hal::{Links, wire_time},
    path::{DomainPath, query},
};
use crate::domain::{
    CheckedRecord, EmailDomain, Permission, RecordKind, SPF_LOOKUP_LIMIT, ZoneFileFormat,
    region_order,
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(read_verification, check_now))
        .routes(routes!(read_zone_file))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LookupCount {
    count: u32,
    limit: u32,
    over_limit: bool,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecordDiagnosis {
    /// `OWNERSHIP`, `ENVIRONMENT`, `DKIM`, `SPF` or `MAIL_FROM`.
    record: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    region: Option<String>,
    /// The full name the record must be published at.
    name: String,
    r#type: &'static str,
    expected: String,
    /// What DNS returned at the name.
    observed: Vec<String>,
    status: &'static str,
    /// A stable reason code (`OK`, `NOT_FOUND`, `VALUE_MISMATCH`, …).
    reason: &'static str,
    message: String,
    last_checked_at: Option<String>,
    next_check_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    suggested: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lookups: Option<LookupCount>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VerificationView {
    records: Vec<RecordDiagnosis>,
    #[serde(rename = "_links")]
    #[schema(value_type = Object)]
    links: Links,
}

fn verification_view(
    state: &AppState,
    domain: &EmailDomain,
    mut records: Vec<CheckedRecord>,
) -> VerificationView {
    region_order(&state.service.settings().regions, &mut records);
    VerificationView {
        records: records
            .into_iter()
            .map(|r| {
                let spf = r.record.kind == RecordKind::Spf;
                RecordDiagnosis {
                    record: r.record.kind.as_str(),
                    name: r.record.fqdn(&domain.name),
                    region: r.record.region,
                    r#type: r.record.record_type,
                    expected: r.record.value,
                    observed: r.observed,
                    status: r.record.status.as_str(),
                    reason: r.reason.as_str(),
                    message: if r.message.is_empty() {
                        "Not checked yet.".to_owned()
                    } else {
                        r.message
                    },
                    last_checked_at: r.last_checked_at.map(wire_time),
                    next_check_at: wire_time(r.next_check_at),
                    suggested: if spf { r.suggested } else { None },
                    lookups: spf.then(|| {
                        let count = r.lookups.unwrap_or(0);
                        LookupCount {
                            count,
                            limit: SPF_LOOKUP_LIMIT,
                            over_limit: count > SPF_LOOKUP_LIMIT,
                        }
                    }),
                }
            })
            .collect(),
        links: state.urls.domain_leaf_links(domain, "verification"),
    }
}

#[utoipa::path(get, path = "/v1/environments/{environmentId}/emailDomains/{emailDomainId}/verification",
    tag = "Trusted Email Domains", params(DomainPath),
    responses((status = 200, body = VerificationView), ResourceErrors))]
async fn read_verification(
    State(state): State<AppState>,
    caller: Caller,
    path: DomainPath,
) -> ApiResult<impl IntoResponse> {
    let domain = path.load(&state, &caller, Permission::Read).await?;
    let records = state.service.verification(&domain).await?;
    Ok(Json(verification_view(&state, &domain, records)))
}

#[utoipa::path(post, path = "/v1/environments/{environmentId}/emailDomains/{emailDomainId}/verification",
    tag = "Trusted Email Domains", params(DomainPath),
    responses((status = 200, body = VerificationView), (status = 429, body = P1Error),
              ResourceErrors))]
async fn check_now(
    State(state): State<AppState>,
    caller: Caller,
    path: DomainPath,
) -> ApiResult<impl IntoResponse> {
    let domain = path.load(&state, &caller, Permission::Read).await?;
    let records = state.service.force_check(&domain, &caller.0).await?;
    Ok(Json(verification_view(&state, &domain, records)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ZoneFileQuery {
    /// `bind` (the default): zone-file lines; `route53`: a `ChangeResourceRecordSets` change
    /// batch; `cloudflare`: `POST /zones/{zone_id}/dns_records` bodies; `terraform`:
    /// `aws_route53_record` and `cloudflare_record` resources.
    format: Option<String>,
}

#[utoipa::path(get, path = "/v1/environments/{environmentId}/emailDomains/{emailDomainId}/zoneFile",
    tag = "Trusted Email Domains", params(DomainPath, ZoneFileQuery),
    responses((status = 200, description = "The records: `text/plain` for bind and terraform, \
                 `application/json` for route53 and cloudflare",
               content(("text/plain"), ("application/json"))),
              (status = 400, body = P1Error), ResourceErrors))]
async fn read_zone_file(
    State(state): State<AppState>,
    caller: Caller,
    path: DomainPath,
    uri: Uri,
) -> ApiResult<impl IntoResponse> {
    let domain = path.load(&state, &caller, Permission::Read).await?;
    let ZoneFileQuery { format } = query(&uri)?;
    let format = match format {
        None => ZoneFileFormat::Bind,
        Some(format) => format.parse().map_err(|_| {
            ApiError::invalid_value(
                "format",
                "format must be one of bind, route53, cloudflare or terraform.",
            )
        })?,
    };
    let body = state.service.zone_file(&domain, format).await?;
    Ok(([(header::CONTENT_TYPE, format.content_type())], body))
}
