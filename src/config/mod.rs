//! Configuration: built-in defaults, then a TOML file, then `TRUSTMAIL_*` environment variables.
//! The keys are a public interface (README § Configuration): renaming one breaks deployments.
//!
//! One file per section (`[limits]` is limits.rs, …), each a struct with its defaults and the
//! checks of its keys; this file loads them, runs every section's checks, and derives the list
//! of known keys from the sections themselves (`known_keys`), so a key added to a struct is
//! known without a second list to keep.

mod dkim;
mod dkim_dns;
mod dns;
mod domains;
mod environments;
mod feedback;
mod http;
mod limits;
mod mail;
mod metrics;
mod names;
mod records;
mod regions;
mod retention;
mod secrets;
mod serde_forms;
mod webhooks;

use std::{net::SocketAddr, sync::LazyLock};

use figment::{
    Figment,
    providers::{Format, Serialized, Toml},
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

pub use dkim::Dkim;
pub use dkim_dns::DkimDns;
pub use dns::{Dns, DnsTransport};
pub use domains::Domains;
pub use environments::{DEFAULT_LICENSE_ID, Environments};
pub use feedback::Feedback;
pub use http::Http;
pub use limits::Limits;
pub use mail::{Mail, SmtpUrl};
pub use metrics::Metrics;
pub use records::Records;
pub use regions::Region;
pub use retention::Retention;
pub use secrets::Secrets;
pub use webhooks::Webhooks;

use crate::domain::{PublicSuffixes, RecordSettings, SendingRegion};

pub const ENV_PREFIX: &str = "TRUSTMAIL_";
/// Names the configuration file; not itself a configuration key.
pub const CONFIG_PATH_VAR: &str = "TRUSTMAIL_CONFIG";

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

/// Fails with `key`'s name when `value` is 0, for the many keys that must be at least 1.
fn at_least_one<'a>(keys: impl IntoIterator<Item = (&'a str, u64)>) -> Result<(), ConfigError> {
    match keys.into_iter().find(|(_, value)| *value == 0) {
        Some((key, _)) => Err(ConfigError::invalid(key, "must be at least 1")),
        None => Ok(()),
    }
}

// Serialize only to list the keys (`known_keys`): secrets serialize as empty strings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub listen: SocketAddr,
    /// Base of HAL links; empty means `http://` + the address actually bound.
    pub public_url: String,
    #[serde(serialize_with = "serde_forms::redacted")]
    pub database_url: SecretString,
    pub limits: Limits,
    pub domains: Domains,
    pub dns: Dns,
    pub records: Records,
    #[serde(
        deserialize_with = "regions::deserialize",
        serialize_with = "regions::serialize"
    )]
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
    pub feedback: Feedback,
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
            feedback: Feedback::default(),
        }
    }
}

/// Every key the file and the environment accept, dotted as in TOML, read off the sections'
/// own fields (the defaults, serialized). `regions` is one key: an array of tables, settable
/// from the environment only as a whole TOML array.
pub fn known_keys() -> &'static [String] {
    static KEYS: LazyLock<Vec<String>> = LazyLock::new(|| {
        // Plain fields and maps with string keys: serializing cannot fail, and the test that
        // the documented example sets every key would catch an empty list.
        let defaults = serde_json::to_value(Config::default()).unwrap_or_default();
        let mut keys = Vec::new();
        flatten("", &defaults, &mut keys);
        keys
    });
    &KEYS
}

/// The dotted paths of `value`'s leaves; arrays are leaves.
fn flatten(prefix: &str, value: &serde_json::Value, keys: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(members) => {
            for (name, member) in members {
                let key = if prefix.is_empty() {
                    name.clone()
                } else {
                    format!("{prefix}.{name}")
                };
                flatten(&key, member, keys);
            }
        }
        _ => keys.push(prefix.to_owned()),
    }
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

    /// The top-level keys, then every section's own checks, in the order of the file.
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
        self.environments.validate()?;
        self.limits.validate()?;
        self.domains.validate()?;
        self.dns.validate()?;
        self.records.validate()?;
        regions::validate(&self.regions)?;
        self.mail.validate()?;
        self.dkim_dns.validate()?;
        self.metrics.validate()?;
        self.http.validate()?;
        self.webhooks.validate()?;
        self.retention.validate()?;
        self.feedback.validate()?;
        Ok(())
    }

    /// What loads but deserves the operator's attention; `load` logs each.
    pub fn warnings(&self) -> Vec<String> {
        regions::warnings(&self.regions)
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

    /// `feedback.host`, else the first region's `mail_from_mx`.
    pub fn feedback_host(&self) -> String {
        let host = self.feedback.host.trim_end_matches('.');
        match (host.is_empty(), self.regions.first()) {
            (true, Some(region)) => region.mail_from_mx.clone(),
            _ => host.to_owned(),
        }
    }

    pub fn sending_regions(&self) -> Vec<SendingRegion> {
        self.regions.iter().map(Region::sending_region).collect()
    }
}

/// `TRUSTMAIL_DNS__RESOLVERS` → `dns.resolvers`, when that is a known key.
fn env_key(variable: &str) -> Option<String> {
    let key = variable
        .strip_prefix(ENV_PREFIX)?
        .to_ascii_lowercase()
        .replace("__", ".");
    known_keys().contains(&key).then_some(key)
}

#[cfg(test)]
mod tests;
