//! One event of the agent event stream, and its JSON form
//! (protocol/EVENTS.md, `protocol/schemas/event.json`).
//!
//! Every committed change takes one version (the tenant seq) and makes one
//! event at that version: an agent's record changed (`agent`, with the
//! record before and after), the settings (`settings`), or the directory
//! (`directory`; the records a directory change writes or removes are
//! `agent` events at their own versions just before it). A `gap` says the
//! store lost versions (a failover or restore) and where the stream
//! resumes. A `heartbeat` is an agent's current record, repeated
//! periodically while the agent is signed in; it takes no version of its
//! own (it carries the record's).
//!
//! The Redis scripts build the same JSON by concatenation (they append the
//! previous record they read, the new one and the version they assign to
//! [`Event::prefix`]), so the prefix is the one place the shape of the
//! common fields is written.

use crate::directory::change::DirectoryWrite;
use crate::domain::{Actor, AgentRecord, Settings};
use serde_json::json;
use std::borrow::Cow;
use std::sync::Arc;

/// What an event is about.
#[derive(Clone, Debug)]
pub enum Body {
    /// The agent is the records' `id` (kept once: a log holds many events,
    /// BENCHMARKS.md); at least one of the two is there.
    Agent {
        /// `None` when the change created the agent.
        previous: Option<Arc<AgentRecord>>,
        /// `None` when the change removed the agent.
        current: Option<Arc<AgentRecord>>,
    },
    Heartbeat {
        current: Arc<AgentRecord>,
    },
    /// Boxed: rare, and every event of a log has the room of its largest
    /// body.
    Settings {
        settings: Box<Settings>,
    },
    Directory {
        write: Arc<DirectoryWrite>,
    },
    /// Versions `from` up to the event's own are not in the stream.
    Gap {
        from: u64,
    },
}

/// One event, as the memory store keeps it (serialized when read).
#[derive(Clone, Debug)]
pub struct Event {
    /// The version the event is at (a heartbeat: its record's).
    pub version: u64,
    /// The history's name for what happened (`pause`, `device_up`,
    /// `user_created`, `settings_updated`, `heartbeat`, `gap`, …): one of
    /// the hub's own names, not allocated per event, but for a directory
    /// change's (its write carries the name as a string).
    pub event: Cow<'static, str>,
    pub at_ms: u64,
    pub by: Actor,
    pub body: Body,
}

impl Event {
    pub fn kind(&self) -> &'static str {
        match self.body {
            Body::Agent { .. } => "agent",
            Body::Heartbeat { .. } => "heartbeat",
            Body::Settings { .. } => "settings",
            Body::Directory { .. } => "directory",
            Body::Gap { .. } => "gap",
        }
    }

    /// The fields every event has, as the opening of a JSON object that
    /// ends with a comma: `{"type":…,"tenant":…,["agent_id":…,]"event":…,
    /// "at_ms":…,"by":…,`. Whoever completes it appends the body's fields
    /// and `"version":<n>}` last.
    pub fn prefix(
        kind: &str,
        tenant: &str,
        agent_id: Option<&str>,
        event: &str,
        at_ms: u64,
        by: &Actor,
    ) -> String {
        let mut head = json!({"type": kind, "tenant": tenant});
        if let Some(id) = agent_id {
            head["agent_id"] = json!(id);
        }
        head["event"] = json!(event);
        head["at_ms"] = json!(at_ms);
        head["by"] = json!(by);
        let mut out = head.to_string();
        // `{…}` → `{…,`: the object is left open for the rest.
        out.pop();
        out.push(',');
        out
    }

    /// The event's JSON (one line).
    pub fn to_json(&self, tenant: &str) -> String {
        let record = |r: &Option<Arc<AgentRecord>>| match r {
            Some(r) => serde_json::to_string(r.as_ref()).unwrap_or_else(|_| "null".into()),
            None => "null".into(),
        };
        let agent_id = match &self.body {
            Body::Agent { previous, current } => current
                .as_ref()
                .or(previous.as_ref())
                .map(|r| r.id.as_str()),
            Body::Heartbeat { current } => Some(current.id.as_str()),
            _ => None,
        };
        let mut out = Event::prefix(
            self.kind(),
            tenant,
            agent_id,
            &self.event,
            self.at_ms,
            &self.by,
        );
        match &self.body {
            Body::Agent {
                previous, current, ..
            } => {
                out.push_str(&format!(
                    "\"previous\":{},\"current\":{},",
                    record(previous),
                    record(current)
                ));
            }
            Body::Heartbeat { current } => {
                out.push_str(&format!("\"current\":{},", record(&Some(current.clone()))));
            }
            Body::Settings { settings } => {
                out.push_str(&format!("\"settings\":{},", json!(settings)));
            }
            Body::Directory { write } => {
                out.push_str(&format!("\"directory\":{},", directory_body(write)));
            }
            Body::Gap { from } => out.push_str(&format!("\"from\":{from},")),
        }
        out.push_str(&format!("\"version\":{}}}", self.version));
        out
    }
}

/// What a directory event says of its change: the users and channels put
/// and removed (the records it wrote or removed are `agent` events of
/// their own; how the store checked the change is not the consumer's
/// business).
pub fn directory_body(write: &DirectoryWrite) -> serde_json::Value {
    json!({
        "users_put": write.users_put,
        "users_removed": write.users_removed,
        "channels_put": write.channels_put,
        "channels_removed": write.channels_removed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Role;
    use serde_json::Value;

    #[test]
    fn an_agent_event_is_one_json_object_with_both_records() {
        let settings = Settings::default();
        let mut before = AgentRecord::new("a1", "Ann", &[Role::Agent], [], &settings);
        before.version = 6;
        let mut after = before.clone();
        after.version = 7;
        let event = Event {
            version: 7,
            event: "pause".into(),
            at_ms: 1_765_000_000_000,
            by: Actor::new("a1", Role::Agent),
            body: Body::Agent {
                previous: Some(Arc::new(before)),
                current: Some(Arc::new(after)),
            },
        };
        let v: Value = serde_json::from_str(&event.to_json("acme")).expect("json");
        assert_eq!(v["type"], "agent");
        assert_eq!(v["tenant"], "acme");
        assert_eq!(v["agent_id"], "a1");
        assert_eq!(v["by"], json!({"id": "a1", "role": "agent"}));
        assert_eq!(
            (&v["previous"]["version"], &v["current"]["version"]),
            (&json!(6), &json!(7))
        );
        assert_eq!(v["version"], 7);
        let gap = Event {
            version: 1_000_000,
            event: "gap".into(),
            at_ms: 1,
            by: Actor::system(),
            body: Body::Gap { from: 12 },
        };
        let v: Value = serde_json::from_str(&gap.to_json("acme")).expect("json");
        assert_eq!(
            (v["type"].as_str(), v["from"].as_u64()),
            (Some("gap"), Some(12))
        );
        assert!(v.get("agent_id").is_none());
    }
}
