//! Who may call: clients, their secrets (Argon2), access tokens (`tokens`) and the first
//! administrator.

mod limits;
mod tokens;

use std::{net::IpAddr, sync::OnceLock};

use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use serde::Serialize;
use time::OffsetDateTime;

use super::{Service, ServiceError, environments::new_environment, retry_after_s};
use crate::domain::{
    Activity, ActivityType, Client, ClientId, EnvironmentId, Geography, Population, ResourceType,
    Role, now,
};

use limits::{FAILURE_WINDOW, Known, MAX_FAILURES};
pub use limits::{HashingPool, VerifiedSecrets};
pub use tokens::{Actor, TOKEN_LIFETIME_S, TokenError, TokenService};

/// What the client credentials grant answers.
#[derive(Debug)]
pub enum TokenGrant {
    Issued(String),
    /// Unknown client, another environment's client, or a wrong secret.
    Refused,
    /// Too many wrong secrets from this (client, source) pair lately.
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
    /// secret matches (README § Token endpoint limits).
    ///
    /// - A right secret always gets a token, also while its (client, source) pair is locked out.
    /// - Wrong secrets are counted per (client, `source`) in the store, so every replica sees
    ///   the same count, and only at the client's own environment: whoever knows a client id
    ///   cannot lock its owner out from elsewhere. Past `MAX_FAILURES` in `FAILURE_WINDOW`, the
    ///   pair's wrong secrets are answered `Locked`.
    /// - Every refusal outside a lockout costs one Argon2 verification (against a stand-in
    ///   hash for an unknown client), so its time does not tell whether the client exists.
    pub async fn issue_token(
        &self,
        environment_id: EnvironmentId,
        client_id: ClientId,
        secret: &str,
        source: IpAddr,
    ) -> Result<TokenGrant, ServiceError> {
        let source = limits::failure_source(source);
        let now = now();
        let window = time::Duration::try_from(FAILURE_WINDOW).unwrap_or(time::Duration::MINUTE);
        let client = self
            .store()
            .get_client(client_id)
            .await?
            .filter(|client| client.environment_id == environment_id);
        // Read for every request, known client or not, so that both cost the same.
        let failures = self
            .store()
            .token_failures(client_id, &source, now, window)
            .await?;
        let Some(client) = client else {
            // Unknown here: hashed all the same, and never counted (there is nobody to lock out).
            return Ok(match self.verify_with_argon2(None, secret).await {
                Ok(_) => TokenGrant::Refused,
                Err(limits::Busy) => TokenGrant::Busy,
            });
        };
        // Locked: the pair has had `MAX_FAILURES` wrong secrets in its current window already.
        let locked = failures.filter(|f| f.failures >= MAX_FAILURES);
        let verified = &self.inner.verified_secrets;
        let right = match verified.judge(client.id, &client.secret_hash, secret) {
            Known::Right => true,
            Known::Wrong if locked.is_some() => false,
            Known::Wrong | Known::Unknown => {
                match self
                    .verify_with_argon2(Some(&client.secret_hash), secret)
                    .await
                {
                    Ok(right) => right,
                    Err(limits::Busy) => return Ok(TokenGrant::Busy),
                }
            }
        };
        if !right {
            if let Some(locked) = locked {
                return Ok(TokenGrant::Locked {
                    retry_after_s: retry_after_s(millis_between(now, locked.window_ends_at)),
                });
            }
            self.store()
                .record_token_failure(client.id, &source, now, window)
                .await?;
            return Ok(TokenGrant::Refused);
        }
        verified.remember(client.id, &client.secret_hash, secret);
        if failures.is_some() {
            self.store()
                .clear_token_failures(client.id, &source)
                .await?;
        }
        let token = self.tokens().issue(&Actor {
            client_id: client.id,
            environment_id: client.environment_id,
            role: client.role,
        })?;
        Ok(TokenGrant::Issued(token))
    }

    /// One Argon2 verification on the bounded pool; `None` verifies against a stand-in hash of
    /// the same cost, which nothing matches.
    async fn verify_with_argon2(
        &self,
        hash: Option<&str>,
        secret: &str,
    ) -> Result<bool, limits::Busy> {
        let (hash, secret) = (hash.map(str::to_owned), secret.to_owned());
        self.inner
            .hashing
            .run(move || match hash {
                Some(hash) => verify_secret_now(&hash, &secret),
                None => {
                    verify_secret_now(stand_in_hash(), &secret);
                    false
                }
            })
            .await
    }

    /// Argon2 verifications begun by the token endpoint since this service started.
    pub fn secret_verifications(&self) -> u64 {
        self.inner.hashing.started()
    }
}

fn millis_between(from: OffsetDateTime, to: OffsetDateTime) -> i64 {
    i64::try_from((to - from).whole_milliseconds()).unwrap_or(i64::MAX)
}

/// A hash of a secret nobody has, with the parameters of real ones: what an unknown client's
/// secret is verified against. Made once, on a blocking thread (its first verification's).
fn stand_in_hash() -> &'static str {
    static STAND_IN: OnceLock<String> = OnceLock::new();
    STAND_IN.get_or_init(|| {
        hasher()
            .hash_password(new_client_secret().as_bytes())
            .map(|hash| hash.to_string())
            .unwrap_or_default()
    })
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
