//! The feedback loop: what comes back after the relay (bounces, complaints, DMARC reports).
//!
//! - `return_path`: the per-recipient envelope sender (VERP) an outgoing message carries, and the
//!   check that an address arriving at the feedback MX is one trustmail issued.
//! - `suppression`: the per-environment list of addresses that are no longer sent to.
//! - `dmarc`: DMARC aggregate reports as kept per domain, and their summary by source IP.
//! - `events`: what came back about one recipient (a relay refusal, a bounce, a complaint).
//! - `mx`: the feedback MX, the SMTP server they arrive at.
//! - `report`: what a received message reports: a bounce (DSN), a complaint (ARF) or a DMARC
//!   aggregate report.

pub mod dmarc;
pub mod events;
pub mod mx;
pub mod report;
pub mod return_path;
pub mod suppression;

pub use events::{FeedbackEvent, FeedbackEventId, FeedbackKind, FeedbackSource};
pub use suppression::{NotAnAddress, SuppressedAddress, Suppression, SuppressionReason};

use crate::{
    mail::{Recipient, StoredMessage},
    store::StoreError,
};

/// What outbox delivery asks of the feedback loop (`service::Service` implements it): each
/// recipient's envelope sender, and a relay's refusal of one recipient, recorded as a bounce.
#[async_trait::async_trait]
pub trait DeliveryFeedback: Send + Sync {
    /// `path`'s address on `domain`.
    fn return_path(&self, path: return_path::ReturnPath, domain: &str) -> String;

    /// The relay refused `recipient` for good with `reply`: a hard bounce, which suppresses
    /// the address.
    async fn refused_by_relay(
        &self,
        message: &StoredMessage,
        recipient: &Recipient,
        reply: &str,
    ) -> Result<(), StoreError>;
}
