//! `tests/directory_runtime.rs` again, against three nodes sharing a Redis
//! that the harness starts (see `tests/common/mod.rs`: the crate name decides).

#[path = "directory_runtime.rs"]
mod suite;
