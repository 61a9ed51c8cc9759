//! trustmail's own DNS for the DKIM zones (`[dkim_dns] listen`): keys as TXT at
//! `<selector>.<dkim_zone>`, SOA and NS at the apex, the right negative answers, UDP and TCP.

use std::{net::SocketAddr, str::FromStr, sync::Arc, time::Duration};

use hickory_proto::{
    op::{Edns, Message, Query, ResponseCode},
    rr::{Name, RData, RecordType},
};
use hickory_resolver::{
    TokioResolver,
    config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts},
    net::runtime::TokioRuntimeProvider,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpStream, UdpSocket},
};
use trustmail::{
    config::Config,
    dns::{Answer, DnsClient, Lookup},
    domain::{DkimAlgorithm, DkimKey, DkimRole, Geography, txt_strings},
    service::DomainSnapshot,
};

use crate::support::{
    Db, TestApp, backends,
    dns_query::{Transport, ask, txt_strings as strings_of},
};

const ZONE: &str = "useast1.dkim.trustmail.example";

struct DnsApp {
    app: TestApp,
    dns: SocketAddr,
    domain: Arc<DomainSnapshot>,
}

impl DnsApp {
    /// An app serving its DKIM zones on a free port, with one domain.
    async fn start(tweak: impl FnOnce(&mut Config)) -> Self {
        Self::start_on(Db::Sqlite, tweak).await
    }

    async fn start_on(db: Db, tweak: impl FnOnce(&mut Config)) -> Self {
        let app = TestApp::spawn_on(db, |config| {
            config.dkim_dns.listen = "127.0.0.1:0".into();
            tweak(config);
        })
        .await;
        let env = app.environment("Shop").await;
        let id = app.domain(&env, "auth.shopco.test").await;
        let domain = app.email_domain(&env, &id).await;
        let dns = app.dkim_dns.unwrap();
        Self { app, dns, domain }
    }

    async fn keys(&self) -> Vec<DkimKey> {
        self.app.service.dkim_keys(&self.domain).await.unwrap()
    }

    /// Each key's selector answers (over UDP) that key and nothing else.
    async fn assert_serves(&self, keys: &[DkimKey]) {
        for key in keys {
            let response = self
                .ask(&key.fqdn(ZONE), RecordType::TXT, Transport::Udp)
                .await;
            let expected = [vec![key.txt()]];
            assert_eq!(strings_of(&response.answers), expected, "{}", key.selector);
        }
    }

    async fn ask(&self, name: &str, record_type: RecordType, transport: Transport) -> Message {
        ask(self.dns, name, record_type, transport).await
    }
}

/// An authoritative answer whose authority section is the zone's SOA alone.
fn assert_negative(response: &Message, code: ResponseCode, zone: &str) {
    assert_eq!(response.metadata.response_code, code, "{response:?}");
    assert!(response.metadata.authoritative);
    assert!(response.answers.is_empty(), "{response:?}");
    assert_eq!(response.authorities.len(), 1, "{response:?}");
    let soa = &response.authorities[0];
    assert_eq!(soa.record_type(), RecordType::SOA);
    assert_eq!(soa.name.to_ascii(), format!("{zone}."));
}

#[tokio::test]
async fn every_selector_answers_its_key_over_udp_and_tcp() {
    let t = DnsApp::start(|_| {}).await;
    let keys = t.keys().await;
    assert_eq!(keys.len(), 3);
    for key in &keys {
        for transport in [Transport::Udp, Transport::Tcp] {
            let response = t.ask(&key.fqdn(ZONE), RecordType::TXT, transport).await;
            assert_eq!(response.metadata.response_code, ResponseCode::NoError);
            assert!(response.metadata.authoritative, "AA over {transport:?}");
            assert!(!response.metadata.truncation);
            assert_eq!(response.answers.len(), 1);
            let answer = &response.answers[0];
            assert_eq!(answer.name.to_ascii(), format!("{}.", key.fqdn(ZONE)));
            assert_eq!(answer.ttl, 300);
            assert_eq!(
                strings_of(&response.answers),
                [vec![format!("v=DKIM1; k=ed25519; p={}", key.public_key)]]
            );
        }
    }
    // Names compare ignoring case.
    let shouted = keys[0].fqdn(ZONE).to_ascii_uppercase();
    let response = t.ask(&shouted, RecordType::TXT, Transport::Udp).await;
    assert_eq!(strings_of(&response.answers), [vec![keys[0].txt()]]);
}

#[tokio::test]
async fn keys_are_served_from_every_backend() {
    for db in backends("keys_are_served_from_every_backend").await {
        let t = DnsApp::start_on(db, |_| {}).await;
        t.assert_serves(&t.keys().await).await;
    }
}

#[tokio::test]
async fn the_apex_answers_soa_and_ns() {
    let t = DnsApp::start(|_| {}).await;
    let soa = t.ask(ZONE, RecordType::SOA, Transport::Udp).await;
    assert_eq!(soa.metadata.response_code, ResponseCode::NoError);
    assert!(soa.metadata.authoritative);
    let RData::SOA(record) = &soa.answers[0].data else {
        panic!("{soa:?}");
    };
    assert_eq!(record.mname.to_ascii(), format!("ns1.{ZONE}."));
    assert_eq!(record.rname.to_ascii(), format!("hostmaster.{ZONE}."));
    assert_eq!(record.minimum, 300);

    let ns = t.ask(ZONE, RecordType::NS, Transport::Tcp).await;
    assert!(ns.metadata.authoritative);
    let names: Vec<_> = ns
        .answers
        .iter()
        .map(|r| match &r.data {
            RData::NS(ns) => ns.0.to_ascii(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(names, [format!("ns1.{ZONE}.")]);

    let nodata = t.ask(ZONE, RecordType::TXT, Transport::Udp).await;
    assert_negative(&nodata, ResponseCode::NoError, ZONE);
}

#[tokio::test]
async fn configured_nameservers_are_the_zones_ns() {
    let t = DnsApp::start(|c| {
        c.dkim_dns.nameservers = vec!["a.ns.shopco.test".into(), "b.ns.shopco.test.".into()];
    })
    .await;
    let ns = t.ask(ZONE, RecordType::NS, Transport::Udp).await;
    let mut names: Vec<_> = ns
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::NS(ns) => Some(ns.0.to_ascii()),
            _ => None,
        })
        .collect();
    names.sort();
    assert_eq!(names, ["a.ns.shopco.test.", "b.ns.shopco.test."]);
    let soa = t.ask(ZONE, RecordType::SOA, Transport::Udp).await;
    let RData::SOA(record) = &soa.answers[0].data else {
        panic!("{soa:?}");
    };
    assert_eq!(record.mname.to_ascii(), "a.ns.shopco.test.");
}

#[tokio::test]
async fn unknown_names_in_the_zone_are_nxdomain_with_the_soa() {
    let t = DnsApp::start(|_| {}).await;
    let key = &t.keys().await[0];
    for name in [
        format!("nosuchselector.{ZONE}"),
        format!("x.{}", key.fqdn(ZONE)),
        format!("ns1.{ZONE}"),
    ] {
        for transport in [Transport::Udp, Transport::Tcp] {
            let response = t.ask(&name, RecordType::TXT, transport).await;
            assert_negative(&response, ResponseCode::NXDomain, ZONE);
        }
    }
}

#[tokio::test]
async fn another_type_at_a_selector_is_nodata() {
    let t = DnsApp::start(|_| {}).await;
    let key = &t.keys().await[0];
    for record_type in [RecordType::A, RecordType::CNAME, RecordType::MX] {
        let response = t.ask(&key.fqdn(ZONE), record_type, Transport::Udp).await;
        assert_negative(&response, ResponseCode::NoError, ZONE);
    }
}

#[tokio::test]
async fn names_outside_the_zones_are_refused() {
    let t = DnsApp::start(|_| {}).await;
    for name in ["auth.shopco.test", "trustmail.example", "example.com", "."] {
        let response = t.ask(name, RecordType::TXT, Transport::Udp).await;
        assert_eq!(
            response.metadata.response_code,
            ResponseCode::Refused,
            "{name}"
        );
        assert!(!response.metadata.authoritative);
        assert!(response.answers.is_empty() && response.authorities.is_empty());
    }
}

#[tokio::test]
async fn a_selector_asked_in_another_regions_zone_is_nxdomain() {
    let t = DnsApp::start(|c| {
        let mut na = trustmail::config::Region::named("us-east-1");
        na.geographies = vec![Geography::Na];
        let mut rest = trustmail::config::Region::named("eu-west-1");
        rest.geographies = vec![Geography::Eu, Geography::Ca, Geography::Ap];
        c.regions = vec![na, rest];
    })
    .await;
    let key = &t.keys().await[0];
    assert_eq!(key.region, "us-east-1");
    let other_zone = "euwest1.dkim.trustmail.example";
    let response = t
        .ask(&key.fqdn(other_zone), RecordType::TXT, Transport::Udp)
        .await;
    assert_negative(&response, ResponseCode::NXDomain, other_zone);
    // The other region's zone is served all the same.
    let soa = t.ask(other_zone, RecordType::SOA, Transport::Udp).await;
    assert_eq!(soa.answers.len(), 1);
    let own = t
        .ask(&key.fqdn(ZONE), RecordType::TXT, Transport::Udp)
        .await;
    assert_eq!(own.answers.len(), 1);
}

/// A zone name long enough that an RSA key's answer passes 512 bytes.
const LONG_ZONE: &str = "useast1.dkim.keysforcustomermailsigning.at.trustmail.example";

#[tokio::test]
async fn rsa_keys_answer_in_255_byte_strings_over_edns_udp_and_tcp() {
    let t = DnsApp::start(|c| {
        c.dkim.algorithm = DkimAlgorithm::Rsa2048;
        c.regions[0].dkim_zone = LONG_ZONE.into();
    })
    .await;
    let key = &t.keys().await[0];
    let fqdn = key.fqdn(LONG_ZONE);
    assert!(key.txt().starts_with("v=DKIM1; k=rsa; p="));
    let expected: Vec<String> = txt_strings(&key.txt())
        .into_iter()
        .map(str::to_owned)
        .collect();
    assert!(expected.len() > 1);

    for transport in [Transport::UdpEdns(1232), Transport::Tcp] {
        let response = t.ask(&fqdn, RecordType::TXT, transport).await;
        assert!(!response.metadata.truncation, "{transport:?}");
        let strings = strings_of(&response.answers);
        assert_eq!(strings, std::slice::from_ref(&expected), "{transport:?}");
        assert!(strings[0].iter().all(|s| s.len() <= 255));
        assert_eq!(strings[0].concat(), key.txt());
    }
    // Without EDNS a UDP answer stops at 512 bytes, and says so.
    let plain = t.ask(&fqdn, RecordType::TXT, Transport::Udp).await;
    assert!(plain.metadata.truncation, "{plain:?}");

    // trustmail's own DNS client (UDP, then TCP on truncation) reads the whole value.
    let mut config = t.app.config.dns.clone();
    config.resolvers = vec![t.dns.to_string()];
    let client = DnsClient::new(&config).unwrap();
    assert_eq!(
        client.lookup(&fqdn, RecordType::TXT).await,
        Lookup::Answer(vec![Answer::Txt(key.txt())])
    );

    // So does a resolver that speaks only TCP.
    let mut tcp = ConnectionConfig::tcp();
    tcp.port = t.dns.port();
    let servers = vec![NameServerConfig::new(t.dns.ip(), true, vec![tcp])];
    let mut options = ResolverOpts::default();
    options.cache_size = 0;
    let resolver = TokioResolver::builder_with_config(
        ResolverConfig::from_name_servers(servers),
        TokioRuntimeProvider::default(),
    )
    .with_options(options)
    .build()
    .unwrap();
    let lookup = resolver
        .lookup(format!("{fqdn}."), RecordType::TXT)
        .await
        .unwrap();
    assert_eq!(strings_of(lookup.answers()), [expected]);
}

#[tokio::test]
async fn after_a_rotation_the_refreshed_selector_answers_the_new_key() {
    let t = DnsApp::start(|_| {}).await;
    let before = t.keys().await;
    let retired = before
        .iter()
        .find(|k| k.role == DkimRole::Retired)
        .unwrap()
        .clone();
    let answered = t
        .ask(&retired.fqdn(ZONE), RecordType::TXT, Transport::Udp)
        .await;
    assert_eq!(strings_of(&answered.answers), [vec![retired.txt()]]);

    let after = t
        .app
        .service
        .rotate_dkim_keys(None, &t.domain, None)
        .await
        .unwrap();
    let refreshed = after
        .iter()
        .find(|k| k.selector == retired.selector)
        .unwrap();
    assert_eq!(refreshed.role, DkimRole::Published);
    assert_ne!(refreshed.public_key, retired.public_key);
    t.assert_serves(&after).await;
}

#[tokio::test]
async fn keys_are_answered_from_memory_with_the_store_closed() {
    let t = DnsApp::start(|_| {}).await;
    let keys = t.keys().await;
    t.app.store().close().await;
    // No query reaches the store: known keys, unknown names and the apex all still answer.
    t.assert_serves(&keys).await;
    let response = t
        .ask(&keys[0].fqdn(ZONE), RecordType::TXT, Transport::Tcp)
        .await;
    assert_eq!(strings_of(&response.answers), [vec![keys[0].txt()]]);
    let missing = t
        .ask(
            &format!("nosuchselector.{ZONE}"),
            RecordType::TXT,
            Transport::Udp,
        )
        .await;
    assert_negative(&missing, ResponseCode::NXDomain, ZONE);
    let soa = t.ask(ZONE, RecordType::SOA, Transport::Udp).await;
    assert_eq!(soa.metadata.response_code, ResponseCode::NoError);
}

#[tokio::test]
async fn a_rotation_on_another_replica_is_answered_within_the_refresh() {
    for db in backends("a_rotation_on_another_replica_is_answered_within_the_refresh").await {
        let t = DnsApp::start_on(db, |c| c.dkim_dns.refresh_interval_ms = 100).await;
        let replica = t.app.replica().await;
        let replica_dns = replica.dkim_dns.unwrap();
        // The domain was made through the first server; the replica loaded it at start.
        for key in t.keys().await {
            let response = ask(
                replica_dns,
                &key.fqdn(ZONE),
                RecordType::TXT,
                Transport::Udp,
            )
            .await;
            assert_eq!(strings_of(&response.answers), [vec![key.txt()]]);
        }
        let after = t
            .app
            .service
            .rotate_dkim_keys(None, &t.domain, None)
            .await
            .unwrap();
        let fresh = after
            .iter()
            .find(|k| k.role == DkimRole::Published)
            .unwrap();
        let mut answered = Vec::new();
        for _ in 0..100 {
            let response = ask(
                replica_dns,
                &fresh.fqdn(ZONE),
                RecordType::TXT,
                Transport::Udp,
            )
            .await;
            answered = strings_of(&response.answers);
            if answered == [vec![fresh.txt()]] {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(
            answered,
            [vec![fresh.txt()]],
            "the replica never saw the rotation"
        );
        // And a domain deleted on the first server leaves the replica's answers too.
        let env = t.domain.environment_id;
        let token = t.app.admin_token.clone();
        let path = format!("/v1/environments/{env}/emailDomains/{}", t.domain.id);
        assert_eq!(t.app.delete(&path, &token).await.status(), 204);
        let mut code = ResponseCode::NoError;
        for _ in 0..100 {
            let response = ask(
                replica_dns,
                &fresh.fqdn(ZONE),
                RecordType::TXT,
                Transport::Udp,
            )
            .await;
            code = response.metadata.response_code;
            if code == ResponseCode::NXDomain {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(code, ResponseCode::NXDomain);
    }
}

/// One UDP query as bytes, with EDNS advertising 4096 bytes.
fn udp_query(name: &str, record_type: RecordType) -> Vec<u8> {
    let mut message = Message::query();
    message.add_query(Query::query(Name::from_str(name).unwrap(), record_type));
    let mut edns = Edns::new();
    edns.set_max_payload(4096);
    message.set_edns(edns);
    message.to_vec().unwrap()
}

/// Sends `query` from `socket` and returns the answer's bytes.
async fn exchange(socket: &UdpSocket, server: SocketAddr, query: &[u8]) -> Vec<u8> {
    socket.send_to(query, server).await.unwrap();
    let mut buf = vec![0; 65535];
    let (len, _) = tokio::time::timeout(Duration::from_secs(5), socket.recv_from(&mut buf))
        .await
        .expect("an answer")
        .unwrap();
    buf.truncate(len);
    buf
}

#[tokio::test]
async fn answers_are_the_question_plus_the_record_and_no_more() {
    let t = DnsApp::start(|c| c.dkim.algorithm = DkimAlgorithm::Rsa2048).await;
    let key = &t.keys().await[0];
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    // A record's fixed part: its owner as a pointer into the question (2), type, class, TTL
    // and length (10).
    const RECORD: usize = 12;

    let query = udp_query(&key.fqdn(ZONE), RecordType::TXT);
    let answer = exchange(&socket, t.dns, &query).await;
    let rdata: usize = txt_strings(&key.txt()).iter().map(|s| s.len() + 1).sum();
    assert!(
        answer.len() <= query.len() + RECORD + rdata,
        "{} bytes for a {}-byte question and a {rdata}-byte key",
        answer.len(),
        query.len()
    );
    let parsed = Message::from_vec(&answer).unwrap();
    assert_eq!(strings_of(&parsed.answers)[0].concat(), key.txt());
    assert!(parsed.authorities.is_empty() && parsed.additionals.is_empty());

    // A random name: its SOA alone, with both names compressed into the question: `ns1` and
    // `hostmaster` then a pointer each, and five numbers.
    let soa_rdata = (1 + 3 + 2) + (1 + 10 + 2) + 20;
    for name in [
        format!("q7x9k2m4.{ZONE}"),
        format!("Q7x9K2m4.{}", ZONE.to_uppercase()),
    ] {
        let query = udp_query(&name, RecordType::TXT);
        let answer = exchange(&socket, t.dns, &query).await;
        let ratio = answer.len() as f64 / query.len() as f64;
        assert!(
            answer.len() <= query.len() + RECORD + soa_rdata,
            "{} bytes for a {}-byte question ({ratio:.2}x)",
            answer.len(),
            query.len()
        );
        assert!(ratio < 1.8, "{ratio:.2}x");
        assert_negative(
            &Message::from_vec(&answer).unwrap(),
            ResponseCode::NXDomain,
            ZONE,
        );
    }

    // ANY at the apex is one RRset (RFC 8482), not everything there is.
    let query = udp_query(ZONE, RecordType::ANY);
    let any = Message::from_vec(&exchange(&socket, t.dns, &query).await).unwrap();
    assert_eq!(any.answers.len(), 1, "{any:?}");
}

#[tokio::test]
async fn a_flood_from_one_source_is_limited_while_another_is_answered() {
    let t = DnsApp::start(|c| {
        c.dkim_dns.rate_limit_per_source = 10;
        c.dkim_dns.rate_limit_slip = 2;
        // 127.0.0.1 and 127.0.0.2 are then two sources.
        c.dkim_dns.rate_limit_ipv4_prefix = 32;
    })
    .await;
    let key = &t.keys().await[0];
    let query = udp_query(&key.fqdn(ZONE), RecordType::TXT);
    let flood = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    const SENT: usize = 300;
    for _ in 0..SENT {
        flood.send_to(&query, t.dns).await.unwrap();
    }
    let (mut answered, mut truncated) = (0, 0);
    let mut buf = vec![0; 65535];
    while let Ok(Ok((len, _))) =
        tokio::time::timeout(Duration::from_millis(500), flood.recv_from(&mut buf)).await
    {
        let response = Message::from_vec(&buf[..len]).unwrap();
        if response.metadata.truncation {
            assert!(response.answers.is_empty());
            truncated += 1;
        } else {
            assert_eq!(strings_of(&response.answers), [vec![key.txt()]]);
            answered += 1;
        }
    }
    assert!(answered >= 10, "{answered} answered");
    assert!(answered < SENT / 3, "{answered} of {SENT} answered");
    // Every second refused query slips through truncated, so a resolver can retry over TCP.
    assert!(truncated > SENT / 4, "{truncated} truncated");
    assert!(answered + truncated < SENT, "nothing was dropped");

    let other = UdpSocket::bind("127.0.0.2:0").await.unwrap();
    let response = Message::from_vec(&exchange(&other, t.dns, &query).await).unwrap();
    assert!(!response.metadata.truncation);
    assert_eq!(strings_of(&response.answers), [vec![key.txt()]]);
    // TCP is not rate limited per source: the flooding address still gets the key that way.
    let tcp = t
        .ask(&key.fqdn(ZONE), RecordType::TXT, Transport::Tcp)
        .await;
    assert_eq!(strings_of(&tcp.answers), [vec![key.txt()]]);

    let metrics = t
        .app
        .request(reqwest::Method::GET, "/metrics", None, None)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("dkim_dns_dropped_total{reason=\"source_rate\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("dkim_dns_slipped_total"), "{metrics}");
}

/// Writes one length-prefixed query on `stream` and reads the answer, or `None` when the
/// server closed the connection.
async fn tcp_exchange(stream: &mut TcpStream, query: &[u8]) -> Option<Message> {
    let mut frame = u16::try_from(query.len()).unwrap().to_be_bytes().to_vec();
    frame.extend_from_slice(query);
    stream.write_all(&frame).await.ok()?;
    let read = async {
        let len = stream.read_u16().await.ok()?;
        let mut buf = vec![0; usize::from(len)];
        stream.read_exact(&mut buf).await.ok()?;
        Some(Message::from_vec(&buf).unwrap())
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .expect("the server answers or closes")
}

#[tokio::test]
async fn tcp_connections_past_the_cap_are_closed() {
    let t = DnsApp::start(|c| c.dkim_dns.max_tcp_connections = 2).await;
    let key = &t.keys().await[0];
    let query = udp_query(&key.fqdn(ZONE), RecordType::TXT);
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(t.dns).await.unwrap();
        let answer = tcp_exchange(&mut stream, &query).await.expect("answered");
        assert_eq!(strings_of(&answer.answers), [vec![key.txt()]]);
        held.push(stream);
    }
    let mut third = TcpStream::connect(t.dns).await.unwrap();
    assert!(
        tcp_exchange(&mut third, &query).await.is_none(),
        "a third connection was served"
    );
    // The held ones are still served, and a freed place is taken again.
    assert!(tcp_exchange(&mut held[0], &query).await.is_some());
    drop(held.pop());
    let mut served = false;
    for _ in 0..50 {
        let mut stream = TcpStream::connect(t.dns).await.unwrap();
        if tcp_exchange(&mut stream, &query).await.is_some() {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(served, "the freed place was never taken");
}

#[tokio::test]
async fn an_idle_tcp_connection_is_closed() {
    let t = DnsApp::start(|c| c.dkim_dns.tcp_idle_timeout_ms = 200).await;
    let mut stream = TcpStream::connect(t.dns).await.unwrap();
    // Half a length prefix, then nothing.
    stream.write_all(&[0]).await.unwrap();
    let mut buf = [0; 1];
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
        .await
        .expect("the server closes an idle connection");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
}

#[tokio::test]
async fn in_zone_name_servers_answer_their_configured_addresses() {
    let t = DnsApp::start(|c| {
        c.dkim_dns.nameserver_addresses = vec!["192.0.2.53".into(), "2001:db8::53".into()];
    })
    .await;
    let ns = format!("ns1.{ZONE}");
    let a = t.ask(&ns, RecordType::A, Transport::Udp).await;
    assert!(a.metadata.authoritative);
    assert!(
        matches!(&a.answers[..], [r] if r.data == RData::A(hickory_proto::rr::rdata::A("192.0.2.53".parse().unwrap()))),
        "{a:?}"
    );
    let aaaa = t.ask(&ns, RecordType::AAAA, Transport::Udp).await;
    assert_eq!(aaaa.answers.len(), 1, "{aaaa:?}");
    let txt = t.ask(&ns, RecordType::TXT, Transport::Udp).await;
    assert_negative(&txt, ResponseCode::NoError, ZONE);
}

#[tokio::test]
async fn without_a_listen_address_there_is_no_dns() {
    let app = TestApp::spawn().await;
    assert_eq!(app.dkim_dns, None);
}
