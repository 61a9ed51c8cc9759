//! Pure types and rules: no I/O, no HTTP, no SQL.

/// A wire value that is not one of an enum's names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not one of {allowed}")]
pub struct UnknownValue {
    pub value: String,
    pub allowed: &'static str,
}

/// An enum whose variants travel as fixed strings (JSON, SQL, CLI).
macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(&self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::domain::UnknownValue;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err($crate::domain::UnknownValue {
                        value: s.to_owned(),
                        allowed: concat!($($text, " "),+),
                    }),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

mod domain_name;
mod entities;
mod ids;
mod records;
mod senders;
mod tenancy;
mod tokens;
mod verification;

pub use domain_name::{DomainName, DomainNameError, PublicSuffixes};
pub use entities::{Activity, Client, EmailDomain, Environment, now};
pub use ids::{ActivityId, ClientId, DomainId, EnvironmentId};
pub use records::{
    DKIM_TOKENS_PER_REGION, DnsRecord, MAIL_FROM_PRIORITY, RecordKind, RecordSettings,
    RecordStatus, SendingRegion, apex_spf_record, build_domain_records, mail_from_records,
    ownership_verified, regions_for, spf_value, visible_statuses,
};
pub use senders::{
    CODE_LIFETIME, MAX_CODE_ATTEMPTS, PendingCode, RESEND_INTERVAL, SenderAddress,
    SenderAddressError, TrustedEmail, TrustedEmailId, new_verification_code, normalize_code,
};
pub use tenancy::{ActivityType, Geography, Permission, ResourceType, Role};
pub use tokens::{random_base64url, random_lower_alnum};
pub use verification::{
    CheckState, CheckedRecord, Observation, ReasonCode, SPF_LOOKUP_LIMIT, is_spf,
    merge_spf_include, next_check_delay, next_state, same_name,
};
