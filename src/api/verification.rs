//! Additions PingOne lacks: `…/verification` (why each record is or is not ACTIVE) and
//! `…/zoneFile` (every record as BIND lines, or for Route 53, Cloudflare or Terraform).

use std::time::Duration;

use axum::{
    Json,
    http::{Uri, header},
    response::IntoResponse,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    AppState,
    errors::{ApiError, ApiResult, P1Error, ResourceErrors},
    hal::{Links, UrlBuilder, wire_time},
    path::{Api, DomainPath, Read, query, query_number},
};
use crate::domain::{
    CheckedRecord, EmailDomain, RecordKind, RecordStatus, SPF_LOOKUP_LIMIT, SendingRegion,
    ZoneFileFormat, region_order,
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
    /// Every record is ACTIVE (with `waitFor=ACTIVE`: false means the wait timed out first).
    complete: bool,
    records: Vec<RecordDiagnosis>,
    #[serde(rename = "_links")]
    #[schema(value_type = Object)]
    links: Links,
}

impl VerificationView {
    /// Every record of `domain` with its diagnosis, regions in configuration order.
    pub fn new(
        regions: &[SendingRegion],
        urls: &UrlBuilder,
        domain: &EmailDomain,
        mut records: Vec<CheckedRecord>,
    ) -> Self {
        region_order(regions, &mut records);
        VerificationView {
            complete: records
                .iter()
                .all(|r| r.record.status == RecordStatus::Active),
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
            links: urls.domain_leaf_links(domain, "verification"),
        }
    }
}

fn verification_view(
    api: &Api,
    domain: &EmailDomain,
    records: Vec<CheckedRecord>,
) -> VerificationView {
    VerificationView::new(&api.service.settings().regions, &api.urls, domain, records)
}

/// The longest `timeoutSeconds` of a wait for ACTIVE.
pub const MAX_WAIT_S: u32 = 300;
const DEFAULT_WAIT_S: u32 = 60;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct WaitQuery {
    /// `ACTIVE`: hold the request, re-checking on the DNS cadence, until every record is ACTIVE
    /// or `timeoutSeconds` pass.
    wait_for: Option<String>,
    /// How long to wait (1 to 300, default 60).
    timeout_seconds: Option<String>,
}

impl WaitQuery {
    /// How long the request asks to be held; `None` for a plain read.
    fn wait(&self) -> ApiResult<Option<Duration>> {
        match self.wait_for.as_deref() {
            None => Ok(None),
            Some("ACTIVE") => {
                let seconds = query_number(
                    self.timeout_seconds.as_deref(),
                    "timeoutSeconds",
                    DEFAULT_WAIT_S,
                    1,
                    MAX_WAIT_S,
                )?;
                Ok(Some(Duration::from_secs(seconds.into())))
            }
            Some(_) => Err(ApiError::invalid_value(
                "waitFor",
                "waitFor must be ACTIVE.".to_owned(),
            )),
        }
    }
}

/// How much longer than `http.request_timeout_s` a request may take because it waits for ACTIVE
/// (the request time limit adds this, so a long poll is not cut off as a slow request).
pub fn long_poll_allowance(uri: &Uri) -> Duration {
    if !uri.path().ends_with("/verification") {
        return Duration::ZERO;
    }
    query::<WaitQuery>(uri)
        .ok()
        .and_then(|q| q.wait().ok().flatten())
        .unwrap_or(Duration::ZERO)
}

#[utoipa::path(get, path = "/v1/environments/{environmentId}/emailDomains/{emailDomainId}/verification",
    tag = "Trusted Email Domains", params(DomainPath, WaitQuery),
    responses((status = 200, body = VerificationView), (status = 400, body = P1Error),
              ResourceErrors))]
async fn read_verification(
    Read(domain, api): Read<DomainPath>,
    uri: Uri,
) -> ApiResult<impl IntoResponse> {
    let records = match query::<WaitQuery>(&uri)?.wait()? {
        None => api.service.verification(&domain).await?,
        Some(timeout) => {
            api.service
                .wait_until_active(&domain, timeout, |_| {})
                .await?
                .records
        }
    };
    Ok(Json(verification_view(&api, &domain, records)))
}

#[utoipa::path(post, path = "/v1/environments/{environmentId}/emailDomains/{emailDomainId}/verification",
    tag = "Trusted Email Domains", params(DomainPath),
    responses((status = 200, body = VerificationView), (status = 429, body = P1Error),
              ResourceErrors))]
async fn check_now(Read(domain, api): Read<DomainPath>) -> ApiResult<impl IntoResponse> {
    let records = api.service.force_check(&domain, &api.actor).await?;
    Ok(Json(verification_view(&api, &domain, records)))
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
    Read(domain, api): Read<DomainPath>,
    uri: Uri,
) -> ApiResult<impl IntoResponse> {
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
    let body = api.service.zone_file(&domain, format).await?;
    Ok(([(header::CONTENT_TYPE, format.content_type())], body))
}
