//! Zone data as trustmail writes it: TXT values as zone-file strings, and a region's DKIM zone
//! (SOA, NS, one TXT per key), which trustmail's DNS serves and `trustmail dkim zone-file`
//! prints.

use std::net::IpAddr;

use super::DkimKey;

/// Seconds a resolver may keep any answer from a DKIM zone: short, so a rotation shows quickly.
pub const DKIM_ZONE_TTL: u32 = 300;

/// A region's DKIM zone: where `<selector>.<zone>` TXT records publish the keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkimZone {
    /// The zone's name, lowercase, without the trailing dot.
    pub origin: String,
    /// The names in its NS records (and the SOA's primary), without trailing dots.
    pub nameservers: Vec<String>,
    /// The addresses of those names that lie inside the zone (their A/AAAA, the zone's glue).
    pub addresses: Vec<IpAddr>,
}

/// A zone BIND would refuse: NS names inside it with no address to go with them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the DKIM zone {origin} names {} as its name server, inside the zone, but has no address \
     for it: set dkim_dns.nameserver_addresses to its IP addresses, or dkim_dns.nameservers to \
     host names outside the zone",
    hosts.join(", ")
)]
pub struct MissingGlue {
    pub origin: String,
    pub hosts: Vec<String>,
}

/// The fields of the zone's SOA record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneSoa {
    pub mname: String,
    pub rname: String,
    pub serial: u32,
    pub refresh: i32,
    pub retry: i32,
    pub expire: i32,
    /// The negative-answer TTL (RFC 2308).
    pub minimum: u32,
}

impl DkimZone {
    /// `nameservers` empty means `ns1.<origin>`.
    pub fn new(origin: &str, nameservers: &[String], addresses: &[IpAddr]) -> Self {
        let clean = |name: &str| name.trim_end_matches('.').to_ascii_lowercase();
        let origin = clean(origin);
        let nameservers = if nameservers.is_empty() {
            vec![format!("ns1.{origin}")]
        } else {
            nameservers.iter().map(|n| clean(n)).collect()
        };
        Self {
            origin,
            nameservers,
            addresses: addresses.to_vec(),
        }
    }

    /// The NS names inside the zone: they need address records in it.
    pub fn in_zone_nameservers(&self) -> Vec<&str> {
        let suffix = format!(".{}", self.origin);
        self.nameservers
            .iter()
            .filter(|n| n.ends_with(&suffix) || **n == self.origin)
            .map(String::as_str)
            .collect()
    }

    /// Every in-zone NS name with its addresses; none when no address is configured (the names
    /// then do not exist in the zone).
    pub fn glue(&self) -> Vec<(String, Vec<IpAddr>)> {
        if self.addresses.is_empty() {
            return Vec::new();
        }
        self.in_zone_nameservers()
            .into_iter()
            .map(|host| (host.to_owned(), self.addresses.clone()))
            .collect()
    }

    /// Whether BIND would load the zone: every in-zone NS name has an address record.
    pub fn check(&self) -> Result<(), MissingGlue> {
        let hosts = self.in_zone_nameservers();
        if hosts.is_empty() || !self.addresses.is_empty() {
            return Ok(());
        }
        Err(MissingGlue {
            origin: self.origin.clone(),
            hosts: hosts.into_iter().map(str::to_owned).collect(),
        })
    }

    pub fn soa(&self) -> ZoneSoa {
        ZoneSoa {
            mname: self
                .nameservers
                .first()
                .cloned()
                .unwrap_or_else(|| format!("ns1.{}", self.origin)),
            rname: format!("hostmaster.{}", self.origin),
            // Every replica answers from one store and nothing transfers the zone, so the serial
            // never has to move.
            serial: 1,
            refresh: 3600,
            retry: 600,
            expire: 86400,
            minimum: DKIM_ZONE_TTL,
        }
    }

    /// The zone as a BIND zone file, with one TXT record per key and the A/AAAA of in-zone NS
    /// names (see `check`: without them BIND refuses the zone).
    pub fn zone_file(&self, keys: &[DkimKey]) -> String {
        let soa = self.soa();
        let mut out = format!(
            "; DKIM keys trustmail publishes in {origin}\n\
             $ORIGIN {origin}.\n\
             $TTL {DKIM_ZONE_TTL}\n\
             @ IN SOA {}. {}. ( {} {} {} {} {} )\n",
            soa.mname,
            soa.rname,
            soa.serial,
            soa.refresh,
            soa.retry,
            soa.expire,
            soa.minimum,
            origin = self.origin,
        );
        for nameserver in &self.nameservers {
            out.push_str(&format!("@ IN NS {nameserver}.\n"));
        }
        for (host, addresses) in self.glue() {
            for address in addresses {
                let kind = if address.is_ipv4() { "A" } else { "AAAA" };
                out.push_str(&format!("{host}. IN {kind} {address}\n"));
            }
        }
        for key in keys {
            out.push_str(&format!(
                "{} IN TXT {}\n",
                key.selector,
                zone_txt(&key.txt())
            ));
        }
        out
    }
}

/// A TXT value as zone-file character strings: quoted, escaped, at most 255 bytes each.
pub fn zone_txt(value: &str) -> String {
    value
        .as_bytes()
        .chunks(255)
        .map(|chunk| {
            let mut quoted = String::from("\"");
            for &b in chunk {
                match b {
                    b'"' | b'\\' => {
                        quoted.push('\\');
                        quoted.push(char::from(b));
                    }
                    0x20..=0x7e => quoted.push(char::from(b)),
                    other => quoted.push_str(&format!("\\{other:03}")),
                }
            }
            quoted.push('"');
            quoted
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_txt_values_split_into_255_byte_strings() {
        let value = "a".repeat(300);
        let out = zone_txt(&value);
        assert_eq!(
            out,
            format!("\"{}\" \"{}\"", "a".repeat(255), "a".repeat(45))
        );
        assert_eq!(zone_txt("say \"hi\""), "\"say \\\"hi\\\"\"");
    }

    #[test]
    fn nameservers_default_to_ns1_in_the_zone() {
        let zone = DkimZone::new("DKIM.Example.", &[], &[]);
        assert_eq!(zone.origin, "dkim.example");
        assert_eq!(zone.nameservers, ["ns1.dkim.example"]);
        assert_eq!(zone.soa().mname, "ns1.dkim.example");
        let zone = DkimZone::new(
            "dkim.example",
            &["a.ns.test.".into(), "b.ns.test".into()],
            &[],
        );
        assert_eq!(zone.nameservers, ["a.ns.test", "b.ns.test"]);
        let file = zone.zone_file(&[]);
        assert!(file.contains("$ORIGIN dkim.example.\n"), "{file}");
        assert!(file.contains("@ IN SOA a.ns.test. hostmaster.dkim.example. ( 1 "));
        assert!(file.contains("@ IN NS b.ns.test.\n"));
    }

    /// The owner names of `file`'s records of `kind`, absolute and lowercase.
    fn owners(file: &str, origin: &str, kind: &str) -> Vec<String> {
        file.lines()
            .filter(|l| !l.starts_with(';') && !l.starts_with('$'))
            .filter_map(|l| {
                let fields: Vec<&str> = l.split_whitespace().collect();
                (fields.get(2) == Some(&kind)).then(|| match fields[0] {
                    "@" => format!("{origin}."),
                    name if name.ends_with('.') => name.to_ascii_lowercase(),
                    name => format!("{}.{origin}.", name.to_ascii_lowercase()),
                })
            })
            .collect()
    }

    /// named-checkzone's rule, without BIND: an NS target inside the zone has an address there.
    fn in_zone_ns_targets_without_address(file: &str, origin: &str) -> Vec<String> {
        let addressed: Vec<String> =
            [owners(file, origin, "A"), owners(file, origin, "AAAA")].concat();
        file.lines()
            .filter_map(|l| {
                let fields: Vec<&str> = l.split_whitespace().collect();
                (fields.get(2) == Some(&"NS")).then(|| fields[3].to_ascii_lowercase())
            })
            .filter(|target| {
                target.ends_with(&format!(".{origin}.")) || *target == format!("{origin}.")
            })
            .filter(|target| !addressed.contains(target))
            .collect()
    }

    #[test]
    fn in_zone_name_servers_get_their_addresses_in_the_zone() {
        let origin = "useast1.dkim.example";
        let addresses: Vec<IpAddr> = vec![
            "192.0.2.53".parse().unwrap(),
            "2001:db8::53".parse().unwrap(),
        ];
        let zone = DkimZone::new(origin, &[], &addresses);
        assert_eq!(zone.check(), Ok(()));
        let file = zone.zone_file(&[]);
        assert_eq!(
            in_zone_ns_targets_without_address(&file, origin),
            Vec::<String>::new(),
            "{file}"
        );
        assert!(
            file.contains(&format!("ns1.{origin}. IN A 192.0.2.53\n")),
            "{file}"
        );
        assert!(
            file.contains(&format!("ns1.{origin}. IN AAAA 2001:db8::53\n")),
            "{file}"
        );

        // Without addresses the default in-zone NS has none: such a zone is refused, by name.
        let bare = DkimZone::new(origin, &[], &[]);
        let missing = in_zone_ns_targets_without_address(&bare.zone_file(&[]), origin);
        assert_eq!(missing, [format!("ns1.{origin}.")]);
        let err = bare.check().unwrap_err().to_string();
        assert!(err.contains("dkim_dns.nameserver_addresses"), "{err}");
        assert!(err.contains("dkim_dns.nameservers"), "{err}");

        // NS names outside the zone need nothing from it.
        let outside = DkimZone::new(origin, &["ns.provider.test".into()], &[]);
        assert_eq!(outside.check(), Ok(()));
        assert!(in_zone_ns_targets_without_address(&outside.zone_file(&[]), origin).is_empty());
        assert!(outside.glue().is_empty());
    }
}
