//! `tests/resume.rs` again, against three nodes sharing a Redis that the
//! harness starts (see `tests/common/mod.rs`: the crate name decides).

#[path = "resume.rs"]
mod suite;
