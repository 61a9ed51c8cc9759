//! Outbound mail: what a message is, how it becomes RFC 5322 text, and (in `relay`) how it
//! reaches an SMTP relay. Every message is written to the outbox first (`store::outbox`) and
//! delivered by `jobs::outbox`, so a send never blocks or fails a request. Customer mail is
//! DKIM-signed there, just before it is sent (`dkim::DeliverySigner`).

pub mod dkim;
pub mod relay;

use std::{fmt, str::FromStr};

use lettre::{
    Address, Message,
    message::{
        Mailbox, MultiPart,
        header::{ContentType, MIME_VERSION_1_0},
    },
};

use crate::domain::{DomainId, EnvironmentId};

pub use dkim::{DeliverySignError, DeliverySigner};
pub use relay::{DeliveryError, Relay, RelayConfigError, Relays};

/// The subject of the verification-code mail (README § Trusted senders and outbound mail).
pub const VERIFICATION_SUBJECT: &str = "Your trustmail verification code";

crate::domain::id_type!(
    /// One outbox message; v7 so ids sort by creation time.
    OutboxId,
    now_v7
);

/// Which relay carries a message: `[mail] smtp_url` for system mail (verification codes), or a
/// sending region's `smtp_url` (falling back to `[mail]`) for customer mail.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MailRoute {
    System,
    Region(String),
}

const SYSTEM_ROUTE: &str = "system";
/// Region routes carry a prefix so a region named "system" cannot be mistaken for the system route.
const REGION_ROUTE_PREFIX: &str = "region:";

impl fmt::Display for MailRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MailRoute::System => f.write_str(SYSTEM_ROUTE),
            MailRoute::Region(name) => write!(f, "{REGION_ROUTE_PREFIX}{name}"),
        }
    }
}

impl FromStr for MailRoute {
    type Err = crate::domain::UnknownValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.strip_prefix(REGION_ROUTE_PREFIX) {
            _ if s == SYSTEM_ROUTE => Ok(MailRoute::System),
            Some(name) if !name.is_empty() => Ok(MailRoute::Region(name.to_owned())),
            _ => Err(crate::domain::UnknownValue {
                value: s.to_owned(),
                allowed: "system region:<name>",
            }),
        }
    }
}

/// A message to send, before it is composed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMail {
    pub environment_id: Option<EnvironmentId>,
    pub route: MailRoute,
    /// `addr@domain` or `Name <addr@domain>`, as are the recipients.
    pub from: String,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub reply_to: Option<String>,
    pub subject: String,
    /// The text/plain body (UTF-8); with `html` too the message is multipart/alternative.
    pub text: Option<String>,
    pub html: Option<String>,
}

/// A message composed for the outbox: the stored envelope and the text that is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComposedMail {
    pub id: OutboxId,
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
}

impl ComposedMail {
    /// The domain and region whose signing key signs the message when it is sent; `None` when
    /// it is sent as stored.
    pub fn signed_at_delivery(&self) -> Option<(DomainId, &str)> {
        match (&self.dkim_domain_id, &self.route) {
            (Some(domain), MailRoute::Region(region)) => Some((*domain, region)),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("`{field}` is not one mail address: {value:?}")]
    InvalidAddress { field: &'static str, value: String },
    #[error("a message needs at least one `to` address")]
    NoRecipient,
    #[error("a message needs `text`, `html` or both")]
    NoBody,
    #[error("cannot build the message")]
    Build(#[from] lettre::error::Error),
    #[error("the built message is not UTF-8 text")]
    NotText,
}

/// Builds the RFC 5322 message (From, To, Cc, Reply-To, Subject, Date, Message-ID, MIME:
/// text/plain, text/html, or multipart/alternative with both). The Message-ID is
/// `<outbox id@sender's domain>`, so a bounce or a relay log leads back to the outbox row.
pub fn compose(mail: &OutgoingMail) -> Result<ComposedMail, ComposeError> {
    let from = parse_one_mailbox("from", &mail.from)?;
    let to = parse_mailboxes("to", &mail.to)?;
    let cc = parse_mailboxes("cc", &mail.cc)?;
    if to.is_empty() {
        return Err(ComposeError::NoRecipient);
    }
    let id = OutboxId::new();
    let mut builder = Message::builder().from(from.clone());
    for mailbox in &to {
        builder = builder.to(mailbox.clone());
    }
    for mailbox in &cc {
        builder = builder.cc(mailbox.clone());
    }
    if let Some(reply_to) = &mail.reply_to {
        builder = builder.reply_to(parse_one_mailbox("replyTo", reply_to)?);
    }
    let builder = builder
        .subject(mail.subject.as_str())
        .date_now()
        .message_id(Some(format!("<{}@{}>", id.0.simple(), from.email.domain())))
        // Content-Type means MIME, and MIME wants its version header (RFC 2045).
        .header(MIME_VERSION_1_0);
    let message = match (&mail.text, &mail.html) {
        (Some(text), None) => builder.header(ContentType::TEXT_PLAIN).body(text.clone())?,
        (None, Some(html)) => builder.header(ContentType::TEXT_HTML).body(html.clone())?,
        (Some(text), Some(html)) => builder.multipart(MultiPart::alternative_plain_html(
            text.clone(),
            html.clone(),
        ))?,
        (None, None) => return Err(ComposeError::NoBody),
    };
    let message = String::from_utf8(message.formatted()).map_err(|_| ComposeError::NotText)?;
    let mut envelope_to: Vec<String> = Vec::with_capacity(to.len() + cc.len());
    for mailbox in to.iter().chain(&cc) {
        let address = mailbox.email.to_string();
        if !envelope_to.iter().any(|a| a.eq_ignore_ascii_case(&address)) {
            envelope_to.push(address);
        }
    }
    Ok(ComposedMail {
        id,
        environment_id: mail.environment_id,
        route: mail.route.clone(),
        envelope_from: from.email.to_string(),
        envelope_to,
        subject: mail.subject.clone(),
        message,
        dkim_domain_id: None,
    })
}

fn parse_mailboxes(field: &'static str, values: &[String]) -> Result<Vec<Mailbox>, ComposeError> {
    values.iter().map(|v| parse_one_mailbox(field, v)).collect()
}

/// The address of one mailbox (`addr@domain` or `Name <addr@domain>`), for `field`.
pub fn sender_address(field: &'static str, value: &str) -> Result<String, ComposeError> {
    parse_one_mailbox(field, value).map(|mailbox| mailbox.email.to_string())
}

/// lettre's parser stops after the first mailbox and ignores the rest, so a list or trailing
/// text would slip through: require the whole input to be the one mailbox it found.
fn parse_one_mailbox(field: &'static str, value: &str) -> Result<Mailbox, ComposeError> {
    let invalid = || ComposeError::InvalidAddress {
        field,
        value: value.to_owned(),
    };
    if value.chars().any(char::is_control) {
        return Err(invalid());
    }
    let mailbox: Mailbox = value.parse().map_err(|_| invalid())?;
    let address = mailbox.email.to_string();
    let whole = if value.contains('<') {
        value.trim_end().ends_with(&format!("<{address}>"))
    } else {
        value.trim() == address
    };
    if !whole {
        return Err(invalid());
    }
    ascii_address(mailbox).ok_or_else(invalid)
}

/// The mailbox with its domain as A-labels (`bücher.example` → `xn--bcher-kva.example`), so
/// that headers and envelope stay ASCII; `None` for a local part that is not ASCII, which
/// would need SMTPUTF8 (RFC 6531), or a domain IDNA cannot map.
fn ascii_address(mailbox: Mailbox) -> Option<Mailbox> {
    if AsRef::<str>::as_ref(&mailbox.email).is_ascii() {
        return Some(mailbox);
    }
    let user = mailbox.email.user();
    if !user.is_ascii() {
        return None;
    }
    let domain = idna::domain_to_ascii(mailbox.email.domain()).ok()?;
    let email = Address::new(user, domain).ok()?;
    Some(Mailbox::new(mailbox.name, email))
}

/// The verification-code mail to a trusted email address: system mail, from
/// `mail.system_sender`, with the code alone after `Verification code: ` on its own line so an
/// operator reading `trustmail outbox show` (or a test) finds it at a glance.
pub fn verification_code_mail(
    system_sender: &str,
    environment_id: EnvironmentId,
    to: &str,
    code: &str,
) -> OutgoingMail {
    OutgoingMail {
        environment_id: Some(environment_id),
        route: MailRoute::System,
        from: system_sender.to_owned(),
        to: vec![to.to_owned()],
        cc: Vec::new(),
        reply_to: None,
        subject: VERIFICATION_SUBJECT.to_owned(),
        html: None,
        // lettre turns these line ends into CRLF.
        text: Some(format!(
            "Someone asked to use {to} as a trusted sender address.\n\
             To confirm it, enter this code. It is valid for 24 hours.\n\
             \n\
             Verification code: {code}\n\
             \n\
             If you did not ask for this, you can ignore this message.\n"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Mailboxes as people write them (plain or named), almost-mailboxes, and any string.
    fn address() -> impl Strategy<Value = String> {
        let plain = "[a-zA-Z0-9+_-]{1,8}(\\.[a-zA-Z0-9+_-]{1,8})?@[a-z0-9]{1,8}\\.[a-z]{2,4}";
        prop_oneof![
            4 => plain,
            4 => (r"[A-Za-zé ]{1,8}", plain).prop_map(|(name, address)| format!("{name} <{address}>")),
            1 => "([A-Za-zé\" ]{0,8} ?<)?[a-zA-Z0-9.+_-]{1,8}@[a-z0-9-]{1,8}\\.[a-z]{2,4}>?",
            1 => any::<String>(),
        ]
    }

    fn outgoing() -> impl Strategy<Value = OutgoingMail> {
        (
            address(),
            prop::collection::vec(address(), 0..3),
            prop::collection::vec(address(), 0..2),
            prop::option::weighted(0.2, address()),
            any::<String>(),
            prop::option::weighted(0.8, any::<String>()),
            prop::option::weighted(0.5, any::<String>()),
        )
            .prop_map(
                |(from, to, cc, reply_to, subject, text, html)| OutgoingMail {
                    environment_id: None,
                    route: MailRoute::System,
                    from,
                    to,
                    cc,
                    reply_to,
                    subject,
                    text,
                    html,
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        /// Any mail composes, or is an error; composed mail is ASCII with CRLF line ends, sent
        /// from the From address to each recipient once.
        #[test]
        fn any_mail_composes_or_is_an_error(mail in outgoing()) {
            if let Ok(composed) = compose(&mail) {
                prop_assert!(composed.message.is_ascii());
                let bare_lf = composed.message.match_indices('\n').any(|(at, _)| {
                    at == 0 || composed.message.as_bytes()[at - 1] != b'\r'
                });
                prop_assert!(!bare_lf, "{}", composed.message);
                prop_assert_eq!(
                    Some(composed.envelope_from.clone()),
                    sender_address("from", &mail.from).ok()
                );
                prop_assert!(!composed.envelope_to.is_empty());
                prop_assert!(composed.envelope_to.len() <= mail.to.len() + mail.cc.len());
            }
        }
    }

    fn mail(from: &str, to: &str) -> OutgoingMail {
        OutgoingMail {
            environment_id: None,
            route: MailRoute::System,
            from: from.into(),
            to: vec![to.into()],
            cc: Vec::new(),
            reply_to: None,
            subject: "Hello".into(),
            text: Some("Hi there.\r\n".into()),
            html: None,
        }
    }

    #[test]
    fn an_internationalised_domain_is_sent_as_a_labels_and_a_non_ascii_local_part_refused() {
        let composed = compose(&mail(
            "no-reply@trustmail.example",
            "Ann <ann@Bücher.example>",
        ))
        .unwrap();
        assert_eq!(composed.envelope_to, ["ann@xn--bcher-kva.example"]);
        assert!(composed.message.is_ascii());
        assert!(matches!(
            compose(&mail("no-reply@trustmail.example", "jürgen@shop.example")),
            Err(ComposeError::InvalidAddress { field: "to", .. })
        ));
    }

    #[test]
    fn composes_the_headers_and_the_envelope() {
        let composed = compose(&mail(
            "trustmail <no-reply@trustmail.example>",
            "Ann@Shop.test",
        ))
        .unwrap();
        assert_eq!(composed.envelope_from, "no-reply@trustmail.example");
        assert_eq!(composed.envelope_to, ["Ann@Shop.test"]);
        let text = &composed.message;
        for header in [
            "From: trustmail <no-reply@trustmail.example>\r\n",
            "To: Ann@Shop.test\r\n",
            "Subject: Hello\r\n",
            "Date: ",
            "MIME-Version: 1.0\r\n",
            "Content-Type: text/plain; charset=utf-8\r\n",
        ] {
            assert!(text.contains(header), "{header:?} in {text}");
        }
        let message_id = format!(
            "Message-ID: <{}@trustmail.example>\r\n",
            composed.id.0.simple()
        );
        assert!(text.contains(&message_id), "{text}");
        assert!(text.ends_with("\r\n\r\nHi there.\r\n"), "{text}");
    }

    #[test]
    fn refuses_anything_but_one_address_without_panicking() {
        for bad in [
            "",
            "not an address",
            "a@b.test, c@d.test",
            "a@b.test junk",
            "Name <a@b.test> junk",
            "a@b.test\r\nBcc: victim@x.test",
            "<>",
        ] {
            assert!(
                matches!(
                    compose(&mail("x@trustmail.example", bad)),
                    Err(ComposeError::InvalidAddress { field: "to", .. })
                ),
                "{bad:?}"
            );
            assert!(compose(&mail(bad, "x@shop.test")).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn text_and_html_make_an_alternative_and_every_recipient_is_in_the_envelope_once() {
        let mut m = mail("x@shop.test", "a@shop.test");
        m.to.push("B <b@shop.test>".into());
        m.cc = vec!["c@shop.test".into(), "A@shop.test".into()];
        m.reply_to = Some("help@shop.test".into());
        m.html = Some("<p>Hi there.</p>".into());
        let composed = compose(&m).unwrap();
        assert_eq!(
            composed.envelope_to,
            ["a@shop.test", "b@shop.test", "c@shop.test"]
        );
        let text = &composed.message;
        for part in [
            "Cc: c@shop.test, A@shop.test\r\n",
            "Reply-To: help@shop.test\r\n",
            "Content-Type: multipart/alternative;",
            "Content-Type: text/html; charset=utf-8\r\n",
        ] {
            assert!(text.contains(part), "{part:?} in {text}");
        }
        m.text = None;
        m.html = None;
        assert!(matches!(compose(&m), Err(ComposeError::NoBody)));
        m.text = Some("x".into());
        m.to.clear();
        assert!(matches!(compose(&m), Err(ComposeError::NoRecipient)));
    }

    #[test]
    fn a_subject_cannot_add_headers() {
        let mut m = mail("x@trustmail.example", "y@shop.test");
        m.subject = "Hi\r\nBcc: victim@x.test".into();
        let composed = compose(&m).unwrap();
        assert!(
            !composed.message.contains("\r\nBcc:"),
            "{}",
            composed.message
        );
    }

    #[test]
    fn non_ascii_text_is_encoded_for_transport() {
        let mut m = mail("x@trustmail.example", "y@shop.test");
        m.subject = "Grüße".into();
        m.text = Some("Schöne Grüße\r\n".into());
        let composed = compose(&m).unwrap();
        assert!(composed.message.is_ascii());
        assert_eq!(composed.subject, "Grüße");
    }

    #[test]
    fn the_verification_mail_carries_the_code_alone_on_its_line() {
        let environment = EnvironmentId::new();
        let m = verification_code_mail(
            "no-reply@trustmail.example",
            environment,
            "Ann@shop.test",
            "k3x9a0bz",
        );
        assert_eq!(m.subject, "Your trustmail verification code");
        assert_eq!(m.route, MailRoute::System);
        assert_eq!(m.environment_id, Some(environment));
        let composed = compose(&m).unwrap();
        assert!(
            composed
                .message
                .lines()
                .any(|line| line == "Verification code: k3x9a0bz"),
            "{}",
            composed.message
        );
        assert!(
            composed
                .message
                .contains("Subject: Your trustmail verification code\r\n")
        );
    }

    #[test]
    fn routes_round_trip_and_never_collide() {
        for route in [
            MailRoute::System,
            MailRoute::Region("system".into()),
            MailRoute::Region("eu-west-1".into()),
        ] {
            assert_eq!(route.to_string().parse::<MailRoute>().unwrap(), route);
        }
        assert_ne!(
            MailRoute::Region("system".into()).to_string(),
            MailRoute::System.to_string()
        );
        assert!("region:".parse::<MailRoute>().is_err());
        assert!("elsewhere".parse::<MailRoute>().is_err());
    }
}
