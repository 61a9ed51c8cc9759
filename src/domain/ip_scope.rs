//! Which IP addresses are on the public internet. Webhook deliveries go only there (unless
//! `webhooks.allow_private_endpoints`), so that an environment administrator cannot make
//! trustmail POST to its own host, its network or a cloud metadata service.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address is not global: the kind of range it is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonGlobal {
    Unspecified,
    Loopback,
    Private,
    LinkLocal,
    SharedCgnat,
    Multicast,
    Broadcast,
    Documentation,
    /// Benchmarking, IETF protocol assignments, discard, translation and other special-purpose
    /// ranges IANA lists as not globally reachable.
    Reserved,
}

impl std::fmt::Display for NonGlobal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NonGlobal::Unspecified => "an unspecified",
            NonGlobal::Loopback => "a loopback",
            NonGlobal::Private => "a private",
            NonGlobal::LinkLocal => "a link-local",
            NonGlobal::SharedCgnat => "a shared (carrier-grade NAT)",
            NonGlobal::Multicast => "a multicast",
            NonGlobal::Broadcast => "a broadcast",
            NonGlobal::Documentation => "a documentation",
            NonGlobal::Reserved => "a reserved",
        })
    }
}

/// `None` when `ip` is a global unicast address, else the kind of range it is in. IPv6 forms
/// that carry an IPv4 address (mapped, NAT64) are judged by that address.
pub fn non_global(ip: IpAddr) -> Option<NonGlobal> {
    match ip {
        IpAddr::V4(v4) => non_global_v4(v4),
        IpAddr::V6(v6) => non_global_v6(v6),
    }
}

fn non_global_v4(ip: Ipv4Addr) -> Option<NonGlobal> {
    let [a, b, c, _] = ip.octets();
    first_range([
        // "This network" 0.0.0.0/8; std's `is_unspecified` is 0.0.0.0 alone.
        (a == 0, NonGlobal::Unspecified),
        (ip.is_loopback(), NonGlobal::Loopback),
        (ip.is_private(), NonGlobal::Private),
        (ip.is_link_local(), NonGlobal::LinkLocal),
        // 100.64.0.0/10 (RFC 6598); std's `is_shared` is unstable.
        (a == 100 && (b & 0xc0) == 64, NonGlobal::SharedCgnat),
        (ip.is_broadcast(), NonGlobal::Broadcast),
        (ip.is_multicast(), NonGlobal::Multicast),
        (ip.is_documentation(), NonGlobal::Documentation),
        // 192.0.0.0/24 IETF assignments, 198.18.0.0/15 benchmarking (RFC 2544), 240.0.0.0/4
        // future use: std's `is_benchmarking` and `is_reserved` are unstable.
        (
            (a, b, c) == (192, 0, 0) || (a == 198 && (b & 0xfe) == 18) || a >= 240,
            NonGlobal::Reserved,
        ),
    ])
}

fn non_global_v6(ip: Ipv6Addr) -> Option<NonGlobal> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return non_global_v4(v4);
    }
    let s = ip.segments();
    // NAT64 well-known prefix 64:ff9b::/96 (RFC 6052) reaches the IPv4 address in its tail.
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [hi, lo] = [s[6].to_be_bytes(), s[7].to_be_bytes()];
        return non_global_v4(Ipv4Addr::new(hi[0], hi[1], lo[0], lo[1]));
    }
    // Written out because std's `is_global` is unstable: ::/96 (deprecated IPv4-compatible),
    // 64:ff9b:1::/48 (local NAT64), 100::/64 (discard), 2001::/23 (IETF assignments, Teredo
    // included), 2002::/16 (6to4, which reaches any IPv4 address), fec0::/10 (site-local).
    let reserved = s[..6] == [0; 6]
        || s[..3] == [0x64, 0xff9b, 1]
        || s[..4] == [0x100, 0, 0, 0]
        || (s[0] == 0x2001 && s[1] < 0x200)
        || s[0] == 0x2002
        || (s[0] & 0xffc0) == 0xfec0;
    first_range([
        (ip.is_unspecified(), NonGlobal::Unspecified),
        (ip.is_loopback(), NonGlobal::Loopback),
        (ip.is_unique_local(), NonGlobal::Private),
        (ip.is_unicast_link_local(), NonGlobal::LinkLocal),
        (ip.is_multicast(), NonGlobal::Multicast),
        // 2001:db8::/32 and 3fff::/20 (RFC 3849, RFC 9637); std's `is_documentation` is unstable.
        (
            s[..2] == [0x2001, 0xdb8] || (s[0] == 0x3fff && s[1] < 0x1000),
            NonGlobal::Documentation,
        ),
        (reserved, NonGlobal::Reserved),
    ])
}

/// The kind of the first range the address is in, in the order the table lists them.
fn first_range<const N: usize>(ranges: [(bool, NonGlobal); N]) -> Option<NonGlobal> {
    ranges
        .into_iter()
        .find_map(|(within, kind)| within.then_some(kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(ip: &str) -> Option<NonGlobal> {
        non_global(ip.parse().unwrap())
    }

    #[test]
    fn public_addresses_are_global() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.0",
            "172.32.0.1",
            "192.0.1.1",
            "198.20.0.1",
            "223.255.255.255",
            "2606:4700:4700::1111",
            "2a00:1450:4001::200e",
            "64:ff9b::808:808",
            "3fff:1000::1",
            "::ffff:8.8.8.8",
        ] {
            assert_eq!(kind(ip), None, "{ip}");
        }
    }

    #[test]
    fn each_non_global_range_is_named() {
        use NonGlobal::*;
        for (ip, expected) in [
            ("0.0.0.0", Unspecified),
            ("0.1.2.3", Unspecified),
            ("127.0.0.1", Loopback),
            ("127.255.0.9", Loopback),
            ("10.0.0.1", Private),
            ("172.16.5.4", Private),
            ("192.168.1.1", Private),
            ("169.254.169.254", LinkLocal),
            ("100.64.0.1", SharedCgnat),
            ("100.127.255.254", SharedCgnat),
            ("224.0.0.1", Multicast),
            ("255.255.255.255", Broadcast),
            ("192.0.2.1", Documentation),
            ("198.51.100.7", Documentation),
            ("203.0.113.9", Documentation),
            ("192.0.0.8", Reserved),
            ("198.18.0.1", Reserved),
            ("198.19.255.255", Reserved),
            ("240.0.0.1", Reserved),
            ("::", Unspecified),
            ("::1", Loopback),
            ("fc00::1", Private),
            ("fd12:3456::1", Private),
            ("fe80::1", LinkLocal),
            ("ff02::1", Multicast),
            ("2001:db8::1", Documentation),
            ("3fff::1", Documentation),
            ("3fff:fff::1", Documentation),
            ("::ffff:127.0.0.1", Loopback),
            ("::ffff:169.254.169.254", LinkLocal),
            ("64:ff9b::a00:1", Private),
            ("::7f00:1", Reserved),
            ("64:ff9b:1::1", Reserved),
            ("100::1", Reserved),
            ("2001::1", Reserved),
            ("2002:7f00:1::", Reserved),
            ("fec0::1", Reserved),
        ] {
            assert_eq!(kind(ip), Some(expected), "{ip}");
        }
    }
}
