//! The DNS records a trusted domain must publish: ownership TXT per sending region, the
//! environment TXT, three DKIM CNAMEs per region, SPF, and the MAIL FROM MX.

use super::{DomainName, Geography, random_base64url, random_lower_alnum};

/// One outbound path the operator runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendingRegion {
    pub name: String,
    pub geographies: Vec<Geography>,
    pub dkim_zone: String,
    pub mail_from_mx: String,
    /// The addresses the region's relay sends from (the SPF self-check evaluates them).
    pub egress_ips: Vec<std::net::IpAddr>,
}

/// Names and values shared by every domain (`[records]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordSettings {
    pub ownership_prefix: String,
    pub environment_prefix: String,
    pub spf_include: String,
}

wire_enum!(
    /// Which record of a domain a row is.
    RecordKind {
        Ownership => "OWNERSHIP",
        Environment => "ENVIRONMENT",
        Dkim => "DKIM",
        Spf => "SPF",
        MailFrom => "MAIL_FROM",
    }
);

wire_enum!(
    /// The two statuses PingOne shows on the wire.
    RecordStatus {
        VerificationRequired => "VERIFICATION_REQUIRED",
        Active => "ACTIVE",
    }
);

/// DKIM CNAMEs per region (SES Easy DKIM's shape: one signs, one waits, one retires).
pub const DKIM_TOKENS_PER_REGION: usize = 3;
const OWNERSHIP_TOKEN_BYTES: usize = 32;
const DKIM_TOKEN_LEN: usize = 32;

/// One record as the API shows it: `key` is what the customer types into the DNS panel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsRecord {
    pub kind: RecordKind,
    /// The sending region, for the per-region records.
    pub region: Option<String>,
    /// Orders the DKIM tokens of one region.
    pub position: u8,
    pub key: String,
    pub record_type: &'static str,
    pub value: String,
    pub status: RecordStatus,
}

impl DnsRecord {
    /// The full name the record lives at: keys of TXT records are relative to the domain,
    /// `@` is the domain itself, the rest are full names already.
    pub fn fqdn(&self, domain: &DomainName) -> String {
        match self.kind {
            RecordKind::Ownership | RecordKind::Environment => format!("{}.{domain}", self.key),
            RecordKind::Spf if self.key == "@" => domain.to_string(),
            _ => self.key.clone(),
        }
    }
}

/// The statuses PingOne shows: one per (record kind, region); a DKIM region is ACTIVE only
/// when all its tokens are.
pub fn visible_statuses<'a>(
    records: impl IntoIterator<Item = &'a DnsRecord>,
) -> Vec<(RecordKind, Option<String>, RecordStatus)> {
    let mut out: Vec<(RecordKind, Option<String>, RecordStatus)> = Vec::new();
    for r in records {
        match out
            .iter_mut()
            .find(|(kind, region, _)| *kind == r.kind && *region == r.region)
        {
            Some((_, _, status)) => {
                if r.status != RecordStatus::Active {
                    *status = RecordStatus::VerificationRequired;
                }
            }
            None => out.push((r.kind, r.region.clone(), r.status)),
        }
    }
    out
}

impl RecordKind {
    pub fn record_type(&self) -> &'static str {
        match self {
            RecordKind::Ownership | RecordKind::Environment | RecordKind::Spf => "TXT",
            RecordKind::Dkim => "CNAME",
            RecordKind::MailFrom => "MX",
        }
    }
}

/// The custom MAIL FROM domain once its MX record is ACTIVE: the envelope sender's domain from
/// then on (before, mail goes out with the From address as its envelope sender).
pub fn active_mail_from<'a>(
    domain: &'a super::EmailDomain,
    records: impl IntoIterator<Item = &'a DnsRecord>,
) -> Option<&'a DomainName> {
    let active = records
        .into_iter()
        .any(|r| r.kind == RecordKind::MailFrom && r.status == RecordStatus::Active);
    domain.mail_from.as_ref().filter(|_| active)
}

/// The longest name, in characters, of the records a domain of `domain_len` characters must
/// publish: DNS names end at 253, so a longer one could not exist.
pub fn longest_record_name(domain_len: usize, settings: &RecordSettings) -> usize {
    let dkim = DKIM_TOKEN_LEN + "._domainkey.".len();
    let prefix = [
        dkim,
        settings.ownership_prefix.len() + 1,
        settings.environment_prefix.len() + 1,
    ]
    .into_iter()
    .max()
    .unwrap_or(dkim);
    prefix + domain_len
}

/// The longest a DNS name may be (RFC 1035 § 3.1, in presentation form without the final dot).
pub const MAX_DNS_NAME: usize = 253;

/// The regions that serve `geography`, in configuration order.
pub fn regions_for(
    geography: Geography,
    regions: &[SendingRegion],
) -> impl Iterator<Item = &SendingRegion> {
    regions
        .iter()
        .filter(move |r| r.geographies.contains(&geography))
}

/// Fresh records for a new domain: random ownership and DKIM tokens for each region serving
/// the environment's geography, the environment record, and SPF.
pub fn build_domain_records(
    domain: &DomainName,
    environment_token: &str,
    geography: Geography,
    regions: &[SendingRegion],
    settings: &RecordSettings,
) -> Vec<DnsRecord> {
    let pending = |kind: RecordKind, region: Option<&str>, position, key, value| DnsRecord {
        kind,
        region: region.map(str::to_owned),
        position,
        key,
        record_type: kind.record_type(),
        value,
        status: RecordStatus::VerificationRequired,
    };
    let mut records = Vec::new();
    for region in regions_for(geography, regions) {
        records.push(pending(
            RecordKind::Ownership,
            Some(&region.name),
            0,
            settings.ownership_prefix.clone(),
            random_base64url(OWNERSHIP_TOKEN_BYTES),
        ));
        for position in 0..DKIM_TOKENS_PER_REGION {
            let token = random_lower_alnum(DKIM_TOKEN_LEN);
            records.push(pending(
                RecordKind::Dkim,
                Some(&region.name),
                position as u8,
                format!("{token}._domainkey.{domain}"),
                format!("{token}.{}", region.dkim_zone),
            ));
        }
    }
    records.push(pending(
        RecordKind::Environment,
        None,
        0,
        settings.environment_prefix.clone(),
        environment_token.to_owned(),
    ));
    records.push(apex_spf_record(settings));
    records
}

/// The records a custom MAIL FROM domain needs: an MX to the first region (in configuration
/// order) serving the geography, and the SPF record moved to the MAIL FROM name.
pub fn mail_from_records(
    mail_from: &DomainName,
    geography: Geography,
    regions: &[SendingRegion],
    settings: &RecordSettings,
) -> Option<(DnsRecord, DnsRecord)> {
    let region = regions_for(geography, regions).next()?;
    let pending = |kind: RecordKind, value: String| DnsRecord {
        kind,
        region: None,
        position: 0,
        key: mail_from.to_string(),
        record_type: kind.record_type(),
        value,
        status: RecordStatus::VerificationRequired,
    };
    Some((
        pending(RecordKind::MailFrom, region.mail_from_mx.clone()),
        pending(RecordKind::Spf, spf_value(&settings.spf_include)),
    ))
}

/// The SPF record at the domain itself (when no MAIL FROM domain is set).
pub fn apex_spf_record(settings: &RecordSettings) -> DnsRecord {
    DnsRecord {
        kind: RecordKind::Spf,
        region: None,
        position: 0,
        key: "@".to_owned(),
        record_type: "TXT",
        value: spf_value(&settings.spf_include),
        status: RecordStatus::VerificationRequired,
    }
}

/// MX priority of the MAIL FROM record.
pub const MAIL_FROM_PRIORITY: u16 = 10;

/// A domain counts as verified when its environment record, or every region's ownership
/// record, is ACTIVE.
pub fn ownership_verified<'a>(records: impl IntoIterator<Item = &'a DnsRecord>) -> bool {
    let (mut environment, mut any_ownership, mut all_ownership) = (false, false, true);
    for r in records {
        let active = r.status == RecordStatus::Active;
        match r.kind {
            RecordKind::Environment => environment |= active,
            RecordKind::Ownership => {
                any_ownership = true;
                all_ownership &= active;
            }
            _ => {}
        }
    }
    environment || (any_ownership && all_ownership)
}

pub fn spf_value(include: &str) -> String {
    format!("v=spf1 include:{include} ~all")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::PublicSuffixes;

    fn region(name: &str, geos: &[Geography]) -> SendingRegion {
        SendingRegion {
            name: name.into(),
            geographies: geos.to_vec(),
            dkim_zone: format!("dkim.{name}.example"),
            mail_from_mx: format!("mx.{name}.example"),
            egress_ips: Vec::new(),
        }
    }

    #[test]
    fn one_ownership_and_three_dkim_per_serving_region() {
        let regions = [
            region("us-east-1", &[Geography::Na, Geography::Ca]),
            region("eu-west-1", &[Geography::Eu]),
            region("ca-central-1", &[Geography::Ca]),
        ];
        let settings = RecordSettings {
            ownership_prefix: "_o".into(),
            environment_prefix: "_e".into(),
            spf_include: "spf.example".into(),
        };
        let domain = DomainName::parse("a.shopco.test", &PublicSuffixes::new(["test"])).unwrap();
        let records = build_domain_records(&domain, "envtok", Geography::Ca, &regions, &settings);
        let regions_seen: Vec<_> = records
            .iter()
            .filter(|r| r.kind == RecordKind::Ownership)
            .map(|r| r.region.clone().unwrap())
            .collect();
        assert_eq!(regions_seen, ["us-east-1", "ca-central-1"]);
        let dkim: Vec<_> = records
            .iter()
            .filter(|r| r.kind == RecordKind::Dkim)
            .collect();
        assert_eq!(dkim.len(), 6);
        let token = dkim[0].key.split('.').next().unwrap();
        assert_eq!(dkim[0].key, format!("{token}._domainkey.a.shopco.test"));
        assert_eq!(dkim[0].value, format!("{token}.dkim.us-east-1.example"));
        let spf = records.iter().find(|r| r.kind == RecordKind::Spf).unwrap();
        assert_eq!(
            (spf.key.as_str(), spf.value.as_str()),
            ("@", "v=spf1 include:spf.example ~all")
        );
        let env = records
            .iter()
            .find(|r| r.kind == RecordKind::Environment)
            .unwrap();
        assert_eq!((env.key.as_str(), env.value.as_str()), ("_e", "envtok"));
        assert!(
            records
                .iter()
                .all(|r| r.status == RecordStatus::VerificationRequired)
        );
    }
}
