//! `[records]`: the names and values of the DNS records customers publish.

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// The record names and the SPF include (PingOne's are `_amazonses`, `_pingoneemail` and
/// `amazonses.com`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Records {
    pub ownership_prefix: String,
    pub environment_prefix: String,
    pub spf_include: String,
}

impl Default for Records {
    fn default() -> Self {
        Self {
            ownership_prefix: "_trustmail".into(),
            environment_prefix: "_trustmail-environment".into(),
            spf_include: "spf.trustmail.example".into(),
        }
    }
}

impl Records {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        for (key, value) in [
            ("records.ownership_prefix", &self.ownership_prefix),
            ("records.environment_prefix", &self.environment_prefix),
            ("records.spf_include", &self.spf_include),
        ] {
            if value.is_empty() || value.contains(char::is_whitespace) {
                return Err(ConfigError::invalid(key, "must be a non-empty DNS name"));
            }
        }
        Ok(())
    }
}
