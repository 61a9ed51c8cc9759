//! VERP return paths: each recipient of each message gets its own envelope sender, so a bounce
//! or complaint sent back to it names the message and the recipient without reading the report.
//!
//! The local part reads `b-<message>-<recipient>-<tag>`:
//! - `<message>`: the message id's 16 bytes in lowercase base32 (RFC 5155's alphabet, 26
//!   characters), since mail systems may change the case of a local part;
//! - `<recipient>`: the recipient's place in the message's envelope, in decimal;
//! - `<tag>`: 10 bytes of an HMAC under the master key (`MasterKey::tag`) over both, so the
//!   feedback MX refuses, at RCPT time, any address trustmail did not issue.
//!
//! The whole local part is 51 characters at most, inside RFC 5321's 64. A tag made under a
//! master key verifies as long as that key is loaded (during a rotation, as a previous key).
//!
//! A domain's report address (`ReportAddress`), which the DMARC record trustmail suggests names
//! in `rua=`, is made the same way: `r-<domain>-<tag>`, the tag under a purpose of its own.

use data_encoding::BASE32_DNSSEC;

use crate::{domain::DomainId, mail::MessageId, secrets::MasterKey};

/// What the tag proves, apart from any other tag under the same key.
const PURPOSE: &str = "return path";
/// Leads a return path's local part.
const PREFIX: &str = "b-";
/// A report address's tag purpose and prefix.
const REPORTS_PURPOSE: &str = "dmarc reports";
const REPORTS_PREFIX: &str = "r-";
/// Bytes of HMAC carried: 80 bits, where each guess costs a forger an SMTP transaction.
const TAG_BYTES: usize = 10;

/// One recipient of one message: what a return path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReturnPath {
    pub message: MessageId,
    /// The recipient's place in the message's envelope (`envelope_to`).
    pub recipient: u16,
}

/// Why a local part is not a return path trustmail issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotIssued {
    #[error("not in the form of a return path")]
    Malformed,
    #[error("the tag does not match: not issued by this service, or under a key no longer loaded")]
    BadTag,
}

impl ReturnPath {
    /// The local part of this recipient's envelope sender.
    pub fn local_part(&self, key: &MasterKey) -> String {
        let tag = key.tag(PURPOSE, &self.tagged_bytes(), TAG_BYTES);
        format!(
            "{PREFIX}{}-{}-{}",
            BASE32_DNSSEC.encode(self.message.as_uuid().as_bytes()),
            self.recipient,
            BASE32_DNSSEC.encode(&tag),
        )
    }

    /// The return path `local_part` names, if trustmail issued it (in any letter case).
    pub fn parse(local_part: &str, key: &MasterKey) -> Result<Self, NotIssued> {
        let lower = local_part.to_ascii_lowercase();
        let [message, recipient, tag] = fields(&lower, PREFIX)?;
        let message = decode::<16>(message).ok_or(NotIssued::Malformed)?;
        let tag = decode::<TAG_BYTES>(tag).ok_or(NotIssued::Malformed)?;
        // Only the form `local_part` writes: no sign, no leading zero, no `+`.
        let canonical = recipient == "0" || !recipient.starts_with('0');
        let recipient: u16 = recipient
            .parse()
            .ok()
            .filter(|_| canonical && recipient.bytes().all(|b| b.is_ascii_digit()))
            .ok_or(NotIssued::Malformed)?;
        let path = Self {
            message: MessageId::from(uuid::Uuid::from_bytes(message)),
            recipient,
        };
        if key.verify_tag(PURPOSE, &path.tagged_bytes(), &tag) {
            Ok(path)
        } else {
            Err(NotIssued::BadTag)
        }
    }

    fn tagged_bytes(&self) -> [u8; 18] {
        let mut bytes = [0u8; 18];
        bytes[..16].copy_from_slice(self.message.as_uuid().as_bytes());
        bytes[16..].copy_from_slice(&self.recipient.to_be_bytes());
        bytes
    }
}

/// Where one domain's DMARC aggregate reports are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReportAddress {
    pub domain: DomainId,
}

impl ReportAddress {
    /// The local part of the domain's report address.
    pub fn local_part(&self, key: &MasterKey) -> String {
        let bytes = self.domain.as_uuid().into_bytes();
        let tag = key.tag(REPORTS_PURPOSE, &bytes, TAG_BYTES);
        format!(
            "{REPORTS_PREFIX}{}-{}",
            BASE32_DNSSEC.encode(&bytes),
            BASE32_DNSSEC.encode(&tag)
        )
    }

    /// The domain `local_part` is the report address of, if trustmail issued it.
    pub fn parse(local_part: &str, key: &MasterKey) -> Result<Self, NotIssued> {
        let lower = local_part.to_ascii_lowercase();
        let [domain, tag] = fields(&lower, REPORTS_PREFIX)?;
        let domain = decode::<16>(domain).ok_or(NotIssued::Malformed)?;
        let tag = decode::<TAG_BYTES>(tag).ok_or(NotIssued::Malformed)?;
        if key.verify_tag(REPORTS_PURPOSE, &domain, &tag) {
            Ok(Self {
                domain: DomainId::from(uuid::Uuid::from_bytes(domain)),
            })
        } else {
            Err(NotIssued::BadTag)
        }
    }
}

/// The `N` dash-separated fields after `prefix`, exactly.
fn fields<'a, const N: usize>(lower: &'a str, prefix: &str) -> Result<[&'a str; N], NotIssued> {
    let rest = lower.strip_prefix(prefix).ok_or(NotIssued::Malformed)?;
    let fields: Vec<&str> = rest.split('-').collect();
    fields.try_into().map_err(|_| NotIssued::Malformed)
}

/// Exactly `N` bytes from their base32 text, which must be the canonical one.
fn decode<const N: usize>(text: &str) -> Option<[u8; N]> {
    let bytes = BASE32_DNSSEC.decode(text.as_bytes()).ok()?;
    let bytes: [u8; N] = bytes.try_into().ok()?;
    (BASE32_DNSSEC.encode(&bytes) == text).then_some(bytes)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn key_named(name: &str) -> (tempfile::TempDir, MasterKey) {
        let dir = tempfile::tempdir().unwrap();
        let key = MasterKey::load_or_create(&dir.path().join(name)).unwrap();
        (dir, key)
    }

    #[test]
    fn a_return_path_reads_back_in_any_case_and_fits_in_a_local_part() {
        let (_dir, key) = key_named("k");
        let path = ReturnPath {
            message: MessageId::new(),
            recipient: u16::MAX,
        };
        let local = path.local_part(&key);
        assert!(local.len() <= 51, "{local}");
        assert!(local.starts_with("b-"), "{local}");
        assert_eq!(ReturnPath::parse(&local, &key), Ok(path));
        assert_eq!(ReturnPath::parse(&local.to_uppercase(), &key), Ok(path));
    }

    #[test]
    fn an_address_not_issued_here_is_refused() {
        let (_dir, key) = key_named("k");
        let (_other_dir, other) = key_named("other");
        let path = ReturnPath {
            message: MessageId::new(),
            recipient: 3,
        };
        let local = path.local_part(&key);
        assert_eq!(
            ReturnPath::parse(&path.local_part(&other), &key),
            Err(NotIssued::BadTag)
        );
        // Another recipient of the same message, with this one's tag.
        let moved = local.replacen("-3-", "-4-", 1);
        assert_eq!(ReturnPath::parse(&moved, &key), Err(NotIssued::BadTag));
        for malformed in [
            "",
            "postmaster",
            "b-",
            &local.replacen("-3-", "-03-", 1),
            &local.replacen("-3-", "-+3-", 1),
            &local.replacen("-3-", "-70000-", 1),
            &format!("{local}-x"),
            &local[..local.len() - 1],
            &local.replacen("b-", "c-", 1),
        ] {
            assert_eq!(
                ReturnPath::parse(malformed, &key),
                Err(NotIssued::Malformed),
                "{malformed}"
            );
        }
    }

    #[test]
    fn a_report_address_names_its_domain_and_nothing_else() {
        let (_dir, key) = key_named("k");
        let (_other_dir, other) = key_named("other");
        let address = ReportAddress {
            domain: DomainId::new(),
        };
        let local = address.local_part(&key);
        assert!(local.len() <= 64 && local.starts_with("r-"), "{local}");
        assert_eq!(
            ReportAddress::parse(&local.to_uppercase(), &key),
            Ok(address)
        );
        assert_eq!(
            ReportAddress::parse(&address.local_part(&other), &key),
            Err(NotIssued::BadTag)
        );
        // Neither kind of address reads as the other.
        assert_eq!(ReturnPath::parse(&local, &key), Err(NotIssued::Malformed));
        let path = ReturnPath {
            message: MessageId::new(),
            recipient: 0,
        };
        assert_eq!(
            ReportAddress::parse(&path.local_part(&key), &key),
            Err(NotIssued::Malformed)
        );
    }

    proptest! {
        #[test]
        fn no_local_part_panics_the_parser(local in "\\PC{0,80}") {
            let (_dir, key) = key_named("k");
            let _ = ReturnPath::parse(&local, &key);
        }

        #[test]
        fn every_return_path_round_trips(bytes in any::<[u8; 16]>(), recipient in any::<u16>()) {
            let (_dir, key) = key_named("k");
            let path = ReturnPath { message: MessageId::from(uuid::Uuid::from_bytes(bytes)), recipient };
            prop_assert_eq!(ReturnPath::parse(&path.local_part(&key), &key), Ok(path));
        }
    }
}
