//! Customer mail (`POST …/messages`): queued under the environment row's lock, so the
//! per-minute limit and the idempotency keys hold across concurrent requests and replicas.

use sqlx::Row;
use time::OffsetDateTime;

use super::{RowExt, Store, StoreError, Tx, lock_environment, millis, outbox::insert_outbox};
use crate::{
    domain::EnvironmentId,
    mail::{ComposedMail, MailRoute, OutboxId},
};

/// How long an Idempotency-Key names its first request.
pub const IDEMPOTENCY_WINDOW_MS: i64 = 24 * 60 * 60 * 1000;
/// The window `limits.messages_per_minute` counts in.
const RATE_WINDOW_MS: i64 = 60_000;

/// An Idempotency-Key and the hash of the request it came with.
#[derive(Debug, Clone, Copy)]
pub struct Idempotency<'a> {
    pub key: &'a str,
    pub request_hash: &'a str,
}

/// What queueing a customer message did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum QueueOutcome {
    Queued,
    /// The key was used within 24 h for the same request: that request's message; nothing new
    /// is queued.
    Repeat(OutboxId),
    /// The key was used within 24 h for a different request.
    KeyReused,
    /// The environment queued its `per_minute` in the last minute; one more may go in `wait_ms`.
    RateLimited {
        wait_ms: i64,
    },
    EnvironmentNotFound,
}

impl Store {
    /// The message an Idempotency-Key named within 24 h of `now`, with its request's hash.
    pub async fn idempotent_message(
        &self,
        environment_id: EnvironmentId,
        key: &str,
        now: OffsetDateTime,
    ) -> Result<Option<(String, OutboxId)>, StoreError> {
        let row = sqlx::query(
            "SELECT request_hash, message_id FROM message_requests \
             WHERE environment_id = $1 AND idempotency_key = $2 AND created_at > $3",
        )
        .bind(environment_id.to_string())
        .bind(key)
        .bind(millis(now) - IDEMPOTENCY_WINDOW_MS)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| Ok((row.text("request_hash")?, row.parsed("message_id")?)))
            .transpose()
    }

    /// Queues `mail` (sealed as `stored_message`) unless its key says it was queued already or
    /// the environment is over `per_minute`. The key, the count and the row are one transaction
    /// under the environment row's lock.
    pub async fn queue_message(
        &self,
        mail: &ComposedMail,
        environment_id: EnvironmentId,
        idempotency: Option<Idempotency<'_>>,
        per_minute: u32,
        now: OffsetDateTime,
    ) -> Result<QueueOutcome, StoreError> {
        let environment = environment_id.to_string();
        let now_ms = millis(now);
        let mut tx = self.pool.begin().await?;
        if !lock_environment(&mut tx, environment_id).await? {
            return Ok(QueueOutcome::EnvironmentNotFound);
        }
        if let Some(idempotency) = idempotency
            && let Some(outcome) = repeat(&mut tx, &environment, idempotency, now_ms).await?
        {
            return Ok(outcome);
        }
        let recent = sqlx::query(
            "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM outbox \
             WHERE environment_id = $1 AND route <> $2 AND created_at > $3",
        )
        .bind(&environment)
        .bind(MailRoute::System.to_string())
        .bind(now_ms - RATE_WINDOW_MS)
        .fetch_one(&mut *tx)
        .await?;
        if recent.int("n")? >= i64::from(per_minute) {
            let oldest = recent
                .try_get::<Option<i64>, _>("oldest")?
                .unwrap_or(now_ms);
            // A concurrent sender's row may carry a time a little after our `now`; the wait is
            // never longer than the window.
            return Ok(QueueOutcome::RateLimited {
                wait_ms: (oldest + RATE_WINDOW_MS - now_ms).clamp(1, RATE_WINDOW_MS),
            });
        }
        insert_outbox(&mut tx, mail, &self.seal_mail(mail.id, &mail.message)?, now).await?;
        if let Some(idempotency) = idempotency {
            sqlx::query(
                "INSERT INTO message_requests (environment_id, idempotency_key, request_hash, \
                 message_id, created_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&environment)
            .bind(idempotency.key)
            .bind(idempotency.request_hash)
            .bind(mail.id.to_string())
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(QueueOutcome::Queued)
    }
}

/// What a key already used says, inside the queueing transaction; a key older than the
/// window is forgotten so it can name a new request.
async fn repeat(
    tx: &mut Tx<'_>,
    environment: &str,
    idempotency: Idempotency<'_>,
    now_ms: i64,
) -> Result<Option<QueueOutcome>, StoreError> {
    let row = sqlx::query(
        "SELECT request_hash, message_id, created_at FROM message_requests \
         WHERE environment_id = $1 AND idempotency_key = $2",
    )
    .bind(environment)
    .bind(idempotency.key)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    if row.int("created_at")? > now_ms - IDEMPOTENCY_WINDOW_MS {
        return Ok(Some(
            if row.text("request_hash")? == idempotency.request_hash {
                QueueOutcome::Repeat(row.parsed("message_id")?)
            } else {
                QueueOutcome::KeyReused
            },
        ));
    }
    sqlx::query("DELETE FROM message_requests WHERE environment_id = $1 AND idempotency_key = $2")
        .bind(environment)
        .bind(idempotency.key)
        .execute(&mut **tx)
        .await?;
    Ok(None)
}
