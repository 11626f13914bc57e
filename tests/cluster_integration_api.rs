//! `tests/integration_api.rs` again, against three nodes sharing a Redis
//! that the harness starts (see `tests/common/mod.rs`: the crate name
//! decides): credentials created on one node, used and revoked on others.

#[path = "integration_api.rs"]
mod suite;
