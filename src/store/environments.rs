use sqlx::{Row, any::AnyRow};

use super::{
    FromRow, RowExt, Store, StoreError, changed, commit_recorded, insert_activity,
    lock_environment, millis, populations::insert_population,
};
use crate::domain::{Activity, BillOfMaterials, Environment, EnvironmentId, Population};

macro_rules! environment_columns {
    () => {
        "id, name, region, environment_type, description, license_id, bill_of_materials, \
         bill_of_materials_updated_at, email_token, created_at, updated_at"
    };
}

impl Store {
    /// The environment with the population it starts with, in one transaction.
    pub async fn insert_environment(
        &self,
        environment: &Environment,
        default_population: &Population,
        activity: &Activity,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        insert_environment(&mut tx, environment, default_population).await?;
        commit_recorded(tx, activity).await?;
        Ok(())
    }

    /// Applies `change` to the environment as stored, under its row lock (so that concurrent
    /// updates, on any replica, each start from the other's result), stamps `updated_at`, and
    /// writes every settable field (name, type, description, license, bill of materials) with
    /// the activity `activity` names. `None` if it no longer exists.
    pub async fn update_environment(
        &self,
        id: EnvironmentId,
        updated_at: time::OffsetDateTime,
        change: impl FnOnce(&mut Environment) + Send,
        activity: impl FnOnce(&Environment) -> Activity + Send,
    ) -> Result<Option<Environment>, StoreError> {
        let mut tx = self.pool.begin().await?;
        if !lock_environment(&mut tx, id).await? {
            return Ok(None);
        }
        let row = Environment::select("WHERE id = $1")
            .bind(id.to_string())
            .fetch_one(&mut *tx)
            .await?;
        let mut environment = Environment::from_row(&row)?;
        change(&mut environment);
        environment.updated_at = updated_at;
        sqlx::query(
            "UPDATE environments SET name = $1, environment_type = $2, description = $3, \
             license_id = $4, bill_of_materials = $5, bill_of_materials_updated_at = $6, \
             updated_at = $7 WHERE id = $8",
        )
        .bind(&environment.name)
        .bind(environment.environment_type.as_str())
        .bind(&environment.description)
        .bind(&environment.license_id)
        .bind(environment.bill_of_materials.to_json().to_string())
        .bind(millis(environment.bill_of_materials_updated_at))
        .bind(millis(environment.updated_at))
        .bind(environment.id.to_string())
        .execute(&mut *tx)
        .await?;
        insert_activity(&mut tx, &activity(&environment)).await?;
        tx.commit().await?;
        Ok(Some(environment))
    }

    pub async fn list_environments(&self) -> Result<Vec<Environment>, StoreError> {
        self.fetch_all_as(Environment::select("ORDER BY created_at, id"))
            .await
    }

    pub async fn get_environment(
        &self,
        id: EnvironmentId,
    ) -> Result<Option<Environment>, StoreError> {
        self.fetch_optional_as(Environment::select("WHERE id = $1").bind(id.to_string()))
            .await
    }

    /// Deletes the environment and everything in it (domains, records, clients, activities);
    /// `activity` is recorded elsewhere (the acting client's environment). False if unknown.
    pub async fn delete_environment(
        &self,
        id: EnvironmentId,
        activity: &Activity,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        // Its clients go with it (ON DELETE CASCADE): every replica must refuse their tokens.
        sqlx::query(
            "INSERT INTO client_revocations (client_id, revoked_at) \
             SELECT id, $1 FROM clients WHERE environment_id = $2",
        )
        .bind(millis(activity.recorded_at))
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
        let write = sqlx::query("DELETE FROM environments WHERE id = $1").bind(id.to_string());
        if !changed(&mut tx, write).await? {
            return Ok(false);
        }
        sqlx::query("DELETE FROM activities WHERE environment_id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        // Every rate window counts for one environment, named by its id.
        sqlx::query("DELETE FROM rate_windows WHERE subject = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        commit_recorded(tx, activity).await?;
        Ok(true)
    }
}

pub(super) async fn insert_environment(
    tx: &mut super::Tx<'_>,
    environment: &Environment,
    default_population: &Population,
) -> Result<(), StoreError> {
    sqlx::query(concat!(
        "INSERT INTO environments (",
        environment_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
    ))
    .bind(environment.id.to_string())
    .bind(&environment.name)
    .bind(environment.region.as_str())
    .bind(environment.environment_type.as_str())
    .bind(&environment.description)
    .bind(&environment.license_id)
    .bind(environment.bill_of_materials.to_json().to_string())
    .bind(millis(environment.bill_of_materials_updated_at))
    .bind(&environment.email_token)
    .bind(millis(environment.created_at))
    .bind(millis(environment.updated_at))
    .execute(&mut **tx)
    .await?;
    insert_population(tx, default_population).await
}

impl FromRow for Environment {
    const SELECT: &'static str = concat!("SELECT ", environment_columns!(), " FROM environments");

    fn from_row(row: &AnyRow) -> Result<Self, StoreError> {
        Ok(Environment {
            id: row.parsed("id")?,
            name: row.text("name")?,
            region: row.parsed("region")?,
            environment_type: row.parsed("environment_type")?,
            description: row.try_get("description")?,
            license_id: row.try_get("license_id")?,
            bill_of_materials: bill_of_materials(row)?,
            bill_of_materials_updated_at: row.time("bill_of_materials_updated_at")?,
            email_token: row.text("email_token")?,
            created_at: row.time("created_at")?,
            updated_at: row.time("updated_at")?,
        })
    }
}

/// The stored bill of materials; an environment made before they were stored has the default.
fn bill_of_materials(row: &AnyRow) -> Result<BillOfMaterials, StoreError> {
    let Some(text) = row.try_get::<Option<String>, _>("bill_of_materials")? else {
        return Ok(BillOfMaterials::default());
    };
    let corrupt = |reason: String| StoreError::Corrupt {
        column: "bill_of_materials",
        reason,
    };
    let value = serde_json::from_str(&text).map_err(|e| corrupt(e.to_string()))?;
    BillOfMaterials::parse(&value, "").map_err(|e| corrupt(e.to_string()))
}
