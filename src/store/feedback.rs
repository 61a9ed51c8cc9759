//! Feedback events (feedback/events.rs) and what each changes: the recipient's status on its
//! message, the environment's suppression list, and the audit log, in one transaction.

use sqlx::{Row, any::AnyRow};

use super::{
    FromRow, RowExt, Store, StoreError, insert_activity, millis,
    suppressions::{insert_suppression, recipient_from_row},
};
use crate::{
    domain::{Activity, EnvironmentId},
    feedback::{FeedbackEvent, Suppression, events::outranks},
    mail::{MessageId, Recipient, RecipientStatus},
};

macro_rules! event_columns {
    () => {
        "id, environment_id, message_id, position, kind, source, status, diagnostic, \
         reporting_mta, created_at"
    };
}

impl FromRow for FeedbackEvent {
    const SELECT: &'static str = concat!("SELECT ", event_columns!(), " FROM feedback_events");

    fn from_row(row: &AnyRow) -> Result<Self, StoreError> {
        Ok(FeedbackEvent {
            id: row.parsed("id")?,
            environment_id: row.parsed("environment_id")?,
            message_id: row.parsed("message_id")?,
            recipient: super::suppressions::position(row)?,
            kind: row.parsed("kind")?,
            source: row.parsed("source")?,
            status: row.try_get("status")?,
            diagnostic: row.try_get("diagnostic")?,
            reporting_mta: row.try_get("reporting_mta")?,
            created_at: row.time("created_at")?,
        })
    }
}

/// What one feedback event changes, committed together.
pub struct FeedbackChange<'a> {
    pub event: &'a FeedbackEvent,
    /// The address's entry when the event suppresses it, with its SUPPRESSION.CREATED activity
    /// (recorded only when the entry is new).
    pub suppression: Option<(&'a Suppression, &'a Activity)>,
    /// EMAIL.BOUNCED or EMAIL.COMPLAINED: recorded only when the recipient's status changes,
    /// so a report that arrives twice is told once.
    pub activity: Option<&'a Activity>,
}

/// What a recorded event changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedbackRecorded {
    /// The recipient's status moved to the event's.
    pub status_changed: bool,
    /// The address went on the suppression list.
    pub suppressed: bool,
}

impl Store {
    /// Records `change.event`, moves its recipient to the event's status unless it holds one
    /// that outranks it (a complaint outranks a bounce, a bounce a delay), and suppresses the
    /// address.
    pub async fn record_feedback(
        &self,
        change: FeedbackChange<'_>,
    ) -> Result<FeedbackRecorded, StoreError> {
        let event = change.event;
        let mut tx = self.pool.begin().await?;
        sqlx::query(concat!(
            "INSERT INTO feedback_events (",
            event_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        ))
        .bind(event.id.to_string())
        .bind(event.environment_id.to_string())
        .bind(event.message_id.to_string())
        .bind(i64::from(event.recipient))
        .bind(event.kind.as_str())
        .bind(event.source.as_str())
        .bind(event.status.clone())
        .bind(event.diagnostic.clone())
        .bind(event.reporting_mta.clone())
        .bind(millis(event.created_at))
        .execute(&mut *tx)
        .await?;
        let status = event.recipient_status();
        // The new status, and those it must not replace: at most three, all literals.
        let kept: Vec<&str> = std::iter::once(status)
            .chain(outranks(status).iter().copied())
            .map(|s| s.as_str())
            .collect();
        let placeholders: Vec<String> = (5..kept.len() + 5).map(|n| format!("${n}")).collect();
        let mut update = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE message_recipients SET status = $1, updated_at = $2 \
             WHERE message_id = $3 AND position = $4 AND (status IS NULL OR status NOT IN ({}))",
            placeholders.join(", ")
        )))
        .bind(status.as_str())
        .bind(millis(event.created_at))
        .bind(event.message_id.to_string())
        .bind(i64::from(event.recipient));
        for status in kept {
            update = update.bind(status);
        }
        let status_changed = update.execute(&mut *tx).await?.rows_affected() > 0;
        let mut suppressed = false;
        if let Some((suppression, activity)) = change.suppression
            && insert_suppression(&mut tx, suppression).await?
        {
            insert_activity(&mut tx, activity).await?;
            suppressed = true;
        }
        if let Some(activity) = change.activity
            && status_changed
        {
            insert_activity(&mut tx, activity).await?;
        }
        tx.commit().await?;
        Ok(FeedbackRecorded {
            status_changed,
            suppressed,
        })
    }

    /// The feedback events of a message, oldest first.
    pub async fn feedback_events(
        &self,
        message: MessageId,
    ) -> Result<Vec<FeedbackEvent>, StoreError> {
        let query = FeedbackEvent::select("WHERE message_id = $1 ORDER BY created_at, id")
            .bind(message.to_string());
        self.fetch_all_as(query).await
    }

    /// The recipient at `position` of a customer message still in the outbox, with the
    /// message's environment; `None` when there is none (never was, or pruned since).
    pub async fn message_recipient(
        &self,
        message: MessageId,
        position: u16,
    ) -> Result<Option<(EnvironmentId, Recipient)>, StoreError> {
        let row = sqlx::query(
            "SELECT o.environment_id, r.position, r.address, r.status, r.updated_at \
             FROM message_recipients r JOIN outbox o ON o.id = r.message_id \
             WHERE r.message_id = $1 AND r.position = $2 AND o.environment_id IS NOT NULL",
        )
        .bind(message.to_string())
        .bind(i64::from(position))
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| Ok((row.parsed("environment_id")?, recipient_from_row(&row)?)))
            .transpose()
    }

    /// The relay took the message for the recipient at `position`.
    pub async fn mark_recipient_sent(
        &self,
        message: MessageId,
        position: u16,
        at: time::OffsetDateTime,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE message_recipients SET status = $1, updated_at = $2 \
             WHERE message_id = $3 AND position = $4 AND status IS NULL",
        )
        .bind(RecipientStatus::Sent.as_str())
        .bind(millis(at))
        .bind(message.to_string())
        .bind(i64::from(position))
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
