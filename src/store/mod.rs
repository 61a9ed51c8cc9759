//! Persistence: one sqlx code path for SQLite and PostgreSQL (the `Any` driver, portable SQL).
//!
//! Every change and its audit activity commit in one transaction. Writes that check a limit
//! start by updating the environment row, which serialises them per environment on both
//! backends (a row lock on PostgreSQL, the write lock on SQLite).

mod activities;
mod auth;
mod deliveries;
mod dkim;
mod dmarc;
mod email_domains;
mod environments;
mod feedback;
mod lease;
mod messages;
mod outbox;
mod populations;
mod rate_windows;
mod retention;
mod sealed;
mod subscriptions;
mod suppressions;
mod token_failures;
mod trusted_emails;
mod verification;

use std::{str::FromStr, sync::Arc, time::Duration};

use sqlx::{
    AnyPool, Executor, Row,
    any::{AnyPoolOptions, AnyRow},
};
use time::OffsetDateTime;

use lease::Placeholders;

use crate::{
    domain::{Activity, DomainId, EnvironmentId, UnknownValue},
    secrets::MasterKey,
};

pub use auth::{DeleteClient, StoredSigningKey};
pub use deliveries::{
    Delivery, DeliveryOutcome, DueDelivery, IN_FLIGHT_PER_ENVIRONMENT, IN_FLIGHT_PER_SUBSCRIPTION,
};
pub use dkim::{DkimKeysFingerprint, KeylessSelector, NewKeyMaterial, SealedDkimKey};
pub use email_domains::CreateDomainError;
pub use feedback::{FeedbackChange, FeedbackRecorded};
pub use messages::{IDEMPOTENCY_WINDOW_MS, Idempotency, QueueOutcome};
pub use outbox::{MAX_DELIVERY_ATTEMPTS, PER_ENVIRONMENT_PER_CLAIM, retry_delay};
pub use populations::PopulationError;
pub use rate_windows::{RateLimit, RateScope, RateTake};
pub use retention::Pruned;
pub use sealed::{RESEAL_BATCH, ResealedColumn};
pub use subscriptions::CreateSubscriptionError;
pub use token_failures::TokenFailures;
pub use trusted_emails::{CodeDelivery, CodeMailLimits, CreateTrustedEmailError};
pub use verification::{CheckLease, CheckResult, DueCursor, DuePage, RecordActivity, SavedChecks};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error")]
    Database(sqlx::Error),
    /// The database cannot be reached or cannot write (down, restarting, refusing connections,
    /// no connection free in time, disk full or read-only): temporary, not a bug in the request
    /// or in trustmail.
    #[error("database unavailable")]
    Unavailable(sqlx::Error),
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

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if database_unavailable(&e) {
            StoreError::Unavailable(e)
        } else {
            StoreError::Database(e)
        }
    }
}

impl StoreError {
    /// Worth answering 503 with Retry-After: `Unavailable`, or a migration cut off by it.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Unavailable(_) => true,
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
        sqlx::Error::Database(db) => {
            if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                postgres_unavailable(pg.code())
            } else if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                db.code()
                    .and_then(|code| code.parse::<i32>().ok())
                    .is_some_and(sqlite_unavailable)
            } else {
                false
            }
        }
        _ => false,
    }
}

/// PostgreSQL's SQLSTATE class 08 (connection exception), 53 (insufficient resources: disk
/// full, out of memory, too many connections) and 57P (shut down, crashed, cannot connect now).
fn postgres_unavailable(sqlstate: &str) -> bool {
    sqlstate.starts_with("08") || sqlstate.starts_with("53") || sqlstate.starts_with("57P")
}

/// SQLite's extended result code whose primary code (the low byte) says the file cannot be
/// written or opened now: SQLITE_READONLY (8), SQLITE_IOERR (10), SQLITE_FULL (13),
/// SQLITE_CANTOPEN (14). Freeing space or remounting read-write cures them without a restart.
fn sqlite_unavailable(extended_code: i32) -> bool {
    matches!(extended_code & 0xff, 8 | 10 | 13 | 14)
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
    /// Seals queued mail and webhook secrets at rest, and re-seals everything in a rotation.
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
            .acquire_timeout(acquire_timeout(backend))
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

/// How long a query waits for a connection. On PostgreSQL this also bounds a request while the
/// server is down (sqlx retries a refused connect until then), so it stays well inside the 10 s
/// in which a stopped database must be answered with 503; SQLite, which is never "down", keeps
/// its busy timeout's 10 s for queues under load.
fn acquire_timeout(backend: Backend) -> Duration {
    match backend {
        Backend::Sqlite => Duration::from_secs(10),
        Backend::Postgres => Duration::from_secs(4),
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

/// A value read whole from one row of its table.
pub trait FromRow: Sized {
    /// `SELECT <the columns from_row reads> FROM <its table>`, to which a query adds the rest.
    const SELECT: &'static str;

    fn from_row(row: &AnyRow) -> Result<Self, StoreError>;

    /// `SELECT` followed by `rest` (`WHERE …`, `ORDER BY …`).
    fn select<'q>(rest: &str) -> Query<'q> {
        // `rest` is always a literal of this module; every value is bound.
        sqlx::query(sqlx::AssertSqlSafe(format!("{} {rest}", Self::SELECT)))
    }
}

/// A resource that lives under one parent row (its environment, or its domain): listed and
/// found only within it.
pub trait Child: FromRow {
    type Parent: ParentId;
    type Id: std::fmt::Display;
}

/// The id of a row that others live under, and the column they hold it in.
pub trait ParentId: std::fmt::Display {
    const COLUMN: &'static str;
}

impl ParentId for EnvironmentId {
    const COLUMN: &'static str = "environment_id";
}

impl ParentId for DomainId {
    const COLUMN: &'static str = "domain_id";
}

impl Store {
    /// Every `T` under `parent`, oldest first.
    pub async fn list<T: Child>(&self, parent: T::Parent) -> Result<Vec<T>, StoreError> {
        let query = T::select(&format!(
            "WHERE {} = $1 ORDER BY created_at, id",
            T::Parent::COLUMN
        ));
        self.fetch_all_as(query.bind(parent.to_string())).await
    }

    /// The `T` with `id`, if it is under `parent`.
    pub async fn get<T: Child>(
        &self,
        parent: T::Parent,
        id: T::Id,
    ) -> Result<Option<T>, StoreError> {
        let query = T::select(&format!("WHERE id = $1 AND {} = $2", T::Parent::COLUMN));
        self.fetch_optional_as(query.bind(id.to_string()).bind(parent.to_string()))
            .await
    }

    /// One page of the `T`s in `table` whose `column` holds `parent`, in `order` (which must
    /// end in a unique column, so pages neither skip nor repeat a row), and how many there are
    /// in all.
    async fn page<T: FromRow>(
        &self,
        table: &str,
        filters: &[(&str, String)],
        order: &str,
        (limit, offset): (u32, u32),
    ) -> Result<(Vec<T>, i64), StoreError> {
        // `table`, the filters' columns and `order` are always literals of this module; every
        // value is bound.
        let mut p = Placeholders::default();
        let condition = p.equal(filters.iter().map(|(column, _)| *column));
        let bind = |mut query: Query<'static>| {
            for (_, value) in filters {
                query = query.bind(value.clone());
            }
            query
        };
        let total = bind(sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) AS n FROM {table} WHERE {condition}"
        ))))
        .fetch_one(&self.pool)
        .await?
        .int("n")?;
        let (limit_at, offset_at) = (p.next(), p.next());
        let query = T::select(&format!(
            "WHERE {condition} ORDER BY {order} LIMIT {limit_at} OFFSET {offset_at}"
        ));
        let rows = bind(query).bind(i64::from(limit)).bind(i64::from(offset));
        Ok((self.fetch_all_as(rows).await?, total))
    }

    /// Every row of `query`, as `T`.
    async fn fetch_all_as<T: FromRow>(&self, query: Query<'_>) -> Result<Vec<T>, StoreError> {
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(T::from_row).collect()
    }

    /// The row of `query`, if any, as `T`.
    async fn fetch_optional_as<T: FromRow>(
        &self,
        query: Query<'_>,
    ) -> Result<Option<T>, StoreError> {
        let row = query.fetch_optional(&self.pool).await?;
        row.as_ref().map(T::from_row).transpose()
    }
}

impl Store {
    /// Runs `write` (an update or delete of one row) and, when it changed the row, records
    /// `activity` in the same transaction. False when nothing matched.
    async fn write_recorded(
        &self,
        write: Query<'_>,
        activity: &Activity,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        if !changed(&mut tx, write).await? {
            return Ok(false);
        }
        commit_recorded(tx, activity).await?;
        Ok(true)
    }

    /// A transaction that holds `environment`'s row lock (see `lock_environment`); `missing`
    /// when the environment does not exist.
    async fn begin_locked<E: From<StoreError>>(
        &self,
        environment: EnvironmentId,
        missing: E,
    ) -> Result<Tx<'static>, E> {
        let mut tx = self.pool.begin().await.map_err(StoreError::from)?;
        if lock_environment(&mut tx, environment).await? {
            Ok(tx)
        } else {
            Err(missing)
        }
    }
}

/// Takes the environment's row lock (a no-op update), which serialises the writes inside one
/// environment on both backends. False when the environment does not exist.
async fn lock_environment(tx: &mut Tx<'_>, id: EnvironmentId) -> Result<bool, StoreError> {
    let lock = sqlx::query("UPDATE environments SET lock_version = lock_version + 1 WHERE id = $1")
        .bind(id.to_string());
    changed(tx, lock).await
}

/// Runs `write` in `tx`; whether it changed any row.
async fn changed(tx: &mut Tx<'_>, write: Query<'_>) -> Result<bool, StoreError> {
    Ok(write.execute(&mut **tx).await?.rows_affected() > 0)
}

/// The `n` of `query`, a `SELECT COUNT(*) AS n …`, read in `tx`.
async fn count(tx: &mut Tx<'_>, query: Query<'_>) -> Result<i64, StoreError> {
    query.fetch_one(&mut **tx).await?.int("n")
}

/// Records `activity` in the change's transaction and commits both.
async fn commit_recorded(mut tx: Tx<'_>, activity: &Activity) -> Result<(), StoreError> {
    insert_activity(&mut tx, activity).await?;
    tx.commit().await?;
    Ok(())
}

/// `From<sqlx::Error>` for the refusals of store writes, each of which carries other store
/// errors in its `Store` variant, so that `?` on a query works in the write. (Coherence
/// forbids one blanket impl for every `From<StoreError>` type.)
macro_rules! refusal_from_sqlx {
    ($($refusal:ty),+ $(,)?) => {
        $(impl From<sqlx::Error> for $refusal {
            fn from(e: sqlx::Error) -> Self {
                Self::Store(e.into())
            }
        })+
    };
}

refusal_from_sqlx!(
    CreateDomainError,
    PopulationError,
    CreateSubscriptionError,
    CreateTrustedEmailError,
);

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
    /// `parsed` for a nullable column: NULL is `None`.
    fn optional_parsed<T>(&self, column: &'static str) -> Result<Option<T>, StoreError>
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
        parse_column(column, &self.text(column)?)
    }

    fn optional_parsed<T>(&self, column: &'static str) -> Result<Option<T>, StoreError>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        self.try_get::<Option<String>, _>(column)?
            .map(|text| parse_column(column, &text))
            .transpose()
    }
}

fn parse_column<T>(column: &'static str, text: &str) -> Result<T, StoreError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    text.parse().map_err(|e: T::Err| StoreError::Corrupt {
        column,
        reason: e.to_string(),
    })
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
    use super::{postgres_unavailable, sqlite_unavailable, sqlite_url};

    #[test]
    fn disk_and_connection_faults_are_unavailable() {
        // SQLITE_FULL, SQLITE_READONLY_DBMOVED, SQLITE_IOERR_WRITE, SQLITE_CANTOPEN.
        for code in [13, 8 | (4 << 8), 10 | (3 << 8), 14] {
            assert!(sqlite_unavailable(code), "{code}");
        }
        // SQLITE_CONSTRAINT_UNIQUE, SQLITE_BUSY, SQLITE_CORRUPT.
        for code in [19 | (8 << 8), 5, 11] {
            assert!(!sqlite_unavailable(code), "{code}");
        }
        for code in ["08006", "53100", "53300", "57P01", "57P03"] {
            assert!(postgres_unavailable(code), "{code}");
        }
        for code in ["23505", "40001", "42P01", "57014"] {
            assert!(!postgres_unavailable(code), "{code}");
        }
    }

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
