//! Webhook delivery: lease the deliveries that are due and POST each activity to its
//! subscription's endpoint as JSON, signed the Standard Webhooks way (`webhook-id` is the
//! activity's id, the same on every retry; `webhook-timestamp`; `webhook-signature:
//! v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` with the subscription's secret).
//!
//! Delivery is at least once: an endpoint that took a delivery whose result could not be
//! recorded (or whose lease ran out meanwhile) gets it again; receivers dedupe on `webhook-id`.
//! A 2xx answer delivers; anything else, redirects included, or no answer within
//! `webhooks.request_timeout_s` (no connection within `webhooks.connect_timeout_s`), is retried
//! on the schedule of `domain::webhook_retry_delay`.
//!
//! One tenant's stalled endpoints delay nobody else's: `WORKERS` POSTs run at once, each started
//! as soon as a worker is free (not batch by batch), and the claim gives each subscription and
//! environment at most a few of them, in turn (`Store::claim_due_deliveries`); an endpoint that
//! keeps failing is paused (`domain::endpoint_pause`) rather than given worker after worker.
//!
//! Only `https://` endpoints on public internet addresses are delivered to, unless
//! `webhooks.allow_http_endpoints` / `webhooks.allow_private_endpoints`: names through
//! `dns::public_only::PublicOnly`, the URL itself checked before each POST.

use std::{sync::Arc, time::Duration};

use time::OffsetDateTime;
use tokio::{sync::watch, task::JoinSet};
use tracing::Instrument;

use crate::{
    config::Webhooks,
    dns::public_only::PublicOnly,
    domain::{Activity, DeliveryState, EndpointPolicy, SUSPENDED_DELIVERY_KEPT, now},
    error_chain::ErrorChain,
    jobs::StoppableJob,
    store::{DeliveryOutcome, DueDelivery, Store, StoreError},
};

/// Writes an activity as a delivery's body. The API layer's, so that a delivery carries the
/// activity exactly as `GET …/activities` shows it.
pub type RenderActivity = fn(&Activity) -> Result<Vec<u8>, serde_json::Error>;

/// The longest wait between two reads of the queue while workers are free (shorter when
/// retries are configured shorter, so that a retry is not held up by the poll).
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// POSTs in flight at once in this process. A stalled subscription holds at most
/// `store::IN_FLIGHT_PER_SUBSCRIPTION` of them, an environment `IN_FLIGHT_PER_ENVIRONMENT`.
const WORKERS: usize = 16;
/// What a lease leaves beyond the POST's own timeout, to record its result.
const LEASE_MARGIN: Duration = Duration::from_secs(30);

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
    connect_timeout: Duration,
    render: RenderActivity,
    /// `webhooks.allow_http_endpoints` and `webhooks.allow_private_endpoints`.
    policy: EndpointPolicy,
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
        let policy = EndpointPolicy {
            allow_http: config.allow_http_endpoints,
            allow_private: config.allow_private_endpoints,
        };
        let client = |verify: bool| {
            let builder = reqwest::Client::builder()
                .user_agent(concat!("trustmail/", env!("CARGO_PKG_VERSION")))
                .timeout(config.request_timeout())
                .connect_timeout(config.connect_timeout())
                // An endpoint answers for itself; a redirect could point anywhere.
                .redirect(reqwest::redirect::Policy::none())
                .tls_danger_accept_invalid_certs(!verify);
            if policy.allow_private {
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
            connect_timeout: config.connect_timeout(),
            render,
            policy,
            last_expiry: std::sync::Mutex::new(None),
        })
    }

    /// How long a claimed delivery is ours: its POST, started at once, and recording it.
    fn lease(&self) -> Duration {
        self.request_timeout + LEASE_MARGIN
    }

    /// Starts delivering in the background until `StoppableJob::stop`, supervised.
    pub fn spawn(self) -> StoppableJob {
        let delivery = Arc::new(self);
        StoppableJob::spawn("webhook_delivery", move |stopped| {
            delivery.clone().run(stopped)
        })
    }

    /// Keeps up to `WORKERS` POSTs going: claims for the free workers, again as soon as one
    /// finishes (its subscription may have more due), else after the poll. Once stopped, lets
    /// the POSTs in flight finish (`StoppableJob::stop` bounds the wait; their leases cover the
    /// rest).
    async fn run(self: Arc<Self>, mut stopped: watch::Receiver<bool>) {
        let poll = POLL_INTERVAL.min(self.first_retry);
        let mut in_flight = JoinSet::new();
        while !*stopped.borrow() {
            let free = WORKERS - in_flight.len();
            let mut all_busy = free == 0;
            if free > 0 {
                match self.claim(free).await {
                    Ok(claimed) => {
                        all_busy = claimed.len() == free;
                        for delivery in claimed {
                            in_flight.spawn(self.clone().deliver_leased(delivery));
                        }
                    }
                    Err(e) => tracing::warn!(
                        job = "webhook_delivery",
                        error = %ErrorChain(&e),
                        "pass failed"
                    ),
                }
            }
            tokio::select! {
                changed = stopped.changed() => if changed.is_err() || *stopped.borrow() { break },
                Some(finished) = in_flight.join_next(), if !in_flight.is_empty() => {
                    if let Err(e) = finished {
                        tracing::error!(error = %e, "webhook delivery task failed");
                    }
                }
                () = tokio::time::sleep(poll), if !all_busy => {}
            }
        }
        while in_flight.join_next().await.is_some() {}
    }

    /// Claims up to `free` due deliveries (after failing those that waited too long).
    async fn claim(&self, free: usize) -> Result<Vec<DueDelivery>, StoreError> {
        self.expire_old().await?;
        let limit = u32::try_from(free).unwrap_or(u32::MAX);
        self.store
            .claim_due_deliveries(&self.owner, now(), self.lease(), limit)
            .await
    }

    /// Makes one claimed delivery's attempt and records it.
    async fn deliver_leased(self: Arc<Self>, delivery: DueDelivery) {
        // A POST started this late could outlive the lease, and by then another deliverer may
        // have it: leave it to be claimed again.
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
        // An address as the host never reaches the resolver; the subscription may predate the
        // operator turning `webhooks.allow_private_endpoints` (or `allow_http_endpoints`) off.
        if let Some(refused) = delivery.url.refusal(self.policy) {
            return failed(refused.to_string());
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
            Err(e) if e.is_connect() && e.is_timeout() => failed(format!(
                "no connection to the endpoint within {} s (webhooks.connect_timeout_s)",
                self.connect_timeout.as_secs()
            )),
            Err(e) if e.is_timeout() => failed(format!(
                "no answer from the endpoint within {} s (webhooks.request_timeout_s)",
                self.request_timeout.as_secs()
            )),
            // Without the URL: an endpoint's path or query may hold its secret.
            Err(e) => failed(ErrorChain(&e.without_url()).to_string()),
        }
    }
}
