//! `[limits]`: per-environment and per-domain counts and rates (README § Limits).

use serde::{Deserialize, Serialize};

use super::{ConfigError, at_least_one};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub domains_per_environment: u32,
    pub trusted_emails_per_domain: u32,
    /// Messages an environment may queue through `POST …/messages` in a sliding minute.
    pub messages_per_minute: u32,
    /// Verification-code mails an environment may cause in any hour.
    pub code_mails_per_hour: u32,
    /// Webhook subscriptions per environment.
    pub subscriptions_per_environment: u32,
    /// `POST …/dkim/rotate` calls (RSA key generation) an environment may make in any hour.
    pub dkim_rotations_per_hour: u32,
    /// `POST …/selfCheck` calls an environment may make in any 60 s.
    pub self_checks_per_minute: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            domains_per_environment: 50,
            trusted_emails_per_domain: 10,
            messages_per_minute: 600,
            code_mails_per_hour: 60,
            subscriptions_per_environment: 10,
            dkim_rotations_per_hour: 10,
            self_checks_per_minute: 12,
        }
    }
}

impl Limits {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        at_least_one(
            [
                (
                    "limits.domains_per_environment",
                    self.domains_per_environment,
                ),
                (
                    "limits.trusted_emails_per_domain",
                    self.trusted_emails_per_domain,
                ),
                ("limits.messages_per_minute", self.messages_per_minute),
                ("limits.code_mails_per_hour", self.code_mails_per_hour),
                (
                    "limits.subscriptions_per_environment",
                    self.subscriptions_per_environment,
                ),
                (
                    "limits.dkim_rotations_per_hour",
                    self.dkim_rotations_per_hour,
                ),
                ("limits.self_checks_per_minute", self.self_checks_per_minute),
            ]
            .map(|(key, value)| (key, u64::from(value))),
        )
    }
}
