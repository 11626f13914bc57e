//! `tests/scim.rs` again, against three nodes sharing a Redis that the
//! harness starts (see `tests/common/mod.rs`: the crate name decides):
//! agents on node 0, supervisors on node 1, SCIM requests on each node in
//! turn, so every provisioning change crosses the backplane and each
//! request must see what the one before it changed on another node.

#[path = "scim.rs"]
mod suite;
