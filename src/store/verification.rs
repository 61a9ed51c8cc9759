//! Check state of DNS records, and the leases that keep two processes off one domain.

use std::collections::{HashMap, HashSet};

use sqlx::{Row, any::AnyRow};
use time::OffsetDateTime;

use super::{RowExt, Store, StoreError, Throttle, Tx, insert_activities, millis};
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

/// Rows per multi-row statement. Small on purpose: sqlx binds each SQLite parameter by looking
/// its name up among all of the statement's (`sqlite3_bind_parameter_name`, a linear walk), so
/// a statement's binding costs the square of its parameters; a few rows each already saves
/// almost all the per-statement cost. Leases released per statement (2 parameters each):
const LEASES_PER_STATEMENT: usize = 32;
/// Records written per statement (17 parameters each).
const RECORDS_PER_STATEMENT: usize = 8;

/// A record's identity: its row, as it was when the check read it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct RecordId {
    domain: String,
    kind: String,
    region: String,
    position: i64,
}

impl RecordId {
    fn of(domain: DomainId, r: &CheckedRecord) -> Self {
        Self {
            domain: domain.to_string(),
            kind: r.record.kind.as_str().to_owned(),
            region: r.record.region.clone().unwrap_or_default(),
            position: i64::from(r.record.position),
        }
    }
}

/// `(CAST($from AS type), …), (…)`: `rows` rows of numbered placeholders, cast to the column
/// types so that PostgreSQL knows them inside `VALUES`.
fn values_rows(from: usize, rows: usize, types: &[&str]) -> String {
    (0..rows)
        .map(|row| {
            let first = from + row * types.len();
            let cells: Vec<String> = types
                .iter()
                .enumerate()
                .map(|(i, t)| format!("CAST(${} AS {t})", first + i))
                .collect();
            format!("({})", cells.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Releases each result's lease that its token still holds at `now`; returns those domains.
async fn release_held_leases(
    tx: &mut Tx<'_>,
    results: &[CheckResult],
    now: OffsetDateTime,
) -> Result<Vec<DomainId>, StoreError> {
    if results.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "UPDATE email_domains SET check_lease_until = 0, check_lease_owner = NULL, \
         check_lease_token = NULL FROM (VALUES {}) AS held \
         WHERE email_domains.id = held.column1 AND email_domains.check_lease_token = held.column2 \
         AND email_domains.check_lease_until > $1 RETURNING email_domains.id AS id",
        values_rows(2, results.len(), &["TEXT", "TEXT"])
    );
    // Only numbered placeholders are spliced in; every value is bound.
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(millis(now));
    for result in results {
        query = query.bind(result.domain.to_string()).bind(&result.token);
    }
    query
        .fetch_all(&mut **tx)
        .await?
        .iter()
        .map(|row| row.parsed("id"))
        .collect()
}

/// Writes checked records whose row is still the one the check read (same name, value and
/// creation time); returns the rows written.
async fn write_records(
    tx: &mut Tx<'_>,
    records: &[(DomainId, &CheckedRecord)],
) -> Result<Vec<RecordId>, StoreError> {
    if records.is_empty() {
        return Ok(Vec::new());
    }
    const TYPES: [&str; 17] = [
        "TEXT", "TEXT", "TEXT", "TEXT", "TEXT", "BIGINT", "BIGINT", "BIGINT", "BIGINT", "BIGINT",
        "TEXT", "TEXT", "TEXT", "BIGINT", "TEXT", "TEXT", "BIGINT",
    ];
    let sql = format!(
        "UPDATE dns_records SET status = v.column1, reason = v.column2, message = v.column3, \
         observed = v.column4, suggested = v.column5, lookups = v.column6, \
         last_checked_at = v.column7, next_check_at = v.column8, failing_since = v.column9, \
         error_streak = v.column10 FROM (VALUES {}) AS v \
         WHERE dns_records.domain_id = v.column11 AND dns_records.record = v.column12 \
         AND dns_records.region = v.column13 AND dns_records.position = v.column14 \
         AND dns_records.record_key = v.column15 AND dns_records.record_value = v.column16 \
         AND dns_records.created_at = v.column17 \
         RETURNING dns_records.domain_id AS domain_id, dns_records.record AS record, \
         dns_records.region AS region, dns_records.position AS position",
        values_rows(1, records.len(), &TYPES)
    );
    // Only numbered placeholders are spliced in; every value is bound.
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for (domain, r) in records {
        query = query
            .bind(r.record.status.as_str())
            .bind(r.reason.as_str())
            .bind(r.message.clone())
            .bind(serde_json::Value::from(r.observed.clone()).to_string())
            .bind(r.suggested.clone())
            .bind(r.lookups.map(i64::from))
            .bind(r.last_checked_at.map(millis))
            .bind(millis(r.next_check_at))
            .bind(r.failing_since.map(millis))
            .bind(i64::from(r.error_streak))
            .bind(domain.to_string())
            .bind(r.record.kind.as_str())
            .bind(r.record.region.clone().unwrap_or_default())
            .bind(i64::from(r.record.position))
            .bind(r.record.key.clone())
            .bind(r.record.value.clone())
            .bind(millis(r.created_at));
    }
    query
        .fetch_all(&mut **tx)
        .await?
        .iter()
        .map(|row| {
            Ok(RecordId {
                domain: row.text("domain_id")?,
                kind: row.text("record")?,
                region: row.text("region")?,
                position: row.int("position")?,
            })
        })
        .collect()
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
        self.fetch_by_domain(
            "SELECT domain_id, record, region, position, record_key, record_value, status, \
             reason, message, observed, suggested, lookups, created_at, last_checked_at, \
             next_check_at, failing_since, error_streak FROM dns_records \
             WHERE domain_id IN (#IDS)",
            ids,
            checked_from_row,
        )
        .await
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

    /// The rows of `sql` (as for `fetch_for_ids`), each read by `read`, by their `domain_id`
    /// in the order read.
    pub(super) async fn fetch_by_domain<T>(
        &self,
        sql: &str,
        ids: &[DomainId],
        read: impl Fn(&AnyRow) -> Result<T, StoreError>,
    ) -> Result<HashMap<DomainId, Vec<T>>, StoreError> {
        let mut by_domain: HashMap<DomainId, Vec<T>> = HashMap::new();
        for row in self.fetch_for_ids(sql, ids).await? {
            let domain: DomainId = row.parsed("domain_id")?;
            by_domain.entry(domain).or_default().push(read(&row)?);
        }
        Ok(by_domain)
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
    /// or was taken over, or whose domain is gone, writes nothing. Statements carry many rows
    /// each (`UPDATE … FROM (VALUES …)`), so a sweep's group costs a handful of them.
    pub async fn save_checks(
        &self,
        results: &[CheckResult],
        now: OffsetDateTime,
    ) -> Result<SavedChecks, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut held = HashSet::new();
        for chunk in results.chunks(LEASES_PER_STATEMENT) {
            held.extend(release_held_leases(&mut tx, chunk, now).await?);
        }
        let saved: Vec<&CheckResult> = results
            .iter()
            .filter(|r| held.contains(&r.domain))
            .collect();
        let records: Vec<(DomainId, &CheckedRecord)> = saved
            .iter()
            .flat_map(|r| r.records.iter().map(|record| (r.domain, record)))
            .collect();
        let mut written = HashSet::new();
        for chunk in records.chunks(RECORDS_PER_STATEMENT) {
            written.extend(write_records(&mut tx, chunk).await?);
        }
        let mut stale_records = 0;
        let mut activities = Vec::new();
        for result in &saved {
            let stale: Vec<(RecordKind, Option<&str>)> = result
                .records
                .iter()
                .filter(|r| !written.contains(&RecordId::of(result.domain, r)))
                .map(|r| (r.record.kind, r.record.region.as_deref()))
                .collect();
            stale_records += stale.len();
            activities.extend(
                result
                    .activities
                    .iter()
                    .filter(|a| !stale.contains(&(a.kind, a.region.as_deref())))
                    .map(|a| a.activity.clone()),
            );
        }
        insert_activities(&mut tx, &activities).await?;
        tx.commit().await?;
        Ok(SavedChecks {
            saved: saved.len(),
            discarded: results.len() - saved.len(),
            stale_records,
        })
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
