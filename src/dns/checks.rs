//! One check per record kind, each ending in a reason code and a sentence.

use std::{collections::HashSet, future::Future, pin::Pin};

use hickory_resolver::proto::rr::RecordType;
use mail_auth::{
    common::parse::TxtRecordParser,
    spf::{Macro, Mechanism, Spf},
};

use super::{Answer, DnsClient, Lookup};
use crate::domain::{
    Observation, ReasonCode, RecordKind, SPF_LOOKUP_LIMIT, is_spf, merge_spf_include, same_name,
};

/// What a record must look like in DNS.
#[derive(Debug, Clone)]
pub struct Expected<'a> {
    pub kind: RecordKind,
    /// The full name the record lives at.
    pub name: &'a str,
    /// TXT value, CNAME target or MX exchange.
    pub value: &'a str,
    /// `records.spf_include`, for SPF records.
    pub spf_include: &'a str,
    /// DKIM only: the public key (base64, as in `p=`) the CNAME's target must publish.
    pub dkim_public_key: Option<&'a str>,
}

pub async fn check_record(dns: &DnsClient, expected: &Expected<'_>) -> Observation {
    match expected.kind {
        RecordKind::Ownership | RecordKind::Environment => check_txt(dns, expected).await,
        RecordKind::Dkim => check_cname(dns, expected).await,
        RecordKind::Spf => check_spf(dns, expected).await,
        RecordKind::MailFrom => check_mx(dns, expected).await,
    }
}

fn txts(answers: &[Answer]) -> Vec<String> {
    answers
        .iter()
        .filter_map(|a| match a {
            Answer::Txt(v) => Some(v.clone()),
            _ => None,
        })
        .collect()
}

fn cname_targets(answers: &[Answer]) -> Vec<String> {
    answers
        .iter()
        .filter_map(|a| match a {
            Answer::Cname { target, .. } => Some(target.trim_end_matches('.').to_owned()),
            _ => None,
        })
        .collect()
}

fn quoted(values: &[String]) -> String {
    values
        .iter()
        .map(|v| format!("\"{v}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

fn dns_error(expected: &Expected<'_>, error: &str) -> Observation {
    Observation::new(
        ReasonCode::DnsError,
        vec![],
        format!(
            "Could not look up {} ({error}); the status is unchanged and it will be checked again.",
            expected.name
        ),
    )
}

/// Why a record is not at its name: `DOUBLED_ZONE_SUFFIX` when it sits at `<name>.<zone>`
/// (a DNS panel appended the zone to a name that already had it), else `otherwise`.
async fn absent(
    dns: &DnsClient,
    expected: &Expected<'_>,
    zone: Option<String>,
    record_type: RecordType,
    otherwise: Observation,
) -> Observation {
    doubled_suffix(dns, expected, zone.as_deref(), record_type)
        .await
        .unwrap_or(otherwise)
}

async fn doubled_suffix(
    dns: &DnsClient,
    expected: &Expected<'_>,
    zone: Option<&str>,
    record_type: RecordType,
) -> Option<Observation> {
    let zone = zone?;
    let name = expected.name.trim_end_matches('.');
    if zone.is_empty() || !(name == zone || name.ends_with(&format!(".{zone}"))) {
        return None;
    }
    let doubled = format!("{name}.{zone}");
    let Lookup::Answer(answers) = dns.lookup(&doubled, record_type).await else {
        return None;
    };
    let found = match record_type {
        RecordType::CNAME => cname_targets(&answers)
            .iter()
            .any(|t| same_name(t, expected.value)),
        _ => txts(&answers)
            .iter()
            .any(|v| v == expected.value || is_spf(v)),
    };
    let relative = name.strip_suffix(&format!(".{zone}")).unwrap_or(name);
    found.then(|| {
        Observation::new(
            ReasonCode::DoubledZoneSuffix,
            vec![],
            format!(
                "Found the record at {doubled} instead of {name}: the DNS panel added the zone \
                 name {zone} a second time. Enter the name as \"{relative}\"."
            ),
        )
    })
}

async fn check_txt(dns: &DnsClient, expected: &Expected<'_>) -> Observation {
    let (name, value) = (expected.name, expected.value);
    match dns.lookup(name, RecordType::TXT).await {
        Lookup::Answer(answers) => {
            let found = txts(&answers);
            let cnames = cname_targets(&answers);
            if found.iter().any(|v| v == value) {
                Observation::new(
                    ReasonCode::Ok,
                    found,
                    format!("Found the expected TXT record at {name}."),
                )
            } else if let Some(target) = cnames.first() {
                Observation::new(
                    ReasonCode::CnameConflict,
                    found,
                    format!(
                        "Expected a TXT record \"{value}\" at {name} but {name} is a CNAME to \
                         {target}, which does not lead to that value."
                    ),
                )
            } else {
                let message = format!(
                    "Expected a TXT record \"{value}\" at {name} but found {}.",
                    quoted(&found)
                );
                Observation::new(ReasonCode::ValueMismatch, found, message)
            }
        }
        Lookup::NoData { zone } => {
            let message = format!("{name} exists but has no TXT record; expected \"{value}\".");
            let otherwise = Observation::new(ReasonCode::NoRecord, vec![], message);
            absent(dns, expected, zone, RecordType::TXT, otherwise).await
        }
        Lookup::NxDomain { zone } => {
            let message = format!("{name} does not exist; publish a TXT record \"{value}\" there.");
            let otherwise = Observation::new(ReasonCode::NotFound, vec![], message);
            absent(dns, expected, zone, RecordType::TXT, otherwise).await
        }
        Lookup::Failed(e) => dns_error(expected, &e),
    }
}

async fn check_cname(dns: &DnsClient, expected: &Expected<'_>) -> Observation {
    let (name, value) = (expected.name, expected.value);
    match dns.lookup(name, RecordType::CNAME).await {
        Lookup::Answer(answers) => {
            let targets = cname_targets(&answers);
            if targets.iter().any(|t| same_name(t, value)) {
                match expected.dkim_public_key {
                    Some(key) => check_dkim_key(dns, expected, key, targets).await,
                    None => Observation::new(
                        ReasonCode::Ok,
                        targets,
                        format!("Found the expected CNAME at {name}."),
                    ),
                }
            } else {
                let message = format!(
                    "Expected a CNAME to {value} at {name} but found a CNAME to {}.",
                    targets.join(", ")
                );
                Observation::new(ReasonCode::ValueMismatch, targets, message)
            }
        }
        Lookup::NoData { zone } => {
            if let Lookup::Answer(answers) = dns.lookup(name, RecordType::TXT).await {
                let found = txts(&answers);
                if !found.is_empty() {
                    let message = format!(
                        "Expected a CNAME to {value} at {name} but found a TXT record there \
                         ({}); replace it with the CNAME.",
                        quoted(&found)
                    );
                    return Observation::new(ReasonCode::CnameConflict, found, message);
                }
            }
            let message =
                format!("Expected a CNAME to {value} at {name} but the name has no CNAME.");
            let otherwise = Observation::new(ReasonCode::NoRecord, vec![], message);
            absent(dns, expected, zone, RecordType::CNAME, otherwise).await
        }
        Lookup::NxDomain { zone } => {
            let message =
                format!("Expected a CNAME to {value} at {name} but the name does not exist.");
            let otherwise = Observation::new(ReasonCode::NotFound, vec![], message);
            absent(dns, expected, zone, RecordType::CNAME, otherwise).await
        }
        Lookup::Failed(e) => dns_error(expected, &e),
    }
}

/// The CNAME is right; now the key record it leads to must publish `key`, so that a receiver
/// can verify what trustmail signs.
async fn check_dkim_key(
    dns: &DnsClient,
    expected: &Expected<'_>,
    key: &str,
    mut observed: Vec<String>,
) -> Observation {
    let (name, target) = (expected.name, expected.value.trim_end_matches('.'));
    match dns.lookup(target, RecordType::TXT).await {
        Lookup::Answer(answers) => {
            let found = txts(&answers);
            let published: Vec<String> = found.iter().filter_map(|t| dkim_key_of(t)).collect();
            observed.extend(found.iter().cloned());
            if published.iter().any(|p| p == key) {
                Observation::new(
                    ReasonCode::Ok,
                    observed,
                    format!(
                        "Found the expected CNAME at {name}, and {target} publishes the key \
                         trustmail signs with."
                    ),
                )
            } else if published.is_empty() {
                Observation::new(
                    ReasonCode::NoRecord,
                    observed,
                    format!(
                        "The CNAME at {name} is right, but {target} publishes no DKIM key \
                         (found {}).",
                        quoted(&found)
                    ),
                )
            } else {
                Observation::new(
                    ReasonCode::ValueMismatch,
                    observed,
                    format!(
                        "The CNAME at {name} is right, but the DKIM key at {target} is not the \
                         one trustmail holds for this selector; receivers could not verify its \
                         signatures."
                    ),
                )
            }
        }
        Lookup::NoData { .. } | Lookup::NxDomain { .. } => Observation::new(
            ReasonCode::NoRecord,
            observed,
            format!(
                "The CNAME at {name} is right, but {target} has no DKIM key record: is its \
                 zone delegated to trustmail's DNS?"
            ),
        ),
        Lookup::Failed(e) => Observation::new(
            ReasonCode::DnsError,
            observed,
            format!(
                "The CNAME at {name} is right, but the key at {target} could not be looked \
                 up ({e}); the status is unchanged and it will be checked again."
            ),
        ),
    }
}

/// The `p=` tag of a DKIM key record, whitespace removed; `None` for other TXT records.
fn dkim_key_of(txt: &str) -> Option<String> {
    let mut tags = txt.split(';').map(str::trim);
    let dkim = txt.trim_start().starts_with("v=DKIM1") || txt.contains("p=");
    if !dkim {
        return None;
    }
    tags.find_map(|tag| tag.strip_prefix("p="))
        .map(|p| p.chars().filter(|c| !c.is_whitespace()).collect())
}

async fn check_mx(dns: &DnsClient, expected: &Expected<'_>) -> Observation {
    let (name, value) = (expected.name, expected.value);
    match dns.lookup(name, RecordType::MX).await {
        Lookup::Answer(answers) => {
            let exchanges: Vec<String> = answers
                .iter()
                .filter_map(|a| match a {
                    Answer::Mx { exchange, .. } => Some(exchange.trim_end_matches('.').to_owned()),
                    _ => None,
                })
                .collect();
            let cnames = cname_targets(&answers);
            if exchanges.iter().any(|e| same_name(e, value)) {
                Observation::new(
                    ReasonCode::Ok,
                    exchanges,
                    format!("Found the expected MX at {name}."),
                )
            } else if let Some(target) = cnames.first() {
                Observation::new(
                    ReasonCode::CnameConflict,
                    exchanges,
                    format!(
                        "Expected an MX to {value} at {name} but {name} is a CNAME to {target}."
                    ),
                )
            } else {
                let message = format!(
                    "Expected an MX to {value} at {name} but found {}.",
                    exchanges.join(", ")
                );
                Observation::new(ReasonCode::ValueMismatch, exchanges, message)
            }
        }
        Lookup::NoData { .. } => Observation::new(
            ReasonCode::NoRecord,
            vec![],
            format!("{name} exists but has no MX record; expected one to {value}."),
        ),
        Lookup::NxDomain { .. } => Observation::new(
            ReasonCode::NotFound,
            vec![],
            format!("{name} does not exist; publish an MX record to {value} there."),
        ),
        Lookup::Failed(e) => dns_error(expected, &e),
    }
}

async fn check_spf(dns: &DnsClient, expected: &Expected<'_>) -> Observation {
    let (name, include) = (expected.name, expected.spf_include);
    let (found, mut observation) = match dns.lookup(name, RecordType::TXT).await {
        Lookup::Failed(e) => return dns_error(expected, &e),
        Lookup::NxDomain { .. } => (
            vec![],
            Observation::new(
                ReasonCode::NotFound,
                vec![],
                format!("{name} does not exist; publish the SPF record there."),
            ),
        ),
        Lookup::NoData { .. } => (
            vec![],
            Observation::new(
                ReasonCode::NoRecord,
                vec![],
                format!("{name} has no TXT records; publish the SPF record there."),
            ),
        ),
        Lookup::Answer(answers) => {
            let found = txts(&answers);
            let spf: Vec<String> = found.iter().filter(|v| is_spf(v)).cloned().collect();
            let observation = match spf.as_slice() {
                [] => Observation::new(
                    ReasonCode::NoRecord,
                    found.clone(),
                    format!("{name} has no SPF (v=spf1) record."),
                ),
                [only] => match Spf::parse(only.as_bytes()) {
                    Err(e) => Observation::new(
                        ReasonCode::SpfInvalid,
                        found.clone(),
                        format!("The SPF record at {name} does not parse ({e}): \"{only}\"."),
                    ),
                    Ok(parsed) if !includes(&parsed, include) => Observation::new(
                        ReasonCode::ValueMismatch,
                        found.clone(),
                        format!("The SPF record at {name} does not include {include}: \"{only}\"."),
                    ),
                    Ok(_) => Observation::new(
                        ReasonCode::Ok,
                        found.clone(),
                        format!("The SPF record at {name} includes {include}."),
                    ),
                },
                several => Observation::new(
                    ReasonCode::MultipleSpf,
                    found.clone(),
                    format!(
                        "{name} has {} SPF records; receivers treat that as an error. Merge them \
                         into one.",
                        several.len()
                    ),
                ),
            };
            (spf, observation)
        }
    };
    // The advice: the existing record (the first, if several) with our include merged in.
    let suggested = match found.first() {
        Some(existing) => merge_spf_include(existing, include),
        None => crate::domain::spf_value(include),
    };
    let lookups = match Spf::parse(suggested.as_bytes()) {
        Ok(parsed) => count_spf_lookups(dns, &parsed).await,
        Err(_) => 0,
    };
    if observation.reason == ReasonCode::Ok && lookups > SPF_LOOKUP_LIMIT {
        observation.reason = ReasonCode::SpfTooManyLookups;
        observation.message = format!(
            "The SPF record at {name} needs {lookups} DNS lookups; receivers stop at \
             {SPF_LOOKUP_LIMIT} and fail SPF. Flatten or remove includes."
        );
    }
    observation.suggested = Some(suggested);
    observation.lookups = Some(lookups);
    observation
}

fn literal(m: &Macro) -> Option<String> {
    match m {
        Macro::Literal(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        _ => None,
    }
}

fn includes(spf: &Spf, include: &str) -> bool {
    spf.directives.iter().any(|d| match &d.mechanism {
        Mechanism::Include { macro_string } => {
            literal(macro_string).is_some_and(|domain| same_name(&domain, include))
        }
        _ => false,
    })
}

/// RFC 7208 § 4.6.4: the terms that cost a DNS lookup (include, a, mx, ptr, exists, redirect),
/// counted over the whole tree as a receiver evaluates it: depth first, in order, each include
/// or redirect whose target is a plain name followed (its TXT fetched) where it stands. One
/// budget for the whole tree: once the running total passes [`SPF_LOOKUP_LIMIT`] the walk
/// stops, so a hostile tree costs at most about that many queries, and the total returned
/// (then over the limit) is what was counted so far.
pub async fn count_spf_lookups(dns: &DnsClient, spf: &Spf) -> u32 {
    let mut walk = SpfWalk {
        dns,
        total: 0,
        seen: HashSet::new(),
    };
    walk.record(spf, 0).await;
    walk.total
}

const MAX_SPF_DEPTH: u32 = 10;

/// The running state of [`count_spf_lookups`]: the lookups counted so far and the targets
/// already followed (a loop is counted, never followed twice).
struct SpfWalk<'a> {
    dns: &'a DnsClient,
    total: u32,
    seen: HashSet<String>,
}

impl SpfWalk<'_> {
    fn over(&self) -> bool {
        self.total > SPF_LOOKUP_LIMIT
    }

    /// Counts `spf`'s terms in order, following each literal include or redirect at once;
    /// returns early once over the limit.
    fn record<'w>(
        &'w mut self,
        spf: &'w Spf,
        depth: u32,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'w>> {
        Box::pin(async move {
            // Each term that costs a lookup, with the name it leads to when it is followed.
            let terms = spf
                .directives
                .iter()
                .filter_map(|directive| match &directive.mechanism {
                    Mechanism::Include { macro_string } => Some(literal(macro_string)),
                    Mechanism::A { .. }
                    | Mechanism::Mx { .. }
                    | Mechanism::Ptr { .. }
                    | Mechanism::Exists { .. } => Some(None),
                    _ => None,
                })
                .chain(spf.redirect.as_ref().map(literal));
            for target in terms {
                self.total += 1;
                if self.over() {
                    return;
                }
                let Some(target) = target else { continue };
                // Never too deep, and never follow a loop.
                if depth >= MAX_SPF_DEPTH || !self.seen.insert(target.to_ascii_lowercase()) {
                    continue;
                }
                if let Some(nested) = self.fetch(&target).await {
                    self.record(&nested, depth + 1).await;
                    if self.over() {
                        return;
                    }
                }
            }
        })
    }

    /// The SPF record published at `name`, if there is one that parses.
    async fn fetch(&self, name: &str) -> Option<Spf> {
        let Lookup::Answer(answers) = self.dns.lookup(name, RecordType::TXT).await else {
            return None;
        };
        let record = txts(&answers).into_iter().find(|v| is_spf(v))?;
        Spf::parse(record.as_bytes()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

        /// Any TXT value: the key without whitespace when a tag is `p=`, else none.
        #[test]
        fn any_txt_is_a_key_or_none(
            txt in prop_oneof![any::<String>(), "(v=DKIM1|p=|;| |k=ed25519|[a-zA-Z0-9+/=]){0,20}"],
        ) {
            let has_p_tag = txt.split(';').any(|tag| tag.trim().starts_with("p="));
            let key = dkim_key_of(&txt);
            prop_assert_eq!(key.is_some(), has_p_tag);
            if let Some(key) = key {
                prop_assert!(!key.chars().any(char::is_whitespace));
            }
        }

        /// A key record's `p=` tag, however its tags and the key are spaced.
        #[test]
        fn a_key_record_gives_its_key(
            key in "[a-zA-Z0-9+/]{1,60}={0,2}",
            spaces in prop::collection::vec(0usize..60, 0..4),
            sep in "; ?",
        ) {
            let mut spaced = key.clone();
            for at in spaces {
                if at < spaced.len() {
                    spaced.insert(at, ' ');
                }
            }
            let txt = format!("v=DKIM1{sep}k=ed25519{sep}p={spaced}");
            prop_assert_eq!(dkim_key_of(&txt), Some(key));
        }
    }
}
