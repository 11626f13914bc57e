//! presence-hub: a realtime WebSocket presence hub for contact centers.
//!
//! Agent clients open one WebSocket per device, beat, and change their own
//! status; supervisor wallboards subscribe to channels, get a snapshot then
//! live deltas, search agents and act on them; admins change settings at
//! runtime. The contract is `protocol/PROTOCOL.md`.
//!
//! # Layout
//!
//! The modules follow the picture of `docs/DESIGN.md` §5, from pure to I/O:
//!
//! - [`domain`]: the agent record, the state machine and the permission
//!   table, with the contact-center rules by concern (capacity, pause codes
//!   and sign-in status, monitor modes). Pure functions; no clock, no I/O.
//! - [`backplane`]: the shared store behind a trait: compare-and-swap of
//!   records, the tenant sequence, settings, history, ordered delta delivery.
//!   [`backplane::memory`] is the single-process default;
//!   [`backplane::target`] says which Redis and how to reach it (ACL, TLS).
//! - [`store`]: a single node that remembers (`--data-dir`): the memory
//!   backplane's journal, an embedded file (redb) written and fsynced
//!   before a change is acknowledged, read back at start.
//! - [`hub`]: this node's replicas of its tenants, fed by the delta stream;
//!   subscriptions and coalescing outboxes; the command router; device
//!   ownership and timers. [`hub::Hub::change`] is the one write path.
//! - [`ws`]: the WebSocket the hub owns — the handshake, frames, and a
//!   socket that holds no buffer while idle.
//! - [`server`]: HTTP routes, the per-connection session task, the request
//!   handlers, graceful drain, the client's address behind a load balancer,
//!   and what a node answers while it waits for Redis at start
//!   ([`server::starting`]).
//! - [`protocol`]: decoding client messages and building server frames;
//!   [`strict`] holds decoded JSON to the exact shapes (an array is never an
//!   object), [`text`] measures client strings in characters.
//! - [`wallboard`]: the embedded supervisor page; [`demo`]: simulated agents
//!   and a simulated ACD (through the integration API) that make a fresh
//!   node look alive.
//! - [`client_lib`]: the JavaScript client library (`clients/js/`), served
//!   at `/client/`.
//! - [`agent_page`]: the embedded agent dashboard at `/agent`.
//! - [`scim`]: provisioning from identity providers (SCIM 2.0 at `/scim/v2`),
//!   mapped onto directory changes through the hub's one write path.
//! - [`metrics`]: the Prometheus series of `/metrics`.
//! - [`web`]: web security of everything served over HTTP: the security
//!   headers and CSP, the pages' versioned immutable assets, CORS on the
//!   HTTP APIs, who may read `/metrics`.
//! - [`directory`]: the directory file (a seed), what a runtime change
//!   writes ([`directory::change`], pure) and `directory export|import`
//!   ([`directory::transfer`]); [`hub::directory`] commits changes.
//! - [`api`]: the HTTP JSON API for scripts (`/api/v1`): bearer auth of an
//!   admin, bounded bodies and requests in flight, JSON errors.
//! - [`events`]: events out — the agent event stream (one event per
//!   committed change, written by the store with the change; heartbeats),
//!   read over `GET /api/v1/events` or `presence-hub events tail`.
//! - [`reports`]: time in status, interactions, sign-ins and pause overruns
//!   per agent and channel, bucketed in a time zone, from the agent event
//!   stream (pure; JSON and CSV renderers, the query parser).
//! - [`webhooks`]: signed webhooks (Standard Webhooks) delivered from the
//!   event stream, at least once, with a cursor per endpoint in the store.
//! - [`config`], [`auth`] (tokens; [`auth::jwks`]: an identity
//!   provider's keys), [`error`], [`clock`], [`tls`] (the rustls crypto
//!   provider those keys' and Redis's TLS clients share): the edges.
//!
//! `main.rs` only parses flags and calls [`node::run`].

pub mod agent_page;
pub mod api;
pub mod auth;
pub mod backplane;
pub mod client_lib;
pub mod clock;
pub mod config;
pub mod demo;
pub mod directory;
pub mod domain;
pub mod error;
pub mod events;
pub mod hub;
pub mod metrics;
pub mod node;
pub mod protocol;
pub mod reports;
pub mod scim;
pub mod server;
pub mod store;
pub mod strict;
pub mod text;
pub mod tls;
pub mod wallboard;
pub mod web;
pub mod webhooks;
pub mod ws;
