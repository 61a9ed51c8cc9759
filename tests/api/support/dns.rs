//! An in-process authoritative DNS server (hickory-server) for the zones `test.`,
//! `shopco.test.` and `trustmail.example.` (where the default DKIM zones lie), whose records a
//! test changes while trustmail runs.

use std::{
    net::SocketAddr,
    str::FromStr,
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use tokio::net::{TcpListener, UdpSocket};

use hickory_proto::{
    op::ResponseCode,
    rr::{
        LowerName, Name, RData, Record, RecordType,
        rdata::{CNAME, MX, NS, SOA, TXT},
    },
};
use hickory_server::{
    Server,
    net::{runtime::Time, xfer::Protocol},
    server::{Request, RequestHandler, ResponseHandler, ResponseInfo},
    store::in_memory::InMemoryZoneHandler,
    zone_handler::{AxfrPolicy, Catalog, MessageResponseBuilder, ZoneType},
};

const ZONES: [&str; 3] = ["shopco.test.", "test.", "trustmail.example."];

/// Answers from whichever catalog is current; a change builds a new one and swaps it in. While
/// `servfail` is set, answers every query SERVFAIL instead. Every query is logged; queries for
/// names under a `slow` suffix are answered after its delay.
struct Swappable {
    catalog: RwLock<Arc<Catalog>>,
    servfail: AtomicBool,
    asked: Mutex<Vec<Asked>>,
    slow: RwLock<Vec<(String, Duration)>>,
}

/// One query the server received: how, from where, and for what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asked {
    pub protocol: Protocol,
    pub from: SocketAddr,
    pub name: String,
    pub record_type: RecordType,
}

#[async_trait::async_trait]
impl RequestHandler for Swappable {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        if let Ok(info) = request.request_info() {
            let name = info.query.name().to_string();
            self.asked.lock().unwrap().push(Asked {
                protocol: request.protocol(),
                from: request.src(),
                name: name.clone(),
                record_type: info.query.query_type(),
            });
            let asked = name.trim_end_matches('.').to_ascii_lowercase();
            let delay = self
                .slow
                .read()
                .unwrap()
                .iter()
                .find(|(suffix, _)| asked.ends_with(suffix.as_str()))
                .map(|(_, delay)| *delay);
            if let Some(delay) = delay {
                tokio::time::sleep(delay).await;
            }
        }
        if self.servfail.load(Ordering::SeqCst) {
            let response = MessageResponseBuilder::new(&request.queries, None)
                .error_msg(&request.metadata, ResponseCode::ServFail);
            return response_handle.send_response(response).await.unwrap();
        }
        let catalog = self.catalog.read().unwrap().clone();
        catalog
            .handle_request::<R, T>(request, response_handle)
            .await
    }
}

pub struct TestDns {
    pub addr: SocketAddr,
    records: Mutex<Vec<Record>>,
    handler: Arc<Swappable>,
    server: Mutex<Option<Server<ArcHandler>>>,
}

/// `Server` wants the handler by value.
pub struct ArcHandler(Arc<Swappable>);

#[async_trait::async_trait]
impl RequestHandler for ArcHandler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        response_handle: R,
    ) -> ResponseInfo {
        self.0
            .handle_request::<R, T>(request, response_handle)
            .await
    }
}

fn name(s: &str) -> Name {
    let fqdn = if s.ends_with('.') {
        s.to_owned()
    } else {
        format!("{s}.")
    };
    Name::from_str(&fqdn).unwrap()
}

/// A UDP socket and a TCP listener on the same free port: the kernel picks the UDP port, and
/// that port may be taken for TCP (another test's connection), so try again until both bind.
pub async fn bind_udp_and_tcp() -> (UdpSocket, TcpListener, SocketAddr) {
    for _ in 0..100 {
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = udp.local_addr().unwrap();
        if let Ok(tcp) = TcpListener::bind(addr).await {
            return (udp, tcp, addr);
        }
    }
    panic!("no port free for both UDP and TCP on 127.0.0.1");
}

fn serve(handler: &Arc<Swappable>, udp: UdpSocket, tcp: TcpListener) -> Server<ArcHandler> {
    let mut server = Server::new(ArcHandler(handler.clone()));
    server.register_socket(udp);
    server.register_listener(tcp, Duration::from_secs(5), 4096);
    server
}

impl TestDns {
    /// Serves on 127.0.0.1, UDP and TCP on the same port.
    pub async fn start() -> Arc<Self> {
        let (udp, tcp, addr) = bind_udp_and_tcp().await;
        let handler = Arc::new(Swappable {
            catalog: RwLock::new(Arc::new(Catalog::new())),
            servfail: AtomicBool::new(false),
            asked: Mutex::new(Vec::new()),
            slow: RwLock::new(Vec::new()),
        });
        let dns = Arc::new(Self {
            addr,
            records: Mutex::new(Vec::new()),
            server: Mutex::new(Some(serve(&handler, udp, tcp))),
            handler,
        });
        dns.rebuild();
        dns
    }

    /// Every query received so far, in order.
    pub fn asked(&self) -> Vec<Asked> {
        self.handler.asked.lock().unwrap().clone()
    }

    /// Stops (closing every open TCP connection) and serves again on the same port, with the
    /// same records.
    pub async fn restart(&self) {
        self.stop().await;
        let udp = UdpSocket::bind(self.addr).await.unwrap();
        let tcp = TcpListener::bind(self.addr).await.unwrap();
        *self.server.lock().unwrap() = Some(serve(&self.handler, udp, tcp));
    }

    /// Stops answering (queries then fail as a dead server's would).
    pub async fn stop(&self) {
        let server = self.server.lock().unwrap().take();
        if let Some(mut server) = server {
            server.shutdown_gracefully().await.unwrap();
        }
    }

    /// Answers every query SERVFAIL (`true`) or from its records again (`false`).
    pub fn servfail(&self, on: bool) {
        self.handler.servfail.store(on, Ordering::SeqCst);
    }

    /// Answers queries for `suffix` and the names under it after `delay`.
    pub fn slow(&self, suffix: &str, delay: Duration) {
        self.handler
            .slow
            .write()
            .unwrap()
            .push((suffix.trim_end_matches('.').to_ascii_lowercase(), delay));
    }

    /// Answers every query at once again (undoes `slow`).
    pub fn fast(&self) {
        self.handler.slow.write().unwrap().clear();
    }

    pub fn resolver(&self) -> String {
        self.addr.to_string()
    }

    fn add(&self, record: Record) {
        self.records.lock().unwrap().push(record);
        self.rebuild();
    }

    /// A TXT record made of `strings` (several strings model a long, split value).
    /// What mail-auth (an independent verifier) says of `message`'s DKIM signatures, resolving
    /// the customer's CNAME and the key behind it through this server.
    pub async fn verify_dkim(&self, message: &[u8]) -> Vec<mail_auth::DkimResult> {
        use hickory_resolver::config::{
            ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts,
        };
        let mut udp = ConnectionConfig::udp();
        udp.port = self.addr.port();
        let server = NameServerConfig::new(self.addr.ip(), true, vec![udp]);
        let mut options = ResolverOpts::default();
        options.cache_size = 0;
        options.timeout = Duration::from_secs(2);
        let authenticator = mail_auth::MessageAuthenticator::new(
            ResolverConfig::from_name_servers(vec![server]),
            options,
        )
        .unwrap();
        let parsed = mail_auth::AuthenticatedMessage::parse(message).unwrap();
        authenticator
            .verify_dkim(&parsed)
            .await
            .iter()
            .map(|output| output.result().clone())
            .collect()
    }

    pub fn add_txt(&self, at: &str, strings: &[&str]) {
        let txt = TXT::new(strings.iter().map(|s| s.to_string()).collect());
        self.add(Record::from_rdata(name(at), 60, RData::TXT(txt)));
    }

    pub fn add_cname(&self, at: &str, target: &str) {
        self.add(Record::from_rdata(
            name(at),
            60,
            RData::CNAME(CNAME(name(target))),
        ));
    }

    pub fn add_mx(&self, at: &str, preference: u16, exchange: &str) {
        self.add(Record::from_rdata(
            name(at),
            60,
            RData::MX(MX::new(preference, name(exchange))),
        ));
    }

    /// Removes every record of `record_type` at `at`.
    pub fn remove(&self, at: &str, record_type: RecordType) {
        let at = name(at);
        self.records
            .lock()
            .unwrap()
            .retain(|r| !(r.name.eq_case(&at) || r.name == at) || r.record_type() != record_type);
        self.rebuild();
    }

    fn rebuild(&self) {
        let records = self.records.lock().unwrap().clone();
        let mut catalog = Catalog::new();
        for zone in ZONES {
            let origin = name(zone);
            let mut handler = InMemoryZoneHandler::<
                hickory_server::net::runtime::TokioRuntimeProvider,
            >::empty(
                origin.clone(), ZoneType::Primary, AxfrPolicy::Deny
            );
            let ns = name(&format!("ns1.{zone}"));
            let soa = SOA::new(
                ns.clone(),
                name(&format!("hostmaster.{zone}")),
                1,
                3600,
                600,
                86400,
                60,
            );
            handler.upsert_mut(Record::from_rdata(origin.clone(), 60, RData::SOA(soa)), 1);
            handler.upsert_mut(Record::from_rdata(origin.clone(), 60, RData::NS(NS(ns))), 1);
            for record in &records {
                // Each record goes to the most specific zone that contains it.
                let owner = ZONES
                    .iter()
                    .find(|z| name(z).zone_of(&record.name))
                    .copied();
                if owner == Some(zone) {
                    handler.upsert_mut(record.clone(), 1);
                }
            }
            catalog.upsert(LowerName::new(&origin), vec![Arc::new(handler)]);
        }
        *self.handler.catalog.write().unwrap() = Arc::new(catalog);
    }
}
