//! Webhook subscriptions. Their headers and signing secret are sealed with the master key
//! (headers usually carry the endpoint's credentials; the secret must be read back to sign).

use std::collections::BTreeMap;

use sqlx::any::AnyRow;

use super::{Query, RowExt, Store, StoreError, Tx, changed, commit_recorded, count, millis};
use crate::{
    domain::{
        Activity, EndpointHeaders, EndpointUrl, EnvironmentId, SigningSecret, Subscription,
        SubscriptionId, SubscriptionSettings,
    },
    secrets::{Binding, MasterKey},
};

macro_rules! subscription_columns {
    () => {
        "id, environment_id, name, enabled, url, sealed_headers, format, verify_tls, created_at, \
         updated_at"
    };
}

#[derive(Debug, thiserror::Error)]
pub enum CreateSubscriptionError {
    #[error("the environment does not exist")]
    EnvironmentNotFound,
    #[error("the environment already has {maximum} subscriptions")]
    LimitReached { maximum: u32 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// `SELECT` of every subscription column followed by `rest` (`WHERE …`, `ORDER BY …`); the
/// action types are read apart, by `subscription_from_row`.
fn select_subscriptions<'q>(rest: &str) -> Query<'q> {
    // `rest` is always a literal of this module; every value is bound.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        concat!("SELECT ", subscription_columns!(), " FROM subscriptions {}"),
        rest
    )))
}

impl Store {
    /// Stores a new subscription with its secret, and `activity`, in one transaction, unless
    /// the environment has `maximum` already. Concurrent creates in one environment are
    /// serialised by the environment row.
    pub async fn insert_subscription(
        &self,
        subscription: &Subscription,
        secret: &SigningSecret,
        maximum: u32,
        activity: &Activity,
    ) -> Result<(), CreateSubscriptionError> {
        let key = self.master_key()?;
        let sealed_secret = seal_secret(key, subscription.id, secret)?;
        let mut tx = self
            .begin_locked(
                subscription.environment_id,
                CreateSubscriptionError::EnvironmentNotFound,
            )
            .await?;
        let query =
            sqlx::query("SELECT COUNT(*) AS n FROM subscriptions WHERE environment_id = $1")
                .bind(subscription.environment_id.to_string());
        let count = count(&mut tx, query).await?;
        if count >= i64::from(maximum) {
            return Err(CreateSubscriptionError::LimitReached { maximum });
        }
        written(
            "INSERT INTO subscriptions (name, enabled, url, sealed_headers, format, verify_tls, \
             updated_at, id, environment_id, created_at, sealed_secret) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            key,
            subscription,
        )?
        .bind(millis(subscription.created_at))
        .bind(sealed_secret)
        .execute(&mut *tx)
        .await?;
        insert_action_types(&mut tx, subscription).await?;
        commit_recorded(tx, activity).await?;
        Ok(())
    }

    /// An environment's subscriptions, oldest first.
    pub async fn list_subscriptions(
        &self,
        environment_id: EnvironmentId,
    ) -> Result<Vec<Subscription>, StoreError> {
        let rows = select_subscriptions("WHERE environment_id = $1 ORDER BY created_at, id")
            .bind(environment_id.to_string())
            .fetch_all(&self.pool)
            .await?;
        let mut subscriptions = Vec::with_capacity(rows.len());
        for row in &rows {
            subscriptions.push(self.subscription_from_row(row).await?);
        }
        Ok(subscriptions)
    }

    pub async fn get_subscription(
        &self,
        environment_id: EnvironmentId,
        id: SubscriptionId,
    ) -> Result<Option<Subscription>, StoreError> {
        let row = select_subscriptions("WHERE id = $1 AND environment_id = $2")
            .bind(id.to_string())
            .bind(environment_id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(row) => Ok(Some(self.subscription_from_row(&row).await?)),
            None => Ok(None),
        }
    }

    /// Replaces what a PUT sets (the secret stays). False when the subscription is gone.
    pub async fn update_subscription(
        &self,
        subscription: &Subscription,
        activity: &Activity,
    ) -> Result<bool, StoreError> {
        let key = self.master_key()?;
        let mut tx = self.pool.begin().await?;
        let write = written(
            "UPDATE subscriptions SET name = $1, enabled = $2, url = $3, sealed_headers = $4, \
             format = $5, verify_tls = $6, updated_at = $7 WHERE id = $8 AND environment_id = $9",
            key,
            subscription,
        )?;
        if !changed(&mut tx, write).await? {
            return Ok(false);
        }
        sqlx::query("DELETE FROM subscription_action_types WHERE subscription_id = $1")
            .bind(subscription.id.to_string())
            .execute(&mut *tx)
            .await?;
        // A changed endpoint starts afresh: the old one's failures do not pause it.
        sqlx::query("DELETE FROM subscription_backoff WHERE subscription_id = $1")
            .bind(subscription.id.to_string())
            .execute(&mut *tx)
            .await?;
        insert_action_types(&mut tx, subscription).await?;
        commit_recorded(tx, activity).await?;
        Ok(true)
    }

    /// Deletes the subscription and its deliveries. False when it was not there.
    pub async fn delete_subscription(
        &self,
        subscription: &Subscription,
        activity: &Activity,
    ) -> Result<bool, StoreError> {
        let delete = sqlx::query("DELETE FROM subscriptions WHERE id = $1 AND environment_id = $2")
            .bind(subscription.id.to_string())
            .bind(subscription.environment_id.to_string());
        self.write_recorded(delete, activity).await
    }

    /// A new signing secret; deliveries from now on (retries included) are signed with it.
    /// False when the subscription is gone.
    pub async fn set_subscription_secret(
        &self,
        subscription: &Subscription,
        secret: &SigningSecret,
        activity: &Activity,
    ) -> Result<bool, StoreError> {
        let sealed = seal_secret(self.master_key()?, subscription.id, secret)?;
        let update = sqlx::query(
            "UPDATE subscriptions SET sealed_secret = $1 WHERE id = $2 AND environment_id = $3",
        )
        .bind(sealed)
        .bind(subscription.id.to_string())
        .bind(subscription.environment_id.to_string());
        self.write_recorded(update, activity).await
    }

    /// The master key that seals subscriptions' secrets: never stored without it.
    pub(super) fn master_key(&self) -> Result<&MasterKey, StoreError> {
        self.sealer.as_deref().ok_or(StoreError::Corrupt {
            column: "sealed_secret",
            reason: "no master key is loaded".into(),
        })
    }

    async fn subscription_from_row(&self, row: &AnyRow) -> Result<Subscription, StoreError> {
        let id: SubscriptionId = row.parsed("id")?;
        let types = sqlx::query(
            "SELECT action_type FROM subscription_action_types WHERE subscription_id = $1 \
             ORDER BY position",
        )
        .bind(id.to_string())
        .fetch_all(&self.pool)
        .await?;
        let action_types = types
            .iter()
            .map(|t| t.parsed("action_type"))
            .collect::<Result<_, _>>()?;
        let key = self.master_key()?;
        Ok(Subscription {
            id,
            environment_id: row.parsed("environment_id")?,
            settings: SubscriptionSettings {
                name: row.text("name")?,
                enabled: row.int("enabled")? != 0,
                url: EndpointUrl::parse(&row.text("url")?).map_err(corrupt("url"))?,
                headers: open_headers(key, id, &row.text("sealed_headers")?)?,
                format: row.parsed("format")?,
                action_types,
                verify_tls: row.int("verify_tls")? != 0,
            },
            created_at: row.time("created_at")?,
            updated_at: row.time("updated_at")?,
        })
    }
}

/// `sql` with what a create or a PUT writes bound as `$1`…`$9`: name, enabled, url, sealed
/// headers, format, verify_tls, updated_at, id, environment_id.
fn written(
    sql: &'static str,
    key: &MasterKey,
    subscription: &Subscription,
) -> Result<Query<'static>, StoreError> {
    let settings = &subscription.settings;
    Ok(sqlx::query(sql)
        .bind(settings.name.clone())
        .bind(i64::from(settings.enabled))
        .bind(settings.url.as_str().to_owned())
        .bind(seal_headers(key, subscription.id, &settings.headers)?)
        .bind(settings.format.as_str())
        .bind(i64::from(settings.verify_tls))
        .bind(millis(subscription.updated_at))
        .bind(subscription.id.to_string())
        .bind(subscription.environment_id.to_string()))
}

async fn insert_action_types(
    tx: &mut Tx<'_>,
    subscription: &Subscription,
) -> Result<(), StoreError> {
    for (position, action) in subscription.settings.action_types.iter().enumerate() {
        sqlx::query(
            "INSERT INTO subscription_action_types \
             (subscription_id, environment_id, action_type, position) VALUES ($1, $2, $3, $4)",
        )
        .bind(subscription.id.to_string())
        .bind(subscription.environment_id.to_string())
        .bind(action.as_str())
        .bind(position as i64)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

fn seal_headers(
    key: &MasterKey,
    id: SubscriptionId,
    headers: &EndpointHeaders,
) -> Result<String, StoreError> {
    let json = serde_json::to_vec(headers.as_map()).map_err(|e| StoreError::Corrupt {
        column: "sealed_headers",
        reason: e.to_string(),
    })?;
    Ok(key.seal(&Binding::subscription_headers(id), &json)?)
}

fn seal_secret(
    key: &MasterKey,
    id: SubscriptionId,
    secret: &SigningSecret,
) -> Result<String, StoreError> {
    Ok(key.seal(
        &Binding::subscription_secret(id),
        secret.expose().as_bytes(),
    )?)
}

pub(super) fn open_headers(
    key: &MasterKey,
    id: SubscriptionId,
    sealed: &str,
) -> Result<EndpointHeaders, StoreError> {
    let json = key.open(&Binding::subscription_headers(id), sealed)?;
    let map: BTreeMap<String, String> =
        serde_json::from_slice(&json).map_err(|e| StoreError::Corrupt {
            column: "sealed_headers",
            reason: e.to_string(),
        })?;
    EndpointHeaders::parse(map).map_err(corrupt("sealed_headers"))
}

pub(super) fn open_secret(
    key: &MasterKey,
    id: SubscriptionId,
    sealed: &str,
) -> Result<SigningSecret, StoreError> {
    let text = String::from_utf8(key.open(&Binding::subscription_secret(id), sealed)?).ok();
    text.as_deref()
        .and_then(SigningSecret::parse)
        .ok_or(StoreError::Corrupt {
            column: "sealed_secret",
            reason: "not a whsec_ secret".into(),
        })
}

fn corrupt<E: std::fmt::Display>(column: &'static str) -> impl Fn(E) -> StoreError {
    move |e| StoreError::Corrupt {
        column,
        reason: e.to_string(),
    }
}
