//! The DNS client: plain lookups against the configured resolvers, never cached, so a record
//! published a second ago is seen now. The resolvers of `dns.resolvers` are asked over a few
//! shared UDP sockets each (TCP when an answer is truncated), or with `dns.transport = "tcp"`
//! over pipelined long-lived TCP connections (see [`connections`] for why sharing is safe, and
//! `config::DnsTransport` for when TCP is wise); the system's resolvers, when `dns.resolvers` is
//! empty, over UDP from a fresh random port per query.

mod checks;
mod connections;
pub mod public_only;

use std::{net::SocketAddr, time::Duration};

use hickory_resolver::{
    ConnectionProvider, Resolver, TokioResolver,
    config::{ConnectionConfig, NameServerConfig, ProtocolConfig, ResolverConfig, ResolverOpts},
    lookup::Lookup as Found,
    net::{NetError, runtime::TokioRuntimeProvider},
    proto::rr::{RData, RecordType},
};

pub use checks::{Expected, check_record, count_spf_lookups};
pub use connections::{
    TCP_CONNECTIONS_PER_RESOLVER, UDP_BURST_WINDOW, UDP_IN_FLIGHT_PER_RESOLVER,
    UDP_QUERIES_PER_SOCKET, UDP_SOCKET_LIFETIME, UDP_SOCKETS_PER_RESOLVER,
};

use crate::config::{Dns, DnsTransport};

#[derive(Debug, thiserror::Error)]
pub enum DnsSetupError {
    #[error("dns.resolvers: `{0}` is not IP or IP:PORT")]
    BadResolver(String),
    #[error("cannot read the system's resolver configuration: {0}")]
    System(String),
}

/// One record in an answer, in the shapes the checks compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A TXT record's strings, joined.
    Txt(String),
    Cname {
        name: String,
        target: String,
    },
    Mx {
        preference: u16,
        exchange: String,
    },
}

/// What a lookup found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// Records at the name: CNAMEs on the way, then those of the type asked for.
    Answer(Vec<Answer>),
    /// The name exists but has no record of the type. `zone` is the apex from the SOA.
    NoData { zone: Option<String> },
    /// NXDOMAIN.
    NxDomain { zone: Option<String> },
    /// Timeout, SERVFAIL, refused, unreachable: temporary, never a verdict.
    Failed(String),
}

#[derive(Clone)]
pub struct DnsClient {
    resolver: Resolvers,
    /// mail-auth's verifier on the same resolvers, built once: its resolver keeps no answer
    /// cache (`resolver_setup`), so sharing it never hides a record that changed.
    mail_auth: mail_auth::MessageAuthenticator,
}

/// hickory's resolver over the connections each kind of resolver gets.
#[derive(Clone)]
enum Resolvers {
    /// The system's resolvers: UDP from a random port per query, TCP when an answer is
    /// truncated.
    System(TokioResolver),
    /// `dns.resolvers`: shared UDP sockets and TCP connections.
    Configured(Resolver<connections::SharedConnections>),
}

impl DnsClient {
    /// Resolvers from `dns.resolvers`, or the system's when that is empty.
    pub fn new(config: &Dns) -> Result<Self, DnsSetupError> {
        let (mut resolver_config, mut options) = resolver_setup(config)?;
        let resolver = if config.resolvers.is_empty() {
            Resolvers::System(build(
                resolver_config,
                options,
                TokioRuntimeProvider::default(),
            )?)
        } else {
            if config.transport == DnsTransport::Tcp {
                // TCP only: no UDP to fall back from, so no truncation either.
                for server in &mut resolver_config.name_servers {
                    server
                        .connections
                        .retain(|c| matches!(c.protocol, ProtocolConfig::Tcp));
                }
            }
            // As many queries in flight on a socket as checks may ask at once.
            options.max_active_requests = MAX_IN_FLIGHT;
            Resolvers::Configured(build(
                resolver_config,
                options,
                connections::SharedConnections::default(),
            )?)
        };
        Ok(Self {
            resolver,
            mail_auth: authenticator(config)?,
        })
    }

    /// mail-auth's verifier (DKIM, SPF, DMARC) on the resolvers the checks use, so that a
    /// self-check sees what the record checks see.
    pub fn mail_auth(&self) -> &mail_auth::MessageAuthenticator {
        &self.mail_auth
    }

    pub async fn lookup(&self, name: &str, record_type: RecordType) -> Lookup {
        let fqdn = format!("{}.", name.trim_end_matches('.'));
        metrics::counter!("dns_queries_total", "type" => record_type.to_string()).increment(1);
        let found = match &self.resolver {
            Resolvers::System(resolver) => resolver.lookup(fqdn.as_str(), record_type).await,
            Resolvers::Configured(resolver) => resolver.lookup(fqdn.as_str(), record_type).await,
        };
        answers(found)
    }
}

/// Queries in flight on one socket to a configured resolver before hickory answers "busy"
/// (and retries after a pause): well above what the checks ask at once.
const MAX_IN_FLIGHT: usize = 4096;

fn build<P: ConnectionProvider>(
    config: ResolverConfig,
    options: ResolverOpts,
    provider: P,
) -> Result<Resolver<P>, DnsSetupError> {
    Resolver::builder_with_config(config, provider)
        .with_options(options)
        .build()
        .map_err(|e| DnsSetupError::System(e.to_string()))
}

/// A resolver's answer in the shapes the checks compare.
fn answers(found: Result<Found, NetError>) -> Lookup {
    match found {
        Ok(lookup) => {
            let answers: Vec<Answer> = lookup
                .answers()
                .iter()
                .filter_map(|record| match &record.data {
                    RData::TXT(txt) => Some(Answer::Txt(
                        txt.txt_data
                            .iter()
                            .map(|part| String::from_utf8_lossy(part))
                            .collect(),
                    )),
                    RData::CNAME(cname) => Some(Answer::Cname {
                        name: record.name.to_ascii(),
                        target: cname.0.to_ascii(),
                    }),
                    RData::MX(mx) => Some(Answer::Mx {
                        preference: mx.preference,
                        exchange: mx.exchange.to_ascii(),
                    }),
                    _ => None,
                })
                .collect();
            if answers.is_empty() {
                Lookup::NoData { zone: None }
            } else {
                Lookup::Answer(answers)
            }
        }
        Err(e) => negative(e),
    }
}

/// The resolvers and options every lookup uses: `dns.resolvers` (or the system's), no answer
/// cache, one attempt within `dns.timeout_ms`.
fn resolver_setup(config: &Dns) -> Result<(ResolverConfig, ResolverOpts), DnsSetupError> {
    let resolver_config = if config.resolvers.is_empty() {
        hickory_resolver::system_conf::read_system_conf()
            .map_err(|e| DnsSetupError::System(e.to_string()))?
            .0
    } else {
        let servers = config
            .resolvers
            .iter()
            .map(|raw| {
                let address: SocketAddr = raw
                    .parse()
                    .or_else(|_| raw.parse().map(|ip| SocketAddr::new(ip, 53)))
                    .map_err(|_| DnsSetupError::BadResolver(raw.clone()))?;
                let mut udp = ConnectionConfig::udp();
                udp.port = address.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = address.port();
                Ok(NameServerConfig::new(address.ip(), true, vec![udp, tcp]))
            })
            .collect::<Result<Vec<_>, DnsSetupError>>()?;
        ResolverConfig::from_name_servers(servers)
    };
    let mut options = ResolverOpts::default();
    options.cache_size = 0;
    options.attempts = 1;
    options.timeout = Duration::from_millis(config.timeout_ms);
    options.preserve_intermediates = true;
    options.ndots = 0;
    Ok((resolver_config, options))
}

/// mail-auth's verifier on the system's or the configured resolvers (plain UDP, TCP on
/// truncation), with the checks' options.
fn authenticator(config: &Dns) -> Result<mail_auth::MessageAuthenticator, DnsSetupError> {
    let (resolver_config, options) = resolver_setup(config)?;
    mail_auth::MessageAuthenticator::new(resolver_config, options)
        .map_err(|e| DnsSetupError::System(e.to_string()))
}

fn negative(error: NetError) -> Lookup {
    if error.is_no_records_found() {
        let nx = error.is_nx_domain();
        let zone = error.into_soa().map(|soa| {
            soa.name
                .to_ascii()
                .trim_end_matches('.')
                .to_ascii_lowercase()
        });
        if nx {
            Lookup::NxDomain { zone }
        } else {
            Lookup::NoData { zone }
        }
    } else {
        Lookup::Failed(error.to_string())
    }
}
