//! Zone data as trustmail writes it: TXT values as zone-file strings, and a region's DKIM zone
//! (SOA, NS, one TXT per key), which trustmail's DNS serves and `trustmail dkim zone-file`
//! prints.

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
    pub fn new(origin: &str, nameservers: &[String]) -> Self {
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
        }
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

    /// The zone as a BIND zone file, with one TXT record per key.
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
        let zone = DkimZone::new("DKIM.Example.", &[]);
        assert_eq!(zone.origin, "dkim.example");
        assert_eq!(zone.nameservers, ["ns1.dkim.example"]);
        assert_eq!(zone.soa().mname, "ns1.dkim.example");
        let zone = DkimZone::new("dkim.example", &["a.ns.test.".into(), "b.ns.test".into()]);
        assert_eq!(zone.nameservers, ["a.ns.test", "b.ns.test"]);
        let file = zone.zone_file(&[]);
        assert!(file.contains("$ORIGIN dkim.example.\n"), "{file}");
        assert!(file.contains("@ IN SOA a.ns.test. hostmaster.dkim.example. ( 1 "));
        assert!(file.contains("@ IN NS b.ns.test.\n"));
    }
}
