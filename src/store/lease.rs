//! The lease queue under the outbox (`store/outbox.rs`) and webhook deliveries
//! (`store/deliveries.rs`): rows that fall due, are leased by one deliverer at a time, and are
//! released with what the attempt came to.
//!
//! Replicas share the tables. A deliverer first reads candidate keys (each queue picks them in
//! its own fair order), then leases each with a conditional UPDATE that only one writer can win
//! (PostgreSQL re-checks the WHERE clause on the locked row; SQLite serialises writes), so no
//! SKIP LOCKED is needed. Every later write checks the lease owner, and a write that depends on
//! the attempt count read under the lease checks that count too, so a deliverer whose lease ran
//! out cannot overwrite the next one's result.
//!
//! A queue's table has its key columns, a state column, `attempts`, `next_attempt_at`,
//! `lease_owner` and `leased_until`.

use std::time::Duration;

use time::OffsetDateTime;

use super::{Query, RowExt, Store, StoreError, millis};

/// One table run as a lease queue.
pub(super) trait LeaseQueue {
    const TABLE: &'static str;
    /// The columns that name one row, in the order `key` gives their values.
    const KEY: &'static [&'static str];
    /// The state column, and its value while the row still waits for delivery.
    const STATE: &'static str;
    const PENDING: &'static str;

    /// A row the queue's pick chose, before it is leased.
    type Candidate;
    /// A leased row, read whole.
    type Leased;

    /// The key column values of `candidate`.
    fn key(candidate: &Self::Candidate) -> Vec<String>;

    /// The row `owner` has just leased, read whole; `None` if it is gone.
    async fn read_leased(
        store: &Store,
        candidate: &Self::Candidate,
        owner: &str,
    ) -> Result<Option<Self::Leased>, StoreError>;

    /// The leased row does not read (`error`). Retrying cannot mend such a row, and it must not
    /// block the queue: the queue gives it up, or leaves it for a replica that can read it.
    async fn unreadable(
        store: &Store,
        candidate: &Self::Candidate,
        owner: &str,
        error: StoreError,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;
}

/// What a release does to the attempt count.
#[derive(Debug, Clone, Copy)]
pub(super) enum Attempts {
    /// Counts the attempt just made.
    OneMore,
    /// Sets the count to `to`, if it is still `read` (the count read under the lease): a
    /// compare-and-set with that read.
    From { read: u32, to: u32 },
}

/// A column value a release writes.
#[derive(Debug, Clone)]
pub(super) enum Value {
    Text(Option<String>),
    Int(Option<i64>),
}

impl Value {
    fn bind(self, query: Query<'_>) -> Query<'_> {
        match self {
            Value::Text(text) => query.bind(text),
            Value::Int(int) => query.bind(int),
        }
    }
}

impl From<&'static str> for Value {
    fn from(text: &'static str) -> Self {
        Value::Text(Some(text.to_owned()))
    }
}

impl From<OffsetDateTime> for Value {
    fn from(at: OffsetDateTime) -> Self {
        Value::Int(Some(millis(at)))
    }
}

/// Numbers a query's placeholders in the order its values are bound.
#[derive(Default)]
pub(super) struct Placeholders(usize);

impl Placeholders {
    pub(super) fn next(&mut self) -> String {
        self.0 += 1;
        format!("${}", self.0)
    }

    /// `a = $n AND b = $n+1 …` over `columns`.
    pub(super) fn equal<'c>(&mut self, columns: impl IntoIterator<Item = &'c str>) -> String {
        columns
            .into_iter()
            .map(|column| format!("{column} = {}", self.next()))
            .collect::<Vec<_>>()
            .join(" AND ")
    }

    /// `equal` over `Q`'s key columns, bound by `bind_key`.
    fn key<Q: LeaseQueue>(&mut self) -> String {
        self.equal(Q::KEY.iter().copied())
    }
}

fn bind_key(mut query: Query<'_>, key: Vec<String>) -> Query<'_> {
    for value in key {
        query = query.bind(value);
    }
    query
}

impl Store {
    /// Leases each of `candidates` that is still due and free at `now` to `owner` until
    /// `now + lease`, and reads it: the rows this deliverer won, in the candidates' order.
    pub(super) async fn claim<Q: LeaseQueue>(
        &self,
        candidates: &[Q::Candidate],
        owner: &str,
        now: OffsetDateTime,
        lease: Duration,
    ) -> Result<Vec<Q::Leased>, StoreError> {
        let mut p = Placeholders::default();
        // Repeats the pick's conditions: whoever updates the row first wins it.
        let sql = format!(
            "UPDATE {table} SET lease_owner = {owner}, leased_until = {until} WHERE {key} \
             AND {state} = {pending} AND next_attempt_at <= {now} \
             AND (leased_until IS NULL OR leased_until < {now})",
            table = Q::TABLE,
            owner = p.next(),
            until = p.next(),
            key = p.key::<Q>(),
            state = Q::STATE,
            pending = p.next(),
            now = p.next(),
        );
        let mut claimed = Vec::with_capacity(candidates.len());
        for candidate in candidates {
            let query = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(owner)
                .bind(millis(now + lease));
            let won = bind_key(query, Q::key(candidate))
                .bind(Q::PENDING)
                .bind(millis(now))
                .execute(&self.pool)
                .await?
                .rows_affected()
                == 1;
            if !won {
                continue;
            }
            match Q::read_leased(self, candidate, owner).await {
                Ok(Some(leased)) => claimed.push(leased),
                Ok(None) => {}
                Err(e) => Q::unreadable(self, candidate, owner, e, now).await?,
            }
        }
        Ok(claimed)
    }

    /// The attempts made of the row `key` names, if `owner` holds its lease and it is still
    /// pending.
    pub(super) async fn leased_attempts<Q: LeaseQueue>(
        &self,
        key: Vec<String>,
        owner: &str,
    ) -> Result<Option<u32>, StoreError> {
        let mut p = Placeholders::default();
        let sql = format!(
            "SELECT attempts FROM {table} WHERE {key} AND lease_owner = {owner} \
             AND {state} = {pending}",
            table = Q::TABLE,
            key = p.key::<Q>(),
            owner = p.next(),
            state = Q::STATE,
            pending = p.next(),
        );
        bind_key(sqlx::query(sqlx::AssertSqlSafe(sql)), key)
            .bind(owner)
            .bind(Q::PENDING)
            .fetch_optional(&self.pool)
            .await?
            .map(|row| attempts_from(row.int("attempts")?))
            .transpose()
    }

    /// Ends `owner`'s lease on the pending row `key` names, writing `set` and `attempts`.
    /// False when `owner` no longer holds the lease, or the count is no longer the one read
    /// (nothing changes).
    pub(super) async fn release<Q: LeaseQueue>(
        &self,
        key: Vec<String>,
        owner: &str,
        attempts: Attempts,
        set: Vec<(&'static str, Value)>,
    ) -> Result<bool, StoreError> {
        let mut p = Placeholders::default();
        let mut columns: Vec<String> = set
            .iter()
            .map(|(column, _)| format!("{column} = {}", p.next()))
            .collect();
        columns.push(match attempts {
            Attempts::OneMore => "attempts = attempts + 1".to_owned(),
            Attempts::From { .. } => format!("attempts = {}", p.next()),
        });
        let key_sql = p.key::<Q>();
        let mut sql = format!(
            "UPDATE {table} SET {columns}, lease_owner = NULL, leased_until = NULL \
             WHERE {key_sql} AND lease_owner = {owner} AND {state} = {pending}",
            table = Q::TABLE,
            columns = columns.join(", "),
            owner = p.next(),
            state = Q::STATE,
            pending = p.next(),
        );
        if let Attempts::From { .. } = attempts {
            sql.push_str(&format!(" AND attempts = {}", p.next()));
        }
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (_, value) in set {
            query = value.bind(query);
        }
        if let Attempts::From { to, .. } = attempts {
            query = query.bind(i64::from(to));
        }
        query = bind_key(query, key).bind(owner).bind(Q::PENDING);
        if let Attempts::From { read, .. } = attempts {
            query = query.bind(i64::from(read));
        }
        Ok(query.execute(&self.pool).await?.rows_affected() == 1)
    }
}

/// An attempt count as stored.
pub(super) fn attempts_from(stored: i64) -> Result<u32, StoreError> {
    u32::try_from(stored).map_err(|e| StoreError::Corrupt {
        column: "attempts",
        reason: e.to_string(),
    })
}

/// A remote party's text (a relay's reply, an endpoint's error) as kept: at most `max`
/// characters; its whole transcript is not.
pub(super) fn cut(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}
