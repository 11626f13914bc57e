//! `tests/queue_stats.rs` again, against three nodes sharing a Redis that
//! the harness starts (see `tests/common/mod.rs`: the crate name decides):
//! pushes go to node 0, supervisors sit on nodes 1 and 2, so every
//! statistic crosses the store and its pub/sub.

#[path = "queue_stats.rs"]
mod suite;
