//! The client's address behind a load balancer, and the limit of
//! connections per address.
//!
//! Behind HAProxy or nginx every TCP peer is the balancer, so the peer
//! address says nothing about the client. A balancer listed in
//! `--trusted-proxies` passes the client on in `X-Forwarded-For`; the hub
//! believes that header from those peers only — anyone else could write any
//! address into it. The address found is the one sessions log (the `client`
//! field of their span) and the one `--max-connections-per-ip` counts.
//!
//! Walking `X-Forwarded-For` from the right: each proxy appends the address
//! it saw, so the rightmost entries were written by our own proxies; the
//! first entry, from the right, that is not a trusted proxy is the client.
//! Entries left of it were written by the client or its proxies and are not
//! believed. An entry that does not parse stops the walk (the last address
//! believed stands). The PROXY protocol is not read: configure the balancer
//! to add `X-Forwarded-For` (`option forwardfor` in HAProxy,
//! `proxy_add_x_forwarded_for` in nginx), as `deploy/` does.

use crate::config::Config;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use dashmap::DashMap;
use ipnet::IpNet;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tracing::Instrument;

/// Entries of `X-Forwarded-For` looked at, from the right: more hops than
/// this between the client and the hub is no real deployment.
const MAX_HOPS: usize = 16;

/// The node's trusted proxies and its count of open connections by client
/// address. One per router, reached by handlers as an `Extension`.
#[derive(Debug)]
pub struct ClientAddrs {
    trusted: Vec<IpNet>,
    max_per_ip: usize,
    open: DashMap<IpAddr, usize>,
    /// Connections not yet upgraded, by TCP peer (untrusted peers only).
    pending: DashMap<IpAddr, usize>,
}

impl ClientAddrs {
    pub fn new(config: &Config) -> ClientAddrs {
        ClientAddrs {
            trusted: config.trusted_proxies.clone(),
            max_per_ip: config.max_connections_per_ip,
            open: DashMap::new(),
            pending: DashMap::new(),
        }
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|net| net.contains(&ip))
    }

    /// The client's address for a connection from `peer` with `headers`.
    pub fn resolve(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = peer.to_canonical();
        if !self.is_trusted(client) {
            return client; // its headers are the client's own words
        }
        let hops = headers
            .get_all("x-forwarded-for")
            .iter()
            .rev()
            .flat_map(|value| value.to_str().unwrap_or("?").rsplit(','))
            .map(str::trim)
            .filter(|hop| !hop.is_empty())
            .take(MAX_HOPS);
        for hop in hops {
            let Some(ip) = parse_hop(hop) else { break };
            client = ip;
            if !self.is_trusted(ip) {
                break;
            }
        }
        client
    }

    /// Counts one more connection from `ip`, or refuses it when the address
    /// already holds `--max-connections-per-ip`.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, TooManyFromAddress> {
        self.count(ip, Counted::Session)
    }

    /// Counts one more not-yet-upgraded connection from the TCP peer `peer`,
    /// or refuses it when the peer already holds `--max-connections-per-ip`
    /// of them, so one address cannot take every pending slot of the node
    /// with half-sent requests. A trusted proxy carries many clients and is
    /// not counted here: its clients are counted at the upgrade.
    pub fn admit_pending(self: &Arc<Self>, peer: IpAddr) -> Result<Slot, TooManyFromAddress> {
        let peer = peer.to_canonical();
        if self.is_trusted(peer) {
            return Ok(Slot(None));
        }
        self.count(peer, Counted::Pending)
    }

    fn count(self: &Arc<Self>, ip: IpAddr, what: Counted) -> Result<Slot, TooManyFromAddress> {
        if self.max_per_ip == 0 {
            return Ok(Slot(None));
        }
        let mut open = self.map(what).entry(ip).or_insert(0);
        if *open >= self.max_per_ip {
            return Err(TooManyFromAddress);
        }
        *open += 1;
        Ok(Slot(Some((self.clone(), ip, what))))
    }

    fn map(&self, what: Counted) -> &DashMap<IpAddr, usize> {
        match what {
            Counted::Session => &self.open,
            Counted::Pending => &self.pending,
        }
    }

    /// Open connections counted for `ip` (tests, diagnostics).
    pub fn open_from(&self, ip: IpAddr) -> usize {
        self.open.get(&ip).map_or(0, |n| *n)
    }
}

/// `1.2.3.4`, `2001:db8::1`, and the forms with a port some proxies write
/// (`1.2.3.4:5678`, `[2001:db8::1]:5678`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .or_else(|_| hop.parse::<SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

/// `--max-connections-per-ip` reached for this address.
#[derive(Debug, thiserror::Error)]
#[error("too many connections from this address")]
pub struct TooManyFromAddress;

/// Which count a [`Slot`] holds.
#[derive(Clone, Copy, Debug)]
enum Counted {
    Session,
    Pending,
}

/// One counted connection; uncounted when dropped (the session ended, or
/// the connection was upgraded or closed).
#[derive(Debug)]
pub struct Slot(Option<(Arc<ClientAddrs>, IpAddr, Counted)>);

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some((addrs, ip, what)) = self.0.take() {
            // Remove the entry with the last connection: the map holds only
            // addresses that have connections now.
            addrs.map(what).remove_if_mut(&ip, |_, n| {
                *n = n.saturating_sub(1);
                *n == 0
            });
        }
    }
}

/// The client of one upgrade request (an extractor). Without connection
/// info (a router served without it) the address is unknown and not counted.
#[derive(Debug)]
pub struct ClientAddr {
    pub ip: Option<IpAddr>,
    addrs: Option<Arc<ClientAddrs>>,
}

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        let addrs = parts.extensions.get::<Arc<ClientAddrs>>().cloned();
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| peer.ip());
        let ip = match (&addrs, peer) {
            (Some(addrs), Some(peer)) => Some(addrs.resolve(peer, &parts.headers)),
            (None, peer) => peer.map(|p| p.to_canonical()),
            (_, None) => None,
        };
        Ok(ClientAddr { ip, addrs })
    }
}

impl ClientAddr {
    /// Whether the client is on this machine (the dev sign-in's test).
    pub fn is_loopback(&self) -> bool {
        self.ip.is_some_and(|ip| ip.is_loopback())
    }

    /// Counts the connection against `--max-connections-per-ip`.
    pub fn admit(&self) -> Result<Slot, TooManyFromAddress> {
        match (&self.addrs, self.ip) {
            (Some(addrs), Some(ip)) => addrs.admit(ip),
            _ => Ok(Slot(None)),
        }
    }

    /// Runs a session with its slot held and its logs naming the client.
    pub fn track<F: Future<Output = ()>>(
        &self,
        session: F,
        slot: Slot,
    ) -> impl Future<Output = ()> {
        let span = match self.ip {
            Some(ip) => tracing::info_span!("conn", client = %ip),
            None => tracing::info_span!("conn", client = "unknown"),
        };
        // A combinator, not an `async` block: the session future is stored
        // once (see `session::run`).
        futures_util::FutureExt::map(session, move |()| drop(slot)).instrument(span)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(trusted: &[&str], max: usize) -> Arc<ClientAddrs> {
        let mut c = Config::defaults();
        c.trusted_proxies = trusted.iter().map(|t| t.parse().expect("cidr")).collect();
        c.max_connections_per_ip = max;
        Arc::new(ClientAddrs::new(&c))
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().expect("header"));
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn the_header_is_believed_only_from_a_trusted_proxy() {
        let a = addrs(&["10.0.0.0/8"], 0);
        let h = xff(&["203.0.113.7"]);
        assert_eq!(a.resolve(ip("10.1.2.3"), &h), ip("203.0.113.7"));
        assert_eq!(a.resolve(ip("192.0.2.1"), &h), ip("192.0.2.1"));
        // No header from a proxy: the proxy is all we know.
        assert_eq!(a.resolve(ip("10.1.2.3"), &HeaderMap::new()), ip("10.1.2.3"));
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client_whatever_it_claims_left_of_it() {
        let a = addrs(&["10.0.0.0/8", "172.16.0.0/12"], 0);
        // The client forged "1.1.1.1"; our proxies appended the rest.
        let h = xff(&["1.1.1.1, 198.51.100.9", "172.16.0.5"]);
        assert_eq!(a.resolve(ip("10.0.0.2"), &h), ip("198.51.100.9"));
        // Every hop a trusted proxy: the leftmost stands.
        let h = xff(&["10.9.9.9, 172.16.0.5"]);
        assert_eq!(a.resolve(ip("10.0.0.2"), &h), ip("10.9.9.9"));
    }

    #[test]
    fn ports_ipv6_and_garbage() {
        let a = addrs(&["10.0.0.0/8", "::1/128"], 0);
        assert_eq!(
            a.resolve(ip("::1"), &xff(&["[2001:db8::7]:443"])),
            ip("2001:db8::7")
        );
        assert_eq!(
            a.resolve(ip("10.0.0.1"), &xff(&["203.0.113.7:5000"])),
            ip("203.0.113.7")
        );
        // An IPv4 peer seen on a dual-stack socket is still the IPv4 proxy.
        assert_eq!(
            a.resolve(ip("::ffff:10.0.0.1"), &xff(&["203.0.113.7"])),
            ip("203.0.113.7")
        );
        // Garbage stops the walk at the last believed address.
        assert_eq!(
            a.resolve(ip("10.0.0.1"), &xff(&["203.0.113.7, unknown"])),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn the_limit_counts_open_connections_per_address() {
        let a = addrs(&[], 2);
        let x = ip("192.0.2.1");
        let first = a.admit(x).expect("first");
        let second = a.admit(x).expect("second");
        assert!(a.admit(x).is_err(), "third refused");
        assert!(
            a.admit(ip("192.0.2.2")).is_ok(),
            "other addresses unaffected"
        );
        drop(first);
        let third = a.admit(x).expect("a slot came free");
        drop((second, third));
        assert_eq!(a.open_from(x), 0);
        assert!(a.open.is_empty(), "no entry outlives its connections");
        // 0 means no limit, and nothing is counted.
        let unlimited = addrs(&[], 0);
        let held: Vec<_> = (0..100).map(|_| unlimited.admit(x).expect("ok")).collect();
        assert_eq!((held.len(), unlimited.open_from(x)), (100, 0));
    }
}
