//! DNS verification: when to check, one check of a domain, and what changed.

use std::{collections::HashMap, time::Duration as StdDuration};

use futures_util::future::join_all;
use time::Duration;

use super::{Actor, Service, ServiceError};
use crate::{
    dns::{Expected, check_record},
    domain::{
        Activity, ActivityType, CheckedRecord, DomainId, EmailDomain, RecordKind, ResourceType,
        now, visible_statuses,
    },
    store::Throttle,
};

/// How long a check may hold a domain before another process may take over.
const CHECK_LEASE: Duration = Duration::seconds(60);
/// `POST …/verification` runs at most this often per domain.
pub const FORCED_CHECK_INTERVAL: StdDuration = StdDuration::from_secs(5);

/// What one check of one domain changed.
struct CheckOutcome {
    changed: Vec<CheckedRecord>,
    activities: Vec<Activity>,
}

/// Which records a check looks at.
#[derive(Debug, Clone, Copy)]
pub enum CheckScope<'a> {
    /// These kinds, if their last check is older than `dns.min_recheck_interval_s`.
    StaleOf(&'a [RecordKind]),
    /// Records whose scheduled time has come (the background job).
    Due,
    /// Every record, now.
    All,
}

impl Service {
    /// Checks the records `scope` selects and saves what changed. Returns every record of the
    /// domain as it now stands. When another process is checking this domain, answers with the
    /// state as stored rather than waiting.
    pub async fn check_domain(
        &self,
        domain: &EmailDomain,
        scope: CheckScope<'_>,
        actor: Option<&Actor>,
    ) -> Result<Vec<CheckedRecord>, ServiceError> {
        let mut records = self.store().checked_records(domain.id).await?;
        let started = now();
        let selected = self.select(&records, scope, started);
        if selected.is_empty() {
            return Ok(records);
        }
        let owner = self.inner.instance_id.as_str();
        let leased = self
            .store()
            .lease_domain_checks(&[domain.id], owner, started, started + CHECK_LEASE)
            .await?;
        if leased.is_empty() {
            return Ok(records);
        }
        let outcome = self.observe(domain, &mut records, &selected, actor).await?;
        // Results, activities and the lease's release commit together.
        self.store()
            .save_checks(&[(domain.id, outcome.changed)], &outcome.activities, owner)
            .await?;
        Ok(records)
    }

    /// When the background job first looks at records created at `created_at`: one
    /// `dns.initial_recheck_interval_s` later (a status read checks sooner, on demand).
    pub(super) fn first_check_at(&self, created_at: time::OffsetDateTime) -> time::OffsetDateTime {
        created_at
            + Duration::seconds(
                i64::try_from(self.settings().dns.initial_recheck_interval_s).unwrap_or(60),
            )
    }

    /// The records `scope` picks, by index.
    fn select(
        &self,
        records: &[CheckedRecord],
        scope: CheckScope<'_>,
        at: time::OffsetDateTime,
    ) -> Vec<usize> {
        let min_age = Duration::seconds(
            i64::try_from(self.settings().dns.min_recheck_interval_s).unwrap_or(i64::MAX),
        );
        records
            .iter()
            .enumerate()
            .filter(|(_, r)| match scope {
                CheckScope::StaleOf(kinds) => {
                    kinds.contains(&r.record.kind)
                        && r.last_checked_at
                            .is_none_or(|checked| at - checked >= min_age)
                }
                CheckScope::Due => r.next_check_at <= at,
                CheckScope::All => true,
            })
            .map(|(i, _)| i)
            .collect()
    }

    /// Looks up the selected records, applies what DNS said, and names the visible changes.
    async fn observe(
        &self,
        domain: &EmailDomain,
        records: &mut [CheckedRecord],
        selected: &[usize],
        actor: Option<&Actor>,
    ) -> Result<CheckOutcome, ServiceError> {
        let settings = self.settings();
        let spf_include = settings.records.spf_include.as_str();
        // A DKIM record is ACTIVE only when its CNAME leads to the key trustmail holds.
        let keys = if selected
            .iter()
            .any(|&i| records[i].record.kind == RecordKind::Dkim)
        {
            self.store().dkim_keys(domain.id).await?
        } else {
            Vec::new()
        };
        let key_of = |record: &crate::domain::DnsRecord| {
            keys.iter()
                .find(|k| {
                    Some(&k.region) == record.region.as_ref() && k.position == record.position
                })
                .map(|k| k.public_key.as_str())
        };
        let names: Vec<String> = selected
            .iter()
            .map(|&i| records[i].record.fqdn(&domain.name))
            .collect();
        let observations = join_all(selected.iter().zip(&names).map(|(&i, name)| {
            let record = &records[i].record;
            let expected = Expected {
                kind: record.kind,
                name,
                value: &record.value,
                spf_include,
                dkim_public_key: key_of(record),
            };
            async move { check_record(&self.inner.dns, &expected).await }
        }))
        .await;
        let checked_at = now();
        let grace =
            Duration::seconds(i64::try_from(settings.dns.active_grace_s).unwrap_or(i64::MAX));
        let initial =
            Duration::seconds(i64::try_from(settings.dns.initial_recheck_interval_s).unwrap_or(60));
        let before: HashMap<_, _> = visible_statuses(records.iter().map(|r| &r.record))
            .into_iter()
            .map(|(kind, region, status)| ((kind, region), status))
            .collect();
        let mut changed = Vec::with_capacity(selected.len());
        for (&i, observation) in selected.iter().zip(observations) {
            metrics::counter!("dns_checks_total", "reason" => observation.reason.as_str())
                .increment(1);
            records[i] = records[i].after_check(observation, checked_at, grace, initial);
            changed.push(records[i].clone());
        }
        let activities: Vec<Activity> = visible_statuses(records.iter().map(|r| &r.record))
            .into_iter()
            .filter(|(kind, region, status)| before.get(&(*kind, region.clone())) != Some(status))
            .map(|(kind, region, status)| {
                tracing::info!(domain = %domain.name, record = kind.as_str(), ?region, status = status.as_str(), "record status changed");
                Activity::new(
                    domain.environment_id,
                    ActivityType::EmailDomainStatusUpdated,
                    actor.map(|a| a.client_id),
                    ResourceType::EmailDomain,
                    domain.id,
                    domain.name.as_str(),
                )
                .with_details(serde_json::json!({
                    "record": kind.as_str(),
                    "region": region,
                    "status": status.as_str(),
                }))
            })
            .collect();
        Ok(CheckOutcome {
            changed,
            activities,
        })
    }

    /// The ownership and environment records, re-checked when stale: writes that need a
    /// verified domain (MAIL FROM, trusted emails) start here, so "publish, then ask" works.
    pub(super) async fn fresh_ownership(
        &self,
        domain: &EmailDomain,
        actor: &Actor,
    ) -> Result<Vec<CheckedRecord>, ServiceError> {
        self.check_domain(
            domain,
            CheckScope::StaleOf(&[RecordKind::Ownership, RecordKind::Environment]),
            Some(actor),
        )
        .await
    }

    /// The records as stored, for the diagnosis GET (which checks nothing).
    pub async fn verification(
        &self,
        domain: &EmailDomain,
    ) -> Result<Vec<CheckedRecord>, ServiceError> {
        Ok(self.store().checked_records(domain.id).await?)
    }

    /// `POST …/verification`: checks everything now, at most once per `FORCED_CHECK_INTERVAL`.
    pub async fn force_check(
        &self,
        domain: &EmailDomain,
        actor: &Actor,
    ) -> Result<Vec<CheckedRecord>, ServiceError> {
        let interval_ms = i64::try_from(FORCED_CHECK_INTERVAL.as_millis()).unwrap_or(5000);
        let claim = self
            .store()
            .claim_forced_check(domain.id, now(), interval_ms)
            .await?;
        if let Throttle::TooSoon { wait_ms } = claim {
            return Err(ServiceError::retry_after_ms(wait_ms));
        }
        self.check_domain(domain, CheckScope::All, Some(actor))
            .await
    }

    /// One pass of the background job: leases up to `batch` domains whose records are due,
    /// checks them all concurrently, and saves every result (releasing the leases) in one
    /// transaction. Returns how many domains it checked.
    pub async fn check_due_domains(&self, batch: u32) -> Result<usize, ServiceError> {
        let started = now();
        let due = self.store().due_domains(started, batch).await?;
        if due.is_empty() {
            return Ok(0);
        }
        let owner = self.inner.instance_id.as_str();
        let leased = self
            .store()
            .lease_domain_checks(&due, owner, started, started + CHECK_LEASE)
            .await?;
        let domains = self.store().domains_by_id(&leased).await?;
        let mut records = self.store().checked_records_of(&leased).await?;
        let outcomes = join_all(domains.iter().map(|domain| {
            let mut mine = records.remove(&domain.id).unwrap_or_default();
            async move {
                let selected = self.select(&mine, CheckScope::Due, started);
                let outcome = self.observe(domain, &mut mine, &selected, None).await;
                (domain, outcome)
            }
        }))
        .await;
        let mut activities = Vec::new();
        let mut changed: Vec<(DomainId, Vec<CheckedRecord>)> = Vec::with_capacity(leased.len());
        for (domain, outcome) in outcomes {
            match outcome {
                Ok(outcome) => {
                    activities.extend(outcome.activities);
                    changed.push((domain.id, outcome.changed));
                }
                // Its lease is released below with nothing saved; the next pass tries again.
                Err(e) => tracing::warn!(
                    domain = %domain.name,
                    error = %crate::error_chain::ErrorChain(&e),
                    "scheduled check failed"
                ),
            }
        }
        // Leased domains deleted meanwhile are released too.
        for id in &leased {
            if !changed.iter().any(|(done, _)| done == id) {
                changed.push((*id, Vec::new()));
            }
        }
        self.store()
            .save_checks(&changed, &activities, owner)
            .await?;
        Ok(domains.len())
    }
}
