//! Check state of DNS records, and the leases that keep two processes off one domain.

use std::collections::HashMap;

use sqlx::{Row, any::AnyRow};
use time::OffsetDateTime;

use super::{RowExt, Store, StoreError, Throttle, insert_activities, millis};
use crate::domain::{Activity, CheckedRecord, DnsRecord, DomainId, RecordKind};

/// `$from, $from+1, …`: `n` numbered placeholders for an `IN (…)` list.
pub(super) fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A lease on some domains' checks: the token that fences their results, and the domains taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckLease {
    pub token: String,
    pub domains: Vec<DomainId>,
}

/// One check's results for `Store::save_checks`: written only while `token` holds the domain's
/// lease. No records releases the lease with nothing written.
#[derive(Debug, Clone)]
pub struct CheckResult {
    pub domain: DomainId,
    pub token: String,
    pub records: Vec<CheckedRecord>,
    pub activities: Vec<RecordActivity>,
}

/// A status-change activity and the record it is about (kept only if that record is written).
#[derive(Debug, Clone)]
pub struct RecordActivity {
    pub kind: RecordKind,
    pub region: Option<String>,
    pub activity: Activity,
}

/// What `Store::save_checks` wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SavedChecks {
    /// Results whose lease still held.
    pub saved: usize,
    /// Results whose lease had run out or been taken over, or whose domain is gone.
    pub discarded: usize,
    /// Records of saved results not written because they changed during the check.
    pub stale_records: usize,
}

/// Where a due scan goes on from: the last record it read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueCursor {
    at: i64,
    domain: String,
}

/// One read of the due scan.
#[derive(Debug, Clone)]
pub struct DuePage {
    /// Domains with a due record, each once, most overdue first.
    pub domains: Vec<DomainId>,
    /// Where the next read starts.
    pub next: Option<DueCursor>,
    /// The scan reached the last due record.
    pub exhausted: bool,
}

fn checked_from_row(row: &AnyRow) -> Result<CheckedRecord, StoreError> {
    let kind: RecordKind = row.parsed("record")?;
    let region = row.text("region")?;
    let corrupt = |column: &'static str, e: &dyn std::fmt::Display| StoreError::Corrupt {
        column,
        reason: e.to_string(),
    };
    Ok(CheckedRecord {
        record: DnsRecord {
            kind,
            region: (!region.is_empty()).then_some(region),
            position: u8::try_from(row.int("position")?).map_err(|e| corrupt("position", &e))?,
            key: row.text("record_key")?,
            record_type: kind.record_type(),
            value: row.text("record_value")?,
            status: row.parsed("status")?,
        },
        reason: row.parsed("reason")?,
        message: row.text("message")?,
        observed: serde_json::from_str(&row.text("observed")?)
            .map_err(|e| corrupt("observed", &e))?,
        suggested: row.try_get::<Option<String>, _>("suggested")?,
        lookups: row
            .try_get::<Option<i64>, _>("lookups")?
            .map(|n| u32::try_from(n).map_err(|e| corrupt("lookups", &e)))
            .transpose()?,
        created_at: row.time("created_at")?,
        last_checked_at: row.optional_time("last_checked_at")?,
        next_check_at: row.time("next_check_at")?,
        failing_since: row.optional_time("failing_since")?,
        error_streak: u32::try_from(row.int("error_streak")?)
            .map_err(|e| corrupt("error_streak", &e))?,
    })
}

impl Store {
    /// Every record of a domain with its check state (order as stored; callers sort).
    pub async fn checked_records(&self, id: DomainId) -> Result<Vec<CheckedRecord>, StoreError> {
        Ok(self
            .checked_records_of(&[id])
            .await?
            .remove(&id)
            .unwrap_or_default())
    }

    /// The checked records of several domains at once, by domain.
    pub async fn checked_records_of(
        &self,
        ids: &[DomainId],
    ) -> Result<HashMap<DomainId, Vec<CheckedRecord>>, StoreError> {
        let mut by_domain: HashMap<DomainId, Vec<CheckedRecord>> = HashMap::new();
        let rows = self
            .fetch_for_ids(
                "SELECT domain_id, record, region, position, record_key, record_value, status, \
                 reason, message, observed, suggested, lookups, created_at, last_checked_at, \
                 next_check_at, failing_since, error_streak FROM dns_records \
                 WHERE domain_id IN (#IDS)",
                ids,
            )
            .await?;
        for row in rows {
            let domain: DomainId = row.parsed("domain_id")?;
            by_domain
                .entry(domain)
                .or_default()
                .push(checked_from_row(&row)?);
        }
        Ok(by_domain)
    }

    /// The rows of `sql`, whose only parameters are `ids`, in the list written `#IDS`. No
    /// query (and no rows) for no ids.
    pub(super) async fn fetch_for_ids(
        &self,
        sql: &str,
        ids: &[DomainId],
    ) -> Result<Vec<AnyRow>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = sql.replace("#IDS", &placeholders(1, ids.len()));
        // Only numbered placeholders are spliced in; every value is bound.
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in ids {
            query = query.bind(id.to_string());
        }
        Ok(query.fetch_all(&self.pool).await?)
    }

    /// Takes the check lease of each of `ids` whose previous lease has run out, until `until`,
    /// under a fresh token; returns the lease with the domains taken. One statement, so a sweep
    /// pays one commit for a whole read-ahead.
    pub async fn lease_domain_checks(
        &self,
        ids: &[DomainId],
        owner: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<CheckLease, StoreError> {
        let token = uuid::Uuid::new_v4().simple().to_string();
        if ids.is_empty() {
            return Ok(CheckLease {
                token,
                domains: Vec::new(),
            });
        }
        let take = format!(
            "UPDATE email_domains SET check_lease_owner = $1, check_lease_until = $2, \
             check_lease_token = $3 WHERE check_lease_until < $4 AND id IN ({}) RETURNING id",
            placeholders(5, ids.len())
        );
        // Only numbered placeholders are spliced in; every value is bound.
        let mut query = sqlx::query(sqlx::AssertSqlSafe(take))
            .bind(owner)
            .bind(millis(until))
            .bind(&token)
            .bind(millis(now));
        for id in ids {
            query = query.bind(id.to_string());
        }
        let domains = query
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| row.parsed("id"))
            .collect::<Result<_, _>>()?;
        Ok(CheckLease { token, domains })
    }

    /// Writes each result whose lease still holds at `now` (its token checked in the statement
    /// that releases it), in one transaction: the records it checked, unless a record changed
    /// meanwhile (a new MAIL FROM domain replaces its rows), and the activities of the status
    /// changes it saw, minus those of records it could not write. A result whose lease ran out
    /// or was taken over, or whose domain is gone, writes nothing.
    pub async fn save_checks(
        &self,
        results: &[CheckResult],
        now: OffsetDateTime,
    ) -> Result<SavedChecks, StoreError> {
        let mut saved = SavedChecks::default();
        let mut tx = self.pool.begin().await?;
        for result in results {
            let held = sqlx::query(
                "UPDATE email_domains SET check_lease_until = 0, check_lease_owner = NULL, \
                 check_lease_token = NULL \
                 WHERE id = $1 AND check_lease_token = $2 AND check_lease_until > $3",
            )
            .bind(result.domain.to_string())
            .bind(&result.token)
            .bind(millis(now))
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if held == 0 {
                saved.discarded += 1;
                continue;
            }
            saved.saved += 1;
            let mut stale = Vec::new();
            for r in &result.records {
                let written = sqlx::query(
                    "UPDATE dns_records SET status = $1, reason = $2, message = $3, observed = $4, \
                     suggested = $5, lookups = $6, last_checked_at = $7, next_check_at = $8, \
                     failing_since = $9, error_streak = $10 \
                     WHERE domain_id = $11 AND record = $12 AND region = $13 AND position = $14 \
                     AND record_key = $15 AND record_value = $16 AND created_at = $17",
                )
                .bind(r.record.status.as_str())
                .bind(r.reason.as_str())
                .bind(&r.message)
                .bind(serde_json::Value::from(r.observed.clone()).to_string())
                .bind(r.suggested.clone())
                .bind(r.lookups.map(i64::from))
                .bind(r.last_checked_at.map(millis))
                .bind(millis(r.next_check_at))
                .bind(r.failing_since.map(millis))
                .bind(i64::from(r.error_streak))
                .bind(result.domain.to_string())
                .bind(r.record.kind.as_str())
                .bind(r.record.region.as_deref().unwrap_or(""))
                .bind(i64::from(r.record.position))
                .bind(&r.record.key)
                .bind(&r.record.value)
                .bind(millis(r.created_at))
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if written == 0 {
                    saved.stale_records += 1;
                    stale.push((r.record.kind, r.record.region.as_deref()));
                }
            }
            let activities: Vec<Activity> = result
                .activities
                .iter()
                .filter(|a| !stale.contains(&(a.kind, a.region.as_deref())))
                .map(|a| a.activity.clone())
                .collect();
            insert_activities(&mut tx, &activities).await?;
        }
        tx.commit().await?;
        Ok(saved)
    }

    /// Up to `limit` records due at `now` on domains no check holds, in due order after
    /// `cursor` (from the start without one): their domains, each once, in that order, and
    /// where to go on from. The scan walks an index from the cursor, so reading ahead never
    /// rescans what it has passed; `DuePage::exhausted` says it reached the end.
    pub async fn due_domains(
        &self,
        now: OffsetDateTime,
        cursor: Option<&DueCursor>,
        limit: u32,
    ) -> Result<DuePage, StoreError> {
        let (after_at, after_domain) = cursor.map_or((i64::MIN, ""), |c| (c.at, c.domain.as_str()));
        let rows = sqlx::query(
            "SELECT r.domain_id AS id, r.next_check_at AS due \
             FROM dns_records r JOIN email_domains d ON d.id = r.domain_id \
             WHERE r.next_check_at <= $1 AND d.check_lease_until < $1 \
             AND (r.next_check_at > $2 OR (r.next_check_at = $2 AND r.domain_id > $3)) \
             ORDER BY r.next_check_at, r.domain_id LIMIT $4",
        )
        .bind(millis(now))
        .bind(after_at)
        .bind(after_domain)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let mut page = DuePage {
            domains: Vec::with_capacity(rows.len()),
            next: cursor.cloned(),
            exhausted: rows.len() < limit as usize,
        };
        for row in &rows {
            let id: DomainId = row.parsed("id")?;
            if !page.domains.contains(&id) {
                page.domains.push(id);
            }
            page.next = Some(DueCursor {
                at: row.int("due")?,
                domain: row.text("id")?,
            });
        }
        Ok(page)
    }

    /// Records a forced check at `now` unless one ran within `interval_ms`.
    pub async fn claim_forced_check(
        &self,
        id: DomainId,
        now: OffsetDateTime,
        interval_ms: i64,
    ) -> Result<Throttle, StoreError> {
        let now_ms = millis(now);
        let claimed = sqlx::query(
            "UPDATE email_domains SET forced_check_at = $1 WHERE id = $2 AND forced_check_at <= $3",
        )
        .bind(now_ms)
        .bind(id.to_string())
        .bind(now_ms - interval_ms)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if claimed == 1 {
            return Ok(Throttle::Done);
        }
        let last = sqlx::query("SELECT forced_check_at FROM email_domains WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .map(|row| row.int("forced_check_at"))
            .transpose()?
            .unwrap_or(now_ms);
        Ok(Throttle::TooSoon {
            wait_ms: (last + interval_ms - now_ms).max(1),
        })
    }
}
