//! Outbox delivery: every second or so, lease the messages that are due and hand each to its
//! route's SMTP relay. With no relay for a route its messages stay QUEUED in the outbox,
//! where `trustmail outbox list/show` shows them.
//!
//! Delivery is at least once: if the relay accepts a message but the store cannot record it
//! (or the lease ran out meanwhile), the message is sent again after its lease ends. A
//! permanent refusal (5xx) fails the message at once; a transient one is retried with backoff.
//!
//! Customer mail is DKIM-signed here, just before the send, by the key that signs for its
//! domain in its region now (`DeliverySigner`), so that rotations while it waited cannot leave
//! it signed by a key that is no longer published. A message that can never be signed (its
//! domain deleted, no signing key) fails unsent like a permanent refusal; a key that cannot be
//! read now is a failed attempt, retried.
//!
//! Each claim takes a few messages of every environment in turn (`Store::claim_due_mail`), and a
//! pass that claimed anything is followed at once by the next, so one environment's backlog
//! delays another's mail by at most one batch.

use std::{borrow::Cow, sync::Arc, time::Duration};

use futures_util::StreamExt;
use tokio::sync::watch;
use tracing::Instrument;

use super::StoppableJob;
use crate::error_chain::ErrorChain;
use crate::{
    domain::now,
    mail::{DeliverySignError, DeliverySigner, Relay, Relays},
    mail::{MessageStatus, StoredMessage},
    store::{Store, StoreError, retry_delay},
};

/// How often the outbox is read for due messages.
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// How long a claimed message is ours: several sends' worth, for a batch sent one by one.
const LEASE: Duration = Duration::from_secs(300);
/// The most one send may take, whatever the relay does.
const SEND_TIMEOUT: Duration = Duration::from_secs(60);
/// Messages claimed per route in one pass.
const BATCH_SIZE: u32 = 20;
/// Sends in flight at once per route (lettre's pool keeps up to 10 connections a relay).
const CONCURRENT_SENDS: usize = 8;

pub struct OutboxDelivery {
    store: Store,
    relays: Relays,
    /// Signs customer mail just before it is sent.
    signer: Arc<dyn DeliverySigner>,
    /// This process's name on the leases it takes.
    owner: String,
}

impl OutboxDelivery {
    pub fn new(store: Store, relays: Relays, signer: Arc<dyn DeliverySigner>) -> Self {
        Self {
            store,
            relays,
            signer,
            owner: format!(
                "pid{}-{}",
                std::process::id(),
                uuid::Uuid::new_v4().simple()
            ),
        }
    }

    /// Starts delivering in the background until `StoppableJob::stop`, supervised: a pass that
    /// panics is logged and delivery starts again.
    pub fn spawn(self) -> StoppableJob {
        let delivery = std::sync::Arc::new(self);
        StoppableJob::spawn("outbox_delivery", move |stopped| {
            delivery.clone().run(stopped)
        })
    }

    async fn run(self: std::sync::Arc<Self>, mut stopped: watch::Receiver<bool>) {
        if self.relays.is_empty() {
            tracing::info!(
                "no SMTP relay configured: mail stays in the outbox (`trustmail outbox list`)"
            );
            // Nothing to deliver; a closed channel also means stop.
            let _ = stopped.wait_for(|stop| *stop).await;
            return;
        }
        let watcher = stopped.clone();
        let this = self.clone();
        super::poll_until_stopped("outbox_delivery", stopped, POLL_INTERVAL, || {
            let (this, watcher) = (this.clone(), watcher.clone());
            async move { this.deliver_due(&watcher).await }
        })
        .await;
        self.relays.shutdown().await;
    }

    /// One pass over the routes that have mail due. True when it claimed anything, so more may
    /// be waiting.
    async fn deliver_due(&self, stopped: &watch::Receiver<bool>) -> Result<bool, StoreError> {
        let mut more_due = false;
        for route in self.store.due_mail_routes(now()).await? {
            let Some(relay) = self.relays.for_route(&route) else {
                continue;
            };
            if *stopped.borrow() {
                break;
            }
            let batch = self
                .store
                .claim_due_mail(&route, &self.owner, now(), LEASE, BATCH_SIZE)
                .await?;
            // A claim stops at a few per environment, so a short batch may still leave mail due.
            more_due |= !batch.is_empty();
            // Several at once over the relay's connection pool: one SMTP transaction waits on
            // round trips (and the peer's delayed ACK), not on this process.
            futures_util::stream::iter(batch)
                .for_each_concurrent(CONCURRENT_SENDS, |message| async move {
                    // A send started this late could outlive the lease, and by then another
                    // deliverer may have the message: leave it to be claimed again.
                    if message
                        .leased_until
                        .is_some_and(|until| now() + SEND_TIMEOUT >= until)
                    {
                        return;
                    }
                    let span = tracing::info_span!(
                        "outbox_delivery",
                        message_id = %message.id,
                        route = %message.route,
                        attempt = message.attempts + 1,
                    );
                    self.deliver(relay, &message).instrument(span).await;
                })
                .await;
        }
        Ok(more_due)
    }

    /// The text to send: the stored one, with customer mail's DKIM signature in front.
    async fn text_to_send<'m>(
        &self,
        message: &'m StoredMessage,
    ) -> Result<Cow<'m, str>, DeliverySignError> {
        match message.signed_at_delivery() {
            Some((domain, region)) => self
                .signer
                .sign_for_delivery(domain, region, &message.message)
                .await
                .map(Cow::Owned),
            None => Ok(Cow::Borrowed(&message.message)),
        }
    }

    /// Signs and sends `message`: the relay's reply, or whether the failure is for good and
    /// what it was.
    async fn send(&self, relay: &Relay, message: &StoredMessage) -> Result<String, (bool, String)> {
        let text = match self.text_to_send(message).await {
            Ok(text) => text,
            Err(DeliverySignError::Refused(reason)) => return Err((true, reason)),
            Err(DeliverySignError::Unavailable(reason)) => return Err((false, reason)),
        };
        let sent = relay.send(&message.envelope_from, &message.envelope_to, &text);
        // lettre's text includes its cause; the relay URL and password are never in it.
        match tokio::time::timeout(SEND_TIMEOUT, sent).await {
            Ok(result) => result.map_err(|e| (e.is_permanent(), e.to_string())),
            Err(_) => Err((
                false,
                format!(
                    "the relay did not finish within {} s",
                    SEND_TIMEOUT.as_secs()
                ),
            )),
        }
    }

    async fn deliver(&self, relay: &Relay, message: &StoredMessage) {
        // Region names are few and come from the configuration: a bounded metric label.
        let route = message.route.to_string();
        let outcome = self.send(relay, message).await;
        match outcome {
            Ok(reply) => {
                metrics::counter!("outbox_sent_total", "route" => route).increment(1);
                match self
                    .store
                    .mark_mail_sent(message.id, &self.owner, &reply, now())
                    .await
                {
                    Ok(true) => tracing::info!("mail delivered"),
                    Ok(false) => tracing::warn!(
                        "mail delivered after its lease passed to another deliverer; it may arrive twice"
                    ),
                    Err(e) => tracing::error!(
                        error = %ErrorChain(&e),
                        "mail delivered but not recorded; it will be sent again when its lease ends"
                    ),
                }
            }
            Err((true, error)) => {
                metrics::counter!("outbox_failed_attempts_total", "route" => route).increment(1);
                match self
                    .store
                    .fail_mail(message.id, &self.owner, &error, now())
                    .await
                {
                    Ok(true) => {
                        tracing::error!(%error, "the mail cannot be delivered; giving up")
                    }
                    Ok(false) => tracing::warn!(
                        %error, "mail refused for good after its lease passed to another deliverer"
                    ),
                    Err(store_error) => tracing::error!(
                        %error,
                        store_error = %ErrorChain(&store_error),
                        "mail refused for good and not recorded; retried when its lease ends"
                    ),
                }
            }
            Err((false, error)) => {
                metrics::counter!("outbox_failed_attempts_total", "route" => route).increment(1);
                let recorded = self
                    .store
                    .record_failed_delivery(message.id, &self.owner, &error, now())
                    .await;
                match recorded {
                    Ok(Some((MessageStatus::Failed, attempts))) => tracing::error!(
                        %error, attempts, "mail delivery failed; giving up"
                    ),
                    Ok(Some((_, attempts))) => tracing::warn!(
                        %error,
                        attempts,
                        retry_in_s = retry_delay(attempts).as_secs(),
                        "mail delivery failed; will retry"
                    ),
                    Ok(None) => tracing::warn!(
                        %error, "mail delivery failed after its lease passed to another deliverer"
                    ),
                    Err(store_error) => tracing::error!(
                        %error,
                        store_error = %ErrorChain(&store_error),
                        "mail delivery failed and could not be recorded; retried when its lease ends"
                    ),
                }
            }
        }
    }
}
