use sqlx::{Row, any::AnyRow};

use super::{FromRow, RowExt, Store, StoreError};
use crate::domain::{Activity, EnvironmentId};

impl Store {
    /// One page of an environment's activities, newest first, and how many there are in all.
    pub async fn list_activities(
        &self,
        environment_id: EnvironmentId,
        limit: u32,
        offset: u32,
    ) -> Result<(Vec<Activity>, i64), StoreError> {
        let parent = ("environment_id", environment_id.to_string());
        let order = "recorded_at DESC, id DESC";
        self.page("activities", &[parent], order, (limit, offset))
            .await
    }
}

impl FromRow for Activity {
    const SELECT: &'static str = "SELECT id, environment_id, action_type, actor_client_id, \
        resource_type, resource_id, resource_name, recorded_at, details FROM activities";

    fn from_row(row: &AnyRow) -> Result<Self, StoreError> {
        activity_from_row(row)
    }
}

/// An activity from a row holding the `activities` columns (by their own names).
pub(super) fn activity_from_row(row: &AnyRow) -> Result<Activity, StoreError> {
    Ok(Activity {
        id: row.parsed("id")?,
        environment_id: row.parsed("environment_id")?,
        action: row.parsed("action_type")?,
        actor: match row.text("actor_client_id")?.as_str() {
            "" => None,
            id => Some(id.parse().map_err(|e: uuid::Error| StoreError::Corrupt {
                column: "actor_client_id",
                reason: e.to_string(),
            })?),
        },
        resource_type: row.parsed("resource_type")?,
        resource_id: row.text("resource_id")?,
        resource_name: row.text("resource_name")?,
        details: row
            .try_get::<Option<String>, _>("details")?
            .and_then(|d| serde_json::from_str(&d).ok()),
        recorded_at: row.time("recorded_at")?,
    })
}
