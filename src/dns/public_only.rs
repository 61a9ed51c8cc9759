//! The webhook client's DNS: the system's resolver, keeping only public internet addresses.
//! The check is on the addresses the connection is then made to, so a name that resolves (or is
//! re-pointed, DNS rebinding) to loopback, a private network or a metadata service reaches
//! nothing. IP-literal URLs never come here; `webhooks::delivery` checks those itself.

use std::net::{IpAddr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::domain::{NonGlobal, non_global};

/// A `reqwest` resolver that drops every non-global address (`domain::non_global`).
#[derive(Debug, Clone, Copy, Default)]
pub struct PublicOnly;

/// Every address a name resolved to is off the public internet (or it resolved to none). Shown
/// by the kinds of address, never the addresses: the error reaches `lastError`, which any reader
/// of the subscription sees, and would map the operator's network. `resolve` logs them.
#[derive(Debug, thiserror::Error)]
pub struct NoPublicAddress {
    name: String,
    refused: Vec<(IpAddr, NonGlobal)>,
}

impl std::fmt::Display for NoPublicAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.refused.is_empty() {
            return write!(f, "{} resolves to no address", self.name);
        }
        write!(
            f,
            "{} resolves only to addresses off the public internet (",
            self.name
        )?;
        let mut kinds: Vec<NonGlobal> = Vec::new();
        for (_, kind) in &self.refused {
            if !kinds.contains(kind) {
                kinds.push(*kind);
            }
        }
        for (i, kind) in kinds.iter().enumerate() {
            let separator = if i == 0 { "" } else { ", " };
            write!(f, "{separator}{kind} address")?;
        }
        f.write_str(
            "); webhooks go only to public addresses unless the operator sets \
             webhooks.allow_private_endpoints = true",
        )
    }
}

/// Splits resolved addresses into the public ones and the refused ones with their kind.
fn keep_public(
    name: &str,
    addrs: impl IntoIterator<Item = SocketAddr>,
) -> Result<Vec<SocketAddr>, NoPublicAddress> {
    let mut public = Vec::new();
    let mut refused = Vec::new();
    for addr in addrs {
        match non_global(addr.ip()) {
            None => public.push(addr),
            Some(kind) if !refused.contains(&(addr.ip(), kind)) => refused.push((addr.ip(), kind)),
            Some(_) => {}
        }
    }
    if public.is_empty() {
        return Err(NoPublicAddress {
            name: name.to_owned(),
            refused,
        });
    }
    Ok(public)
}

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let name = name.as_str().to_owned();
        Box::pin(async move {
            // Port 0: reqwest puts the URL's port (or the scheme's) in its place.
            let resolved = tokio::net::lookup_host((name.as_str(), 0)).await?;
            let public = keep_public(&name, resolved).inspect_err(|refused| {
                // For the operator only (the delivery's span names the subscription).
                let addresses: Vec<String> = refused
                    .refused
                    .iter()
                    .map(|(ip, _)| ip.to_string())
                    .collect();
                tracing::warn!(
                    name = %refused.name,
                    addresses = %addresses.join(", "),
                    "webhook endpoint's name resolves only to non-public addresses; not connecting"
                );
            })?;
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(ips: &[&str]) -> Vec<SocketAddr> {
        ips.iter()
            .map(|ip| SocketAddr::new(ip.parse().unwrap(), 0))
            .collect()
    }

    #[test]
    fn only_public_addresses_are_kept() {
        let kept = keep_public("mixed.test", addrs(&["10.0.0.1", "8.8.8.8", "::1"])).unwrap();
        assert_eq!(kept, addrs(&["8.8.8.8"]));
    }

    #[test]
    fn a_name_with_only_private_addresses_fails_saying_what_kinds_without_the_addresses() {
        let e = keep_public("localhost", addrs(&["127.0.0.1", "::1", "10.0.0.5"])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "localhost resolves only to addresses off the public internet (a loopback address, \
             a private address); webhooks go only to public addresses unless the operator sets \
             webhooks.allow_private_endpoints = true"
        );
        let e = keep_public("nothing.test", []).unwrap_err();
        assert_eq!(e.to_string(), "nothing.test resolves to no address");
    }
}
