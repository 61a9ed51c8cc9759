//! `[dkim_dns]`: trustmail's authoritative DNS for the DKIM zones, and its limits.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::{ConfigError, names::is_host_name};

/// trustmail's DNS for the DKIM zones and its limits (README § DKIM DNS).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DkimDns {
    /// UDP and TCP address of trustmail's DNS for the regions' `dkim_zone`s; empty = not served.
    pub listen: String,
    /// Host names in each DKIM zone's NS records; empty = `ns1.<dkim_zone>`.
    #[serde(deserialize_with = "super::serde_forms::string_or_list")]
    pub nameservers: Vec<String>,
    /// A and AAAA of the NS names that lie inside a DKIM zone (the default `ns1.<dkim_zone>`),
    /// so that the zone carries its own glue.
    #[serde(deserialize_with = "super::serde_forms::string_or_list")]
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

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
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
