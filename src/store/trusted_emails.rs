//! Trusted email addresses. Creates lock the domain row so the per-domain limit holds under
//! concurrency; a code's mail is queued in the same transaction as the code, after the
//! environment row is locked so that the code-mail limits hold too.

use sqlx::{Row, any::AnyRow};
use time::OffsetDateTime;

use super::{
    Child, FromRow, RowExt, Store, StoreError, Throttle, Tx, changed, commit_recorded, count,
    insert_activities, insert_activity, lock_environment, millis, outbox::insert_outbox,
};
use crate::{
    domain::{Activity, DomainId, EmailAddress, PendingCode, TrustedEmail, TrustedEmailId},
    mail::{ComposedMessage, MailRoute, MessageStatus},
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
    #[error("a code mail may go in {wait_ms} ms")]
    CodeMailTooSoon { wait_ms: i64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A code to store with its mail, and the activities that go with them.
pub struct CodeDelivery<'a> {
    pub code: &'a PendingCode,
    pub mail: &'a ComposedMessage,
}

/// How often code mail may go: to one address (whatever became of the trusted email it was
/// for: a delete and re-create does not reset it), and from one environment in all.
#[derive(Debug, Clone, Copy)]
pub struct CodeMailLimits {
    pub per_address_interval_ms: i64,
    pub per_environment_per_hour: u32,
}

const HOUR_MS: i64 = 3_600_000;

impl Store {
    pub async fn create_trusted_email(
        &self,
        email: &TrustedEmail,
        delivery: Option<CodeDelivery<'_>>,
        limits: CodeMailLimits,
        maximum: u32,
        activities: &[Activity],
    ) -> Result<(), CreateTrustedEmailError> {
        let domain_id = email.domain_id.to_string();
        let mut tx = self.pool.begin().await?;
        let lock = sqlx::query("UPDATE email_domains SET updated_at = updated_at WHERE id = $1")
            .bind(&domain_id);
        if !changed(&mut tx, lock).await? {
            return Err(CreateTrustedEmailError::DomainNotFound);
        }
        let existing = TrustedEmail::select("WHERE domain_id = $1 AND address_key = $2")
            .bind(&domain_id)
            .bind(email.address.key())
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(row) = existing {
            let (existing, _) = trusted_email_from_row(&row)?;
            return Err(CreateTrustedEmailError::Exists(Box::new(existing)));
        }
        let query = sqlx::query("SELECT COUNT(*) AS n FROM trusted_emails WHERE domain_id = $1")
            .bind(&domain_id);
        let count = count(&mut tx, query).await?;
        if count >= i64::from(maximum) {
            return Err(CreateTrustedEmailError::LimitReached { maximum });
        }
        if let Some(delivery) = &delivery
            && let Throttle::TooSoon { wait_ms } =
                code_mail_throttle(&mut tx, email, delivery, limits).await?
        {
            return Err(CreateTrustedEmailError::CodeMailTooSoon { wait_ms });
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

    /// The address with its pending code, if it belongs to the domain.
    pub async fn get_trusted_email(
        &self,
        domain_id: DomainId,
        id: TrustedEmailId,
    ) -> Result<Option<(TrustedEmail, Option<PendingCode>)>, StoreError> {
        let row = TrustedEmail::select("WHERE id = $1 AND domain_id = $2")
            .bind(id.to_string())
            .bind(domain_id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(trusted_email_from_row).transpose()
    }

    /// Deletes the address; its code mail still waiting in the outbox is cancelled with it.
    pub async fn delete_trusted_email(
        &self,
        email: &TrustedEmail,
        activity: &Activity,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let write = sqlx::query("DELETE FROM trusted_emails WHERE id = $1 AND domain_id = $2")
            .bind(email.id.to_string())
            .bind(email.domain_id.to_string());
        if !changed(&mut tx, write).await? {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE outbox SET status = $1, last_error = $2, lease_owner = NULL \
             WHERE environment_id = $3 AND route = $4 AND status = $5 \
             AND LOWER(envelope_to) = LOWER($6)",
        )
        .bind(MessageStatus::Failed.as_str())
        .bind("not sent: the trusted email was deleted")
        .bind(email.environment_id.to_string())
        .bind(MailRoute::System.to_string())
        .bind(MessageStatus::Queued.as_str())
        .bind(email.address.to_string())
        .execute(&mut *tx)
        .await?;
        commit_recorded(tx, activity).await?;
        Ok(true)
    }

    /// Replaces the code (and resets its tries) unless one was sent less than `interval_ms`
    /// ago.
    pub async fn replace_code(
        &self,
        email: &TrustedEmail,
        delivery: CodeDelivery<'_>,
        limits: CodeMailLimits,
        activity: &Activity,
    ) -> Result<Throttle, StoreError> {
        let (id, interval_ms) = (email.id, limits.per_address_interval_ms);
        let now = millis(delivery.code.sent_at);
        let mut tx = self.pool.begin().await?;
        if let throttled @ Throttle::TooSoon { .. } =
            code_mail_throttle(&mut tx, email, &delivery, limits).await?
        {
            return Ok(throttled);
        }
        let write = sqlx::query(
            "UPDATE trusted_emails SET code_hash = $1, code_sent_at = $2, code_expires_at = $3, \
             failed_attempts = 0, updated_at = $2 WHERE id = $4 AND status = 'VERIFICATION_REQUIRED' \
             AND (code_sent_at IS NULL OR code_sent_at <= $5)",
        )
        .bind(&delivery.code.hash)
        .bind(now)
        .bind(millis(delivery.code.expires_at))
        .bind(id.to_string())
        .bind(now - interval_ms);
        if !changed(&mut tx, write).await? {
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
        commit_recorded(tx, activity).await?;
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
        let sealed = self.seal_mail(delivery.mail.id, &delivery.mail.message)?;
        insert_outbox(tx, delivery.mail, &sealed, delivery.code.sent_at).await
    }
}

/// Whether one more code mail may go now, under `limits`; locks the environment row first, so
/// that concurrent creates and resends count each other.
async fn code_mail_throttle(
    tx: &mut Tx<'_>,
    email: &TrustedEmail,
    delivery: &CodeDelivery<'_>,
    limits: CodeMailLimits,
) -> Result<Throttle, StoreError> {
    let now = millis(delivery.code.sent_at);
    let environment = email.environment_id.to_string();
    let system = MailRoute::System.to_string();
    lock_environment(tx, email.environment_id).await?;
    let last_to_address: Option<i64> = sqlx::query(
        "SELECT MAX(created_at) AS last FROM outbox WHERE environment_id = $1 AND route = $2 \
         AND LOWER(envelope_to) = LOWER($3)",
    )
    .bind(&environment)
    .bind(&system)
    .bind(email.address.to_string())
    .fetch_one(&mut **tx)
    .await?
    .try_get("last")?;
    if let Some(last) = last_to_address
        && last > now - limits.per_address_interval_ms
    {
        return Ok(Throttle::TooSoon {
            wait_ms: (last + limits.per_address_interval_ms - now).max(1),
        });
    }
    let recent = sqlx::query(
        "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM outbox \
         WHERE environment_id = $1 AND route = $2 AND created_at > $3",
    )
    .bind(&environment)
    .bind(&system)
    .bind(now - HOUR_MS)
    .fetch_one(&mut **tx)
    .await?;
    if recent.int("n")? >= i64::from(limits.per_environment_per_hour) {
        let oldest = recent.try_get::<Option<i64>, _>("oldest")?.unwrap_or(now);
        return Ok(Throttle::TooSoon {
            wait_ms: (oldest + HOUR_MS - now).clamp(1, HOUR_MS),
        });
    }
    Ok(Throttle::Done)
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

/// The address alone; `get_trusted_email` reads its code too.
impl FromRow for TrustedEmail {
    const SELECT: &'static str =
        concat!("SELECT ", trusted_email_columns!(), " FROM trusted_emails");

    fn from_row(row: &AnyRow) -> Result<Self, StoreError> {
        trusted_email_from_row(row).map(|(email, _code)| email)
    }
}

impl Child for TrustedEmail {
    type Parent = DomainId;
    type Id = TrustedEmailId;
}
