//! Bad input (DESIGN.md §7): each gets its documented error or close code, the
//! connection's other state is untouched, no other connection is affected,
//! and no record changes. Plus the slow reader whose memory stays bounded.

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// A snapshot once it shows `online` agents online (on a cluster the
/// supervisors' node learns of an agent's device a moment after its own).
async fn settled_snapshot(hub: &TestHub, online: &[&str]) -> Value {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let agents = snapshot_agents(hub).await;
        let all = online.iter().all(|id| {
            agents
                .as_array()
                .and_then(|l| l.iter().find(|a| a["id"] == *id))
                .is_some_and(|a| a["presence"] == "online")
        });
        if all {
            return agents;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{online:?} never all online: {agents}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

async fn snapshot_agents(hub: &TestHub) -> Value {
    let mut s = hub.staff("ad1", "admin").await;
    let snapshot = s.subscribe(json!({"all": true})).await;
    snapshot["agents"].clone()
}

#[tokio::test]
async fn malformed_messages_get_errors_and_change_nothing() {
    let hub = TestHub::start().await;
    let mut a1 = hub.agent("a1", "d1").await;
    let mut other = hub.agent("a2", "d2").await;
    let before = settled_snapshot(&hub, &["a1", "a2"]).await;

    for (text, code) in [
        ("{not json", "bad_request"),
        ("[1, 2]", "bad_request"),
        ("\"hello\"", "bad_request"),
        (r#"{"no_type": true}"#, "bad_request"),
        (r#"{"type": 7}"#, "bad_request"),
        (r#"{"type": "teleport"}"#, "unknown_type"),
        (r#"{"type": "set_status", "status": 5}"#, "bad_request"),
        (
            r#"{"type": "connect", "channel": {"kind": "fax", "id": "x"}}"#,
            "bad_request",
        ),
        (r#"{"type": "connect"}"#, "bad_request"),
        (
            r#"{"type": "hello", "token": "x", "role": "agent"}"#,
            "bad_request",
        ),
        (r#"{"type": "heartbeat", "id": 5}"#, "bad_request"),
    ] {
        a1.send_raw(text).await;
        let e = a1.recv_type("error").await;
        assert_eq!(e["error"]["code"], code, "{text}: {e}");
    }
    // With an id, the same failures come back as replies carrying it.
    let r = a1.request(json!({"type": "teleport"})).await;
    assert_eq!(
        (r["ok"].as_bool(), r["error"]["code"].as_str()),
        (Some(false), Some("unknown_type"))
    );
    let r = a1
        .request(json!({"type": "set_status", "status": ["paused"]}))
        .await;
    assert_eq!(r["error"]["code"], "bad_request");
    assert!(
        r["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("invalid type")),
        "{r}"
    );
    // Binary frames are refused, the connection stays.
    a1.send_message(Message::binary(vec![1u8, 2, 3])).await;
    assert_eq!(a1.recv_type("error").await["error"]["code"], "bad_request");
    // Unknown fields are ignored.
    a1.ok(json!({"type": "heartbeat", "extra": {"nested": [1, 2]}}))
        .await;
    // The connection and its neighbour still work; nothing changed.
    a1.ok(json!({"type": "heartbeat"})).await;
    other.ok(json!({"type": "heartbeat"})).await;
    assert_eq!(snapshot_agents(&hub).await, before);
}

#[tokio::test]
async fn bad_hellos_close_with_their_codes() {
    let hub = TestHub::start().await;
    let expired = {
        use jsonwebtoken::{encode, EncodingKey, Header};
        let claims =
            json!({"sub": "a1", "tenant": "acme", "exp": presence_hub::clock::unix_s() - 10});
        encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .expect("encode")
    };
    let forged = presence_hub::auth::mint("not-the-secret", "acme", "s1", 600).expect("mint");
    for (hello, code) in [
        ("nonsense".to_string(), 4000),
        (json!({"type": "heartbeat"}).to_string(), 4000),
        (json!({"type": "hello", "role": "agent"}).to_string(), 4000),
        (json!({"type": "hello", "token": token("acme", "a1"), "role": "wizard"}).to_string(), 4000),
        (json!({"type": "hello", "token": token("acme", "a1"), "role": "agent"}).to_string(), 4000),
        (json!({"type": "hello", "token": token("acme", "a1"), "role": "agent", "device": {"id": ""}}).to_string(), 4000),
        (json!({"type": "hello", "token": forged, "role": "supervisor"}).to_string(), 4003),
        (json!({"type": "hello", "token": expired, "role": "agent", "device": {"id": "d"}}).to_string(), 4003),
        (json!({"type": "hello", "token": "a.b.c", "role": "supervisor"}).to_string(), 4003),
        (json!({"type": "hello", "token": token("acme", "a1"), "role": "supervisor"}).to_string(), 4003),
        (json!({"type": "hello", "token": token("acme", "ghost"), "role": "supervisor"}).to_string(), 4003),
        (json!({"type": "hello", "token": token("nowhere", "a1"), "role": "agent", "device": {"id": "d"}}).to_string(), 4003),
    ] {
        let mut c = hub.raw().await;
        c.send_raw(&hello).await;
        let closed = c.closed().await;
        assert_eq!(closed.code, code, "{hello}: {closed:?}");
        assert!(!closed.reason.is_empty(), "the close says why");
    }
    let mut c = hub.raw().await;
    c.send_message(Message::binary(vec![0u8])).await;
    assert_eq!(c.closed().await.code, 4000);
    // The refused attempts left no trace.
    let agents = snapshot_agents(&hub).await;
    assert!(agents
        .as_array()
        .expect("agents")
        .iter()
        .all(|a| a["presence"] == "offline"));
}

#[tokio::test]
async fn no_hello_in_time_closes_with_4001() {
    let hub = TestHub::start_with(|c| c.auth_timeout_ms = 200).await;
    let mut c = hub.raw().await;
    let closed = c.closed().await;
    assert_eq!(closed.code, 4001, "{closed:?}");
}

#[tokio::test]
async fn an_oversize_frame_closes_with_1009_and_nothing_else() {
    let hub = TestHub::start_with(|c| c.max_frame_bytes = 1024).await;
    let (mut sup, _) = hub.watcher("s1").await;
    let mut a1 = hub.agent("a1", "d1").await;
    let mut a2 = hub.agent("a2", "d2").await;
    let before = settled_snapshot(&hub, &["a1", "a2"]).await;
    let huge =
        json!({"type": "set_status", "status": "paused", "reason": "x".repeat(4096)}).to_string();
    a1.send_raw(&huge).await;
    let e = a1.recv_type("error").await;
    assert_eq!(e["error"]["code"], "too_large");
    assert_eq!(a1.closed().await.code, 1009);
    // Nothing else was affected: a2 works, a1's record did not change
    // (its clean-ish close is a policy close: the device goes inactive).
    a2.ok(json!({"type": "heartbeat"})).await;
    let off = sup.agent_update("a1", |a| a["presence"] == "offline").await;
    assert_eq!(off["pause_reason"], Value::Null);
    let after = snapshot_agents(&hub).await;
    let a2_before = before
        .as_array()
        .and_then(|l| l.iter().find(|a| a["id"] == "a2"))
        .cloned();
    let a2_after = after
        .as_array()
        .and_then(|l| l.iter().find(|a| a["id"] == "a2"))
        .cloned();
    assert_eq!(a2_before, a2_after);
}

#[tokio::test]
async fn a_flood_is_rate_limited_then_closed_with_4008() {
    let hub = TestHub::start_with(|c| c.rate_limit_per_sec = 20).await;
    let mut flood = hub.agent("a1", "d1").await;
    let mut calm = hub.agent("a2", "d2").await;
    for i in 0..200 {
        flood
            .send(json!({"type": "heartbeat", "id": format!("f{i}")}))
            .await;
    }
    let limited = flood
        .recv_where("rate_limited", |v| v["error"]["code"] == "rate_limited")
        .await;
    assert_eq!(
        limited["type"], "reply",
        "requests with an id get a reply: {limited}"
    );
    assert_eq!(flood.closed().await.code, 4008);
    calm.ok(json!({"type": "heartbeat"})).await;
}

#[tokio::test]
async fn a_slow_reader_gets_coalesced_deltas_in_increasing_version_and_others_are_not_held_back() {
    let hub = TestHub::start_with(|c| c.rate_limit_per_sec = 1_000_000).await;
    let mut slow = Client::connect_small_buffer(hub.addr, &hub.url()).await;
    slow.send(json!({"type": "hello", "token": token("acme", "s1"), "role": "supervisor"}))
        .await;
    slow.recv_type("welcome").await;
    let snapshot = slow.subscribe(json!({"all": true})).await;
    let (mut fast, _) = hub.watcher("a3").await;
    let mut agents = [hub.agent("a1", "d1").await, hub.agent("a2", "d2").await];

    // Many changes, pipelined, while `slow` reads nothing: several MB of
    // deltas, more than the kernel's socket buffers can absorb (up to 4 MB
    // for the sender here), so the rest has to wait in the hub's outbox.
    const ROUNDS: usize = 4000;
    // The two agents' changes interleave, so the slow reader's coalesced
    // deltas of one agent get ahead of the other's older ones, which the
    // hub must put back in version order.
    for i in 0..ROUNDS {
        for agent in agents.iter_mut() {
            let body = if i % 2 == 0 {
                json!({"type": "set_status", "status": "paused", "reason": format!("r{i}")})
            } else {
                json!({"type": "set_status", "status": "available"})
            };
            agent.send(body).await;
        }
    }
    for agent in agents.iter_mut() {
        // All applied: each change is a round trip through the store (and,
        // in the cluster, Redis pub/sub), so draining 4 000 of them takes
        // seconds; this waits for the condition, not for a speed.
        agent
            .send(json!({"type": "heartbeat", "id": "drained"}))
            .await;
        let drained = agent
            .recv_where_within("the reply after the burst", Duration::from_secs(60), |v| {
                v["type"] == "reply" && v["id"] == "drained"
            })
            .await;
        assert_eq!(drained["ok"], true, "{drained}");
    }
    let mut finals = Vec::new();
    for agent in agents.iter_mut() {
        let last = agent
            .ok(json!({"type": "set_status", "status": "paused", "reason": "final"}))
            .await;
        finals.push(last["agent"].clone());
    }
    // The fast watcher is not held back by the slow one.
    for last in &finals {
        let id = last["id"].as_str().expect("id");
        let seen = fast
            .agent_update(id, |a| a["version"] == last["version"])
            .await;
        assert_eq!(seen["pause_reason"], "final");
    }
    // The slow one gets the newest record of each agent, having skipped
    // intermediate versions instead of queueing every one of them, and its
    // deltas come in increasing version across all agents (PROTOCOL.md
    // §5.1.1: coalescing included, which a resume relies on).
    let mut deltas = 0;
    let mut last_version = u64_of(&snapshot["seq"]);
    let mut newest = std::collections::HashMap::new();
    while newest.len() < finals.len()
        || finals
            .iter()
            .any(|f| newest.get(f["id"].as_str().unwrap_or("")) != Some(&f["version"]))
    {
        let v = slow.recv().await;
        if v["type"] == "agent" {
            deltas += 1;
            let version = u64_of(&v["agent"]["version"]);
            assert!(
                version > last_version,
                "delta {version} after {last_version}: not in increasing version across agents"
            );
            last_version = version;
            let id = v["agent"]["id"].as_str().unwrap_or("").to_string();
            if let Some(prev) = newest.get(&id).and_then(Value::as_u64) {
                assert!(
                    v["agent"]["version"].as_u64() > Some(prev),
                    "per agent, versions only increase"
                );
            }
            newest.insert(id, v["agent"]["version"].clone());
        }
    }
    let changes = 2 * (ROUNDS + 2);
    // Every change was a distinct version: receiving fewer deltas than
    // changes, yet the newest of each agent, means versions were skipped.
    assert!(
        deltas < changes,
        "the slow reader got {deltas} of {changes} deltas: nothing was coalesced"
    );
}

#[tokio::test]
async fn connections_past_the_limit_are_refused_at_the_handshake() {
    let hub = TestHub::start_with(|c| c.max_connections = 2).await;
    let _one = Client::connect(&hub.url()).await;
    let _two = Client::connect(&hub.url()).await;
    let third = tokio_tungstenite::connect_async(hub.url()).await;
    match third {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503)
        }
        other => panic!("expected HTTP 503, got {other:?}"),
    }
    // Room again once one leaves.
    drop(_one);
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        match tokio_tungstenite::connect_async(hub.url()).await {
            Ok(_) => break,
            Err(_) if tokio::time::Instant::now() < deadline => tokio::task::yield_now().await,
            Err(e) => panic!("no room after a connection closed: {e}"),
        }
    }
}
