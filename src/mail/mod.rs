//! Outbound mail: what a message is (`message`), how it becomes RFC 5322 text, and (in `relay`) how it
//! reaches an SMTP relay. Every message is written to the outbox first (`store::outbox`) and
//! delivered by `jobs::outbox`, so a send never blocks or fails a request. Customer mail is
//! DKIM-signed there, just before it is sent (`dkim::DeliverySigner`).

pub mod dkim;
mod message;
pub mod relay;

use std::{fmt, str::FromStr};

use lettre::{
    Address,
    message::{
        Mailbox, MultiPart,
        header::{ContentType, MIME_VERSION_1_0},
    },
};

use crate::domain::EnvironmentId;

pub use dkim::{DeliverySignError, DeliverySigner};
pub use message::{
    ComposedMessage, Message, MessageId, MessageStatus, Recipient, RecipientStatus, StoredMessage,
};
pub use relay::{DeliveryError, Relay, RelayConfigError, Relays};

/// The subject of the verification-code mail (README § Trusted senders and outbound mail).
pub const VERIFICATION_SUBJECT: &str = "Your trustmail verification code";

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
/// text/plain, text/html, or multipart/alternative with both) to go by `route`. The
/// Message-ID is `<message id@sender's domain>`, so a bounce or a relay log leads back to the
/// outbox row.
pub fn compose(
    message: &Message,
    environment_id: Option<EnvironmentId>,
    route: MailRoute,
) -> Result<ComposedMessage, ComposeError> {
    if message.to.is_empty() {
        return Err(ComposeError::NoRecipient);
    }
    let id = MessageId::new();
    let from = &message.from;
    let mut builder = lettre::Message::builder().from(from.clone());
    for mailbox in &message.to {
        builder = builder.to(mailbox.clone());
    }
    for mailbox in &message.cc {
        builder = builder.cc(mailbox.clone());
    }
    if let Some(reply_to) = &message.reply_to {
        builder = builder.reply_to(reply_to.clone());
    }
    let builder = builder
        .subject(message.subject.as_str())
        .date_now()
        .message_id(Some(format!(
            "<{}@{}>",
            id.as_uuid().simple(),
            from.email.domain()
        )))
        // Content-Type means MIME, and MIME wants its version header (RFC 2045).
        .header(MIME_VERSION_1_0);
    let built = match (&message.text, &message.html) {
        (Some(text), None) => builder.header(ContentType::TEXT_PLAIN).body(text.clone())?,
        (None, Some(html)) => builder.header(ContentType::TEXT_HTML).body(html.clone())?,
        (Some(text), Some(html)) => builder.multipart(MultiPart::alternative_plain_html(
            text.clone(),
            html.clone(),
        ))?,
        (None, None) => return Err(ComposeError::NoBody),
    };
    let text = String::from_utf8(built.formatted()).map_err(|_| ComposeError::NotText)?;
    let mut envelope_to: Vec<String> = Vec::with_capacity(message.to.len() + message.cc.len());
    for mailbox in message.to.iter().chain(&message.cc) {
        let address = mailbox.email.to_string();
        if !envelope_to.iter().any(|a| a.eq_ignore_ascii_case(&address)) {
            envelope_to.push(address);
        }
    }
    Ok(ComposedMessage {
        id,
        environment_id,
        route,
        envelope_from: from.email.to_string(),
        envelope_to,
        subject: message.subject.clone(),
        message: text,
        dkim_domain_id: None,
        return_path_domain: None,
    })
}

/// Each of `values` as one mailbox, for `field`.
pub fn mailboxes(field: &'static str, values: &[String]) -> Result<Vec<Mailbox>, ComposeError> {
    values.iter().map(|v| mailbox(field, v)).collect()
}

/// One mailbox (`addr@domain` or `Name <addr@domain>`) for `field`, its domain as A-labels.
/// lettre's parser stops after the first mailbox and ignores the rest, so a list or trailing
/// text would slip through: the whole input must be the one mailbox it found.
pub fn mailbox(field: &'static str, value: &str) -> Result<Mailbox, ComposeError> {
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

/// The verification-code mail to a trusted email address, from `mail.system_sender` (system
/// mail), with the code alone after `Verification code: ` on its own line so an operator
/// reading `trustmail outbox show` (or a test) finds it at a glance.
pub fn verification_code_mail(
    system_sender: &str,
    to: &str,
    code: &str,
) -> Result<Message, ComposeError> {
    Ok(Message {
        from: mailbox("from", system_sender)?,
        to: vec![mailbox("to", to)?],
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
    })
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

    /// A message as a request gives it: strings, parsed (or refused) as the API parses them.
    #[derive(Debug, Clone)]
    struct Given {
        from: String,
        to: Vec<String>,
        cc: Vec<String>,
        reply_to: Option<String>,
        subject: String,
        text: Option<String>,
        html: Option<String>,
    }

    impl Given {
        fn parse(&self) -> Result<Message, ComposeError> {
            Ok(Message {
                from: mailbox("from", &self.from)?,
                to: mailboxes("to", &self.to)?,
                cc: mailboxes("cc", &self.cc)?,
                reply_to: self
                    .reply_to
                    .as_deref()
                    .map(|r| mailbox("replyTo", r))
                    .transpose()?,
                subject: self.subject.clone(),
                text: self.text.clone(),
                html: self.html.clone(),
            })
        }

        fn compose(&self) -> Result<ComposedMessage, ComposeError> {
            compose(&self.parse()?, None, MailRoute::System)
        }
    }

    fn given() -> impl Strategy<Value = Given> {
        (
            address(),
            prop::collection::vec(address(), 0..3),
            prop::collection::vec(address(), 0..2),
            prop::option::weighted(0.2, address()),
            any::<String>(),
            prop::option::weighted(0.8, any::<String>()),
            prop::option::weighted(0.5, any::<String>()),
        )
            .prop_map(|(from, to, cc, reply_to, subject, text, html)| Given {
                from,
                to,
                cc,
                reply_to,
                subject,
                text,
                html,
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        /// Any mail composes, or is an error; composed mail is ASCII with CRLF line ends, sent
        /// from the From address to each recipient once.
        #[test]
        fn any_mail_composes_or_is_an_error(mail in given()) {
            if let Ok(composed) = mail.compose() {
                prop_assert!(composed.message.is_ascii());
                let bare_lf = composed.message.match_indices('\n').any(|(at, _)| {
                    at == 0 || composed.message.as_bytes()[at - 1] != b'\r'
                });
                prop_assert!(!bare_lf, "{}", composed.message);
                prop_assert_eq!(
                    Some(composed.envelope_from.clone()),
                    mailbox("from", &mail.from).ok().map(|m| m.email.to_string())
                );
                prop_assert!(!composed.envelope_to.is_empty());
                prop_assert!(composed.envelope_to.len() <= mail.to.len() + mail.cc.len());
            }
        }
    }

    fn mail(from: &str, to: &str) -> Given {
        Given {
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
        let composed = mail("no-reply@trustmail.example", "Ann <ann@Bücher.example>")
            .compose()
            .unwrap();
        assert_eq!(composed.envelope_to, ["ann@xn--bcher-kva.example"]);
        assert!(composed.message.is_ascii());
        assert!(matches!(
            mail("no-reply@trustmail.example", "jürgen@shop.example").compose(),
            Err(ComposeError::InvalidAddress { field: "to", .. })
        ));
    }

    #[test]
    fn composes_the_headers_and_the_envelope() {
        let composed = mail("trustmail <no-reply@trustmail.example>", "Ann@Shop.test")
            .compose()
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
            composed.id.as_uuid().simple()
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
                    mail("x@trustmail.example", bad).compose(),
                    Err(ComposeError::InvalidAddress { field: "to", .. })
                ),
                "{bad:?}"
            );
            assert!(mail(bad, "x@shop.test").compose().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn text_and_html_make_an_alternative_and_every_recipient_is_in_the_envelope_once() {
        let mut m = mail("x@shop.test", "a@shop.test");
        m.to.push("B <b@shop.test>".into());
        m.cc = vec!["c@shop.test".into(), "A@shop.test".into()];
        m.reply_to = Some("help@shop.test".into());
        m.html = Some("<p>Hi there.</p>".into());
        let composed = m.compose().unwrap();
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
        assert!(matches!(m.compose(), Err(ComposeError::NoBody)));
        m.text = Some("x".into());
        m.to.clear();
        assert!(matches!(m.compose(), Err(ComposeError::NoRecipient)));
    }

    #[test]
    fn a_subject_cannot_add_headers() {
        let mut m = mail("x@trustmail.example", "y@shop.test");
        m.subject = "Hi\r\nBcc: victim@x.test".into();
        let composed = m.compose().unwrap();
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
        let composed = m.compose().unwrap();
        assert!(composed.message.is_ascii());
        assert_eq!(composed.subject, "Grüße");
    }

    #[test]
    fn the_verification_mail_carries_the_code_alone_on_its_line() {
        let m = verification_code_mail("no-reply@trustmail.example", "Ann@shop.test", "k3x9a0bz")
            .unwrap();
        assert_eq!(m.subject, "Your trustmail verification code");
        let composed = compose(&m, None, MailRoute::System).unwrap();
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
