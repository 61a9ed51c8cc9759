//! Populations: PingOne's groups of users in an environment. trustmail has no users; it keeps
//! populations so that PingOne's clients, which expect an environment to have a default one,
//! work unchanged (docs/ENVIRONMENTS.md).

use time::OffsetDateTime;

use super::{EnvironmentId, PopulationId};

/// The name and description PingOne gives the population every environment starts with (and
/// that its Terraform provider restores when `pingone_population_default` is destroyed).
pub const DEFAULT_POPULATION_NAME: &str = "Default";
pub const DEFAULT_POPULATION_DESCRIPTION: &str = "Automatically created population.";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Population {
    pub id: PopulationId,
    pub environment_id: EnvironmentId,
    pub is_default: bool,
    pub fields: PopulationFields,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// What a create or a PUT sets. Every member but `name` is kept as sent, or absent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PopulationFields {
    pub name: String,
    pub description: Option<String>,
    /// As sent, in its order; `None` when not sent (answered absent, not as `[]`).
    pub alternative_identifiers: Option<Vec<String>>,
    pub preferred_language: Option<String>,
    pub password_policy_id: Option<String>,
    /// `None`: the environment's default theme (`default_theme_id`).
    pub theme_id: Option<String>,
}

impl Population {
    /// The default population a new environment starts with.
    pub fn initial(environment_id: EnvironmentId, at: OffsetDateTime) -> Self {
        Self {
            id: PopulationId::new(),
            environment_id,
            is_default: true,
            fields: PopulationFields {
                name: DEFAULT_POPULATION_NAME.to_owned(),
                description: Some(DEFAULT_POPULATION_DESCRIPTION.to_owned()),
                ..PopulationFields::default()
            },
            created_at: at,
            updated_at: at,
        }
    }
}

/// The id of an environment's default theme, which a population without a theme of its own
/// answers (PingOne's do, and its Terraform provider waits for one). trustmail has no themes:
/// the id is the environment's own UUID made a version-8 UUID, the RFC 9562 version for
/// application-defined layouts, so it is the same on every replica and restart without being
/// stored, and no version-4 id (every other id here) can equal it.
pub fn default_theme_id(environment_id: EnvironmentId) -> String {
    uuid::Builder::from_custom_bytes(*environment_id.as_uuid().as_bytes())
        .into_uuid()
        .hyphenated()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_theme_is_stable_per_environment_and_never_a_v4_id() {
        let env = EnvironmentId::new();
        let theme = default_theme_id(env);
        assert_eq!(theme, default_theme_id(env));
        assert_ne!(theme, default_theme_id(EnvironmentId::new()));
        let parsed = uuid::Uuid::parse_str(&theme).unwrap();
        assert_eq!(parsed.get_version_num(), 8);
        assert_ne!(theme, env.to_string());
    }

    #[test]
    fn a_new_environment_starts_with_pingones_default_population() {
        let env = EnvironmentId::new();
        let population = Population::initial(env, super::super::now());
        assert!(population.is_default);
        assert_eq!(population.fields.name, "Default");
        assert_eq!(
            population.fields.description.as_deref(),
            Some("Automatically created population.")
        );
        assert_eq!(population.fields.theme_id, None);
    }
}
