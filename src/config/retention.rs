//! `[retention]`: how long finished rows are kept.

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// How long finished rows are kept before `jobs::retention` deletes them (README § Retention).
/// Whole days, 1 to `Retention::MAX_DAYS`: 0 is refused rather than read as "delete at once" or
/// "keep for ever"; a large value keeps rows for as long as anyone will ask.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Retention {
    /// Sent and failed outbox rows, counted from their creation, and the Idempotency-Keys of
    /// `POST …/messages` (whose 24 h window a day's retention already outlasts).
    pub messages_days: u32,
    /// Delivered and failed webhook deliveries, counted from their queueing.
    pub deliveries_days: u32,
    /// The audit log; an activity goes with its remaining deliveries, never while one is pending.
    pub activities_days: u32,
    /// Feedback events (bounces, complaints) and DMARC aggregate reports, counted from their
    /// arrival.
    pub feedback_days: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            messages_days: 30,
            deliveries_days: 30,
            activities_days: 90,
            feedback_days: 90,
        }
    }
}

impl Retention {
    /// A hundred years: as good as for ever, and far from overflowing a time.
    pub const MAX_DAYS: u32 = 36_500;

    pub fn messages(&self) -> time::Duration {
        time::Duration::days(i64::from(self.messages_days))
    }

    pub fn deliveries(&self) -> time::Duration {
        time::Duration::days(i64::from(self.deliveries_days))
    }

    pub fn activities(&self) -> time::Duration {
        time::Duration::days(i64::from(self.activities_days))
    }

    pub fn feedback(&self) -> time::Duration {
        time::Duration::days(i64::from(self.feedback_days))
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        for (key, days) in [
            ("retention.messages_days", self.messages_days),
            ("retention.deliveries_days", self.deliveries_days),
            ("retention.activities_days", self.activities_days),
            ("retention.feedback_days", self.feedback_days),
        ] {
            if !(1..=Self::MAX_DAYS).contains(&days) {
                return Err(ConfigError::invalid(
                    key,
                    format!(
                        "must be 1 to {} (days); 0 would delete rows as soon as they are \
                         finished; to keep them longer, set a larger number",
                        Self::MAX_DAYS
                    ),
                ));
            }
        }
        Ok(())
    }
}
