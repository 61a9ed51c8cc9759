//! Clients, their revocations, token signing keys and the one-time bootstrap.

use sqlx::any::AnyRow;
use time::OffsetDateTime;

use super::{
    Child, FromRow, RowExt, Store, StoreError, changed, commit_recorded,
    environments::insert_environment, lock_environment, millis,
};
use crate::domain::{Activity, Client, ClientId, Environment, EnvironmentId, Population, Role};

macro_rules! client_columns {
    () => {
        "id, environment_id, name, role, secret_hash, created_at"
    };
}

/// What a client delete did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteClient {
    Deleted,
    NotFound,
    /// Refused: it is the last ORGANIZATION_ADMIN, without which nobody manages environments.
    LastOrganizationAdmin,
}

/// A token signing key as stored: the private half sealed under the master key.
#[derive(Debug, Clone)]
pub struct StoredSigningKey {
    pub kid: String,
    pub algorithm: String,
    pub sealed_private_key: String,
    pub public_key: String,
    pub created_at: OffsetDateTime,
}

/// How long a revocation is kept: past a token's lifetime (plus slack for clock skew between
/// replicas) no token it refuses is still valid anyway.
const REVOCATION_KEPT_MS: i64 = (crate::domain::TOKEN_LIFETIME_S + 300) * 1000;

impl Store {
    /// Creates the first environment and its administrator once; false when another process
    /// (or an earlier run) already did, in which case nothing is written.
    pub async fn bootstrap(
        &self,
        environment: &Environment,
        default_population: &Population,
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
        insert_environment(&mut tx, environment, default_population).await?;
        insert_client(&mut tx, client).await?;
        commit_recorded(tx, activity).await?;
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

    /// The organization's environment, recorded by the bootstrap; `None` before it.
    pub async fn organization_environment(&self) -> Result<Option<EnvironmentId>, StoreError> {
        let row = sqlx::query("SELECT environment_id FROM bootstrap WHERE id = 'init'")
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(|r| r.parsed("environment_id")).transpose()
    }

    pub async fn insert_client(
        &self,
        client: &Client,
        activity: &Activity,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        insert_client(&mut tx, client).await?;
        commit_recorded(tx, activity).await?;
        Ok(())
    }

    pub async fn get_client(&self, id: ClientId) -> Result<Option<Client>, StoreError> {
        self.fetch_optional_as(Client::select("WHERE id = $1").bind(id.to_string()))
            .await
    }

    /// The first organization administrator, in whose name the operator's CLI acts.
    pub async fn operator_client(&self) -> Result<Option<Client>, StoreError> {
        self.fetch_optional_as(Client::select(
            "WHERE role = 'ORGANIZATION_ADMIN' ORDER BY created_at, id LIMIT 1",
        ))
        .await
    }

    /// Deletes the client and records its revocation, so every replica refuses its tokens.
    /// Deletes in its environment are serialised on the environment row, so two concurrent
    /// deletes cannot both remove "the other" last organization administrator.
    pub async fn delete_client(
        &self,
        client: &Client,
        activity: &Activity,
    ) -> Result<DeleteClient, StoreError> {
        let mut tx = self.pool.begin().await?;
        lock_environment(&mut tx, client.environment_id).await?;
        if client.role == Role::OrganizationAdmin {
            let row = sqlx::query(
                "SELECT COUNT(*) AS n FROM clients WHERE role = 'ORGANIZATION_ADMIN' AND id <> $1",
            )
            .bind(client.id.to_string())
            .fetch_one(&mut *tx)
            .await?;
            if row.int("n")? == 0 {
                return Ok(DeleteClient::LastOrganizationAdmin);
            }
        }
        let write = sqlx::query("DELETE FROM clients WHERE id = $1").bind(client.id.to_string());
        if !changed(&mut tx, write).await? {
            return Ok(DeleteClient::NotFound);
        }
        let now = millis(activity.recorded_at);
        sqlx::query("DELETE FROM client_revocations WHERE revoked_at < $1")
            .bind(now - REVOCATION_KEPT_MS)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO client_revocations (client_id, revoked_at) VALUES ($1, $2)")
            .bind(client.id.to_string())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        commit_recorded(tx, activity).await?;
        Ok(DeleteClient::Deleted)
    }

    /// Replaces the secret's hash; false when the client is gone.
    pub async fn set_client_secret(
        &self,
        id: ClientId,
        secret_hash: &str,
        activity: &Activity,
    ) -> Result<bool, StoreError> {
        let update = sqlx::query("UPDATE clients SET secret_hash = $1 WHERE id = $2")
            .bind(secret_hash)
            .bind(id.to_string());
        self.write_recorded(update, activity).await
    }

    /// Clients revoked at or after `since` (deleted, or in a deleted environment).
    pub async fn revoked_clients(
        &self,
        since: OffsetDateTime,
    ) -> Result<Vec<ClientId>, StoreError> {
        let rows = sqlx::query("SELECT client_id FROM client_revocations WHERE revoked_at >= $1")
            .bind(millis(since))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|row| row.parsed("client_id")).collect()
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
        self.fetch_all_as(StoredSigningKey::select("ORDER BY created_at, kid"))
            .await
    }
}

async fn insert_client(tx: &mut super::Tx<'_>, client: &Client) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO clients (id, environment_id, name, role, secret_hash, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(client.id.to_string())
    .bind(client.environment_id.to_string())
    .bind(&client.name)
    .bind(client.role.as_str())
    .bind(&client.secret_hash)
    .bind(millis(client.created_at))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl FromRow for Client {
    const SELECT: &'static str = concat!("SELECT ", client_columns!(), " FROM clients");

    fn from_row(row: &AnyRow) -> Result<Self, StoreError> {
        Ok(Client {
            id: row.parsed("id")?,
            environment_id: row.parsed("environment_id")?,
            name: row.text("name")?,
            role: row.parsed("role")?,
            secret_hash: row.text("secret_hash")?,
            created_at: row.time("created_at")?,
        })
    }
}

impl Child for Client {
    type Parent = EnvironmentId;
    type Id = ClientId;
}

impl FromRow for StoredSigningKey {
    const SELECT: &'static str =
        "SELECT kid, algorithm, sealed_private_key, public_key, created_at FROM signing_keys";

    fn from_row(row: &AnyRow) -> Result<Self, StoreError> {
        Ok(StoredSigningKey {
            kid: row.text("kid")?,
            algorithm: row.text("algorithm")?,
            sealed_private_key: row.text("sealed_private_key")?,
            public_key: row.text("public_key")?,
            created_at: row.time("created_at")?,
        })
    }
}
