//! `[domains]`: how domain names are judged.

use serde::{Deserialize, Serialize};

use super::ConfigError;

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Domains {
    #[serde(deserialize_with = "super::serde_forms::string_or_list")]
    pub extra_public_suffixes: Vec<String>,
}

impl Domains {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        for suffix in &self.extra_public_suffixes {
            if idna::domain_to_ascii(suffix.trim_end_matches('.')).map_or(true, |s| s.is_empty()) {
                return Err(ConfigError::invalid(
                    "domains.extra_public_suffixes",
                    format!("`{suffix}` is not a domain name"),
                ));
            }
        }
        Ok(())
    }
}
