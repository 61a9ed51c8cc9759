//! Webhook delivery: lease the deliveries that are due and POST each activity to its
//! subscription's endpoint as JSON, signed the Standard Webhooks way (`webhook-id` is the
//! activity's id, the same on every retry; `webhook-timestamp`; `webhook-signature:
//! v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` with the subscription's secret).
//!
//! Delivery is at least once: an endpoint that took a delivery whose result could not be
//! recorded (or whose lease ran out meanwhile) gets it again; receivers dedupe on `webhook-id`.
//! A 2xx answer delivers; anything else, redirects included, or no answer within
//! `webhooks.request_timeout_s`, is retried on the schedule of `domain::webhook_retry_delay`.
//!
//! Unless `webhooks.allow_private_endpoints`, only public internet addresses are connected to:
//! names through `public_dns::PublicOnly`, IP-literal hosts checked before the POST.

use std::{sync::Arc, time::Duration};

use futures_util::StreamExt;
use time::OffsetDateTime;
use tokio::sync::watch;
use tracing::Instrument;

use super::{StoppableJob, public_dns::PublicOnly};
use crate::{
    config::Webhooks,
    domain::{Activity, DeliveryState, SUSPENDED_DELIVERY_KEPT, now},
    error_chain::ErrorChain,
    store::{DeliveryOutcome, DueDelivery, Store, StoreError},
};

/// Writes an activity as a delivery's body. The API layer's, so that a delivery carries the
/// activity exactly as `GET …/activities` shows it.
pub type RenderActivity = fn(&Activity) -> Result<Vec<u8>, serde_json::Error>;

/// The longest wait between two reads of the queue (shorter when retries are configured
/// shorter, so that a retry is not held up by the poll).
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Deliveries claimed in one pass.
const BATCH_SIZE: u32 = 20;
/// POSTs in flight at once.
const CONCURRENT_POSTS: usize = 8;

#[derive(Debug, thiserror::Error)]
#[error("cannot build the webhook HTTP client")]
pub struct ClientError(#[from] reqwest::Error);

pub struct SubscriptionDelivery {
    store: Store,
    /// This process's name on the leases it takes.
    owner: String,
    /// For subscriptions with `verifyTlsCertificates` (the platform's trust store).
    verifying: reqwest::Client,
    /// For `verifyTlsCertificates: false`: any certificate is accepted.
    trusting: reqwest::Client,
    first_retry: Duration,
    request_timeout: Duration,
    render: RenderActivity,
    /// `webhooks.allow_private_endpoints`: deliver to non-global addresses too.
    allow_private: bool,
    /// When this process last failed the deliveries too old to send (`expire_old`).
    last_expiry: std::sync::Mutex<Option<std::time::Instant>>,
}

/// How often a process fails the deliveries that waited too long, whatever their subscription.
const EXPIRY_INTERVAL: Duration = Duration::from_secs(60);
const EXPIRED: &str = "not sent: it waited more than 14 days for its subscription to be enabled";

impl SubscriptionDelivery {
    pub fn new(
        store: Store,
        config: &Webhooks,
        render: RenderActivity,
    ) -> Result<Self, ClientError> {
        let allow_private = config.allow_private_endpoints;
        let client = |verify: bool| {
            let builder = reqwest::Client::builder()
                .user_agent(concat!("trustmail/", env!("CARGO_PKG_VERSION")))
                .timeout(config.request_timeout())
                .connect_timeout(config.request_timeout())
                // An endpoint answers for itself; a redirect could point anywhere.
                .redirect(reqwest::redirect::Policy::none())
                .tls_danger_accept_invalid_certs(!verify);
            if allow_private {
                return builder.build();
            }
            // A proxy would resolve the endpoint's name itself, out of `PublicOnly`'s reach.
            builder.dns_resolver(PublicOnly).no_proxy().build()
        };
        Ok(Self {
            store,
            owner: format!(
                "pid{}-{}",
                std::process::id(),
                uuid::Uuid::new_v4().simple()
            ),
            verifying: client(true)?,
            trusting: client(false)?,
            first_retry: config.first_retry(),
            request_timeout: config.request_timeout(),
            render,
            allow_private,
            last_expiry: std::sync::Mutex::new(None),
        })
    }

    /// How long a claimed delivery is ours: every POST of a batch, at `CONCURRENT_POSTS` at a
    /// time, with room to record the results.
    fn lease(&self) -> Duration {
        let rounds = BATCH_SIZE.div_ceil(CONCURRENT_POSTS as u32) + 1;
        self.request_timeout * rounds + Duration::from_secs(30)
    }

    /// Starts delivering in the background until `StoppableJob::stop`, supervised.
    pub fn spawn(self) -> StoppableJob {
        let delivery = Arc::new(self);
        StoppableJob::spawn("webhook_delivery", move |stopped| {
            delivery.clone().run(stopped)
        })
    }

    async fn run(self: Arc<Self>, stopped: watch::Receiver<bool>) {
        let poll = POLL_INTERVAL.min(self.first_retry);
        super::poll_until_stopped("webhook_delivery", stopped, poll, || {
            let this = self.clone();
            async move { this.deliver_due().await }
        })
        .await;
    }

    /// One pass: claims what is due and POSTs it. True when it claimed anything, so more may be
    /// waiting.
    pub async fn deliver_due(&self) -> Result<bool, StoreError> {
        self.expire_old().await?;
        let batch = self
            .store
            .claim_due_deliveries(&self.owner, now(), self.lease(), BATCH_SIZE)
            .await?;
        let claimed = !batch.is_empty();
        futures_util::stream::iter(batch)
            .for_each_concurrent(CONCURRENT_POSTS, |delivery| async move {
                // A POST started this late could outlive the lease, and by then another
                // deliverer may have it: leave it to be claimed again.
                if now() + self.request_timeout >= delivery.leased_until {
                    return;
                }
                let span = tracing::info_span!(
                    "webhook_delivery",
                    subscription_id = %delivery.subscription_id,
                    activity_id = %delivery.activity.id,
                    attempt = delivery.attempts + 1,
                );
                self.deliver(&delivery).instrument(span).await;
            })
            .await;
        Ok(claimed)
    }

    /// At most once per `EXPIRY_INTERVAL`: fails every delivery still waiting
    /// `SUSPENDED_DELIVERY_KEPT` after its activity, claimed or not (a disabled subscription's
    /// are never claimed, and would otherwise pile up).
    async fn expire_old(&self) -> Result<(), StoreError> {
        {
            let mut last = self
                .last_expiry
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if last.is_some_and(|at| at.elapsed() < EXPIRY_INTERVAL) {
                return Ok(());
            }
            *last = Some(std::time::Instant::now());
        }
        let at = now();
        let expired = self
            .store
            .expire_deliveries(at - SUSPENDED_DELIVERY_KEPT, at, EXPIRED)
            .await?;
        if expired > 0 {
            tracing::warn!(
                expired,
                "webhook deliveries failed unsent after waiting 14 days"
            );
            metrics::counter!("webhook_deliveries_total", "result" => "expired").increment(expired);
        }
        Ok(())
    }

    async fn deliver(&self, delivery: &DueDelivery) {
        let outcome = if now() - delivery.queued_at > SUSPENDED_DELIVERY_KEPT {
            DeliveryOutcome::Expired {
                error: EXPIRED.into(),
            }
        } else {
            self.post(delivery).await
        };
        let recorded = self
            .store
            .record_delivery(
                delivery.subscription_id,
                delivery.activity.id,
                &self.owner,
                &outcome,
                now(),
                self.first_retry,
            )
            .await;
        let result = match &recorded {
            Ok(Some((DeliveryState::Delivered, _))) => "delivered",
            Ok(Some((DeliveryState::Pending, _))) => "retrying",
            Ok(Some((DeliveryState::Failed, _))) => "failed",
            Ok(None) | Err(_) => "unrecorded",
        };
        metrics::counter!("webhook_deliveries_total", "result" => result).increment(1);
        match (recorded, &outcome) {
            (Ok(Some((state, attempts))), DeliveryOutcome::Delivered { status }) => {
                tracing::info!(%state, attempts, status, "webhook delivered")
            }
            (Ok(Some((state, attempts))), DeliveryOutcome::Failed { status, error }) => {
                tracing::warn!(%state, attempts, ?status, %error, "webhook delivery failed")
            }
            (Ok(Some((state, _))), DeliveryOutcome::Expired { error }) => {
                tracing::warn!(%state, %error, "webhook delivery given up")
            }
            (Ok(None), _) => tracing::warn!(
                "webhook attempt made after its lease passed to another deliverer; not recorded"
            ),
            (Err(e), _) => tracing::error!(
                error = %ErrorChain(&e),
                "webhook attempt not recorded; it is made again when its lease ends"
            ),
        }
    }

    /// One signed POST of the delivery's activity.
    async fn post(&self, delivery: &DueDelivery) -> DeliveryOutcome {
        let failed = |error: String| DeliveryOutcome::Failed {
            status: None,
            error,
        };
        // An address as the host never reaches the resolver; the subscription may predate
        // the operator turning `webhooks.allow_private_endpoints` off.
        if !self.allow_private
            && let Err(refused) = delivery.url.require_public()
        {
            return failed(refused.message);
        }
        let body = match (self.render)(&delivery.activity) {
            Ok(body) => body,
            Err(e) => return failed(format!("the activity cannot be written as JSON: {e}")),
        };
        let id = delivery.activity.id.to_string();
        let timestamp = OffsetDateTime::now_utc().unix_timestamp();
        let signature = standardwebhooks::Webhook::new(delivery.secret.expose())
            .and_then(|webhook| webhook.sign(&id, timestamp, &body));
        let signature = match signature {
            Ok(signature) => signature,
            Err(e) => return failed(format!("the delivery cannot be signed: {e}")),
        };
        let client = if delivery.verify_tls {
            &self.verifying
        } else {
            &self.trusting
        };
        let mut request = client.post(delivery.url.as_str());
        for (name, value) in delivery.headers.iter() {
            request = request.header(name, value);
        }
        let sent = request
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(standardwebhooks::HEADER_WEBHOOK_ID, &id)
            .header(standardwebhooks::HEADER_WEBHOOK_TIMESTAMP, timestamp)
            .header(standardwebhooks::HEADER_WEBHOOK_SIGNATURE, signature)
            .body(body)
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => DeliveryOutcome::Delivered {
                status: response.status().as_u16(),
            },
            Ok(response) => DeliveryOutcome::Failed {
                status: Some(response.status().as_u16()),
                error: format!("the endpoint answered {}", response.status()),
            },
            // Without the URL: an endpoint's path or query may hold its secret.
            Err(e) => failed(ErrorChain(&e.without_url()).to_string()),
        }
    }
}
