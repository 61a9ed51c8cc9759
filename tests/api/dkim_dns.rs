//! trustmail's own DNS for the DKIM zones (`[dkim_dns] listen`): keys as TXT at
//! `<selector>.<dkim_zone>`, SOA and NS at the apex, the right negative answers, UDP and TCP.

use std::{net::SocketAddr, sync::Arc};

use hickory_proto::{
    op::{Message, ResponseCode},
    rr::{RData, RecordType},
};
use hickory_resolver::{
    TokioResolver,
    config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts},
    net::runtime::TokioRuntimeProvider,
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
async fn a_store_that_fails_answers_servfail() {
    let t = DnsApp::start(|_| {}).await;
    let key = &t.keys().await[0];
    t.app.store().close().await;
    let response = t
        .ask(&key.fqdn(ZONE), RecordType::TXT, Transport::Udp)
        .await;
    assert_eq!(response.metadata.response_code, ResponseCode::ServFail);
    assert!(response.answers.is_empty());
    // The apex needs no store.
    let soa = t.ask(ZONE, RecordType::SOA, Transport::Udp).await;
    assert_eq!(soa.metadata.response_code, ResponseCode::NoError);
}

#[tokio::test]
async fn without_a_listen_address_there_is_no_dns() {
    let app = TestApp::spawn().await;
    assert_eq!(app.dkim_dns, None);
}
