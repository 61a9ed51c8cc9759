//! Feedback events: what came back about one recipient of one message. A relay that refused
//! it at send time, a bounce (DSN) or a complaint (ARF) each leave one; the recipient's status
//! on the message follows from the strongest of them, and a hard bounce or a complaint puts
//! the address on the environment's suppression list.

use mail_auth::report::FeedbackType;
use time::OffsetDateTime;

use super::{
    SuppressionReason,
    report::{Bounce, Complaint, RecipientStatus as ReportedRecipient},
};
use crate::{
    domain::{EnvironmentId, wire_enum},
    mail::{MessageId, RecipientStatus},
};

crate::domain::id_type!(
    /// One feedback event; v7 so ids sort by arrival.
    FeedbackEventId,
    now_v7
);

wire_enum!(
    /// What the feedback says happened to the recipient.
    FeedbackKind {
        /// A permanent failure (a hard bounce): the address is suppressed.
        Bounce => "BOUNCE",
        /// A delay or a temporary failure (a soft bounce): the address stays.
        Delay => "DELAY",
        /// The recipient reported the message as spam: the address is suppressed.
        Complaint => "COMPLAINT",
    }
);

wire_enum!(
    /// Where the feedback came from.
    FeedbackSource {
        /// The relay refused the recipient with a 5xx while trustmail sent the message.
        Relay => "RELAY",
        /// A delivery status notification (RFC 3464) reached the feedback MX.
        Dsn => "DSN",
        /// A complaint (ARF, RFC 5965) reached the feedback MX.
        Arf => "ARF",
    }
);

/// The longest diagnostic kept; a remote server's text is cut to it.
const MAX_DIAGNOSTIC_CHARS: usize = 1000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedbackEvent {
    pub id: FeedbackEventId,
    pub environment_id: EnvironmentId,
    pub message_id: MessageId,
    /// The recipient's place among the message's recipients.
    pub recipient: u16,
    pub kind: FeedbackKind,
    pub source: FeedbackSource,
    /// A bounce's enhanced status code (`5.1.1`); a complaint's feedback type (`abuse`).
    pub status: Option<String>,
    /// The remote server's own words.
    pub diagnostic: Option<String>,
    pub reporting_mta: Option<String>,
    pub created_at: OffsetDateTime,
}

impl FeedbackEvent {
    fn new(
        message: (EnvironmentId, MessageId, u16),
        kind: FeedbackKind,
        source: FeedbackSource,
        at: OffsetDateTime,
    ) -> Self {
        let (environment_id, message_id, recipient) = message;
        Self {
            id: FeedbackEventId::new(),
            environment_id,
            message_id,
            recipient,
            kind,
            source,
            status: None,
            diagnostic: None,
            reporting_mta: None,
            created_at: at,
        }
    }

    /// The relay's permanent refusal of the recipient at send time: a hard bounce.
    pub fn refused_by_relay(
        message: (EnvironmentId, MessageId, u16),
        reply: &str,
        at: OffsetDateTime,
    ) -> Self {
        Self {
            status: enhanced_status(reply),
            diagnostic: Some(cut(reply)),
            ..Self::new(message, FeedbackKind::Bounce, FeedbackSource::Relay, at)
        }
    }

    /// A DSN's report on the recipient; `None` when it reports no failure or delay (a
    /// `delivered`, `relayed` or `expanded` action).
    pub fn from_dsn(
        message: (EnvironmentId, MessageId, u16),
        recipient: &ReportedRecipient,
        reporting_mta: Option<&str>,
        at: OffsetDateTime,
    ) -> Option<Self> {
        let kind = match recipient.bounce()? {
            Bounce::Hard => FeedbackKind::Bounce,
            Bounce::Soft => FeedbackKind::Delay,
        };
        Some(Self {
            status: Some(recipient.status.clone()),
            diagnostic: recipient.diagnostic.as_deref().map(cut),
            reporting_mta: reporting_mta.map(cut),
            ..Self::new(message, kind, FeedbackSource::Dsn, at)
        })
    }

    /// A complaint about the message from the recipient; `None` for a report that complains
    /// of nothing (`not-spam`, or an `auth-failure` report, which is DMARC's business).
    pub fn from_complaint(
        message: (EnvironmentId, MessageId, u16),
        complaint: &Complaint,
        at: OffsetDateTime,
    ) -> Option<Self> {
        let feedback_type = match complaint.feedback_type {
            FeedbackType::Abuse => "abuse",
            FeedbackType::Fraud => "fraud",
            FeedbackType::Virus => "virus",
            FeedbackType::Other => "other",
            FeedbackType::NotSpam | FeedbackType::AuthFailure => return None,
        };
        Some(Self {
            status: Some(feedback_type.to_owned()),
            diagnostic: complaint.user_agent.as_deref().map(cut),
            reporting_mta: complaint.reporting_mta.as_deref().map(cut),
            ..Self::new(message, FeedbackKind::Complaint, FeedbackSource::Arf, at)
        })
    }

    /// The recipient's status on the message after this event.
    pub fn recipient_status(&self) -> RecipientStatus {
        match self.kind {
            FeedbackKind::Bounce => RecipientStatus::Bounced,
            FeedbackKind::Delay => RecipientStatus::Delayed,
            FeedbackKind::Complaint => RecipientStatus::Complained,
        }
    }

    /// Why the address goes on the suppression list, if it does.
    pub fn suppresses(&self) -> Option<SuppressionReason> {
        match self.kind {
            FeedbackKind::Bounce => Some(SuppressionReason::Bounce),
            FeedbackKind::Complaint => Some(SuppressionReason::Complaint),
            FeedbackKind::Delay => None,
        }
    }

    /// What the suppression entry keeps of it: the status and the remote server's words.
    pub fn detail(&self) -> Option<String> {
        match (&self.status, &self.diagnostic) {
            (Some(status), Some(diagnostic)) if !diagnostic.contains(status.as_str()) => {
                Some(format!("{status} {diagnostic}"))
            }
            (_, Some(diagnostic)) => Some(diagnostic.clone()),
            (status, None) => status.clone(),
        }
    }
}

/// The statuses a recipient may hold that `new` must not replace: a complaint outranks a
/// bounce, and a bounce outranks a later delay.
pub fn outranks(new: RecipientStatus) -> &'static [RecipientStatus] {
    match new {
        RecipientStatus::Delayed => &[RecipientStatus::Bounced, RecipientStatus::Complained],
        RecipientStatus::Bounced => &[RecipientStatus::Complained],
        _ => &[],
    }
}

/// The first enhanced status code (RFC 3463, `5.1.1`) in a relay's reply as lettre words it
/// (`permanent error (550): 5.1.1 <a@b>: unknown`).
fn enhanced_status(reply: &str) -> Option<String> {
    reply
        .split(|c: char| c.is_whitespace() || matches!(c, ':' | ',' | ';' | '(' | ')'))
        .find(|word| {
            let mut parts = word.split('.');
            matches!(parts.next(), Some("2" | "4" | "5"))
                && parts.clone().count() == 2
                && parts
                    .all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(str::to_owned)
}

fn cut(text: &str) -> String {
    text.chars().take(MAX_DIAGNOSTIC_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relay_reply_yields_its_enhanced_status() {
        assert_eq!(
            enhanced_status("550 5.1.1 <a@b.test>: no such user").as_deref(),
            Some("5.1.1")
        );
        for reply in [
            "550 no such user",
            "550",
            "",
            "550 5.1 x",
            "550 9.1.1 x",
            "550 5.1.1234 x",
        ] {
            assert_eq!(enhanced_status(reply), None, "{reply}");
        }
    }

    #[test]
    fn a_complaint_outranks_a_bounce_and_a_bounce_a_delay() {
        assert!(outranks(RecipientStatus::Delayed).contains(&RecipientStatus::Bounced));
        assert!(outranks(RecipientStatus::Bounced).contains(&RecipientStatus::Complained));
        assert!(outranks(RecipientStatus::Complained).is_empty());
    }

    #[test]
    fn the_detail_names_the_status_once() {
        let message = (EnvironmentId::new(), MessageId::new(), 0);
        let at = crate::domain::now();
        let event = FeedbackEvent::refused_by_relay(message, "550 5.1.1 gone", at);
        assert_eq!(event.detail().as_deref(), Some("550 5.1.1 gone"));
        let mut event = event;
        event.diagnostic = Some("smtp; 550 mailbox unavailable".into());
        assert_eq!(
            event.detail().as_deref(),
            Some("5.1.1 smtp; 550 mailbox unavailable")
        );
        event.diagnostic = None;
        assert_eq!(event.detail().as_deref(), Some("5.1.1"));
    }
}
