//! DKIM keys. Each DKIM token of a region is a selector with its own key pair; the customer's
//! CNAME `<selector>._domainkey.<domain>` points at `<selector>.<dkim_zone>`, where trustmail
//! publishes the key. Per domain and region one key signs, one is published and waiting, and one
//! is retired: still published, so mail signed just before a rotation still verifies.

use time::OffsetDateTime;

use super::{DnsRecord, DomainId, RecordKind};

wire_enum!(
    /// The key type new DKIM keys get (`[dkim] algorithm`).
    DkimAlgorithm {
        Rsa2048 => "rsa-2048",
        Ed25519 => "ed25519",
    }
);

// wire_enum! writes the enum and its derives, so Default is written here.
#[allow(clippy::derivable_impls)]
impl Default for DkimAlgorithm {
    fn default() -> Self {
        DkimAlgorithm::Rsa2048
    }
}

impl DkimAlgorithm {
    /// The `k=` tag of the key record.
    pub fn key_type(&self) -> &'static str {
        match self {
            DkimAlgorithm::Rsa2048 => "rsa",
            DkimAlgorithm::Ed25519 => "ed25519",
        }
    }
}

wire_enum!(
    /// What a key of a region's three does now.
    DkimRole {
        /// Signs the domain's mail in this region.
        Signing => "SIGNING",
        /// Published and waiting: signs after the next rotation.
        Published => "PUBLISHED",
        /// Signed until the last rotation; stays published so that mail in flight verifies.
        Retired => "RETIRED",
    }
);

impl DkimRole {
    /// The role of the key at `position` when a domain is created.
    pub fn initial(position: u8) -> Self {
        match position {
            0 => DkimRole::Signing,
            1 => DkimRole::Published,
            _ => DkimRole::Retired,
        }
    }

    /// The role after one rotation: waiting signs, signing retires, and the retired slot gets a
    /// fresh key and waits.
    pub fn rotated(&self) -> Self {
        match self {
            DkimRole::Published => DkimRole::Signing,
            DkimRole::Signing => DkimRole::Retired,
            DkimRole::Retired => DkimRole::Published,
        }
    }
}

/// A DKIM key as the rest of the program sees it: everything but the private half.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkimKey {
    pub domain_id: DomainId,
    pub region: String,
    /// Which of the region's DKIM records (and so which token) this key sits behind.
    pub position: u8,
    /// The DKIM token: the selector in `s=` and the name in the region's zone.
    pub selector: String,
    pub algorithm: DkimAlgorithm,
    /// base64 of the public key as published in `p=`.
    pub public_key: String,
    pub role: DkimRole,
    pub role_since: OffsetDateTime,
    pub created_at: OffsetDateTime,
}

impl DkimKey {
    /// The key record's text: `v=DKIM1; k=rsa; p=…`.
    pub fn txt(&self) -> String {
        format!(
            "v=DKIM1; k={}; p={}",
            self.algorithm.key_type(),
            self.public_key
        )
    }

    /// `<selector>.<zone>`: where the key record lives.
    pub fn fqdn(&self, zone: &str) -> String {
        format!("{}.{}", self.selector, zone.trim_end_matches('.'))
    }
}

/// The selector behind a DKIM record: the token its CNAME target starts with.
pub fn dkim_selector(record: &DnsRecord) -> Option<&str> {
    (record.kind == RecordKind::Dkim)
        .then(|| record.value.split('.').next())
        .flatten()
        .filter(|token| !token.is_empty())
}

/// A TXT value as DNS character-strings: at most 255 bytes each (RFC 1035 § 3.3.14). Splits
/// only between characters, so every piece stays valid text.
pub fn txt_strings(value: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut rest = value;
    while rest.len() > 255 {
        let mut cut = 255;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        let (piece, tail) = rest.split_at(cut);
        pieces.push(piece);
        rest = tail;
    }
    pieces.push(rest);
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

        /// Any value splits into pieces of at most 255 bytes, none empty unless the value is,
        /// that concatenate back to the value.
        #[test]
        fn txt_strings_are_short_pieces_of_the_value(
            value in prop_oneof![any::<String>(), "[a-z€😀]{0,700}"],
        ) {
            let pieces = txt_strings(&value);
            prop_assert!(pieces.iter().all(|p| p.len() <= 255));
            prop_assert_eq!(pieces.concat(), value.clone());
            prop_assert!(value.is_empty() || pieces.iter().all(|p| !p.is_empty()));
            prop_assert_eq!(pieces.len() == 1, value.len() <= 255);
        }
    }

    #[test]
    fn three_rotations_bring_every_role_back() {
        for position in 0..3 {
            let start = DkimRole::initial(position);
            assert_eq!(start.rotated().rotated().rotated(), start);
        }
        let roles: Vec<_> = (0..3).map(DkimRole::initial).collect();
        assert_eq!(
            roles,
            [DkimRole::Signing, DkimRole::Published, DkimRole::Retired]
        );
        // After a rotation there is still exactly one signing key.
        let after: Vec<_> = roles.iter().map(DkimRole::rotated).collect();
        assert_eq!(after.iter().filter(|r| **r == DkimRole::Signing).count(), 1);
    }

    #[test]
    fn long_txt_values_split_into_255_byte_strings() {
        let value = format!("v=DKIM1; k=rsa; p={}", "A".repeat(392));
        let pieces = txt_strings(&value);
        assert_eq!(pieces.len(), 2);
        assert_eq!(pieces[0].len(), 255);
        assert_eq!(pieces.concat(), value);
        assert_eq!(txt_strings("short"), ["short"]);
    }
}
