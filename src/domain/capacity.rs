//! Capacity per channel kind (multi-chat, PROTOCOL.md §10.1): how many interactions
//! an agent may hold at once per kind, and the rules that follow from it.
//!
//! Kinds never mix: while an agent holds interactions of one kind, the other
//! kinds have no free slot (a call blocks chats and chats block a call, the
//! common default of contact-center platforms). With the default capacity
//! of one per kind this is exactly the single-interaction rule of v1.

use super::record::{AgentRecord, ChannelKind, Status};
use serde::{Deserialize, Serialize};

/// Most interactions of one kind an agent may be allowed at once.
pub const MAX_CAPACITY: u32 = 100;

fn one() -> u32 {
    1
}

/// Interactions per kind (the tenant setting `capacity`, the `free_slots`
/// of a record). A missing kind is 1 when read as a setting.
///
/// Unknown kinds are refused: `{"chats": 3}` is a typo, not "one of each".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capacity {
    #[serde(default = "one")]
    pub queue: u32,
    #[serde(default = "one")]
    pub chat: u32,
    #[serde(default = "one")]
    pub campaign: u32,
}

impl Default for Capacity {
    fn default() -> Self {
        Capacity {
            queue: 1,
            chat: 1,
            campaign: 1,
        }
    }
}

impl Capacity {
    pub const ZERO: Capacity = Capacity {
        queue: 0,
        chat: 0,
        campaign: 0,
    };

    pub fn get(&self, kind: ChannelKind) -> u32 {
        match kind {
            ChannelKind::Queue => self.queue,
            ChannelKind::Chat => self.chat,
            ChannelKind::Campaign => self.campaign,
        }
    }

    fn set(&mut self, kind: ChannelKind, n: u32) {
        match kind {
            ChannelKind::Queue => self.queue = n,
            ChannelKind::Chat => self.chat = n,
            ChannelKind::Campaign => self.campaign = n,
        }
    }

    /// This capacity with a user's own kinds laid over it.
    pub fn with(&self, user: Option<&CapacityOverride>) -> Capacity {
        let mut c = *self;
        if let Some(o) = user {
            for (kind, n) in o.kinds() {
                c.set(kind, n);
            }
        }
        c
    }

    /// `Err` naming the kind when one is above [`MAX_CAPACITY`].
    pub fn validate(&self) -> Result<(), String> {
        check_kinds(
            [ChannelKind::Queue, ChannelKind::Chat, ChannelKind::Campaign]
                .map(|k| (k, self.get(k)))
                .into_iter(),
        )
    }
}

/// A user's own capacity from the directory: only the kinds it names
/// override the tenant's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapacityOverride {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign: Option<u32>,
}

impl CapacityOverride {
    fn kinds(&self) -> impl Iterator<Item = (ChannelKind, u32)> {
        [
            (ChannelKind::Queue, self.queue),
            (ChannelKind::Chat, self.chat),
            (ChannelKind::Campaign, self.campaign),
        ]
        .into_iter()
        .filter_map(|(k, n)| n.map(|n| (k, n)))
    }

    pub fn validate(&self) -> Result<(), String> {
        check_kinds(self.kinds())
    }
}

fn check_kinds(mut kinds: impl Iterator<Item = (ChannelKind, u32)>) -> Result<(), String> {
    match kinds.find(|(_, n)| *n > MAX_CAPACITY) {
        Some((kind, _)) => Err(format!(
            "capacity.{} must be 0 to {MAX_CAPACITY}",
            kind.as_str()
        )),
        None => Ok(()),
    }
}

/// Why a new interaction of `kind` cannot start, or `None` when it can.
pub fn refuse_start(
    record: &AgentRecord,
    kind: ChannelKind,
    capacity: &Capacity,
) -> Option<String> {
    match record.status {
        Status::Available if capacity.get(kind) > 0 => None,
        Status::Available => Some(format!(
            "has no capacity for {} interactions",
            kind.as_str()
        )),
        Status::Busy => {
            if let Some(held) = record.interactions.iter().find(|i| i.channel.kind != kind) {
                return Some(format!(
                    "holds a {} interaction; kinds never mix",
                    held.channel.kind.as_str()
                ));
            }
            // From the capacity given, not the record's stored `free_slots`:
            // right after an admin lowers the capacity the stored value is
            // the old one until the record is renormalized.
            if record.interactions.len() >= capacity.get(kind) as usize {
                return Some(format!(
                    "has no free {} slot ({} of {} held)",
                    kind.as_str(),
                    record.interactions.len(),
                    capacity.get(kind)
                ));
            }
            None
        }
        _ => Some("is not available".into()),
    }
}

/// The derived `free_slots` of a record: everything while available; while
/// busy, the held kind's remainder and nothing of the others; else none.
pub fn free_slots(record: &AgentRecord, capacity: &Capacity) -> Capacity {
    match record.status {
        Status::Available => *capacity,
        Status::Busy => {
            let mut free = Capacity::ZERO;
            if let Some(first) = record.interactions.first() {
                let kind = first.channel.kind;
                let held = u32::try_from(record.interactions.len()).unwrap_or(u32::MAX);
                free.set(kind, capacity.get(kind).saturating_sub(held));
            }
            free
        }
        _ => Capacity::ZERO,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;
    use crate::domain::{Event, Settings};
    use crate::error::ErrorCode;

    fn three_chats() -> Settings {
        Settings {
            capacity: Capacity {
                queue: 1,
                chat: 3,
                campaign: 1,
            },
            ..Settings::default()
        }
    }

    #[test]
    fn chats_up_to_capacity_and_kinds_never_mix() {
        let s = three_chats();
        let online = ok(&agent(), up("d1"), &s);
        assert_eq!(online.free_slots, s.capacity, "available: every slot free");
        let one = ok(&online, start("c1", web()), &s);
        assert_eq!(
            (one.status, one.free_slots),
            (
                Status::Busy,
                Capacity {
                    queue: 0,
                    chat: 2,
                    campaign: 0
                }
            )
        );
        let three = ok(&ok(&one, start("c2", web()), &s), start("c3", web()), &s);
        assert_eq!(three.interactions.len(), 3);
        assert_eq!(
            three.interaction.as_ref().map(|i| i.id.as_str()),
            Some("c1"),
            "the oldest"
        );
        assert_eq!(three.free_slots, Capacity::ZERO);
        // Refusals, each changing nothing.
        for (name, record, event) in [
            ("a fourth chat", three.clone(), start("c4", web())),
            ("a call while chatting", one.clone(), start("k1", sales())),
            ("the same id twice", one.clone(), start("c1", web())),
        ] {
            let e = at(&record, &event, &s, NOW).expect_err(name);
            assert_eq!(e.code, ErrorCode::InvalidState, "{name}: {e}");
        }
        let call = ok(&online, start("k1", sales()), &s);
        let e = at(&call, &start("c1", web()), &s, NOW).expect_err("a chat while on a call");
        assert_eq!(e.code, ErrorCode::InvalidState);
    }

    #[test]
    fn ending_one_of_several_stays_busy_and_the_last_starts_wrap_up() {
        let s = three_chats();
        let two = ok(
            &ok(&ok(&agent(), up("d1"), &s), start("c1", web()), &s),
            start("c2", web()),
            &s,
        );
        let one = ok(&two, end("c1"), &s);
        assert_eq!((one.status, one.interactions.len()), (Status::Busy, 1));
        assert_eq!(one.interaction.as_ref().map(|i| i.id.as_str()), Some("c2"));
        assert_eq!(one.free_slots.chat, 2);
        let e = at(&one, &end("c1"), &s, NOW).expect_err("not held any more");
        assert_eq!(e.code, ErrorCode::InvalidState);
        let done = ok(&one, end("c2"), &s);
        assert_eq!(
            (done.status, done.interaction.clone()),
            (Status::WrapUp, None)
        );
        assert!(done.interactions.is_empty() && done.free_slots == Capacity::ZERO);
    }

    #[test]
    fn a_users_own_capacity_overrides_only_the_kinds_it_names() {
        let mut r = agent();
        r.capacity_override = Some(Box::new(CapacityOverride {
            chat: Some(2),
            ..CapacityOverride::default()
        }));
        let s = three_chats();
        let online = ok(&r, up("d1"), &s);
        assert_eq!(
            online.free_slots,
            Capacity {
                queue: 1,
                chat: 2,
                campaign: 1
            }
        );
        let none = Settings {
            capacity: Capacity {
                queue: 0,
                ..Capacity::default()
            },
            ..Settings::default()
        };
        let e = at(
            &ok(&agent(), up("d1"), &none),
            &start("k", sales()),
            &none,
            NOW,
        )
        .expect_err("no queue capacity");
        assert_eq!(e.code, ErrorCode::InvalidState);
    }

    #[test]
    fn default_capacity_is_v1() {
        let s = Settings::default();
        let busy = ok(&ok(&agent(), up("d1"), &s), start("k1", sales()), &s);
        for next in [start("k2", sales()), start("c1", web())] {
            assert_eq!(
                at(&busy, &next, &s, NOW).map_err(|e| e.code),
                Err(ErrorCode::InvalidState)
            );
        }
        assert_eq!(busy.free_slots, Capacity::ZERO);
        let _ = Event::Renormalize;
    }

    #[test]
    fn capacity_limits_are_checked() {
        assert!(Capacity {
            chat: MAX_CAPACITY + 1,
            ..Capacity::default()
        }
        .validate()
        .expect_err("too many")
        .contains("capacity.chat"));
        assert!(CapacityOverride {
            queue: Some(2),
            ..Default::default()
        }
        .validate()
        .is_ok());
    }

    #[test]
    fn capacity_limits_are_checked_at_the_edge_and_for_a_users_own() {
        // MAX_CAPACITY itself is allowed, one more is not; a user's own
        // capacity is held to the same bound.
        assert!(Capacity {
            chat: MAX_CAPACITY,
            ..Capacity::default()
        }
        .validate()
        .is_ok());
        assert!(CapacityOverride {
            queue: Some(MAX_CAPACITY),
            ..Default::default()
        }
        .validate()
        .is_ok());
        assert!(CapacityOverride {
            campaign: Some(MAX_CAPACITY + 1),
            ..Default::default()
        }
        .validate()
        .expect_err("too many")
        .contains("capacity.campaign"));
    }

    #[test]
    fn a_kind_the_setting_does_not_name_is_one() {
        let c: Capacity = serde_json::from_str(r#"{"chat": 3}"#).expect("a capacity");
        assert_eq!(
            c,
            Capacity {
                queue: 1,
                chat: 3,
                campaign: 1
            }
        );
    }

    #[test]
    fn an_available_agent_without_capacity_for_a_kind_is_told_so() {
        let s = Settings {
            capacity: Capacity {
                chat: 0,
                ..Capacity::default()
            },
            ..Settings::default()
        };
        let online = ok(&agent(), up("d1"), &s);
        let why = refuse_start(&online, ChannelKind::Chat, &s.capacity).expect("refused");
        assert!(why.contains("no capacity for chat"), "{why}");
        assert_eq!(refuse_start(&online, ChannelKind::Queue, &s.capacity), None);
    }
}
