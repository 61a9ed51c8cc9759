//! Who is on the other end of a request: the peer's address, or, when the peer is one of
//! `http.trusted_proxies`, the address that proxy says it forwarded for (README § Token
//! endpoint limits). The server loop (startup/serve.rs) resolves it once per request.

use std::net::{IpAddr, Ipv4Addr};

use axum::{extract::FromRequestParts, http::request::Parts};
use ipnet::IpNet;

/// The request's source address, as an extension of every request the server loop serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

impl ClientAddress {
    /// `peer` itself, unless it is a trusted proxy: then the right-most `X-Forwarded-For` entry
    /// that is not one (entries left of it were written by whoever the client is, and prove
    /// nothing). A trusted proxy that forwards nothing readable is taken as the source.
    pub fn resolve(peer: IpAddr, headers: &axum::http::HeaderMap, trusted: &[IpNet]) -> Self {
        let peer = peer.to_canonical();
        let is_trusted = |address: &IpAddr| trusted.iter().any(|net| net.contains(address));
        if !is_trusted(&peer) {
            return Self(peer);
        }
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .collect::<Vec<_>>();
        for entry in forwarded.iter().rev() {
            let Ok(address) = entry.parse::<IpAddr>().map(|a| a.to_canonical()) else {
                return Self(peer);
            };
            if !is_trusted(&address) {
                return Self(address);
            }
        }
        Self(peer)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    /// A request that did not come through the server loop (a router driven directly) counts
    /// as coming from 0.0.0.0.
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Self>()
            .copied()
            .unwrap_or(Self(IpAddr::V4(Ipv4Addr::UNSPECIFIED))))
    }
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderValue};

    use super::*;

    fn resolve(peer: &str, forwarded: &[&str], trusted: &[&str]) -> String {
        let mut headers = HeaderMap::new();
        for value in forwarded {
            headers.append("x-forwarded-for", HeaderValue::from_str(value).unwrap());
        }
        let trusted: Vec<IpNet> = trusted.iter().map(|n| n.parse().unwrap()).collect();
        ClientAddress::resolve(peer.parse().unwrap(), &headers, &trusted)
            .0
            .to_string()
    }

    #[test]
    fn an_untrusted_peer_is_the_source_whatever_it_forwards() {
        assert_eq!(
            resolve("198.51.100.9", &["203.0.113.1"], &[]),
            "198.51.100.9"
        );
        assert_eq!(
            resolve("198.51.100.9", &["203.0.113.1"], &["10.0.0.0/8"]),
            "198.51.100.9"
        );
    }

    #[test]
    fn a_trusted_proxy_names_the_right_most_address_it_does_not_trust() {
        let trusted = ["10.0.0.0/8"];
        assert_eq!(
            resolve("10.0.0.2", &["203.0.113.1"], &trusted),
            "203.0.113.1"
        );
        // The client wrote the first entry itself; the proxies added the rest.
        assert_eq!(
            resolve("10.0.0.2", &["192.0.2.66, 203.0.113.1, 10.0.0.7"], &trusted),
            "203.0.113.1"
        );
        assert_eq!(
            resolve("10.0.0.2", &["192.0.2.66", "203.0.113.1"], &trusted),
            "203.0.113.1"
        );
    }

    #[test]
    fn a_trusted_proxy_that_forwards_nothing_readable_is_the_source() {
        let trusted = ["10.0.0.0/8"];
        assert_eq!(resolve("10.0.0.2", &[], &trusted), "10.0.0.2");
        assert_eq!(resolve("10.0.0.2", &["unknown"], &trusted), "10.0.0.2");
        assert_eq!(resolve("10.0.0.2", &["10.0.0.3"], &trusted), "10.0.0.2");
    }

    #[test]
    fn mapped_ipv4_peers_are_ipv4() {
        assert_eq!(
            resolve("::ffff:10.0.0.2", &["203.0.113.1"], &["10.0.0.0/8"]),
            "203.0.113.1"
        );
    }
}
