//! trustmail's DNS client against the in-process test DNS (and, for forged answers, a resolver
//! made by hand): the sockets it shares with the configured resolvers over each transport, what
//! survives a closed connection or a restarted server, and which answers it refuses.

use std::{
    collections::{HashMap, HashSet},
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use futures_util::future::join_all;
use hickory_proto::{
    op::{Message, OpCode, Query},
    rr::{Name, RData, Record, RecordType, rdata::TXT},
};
use hickory_resolver::net::xfer::Protocol;
use tokio::net::UdpSocket;
use trustmail::{
    config::{Config, DnsTransport},
    dns::{
        Answer, DnsClient, Lookup, TCP_CONNECTIONS_PER_RESOLVER, UDP_IN_FLIGHT_PER_RESOLVER,
        UDP_QUERIES_PER_SOCKET, UDP_SOCKETS_PER_RESOLVER,
    },
};

use crate::support::TestDns;

fn client_for(resolver: String, transport: DnsTransport, timeout_ms: u64) -> DnsClient {
    let mut config = Config::default().dns;
    config.resolvers = vec![resolver];
    config.timeout_ms = timeout_ms;
    config.transport = transport;
    DnsClient::new(&config).unwrap()
}

fn client(dns: &TestDns, transport: DnsTransport) -> DnsClient {
    client_for(dns.resolver(), transport, 2000)
}

fn value(v: &str) -> Lookup {
    Lookup::Answer(vec![Answer::Txt(v.to_owned())])
}

/// 200 lookups at once (different names: the resolver asks once for lookups of the same name
/// in flight together), then 20 one after the other: all over `protocol`, from at most `most`
/// sockets.
async fn lookups_share_a_few_sockets(transport: DnsTransport, protocol: Protocol, most: usize) {
    let dns = TestDns::start().await;
    dns.add_txt("r.shopco.test", &["v"]);
    let client = client(&dns, transport);

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
    assert!(asked.iter().all(|a| a.protocol == protocol), "{asked:?}");
    let sockets: HashSet<_> = asked.iter().map(|a| a.from).collect();
    assert!(
        sockets.len() <= most,
        "220 queries from {} sockets",
        sockets.len()
    );
}

#[tokio::test]
async fn lookups_to_a_configured_resolver_share_a_few_udp_sockets() {
    lookups_share_a_few_sockets(DnsTransport::Udp, Protocol::Udp, UDP_SOCKETS_PER_RESOLVER).await;
}

#[tokio::test]
async fn over_tcp_lookups_to_a_configured_resolver_share_a_few_connections() {
    lookups_share_a_few_sockets(
        DnsTransport::Tcp,
        Protocol::Tcp,
        TCP_CONNECTIONS_PER_RESOLVER,
    )
    .await;
}

#[tokio::test]
async fn a_udp_socket_is_replaced_by_one_on_another_port_once_used_up() {
    let dns = TestDns::start().await;
    dns.add_txt("r.shopco.test", &["v"]);
    let client = client(&dns, DnsTransport::Udp);
    let total = UDP_SOCKETS_PER_RESOLVER * UDP_QUERIES_PER_SOCKET * 2 + 10;
    for _ in 0..total {
        assert_eq!(
            client.lookup("r.shopco.test", RecordType::TXT).await,
            value("v")
        );
    }
    let mut per_port: HashMap<SocketAddr, usize> = HashMap::new();
    for asked in dns.asked() {
        *per_port.entry(asked.from).or_default() += 1;
    }
    assert!(
        per_port.len() > 2 * UDP_SOCKETS_PER_RESOLVER,
        "{total} queries from {} ports",
        per_port.len()
    );
    assert!(
        per_port.values().all(|&n| n <= UDP_QUERIES_PER_SOCKET),
        "{per_port:?}"
    );
}

#[tokio::test]
async fn over_udp_a_truncated_answer_is_asked_again_over_tcp() {
    let dns = TestDns::start().await;
    let long: Vec<String> = (0..8).map(|i| format!("{i}").repeat(250)).collect();
    let strings: Vec<&str> = long.iter().map(String::as_str).collect();
    dns.add_txt("big.shopco.test", &strings);
    let client = client(&dns, DnsTransport::Udp);

    assert_eq!(
        client.lookup("big.shopco.test", RecordType::TXT).await,
        value(&long.concat())
    );
    let protocols: Vec<Protocol> = dns.asked().iter().map(|a| a.protocol).collect();
    assert_eq!(protocols, [Protocol::Udp, Protocol::Tcp]);
}

/// More slow lookups than may be in flight at once (a tenant whose DNS answers late) do not
/// make another lookup wait for their answers: a query stops counting against the resolver's
/// share once it is older than the burst window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_udp_slow_lookups_do_not_hold_up_the_others() {
    let dns = TestDns::start().await;
    dns.add_txt("r.shopco.test", &["v"]);
    dns.slow("slow.shopco.test", Duration::from_millis(1500));
    let client = client(&dns, DnsTransport::Udp);
    let slow_answered = Arc::new(AtomicUsize::new(0));
    let slow: Vec<_> = (0..2 * UDP_IN_FLIGHT_PER_RESOLVER)
        .map(|i| {
            let client = client.clone();
            let slow_answered = slow_answered.clone();
            tokio::spawn(async move {
                let found = client
                    .lookup(&format!("q{i}.slow.shopco.test"), RecordType::TXT)
                    .await;
                slow_answered.fetch_add(1, Ordering::SeqCst);
                found
            })
        })
        .collect();
    // Let the slow ones take every place first.
    while dns.asked().len() < UDP_IN_FLIGHT_PER_RESOLVER {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    assert_eq!(
        client.lookup("r.shopco.test", RecordType::TXT).await,
        value("v")
    );
    assert_eq!(
        slow_answered.load(Ordering::SeqCst),
        0,
        "the lookup waited for slow answers"
    );
    for found in join_all(slow).await {
        assert!(matches!(found.unwrap(), Lookup::NxDomain { .. }));
    }
}

#[tokio::test]
async fn over_tcp_a_closed_connection_is_made_again_on_the_next_query() {
    let dns = TestDns::start().await;
    dns.add_txt("r.shopco.test", &["v"]);
    let client = client(&dns, DnsTransport::Tcp);
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
}

/// While the server is down a lookup fails (temporarily), and works again once it is back.
async fn a_server_down_fails_lookups_until_it_is_back(transport: DnsTransport) {
    let dns = TestDns::start().await;
    dns.add_txt("r.shopco.test", &["v"]);
    let client = client_for(dns.resolver(), transport, 500);
    assert_eq!(
        client.lookup("r.shopco.test", RecordType::TXT).await,
        value("v")
    );
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
async fn over_udp_a_server_down_fails_lookups_until_it_is_back() {
    a_server_down_fails_lookups_until_it_is_back(DnsTransport::Udp).await;
}

#[tokio::test]
async fn over_tcp_a_server_down_fails_lookups_until_it_is_back() {
    a_server_down_fails_lookups_until_it_is_back(DnsTransport::Tcp).await;
}

async fn negative_answers_keep_their_zone_and_cname_chains_their_links(transport: DnsTransport) {
    let dns = TestDns::start().await;
    dns.add_mx("m.shopco.test", 10, "mx.shopco.test");
    dns.add_cname("c.shopco.test", "t.shopco.test");
    dns.add_txt("t.shopco.test", &["v"]);
    let client = client(&dns, transport);

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

#[tokio::test]
async fn over_udp_negative_answers_keep_their_zone_and_cname_chains_their_links() {
    negative_answers_keep_their_zone_and_cname_chains_their_links(DnsTransport::Udp).await;
}

#[tokio::test]
async fn over_tcp_negative_answers_keep_their_zone_and_cname_chains_their_links() {
    negative_answers_keep_their_zone_and_cname_chains_their_links(DnsTransport::Tcp).await;
}

/// An answer to `query` (with its id) for `name`, holding one TXT record `text`.
fn txt_answer(query: &Message, name: &str, text: &str) -> Vec<u8> {
    let name = Name::from_ascii(name).unwrap();
    let mut answer = Message::response(query.metadata.id, OpCode::Query);
    answer.add_query(Query::query(name.clone(), RecordType::TXT));
    answer.add_answer(Record::from_rdata(
        name,
        60,
        RData::TXT(TXT::new(vec![text.to_owned()])),
    ));
    answer.to_vec().unwrap()
}

/// A resolver made by hand on 127.0.0.1: it receives one query and answers it with `answer`,
/// which sends what it likes from the resolver's socket or another.
async fn hand_made_resolver<F, Fut>(answer: F) -> SocketAddr
where
    F: FnOnce(UdpSocket, SocketAddr, Message) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let address = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buffer = [0u8; 4096];
        let (len, client) = socket.recv_from(&mut buffer).await.unwrap();
        let query = Message::from_vec(&buffer[..len]).unwrap();
        answer(socket, client, query).await;
    });
    address
}

#[tokio::test]
async fn over_udp_an_answer_from_another_address_is_ignored() {
    let resolver = hand_made_resolver(|socket, client, query| async move {
        // A forger on another port answers first, with the right id and question.
        let forger = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        forger
            .send_to(&txt_answer(&query, "r.shopco.test.", "forged"), client)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        socket
            .send_to(&txt_answer(&query, "r.shopco.test.", "v"), client)
            .await
            .unwrap();
    })
    .await;
    let client = client_for(resolver.to_string(), DnsTransport::Udp, 2000);
    assert_eq!(
        client.lookup("r.shopco.test", RecordType::TXT).await,
        value("v")
    );
}

#[tokio::test]
async fn over_udp_an_answer_for_another_question_fails_the_lookup() {
    let resolver = hand_made_resolver(|socket, client, query| async move {
        socket
            .send_to(&txt_answer(&query, "other.shopco.test.", "forged"), client)
            .await
            .unwrap();
    })
    .await;
    let client = client_for(resolver.to_string(), DnsTransport::Udp, 2000);
    // Taken as an answer, it would read as "no TXT record at r.shopco.test" (a verdict); refused,
    // the lookup fails, which is temporary.
    let found = client.lookup("r.shopco.test", RecordType::TXT).await;
    assert!(matches!(&found, Lookup::Failed(_)), "{found:?}");
}

/// Far more lookups at once than the sockets carry: those beyond their share wait their turn;
/// none is refused by a full outgoing queue or lost to a full receive buffer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_udp_thousands_of_lookups_at_once_are_all_answered() {
    let dns = TestDns::start().await;
    dns.add_txt("r.shopco.test", &["v"]);
    let client = client(&dns, DnsTransport::Udp);
    let names: Vec<String> = (0..3000).map(|i| format!("q{i}.shopco.test")).collect();
    let at_once = join_all(names.iter().map(|n| {
        let client = client.clone();
        let n = n.clone();
        tokio::spawn(async move { client.lookup(&n, RecordType::TXT).await })
    }))
    .await;
    let mut failed: HashMap<String, usize> = HashMap::new();
    for l in at_once {
        if let Lookup::Failed(why) = l.unwrap() {
            *failed.entry(why).or_default() += 1;
        }
    }
    assert!(failed.is_empty(), "{failed:?}");
}
