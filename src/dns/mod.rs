//! The DNS client: plain lookups against the configured resolvers, never cached, so a record
//! published a second ago is seen now. TCP takes over when a UDP answer is truncated.

mod checks;

use std::{net::SocketAddr, time::Duration};

use hickory_resolver::{
    TokioResolver,
    config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts},
    net::{NetError, runtime::TokioRuntimeProvider},
    proto::rr::{RData, RecordType},
};

pub use checks::{Expected, check_record, count_spf_lookups};

use crate::config::Dns;

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
    resolver: TokioResolver,
}

impl DnsClient {
    /// Resolvers from `dns.resolvers`, or the system's when that is empty.
    pub fn new(config: &Dns) -> Result<Self, DnsSetupError> {
        let (resolver_config, options) = resolver_setup(config)?;
        let resolver =
            TokioResolver::builder_with_config(resolver_config, TokioRuntimeProvider::default())
                .with_options(options)
                .build()
                .map_err(|e| DnsSetupError::System(e.to_string()))?;
        Ok(Self { resolver })
    }

    pub async fn lookup(&self, name: &str, record_type: RecordType) -> Lookup {
        let fqdn = format!("{}.", name.trim_end_matches('.'));
        metrics::counter!("dns_queries_total", "type" => record_type.to_string()).increment(1);
        match self.resolver.lookup(fqdn.as_str(), record_type).await {
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

/// mail-auth's verifier (DKIM, SPF, DMARC) on the same resolvers as the checks, so that a
/// self-check sees what the record checks see.
pub fn authenticator(config: &Dns) -> Result<mail_auth::MessageAuthenticator, DnsSetupError> {
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
