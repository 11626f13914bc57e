//! Replays the example transcripts of `protocol/examples/` against a running
//! hub (with the demo directory), so the documented exchanges stay true.
//!
//! Each line is one step for a named client: `send` (JSON), `send_raw`
//! (text), or `expect` — wait for the next message matching the pattern.
//! A pattern matches when every field it names matches: objects by subset,
//! arrays element by element, `"$ANY"` anything, `"$SET"` anything but
//! `null`, `"$SAVE(k)"` anything and
//! remembers it as `k`; `"$LOAD(k)"` and `"$TOKEN(tenant,user)"` in `send`
//! are substituted. An `http` step (`method`, `path`, `bearer`, `body`)
//! sends an API request to the first node, as an ACD would; its `status`
//! must match and its `answer` the pattern (`$SAVE` works there too).

mod common;

use common::*;
use presence_hub::directory::Directory;
use serde_json::Value;
use std::collections::HashMap;

fn matches(pattern: &Value, actual: &Value, saved: &mut HashMap<String, Value>) -> bool {
    match pattern {
        Value::String(s) if s == "$ANY" => true,
        Value::String(s) if s == "$SET" => !actual.is_null(),
        Value::String(s) if s.starts_with("$SAVE(") => {
            saved.insert(s[6..s.len() - 1].to_string(), actual.clone());
            true
        }
        Value::Object(p) => match actual {
            Value::Object(a) => p
                .iter()
                .all(|(k, v)| a.get(k).is_some_and(|av| matches(v, av, saved))),
            _ => false,
        },
        Value::Array(p) => match actual {
            Value::Array(a) => {
                p.len() == a.len() && p.iter().zip(a).all(|(pv, av)| matches(pv, av, saved))
            }
            _ => false,
        },
        other => other == actual,
    }
}

fn substitute(value: &Value, saved: &HashMap<String, Value>) -> Value {
    match value {
        Value::String(s) if s.starts_with("$TOKEN(") => {
            let inner = &s[7..s.len() - 1];
            let (tenant, user) = inner.split_once(',').expect("$TOKEN(tenant,user)");
            Value::String(token(tenant, user))
        }
        Value::String(s) if s.starts_with("$LOAD(") => {
            saved.get(&s[6..s.len() - 1]).cloned().expect("saved value")
        }
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), substitute(v, saved)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(|v| substitute(v, saved)).collect()),
        other => other.clone(),
    }
}

async fn replay(name: &str, text: &str) {
    let hub = TestHub::start_in(|_| {}, Directory::demo).await;
    let mut clients: HashMap<String, Client> = HashMap::new();
    let mut saved = HashMap::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let step: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{name}:{}: {e}", n + 1));
        if let Some(req) = step.get("http") {
            // An HTTP request of the API to the first node (a push from an
            // ACD): its status must be `status`, its answer match `answer`.
            let req = substitute(req, &saved);
            let body = req.get("body").map(|b| b.to_string());
            let (status, answer) = common::http::request(
                hub.node(0).addr,
                req["method"].as_str().expect("method"),
                req["path"].as_str().expect("path"),
                req["bearer"].as_str(),
                "",
                body.as_deref(),
            )
            .await;
            assert_eq!(
                Some(u64::from(status)),
                step["status"].as_u64(),
                "{name}:{}: {answer}",
                n + 1
            );
            if let Some(pattern) = step.get("answer") {
                assert!(
                    matches(pattern, &answer, &mut saved),
                    "{name}:{}: {answer}",
                    n + 1
                );
            }
            continue;
        }
        let Some(who) = step["client"].as_str() else {
            continue;
        };
        if !clients.contains_key(who) {
            // On a cluster, the client named "agent" uses another node than the rest.
            let url = if who == "agent" {
                hub.node(0).url()
            } else {
                hub.url()
            };
            clients.insert(who.to_string(), Client::connect(&url).await);
        }
        let client = clients.get_mut(who).expect("client");
        if let Some(body) = step.get("send") {
            let body = substitute(body, &saved);
            if step["invalid"] == true {
                assert!(
                    !schemas().client.is_valid(&body),
                    "{name}:{}: marked invalid but valid",
                    n + 1
                );
            } else {
                assert_schema(&schemas().client, &body);
            }
            client.send(body).await;
        } else if let Some(raw) = step["send_raw"].as_str() {
            client.send_raw(raw).await;
        } else if let Some(pattern) = step.get("expect") {
            let what = format!("{name}:{} {pattern}", n + 1);
            let got = client
                .recv_where(&what, |v| matches(pattern, v, &mut HashMap::new()))
                .await;
            assert!(matches(pattern, &got, &mut saved));
            assert_schema(&schemas().server, &got);
        }
    }
}

#[tokio::test]
async fn every_example_transcript_replays() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/protocol/examples");
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .expect("examples")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .collect();
    names.sort();
    assert!(names.len() >= 4, "the examples are there");
    for path in names {
        let text = std::fs::read_to_string(&path).expect("read");
        replay(&path.display().to_string(), &text).await;
    }
}

#[test]
fn the_schemas_refuse_what_the_protocol_refuses() {
    let s = schemas();
    for bad in [
        serde_json::json!({"type": "agent", "agent": {"id": "a1"}}),
        serde_json::json!({"type": "reply", "id": "r1", "ok": false, "error": {"code": "oops", "message": "x"}}),
        serde_json::json!({"type": "welcome"}),
        serde_json::json!({"type": "mystery"}),
    ] {
        assert!(!s.server.is_valid(&bad), "server schema accepted {bad}");
    }
    for bad in [
        serde_json::json!({"type": "subscribe", "scope": {"all": true, "channels": []}}),
        serde_json::json!({"type": "command", "action": "pause", "agent_id": "a1"}),
        serde_json::json!({"type": "set_status", "status": "busy"}),
        serde_json::json!({"type": "connect", "channel": {"kind": "fax", "id": "x"}}),
    ] {
        assert!(!s.client.is_valid(&bad), "client schema accepted {bad}");
    }
}
