//! Trusted email addresses and their verification codes.

use std::fmt;

use time::{Duration, OffsetDateTime};

use super::{DomainId, DomainName, EnvironmentId, TrustedEmailId, random_lower_alnum};

/// How long an emailed code works.
pub const CODE_LIFETIME: Duration = Duration::DAY;
/// Wrong codes allowed before the code is locked until a resend.
pub const MAX_CODE_ATTEMPTS: u32 = 5;
/// A code is sent at most this often per address.
pub const RESEND_INTERVAL: Duration = Duration::MINUTE;
const CODE_LEN: usize = 8;
const MAX_LOCAL_PART: usize = 64;

wire_enum!(
    /// Whether an address may send: it waits for its emailed code until it is ACTIVE.
    TrustedEmailStatus {
        VerificationRequired => "VERIFICATION_REQUIRED",
        Active => "ACTIVE",
    }
);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailAddressError {
    #[error("The email address must look like name@{0}.")]
    Syntax(String),
    #[error("The email address must be in the trusted domain {0}.")]
    OtherDomain(String),
}

/// An address in a trusted domain: the local part keeps its case, the domain is the trusted
/// domain's canonical name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailAddress {
    local: String,
    domain: DomainName,
}

impl EmailAddress {
    pub fn parse(
        raw: &str,
        trusted: &DomainName,
        suffixes: &super::PublicSuffixes,
    ) -> Result<Self, EmailAddressError> {
        let syntax = || EmailAddressError::Syntax(trusted.to_string());
        let (local, domain) = raw.rsplit_once('@').ok_or_else(syntax)?;
        // Dot-atom local parts only: no quoted strings, no comments (RFC 5322 § 3.4.1).
        let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c);
        let valid_local = !local.is_empty()
            && local.len() <= MAX_LOCAL_PART
            && local
                .split('.')
                .all(|atom| !atom.is_empty() && atom.chars().all(atext));
        if !valid_local || domain.starts_with('[') {
            return Err(syntax());
        }
        let domain = DomainName::parse(domain, suffixes).map_err(|_| syntax())?;
        if &domain != trusted {
            return Err(EmailAddressError::OtherDomain(trusted.to_string()));
        }
        Ok(Self {
            local: local.to_owned(),
            domain,
        })
    }

    /// Rebuilds an address read back from the store.
    pub fn from_trusted(stored: &str) -> Self {
        let (local, domain) = stored.rsplit_once('@').unwrap_or((stored, ""));
        Self {
            local: local.to_owned(),
            domain: DomainName::from_trusted(domain.to_owned()),
        }
    }

    /// The form duplicates are compared in.
    pub fn key(&self) -> String {
        Self::key_of(&self.local, &self.domain)
    }

    /// The key of `local@domain`, for an address parsed elsewhere (a message's From).
    pub fn key_of(local: &str, domain: &DomainName) -> String {
        format!("{local}@{domain}").to_ascii_lowercase()
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.local, self.domain)
    }
}

/// A fresh code: 8 characters of `[a-z0-9]`.
pub fn new_verification_code() -> String {
    random_lower_alnum(CODE_LEN)
}

/// A code as typed: trimmed and lowercased; `None` when it cannot be a code at all.
pub fn normalize_code(raw: &str) -> Option<String> {
    let code = raw.trim().to_ascii_lowercase();
    (code.len() == CODE_LEN
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
    .then_some(code)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedEmail {
    pub id: TrustedEmailId,
    pub environment_id: EnvironmentId,
    pub domain_id: DomainId,
    pub address: EmailAddress,
    pub status: TrustedEmailStatus,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// The hashed code of an address waiting for activation.
#[derive(Debug, Clone)]
pub struct PendingCode {
    pub hash: String,
    pub sent_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub failed_attempts: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::PublicSuffixes;

    fn parse(raw: &str) -> Result<String, EmailAddressError> {
        let suffixes = PublicSuffixes::new(["test"]);
        let trusted = DomainName::parse("auth.shopco.test", &suffixes).unwrap();
        EmailAddress::parse(raw, &trusted, &suffixes).map(|a| a.to_string())
    }

    #[test]
    fn the_local_part_keeps_its_case_and_the_domain_is_canonical() {
        assert_eq!(
            parse("NoReply@Auth.ShopCo.TEST").unwrap(),
            "NoReply@auth.shopco.test"
        );
        assert_eq!(
            parse("a.b+tag@auth.shopco.test.").unwrap(),
            "a.b+tag@auth.shopco.test"
        );
    }

    #[test]
    fn only_plain_addresses_in_the_trusted_domain() {
        for bad in [
            "",
            "@auth.shopco.test",
            "a@",
            "noat",
            "\"q\"@auth.shopco.test",
            "a..b@auth.shopco.test",
            ".a@auth.shopco.test",
            "a b@auth.shopco.test",
            "a@[127.0.0.1]",
        ] {
            assert!(
                matches!(parse(bad), Err(EmailAddressError::Syntax(_))),
                "{bad}"
            );
        }
        for other in ["a@other.shopco.test", "a@shopco.test"] {
            let got = parse(other);
            assert!(
                matches!(got, Err(EmailAddressError::OtherDomain(_))),
                "{other}"
            );
        }
    }

    #[test]
    fn codes_are_eight_lowercase_alphanumerics() {
        let code = new_verification_code();
        assert_eq!(normalize_code(&code.to_uppercase()), Some(code));
        assert_eq!(normalize_code(" avu0w4lt "), Some("avu0w4lt".into()));
        assert_eq!(normalize_code("short"), None);
        assert_eq!(normalize_code("avu0w4l!"), None);
    }

    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

        /// Any input is an error or an address whose display parses back to itself, with a
        /// dot-atom local part of at most 64 characters and the trusted domain.
        #[test]
        fn any_string_is_an_address_in_the_domain_or_an_error(
            local in prop_oneof![
                "[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]{1,20}(\\.[a-zA-Z0-9_-]{1,10}){0,2}",
                any::<String>(),
                "[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~\\- \"()<>@\\[\\]]{0,70}"],
            domain in prop_oneof![
                Just("auth.shopco.test".to_owned()),
                Just("AUTH.ShopCo.test.".to_owned()),
                any::<String>(),
            ],
        ) {
            let raw = format!("{local}@{domain}");
            if let Ok(address) = parse(&raw) {
                let (parsed_local, parsed_domain) = address.rsplit_once('@').unwrap();
                prop_assert_eq!(parsed_domain, "auth.shopco.test");
                prop_assert_eq!(parsed_local, local.as_str());
                prop_assert!(!local.is_empty() && local.len() <= MAX_LOCAL_PART);
                prop_assert!(local.split('.').all(|atom| !atom.is_empty()));
                prop_assert_eq!(parse(&address).unwrap(), address);
            }
            let _ = parse(&local);
        }

        /// A code is eight lowercase alphanumerics, or nothing; normalising is idempotent.
        #[test]
        fn any_string_normalises_to_a_code_or_none(raw in any::<String>()) {
            if let Some(code) = normalize_code(&raw) {
                prop_assert_eq!(code.len(), CODE_LEN);
                prop_assert!(code.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
                prop_assert_eq!(normalize_code(&code), Some(code.clone()));
            }
        }

        /// A code as typed, in any case and between any spaces, is the code.
        #[test]
        fn a_typed_code_in_any_case_and_spacing_is_the_code(
            code in "[a-zA-Z0-9]{8}",
            before in "[ \t\r\n]{0,3}",
            after in "[ \t\r\n]{0,3}",
        ) {
            let typed = format!("{before}{code}{after}");
            prop_assert_eq!(normalize_code(&typed), Some(code.to_ascii_lowercase()));
        }
    }
}
