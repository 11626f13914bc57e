//! Signed webhooks, delivered from the agent event stream
//! (docs/WEBHOOKS.md).
//!
//! Why from the stream: it already holds every committed change once, in
//! order, durably (Redis Stream on a cluster, the data directory on a
//! single node). A webhook endpoint is then only a filter and a cursor in
//! that stream — no second queue to keep consistent with the first, and a
//! restart or a node's death loses nothing because the cursor is in the
//! store and advances only after a 2xx.
//!
//! Layout: [`endpoint`] (what an admin sets, checked), [`sign`] (Standard
//! Webhooks signatures), [`store`] (the documents in the shared store),
//! [`deliver`] (leases, batches, retries, dead letters), [`routes`] (the
//! admin's HTTP API), [`seal`] (secrets sealed at rest). The entry points are [`routes`] and [`start`].

pub mod address;
pub mod deliver;
pub mod endpoint;
pub mod routes;
pub mod seal;
pub mod sign;
pub mod store;

pub use deliver::start;
pub use routes::register;
