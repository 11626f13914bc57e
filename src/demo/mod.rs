//! The demo (`--demo`, on by default with the built-in directory in memory):
//! a small contact center running against this node, so a fresh `cargo run
//! --release` shows a live wallboard. It has two halves, each talking to
//! the node as an outside program would:
//!
//! - **The agents' devices** ([`agents`]): one simulated softphone per
//!   agent, a WebSocket like a real agent app's, that signs in, connects
//!   to the agent's queues, beats, takes breaks with the tenant's reason
//!   codes (some run over) and accepts monitor requests.
//! - **A simulated ACD** ([`acd`]): the contact center's router. It drives
//!   the interactions through the integration API only (docs/API.md,
//!   "Integrations"), over HTTP with a service credential it creates as
//!   the tenant's admin: contacts arrive at random in every channel (calls,
//!   chats, campaign dials), wait, are offered to an available agent
//!   connected to the channel with a free slot, answered, ended and
//!   wrapped up, or abandoned; and every second it pushes each channel's
//!   queue statistics, which the wallboard's channel cards show. What it
//!   does is what a real ACD or PBX bridge would do, and reads as
//!   `changed_by: {"id": "demo-acd", "role": "integration"}`.
//!
//! People trying the hub get agents of their own: the first
//! [`LEFT_TO_PEOPLE`] agents of the tenant (Ana Souza, a1, and Bruno
//! Costa, a2, in the built-in directory — the ones the README, the client
//! library's examples and the banner's agent link use) are never
//! simulated, and the ACD never offers them a contact, so what those
//! examples show is what happens, however the simulation stands. And a
//! simulated agent that a person signs in as on any other device (the
//! agent page, a softphone of their own, a script) is left to that person
//! while it is active: its simulated softphone only beats, and the ACD
//! offers it nothing new.

pub mod acd;
pub mod agents;

use crate::directory::TenantDirectory;
use crate::domain::Role;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

/// How many of the tenant's agents, first in the directory, the demo
/// leaves to people (see the module docs).
pub const LEFT_TO_PEOPLE: usize = 2;

/// Starts the demo against the node listening on `addr`: one simulated
/// agent per agent of the tenant except the first [`LEFT_TO_PEOPLE`], and
/// the simulated ACD, signed in as the tenant's first admin (without an
/// admin there is no ACD, and the agents sit idle). `token` mints a token
/// for a user id.
pub fn start(
    addr: SocketAddr,
    tenant: Arc<TenantDirectory>,
    token: impl Fn(&str) -> Option<String>,
) {
    let addr = reachable(addr);
    let mut simulated = Vec::new();
    for user in tenant
        .users
        .iter()
        .filter(|u| u.has_role(Role::Agent))
        .skip(LEFT_TO_PEOPLE)
    {
        let Some(token) = token(&user.id) else {
            continue;
        };
        let channels: Vec<Value> = tenant
            .channels
            .iter()
            .filter(|c| c.assigned.contains(&user.id))
            .map(|c| json!({"kind": c.kind, "id": c.id}))
            .collect();
        simulated.push(agents::Simulated {
            id: user.id.clone(),
            token,
            channels,
        });
    }
    let ids: HashSet<String> = simulated.iter().map(|a| a.id.clone()).collect();
    agents::start(format!("ws://{addr}/v1/ws"), simulated);
    let admin = tenant
        .users
        .iter()
        .find(|u| u.has_role(Role::Admin))
        .and_then(|u| token(&u.id));
    match admin {
        Some(admin) => acd::start(format!("http://{addr}"), admin, ids),
        None => tracing::warn!(
            tenant = %tenant.id,
            "the demo's ACD needs an admin in the tenant to create its credential: no ACD"
        ),
    }
}

/// The node's address as a client reaches it: a wildcard listen address
/// (`0.0.0.0`, `::`) is reached on the loopback.
fn reachable(mut addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        });
    }
    addr
}
