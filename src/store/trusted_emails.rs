//! Trusted email addresses. Creates lock the domain row so the per-domain limit holds under
//! concurrency; a code's mail is queued in the same transaction as the code.

use sqlx::{Row, any::AnyRow};
use time::OffsetDateTime;

use super::{
    RowExt, Store, StoreError, Throttle, Tx, insert_activities, insert_activity, millis,
    outbox::insert_outbox,
};
use crate::{
    domain::{Activity, DomainId, EmailAddress, PendingCode, TrustedEmail, TrustedEmailId},
    mail::ComposedMail,
};

macro_rules! trusted_email_columns {
    () => {
        "id, environment_id, domain_id, email_address, status, code_hash, code_sent_at, \
         code_expires_at, failed_attempts, created_at, updated_at"
    };
}

#[derive(Debug, thiserror::Error)]
pub enum CreateTrustedEmailError {
    #[error("the domain does not exist")]
    DomainNotFound,
    #[error("the address already exists")]
    Exists(Box<TrustedEmail>),
    #[error("the domain already has {maximum} trusted addresses")]
    LimitReached { maximum: u32 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for CreateTrustedEmailError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(e.into())
    }
}

/// A code to store with its mail, and the activities that go with them.
pub struct CodeDelivery<'a> {
    pub code: &'a PendingCode,
    pub mail: &'a ComposedMail,
}

impl Store {
    pub async fn create_trusted_email(
        &self,
        email: &TrustedEmail,
        delivery: Option<CodeDelivery<'_>>,
        maximum: u32,
        activities: &[Activity],
    ) -> Result<(), CreateTrustedEmailError> {
        let domain_id = email.domain_id.to_string();
        let mut tx = self.pool.begin().await?;
        let locked = sqlx::query("UPDATE email_domains SET updated_at = updated_at WHERE id = $1")
            .bind(&domain_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if locked == 0 {
            return Err(CreateTrustedEmailError::DomainNotFound);
        }
        let existing = sqlx::query(concat!(
            "SELECT ",
            trusted_email_columns!(),
            " FROM trusted_emails WHERE domain_id = $1 AND address_key = $2"
        ))
        .bind(&domain_id)
        .bind(email.address.key())
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = existing {
            let (existing, _) = trusted_email_from_row(&row)?;
            return Err(CreateTrustedEmailError::Exists(Box::new(existing)));
        }
        let count = sqlx::query("SELECT COUNT(*) AS n FROM trusted_emails WHERE domain_id = $1")
            .bind(&domain_id)
            .fetch_one(&mut *tx)
            .await?
            .int("n")?;
        if count >= i64::from(maximum) {
            return Err(CreateTrustedEmailError::LimitReached { maximum });
        }
        let code = delivery.as_ref().map(|d| d.code);
        sqlx::query(
            "INSERT INTO trusted_emails (id, environment_id, domain_id, email_address, address_key, \
             status, code_hash, code_sent_at, code_expires_at, failed_attempts, created_at, \
             updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, $10, $10)",
        )
        .bind(email.id.to_string())
        .bind(email.environment_id.to_string())
        .bind(&domain_id)
        .bind(email.address.to_string())
        .bind(email.address.key())
        .bind(email.status.as_str())
        .bind(code.map(|c| c.hash.clone()))
        .bind(code.map(|c| millis(c.sent_at)))
        .bind(code.map(|c| millis(c.expires_at)))
        .bind(millis(email.created_at))
        .execute(&mut *tx)
        .await?;
        if let Some(delivery) = &delivery {
            self.queue_code_mail(&mut tx, delivery).await?;
        }
        insert_activities(&mut tx, activities).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn list_trusted_emails(
        &self,
        domain_id: DomainId,
    ) -> Result<Vec<TrustedEmail>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            trusted_email_columns!(),
            " FROM trusted_emails WHERE domain_id = $1 ORDER BY created_at, id"
        ))
        .bind(domain_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| trusted_email_from_row(row).map(|(email, _)| email))
            .collect()
    }

    pub async fn get_trusted_email(
        &self,
        domain_id: DomainId,
        id: TrustedEmailId,
    ) -> Result<Option<(TrustedEmail, Option<PendingCode>)>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            trusted_email_columns!(),
            " FROM trusted_emails WHERE id = $1 AND domain_id = $2"
        ))
        .bind(id.to_string())
        .bind(domain_id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(trusted_email_from_row).transpose()
    }

    pub async fn delete_trusted_email(
        &self,
        domain_id: DomainId,
        id: TrustedEmailId,
        activity: &Activity,
    ) -> Result<bool, StoreError> {
        let delete = sqlx::query("DELETE FROM trusted_emails WHERE id = $1 AND domain_id = $2")
            .bind(id.to_string())
            .bind(domain_id.to_string());
        self.delete_recorded(delete, activity).await
    }

    /// Replaces the code (and resets its tries) unless one was sent less than `interval_ms`
    /// ago.
    pub async fn replace_code(
        &self,
        id: TrustedEmailId,
        delivery: CodeDelivery<'_>,
        interval_ms: i64,
        activity: &Activity,
    ) -> Result<Throttle, StoreError> {
        let now = millis(delivery.code.sent_at);
        let mut tx = self.pool.begin().await?;
        let replaced = sqlx::query(
            "UPDATE trusted_emails SET code_hash = $1, code_sent_at = $2, code_expires_at = $3, \
             failed_attempts = 0, updated_at = $2 WHERE id = $4 AND status = 'VERIFICATION_REQUIRED' \
             AND (code_sent_at IS NULL OR code_sent_at <= $5)",
        )
        .bind(&delivery.code.hash)
        .bind(now)
        .bind(millis(delivery.code.expires_at))
        .bind(id.to_string())
        .bind(now - interval_ms)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if replaced == 0 {
            let last = sqlx::query("SELECT code_sent_at FROM trusted_emails WHERE id = $1")
                .bind(id.to_string())
                .fetch_optional(&mut *tx)
                .await?
                .and_then(|row| row.try_get::<Option<i64>, _>("code_sent_at").ok().flatten())
                .unwrap_or(now);
            return Ok(Throttle::TooSoon {
                wait_ms: (last + interval_ms - now).max(1),
            });
        }
        self.queue_code_mail(&mut tx, &delivery).await?;
        insert_activity(&mut tx, activity).await?;
        tx.commit().await?;
        Ok(Throttle::Done)
    }

    /// Spends one of the code's tries; false when none are left (the code is locked).
    pub async fn spend_code_attempt(
        &self,
        id: TrustedEmailId,
        maximum: u32,
    ) -> Result<bool, StoreError> {
        let spent = sqlx::query(
            "UPDATE trusted_emails SET failed_attempts = failed_attempts + 1 \
             WHERE id = $1 AND failed_attempts < $2",
        )
        .bind(id.to_string())
        .bind(i64::from(maximum))
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(spent == 1)
    }

    /// Marks the address ACTIVE and forgets its code; false if it was not waiting.
    pub async fn activate_trusted_email(
        &self,
        id: TrustedEmailId,
        now: OffsetDateTime,
        activity: &Activity,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let activated = sqlx::query(
            "UPDATE trusted_emails SET status = 'ACTIVE', code_hash = NULL, failed_attempts = 0, \
             updated_at = $1 WHERE id = $2 AND status = 'VERIFICATION_REQUIRED'",
        )
        .bind(millis(now))
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if activated == 1 {
            insert_activity(&mut tx, activity).await?;
        }
        tx.commit().await?;
        Ok(activated == 1)
    }
}

impl Store {
    /// Queues a code's mail, sealed, in the transaction that stores the code.
    async fn queue_code_mail(
        &self,
        tx: &mut Tx<'_>,
        delivery: &CodeDelivery<'_>,
    ) -> Result<(), StoreError> {
        let sealed = self.seal_mail(&delivery.mail.message)?;
        insert_outbox(tx, delivery.mail, &sealed, delivery.code.sent_at).await
    }
}

fn trusted_email_from_row(row: &AnyRow) -> Result<(TrustedEmail, Option<PendingCode>), StoreError> {
    let email = TrustedEmail {
        id: row.parsed("id")?,
        environment_id: row.parsed("environment_id")?,
        domain_id: row.parsed("domain_id")?,
        address: EmailAddress::from_trusted(&row.text("email_address")?),
        status: row.parsed("status")?,
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
    };
    let code = match row.try_get::<Option<String>, _>("code_hash")? {
        Some(hash) => Some(PendingCode {
            hash,
            sent_at: row
                .optional_time("code_sent_at")?
                .unwrap_or(email.created_at),
            expires_at: row
                .optional_time("code_expires_at")?
                .unwrap_or(email.created_at),
            failed_attempts: u32::try_from(row.int("failed_attempts")?).unwrap_or(u32::MAX),
        }),
        None => None,
    };
    Ok((email, code))
}
