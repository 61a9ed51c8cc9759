//! The feedback loop: what comes back after the relay (bounces, complaints, DMARC reports).
//!
//! - `return_path`: the per-recipient envelope sender (VERP) an outgoing message carries, and the
//!   check that an address arriving at the feedback MX is one trustmail issued.
//! - `suppression`: the per-environment list of addresses that are no longer sent to.
//! - `report`: what a received message reports: a bounce (DSN), a complaint (ARF) or a DMARC
//!   aggregate report.

pub mod report;
pub mod return_path;
pub mod suppression;

pub use suppression::{NotAnAddress, SuppressedAddress, Suppression, SuppressionReason};
