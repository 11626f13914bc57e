//! `tests/webhooks.rs` again, against three nodes sharing a Redis that the
//! harness starts (see `tests/common/mod.rs`: the crate name decides): the
//! admin on node 1, changes on nodes 0 and 2, the deliveries from whichever
//! node holds the endpoint's lease; the restart test runs the real binary
//! on Redis instead of `--data-dir`.

#[path = "webhooks.rs"]
mod suite;

mod common {
    pub use super::suite::common::*;
}
