//! Contact-center depth (PROTOCOL.md §10.1–10.6) over real WebSockets, in the `cc`
//! tenant of the test directory (chat capacity 3, reason codes with a
//! 1.2 s break, `sign_in_status: restore`). Runs as `cc_sessions` on one
//! node and as `cluster_cc_sessions` on three nodes sharing a Redis: agents
//! on node 0, supervisors on node 1, so monitor modes and sign-outs are
//! routed across nodes. Every message these tests read is checked against
//! `protocol/schemas`.

mod common;

use common::*;
use presence_hub::domain::{ChannelKind, ChannelRef};
use serde_json::{json, Value};
use std::time::Duration;

const T: &str = "cc";

fn ch(kind: &str, id: &str) -> Value {
    json!({"kind": kind, "id": id})
}

/// Fails unless a message from the hub follows the documented schema.
fn valid(v: Value) -> Value {
    assert_schema(&schemas().server, &v);
    v
}

/// As [`valid`], for the `result` of a successful reply.
fn valid_result(result: Value) -> Value {
    valid(json!({"type": "reply", "id": "r", "ok": true, "result": result}))["result"].clone()
}

async fn start() -> TestHub {
    TestHub::start_with(|c| c.channel_update_ms = 50).await
}

/// An agent device of `cc` on node `node` (after welcome and first state).
async fn agent_on(hub: &TestHub, node: usize, user: &str, device: &str) -> Client {
    agent_with_state(hub, node, user, device).await.0
}

/// As [`agent_on`], with the record of the first `state`.
async fn agent_with_state(hub: &TestHub, node: usize, user: &str, device: &str) -> (Client, Value) {
    let mut c = Client::connect(&hub.node(node).url()).await;
    c.send(
        json!({"type": "hello", "token": token(T, user), "role": "agent",
                  "device": {"id": device, "kind": "softphone"}}),
    )
    .await;
    c.recv_type("welcome").await;
    let state = valid(c.recv_type("state").await);
    (c, state["agent"].clone())
}

/// Waits until the agents' node (0) holds settings that `pred` accepts.
/// On a cluster a settings change reaches the other nodes through the
/// delta stream, so a sign-in there in the moment after the admin's reply
/// may still see the previous settings (PROTOCOL.md §9); a test that signs
/// an agent in on node 0 right after a change waits for it to arrive first.
async fn settings_on_agents_node(hub: &TestHub, pred: impl Fn(&Value) -> bool) {
    let mut s = staff_at(&hub.node(0).url(), T, "cs", "supervisor").await;
    let snapshot = s.subscribe(json!({"all": true})).await;
    if !pred(&snapshot["settings"]) {
        s.recv_where("the settings on the agents' node", |m| {
            m["type"] == "settings" && pred(&m["settings"])
        })
        .await;
    }
}

async fn staff(hub: &TestHub, user: &str, role: &str) -> Client {
    hub.staff_in(T, user, role).await
}

/// A supervisor of `cc` subscribed to everything, with its snapshot.
async fn watcher(hub: &TestHub) -> (Client, Value) {
    let mut s = staff(hub, "cs", "supervisor").await;
    let snapshot = valid(s.subscribe(json!({"all": true})).await);
    (s, snapshot)
}

async fn start_interaction(agent: &mut Client, id: &str, kind: &str, channel: &str) -> Value {
    valid_result(
        agent
            .ok(json!({"type": "interaction_start", "interaction_id": id, "channel": ch(kind, channel)}))
            .await,
    )["agent"]
        .clone()
}

#[tokio::test]
async fn chats_fill_free_slots_kinds_never_mix_and_the_last_end_starts_wrap_up() {
    let hub = start().await;
    let (mut sup, _) = watcher(&hub).await;
    let (mut c1, me) = agent_with_state(&hub, 0, "c1", "d1").await;
    assert_eq!(me["status"], "available");
    assert_eq!(
        me["free_slots"],
        json!({"queue": 1, "chat": 3, "campaign": 1})
    );

    let a = start_interaction(&mut c1, "w1", "chat", "web").await;
    assert_eq!(
        (a["status"].as_str(), &a["free_slots"]),
        (Some("busy"), &json!({"queue": 0, "chat": 2, "campaign": 0}))
    );
    start_interaction(&mut c1, "w2", "chat", "web").await;
    let a = start_interaction(&mut c1, "w3", "chat", "web").await;
    let ids: Vec<&str> = a["interactions"]
        .as_array()
        .expect("interactions")
        .iter()
        .filter_map(|i| i["id"].as_str())
        .collect();
    assert_eq!(ids, ["w1", "w2", "w3"], "oldest first");
    assert_eq!(a["interaction"]["id"], "w1", "interaction is the oldest");
    assert_eq!(a["free_slots"]["chat"], 0);
    let version = a["version"].clone();

    // A fourth chat, a call while chatting, an id held already: refused.
    for (body, why) in [
        (
            json!({"type": "interaction_start", "interaction_id": "w4", "channel": ch("chat", "web")}),
            "full",
        ),
        (
            json!({"type": "interaction_start", "interaction_id": "k1", "channel": ch("queue", "voice")}),
            "kinds never mix",
        ),
    ] {
        let e = c1.refused(body, "invalid_state").await;
        assert!(
            e["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{why}"
        );
    }
    let seen = sup.agent_update("c1", |a| a["version"] == version).await;
    assert_eq!(
        valid(json!({"type": "agent", "agent": seen}))["agent"]["interactions"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );

    // Ending one keeps busy; an id not held stays invalid_state.
    let a = valid_result(
        c1.ok(json!({"type": "interaction_end", "interaction_id": "w2"}))
            .await,
    )["agent"]
        .clone();
    assert_eq!(
        (a["status"].as_str(), a["free_slots"]["chat"].as_u64()),
        (Some("busy"), Some(1))
    );
    c1.refused(
        json!({"type": "interaction_end", "interaction_id": "w2"}),
        "invalid_state",
    )
    .await;
    c1.ok(json!({"type": "interaction_end", "interaction_id": "w1"}))
        .await;
    let a = valid_result(
        c1.ok(json!({"type": "interaction_end", "interaction_id": "w3"}))
            .await,
    )["agent"]
        .clone();
    assert_eq!(a["status"], "wrap_up", "the last one starts wrap-up");
    assert_eq!(
        (a["interaction"].clone(), a["interactions"].clone()),
        (Value::Null, json!([]))
    );
    assert_eq!(
        a["free_slots"],
        json!({"queue": 0, "chat": 0, "campaign": 0})
    );

    // A user's own capacity: c2 may hold one chat only.
    let mut c2 = agent_on(&hub, 0, "c2", "d2").await;
    let a = start_interaction(&mut c2, "x1", "chat", "web").await;
    assert_eq!(a["free_slots"]["chat"], 0);
    c2.refused(
        json!({"type": "interaction_start", "interaction_id": "x2", "channel": ch("chat", "web")}),
        "invalid_state",
    )
    .await;
}

#[tokio::test]
async fn pause_codes_are_enforced_and_the_hub_marks_an_overrun() {
    let hub = start().await;
    let (mut sup, _) = watcher(&hub).await;
    let mut c1 = agent_on(&hub, 0, "c1", "d1").await;
    let e = c1
        .refused(
            json!({"type": "set_status", "status": "paused", "reason": "nap"}),
            "bad_request",
        )
        .await;
    let m = e["message"].as_str().expect("message");
    assert!(
        m.contains("break") && m.contains("lunch"),
        "lists the codes: {m}"
    );
    sup.refused(
        json!({"type": "command", "action": "pause", "agent_id": "c1", "reason": "nap"}),
        "bad_request",
    )
    .await;

    // `break` allows 0.02 minutes: the hub marks the overrun by itself.
    let paused = valid_result(
        c1.ok(json!({"type": "set_status", "status": "paused", "reason": "break"}))
            .await,
    )["agent"]
        .clone();
    assert_eq!(paused["pause_overrun_since_ms"], Value::Null);
    let since = paused["status_since_ms"].as_u64().expect("since");
    let over = sup
        .agent_update("c1", |a| !a["pause_overrun_since_ms"].is_null())
        .await;
    assert_eq!(over["pause_overrun_since_ms"].as_u64(), Some(since + 1200));
    assert_eq!(
        (over["status"].as_str(), over["pause_reason"].as_str()),
        (Some("paused"), Some("break"))
    );
    assert_eq!(
        over["changed_by"],
        json!({"id": "c1", "role": "agent"}),
        "still the agent's pause"
    );
    let state = c1.state(|a| !a["pause_overrun_since_ms"].is_null()).await;
    assert_eq!(
        state["pause_overrun_since_ms"],
        over["pause_overrun_since_ms"]
    );

    let history = sup.ok(json!({"type": "history", "agent_id": "c1"})).await;
    let events: Vec<&str> = history["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter_map(|c| c["event"].as_str())
        .collect();
    assert_eq!(
        events.iter().filter(|e| **e == "pause_overrun").count(),
        1,
        "marked once: {events:?}"
    );

    // Back from the break: the mark goes. A code without a limit never overruns.
    let back = c1
        .ok(json!({"type": "set_status", "status": "available"}))
        .await;
    assert_eq!(back["agent"]["pause_overrun_since_ms"], Value::Null);
    c1.ok(json!({"type": "set_status", "status": "paused", "reason": "lunch"}))
        .await;
    let quiet = c1.drain_for(Duration::from_millis(1500)).await;
    assert!(
        quiet
            .iter()
            .all(|m| m["agent"]["pause_overrun_since_ms"].is_null()),
        "lunch has no limit: {quiet:?}"
    );

    // An admin clears the codes (stored in Redis through Lua, which writes
    // an empty list back as `{}`): any reason again.
    let mut admin = staff(&hub, "cad", "admin").await;
    let r = admin
        .ok(json!({"type": "update_settings", "settings": {"pause_reasons": []}}))
        .await;
    assert!(r["settings"].get("pause_reasons").is_none(), "{r}");
    c1.ok(json!({"type": "set_status", "status": "available"}))
        .await;
    c1.ok(json!({"type": "set_status", "status": "paused", "reason": "nap"}))
        .await;
    let snap = sup.subscribe(json!({"all": true})).await;
    assert!(snap["settings"].get("pause_reasons").is_none());
    if in_snapshot(&snap, "c1").expect("c1")["pause_reason"] != "nap" {
        // On a cluster the supervisor's node may apply the change an
        // instant after it answered the subscribe: then its delta follows.
        sup.agent_update("c1", |a| a["pause_reason"] == "nap").await;
    }
}

#[tokio::test]
async fn unpause_of_a_busy_agent_withdraws_its_pending_pause() {
    let hub = start().await;
    let mut sup = staff(&hub, "cs", "supervisor").await;
    let mut c1 = agent_on(&hub, 0, "c1", "d1").await;
    start_interaction(&mut c1, "k1", "queue", "voice").await;
    let r = sup
        .ok(json!({"type": "command", "action": "pause", "agent_id": "c1", "reason": "lunch"}))
        .await;
    assert_eq!(r["agent"]["pending_pause"]["reason"], "lunch");
    let r = valid_result(
        sup.ok(json!({"type": "command", "action": "unpause", "agent_id": "c1"}))
            .await,
    );
    assert_eq!(
        (r["agent"]["status"].as_str(), &r["agent"]["pending_pause"]),
        (Some("busy"), &Value::Null)
    );
    sup.refused(
        json!({"type": "command", "action": "unpause", "agent_id": "c1"}),
        "invalid_state",
    )
    .await;
}

#[tokio::test]
async fn sign_in_status_restore_and_paused_and_settings_are_validated() {
    let hub = start().await;
    let mut c1 = agent_on(&hub, 0, "c1", "d1").await;
    c1.ok(json!({"type": "set_status", "status": "paused", "reason": "lunch"}))
        .await;
    c1.close().await;
    // Back within restore_window_s: paused again, same reason.
    let (_again, me) = agent_with_state(&hub, 0, "c1", "d1").await;
    assert_eq!(
        (me["status"].as_str(), me["pause_reason"].as_str()),
        (Some("paused"), Some("lunch"))
    );
    // Offline while available: back available.
    let (_c3, me) = agent_with_state(&hub, 0, "c3", "d3").await;
    assert_eq!(me["status"], "available");

    let mut admin = staff(&hub, "cad", "admin").await;
    let (mut sup, before) = watcher(&hub).await;
    for (bad, what) in [
        (
            json!({"sign_in_status": "paused", "sign_in_reason": "nope"}),
            "sign_in_reason",
        ),
        (json!({"capacity": {"chat": 101}}), "capacity.chat"),
        (
            json!({"pause_reasons": [{"code": "x", "label": "X", "max_minutes": -1}]}),
            "max_minutes",
        ),
        (
            json!({"pause_reasons": [{"code": "x", "label": "X"}, {"code": "x", "label": "Y"}]}),
            "repeated",
        ),
        (json!({"sign_in_status": "sometimes"}), "sometimes"),
        (json!({"restore_window_s": 10_000_000}), "restore_window_s"),
    ] {
        let e = admin
            .refused(
                json!({"type": "update_settings", "settings": bad}),
                "bad_request",
            )
            .await;
        assert!(
            e["message"].as_str().is_some_and(|m| m.contains(what)),
            "{what}: {e}"
        );
    }
    let after = sup.subscribe(json!({"all": true})).await;
    assert_eq!(
        after["settings"], before["settings"],
        "a refused patch changes nothing"
    );

    let r = admin
        .ok(json!({"type": "update_settings", "settings": {"sign_in_status": "paused", "sign_in_reason": "signed_in"}}))
        .await;
    assert_eq!(r["settings"]["sign_in_status"], "paused");
    let s = valid(sup.recv_type("settings").await);
    assert_eq!(s["settings"]["sign_in_status"], "paused");
    settings_on_agents_node(&hub, |s| s["sign_in_status"] == "paused").await;
    let (_c4, me) = agent_with_state(&hub, 0, "c4", "d4").await;
    assert_eq!(
        (me["status"].as_str(), me["pause_reason"].as_str()),
        (Some("paused"), Some("signed_in"))
    );

    // Capacity changes show in free_slots at once.
    admin
        .ok(json!({"type": "update_settings", "settings": {"capacity": {"chat": 2}}}))
        .await;
    let a = sup
        .agent_update("c3", |a| a["free_slots"]["chat"] == 2)
        .await;
    assert_eq!(
        a["free_slots"],
        json!({"queue": 1, "chat": 2, "campaign": 1})
    );
}

fn voice() -> ChannelRef {
    ChannelRef::new(ChannelKind::Queue, "voice")
}

#[tokio::test]
async fn channel_counters_in_the_snapshot_and_as_channel_messages() {
    let hub = start().await;
    let (mut sup, snapshot) = watcher(&hub).await;
    let entry = snapshot["channels"]
        .as_array()
        .expect("channels")
        .iter()
        .find(|c| c["id"] == "voice")
        .cloned()
        .expect("voice");
    assert_eq!(entry["counts"]["offline"], 0, "nobody connected yet");
    let mut c1 = agent_on(&hub, 0, "c1", "d1").await;
    let me = c1
        .ok(json!({"type": "connect", "channel": ch("queue", "voice")}))
        .await;
    let since = me["agent"]["status_since_ms"].as_u64();
    let m = valid(
        sup.recv_where("voice counters", |v| {
            v["type"] == "channel"
                && v["channel"]["id"] == "voice"
                && v["channel"]["counts"]["available"] == 1
        })
        .await,
    );
    assert_eq!(m["channel"]["connected"], 1);
    assert_eq!(m["channel"]["name"], "Voice");
    assert_eq!(m["channel"]["longest_available_since_ms"].as_u64(), since);

    start_interaction(&mut c1, "k1", "queue", "voice").await;
    let m = sup
        .recv_where("busy counted", |v| {
            v["type"] == "channel" && v["channel"]["counts"]["busy"] == 1
        })
        .await;
    assert_eq!(m["channel"]["longest_available_since_ms"], Value::Null);

    // Offline but connected counts as offline.
    c1.close().await;
    sup.recv_where("offline counted", |v| {
        v["type"] == "channel"
            && v["channel"]["counts"]["offline"] == 1
            && v["channel"]["connected"] == 1
    })
    .await;
    // Nothing changes: no channel message comes.
    let quiet = sup.drain_for(Duration::from_millis(300)).await;
    let rest: Vec<_> = quiet.iter().filter(|m| m["type"] == "channel").collect();
    assert!(rest.len() <= 1, "only the change above, once: {rest:?}");

    // A scoped supervisor gets only its channels' counters.
    let mut cq = staff(&hub, "cq", "supervisor").await;
    let snap = cq.subscribe(json!({"all": true})).await;
    let names: Vec<&str> = snap["channels"]
        .as_array()
        .expect("channels")
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert_eq!(names, ["renewals"]);
    let mut c3 = agent_on(&hub, 0, "c3", "d3").await;
    c3.ok(json!({"type": "connect", "channel": ch("queue", "voice")}))
        .await;
    let quiet = cq.drain_for(Duration::from_millis(300)).await;
    assert!(quiet.iter().all(|m| m["type"] != "channel"), "{quiet:?}");
}

#[tokio::test]
async fn counters_are_equal_on_every_node_after_a_burst() {
    let hub = start().await;
    // A supervisor of `cc` on every node keeps every node attached.
    let mut sups = Vec::new();
    for n in 0..hub.nodes.len() {
        let mut s = Client::connect(&hub.node(n).url()).await;
        s.send(json!({"type": "hello", "token": token(T, "cs"), "role": "supervisor"}))
            .await;
        s.recv_type("welcome").await;
        s.subscribe(json!({"all": true})).await;
        sups.push(s);
    }
    let mut agents = Vec::new();
    for (i, user) in ["c1", "c2", "c3", "c4"].iter().enumerate() {
        let mut a = agent_on(&hub, i, user, "d").await;
        a.ok(json!({"type": "connect", "channel": ch("queue", "voice")}))
            .await;
        agents.push(a);
    }
    // A burst: every agent changes several times.
    for round in 0..5 {
        for (i, a) in agents.iter_mut().enumerate() {
            let id = format!("k{round}-{i}");
            a.ok(json!({"type": "interaction_start", "interaction_id": id, "channel": ch("queue", "voice")}))
                .await;
            a.ok(json!({"type": "interaction_end", "interaction_id": id}))
                .await;
            a.ok(json!({"type": "end_wrap_up"})).await;
        }
    }
    agents[0]
        .ok(json!({"type": "set_status", "status": "paused", "reason": "lunch"}))
        .await;
    start_interaction(&mut agents[1], "last", "queue", "voice").await;
    let expect = json!({"available": 2, "busy": 1, "wrap_up": 0, "paused": 1, "offline": 0});
    for (n, s) in sups.iter_mut().enumerate() {
        s.recv_where(&format!("final counters on node {n}"), |v| {
            v["type"] == "channel"
                && v["channel"]["id"] == "voice"
                && v["channel"]["counts"] == expect
        })
        .await;
    }
    let summaries: Vec<_> = hub
        .nodes
        .iter()
        .map(|n| {
            n.hub
                .attached_tenant(T)
                .expect("attached")
                .channel_summary(&voice())
        })
        .collect();
    assert!(summaries.windows(2).all(|w| w[0] == w[1]), "{summaries:?}");
    assert_eq!(summaries[0].connected, 4);
}

#[tokio::test]
async fn monitor_modes_are_asked_of_the_device_and_listed_in_monitors() {
    let hub = start().await;
    let mut c1 = agent_on(&hub, 0, "c1", "d1").await;
    let mut sup = staff(&hub, "cs", "supervisor").await;

    let ask = |mode: Option<&str>| {
        let mut body = json!({"type": "command", "id": "m", "action": "monitor", "agent_id": "c1"});
        if let Some(mode) = mode {
            body["mode"] = json!(mode);
        }
        body
    };
    // Default: listen, and the device's command says so.
    sup.send(ask(None)).await;
    let cmd = valid(c1.recv_type("command").await);
    assert_eq!(
        (cmd["action"].as_str(), cmd["mode"].as_str()),
        (Some("monitor"), Some("listen"))
    );
    c1.ok(json!({"type": "command_ack", "command_id": cmd["command_id"], "ok": true}))
        .await;
    let r = valid(sup.recv_where("reply", |v| v["type"] == "reply").await);
    assert_eq!(r["result"]["agent"]["monitors"][0]["mode"], "listen");
    assert_eq!(r["result"]["agent"]["monitored_by"], json!(["cs"]));

    // Whisper: a mode change, asked the same way.
    sup.send(ask(Some("whisper"))).await;
    let cmd = valid(c1.recv_type("command").await);
    assert_eq!(cmd["mode"], "whisper");
    c1.ok(json!({"type": "command_ack", "command_id": cmd["command_id"], "ok": true}))
        .await;
    let r = sup.recv_where("reply", |v| v["type"] == "reply").await;
    assert_eq!(r["ok"], true, "{r}");
    let m = &r["result"]["agent"]["monitors"];
    assert_eq!(
        (m[0]["by"].as_str(), m[0]["mode"].as_str()),
        (Some("cs"), Some("whisper"))
    );
    c1.state(|a| a["monitors"][0]["mode"] == "whisper").await;

    // The same mode again: invalid_state, the device is not bothered.
    sup.refused(ask(Some("whisper")), "invalid_state").await;
    // Barge refused by the device: still whispering.
    sup.send(ask(Some("barge"))).await;
    let cmd = c1.recv_type("command").await;
    assert_eq!(cmd["mode"], "barge");
    c1.ok(json!({"type": "command_ack", "command_id": cmd["command_id"], "ok": false, "reason": "not now"}))
        .await;
    let r = sup.recv_where("reply", |v| v["type"] == "reply").await;
    assert_eq!(r["error"]["code"], "forbidden", "{r}");
    let snap = sup.subscribe(json!({"all": true})).await;
    assert_eq!(
        in_snapshot(&snap, "c1").expect("c1")["monitors"][0]["mode"],
        "whisper"
    );

    // Stop: the device hears it with the mode that ends.
    let r = sup
        .ok(json!({"type": "command", "action": "stop_monitor", "agent_id": "c1"}))
        .await;
    assert_eq!(r["agent"]["monitors"], json!([]));
    let stop = valid(
        c1.recv_where("stop", |v| {
            v["type"] == "command" && v["action"] == "stop_monitor"
        })
        .await,
    );
    assert_eq!(stop["mode"], "whisper");
    sup.refused(
        json!({"type": "command", "action": "monitor", "agent_id": "c1", "mode": "shout"}),
        "bad_request",
    )
    .await;
}

#[tokio::test]
async fn sign_out_closes_every_device_with_4010_offline_at_once_on_every_node() {
    // A long grace: offline must not wait for it.
    let hub = TestHub::start_with(|c| c.reconnect_grace_ms = 60_000).await;
    let (mut watch, _) = watcher(&hub).await;
    let mut d1 = agent_on(&hub, 0, "c1", "d1").await;
    let mut d2 = agent_on(&hub, 2, "c1", "d2").await; // another node in the cluster
    start_interaction(&mut d1, "k1", "queue", "voice").await;

    // Who may: not an agent, not a supervisor out of scope.
    let mut c2 = agent_on(&hub, 0, "c2", "d").await;
    c2.refused(
        json!({"type": "command", "action": "sign_out", "agent_id": "c1"}),
        "forbidden",
    )
    .await;
    let mut cq = staff(&hub, "cq", "supervisor").await;
    cq.refused(
        json!({"type": "command", "action": "sign_out", "agent_id": "c1"}),
        "forbidden",
    )
    .await;
    let mut sup = staff(&hub, "cs", "supervisor").await;
    sup.refused(
        json!({"type": "command", "action": "sign_out", "agent_id": "c1", "reason": "x".repeat(201)}),
        "bad_request",
    )
    .await;

    let r = valid_result(
        sup.ok(json!({"type": "command", "action": "sign_out", "agent_id": "c1", "reason": "end of shift"}))
            .await,
    );
    assert_eq!(
        (
            r["agent"]["presence"].as_str(),
            r["agent"]["status"].as_str()
        ),
        (Some("offline"), Some("offline"))
    );
    for d in [&mut d1, &mut d2] {
        let m = valid(d.recv_type("signed_out").await);
        assert_eq!(m["by"], json!({"id": "cs", "role": "supervisor"}));
        assert_eq!(m["reason"], "end of shift");
        // Nothing after `signed_out` but the close (PROTOCOL.md §3.2).
        assert_eq!(d.closed_next().await.code, 4010);
    }
    watch
        .agent_update("c1", |a| a["presence"] == "offline")
        .await;
    let history = sup.ok(json!({"type": "history", "agent_id": "c1"})).await;
    assert!(history["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .any(|c| c["event"] == "sign_out" && c["by"]["id"] == "cs"));
    // Signing out an agent already offline changes nothing.
    let again = valid_result(
        sup.ok(json!({"type": "command", "action": "sign_out", "agent_id": "c1"}))
            .await,
    );
    assert_eq!(again["agent"]["version"], r["agent"]["version"]);

    // The agent may sign in again.
    let (_back, me) = agent_with_state(&hub, 1, "c1", "d1").await;
    assert_eq!(me["status"], "available");
    watch
        .agent_update("c1", |a| a["presence"] == "online")
        .await;
}

#[tokio::test]
async fn signing_out_an_offline_agent_closes_the_socket_its_lapsed_device_kept() {
    let hub = TestHub::start_with(|c| {
        c.presence_ttl_ms = 600;
        c.heartbeat_interval_ms = 100;
    })
    .await;
    let mut c1 = agent_on(&hub, 0, "c1", "d1").await;
    // Silent past its TTL: offline, with its socket still open.
    let off = c1.state(|a| a["presence"] == "offline").await;
    let mut sup = staff(&hub, "cs", "supervisor").await;
    let r = valid_result(
        sup.ok(json!({"type": "command", "action": "sign_out", "agent_id": "c1", "reason": "gone home"}))
            .await,
    );
    assert_eq!(r["agent"]["version"], off["version"], "nothing changed");
    let m = valid(c1.recv_type("signed_out").await);
    assert_eq!(m["reason"], "gone home");
    assert_eq!(c1.closed().await.code, 4010);
}

#[tokio::test]
async fn channel_messages_wait_for_the_next_update_period() {
    // One period per minute: after the tick at attach, none within the test.
    let hub = TestHub::start_with(|c| c.channel_update_ms = 60_000).await;
    let (mut sup, _) = watcher(&hub).await;
    let mut c1 = agent_on(&hub, 0, "c1", "d1").await;
    c1.ok(json!({"type": "connect", "channel": ch("queue", "voice")}))
        .await;
    sup.agent_update("c1", |a| {
        channel(a, "queue", "voice").is_some_and(|c| c["connected"] == true)
    })
    .await;
    let quiet = sup.drain_for(Duration::from_millis(500)).await;
    assert!(
        quiet.iter().all(|m| m["type"] != "channel"),
        "no channel message before the period ends: {quiet:?}"
    );
    // A snapshot is always current.
    let snap = sup.subscribe(json!({"all": true})).await;
    let voice = snap["channels"]
        .as_array()
        .expect("channels")
        .iter()
        .find(|c| c["id"] == "voice")
        .cloned()
        .expect("voice");
    assert_eq!(
        (
            voice["connected"].as_u64(),
            voice["counts"]["available"].as_u64()
        ),
        (Some(1), Some(1))
    );
}
