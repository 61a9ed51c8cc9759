//! Environments (tenants).

use std::sync::Arc;

use super::{Actor, Service, ServiceError};
use crate::domain::{
    Activity, ActivityType, Environment, EnvironmentId, Geography, ResourceType, now,
    random_base64url,
};

/// The longest environment name accepted.
pub const MAX_ENVIRONMENT_NAME: usize = 256;

impl Service {
    pub async fn create_environment(
        &self,
        actor: &Actor,
        name: &str,
        region: Geography,
    ) -> Result<Environment, ServiceError> {
        let name = environment_name(name)?;
        let environment = new_environment(name, region);
        let activity = Activity::new(
            actor.environment_id,
            ActivityType::EnvironmentCreated,
            actor.client_id,
            ResourceType::Environment,
            environment.id,
            &environment.name,
        );
        self.store()
            .insert_environment(&environment, &activity)
            .await?;
        Ok(environment)
    }

    /// Every environment for an organization administrator; otherwise the caller's own.
    pub async fn list_environments(&self, actor: &Actor) -> Result<Vec<Environment>, ServiceError> {
        if actor.role.spans_environments() {
            Ok(self.store().list_environments().await?)
        } else {
            Ok(self
                .environment(actor.environment_id)
                .await
                .map(|e| vec![Environment::clone(&e)])
                .or_else(|e| match e {
                    ServiceError::NotFound => Ok(Vec::new()),
                    other => Err(other),
                })?)
        }
    }

    pub async fn environment(&self, id: EnvironmentId) -> Result<Arc<Environment>, ServiceError> {
        if let Some(environment) = self.inner.cache.environment(id) {
            return Ok(environment);
        }
        let environment = Arc::new(
            self.store()
                .get_environment(id)
                .await?
                .ok_or(ServiceError::NotFound)?,
        );
        self.inner.cache.put_environment(environment.clone());
        Ok(environment)
    }

    pub async fn delete_environment(
        &self,
        actor: &Actor,
        environment: &Environment,
    ) -> Result<(), ServiceError> {
        let id = environment.id;
        if id == actor.environment_id {
            return Err(ServiceError::InvalidRequest(
                "An environment cannot be deleted by a client that lives in it.".into(),
            ));
        }
        let activity = Activity::new(
            actor.environment_id,
            ActivityType::EnvironmentDeleted,
            actor.client_id,
            ResourceType::Environment,
            id,
            &environment.name,
        );
        // The store revokes them for every replica; this one refuses their tokens at once.
        let clients = self.store().list_clients(id).await?;
        let deleted = self.store().delete_environment(id, &activity).await?;
        self.inner.cache.forget_environment(id);
        if deleted {
            for client in clients {
                self.tokens().revoke(client.id);
            }
            Ok(())
        } else {
            Err(ServiceError::NotFound)
        }
    }
}

pub(super) fn new_environment(name: String, region: Geography) -> Environment {
    let created_at = now();
    Environment {
        id: EnvironmentId::new(),
        name,
        region,
        email_token: random_base64url(32),
        created_at,
        updated_at: created_at,
    }
}

fn environment_name(raw: &str) -> Result<String, ServiceError> {
    name_value(raw, MAX_ENVIRONMENT_NAME)
}

/// A resource's `name`: trimmed, 1 to `max` characters, no control characters.
pub(super) fn name_value(raw: &str, max: usize) -> Result<String, ServiceError> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(ServiceError::RequiredValue {
            target: "name".into(),
        });
    }
    if name.chars().count() > max || name.chars().any(char::is_control) {
        return Err(ServiceError::InvalidValue {
            target: "name".into(),
            message: format!("The name must be 1 to {max} characters without control characters."),
        });
    }
    Ok(name.to_owned())
}
