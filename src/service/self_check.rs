//! The self-check (an addition no peer has): for each sending region of a domain, sign a test
//! message with the live key and verify it as a receiver would (mail-auth against live DNS),
//! evaluate SPF from the region's egress addresses, apply the published DMARC policy, and say
//! for each trusted email whether DKIM and SPF align, with a sentence for every failure.

use std::net::IpAddr;

use mail_auth::{
    AuthenticatedMessage, AuthenticationResults, DkimResult, DmarcResult, SpfOutput, SpfResult,
    dmarc::{Policy, verify::DmarcParameters},
    spf::verify::SpfParameters,
};
use time::OffsetDateTime;

use super::{Service, ServiceError};
use crate::{
    domain::{EmailDomain, TrustedEmail, TrustedEmailStatus, now},
    feedback::{DeliveryFeedback, return_path::ReturnPath},
    mail::MessageId,
    service::suggested_dmarc_record,
    store::{RateLimit, RateScope},
};

/// One verdict: a result word as in `Authentication-Results` (`pass`, `fail`, …) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub result: String,
    pub message: String,
}

/// SPF as seen from one egress address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpfVerdict {
    pub ip: IpAddr,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmarcVerdict {
    /// `none`, `quarantine` or `reject`; `none` also when there is no record.
    pub policy: &'static str,
    pub dkim_aligned: bool,
    pub spf_aligned: bool,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionSelfCheck {
    pub region: String,
    pub selector: String,
    pub envelope_from: String,
    pub dkim: Verdict,
    /// One per egress address; empty when the region lists none (`spf_note` says so).
    pub spf: Vec<SpfVerdict>,
    pub spf_note: Option<String>,
    pub dmarc: DmarcVerdict,
    pub authentication_results: String,
}

/// Whether mail from one trusted email would pass DMARC, region by region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedEmailAlignment {
    pub email_address: String,
    pub status: TrustedEmailStatus,
    pub regions: Vec<(String, bool, bool)>,
    pub messages: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelfCheck {
    pub checked_at: OffsetDateTime,
    pub regions: Vec<RegionSelfCheck>,
    pub trusted_emails: Vec<TrustedEmailAlignment>,
}

/// The host named in `Authentication-Results` (RFC 8601's authserv-id).
const AUTHSERV_ID: &str = "trustmail.selfcheck";

fn word(result: &SpfResult) -> &'static str {
    match result {
        SpfResult::Pass => "pass",
        SpfResult::Fail => "fail",
        SpfResult::SoftFail => "softfail",
        SpfResult::Neutral => "neutral",
        SpfResult::TempError => "temperror",
        SpfResult::PermError => "permerror",
        SpfResult::None => "none",
    }
}

fn dkim_verdict(result: &DkimResult, selector: &str, domain: &str, zone: &str) -> Verdict {
    let at = format!("{selector}._domainkey.{domain}");
    let (result, message) = match result {
        DkimResult::Pass => (
            "pass",
            format!(
                "A test message signed with selector {selector} verified with the key at {at}."
            ),
        ),
        DkimResult::TempError(e) => (
            "temperror",
            format!("The key at {at} could not be looked up ({e}); try again."),
        ),
        DkimResult::None => (
            "none",
            "The test message carried no signature a receiver could use.".to_owned(),
        ),
        DkimResult::Fail(e) | DkimResult::Neutral(e) | DkimResult::PermError(e) => (
            "fail",
            format!(
                "A test message signed with selector {selector} did not verify ({e}): publish the \
                 CNAME at {at} and delegate {zone} to trustmail's DNS."
            ),
        ),
    };
    Verdict {
        result: result.to_owned(),
        message,
    }
}

fn spf_verdict(output: &SpfOutput, ip: IpAddr, envelope_from: &str, include: &str) -> Verdict {
    let domain = envelope_from
        .rsplit_once('@')
        .map_or(envelope_from, |(_, d)| d);
    let result = output.result();
    let message = match result {
        SpfResult::Pass => {
            format!("Mail from {ip} with envelope sender {envelope_from} passes SPF.")
        }
        SpfResult::TempError => {
            format!("The SPF record of {domain} could not be looked up; try again.")
        }
        SpfResult::None => {
            format!("{domain} has no SPF record: publish \"v=spf1 include:{include} ~all\" there.")
        }
        SpfResult::PermError => {
            format!("The SPF record of {domain} is invalid: receivers treat it as an error.")
        }
        _ => format!(
            "The SPF record of {domain} does not authorize {ip} ({}): add include:{include}.",
            word(&result)
        ),
    };
    Verdict {
        result: word(&result).to_owned(),
        message,
    }
}

/// Whether a DMARC mechanism passed aligned, and a sentence when it did not.
fn alignment(result: &DmarcResult, mechanism: &str, from: &str) -> (bool, Option<String>) {
    match result {
        DmarcResult::Pass => (true, None),
        DmarcResult::Fail(mail_auth::Error::NotAligned) => (
            false,
            Some(format!(
                "{mechanism} passes but is not aligned with the From domain {from} under the \
                 published DMARC policy."
            )),
        ),
        DmarcResult::Fail(e) | DmarcResult::PermError(e) => (
            false,
            Some(format!("{mechanism} does not pass for {from} ({e}).")),
        ),
        DmarcResult::TempError(e) => (
            false,
            Some(format!(
                "{mechanism} could not be evaluated for {from} ({e}); try again."
            )),
        ),
        DmarcResult::None => (
            false,
            Some(format!("{mechanism} gave no result for {from}.")),
        ),
    }
}

impl Service {
    /// The envelope sender of the self-check's test message: a return path as sent mail's
    /// is (on the ACTIVE MAIL FROM domain, or `feedback.bounce_domain`), else on the domain.
    async fn self_check_envelope(&self, domain: &EmailDomain) -> Result<String, ServiceError> {
        let records = self.verification(domain).await?;
        Ok(match self.return_path_domain(domain, &records) {
            Some(return_path_domain) => {
                let path = ReturnPath {
                    message: MessageId::new(),
                    recipient: 0,
                };
                self.return_path(path, &return_path_domain)
            }
            None => format!("selfcheck@{}", domain.name),
        })
    }

    /// Runs the self-check of every region the domain has keys in.
    pub async fn self_check(&self, domain: &EmailDomain) -> Result<SelfCheck, ServiceError> {
        let settings = self.settings();
        let rate = RateLimit::per_minute(settings.limits.self_checks_per_minute);
        self.throttle(RateScope::SelfChecks, domain.environment_id, rate)
            .await?;
        let verifier = self.inner.dns.mail_auth();
        let envelope_from = self.self_check_envelope(domain).await?;
        let envelope_domain = envelope_from
            .rsplit_once('@')
            .map_or(envelope_from.as_str(), |(_, d)| d)
            .to_owned();
        let from = domain.name.as_str();
        let mut regions: Vec<String> = self
            .dkim_keys(domain)
            .await?
            .into_iter()
            .map(|k| k.region)
            .collect();
        regions.dedup();
        let mut checks = Vec::with_capacity(regions.len());
        for region in regions {
            let Some(config) = settings.regions.iter().find(|r| r.name == region) else {
                continue;
            };
            let signer = self.dkim_signer(domain, &region).await?;
            let message = format!(
                "From: <selfcheck@{from}>\r\nTo: <selfcheck@{from}>\r\nSubject: trustmail \
                 self-check\r\nDate: {}\r\nMessage-ID: <{}@{from}>\r\nMIME-Version: 1.0\r\n\
                 Content-Type: text/plain; charset=utf-8\r\n\r\nA test message, never sent.\r\n",
                now()
                    .format(&time::format_description::well_known::Rfc2822)
                    .unwrap_or_default(),
                uuid::Uuid::new_v4().simple(),
            );
            let signed = format!("{}{message}", signer.sign(message.as_bytes())?);
            let parsed = AuthenticatedMessage::parse(signed.as_bytes()).ok_or_else(|| {
                ServiceError::InvalidRequest("the test message does not parse".into())
            })?;
            let dkim = verifier.verify_dkim(&parsed).await;
            let dkim_result = dkim
                .first()
                .map_or(DkimResult::None, |d| d.result().clone());
            let helo = config.mail_from_mx.as_str();
            let mut spf = Vec::with_capacity(config.egress_ips.len());
            let mut first_spf = None;
            for &ip in &config.egress_ips {
                let output = verifier
                    .verify_spf(SpfParameters::verify_mail_from(
                        ip,
                        helo,
                        AUTHSERV_ID,
                        &envelope_from,
                    ))
                    .await;
                spf.push(SpfVerdict {
                    ip,
                    verdict: spf_verdict(
                        &output,
                        ip,
                        &envelope_from,
                        &settings.records.spf_include,
                    ),
                });
                first_spf.get_or_insert((ip, output));
            }
            let spf_note = first_spf.is_none().then(|| {
                format!(
                    "Region {region} lists no egress_ips, so SPF was not evaluated; DMARC can \
                     pass only through DKIM."
                )
            });
            let (spf_ip, spf_output) = first_spf.unwrap_or_else(|| {
                (
                    IpAddr::from([0, 0, 0, 0]),
                    SpfOutput::new(envelope_domain.clone()),
                )
            });
            let dmarc = verifier
                .verify_dmarc(DmarcParameters::new(
                    &parsed,
                    &dkim,
                    &envelope_domain,
                    &spf_output,
                ))
                .await;
            let (dkim_aligned, dkim_note) = alignment(dmarc.dkim_result(), "DKIM", from);
            let (spf_aligned, spf_note_dmarc) = alignment(dmarc.spf_result(), "SPF", from);
            let policy = match dmarc.policy() {
                Policy::Quarantine => "quarantine",
                Policy::Reject => "reject",
                Policy::None | Policy::Unspecified => "none",
            };
            let passes = dkim_aligned || spf_aligned;
            let mut message = if matches!(dmarc.result(), DmarcResult::None) {
                let record = suggested_dmarc_record(&self.dmarc_report_address(domain.id));
                format!(
                    "{from} publishes no DMARC record: receivers apply no policy. Publish one at \
                     _dmarc.{from}, e.g. \"{record}\" (reports then show under dmarcReports)."
                )
            } else if passes {
                format!("Mail from {from} passes DMARC (p={policy}).")
            } else {
                format!("Mail from {from} fails DMARC (p={policy}).")
            };
            for note in [dkim_note, spf_note_dmarc].into_iter().flatten() {
                message.push(' ');
                message.push_str(&note);
            }
            let mut results =
                AuthenticationResults::new(AUTHSERV_ID).with_dkim_results(&dkim, from);
            if !config.egress_ips.is_empty() {
                results =
                    results.with_spf_mailfrom_result(&spf_output, spf_ip, &envelope_from, helo);
            }
            let results = results.with_dmarc_result(&dmarc);
            checks.push(RegionSelfCheck {
                dkim: dkim_verdict(&dkim_result, signer.selector(), from, &config.dkim_zone),
                selector: signer.selector().to_owned(),
                region,
                envelope_from: envelope_from.clone(),
                spf,
                spf_note,
                dmarc: DmarcVerdict {
                    policy,
                    dkim_aligned,
                    spf_aligned,
                    verdict: Verdict {
                        result: if passes { "pass" } else { "fail" }.to_owned(),
                        message,
                    },
                },
                authentication_results: format!("Authentication-Results: {results}"),
            });
        }
        // Every trusted email shares the domain as its From domain, so each aligns exactly as
        // the region's test message did.
        let trusted_emails = self
            .list::<TrustedEmail>(domain.id)
            .await?
            .into_iter()
            .map(|email| {
                let mut messages = Vec::new();
                if email.status != TrustedEmailStatus::Active {
                    messages.push(
                        "The address is not ACTIVE yet: it cannot send until its code is entered."
                            .to_owned(),
                    );
                }
                for check in &checks {
                    if !check.dmarc.dkim_aligned && !check.dmarc.spf_aligned {
                        messages.push(format!(
                            "In {}, neither DKIM nor SPF aligns: receivers apply p={}.",
                            check.region, check.dmarc.policy
                        ));
                    }
                }
                TrustedEmailAlignment {
                    email_address: email.address.to_string(),
                    status: email.status,
                    regions: checks
                        .iter()
                        .map(|c| (c.region.clone(), c.dmarc.dkim_aligned, c.dmarc.spf_aligned))
                        .collect(),
                    messages,
                }
            })
            .collect();
        Ok(SelfCheck {
            checked_at: now(),
            regions: checks,
            trusted_emails,
        })
    }
}
