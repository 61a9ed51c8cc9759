//! Outbox delivery: every second or so, lease the messages that are due and hand each to its
//! route's SMTP relay. With no relay for a route its messages stay QUEUED in the outbox,
//! where `trustmail outbox list/show` shows them.
//!
//! Customer mail with a return path domain goes one recipient per SMTP transaction, each from
//! its own return path (feedback/return_path.rs), so that a bounce names its recipient. A 5xx
//! for one recipient is that recipient's hard bounce (`DeliveryFeedback::refused_by_relay`);
//! the message is SENT when the relay took it for anyone, FAILED when it refused everyone.
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
    feedback::{DeliveryFeedback, return_path::ReturnPath},
    mail::{DeliverySignError, DeliverySigner, Relay, Relays},
    mail::{MessageStatus, RecipientStatus, StoredMessage},
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

/// How one attempt at a message ended.
enum Outcome {
    /// The relay took it (for at least one recipient): its reply.
    Sent(String),
    /// It can never be sent: why.
    Refused(String),
    /// This attempt failed; a later one may not.
    Retry(String),
    /// Recipients are left, but the lease ends before another send could finish: the next
    /// claim goes on, and this attempt is not counted.
    LeaseEnding,
}

impl From<Result<String, (bool, String)>> for Outcome {
    fn from(result: Result<String, (bool, String)>) -> Self {
        match result {
            Ok(reply) => Self::Sent(reply),
            Err((true, error)) => Self::Refused(error),
            Err((false, error)) => Self::Retry(error),
        }
    }
}

pub struct OutboxDelivery {
    store: Store,
    relays: Relays,
    /// Signs customer mail just before it is sent.
    signer: Arc<dyn DeliverySigner>,
    /// Return paths, and a relay's refusal of a recipient recorded as a bounce.
    feedback: Arc<dyn DeliveryFeedback>,
    /// This process's name on the leases it takes.
    owner: String,
}

impl OutboxDelivery {
    pub fn new(
        store: Store,
        relays: Relays,
        signer: Arc<dyn DeliverySigner>,
        feedback: Arc<dyn DeliveryFeedback>,
    ) -> Self {
        Self {
            store,
            relays,
            signer,
            feedback,
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

    /// Signs and sends `message`.
    async fn send(&self, relay: &Relay, message: &StoredMessage) -> Outcome {
        let text = match self.text_to_send(message).await {
            Ok(text) => text,
            Err(DeliverySignError::Refused(reason)) => return Outcome::Refused(reason),
            Err(DeliverySignError::Unavailable(reason)) => return Outcome::Retry(reason),
        };
        match &message.return_path_domain {
            Some(domain) => self.send_each(relay, message, domain, &text).await,
            None => self
                .transaction(relay, &message.envelope_from, &message.envelope_to, &text)
                .await
                .into(),
        }
    }

    /// One recipient at a time, each from its own return path on `domain`, skipping those
    /// done in an earlier attempt (sent, suppressed, refused). A recipient the relay refuses
    /// for good is a hard bounce; the first transient failure ends the attempt, and the next
    /// one sends to whoever is left.
    async fn send_each(
        &self,
        relay: &Relay,
        message: &StoredMessage,
        domain: &str,
        text: &str,
    ) -> Outcome {
        let recipients = match self.store.recipients(message.id).await {
            Ok(recipients) => recipients,
            Err(e) => {
                return Outcome::Retry(format!(
                    "not sent: its recipients could not be read ({})",
                    ErrorChain(&e)
                ));
            }
        };
        let (mut sent, mut last_reply, mut refused) = (0usize, None, Vec::new());
        for recipient in &recipients {
            match recipient.status {
                None => {}
                Some(RecipientStatus::Sent) => {
                    sent += 1;
                    continue;
                }
                Some(_) => continue,
            }
            if message
                .leased_until
                .is_some_and(|until| now() + SEND_TIMEOUT >= until)
            {
                return Outcome::LeaseEnding;
            }
            let path = ReturnPath {
                message: message.id,
                recipient: recipient.position,
            };
            let from = self.feedback.return_path(path, domain);
            let to = std::slice::from_ref(&recipient.address);
            match self.transaction(relay, &from, to, text).await {
                Ok(reply) => {
                    if let Err(e) = self
                        .store
                        .mark_recipient_sent(message.id, recipient.position, now())
                        .await
                    {
                        tracing::warn!(position = recipient.position, error = %ErrorChain(&e),
                            "sent to a recipient but not recorded; a retry may send to it again");
                    }
                    sent += 1;
                    last_reply = Some(reply);
                }
                Err((true, reply)) => {
                    if let Err(e) = self
                        .feedback
                        .refused_by_relay(message, recipient, &reply)
                        .await
                    {
                        return Outcome::Retry(format!(
                            "the relay refused a recipient ({reply}), which could not be                              recorded ({})",
                            ErrorChain(&e)
                        ));
                    }
                    refused.push(reply);
                }
                Err((false, error)) => return Outcome::Retry(error),
            }
        }
        match (sent, refused.last()) {
            (0, Some(reply)) => Outcome::Refused(format!(
                "the relay refused every recipient; the last said: {reply}"
            )),
            (0, None) => Outcome::Refused("no recipient is left to send to".into()),
            (_, _) => {
                let reply = last_reply.unwrap_or_else(|| "sent in an earlier attempt".into());
                Outcome::Sent(match refused.len() {
                    0 => reply,
                    n => format!("{reply} ({n} recipient(s) refused)"),
                })
            }
        }
    }

    /// One SMTP transaction: the relay's reply, or whether the failure is for good and what
    /// it was.
    async fn transaction(
        &self,
        relay: &Relay,
        from: &str,
        to: &[String],
        text: &str,
    ) -> Result<String, (bool, String)> {
        let sent = relay.send(from, to, text);
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
            Outcome::LeaseEnding => tracing::info!(
                "the lease ends before the next recipient could be sent to; the rest waits \
                 for the next claim"
            ),
            Outcome::Sent(reply) => {
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
            Outcome::Refused(error) => {
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
            Outcome::Retry(error) => {
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
