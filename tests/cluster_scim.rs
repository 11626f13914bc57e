//! `tests/scim.rs` again, against three nodes sharing a Redis that the
//! harness starts (see `tests/common/mod.rs`: the crate name decides): SCIM
//! requests and supervisors on node 1, agents on node 0, so every
//! provisioning change crosses the backplane.

#[path = "scim.rs"]
mod suite;
