//! Webhooks: every activity of an environment, POSTed to the endpoints of the subscriptions that
//! list its type. The pieces, in the order an activity meets them:
//!
//! - `domain::subscriptions`: a subscription and what it accepts (endpoint URL rules, headers,
//!   filters), the retry schedule and the pause of an endpoint that keeps failing;
//! - `api::subscriptions` and `service::subscriptions`: PingOne's `/subscriptions` resource;
//! - `store::subscriptions` (the rows, secrets and header values sealed) and `store::deliveries`:
//!   one delivery row per (subscription, activity), written with the activity in one
//!   transaction, then leased, retried and finished;
//! - `delivery` (here): the job that leases due deliveries and POSTs them, signed the Standard
//!   Webhooks way;
//! - `dns::public_only`: the resolver of its HTTP client, which keeps internal addresses out of
//!   reach.

mod delivery;

pub use delivery::{ClientError, RenderActivity, SubscriptionDelivery};
