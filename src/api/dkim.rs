//! `…/emailDomains/{emailDomainId}/dkim`: PingOne's DKIM status read, with what trustmail adds
//! (which selector signs, and since when), and `…/dkim/rotate` (an addition).

use std::collections::HashMap;

use axum::{Json, http::Uri, response::IntoResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    AppState,
    errors::{ApiResult, P1Error, ResourceErrors},
    hal::{Links, wire_time},
    path::{Api, DomainPath, Read, Write, query},
};
use crate::domain::{DkimKey, DkimRole, DnsRecord, EmailDomain, RecordKind, RecordStatus};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(read_dkim))
        .routes(routes!(rotate_dkim))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DkimTokenView {
    key: String,
    value: String,
    /// An addition: `SIGNING`, `PUBLISHED` (signs after the next rotation) or `RETIRED`
    /// (still published, so mail signed before the last rotation verifies).
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DkimRegionView {
    name: String,
    status: String,
    tokens: Vec<DkimTokenView>,
    /// An addition: the selector that signs this region's mail.
    #[serde(skip_serializing_if = "Option::is_none")]
    signing_selector: Option<String>,
    /// An addition: since when it signs.
    #[serde(skip_serializing_if = "Option::is_none")]
    signing_since: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DkimView {
    #[serde(rename = "_links")]
    #[schema(value_type = Object)]
    links: Links,
    r#type: &'static str,
    regions: Vec<DkimRegionView>,
}

/// Each region's three CNAMEs with the role of the key behind each.
fn dkim_view(api: &Api, domain: &EmailDomain, records: &[DnsRecord], keys: &[DkimKey]) -> DkimView {
    let key_of: HashMap<(&str, u8), &DkimKey> = keys
        .iter()
        .map(|k| ((k.region.as_str(), k.position), k))
        .collect();
    // Records arrive grouped by region, in region order.
    let mut regions: Vec<DkimRegionView> = Vec::new();
    for record in records {
        let name = record.region.clone().unwrap_or_default();
        let key = key_of.get(&(name.as_str(), record.position)).copied();
        let token = DkimTokenView {
            key: record.key.clone(),
            value: record.value.clone(),
            role: key.map(|k| k.role.as_str()),
        };
        let signing = key.filter(|k| k.role == DkimRole::Signing);
        match regions.last_mut() {
            Some(region) if region.name == name => {
                if record.status != RecordStatus::Active {
                    region.status = RecordStatus::VerificationRequired.to_string();
                }
                region.tokens.push(token);
            }
            _ => regions.push(DkimRegionView {
                name,
                status: record.status.to_string(),
                tokens: vec![token],
                signing_selector: None,
                signing_since: None,
            }),
        }
        if let (Some(region), Some(signing)) = (regions.last_mut(), signing) {
            region.signing_selector = Some(signing.selector.clone());
            region.signing_since = Some(wire_time(signing.role_since));
        }
    }
    DkimView {
        links: api.urls.domain_leaf_links(domain, "dkim"),
        r#type: "CNAME",
        regions,
    }
}

#[utoipa::path(get, path = "/v1/environments/{environmentId}/emailDomains/{emailDomainId}/dkim",
    tag = "Trusted Email Domains", params(DomainPath),
    responses((status = 200, body = DkimView), ResourceErrors))]
async fn read_dkim(Read(domain, api): Read<DomainPath>) -> ApiResult<impl IntoResponse> {
    let kinds = [RecordKind::Dkim];
    let records = api
        .service
        .domain_records(&api.actor, &domain, &kinds)
        .await?;
    let keys = api.service.dkim_keys(&domain).await?;
    Ok(Json(dkim_view(&api, &domain, &records, &keys)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RotateQuery {
    /// Rotate only this sending region's keys (default: every region of the domain).
    region: Option<String>,
}

#[utoipa::path(post, path = "/v1/environments/{environmentId}/emailDomains/{emailDomainId}/dkim/rotate",
    tag = "Trusted Email Domains", params(DomainPath, RotateQuery),
    responses((status = 200, body = DkimView,
               description = "The waiting key signs now, the signing key retires, the retired slot has a fresh key"),
              (status = 400, body = P1Error),
              (status = 429, body = P1Error,
               description = "`REQUEST_LIMITED`: past `limits.dkim_rotations_per_hour`; see `Retry-After`"),
              ResourceErrors))]
async fn rotate_dkim(
    Write(domain, api): Write<DomainPath>,
    uri: Uri,
) -> ApiResult<impl IntoResponse> {
    let RotateQuery { region } = query(&uri)?;
    let keys = api
        .service
        .rotate_dkim_keys(Some(&api.actor), &domain, region.as_deref())
        .await?;
    let records = api
        .service
        .domain_records(&api.actor, &domain, &[RecordKind::Dkim])
        .await?;
    Ok(Json(dkim_view(&api, &domain, &records, &keys)))
}
