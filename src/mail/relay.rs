//! SMTP relays (lettre over rustls): one per configured `smtp_url`, chosen by a message's route.

use std::{collections::HashMap, time::Duration};

use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor, address::Envelope};

use super::MailRoute;
use crate::config::{Mail, Region, SmtpUrl};

/// Per SMTP command; `jobs::outbox` also bounds a whole send.
const SMTP_COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// A relay URL that lettre cannot use. The URL itself is never shown: it may hold a password.
#[derive(Debug, thiserror::Error)]
#[error("configuration key `{key}` is not a usable SMTP URL: {reason}")]
pub struct RelayConfigError {
    pub key: String,
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("the stored envelope is not valid: {0}")]
    Envelope(String),
    #[error(transparent)]
    Smtp(#[from] lettre::transport::smtp::Error),
}

impl DeliveryError {
    /// Whether sending again cannot help: a 5xx reply, or an envelope that never parses.
    pub fn is_permanent(&self) -> bool {
        match self {
            DeliveryError::Envelope(_) => true,
            DeliveryError::Smtp(e) => e.is_permanent(),
        }
    }
}

/// One relay. Cloning shares its connection pool.
#[derive(Clone)]
pub struct Relay {
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl Relay {
    /// The relay at `url` (checked when the configuration was read); `None` when none is
    /// configured. Call it inside the Tokio runtime: lettre's connection pool spawns a task.
    pub fn from_url(url: &SmtpUrl) -> Result<Option<Self>, String> {
        let Some(url) = url.expose() else {
            return Ok(None);
        };
        let builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url).map_err(|e| {
            // lettre's URL errors name the scheme or the problem, never the credentials.
            e.to_string()
        })?;
        Ok(Some(Self {
            transport: builder.timeout(Some(SMTP_COMMAND_TIMEOUT)).build(),
        }))
    }

    /// Sends the stored message as it is, with the stored envelope. Returns the relay's reply
    /// to the message (e.g. `250 2.0.0 Ok: queued as …`).
    pub async fn send(
        &self,
        envelope_from: &str,
        envelope_to: &[String],
        message: &str,
    ) -> Result<String, DeliveryError> {
        let parse = |value: &str| {
            value
                .parse::<Address>()
                .map_err(|e| DeliveryError::Envelope(format!("{value:?}: {e}")))
        };
        let recipients = envelope_to
            .iter()
            .map(|to| parse(to))
            .collect::<Result<Vec<_>, _>>()?;
        let envelope = Envelope::new(Some(parse(envelope_from)?), recipients)
            .map_err(|e| DeliveryError::Envelope(e.to_string()))?;
        let response = self
            .transport
            .send_raw(&envelope, message.as_bytes())
            .await?;
        let lines: Vec<&str> = response.message().collect();
        Ok(format!("{} {}", response.code(), lines.join(" ")))
    }

    /// Says QUIT on pooled connections.
    pub async fn shutdown(&self) {
        self.transport.shutdown().await;
    }
}

/// The relays of `[mail]` and `[[regions]]`, by route.
#[derive(Clone, Default)]
pub struct Relays {
    system: Option<Relay>,
    regions: HashMap<String, Relay>,
}

impl Relays {
    pub fn from_config(mail: &Mail, regions: &[Region]) -> Result<Self, RelayConfigError> {
        let system = Relay::from_url(&mail.smtp_url).map_err(|reason| RelayConfigError {
            key: "mail.smtp_url".into(),
            reason,
        })?;
        let mut by_region = HashMap::new();
        for (i, region) in regions.iter().enumerate() {
            let relay = Relay::from_url(&region.smtp_url).map_err(|reason| RelayConfigError {
                key: format!("regions[{i}].smtp_url"),
                reason,
            })?;
            if let Some(relay) = relay {
                by_region.insert(region.name.clone(), relay);
            }
        }
        Ok(Self {
            system,
            regions: by_region,
        })
    }

    /// System mail goes to `[mail]`; a region's mail to its own relay, else to `[mail]` (also
    /// for a region no longer configured, so its queued mail is not stranded). `None`: the
    /// message waits in the outbox.
    pub fn for_route(&self, route: &MailRoute) -> Option<&Relay> {
        match route {
            MailRoute::System => self.system.as_ref(),
            MailRoute::Region(name) => self.regions.get(name).or(self.system.as_ref()),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.system.is_none() && self.regions.is_empty()
    }

    pub async fn shutdown(&self) {
        for relay in self.system.iter().chain(self.regions.values()) {
            relay.shutdown().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(url: &str) -> SmtpUrl {
        SmtpUrl::parse(url).unwrap()
    }

    fn mail(smtp_url: &str) -> Mail {
        Mail {
            smtp_url: url(smtp_url),
            ..Mail::default()
        }
    }

    // lettre's connection pool spawns a task, so building a relay needs a runtime.
    #[tokio::test]
    async fn routes_fall_back_to_the_mail_relay() {
        let mut eu = Region::named("eu");
        eu.smtp_url = url("smtp://127.0.0.1:2526");
        let regions = [Region::named("us"), eu];
        let relays = Relays::from_config(&mail(""), &regions).unwrap();
        assert!(relays.for_route(&MailRoute::System).is_none());
        assert!(relays.for_route(&MailRoute::Region("us".into())).is_none());
        assert!(relays.for_route(&MailRoute::Region("eu".into())).is_some());

        let relays = Relays::from_config(&mail("smtp://127.0.0.1:2525"), &regions).unwrap();
        assert!(relays.for_route(&MailRoute::System).is_some());
        assert!(relays.for_route(&MailRoute::Region("us".into())).is_some());
        assert!(
            relays
                .for_route(&MailRoute::Region("gone".into()))
                .is_some()
        );
        assert!(Relays::from_config(&mail(""), &[]).unwrap().is_empty());
    }

    #[tokio::test]
    async fn every_documented_url_form_is_accepted() {
        for url in [
            "smtp://127.0.0.1:2525",
            "smtp://relay.example:587?tls=required",
            "smtps://user:pa%40ss@relay.example",
        ] {
            assert!(Relay::from_url(&self::url(url)).unwrap().is_some(), "{url}");
        }
    }
}
