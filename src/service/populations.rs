//! Populations of an environment (docs/ENVIRONMENTS.md): at most one default, names unique in
//! the environment, the default and the last one never deleted.

use super::{
    Actor, Service, ServiceError,
    environments::{kept_text, name_value},
};
use crate::{
    domain::{
        Activity, ActivityType, Environment, Population, PopulationFields, PopulationId,
        ResourceType, now,
    },
    store::PopulationError,
};

/// The longest population name accepted.
pub const MAX_POPULATION_NAME: usize = 256;

impl Service {
    /// A new population; `default: true` makes it the default in place of the previous one.
    pub async fn create_population(
        &self,
        actor: &Actor,
        environment: &Environment,
        fields: PopulationFields,
        default: Option<bool>,
    ) -> Result<Population, ServiceError> {
        let at = now();
        let population = Population {
            id: PopulationId::new(),
            environment_id: environment.id,
            is_default: default.unwrap_or(false),
            fields: population_fields(fields)?,
            created_at: at,
            updated_at: at,
        };
        self.save_population(actor, &population, true, ActivityType::PopulationCreated)
            .await?;
        Ok(population)
    }

    /// PingOne's PUT: every field is replaced by what was sent (absent ones cleared), except
    /// `default`, which an absent `default` leaves as it was (its Terraform provider's
    /// `pingone_population` never sends it).
    pub async fn update_population(
        &self,
        actor: &Actor,
        population: &Population,
        fields: PopulationFields,
        default: Option<bool>,
    ) -> Result<Population, ServiceError> {
        let updated = Population {
            is_default: default.unwrap_or(population.is_default),
            fields: population_fields(fields)?,
            updated_at: now(),
            ..population.clone()
        };
        self.save_population(actor, &updated, false, ActivityType::PopulationUpdated)
            .await?;
        Ok(updated)
    }

    /// Refused for the default population and for the environment's last one, as PingOne
    /// refuses them.
    pub async fn delete_population(
        &self,
        actor: &Actor,
        population: &Population,
    ) -> Result<(), ServiceError> {
        let activity = population_activity(actor, population, ActivityType::PopulationDeleted);
        self.store()
            .delete_population(population, &activity)
            .await
            .map_err(refusal)
    }

    async fn save_population(
        &self,
        actor: &Actor,
        population: &Population,
        new: bool,
        action: ActivityType,
    ) -> Result<(), ServiceError> {
        let activity = population_activity(actor, population, action);
        self.store()
            .save_population(population, new, &activity)
            .await
            .map_err(refusal)
    }
}

fn population_fields(fields: PopulationFields) -> Result<PopulationFields, ServiceError> {
    Ok(PopulationFields {
        name: name_value(&fields.name, MAX_POPULATION_NAME)?,
        description: kept_text("description", fields.description)?,
        alternative_identifiers: fields.alternative_identifiers,
        preferred_language: kept_text("preferredLanguage", fields.preferred_language)?,
        password_policy_id: kept_text("passwordPolicy.id", fields.password_policy_id)?,
        theme_id: kept_text("theme.id", fields.theme_id)?,
    })
}

fn population_activity(actor: &Actor, population: &Population, action: ActivityType) -> Activity {
    Activity::new(
        population.environment_id,
        action,
        actor.client_id,
        ResourceType::Population,
        population.id,
        &population.fields.name,
    )
}

fn refusal(e: PopulationError) -> ServiceError {
    match e {
        PopulationError::NotFound => ServiceError::NotFound,
        PopulationError::DuplicateName => ServiceError::Uniqueness {
            target: "name".into(),
            message: "Another population of the environment has this name.".into(),
        },
        PopulationError::IsDefault => ServiceError::Constraint {
            target: "default".into(),
            message: "The default population cannot be deleted; make another population the \
                      default first."
                .into(),
        },
        PopulationError::LastPopulation => ServiceError::Constraint {
            target: "id".into(),
            message: "An environment must contain at least one population.".into(),
        },
        PopulationError::Store(e) => ServiceError::Store(e),
    }
}
