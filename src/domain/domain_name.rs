//! `DomainName`: a sending domain in its one canonical form (lowercase A-labels, no trailing dot).

use std::fmt;

const MAX_NAME_LEN: usize = 253;
const MAX_LABEL_LEN: usize = 63;

/// Suffixes that count as public besides the compiled-in Public Suffix List
/// (`domains.extra_public_suffixes`, e.g. `test` so `shopco.test` validates in tests).
#[derive(Debug, Clone, Default)]
pub struct PublicSuffixes {
    extra: Vec<String>,
}

impl PublicSuffixes {
    /// Extra suffixes are normalised like names; ones that do not normalise are ignored
    /// (configuration loading rejects them first).
    pub fn new<I: IntoIterator<Item = S>, S: AsRef<str>>(extra: I) -> Self {
        let extra = extra
            .into_iter()
            .filter_map(|s| idna::domain_to_ascii(s.as_ref().trim_end_matches('.')).ok())
            .filter(|s| !s.is_empty())
            .collect();
        Self { extra }
    }

    /// The suffix `name` sits under, if any, and whether `name` is exactly that suffix.
    fn classify(&self, name: &str) -> Suffix {
        for extra in &self.extra {
            if name == extra {
                return Suffix::IsPublic;
            }
            if name.len() > extra.len()
                && name.ends_with(extra.as_str())
                && name.as_bytes()[name.len() - extra.len() - 1] == b'.'
            {
                return Suffix::Under;
            }
        }
        match psl::suffix(name.as_bytes()) {
            Some(suffix) if suffix.is_known() => {
                if psl::domain(name.as_bytes()).is_some() {
                    Suffix::Under
                } else {
                    Suffix::IsPublic
                }
            }
            _ => Suffix::Unknown,
        }
    }
}

enum Suffix {
    Under,
    IsPublic,
    Unknown,
}

/// Why a string is not an acceptable sending domain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainNameError {
    #[error("The domain name is empty.")]
    Empty,
    #[error("Wildcard domain names are not supported.")]
    Wildcard,
    #[error("The domain name is not a valid internationalized domain name.")]
    Idna,
    #[error("The domain name is longer than {MAX_NAME_LEN} characters.")]
    TooLong,
    #[error("The domain name needs at least two labels (for example auth.shopco.com).")]
    SingleLabel,
    #[error(
        "The domain name has an invalid label `{0}`: labels are 1 to {MAX_LABEL_LEN} letters, digits or hyphens, and do not start or end with a hyphen."
    )]
    InvalidLabel(String),
    #[error("`{0}` is a public suffix; register a domain under it instead.")]
    PublicSuffix(String),
    #[error("`{0}` is not under a known public suffix.")]
    UnknownSuffix(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DomainName(String);

impl DomainName {
    pub fn parse(input: &str, suffixes: &PublicSuffixes) -> Result<Self, DomainNameError> {
        let trimmed = input.strip_suffix('.').unwrap_or(input);
        if trimmed.is_empty() {
            return Err(DomainNameError::Empty);
        }
        if trimmed.contains('*') {
            return Err(DomainNameError::Wildcard);
        }
        // UTS-46 mapping: lowercases, maps full-width forms, turns U-labels into A-labels.
        let ascii = idna::domain_to_ascii(trimmed).map_err(|_| DomainNameError::Idna)?;
        if ascii.is_empty() {
            return Err(DomainNameError::Empty);
        }
        if ascii.len() > MAX_NAME_LEN {
            return Err(DomainNameError::TooLong);
        }
        let labels: Vec<&str> = ascii.split('.').collect();
        if labels.len() < 2 {
            return Err(DomainNameError::SingleLabel);
        }
        if let Some(bad) = labels.iter().find(|label| !is_ldh_label(label)) {
            return Err(DomainNameError::InvalidLabel((*bad).to_owned()));
        }
        match suffixes.classify(&ascii) {
            Suffix::Under => Ok(Self(ascii)),
            Suffix::IsPublic => Err(DomainNameError::PublicSuffix(ascii)),
            Suffix::Unknown => Err(DomainNameError::UnknownSuffix(ascii)),
        }
    }

    /// Rebuilds a name read back from the store, where only parsed names are written.
    pub fn from_trusted(stored: String) -> Self {
        Self(stored)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// How `input`, which parsed to this name, is answered back: as written when it is this name
    /// in other ASCII letter case (clients such as Terraform compare what they sent with what they
    /// read), otherwise (U-labels, full-width forms) as the canonical A-labels.
    pub fn written_as(&self, input: &str) -> String {
        let trimmed = input.strip_suffix('.').unwrap_or(input);
        if trimmed.eq_ignore_ascii_case(&self.0) {
            trimmed.to_owned()
        } else {
            self.0.clone()
        }
    }
}

fn is_ldh_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= MAX_LABEL_LEN
        && !label.starts_with('-')
        && !label.ends_with('-')
        && label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for DomainName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use std::mem::discriminant;

    use super::*;
    use proptest::prelude::*;

    fn parse(s: &str) -> Result<String, DomainNameError> {
        DomainName::parse(s, &PublicSuffixes::new(["test"])).map(|d| d.0)
    }

    #[test]
    fn a_name_is_answered_as_written_when_only_its_letter_case_differs() {
        let suffixes = PublicSuffixes::new(["test"]);
        let written = |s: &str| DomainName::parse(s, &suffixes).unwrap().written_as(s);
        assert_eq!(written("Auth.ShopCo.Test."), "Auth.ShopCo.Test");
        assert_eq!(
            written("XN--Bcher-kva.shopco.test"),
            "XN--Bcher-kva.shopco.test"
        );
        assert_eq!(written("Bücher.ShopCo.test"), "xn--bcher-kva.shopco.test");
        assert_eq!(written("ａｕｔｈ.shopco.test"), "auth.shopco.test");
    }

    #[test]
    fn canonicalises_case_idna_and_trailing_dot() {
        assert_eq!(parse("Auth.ShopCo.COM.").unwrap(), "auth.shopco.com");
        assert_eq!(
            parse("bücher.example.de").unwrap(),
            "xn--bcher-kva.example.de"
        );
        assert_eq!(parse("a.shopco.test").unwrap(), "a.shopco.test");
        assert_eq!(parse("user.github.io").unwrap(), "user.github.io");
        assert_eq!(parse("mail.example.co.uk").unwrap(), "mail.example.co.uk");
    }

    #[test]
    fn rejects_what_cannot_send_mail() {
        assert_eq!(parse(""), Err(DomainNameError::Empty));
        assert_eq!(parse("."), Err(DomainNameError::Empty));
        assert_eq!(parse("*.example.com"), Err(DomainNameError::Wildcard));
        assert_eq!(parse("localhost"), Err(DomainNameError::SingleLabel));
        // Only the kind of error: what each carries is the offending part, checked elsewhere.
        for (name, want) in [
            ("co.uk", DomainNameError::PublicSuffix(String::new())),
            ("github.io", DomainNameError::PublicSuffix(String::new())),
            ("test", DomainNameError::SingleLabel),
            ("foo.invalid", DomainNameError::UnknownSuffix(String::new())),
            (
                "a_b.example.com",
                DomainNameError::InvalidLabel(String::new()),
            ),
            (
                "-a.example.com",
                DomainNameError::InvalidLabel(String::new()),
            ),
        ] {
            let got = parse(name).unwrap_err();
            assert_eq!(discriminant(&got), discriminant(&want), "{name}: {got:?}");
        }
        assert!(parse("a..example.com").is_err());
        assert!(parse("example.com..").is_err());
        assert!(parse("ex ample.com").is_err());
        let long_label = format!("{}.example.com", "a".repeat(64));
        assert!(matches!(
            parse(&long_label),
            Err(DomainNameError::InvalidLabel(_))
        ));
        let long_name = format!("{}example.com", "abcdefghi.".repeat(25));
        assert_eq!(parse(&long_name), Err(DomainNameError::TooLong));
    }

    #[test]
    fn extra_suffixes_only_match_whole_labels() {
        let unknown = parse("shopcotest.invalid");
        assert!(matches!(unknown, Err(DomainNameError::UnknownSuffix(_))));
        let s = PublicSuffixes::new(["shopco.test"]);
        assert!(matches!(
            DomainName::parse("shopco.test", &s),
            Err(DomainNameError::PublicSuffix(_))
        ));
    }

    proptest! {
        #[test]
        fn parsing_is_idempotent_and_canonical(input in "[a-zA-Z0-9.*_ü-]{0,80}") {
            if let Ok(name) = parse(&input) {
                prop_assert_eq!(parse(&name).unwrap(), name.clone());
                prop_assert!(name.len() <= MAX_NAME_LEN);
                prop_assert!(!name.bytes().any(|b| b.is_ascii_uppercase()));
                prop_assert!(!name.ends_with('.'));
            }
        }

        #[test]
        fn case_never_makes_two_names(label in "[a-z][a-z0-9]{0,20}") {
            let lower = format!("{label}.example.com");
            prop_assert_eq!(parse(&lower.to_uppercase()).unwrap(), parse(&lower).unwrap());
        }
    }

    /// What every accepted name is: lowercase LDH labels, at least two, at most 253 in all,
    /// and the same name when its display is parsed again.
    fn assert_canonical(name: &DomainName) -> Result<(), TestCaseError> {
        let text = name.to_string();
        prop_assert!(text.len() <= MAX_NAME_LEN, "{}", text);
        prop_assert!(text.split('.').count() >= 2, "{}", text);
        prop_assert!(text.split('.').all(is_ldh_label), "{}", text);
        let again = DomainName::parse(&text, &PublicSuffixes::new(["test"]));
        prop_assert_eq!(again.as_ref(), Ok(name));
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

        #[test]
        fn any_string_is_a_canonical_name_or_an_error(input in any::<String>()) {
            if let Ok(name) = DomainName::parse(&input, &PublicSuffixes::new(["test"])) {
                assert_canonical(&name)?;
            }
        }

        #[test]
        fn name_like_strings_are_a_canonical_name_or_an_error(
            input in "[a-zA-Z0-9.*_ü\\-]{0,300}\\.?",
        ) {
            if let Ok(name) = DomainName::parse(&input, &PublicSuffixes::new(["test"])) {
                assert_canonical(&name)?;
            }
        }

        #[test]
        fn ldh_names_are_accepted_lowercased_and_round_trip(
            labels in prop::collection::vec("[a-zA-Z0-9]{1,20}", 1..6),
            trailing_dot in any::<bool>(),
        ) {
            let dot = if trailing_dot { "." } else { "" };
            let input = format!("{}.shopco.TEST{dot}", labels.join("."));
            let name = DomainName::parse(&input, &PublicSuffixes::new(["test"]));
            let expected = input.trim_end_matches('.').to_ascii_lowercase();
            prop_assert_eq!(name.as_ref().map(DomainName::as_str), Ok(expected.as_str()));
            if let Ok(name) = name {
                assert_canonical(&name)?;
            }
        }
    }
}
