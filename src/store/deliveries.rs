//! Webhook deliveries: one row per (subscription, activity), queued in the transaction that
//! records the activity and POSTed by `webhooks`.
//!
//! Like the outbox, it is a lease queue (`store/lease.rs`): one deliverer holds a delivery at a
//! time, and a deliverer whose lease ran out cannot overwrite the next one's result.

use std::time::Duration;

use sqlx::any::AnyRow;
use time::OffsetDateTime;

use super::{
    FromRow, RowExt, Store, StoreError, Tx,
    activities::activity_from_row,
    lease::{Attempts, LeaseQueue, Value, attempts_from, cut},
    millis,
    subscriptions::{open_headers, open_secret},
};
use crate::domain::{
    Activity, ActivityId, DeliveryState, EndpointHeaders, EndpointUrl, SigningSecret,
    SubscriptionId, endpoint_pause, webhook_retry_delay,
};

/// Endpoint errors are kept for the reader of the delivery list, cut to this.
const MAX_ERROR_CHARS: usize = 1000;
/// The most deliveries of one subscription leased at once, across replicas: a stalled endpoint
/// holds at most this many workers.
pub const IN_FLIGHT_PER_SUBSCRIPTION: u32 = 2;
/// The most deliveries of one environment leased at once, across replicas, however many
/// subscriptions it has.
pub const IN_FLIGHT_PER_ENVIRONMENT: u32 = 4;

/// A leased delivery with everything needed to send it.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    pub subscription_id: SubscriptionId,
    pub activity: Activity,
    pub url: EndpointUrl,
    pub headers: EndpointHeaders,
    pub secret: SigningSecret,
    pub verify_tls: bool,
    /// Attempts made before this one.
    pub attempts: u32,
    pub queued_at: OffsetDateTime,
    pub leased_until: OffsetDateTime,
}

/// Where one delivery stands, as `GET …/subscriptions/{id}/deliveries` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub activity_id: ActivityId,
    pub state: DeliveryState,
    pub attempts: u32,
    pub next_attempt_at: Option<OffsetDateTime>,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub created_at: OffsetDateTime,
    pub delivered_at: Option<OffsetDateTime>,
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The endpoint answered 2xx.
    Delivered { status: u16 },
    /// Another status, or no answer (`status` is then `None`): retried on the schedule.
    Failed { status: Option<u16>, error: String },
    /// Not sent: it waited too long for its subscription to be enabled again.
    Expired { error: String },
}

/// Queues a delivery of `activity` to every subscription of its environment that takes its
/// action type (enabled or not: a disabled one sends them when enabled again), inside the
/// transaction that records it.
pub(super) async fn enqueue_deliveries(
    tx: &mut Tx<'_>,
    activity: &Activity,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO subscription_deliveries \
         (subscription_id, activity_id, state, attempts, next_attempt_at, created_at) \
         SELECT subscription_id, $1, $2, 0, $3, $3 FROM subscription_action_types \
         WHERE environment_id = $4 AND action_type = $5",
    )
    .bind(activity.id.to_string())
    .bind(DeliveryState::Pending.as_str())
    .bind(millis(activity.recorded_at))
    .bind(activity.environment_id.to_string())
    .bind(activity.action.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// Fails, with `error`, every delivery still pending that was queued before `queued_before`
    /// and is not leased at `now`; how many.
    pub async fn expire_deliveries(
        &self,
        queued_before: OffsetDateTime,
        now: OffsetDateTime,
        error: &str,
    ) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "UPDATE subscription_deliveries SET state = $1, last_error = $2 \
             WHERE state = $3 AND created_at < $4 AND (leased_until IS NULL OR leased_until < $5)",
        )
        .bind(DeliveryState::Failed.as_str())
        .bind(error)
        .bind(DeliveryState::Pending.as_str())
        .bind(millis(queued_before))
        .bind(millis(now))
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// Leases up to `limit` deliveries of enabled subscriptions due at `now` to `owner` until
    /// `now + lease`. Fair: environments take turns, and within one its subscriptions, each
    /// subscription's earliest due first; none beyond `IN_FLIGHT_PER_SUBSCRIPTION` and
    /// `IN_FLIGHT_PER_ENVIRONMENT` leased at once (counting every replica's leases), and none of
    /// a subscription paused after failures (`record_delivery`). A claimed row that cannot be
    /// read (sealed with another key) is FAILED with the reason and left out.
    pub async fn claim_due_deliveries(
        &self,
        owner: &str,
        now: OffsetDateTime,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        let now_ms = millis(now);
        // `leased`: what is in flight now, anywhere. `due`: each subscription's due deliveries
        // numbered in its order (`sub_turn`), then those within the subscription's free places
        // numbered across its environment (`env_turn`, taking its subscriptions in turn), then
        // those within the environment's free places, taking the environments in turn.
        let candidates = sqlx::query(
            "WITH leased AS (SELECT d.subscription_id, s.environment_id \
             FROM subscription_deliveries d JOIN subscriptions s ON s.id = d.subscription_id \
             WHERE d.state = $1 AND d.leased_until >= $2), \
             busy_sub AS (SELECT subscription_id, COUNT(*) AS n FROM leased \
             GROUP BY subscription_id), \
             busy_env AS (SELECT environment_id, COUNT(*) AS n FROM leased \
             GROUP BY environment_id), \
             due AS (SELECT d.subscription_id, d.activity_id, d.next_attempt_at, s.environment_id, \
             ROW_NUMBER() OVER (PARTITION BY d.subscription_id \
             ORDER BY d.next_attempt_at, d.activity_id) AS sub_turn \
             FROM subscription_deliveries d JOIN subscriptions s ON s.id = d.subscription_id \
             LEFT JOIN subscription_backoff b ON b.subscription_id = d.subscription_id \
             WHERE d.state = $1 AND d.next_attempt_at <= $2 \
             AND (d.leased_until IS NULL OR d.leased_until < $2) AND s.enabled = 1 \
             AND (b.paused_until IS NULL OR b.paused_until <= $2)), \
             open_sub AS (SELECT due.subscription_id, due.activity_id, due.next_attempt_at, \
             due.environment_id, ROW_NUMBER() OVER (PARTITION BY due.environment_id \
             ORDER BY due.sub_turn, due.next_attempt_at, due.activity_id) AS env_turn \
             FROM due LEFT JOIN busy_sub ON busy_sub.subscription_id = due.subscription_id \
             WHERE due.sub_turn + COALESCE(busy_sub.n, 0) <= $4) \
             SELECT o.subscription_id, o.activity_id FROM open_sub o \
             LEFT JOIN busy_env ON busy_env.environment_id = o.environment_id \
             WHERE o.env_turn + COALESCE(busy_env.n, 0) <= $5 \
             ORDER BY o.env_turn, o.next_attempt_at, o.activity_id LIMIT $3",
        )
        .bind(DeliveryState::Pending.as_str())
        .bind(now_ms)
        .bind(i64::from(limit))
        .bind(i64::from(IN_FLIGHT_PER_SUBSCRIPTION))
        .bind(i64::from(IN_FLIGHT_PER_ENVIRONMENT))
        .fetch_all(&self.pool)
        .await?;
        let keys = candidates
            .iter()
            .map(|row| Ok((row.parsed("subscription_id")?, row.parsed("activity_id")?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.claim::<Deliveries>(&keys, owner, now, lease).await
    }

    /// Records one attempt's outcome if `owner` still holds the lease: DELIVERED; PENDING again
    /// after the retry schedule's next wait (`first_retry` scales it); or FAILED once the
    /// schedule has run out (or at once for `Expired`). A failure also pauses the subscription's
    /// other deliveries for `domain::endpoint_pause` of its failures in a row; a 2xx ends the
    /// pause. Returns the new state and attempt count, or `None` when the lease was lost
    /// (nothing changes).
    pub async fn record_delivery(
        &self,
        subscription: SubscriptionId,
        activity: ActivityId,
        owner: &str,
        outcome: &DeliveryOutcome,
        now: OffsetDateTime,
        first_retry: Duration,
    ) -> Result<Option<(DeliveryState, u32)>, StoreError> {
        let key = Deliveries::key(&(subscription, activity));
        let Some(before) = self
            .leased_attempts::<Deliveries>(key.clone(), owner)
            .await?
        else {
            return Ok(None);
        };
        let (attempts, status, error) = match outcome {
            DeliveryOutcome::Delivered { status } => (before + 1, Some(*status), None),
            DeliveryOutcome::Failed { status, error } => (before + 1, *status, Some(error)),
            DeliveryOutcome::Expired { error } => (before, None, Some(error)),
        };
        let retry = match outcome {
            DeliveryOutcome::Failed { .. } => webhook_retry_delay(attempts, first_retry),
            _ => None,
        };
        let (state, next_attempt_at) = match (outcome, retry) {
            (DeliveryOutcome::Delivered { .. }, _) => (DeliveryState::Delivered, now),
            (_, Some(wait)) => (DeliveryState::Pending, now + wait),
            (_, None) => (DeliveryState::Failed, now),
        };
        let delivered_at = (state == DeliveryState::Delivered).then(|| millis(now));
        let set = vec![
            ("state", state.as_str().into()),
            ("next_attempt_at", next_attempt_at.into()),
            ("last_status", Value::Int(status.map(i64::from))),
            (
                "last_error",
                Value::Text(error.map(|e| cut(e, MAX_ERROR_CHARS))),
            ),
            ("delivered_at", Value::Int(delivered_at)),
        ];
        let to = Attempts::From {
            read: before,
            to: attempts,
        };
        let updated = self.release::<Deliveries>(key, owner, to, set).await?;
        if !updated {
            return Ok(None);
        }
        match outcome {
            DeliveryOutcome::Delivered { .. } => self.end_pause(subscription).await?,
            DeliveryOutcome::Failed { .. } => {
                self.pause_after_failure(subscription, now, first_retry)
                    .await?
            }
            DeliveryOutcome::Expired { .. } => {}
        }
        Ok(Some((state, attempts)))
    }

    /// One more failure in a row for the subscription's endpoint: its deliveries wait until
    /// `now + endpoint_pause`. Two deliverers failing at once may count one failure: a shorter
    /// pause, no harm.
    async fn pause_after_failure(
        &self,
        subscription: SubscriptionId,
        now: OffsetDateTime,
        first_retry: Duration,
    ) -> Result<(), StoreError> {
        let before =
            sqlx::query("SELECT failures FROM subscription_backoff WHERE subscription_id = $1")
                .bind(subscription.to_string())
                .fetch_optional(&self.pool)
                .await?
                .map(|row| attempts_from(row.int("failures")?))
                .transpose()?
                .unwrap_or(0);
        let failures = before.saturating_add(1);
        let until = now + endpoint_pause(failures, first_retry);
        // The subscription may have been deleted meanwhile: then there is nothing to pause.
        sqlx::query(
            "INSERT INTO subscription_backoff (subscription_id, failures, paused_until) \
             SELECT id, $2, $3 FROM subscriptions WHERE id = $1 \
             ON CONFLICT (subscription_id) DO UPDATE SET failures = $2, paused_until = $3",
        )
        .bind(subscription.to_string())
        .bind(i64::from(failures))
        .bind(millis(until))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The endpoint answered (or was changed): its deliveries go as they fall due.
    async fn end_pause(&self, subscription: SubscriptionId) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM subscription_backoff WHERE subscription_id = $1")
            .bind(subscription.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// One page of a subscription's deliveries, newest first, and how many there are in all.
    pub async fn list_deliveries(
        &self,
        subscription: SubscriptionId,
        limit: u32,
        offset: u32,
    ) -> Result<(Vec<Delivery>, i64), StoreError> {
        let parent = ("subscription_id", subscription.to_string());
        let order = "created_at DESC, activity_id DESC";
        self.page("subscription_deliveries", &[parent], order, (limit, offset))
            .await
    }
}

impl FromRow for Delivery {
    const SELECT: &'static str = "SELECT activity_id, state, attempts, next_attempt_at, \
        last_status, last_error, created_at, delivered_at FROM subscription_deliveries";

    fn from_row(row: &AnyRow) -> Result<Self, StoreError> {
        let state: DeliveryState = row.parsed("state")?;
        Ok(Self {
            activity_id: row.parsed("activity_id")?,
            state,
            attempts: attempts_from(row.int("attempts")?)?,
            next_attempt_at: (state == DeliveryState::Pending)
                .then(|| row.time("next_attempt_at"))
                .transpose()?,
            last_status: sqlx::Row::try_get::<Option<i64>, _>(row, "last_status")?
                .and_then(|s| u16::try_from(s).ok()),
            last_error: sqlx::Row::try_get::<Option<String>, _>(row, "last_error")?,
            created_at: row.time("created_at")?,
            delivered_at: row.optional_time("delivered_at")?,
        })
    }
}

/// Webhook deliveries as a lease queue.
struct Deliveries;

impl LeaseQueue for Deliveries {
    const TABLE: &'static str = "subscription_deliveries";
    const KEY: &'static [&'static str] = &["subscription_id", "activity_id"];
    const STATE: &'static str = "state";
    const PENDING: &'static str = DeliveryState::Pending.as_str();

    type Candidate = (SubscriptionId, ActivityId);
    type Leased = DueDelivery;

    fn key(&(subscription, activity): &(SubscriptionId, ActivityId)) -> Vec<String> {
        vec![subscription.to_string(), activity.to_string()]
    }

    async fn read_leased(
        store: &Store,
        &(subscription, activity): &(SubscriptionId, ActivityId),
        owner: &str,
    ) -> Result<Option<DueDelivery>, StoreError> {
        let row = sqlx::query(
                "SELECT a.id, a.environment_id, a.action_type, a.actor_client_id, a.resource_type, \
                 a.resource_id, a.resource_name, a.recorded_at, a.details, s.url, s.sealed_headers, \
                 s.sealed_secret, s.verify_tls, d.attempts, d.created_at AS queued_at, d.leased_until \
                 FROM subscription_deliveries d JOIN subscriptions s ON s.id = d.subscription_id \
                 JOIN activities a ON a.id = d.activity_id \
                 WHERE d.subscription_id = $1 AND d.activity_id = $2 AND d.lease_owner = $3",
            )
            .bind(subscription.to_string())
            .bind(activity.to_string())
            .bind(owner)
            .fetch_optional(&store.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let key = store.master_key()?;
        Ok(Some(DueDelivery {
            subscription_id: subscription,
            activity: activity_from_row(&row)?,
            url: EndpointUrl::parse(&row.text("url")?).map_err(|e| StoreError::Corrupt {
                column: "url",
                reason: e.to_string(),
            })?,
            headers: open_headers(key, subscription, &row.text("sealed_headers")?)?,
            secret: open_secret(key, subscription, &row.text("sealed_secret")?)?,
            verify_tls: row.int("verify_tls")? != 0,
            attempts: attempts_from(row.int("attempts")?)?,
            queued_at: row.time("queued_at")?,
            leased_until: row.time("leased_until")?,
        }))
    }

    async fn unreadable(
        store: &Store,
        &(subscription, activity): &(SubscriptionId, ActivityId),
        owner: &str,
        error: StoreError,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        tracing::error!(%subscription, %activity, error = %crate::error_chain::ErrorChain(&error),
            "webhook delivery cannot be read; marking it FAILED");
        let outcome = DeliveryOutcome::Expired {
            error: format!("the stored delivery cannot be read: {error}"),
        };
        store
            .record_delivery(subscription, activity, owner, &outcome, now, Duration::ZERO)
            .await?;
        Ok(())
    }
}
