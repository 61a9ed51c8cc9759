//! `…/emailDomains/{emailDomainId}/dmarcReports` (an addition): the DMARC aggregate reports
//! receivers sent to the domain's report address, and `…/dmarcReports/summary`: per source IP,
//! how much mail claimed the domain and how much of it passed aligned, so that mail sent in the
//! domain's name from elsewhere than trustmail shows.

use axum::{Json, http::Uri, response::IntoResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    AppState,
    errors::{ApiError, ApiResult, P1Error, ResourceErrors},
    hal::{IdRef, Links, Shown, UrlBuilder, wire_time},
    paging::{PageQuery, PageRequest},
    path::{Api, DomainPath, Read, query},
};
use crate::{domain::now, feedback::dmarc::DmarcReport};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_dmarc_reports))
        .routes(routes!(dmarc_summary))
}

/// Days a summary covers unless asked otherwise, and the most it may.
const DEFAULT_DAYS: u32 = 30;
const MAX_DAYS: u32 = 366;

/// One DMARC aggregate report.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DmarcReportView {
    #[serde(rename = "_links")]
    #[schema(value_type = Object)]
    links: Links,
    id: String,
    email_domain: IdRef,
    /// The reporting organization (e.g. `google.com`) and its contact address.
    org_name: String,
    email: String,
    /// The reporter's id for the report.
    report_id: String,
    /// The period it covers.
    begin: String,
    end: String,
    /// The DMARC record the reporter applied: its domain and policy.
    policy_domain: String,
    policy: String,
    /// Messages the report counts.
    messages: i64,
    received_at: String,
}

impl Shown for DmarcReport {
    type View = DmarcReportView;

    fn view(&self, api: &Api) -> DmarcReportView {
        let domain = api.urls.domain(self.environment_id, self.domain_id);
        DmarcReportView {
            links: Links::from([("emailDomain", UrlBuilder::link(domain))]),
            id: self.id.to_string(),
            email_domain: IdRef::new(self.domain_id),
            org_name: self.org_name.clone(),
            email: self.email.clone(),
            report_id: self.report_id.clone(),
            begin: wire_time(self.begin),
            end: wire_time(self.end),
            policy_domain: self.policy_domain.clone(),
            policy: self.policy.clone(),
            messages: self.messages,
            received_at: wire_time(self.received_at),
        }
    }
}

#[utoipa::path(get,
    path = "/v1/environments/{environmentId}/emailDomains/{emailDomainId}/dmarcReports",
    tag = "Trusted Email Domains", params(DomainPath, PageQuery),
    responses((status = 200, description = "`_embedded.dmarcReports`, the latest period first"),
              (status = 400, body = P1Error), ResourceErrors))]
async fn list_dmarc_reports(
    Read(domain, api): Read<DomainPath>,
    uri: Uri,
) -> ApiResult<impl IntoResponse> {
    let page = PageRequest::from_uri(&uri)?;
    let (reports, count) = api
        .service
        .dmarc_reports(&domain, (page.limit, page.offset))
        .await?;
    let views = reports.iter().map(|report| report.view(&api)).collect();
    let base = format!(
        "{}/dmarcReports",
        api.urls.domain(domain.environment_id, domain.id)
    );
    Ok(Json(page.page("dmarcReports", &base, views, count)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DaysQuery {
    /// Reports of periods that ended in the last this many days (1 to 366; default 30).
    days: Option<u32>,
}

/// One source IP that sent mail claiming the domain.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DmarcSourceView {
    /// Empty when reporters named none.
    source_ip: String,
    /// Whether trustmail sends from it (a region's `egress_ips`). Mail from other addresses
    /// was sent in the domain's name by someone else.
    sent_by_trustmail: bool,
    messages: i64,
    dkim_aligned: i64,
    spf_aligned: i64,
    /// Passed DKIM or SPF aligned: passed DMARC.
    dmarc_pass: i64,
    /// Reporting organizations that saw it.
    reporters: i64,
}

/// The DMARC record that sends reports here, and what they say.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DmarcSummaryView {
    #[serde(rename = "_links")]
    #[schema(value_type = Object)]
    links: Links,
    /// Where the domain's aggregate reports go: `rua=mailto:` this.
    report_address: String,
    /// A DMARC record to publish at `_dmarc.<domain>` (TXT) to receive them.
    suggested_record: String,
    /// The summary covers reports of periods that ended after this.
    since: String,
    /// The most messages first.
    sources: Vec<DmarcSourceView>,
}

#[utoipa::path(get,
    path = "/v1/environments/{environmentId}/emailDomains/{emailDomainId}/dmarcReports/summary",
    tag = "Trusted Email Domains", params(DomainPath, DaysQuery),
    responses((status = 200, body = DmarcSummaryView), (status = 400, body = P1Error),
              ResourceErrors))]
async fn dmarc_summary(
    Read(domain, api): Read<DomainPath>,
    uri: Uri,
) -> ApiResult<impl IntoResponse> {
    let DaysQuery { days } = query(&uri)?;
    let days = days.unwrap_or(DEFAULT_DAYS);
    if !(1..=MAX_DAYS).contains(&days) {
        return Err(ApiError::invalid_value(
            "days",
            format!("days is 1 to {MAX_DAYS}."),
        ));
    }
    let since = now() - time::Duration::days(i64::from(days));
    let sources = api.service.dmarc_summary(&domain, since).await?;
    let report_address = api.service.dmarc_report_address(domain.id);
    Ok(Json(DmarcSummaryView {
        links: api.urls.domain_leaf_links(&domain, "dmarcReports/summary"),
        suggested_record: crate::service::suggested_dmarc_record(&report_address),
        report_address,
        since: wire_time(since),
        sources: sources
            .into_iter()
            .map(|s| DmarcSourceView {
                source_ip: s.source.source_ip,
                sent_by_trustmail: s.sent_by_trustmail,
                messages: s.source.messages,
                dkim_aligned: s.source.dkim_aligned,
                spf_aligned: s.source.spf_aligned,
                dmarc_pass: s.source.dmarc_pass,
                reporters: s.source.reporters,
            })
            .collect(),
    }))
}
