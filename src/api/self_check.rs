//! `…/emailDomains/{emailDomainId}/selfCheck` (an addition): signs a test message with each
//! region's live key and judges it as a receiver would: DKIM, SPF, DMARC, alignment per
//! trusted email.

use axum::{Json, response::IntoResponse};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    AppState,
    errors::{ApiResult, P1Error, ResourceErrors},
    hal::{Links, wire_time},
    path::{DomainPath, Read},
};
use crate::service::{RegionSelfCheck, SelfCheck, TrustedEmailAlignment, Verdict};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(self_check))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckVerdictView {
    /// As in `Authentication-Results`: `pass`, `fail`, `softfail`, `none`, `temperror`, …
    result: String,
    message: String,
}

impl From<&Verdict> for CheckVerdictView {
    fn from(v: &Verdict) -> Self {
        Self {
            result: v.result.clone(),
            message: v.message.clone(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SpfCheckView {
    ip: String,
    result: String,
    message: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DmarcCheckView {
    result: String,
    /// The published policy: `none`, `quarantine` or `reject`.
    policy: &'static str,
    dkim_aligned: bool,
    spf_aligned: bool,
    message: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegionCheckView {
    name: String,
    selector: String,
    envelope_from: String,
    dkim: CheckVerdictView,
    /// One per egress address of the region.
    spf: Vec<SpfCheckView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    spf_note: Option<String>,
    dmarc: DmarcCheckView,
    /// The header a receiver would add.
    authentication_results: String,
}

impl From<&RegionSelfCheck> for RegionCheckView {
    fn from(c: &RegionSelfCheck) -> Self {
        Self {
            name: c.region.clone(),
            selector: c.selector.clone(),
            envelope_from: c.envelope_from.clone(),
            dkim: (&c.dkim).into(),
            spf: c
                .spf
                .iter()
                .map(|s| SpfCheckView {
                    ip: s.ip.to_string(),
                    result: s.verdict.result.clone(),
                    message: s.verdict.message.clone(),
                })
                .collect(),
            spf_note: c.spf_note.clone(),
            dmarc: DmarcCheckView {
                result: c.dmarc.verdict.result.clone(),
                policy: c.dmarc.policy,
                dkim_aligned: c.dmarc.dkim_aligned,
                spf_aligned: c.dmarc.spf_aligned,
                message: c.dmarc.verdict.message.clone(),
            },
            authentication_results: c.authentication_results.clone(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegionAlignmentView {
    name: String,
    dkim_aligned: bool,
    spf_aligned: bool,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrustedEmailAlignmentView {
    email_address: String,
    status: &'static str,
    regions: Vec<RegionAlignmentView>,
    /// A sentence for each reason its mail would not pass.
    messages: Vec<String>,
}

impl From<&TrustedEmailAlignment> for TrustedEmailAlignmentView {
    fn from(a: &TrustedEmailAlignment) -> Self {
        Self {
            email_address: a.email_address.clone(),
            status: a.status.as_str(),
            regions: a
                .regions
                .iter()
                .map(|(name, dkim, spf)| RegionAlignmentView {
                    name: name.clone(),
                    dkim_aligned: *dkim,
                    spf_aligned: *spf,
                })
                .collect(),
            messages: a.messages.clone(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SelfCheckView {
    #[serde(rename = "_links")]
    #[schema(value_type = Object)]
    links: Links,
    checked_at: String,
    regions: Vec<RegionCheckView>,
    trusted_emails: Vec<TrustedEmailAlignmentView>,
}

#[utoipa::path(post, path = "/v1/environments/{environmentId}/emailDomains/{emailDomainId}/selfCheck",
    tag = "Trusted Email Domains", params(DomainPath),
    responses((status = 200, body = SelfCheckView),
              (status = 429, body = P1Error,
               description = "`REQUEST_LIMITED`: past `limits.self_checks_per_minute`; see `Retry-After`"),
              ResourceErrors))]
async fn self_check(Read(domain, api): Read<DomainPath>) -> ApiResult<impl IntoResponse> {
    let SelfCheck {
        checked_at,
        regions,
        trusted_emails,
    } = api.service.self_check(&domain).await?;
    Ok(Json(SelfCheckView {
        links: api.urls.domain_leaf_links(&domain, "selfCheck"),
        checked_at: wire_time(checked_at),
        regions: regions.iter().map(RegionCheckView::from).collect(),
        trusted_emails: trusted_emails
            .iter()
            .map(TrustedEmailAlignmentView::from)
            .collect(),
    }))
}
