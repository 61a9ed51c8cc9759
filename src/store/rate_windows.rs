//! Sliding-window rate limits kept in the store, so a limit holds across replicas sharing a
//! database and under concurrent requests (README § Limits).
//!
//! Each (scope, subject) has one row: the count of the current fixed window and of the one
//! before it. A request is admitted when `current + previous × (unelapsed share of the window)`
//! stays under the limit, the usual two-window estimate of a sliding window; from zero it
//! refuses exactly at the limit. The admitting UPDATE re-checks its WHERE clause on the locked
//! row (PostgreSQL) or runs alone (SQLite), so concurrent takers cannot overshoot.

use time::OffsetDateTime;

use super::{RowExt, Store, StoreError, Tx, millis};
use crate::domain::wire_enum;

wire_enum!(
    /// What a rate window counts.
    RateScope {
        DkimRotations => "DKIM_ROTATIONS",
        SelfChecks => "SELF_CHECKS",
        Messages => "MESSAGES",
    }
);

/// At most `limit` in any `window_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub limit: u32,
    pub window_ms: i64,
}

impl RateLimit {
    pub fn per_minute(limit: u32) -> Self {
        Self {
            limit,
            window_ms: 60_000,
        }
    }

    pub fn per_hour(limit: u32) -> Self {
        Self {
            limit,
            window_ms: 3_600_000,
        }
    }
}

/// What asking a rate window for one more did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum RateTake {
    Taken,
    /// Over the limit; one more fits in `wait_ms` (at least 1).
    Wait {
        wait_ms: i64,
    },
}

/// The counts of one subject as seen from the fixed window starting at `start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Counts {
    current: i64,
    previous: i64,
}

/// The start of the fixed window `now_ms` falls in.
fn window_start(now_ms: i64, window_ms: i64) -> i64 {
    now_ms - now_ms.rem_euclid(window_ms)
}

/// A stored row's counts moved to the window starting at `start`. A row from a later window
/// (a replica whose clock runs ahead) counts as current.
fn shifted(stored_start: i64, count: i64, previous: i64, start: i64, window_ms: i64) -> Counts {
    if stored_start >= start {
        Counts {
            current: count,
            previous,
        }
    } else if stored_start == start - window_ms {
        Counts {
            current: 0,
            previous: count,
        }
    } else {
        Counts {
            current: 0,
            previous: 0,
        }
    }
}

/// Whether one more fits `elapsed` ms into the current window. The same inequality as the
/// UPDATE's WHERE clause, in integers: `current·W + previous·(W − elapsed) < limit·W`.
#[cfg(test)]
fn admits(counts: Counts, elapsed: i64, rate: RateLimit) -> bool {
    let w = i128::from(rate.window_ms);
    i128::from(counts.current) * w + i128::from(counts.previous) * (w - i128::from(elapsed))
        < i128::from(rate.limit) * w
}

/// How long until one more fits, for counts that do not admit one now: within this window
/// when the previous window's share shrinks enough, else some way into the next.
fn wait_ms(counts: Counts, elapsed: i64, rate: RateLimit) -> i64 {
    let w = i128::from(rate.window_ms);
    let limit = i128::from(rate.limit);
    let (current, previous) = (i128::from(counts.current), i128::from(counts.previous));
    let elapsed = i128::from(elapsed);
    let rest = w - elapsed;
    // Within this window: the smallest t with current·W + previous·(rest − t) < limit·W.
    if current < limit && previous > 0 {
        let t = (current * w + previous * rest - limit * w) / previous + 1;
        if t < rest {
            return clamp_wait(t.max(1), rate);
        }
    }
    // In the next window `current` becomes the previous one and nothing is current yet: the
    // smallest e with current·(W − e) < limit·W.
    let into_next = if current < limit {
        0
    } else {
        (current - limit) * w / current + 1
    };
    clamp_wait(rest + into_next, rate)
}

fn clamp_wait(t: i128, rate: RateLimit) -> i64 {
    i64::try_from(t)
        .unwrap_or(i64::MAX)
        .clamp(1, 2 * rate.window_ms)
}

impl Store {
    /// Takes one from `subject`'s window of `scope`, or says how long to wait.
    pub async fn take_rate(
        &self,
        scope: RateScope,
        subject: &str,
        rate: RateLimit,
        now: OffsetDateTime,
    ) -> Result<RateTake, StoreError> {
        let mut tx = self.pool.begin().await?;
        let taken = take_rate(&mut tx, scope, subject, rate, now).await?;
        tx.commit().await?;
        Ok(taken)
    }
}

/// Takes one inside the caller's transaction, so a write that the take pays for and the take
/// commit or roll back together.
pub(crate) async fn take_rate(
    tx: &mut Tx<'_>,
    scope: RateScope,
    subject: &str,
    rate: RateLimit,
    now: OffsetDateTime,
) -> Result<RateTake, StoreError> {
    let now_ms = millis(now);
    let start = window_start(now_ms, rate.window_ms);
    let elapsed = now_ms - start;
    sqlx::query(
        "INSERT INTO rate_windows (scope, subject, window_start, count, previous_count) \
         VALUES ($1, $2, $3, 0, 0) ON CONFLICT (scope, subject) DO NOTHING",
    )
    .bind(scope.as_str())
    .bind(subject)
    .bind(start)
    .execute(&mut **tx)
    .await?;
    // Every right-hand side reads the row as it was, on both backends; the WHERE clause is
    // `admits` over the row's counts as `shifted` moves them.
    let taken = sqlx::query(
        "UPDATE rate_windows SET \
           previous_count = CASE WHEN window_start >= $3 THEN previous_count \
                            WHEN window_start = $4 THEN count ELSE 0 END, \
           count = CASE WHEN window_start >= $3 THEN count + 1 ELSE 1 END, \
           window_start = CASE WHEN window_start >= $3 THEN window_start ELSE $3 END \
         WHERE scope = $1 AND subject = $2 \
           AND (CASE WHEN window_start >= $3 THEN count ELSE 0 END) * $5 \
             + (CASE WHEN window_start >= $3 THEN previous_count \
                WHEN window_start = $4 THEN count ELSE 0 END) * $6 < $7",
    )
    .bind(scope.as_str())
    .bind(subject)
    .bind(start)
    .bind(start - rate.window_ms)
    .bind(rate.window_ms)
    .bind(rate.window_ms - elapsed)
    .bind(i64::from(rate.limit).saturating_mul(rate.window_ms))
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if taken > 0 {
        return Ok(RateTake::Taken);
    }
    let row = sqlx::query(
        "SELECT window_start, count, previous_count FROM rate_windows \
         WHERE scope = $1 AND subject = $2",
    )
    .bind(scope.as_str())
    .bind(subject)
    .fetch_one(&mut **tx)
    .await?;
    let counts = shifted(
        row.int("window_start")?,
        row.int("count")?,
        row.int("previous_count")?,
        start,
        rate.window_ms,
    );
    Ok(RateTake::Wait {
        wait_ms: wait_ms(counts, elapsed, rate),
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const HOUR: RateLimit = RateLimit {
        limit: 10,
        window_ms: 3_600_000,
    };

    fn counts(current: i64, previous: i64) -> Counts {
        Counts { current, previous }
    }

    #[test]
    fn from_zero_the_limit_is_exact() {
        assert!(admits(counts(9, 0), 0, HOUR));
        assert!(!admits(counts(10, 0), 0, HOUR));
        assert!(!admits(counts(10, 0), HOUR.window_ms - 1, HOUR));
    }

    #[test]
    fn the_previous_window_weighs_by_its_overlap() {
        // Half-way through, 10 in the last window count as 5.
        assert!(admits(counts(4, 10), HOUR.window_ms / 2, HOUR));
        assert!(!admits(counts(5, 10), HOUR.window_ms / 2, HOUR));
    }

    #[test]
    fn rows_move_with_the_windows() {
        let w = HOUR.window_ms;
        assert_eq!(shifted(w, 3, 2, w, w), counts(3, 2));
        assert_eq!(shifted(0, 3, 2, w, w), counts(0, 3));
        assert_eq!(shifted(0, 3, 2, 2 * w, w), counts(0, 0));
        // A replica ahead of us already started the next window.
        assert_eq!(shifted(2 * w, 3, 2, w, w), counts(3, 2));
        assert_eq!(window_start(w + 5, w), w);
    }

    #[test]
    fn a_full_window_waits_into_the_next() {
        // 10 taken at once: the first fits again just after the next window starts.
        assert_eq!(wait_ms(counts(10, 0), 0, HOUR), HOUR.window_ms + 1);
        assert_eq!(
            wait_ms(counts(10, 0), 1000, HOUR),
            HOUR.window_ms - 1000 + 1
        );
    }

    proptest! {
        /// The wait is never too short: one ms before it, the counts (moved on as time
        /// passes) still refuse; at it, they admit.
        #[test]
        fn the_wait_is_the_first_moment_one_fits(
            limit in 1u32..50,
            current in 0i64..60,
            previous in 0i64..60,
            elapsed in 0i64..60_000,
        ) {
            let rate = RateLimit { limit, window_ms: 60_000 };
            let now = counts(current, previous);
            prop_assume!(!admits(now, elapsed, rate));
            let wait = wait_ms(now, elapsed, rate);
            prop_assert!(wait >= 1 && wait <= 2 * rate.window_ms);
            let at = |t: i64| {
                let e = elapsed + t;
                if e < rate.window_ms {
                    admits(now, e, rate)
                } else {
                    admits(counts(0, current), e - rate.window_ms, rate)
                }
            };
            prop_assert!(at(wait));
            prop_assert!(!at(wait - 1));
        }
    }
}
