//! DNS verification: when to check, one check of a domain, and what changed. The background
//! sweep (`jobs::dns`) streams due domains through `lease_due_checks`, `run_check` and
//! `save_check_results`; API reads and `POST …/verification` use `check_domain`.

use std::{collections::HashMap, time::Duration as StdDuration};

use futures_util::future::join_all;
use time::Duration;

use super::{Actor, Service, ServiceError};
use crate::{
    dns::{Expected, check_record},
    domain::{
        ActivityType, CheckedRecord, DkimKey, EmailDomain, Observation, ReasonCode, RecordKind,
        now, visible_statuses,
    },
    store::{CheckResult, DueCursor, RecordActivity, SavedChecks, Throttle},
};

/// The shortest check lease; longer when the deadline is long (a leased domain may wait in the
/// sweep's read-ahead for a few deadlines before its check starts).
const MIN_CHECK_LEASE: Duration = Duration::seconds(60);
/// What an on-demand check's lease allows beyond its lookups' deadline, to save their results.
const SAVE_MARGIN: Duration = Duration::seconds(5);
/// `POST …/verification` runs at most this often per domain.
pub const FORCED_CHECK_INTERVAL: StdDuration = StdDuration::from_secs(5);

/// A domain whose check lease this process holds, with everything its check reads.
#[derive(Debug)]
pub struct LeasedCheck {
    domain: EmailDomain,
    token: String,
    records: Vec<CheckedRecord>,
    keys: Vec<DkimKey>,
    /// When it was leased: records due by then are checked.
    leased_at: time::OffsetDateTime,
}

/// One read-ahead of the sweep.
#[derive(Debug)]
pub struct DueChecks {
    pub checks: Vec<LeasedCheck>,
    /// The scan reached the last due record.
    pub exhausted: bool,
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
        let lease = self
            .store()
            .lease_domain_checks(
                &[domain.id],
                &self.inner.instance_id,
                started,
                started + self.on_demand_lease(),
            )
            .await?;
        if lease.domains.is_empty() {
            return Ok(records);
        }
        let keys = if selected
            .iter()
            .any(|&i| records[i].record.kind == RecordKind::Dkim)
        {
            self.store().dkim_keys(domain.id).await?
        } else {
            Vec::new()
        };
        let (changed, activities) = self
            .observe(domain, &mut records, &selected, &keys, actor)
            .await;
        let saved = self
            .save_check_results(&[CheckResult {
                domain: domain.id,
                token: lease.token,
                records: changed,
                activities,
            }])
            .await?;
        if saved.saved == 0 || saved.stale_records > 0 {
            // The domain changed under the check: answer with what is stored.
            return Ok(self.store().checked_records(domain.id).await?);
        }
        Ok(records)
    }

    /// How long a check holds its domain's lease.
    fn check_lease(&self) -> Duration {
        let deadline = self.check_deadline();
        MIN_CHECK_LEASE.max(Duration::try_from(deadline * 4).unwrap_or(MIN_CHECK_LEASE))
    }

    /// How long a check started on demand (a status read, a wait, a forced check) holds its
    /// domain's lease: its deadline and time to save. Not the sweep's minute: a process killed
    /// mid-check (a `domain wait` stopped with Ctrl-C) would hold every other waiter of the
    /// domain to the records as stored for that long.
    fn on_demand_lease(&self) -> Duration {
        Duration::try_from(self.check_deadline()).unwrap_or(MIN_CHECK_LEASE) + SAVE_MARGIN
    }

    /// `dns.check_deadline_ms`: one domain's whole check.
    fn check_deadline(&self) -> StdDuration {
        StdDuration::from_millis(self.settings().dns.check_deadline_ms)
    }

    /// The sweep's read-ahead: leases the domains of up to `rows` due records after `cursor`
    /// (moving it on), with their records and DKIM keys, in four statements.
    pub async fn lease_due_checks(
        &self,
        cursor: &mut Option<DueCursor>,
        rows: u32,
    ) -> Result<DueChecks, ServiceError> {
        let started = now();
        let page = self
            .store()
            .due_domains(started, cursor.as_ref(), rows)
            .await?;
        *cursor = page.next;
        let lease = self
            .store()
            .lease_domain_checks(
                &page.domains,
                &self.inner.instance_id,
                started,
                started + self.check_lease(),
            )
            .await?;
        let domains = self.store().domains_by_id(&lease.domains).await?;
        let mut records = self.store().checked_records_of(&lease.domains).await?;
        let mut keys = self.store().dkim_keys_of(&lease.domains).await?;
        let mut checks: Vec<LeasedCheck> = domains
            .into_iter()
            .map(|domain| LeasedCheck {
                token: lease.token.clone(),
                records: records.remove(&domain.id).unwrap_or_default(),
                keys: keys.remove(&domain.id).unwrap_or_default(),
                leased_at: started,
                domain,
            })
            .collect();
        // Most overdue first, as the scan found them (the lease's RETURNING has no order).
        checks.sort_by_key(|c| page.domains.iter().position(|id| *id == c.domain.id));
        Ok(DueChecks {
            checks,
            exhausted: page.exhausted,
        })
    }

    /// Checks a leased domain's due records within `dns.check_deadline_ms`. Reads nothing from
    /// the store: its result goes to `save_check_results`.
    pub async fn run_check(&self, check: LeasedCheck) -> CheckResult {
        let LeasedCheck {
            domain,
            token,
            mut records,
            keys,
            leased_at,
        } = check;
        let selected = self.select(&records, CheckScope::Due, leased_at);
        let (changed, activities) = self
            .observe(&domain, &mut records, &selected, &keys, None)
            .await;
        CheckResult {
            domain: domain.id,
            token,
            records: changed,
            activities,
        }
    }

    /// Writes check results in one transaction; a result whose lease no longer holds is
    /// dropped (counted in `dns_check_results_discarded_total`).
    pub async fn save_check_results(
        &self,
        results: &[CheckResult],
    ) -> Result<SavedChecks, ServiceError> {
        let saved = self.store().save_checks(results, now()).await?;
        if saved.discarded > 0 {
            metrics::counter!("dns_check_results_discarded_total", "why" => "lease")
                .increment(saved.discarded as u64);
            tracing::info!(
                discarded = saved.discarded,
                "check results dropped: their lease ran out or their domain is gone"
            );
        }
        if saved.stale_records > 0 {
            metrics::counter!("dns_check_results_discarded_total", "why" => "record_changed")
                .increment(saved.stale_records as u64);
        }
        Ok(saved)
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

    /// Looks up the selected records, all within `dns.check_deadline_ms`, applies what DNS
    /// said, and names the visible changes: the records checked and the activities to record.
    async fn observe(
        &self,
        domain: &EmailDomain,
        records: &mut [CheckedRecord],
        selected: &[usize],
        keys: &[DkimKey],
        actor: Option<&Actor>,
    ) -> (Vec<CheckedRecord>, Vec<RecordActivity>) {
        let settings = self.settings();
        let spf_include = settings.records.spf_include.as_str();
        let deadline = self.check_deadline();
        let until = tokio::time::Instant::now() + deadline;
        // A DKIM record is ACTIVE only when its CNAME leads to the key trustmail holds.
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
            async move {
                tokio::time::timeout_at(until, check_record(&self.inner.dns, &expected))
                    .await
                    .unwrap_or_else(|_| past_deadline(domain.name.as_str(), deadline))
            }
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
        let activities = visible_statuses(records.iter().map(|r| &r.record))
            .into_iter()
            .filter(|(kind, region, status)| before.get(&(*kind, region.clone())) != Some(status))
            .map(|(kind, region, status)| {
                tracing::info!(domain = %domain.name, record = kind.as_str(), ?region, status = status.as_str(), "record status changed");
                let activity = domain.activity(ActivityType::EmailDomainStatusUpdated, actor.map(|a| a.client_id))
                .with_details(serde_json::json!({
                    "record": kind.as_str(),
                    "region": region,
                    "status": status.as_str(),
                }));
                RecordActivity {
                    kind,
                    region,
                    activity,
                }
            })
            .collect();
        (changed, activities)
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
}

/// A record whose lookups did not finish within the domain's deadline.
fn past_deadline(domain: &str, deadline: StdDuration) -> Observation {
    Observation::new(
        ReasonCode::DnsError,
        vec![],
        format!(
            "The check of {domain} did not finish within {} ms: its DNS answers came too slowly \
             (or it took too many of them). The status is unchanged; it is checked again later, \
             waiting longer after each failed attempt.",
            deadline.as_millis()
        ),
    )
}
