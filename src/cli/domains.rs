//! `trustmail domain …`: an environment's sending domains, their records and whether DNS has
//! them yet, read and checked beside a running server.

use std::{process::ExitCode, time::Duration};

use clap::Subcommand;
use time::OffsetDateTime;

use super::{BoxError, EXIT_REFUSED, EXIT_TIMED_OUT, Output, rfc3339};
use crate::{
    api::views::{EmailDomainView, VerificationView},
    domain::{CheckedRecord, EmailDomain, EnvironmentId, RecordKind, RecordStatus, ZoneFileFormat},
    service::{Service, ServiceError},
};

#[derive(Subcommand)]
pub enum DomainCommand {
    /// List an environment's domains with their overall status.
    List {
        environment: EnvironmentId,
        #[arg(long)]
        json: bool,
    },
    /// Print a domain's records: where to publish them, their status, and why not ACTIVE.
    Show {
        environment: EnvironmentId,
        /// The domain: its id or its name.
        domain: String,
        #[arg(long)]
        json: bool,
    },
    /// Print the records to publish: BIND lines, a Route 53 change batch, Cloudflare API
    /// bodies or Terraform resources.
    ZoneFile {
        environment: EnvironmentId,
        /// The domain: its id or its name.
        domain: String,
        /// bind, route53, cloudflare or terraform.
        #[arg(long, default_value = "bind")]
        format: ZoneFileFormat,
    },
    /// Check the domain on the DNS cadence until every record is ACTIVE (exit 0) or the
    /// timeout passes (exit 3), with progress on stderr.
    Wait {
        environment: EnvironmentId,
        /// The domain: its id or its name.
        domain: String,
        /// How long to wait, e.g. 90s, 5m, 1h.
        #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
        timeout: Duration,
        #[arg(long)]
        json: bool,
    },
}

pub(super) async fn domain_command(
    command: DomainCommand,
    service: &Service,
    out: &Output,
) -> Result<ExitCode, BoxError> {
    match command {
        DomainCommand::List { environment, json } => {
            let Some(environment) = super::find_environment(service, environment).await? else {
                return Ok(ExitCode::from(EXIT_REFUSED));
            };
            let domains = service.list::<EmailDomain>(environment.id).await?;
            let mut listed = Vec::with_capacity(domains.len());
            for domain in domains {
                let records = service.verification(&domain).await?;
                listed.push((domain, records));
            }
            if json {
                let views = listed
                    .iter()
                    .map(|(domain, records)| {
                        let mut view =
                            serde_json::to_value(EmailDomainView::new(domain, &out.urls))?;
                        view["complete"] = all_active(records).into();
                        Ok(view)
                    })
                    .collect::<Result<Vec<_>, BoxError>>()?;
                out.json(&views)?;
            } else {
                let rows = listed
                    .iter()
                    .map(|(domain, records)| {
                        Ok([
                            domain.id.to_string(),
                            domain.written_name.clone(),
                            overall_status(records).to_owned(),
                            active_count(records),
                            rfc3339(domain.created_at)?,
                        ])
                    })
                    .collect::<Result<Vec<_>, BoxError>>()?;
                out.table(["ID", "DOMAIN", "STATUS", "ACTIVE", "CREATED"], rows);
            }
        }
        DomainCommand::Show {
            environment,
            domain,
            json,
        } => {
            let Some(found) = find_domain(service, environment, &domain).await? else {
                return refuse_unknown(environment, &domain);
            };
            let records = service.verification(&found).await?;
            print_domain(service, out, &found, records, json)?;
        }
        DomainCommand::ZoneFile {
            environment,
            domain,
            format,
        } => {
            let Some(found) = find_domain(service, environment, &domain).await? else {
                return refuse_unknown(environment, &domain);
            };
            print!("{}", service.zone_file(&found, format).await?);
        }
        DomainCommand::Wait {
            environment,
            domain,
            timeout,
            json,
        } => {
            let Some(found) = find_domain(service, environment, &domain).await? else {
                return refuse_unknown(environment, &domain);
            };
            let mut last_line = String::new();
            let waited = service
                .wait_until_active(&found, timeout, |records| {
                    let line = progress_line(records);
                    if line != last_line {
                        let at = rfc3339(OffsetDateTime::now_utc()).unwrap_or_default();
                        eprintln!("{at}  {line}");
                        last_line = line;
                    }
                })
                .await?;
            print_domain(service, out, &found, waited.records, json)?;
            if !waited.complete {
                eprintln!(
                    "trustmail: not every record of {} is ACTIVE after {}",
                    found.written_name,
                    humantime::format_duration(timeout)
                );
                return Ok(ExitCode::from(EXIT_TIMED_OUT));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Every record of the domain is ACTIVE (and it has records).
pub(super) fn all_active(records: &[CheckedRecord]) -> bool {
    !records.is_empty()
        && records
            .iter()
            .all(|r| r.record.status == RecordStatus::Active)
}

/// PingOne's statuses, for the domain as a whole.
fn overall_status(records: &[CheckedRecord]) -> &'static str {
    if all_active(records) {
        RecordStatus::Active.as_str()
    } else {
        RecordStatus::VerificationRequired.as_str()
    }
}

fn active_count(records: &[CheckedRecord]) -> String {
    let active = records
        .iter()
        .filter(|r| r.record.status == RecordStatus::Active)
        .count();
    format!("{active}/{}", records.len())
}

/// One line of `domain wait`'s progress: how many records are ACTIVE, and what the others wait
/// on, in record order, alike ones counted once (`DKIM us-east-1 (NOT_FOUND) ×3`).
fn progress_line(records: &[CheckedRecord]) -> String {
    let mut waiting: Vec<(usize, String, usize)> = Vec::new();
    for r in records
        .iter()
        .filter(|r| r.record.status != RecordStatus::Active)
    {
        let order = RecordKind::ALL
            .iter()
            .position(|k| *k == r.record.kind)
            .unwrap_or(usize::MAX);
        let what = match &r.record.region {
            Some(region) => format!("{} {region} ({})", r.record.kind, r.reason),
            None => format!("{} ({})", r.record.kind, r.reason),
        };
        match waiting.iter_mut().find(|(_, w, _)| *w == what) {
            Some((_, _, count)) => *count += 1,
            None => waiting.push((order, what, 1)),
        }
    }
    if waiting.is_empty() {
        return format!("{} records ACTIVE", records.len());
    }
    waiting.sort_by_key(|(order, _, _)| *order);
    let waiting: Vec<String> = waiting
        .into_iter()
        .map(|(_, what, count)| match count {
            1 => what,
            n => format!("{what} ×{n}"),
        })
        .collect();
    format!(
        "{} records ACTIVE; waiting on {}",
        active_count(records),
        waiting.join(", ")
    )
}

fn print_domain(
    service: &Service,
    out: &Output,
    domain: &EmailDomain,
    records: Vec<CheckedRecord>,
    json: bool,
) -> Result<(), BoxError> {
    let regions = &service.settings().regions;
    if json {
        let mut view = serde_json::to_value(EmailDomainView::new(domain, &out.urls))?;
        view["verification"] =
            serde_json::to_value(VerificationView::new(regions, &out.urls, domain, records))?;
        return out.json(&view);
    }
    let mut records = records;
    crate::domain::region_order(regions, &mut records);
    out.fields(&[
        ("id", domain.id.to_string()),
        ("domain", domain.written_name.clone()),
        ("environment", domain.environment_id.to_string()),
        ("status", overall_status(&records).to_owned()),
        (
            "mail from",
            domain
                .mail_from
                .as_ref()
                .map_or_else(|| "-".to_owned(), ToString::to_string),
        ),
        ("created", rfc3339(domain.created_at)?),
    ]);
    println!();
    out.table(
        ["RECORD", "REGION", "NAME", "TYPE", "VALUE", "STATUS"],
        records.iter().map(|r| {
            [
                r.record.kind.to_string(),
                r.record.region.clone().unwrap_or_else(|| "-".into()),
                r.record.fqdn(&domain.name),
                r.record.record_type.to_owned(),
                r.record.value.clone(),
                r.record.status.to_string(),
            ]
        }),
    );
    let not_yet: Vec<_> = records
        .iter()
        .filter(|r| r.record.status != RecordStatus::Active && !r.message.is_empty())
        .collect();
    if !not_yet.is_empty() {
        println!();
        for r in not_yet {
            println!("{} {}: {}", r.record.kind, r.reason, r.message);
        }
    }
    Ok(())
}

fn refuse_unknown(environment: EnvironmentId, domain: &str) -> Result<ExitCode, BoxError> {
    eprintln!("trustmail: no domain {domain} in environment {environment}");
    Ok(ExitCode::from(EXIT_REFUSED))
}

/// A domain of `environment` named by its id or its name (in any letter case, or in Unicode).
pub(super) async fn find_domain(
    service: &Service,
    environment: EnvironmentId,
    domain: &str,
) -> Result<Option<EmailDomain>, BoxError> {
    let environment = match service.environment(environment).await {
        Ok(environment) => environment,
        Err(ServiceError::NotFound) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let trimmed = domain.trim_end_matches('.');
    let wanted = idna::domain_to_ascii(trimmed).unwrap_or_else(|_| trimmed.to_ascii_lowercase());
    Ok(service
        .list::<EmailDomain>(environment.id)
        .await?
        .into_iter()
        .find(|d| d.id.to_string() == domain || d.name.as_str() == wanted))
}
