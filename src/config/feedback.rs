//! `[feedback]`: the feedback MX, where bounces, complaints and DMARC reports arrive over SMTP.

use std::{net::SocketAddr, time::Duration};

use serde::{Deserialize, Serialize};

use super::{ConfigError, names::is_host_name};

/// The feedback MX and its bounds (README § Feedback loop).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Feedback {
    /// Where the feedback MX listens (port 25 in production); empty = no listener.
    pub listen: String,
    /// The name the MX records of MAIL FROM domains point at, which the MX greets with and
    /// DMARC report addresses are on; empty = the first region's `mail_from_mx`.
    pub host: String,
    /// Return paths of customer mail whose domain has no ACTIVE MAIL FROM domain go on this
    /// domain (its MX must reach this listener); empty = such mail keeps its sender as the
    /// return path, and its bounces do not come back.
    pub bounce_domain: String,
    /// The largest message taken; past it, 552.
    pub max_message_bytes: u64,
    /// Connections served at once; past it a new one is told 421 and closed.
    pub max_connections: u32,
    /// Connections from one IP address at once; past it, 421.
    pub max_connections_per_ip: u32,
    /// Recipients in one transaction; past it, 452 (the client sends the rest again).
    pub max_recipients: u32,
    /// The longest wait for a command, and for each piece of a message's text.
    pub command_timeout_s: u64,
    /// The longest a whole message's text may take to arrive.
    pub data_timeout_s: u64,
    /// Commands refused (a bad address, an unknown command) before the connection is closed.
    pub max_errors: u32,
}

impl Default for Feedback {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:2525".into(),
            host: String::new(),
            bounce_domain: String::new(),
            max_message_bytes: 10 * 1024 * 1024,
            max_connections: 256,
            max_connections_per_ip: 16,
            max_recipients: 100,
            command_timeout_s: 60,
            data_timeout_s: 300,
            max_errors: 10,
        }
    }
}

impl Feedback {
    /// `listen`, parsed (checked at load); `None` when no listener is configured.
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        self.listen.parse().ok()
    }

    pub fn command_timeout(&self) -> Duration {
        Duration::from_secs(self.command_timeout_s)
    }

    pub fn data_timeout(&self) -> Duration {
        Duration::from_secs(self.data_timeout_s)
    }

    /// `bounce_domain`, when one is configured.
    pub fn bounce_domain(&self) -> Option<&str> {
        Some(self.bounce_domain.trim_end_matches('.')).filter(|d| !d.is_empty())
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !self.listen.is_empty() && self.listen.parse::<SocketAddr>().is_err() {
            return Err(ConfigError::invalid(
                "feedback.listen",
                "must be IP:PORT or empty",
            ));
        }
        for (key, name) in [
            ("feedback.host", &self.host),
            ("feedback.bounce_domain", &self.bounce_domain),
        ] {
            let usable = name.is_empty() || (is_host_name(name) && name.contains('.'));
            if !usable {
                return Err(ConfigError::invalid(
                    key,
                    "must be a host name such as feedback.example.com, or empty",
                ));
            }
        }
        // Under 64 KiB a DSN with its returned headers no longer fits; past 1 GiB it is no
        // report but a flood.
        if !(64 * 1024..=1024 * 1024 * 1024).contains(&self.max_message_bytes) {
            return Err(ConfigError::invalid(
                "feedback.max_message_bytes",
                "must be 65536 to 1073741824",
            ));
        }
        for (key, count) in [
            ("feedback.max_connections", self.max_connections),
            (
                "feedback.max_connections_per_ip",
                self.max_connections_per_ip,
            ),
            ("feedback.max_recipients", self.max_recipients),
            ("feedback.max_errors", self.max_errors),
        ] {
            if !(1..=65_536).contains(&count) {
                return Err(ConfigError::invalid(key, "must be 1 to 65536"));
            }
        }
        for (key, seconds) in [
            ("feedback.command_timeout_s", self.command_timeout_s),
            ("feedback.data_timeout_s", self.data_timeout_s),
        ] {
            if !(1..=3600).contains(&seconds) {
                return Err(ConfigError::invalid(key, "must be 1 to 3600"));
            }
        }
        Ok(())
    }
}
