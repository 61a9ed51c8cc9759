//! Environments (tenants).

use std::sync::Arc;

use super::{Actor, Service, ServiceError};
use crate::domain::{
    Activity, ActivityType, BillOfMaterials, Client, Environment, EnvironmentId, EnvironmentType,
    Geography, Population, ResourceType, now, random_base64url,
};

/// The longest environment name accepted.
pub const MAX_ENVIRONMENT_NAME: usize = 256;
/// The longest `license.id` accepted (PingOne's are 36-character UUIDs).
pub const MAX_LICENSE_ID: usize = 256;

/// What a create sets; `named` gives PingOne's defaults for the rest.
#[derive(Debug, Clone)]
pub struct NewEnvironment {
    pub name: String,
    pub region: Geography,
    pub environment_type: EnvironmentType,
    pub description: Option<String>,
    /// `None`: the configured `environments.default_license_id`, when answered.
    pub license_id: Option<String>,
    /// `None`: PING_ONE_BASE alone.
    pub bill_of_materials: Option<BillOfMaterials>,
}

impl NewEnvironment {
    pub fn named(name: &str, region: Geography) -> Self {
        Self {
            name: name.to_owned(),
            region,
            environment_type: EnvironmentType::Sandbox,
            description: None,
            license_id: None,
            bill_of_materials: None,
        }
    }
}

/// What a PUT of an environment sets: PingOne's update replaces name, description and
/// license; `type` and `region` may be sent again, and the region cannot change.
#[derive(Debug, Clone)]
pub struct EnvironmentUpdate {
    pub name: String,
    pub region: Option<Geography>,
    /// `None` keeps the type (`PUT …/type` changes it too).
    pub environment_type: Option<EnvironmentType>,
    pub description: Option<String>,
    pub license_id: Option<String>,
}

impl Service {
    /// An environment with PingOne's defaults (CLI and tests).
    pub async fn create_environment(
        &self,
        actor: &Actor,
        name: &str,
        region: Geography,
    ) -> Result<Environment, ServiceError> {
        self.create_environment_from(actor, NewEnvironment::named(name, region))
            .await
    }

    /// Creates the environment and the default population it starts with.
    pub async fn create_environment_from(
        &self,
        actor: &Actor,
        new: NewEnvironment,
    ) -> Result<Environment, ServiceError> {
        let mut environment = new_environment(environment_name(&new.name)?, new.region);
        environment.environment_type = new.environment_type;
        environment.description = kept_text("description", new.description)?;
        environment.license_id = new.license_id.as_deref().map(license_id).transpose()?;
        environment.bill_of_materials = new.bill_of_materials.unwrap_or_default();
        let activity = Activity::new(
            actor.environment_id,
            ActivityType::EnvironmentCreated,
            actor.client_id,
            ResourceType::Environment,
            environment.id,
            &environment.name,
        );
        let population = Population::initial(environment.id, environment.created_at);
        self.store()
            .insert_environment(&environment, &population, &activity)
            .await?;
        Ok(environment)
    }

    /// `PUT /v1/environments/{id}`.
    pub async fn update_environment(
        &self,
        actor: &Actor,
        environment: &Environment,
        update: EnvironmentUpdate,
    ) -> Result<Environment, ServiceError> {
        if update
            .region
            .is_some_and(|region| region != environment.region)
        {
            return Err(ServiceError::InvalidValue {
                target: "region".into(),
                message: "The region of an environment cannot be changed.".into(),
            });
        }
        let name = environment_name(&update.name)?;
        let description = kept_text("description", update.description)?;
        let license_id = update.license_id.as_deref().map(license_id).transpose()?;
        self.save_environment(actor, environment.id, move |updated| {
            updated.name = name;
            updated.description = description;
            updated.license_id = license_id;
            if let Some(environment_type) = update.environment_type {
                updated.environment_type = environment_type;
            }
        })
        .await
    }

    /// `PUT /v1/environments/{id}/type`.
    pub async fn set_environment_type(
        &self,
        actor: &Actor,
        environment: &Environment,
        environment_type: EnvironmentType,
    ) -> Result<Environment, ServiceError> {
        self.save_environment(actor, environment.id, move |updated| {
            updated.environment_type = environment_type;
        })
        .await
    }

    /// `PUT /v1/environments/{id}/billOfMaterials`: the products are replaced; the solution
    /// type stays what the create set (PingOne ignores it on a PUT).
    pub async fn set_bill_of_materials(
        &self,
        actor: &Actor,
        environment: &Environment,
        bill_of_materials: BillOfMaterials,
    ) -> Result<Environment, ServiceError> {
        let at = now();
        self.save_environment(actor, environment.id, move |updated| {
            updated.bill_of_materials = BillOfMaterials {
                solution_type: updated.bill_of_materials.solution_type,
                products: bill_of_materials.products,
            };
            updated.bill_of_materials_updated_at = at;
        })
        .await
    }

    /// The license an environment answers: the one it was given, or the configured default.
    pub fn license_of<'a>(&'a self, environment: &'a Environment) -> &'a str {
        environment
            .license_id
            .as_deref()
            .unwrap_or(&self.settings().default_license_id)
    }

    /// Applies `change` to the environment as stored (not to a cached copy, which may be a
    /// moment old) and records the update.
    async fn save_environment(
        &self,
        actor: &Actor,
        id: EnvironmentId,
        change: impl FnOnce(&mut Environment) + Send,
    ) -> Result<Environment, ServiceError> {
        let saved = self
            .store()
            .update_environment(id, now(), change, |environment| {
                Activity::new(
                    actor.environment_id,
                    ActivityType::EnvironmentUpdated,
                    actor.client_id,
                    ResourceType::Environment,
                    environment.id,
                    &environment.name,
                )
            })
            .await?;
        self.inner.cache.forget_environment(id);
        saved.ok_or(ServiceError::NotFound)
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
        let clients = self.store().list::<Client>(id).await?;
        let deleted = self.store().delete_environment(id, &activity).await?;
        self.inner.cache.forget_environment(id);
        // Its domains' keys: the published copy does not know environments.
        self.inner.published.reload_soon();
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

/// An environment with PingOne's defaults: SANDBOX, the configured license, PING_ONE_BASE.
pub(super) fn new_environment(name: String, region: Geography) -> Environment {
    let created_at = now();
    Environment {
        id: EnvironmentId::new(),
        name,
        region,
        environment_type: EnvironmentType::Sandbox,
        description: None,
        license_id: None,
        bill_of_materials: BillOfMaterials::default(),
        bill_of_materials_updated_at: created_at,
        email_token: random_base64url(32),
        created_at,
        updated_at: created_at,
    }
}

fn environment_name(raw: &str) -> Result<String, ServiceError> {
    name_value(raw, MAX_ENVIRONMENT_NAME)
}

/// A member kept as sent (descriptions, opaque ids), when there is one: anything but NUL,
/// which PostgreSQL cannot store in text.
pub(super) fn kept_text(
    target: &str,
    value: Option<String>,
) -> Result<Option<String>, ServiceError> {
    match value {
        Some(text) if text.contains('\0') => Err(ServiceError::InvalidValue {
            target: target.into(),
            message: format!("{target} must not contain NUL characters."),
        }),
        other => Ok(other),
    }
}

/// `license.id`: kept as sent, 1 to `MAX_LICENSE_ID` characters without control characters.
pub fn license_id(raw: &str) -> Result<String, ServiceError> {
    if raw.is_empty() {
        return Err(ServiceError::RequiredValue {
            target: "license.id".into(),
        });
    }
    if raw.chars().count() > MAX_LICENSE_ID || raw.chars().any(char::is_control) {
        return Err(ServiceError::InvalidValue {
            target: "license.id".into(),
            message: format!(
                "The license id must be 1 to {MAX_LICENSE_ID} characters without control characters."
            ),
        });
    }
    Ok(raw.to_owned())
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
