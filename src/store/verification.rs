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
        if ids.is_empty() {
            return Ok(by_domain);
        }
        let sql = format!(
            "SELECT domain_id, record, region, position, record_key, record_value, status, \
             reason, message, observed, suggested, lookups, created_at, last_checked_at, \
             next_check_at, failing_since FROM dns_records WHERE domain_id IN ({})",
            placeholders(1, ids.len())
        );
        // Only numbered placeholders are spliced in; every value is bound.
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in ids {
            query = query.bind(id.to_string());
        }
        for row in query.fetch_all(&self.pool).await? {
            let domain: DomainId = row.parsed("domain_id")?;
            by_domain
                .entry(domain)
                .or_default()
                .push(checked_from_row(&row)?);
        }
        Ok(by_domain)
    }

    /// Takes the check lease of each of `ids` whose previous lease has run out, until `until`;
    /// returns the ones taken. One statement, so a sweep pays one commit for its whole batch.
    pub async fn lease_domain_checks(
        &self,
        ids: &[DomainId],
        owner: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<Vec<DomainId>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let list = placeholders(4, ids.len());
        let take = format!(
            "UPDATE email_domains SET check_lease_owner = $1, check_lease_until = $2 \
             WHERE check_lease_until < $3 AND id IN ({list})"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(take))
            .bind(owner)
            .bind(millis(until))
            .bind(millis(now));
        for id in ids {
            query = query.bind(id.to_string());
        }
        query.execute(&self.pool).await?;
        let taken = format!(
            "SELECT id FROM email_domains WHERE check_lease_owner = $1 AND check_lease_until = $2 \
             AND id IN ({})",
            placeholders(3, ids.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(taken))
            .bind(owner)
            .bind(millis(until));
        for id in ids {
            query = query.bind(id.to_string());
        }
        query
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| row.parsed("id"))
            .collect()
    }

    /// Writes checked records and the activities of the status changes they made, and
    /// releases `owner`'s leases on those domains, all in one transaction.
    pub async fn save_checks(
        &self,
        checked: &[(DomainId, Vec<CheckedRecord>)],
        activities: &[Activity],
        owner: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for (id, records) in checked {
            for r in records {
                sqlx::query(
                    "UPDATE dns_records SET status = $1, reason = $2, message = $3, observed = $4, \
                     suggested = $5, lookups = $6, last_checked_at = $7, next_check_at = $8, \
                     failing_since = $9 \
                     WHERE domain_id = $10 AND record = $11 AND region = $12 AND position = $13",
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
                .bind(id.to_string())
                .bind(r.record.kind.as_str())
                .bind(r.record.region.as_deref().unwrap_or(""))
                .bind(i64::from(r.record.position))
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query(
                "UPDATE email_domains SET check_lease_until = 0, check_lease_owner = NULL \
                 WHERE id = $1 AND check_lease_owner = $2",
            )
            .bind(id.to_string())
            .bind(owner)
            .execute(&mut *tx)
            .await?;
        }
        insert_activities(&mut tx, activities).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Domains with a record due for a check and no running check, oldest due first.
    pub async fn due_domains(
        &self,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<DomainId>, StoreError> {
        let rows = sqlx::query(
            "SELECT d.id AS id, MIN(r.next_check_at) AS due \
             FROM dns_records r JOIN email_domains d ON d.id = r.domain_id \
             WHERE r.next_check_at <= $1 AND d.check_lease_until < $1 \
             GROUP BY d.id ORDER BY due LIMIT $2",
        )
        .bind(millis(now))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|row| row.parsed("id")).collect()
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
