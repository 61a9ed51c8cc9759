//! `[[regions]]`: where mail is sent from. Every key but `name` defaults from the name.

use serde::{Deserialize, Deserializer, Serializer};

use super::{ConfigError, SmtpUrl, names::is_host_name};
use crate::domain::{Geography, SendingRegion};

#[derive(Debug, Clone)]
pub struct Region {
    pub name: String,
    pub geographies: Vec<Geography>,
    pub dkim_zone: String,
    pub mail_from_mx: String,
    pub smtp_url: SmtpUrl,
    pub egress_ips: Vec<String>,
}

impl Region {
    /// A region with every key derived from its name. The DKIM zone drops the name's hyphens:
    /// DKIM token values must match `^[a-z0-9_.]*$` (`is_dkim_zone`).
    pub fn named(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            geographies: Geography::ALL.to_vec(),
            dkim_zone: format!("{}.dkim.trustmail.example", name.replace('-', "")),
            mail_from_mx: format!("feedback.{name}.trustmail.example"),
            smtp_url: SmtpUrl::default(),
            egress_ips: Vec::new(),
        }
    }
}

/// A `[[regions]]` entry as written: only `name` is required.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegionEntry {
    name: String,
    #[serde(
        default,
        deserialize_with = "super::serde_forms::optional_string_or_list"
    )]
    geographies: Option<Vec<String>>,
    dkim_zone: Option<String>,
    mail_from_mx: Option<String>,
    smtp_url: Option<SmtpUrl>,
    #[serde(default, deserialize_with = "super::serde_forms::string_or_list")]
    egress_ips: Vec<String>,
}

pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Region>, D::Error> {
    use serde::de::Error;
    let entries = Vec::<RegionEntry>::deserialize(d)?;
    entries
        .into_iter()
        .map(|entry| {
            let mut region = Region::named(&entry.name);
            if let Some(geos) = entry.geographies {
                region.geographies = geos
                    .iter()
                    .map(|g| g.parse::<Geography>().map_err(D::Error::custom))
                    .collect::<Result<_, _>>()?;
            }
            region.dkim_zone = entry.dkim_zone.unwrap_or(region.dkim_zone);
            region.mail_from_mx = entry.mail_from_mx.unwrap_or(region.mail_from_mx);
            region.smtp_url = entry.smtp_url.unwrap_or(region.smtp_url);
            region.egress_ips = entry.egress_ips;
            Ok(region)
        })
        .collect()
}

/// Only to list the keys: `regions` is one key, an array.
pub(super) fn serialize<S: Serializer>(_: &[Region], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(std::iter::empty::<()>())
}

impl Region {
    pub(super) fn sending_region(&self) -> SendingRegion {
        SendingRegion {
            name: self.name.clone(),
            geographies: self.geographies.clone(),
            dkim_zone: self.dkim_zone.clone(),
            mail_from_mx: self.mail_from_mx.clone(),
            // Checked when the configuration is loaded.
            egress_ips: self
                .egress_ips
                .iter()
                .filter_map(|ip| ip.parse().ok())
                .collect(),
        }
    }
}

pub(super) fn validate(regions: &[Region]) -> Result<(), ConfigError> {
    if regions.is_empty() {
        return Err(ConfigError::invalid(
            "regions",
            "at least one region is needed",
        ));
    }
    for (i, region) in regions.iter().enumerate() {
        let valid_name = !region.name.is_empty()
            && region
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !valid_name {
            return Err(ConfigError::invalid(
                format!("regions[{i}].name"),
                "must match [a-z0-9-]+",
            ));
        }
        if !is_dkim_zone(&region.dkim_zone) {
            return Err(ConfigError::invalid(
                format!("regions[{i}].dkim_zone"),
                format!(
                    "`{}` must be a DNS name of lowercase letters, digits, hyphens inside \
                     labels and dots, e.g. useast1.dkim.example.com: DKIM token values \
                     `<selector>.<dkim_zone>` must match ^[a-z0-9_.]*$ (as PingOne's \
                     Terraform provider checks; a hyphen only warns), and a `_` inside a \
                     label is a name trustmail's resolver cannot look up",
                    region.dkim_zone
                ),
            ));
        }
        if regions[..i].iter().any(|r| r.name == region.name) {
            return Err(ConfigError::invalid(
                format!("regions[{i}].name"),
                format!("`{}` appears twice", region.name),
            ));
        }
    }
    for geography in Geography::ALL {
        if !regions.iter().any(|r| r.geographies.contains(geography)) {
            return Err(ConfigError::invalid(
                "regions",
                format!("no region serves the {geography} geography"),
            ));
        }
    }
    for (i, region) in regions.iter().enumerate() {
        if let Some(bad) = region
            .egress_ips
            .iter()
            .find(|ip| ip.parse::<std::net::IpAddr>().is_err())
        {
            return Err(ConfigError::invalid(
                format!("regions[{i}].egress_ips"),
                format!("`{bad}` is not an IP address"),
            ));
        }
    }
    Ok(())
}

/// What loads but deserves the operator's attention.
pub(super) fn warnings(regions: &[Region]) -> Vec<String> {
    regions
        .iter()
        .enumerate()
        .filter(|(_, region)| region.dkim_zone.contains('-'))
        .map(|(i, region)| {
            format!(
                "regions[{i}].dkim_zone `{}` has a hyphen: it is a valid DNS name, but \
                 PingOne's Terraform provider expects DKIM token values of letters, \
                 digits and dots only (^[a-z0-9_.]*$) and refuses them",
                region.dkim_zone
            )
        })
        .collect()
}

/// A lowercase DNS name for a DKIM zone: labels of 1 to 63 lowercase letters, digits and inner
/// hyphens, at most 253 in all. No `_`: hickory's resolver refuses a name with one inside a
/// label, so its keys could never be checked. A hyphen only warns (`Config::warnings`).
pub(super) fn is_dkim_zone(zone: &str) -> bool {
    is_host_name(zone)
        && !zone.ends_with('.')
        && zone
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}
