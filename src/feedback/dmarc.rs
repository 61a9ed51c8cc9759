//! DMARC aggregate reports as trustmail keeps them: who reported, for which period, and per
//! source IP how many messages claimed the domain and whether they passed DKIM or SPF aligned.
//! The summary over a domain's reports answers which addresses send as the domain, and which
//! of those trustmail is not (its regions' `egress_ips`).

use mail_auth::report::{ActionDisposition, Disposition, DmarcResult};
use time::OffsetDateTime;

use crate::domain::{DomainId, EnvironmentId};

crate::domain::id_type!(
    /// A kept DMARC aggregate report; v7 so ids sort by arrival.
    DmarcReportId,
    now_v7
);

/// Records of one report kept; a report's message total still counts all of them.
pub const MAX_ROWS_PER_REPORT: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmarcReport {
    pub id: DmarcReportId,
    pub domain_id: DomainId,
    pub environment_id: EnvironmentId,
    pub org_name: String,
    pub email: String,
    pub report_id: String,
    pub begin: OffsetDateTime,
    pub end: OffsetDateTime,
    pub policy_domain: String,
    pub policy: String,
    pub messages: i64,
    pub received_at: OffsetDateTime,
}

/// One record of a report: a source IP and what receivers saw of its mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmarcRow {
    /// Empty when the reporter named none.
    pub source_ip: String,
    pub messages: i64,
    pub header_from: String,
    pub dkim_aligned: bool,
    pub spf_aligned: bool,
    pub disposition: String,
}

/// One source IP over a domain's reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmarcSource {
    pub source_ip: String,
    pub messages: i64,
    /// Messages that passed DKIM aligned, SPF aligned, and either (DMARC).
    pub dkim_aligned: i64,
    pub spf_aligned: i64,
    pub dmarc_pass: i64,
    /// Reporters that saw it.
    pub reporters: i64,
}

/// `report` as kept for `domain`, with its records (at most `MAX_ROWS_PER_REPORT`).
pub fn from_report(
    report: &mail_auth::report::Report,
    domain: (EnvironmentId, DomainId),
    received_at: OffsetDateTime,
) -> (DmarcReport, Vec<DmarcRow>) {
    let meta = &report.report_metadata;
    let time = |seconds: u64| {
        i64::try_from(seconds)
            .ok()
            .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    };
    let messages = report.record.iter().map(|r| i64::from(r.row.count)).sum();
    let rows = report
        .record
        .iter()
        .take(MAX_ROWS_PER_REPORT)
        .map(|record| {
            let evaluated = &record.row.policy_evaluated;
            DmarcRow {
                source_ip: record
                    .row
                    .source_ip
                    .map(|ip| ip.to_string())
                    .unwrap_or_default(),
                messages: i64::from(record.row.count),
                header_from: cut(&record.identifiers.header_from),
                dkim_aligned: evaluated.dkim == DmarcResult::Pass,
                spf_aligned: evaluated.spf == DmarcResult::Pass,
                disposition: action(evaluated.disposition).to_owned(),
            }
        })
        .collect();
    let kept = DmarcReport {
        id: DmarcReportId::new(),
        domain_id: domain.1,
        environment_id: domain.0,
        org_name: cut(&meta.org_name),
        email: cut(&meta.email),
        report_id: cut(&meta.report_id),
        begin: time(meta.date_range.begin),
        end: time(meta.date_range.end),
        policy_domain: cut(&report.policy_published.domain),
        policy: policy(report.policy_published.p).to_owned(),
        messages,
        received_at,
    };
    (kept, rows)
}

fn policy(p: Disposition) -> &'static str {
    match p {
        Disposition::None => "none",
        Disposition::Quarantine => "quarantine",
        Disposition::Reject => "reject",
        Disposition::Unspecified => "unspecified",
    }
}

fn action(d: ActionDisposition) -> &'static str {
    match d {
        ActionDisposition::None | ActionDisposition::Pass => "none",
        ActionDisposition::Quarantine => "quarantine",
        ActionDisposition::Reject => "reject",
        ActionDisposition::Unspecified => "unspecified",
    }
}

/// A reporter's text, cut to what a report needs.
fn cut(text: &str) -> String {
    text.chars().take(255).collect()
}
