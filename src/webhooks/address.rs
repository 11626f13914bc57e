//! Where a webhook may be delivered: not into the hub's own network.
//!
//! A tenant's admin sets webhook URLs, and the hub then makes requests to
//! them from inside the operator's network: without a rule, an admin could
//! point one at a cloud metadata service (`169.254.169.254`), a database
//! on `10.0.0.5`, or anything else only the hub can reach (server-side
//! request forgery). So a webhook goes only to a public address, or to
//! loopback (a receiver beside the hub: a sidecar, as for plain http),
//! unless the operator allows private addresses with
//! `--webhook-allow-private`.
//!
//! The rule holds where the connection is made, not only where the URL is
//! checked: an IP address in the URL is checked when it is set and again
//! at each delivery, and a name is resolved by [`Resolver`], which hands
//! the HTTP client only the addresses the rule allows, so a name that
//! resolves to a private address at delivery time (DNS rebinding) gets
//! nowhere.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Whether a webhook may connect to `ip`.
pub fn allowed(ip: IpAddr, allow_private: bool) -> bool {
    if ip.is_loopback() {
        return true;
    }
    let nowhere = ip.is_unspecified()
        || ip.is_multicast()
        || matches!(ip, IpAddr::V4(v4) if v4.is_broadcast());
    public(ip) || (allow_private && !nowhere)
}

/// A globally routable unicast address.
fn public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => public_v4(v4),
            None => public_v6(v6),
        },
    }
}

fn public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        // 0.0.0.0/8 ("this network"), 100.64.0.0/10 (carrier-grade NAT),
        // 192.0.0.0/24 (protocol assignments), 198.18.0.0/15
        // (benchmarking), 240.0.0.0/4 (reserved).
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240)
}

fn public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        // fc00::/7 unique local, fe80::/10 link-local, 2001:db8::/32
        // documentation, 64:ff9b:1::/48 local NAT64.
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        || (first == 0x2001 && ip.segments()[1] == 0x0db8)
        || (first == 0x0064 && ip.segments()[1] == 0xff9b && ip.segments()[2] == 1))
}

/// Why a delivery was refused before connecting.
pub const REFUSED: &str = "the webhook's address is private (not public, not loopback): \
     refused unless the hub runs with --webhook-allow-private";

/// The HTTP client's resolver for webhooks: the system's, keeping only the
/// addresses [`allowed`] allows.
pub struct Resolver {
    pub allow_private: bool,
}

impl reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| allowed(a.ip(), allow_private))
                .collect();
            if found.is_empty() {
                return Err(format!("{host}: {REFUSED}").into());
            }
            Ok(Box::new(found.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The URL's host when it is an IP address.
pub fn literal(url: &reqwest::Url) -> Option<IpAddr> {
    url.host_str()?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_and_loopback_pass_the_rest_needs_the_flag() {
        for ok in [
            "93.184.216.34",
            "127.0.0.1",
            "::1",
            "2606:4700::1111",
            "8.8.8.8",
        ] {
            let ip: IpAddr = ok.parse().expect("ip");
            assert!(allowed(ip, false), "{ok}");
        }
        for private in [
            "10.0.0.5",
            "172.16.3.4",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
        ] {
            let ip: IpAddr = private.parse().expect("ip");
            assert!(!allowed(ip, false), "{private}");
            assert!(allowed(ip, true), "{private} with the flag");
        }
        for never in ["0.0.0.0", "::", "224.0.0.1", "ff02::1", "255.255.255.255"] {
            let ip: IpAddr = never.parse().expect("ip");
            assert!(!allowed(ip, false) && !allowed(ip, true), "{never}");
        }
    }

    #[tokio::test]
    async fn the_resolver_hands_on_only_allowed_addresses() {
        use reqwest::dns::Resolve;
        use std::str::FromStr;
        let name = |n: &str| reqwest::dns::Name::from_str(n).expect("a name");
        let strict = Resolver {
            allow_private: false,
        };
        let found: Vec<SocketAddr> = strict
            .resolve(name("localhost"))
            .await
            .expect("localhost resolves")
            .collect();
        assert!(!found.is_empty() && found.iter().all(|a| a.ip().is_loopback()));
        // What the system resolver answers 10.0.0.5 with: itself.
        let refused = strict.resolve(name("10.0.0.5")).await;
        let message = refused.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("--webhook-allow-private"), "{message}");
        let open = Resolver {
            allow_private: true,
        };
        assert!(open.resolve(name("10.0.0.5")).await.is_ok());
    }
}
