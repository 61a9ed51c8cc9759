//! `[webhooks]`: delivering activities to subscriptions' endpoints.

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// Webhook deliveries (README § Webhooks).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Webhooks {
    /// The first retry's wait; the later ones are fixed multiples of it (`domain::subscriptions`).
    pub first_retry_ms: u64,
    /// The most one POST to an endpoint may take, connection included.
    pub request_timeout_s: u64,
    /// Deliver to loopback, private and other non-global addresses too (receivers inside the
    /// operator's network); off, an environment administrator cannot reach them through trustmail.
    pub allow_private_endpoints: bool,
    /// The most connecting to an endpoint may take (TCP and TLS), within `request_timeout_s`:
    /// an endpoint that never accepts gives its worker back this soon.
    pub connect_timeout_s: u64,
    /// Accept `http://` endpoints: deliveries and their headers then cross the network
    /// unencrypted (a receiver in development, or inside the operator's network).
    pub allow_http_endpoints: bool,
}

impl Default for Webhooks {
    fn default() -> Self {
        Self {
            first_retry_ms: 5000,
            request_timeout_s: 10,
            allow_private_endpoints: false,
            connect_timeout_s: 3,
            allow_http_endpoints: false,
        }
    }
}

impl Webhooks {
    /// The longest first retry accepted: an hour (the last retry then comes after ~8 months).
    const MAX_FIRST_RETRY_MS: u64 = 3_600_000;
    /// The longest request timeout accepted: a delivery's lease must outlast it.
    pub const MAX_REQUEST_TIMEOUT_S: u64 = 300;

    pub fn first_retry(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.first_retry_ms)
    }

    pub fn request_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.request_timeout_s)
    }

    /// Never longer than the whole request may take (a config that lowered only
    /// `request_timeout_s` below the default stays valid).
    pub fn connect_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.connect_timeout_s.min(self.request_timeout_s))
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=Self::MAX_FIRST_RETRY_MS).contains(&self.first_retry_ms) {
            return Err(ConfigError::invalid(
                "webhooks.first_retry_ms",
                format!("must be 1 to {}", Self::MAX_FIRST_RETRY_MS),
            ));
        }
        if !(1..=Self::MAX_REQUEST_TIMEOUT_S).contains(&self.request_timeout_s) {
            return Err(ConfigError::invalid(
                "webhooks.request_timeout_s",
                format!("must be 1 to {}", Self::MAX_REQUEST_TIMEOUT_S),
            ));
        }
        if !(1..=Self::MAX_REQUEST_TIMEOUT_S).contains(&self.connect_timeout_s) {
            return Err(ConfigError::invalid(
                "webhooks.connect_timeout_s",
                format!("must be 1 to {}", Self::MAX_REQUEST_TIMEOUT_S),
            ));
        }
        Ok(())
    }
}
