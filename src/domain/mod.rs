//! Pure types and rules: no I/O, no HTTP, no SQL.

/// A wire value that is not one of an enum's names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not one of {}", allowed.trim_end())]
pub struct UnknownValue {
    pub value: String,
    /// The accepted names, separated by spaces.
    pub allowed: &'static str,
}

/// An enum whose variants travel as fixed strings (JSON, SQL, CLI): `as_str`, `FromStr` (so
/// clap parses it too), `Display` and `ALL`.
macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident {
        $($(#[$variant_doc:meta])* $variant:ident => $text:literal),+ $(,)?
    }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$variant_doc])* $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub const fn as_str(&self) -> &'static str {
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
pub(crate) use wire_enum;

/// An identifier as a UUID newtype, so an environment id is never passed where a domain id
/// belongs. `$new` is the UUID version's constructor: `new_v4`, or `now_v7` for ids that sort
/// by creation time. Parses only the hyphenated form, as PingOne's clients send it.
macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $new:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(uuid::Uuid);

        impl $name {
            pub fn new() -> Self {
                Self(uuid::Uuid::$new())
            }

            pub fn as_uuid(&self) -> uuid::Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl From<uuid::Uuid> for $name {
            fn from(value: uuid::Uuid) -> Self {
                Self(value)
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                uuid::fmt::Hyphenated::from_str(s).map(|h| Self(h.into_uuid()))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }
    };
}
pub(crate) use id_type;

mod bill_of_materials;
mod dkim;
mod domain_name;
mod entities;
mod ids;
mod ip_scope;
mod populations;
mod random;
mod records;
mod subscriptions;
mod tenancy;
mod trusted_emails;
mod verification;
mod zone;
mod zone_file;

pub use bill_of_materials::{
    BillOfMaterials, Bookmark, FieldError, MAX_BOOKMARK_NAME, MAX_BOOKMARKS, Product, ProductTag,
    ProductType, SolutionType,
};
pub use dkim::{DkimAlgorithm, DkimKey, DkimRole, dkim_selector, txt_strings};
pub use domain_name::{DomainName, DomainNameError, PublicSuffixes};
pub use entities::{Activity, Client, EmailDomain, Environment, now};
pub use ids::{ActivityId, ClientId, DomainId, EnvironmentId, PopulationId, TrustedEmailId};
pub use ip_scope::{NonGlobal, non_global};
pub use populations::{
    DEFAULT_POPULATION_DESCRIPTION, DEFAULT_POPULATION_NAME, Population, PopulationFields,
    default_theme_id,
};
pub use random::{random_base64url, random_lower_alnum};
pub use records::{
    DKIM_TOKENS_PER_REGION, DnsRecord, MAIL_FROM_PRIORITY, MAX_DNS_NAME, RecordKind,
    RecordSettings, RecordStatus, SendingRegion, active_mail_from, apex_spf_record,
    build_domain_records, longest_record_name, mail_from_records, ownership_verified, regions_for,
    spf_value, visible_statuses,
};
pub use subscriptions::{
    DeliveryState, EndpointHeaders, EndpointPolicy, EndpointRefusal, EndpointUrl, InvalidField,
    MAX_WEBHOOK_ATTEMPTS, SUSPENDED_DELIVERY_KEPT, SigningSecret, Subscription, SubscriptionFormat,
    SubscriptionId, SubscriptionSettings, endpoint_pause, parse_action_types, webhook_retry_delay,
};
pub use tenancy::{
    ActivityType, EnvironmentType, Geography, Permission, ResourceType, Role, TOKEN_LIFETIME_S,
};
pub use trusted_emails::{
    CODE_LIFETIME, EmailAddress, EmailAddressError, MAX_CODE_ATTEMPTS, PendingCode,
    RESEND_INTERVAL, TrustedEmail, TrustedEmailStatus, new_verification_code, normalize_code,
};
pub use verification::{
    CheckState, CheckedRecord, Observation, ReasonCode, SPF_LOOKUP_LIMIT, is_spf,
    merge_spf_include, next_check_delay, next_state, region_order, same_name,
};
pub use zone::{DKIM_ZONE_TTL, DkimZone, ZoneSoa, zone_txt};
pub use zone_file::{ZONE_FILE_TTL, ZoneFileFormat, zone_file};
