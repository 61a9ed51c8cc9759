//! `[secrets]`: the master key that seals secrets at rest.

use std::path::PathBuf;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Secrets {
    pub master_key_file: PathBuf,
    /// The key itself (base64 of 32 bytes), e.g. from `TRUSTMAIL_SECRETS__MASTER_KEY`; when set
    /// it is used instead of the file.
    #[serde(serialize_with = "super::serde_forms::redacted")]
    pub master_key: SecretString,
}

impl Default for Secrets {
    fn default() -> Self {
        Self {
            master_key_file: PathBuf::from("trustmail.key"),
            master_key: SecretString::from(""),
        }
    }
}
