//! Customer mail (`POST …/messages`): queued under the environment row's lock, so the
//! idempotency keys hold across concurrent requests and replicas. The per-minute limit is the
//! environment's rate window (`rate_windows`), taken in the same transaction: a message refused
//! or rolled back takes nothing, and the count does not depend on outbox rows that retention
//! may already have deleted.

use time::OffsetDateTime;

use super::{
    RateLimit, RateScope, RateTake, RowExt, Store, StoreError, Tx, lock_environment, millis,
    outbox::insert_outbox, rate_windows::take_rate, suppressions::insert_recipients,
};
use crate::{
    domain::EnvironmentId,
    mail::{ComposedMessage, MessageId, Recipient},
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
    /// The key names a request of the last 24 h (one that was queued since it was looked up):
    /// nothing new is queued; `Store::idempotent_message` says which.
    KeyTaken,
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
    ) -> Result<Option<(String, MessageId)>, StoreError> {
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

    /// Queues `mail`, with its `recipients`, unless its key names a request of the 24 h before
    /// `now` or the environment is over `per_minute`. The key, the count and the rows are one
    /// transaction under the environment row's lock, so of two requests with one key exactly
    /// one is queued.
    pub async fn queue_message(
        &self,
        mail: &ComposedMessage,
        recipients: &[Recipient],
        environment_id: EnvironmentId,
        idempotency: Option<Idempotency<'_>>,
        per_minute: u32,
        now: OffsetDateTime,
    ) -> Result<QueueOutcome, StoreError> {
        let environment = environment_id.to_string();
        let mut tx = self.pool.begin().await?;
        if !lock_environment(&mut tx, environment_id).await? {
            return Ok(QueueOutcome::EnvironmentNotFound);
        }
        if let Some(idempotency) = idempotency
            && !claim_key(&mut tx, &environment, idempotency, mail.id, now).await?
        {
            return Ok(QueueOutcome::KeyTaken);
        }
        let rate = RateLimit::per_minute(per_minute);
        if let RateTake::Wait { wait_ms } =
            take_rate(&mut tx, RateScope::Messages, &environment, rate, now).await?
        {
            return Ok(QueueOutcome::RateLimited { wait_ms });
        }
        insert_outbox(&mut tx, mail, &self.seal_mail(mail.id, &mail.message)?, now).await?;
        insert_recipients(&mut tx, mail.id, recipients).await?;
        tx.commit().await?;
        Ok(QueueOutcome::Queued)
    }
}

/// Makes the key name `message`, inside the queueing transaction: false when it names a request
/// of the 24 h before `now` already. A key older than that is taken over, so it can name a new
/// request; the condition is the complement of `idempotent_message`'s, so with one `now` a key
/// is either free here or found there.
async fn claim_key(
    tx: &mut Tx<'_>,
    environment: &str,
    idempotency: Idempotency<'_>,
    message: MessageId,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let now_ms = millis(now);
    let claimed = sqlx::query(
        "INSERT INTO message_requests (environment_id, idempotency_key, request_hash, \
         message_id, created_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (environment_id, idempotency_key) DO UPDATE SET \
         request_hash = excluded.request_hash, message_id = excluded.message_id, \
         created_at = excluded.created_at WHERE message_requests.created_at <= $6",
    )
    .bind(environment)
    .bind(idempotency.key)
    .bind(idempotency.request_hash)
    .bind(message.to_string())
    .bind(now_ms)
    .bind(now_ms - IDEMPOTENCY_WINDOW_MS)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(claimed == 1)
}
