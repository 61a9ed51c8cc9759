//! What a query gets: the configured zones' apex records, `<selector>.<zone>` TXT from the
//! in-memory copy of the keys, and answers no larger than the question plus what it asked for.
//! Names in an answer are the question's own (its case included), so every one compresses to a
//! pointer into the question.

use std::{net::IpAddr, str::FromStr};

use hickory_server::proto::{
    op::{Edns, Message, MessageType, OpCode, Query, ResponseCode},
    rr::{
        DNSClass, LowerName, Name, RData, Record, RecordType,
        rdata::{A, AAAA, NS, SOA, TXT},
    },
};

use super::DkimDnsError;
use crate::{
    domain::{DKIM_ZONE_TTL, DkimZone, txt_strings},
    service::PublishedKeys,
};

/// The UDP payload trustmail says it accepts (the size DNS Flag Day 2020 settled on).
const OUR_PAYLOAD: u16 = 1232;
/// A UDP answer never grows past this, whatever the client advertises.
const MAX_UDP_ANSWER: usize = 4096;

fn dns_name(name: &str) -> Result<Name, DkimDnsError> {
    Name::from_str(&format!("{}.", name.trim_end_matches('.')))
        .map_err(|_| DkimDnsError::BadName(name.to_owned()))
}

/// One configured DKIM zone, its apex data built once.
struct Zone {
    origin: LowerName,
    /// The regions whose keys it publishes (usually one).
    regions: Vec<String>,
    soa: SOA,
    nameservers: Vec<Name>,
    /// In-zone NS names, answered with `addresses` (their glue).
    hosts: Vec<LowerName>,
    addresses: Vec<IpAddr>,
}

impl Zone {
    fn new(zone: &DkimZone, region: &str) -> Result<Self, DkimDnsError> {
        let soa = zone.soa();
        let soa = SOA::new(
            dns_name(&soa.mname)?,
            dns_name(&soa.rname)?,
            soa.serial,
            soa.refresh,
            soa.retry,
            soa.expire,
            soa.minimum,
        );
        let nameservers = zone
            .nameservers
            .iter()
            .map(|n| dns_name(n))
            .collect::<Result<_, _>>()?;
        let hosts = zone
            .glue()
            .into_iter()
            .map(|(host, _)| dns_name(&host).map(|n| LowerName::new(&n)))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            origin: LowerName::new(&dns_name(&zone.origin)?),
            regions: vec![region.to_owned()],
            soa,
            nameservers,
            hosts,
            addresses: zone.addresses.clone(),
        })
    }
}

/// The zones trustmail serves.
pub(super) struct Zones(Vec<Zone>);

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
        ResponseCode::FormErr => "FORMERR",
        ResponseCode::NotImp => "NOTIMP",
        ResponseCode::BADVERS => "BADVERS",
        _ => "OTHER",
    }
}

/// A request worth answering: a query, not a response (answering those would let two servers
/// bounce packets between them).
pub(super) fn parse(bytes: &[u8]) -> Option<Message> {
    Message::from_vec(bytes)
        .ok()
        .filter(|m| m.metadata.message_type == MessageType::Query)
}

/// The header and question of `request` with TC set and nothing else: what a client over its
/// source's rate limit gets now and then, so that a real resolver retries over TCP.
pub(super) fn truncated(request: &Message) -> Option<Vec<u8>> {
    let mut response = Message::response(request.metadata.id, request.metadata.op_code);
    response.metadata.truncation = true;
    response.metadata.recursion_desired = request.metadata.recursion_desired;
    response.add_queries(request.queries.iter().cloned());
    response.to_vec().ok()
}

impl Zones {
    pub(super) fn new(
        zones: impl IntoIterator<Item = (DkimZone, String)>,
    ) -> Result<Self, DkimDnsError> {
        let mut all: Vec<Zone> = Vec::new();
        for (zone, region) in zones {
            let zone = Zone::new(&zone, &region)?;
            match all.iter_mut().find(|z| z.origin == zone.origin) {
                // Regions may share a zone: it then publishes the keys of each.
                Some(shared) => shared.regions.push(region),
                None => all.push(zone),
            }
        }
        Ok(Self(all))
    }

    /// The zone a name lies in: the most specific, should one zone contain another.
    fn zone_of(&self, name: &LowerName) -> Option<&Zone> {
        self.0
            .iter()
            .filter(|z| z.origin.zone_of(name))
            .max_by_key(|z| z.origin.num_labels())
    }

    /// The wire answer to `request`; `udp` caps its size at what the client takes (TC beyond).
    pub(super) fn answer(
        &self,
        keys: &PublishedKeys,
        request: &Message,
        udp: bool,
    ) -> Option<Vec<u8>> {
        let outcome = if request.edns.as_ref().is_some_and(|e| e.version() > 0) {
            Outcome::Error(ResponseCode::BADVERS)
        } else if request.metadata.op_code != OpCode::Query {
            Outcome::Error(ResponseCode::NotImp)
        } else if let [query] = request.queries.as_slice() {
            self.outcome(keys, query)
        } else {
            Outcome::Error(ResponseCode::FormErr)
        };
        let code = outcome.code();
        metrics::counter!("dkim_dns_queries_total", "rcode" => rcode_label(code)).increment(1);
        let mut response = Message::response(request.metadata.id, request.metadata.op_code);
        response.metadata.response_code = code;
        response.metadata.recursion_desired = request.metadata.recursion_desired;
        response.metadata.authoritative =
            matches!(code, ResponseCode::NoError | ResponseCode::NXDomain);
        // The question is echoed only when it is one (FORMERR and NOTIMP carry none).
        if request.queries.len() == 1 {
            response.add_queries(request.queries.iter().cloned());
        }
        let mut limit = 512;
        if let Some(asked) = &request.edns {
            let mut edns = Edns::new();
            edns.set_max_payload(OUR_PAYLOAD);
            edns.set_version(0);
            edns.set_rcode_high(code.high());
            response.set_edns(edns);
            limit = usize::from(asked.max_payload()).clamp(512, MAX_UDP_ANSWER);
        }
        match outcome {
            Outcome::Answer(records) => response.insert_answers(records),
            Outcome::NoData(soa) | Outcome::NxDomain(soa) => response.insert_authorities(vec![soa]),
            Outcome::Error(_) => {}
        }
        let bytes = response.to_vec().ok()?;
        if udp && bytes.len() > limit {
            return response.truncate().to_vec().ok();
        }
        Some(bytes)
    }

    fn outcome(&self, keys: &PublishedKeys, query: &Query) -> Outcome {
        if query.query_class() != DNSClass::IN {
            return Outcome::Error(ResponseCode::Refused);
        }
        let asked = query.name();
        let name = LowerName::new(asked);
        let Some(zone) = self.zone_of(&name) else {
            return Outcome::Error(ResponseCode::Refused);
        };
        // The apex as the question spells it, so that its records compress into the question.
        let apex = asked.trim_to(usize::from(zone.origin.num_labels()));
        let soa = Record::from_rdata(apex.clone(), DKIM_ZONE_TTL, RData::SOA(zone.soa.clone()));
        let qtype = query.query_type();
        let record = |data| Record::from_rdata(asked.clone(), DKIM_ZONE_TTL, data);
        let records: Vec<Record> = if name == zone.origin {
            match qtype {
                // ANY gets one RRset, as RFC 8482 allows: the smallest.
                RecordType::SOA | RecordType::ANY => vec![soa.clone()],
                RecordType::NS => zone
                    .nameservers
                    .iter()
                    .map(|n| record(RData::NS(NS(n.clone()))))
                    .collect(),
                _ => Vec::new(),
            }
        } else if zone.hosts.contains(&name) {
            zone.addresses
                .iter()
                .filter_map(|address| match (address, qtype) {
                    (&IpAddr::V4(v4), RecordType::A | RecordType::ANY) => {
                        Some(record(RData::A(A(v4))))
                    }
                    (&IpAddr::V6(v6), RecordType::AAAA | RecordType::ANY) => {
                        Some(record(RData::AAAA(AAAA(v6))))
                    }
                    _ => None,
                })
                .collect()
        } else {
            // Only `<selector>.<zone>` exists below the apex.
            let selector = (name.num_labels() == zone.origin.num_labels() + 1)
                .then(|| asked.iter().next())
                .flatten()
                .and_then(|label| std::str::from_utf8(label).ok())
                .map(str::to_ascii_lowercase);
            let key = selector
                .and_then(|s: String| keys.get(&s))
                .filter(|k| zone.regions.contains(&k.region));
            let Some(key) = key else {
                return Outcome::NxDomain(soa);
            };
            if matches!(qtype, RecordType::TXT | RecordType::ANY) {
                let strings = txt_strings(&key.txt)
                    .into_iter()
                    .map(str::to_owned)
                    .collect();
                vec![record(RData::TXT(TXT::new(strings)))]
            } else {
                Vec::new()
            }
        };
        if records.is_empty() {
            Outcome::NoData(soa)
        } else {
            Outcome::Answer(records)
        }
    }
}
