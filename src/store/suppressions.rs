//! An environment's suppression list (feedback/suppression.rs), and the recipients of its
//! customer messages where they part from the message's status.

use std::collections::HashSet;

use super::{FromRow, RowExt, Store, StoreError, Tx, changed, commit_recorded, millis};
use crate::{
    domain::{Activity, EnvironmentId},
    feedback::{SuppressedAddress, Suppression, SuppressionReason},
    mail::{MessageId, Recipient},
};
use sqlx::{Row, any::AnyRow};

macro_rules! suppression_columns {
    () => {
        "environment_id, address, reason, message_id, detail, created_at"
    };
}

impl FromRow for Suppression {
    const SELECT: &'static str = concat!("SELECT ", suppression_columns!(), " FROM suppressions");

    fn from_row(row: &AnyRow) -> Result<Self, StoreError> {
        Ok(Suppression {
            environment_id: row.parsed("environment_id")?,
            address: row.parsed("address")?,
            reason: row.parsed("reason")?,
            message_id: row.optional_parsed("message_id")?,
            detail: row.try_get("detail")?,
            created_at: row.time("created_at")?,
        })
    }
}

impl Store {
    /// Lists `suppression` unless its address is listed already (the entry there stays as it
    /// is); `activity` is recorded only when it is new. True when it was added.
    pub async fn add_suppression(
        &self,
        suppression: &Suppression,
        activity: &Activity,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        if !insert_suppression(&mut tx, suppression).await? {
            return Ok(false);
        }
        commit_recorded(tx, activity).await?;
        Ok(true)
    }

    pub async fn get_suppression(
        &self,
        environment_id: EnvironmentId,
        address: &SuppressedAddress,
    ) -> Result<Option<Suppression>, StoreError> {
        let query = Suppression::select("WHERE environment_id = $1 AND address = $2")
            .bind(environment_id.to_string())
            .bind(address.to_string());
        let row = query.fetch_optional(&self.pool).await?;
        row.as_ref().map(Suppression::from_row).transpose()
    }

    /// Removes the address from the list; false when it was not on it.
    pub async fn delete_suppression(
        &self,
        environment_id: EnvironmentId,
        address: &SuppressedAddress,
        activity: &Activity,
    ) -> Result<bool, StoreError> {
        let delete =
            sqlx::query("DELETE FROM suppressions WHERE environment_id = $1 AND address = $2")
                .bind(environment_id.to_string())
                .bind(address.to_string());
        self.write_recorded(delete, activity).await
    }

    /// One page of the list, newest first, of one `reason` or all; with the count of all.
    pub async fn list_suppressions(
        &self,
        environment_id: EnvironmentId,
        reason: Option<SuppressionReason>,
        (limit, offset): (u32, u32),
    ) -> Result<(Vec<Suppression>, i64), StoreError> {
        let mut filters = vec![("environment_id", environment_id.to_string())];
        filters.extend(reason.map(|r| ("reason", r.as_str().to_owned())));
        let order = "created_at DESC, address";
        self.page("suppressions", &filters, order, (limit, offset))
            .await
    }

    /// Which of `addresses` the environment's list holds.
    pub async fn suppressed_among(
        &self,
        environment_id: EnvironmentId,
        addresses: &[SuppressedAddress],
    ) -> Result<HashSet<SuppressedAddress>, StoreError> {
        if addresses.is_empty() {
            return Ok(HashSet::new());
        }
        let placeholders: Vec<String> = (2..addresses.len() + 2).map(|n| format!("${n}")).collect();
        let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT address FROM suppressions WHERE environment_id = $1 AND address IN ({})",
            placeholders.join(", ")
        )))
        .bind(environment_id.to_string());
        for address in addresses {
            query = query.bind(address.to_string());
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(|row| row.parsed("address")).collect()
    }

    /// The recipients of a message, in their order.
    pub async fn recipients(&self, message: MessageId) -> Result<Vec<Recipient>, StoreError> {
        let rows = sqlx::query(
            "SELECT position, address, status, updated_at FROM message_recipients \
             WHERE message_id = $1 ORDER BY position",
        )
        .bind(message.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(recipient_from_row).collect()
    }
}

pub(super) fn recipient_from_row(row: &AnyRow) -> Result<Recipient, StoreError> {
    Ok(Recipient {
        position: position(row)?,
        address: row.text("address")?,
        status: row.optional_parsed("status")?,
        updated_at: row.time("updated_at")?,
    })
}

/// A recipient's place, which fits in a `u16` (a message has at most 50).
pub(super) fn position(row: &AnyRow) -> Result<u16, StoreError> {
    u16::try_from(row.int("position")?).map_err(|e| StoreError::Corrupt {
        column: "position",
        reason: e.to_string(),
    })
}

/// Lists `suppression` in `tx` unless its address is listed already; true when it was added.
pub(super) async fn insert_suppression(
    tx: &mut Tx<'_>,
    suppression: &Suppression,
) -> Result<bool, StoreError> {
    let insert = sqlx::query(concat!(
        "INSERT INTO suppressions (",
        suppression_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (environment_id, address) DO NOTHING"
    ))
    .bind(suppression.environment_id.to_string())
    .bind(suppression.address.to_string())
    .bind(suppression.reason.as_str())
    .bind(suppression.message_id.map(|id| id.to_string()))
    .bind(suppression.detail.clone())
    .bind(millis(suppression.created_at));
    changed(tx, insert).await
}

/// The recipients of a message being queued, in the queueing transaction.
pub(super) async fn insert_recipients(
    tx: &mut Tx<'_>,
    message: MessageId,
    recipients: &[Recipient],
) -> Result<(), StoreError> {
    for recipient in recipients {
        sqlx::query(
            "INSERT INTO message_recipients (message_id, position, address, status, updated_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(message.to_string())
        .bind(i64::from(recipient.position))
        .bind(recipient.address.clone())
        .bind(recipient.status.map(|s| s.as_str()))
        .bind(millis(recipient.updated_at))
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}
