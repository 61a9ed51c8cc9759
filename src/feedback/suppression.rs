//! The suppression list: addresses an environment no longer sends to. A hard bounce or a
//! complaint adds one (in the environment the message came from, never another); an operator
//! may add or remove one. Sending skips a suppressed recipient before the relay sees it.

use time::OffsetDateTime;

use crate::{
    domain::{EnvironmentId, wire_enum},
    mail::MessageId,
};

wire_enum!(
    /// Why an address is suppressed.
    SuppressionReason {
        /// A hard bounce (a DSN `failed` with 5.x.x, or a 5xx from the relay for it).
        Bounce => "BOUNCE",
        /// The recipient reported a message as spam (an ARF report).
        Complaint => "COMPLAINT",
        /// Added through the API or the CLI.
        Manual => "MANUAL",
    }
);

/// An address as the suppression list keys it: one `addr@domain`, lowercased whole. Mailbox
/// providers treat local parts without case, and so does every peer's suppression list.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SuppressedAddress(String);

/// Not one address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not one email address (addr@domain).")]
pub struct NotAnAddress(pub String);

impl SuppressedAddress {
    pub fn parse(raw: &str) -> Result<Self, NotAnAddress> {
        let address: lettre::Address = raw.parse().map_err(|_| NotAnAddress(raw.to_owned()))?;
        Ok(Self(address.to_string().to_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for SuppressedAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for SuppressedAddress {
    type Err = NotAnAddress;

    fn from_str(s: &str) -> Result<Self, NotAnAddress> {
        Self::parse(s)
    }
}

/// One entry of an environment's suppression list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppression {
    pub environment_id: EnvironmentId,
    pub address: SuppressedAddress,
    pub reason: SuppressionReason,
    /// The message whose bounce or complaint added it.
    pub message_id: Option<MessageId>,
    /// The bounce's diagnostic, or the complaint's feedback type.
    pub detail: Option<String>,
    pub created_at: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_keyed_lowercased() {
        let address = SuppressedAddress::parse("Gone.Away@Receiver.TEST").unwrap();
        assert_eq!(address.as_str(), "gone.away@receiver.test");
        assert_eq!(
            "gone.away@receiver.test".parse::<SuppressedAddress>(),
            Ok(address)
        );
    }

    #[test]
    fn anything_but_one_address_is_refused() {
        for bad in [
            "",
            "noat",
            "a@",
            "@b.test",
            "A <a@b.test>",
            "a@b.test, c@d.test",
        ] {
            assert!(SuppressedAddress::parse(bad).is_err(), "{bad}");
        }
    }
}
