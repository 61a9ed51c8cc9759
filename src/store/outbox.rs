//! The outbox: one row per message (`mail::StoredMessage`), delivered by `jobs::outbox`.
//!
//! It is a lease queue (`store/lease.rs`): replicas share it, one deliverer holds a message at a
//! time, and a deliverer whose lease ran out cannot overwrite the next one's result.
//!
//! A claim is fair across environments: it takes each environment's oldest due messages in
//! turn, at most `PER_ENVIRONMENT_PER_CLAIM` of each, so one backlog cannot fill a batch.

use std::time::Duration;

use sqlx::{Row, any::AnyRow};
use time::OffsetDateTime;

use super::{
    RowExt, Store, StoreError, Tx,
    lease::{Attempts, LeaseQueue, Value, attempts_from, cut},
    millis,
};
use crate::{
    mail::{ComposedMessage, MailRoute, MessageId, MessageStatus, StoredMessage},
    secrets::Binding,
};

/// Attempts before a message is given up (status FAILED).
pub const MAX_DELIVERY_ATTEMPTS: u32 = 10;
const FIRST_RETRY_DELAY: Duration = Duration::from_secs(30);
const LONGEST_RETRY_DELAY: Duration = Duration::from_secs(3600);
/// Relay replies and errors are kept for the operator, cut to this.
const MAX_ERROR_CHARS: usize = 2000;
/// The most messages of one environment a claim takes.
pub const PER_ENVIRONMENT_PER_CLAIM: u32 = 5;
/// Separates the recipients in `envelope_to` (an address never holds a line break).
const RECIPIENT_SEPARATOR: char = '\n';

/// How long to wait after the `failed_attempts`-th failure: 30 s, doubling, at most 1 h.
pub fn retry_delay(failed_attempts: u32) -> Duration {
    let doublings = failed_attempts.saturating_sub(1).min(16);
    (FIRST_RETRY_DELAY * 2u32.pow(doublings)).min(LONGEST_RETRY_DELAY)
}

macro_rules! outbox_columns {
    () => {
        "id, environment_id, route, envelope_from, envelope_to, subject, message, status, \
         attempts, next_attempt_at, lease_owner, leased_until, last_error, created_at, sent_at, \
         relay_reply, dkim_domain_id, return_path_domain"
    };
}

/// Queues `mail` inside the caller's transaction, so the write that causes a message (a new
/// trusted email, a resend) and the message commit or roll back together.
pub(crate) async fn insert_outbox(
    tx: &mut Tx<'_>,
    mail: &ComposedMessage,
    stored_message: &str,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    sqlx::query(concat!(
        "INSERT INTO outbox (",
        outbox_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, NULL, NULL, NULL, $9, NULL, NULL, $10, $11)"
    ))
    .bind(mail.id.to_string())
    .bind(mail.environment_id.map(|id| id.to_string()))
    .bind(mail.route.to_string())
    .bind(&mail.envelope_from)
    .bind(join_recipients(&mail.envelope_to))
    .bind(&mail.subject)
    .bind(stored_message)
    .bind(MessageStatus::Queued.as_str())
    .bind(millis(now))
    .bind(mail.dkim_domain_id.map(|id| id.to_string()))
    .bind(mail.return_path_domain.clone())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// Queues one message on its own.
    pub async fn enqueue_mail(&self, mail: &ComposedMessage) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        insert_outbox(
            &mut tx,
            mail,
            &self.seal_mail(mail.id, &mail.message)?,
            crate::domain::now(),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The newest `limit` messages, newest first.
    pub async fn list_outbox(&self, limit: u32) -> Result<Vec<StoredMessage>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            outbox_columns!(),
            " FROM outbox ORDER BY created_at DESC, id DESC LIMIT $1"
        ))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|row| self.open_row(row)).collect()
    }

    pub async fn get_outbox(&self, id: MessageId) -> Result<Option<StoredMessage>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            outbox_columns!(),
            " FROM outbox WHERE id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(|row| self.open_row(row)).transpose()
    }

    /// A customer message of the environment (never its system mail, such as codes).
    pub async fn get_message(
        &self,
        environment_id: crate::domain::EnvironmentId,
        id: MessageId,
    ) -> Result<Option<StoredMessage>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            outbox_columns!(),
            " FROM outbox WHERE id = $1 AND environment_id = $2 AND route <> $3"
        ))
        .bind(id.to_string())
        .bind(environment_id.to_string())
        .bind(MailRoute::System.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(|row| self.open_row(row)).transpose()
    }

    /// The routes that have messages due at `now`, leased or not.
    pub async fn due_mail_routes(&self, now: OffsetDateTime) -> Result<Vec<MailRoute>, StoreError> {
        let rows = sqlx::query(
            "SELECT DISTINCT route FROM outbox WHERE status = $1 AND next_attempt_at <= $2",
        )
        .bind(MessageStatus::Queued.as_str())
        .bind(millis(now))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|row| row.parsed("route")).collect()
    }

    /// Leases up to `limit` messages of `route` that are due at `now` to `owner` until
    /// `now + lease`: each environment's oldest due first, taken in turn, at most
    /// `PER_ENVIRONMENT_PER_CLAIM` per environment. A message is leased by one owner at a time.
    /// A claimed row that cannot be read is marked FAILED with the reason and left out.
    pub async fn claim_due_mail(
        &self,
        route: &MailRoute,
        owner: &str,
        now: OffsetDateTime,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let now_ms = millis(now);
        // ROW_NUMBER ranks each environment's due rows (SQLite ≥ 3.25 and PostgreSQL); ordering
        // by the rank first takes every environment's first message before anyone's second.
        let candidates = sqlx::query(
            "SELECT id FROM (SELECT id, next_attempt_at, ROW_NUMBER() OVER (\
             PARTITION BY COALESCE(environment_id, '') ORDER BY next_attempt_at, id) AS turn \
             FROM outbox WHERE route = $1 AND status = $2 AND next_attempt_at <= $3 \
             AND (leased_until IS NULL OR leased_until < $3)) due \
             WHERE turn <= $5 ORDER BY turn, next_attempt_at, id LIMIT $4",
        )
        .bind(route.to_string())
        .bind(MessageStatus::Queued.as_str())
        .bind(now_ms)
        .bind(i64::from(limit))
        .bind(i64::from(PER_ENVIRONMENT_PER_CLAIM))
        .fetch_all(&self.pool)
        .await?;
        let ids = candidates
            .iter()
            .map(|row| row.text("id"))
            .collect::<Result<Vec<_>, _>>()?;
        self.claim::<Outbox>(&ids, owner, now, lease).await
    }

    /// Records a delivery and the relay's reply. False when `owner` no longer holds the lease
    /// (nothing changes).
    pub async fn mark_mail_sent(
        &self,
        id: MessageId,
        owner: &str,
        reply: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        self.finish(
            &id.to_string(),
            owner,
            MessageStatus::Sent,
            Some(reply),
            None,
            now,
        )
        .await
    }

    /// Gives the message up at once (a permanent refusal): FAILED with `error`, after this one
    /// attempt. False when `owner` no longer holds the lease (nothing changes).
    pub async fn fail_mail(
        &self,
        id: MessageId,
        owner: &str,
        error: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        self.fail_row(&id.to_string(), owner, error, now).await
    }

    async fn fail_row(
        &self,
        id: &str,
        owner: &str,
        error: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        self.finish(id, owner, MessageStatus::Failed, None, Some(error), now)
            .await
    }

    /// Ends a leased message's delivery for good (SENT with `reply`, or FAILED with `error`)
    /// after one more attempt, if `owner` still holds the lease.
    async fn finish(
        &self,
        id: &str,
        owner: &str,
        status: MessageStatus,
        reply: Option<&str>,
        error: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let sent_at = (status == MessageStatus::Sent).then(|| millis(now));
        let set = vec![
            ("status", status.as_str().into()),
            ("sent_at", Value::Int(sent_at)),
            (
                "last_error",
                Value::Text(error.map(|e| cut(e, MAX_ERROR_CHARS))),
            ),
            (
                "relay_reply",
                Value::Text(reply.map(|r| cut(r, MAX_ERROR_CHARS))),
            ),
        ];
        self.release::<Outbox>(vec![id.to_owned()], owner, Attempts::OneMore, set)
            .await
    }

    /// Records a failed attempt: the message is retried after `retry_delay`, or FAILED once it
    /// has had `MAX_DELIVERY_ATTEMPTS`. Returns the new status and attempt count, or `None`
    /// when `owner` no longer holds the lease (nothing changes).
    pub async fn record_failed_delivery(
        &self,
        id: MessageId,
        owner: &str,
        error: &str,
        now: OffsetDateTime,
    ) -> Result<Option<(MessageStatus, u32)>, StoreError> {
        let key = vec![id.to_string()];
        let Some(before) = self.leased_attempts::<Outbox>(key.clone(), owner).await? else {
            return Ok(None);
        };
        let attempts = before.saturating_add(1);
        let status = if attempts >= MAX_DELIVERY_ATTEMPTS {
            MessageStatus::Failed
        } else {
            MessageStatus::Queued
        };
        let set = vec![
            ("status", status.as_str().into()),
            ("next_attempt_at", (now + retry_delay(attempts)).into()),
            ("last_error", Value::Text(Some(cut(error, MAX_ERROR_CHARS)))),
        ];
        let to = Attempts::From {
            read: before,
            to: attempts,
        };
        let released = self.release::<Outbox>(key, owner, to, set).await?;
        Ok(released.then_some((status, attempts)))
    }
}

/// The outbox as a lease queue.
struct Outbox;

impl LeaseQueue for Outbox {
    const TABLE: &'static str = "outbox";
    const KEY: &'static [&'static str] = &["id"];
    const STATE: &'static str = "status";
    const PENDING: &'static str = MessageStatus::Queued.as_str();

    /// The id as stored: a row whose id does not parse is still leased, and then given up.
    type Candidate = String;
    type Leased = StoredMessage;

    fn key(id: &String) -> Vec<String> {
        vec![id.clone()]
    }

    async fn read_leased(
        store: &Store,
        id: &String,
        owner: &str,
    ) -> Result<Option<StoredMessage>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            outbox_columns!(),
            " FROM outbox WHERE id = $1 AND lease_owner = $2"
        ))
        .bind(id)
        .bind(owner)
        .fetch_optional(&store.pool)
        .await?;
        row.as_ref().map(|row| store.open_row(row)).transpose()
    }

    async fn unreadable(
        store: &Store,
        id: &String,
        owner: &str,
        error: StoreError,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        match error {
            // Sealed under a key this replica lacks (a master key rotation under way, or a
            // replica not yet given the new key): another replica, or this one once
            // configured, sends it when the lease runs out.
            e @ StoreError::Sealed(crate::secrets::SecretsError::UnknownKey { .. }) => {
                tracing::warn!(message_id = %id, error = %crate::error_chain::ErrorChain(&e),
                    "outbox row sealed under a master key not loaded here; left for a \
                     replica that has it");
            }
            e => {
                tracing::error!(message_id = %id, error = %crate::error_chain::ErrorChain(&e),
                    "outbox row cannot be read; marking it FAILED");
                let reason = format!("the stored message cannot be read: {e}");
                store.fail_row(id, owner, &reason, now).await?;
            }
        }
        Ok(())
    }
}

/// Marks a sealed message text, so rows written before sealing still read.
pub(super) const SEALED_PREFIX: &str = "sealed:";

impl Store {
    /// The text of message `id` as stored: sealed to that id under the master key when one is
    /// set.
    pub(crate) fn seal_mail(&self, id: MessageId, message: &str) -> Result<String, StoreError> {
        match &self.sealer {
            Some(key) => Ok(format!(
                "{SEALED_PREFIX}{}",
                key.seal(&Binding::outbox_message(id), message.as_bytes())?
            )),
            None => Ok(message.to_owned()),
        }
    }

    fn open_row(&self, row: &AnyRow) -> Result<StoredMessage, StoreError> {
        let mut message = outbox_from_row(row)?;
        if let Some(sealed) = message.mail.message.strip_prefix(SEALED_PREFIX) {
            let key = self.sealer.as_ref().ok_or(StoreError::Corrupt {
                column: "message",
                reason: "sealed, but no master key is loaded".into(),
            })?;
            let plain = key.open(&Binding::outbox_message(message.mail.id), sealed)?;
            message.mail.message = String::from_utf8(plain).map_err(|e| StoreError::Corrupt {
                column: "message",
                reason: e.to_string(),
            })?;
        }
        Ok(message)
    }
}

fn outbox_from_row(row: &AnyRow) -> Result<StoredMessage, StoreError> {
    Ok(StoredMessage {
        mail: ComposedMessage {
            id: row.parsed("id")?,
            environment_id: row.optional_parsed("environment_id")?,
            route: row.parsed("route")?,
            envelope_from: row.text("envelope_from")?,
            envelope_to: split_recipients(&row.text("envelope_to")?),
            subject: row.text("subject")?,
            message: row.text("message")?,
            dkim_domain_id: row.optional_parsed("dkim_domain_id")?,
            return_path_domain: row.try_get("return_path_domain")?,
        },
        status: row.parsed("status")?,
        attempts: attempts_from(row.int("attempts")?)?,
        next_attempt_at: row.time("next_attempt_at")?,
        lease_owner: row.try_get::<Option<String>, _>("lease_owner")?,
        leased_until: row.optional_time("leased_until")?,
        last_error: row.try_get::<Option<String>, _>("last_error")?,
        created_at: row.time("created_at")?,
        sent_at: row.optional_time("sent_at")?,
        relay_reply: row.try_get::<Option<String>, _>("relay_reply")?,
    })
}

fn join_recipients(recipients: &[String]) -> String {
    recipients.join(&RECIPIENT_SEPARATOR.to_string())
}

fn split_recipients(stored: &str) -> Vec<String> {
    stored
        .split(RECIPIENT_SEPARATOR)
        .filter(|to| !to.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_from_30_seconds_to_an_hour() {
        let delays: Vec<u64> = (1..=MAX_DELIVERY_ATTEMPTS)
            .map(|n| retry_delay(n).as_secs())
            .collect();
        assert_eq!(delays, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]);
        assert_eq!(retry_delay(u32::MAX).as_secs(), 3600);
        assert_eq!(retry_delay(0).as_secs(), 30);
    }
}
