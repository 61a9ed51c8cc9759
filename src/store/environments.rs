use sqlx::any::AnyRow;

use super::{RowExt, Store, StoreError, insert_activity, millis};
use crate::domain::{Activity, Environment, EnvironmentId};

macro_rules! environment_columns {
    () => {
        "id, name, region, email_token, created_at, updated_at"
    };
}

impl Store {
    pub async fn insert_environment(
        &self,
        environment: &Environment,
        activity: &Activity,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        insert_environment(&mut tx, environment).await?;
        insert_activity(&mut tx, activity).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn list_environments(&self) -> Result<Vec<Environment>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            environment_columns!(),
            " FROM environments ORDER BY created_at, id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(environment_from_row).collect()
    }

    pub async fn get_environment(
        &self,
        id: EnvironmentId,
    ) -> Result<Option<Environment>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            environment_columns!(),
            " FROM environments WHERE id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(environment_from_row).transpose()
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
        let deleted = sqlx::query("DELETE FROM environments WHERE id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if deleted == 0 {
            return Ok(false);
        }
        sqlx::query("DELETE FROM activities WHERE environment_id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        insert_activity(&mut tx, activity).await?;
        tx.commit().await?;
        Ok(true)
    }
}

pub(super) async fn insert_environment(
    tx: &mut super::Tx<'_>,
    environment: &Environment,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO environments (id, name, region, email_token, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(environment.id.to_string())
    .bind(&environment.name)
    .bind(environment.region.as_str())
    .bind(&environment.email_token)
    .bind(millis(environment.created_at))
    .bind(millis(environment.updated_at))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn environment_from_row(row: &AnyRow) -> Result<Environment, StoreError> {
    Ok(Environment {
        id: row.parsed("id")?,
        name: row.text("name")?,
        region: row.parsed("region")?,
        email_token: row.text("email_token")?,
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
    })
}
