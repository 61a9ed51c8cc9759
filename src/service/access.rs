//! Clients, tokens and the first administrator.

use serde::Serialize;

use super::{
    Actor, Service, ServiceError,
    environments::new_environment,
    tokens::{hash_secret, new_client_secret, verify_secret},
};
use crate::domain::{
    Activity, ActivityType, Client, ClientId, EnvironmentId, Geography, ResourceType, Role, now,
};

/// The name of the environment `init` creates.
pub const ADMINISTRATORS: &str = "Administrators";

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
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewClient {
    pub client_id: ClientId,
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
            .bootstrap(&environment, &client, &activity)
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

    /// A new client in `environment_id`. Organization administrators live in Administrators.
    pub async fn create_client(
        &self,
        environment_id: EnvironmentId,
        role: Role,
    ) -> Result<NewClient, ServiceError> {
        let environment = self.environment(environment_id).await?;
        if role == Role::OrganizationAdmin && environment.name != ADMINISTRATORS {
            return Err(ServiceError::InvalidValue {
                target: "role".into(),
                message: format!(
                    "ORGANIZATION_ADMIN clients live in the {ADMINISTRATORS} environment."
                ),
            });
        }
        let secret = new_client_secret();
        let client = Client {
            id: ClientId::new(),
            environment_id,
            role,
            secret_hash: hash_secret(secret.clone()).await?,
            created_at: now(),
        };
        self.store().insert_client(&client).await?;
        Ok(NewClient {
            client_id: client.id,
            client_secret: secret,
        })
    }

    /// Client credentials grant: a token when the client lives in `environment_id` and the
    /// secret matches; `None` otherwise (the caller answers `invalid_client`).
    pub async fn issue_token(
        &self,
        environment_id: EnvironmentId,
        client_id: ClientId,
        secret: &str,
    ) -> Result<Option<String>, ServiceError> {
        let Some(client) = self.store().get_client(client_id).await? else {
            return Ok(None);
        };
        if client.environment_id != environment_id
            || !verify_secret(client.secret_hash.clone(), secret.to_owned()).await
        {
            return Ok(None);
        }
        let token = self.tokens().issue(&Actor {
            client_id: client.id,
            environment_id: client.environment_id,
            role: client.role,
        })?;
        Ok(Some(token))
    }
}

pub fn token_url(public_url: &str, environment_id: EnvironmentId) -> String {
    format!("{public_url}/{environment_id}/as/token")
}
