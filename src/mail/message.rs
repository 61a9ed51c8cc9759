//! The message, from request to row, under one name:
//!
//! - [`Message`]: what its sender gives (addresses parsed once, when the request is read);
//!   the body of `POST …/messages` and the fields a verification-code mail is made of.
//! - [`ComposedMessage`]: the message made into RFC 5322 text with its envelope and route,
//!   as it is queued in the outbox (`compose`).
//! - [`StoredMessage`]: a queued message as the outbox holds it, with its [`MessageStatus`].
//!
//! The outbox is where messages wait; it is a queue of these, not a second kind of thing.

use lettre::message::Mailbox;
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::MailRoute;
use crate::domain::{DomainId, EnvironmentId, wire_enum};

crate::domain::id_type!(
    /// One message; v7 so ids sort by creation time.
    MessageId,
    now_v7
);

wire_enum!(
    /// Where a message's delivery stands; the same names on the wire, in the store and in the
    /// CLI.
    MessageStatus {
        /// In the outbox: not yet tried, or tried and due again.
        Queued => "QUEUED",
        /// The relay took it.
        Sent => "SENT",
        /// Given up: after `MAX_DELIVERY_ATTEMPTS`, at once on a permanent (5xx) reply, or
        /// because the stored row cannot be read.
        Failed => "FAILED",
    }
);

wire_enum!(
    /// Where one recipient of a message stands: the message's own status until the recipient
    /// parts from it.
    RecipientStatus {
        /// The message is queued.
        Queued => "QUEUED",
        /// The relay took the message.
        Sent => "SENT",
        /// The message failed.
        Failed => "FAILED",
        /// On the environment's suppression list when the message was queued: never sent to.
        Suppressed => "SUPPRESSED",
        /// A hard bounce came back for this recipient.
        Bounced => "BOUNCED",
        /// The recipient reported the message as spam.
        Complained => "COMPLAINED",
        /// A receiver reported a delay or a temporary failure (a soft bounce).
        Delayed => "DELAYED",
    }
);

impl From<MessageStatus> for RecipientStatus {
    fn from(status: MessageStatus) -> Self {
        match status {
            MessageStatus::Queued => Self::Queued,
            MessageStatus::Sent => Self::Sent,
            MessageStatus::Failed => Self::Failed,
        }
    }
}

/// One recipient of a customer message (To, then Cc), at its place in that list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub position: u16,
    pub address: String,
    /// `None` while it shares the message's status.
    pub status: Option<RecipientStatus>,
    pub updated_at: OffsetDateTime,
}

/// A message as its sender gives it. Its JSON form (each address as lettre writes it back, the
/// members under these Rust names, as before the request body was typed) is what an
/// Idempotency-Key's request hash covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[schema(as = SendMessage, description = "Request body of a send.")]
pub struct Message {
    /// An ACTIVE trusted address (or `Name <address>`) of the environment.
    #[schema(value_type = String)]
    pub from: Mailbox,
    /// `addr@domain` or `Name <addr@domain>`; with `cc` at most 50.
    #[schema(value_type = Vec<String>)]
    pub to: Vec<Mailbox>,
    /// Absent: none.
    #[schema(value_type = Vec<String>, required = false)]
    pub cc: Vec<Mailbox>,
    #[schema(value_type = Option<String>, rename = "replyTo")]
    pub reply_to: Option<Mailbox>,
    pub subject: String,
    /// text/plain body; `text`, `html` or both.
    pub text: Option<String>,
    /// text/html body.
    pub html: Option<String>,
}

/// A message composed for the outbox: the stored envelope and the text that is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComposedMessage {
    pub id: MessageId,
    pub environment_id: Option<EnvironmentId>,
    pub route: MailRoute,
    pub envelope_from: String,
    /// Every recipient (To, then Cc), each once.
    pub envelope_to: Vec<String>,
    pub subject: String,
    /// RFC 5322 text with CRLF line ends, ASCII only (lettre encodes headers and body): sent
    /// as it is, or with a DKIM signature in front when `dkim_domain_id` names a domain.
    pub message: String,
    /// Customer mail: the domain whose signing key in the route's region signs the message
    /// when it is sent, so that a rotation while it waits cannot leave it signed by a key
    /// published nowhere. `None` for system mail, and for customer mail queued (signed)
    /// before signing moved to delivery.
    pub dkim_domain_id: Option<DomainId>,
    /// Customer mail whose bounces come back to trustmail: the domain of its return paths
    /// (its MAIL FROM domain, or `feedback.bounce_domain`). Each recipient is then sent in a
    /// transaction of its own, from its own address there (feedback/return_path.rs). `None`:
    /// one transaction from `envelope_from`.
    pub return_path_domain: Option<String>,
}

impl ComposedMessage {
    /// The domain and region whose signing key signs the message when it is sent; `None` when
    /// it is sent as stored.
    pub fn signed_at_delivery(&self) -> Option<(DomainId, &str)> {
        match (&self.dkim_domain_id, &self.route) {
            (Some(domain), MailRoute::Region(region)) => Some((*domain, region)),
            _ => None,
        }
    }
}

/// A queued message and where its delivery stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// What was queued; its fields read through `Deref`.
    pub mail: ComposedMessage,
    pub status: MessageStatus,
    pub attempts: u32,
    pub next_attempt_at: OffsetDateTime,
    pub lease_owner: Option<String>,
    pub leased_until: Option<OffsetDateTime>,
    /// FAILED: why; QUEUED after a failed attempt: that attempt's error.
    pub last_error: Option<String>,
    pub created_at: OffsetDateTime,
    pub sent_at: Option<OffsetDateTime>,
    /// What the relay answered when it took the message.
    pub relay_reply: Option<String>,
}

impl std::ops::Deref for StoredMessage {
    type Target = ComposedMessage;

    fn deref(&self) -> &ComposedMessage {
        &self.mail
    }
}
