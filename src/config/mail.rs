//! `[mail]`: trustmail's own mail (verification codes) and the SMTP relay URL form shared with
//! `[[regions]]`.

use lettre::{AsyncSmtpTransport, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ConfigError;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Mail {
    pub system_sender: String,
    /// The relay of system mail (and of regions without one of their own).
    pub smtp_url: SmtpUrl,
}

impl Default for Mail {
    fn default() -> Self {
        Self {
            system_sender: "no-reply@trustmail.example".into(),
            smtp_url: SmtpUrl::default(),
        }
    }
}

impl Mail {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if let Err(e) = self.system_sender.parse::<lettre::message::Mailbox>() {
            return Err(ConfigError::invalid(
                "mail.system_sender",
                format!("must be an email address ({e})"),
            ));
        }
        Ok(())
    }
}

/// An SMTP relay URL lettre accepts, checked when the configuration is read: `smtp://host:port`
/// (plain, for a local relay or a test sink), `smtp://host?tls=required` (STARTTLS),
/// `smtps://host` (TLS), with optional `user:password@`; empty means no relay. It may hold a
/// password, so it is never shown: not by `Debug`, not in an error.
#[derive(Clone, Default)]
pub struct SmtpUrl(SecretString);

impl SmtpUrl {
    pub fn parse(url: &str) -> Result<Self, String> {
        let url = url.trim();
        if url.is_empty() {
            return Ok(Self::default());
        }
        let has_credentials = url
            .split_once("://")
            .and_then(|(_, rest)| rest.split(['/', '?']).next())
            .is_some_and(|authority| authority.contains('@'));
        // Opportunistic TLS falls back to plain text when the relay offers no STARTTLS.
        let plain = url.starts_with("smtp://") && !url.contains("tls=required");
        if has_credentials && plain {
            return Err(
                "credentials over plain SMTP would cross the network in clear; use \
                        smtps:// or smtp://…?tls=required"
                    .to_owned(),
            );
        }
        // Without building lettre's connection pool, so it works outside the runtime; lettre's
        // URL errors name the scheme or the problem, never the credentials.
        AsyncSmtpTransport::<Tokio1Executor>::from_url(url).map_err(|e| e.to_string())?;
        Ok(Self(SecretString::from(url)))
    }

    /// The URL, when a relay is configured.
    pub fn expose(&self) -> Option<&str> {
        Some(self.0.expose_secret()).filter(|url| !url.is_empty())
    }
}

impl std::fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.expose().is_some() {
            "SmtpUrl(..)"
        } else {
            "SmtpUrl(none)"
        })
    }
}

impl<'de> Deserialize<'de> for SmtpUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let url = String::deserialize(d)?;
        Self::parse(&url)
            .map_err(|reason| serde::de::Error::custom(format!("not a usable SMTP URL: {reason}")))
    }
}

/// Only to list the keys: the URL is never written out.
impl Serialize for SmtpUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_url_form_is_accepted() {
        for url in [
            "",
            "smtp://127.0.0.1:2525",
            "smtp://relay.example:587?tls=required",
            "smtps://user:pa%40ss@relay.example",
            "smtp://user:hunter2@relay.example:587?tls=required",
        ] {
            assert!(SmtpUrl::parse(url).is_ok(), "{url}");
        }
        assert!(SmtpUrl::parse(" ").unwrap().expose().is_none());
    }

    #[test]
    fn credentials_over_plain_smtp_are_refused_without_showing_them() {
        for url in [
            "smtp://user:hunter2@relay.example",
            "smtp://user:hunter2@relay.example:587?tls=opportunistic",
        ] {
            let err = SmtpUrl::parse(url).err().unwrap();
            assert!(err.contains("plain SMTP"), "{err}");
            assert!(!err.contains("hunter2"), "{err}");
        }
    }

    #[test]
    fn the_url_is_never_shown() {
        let url = SmtpUrl::parse("smtps://user:hunter2@relay.example").unwrap();
        assert_eq!(format!("{url:?}"), "SmtpUrl(..)");
        let err = SmtpUrl::parse("ftp://user:hunter2@relay.example")
            .err()
            .unwrap();
        assert!(!err.contains("hunter2"), "{err}");
    }
}
