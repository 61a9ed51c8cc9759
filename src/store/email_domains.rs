use sqlx::{Row, any::AnyRow};

use super::{
    Child, FromRow, RowExt, SealedDkimKey, Store, StoreError, changed, commit_recorded, count,
    dkim::insert_dkim_keys, millis,
};
use crate::domain::{Activity, DnsRecord, DomainId, DomainName, EmailDomain, EnvironmentId};

macro_rules! domain_columns {
    () => {
        "id, environment_id, domain_name, written_name, mail_from_domain, created_at, updated_at"
    };
}

#[derive(Debug, thiserror::Error)]
pub enum CreateDomainError {
    #[error("the environment does not exist")]
    EnvironmentNotFound,
    #[error("the domain already exists in the environment")]
    Duplicate,
    #[error("the environment already has {maximum} domains")]
    LimitReached { maximum: u32 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Store {
    /// Inserts a domain with its records, unless its name is taken or the environment is full.
    /// Concurrent creates in one environment are serialised by the environment row.
    pub async fn create_domain(
        &self,
        domain: &EmailDomain,
        records: &[DnsRecord],
        keys: &[SealedDkimKey],
        first_check_at: time::OffsetDateTime,
        maximum: u32,
        activity: &Activity,
    ) -> Result<(), CreateDomainError> {
        let environment_id = domain.environment_id.to_string();
        let mut tx = self
            .begin_locked(
                domain.environment_id,
                CreateDomainError::EnvironmentNotFound,
            )
            .await?;
        let query = sqlx::query(
            "SELECT COUNT(*) AS n FROM email_domains WHERE environment_id = $1 AND domain_name = $2",
        )
        .bind(&environment_id)
        .bind(domain.name.as_str());
        let taken = count(&mut tx, query).await?;
        if taken > 0 {
            return Err(CreateDomainError::Duplicate);
        }
        let query =
            sqlx::query("SELECT COUNT(*) AS n FROM email_domains WHERE environment_id = $1")
                .bind(&environment_id);
        let count = count(&mut tx, query).await?;
        if count >= i64::from(maximum) {
            return Err(CreateDomainError::LimitReached { maximum });
        }
        sqlx::query(
            "INSERT INTO email_domains (id, environment_id, domain_name, written_name, created_at, \
             updated_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(domain.id.to_string())
        .bind(&environment_id)
        .bind(domain.name.as_str())
        .bind(&domain.written_name)
        .bind(millis(domain.created_at))
        .bind(millis(domain.updated_at))
        .execute(&mut *tx)
        .await
        .map_err(|e| match e {
            sqlx::Error::Database(ref db) if db.is_unique_violation() => {
                CreateDomainError::Duplicate
            }
            other => other.into(),
        })?;
        insert_records(
            &mut tx,
            domain.id,
            records,
            domain.created_at,
            first_check_at,
        )
        .await?;
        insert_dkim_keys(&mut tx, keys, false).await?;
        commit_recorded(tx, activity).await?;
        Ok(())
    }

    pub async fn list_domains(
        &self,
        environment_id: EnvironmentId,
    ) -> Result<Vec<EmailDomain>, StoreError> {
        self.list(environment_id).await
    }

    /// Several domains by id, whatever their environment (the background checks).
    pub async fn domains_by_id(&self, ids: &[DomainId]) -> Result<Vec<EmailDomain>, StoreError> {
        let rows = self
            .fetch_for_ids(
                concat!(
                    "SELECT ",
                    domain_columns!(),
                    " FROM email_domains WHERE id IN (#IDS)"
                ),
                ids,
            )
            .await?;
        rows.iter().map(EmailDomain::from_row).collect()
    }

    /// Deletes the domain and its records; false if it is not in the environment.
    pub async fn delete_domain(
        &self,
        environment_id: EnvironmentId,
        id: DomainId,
        activity: &Activity,
    ) -> Result<bool, StoreError> {
        let delete = sqlx::query("DELETE FROM email_domains WHERE id = $1 AND environment_id = $2")
            .bind(id.to_string())
            .bind(environment_id.to_string());
        self.write_recorded(delete, activity).await
    }
}

impl Store {
    /// Sets (or with `None`, removes) the MAIL FROM domain: its MX record, and the SPF record
    /// that moves to it (or back to the domain), both checked afresh.
    pub async fn set_mail_from(
        &self,
        id: DomainId,
        mail_from: Option<&DomainName>,
        records: &[DnsRecord],
        now: time::OffsetDateTime,
        first_check_at: time::OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let write = sqlx::query(
            "UPDATE email_domains SET mail_from_domain = $1, updated_at = $2 WHERE id = $3",
        )
        .bind(mail_from.map(|m| m.to_string()))
        .bind(millis(now))
        .bind(id.to_string());
        if !changed(&mut tx, write).await? {
            return Ok(false);
        }
        sqlx::query(
            "DELETE FROM dns_records WHERE domain_id = $1 AND record IN ('MAIL_FROM', 'SPF')",
        )
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
        insert_records(&mut tx, id, records, now, first_check_at).await?;
        tx.commit().await?;
        Ok(true)
    }
}

async fn insert_records(
    tx: &mut super::Tx<'_>,
    id: DomainId,
    records: &[DnsRecord],
    created_at: time::OffsetDateTime,
    first_check_at: time::OffsetDateTime,
) -> Result<(), StoreError> {
    for record in records {
        sqlx::query(
            "INSERT INTO dns_records (domain_id, record, region, position, record_key, \
             record_type, record_value, status, created_at, next_check_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(id.to_string())
        .bind(record.kind.as_str())
        .bind(record.region.as_deref().unwrap_or(""))
        .bind(i64::from(record.position))
        .bind(&record.key)
        .bind(record.record_type)
        .bind(&record.value)
        .bind(record.status.as_str())
        .bind(millis(created_at))
        .bind(millis(first_check_at))
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

impl FromRow for EmailDomain {
    const SELECT: &'static str = concat!("SELECT ", domain_columns!(), " FROM email_domains");

    fn from_row(row: &AnyRow) -> Result<Self, StoreError> {
        let name = row.text("domain_name")?;
        Ok(EmailDomain {
            id: row.parsed("id")?,
            environment_id: row.parsed("environment_id")?,
            // Rows from before names were kept as written have none: they were answered canonical.
            written_name: row
                .try_get::<Option<String>, _>("written_name")?
                .unwrap_or_else(|| name.clone()),
            name: DomainName::from_trusted(name),
            mail_from: row
                .try_get::<Option<String>, _>("mail_from_domain")?
                .map(DomainName::from_trusted),
            created_at: row.time("created_at")?,
            updated_at: row.time("updated_at")?,
        })
    }
}

impl Child for EmailDomain {
    type Parent = EnvironmentId;
    type Id = DomainId;
}
