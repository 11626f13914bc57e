//! Events out: the agent event stream (protocol/EVENTS.md).
//!
//! Every committed change leaves the hub as one event, in version order,
//! with the agent's record before and after, who did it and when — the
//! shape integrators know from Amazon Connect's agent event stream — and a
//! periodic heartbeat per signed-in agent. Where events are kept is the
//! store's business, written in the same step as the change so a change and
//! its event exist together or not at all:
//!
//! - on a cluster, a Redis Stream per tenant (`hub:{t}:events`), appended by
//!   the same Lua script that commits the change (`backplane/lua/*.lua`);
//!   consumers may read it directly, consumer groups included;
//! - on a single node, the memory store's [`log::EventLog`], written to the
//!   data directory with the change when there is one (`crate::store`).
//!
//! Everyone can read them through the hub: `GET /api/v1/events`
//! (`crate::api::events`) and `presence-hub events tail` ([`tail`]).
//!
//! Layout: [`id`] (the `<ms>-<n>` ids), [`event`] (an event and its JSON),
//! [`log`] (the memory store's bounded log), [`heartbeat`] (the periodic
//! heartbeats), [`tail`] (the command-line consumer).

pub mod event;
pub mod heartbeat;
pub mod id;
pub mod log;
pub mod tail;

pub use event::{Body, Event};
pub use id::EventId;
use std::sync::Arc;

/// How much of the stream a store keeps (`--events-max-len`,
/// `--events-max-age-s`). Trimming may keep a little more than asked on
/// Redis (`MAXLEN ~`, `MINID ~`: whole stream nodes go at once), never
/// less.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Retention {
    /// Events kept at most per tenant; 0 keeps no event stream at all.
    pub max_len: usize,
    /// Events older than this are dropped; `None`: kept until `max_len`.
    pub max_age_ms: Option<u64>,
}

impl Retention {
    pub const OFF: Retention = Retention {
        max_len: 0,
        max_age_ms: None,
    };

    pub fn enabled(&self) -> bool {
        self.max_len > 0
    }
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            max_len: 100_000,
            max_age_ms: Some(2 * 24 * 3600 * 1000),
        }
    }
}

/// What a read of the stream returns.
#[derive(Clone, Debug, Default)]
pub struct Page {
    /// Oldest first, each with its JSON.
    pub events: Vec<(EventId, Arc<str>)>,
    /// The oldest event the store still keeps: a consumer whose position
    /// is below it missed the events trimmed in between.
    pub oldest: Option<EventId>,
    /// The newest id the store handed out (the position to wait from when
    /// the page is empty).
    pub last: Option<EventId>,
    /// The id read after is not in the stream: trimmed, or lost with the
    /// writes a failover lost (the reader read it from the old master).
    /// What follows it may not be what the reader is missing.
    pub after_missing: bool,
}
