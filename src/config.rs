//! Configuration: built-in defaults, then a TOML file, then `TRUSTMAIL_*` environment variables.
//! The keys are a public interface (README § Configuration): renaming one breaks deployments.

use std::{net::SocketAddr, path::PathBuf};

use figment::{
    Figment,
    providers::{Format, Serialized, Toml},
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer};

use crate::domain::{DkimAlgorithm, Geography, PublicSuffixes, RecordSettings, SendingRegion};

pub const ENV_PREFIX: &str = "TRUSTMAIL_";
/// Names the configuration file; not itself a configuration key.
pub const CONFIG_PATH_VAR: &str = "TRUSTMAIL_CONFIG";

/// Every key the file and the environment accept, dotted as in TOML. `regions` is one key:
/// an array of tables, settable from the environment only as a whole TOML array.
pub const KNOWN_KEYS: &[&str] = &[
    "listen",
    "public_url",
    "database_url",
    "limits.domains_per_environment",
    "limits.trusted_emails_per_domain",
    "limits.messages_per_minute",
    "limits.code_mails_per_hour",
    "limits.subscriptions_per_environment",
    "limits.dkim_rotations_per_hour",
    "limits.self_checks_per_minute",
    "domains.extra_public_suffixes",
    "dns.resolvers",
    "dns.timeout_ms",
    "dns.min_recheck_interval_s",
    "dns.initial_recheck_interval_s",
    "dns.active_grace_s",
    "dns.check_deadline_ms",
    "dns.transport",
    "records.ownership_prefix",
    "records.environment_prefix",
    "records.spf_include",
    "regions",
    "mail.system_sender",
    "mail.smtp_url",
    "dkim.algorithm",
    "secrets.master_key_file",
    "secrets.master_key",
    "secrets.previous_master_key_file",
    "dkim_dns.listen",
    "dkim_dns.nameservers",
    "dkim_dns.nameserver_addresses",
    "dkim_dns.refresh_interval_ms",
    "dkim_dns.udp_workers",
    "dkim_dns.max_tcp_connections",
    "dkim_dns.tcp_idle_timeout_ms",
    "dkim_dns.max_queries_per_second",
    "dkim_dns.rate_limit_per_source",
    "dkim_dns.rate_limit_slip",
    "dkim_dns.rate_limit_ipv4_prefix",
    "dkim_dns.rate_limit_ipv6_prefix",
    "http.header_read_timeout_s",
    "http.request_timeout_s",
    "http.idle_timeout_s",
    "http.max_connections",
    "http.tls_cert_file",
    "http.tls_key_file",
    "http.tls_reload_interval_s",
    "http.trusted_proxies",
    "webhooks.first_retry_ms",
    "webhooks.request_timeout_s",
    "environments.default_license_id",
    "webhooks.allow_private_endpoints",
    "webhooks.connect_timeout_s",
    "webhooks.allow_http_endpoints",
    "metrics.listen",
    "metrics.token",
    "retention.messages_days",
    "retention.deliveries_days",
    "retention.activities_days",
];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] Box<figment::Error>),
    #[error("configuration key `{key}`: {message}")]
    Invalid { key: String, message: String },
}

impl ConfigError {
    fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            key: key.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub listen: SocketAddr,
    /// Base of HAL links; empty means `http://` + the address actually bound.
    pub public_url: String,
    pub database_url: SecretString,
    pub limits: Limits,
    pub domains: Domains,
    pub dns: Dns,
    pub records: Records,
    #[serde(deserialize_with = "deserialize_regions")]
    pub regions: Vec<Region>,
    pub mail: Mail,
    pub dkim: Dkim,
    pub secrets: Secrets,
    pub dkim_dns: DkimDns,
    pub http: Http,
    pub webhooks: Webhooks,
    pub environments: Environments,
    pub metrics: Metrics,
    pub retention: Retention,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: String::new(),
            database_url: SecretString::from("sqlite://trustmail.db"),
            limits: Limits::default(),
            domains: Domains::default(),
            dns: Dns::default(),
            records: Records::default(),
            regions: vec![Region::named("us-east-1")],
            mail: Mail::default(),
            dkim: Dkim::default(),
            secrets: Secrets::default(),
            dkim_dns: DkimDns::default(),
            http: Http::default(),
            webhooks: Webhooks::default(),
            environments: Environments::default(),
            metrics: Metrics::default(),
            retention: Retention::default(),
        }
    }
}

/// What environments answer when a create did not say (README § Environments and populations).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Environments {
    /// `license.id` of an environment created without a `license`.
    pub default_license_id: String,
}

impl Default for Environments {
    fn default() -> Self {
        Self {
            default_license_id: DEFAULT_LICENSE_ID.to_owned(),
        }
    }
}

/// trustmail has no licences: the nil UUID says so, has the UUID shape PingOne's clients
/// validate a license id against, and is the same on every replica without coordination.
pub const DEFAULT_LICENSE_ID: &str = "00000000-0000-0000-0000-000000000000";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub domains_per_environment: u32,
    pub trusted_emails_per_domain: u32,
    /// Messages an environment may queue through `POST …/messages` in any 60 s.
    pub messages_per_minute: u32,
    /// Verification-code mails an environment may cause in any hour.
    pub code_mails_per_hour: u32,
    /// Webhook subscriptions per environment.
    pub subscriptions_per_environment: u32,
    /// `POST …/dkim/rotate` calls (RSA key generation) an environment may make in any hour.
    pub dkim_rotations_per_hour: u32,
    /// `POST …/selfCheck` calls an environment may make in any 60 s.
    pub self_checks_per_minute: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            domains_per_environment: 50,
            trusted_emails_per_domain: 10,
            messages_per_minute: 600,
            code_mails_per_hour: 60,
            subscriptions_per_environment: 10,
            dkim_rotations_per_hour: 10,
            self_checks_per_minute: 12,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Domains {
    #[serde(deserialize_with = "string_or_list")]
    pub extra_public_suffixes: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Dns {
    #[serde(deserialize_with = "string_or_list")]
    pub resolvers: Vec<String>,
    pub timeout_ms: u64,
    pub min_recheck_interval_s: u64,
    pub initial_recheck_interval_s: u64,
    pub active_grace_s: u64,
    /// One domain's whole check, its SPF include walk included.
    pub check_deadline_ms: u64,
    /// How the resolvers of `resolvers` are asked.
    pub transport: DnsTransport,
}

/// `dns.transport`: how trustmail talks to the resolvers of `dns.resolvers` (the system's are
/// always asked over UDP, from a fresh random port per query).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DnsTransport {
    /// A few shared UDP sockets per resolver, each on a random port and renewed after a while,
    /// TCP when an answer is truncated: each query independent of the others, whatever the
    /// resolver.
    #[default]
    Udp,
    /// Queries pipelined over two long-lived TCP connections per resolver: cheaper per query,
    /// for resolvers that answer pipelined queries out of order as RFC 7766 asks (BIND,
    /// Unbound); one that answers in order lets a slow answer hold up those behind it.
    Tcp,
}

impl Default for Dns {
    fn default() -> Self {
        Self {
            resolvers: Vec::new(),
            timeout_ms: 2000,
            min_recheck_interval_s: 5,
            initial_recheck_interval_s: 60,
            active_grace_s: 259_200,
            check_deadline_ms: 5000,
            transport: DnsTransport::Udp,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Records {
    pub ownership_prefix: String,
    pub environment_prefix: String,
    pub spf_include: String,
}

impl Default for Records {
    fn default() -> Self {
        Self {
            ownership_prefix: "_trustmail".into(),
            environment_prefix: "_trustmail-environment".into(),
            spf_include: "spf.trustmail.example".into(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Region {
    pub name: String,
    pub geographies: Vec<Geography>,
    pub dkim_zone: String,
    pub mail_from_mx: String,
    pub smtp_url: SecretString,
    pub egress_ips: Vec<String>,
}

impl Region {
    /// A region with every key derived from its name. The DKIM zone drops the name's hyphens:
    /// DKIM token values must match `^[a-z0-9_.]*$` (`is_dkim_zone`).
    pub fn named(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            geographies: Geography::ALL.to_vec(),
            dkim_zone: format!("{}.dkim.trustmail.example", name.replace('-', "")),
            mail_from_mx: format!("feedback.{name}.trustmail.example"),
            smtp_url: SecretString::from(""),
            egress_ips: Vec::new(),
        }
    }
}

/// A `[[regions]]` entry as written: only `name` is required.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegionEntry {
    name: String,
    #[serde(default, deserialize_with = "optional_string_or_list")]
    geographies: Option<Vec<String>>,
    dkim_zone: Option<String>,
    mail_from_mx: Option<String>,
    smtp_url: Option<SecretString>,
    #[serde(default, deserialize_with = "string_or_list")]
    egress_ips: Vec<String>,
}

fn deserialize_regions<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Region>, D::Error> {
    use serde::de::Error;
    let entries = Vec::<RegionEntry>::deserialize(d)?;
    entries
        .into_iter()
        .map(|entry| {
            let mut region = Region::named(&entry.name);
            if let Some(geos) = entry.geographies {
                region.geographies = geos
                    .iter()
                    .map(|g| g.parse::<Geography>().map_err(D::Error::custom))
                    .collect::<Result<_, _>>()?;
            }
            region.dkim_zone = entry.dkim_zone.unwrap_or(region.dkim_zone);
            region.mail_from_mx = entry.mail_from_mx.unwrap_or(region.mail_from_mx);
            region.smtp_url = entry.smtp_url.unwrap_or(region.smtp_url);
            region.egress_ips = entry.egress_ips;
            Ok(region)
        })
        .collect()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Mail {
    pub system_sender: String,
    /// May carry credentials (`smtp://user:pass@host`).
    pub smtp_url: SecretString,
}

impl Default for Mail {
    fn default() -> Self {
        Self {
            system_sender: "no-reply@trustmail.example".into(),
            smtp_url: SecretString::from(""),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Dkim {
    /// `rsa-2048` or `ed25519`: the type of new keys (existing keys keep theirs).
    #[serde(deserialize_with = "parsed")]
    pub algorithm: DkimAlgorithm,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Secrets {
    pub master_key_file: PathBuf,
    /// The key itself (base64 of 32 bytes), e.g. from `TRUSTMAIL_SECRETS__MASTER_KEY`; when set
    /// it is used instead of the file.
    pub master_key: SecretString,
    /// A key that opens values but never seals (README § Master key rotation); empty = none.
    pub previous_master_key_file: PathBuf,
}

impl Default for Secrets {
    fn default() -> Self {
        Self {
            master_key_file: PathBuf::from("trustmail.key"),
            master_key: SecretString::from(""),
            previous_master_key_file: PathBuf::new(),
        }
    }
}

impl Secrets {
    /// `previous_master_key_file` when set.
    pub fn previous_key_file(&self) -> Option<&std::path::Path> {
        let path = self.previous_master_key_file.as_path();
        (!path.as_os_str().is_empty()).then_some(path)
    }
}

/// trustmail's DNS for the DKIM zones and its limits (README § DKIM DNS).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DkimDns {
    /// UDP and TCP address of trustmail's DNS for the regions' `dkim_zone`s; empty = not served.
    pub listen: String,
    /// Host names in each DKIM zone's NS records; empty = `ns1.<dkim_zone>`.
    #[serde(deserialize_with = "string_or_list")]
    pub nameservers: Vec<String>,
    /// A and AAAA of the NS names that lie inside a DKIM zone (the default `ns1.<dkim_zone>`),
    /// so that the zone carries its own glue.
    #[serde(deserialize_with = "string_or_list")]
    pub nameserver_addresses: Vec<String>,
    /// How often the store is asked whether another replica changed keys.
    pub refresh_interval_ms: u64,
    /// UDP queries handled at once; past it they wait in the socket's buffer.
    pub udp_workers: u32,
    /// TCP connections served at once; past it new ones are closed on accept.
    pub max_tcp_connections: u32,
    /// A TCP connection that sends no complete query for this long is closed.
    pub tcp_idle_timeout_ms: u64,
    /// Queries answered per second over both transports; past it they are dropped. 0 = no bound.
    pub max_queries_per_second: u32,
    /// UDP answers per second to one source prefix (burst twice that); 0 = no limit.
    pub rate_limit_per_source: u32,
    /// Of the UDP queries over the source limit, every Nth gets an empty truncated answer
    /// (TC=1) so a real resolver retries over TCP; the rest are dropped. 0 = drop all.
    pub rate_limit_slip: u32,
    /// Sources are counted per IPv4 prefix of this length …
    pub rate_limit_ipv4_prefix: u8,
    /// … and per IPv6 prefix of this length.
    pub rate_limit_ipv6_prefix: u8,
}

impl Default for DkimDns {
    fn default() -> Self {
        Self {
            listen: String::new(),
            nameservers: Vec::new(),
            nameserver_addresses: Vec::new(),
            refresh_interval_ms: 1000,
            udp_workers: 4,
            max_tcp_connections: 256,
            tcp_idle_timeout_ms: 5000,
            max_queries_per_second: 20_000,
            rate_limit_per_source: 100,
            rate_limit_slip: 2,
            rate_limit_ipv4_prefix: 24,
            rate_limit_ipv6_prefix: 56,
        }
    }
}

impl DkimDns {
    pub fn refresh_interval(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.refresh_interval_ms)
    }

    pub fn tcp_idle_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.tcp_idle_timeout_ms)
    }

    /// `nameserver_addresses`, parsed (checked at load).
    pub fn addresses(&self) -> Vec<std::net::IpAddr> {
        self.nameserver_addresses
            .iter()
            .filter_map(|a| a.parse().ok())
            .collect()
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if !self.listen.is_empty() && self.listen.parse::<SocketAddr>().is_err() {
            return Err(ConfigError::invalid(
                "dkim_dns.listen",
                "must be IP:PORT or empty",
            ));
        }
        for (i, name) in self.nameservers.iter().enumerate() {
            if !is_host_name(name) {
                return Err(ConfigError::invalid(
                    format!("dkim_dns.nameservers[{i}]"),
                    "must be a host name such as ns1.example.com",
                ));
            }
        }
        for (i, address) in self.nameserver_addresses.iter().enumerate() {
            if address.parse::<std::net::IpAddr>().is_err() {
                return Err(ConfigError::invalid(
                    format!("dkim_dns.nameserver_addresses[{i}]"),
                    format!("`{address}` is not an IP address"),
                ));
            }
        }
        // An hour: past it a change on another replica or an idle connection waits too long.
        const HOUR_MS: u64 = 3_600_000;
        for (key, ms) in [
            ("dkim_dns.refresh_interval_ms", self.refresh_interval_ms),
            ("dkim_dns.tcp_idle_timeout_ms", self.tcp_idle_timeout_ms),
        ] {
            if !(1..=HOUR_MS).contains(&ms) {
                return Err(ConfigError::invalid(key, "must be 1 to 3600000"));
            }
        }
        for (key, count) in [
            ("dkim_dns.udp_workers", self.udp_workers),
            ("dkim_dns.max_tcp_connections", self.max_tcp_connections),
        ] {
            if !(1..=65_536).contains(&count) {
                return Err(ConfigError::invalid(key, "must be 1 to 65536"));
            }
        }
        if !(8..=32).contains(&self.rate_limit_ipv4_prefix) {
            return Err(ConfigError::invalid(
                "dkim_dns.rate_limit_ipv4_prefix",
                "must be 8 to 32",
            ));
        }
        if !(16..=128).contains(&self.rate_limit_ipv6_prefix) {
            return Err(ConfigError::invalid(
                "dkim_dns.rate_limit_ipv6_prefix",
                "must be 16 to 128",
            ));
        }
        Ok(())
    }
}

/// Where `/metrics` is served and to whom (README § Operating it).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Metrics {
    /// IP:PORT of a listener that serves only `/metrics`; empty = on the API's listener.
    pub listen: String,
    /// A bearer token a scrape must send; empty = none needed.
    pub token: SecretString,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            listen: String::new(),
            token: SecretString::from(""),
        }
    }
}

impl Metrics {
    /// The address of the separate listener, when there is one (checked at load).
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        self.listen.parse().ok()
    }

    /// The token scrapes must present, when one is set.
    pub fn token(&self) -> Option<SecretString> {
        let token = self.token.expose_secret().trim();
        (!token.is_empty()).then(|| SecretString::from(token))
    }
}

/// How long finished rows are kept before `jobs::retention` deletes them (README § Retention).
/// Whole days, 1 to `Retention::MAX_DAYS`: 0 is refused rather than read as "delete at once" or
/// "keep for ever"; a large value keeps rows for as long as anyone will ask.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Retention {
    /// Sent and failed outbox rows, counted from their creation, and the Idempotency-Keys of
    /// `POST …/messages` (whose 24 h window a day's retention already outlasts).
    pub messages_days: u32,
    /// Delivered and failed webhook deliveries, counted from their queueing.
    pub deliveries_days: u32,
    /// The audit log; an activity goes with its remaining deliveries, never while one is pending.
    pub activities_days: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            messages_days: 30,
            deliveries_days: 30,
            activities_days: 90,
        }
    }
}

impl Retention {
    /// A hundred years: as good as for ever, and far from overflowing a time.
    pub const MAX_DAYS: u32 = 36_500;

    pub fn messages(&self) -> time::Duration {
        time::Duration::days(i64::from(self.messages_days))
    }

    pub fn deliveries(&self) -> time::Duration {
        time::Duration::days(i64::from(self.deliveries_days))
    }

    pub fn activities(&self) -> time::Duration {
        time::Duration::days(i64::from(self.activities_days))
    }

    fn validate(&self) -> Result<(), ConfigError> {
        for (key, days) in [
            ("retention.messages_days", self.messages_days),
            ("retention.deliveries_days", self.deliveries_days),
            ("retention.activities_days", self.activities_days),
        ] {
            if !(1..=Self::MAX_DAYS).contains(&days) {
                return Err(ConfigError::invalid(
                    key,
                    format!(
                        "must be 1 to {} (days); 0 would delete rows as soon as they are \
                         finished; to keep them longer, set a larger number",
                        Self::MAX_DAYS
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Limits of the HTTP server (README § HTTP limits).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Http {
    /// A connection must deliver a request's headers within this, else it is closed.
    pub header_read_timeout_s: u64,
    /// A request still without an answer after this is answered 503.
    pub request_timeout_s: u64,
    /// A connection that moves no byte either way for this long is closed.
    pub idle_timeout_s: u64,
    /// Connections served at once; past it new ones wait in the listen backlog.
    pub max_connections: u32,
    /// PEM certificate chain (leaf first); with `tls_key_file`, trustmail serves HTTPS.
    pub tls_cert_file: PathBuf,
    /// PEM private key of the certificate.
    pub tls_key_file: PathBuf,
    /// How often both files are re-read, so a renewed certificate is served without a restart.
    /// Two small reads a second cost nothing, and a renewal is then served within seconds.
    pub tls_reload_interval_s: u64,
    /// Reverse proxies (addresses or CIDR blocks) whose `X-Forwarded-For` names the client;
    /// empty = the peer is the client.
    #[serde(deserialize_with = "string_or_list")]
    pub trusted_proxies: Vec<String>,
}

impl Default for Http {
    fn default() -> Self {
        Self {
            header_read_timeout_s: 30,
            request_timeout_s: 30,
            idle_timeout_s: 60,
            max_connections: 10_000,
            tls_cert_file: PathBuf::new(),
            tls_key_file: PathBuf::new(),
            trusted_proxies: Vec::new(),
            tls_reload_interval_s: 1,
        }
    }
}

impl Http {
    /// The longest timeout accepted: a year of seconds, far inside what `Instant` arithmetic
    /// can add without overflowing.
    pub const MAX_TIMEOUT_S: u64 = 365 * 24 * 3600;

    pub fn header_read_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.header_read_timeout_s)
    }

    pub fn request_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.request_timeout_s)
    }

    pub fn idle_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.idle_timeout_s)
    }

    pub fn tls_reload_interval(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.tls_reload_interval_s)
    }

    /// The certificate and key files when HTTPS is on (load-time checks make it both or none).
    pub fn tls_files(&self) -> Option<(&std::path::Path, &std::path::Path)> {
        let set = |p: &PathBuf| !p.as_os_str().is_empty();
        (set(&self.tls_cert_file) && set(&self.tls_key_file))
            .then_some((self.tls_cert_file.as_path(), self.tls_key_file.as_path()))
    }

    /// `trusted_proxies` parsed (load-time checks refuse an entry that is neither an address
    /// nor a CIDR block).
    pub fn trusted_proxies(&self) -> Vec<ipnet::IpNet> {
        self.trusted_proxies
            .iter()
            .filter_map(|entry| parse_network(entry))
            .collect()
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if let Some(bad) = self
            .trusted_proxies
            .iter()
            .find(|e| parse_network(e).is_none())
        {
            return Err(ConfigError::invalid(
                "http.trusted_proxies",
                format!("`{bad}` is neither an IP address nor a CIDR block such as 10.0.0.0/8"),
            ));
        }
        let cert = !self.tls_cert_file.as_os_str().is_empty();
        let key = !self.tls_key_file.as_os_str().is_empty();
        if cert != key {
            let (missing, set) = if cert {
                ("http.tls_key_file", "http.tls_cert_file")
            } else {
                ("http.tls_cert_file", "http.tls_key_file")
            };
            return Err(ConfigError::invalid(
                missing,
                format!(
                    "must be set when {set} is: HTTPS needs both the certificate and its key (or neither, for plain HTTP)"
                ),
            ));
        }
        for (key, value) in [
            ("http.header_read_timeout_s", self.header_read_timeout_s),
            ("http.request_timeout_s", self.request_timeout_s),
            ("http.idle_timeout_s", self.idle_timeout_s),
            ("http.tls_reload_interval_s", self.tls_reload_interval_s),
        ] {
            if value == 0 {
                return Err(ConfigError::invalid(key, "must be at least 1"));
            }
            if value > Self::MAX_TIMEOUT_S {
                return Err(ConfigError::invalid(
                    key,
                    format!("must be at most {} (a year)", Self::MAX_TIMEOUT_S),
                ));
            }
        }
        if self.max_connections == 0 {
            return Err(ConfigError::invalid(
                "http.max_connections",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

/// An address (a network of one) or a CIDR block.
fn parse_network(entry: &str) -> Option<ipnet::IpNet> {
    let entry = entry.trim();
    entry.parse().ok().or_else(|| {
        entry
            .parse::<std::net::IpAddr>()
            .ok()
            .map(ipnet::IpNet::from)
    })
}

/// Webhook deliveries (README § Webhooks).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Webhooks {
    /// The first retry's wait; the later ones are fixed multiples of it (`domain::subscriptions`).
    pub first_retry_ms: u64,
    /// The most one POST to an endpoint may take, connection included.
    pub request_timeout_s: u64,
    /// Deliver to loopback, private and other non-global addresses too (receivers inside the
    /// operator's network); off, an environment administrator cannot reach them through trustmail.
    pub allow_private_endpoints: bool,
    /// The most connecting to an endpoint may take (TCP and TLS), within `request_timeout_s`:
    /// an endpoint that never accepts gives its worker back this soon.
    pub connect_timeout_s: u64,
    /// Accept `http://` endpoints: deliveries and their headers then cross the network
    /// unencrypted (a receiver in development, or inside the operator's network).
    pub allow_http_endpoints: bool,
}

impl Default for Webhooks {
    fn default() -> Self {
        Self {
            first_retry_ms: 5000,
            request_timeout_s: 10,
            allow_private_endpoints: false,
            connect_timeout_s: 3,
            allow_http_endpoints: false,
        }
    }
}

impl Webhooks {
    /// The longest first retry accepted: an hour (the last retry then comes after ~8 months).
    const MAX_FIRST_RETRY_MS: u64 = 3_600_000;
    /// The longest request timeout accepted: a delivery's lease must outlast it.
    pub const MAX_REQUEST_TIMEOUT_S: u64 = 300;

    pub fn first_retry(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.first_retry_ms)
    }

    pub fn request_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.request_timeout_s)
    }

    /// Never longer than the whole request may take (a config that lowered only
    /// `request_timeout_s` below the default stays valid).
    pub fn connect_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.connect_timeout_s.min(self.request_timeout_s))
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=Self::MAX_FIRST_RETRY_MS).contains(&self.first_retry_ms) {
            return Err(ConfigError::invalid(
                "webhooks.first_retry_ms",
                format!("must be 1 to {}", Self::MAX_FIRST_RETRY_MS),
            ));
        }
        if !(1..=Self::MAX_REQUEST_TIMEOUT_S).contains(&self.request_timeout_s) {
            return Err(ConfigError::invalid(
                "webhooks.request_timeout_s",
                format!("must be 1 to {}", Self::MAX_REQUEST_TIMEOUT_S),
            ));
        }
        if !(1..=Self::MAX_REQUEST_TIMEOUT_S).contains(&self.connect_timeout_s) {
            return Err(ConfigError::invalid(
                "webhooks.connect_timeout_s",
                format!("must be 1 to {}", Self::MAX_REQUEST_TIMEOUT_S),
            ));
        }
        Ok(())
    }
}

/// A value named by a string that the type parses (the wire enums of `domain`).
fn parsed<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    String::deserialize(d)?
        .parse()
        .map_err(serde::de::Error::custom)
}

/// Environment variables are strings; an array may be a TOML array or comma-separated.
fn string_or_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::Many(v) => v,
        OneOrMany::One(s) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

fn optional_string_or_list<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<String>>, D::Error> {
    string_or_list(d).map(Some)
}

impl Config {
    /// Loads from `file` (if given) and the process environment, then checks values.
    pub fn load(file: Option<&std::path::Path>) -> Result<Self, ConfigError> {
        Self::load_from(file, std::env::vars())
    }

    /// As `load`, with the environment given explicitly (tests).
    pub fn load_from(
        file: Option<&std::path::Path>,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let vars: Vec<(String, String)> = vars
            .into_iter()
            .filter(|(k, _)| k.starts_with(ENV_PREFIX) && k != CONFIG_PATH_VAR)
            .collect();
        for (name, _) in &vars {
            if env_key(name).is_none() {
                tracing::warn!(variable = %name, "ignoring unknown TRUSTMAIL_ environment variable");
            }
        }
        let mut figment = Figment::new();
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError::invalid(
                    "--config",
                    format!("{} is not a readable file", path.display()),
                ));
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        // Env::prefixed reads the process environment itself; feed it our filtered copy instead,
        // parsed the way figment parses environment values (TOML-like: `[a, b]`, numbers, strings).
        for (name, raw) in vars {
            if let Some(key) = env_key(&name) {
                let value: figment::value::Value = match raw.parse() {
                    Ok(value) => value,
                    Err(never) => match never {},
                };
                figment = figment.merge(Serialized::global(&key, value));
            }
        }
        let config: Config = figment.extract().map_err(Box::new)?;
        config.validate()?;
        for warning in config.warnings() {
            tracing::warn!("configuration: {warning}");
        }
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let url = &self.public_url;
        if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ConfigError::invalid(
                "public_url",
                "must start with http:// or https://",
            ));
        }
        let url = self.database_url.expose_secret();
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return Err(ConfigError::invalid(
                "database_url",
                "must be sqlite://PATH or postgres://USER@HOST/DB",
            ));
        }
        let license = &self.environments.default_license_id;
        if license.is_empty()
            || license.chars().count() > 256
            || license.chars().any(char::is_control)
        {
            return Err(ConfigError::invalid(
                "environments.default_license_id",
                "must be 1 to 256 characters without control characters",
            ));
        }
        if self.limits.domains_per_environment == 0 {
            return Err(ConfigError::invalid(
                "limits.domains_per_environment",
                "must be at least 1",
            ));
        }
        if self.limits.trusted_emails_per_domain == 0 {
            return Err(ConfigError::invalid(
                "limits.trusted_emails_per_domain",
                "must be at least 1",
            ));
        }
        if self.limits.messages_per_minute == 0 {
            return Err(ConfigError::invalid(
                "limits.messages_per_minute",
                "must be at least 1",
            ));
        }
        if self.limits.code_mails_per_hour == 0 {
            return Err(ConfigError::invalid(
                "limits.code_mails_per_hour",
                "must be at least 1",
            ));
        }
        for (key, value) in [
            (
                "limits.subscriptions_per_environment",
                self.limits.subscriptions_per_environment,
            ),
            (
                "limits.dkim_rotations_per_hour",
                self.limits.dkim_rotations_per_hour,
            ),
            (
                "limits.self_checks_per_minute",
                self.limits.self_checks_per_minute,
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::invalid(key, "must be at least 1"));
            }
        }
        for suffix in &self.domains.extra_public_suffixes {
            if idna::domain_to_ascii(suffix.trim_end_matches('.')).map_or(true, |s| s.is_empty()) {
                return Err(ConfigError::invalid(
                    "domains.extra_public_suffixes",
                    format!("`{suffix}` is not a domain name"),
                ));
            }
        }
        for resolver in &self.dns.resolvers {
            if resolver.parse::<SocketAddr>().is_err()
                && resolver.parse::<std::net::IpAddr>().is_err()
            {
                return Err(ConfigError::invalid(
                    "dns.resolvers",
                    format!("`{resolver}` is not IP or IP:PORT"),
                ));
            }
        }
        if self.dns.timeout_ms == 0 {
            return Err(ConfigError::invalid("dns.timeout_ms", "must be at least 1"));
        }
        if self.dns.check_deadline_ms == 0 {
            return Err(ConfigError::invalid(
                "dns.check_deadline_ms",
                "must be at least 1",
            ));
        }
        for (key, value) in [
            ("records.ownership_prefix", &self.records.ownership_prefix),
            (
                "records.environment_prefix",
                &self.records.environment_prefix,
            ),
            ("records.spf_include", &self.records.spf_include),
        ] {
            if value.is_empty() || value.contains(char::is_whitespace) {
                return Err(ConfigError::invalid(key, "must be a non-empty DNS name"));
            }
        }
        if self.regions.is_empty() {
            return Err(ConfigError::invalid(
                "regions",
                "at least one region is needed",
            ));
        }
        for (i, region) in self.regions.iter().enumerate() {
            let valid_name = !region.name.is_empty()
                && region
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !valid_name {
                return Err(ConfigError::invalid(
                    format!("regions[{i}].name"),
                    "must match [a-z0-9-]+",
                ));
            }
            if !is_dkim_zone(&region.dkim_zone) {
                return Err(ConfigError::invalid(
                    format!("regions[{i}].dkim_zone"),
                    format!(
                        "`{}` must be a DNS name of lowercase letters, digits, hyphens inside \
                         labels and dots, e.g. useast1.dkim.example.com: DKIM token values \
                         `<selector>.<dkim_zone>` must match ^[a-z0-9_.]*$ (as PingOne's \
                         Terraform provider checks; a hyphen only warns), and a `_` inside a \
                         label is a name trustmail's resolver cannot look up",
                        region.dkim_zone
                    ),
                ));
            }
            if self.regions[..i].iter().any(|r| r.name == region.name) {
                return Err(ConfigError::invalid(
                    format!("regions[{i}].name"),
                    format!("`{}` appears twice", region.name),
                ));
            }
        }
        for geography in Geography::ALL {
            if !self
                .regions
                .iter()
                .any(|r| r.geographies.contains(geography))
            {
                return Err(ConfigError::invalid(
                    "regions",
                    format!("no region serves the {geography} geography"),
                ));
            }
        }
        // Times are added to timestamps: a value past this would overflow the arithmetic.
        const TEN_YEARS_S: u64 = 10 * 365 * 24 * 3600;
        for (key, seconds) in [
            ("dns.timeout_ms", self.dns.timeout_ms / 1000),
            ("dns.check_deadline_ms", self.dns.check_deadline_ms / 1000),
            (
                "dns.min_recheck_interval_s",
                self.dns.min_recheck_interval_s,
            ),
            (
                "dns.initial_recheck_interval_s",
                self.dns.initial_recheck_interval_s,
            ),
            ("dns.active_grace_s", self.dns.active_grace_s),
        ] {
            if seconds > TEN_YEARS_S {
                return Err(ConfigError::invalid(key, "must be at most ten years"));
            }
        }
        if let Err(e) = self.mail.system_sender.parse::<lettre::message::Mailbox>() {
            return Err(ConfigError::invalid(
                "mail.system_sender",
                format!("must be an email address ({e})"),
            ));
        }
        use crate::mail::relay::Relay;
        Relay::check_url(&self.mail.smtp_url)
            .map_err(|reason| ConfigError::invalid("mail.smtp_url", reason))?;
        for (i, region) in self.regions.iter().enumerate() {
            Relay::check_url(&region.smtp_url)
                .map_err(|reason| ConfigError::invalid(format!("regions[{i}].smtp_url"), reason))?;
            if let Some(bad) = region
                .egress_ips
                .iter()
                .find(|ip| ip.parse::<std::net::IpAddr>().is_err())
            {
                return Err(ConfigError::invalid(
                    format!("regions[{i}].egress_ips"),
                    format!("`{bad}` is not an IP address"),
                ));
            }
        }
        self.dkim_dns.validate()?;
        if !self.metrics.listen.is_empty() && self.metrics.listen_addr().is_none() {
            return Err(ConfigError::invalid(
                "metrics.listen",
                "must be IP:PORT or empty",
            ));
        }
        self.http.validate()?;
        self.webhooks.validate()?;
        self.retention.validate()?;
        Ok(())
    }

    /// What loads but deserves the operator's attention; `load` logs each.
    pub fn warnings(&self) -> Vec<String> {
        self.regions
            .iter()
            .enumerate()
            .filter(|(_, region)| region.dkim_zone.contains('-'))
            .map(|(i, region)| {
                format!(
                    "regions[{i}].dkim_zone `{}` has a hyphen: it is a valid DNS name, but \
                     PingOne's Terraform provider expects DKIM token values of letters, \
                     digits and dots only (^[a-z0-9_.]*$) and refuses them",
                    region.dkim_zone
                )
            })
            .collect()
    }

    pub fn public_suffixes(&self) -> PublicSuffixes {
        PublicSuffixes::new(&self.domains.extra_public_suffixes)
    }

    pub fn record_settings(&self) -> RecordSettings {
        RecordSettings {
            ownership_prefix: self.records.ownership_prefix.clone(),
            environment_prefix: self.records.environment_prefix.clone(),
            spf_include: self.records.spf_include.clone(),
        }
    }

    pub fn sending_regions(&self) -> Vec<SendingRegion> {
        self.regions
            .iter()
            .map(|r| SendingRegion {
                name: r.name.clone(),
                geographies: r.geographies.clone(),
                dkim_zone: r.dkim_zone.clone(),
                mail_from_mx: r.mail_from_mx.clone(),
                // Checked when the configuration is loaded.
                egress_ips: r
                    .egress_ips
                    .iter()
                    .filter_map(|ip| ip.parse().ok())
                    .collect(),
            })
            .collect()
    }
}

/// Dot-separated LDH labels of 1 to 63 characters, at most 253 in all (one trailing dot allowed).
fn is_host_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    name.len() <= 253
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// A lowercase DNS name for a DKIM zone: labels of 1 to 63 lowercase letters, digits and inner
/// hyphens, at most 253 in all. No `_`: hickory's resolver refuses a name with one inside a
/// label, so its keys could never be checked. A hyphen only warns (`Config::warnings`).
fn is_dkim_zone(zone: &str) -> bool {
    is_host_name(zone)
        && !zone.ends_with('.')
        && zone
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

/// `TRUSTMAIL_DNS__RESOLVERS` → `dns.resolvers`, when that is a known key.
fn env_key(variable: &str) -> Option<String> {
    let key = variable
        .strip_prefix(ENV_PREFIX)?
        .to_ascii_lowercase()
        .replace("__", ".");
    KNOWN_KEYS.contains(&key.as_str()).then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file(contents: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(contents.as_bytes()).unwrap();
        f
    }

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Why loading with only these environment variables fails.
    fn env_error(pairs: &[(&str, &str)]) -> String {
        Config::load_from(None, vars(pairs))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn the_documented_example_sets_every_known_key() {
        let example = include_str!("../config.example.toml");
        let f = file(example);
        let config = Config::load_from(Some(f.path()), vec![]).unwrap();
        assert_eq!(config.regions[0].name, "us-east-1");
        let table: toml::Table = example.parse().unwrap();
        let mut keys = Vec::new();
        for (k, v) in &table {
            match v {
                toml::Value::Table(t) => keys.extend(t.keys().map(|sub| format!("{k}.{sub}"))),
                _ => keys.push(k.clone()),
            }
        }
        keys.sort();
        let mut known: Vec<String> = KNOWN_KEYS.iter().map(|s| s.to_string()).collect();
        known.sort();
        assert_eq!(keys, known);
    }

    #[test]
    fn unknown_file_keys_stop_startup_naming_the_key() {
        let f = file("[dns]\nresolver = [\"127.0.0.1\"]\n");
        let err = Config::load_from(Some(f.path()), vec![])
            .unwrap_err()
            .to_string();
        assert!(err.contains("resolver"), "{err}");
        let f = file("[[regions]]\nname = \"x\"\ncolour = \"red\"\n");
        let err = Config::load_from(Some(f.path()), vec![])
            .unwrap_err()
            .to_string();
        assert!(err.contains("colour"), "{err}");
    }

    #[test]
    fn webhook_times_out_of_range_are_refused_naming_the_key() {
        for (var, value, key) in [
            (
                "TRUSTMAIL_WEBHOOKS__FIRST_RETRY_MS",
                "0",
                "webhooks.first_retry_ms",
            ),
            (
                "TRUSTMAIL_WEBHOOKS__FIRST_RETRY_MS",
                "3600001",
                "webhooks.first_retry_ms",
            ),
            (
                "TRUSTMAIL_WEBHOOKS__REQUEST_TIMEOUT_S",
                "0",
                "webhooks.request_timeout_s",
            ),
            (
                "TRUSTMAIL_WEBHOOKS__REQUEST_TIMEOUT_S",
                "301",
                "webhooks.request_timeout_s",
            ),
            (
                "TRUSTMAIL_WEBHOOKS__CONNECT_TIMEOUT_S",
                "0",
                "webhooks.connect_timeout_s",
            ),
            (
                "TRUSTMAIL_WEBHOOKS__CONNECT_TIMEOUT_S",
                "301",
                "webhooks.connect_timeout_s",
            ),
        ] {
            let err = env_error(&[(var, value)]);
            assert!(err.contains(key), "{var}={value}: {err}");
        }
        let config =
            Config::load_from(None, vars(&[("TRUSTMAIL_WEBHOOKS__FIRST_RETRY_MS", "50")])).unwrap();
        assert_eq!(
            config.webhooks.first_retry(),
            std::time::Duration::from_millis(50)
        );
        assert_eq!(config.webhooks.connect_timeout().as_secs(), 3);
        let config = Config::load_from(
            None,
            vars(&[("TRUSTMAIL_WEBHOOKS__REQUEST_TIMEOUT_S", "2")]),
        )
        .unwrap();
        assert_eq!(config.webhooks.connect_timeout().as_secs(), 2);
    }

    #[test]
    fn retention_defaults_to_30_30_and_90_days_and_refuses_0_naming_the_key() {
        let config = Config::load_from(None, vec![]).unwrap();
        assert_eq!(config.retention.messages(), time::Duration::days(30));
        assert_eq!(config.retention.deliveries(), time::Duration::days(30));
        assert_eq!(config.retention.activities(), time::Duration::days(90));
        for (var, key) in [
            (
                "TRUSTMAIL_RETENTION__MESSAGES_DAYS",
                "retention.messages_days",
            ),
            (
                "TRUSTMAIL_RETENTION__DELIVERIES_DAYS",
                "retention.deliveries_days",
            ),
            (
                "TRUSTMAIL_RETENTION__ACTIVITIES_DAYS",
                "retention.activities_days",
            ),
        ] {
            for value in ["0", "36501"] {
                let err = env_error(&[(var, value)]);
                assert!(err.contains(key), "{var}={value}: {err}");
            }
        }
        let f =
            file("[retention]\nmessages_days = 1\ndeliveries_days = 7\nactivities_days = 36500\n");
        let config = Config::load_from(Some(f.path()), vec![]).unwrap();
        assert_eq!(config.retention.messages(), time::Duration::days(1));
        assert_eq!(config.retention.deliveries(), time::Duration::days(7));
        assert_eq!(config.retention.activities(), time::Duration::days(36_500));
    }

    #[test]
    fn times_that_would_overflow_and_a_bad_sender_are_refused_naming_the_key() {
        for (var, key) in [
            ("TRUSTMAIL_DNS__ACTIVE_GRACE_S", "dns.active_grace_s"),
            ("TRUSTMAIL_DNS__TIMEOUT_MS", "dns.timeout_ms"),
            (
                "TRUSTMAIL_DNS__INITIAL_RECHECK_INTERVAL_S",
                "dns.initial_recheck_interval_s",
            ),
        ] {
            let err = Config::load_from(None, vars(&[(var, "18446744073709551615")]))
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{err}");
        }
        let err = Config::load_from(None, vars(&[("TRUSTMAIL_MAIL__SYSTEM_SENDER", "nobody")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("mail.system_sender"), "{err}");
    }

    #[test]
    fn bad_values_name_the_key() {
        let err = env_error(&[("TRUSTMAIL_LIMITS__DOMAINS_PER_ENVIRONMENT", "many")]);
        assert!(err.contains("limits.domains_per_environment"), "{err}");
        let f = file("[[regions]]\nname = \"Bad_Name\"\n");
        let err = Config::load_from(Some(f.path()), vec![])
            .unwrap_err()
            .to_string();
        assert!(err.contains("regions[0].name"), "{err}");
        let f = file("[dkim_dns]\nnameservers = [\"ns1.example.com\", \"bad name\"]\n");
        let err = Config::load_from(Some(f.path()), vec![])
            .unwrap_err()
            .to_string();
        assert!(err.contains("dkim_dns.nameservers[1]"), "{err}");
        let f = file("listen = \"nowhere\"\n");
        let err = Config::load_from(Some(f.path()), vec![])
            .unwrap_err()
            .to_string();
        assert!(err.contains("listen"), "{err}");
    }

    #[test]
    fn environment_overrides_file_and_accepts_both_array_forms() {
        let f = file("[dns]\ntimeout_ms = 10\n");
        let config = Config::load_from(
            Some(f.path()),
            vars(&[
                ("TRUSTMAIL_DNS__TIMEOUT_MS", "20"),
                ("TRUSTMAIL_DNS__RESOLVERS", "127.0.0.1:5353, 127.0.0.2"),
                (
                    "TRUSTMAIL_DOMAINS__EXTRA_PUBLIC_SUFFIXES",
                    "[\"test\", \"example\"]",
                ),
                ("TRUSTMAIL_DATABASE_URL", "postgres://u@h/db"),
                ("TRUSTMAIL_NOT_A_KEY", "ignored"),
                ("TRUSTMAIL_CONFIG", "ignored-too"),
            ]),
        )
        .unwrap();
        assert_eq!(config.dns.timeout_ms, 20);
        assert_eq!(config.dns.resolvers, ["127.0.0.1:5353", "127.0.0.2"]);
        assert_eq!(config.domains.extra_public_suffixes, ["test", "example"]);
        assert_eq!(config.database_url.expose_secret(), "postgres://u@h/db");
    }

    #[test]
    fn http_limits_must_be_positive_and_not_overflow() {
        for (var, key) in [
            (
                "TRUSTMAIL_HTTP__HEADER_READ_TIMEOUT_S",
                "http.header_read_timeout_s",
            ),
            (
                "TRUSTMAIL_HTTP__REQUEST_TIMEOUT_S",
                "http.request_timeout_s",
            ),
            ("TRUSTMAIL_HTTP__IDLE_TIMEOUT_S", "http.idle_timeout_s"),
            ("TRUSTMAIL_HTTP__MAX_CONNECTIONS", "http.max_connections"),
        ] {
            let err = env_error(&[(var, "0")]);
            assert!(err.contains(key), "{err}");
        }
        let err = env_error(&[("TRUSTMAIL_HTTP__IDLE_TIMEOUT_S", "18446744073709551615")]);
        assert!(err.contains("http.idle_timeout_s"), "{err}");
        let config =
            Config::load_from(None, vars(&[("TRUSTMAIL_HTTP__REQUEST_TIMEOUT_S", "5")])).unwrap();
        assert_eq!(config.http.request_timeout_s, 5);
        assert_eq!(config.http.header_read_timeout_s, 30);
    }

    #[test]
    fn trusted_proxies_are_addresses_or_cidr_blocks() {
        let err = env_error(&[(
            "TRUSTMAIL_HTTP__TRUSTED_PROXIES",
            "10.0.0.0/8,proxy.internal",
        )]);
        assert!(err.contains("http.trusted_proxies"), "{err}");
        assert!(err.contains("proxy.internal"), "{err}");
        let http = Http {
            trusted_proxies: vec!["10.0.0.0/8".into(), "192.0.2.7".into()],
            ..Http::default()
        };
        assert!(http.validate().is_ok());
        assert_eq!(http.trusted_proxies().len(), 2);
    }

    #[test]
    fn metrics_listen_is_an_address_and_the_token_is_a_secret() {
        let err = env_error(&[("TRUSTMAIL_METRICS__LISTEN", "localhost")]);
        assert!(err.contains("metrics.listen"), "{err}");
        let config = Config::load_from(
            None,
            vars(&[
                ("TRUSTMAIL_METRICS__LISTEN", "127.0.0.1:9100"),
                ("TRUSTMAIL_METRICS__TOKEN", "scrape-me"),
            ]),
        )
        .unwrap();
        assert_eq!(
            config.metrics.listen_addr(),
            Some(SocketAddr::from(([127, 0, 0, 1], 9100)))
        );
        assert!(!format!("{config:?}").contains("scrape-me"));
        assert_eq!(config.metrics.token().unwrap().expose_secret(), "scrape-me");
    }

    #[test]
    fn tls_needs_both_files_or_neither() {
        let err = env_error(&[("TRUSTMAIL_HTTP__TLS_CERT_FILE", "/etc/tls/cert.pem")]);
        assert!(err.contains("http.tls_key_file"), "{err}");
        assert!(err.contains("both"), "{err}");
        let err = env_error(&[("TRUSTMAIL_HTTP__TLS_KEY_FILE", "/etc/tls/key.pem")]);
        assert!(err.contains("http.tls_cert_file"), "{err}");
        let err = env_error(&[("TRUSTMAIL_HTTP__TLS_RELOAD_INTERVAL_S", "0")]);
        assert!(err.contains("http.tls_reload_interval_s"), "{err}");
        assert_eq!(Config::default().http.tls_files(), None);
        let config = Config::load_from(
            None,
            vars(&[
                ("TRUSTMAIL_HTTP__TLS_CERT_FILE", "/etc/tls/cert.pem"),
                ("TRUSTMAIL_HTTP__TLS_KEY_FILE", "/etc/tls/key.pem"),
            ]),
        )
        .unwrap();
        let (cert, key) = config.http.tls_files().unwrap();
        assert_eq!(
            (cert.to_str(), key.to_str()),
            (Some("/etc/tls/cert.pem"), Some("/etc/tls/key.pem"))
        );
    }

    #[test]
    fn dkim_zones_hold_only_what_token_values_may() {
        for name in ["us-east-1", "eu-west-1", "ap-southeast-2", "a1"] {
            let zone = Region::named(name).dkim_zone;
            assert!(is_dkim_zone(&zone), "{zone}");
        }
        for bad in [
            "dkim.-east.example.com",
            "Dkim.example.com",
            "dkim..example.com",
            "dkim.example.com.",
            "us_east_1.dkim.example.com",
            "",
        ] {
            let f = file(&format!(
                "[[regions]]\nname = \"x\"\ndkim_zone = \"{bad}\"\n"
            ));
            let err = Config::load_from(Some(f.path()), vec![])
                .unwrap_err()
                .to_string();
            assert!(err.contains("regions[0].dkim_zone"), "{bad}: {err}");
            assert!(err.contains("^[a-z0-9_.]*$"), "{err}");
        }
    }

    #[test]
    fn a_hyphenated_dkim_zone_loads_with_a_warning() {
        let f =
            file("[[regions]]\nname = \"us-east-1\"\ndkim_zone = \"dkim.us-east-1.example.com\"\n");
        let config = Config::load_from(Some(f.path()), vec![]).unwrap();
        assert_eq!(config.regions[0].dkim_zone, "dkim.us-east-1.example.com");
        let warnings = config.warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("regions[0].dkim_zone"), "{warnings:?}");
        assert!(warnings[0].contains("Terraform"), "{warnings:?}");
        assert!(Config::default().warnings().is_empty());
    }

    #[test]
    fn dkim_dns_limits_are_checked_by_key() {
        for (var, value, key) in [
            (
                "TRUSTMAIL_DKIM_DNS__REFRESH_INTERVAL_MS",
                "0",
                "dkim_dns.refresh_interval_ms",
            ),
            (
                "TRUSTMAIL_DKIM_DNS__TCP_IDLE_TIMEOUT_MS",
                "0",
                "dkim_dns.tcp_idle_timeout_ms",
            ),
            (
                "TRUSTMAIL_DKIM_DNS__UDP_WORKERS",
                "0",
                "dkim_dns.udp_workers",
            ),
            (
                "TRUSTMAIL_DKIM_DNS__MAX_TCP_CONNECTIONS",
                "0",
                "dkim_dns.max_tcp_connections",
            ),
            (
                "TRUSTMAIL_DKIM_DNS__RATE_LIMIT_IPV4_PREFIX",
                "33",
                "dkim_dns.rate_limit_ipv4_prefix",
            ),
            (
                "TRUSTMAIL_DKIM_DNS__RATE_LIMIT_IPV6_PREFIX",
                "8",
                "dkim_dns.rate_limit_ipv6_prefix",
            ),
            (
                "TRUSTMAIL_DKIM_DNS__NAMESERVER_ADDRESSES",
                "[\"ns1\"]",
                "dkim_dns.nameserver_addresses[0]",
            ),
            (
                "TRUSTMAIL_DKIM_DNS__RATE_LIMIT_SLIP",
                "-1",
                "rate_limit_slip",
            ),
        ] {
            let err = env_error(&[(var, value)]);
            assert!(err.contains(key), "{var}: {err}");
        }
        let config = Config::load_from(
            None,
            vars(&[(
                "TRUSTMAIL_DKIM_DNS__NAMESERVER_ADDRESSES",
                "[\"192.0.2.53\", \"2001:db8::53\"]",
            )]),
        )
        .unwrap();
        assert_eq!(config.dkim_dns.addresses().len(), 2);
        assert_eq!(config.dkim_dns.rate_limit_per_source, 100);
    }

    #[test]
    fn the_pingone_names_example_loads_with_pingones_record_names() {
        let f = file(include_str!("../examples/pingone-names.toml"));
        let config = Config::load_from(Some(f.path()), vec![]).unwrap();
        let records = config.record_settings();
        assert_eq!(records.ownership_prefix, "_amazonses");
        assert_eq!(records.environment_prefix, "_pingoneemail");
        assert_eq!(records.spf_include, "amazonses.com");
        // TLS is commented out, so that the example starts as shipped (README § HTTPS).
        assert!(config.http.tls_files().is_none());
        let names: Vec<&str> = config.regions.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            ["us-east-1", "ca-central-1", "eu-west-1", "ap-southeast-2"]
        );
    }

    #[test]
    fn region_keys_default_from_the_name() {
        let f = file("[[regions]]\nname = \"eu-west-1\"\n");
        let config = Config::load_from(Some(f.path()), vec![]).unwrap();
        let r = &config.regions[0];
        assert_eq!(r.dkim_zone, "euwest1.dkim.trustmail.example");
        assert_eq!(r.mail_from_mx, "feedback.eu-west-1.trustmail.example");
        assert_eq!(r.geographies, Geography::ALL);
    }
}
