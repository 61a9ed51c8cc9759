//! Clients (PingOne's worker applications): create, read, delete, rotate the secret.

use super::{
    Actor, Service, ServiceError,
    auth::{NewClient, hash_secret, new_client_secret},
    environments::name_value,
    found,
};
use crate::{
    domain::{Activity, ActivityType, Client, ClientId, Environment, ResourceType, Role, now},
    store::DeleteClient,
};

/// The longest client name accepted.
pub const MAX_CLIENT_NAME: usize = 256;

impl Service {
    /// A new client in `environment`. Organization administrators live only in the
    /// organization's environment (recorded by the bootstrap, whatever its name), and only an
    /// organization administrator makes one.
    pub async fn create_client(
        &self,
        actor: &Actor,
        environment: &Environment,
        name: &str,
        role: Role,
    ) -> Result<NewClient, ServiceError> {
        may_manage(actor, role)?;
        let name = name_value(name, MAX_CLIENT_NAME)?;
        if role == Role::OrganizationAdmin
            && self.store().organization_environment().await? != Some(environment.id)
        {
            return Err(ServiceError::InvalidValue {
                target: "role".into(),
                message: "ORGANIZATION_ADMIN clients live in the organization's environment."
                    .into(),
            });
        }
        let secret = new_client_secret();
        let client = Client {
            id: ClientId::new(),
            environment_id: environment.id,
            name,
            role,
            secret_hash: hash_secret(secret.clone()).await?,
            created_at: now(),
        };
        let activity = client_activity(actor, ActivityType::ClientCreated, &client);
        self.store().insert_client(&client, &activity).await?;
        Ok(NewClient {
            client,
            client_secret: secret,
        })
    }

    /// The client by id alone (the CLI, which acts for the organization).
    pub async fn find_client(&self, id: ClientId) -> Result<Option<Client>, ServiceError> {
        Ok(self.store().get_client(id).await?)
    }

    /// Deletes the client; its tokens stop working here at once and on every replica within
    /// a second. The last organization administrator is kept.
    pub async fn delete_client(&self, actor: &Actor, client: &Client) -> Result<(), ServiceError> {
        may_manage(actor, client.role)?;
        let activity = client_activity(actor, ActivityType::ClientDeleted, client);
        match self.store().delete_client(client, &activity).await? {
            DeleteClient::Deleted => {
                self.tokens().revoke(client.id);
                Ok(())
            }
            DeleteClient::NotFound => Err(ServiceError::NotFound),
            DeleteClient::LastOrganizationAdmin => Err(ServiceError::InvalidRequest(
                "The last ORGANIZATION_ADMIN client cannot be deleted.".into(),
            )),
        }
    }

    /// A new secret; the old one no longer gets tokens (tokens already issued run out).
    pub async fn rotate_client_secret(
        &self,
        actor: &Actor,
        client: &Client,
    ) -> Result<String, ServiceError> {
        may_manage(actor, client.role)?;
        let secret = new_client_secret();
        let hash = hash_secret(secret.clone()).await?;
        let activity = client_activity(actor, ActivityType::ClientSecretRotated, client);
        found(
            self.store()
                .set_client_secret(client.id, &hash, &activity)
                .await?,
        )?;
        Ok(secret)
    }
}

/// Only an organization administrator creates, deletes or rotates an organization
/// administrator; the API has already checked the environment and the write permission.
fn may_manage(actor: &Actor, role: Role) -> Result<(), ServiceError> {
    if role == Role::OrganizationAdmin && actor.role != Role::OrganizationAdmin {
        Err(ServiceError::Forbidden)
    } else {
        Ok(())
    }
}

fn client_activity(actor: &Actor, action: ActivityType, client: &Client) -> Activity {
    Activity::new(
        client.environment_id,
        action,
        actor.client_id,
        ResourceType::Client,
        client.id,
        &client.name,
    )
}
