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
    /// A key that opens values but never seals (README § Master key rotation); empty = none.
    pub previous_master_key_file: PathBuf,
}

impl Default for Secrets {
    fn default() -> Self {
        Self {
            master_key_file: PathBuf::from("trustmail.key"),
            master_key: SecretString::from(""),
            previous_master_key_file: PathBuf::new(),
        }
    }
}

impl Secrets {
    /// `previous_master_key_file` when set.
    pub fn previous_key_file(&self) -> Option<&std::path::Path> {
        let path = self.previous_master_key_file.as_path();
        (!path.as_os_str().is_empty()).then_some(path)
    }
}
