//! Customer mail (`POST …/messages`): queued under the environment row's lock, so the
//! idempotency keys hold across concurrent requests and replicas. The per-minute limit is the
//! environment's rate window (`rate_windows`), taken in the same transaction: a message refused
//! or rolled back takes nothing, and the count does not depend on outbox rows that retention
//! may already have deleted.

use time::OffsetDateTime;

use super::{
    RateLimit, RateScope, RateTake, RowExt, Store, StoreError, Tx, lock_environment, millis,
    outbox::insert_outbox, rate_windows::take_rate,
};
use crate::{
    domain::EnvironmentId,
    mail::{ComposedMail, OutboxId},
};

/// How long an Idempotency-Key names its first request.
pub const IDEMPOTENCY_WINDOW_MS: i64 = 24 * 60 * 60 * 1000;

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
    /// The environment queued its `per_minute` in the last minute (sliding); one more may go in
    /// `wait_ms`, at most two minutes.
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

    /// Queues `mail` unless its key says it was queued already or the environment is over
    /// `per_minute`. The key, the count and the row are one transaction under the environment
    /// row's lock.
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
        let rate = RateLimit::per_minute(per_minute);
        if let RateTake::Wait { wait_ms } =
            take_rate(&mut tx, RateScope::Messages, &environment, rate, now).await?
        {
            return Ok(QueueOutcome::RateLimited { wait_ms });
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
