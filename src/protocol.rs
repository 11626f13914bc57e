//! Protocol v1 on the wire (`protocol/PROTOCOL.md`; docs/DESIGN.md §4): the messages
//! clients send, how they are decoded, and the frames the hub sends back.
//!
//! Decoding is two-step so each failure gets its documented code: text that
//! is not a JSON object is `bad_request`; an object whose `type` the hub does
//! not know is `unknown_type`; a known type with a missing or mistyped field
//! is `bad_request` naming the field. Unknown fields are ignored. Shapes are
//! strict ([`crate::strict`]): an array where an object is required is
//! `bad_request` too, at any depth.

use crate::backplane::SettingsPatch;
use crate::domain::{AgentRecord, ChannelRef, Role};
use crate::error::{HubError, HubResult};
use crate::hub::outbox::{Frame, Kind};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The protocol version in `welcome`.
pub const VERSION: u32 = 1;

/// WebSocket close codes of PROTOCOL.md §3.2.
pub mod close {
    pub const NORMAL: u16 = 1000;
    /// A browser unloading or reloading its page (the client's code).
    pub const GOING_AWAY: u16 = 1001;
    pub const TOO_LARGE: u16 = 1009;
    pub const DRAINING: u16 = 1012;
    pub const BAD_HELLO: u16 = 4000;
    pub const AUTH_TIMEOUT: u16 = 4001;
    pub const UNAUTHORIZED: u16 = 4003;
    pub const POLICY: u16 = 4008;
    pub const REPLACED: u16 = 4009;
    /// Signed out by a supervisor (PROTOCOL.md §10.6).
    pub const SIGNED_OUT: u16 = 4010;
    /// The agent already has `--max-devices-per-agent` active devices.
    pub const TOO_MANY_DEVICES: u16 = 4011;
    /// The user was removed from the directory, or their roles or scope
    /// changed (PROTOCOL.md §7.1): sign in again.
    pub const DIRECTORY_CHANGED: u16 = 4012;
}

/// The device an agent connection speaks for.
#[derive(Clone, Debug, Deserialize)]
pub struct DeviceHello {
    pub id: String,
    #[serde(default = "unknown_kind")]
    pub kind: String,
    #[serde(default)]
    pub label: Option<String>,
}

fn unknown_kind() -> String {
    "unknown".into()
}

/// The first message of every connection.
#[derive(Clone, Debug, Deserialize)]
pub struct Hello {
    pub token: String,
    pub role: Role,
    #[serde(default)]
    pub device: Option<DeviceHello>,
}

/// A subscription scope: `{"channels": [...]}` or `{"all": true}`.
#[derive(Clone, Debug, Deserialize)]
pub struct ScopeRequest {
    #[serde(default)]
    pub all: Option<bool>,
    #[serde(default)]
    pub channels: Option<Vec<ChannelRef>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandAction {
    Connect,
    Disconnect,
    Pause,
    Unpause,
    Monitor,
    StopMonitor,
    EndWrapUp,
    DisconnectUnassigned,
    /// Signs the agent out (PROTOCOL.md §10.6).
    SignOut,
}

/// Every message a client may send after `hello`. Decoded from
/// `{"<type>": {fields}}` (see [`decode`]): externally tagged, so that
/// [`crate::strict`] sees every field (serde's internal tagging would
/// buffer them past it).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Request {
    Heartbeat {},
    SetStatus {
        status: String,
        #[serde(default)]
        reason: Option<String>,
    },
    Connect {
        channel: ChannelRef,
    },
    Disconnect {
        channel: ChannelRef,
    },
    InteractionStart {
        interaction_id: String,
        channel: ChannelRef,
    },
    InteractionEnd {
        interaction_id: String,
    },
    EndWrapUp {},
    CommandAck {
        command_id: String,
        ok: bool,
        #[serde(default)]
        reason: Option<String>,
    },
    Subscribe {
        scope: ScopeRequest,
        /// Resume (PROTOCOL.md §5.1.1): the seq of the last snapshot or delta applied.
        #[serde(default)]
        since_seq: Option<u64>,
        /// The `epoch` of the snapshot that `since_seq` belongs to.
        #[serde(default)]
        epoch: Option<String>,
    },
    Search {
        #[serde(default)]
        query: Option<String>,
        #[serde(default)]
        role: Option<Role>,
        #[serde(default)]
        limit: Option<usize>,
    },
    History {
        /// Required from supervisors and admins; an agent connection may
        /// leave it out (its own history, PROTOCOL.md §6).
        #[serde(default)]
        agent_id: Option<String>,
        #[serde(default)]
        since_ms: Option<u64>,
        #[serde(default)]
        limit: Option<usize>,
    },
    Command {
        action: CommandAction,
        agent_id: String,
        #[serde(default)]
        channel: Option<ChannelRef>,
        #[serde(default)]
        reason: Option<String>,
        /// `monitor` only: listen (default), whisper or barge (PROTOCOL.md §10.5).
        #[serde(default)]
        mode: Option<crate::domain::MonitorMode>,
    },
    UpdateSettings {
        settings: SettingsPatch,
    },
    SetUnassignedAccess {
        agent_id: String,
        /// Required; `null` removes the override (the tenant default applies).
        #[serde(deserialize_with = "required_nullable")]
        allowed: Option<bool>,
    },
    Assign {
        agent_id: String,
        channel: ChannelRef,
    },
    Unassign {
        agent_id: String,
        channel: ChannelRef,
    },
    // ---- the directory at runtime (PROTOCOL.md §7.1); admins only
    /// The tenant's users and channels.
    Directory {},
    /// Creates or replaces a user (read strictly: `crate::api::directory`).
    PutUser {
        user: Value,
    },
    DeleteUser {
        user_id: String,
    },
    /// Creates or renames a channel.
    PutChannel {
        channel: Value,
    },
    DeleteChannel {
        channel: ChannelRef,
    },
}

/// A field that must be present but may be `null` (serde's default for an
/// `Option` would take a missing field as `null`).
fn required_nullable<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    Option::<bool>::deserialize(d)
}

/// Message types the hub knows (besides `hello`, which only opens a session).
pub const REQUEST_TYPES: &[&str] = &[
    "heartbeat",
    "set_status",
    "connect",
    "disconnect",
    "interaction_start",
    "interaction_end",
    "end_wrap_up",
    "command_ack",
    "subscribe",
    "search",
    "history",
    "command",
    "update_settings",
    "set_unassigned_access",
    "assign",
    "unassign",
    "directory",
    "put_user",
    "delete_user",
    "put_channel",
    "delete_channel",
];

/// A decoded client message: its request `id` (if any) and the request.
pub struct Incoming {
    pub id: Option<String>,
    pub kind: String,
    pub request: HubResult<Request>,
    /// The request's `idempotency_key` (PROTOCOL.md §3.3), when valid.
    pub idempotency_key: Option<String>,
}

/// Longest `idempotency_key`, in characters.
pub const MAX_IDEMPOTENCY_KEY: usize = 128;

/// Reads the optional `idempotency_key`: a string of 1 to
/// [`MAX_IDEMPOTENCY_KEY`] characters.
fn idempotency_key(map: &serde_json::Map<String, Value>) -> HubResult<Option<String>> {
    match map.get("idempotency_key") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if crate::text::within(s, 1, MAX_IDEMPOTENCY_KEY) => {
            Ok(Some(s.clone()))
        }
        Some(_) => Err(HubError::bad_request(format!(
            "idempotency_key must be a string of 1 to {MAX_IDEMPOTENCY_KEY} characters"
        ))),
    }
}

/// Decodes one text frame. `Err` means not even the envelope was readable
/// (the reply cannot carry an `id`); `Incoming.request` carries per-type errors.
pub fn decode(text: &str) -> Result<Incoming, HubError> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| HubError::bad_request(format!("malformed JSON: {e}")))?;
    let Value::Object(mut map) = value else {
        return Err(HubError::bad_request("a message must be a JSON object"));
    };
    let id = match map.get("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(HubError::bad_request("field `id` must be a string")),
    };
    let kind = match map.get("type") {
        Some(Value::String(s)) => s.clone(),
        Some(_) => {
            return Ok(Incoming {
                id,
                kind: String::new(),
                request: Err(HubError::bad_request("field `type` must be a string")),
                idempotency_key: None,
            })
        }
        None => {
            return Ok(Incoming {
                id,
                kind: String::new(),
                request: Err(HubError::bad_request("missing field `type`")),
                idempotency_key: None,
            })
        }
    };
    let key = idempotency_key(&map);
    let request = if kind == "hello" {
        Err(HubError::bad_request(
            "already authenticated: hello is only the first message",
        ))
    } else if !REQUEST_TYPES.contains(&kind.as_str()) {
        Err(HubError::unknown_type(format!(
            "unknown message type {kind:?}"
        )))
    } else if let Err(e) = &key {
        Err(e.clone())
    } else {
        map.remove("type");
        let tagged = Value::Object(serde_json::Map::from_iter([(
            kind.clone(),
            Value::Object(map),
        )]));
        crate::strict::from_value::<Request>(tagged)
            .map_err(|e| HubError::bad_request(format!("invalid {kind}: {e}")))
    };
    Ok(Incoming {
        id,
        kind,
        request,
        idempotency_key: key.ok().flatten(),
    })
}

/// Decodes the first message, which must be a `hello`.
pub fn decode_hello(text: &str) -> Result<Hello, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("malformed JSON: {e}"))?;
    match value.get("type") {
        Some(Value::String(t)) if t == "hello" => {}
        _ => return Err("the first message must be {\"type\": \"hello\", ...}".into()),
    }
    crate::strict::from_value(value).map_err(|e| format!("invalid hello: {e}"))
}

// ---- frames the hub sends ------------------------------------------------

pub fn frame(kind: Kind, value: &Value) -> Frame {
    Frame::new(kind, value.to_string())
}

pub fn reply_ok(id: &str, result: Value) -> Frame {
    frame(
        Kind::Reply,
        &json!({"type": "reply", "id": id, "ok": true, "result": result}),
    )
}

/// `reply_ok(id, {"agent": record})`, serialized straight from the record
/// (the reply to every agent change: no `Value` tree on the hot path).
pub fn reply_agent(id: &str, record: &AgentRecord) -> Frame {
    #[derive(Serialize)]
    struct AgentReply<'a> {
        r#type: &'static str,
        id: &'a str,
        ok: bool,
        result: AgentResult<'a>,
    }
    #[derive(Serialize)]
    struct AgentResult<'a> {
        agent: &'a AgentRecord,
    }
    let reply = AgentReply {
        r#type: "reply",
        id,
        ok: true,
        result: AgentResult { agent: record },
    };
    // A record always serializes (string keys, no fallible fields).
    Frame::new(
        Kind::Reply,
        serde_json::to_string(&reply).unwrap_or_default(),
    )
}

pub fn reply_err(id: &str, error: &HubError) -> Frame {
    frame(
        Kind::Reply,
        &json!({"type": "reply", "id": id, "ok": false, "error": error}),
    )
}

pub fn error(error: &HubError) -> Frame {
    frame(Kind::Error, &json!({"type": "error", "error": error}))
}

/// The answer to a request: a `reply` when it had an `id`; otherwise an
/// `error` frame on failure and nothing on success.
pub fn answer(id: Option<&str>, result: HubResult<Value>) -> Option<Frame> {
    match (id, result) {
        (Some(id), Ok(v)) => Some(reply_ok(id, v)),
        (Some(id), Err(e)) => Some(reply_err(id, &e)),
        (None, Ok(_)) => None,
        (None, Err(e)) => Some(error(&e)),
    }
}

/// `{"type": "agent"|"state", "agent": <record json>}` from an already
/// serialized record.
pub fn agent_frame(frame_kind: Kind, record_json: &str) -> Frame {
    let kind = if frame_kind == Kind::State {
        "state"
    } else {
        "agent"
    };
    let mut s = String::with_capacity(record_json.len() + kind.len() + 22);
    s.push_str(r#"{"type":""#);
    s.push_str(kind);
    s.push_str(r#"","agent":"#);
    s.push_str(record_json);
    s.push('}');
    Frame::new(frame_kind, s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn each_failure_gets_its_code() {
        assert_eq!(
            decode("{nope").err().map(|e| e.code),
            Some(ErrorCode::BadRequest)
        );
        assert_eq!(
            decode("[1]").err().map(|e| e.code),
            Some(ErrorCode::BadRequest)
        );
        let unknown = decode(r#"{"type":"fly","id":"r1"}"#).expect("envelope");
        assert_eq!(unknown.id.as_deref(), Some("r1"));
        assert_eq!(
            unknown.request.err().map(|e| e.code),
            Some(ErrorCode::UnknownType)
        );
        let wrong_type = decode(r#"{"type":"set_status","status":5}"#).expect("envelope");
        let e = wrong_type.request.expect_err("mistyped");
        assert_eq!(e.code, ErrorCode::BadRequest);
        assert!(e.message.contains("invalid type"), "{}", e.message);
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let m = decode(r#"{"type":"heartbeat","id":"h","extra":{"x":1}}"#).expect("envelope");
        assert!(matches!(m.request, Ok(Request::Heartbeat {})));
    }

    #[test]
    fn agent_frame_is_valid_json() {
        let f = agent_frame(Kind::Agent, r#"{"id":"a1"}"#);
        let v: Value = serde_json::from_str(f.text.as_str()).expect("json");
        assert_eq!(v, json!({"type": "agent", "agent": {"id": "a1"}}));
    }

    mod fuzz {
        use super::super::*;
        use crate::error::ErrorCode;
        use proptest::prelude::*;

        fn json() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
                    .map(Value::Number)
                    .unwrap_or(Value::Null)),
                ".{0,12}".prop_map(Value::from),
                prop_oneof![
                    Just("queue"),
                    Just("chat"),
                    Just("agent"),
                    Just("paused"),
                    Just("all")
                ]
                .prop_map(Value::from),
            ];
            leaf.prop_recursive(3, 24, 6, |inner| {
                prop_oneof![
                    proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                    proptest::collection::btree_map(
                        prop_oneof![
                            Just("id".to_string()),
                            Just("channel".to_string()),
                            Just("kind".to_string()),
                            Just("status".to_string()),
                            Just("reason".to_string()),
                            Just("scope".to_string()),
                            Just("agent_id".to_string()),
                            Just("settings".to_string()),
                            ".{0,6}".prop_map(String::from),
                        ],
                        inner,
                        0..5,
                    )
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]

            /// Any text at all: decoding never panics and always says why.
            #[test]
            fn any_text_decodes_or_says_why(text in ".{0,200}") {
                match decode(&text) {
                    Ok(m) => if let Err(e) = m.request { prop_assert!(!e.message.is_empty()) },
                    Err(e) => prop_assert_eq!(e.code, ErrorCode::BadRequest),
                }
                let _ = decode_hello(&text);
            }

            /// Objects of every known type with random fields: either a
            /// request or `bad_request` naming the problem, never `unknown_type`.
            #[test]
            fn known_types_with_random_fields(kind in proptest::sample::select(REQUEST_TYPES), fields in json()) {
                let mut object = match fields { Value::Object(m) => m, other => {
                    let mut m = serde_json::Map::new();
                    m.insert("x".into(), other);
                    m
                } };
                object.insert("type".into(), Value::from(kind));
                let text = Value::Object(object).to_string();
                match decode(&text) {
                    Ok(m) => {
                        prop_assert_eq!(m.kind.as_str(), kind);
                        if let Err(e) = m.request {
                            prop_assert_eq!(e.code, ErrorCode::BadRequest, "{}", e.message);
                        }
                    }
                    Err(e) => prop_assert_eq!(e.code, ErrorCode::BadRequest), // a non-string id
                }
                let _ = decode_hello(&text);
            }

            /// A valid message with any one of its objects (at any depth)
            /// turned into the array of its values is `bad_request`: an
            /// array is never read as an object.
            #[test]
            fn an_array_is_never_an_object(pick in 0usize..64, which in 0usize..64) {
                let valid = valid_messages();
                let mut message = valid[which % valid.len()].clone();
                let objects = count_objects(&message) - 1; // not the message itself
                prop_assume!(objects > 0);
                let mut target = pick % objects + 1;
                arrayify(&mut message, &mut target);
                let text = message.to_string();
                if message["type"] == "hello" {
                    prop_assert!(decode_hello(&text).is_err(), "{}", text);
                } else {
                    let m = decode(&text).expect("envelope");
                    let e = m.request.expect_err(&text);
                    prop_assert_eq!(e.code, ErrorCode::BadRequest);
                }
            }
        }

        fn valid_messages() -> Vec<Value> {
            let channel = json!({"kind": "queue", "id": "sales"});
            let all = [
                json!({"type": "hello", "token": "t", "role": "agent", "device": {"id": "d", "kind": "softphone"}}),
                json!({"type": "connect", "channel": channel}),
                json!({"type": "interaction_start", "interaction_id": "c1", "channel": channel}),
                json!({"type": "subscribe", "scope": {"channels": [channel, {"kind": "chat", "id": "web"}]}}),
                json!({"type": "update_settings", "settings": {"wrap_up_seconds": 5}}),
                json!({"type": "command", "action": "connect", "agent_id": "a1", "channel": channel}),
                json!({"type": "assign", "agent_id": "a1", "channel": channel}),
            ];
            for m in &all {
                if m["type"] == "hello" {
                    assert!(decode_hello(&m.to_string()).is_ok(), "{m}");
                } else {
                    assert!(
                        decode(&m.to_string()).expect("envelope").request.is_ok(),
                        "{m}"
                    );
                }
            }
            all.to_vec()
        }

        fn count_objects(v: &Value) -> usize {
            match v {
                Value::Object(m) => 1 + m.values().map(count_objects).sum::<usize>(),
                Value::Array(a) => a.iter().map(count_objects).sum(),
                _ => 0,
            }
        }

        /// Replaces the `target`-th object (pre-order, 0 = `v`) by an array.
        fn arrayify(v: &mut Value, target: &mut usize) -> bool {
            if v.is_object() {
                if *target == 0 {
                    let values = v
                        .as_object()
                        .map(|m| m.values().cloned().collect())
                        .unwrap_or_default();
                    *v = Value::Array(values);
                    return true;
                }
                *target -= 1;
            }
            match v {
                Value::Object(m) => m.values_mut().any(|c| arrayify(c, target)),
                Value::Array(a) => a.iter_mut().any(|c| arrayify(c, target)),
                _ => false,
            }
        }
    }

    #[test]
    fn unassigned_access_needs_allowed_and_only_null_removes_it() {
        let missing =
            decode(r#"{"type":"set_unassigned_access","agent_id":"a1"}"#).expect("envelope");
        assert_eq!(
            missing.request.err().map(|e| e.code),
            Some(ErrorCode::BadRequest)
        );
        let null = decode(r#"{"type":"set_unassigned_access","agent_id":"a1","allowed":null}"#)
            .expect("envelope");
        assert!(matches!(
            null.request,
            Ok(Request::SetUnassignedAccess { allowed: None, .. })
        ));
        let yes = decode(r#"{"type":"set_unassigned_access","agent_id":"a1","allowed":true}"#)
            .expect("envelope");
        assert!(matches!(
            yes.request,
            Ok(Request::SetUnassignedAccess {
                allowed: Some(true),
                ..
            })
        ));
    }
}
