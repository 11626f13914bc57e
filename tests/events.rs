//! The agent event stream (protocol/EVENTS.md) read over
//! `GET /api/v1/events`: one event per committed change, in version order,
//! with the records before and after and who did it; paging and long
//! polling; heartbeats; bad queries refused. `tests/cluster_events.rs` runs
//! the same against three nodes sharing a Redis (agents on node 0, the
//! reader on node 1), where the stream is the Redis Stream itself, and adds
//! a consumer group reading it directly.

pub mod common;

use common::http::request as http;
use common::{token, TestHub, DEADLINE};
use serde_json::{json, Value};
use std::collections::HashMap;

/// One page of the stream.
async fn page(hub: &TestHub, query: &str) -> Value {
    let (status, body) = http(
        hub.addr,
        "GET",
        &format!("/api/v1/events{query}"),
        Some(&token("acme", "ad1")),
        "",
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Every event the stream keeps, oldest first.
async fn all_events(hub: &TestHub) -> Vec<Value> {
    let mut out = Vec::new();
    let mut query = "?limit=1000".to_string();
    loop {
        let body = page(hub, &query).await;
        let events = body["events"].as_array().cloned().unwrap_or_default();
        if events.is_empty() {
            return out;
        }
        for event in &events {
            common::assert_schema(&common::schemas().event, event);
        }
        out.extend(events);
        query = format!("?limit=1000&after={}", body["next"].as_str().expect("next"));
    }
}

/// Reads until `done` holds for the events so far (they are written by the
/// store with each change, so they are there once the reply is; the
/// deadline only bounds a failure).
async fn events_until(hub: &TestHub, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let events = all_events(hub).await;
        if done(&events) {
            return events;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {DEADLINE:?}: {events:#?}"
        );
        // Wait for the next event rather than spin.
        let last = events
            .last()
            .and_then(|e| e["id"].as_str())
            .unwrap_or("0-0");
        page(hub, &format!("?after={last}&wait_ms=1000")).await;
    }
}

fn changes(events: &[Value]) -> Vec<&Value> {
    events.iter().filter(|e| e["type"] != "heartbeat").collect()
}

/// One event per version, no gap, no repeat; each agent event's `previous`
/// is the `current` of the agent's event before it.
fn check_stream(events: &[Value]) {
    let changes = changes(events);
    for pair in changes.windows(2) {
        assert_eq!(
            common::u64_of(&pair[1]["version"]),
            common::u64_of(&pair[0]["version"]) + 1,
            "versions follow each other: {:#?}",
            pair
        );
    }
    let mut ids: Vec<&str> = events
        .iter()
        .map(|e| e["id"].as_str().expect("id"))
        .collect();
    let sorted = {
        let mut s = ids.clone();
        s.sort_by_key(|id| {
            let (ms, n) = id.split_once('-').expect("<ms>-<n>");
            (ms.parse::<u64>().expect("ms"), n.parse::<u64>().expect("n"))
        });
        s
    };
    assert_eq!(ids, sorted, "ids grow");
    ids.dedup();
    assert_eq!(ids.len(), events.len(), "ids are unique");
    let mut last: HashMap<&str, &Value> = HashMap::new();
    for e in changes.iter().filter(|e| e["type"] == "agent") {
        let agent = e["agent_id"].as_str().expect("agent_id");
        assert_eq!(e["tenant"], "acme");
        if !e["current"].is_null() {
            assert_eq!(e["current"]["version"], e["version"], "{e}");
            assert_eq!(e["current"]["id"], agent);
        }
        if let Some(before) = last.get(agent) {
            assert_eq!(
                &&e["previous"], before,
                "the record before is the one the stream had: {e}"
            );
        }
        last.insert(agent, &e["current"]);
    }
}

#[tokio::test]
async fn every_change_is_one_event_in_version_order_with_the_records_before_and_after() {
    let hub = TestHub::start_with(|c| c.events_heartbeat_s = 0).await;
    let mut a1 = hub.agent("a1", "phone").await;
    a1.ok(json!({"type": "set_status", "status": "paused", "reason": "break"}))
        .await;
    a1.ok(json!({"type": "set_status", "status": "available"}))
        .await;
    let mut admin = hub.staff("ad1", "admin").await;
    admin
        .ok(json!({"type": "update_settings", "settings": {"wrap_up_seconds": 7}}))
        .await;
    admin
        .ok(
            json!({"type": "put_user", "user": {"id": "n1", "name": "Nina New",
                   "roles": ["agent"], "assigned": [{"kind": "queue", "id": "sales"}]}}),
        )
        .await;
    admin
        .ok(json!({"type": "delete_user", "user_id": "n1"}))
        .await;

    let events = all_events(&hub).await;
    check_stream(&events);
    let find = |pred: &dyn Fn(&Value) -> bool| -> Vec<Value> {
        events.iter().filter(|e| pred(e)).cloned().collect()
    };
    let me = json!({"id": "a1", "role": "agent"});
    let pause = find(&|e| e["agent_id"] == "a1" && e["event"] == "pause");
    assert_eq!(pause.len(), 1, "{events:#?}");
    assert_eq!(pause[0]["by"], me);
    assert_eq!(
        (
            &pause[0]["previous"]["status"],
            &pause[0]["current"]["status"]
        ),
        (&json!("available"), &json!("paused"))
    );
    assert_eq!(pause[0]["current"]["pause_reason"], "break");
    assert!(common::u64_of(&pause[0]["at_ms"]) > 1_700_000_000_000);
    // Signing in is an event too: the device came up.
    let up = find(&|e| e["agent_id"] == "a1" && e["previous"]["presence"] == "offline");
    assert_eq!(up.len(), 1, "one sign-in: {events:#?}");
    assert_eq!(up[0]["current"]["presence"], "online");

    let settings = find(&|e| e["type"] == "settings");
    assert_eq!(settings.len(), 1);
    assert_eq!(settings[0]["settings"]["wrap_up_seconds"], 7);
    assert_eq!(settings[0]["by"], json!({"id": "ad1", "role": "admin"}));
    assert!(settings[0].get("agent_id").is_none());

    // A user created then deleted: the record appears (nothing before),
    // then the directory change; the record goes (nothing after), then
    // the directory change — each at its own version.
    let n1: Vec<Value> = find(&|e| e["agent_id"] == "n1" || e["type"] == "directory");
    let kinds: Vec<(String, String, bool, bool)> = n1
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap_or("").to_string(),
                e["event"].as_str().unwrap_or("").to_string(),
                e["previous"].is_null(),
                e["current"].is_null(),
            )
        })
        .collect();
    let s = |t: &str| t.to_string();
    assert_eq!(
        kinds,
        vec![
            (s("agent"), s("user_created"), true, false),
            (s("directory"), s("user_created"), true, true),
            (s("agent"), s("user_deleted"), false, true),
            (s("directory"), s("user_deleted"), true, true),
        ]
    );
    assert_eq!(n1[1]["directory"]["users_put"][0]["id"], "n1");
    assert_eq!(
        n1[1]["directory"].as_object().map(|o| o.len()),
        Some(4),
        "users and channels put and removed, nothing of the store's: {}",
        n1[1]
    );
    assert_eq!(n1[3]["directory"]["users_removed"], json!(["n1"]));
    assert_eq!(n1[2]["previous"]["id"], "n1");
    assert_eq!(n1[3]["by"], json!({"id": "ad1", "role": "admin"}));
}

#[tokio::test]
async fn a_reader_pages_through_the_stream_and_waits_for_what_comes_next() {
    let hub = TestHub::start_with(|c| c.events_heartbeat_s = 0).await;
    let mut a1 = hub.agent("a1", "phone").await;
    for reason in ["break", "lunch"] {
        a1.ok(json!({"type": "set_status", "status": "paused", "reason": reason}))
            .await;
    }
    let all = all_events(&hub).await;
    assert_eq!(all.len(), 3, "sign-in and two pauses: {all:#?}");
    let first = page(&hub, "?limit=2").await;
    assert_eq!(first["events"].as_array().map(Vec::len), Some(2));
    assert_eq!(first["events"][0], all[0]);
    assert_eq!(first["next"], all[1]["id"]);
    assert_eq!(first["oldest"], all[0]["id"]);
    assert_eq!(first["last"], all[2]["id"]);
    let rest = page(
        &hub,
        &format!("?after={}", first["next"].as_str().expect("next")),
    )
    .await;
    assert_eq!(rest["events"], json!([all[2]]));
    // From a time: the first event at or after it.
    let ms = all[1]["id"]
        .as_str()
        .and_then(|id| id.split_once('-'))
        .expect("id")
        .0;
    let from = page(&hub, &format!("?from_ms={ms}")).await;
    assert_eq!(from["events"][0]["id"], all[1]["id"], "{from}");
    // Nothing after the last one: an empty page keeps the position.
    let at_end = all[2]["id"].as_str().expect("id").to_string();
    let empty = page(&hub, &format!("?after={at_end}")).await;
    assert_eq!(
        (empty["events"].clone(), empty["next"].clone()),
        (json!([]), json!(at_end))
    );
    // A reader waiting at the end gets the next change when it comes.
    let waiting = {
        let addr = hub.addr;
        let at_end = at_end.clone();
        tokio::spawn(async move {
            http(
                addr,
                "GET",
                &format!("/api/v1/events?after={at_end}&wait_ms=4000"),
                Some(&token("acme", "ad1")),
                "",
                None,
            )
            .await
        })
    };
    a1.ok(json!({"type": "set_status", "status": "available"}))
        .await;
    let (status, body) = waiting.await.expect("the reader");
    assert_eq!(status, 200);
    let events = body["events"].as_array().cloned().unwrap_or_default();
    assert_eq!(events.len(), 1, "{body}");
    assert_eq!(events[0]["event"], "unpause");
    assert_eq!(body["next"], events[0]["id"]);
}

#[tokio::test]
async fn bad_event_queries_are_refused_and_read_nothing() {
    let hub = TestHub::start_with(|c| c.events_heartbeat_s = 0).await;
    let admin = token("acme", "ad1");
    for (query, field) in [
        ("?after=yesterday", "after"),
        ("?after=1-2-3", "after"),
        ("?limit=0", "limit"),
        ("?limit=1001", "limit"),
        ("?limit=ten", "limit"),
        ("?wait_ms=-1", "wait_ms"),
        ("?from_ms=soon", "from_ms"),
        ("?after=5-0&from_ms=5", "after and from_ms"),
    ] {
        let (status, body) = http(
            hub.addr,
            "GET",
            &format!("/api/v1/events{query}"),
            Some(&admin),
            "",
            None,
        )
        .await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"]["code"], "bad_request", "{query}");
        let message = body["error"]["message"].as_str().unwrap_or("");
        assert!(message.starts_with(field), "{query}: {message}");
    }
    // A place that is not in the stream (trimmed, or lost in a failover)
    // is said to be so, not read past.
    let (status, body) = http(
        hub.addr,
        "GET",
        "/api/v1/events?after=1-0",
        Some(&admin),
        "",
        None,
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "not_found");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("1-0 is not in the stream")),
        "{body}"
    );
    let (status, body) = http(hub.addr, "GET", "/api/v1/events", None, "", None).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (401, &json!("unauthorized"))
    );
    // Events carry every agent of the tenant: a supervisor may not read them.
    let (status, body) = http(
        hub.addr,
        "GET",
        "/api/v1/events",
        Some(&token("acme", "s1")),
        "",
        None,
    )
    .await;
    assert_eq!((status, &body["error"]["code"]), (403, &json!("forbidden")));
    // A tenant reads its own stream only.
    let mut g1 = hub.agent_in("globex", "g1", "phone").await;
    g1.ok(json!({"type": "set_status", "status": "paused", "reason": "break"}))
        .await;
    let acme = all_events(&hub).await;
    assert!(acme.iter().all(|e| e["tenant"] == "acme"), "{acme:#?}");
}

#[tokio::test]
async fn signed_in_agents_get_heartbeats_with_their_current_record() {
    let hub = TestHub::start_with(|c| c.events_heartbeat_s = 1).await;
    let mut a1 = hub.agent("a1", "phone").await;
    let paused = a1
        .ok(json!({"type": "set_status", "status": "paused", "reason": "break"}))
        .await;
    let events = events_until(&hub, "a heartbeat of a1", |events| {
        events
            .iter()
            .any(|e| e["type"] == "heartbeat" && e["agent_id"] == "a1")
    })
    .await;
    check_stream(&events);
    let beat = events
        .iter()
        .find(|e| e["type"] == "heartbeat")
        .expect("a heartbeat");
    assert_eq!(beat["current"], paused["agent"], "the record as it is now");
    assert_eq!(beat["version"], paused["agent"]["version"]);
    assert_eq!(beat["by"], json!({"id": "system", "role": "system"}));
    // Only signed-in agents beat: a2 never signed in.
    assert!(
        !events
            .iter()
            .any(|e| e["type"] == "heartbeat" && e["agent_id"] != "a1"),
        "{events:#?}"
    );
}
