//! Wrong client secrets per (client, source address), counted in the store so that every replica
//! sees the same count (README § Token endpoint limits).

use time::{Duration, OffsetDateTime};

use super::{RowExt, Store, StoreError, millis};
use crate::domain::ClientId;

/// One (client, source) pair's failures in its current window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenFailures {
    pub failures: i64,
    pub window_ends_at: OffsetDateTime,
}

impl Store {
    /// The pair's failures, when its window has not ended yet.
    pub async fn token_failures(
        &self,
        client: ClientId,
        source: &str,
        now: OffsetDateTime,
        window: Duration,
    ) -> Result<Option<TokenFailures>, StoreError> {
        let row = sqlx::query(
            "SELECT window_started_at, failures FROM token_failures \
             WHERE client_id = $1 AND source = $2 AND window_started_at > $3",
        )
        .bind(client.to_string())
        .bind(source)
        .bind(millis(now - window))
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(TokenFailures {
                failures: row.int("failures")?,
                window_ends_at: row.time("window_started_at")? + window,
            })
        })
        .transpose()
    }

    /// Counts one more failure for the pair (a new window when the last one has ended) and
    /// prunes ended windows; answers the pair's count now.
    pub async fn record_token_failure(
        &self,
        client: ClientId,
        source: &str,
        now: OffsetDateTime,
        window: Duration,
    ) -> Result<i64, StoreError> {
        let ended_before = millis(now - window);
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM token_failures WHERE window_started_at <= $1")
            .bind(ended_before)
            .execute(&mut *tx)
            .await?;
        // Every right-hand side reads the row as it was, on both backends.
        let row = sqlx::query(
            "INSERT INTO token_failures (client_id, source, window_started_at, failures) \
             VALUES ($1, $2, $3, 1) \
             ON CONFLICT (client_id, source) DO UPDATE SET \
               failures = CASE WHEN token_failures.window_started_at <= $4 THEN 1 \
                          ELSE token_failures.failures + 1 END, \
               window_started_at = CASE WHEN token_failures.window_started_at <= $4 THEN $3 \
                          ELSE token_failures.window_started_at END \
             RETURNING failures",
        )
        .bind(client.to_string())
        .bind(source)
        .bind(millis(now))
        .bind(ended_before)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        row.int("failures")
    }

    /// A right secret from the pair starts its count over.
    pub async fn clear_token_failures(
        &self,
        client: ClientId,
        source: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM token_failures WHERE client_id = $1 AND source = $2")
            .bind(client.to_string())
            .bind(source)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
