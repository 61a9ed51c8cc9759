//! Who may call: clients, their secrets (Argon2), access tokens (`tokens`) and the first
//! administrator.

mod limits;
mod tokens;

use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use serde::Serialize;

use super::{Service, ServiceError, environments::new_environment, retry_after_s};
use crate::domain::{
    Activity, ActivityType, Client, ClientId, EnvironmentId, Geography, Population, ResourceType,
    Role, now,
};

pub use limits::{FailedSecrets, HashingPool};
pub use tokens::{Actor, TOKEN_LIFETIME_S, TokenError, TokenService};

/// What the client credentials grant answers.
#[derive(Debug)]
pub enum TokenGrant {
    Issued(String),
    /// Unknown client, another environment's client, or a wrong secret.
    Refused,
    /// Too many wrong secrets for this client lately; nothing was hashed.
    Locked {
        retry_after_s: u64,
    },
    /// Every hashing slot and queue place is taken; nothing was hashed.
    Busy,
}

/// The name of the environment `init` creates. Only a name: which environment is the
/// organization's is recorded by the bootstrap (`Store::organization_environment`).
pub const ADMINISTRATORS: &str = "Administrators";
/// The name of the client `init` creates.
const BOOTSTRAP_CLIENT: &str = "Administrator";

/// Printed once by `init` and by the first `serve`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Credentials {
    pub environment_id: EnvironmentId,
    pub client_id: ClientId,
    pub client_secret: String,
    pub token_url: String,
}

/// A client and its secret, which exists only in this value.
#[derive(Debug, Clone)]
pub struct NewClient {
    pub client: Client,
    pub client_secret: String,
}

impl Service {
    /// Creates "Administrators" and an organization administrator, unless already done.
    pub async fn bootstrap(&self, public_url: &str) -> Result<Option<Credentials>, ServiceError> {
        if self.store().is_bootstrapped().await? {
            return Ok(None);
        }
        let environment = new_environment(ADMINISTRATORS.to_owned(), Geography::Na);
        let secret = new_client_secret();
        let client = Client {
            id: ClientId::new(),
            environment_id: environment.id,
            name: BOOTSTRAP_CLIENT.to_owned(),
            role: Role::OrganizationAdmin,
            secret_hash: hash_secret(secret.clone()).await?,
            created_at: now(),
        };
        let activity = Activity::new(
            environment.id,
            ActivityType::EnvironmentCreated,
            client.id,
            ResourceType::Environment,
            environment.id,
            &environment.name,
        );
        if !self
            .store()
            .bootstrap(
                &environment,
                &Population::initial(environment.id, environment.created_at),
                &client,
                &activity,
            )
            .await?
        {
            return Ok(None);
        }
        Ok(Some(Credentials {
            environment_id: environment.id,
            client_id: client.id,
            client_secret: secret,
            token_url: token_url(public_url, environment.id),
        }))
    }

    /// Who the CLI acts as: the first organization administrator; `None` before `init`.
    pub async fn operator(&self) -> Result<Option<Actor>, ServiceError> {
        Ok(self.store().operator_client().await?.map(|client| Actor {
            client_id: client.id,
            environment_id: client.environment_id,
            role: client.role,
        }))
    }

    /// Client credentials grant: a token when the client lives in `environment_id` and the
    /// secret matches. A client with `limits::MAX_FAILURES` wrong secrets in the last minute is
    /// locked out before anything is hashed, whatever it sends.
    pub async fn issue_token(
        &self,
        environment_id: EnvironmentId,
        client_id: ClientId,
        secret: &str,
    ) -> Result<TokenGrant, ServiceError> {
        let failed = &self.inner.failed_secrets;
        if let Some(wait) = failed.locked_for(client_id) {
            let wait_ms = i64::try_from(wait.as_millis()).unwrap_or(i64::MAX);
            return Ok(TokenGrant::Locked {
                retry_after_s: retry_after_s(wait_ms),
            });
        }
        let Some(client) = self.store().get_client(client_id).await? else {
            return Ok(TokenGrant::Refused);
        };
        let (hash, secret) = (client.secret_hash.clone(), secret.to_owned());
        let Ok(matches) = self
            .inner
            .hashing
            .run(move || verify_secret_now(&hash, &secret))
            .await
        else {
            return Ok(TokenGrant::Busy);
        };
        if client.environment_id != environment_id || !matches {
            failed.record_failure(client_id);
            return Ok(TokenGrant::Refused);
        }
        failed.clear(client_id);
        let token = self.tokens().issue(&Actor {
            client_id: client.id,
            environment_id: client.environment_id,
            role: client.role,
        })?;
        Ok(TokenGrant::Issued(token))
    }
}

pub fn token_url(public_url: &str, environment_id: EnvironmentId) -> String {
    format!("{public_url}/{environment_id}/as/token")
}

/// A new client secret: 256 random bits, shown once, stored only as its Argon2 hash.
pub fn new_client_secret() -> String {
    crate::domain::random_base64url(32)
}

/// Client secrets are 256 random bits, not passwords: there is no dictionary to slow down, so a
/// 4 MiB memory cost (Argon2id's default is 19 MiB) keeps token issuing cheap and the process
/// small without weakening them.
fn hasher() -> Argon2<'static> {
    argon2::Params::new(4 * 1024, 2, 1, None).map_or_else(
        |_| Argon2::default(),
        |params| Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params),
    )
}

/// Hashes off the async workers: Argon2 is deliberately slow.
pub async fn hash_secret(secret: String) -> Result<String, TokenError> {
    tokio::task::spawn_blocking(move || {
        hasher()
            .hash_password(secret.as_bytes())
            .map(|hash| hash.to_string())
            .map_err(|e| TokenError::Key(e.to_string()))
    })
    .await
    .map_err(|e| TokenError::Key(e.to_string()))?
}

/// Verifies off the async workers; the parameters come from the stored hash.
pub async fn verify_secret(hash: String, secret: String) -> bool {
    tokio::task::spawn_blocking(move || verify_secret_now(&hash, &secret))
        .await
        .unwrap_or(false)
}

/// Verifies on this thread (callers run it on a blocking one).
fn verify_secret_now(hash: &str, secret: &str) -> bool {
    hasher().verify_password(secret.as_bytes(), hash).is_ok()
}
