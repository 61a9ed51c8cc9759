//! Clients, token signing keys and the one-time bootstrap.

use sqlx::any::AnyRow;
use time::OffsetDateTime;

use super::{RowExt, Store, StoreError, environments::insert_environment, insert_activity, millis};
use crate::domain::{Activity, Client, ClientId, Environment};

/// A token signing key as stored: the private half sealed under the master key.
#[derive(Debug, Clone)]
pub struct StoredSigningKey {
    pub kid: String,
    pub algorithm: String,
    pub sealed_private_key: String,
    pub public_key: String,
    pub created_at: OffsetDateTime,
}

impl Store {
    /// Creates the first environment and its administrator once; false when another process
    /// (or an earlier run) already did, in which case nothing is written.
    pub async fn bootstrap(
        &self,
        environment: &Environment,
        client: &Client,
        activity: &Activity,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let claimed = sqlx::query(
            "INSERT INTO bootstrap (id, environment_id, created_at) VALUES ('init', $1, $2)",
        )
        .bind(environment.id.to_string())
        .bind(millis(environment.created_at))
        .execute(&mut *tx)
        .await;
        match claimed {
            Ok(_) => {}
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => return Ok(false),
            Err(e) => return Err(e.into()),
        }
        insert_environment(&mut tx, environment).await?;
        insert_client(&mut tx, client).await?;
        insert_activity(&mut tx, activity).await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn is_bootstrapped(&self) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM bootstrap")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.int("n")? > 0)
    }

    /// Whether anything here was sealed with a master key (the token signing key is the first
    /// thing sealed, at the first start).
    pub async fn holds_sealed_data(&self) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM signing_keys")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.int("n")? > 0)
    }

    pub async fn insert_client(&self, client: &Client) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        insert_client(&mut tx, client).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn get_client(&self, id: ClientId) -> Result<Option<Client>, StoreError> {
        let row = sqlx::query(
            "SELECT id, environment_id, role, secret_hash, created_at FROM clients WHERE id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(client_from_row).transpose()
    }

    /// The first organization administrator, in whose name the operator's CLI acts.
    pub async fn operator_client(&self) -> Result<Option<Client>, StoreError> {
        let row = sqlx::query(
            "SELECT id, environment_id, role, secret_hash, created_at FROM clients \
             WHERE role = 'ORGANIZATION_ADMIN' ORDER BY created_at, id LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(client_from_row).transpose()
    }

    pub async fn insert_signing_key(&self, key: &StoredSigningKey) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO signing_keys (kid, algorithm, sealed_private_key, public_key, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&key.kid)
        .bind(&key.algorithm)
        .bind(&key.sealed_private_key)
        .bind(&key.public_key)
        .bind(millis(key.created_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Oldest first, so every replica signs with the same (first) key.
    pub async fn list_signing_keys(&self) -> Result<Vec<StoredSigningKey>, StoreError> {
        let rows = sqlx::query(
            "SELECT kid, algorithm, sealed_private_key, public_key, created_at \
             FROM signing_keys ORDER BY created_at, kid",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(StoredSigningKey {
                    kid: row.text("kid")?,
                    algorithm: row.text("algorithm")?,
                    sealed_private_key: row.text("sealed_private_key")?,
                    public_key: row.text("public_key")?,
                    created_at: row.time("created_at")?,
                })
            })
            .collect()
    }
}

async fn insert_client(tx: &mut super::Tx<'_>, client: &Client) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO clients (id, environment_id, role, secret_hash, created_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(client.id.to_string())
    .bind(client.environment_id.to_string())
    .bind(client.role.as_str())
    .bind(&client.secret_hash)
    .bind(millis(client.created_at))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn client_from_row(row: &AnyRow) -> Result<Client, StoreError> {
    Ok(Client {
        id: row.parsed("id")?,
        environment_id: row.parsed("environment_id")?,
        role: row.parsed("role")?,
        secret_hash: row.text("secret_hash")?,
        created_at: row.time("created_at")?,
    })
}
