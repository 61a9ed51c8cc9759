//! trustmail's DNS client against the in-process test DNS: the transport it uses for the
//! configured resolvers (pipelined TCP on long-lived connections), and what survives a closed
//! connection.

use futures_util::future::join_all;
use hickory_proto::rr::RecordType;
use hickory_resolver::net::xfer::Protocol;
use std::collections::HashSet;
use trustmail::{
    config::{Config, DnsTransport},
    dns::{Answer, DnsClient, Lookup},
};

use crate::support::TestDns;

fn client(dns: &TestDns) -> DnsClient {
    let mut config = Config::default().dns;
    config.resolvers = vec![dns.resolver()];
    config.timeout_ms = 2000;
    config.transport = DnsTransport::Tcp;
    DnsClient::new(&config).unwrap()
}

fn value(v: &str) -> Lookup {
    Lookup::Answer(vec![Answer::Txt(v.to_owned())])
}

#[tokio::test]
async fn lookups_to_a_configured_resolver_share_a_few_tcp_connections() {
    let dns = TestDns::start().await;
    dns.add_txt("r.shopco.test", &["v"]);
    let client = client(&dns);

    // 200 at once (different names: the resolver asks once for lookups of the same name in
    // flight together), then 20 one after the other.
    let names: Vec<String> = (0..200).map(|i| format!("q{i}.shopco.test")).collect();
    let at_once = join_all(names.iter().map(|n| client.lookup(n, RecordType::TXT))).await;
    let nx = Lookup::NxDomain {
        zone: Some("shopco.test".into()),
    };
    assert!(at_once.iter().all(|l| *l == nx), "{at_once:?}");
    for _ in 0..20 {
        assert_eq!(
            client.lookup("r.shopco.test", RecordType::TXT).await,
            value("v")
        );
    }

    let asked = dns.asked();
    assert_eq!(asked.len(), 220);
    assert!(
        asked.iter().all(|a| a.protocol == Protocol::Tcp),
        "{asked:?}"
    );
    let connections: HashSet<_> = asked.iter().map(|a| a.from).collect();
    assert!(
        connections.len() <= 2,
        "220 queries over {} connections",
        connections.len()
    );
}

#[tokio::test]
async fn a_closed_connection_is_made_again_on_the_next_query() {
    let dns = TestDns::start().await;
    dns.add_txt("r.shopco.test", &["v"]);
    let client = client(&dns);
    for _ in 0..4 {
        assert_eq!(
            client.lookup("r.shopco.test", RecordType::TXT).await,
            value("v")
        );
    }
    let before: HashSet<_> = dns.asked().iter().map(|a| a.from).collect();

    // The server goes away and comes back: its end of every connection is closed.
    dns.restart().await;
    for _ in 0..4 {
        assert_eq!(
            client.lookup("r.shopco.test", RecordType::TXT).await,
            value("v")
        );
    }
    let after: HashSet<_> = dns.asked()[4..].iter().map(|a| a.from).collect();
    assert!(before.is_disjoint(&after), "{before:?} {after:?}");

    // While it is down, a lookup fails (temporarily), and works again once it is back.
    dns.stop().await;
    assert!(matches!(
        client.lookup("r.shopco.test", RecordType::TXT).await,
        Lookup::Failed(_)
    ));
    dns.restart().await;
    assert_eq!(
        client.lookup("r.shopco.test", RecordType::TXT).await,
        value("v")
    );
}

#[tokio::test]
async fn over_tcp_negative_answers_keep_their_zone_and_cname_chains_their_links() {
    let dns = TestDns::start().await;
    dns.add_mx("m.shopco.test", 10, "mx.shopco.test");
    dns.add_cname("c.shopco.test", "t.shopco.test");
    dns.add_txt("t.shopco.test", &["v"]);
    let client = client(&dns);

    assert_eq!(
        client.lookup("m.shopco.test", RecordType::TXT).await,
        Lookup::NoData {
            zone: Some("shopco.test".into())
        }
    );
    assert_eq!(
        client.lookup("nothing.shopco.test", RecordType::TXT).await,
        Lookup::NxDomain {
            zone: Some("shopco.test".into())
        }
    );
    assert_eq!(
        client.lookup("c.shopco.test", RecordType::TXT).await,
        Lookup::Answer(vec![
            Answer::Cname {
                name: "c.shopco.test.".into(),
                target: "t.shopco.test.".into()
            },
            Answer::Txt("v".into())
        ])
    );
}
