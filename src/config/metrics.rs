//! `[metrics]`: where `/metrics` is served and to whom.

use std::net::SocketAddr;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::ConfigError;

/// Where `/metrics` is served and to whom (README § Operating it).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Metrics {
    /// IP:PORT of a listener that serves only `/metrics`; empty = on the API's listener.
    pub listen: String,
    /// A bearer token a scrape must send; empty = none needed.
    #[serde(serialize_with = "super::serde_forms::redacted")]
    pub token: SecretString,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            listen: String::new(),
            token: SecretString::from(""),
        }
    }
}

impl Metrics {
    /// The address of the separate listener, when there is one (checked at load).
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        self.listen.parse().ok()
    }

    /// The token scrapes must present, when one is set.
    pub fn token(&self) -> Option<SecretString> {
        let token = self.token.expose_secret().trim();
        (!token.is_empty()).then(|| SecretString::from(token))
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !self.listen.is_empty() && self.listen_addr().is_none() {
            return Err(ConfigError::invalid(
                "metrics.listen",
                "must be IP:PORT or empty",
            ));
        }
        Ok(())
    }
}
