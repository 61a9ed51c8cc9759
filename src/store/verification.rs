//! Check state of DNS records, and the leases that keep two processes off one domain.

use sqlx::Row;

use super::{RowExt, Store, StoreError, insert_activity, millis};
use crate::domain::{Activity, CheckedRecord, DnsRecord, DomainId, EnvironmentId, RecordKind};
use time::OffsetDateTime;

impl Store {
    /// Every record of a domain with its check state (order as stored; callers sort).
    pub async fn checked_records(&self, id: DomainId) -> Result<Vec<CheckedRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT record, region, position, record_key, record_value, status, reason, message, \
             observed, suggested, lookups, created_at, last_checked_at, next_check_at, \
             failing_since FROM dns_records WHERE domain_id = $1",
        )
        .bind(id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let kind: RecordKind = row.parsed("record")?;
                let region = row.text("region")?;
                let corrupt =
                    |column: &'static str, e: &dyn std::fmt::Display| StoreError::Corrupt {
                        column,
                        reason: e.to_string(),
                    };
                Ok(CheckedRecord {
                    record: DnsRecord {
                        kind,
                        region: (!region.is_empty()).then_some(region),
                        position: u8::try_from(row.int("position")?)
                            .map_err(|e| corrupt("position", &e))?,
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
            })
            .collect()
    }

    /// Takes the domain's check lease until `until`, unless another holder's is still running.
    pub async fn lease_domain_check(
        &self,
        id: DomainId,
        owner: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let taken = sqlx::query(
            "UPDATE email_domains SET check_lease_owner = $1, check_lease_until = $2 \
             WHERE id = $3 AND check_lease_until < $4",
        )
        .bind(owner)
        .bind(millis(until))
        .bind(id.to_string())
        .bind(millis(now))
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(taken == 1)
    }

    pub async fn release_domain_check(&self, id: DomainId, owner: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE email_domains SET check_lease_until = 0, check_lease_owner = NULL \
             WHERE id = $1 AND check_lease_owner = $2",
        )
        .bind(id.to_string())
        .bind(owner)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Writes checked records and the activities of the status changes they made, together.
    pub async fn save_checks(
        &self,
        id: DomainId,
        records: &[CheckedRecord],
        activities: &[Activity],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
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
        for activity in activities {
            insert_activity(&mut tx, activity).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Domains with a record due for a check and no running check, oldest due first.
    pub async fn due_domains(
        &self,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<(EnvironmentId, DomainId)>, StoreError> {
        let rows = sqlx::query(
            "SELECT d.environment_id AS environment_id, d.id AS id, MIN(r.next_check_at) AS due \
             FROM dns_records r JOIN email_domains d ON d.id = r.domain_id \
             WHERE r.next_check_at <= $1 AND d.check_lease_until < $1 \
             GROUP BY d.environment_id, d.id ORDER BY due LIMIT $2",
        )
        .bind(millis(now))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| Ok((row.parsed("environment_id")?, row.parsed("id")?)))
            .collect()
    }

    /// Records a forced check at `now` unless one ran within `interval_ms`; otherwise how many
    /// milliseconds remain.
    pub async fn claim_forced_check(
        &self,
        id: DomainId,
        now: OffsetDateTime,
        interval_ms: i64,
    ) -> Result<Result<(), i64>, StoreError> {
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
            return Ok(Ok(()));
        }
        let last = sqlx::query("SELECT forced_check_at FROM email_domains WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .map(|row| row.int("forced_check_at"))
            .transpose()?
            .unwrap_or(now_ms);
        Ok(Err((last + interval_ms - now_ms).max(1)))
    }
}
