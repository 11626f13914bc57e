//! `tests/reports_http.rs` again, against three nodes sharing a Redis that
//! the harness starts (see `tests/common/mod.rs`: the crate name decides):
//! the report reads the Redis Stream through any node.

#[path = "reports_http.rs"]
mod suite;
