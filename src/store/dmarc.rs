//! DMARC aggregate reports kept per domain (feedback/dmarc.rs).

use sqlx::any::AnyRow;
use time::OffsetDateTime;

use super::{FromRow, RowExt, Store, StoreError, millis};
use crate::{
    domain::DomainId,
    feedback::dmarc::{DmarcReport, DmarcRow, DmarcSource},
};

macro_rules! report_columns {
    () => {
        "id, domain_id, environment_id, org_name, email, report_id, begin_at, end_at, \
         policy_domain, policy, messages, received_at"
    };
}

impl FromRow for DmarcReport {
    const SELECT: &'static str = concat!("SELECT ", report_columns!(), " FROM dmarc_reports");

    fn from_row(row: &AnyRow) -> Result<Self, StoreError> {
        Ok(DmarcReport {
            id: row.parsed("id")?,
            domain_id: row.parsed("domain_id")?,
            environment_id: row.parsed("environment_id")?,
            org_name: row.text("org_name")?,
            email: row.text("email")?,
            report_id: row.text("report_id")?,
            begin: row.time("begin_at")?,
            end: row.time("end_at")?,
            policy_domain: row.text("policy_domain")?,
            policy: row.text("policy")?,
            messages: row.int("messages")?,
            received_at: row.time("received_at")?,
        })
    }
}

impl Store {
    /// Keeps `report` with its rows, unless its reporter sent it before (same organization
    /// and report id): true when it is new.
    pub async fn keep_dmarc_report(
        &self,
        report: &DmarcReport,
        rows: &[DmarcRow],
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let insert = sqlx::query(concat!(
            "INSERT INTO dmarc_reports (",
            report_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
             ON CONFLICT (domain_id, org_name, report_id) DO NOTHING"
        ))
        .bind(report.id.to_string())
        .bind(report.domain_id.to_string())
        .bind(report.environment_id.to_string())
        .bind(report.org_name.clone())
        .bind(report.email.clone())
        .bind(report.report_id.clone())
        .bind(millis(report.begin))
        .bind(millis(report.end))
        .bind(report.policy_domain.clone())
        .bind(report.policy.clone())
        .bind(report.messages)
        .bind(millis(report.received_at));
        if !super::changed(&mut tx, insert).await? {
            return Ok(false);
        }
        for (position, row) in rows.iter().enumerate() {
            sqlx::query(
                "INSERT INTO dmarc_report_rows (report_id, position, source_ip, messages, \
                 header_from, dkim_aligned, spf_aligned, disposition) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(report.id.to_string())
            .bind(position as i64)
            .bind(row.source_ip.clone())
            .bind(row.messages)
            .bind(row.header_from.clone())
            .bind(i64::from(row.dkim_aligned))
            .bind(i64::from(row.spf_aligned))
            .bind(row.disposition.clone())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// One page of a domain's reports, the latest period first; with the count of all.
    pub async fn list_dmarc_reports(
        &self,
        domain: DomainId,
        page: (u32, u32),
    ) -> Result<(Vec<DmarcReport>, i64), StoreError> {
        let filters = [("domain_id", domain.to_string())];
        self.page("dmarc_reports", &filters, "begin_at DESC, id DESC", page)
            .await
    }

    /// Every source IP in the domain's reports whose period ends after `since`, the most
    /// messages first.
    pub async fn dmarc_sources(
        &self,
        domain: DomainId,
        since: OffsetDateTime,
    ) -> Result<Vec<DmarcSource>, StoreError> {
        let rows = sqlx::query(
            // PostgreSQL sums BIGINTs as NUMERIC: cast back, which SQLite reads the same.
            "SELECT r.source_ip, CAST(SUM(r.messages) AS BIGINT) AS messages, \
             CAST(SUM(r.messages * r.dkim_aligned) AS BIGINT) AS dkim_aligned, \
             CAST(SUM(r.messages * r.spf_aligned) AS BIGINT) AS spf_aligned, \
             CAST(SUM(CASE WHEN r.dkim_aligned + r.spf_aligned > 0 THEN r.messages ELSE 0 END) \
             AS BIGINT) AS dmarc_pass, COUNT(DISTINCT d.org_name) AS reporters \
             FROM dmarc_report_rows r JOIN dmarc_reports d ON d.id = r.report_id \
             WHERE d.domain_id = $1 AND d.end_at > $2 \
             GROUP BY r.source_ip ORDER BY messages DESC, r.source_ip",
        )
        .bind(domain.to_string())
        .bind(millis(since))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(DmarcSource {
                    source_ip: row.text("source_ip")?,
                    messages: row.int("messages")?,
                    dkim_aligned: row.int("dkim_aligned")?,
                    spf_aligned: row.int("spf_aligned")?,
                    dmarc_pass: row.int("dmarc_pass")?,
                    reporters: row.int("reporters")?,
                })
            })
            .collect()
    }
}
