//! Persistence: one sqlx code path for SQLite and PostgreSQL (the `Any` driver, portable SQL).
//!
//! Every change and its audit activity commit in one transaction. Writes that check a limit
//! start by updating the environment row, which serialises them per environment on both
//! backends (a row lock on PostgreSQL, the write lock on SQLite).

mod activities;
mod auth;
mod deliveries;
mod dkim;
mod email_domains;
mod environments;
mod messages;
mod outbox;
mod populations;
mod subscriptions;
mod trusted_emails;
mod verification;

use std::{str::FromStr, sync::Arc, time::Duration};

use sqlx::{
    AnyPool, Executor, Row,
    any::{AnyPoolOptions, AnyRow},
};
use time::OffsetDateTime;

use crate::{
    domain::{Activity, EnvironmentId, UnknownValue},
    secrets::MasterKey,
};

pub use auth::{DeleteClient, StoredSigningKey};
pub use deliveries::{Delivery, DeliveryOutcome, DueDelivery, PER_SUBSCRIPTION_PER_CLAIM};
pub use dkim::{DkimKeysFingerprint, KeylessSelector, NewKeyMaterial, SealedDkimKey};
pub use email_domains::CreateDomainError;
pub use messages::{IDEMPOTENCY_WINDOW_MS, Idempotency, QueueOutcome};
pub use outbox::{
    MAX_DELIVERY_ATTEMPTS, OutboxMessage, OutboxStatus, PER_ENVIRONMENT_PER_CLAIM, retry_delay,
};
pub use populations::PopulationError;
pub use subscriptions::CreateSubscriptionError;
pub use trusted_emails::{CodeDelivery, CodeMailLimits, CreateTrustedEmailError};
pub use verification::{CheckLease, CheckResult, DueCursor, DuePage, RecordActivity, SavedChecks};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("a sealed value could not be opened")]
    Sealed(#[from] crate::secrets::SecretsError),
    #[error("stored value is corrupt: column `{column}`: {reason}")]
    Corrupt {
        column: &'static str,
        reason: String,
    },
}

impl StoreError {
    /// The database cannot be reached (down, restarting, refusing connections, no connection
    /// free in time): temporary, not a bug in the request or in trustmail.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Database(e) => database_unavailable(e),
            StoreError::Migrate(sqlx::migrate::MigrateError::Execute(e)) => database_unavailable(e),
            _ => false,
        }
    }
}

fn database_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        // PostgreSQL's SQLSTATE class 08 (connection exception) and 57P01-57P03 (shut down by
        // an administrator, crash shutdown, cannot connect now).
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03")
        }),
        _ => false,
    }
}

/// The outcome of a write allowed at most once per interval (a code resend, a forced check).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Throttle {
    /// The write went ahead.
    Done,
    /// Refused: the last one was too recent; the next may go in `wait_ms` milliseconds.
    TooSoon { wait_ms: i64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// Seals queued mail at rest (it can carry verification codes).
    sealer: Option<Arc<MasterKey>>,
}

impl Store {
    /// Connects (creating a SQLite file if needed) and brings the schema up to date.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let (url, backend) = if url.starts_with("sqlite:") {
            (sqlite_url(url), Backend::Sqlite)
        } else {
            (url.to_owned(), Backend::Postgres)
        };
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 8 } else { 16 })
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL for concurrent readers; FULL so a 201 means the row survives
                        // power loss; foreign keys make deletes cascade.
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                             PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        let store = Self {
            pool,
            backend,
            sealer: None,
        };
        store.create_missing_default_populations().await?;
        Ok(store)
    }

    /// Seals the text of queued mail with `key` from now on (older plain rows still read).
    pub fn sealing_with(mut self, key: Arc<MasterKey>) -> Self {
        self.sealer = Some(key);
        self
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A cheap round trip, for readiness.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// `sqlite://trustmail.db` → create the file when missing, relative to the working directory.
fn sqlite_url(url: &str) -> String {
    if url.contains("mode=") || url.contains(":memory:") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    }
}

type Tx<'a> = sqlx::Transaction<'a, sqlx::Any>;
type Query<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

impl Store {
    /// Runs `delete` (of one row) and, when it removed the row, records `activity` in the same
    /// transaction. False when nothing matched.
    async fn delete_recorded(
        &self,
        delete: Query<'_>,
        activity: &Activity,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        if delete.execute(&mut *tx).await?.rows_affected() == 0 {
            return Ok(false);
        }
        insert_activity(&mut tx, activity).await?;
        tx.commit().await?;
        Ok(true)
    }
}

/// Takes the environment's row lock (a no-op update), which serialises the writes inside one
/// environment on both backends. False when the environment does not exist.
async fn lock_environment(tx: &mut Tx<'_>, id: EnvironmentId) -> Result<bool, StoreError> {
    let locked =
        sqlx::query("UPDATE environments SET lock_version = lock_version + 1 WHERE id = $1")
            .bind(id.to_string())
            .execute(&mut **tx)
            .await?
            .rows_affected();
    Ok(locked > 0)
}

async fn insert_activity(tx: &mut Tx<'_>, activity: &Activity) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO activities (id, environment_id, action_type, actor_client_id, \
         resource_type, resource_id, resource_name, result_status, recorded_at, details) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(activity.id.to_string())
    .bind(activity.environment_id.to_string())
    .bind(activity.action.as_str())
    .bind(activity.actor.map(|a| a.to_string()).unwrap_or_default())
    .bind(activity.resource_type.as_str())
    .bind(&activity.resource_id)
    .bind(&activity.resource_name)
    .bind("SUCCESS")
    .bind(millis(activity.recorded_at))
    .bind(activity.details.as_ref().map(|d| d.to_string()))
    .execute(&mut **tx)
    .await?;
    // The webhooks it causes commit with it, or not at all.
    deliveries::enqueue_deliveries(tx, activity).await
}

/// Every activity of one change, in the change's transaction.
async fn insert_activities(tx: &mut Tx<'_>, activities: &[Activity]) -> Result<(), StoreError> {
    for activity in activities {
        insert_activity(tx, activity).await?;
    }
    Ok(())
}

pub(crate) fn millis(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// Typed column reads that turn bad stored data into `StoreError::Corrupt`, never a panic.
trait RowExt {
    fn text(&self, column: &'static str) -> Result<String, StoreError>;
    fn int(&self, column: &'static str) -> Result<i64, StoreError>;
    fn time(&self, column: &'static str) -> Result<OffsetDateTime, StoreError>;
    fn optional_time(&self, column: &'static str) -> Result<Option<OffsetDateTime>, StoreError>;
    fn parsed<T>(&self, column: &'static str) -> Result<T, StoreError>
    where
        T: FromStr,
        T::Err: std::fmt::Display;
}

impl RowExt for AnyRow {
    fn text(&self, column: &'static str) -> Result<String, StoreError> {
        Ok(self.try_get::<String, _>(column)?)
    }

    fn int(&self, column: &'static str) -> Result<i64, StoreError> {
        Ok(self.try_get::<i64, _>(column)?)
    }

    fn time(&self, column: &'static str) -> Result<OffsetDateTime, StoreError> {
        let ms = self.int(column)?;
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).map_err(|e| {
            StoreError::Corrupt {
                column,
                reason: e.to_string(),
            }
        })
    }

    fn optional_time(&self, column: &'static str) -> Result<Option<OffsetDateTime>, StoreError> {
        self.try_get::<Option<i64>, _>(column)?
            .map(|ms| {
                OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).map_err(|e| {
                    StoreError::Corrupt {
                        column,
                        reason: e.to_string(),
                    }
                })
            })
            .transpose()
    }

    fn parsed<T>(&self, column: &'static str) -> Result<T, StoreError>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        self.text(column)?
            .parse()
            .map_err(|e: T::Err| StoreError::Corrupt {
                column,
                reason: e.to_string(),
            })
    }
}

impl From<UnknownValue> for StoreError {
    fn from(e: UnknownValue) -> Self {
        StoreError::Corrupt {
            column: "enum",
            reason: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::sqlite_url;

    #[test]
    fn sqlite_urls_create_the_file() {
        assert_eq!(sqlite_url("sqlite://t.db"), "sqlite://t.db?mode=rwc");
        assert_eq!(
            sqlite_url("sqlite://t.db?x=1"),
            "sqlite://t.db?x=1&mode=rwc"
        );
        assert_eq!(sqlite_url("sqlite://t.db?mode=ro"), "sqlite://t.db?mode=ro");
    }
}
