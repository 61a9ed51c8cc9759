//! `[http]`: the HTTP server's limits, HTTPS, and the proxies in front of it.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{ConfigError, at_least_one};

/// Limits of the HTTP server (README § HTTP limits).
#[derive(Debug, Clone, Deserialize, Serialize)]
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
    #[serde(deserialize_with = "super::serde_forms::string_or_list")]
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

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
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
        at_least_one([("http.max_connections", u64::from(self.max_connections))])
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
