//! trustmail's authoritative DNS for the regions' DKIM zones (`[dkim_dns] listen`): SOA and NS at
//! each apex, and `<selector>.<zone>` TXT with the key behind it. A front end beside `api`: every
//! answer is read from the store through the service, so every replica serves the same data.

use std::{net::SocketAddr, str::FromStr, time::Duration};

use hickory_server::{
    Server,
    net::runtime::Time,
    proto::{
        op::{Edns, Header, HeaderCounts, LowerQuery, MessageType, Metadata, OpCode, ResponseCode},
        rr::{
            DNSClass, LowerName, Name, RData, Record, RecordType,
            rdata::{NS, SOA, TXT},
        },
    },
    server::{Request, RequestHandler, ResponseHandler, ResponseInfo},
    zone_handler::MessageResponseBuilder,
};
use tokio::net::{TcpListener, UdpSocket};

use crate::{
    domain::{DKIM_ZONE_TTL, DkimZone, txt_strings},
    error_chain::ErrorChain,
    service::Service,
};

/// A TCP client that sends nothing for this long is dropped.
const TCP_IDLE: Duration = Duration::from_secs(5);
/// Responses queued per TCP connection.
const TCP_RESPONSE_BUFFER: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum DkimDnsError {
    #[error("dkim_dns.listen: `{0}` is not IP:PORT")]
    BadListen(String),
    #[error("cannot listen on {address} for DNS")]
    Bind {
        address: String,
        source: std::io::Error,
    },
    #[error("`{0}` is not a DNS name")]
    BadName(String),
}

/// The running server: UDP and TCP on one address.
pub struct DkimDns {
    server: Server<Authority>,
    addr: SocketAddr,
}

impl DkimDns {
    /// Binds `listen` (port 0 picks a port free for both UDP and TCP) and starts answering.
    pub async fn start(listen: &str, service: Service) -> Result<Self, DkimDnsError> {
        let address: SocketAddr = listen
            .parse()
            .map_err(|_| DkimDnsError::BadListen(listen.to_owned()))?;
        let authority = Authority::new(service)?;
        let (udp, tcp, addr) = bind_udp_and_tcp(address).await?;
        let mut server = Server::new(authority);
        server.register_socket(udp);
        server.register_listener(tcp, TCP_IDLE, TCP_RESPONSE_BUFFER);
        tracing::info!(%addr, "DKIM DNS listening (UDP and TCP)");
        Ok(Self { server, addr })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting queries and waits for the ones in flight.
    pub async fn stop(mut self) {
        if let Err(e) = self.server.shutdown_gracefully().await {
            tracing::warn!(error = %ErrorChain(&e), "DKIM DNS did not stop cleanly");
        }
    }
}

fn bind_error(address: SocketAddr) -> impl Fn(std::io::Error) -> DkimDnsError {
    move |source| DkimDnsError::Bind {
        address: address.to_string(),
        source,
    }
}

/// A UDP socket and a TCP listener on the same port. With port 0 the kernel picks the UDP port,
/// which may be taken for TCP, so a few ports are tried.
async fn bind_udp_and_tcp(
    address: SocketAddr,
) -> Result<(UdpSocket, TcpListener, SocketAddr), DkimDnsError> {
    let attempts = if address.port() == 0 { 20 } else { 1 };
    let mut last = None;
    for _ in 0..attempts {
        let udp = UdpSocket::bind(address)
            .await
            .map_err(bind_error(address))?;
        let bound = udp.local_addr().map_err(bind_error(address))?;
        match TcpListener::bind(bound).await {
            Ok(tcp) => return Ok((udp, tcp, bound)),
            Err(e) => last = Some(e),
        }
    }
    Err(bind_error(address)(last.unwrap_or_else(|| {
        std::io::Error::other("no port free for both UDP and TCP")
    })))
}

/// One configured DKIM zone, its apex records built once.
struct Zone {
    origin: LowerName,
    /// The regions whose keys it publishes (usually one).
    regions: Vec<String>,
    soa: Record,
    ns: Vec<Record>,
}

fn dns_name(name: &str) -> Result<Name, DkimDnsError> {
    Name::from_str(&format!("{}.", name.trim_end_matches('.')))
        .map_err(|_| DkimDnsError::BadName(name.to_owned()))
}

impl Zone {
    fn new(zone: &DkimZone, region: &str) -> Result<Self, DkimDnsError> {
        let apex = dns_name(&zone.origin)?;
        let soa = zone.soa();
        let soa = Record::from_rdata(
            apex.clone(),
            DKIM_ZONE_TTL,
            RData::SOA(SOA::new(
                dns_name(&soa.mname)?,
                dns_name(&soa.rname)?,
                soa.serial,
                soa.refresh,
                soa.retry,
                soa.expire,
                soa.minimum,
            )),
        );
        let ns = zone
            .nameservers
            .iter()
            .map(|n| {
                Ok(Record::from_rdata(
                    apex.clone(),
                    DKIM_ZONE_TTL,
                    RData::NS(NS(dns_name(n)?)),
                ))
            })
            .collect::<Result<_, DkimDnsError>>()?;
        Ok(Self {
            origin: LowerName::new(&apex),
            regions: vec![region.to_owned()],
            soa,
            ns,
        })
    }
}

/// What a query gets, before it is written out.
enum Outcome {
    /// NOERROR with records (the zone's data: AA set).
    Answer(Vec<Record>),
    /// NOERROR, nothing of that type at the name; the zone's SOA goes in the authority section.
    NoData(Record),
    /// The name does not exist in the zone; SOA in the authority section.
    NxDomain(Record),
    /// Any other code, not authoritative, no records.
    Error(ResponseCode),
}

impl Outcome {
    fn code(&self) -> ResponseCode {
        match self {
            Outcome::Answer(_) | Outcome::NoData(_) => ResponseCode::NoError,
            Outcome::NxDomain(_) => ResponseCode::NXDomain,
            Outcome::Error(code) => *code,
        }
    }
}

/// The metrics label of a response code.
fn rcode_label(code: ResponseCode) -> &'static str {
    match code {
        ResponseCode::NoError => "NOERROR",
        ResponseCode::NXDomain => "NXDOMAIN",
        ResponseCode::Refused => "REFUSED",
        ResponseCode::ServFail => "SERVFAIL",
        ResponseCode::FormErr => "FORMERR",
        ResponseCode::NotImp => "NOTIMP",
        ResponseCode::BADVERS => "BADVERS",
        _ => "OTHER",
    }
}

/// The request handler: the configured zones, and the service to read keys through.
struct Authority {
    service: Service,
    zones: Vec<Zone>,
}

impl Authority {
    fn new(service: Service) -> Result<Self, DkimDnsError> {
        let mut zones: Vec<Zone> = Vec::new();
        for region in &service.settings().regions {
            let Some(zone) = service.dkim_zone(&region.name) else {
                continue;
            };
            let zone = Zone::new(&zone, &region.name)?;
            match zones.iter_mut().find(|z| z.origin == zone.origin) {
                // Regions may share a zone: it then publishes the keys of each.
                Some(shared) => shared.regions.push(region.name.clone()),
                None => zones.push(zone),
            }
        }
        Ok(Self { service, zones })
    }

    /// The zone a name lies in: the most specific, should one zone contain another.
    fn zone_of(&self, name: &LowerName) -> Option<&Zone> {
        self.zones
            .iter()
            .filter(|z| z.origin.zone_of(name))
            .max_by_key(|z| z.origin.num_labels())
    }

    async fn outcome(&self, query: &LowerQuery) -> Outcome {
        if query.query_class() != DNSClass::IN {
            return Outcome::Error(ResponseCode::Refused);
        }
        let name = query.name();
        let Some(zone) = self.zone_of(name) else {
            return Outcome::Error(ResponseCode::Refused);
        };
        let qtype = query.query_type();
        if *name == zone.origin {
            let mut records = Vec::new();
            if matches!(qtype, RecordType::SOA | RecordType::ANY) {
                records.push(zone.soa.clone());
            }
            if matches!(qtype, RecordType::NS | RecordType::ANY) {
                records.extend(zone.ns.iter().cloned());
            }
            return answer_or_nodata(records, zone);
        }
        // Only `<selector>.<zone>` exists below the apex.
        if name.num_labels() != zone.origin.num_labels() + 1 {
            return Outcome::NxDomain(zone.soa.clone());
        }
        let owner = Name::from(name.clone());
        let Some(selector) = owner
            .iter()
            .next()
            .and_then(|label| std::str::from_utf8(label).ok())
        else {
            return Outcome::NxDomain(zone.soa.clone());
        };
        let key = match self.service.dkim_key_by_selector(selector).await {
            Ok(key) => key.filter(|k| zone.regions.contains(&k.region)),
            Err(e) => {
                tracing::error!(error = %ErrorChain(&e), %name, "DKIM DNS cannot read the key");
                return Outcome::Error(ResponseCode::ServFail);
            }
        };
        let Some(key) = key else {
            return Outcome::NxDomain(zone.soa.clone());
        };
        let mut records = Vec::new();
        if matches!(qtype, RecordType::TXT | RecordType::ANY) {
            let strings = txt_strings(&key.txt())
                .into_iter()
                .map(str::to_owned)
                .collect();
            records.push(Record::from_rdata(
                owner,
                DKIM_ZONE_TTL,
                RData::TXT(TXT::new(strings)),
            ));
        }
        answer_or_nodata(records, zone)
    }
}

fn answer_or_nodata(records: Vec<Record>, zone: &Zone) -> Outcome {
    if records.is_empty() {
        Outcome::NoData(zone.soa.clone())
    } else {
        Outcome::Answer(records)
    }
}

#[async_trait::async_trait]
impl RequestHandler for Authority {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        // An EDNS request gets EDNS back: its payload size lets UDP answers past 512 bytes
        // through, and the encoder sets TC on anything longer than the client allows.
        let mut edns = request.edns.as_ref().map(|asked| {
            let mut ours = Edns::new();
            ours.set_max_payload(asked.max_payload().max(512));
            ours.set_version(0);
            ours
        });
        let outcome = if request.edns.as_ref().is_some_and(|e| e.version() > 0) {
            Outcome::Error(ResponseCode::BADVERS)
        } else if request.metadata.message_type != MessageType::Query {
            Outcome::Error(ResponseCode::FormErr)
        } else if request.metadata.op_code != OpCode::Query {
            Outcome::Error(ResponseCode::NotImp)
        } else {
            match request.request_info() {
                Ok(info) => self.outcome(info.query).await,
                Err(_) => Outcome::Error(ResponseCode::FormErr),
            }
        };
        let code = outcome.code();
        metrics::counter!("dkim_dns_queries_total", "rcode" => rcode_label(code)).increment(1);
        if let Some(edns) = edns.as_mut() {
            edns.set_rcode_high(code.high());
        }
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.response_code = code;
        let (answers, authority) = match outcome {
            Outcome::Answer(records) => (records, Vec::new()),
            Outcome::NoData(soa) | Outcome::NxDomain(soa) => (Vec::new(), vec![soa]),
            Outcome::Error(_) => (Vec::new(), Vec::new()),
        };
        metadata.authoritative = matches!(code, ResponseCode::NoError | ResponseCode::NXDomain);
        let response = MessageResponseBuilder::new(&request.queries, edns.as_ref()).build(
            metadata,
            answers.iter(),
            std::iter::empty(),
            authority.iter(),
            std::iter::empty(),
        );
        match response_handle.send_response(response).await {
            Ok(info) => info,
            Err(e) => {
                tracing::warn!(error = %ErrorChain(&e), "DKIM DNS cannot send an answer");
                let mut failed = Metadata::response_from_request(&request.metadata);
                failed.response_code = ResponseCode::ServFail;
                ResponseInfo::from(Header {
                    metadata: failed,
                    counts: HeaderCounts::default(),
                })
            }
        }
    }
}
