//! The mapping from Asterisk's queue events to presence-hub's integration
//! API (examples/ami-bridge/README.md has the table): pure, no I/O, so the
//! whole of it is tested by feeding events and reading the calls it asks
//! for. The bridge keeps only what AMI does not repeat: who waits in each
//! queue since when, the day's counters, which call each member is on and
//! which member is in wrap-up.

use super::ami::{seconds, Message};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};

/// Which hub agent an Asterisk member is, and which hub queue an Asterisk
/// queue is. The file, one entry a line (`#` comments):
///
/// ```text
/// member PJSIP/1001 a1        # by Interface (or MemberName)
/// queue  q_sales    sales     # Asterisk queue name -> hub queue id
/// ```
///
/// Without an entry: `Agent/<id>` is agent `<id>` (Asterisk's agent
/// channels are named after the agent), any other member is skipped (and
/// logged), and a queue keeps its Asterisk name.
#[derive(Debug, Clone, Default)]
pub struct Mapping {
    members: HashMap<String, String>,
    queues: HashMap<String, String>,
}

impl Mapping {
    pub fn parse(text: &str) -> Result<Mapping, String> {
        let mut m = Mapping::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["member", from, to] => m.members.insert(from.to_string(), to.to_string()),
                ["queue", from, to] => m.queues.insert(from.to_string(), to.to_string()),
                _ => {
                    return Err(format!(
                    "line {}: expected `member <Interface> <agent>` or `queue <name> <id>`: {line}",
                    n + 1
                ))
                }
            };
        }
        Ok(m)
    }

    /// The hub agent of a member: the file by `Interface`, then by
    /// `MemberName`, then the `Agent/<id>` rule.
    pub fn agent(&self, m: &Message) -> Option<String> {
        let interface = m.get("Interface").unwrap_or("");
        let name = m.get("MemberName").unwrap_or("");
        self.members
            .get(interface)
            .or_else(|| self.members.get(name))
            .cloned()
            .or_else(|| {
                interface
                    .strip_prefix("Agent/")
                    .filter(|id| !id.is_empty())
                    .map(str::to_string)
            })
    }

    pub fn queue(&self, asterisk: &str) -> String {
        self.queues
            .get(asterisk)
            .cloned()
            .unwrap_or_else(|| asterisk.to_string())
    }
}

/// One request the bridge asks the hub for.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    /// `POST /api/v1/agents/{agent}/interactions`.
    Interaction {
        agent: String,
        body: Value,
        key: String,
    },
    /// `PUT /api/v1/agents/{agent}/status`.
    Status {
        agent: String,
        body: Value,
        key: String,
    },
    /// `PUT /api/v1/channels/queue/{queue}/stats` (the queue statistics
    /// route): a whole replacement, so a repeat is harmless without a key.
    Stats { queue: String, body: Value },
}

impl Call {
    pub fn method_and_path(&self) -> (&'static str, String) {
        match self {
            Call::Interaction { agent, .. } => {
                ("POST", format!("/api/v1/agents/{agent}/interactions"))
            }
            Call::Status { agent, .. } => ("PUT", format!("/api/v1/agents/{agent}/status")),
            Call::Stats { queue, .. } => ("PUT", format!("/api/v1/channels/queue/{queue}/stats")),
        }
    }
    pub fn body(&self) -> &Value {
        match self {
            Call::Interaction { body, .. }
            | Call::Status { body, .. }
            | Call::Stats { body, .. } => body,
        }
    }
    pub fn key(&self) -> Option<&str> {
        match self {
            Call::Interaction { key, .. } | Call::Status { key, .. } => Some(key),
            Call::Stats { .. } => None,
        }
    }
}

/// What the bridge did not map (for the log and the tests).
#[derive(Debug, Clone, PartialEq)]
pub enum Note {
    /// An event the mapping leaves alone (by design or unknown).
    Ignored(String),
    /// A member event for a member with no hub agent.
    UnknownMember(String),
    /// A queue event without the fields it needs.
    Incomplete(String),
    /// A member added to or removed from a queue in Asterisk: the hub's
    /// directory owns assignments, so this is only logged (an operator may
    /// want to mirror it there).
    Membership(String),
}

/// Per queue: who waits since when, and the day's counters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueueStats {
    /// Caller `Uniqueid` -> when it joined (seconds since the epoch).
    pub waiting: BTreeMap<String, f64>,
    /// Asterisk's own count of callers in the queue, from the last
    /// join/leave (authoritative: callers who joined before the bridge
    /// started are in it, not in `waiting`).
    pub count: Option<u64>,
    pub offered: u64,
    pub answered: u64,
    pub answered_in_sl: u64,
    pub abandoned: u64,
}

impl QueueStats {
    /// The body of the stats push at `now`.
    pub fn body(&self, now: f64, service_level_s: u32) -> Value {
        let longest = self
            .waiting
            .values()
            .map(|since| (now - since).max(0.0))
            .fold(0.0_f64, f64::max);
        let waiting = self.count.unwrap_or(self.waiting.len() as u64);
        let mut body = json!({
            "waiting": waiting,
            "longest_wait_s": longest.round() as u64,
            "offered": self.offered,
            "answered": self.answered,
            "abandoned": self.abandoned,
            "service_level_s": service_level_s,
        });
        // Over the calls whose wait ended today (answered or abandoned): a
        // caller who gave up counts against the service level.
        let ended = self.answered + self.abandoned;
        if ended > 0 {
            let sl = self.answered_in_sl as f64 / ended as f64;
            body["service_level"] = json!((sl * 1000.0).round() / 1000.0);
        }
        body
    }
}

/// The bridge's state.
#[derive(Debug, Clone)]
pub struct Bridge {
    pub mapping: Mapping,
    pub service_level_s: u32,
    /// Push queue statistics (off: `--no-stats`, for a hub without the
    /// queue statistics route).
    pub stats: bool,
    /// Asterisk queue name -> its statistics.
    pub queues: BTreeMap<String, QueueStats>,
    /// The UTC day (days since the epoch) the counters are of.
    day: Option<i64>,
    /// Call (Linkedid) -> the agent answering it, until AgentComplete.
    calls: HashMap<String, String>,
    /// Agent -> the call it is wrapping up, until Asterisk rings it again.
    wrap_up: HashMap<String, String>,
}

/// The call's id: the caller channel's `Linkedid` (shared by every channel
/// of the call, so a Hold on the member's leg finds it), else `Uniqueid`.
fn call_id(m: &Message) -> Option<String> {
    m.get("Linkedid")
        .or_else(|| m.get("Uniqueid"))
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

impl Bridge {
    pub fn new(mapping: Mapping, service_level_s: u32, stats: bool) -> Bridge {
        Bridge {
            mapping,
            service_level_s,
            stats,
            queues: BTreeMap::new(),
            day: None,
            calls: HashMap::new(),
            wrap_up: HashMap::new(),
        }
    }

    /// The calls one AMI message asks for, in order, and a note when it
    /// maps to nothing. `now` is the event's time: its `Timestamp` field
    /// (manager.conf `timestampevents = yes`), else the caller's clock.
    pub fn handle(&mut self, m: &Message, now: f64) -> (Vec<Call>, Option<Note>) {
        let Some(event) = m.event() else {
            return (Vec::new(), Some(Note::Ignored("a response".into())));
        };
        let now = seconds(m, "Timestamp").unwrap_or(now);
        self.roll_day(now);
        let mut calls = Vec::new();
        let note = match event {
            "QueueCallerJoin" | "QueueCallerLeave" | "QueueCallerAbandon" => {
                self.caller(event, m, now, &mut calls)
            }
            "AgentCalled" | "AgentConnect" | "AgentComplete" => {
                self.member_call(event, m, now, &mut calls)
            }
            "QueueMemberPause" => self.pause(m, &mut calls),
            "Hold" => self.hold(m, &mut calls),
            "QueueMemberAdded" | "QueueMemberRemoved" => Some(Note::Membership(format!(
                "{event}: {} in {}",
                m.get("Interface").unwrap_or("?"),
                m.get("Queue").unwrap_or("?")
            ))),
            // Documented as mapping to nothing: the hub has no "ringing"
            // state to undo, an unhold changes no hub state, and the
            // directory (not Asterisk) owns queue assignments.
            other => Some(Note::Ignored(other.to_string())),
        };
        (calls, note)
    }

    fn roll_day(&mut self, now: f64) {
        let day = (now / 86_400.0).floor() as i64;
        if self.day.is_some_and(|d| d != day) {
            for q in self.queues.values_mut() {
                // Waiting callers stay; the day's counters start over.
                q.offered = 0;
                q.answered = 0;
                q.answered_in_sl = 0;
                q.abandoned = 0;
            }
        }
        self.day = Some(day);
    }

    fn push_stats(&self, queue: &str, now: f64, calls: &mut Vec<Call>) {
        if let (true, Some(q)) = (self.stats, self.queues.get(queue)) {
            calls.push(Call::Stats {
                queue: self.mapping.queue(queue),
                body: q.body(now, self.service_level_s),
            });
        }
    }

    fn caller(
        &mut self,
        event: &str,
        m: &Message,
        now: f64,
        calls: &mut Vec<Call>,
    ) -> Option<Note> {
        let (Some(queue), Some(caller)) = (m.get("Queue"), m.get("Uniqueid")) else {
            return Some(Note::Incomplete(event.to_string()));
        };
        let count = m.get("Count").and_then(|c| c.trim().parse::<u64>().ok());
        let q = self.queues.entry(queue.to_string()).or_default();
        // Asterisk's Count (on join and leave) is the truth; between two,
        // and without one, the count moves with the callers seen.
        let seen = match event {
            "QueueCallerJoin" => {
                q.offered = q.offered.saturating_add(1);
                q.waiting.insert(caller.to_string(), now).is_none()
            }
            "QueueCallerAbandon" => {
                // Asterisk follows it with QueueCallerLeave: the caller is
                // removed once, and counted down once.
                q.abandoned += 1;
                q.waiting.remove(caller).is_some()
            }
            _ => q.waiting.remove(caller).is_some(),
        };
        q.count = match (count, q.count, event) {
            (Some(c), _, _) => Some(c),
            (None, Some(c), "QueueCallerJoin") => Some(c.saturating_add(u64::from(seen))),
            (None, Some(c), _) => Some(c.saturating_sub(u64::from(seen))),
            (None, None, _) => None,
        };
        self.push_stats(queue, now, calls);
        None
    }

    fn member_call(
        &mut self,
        event: &str,
        m: &Message,
        now: f64,
        calls: &mut Vec<Call>,
    ) -> Option<Note> {
        let (Some(queue), Some(call)) = (m.get("Queue"), call_id(m)) else {
            return Some(Note::Incomplete(event.to_string()));
        };
        let Some(agent) = self.mapping.agent(m) else {
            return Some(Note::UnknownMember(format!(
                "{event}: {}",
                m.get("Interface").unwrap_or("(no Interface)")
            )));
        };
        let channel = json!({"kind": "queue", "id": self.mapping.queue(queue)});
        let interaction = |event: &str, key: String| Call::Interaction {
            agent: agent.clone(),
            body: json!({"event": event, "interaction_id": call, "channel": channel}),
            key,
        };
        match event {
            "AgentCalled" => {
                // Asterisk rings only a member whose wrap-up time is over:
                // the wrap-up the hub still shows for it ends now.
                if let Some(done) = self.wrap_up.remove(&agent) {
                    calls.push(Call::Interaction {
                        agent: agent.clone(),
                        body: json!({"event": "wrap_up", "interaction_id": done}),
                        key: format!("ami:wrap_up:{agent}:{done}"),
                    });
                }
                calls.push(interaction(
                    "offered",
                    format!("ami:offered:{agent}:{call}"),
                ));
            }
            "AgentConnect" => {
                if let Some(done) = self.wrap_up.remove(&agent) {
                    calls.push(Call::Interaction {
                        agent: agent.clone(),
                        body: json!({"event": "wrap_up", "interaction_id": done}),
                        key: format!("ami:wrap_up:{agent}:{done}"),
                    });
                }
                calls.push(interaction(
                    "answered",
                    format!("ami:answered:{agent}:{call}"),
                ));
                self.calls.insert(call.clone(), agent.clone());
                let q = self.queues.entry(queue.to_string()).or_default();
                q.answered += 1;
                if seconds(m, "HoldTime").is_some_and(|h| h <= f64::from(self.service_level_s)) {
                    q.answered_in_sl += 1;
                }
                self.push_stats(queue, now, calls);
            }
            _ => {
                calls.push(Call::Interaction {
                    agent: agent.clone(),
                    body: json!({"event": "ended", "interaction_id": call}),
                    key: format!("ami:ended:{agent}:{call}"),
                });
                self.calls.remove(&call);
                self.wrap_up.insert(agent.clone(), call.clone());
            }
        }
        None
    }

    fn pause(&mut self, m: &Message, calls: &mut Vec<Call>) -> Option<Note> {
        let Some(agent) = self.mapping.agent(m) else {
            return Some(Note::UnknownMember(format!(
                "QueueMemberPause: {}",
                m.get("Interface").unwrap_or("(no Interface)")
            )));
        };
        let paused = match m.get("Paused").map(str::trim) {
            Some("1") => true,
            Some("0") => false,
            _ => return Some(Note::Incomplete("QueueMemberPause".into())),
        };
        // Asterisk sends one QueueMemberPause per queue the member is in,
        // all with the same LastPause: the same key, applied once.
        let since = m
            .get("LastPause")
            .or_else(|| m.get("Timestamp"))
            .unwrap_or("0");
        let body = if paused {
            let reason = m
                .get("PausedReason")
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .unwrap_or("paused");
            json!({"status": "paused", "reason": reason})
        } else {
            json!({"status": "available"})
        };
        if paused {
            // The hub pauses straight from wrap-up: nothing to end first.
            self.wrap_up.remove(&agent);
        }
        calls.push(Call::Status {
            key: format!("ami:pause:{agent}:{}:{since}", u8::from(paused)),
            agent,
            body,
        });
        None
    }

    fn hold(&mut self, m: &Message, calls: &mut Vec<Call>) -> Option<Note> {
        let Some(call) = call_id(m) else {
            return Some(Note::Incomplete("Hold".into()));
        };
        let Some(agent) = self.calls.get(&call).cloned() else {
            return Some(Note::Ignored("Hold (not a queue call)".into()));
        };
        let leg = m.get("Uniqueid").unwrap_or("");
        let at = m.get("Timestamp").unwrap_or("");
        calls.push(Call::Interaction {
            body: json!({"event": "held", "interaction_id": call}),
            key: format!("ami:held:{agent}:{call}:{leg}:{at}"),
            agent,
        });
        None
    }
}
