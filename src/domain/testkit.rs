//! Helpers for the domain's unit tables: records in a given state and a
//! terse way to apply events to them.

use super::machine::{apply, Context, Event};
use super::record::*;
use crate::error::HubResult;

pub const NOW: u64 = 1_000_000;

pub fn sales() -> ChannelRef {
    ChannelRef::new(ChannelKind::Queue, "sales")
}

pub fn web() -> ChannelRef {
    ChannelRef::new(ChannelKind::Chat, "web")
}

pub fn agent() -> AgentRecord {
    AgentRecord::new("a1", "Ana", &[Role::Agent], [sales()], &Settings::default())
}

pub fn at(r: &AgentRecord, e: &Event, s: &Settings, now: u64) -> HubResult<Option<AgentRecord>> {
    apply(
        r,
        e,
        &Context {
            now_ms: now,
            by: &Actor::new("a1", Role::Agent),
            settings: s,
            max_devices: 3,
        },
    )
}

/// Applies an event that must change the record.
pub fn ok(r: &AgentRecord, e: Event, s: &Settings) -> AgentRecord {
    at(r, &e, s, NOW)
        .unwrap_or_else(|err| panic!("{e:?} refused: {err}"))
        .unwrap_or_else(|| panic!("{e:?} changed nothing"))
}

pub fn up(id: &str) -> Event {
    Event::DeviceUp {
        device_id: id.into(),
        kind: "softphone".into(),
        label: None,
        node: "n1".into(),
    }
}

pub fn down(id: &str) -> Event {
    Event::DeviceDown {
        device_id: id.into(),
        node: "n1".into(),
    }
}

pub fn start(id: &str, channel: ChannelRef) -> Event {
    Event::InteractionStart {
        interaction_id: id.into(),
        channel,
    }
}

pub fn end(id: &str) -> Event {
    Event::InteractionEnd {
        interaction_id: id.into(),
    }
}

pub fn pause(reason: &str) -> Event {
    Event::Pause {
        reason: reason.into(),
    }
}
