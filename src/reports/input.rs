//! What a report is computed from: the agent event stream's events (the
//! fixed format of issue 25) and, optionally, the records as they are now.
//!
//! The types here read that JSON leniently where the stream may grow (an
//! unknown `type` is ignored, unknown members are skipped) and strictly
//! where the arithmetic depends on it (a record must be a whole
//! [`AgentRecord`]): a report built on a half-read record would be wrong
//! without saying so.

use super::ReportError;
use crate::domain::{Actor, AgentRecord};
use serde::{Deserialize, Serialize};

/// What an event is about (`type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    /// A record changed: `previous` null when the agent was created,
    /// `current` null when it was removed.
    Agent,
    /// Periodic, per signed-in agent: `current` is the record now.
    Heartbeat,
    /// Settings changed (no record; a version nonetheless).
    Settings,
    /// The directory changed (no record; a version nonetheless).
    Directory,
    /// Versions were lost before this event.
    Gap,
    /// A type this build does not know: ignored (the stream may grow).
    #[serde(other)]
    Other,
}

/// One event of the agent event stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReportEvent {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub tenant: String,
    /// The tenant sequence number of the change (of the record, for a heartbeat).
    #[serde(default)]
    pub version: u64,
    #[serde(rename = "type")]
    pub kind: EventType,
    /// The history event name; informative only: reports derive everything
    /// from `previous` → `current` and `at_ms`.
    #[serde(default)]
    pub event: String,
    /// The committing node's clock (Unix ms); may step back a few ms
    /// between nodes (clamped by the report).
    pub at_ms: u64,
    #[serde(default)]
    pub by: Option<Actor>,
    #[serde(default)]
    pub agent_id: Option<String>,
    #[serde(default)]
    pub previous: Option<AgentRecord>,
    #[serde(default)]
    pub current: Option<AgentRecord>,
}

impl ReportEvent {
    /// The agent the event is about: `agent_id`, else the records' id.
    pub fn agent(&self) -> Option<&str> {
        self.agent_id
            .as_deref()
            .or_else(|| self.current.as_ref().map(|r| r.id.as_str()))
            .or_else(|| self.previous.as_ref().map(|r| r.id.as_str()))
    }
}

/// Everything a report is computed from.
///
/// `events` must be in version order (the stream's order) and hold **every**
/// event committed in the window (`from_ms <= at_ms < until_ms`); it may
/// start earlier and end later (what lies outside the window is replayed for
/// the state, never counted). Where versions were lost the stream says so
/// with a `gap` event, and so does the report.
///
/// `records_at_end` are the records as the caller last knew them (e.g. the
/// hub's replica when the report is asked for, or the last heartbeats): for
/// an agent with no event in the window, a record whose `version` is older
/// than the window's events held all through the window. A record changed
/// after the events end (a newer `version`) says nothing about the window
/// and is not used.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReportInput {
    pub events: Vec<ReportEvent>,
    pub records_at_end: Vec<AgentRecord>,
}

/// Reads events written one JSON object a line (NDJSON, as a stream
/// consumer or `events tail` writes them); blank lines are skipped.
pub fn parse_ndjson(text: &str) -> Result<Vec<ReportEvent>, ReportError> {
    let mut events = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let event = serde_json::from_str(line).map_err(|e| ReportError::BadEvent {
            line: i + 1,
            message: e.to_string(),
        })?;
        events.push(event);
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issue_format_reads_and_odd_lines_are_errors_with_their_number() {
        let text = concat!(
            r#"{"id": "7-0", "tenant": "acme", "version": 7, "type": "gap", "event": "gap", "at_ms": 5}"#,
            "\n\n",
            r#"{"id": "8-0", "tenant": "acme", "version": 8, "type": "webhook_test", "at_ms": 6, "extra": [1]}"#,
            "\n"
        );
        let events = parse_ndjson(text).expect("reads");
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].kind, EventType::Gap);
        assert_eq!(events[1].kind, EventType::Other, "a new type is ignored");
        assert_eq!(events[1].agent(), None);
        for (bad, line) in [
            ("{}\n", 1),
            ("\n{\"type\": \"agent\", \"at_ms\": -1}", 2),
            (
                "{\"type\": \"agent\", \"at_ms\": 1, \"current\": {\"id\": \"a1\"}}",
                1,
            ),
            ("[1, 2]", 1),
            ("{\"type\": \"agent\", \"at_ms\": 1e400}", 1),
        ] {
            match parse_ndjson(bad) {
                Err(ReportError::BadEvent { line: l, .. }) => assert_eq!(l, line, "{bad}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }
}
