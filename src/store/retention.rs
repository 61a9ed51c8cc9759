//! Retention: deleting the rows that `jobs::retention` lets go, a bounded batch per statement.
//!
//! Each statement picks at most `limit` expired rows in a subquery and deletes those, so it
//! holds its locks (PostgreSQL's row locks, SQLite's write lock) for one short batch. Replicas
//! may run it at once: two picking the same rows both succeed, the second deleting fewer (a
//! short batch, which ends its pass).

use time::OffsetDateTime;

use super::{Store, StoreError, millis};
use crate::domain::DeliveryState;
use crate::mail::MessageStatus;

/// A table that retention prunes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pruned {
    /// SENT and FAILED mail, by `created_at`; never QUEUED (or leased) mail.
    Outbox,
    /// Idempotency-Keys of `POST …/messages`, by `created_at`.
    MessageRequests,
    /// DELIVERED and FAILED webhook deliveries, by `created_at` (when queued); never pending.
    Deliveries,
    /// Activities, by `recorded_at`, with their finished deliveries (the foreign key
    /// cascades); never one that a delivery still waits to send.
    Activities,
    /// Feedback events (bounces, complaints), by `created_at`.
    FeedbackEvents,
    /// DMARC aggregate reports with their rows (the foreign key cascades), by `received_at`.
    DmarcReports,
}

impl Pruned {
    /// In the order a pass prunes them: deliveries before the activities they name.
    pub const ALL: [Pruned; 6] = [
        Pruned::Outbox,
        Pruned::MessageRequests,
        Pruned::Deliveries,
        Pruned::Activities,
        Pruned::FeedbackEvents,
        Pruned::DmarcReports,
    ];

    /// The table's name, as the metric's `table` label and the logs say it.
    pub fn table(self) -> &'static str {
        match self {
            Pruned::Outbox => "outbox",
            Pruned::MessageRequests => "message_requests",
            Pruned::Deliveries => "subscription_deliveries",
            Pruned::Activities => "activities",
            Pruned::FeedbackEvents => "feedback_events",
            Pruned::DmarcReports => "dmarc_reports",
        }
    }
}

impl Store {
    /// Deletes at most `limit` rows of `table` older than `before` that retention may delete
    /// (see `Pruned`), in one statement; how many it deleted.
    pub async fn prune(
        &self,
        table: Pruned,
        before: OffsetDateTime,
        limit: u32,
    ) -> Result<u64, StoreError> {
        let before = millis(before);
        let limit = i64::from(limit);
        let query = match table {
            Pruned::Outbox => sqlx::query(
                "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox \
                 WHERE status IN ($1, $2) AND created_at < $3 AND lease_owner IS NULL LIMIT $4)",
            )
            .bind(MessageStatus::Sent.as_str())
            .bind(MessageStatus::Failed.as_str())
            .bind(before)
            .bind(limit),
            Pruned::MessageRequests => sqlx::query(
                "DELETE FROM message_requests WHERE (environment_id, idempotency_key) IN \
                 (SELECT environment_id, idempotency_key FROM message_requests \
                 WHERE created_at < $1 LIMIT $2)",
            )
            .bind(before)
            .bind(limit),
            Pruned::Deliveries => sqlx::query(
                "DELETE FROM subscription_deliveries WHERE (subscription_id, activity_id) IN \
                 (SELECT subscription_id, activity_id FROM subscription_deliveries \
                 WHERE state IN ($1, $2) AND created_at < $3 LIMIT $4)",
            )
            .bind(DeliveryState::Delivered.as_str())
            .bind(DeliveryState::Failed.as_str())
            .bind(before)
            .bind(limit),
            Pruned::Activities => sqlx::query(
                "DELETE FROM activities WHERE id IN (SELECT a.id FROM activities a \
                 WHERE a.recorded_at < $1 AND NOT EXISTS (SELECT 1 FROM subscription_deliveries d \
                 WHERE d.activity_id = a.id AND d.state = $2) LIMIT $3)",
            )
            .bind(before)
            .bind(DeliveryState::Pending.as_str())
            .bind(limit),
            Pruned::FeedbackEvents => sqlx::query(
                "DELETE FROM feedback_events WHERE id IN (SELECT id FROM feedback_events \
                 WHERE created_at < $1 LIMIT $2)",
            )
            .bind(before)
            .bind(limit),
            Pruned::DmarcReports => sqlx::query(
                "DELETE FROM dmarc_reports WHERE id IN (SELECT id FROM dmarc_reports \
                 WHERE received_at < $1 LIMIT $2)",
            )
            .bind(before)
            .bind(limit),
        };
        Ok(query.execute(&self.pool).await?.rows_affected())
    }
}
