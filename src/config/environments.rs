//! `[environments]`: what an environment gets when its create does not say.

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// What environments answer when a create did not say (README § Environments and populations).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Environments {
    /// `license.id` of an environment created without a `license`.
    pub default_license_id: String,
}

impl Default for Environments {
    fn default() -> Self {
        Self {
            default_license_id: DEFAULT_LICENSE_ID.to_owned(),
        }
    }
}

/// trustmail has no licences: the nil UUID says so, has the UUID shape PingOne's clients
/// validate a license id against, and is the same on every replica without coordination.
pub const DEFAULT_LICENSE_ID: &str = "00000000-0000-0000-0000-000000000000";

impl Environments {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let license = &self.default_license_id;
        if license.is_empty()
            || license.chars().count() > 256
            || license.chars().any(char::is_control)
        {
            return Err(ConfigError::invalid(
                "environments.default_license_id",
                "must be 1 to 256 characters without control characters",
            ));
        }
        Ok(())
    }
}
