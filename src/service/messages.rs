//! Customer mail: `POST …/messages` from an ACTIVE trusted address of a domain with ownership
//! and DKIM ACTIVE in one of the environment's regions, with a signing key there, queued in the
//! outbox for that region's relay. The outbox delivery signs it just before the send, with the
//! key that signs then (`DeliverySigner for Service`, service/dkim.rs).

use lettre::message::Mailbox;
use time::OffsetDateTime;

use super::{Created, Service, ServiceError, invalid};
use crate::{
    domain::{
        CheckedRecord, DomainName, EmailAddress, EmailDomain, Environment, RecordKind,
        RecordStatus, SendingRegion, TrustedEmail, TrustedEmailStatus, now, ownership_verified,
        regions_for,
    },
    feedback::{FeedbackEvent, SuppressedAddress},
    mail::{
        ComposeError, ComposedMessage, MailRoute, Message, MessageId, Recipient, RecipientStatus,
        StoredMessage, compose,
    },
    store::{Idempotency, QueueOutcome, RateScope},
};

/// One recipient of a message as a read shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientReport {
    pub address: String,
    pub status: RecipientStatus,
    /// What came back about it, oldest first.
    pub events: Vec<FeedbackEvent>,
}

/// Recipients (To and Cc together) of one message.
pub const MAX_RECIPIENTS: u32 = 50;
/// The longest Idempotency-Key accepted.
const MAX_KEY_LEN: usize = 255;

const FROM: &str = "from";
const KEY: &str = "Idempotency-Key";

impl From<ComposeError> for ServiceError {
    fn from(e: ComposeError) -> Self {
        match e {
            ComposeError::InvalidAddress { field, value } => invalid(
                field,
                format!("{value:?} is not one email address (addr@domain or Name <addr@domain>)."),
            ),
            ComposeError::NoRecipient => invalid("to", "A message needs at least one to address."),
            ComposeError::NoBody => invalid("text", "A message needs text, html or both."),
            other => invalid("message", other.to_string()),
        }
    }
}

impl Service {
    /// Queues `message` for signing at delivery. With an Idempotency-Key of the last 24 h,
    /// answers the message that key queued (`Created::Existing`) and sends nothing, or refuses
    /// a different request under it.
    ///
    /// The key is looked up once, first, so that a repeat is answered whatever has changed
    /// since (its sender may no longer be ACTIVE). Queueing claims the key in the same
    /// transaction as the row; only a request that raced another with the same key loses the
    /// claim, and it is answered by the same lookup.
    pub async fn send_message(
        &self,
        environment: &Environment,
        message: Message,
        idempotency_key: Option<&str>,
    ) -> Result<Created<MessageId>, ServiceError> {
        let at = now();
        let hash;
        let idempotency = match idempotency_key {
            Some(key) => {
                check_key(key)?;
                hash = request_hash(&message)?;
                Some(Idempotency {
                    key,
                    request_hash: &hash,
                })
            }
            None => None,
        };
        if let Some(idempotency) = idempotency
            && let Some(id) = self.repeat_of(environment, idempotency, at).await?
        {
            return Ok(Created::Existing(id));
        }
        let recipients = message.to.len() + message.cc.len();
        if recipients > MAX_RECIPIENTS as usize {
            return Err(ServiceError::SizeLimit {
                target: "to".into(),
                maximum: MAX_RECIPIENTS,
                message: format!(
                    "A message can have at most {MAX_RECIPIENTS} recipients in to and cc together."
                ),
            });
        }
        let mut composed = self.compose_signable(environment, &message).await?;
        let recipients = self.skip_suppressed(environment, &mut composed).await?;
        let outcome = self
            .store()
            .queue_message(
                &composed,
                &recipients,
                environment.id,
                idempotency,
                self.settings().limits.messages_per_minute,
                at,
            )
            .await?;
        match outcome {
            QueueOutcome::Queued => {
                metrics::counter!("messages_queued_total", "route" => composed.route.to_string())
                    .increment(1);
                tracing::info!(message_id = %composed.id, route = %composed.route, "message queued");
                Ok(Created::New(composed.id))
            }
            QueueOutcome::KeyTaken => {
                // Only a key can be taken: a request with the same key was queued meanwhile.
                let repeat = match idempotency {
                    Some(idempotency) => self.repeat_of(environment, idempotency, at).await?,
                    None => None,
                };
                // None: pruned again already, so the key is free and a retry is queued.
                repeat
                    .map(Created::Existing)
                    .ok_or_else(|| ServiceError::retry_after_ms(0))
            }
            QueueOutcome::RateLimited { wait_ms } => {
                metrics::counter!("throttled_total", "scope" => RateScope::Messages.as_str())
                    .increment(1);
                Err(ServiceError::retry_after_ms(wait_ms))
            }
            QueueOutcome::EnvironmentNotFound => Err(ServiceError::NotFound),
        }
    }

    /// The message `idempotency`'s key queued in the 24 h before `at`, if that was for the same
    /// request; refused when it was for another.
    async fn repeat_of(
        &self,
        environment: &Environment,
        idempotency: Idempotency<'_>,
        at: OffsetDateTime,
    ) -> Result<Option<MessageId>, ServiceError> {
        match self
            .store()
            .idempotent_message(environment.id, idempotency.key, at)
            .await?
        {
            Some((hash, id)) if hash == idempotency.request_hash => Ok(Some(id)),
            Some(_) => Err(key_reused()),
            None => Ok(None),
        }
    }

    /// A customer message of the environment.
    pub async fn message(
        &self,
        environment: &Environment,
        id: MessageId,
    ) -> Result<StoredMessage, ServiceError> {
        self.store()
            .get_message(environment.id, id)
            .await?
            .ok_or(ServiceError::NotFound)
    }

    /// Every recipient of `message` (To, then Cc), where it stands, and the feedback about it.
    /// A message queued before recipients were kept has only its envelope, all of it sharing
    /// the message's status.
    pub async fn recipients(
        &self,
        message: &StoredMessage,
    ) -> Result<Vec<RecipientReport>, ServiceError> {
        let recipients = self.store().recipients(message.id).await?;
        let status = RecipientStatus::from(message.status);
        if recipients.is_empty() {
            return Ok(message
                .envelope_to
                .iter()
                .map(|address| RecipientReport {
                    address: address.clone(),
                    status,
                    events: Vec::new(),
                })
                .collect());
        }
        let mut events = self.feedback_events(message).await?;
        Ok(recipients
            .into_iter()
            .map(|r| RecipientReport {
                events: events
                    .extract_if(.., |e| e.recipient == r.position)
                    .collect(),
                address: r.address,
                status: r.status.unwrap_or(status),
            })
            .collect())
    }

    /// The message composed for the region that may send it, naming the domain whose key signs
    /// it at delivery, with its return paths on the ACTIVE MAIL FROM domain (else
    /// `feedback.bounce_domain`), if any. Refused
    /// when the region has no key that can sign now: mail that could not be signed is never
    /// queued.
    async fn compose_signable(
        &self,
        environment: &Environment,
        message: &Message,
    ) -> Result<ComposedMessage, ServiceError> {
        let domain = self.sending_domain(environment, &message.from).await?;
        let records = self.verification(&domain).await?;
        if !ownership_verified(records.iter().map(|r| &r.record)) {
            return Err(invalid(
                FROM,
                format!("The domain {} is not verified.", domain.name),
            ));
        }
        let dkim_inactive = || {
            invalid(
                FROM,
                format!(
                    "DKIM of {} is not ACTIVE in any sending region of the environment.",
                    domain.name
                ),
            )
        };
        let region = regions_for(environment.region, &self.settings().regions)
            .find(|region| dkim_active(&records, region))
            .ok_or_else(dkim_inactive)?;
        // Parses (and keeps) the key now, so that a key that cannot sign is refused here.
        match self.dkim_signer(&domain, &region.name).await {
            Err(ServiceError::NotFound) => return Err(dkim_inactive()),
            signer => signer?,
        };
        let mut composed = compose(
            message,
            Some(environment.id),
            MailRoute::Region(region.name.clone()),
        )?;
        composed.return_path_domain = self.return_path_domain(&domain, &records);
        composed.dkim_domain_id = Some(domain.id);
        Ok(composed)
    }

    /// Every recipient of `composed` at its place; those on the environment's suppression list
    /// are SUPPRESSED and taken off the envelope. Refused, naming them, when none is left.
    async fn skip_suppressed(
        &self,
        environment: &Environment,
        composed: &mut ComposedMessage,
    ) -> Result<Vec<Recipient>, ServiceError> {
        let keys: Vec<Option<SuppressedAddress>> = composed
            .envelope_to
            .iter()
            .map(|address| SuppressedAddress::parse(address).ok())
            .collect();
        let listed = self
            .store()
            .suppressed_among(
                environment.id,
                &keys.iter().flatten().cloned().collect::<Vec<_>>(),
            )
            .await?;
        let at = now();
        let recipients: Vec<Recipient> = composed
            .envelope_to
            .iter()
            .zip(&keys)
            .enumerate()
            .map(|(position, (address, key))| Recipient {
                // At most MAX_RECIPIENTS.
                position: position as u16,
                address: address.clone(),
                status: key
                    .as_ref()
                    .filter(|key| listed.contains(key))
                    .map(|_| RecipientStatus::Suppressed),
                updated_at: at,
            })
            .collect();
        if recipients.iter().all(|r| r.status.is_some()) {
            let names: Vec<&str> = recipients.iter().map(|r| r.address.as_str()).collect();
            return Err(invalid(
                "to",
                format!(
                    "Every recipient is on the environment's suppression list: {}.",
                    names.join(", ")
                ),
            ));
        }
        composed.envelope_to = recipients
            .iter()
            .filter(|r| r.status.is_none())
            .map(|r| r.address.clone())
            .collect();
        Ok(recipients)
    }

    /// The domain of `from`, which must be an ACTIVE trusted address of the environment.
    async fn sending_domain(
        &self,
        environment: &Environment,
        from: &Mailbox,
    ) -> Result<EmailDomain, ServiceError> {
        let address = &from.email;
        let unknown = || {
            invalid(
                FROM,
                format!("{address} is not a trusted email address of this environment."),
            )
        };
        let name = DomainName::parse(address.domain(), &self.settings().public_suffixes)
            .map_err(|_| unknown())?;
        let domain = self
            .store()
            .list_domains(environment.id)
            .await?
            .into_iter()
            .find(|d| d.name == name)
            .ok_or_else(unknown)?;
        let key = EmailAddress::key_of(address.user(), &domain.name);
        let sender = self
            .store()
            .list::<TrustedEmail>(domain.id)
            .await?
            .into_iter()
            .find(|e| e.address.key() == key)
            .ok_or_else(unknown)?;
        if sender.status != TrustedEmailStatus::Active {
            return Err(invalid(
                FROM,
                format!("{address} is not ACTIVE yet; activate it with the code mailed to it."),
            ));
        }
        Ok(domain)
    }
}

/// Every DKIM record of the region is ACTIVE (PingOne shows one DKIM status per region).
fn dkim_active(records: &[CheckedRecord], region: &SendingRegion) -> bool {
    let mut dkim = records.iter().map(|r| &r.record).filter(|r| {
        r.kind == RecordKind::Dkim && r.region.as_deref() == Some(region.name.as_str())
    });
    let mut any = false;
    dkim.all(|r| {
        any = true;
        r.status == RecordStatus::Active
    }) && any
}

fn check_key(key: &str) -> Result<(), ServiceError> {
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid(
            KEY,
            format!("An Idempotency-Key is 1 to {MAX_KEY_LEN} visible ASCII characters."),
        ));
    }
    Ok(())
}

fn key_reused() -> ServiceError {
    invalid(
        KEY,
        "The Idempotency-Key was used in the last 24 hours for a different request.",
    )
}

/// SHA-256 of the message's JSON (fields in a fixed order), in hex.
fn request_hash(message: &Message) -> Result<String, ServiceError> {
    let json = serde_json::to_vec(message).map_err(|e| invalid("message", e.to_string()))?;
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &json);
    Ok(digest.as_ref().iter().map(|b| format!("{b:02x}")).collect())
}
