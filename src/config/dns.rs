//! `[dns]`: the resolvers trustmail checks customers' records with, and how often.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::{ConfigError, at_least_one};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Dns {
    #[serde(deserialize_with = "super::serde_forms::string_or_list")]
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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
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

impl Dns {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        for resolver in &self.resolvers {
            if resolver.parse::<SocketAddr>().is_err()
                && resolver.parse::<std::net::IpAddr>().is_err()
            {
                return Err(ConfigError::invalid(
                    "dns.resolvers",
                    format!("`{resolver}` is not IP or IP:PORT"),
                ));
            }
        }
        at_least_one([
            ("dns.timeout_ms", self.timeout_ms),
            ("dns.check_deadline_ms", self.check_deadline_ms),
        ])?;
        // Times are added to timestamps: a value past this would overflow the arithmetic.
        const TEN_YEARS_S: u64 = 10 * 365 * 24 * 3600;
        for (key, seconds) in [
            ("dns.timeout_ms", self.timeout_ms / 1000),
            ("dns.check_deadline_ms", self.check_deadline_ms / 1000),
            ("dns.min_recheck_interval_s", self.min_recheck_interval_s),
            (
                "dns.initial_recheck_interval_s",
                self.initial_recheck_interval_s,
            ),
            ("dns.active_grace_s", self.active_grace_s),
        ] {
            if seconds > TEN_YEARS_S {
                return Err(ConfigError::invalid(key, "must be at most ten years"));
            }
        }
        Ok(())
    }
}
