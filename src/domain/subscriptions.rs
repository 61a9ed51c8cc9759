//! Webhook subscriptions (PingOne's `Subscription`): which activities they take, where they
//! POST them, and how a delivery is retried.

use std::{collections::BTreeMap, net::IpAddr, time::Duration};

use base64::{Engine, engine::general_purpose::STANDARD};
use time::OffsetDateTime;

use super::{ActivityType, EnvironmentId, NonGlobal, non_global};

id_type!(
    /// A webhook subscription.
    SubscriptionId,
    new_v4
);

wire_enum!(
    /// How an activity is written in a delivery: `ACTIVITY`, as `GET …/activities` shows it
    /// (PingOne's `SPLUNK` and `NEWRELIC` are not offered).
    SubscriptionFormat { Activity => "ACTIVITY" }
);

wire_enum!(
    /// Where one delivery stands.
    DeliveryState {
        /// Waiting for its first attempt or its next retry.
        Pending => "PENDING",
        /// The endpoint answered 2xx.
        Delivered => "DELIVERED",
        /// Given up: the retry schedule ran out, or it waited longer than
        /// `SUSPENDED_DELIVERY_KEPT` for a disabled subscription.
        Failed => "FAILED",
    }
);

/// A subscription as stored (its secret stays in the store, sealed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub id: SubscriptionId,
    pub environment_id: EnvironmentId,
    pub settings: SubscriptionSettings,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// What a create or an update (PUT) sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionSettings {
    pub name: String,
    /// A disabled subscription keeps collecting deliveries and sends them once enabled again.
    pub enabled: bool,
    pub url: EndpointUrl,
    pub headers: EndpointHeaders,
    pub format: SubscriptionFormat,
    /// `filterOptions.includedActionTypes`: at least one, no repeats, in the order sent.
    pub action_types: Vec<ActivityType>,
    /// `false` trusts any certificate the endpoint shows.
    pub verify_tls: bool,
}

/// Why a field of a subscription was refused: the field, as PingOne names it, and a sentence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{target}: {message}")]
pub struct InvalidField {
    pub target: &'static str,
    pub message: String,
}

fn invalid(target: &'static str, message: impl Into<String>) -> InvalidField {
    InvalidField {
        target,
        message: message.into(),
    }
}

/// The longest endpoint URL accepted.
pub const MAX_URL_CHARS: usize = 2048;

/// `httpEndpoint.url`: an absolute `https://` (or `http://`) URL with a host and no
/// credentials (those belong in `headers`, which are sealed at rest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointUrl(url::Url);

impl EndpointUrl {
    pub fn parse(raw: &str) -> Result<Self, InvalidField> {
        const TARGET: &str = "httpEndpoint.url";
        if raw.chars().count() > MAX_URL_CHARS {
            return Err(invalid(
                TARGET,
                format!("The URL must be at most {MAX_URL_CHARS} characters."),
            ));
        }
        let url = url::Url::parse(raw)
            .map_err(|e| invalid(TARGET, format!("{raw:?} is not an absolute URL: {e}.")))?;
        if !matches!(url.scheme(), "https" | "http") || url.host().is_none() {
            return Err(invalid(
                TARGET,
                "The URL must be https:// (or http://) with a host.",
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid(
                TARGET,
                "The URL must not carry credentials; send them in httpEndpoint.headers.",
            ));
        }
        Ok(Self(url))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The host when the URL names an address (`http://10.0.0.5/`, `http://[::1]/`) rather than
    /// a DNS name; decimal and hex forms (`http://2130706433/`) are addresses too.
    pub fn ip_literal(&self) -> Option<IpAddr> {
        match self.0.host()? {
            url::Host::Ipv4(ip) => Some(ip.into()),
            url::Host::Ipv6(ip) => Some(ip.into()),
            url::Host::Domain(_) => None,
        }
    }

    /// Why a delivery may not go to this URL under `policy`: `http://` unless allowed, and an
    /// address off the public internet as the host unless allowed. A DNS name is judged by what
    /// it resolves to when a delivery connects, since that can change.
    pub fn refusal(&self, policy: EndpointPolicy) -> Option<EndpointRefusal> {
        let refused = EndpointRefusal {
            http: self.0.scheme() == "http" && !policy.allow_http,
            host: self
                .ip_literal()
                .filter(|_| !policy.allow_private)
                .and_then(|ip| Some((ip, non_global(ip)?))),
        };
        (refused.http || refused.host.is_some()).then_some(refused)
    }
}

/// What the operator allows beyond `https://` to public addresses: `webhooks.allow_http_endpoints`
/// and `webhooks.allow_private_endpoints`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndpointPolicy {
    pub allow_http: bool,
    pub allow_private: bool,
}

/// An endpoint URL the operator's `EndpointPolicy` does not allow, and why. Shown as a sentence
/// naming the config keys that would allow it; `Display` leaves out the host's address (what
/// any reader of a delivery sees), `for_caller` names it to the caller who just sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointRefusal {
    /// The URL is `http://`.
    http: bool,
    /// The host is this address, off the public internet.
    host: Option<(IpAddr, NonGlobal)>,
}

impl EndpointRefusal {
    /// The sentence, with `subject` for the host's address.
    fn sentence(&self, subject: &dyn std::fmt::Display) -> String {
        const HTTP: &str = "webhooks.allow_http_endpoints = true";
        const PRIVATE: &str = "webhooks.allow_private_endpoints = true";
        match self.host {
            Some((_, kind)) if self.http => format!(
                "The URL is http:// (unencrypted) and {subject} is {kind} address; webhooks go \
                 only to https:// on public internet addresses (unless the operator sets {HTTP} \
                 and {PRIVATE})."
            ),
            Some((_, kind)) => format!(
                "{subject} is {kind} address; webhooks go only to public internet addresses \
                 (unless the operator sets {PRIVATE})."
            ),
            None => format!(
                "The URL is http://, which would send deliveries and their headers unencrypted; \
                 webhooks go only to https:// (unless the operator sets {HTTP})."
            ),
        }
    }

    /// Why the endpoint was refused, with the address the caller gave as its host.
    pub fn for_caller(&self) -> InvalidField {
        let message = match self.host {
            Some((ip, _)) => self.sentence(&ip),
            None => self.to_string(),
        };
        invalid("httpEndpoint.url", message)
    }
}

impl std::fmt::Display for EndpointRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.sentence(&"the URL's host"))
    }
}

/// Headers trustmail sets itself on every delivery, which a subscription may not replace.
const RESERVED_HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "host",
    "transfer-encoding",
    "connection",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
];
pub const MAX_HEADERS: usize = 20;
/// The most bytes of all headers' names and values together.
pub const MAX_HEADER_BYTES: usize = 8192;

/// `httpEndpoint.headers`: sent with every delivery, names as written (HTTP names ignore case,
/// so two that differ only in case are refused).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointHeaders(BTreeMap<String, String>);

impl EndpointHeaders {
    pub fn parse(headers: BTreeMap<String, String>) -> Result<Self, InvalidField> {
        const TARGET: &str = "httpEndpoint.headers";
        if headers.len() > MAX_HEADERS {
            return Err(invalid(TARGET, format!("At most {MAX_HEADERS} headers.")));
        }
        let bytes: usize = headers.iter().map(|(n, v)| n.len() + v.len()).sum();
        if bytes > MAX_HEADER_BYTES {
            return Err(invalid(
                TARGET,
                format!("The headers must be at most {MAX_HEADER_BYTES} bytes in all."),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (name, value) in &headers {
            let lower = http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| invalid(TARGET, format!("{name:?} is not an HTTP header name.")))?;
            if RESERVED_HEADERS.contains(&lower.as_str()) {
                return Err(invalid(
                    TARGET,
                    format!("{name} is set by trustmail on every delivery."),
                ));
            }
            if !seen.insert(lower) {
                return Err(invalid(
                    TARGET,
                    format!("{name} is given twice (header names ignore case)."),
                ));
            }
            // Visible ASCII, spaces and tabs: what every HTTP/1.1 peer reads the same way.
            if http::HeaderValue::from_str(value).is_err() || value.bytes().any(|b| b >= 0x80) {
                return Err(invalid(
                    TARGET,
                    format!("The value of {name} must be visible ASCII on one line."),
                ));
            }
        }
        Ok(Self(headers))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.0
    }
}

/// `filterOptions.includedActionTypes`: trustmail's activity types, at least one; a repeat is
/// dropped (the list is a set), the rest keep their order.
pub fn parse_action_types(raw: &[String]) -> Result<Vec<ActivityType>, InvalidField> {
    const TARGET: &str = "filterOptions.includedActionTypes";
    if raw.is_empty() {
        return Err(invalid(TARGET, "At least one action type is required."));
    }
    let mut types = Vec::with_capacity(raw.len());
    for name in raw {
        // The message names the value, not the whole list, which grows with every new type.
        let action: ActivityType = name.parse().map_err(|_| {
            invalid(
                TARGET,
                format!("{name:?} is not an action type trustmail records."),
            )
        })?;
        if !types.contains(&action) {
            types.push(action);
        }
    }
    Ok(types)
}

/// A subscription's signing secret, Standard Webhooks style: `whsec_` and the base64 of 32
/// random bytes. Shown once when made; stored sealed, since signing needs it back.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret(String);

impl std::fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningSecret(..)")
    }
}

const SECRET_PREFIX: &str = "whsec_";

impl SigningSecret {
    pub fn generate() -> Self {
        let mut key = [0u8; 32];
        super::random::fill(&mut key);
        Self(format!("{SECRET_PREFIX}{}", STANDARD.encode(key)))
    }

    /// A secret read back from the store: `whsec_` and base64.
    pub fn parse(text: &str) -> Option<Self> {
        let key = text.strip_prefix(SECRET_PREFIX)?;
        STANDARD.decode(key).ok().filter(|k| !k.is_empty())?;
        Some(Self(text.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Each retry's wait, in multiples of `webhooks.first_retry_ms` (default 5 s): 5 s, 30 s,
/// 5 min, 30 min, 2 h, 5 h, 10 h, 10 h. Nine attempts, the last about 27.6 hours after the first.
const RETRY_STEPS: [u32; 8] = [1, 6, 60, 360, 1440, 3600, 7200, 7200];

/// Attempts a delivery gets before it is FAILED.
pub const MAX_WEBHOOK_ATTEMPTS: u32 = RETRY_STEPS.len() as u32 + 1;

/// How long to wait after the `failed_attempts`-th failed attempt, or `None` when that was the
/// last one.
pub fn webhook_retry_delay(failed_attempts: u32, first_retry: Duration) -> Option<Duration> {
    let step = RETRY_STEPS.get(usize::try_from(failed_attempts.checked_sub(1)?).ok()?)?;
    Some(first_retry.saturating_mul(*step))
}

/// How long a subscription's deliveries wait after its endpoint failed `failures` attempts in a
/// row: `first_retry`, doubling, at most 60 times it (5 min by default). Never longer than the
/// failed delivery's own next retry (`webhook_retry_delay`), so it only holds back the others.
pub fn endpoint_pause(failures: u32, first_retry: Duration) -> Duration {
    let doublings = failures.saturating_sub(1).min(6);
    first_retry
        .saturating_mul(1 << doublings)
        .min(first_retry.saturating_mul(60))
}

/// A delivery still pending this long after its activity (a subscription disabled that long)
/// is given up, as PingOne keeps a suspended subscription's events for two weeks.
pub const SUSPENDED_DELIVERY_KEPT: Duration = Duration::from_secs(14 * 24 * 3600);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_start_within_seconds_and_go_on_for_more_than_a_day() {
        let first = Duration::from_secs(5);
        let delays: Vec<u64> = (1..MAX_WEBHOOK_ATTEMPTS)
            .map(|n| webhook_retry_delay(n, first).unwrap().as_secs())
            .collect();
        assert_eq!(delays, [5, 30, 300, 1800, 7200, 18000, 36000, 36000]);
        let last_attempt: u64 = delays.iter().sum();
        assert!(last_attempt > 24 * 3600, "{last_attempt}");
        assert_eq!(webhook_retry_delay(MAX_WEBHOOK_ATTEMPTS, first), None);
        assert_eq!(webhook_retry_delay(0, first), None);
    }

    #[test]
    fn a_failing_endpoint_is_paused_doubling_to_sixty_first_retries_never_past_its_retry() {
        let first = Duration::from_secs(5);
        let pauses: Vec<u64> = (1..=9)
            .map(|n| endpoint_pause(n, first).as_secs())
            .collect();
        assert_eq!(pauses, [5, 10, 20, 40, 80, 160, 300, 300, 300]);
        for n in 1..MAX_WEBHOOK_ATTEMPTS {
            assert!(endpoint_pause(n, first) <= webhook_retry_delay(n, first).unwrap());
        }
    }

    #[test]
    fn urls_are_absolute_http_without_credentials() {
        assert!(EndpointUrl::parse("https://hooks.shopco.test/p?x=1").is_ok());
        assert!(EndpointUrl::parse("http://127.0.0.1:9000/").is_ok());
        for bad in [
            "hooks.shopco.test",
            "ftp://hooks.shopco.test/",
            "https://user:pw@hooks.shopco.test/",
            "mailto:ann@shopco.test",
        ] {
            let e = EndpointUrl::parse(bad).unwrap_err();
            assert_eq!(e.target, "httpEndpoint.url", "{bad}");
        }
    }

    const PUBLIC_ONLY: EndpointPolicy = EndpointPolicy {
        allow_http: true,
        allow_private: false,
    };

    fn refusal(url: &str, policy: EndpointPolicy) -> Option<EndpointRefusal> {
        EndpointUrl::parse(url).unwrap().refusal(policy)
    }

    #[test]
    fn address_hosts_off_the_public_internet_are_refused_and_names_left_to_delivery() {
        for private in [
            "http://127.0.0.1/",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::1]:8080/",
            "http://2130706433/",
            "https://[::ffff:10.0.0.1]/",
        ] {
            let e = refusal(private, PUBLIC_ONLY).unwrap().for_caller();
            assert_eq!(e.target, "httpEndpoint.url", "{private}");
            assert!(e.message.contains("public internet"), "{}", e.message);
            assert!(e.message.contains("webhooks.allow_private_endpoints"));
        }
        let refused = refusal("http://169.254.169.254/", PUBLIC_ONLY).unwrap();
        assert!(
            refused
                .for_caller()
                .message
                .starts_with("169.254.169.254 is a link-local address")
        );
        // What a reader of the delivery sees: what was refused, not the address.
        assert_eq!(
            refused.to_string(),
            "the URL's host is a link-local address; webhooks go only to public internet \
             addresses (unless the operator sets webhooks.allow_private_endpoints = true)."
        );
        for public in [
            "https://93.184.215.14/",
            "https://[2606:4700::1]/",
            "http://localhost/",
        ] {
            assert_eq!(refusal(public, PUBLIC_ONLY), None, "{public}");
        }
        let everything = EndpointPolicy {
            allow_http: true,
            allow_private: true,
        };
        assert_eq!(refusal("http://127.0.0.1/", everything), None);
    }

    #[test]
    fn http_is_refused_unless_allowed_naming_each_key_it_needs() {
        let https_only = EndpointPolicy {
            allow_http: false,
            allow_private: true,
        };
        assert_eq!(refusal("https://hooks.shopco.test/", https_only), None);
        let e = refusal("http://hooks.shopco.test/", https_only)
            .unwrap()
            .for_caller();
        assert_eq!(e.target, "httpEndpoint.url");
        assert!(
            e.message.contains("webhooks.allow_http_endpoints = true"),
            "{}",
            e.message
        );
        assert!(!e.message.contains("allow_private"), "{}", e.message);
        let both = refusal("http://127.0.0.1:8080/", EndpointPolicy::default()).unwrap();
        for message in [both.for_caller().message, both.to_string()] {
            assert!(
                message.contains("webhooks.allow_http_endpoints = true"),
                "{message}"
            );
            assert!(
                message.contains("webhooks.allow_private_endpoints = true"),
                "{message}"
            );
        }
        assert!(
            both.for_caller()
                .message
                .contains("127.0.0.1 is a loopback address")
        );
        assert!(!both.to_string().contains("127.0.0.1"));
    }

    #[test]
    fn headers_are_tokens_with_visible_values_and_not_ours() {
        let ok = BTreeMap::from([("Authorization".to_owned(), "Basic dXNlcjpwdw==".to_owned())]);
        assert!(EndpointHeaders::parse(ok).is_ok());
        for (name, value) in [
            ("Bad Name", "x"),
            ("X-Ok", "line\r\nbreak"),
            ("Webhook-Signature", "v1,forged"),
            ("X-Ok", "café"),
        ] {
            let headers = BTreeMap::from([(name.to_owned(), value.to_owned())]);
            assert!(EndpointHeaders::parse(headers).is_err(), "{name}: {value}");
        }
        let twice = BTreeMap::from([
            ("X-A".to_owned(), "1".to_owned()),
            ("x-a".to_owned(), "2".to_owned()),
        ]);
        assert!(EndpointHeaders::parse(twice).is_err());
    }

    #[test]
    fn action_types_are_known_and_a_set() {
        let raw = ["CLIENT_CREATED", "EMAIL_DOMAIN_CREATED", "CLIENT_CREATED"].map(String::from);
        assert_eq!(
            parse_action_types(&raw).unwrap(),
            [
                ActivityType::ClientCreated,
                ActivityType::EmailDomainCreated
            ]
        );
        assert!(parse_action_types(&[]).is_err());
        assert!(parse_action_types(&["USER.CREATED".to_owned()]).is_err());
    }

    #[test]
    fn secrets_are_whsec_and_32_random_bytes() {
        let secret = SigningSecret::generate();
        let key = secret.expose().strip_prefix("whsec_").unwrap();
        assert_eq!(STANDARD.decode(key).unwrap().len(), 32);
        assert_eq!(SigningSecret::parse(secret.expose()), Some(secret.clone()));
        assert_ne!(SigningSecret::generate(), secret);
        assert!(SigningSecret::parse("plain").is_none());
        assert!(!format!("{secret:?}").contains(key));
    }
}
