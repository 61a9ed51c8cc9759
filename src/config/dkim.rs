//! `[dkim]`: the keys trustmail makes for new domains.

use serde::{Deserialize, Serialize};

use crate::domain::DkimAlgorithm;

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Dkim {
    /// `rsa-2048` or `ed25519`: the type of new keys (existing keys keep theirs).
    #[serde(
        deserialize_with = "super::serde_forms::parsed",
        serialize_with = "super::serde_forms::by_name"
    )]
    pub algorithm: DkimAlgorithm,
}
