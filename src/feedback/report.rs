//! What arrives at the feedback MX, read into the one report it is: a delivery status
//! notification (RFC 3464), a complaint (RFC 5965 ARF) or a DMARC aggregate report (RFC 7489).
//!
//! MIME is mail-parser's; ARF and DMARC are mail-auth's parsers (the DMARC one expands gzip and
//! zip attachments up to a cap). A DSN's `message/delivery-status` body is a series of header
//! blocks separated by blank lines (RFC 3464 §2.1); each block is read by mail-parser.

use mail_auth::report::{Feedback, FeedbackType};
use mail_parser::{Message, MessageParser, MimeHeaders, PartType};

/// One message received by the feedback MX, as what it reports.
#[derive(Debug)]
pub enum Report {
    Delivery(DeliveryReport),
    Complaint(Complaint),
    DmarcAggregate(Box<mail_auth::report::Report>),
}

/// Why a received message is not a report trustmail reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotAReport {
    #[error("the message has no headers a MIME parser can read")]
    Malformed,
    #[error("a delivery status notification without a per-recipient block")]
    NoRecipients,
    #[error("a feedback report that cannot be read: {0}")]
    BadFeedback(String),
    #[error("neither a delivery status notification, a feedback report nor a DMARC report: {0}")]
    Unrecognized(String),
}

/// RFC 3464: what became of some recipients of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryReport {
    /// `Reporting-MTA`, without its type (`dns; mx.example` → `mx.example`).
    pub reporting_mta: Option<String>,
    /// The `Message-ID` of the returned message or headers, when they came back.
    pub original_message_id: Option<String>,
    pub recipients: Vec<RecipientStatus>,
}

/// One per-recipient block of a DSN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientStatus {
    /// `Final-Recipient`'s address (`rfc822; a@b.example` → `a@b.example`); a block without
    /// one is not read (RFC 3464 requires it).
    pub final_recipient: String,
    pub original_recipient: Option<String>,
    /// `Action`, lowercased: `failed`, `delayed`, `delivered`, `relayed` or `expanded`.
    pub action: String,
    /// `Status`: the enhanced status code, e.g. `5.1.1`.
    pub status: String,
    /// `Diagnostic-Code`, unfolded, without its type (`smtp; 550 …` → `550 …`).
    pub diagnostic: Option<String>,
}

/// How a DSN recipient bounced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bounce {
    /// Failed for good: the address is suppressed.
    Hard,
    /// Failed for now, or delayed: the receiver may yet take it.
    Soft,
}

impl RecipientStatus {
    /// `failed` with a 5.x.x status is hard; `failed` with 4.x.x, or `delayed`, is soft; a
    /// delivery, relay or expansion is not a bounce.
    pub fn bounce(&self) -> Option<Bounce> {
        match (self.action.as_str(), self.status.split('.').next()) {
            ("failed", Some("5")) => Some(Bounce::Hard),
            ("failed", _) | ("delayed", _) => Some(Bounce::Soft),
            _ => None,
        }
    }
}

/// RFC 5965: a recipient (or their provider) reported the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Complaint {
    pub feedback_type: FeedbackType,
    /// `Original-Rcpt-To`: the address that complained, when the reporter says.
    pub original_rcpt_to: Option<String>,
    /// `Original-Mail-From`: the envelope sender the message had (the VERP address).
    pub original_mail_from: Option<String>,
    pub reporting_mta: Option<String>,
    pub user_agent: Option<String>,
    /// The `Message-ID` of the reported message, from its returned message or headers.
    pub original_message_id: Option<String>,
}

/// `raw`, one message as received, read as the report it is. DMARC attachments expand to at
/// most `max_expanded` bytes (a larger one, such as a zip bomb, is not a report).
pub fn read(raw: &[u8], max_expanded: usize) -> Result<Report, NotAReport> {
    let message = MessageParser::new()
        .parse(raw)
        .ok_or(NotAReport::Malformed)?;
    let report_type = message
        .content_type()
        .filter(|ct| ct.ctype().eq_ignore_ascii_case("multipart"))
        .filter(|ct| {
            ct.subtype()
                .is_some_and(|s| s.eq_ignore_ascii_case("report"))
        })
        .and_then(|ct| ct.attribute("report-type"))
        .map(str::to_ascii_lowercase);
    match report_type.as_deref() {
        Some("delivery-status") => delivery_report(&message).map(Report::Delivery),
        Some("feedback-report") => complaint(raw, &message).map(Report::Complaint),
        _ => mail_auth::report::Report::parse_rfc5322(raw, max_expanded)
            .map(|report| Report::DmarcAggregate(Box::new(report)))
            .map_err(|e| NotAReport::Unrecognized(format!("{e:?}"))),
    }
}

fn delivery_report(message: &Message<'_>) -> Result<DeliveryReport, NotAReport> {
    let status = message
        .parts
        .iter()
        .find(|part| {
            part.content_type().is_some_and(|ct| {
                ct.ctype().eq_ignore_ascii_case("message")
                    && ct.subtype().is_some_and(|s| {
                        s.eq_ignore_ascii_case("delivery-status")
                            || s.eq_ignore_ascii_case("global-delivery-status")
                    })
            })
        })
        .and_then(|part| part_bytes(&part.body))
        .ok_or(NotAReport::NoRecipients)?;
    let mut blocks = field_blocks(status);
    let per_message = blocks.next();
    let recipients: Vec<RecipientStatus> = blocks
        .filter_map(|block| {
            Some(RecipientStatus {
                final_recipient: without_type(field(&block, "Final-Recipient")?),
                original_recipient: field(&block, "Original-Recipient").map(without_type),
                action: field(&block, "Action")?.to_ascii_lowercase(),
                status: field(&block, "Status")?,
                diagnostic: field(&block, "Diagnostic-Code").map(without_type),
            })
        })
        .collect();
    if recipients.is_empty() {
        return Err(NotAReport::NoRecipients);
    }
    Ok(DeliveryReport {
        reporting_mta: per_message
            .as_ref()
            .and_then(|block| field(block, "Reporting-MTA"))
            .map(without_type),
        original_message_id: returned_message_id(message),
        recipients,
    })
}

fn complaint(raw: &[u8], message: &Message<'_>) -> Result<Complaint, NotAReport> {
    let feedback =
        Feedback::parse_rfc5322(raw).map_err(|e| NotAReport::BadFeedback(format!("{e:?}")))?;
    let text = |value: Option<&str>| value.map(str::to_owned);
    // ARF writes addresses as in SMTP, in angle brackets.
    let address = |value: Option<&str>| {
        value.map(|v| {
            v.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned()
        })
    };
    Ok(Complaint {
        feedback_type: feedback.feedback_type(),
        original_rcpt_to: address(feedback.original_rcpt_to()),
        original_mail_from: address(feedback.original_mail_from()),
        reporting_mta: text(feedback.reporting_mta()),
        user_agent: text(feedback.user_agent()),
        original_message_id: returned_message_id(message),
    })
}

/// The `Message-ID` of the message a report returns: its `message/rfc822` part, or its
/// `text/rfc822-headers` part.
fn returned_message_id(message: &Message<'_>) -> Option<String> {
    message.parts.iter().find_map(|part| match &part.body {
        PartType::Message(returned) => returned.message_id().map(str::to_owned),
        PartType::Text(headers) if part.is_content_type("text", "rfc822-headers") => {
            MessageParser::new()
                .parse_headers(headers.as_bytes())
                .and_then(|headers| headers.message_id().map(str::to_owned))
        }
        _ => None,
    })
}

fn part_bytes<'a>(body: &'a PartType<'_>) -> Option<&'a [u8]> {
    match body {
        PartType::Text(text) | PartType::Html(text) => Some(text.as_bytes()),
        PartType::Binary(bytes) | PartType::InlineBinary(bytes) => Some(bytes),
        _ => None,
    }
}

/// The header blocks of a `message/delivery-status` body, each ending at a blank line.
fn field_blocks(body: &[u8]) -> impl Iterator<Item = Message<'_>> {
    let text = std::str::from_utf8(body).unwrap_or_default();
    let mut blocks = Vec::new();
    let mut start = 0;
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        if line.trim().is_empty() {
            if at > start {
                blocks.push(&text[start..at]);
            }
            start = at + line.len();
        }
        at += line.len();
    }
    if at > start {
        blocks.push(&text[start..at]);
    }
    blocks
        .into_iter()
        .filter_map(|block| MessageParser::new().parse_headers(block.as_bytes()))
}

/// A field of one block, unfolded and trimmed; `None` when absent or empty.
fn field(block: &Message<'_>, name: &str) -> Option<String> {
    let raw = block.header_raw(name)?;
    let unfolded = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    (!unfolded.is_empty()).then_some(unfolded)
}

/// `type; value` → `value` (RFC 3464's address, MTA name and diagnostic types).
fn without_type(field: String) -> String {
    match field.split_once(';') {
        Some((_, value)) => value.trim().to_owned(),
        None => field,
    }
}

#[cfg(test)]
mod tests;
