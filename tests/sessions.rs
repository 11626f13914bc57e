//! Agent, supervisor and admin sessions over real WebSockets: every
//! transition of the state machine and its refusals, every row of the
//! permission table, and the seed rules of DESIGN.md §1.

mod common;

use common::*;
use serde_json::{json, Value};

fn ch(kind: &str, id: &str) -> Value {
    json!({"kind": kind, "id": id})
}

async fn version_of(s: &mut Client, agent: &str) -> u64 {
    let snapshot = s.subscribe(json!({"all": true})).await;
    in_snapshot(&snapshot, agent).expect("agent in snapshot")["version"]
        .as_u64()
        .expect("version")
}

#[tokio::test]
async fn hello_gets_welcome_then_state_and_the_agent_is_online() {
    let hub = TestHub::start().await;
    let (mut sup, snapshot) = hub.watcher("s1").await;
    assert_eq!(
        in_snapshot(&snapshot, "a1").expect("a1")["presence"],
        "offline"
    );

    let mut c = hub.raw().await;
    c.send(
        json!({"type": "hello", "token": token("acme", "a1"), "role": "agent",
                  "device": {"id": "d1", "kind": "softphone", "label": "Desk"}}),
    )
    .await;
    let welcome = c.recv().await;
    assert_eq!(welcome["type"], "welcome");
    assert_eq!(welcome["protocol"], 1);
    assert_eq!(
        welcome["user"],
        json!({"id": "a1", "name": "Ana Souza", "tenant": "acme", "roles": ["agent"]})
    );
    assert_eq!(welcome["heartbeat_interval_ms"], 10_000);
    assert_eq!(welcome["presence_ttl_ms"], 30_000);
    assert!(welcome["session_id"]
        .as_str()
        .is_some_and(|s| !s.is_empty()));
    assert!(welcome["node_id"].as_str().is_some_and(|s| !s.is_empty()));
    if CLUSTER {
        // This raw connection is on the third node; the watcher on the second.
        assert_eq!(welcome["node_id"], "node-2");
    }
    let state = c.recv().await;
    assert_eq!(state["type"], "state");
    let me = &state["agent"];
    assert_eq!(
        (me["presence"].as_str(), me["status"].as_str()),
        (Some("online"), Some("available"))
    );
    assert_eq!(me["devices"][0]["id"], "d1");
    assert_eq!(me["devices"][0]["kind"], "softphone");
    assert_eq!(me["devices"][0]["active"], true);

    let seen = sup.agent_update("a1", |a| a["presence"] == "online").await;
    assert!(
        u64_of(&seen["version"]) > u64_of(&snapshot["seq"]),
        "deltas come after the snapshot's seq"
    );
}

#[tokio::test]
async fn status_pause_interaction_wrap_up_round_trip() {
    let hub = TestHub::start().await;
    let (mut sup, _) = hub.watcher("s1").await;
    let mut a1 = hub.agent("a1", "d1").await;
    let mut last = 0;
    let mut step = async |a1: &mut Client, sup: &mut Client, body: Value, status: &str| -> Value {
        let record = a1.ok(body).await["agent"].clone();
        assert_eq!(record["status"], status, "{record}");
        let own = a1.state(|a| a["version"] == record["version"]).await;
        assert_eq!(own, record, "the agent's own state matches the reply");
        let delta = sup
            .agent_update("a1", |a| a["version"] == record["version"])
            .await;
        assert_eq!(delta, record, "the supervisor sees the same record");
        let v = record["version"].as_u64().expect("version");
        assert!(v > last, "versions strictly increase");
        last = v;
        record
    };

    let r = step(
        &mut a1,
        &mut sup,
        json!({"type": "set_status", "status": "paused", "reason": "break"}),
        "paused",
    )
    .await;
    assert_eq!(r["pause_reason"], "break");
    assert_eq!(r["changed_by"], json!({"id": "a1", "role": "agent"}));
    let r = step(
        &mut a1,
        &mut sup,
        json!({"type": "set_status", "status": "available"}),
        "available",
    )
    .await;
    assert_eq!(r["pause_reason"], Value::Null);
    let r = step(&mut a1, &mut sup,
        json!({"type": "interaction_start", "interaction_id": "call-9", "channel": ch("queue", "sales")}), "busy").await;
    assert_eq!(r["interaction"]["id"], "call-9");
    assert_eq!(r["interaction"]["channel"], ch("queue", "sales"));
    let before_end = presence_hub::clock::now_ms();
    let r = step(
        &mut a1,
        &mut sup,
        json!({"type": "interaction_end", "interaction_id": "call-9"}),
        "wrap_up",
    )
    .await;
    assert_eq!(r["interaction"], Value::Null);
    let until = r["wrap_up_until_ms"].as_u64().expect("deadline");
    assert!(until >= before_end + 30_000 && until <= presence_hub::clock::now_ms() + 30_000);
    let r = step(
        &mut a1,
        &mut sup,
        json!({"type": "end_wrap_up"}),
        "available",
    )
    .await;
    assert_eq!(r["wrap_up_until_ms"], Value::Null);
}

#[tokio::test]
async fn refused_transitions_are_invalid_state_and_change_nothing() {
    let hub = TestHub::start().await;
    let mut a1 = hub.agent("a1", "d1").await;
    let mut sup = hub.staff("s1", "supervisor").await;
    let before = version_of(&mut sup, "a1").await;

    a1.refused(
        json!({"type": "set_status", "status": "available"}),
        "invalid_state",
    )
    .await;
    a1.refused(
        json!({"type": "interaction_end", "interaction_id": "x"}),
        "invalid_state",
    )
    .await;
    a1.refused(json!({"type": "end_wrap_up"}), "invalid_state")
        .await;
    a1.refused(
        json!({"type": "disconnect", "channel": ch("queue", "sales")}),
        "invalid_state",
    )
    .await;
    a1.refused(
        json!({"type": "set_status", "status": "busy"}),
        "bad_request",
    )
    .await;
    a1.refused(
        json!({"type": "set_status", "status": "paused"}),
        "bad_request",
    )
    .await;
    a1.refused(
        json!({"type": "connect", "channel": ch("queue", "nope")}),
        "not_found",
    )
    .await;
    sup.refused(
        json!({"type": "command", "action": "unpause", "agent_id": "a1"}),
        "invalid_state",
    )
    .await;
    assert_eq!(version_of(&mut sup, "a1").await, before, "nothing changed");

    let lunch = a1
        .ok(json!({"type": "set_status", "status": "paused", "reason": "lunch"}))
        .await;
    let paused = version_of(&mut sup, "a1").await;
    a1.refused(
        json!({"type": "set_status", "status": "paused", "reason": "lunch"}),
        "invalid_state",
    )
    .await;
    assert_eq!(
        version_of(&mut sup, "a1").await,
        paused,
        "the same pause again changes nothing"
    );
    // Another reason is a switch: a new pause, its time from now (PROTOCOL.md §4.2).
    let switched = a1
        .ok(json!({"type": "set_status", "status": "paused", "reason": "again"}))
        .await;
    assert_eq!(
        (
            &switched["agent"]["status"],
            &switched["agent"]["pause_reason"]
        ),
        (&json!("paused"), &json!("again"))
    );
    assert!(
        u64_of(&switched["agent"]["status_since_ms"]) >= u64_of(&lunch["agent"]["status_since_ms"])
            && u64_of(&switched["agent"]["version"]) > paused
    );
    a1.refused(json!({"type": "interaction_start", "interaction_id": "c", "channel": ch("queue", "sales")}), "invalid_state").await;
    a1.ok(json!({"type": "set_status", "status": "available"}))
        .await;
    a1.ok(json!({"type": "interaction_start", "interaction_id": "c1", "channel": ch("queue", "sales")})).await;
    let busy = version_of(&mut sup, "a1").await;
    a1.refused(
        json!({"type": "interaction_end", "interaction_id": "other"}),
        "invalid_state",
    )
    .await;
    a1.refused(json!({"type": "interaction_start", "interaction_id": "c2", "channel": ch("queue", "sales")}), "invalid_state").await;
    a1.refused(
        json!({"type": "set_status", "status": "available"}),
        "invalid_state",
    )
    .await;
    assert!(paused > before);
    assert_eq!(
        version_of(&mut sup, "a1").await,
        busy,
        "refusals while busy changed nothing"
    );
}

#[tokio::test]
async fn pause_while_busy_is_pending_until_the_interaction_and_wrap_up_end() {
    let hub = TestHub::start().await;
    let mut sup = hub.staff("s1", "supervisor").await;
    let mut a1 = hub.agent("a1", "d1").await;
    a1.ok(json!({"type": "interaction_start", "interaction_id": "call-1", "channel": ch("queue", "sales")})).await;
    let r = sup
        .ok(json!({"type": "command", "action": "pause", "agent_id": "a1", "reason": "coaching"}))
        .await;
    assert_eq!(r["agent"]["status"], "busy");
    assert_eq!(
        r["agent"]["pending_pause"],
        json!({"reason": "coaching", "by": {"id": "s1", "role": "supervisor"}})
    );
    let r = a1
        .ok(json!({"type": "interaction_end", "interaction_id": "call-1"}))
        .await;
    assert_eq!(r["agent"]["status"], "wrap_up");
    assert_eq!(r["agent"]["pending_pause"]["reason"], "coaching");
    let r = a1.ok(json!({"type": "end_wrap_up"})).await;
    assert_eq!(r["agent"]["status"], "paused");
    assert_eq!(r["agent"]["pause_reason"], "coaching");
    assert_eq!(r["agent"]["pending_pause"], Value::Null);
    assert_eq!(
        r["agent"]["changed_by"],
        json!({"id": "s1", "role": "supervisor"}),
        "the pause is the supervisor's"
    );
}

#[tokio::test]
async fn wrap_up_deadline_ends_wrap_up_by_itself() {
    let hub = TestHub::start().await;
    let mut admin = hub.staff("ad1", "admin").await;
    admin
        .ok(json!({"type": "update_settings", "settings": {"wrap_up_seconds": 1}}))
        .await;
    let mut a1 = hub.agent("a1", "d1").await;
    a1.ok(json!({"type": "interaction_start", "interaction_id": "c1", "channel": ch("queue", "sales")})).await;
    a1.ok(json!({"type": "interaction_end", "interaction_id": "c1"}))
        .await;
    let done = a1.state(|a| a["status"] == "available").await;
    assert_eq!(
        done["changed_by"],
        json!({"id": "system", "role": "system"})
    );
    assert_eq!(done["wrap_up_until_ms"], Value::Null);

    // With a pause pending, the deadline leads to paused.
    a1.ok(json!({"type": "interaction_start", "interaction_id": "c2", "channel": ch("queue", "sales")})).await;
    a1.ok(json!({"type": "set_status", "status": "paused", "reason": "break"}))
        .await;
    a1.ok(json!({"type": "interaction_end", "interaction_id": "c2"}))
        .await;
    let done = a1.state(|a| a["status"] == "paused").await;
    assert_eq!(done["pause_reason"], "break");
}

#[tokio::test]
async fn zero_wrap_up_goes_straight_to_available_or_paused() {
    let hub = TestHub::start().await;
    let mut admin = hub.staff("ad1", "admin").await;
    admin
        .ok(json!({"type": "update_settings", "settings": {"wrap_up_seconds": 0}}))
        .await;
    let mut a1 = hub.agent("a1", "d1").await;
    a1.ok(json!({"type": "interaction_start", "interaction_id": "c1", "channel": ch("queue", "sales")})).await;
    let r = a1
        .ok(json!({"type": "interaction_end", "interaction_id": "c1"}))
        .await;
    assert_eq!(r["agent"]["status"], "available");
    a1.ok(json!({"type": "interaction_start", "interaction_id": "c2", "channel": ch("queue", "sales")})).await;
    a1.ok(json!({"type": "set_status", "status": "paused", "reason": "meeting"}))
        .await;
    let r = a1
        .ok(json!({"type": "interaction_end", "interaction_id": "c2"}))
        .await;
    assert_eq!(
        (
            r["agent"]["status"].as_str(),
            r["agent"]["pause_reason"].as_str()
        ),
        (Some("paused"), Some("meeting"))
    );
}

#[tokio::test]
async fn connecting_is_not_assigning() {
    let hub = TestHub::start().await;
    let mut a1 = hub.agent("a1", "d1").await;
    let mut sup = hub.staff("s1", "supervisor").await;
    let r = a1
        .ok(json!({"type": "connect", "channel": ch("queue", "sales")}))
        .await;
    assert_eq!(flags(&r["agent"], "queue", "sales"), Some((true, true)));
    // An unassigned channel: the agent connects itself (access is on by default).
    let r = a1
        .ok(json!({"type": "connect", "channel": ch("queue", "billing")}))
        .await;
    assert_eq!(flags(&r["agent"], "queue", "billing"), Some((true, false)));
    assert!(channel(&r["agent"], "queue", "billing").is_some_and(|b| b.get("lingering").is_none()));
    // A supervisor connecting a2 to a campaign does not assign it either.
    let r = sup.ok(json!({"type": "command", "action": "connect", "agent_id": "a2", "channel": ch("campaign", "renewals")})).await;
    assert_eq!(
        flags(&r["agent"], "campaign", "renewals"),
        Some((true, false))
    );
    // Disconnecting an assigned channel keeps it listed, assigned.
    let r = a1
        .ok(json!({"type": "disconnect", "channel": ch("queue", "sales")}))
        .await;
    assert_eq!(flags(&r["agent"], "queue", "sales"), Some((false, true)));
    // Disconnecting an unassigned one removes it from the list.
    let r = a1
        .ok(json!({"type": "disconnect", "channel": ch("queue", "billing")}))
        .await;
    assert!(channel(&r["agent"], "queue", "billing").is_none());
}

#[tokio::test]
async fn unassigned_access_gates_self_connect_only() {
    let hub = TestHub::start().await;
    let mut admin = hub.staff("ad1", "admin").await;
    let mut a1 = hub.agent("a1", "d1").await;
    let r = admin
        .ok(json!({"type": "set_unassigned_access", "agent_id": "a1", "allowed": false}))
        .await;
    assert_eq!(r["agent"]["unassigned_access"], false);
    let e = a1
        .refused(
            json!({"type": "connect", "channel": ch("queue", "billing")}),
            "forbidden",
        )
        .await;
    assert!(e["message"].as_str().is_some_and(|m| m.contains("billing")));
    a1.ok(json!({"type": "connect", "channel": ch("queue", "sales")}))
        .await;
    // A supervisor may still connect the agent; the connection is lingering at once.
    let mut sup = hub.staff("s1", "supervisor").await;
    let r = sup.ok(json!({"type": "command", "action": "connect", "agent_id": "a1", "channel": ch("queue", "billing")})).await;
    assert_eq!(
        channel(&r["agent"], "queue", "billing").expect("billing")["lingering"],
        true
    );
    // Removing the override brings back the tenant default (access on).
    let r = admin
        .ok(json!({"type": "set_unassigned_access", "agent_id": "a1", "allowed": null}))
        .await;
    assert_eq!(r["agent"]["unassigned_access"], true);
    assert!(channel(&r["agent"], "queue", "billing")
        .expect("billing")
        .get("lingering")
        .is_none());
}

#[tokio::test]
async fn disabling_unassigned_access_never_disconnects_and_lingering_is_easy_to_end() {
    let hub = TestHub::start().await;
    let (mut sup, _) = hub.watcher("s1").await;
    let mut admin = hub.staff("ad1", "admin").await;
    let mut a1 = hub.agent("a1", "d1").await;
    let mut a2 = hub.agent("a2", "d2").await;
    a1.ok(json!({"type": "connect", "channel": ch("queue", "billing")}))
        .await;
    a1.ok(json!({"type": "connect", "channel": ch("queue", "sales")}))
        .await;
    a2.ok(json!({"type": "connect", "channel": ch("chat", "web")}))
        .await;

    // Per agent: a1 loses access; nobody is disconnected, billing lingers.
    admin
        .ok(json!({"type": "set_unassigned_access", "agent_id": "a1", "allowed": false}))
        .await;
    let seen = sup
        .agent_update("a1", |a| a["unassigned_access"] == false)
        .await;
    let billing = channel(&seen, "queue", "billing").expect("still there");
    assert_eq!(
        (
            billing["connected"].as_bool(),
            billing["lingering"].as_bool()
        ),
        (Some(true), Some(true))
    );
    assert!(
        channel(&seen, "queue", "sales")
            .expect("sales")
            .get("lingering")
            .is_none(),
        "assigned never lingers"
    );
    assert_eq!(seen["status"], "available", "status untouched");

    // Tenant-wide default off: a2's unassigned chat lingers too.
    let r = admin
        .ok(json!({"type": "update_settings", "settings": {"unassigned_access_default": false}}))
        .await;
    assert_eq!(r["settings"]["unassigned_access_default"], false);
    let seen = sup
        .agent_update("a2", |a| a["unassigned_access"] == false)
        .await;
    let web = channel(&seen, "chat", "web").expect("web");
    assert_eq!(
        (web["connected"].as_bool(), web["lingering"].as_bool()),
        (Some(true), Some(true))
    );

    // The supervisor ends a1's lingering connection; assigned ones stay.
    let r = sup
        .ok(json!({"type": "command", "action": "disconnect_unassigned", "agent_id": "a1"}))
        .await;
    assert!(channel(&r["agent"], "queue", "billing").is_none());
    assert_eq!(
        channel(&r["agent"], "queue", "sales").expect("sales")["connected"],
        true
    );
    let own = a1.state(|a| a["version"] == r["agent"]["version"]).await;
    assert!(
        channel(&own, "queue", "billing").is_none(),
        "the agent is told too"
    );
}

#[tokio::test]
async fn ending_wrap_up_early_needs_the_admin_setting() {
    let hub = TestHub::start().await;
    let mut sup = hub.staff("s1", "supervisor").await;
    let mut admin = hub.staff("ad1", "admin").await;
    let mut a1 = hub.agent("a1", "d1").await;
    let wrap_up = async |a1: &mut Client| {
        a1.ok(json!({"type": "interaction_start", "interaction_id": "c", "channel": ch("queue", "sales")})).await;
        a1.ok(json!({"type": "interaction_end", "interaction_id": "c"}))
            .await;
    };
    wrap_up(&mut a1).await;
    let e = sup
        .refused(
            json!({"type": "command", "action": "end_wrap_up", "agent_id": "a1"}),
            "disabled",
        )
        .await;
    assert!(e["message"]
        .as_str()
        .is_some_and(|m| m.contains("supervisor_can_end_wrap_up")));
    admin
        .refused(
            json!({"type": "command", "action": "end_wrap_up", "agent_id": "a1"}),
            "disabled",
        )
        .await;
    // The agent may always end their own.
    a1.ok(json!({"type": "end_wrap_up"})).await;

    admin
        .ok(json!({"type": "update_settings", "settings": {"supervisor_can_end_wrap_up": true}}))
        .await;
    wrap_up(&mut a1).await;
    let r = sup
        .ok(json!({"type": "command", "action": "end_wrap_up", "agent_id": "a1"}))
        .await;
    assert_eq!(r["agent"]["status"], "available");
    assert_eq!(
        r["agent"]["changed_by"],
        json!({"id": "s1", "role": "supervisor"})
    );
    wrap_up(&mut a1).await;
    admin
        .ok(json!({"type": "command", "action": "end_wrap_up", "agent_id": "a1"}))
        .await;
    sup.refused(
        json!({"type": "command", "action": "end_wrap_up", "agent_id": "a1"}),
        "invalid_state",
    )
    .await;
}

#[tokio::test]
async fn search_finds_any_user_filters_by_role_and_lists_devices() {
    let hub = TestHub::start().await;
    let _d1 = hub.agent("a1", "d1").await;
    let d2 = hub.agent("a1", "d2").await;
    d2.close().await;
    // A scoped supervisor (billing only) may still search every agent.
    let mut s2 = hub.staff("s2", "supervisor").await;
    let r = s2.ok(json!({"type": "search", "query": "ANA"})).await;
    let found = r["agents"].as_array().expect("agents");
    assert_eq!(found.len(), 1);
    let ana = &found[0];
    assert_eq!(
        (
            ana["id"].as_str(),
            ana["presence"].as_str(),
            ana["status"].as_str()
        ),
        (Some("a1"), Some("online"), Some("available"))
    );
    assert_eq!(ana["roles"], json!(["agent"]));
    let devices = ana["devices"].as_array().expect("devices");
    let active: Vec<(&str, bool)> = devices
        .iter()
        .map(|d| (d["id"].as_str().unwrap_or(""), d["active"] == true))
        .collect();
    assert!(
        active.contains(&("d1", true)) && active.contains(&("d2", false)),
        "{devices:?}"
    );

    let by_id = s2.ok(json!({"type": "search", "query": "a2"})).await;
    assert_eq!(by_id["agents"][0]["id"], "a2");
    let sups = s2
        .ok(json!({"type": "search", "query": "", "role": "supervisor"}))
        .await;
    let ids: Vec<&str> = sups["agents"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|a| a["id"].as_str())
        .collect();
    assert_eq!(ids.len(), 3);
    for id in ["a3", "s1", "s2"] {
        assert!(ids.contains(&id), "{ids:?}");
    }
    let s1 = sups["agents"]
        .as_array()
        .expect("list")
        .iter()
        .find(|a| a["id"] == "s1")
        .expect("s1")
        .clone();
    assert_eq!(
        (s1["presence"].as_str(), s1["devices"].clone()),
        (Some("offline"), json!([]))
    );
    let all = s2.ok(json!({"type": "search", "query": ""})).await;
    assert_eq!(all["agents"].as_array().map(Vec::len), Some(6));
    let two = s2.ok(json!({"type": "search", "limit": 2})).await;
    assert_eq!(
        (
            two["agents"].as_array().map(Vec::len),
            two["total"].as_u64()
        ),
        (Some(2), Some(6))
    );
    s2.refused(json!({"type": "search", "role": "boss"}), "bad_request")
        .await;
    s2.refused(json!({"type": "search", "limit": 0}), "bad_request")
        .await;
}

#[tokio::test]
async fn channel_scope_snapshot_then_deltas_and_agent_removed() {
    let hub = TestHub::start().await;
    let mut sup = hub.staff("s1", "supervisor").await;
    let snapshot = sup
        .subscribe(json!({"channels": [ch("queue", "billing")]}))
        .await;
    let ids: Vec<&str> = snapshot["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .filter_map(|a| a["id"].as_str())
        .collect();
    assert_eq!(ids, ["a2"], "only agents assigned or connected to billing");
    // v1's fields, and the counters of PROTOCOL.md §10.4 beside them.
    assert_eq!(
        snapshot["channels"],
        json!([{"kind": "queue", "id": "billing", "name": "Billing",
                "counts": {"available": 0, "busy": 0, "wrap_up": 0, "paused": 0, "offline": 0},
                "connected": 0, "lingering": 0, "longest_available_since_ms": null}])
    );
    let seq = snapshot["seq"].as_u64().expect("seq");

    let mut a1 = hub.agent("a1", "d1").await; // not in scope: no delta
    a1.ok(json!({"type": "connect", "channel": ch("queue", "billing")}))
        .await;
    let entered = sup.recv_type("agent").await;
    assert_eq!(
        entered["agent"]["id"], "a1",
        "a1's first delta is entering the scope: {entered}"
    );
    assert!(entered["agent"]["version"].as_u64() > Some(seq));
    let r = a1
        .ok(json!({"type": "disconnect", "channel": ch("queue", "billing")}))
        .await;
    let removed = sup.recv_type("agent_removed").await;
    assert_eq!(removed["agent_id"], "a1");
    assert_eq!(removed["version"], r["agent"]["version"]);

    // Re-subscribing replaces the scope.
    let snapshot = sup.subscribe(json!({"all": true})).await;
    assert_eq!(snapshot["agents"].as_array().map(Vec::len), Some(3));
    assert_eq!(snapshot["channels"].as_array().map(Vec::len), Some(4));
    sup.refused(json!({"type": "subscribe", "scope": {}}), "bad_request")
        .await;
    sup.refused(
        json!({"type": "subscribe", "scope": {"channels": [ch("queue", "nope")]}}),
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn scoped_supervisor_sees_and_acts_only_in_scope() {
    let hub = TestHub::start().await;
    let _a1 = hub.agent("a1", "d1").await;
    let _a2 = hub.agent("a2", "d2").await;
    let mut s2 = hub.staff("s2", "supervisor").await;
    let snapshot = s2.subscribe(json!({"all": true})).await;
    let ids: Vec<&str> = snapshot["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .filter_map(|a| a["id"].as_str())
        .collect();
    assert_eq!(ids, ["a2"], "all means all of s2's channels");
    let e = s2
        .refused(
            json!({"type": "subscribe", "scope": {"channels": [ch("queue", "sales")]}}),
            "forbidden",
        )
        .await;
    assert_eq!(e["message"], "supervisor s2 does not supervise queue sales");
    s2.refused(
        json!({"type": "command", "action": "pause", "agent_id": "a1", "reason": "x"}),
        "forbidden",
    )
    .await;
    s2.refused(json!({"type": "history", "agent_id": "a1"}), "forbidden")
        .await;
    s2.refused(json!({"type": "command", "action": "connect", "agent_id": "a2", "channel": ch("queue", "sales")}), "forbidden").await;
    s2.ok(json!({"type": "command", "action": "pause", "agent_id": "a2", "reason": "coaching"}))
        .await;
    s2.ok(json!({"type": "command", "action": "connect", "agent_id": "a2", "channel": ch("queue", "billing")})).await;
    s2.ok(json!({"type": "history", "agent_id": "a2"})).await;
    // Once a1 is connected to billing, a1 is in s2's scope.
    let mut s1 = hub.staff("s1", "supervisor").await;
    s1.ok(json!({"type": "command", "action": "connect", "agent_id": "a1", "channel": ch("queue", "billing")})).await;
    s2.agent_update("a1", |_| true).await;
    s2.ok(json!({"type": "command", "action": "pause", "agent_id": "a1", "reason": "x"}))
        .await;
    // ...but s2 cannot disconnect a1 from sales (out of scope channel).
    s1.ok(json!({"type": "command", "action": "connect", "agent_id": "a1", "channel": ch("queue", "sales")})).await;
    s2.refused(json!({"type": "command", "action": "disconnect", "agent_id": "a1", "channel": ch("queue", "sales")}), "forbidden").await;
}

#[tokio::test]
async fn each_role_is_refused_what_it_may_not_do() {
    let hub = TestHub::start().await;
    let mut a1 = hub.agent("a1", "d1").await;
    for body in [
        json!({"type": "subscribe", "scope": {"all": true}}),
        json!({"type": "search", "query": ""}),
        json!({"type": "history", "agent_id": "a2"}),
        json!({"type": "command", "action": "pause", "agent_id": "a2", "reason": "x"}),
        json!({"type": "update_settings", "settings": {"wrap_up_seconds": 5}}),
        json!({"type": "set_unassigned_access", "agent_id": "a1", "allowed": true}),
        json!({"type": "assign", "agent_id": "a1", "channel": ch("queue", "billing")}),
    ] {
        a1.refused(body, "forbidden").await;
    }
    let mut s1 = hub.staff("s1", "supervisor").await;
    for body in [
        json!({"type": "set_status", "status": "paused", "reason": "x"}),
        json!({"type": "connect", "channel": ch("queue", "sales")}),
        json!({"type": "interaction_start", "interaction_id": "c", "channel": ch("queue", "sales")}),
        json!({"type": "end_wrap_up"}),
        json!({"type": "update_settings", "settings": {"wrap_up_seconds": 5}}),
        json!({"type": "set_unassigned_access", "agent_id": "a1", "allowed": false}),
        json!({"type": "assign", "agent_id": "a1", "channel": ch("queue", "billing")}),
        json!({"type": "unassign", "agent_id": "a1", "channel": ch("queue", "sales")}),
    ] {
        s1.refused(body, "forbidden").await;
    }
    // Acting on a user who is not an agent.
    s1.refused(
        json!({"type": "command", "action": "pause", "agent_id": "s2", "reason": "x"}),
        "not_found",
    )
    .await;
    s1.refused(
        json!({"type": "command", "action": "connect", "agent_id": "a1"}),
        "bad_request",
    )
    .await;
    s1.refused(
        json!({"type": "command", "action": "pause", "agent_id": "a1"}),
        "bad_request",
    )
    .await;
    s1.refused(
        json!({"type": "command", "action": "fly", "agent_id": "a1"}),
        "bad_request",
    )
    .await;
    // A user without the admin role cannot open an admin connection.
    let mut c = hub.raw().await;
    c.send(json!({"type": "hello", "token": token("acme", "s1"), "role": "admin"}))
        .await;
    assert_eq!(c.closed().await.code, 4003);
}

#[tokio::test]
async fn admin_does_what_a_supervisor_does_and_manages_assignments() {
    let hub = TestHub::start().await;
    let mut admin = hub.staff("ad1", "admin").await;
    let snapshot = admin.subscribe(json!({"all": true})).await;
    assert_eq!(snapshot["agents"].as_array().map(Vec::len), Some(3));
    let mut a1 = hub.agent("a1", "d1").await;
    let r = admin
        .ok(json!({"type": "command", "action": "pause", "agent_id": "a1", "reason": "training"}))
        .await;
    assert_eq!(
        r["agent"]["changed_by"],
        json!({"id": "ad1", "role": "admin"})
    );
    admin
        .ok(json!({"type": "command", "action": "unpause", "agent_id": "a1"}))
        .await;

    // Assigning a1 to billing brings a1 into s2's (billing) scope.
    let mut s2 = hub.staff("s2", "supervisor").await;
    s2.subscribe(json!({"all": true})).await;
    let r = admin
        .ok(json!({"type": "assign", "agent_id": "a1", "channel": ch("queue", "billing")}))
        .await;
    let billing = channel(&r["agent"], "queue", "billing").expect("billing");
    assert_eq!(
        (
            billing["assigned"].as_bool(),
            billing["connected"].as_bool()
        ),
        (Some(true), Some(false))
    );
    s2.agent_update("a1", |a| channel(a, "queue", "billing").is_some())
        .await;
    admin
        .refused(
            json!({"type": "assign", "agent_id": "a1", "channel": ch("queue", "billing")}),
            "invalid_state",
        )
        .await;
    // Unassigning keeps a connection (rule 3) but the agent leaves s2's scope when not connected.
    let r = admin
        .ok(json!({"type": "unassign", "agent_id": "a1", "channel": ch("queue", "billing")}))
        .await;
    assert!(channel(&r["agent"], "queue", "billing").is_none());
    assert_eq!(s2.recv_type("agent_removed").await["agent_id"], "a1");
    a1.ok(json!({"type": "connect", "channel": ch("queue", "sales")}))
        .await;
    let r = admin
        .ok(json!({"type": "unassign", "agent_id": "a1", "channel": ch("queue", "sales")}))
        .await;
    assert_eq!(flags(&r["agent"], "queue", "sales"), Some((true, false)));
    admin
        .refused(
            json!({"type": "update_settings", "settings": {}}),
            "bad_request",
        )
        .await;
    admin
        .refused(
            json!({"type": "update_settings", "settings": {"wrap_up_seconds": -1}}),
            "bad_request",
        )
        .await;
    admin
        .refused(
            json!({"type": "assign", "agent_id": "zz", "channel": ch("queue", "billing")}),
            "not_found",
        )
        .await;
}

#[tokio::test]
async fn settings_changes_reach_subscribers() {
    let hub = TestHub::start().await;
    let (mut sup, snapshot) = hub.watcher("s1").await;
    assert_eq!(snapshot["settings"]["supervisor_can_end_wrap_up"], false);
    let mut admin = hub.staff("ad1", "admin").await;
    admin.ok(json!({"type": "update_settings", "settings": {"supervisor_can_end_wrap_up": true, "wrap_up_seconds": 12}})).await;
    let s = sup.recv_type("settings").await;
    assert_eq!(
        s["settings"],
        json!({"supervisor_can_end_wrap_up": true, "wrap_up_seconds": 12, "unassigned_access_default": true})
    );
    assert!(u64_of(&s["seq"]) > u64_of(&snapshot["seq"]));
}

#[tokio::test]
async fn settings_out_of_bounds_are_refused_and_change_nothing() {
    let hub = TestHub::start().await;
    let mut admin = hub.staff("ad1", "admin").await;
    let before = admin
        .ok(json!({"type": "update_settings", "settings": {"wrap_up_seconds": 86_400}}))
        .await;
    for (settings, says) in [
        (
            json!({"wrap_up_seconds": 86_401}),
            "wrap_up_seconds must be at most 86400",
        ),
        (
            json!({"pause_reasons": [{"code": "c"}]}),
            "missing field `label`",
        ),
        (json!({"pause_reasons": {"c": "L"}}), "expected a sequence"),
    ] {
        let refused = admin
            .refused(
                json!({"type": "update_settings", "settings": settings}),
                "bad_request",
            )
            .await;
        let message = refused["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{settings}: {refused}");
    }
    // Nothing applied: a no-op repeat of the last accepted value answers
    // with the same settings.
    let after = admin
        .ok(json!({"type": "update_settings", "settings": {"wrap_up_seconds": 86_400}}))
        .await;
    assert_eq!(before["settings"], after["settings"]);
}

#[tokio::test]
async fn monitor_accepted_stopped_refused_and_timed_out() {
    let hub = TestHub::start().await;
    let (mut watch, _) = hub.watcher("a3").await;
    let mut a1 = hub.agent("a1", "d1").await;
    let mut s1 = hub.staff("s1", "supervisor").await;

    // Accepted.
    s1.send(json!({"type": "command", "id": "m1", "action": "monitor", "agent_id": "a1"}))
        .await;
    let cmd = a1.recv_type("command").await;
    assert_eq!(cmd["action"], "monitor");
    assert_eq!(
        cmd["supervisor"],
        json!({"id": "s1", "name": "Sara Supervisor"})
    );
    a1.ok(json!({"type": "command_ack", "command_id": cmd["command_id"], "ok": true}))
        .await;
    let reply = s1.recv_where("reply m1", |v| v["id"] == "m1").await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(reply["result"]["agent"]["monitored_by"], json!(["s1"]));
    watch
        .agent_update("a1", |a| a["monitored_by"] == json!(["s1"]))
        .await;
    s1.refused(
        json!({"type": "command", "action": "monitor", "agent_id": "a1"}),
        "invalid_state",
    )
    .await;

    // Stopped: the device is told, the badge goes.
    let r = s1
        .ok(json!({"type": "command", "action": "stop_monitor", "agent_id": "a1"}))
        .await;
    assert_eq!(r["agent"]["monitored_by"], json!([]));
    let stop = a1.recv_type("command").await;
    assert_eq!(stop["action"], "stop_monitor");
    a1.ok(json!({"type": "command_ack", "command_id": stop["command_id"], "ok": true}))
        .await;
    s1.refused(
        json!({"type": "command", "action": "stop_monitor", "agent_id": "a1"}),
        "invalid_state",
    )
    .await;

    // Refused by the device.
    s1.send(json!({"type": "command", "id": "m2", "action": "monitor", "agent_id": "a1"}))
        .await;
    let cmd = a1.recv_type("command").await;
    a1.send(json!({"type": "command_ack", "command_id": cmd["command_id"], "ok": false, "reason": "on a private call"})).await;
    let reply = s1.recv_where("reply m2", |v| v["id"] == "m2").await;
    assert_eq!(reply["error"]["code"], "forbidden", "{reply}");
    assert!(reply["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("private call")));
    let end = a1
        .recv_where("the refused request's end", |v| {
            v["type"] == "command_ended" && v["command_id"] == cmd["command_id"]
        })
        .await;
    assert_eq!(end["outcome"], "refused", "{end}");

    // No answer: timeout after command_timeout_ms; a late ack finds nothing.
    s1.send(json!({"type": "command", "id": "m3", "action": "monitor", "agent_id": "a1"}))
        .await;
    let cmd = a1.recv_type("command").await;
    let reply = s1.recv_where("reply m3", |v| v["id"] == "m3").await;
    assert_eq!(reply["error"]["code"], "timeout", "{reply}");
    // The device is told, so a prompt it shows closes instead of taking
    // an answer nobody waits for.
    let end = a1
        .recv_where("the timed-out request's end", |v| {
            v["type"] == "command_ended" && v["command_id"] == cmd["command_id"]
        })
        .await;
    assert_eq!(end["outcome"], "timeout", "{end}");
    a1.refused(
        json!({"type": "command_ack", "command_id": cmd["command_id"], "ok": true}),
        "not_found",
    )
    .await;
    let r = s1.ok(json!({"type": "search", "query": "a1"})).await;
    assert_eq!(r["agents"][0]["status"], "available");
    assert_eq!(
        hub_record_monitors(&mut s1, "a1").await,
        json!([]),
        "refused and timed-out monitors change nothing"
    );

    // Offline agents cannot be monitored.
    s1.refused(
        json!({"type": "command", "action": "monitor", "agent_id": "a2"}),
        "agent_offline",
    )
    .await;
}

async fn hub_record_monitors(s: &mut Client, agent: &str) -> Value {
    let snapshot = s.subscribe(json!({"all": true})).await;
    in_snapshot(&snapshot, agent).expect("agent")["monitored_by"].clone()
}

#[tokio::test]
async fn monitors_end_when_the_supervisor_leaves() {
    let hub = TestHub::start().await;
    let (mut watch, _) = hub.watcher("a3").await;
    let mut a1 = hub.agent("a1", "d1").await;
    let mut s1 = hub.staff("s1", "supervisor").await;
    monitor_accepted(&mut s1, &mut a1, "a1").await;
    watch
        .agent_update("a1", |a| a["monitored_by"] == json!(["s1"]))
        .await;
    s1.close().await;
    let stop = a1.recv_type("command").await;
    assert_eq!(
        (stop["action"].as_str(), stop["supervisor"]["id"].as_str()),
        (Some("stop_monitor"), Some("s1"))
    );
    watch
        .agent_update("a1", |a| a["monitored_by"] == json!([]))
        .await;
}

#[tokio::test]
async fn a_monitor_request_still_unanswered_is_withdrawn_when_the_supervisor_leaves() {
    // A long timeout: only the supervisor's leaving can end the request,
    // and the devices hear `withdrawn` at once. On a cluster the supervisor
    // is on another node than the agent's sockets: the withdrawal crosses
    // the store to the node holding the request.
    let hub = TestHub::start_with(|c| c.command_timeout_ms = 60_000).await;
    let mut a1 = hub.agent("a1", "d1").await;
    let mut a1b = hub.agent("a1", "d2").await;
    let mut s1 = hub.staff("s1", "supervisor").await;
    s1.send(json!({"type": "command", "id": "m1", "action": "monitor", "agent_id": "a1", "mode": "barge"}))
        .await;
    let cmd = a1.recv_type("command").await;
    let other = a1b.recv_type("command").await;
    assert_eq!(
        cmd["command_id"], other["command_id"],
        "one request, two devices"
    );
    s1.close().await;
    for device in [&mut a1, &mut a1b] {
        let end = device.recv_type("command_ended").await;
        assert_eq!(
            end,
            json!({"type": "command_ended", "command_id": cmd["command_id"], "outcome": "withdrawn"})
        );
    }
    // A late acceptance starts nothing.
    a1.refused(
        json!({"type": "command_ack", "command_id": cmd["command_id"], "ok": true}),
        "not_found",
    )
    .await;
    let mut s2 = hub.staff("ad1", "admin").await;
    assert_eq!(hub_record_monitors(&mut s2, "a1").await, json!([]));
}

#[tokio::test]
async fn who_set_the_status_survives_device_events_recorded_by_the_system() {
    let hub = TestHub::start().await;
    let (mut sup, _) = hub.watcher("s1").await;
    let mut phone = hub.agent("a1", "phone").await;
    let own = phone
        .ok(json!({"type": "set_status", "status": "paused", "reason": "training"}))
        .await;
    let me = json!({"id": "a1", "role": "agent"});
    assert_eq!(
        (&own["agent"]["status_by"], &own["agent"]["changed_by"]),
        (&me, &me)
    );
    // Another device comes and goes (as a phone reconnecting through
    // another node does): each is a change by the system.
    let tablet = hub.agent("a1", "tablet").await;
    tablet.close().await;
    let after = sup
        .agent_update("a1", |a| {
            a["devices"].as_array().is_some_and(|d| {
                d.iter()
                    .any(|d| d["id"] == "tablet" && d["active"] == false)
            })
        })
        .await;
    let system = json!({"id": "system", "role": "system"});
    assert_eq!(
        after["changed_by"], system,
        "the last change is the system's"
    );
    assert_eq!(
        (&after["status"], &after["status_by"]),
        (&json!("paused"), &me),
        "the pause is still the agent's"
    );
    let state = phone.state(|a| a["version"] == after["version"]).await;
    assert_eq!(state["status_by"], me, "the agent's own record says so too");
    // A supervisor's change of the status is theirs.
    let r = sup
        .ok(json!({"type": "command", "action": "unpause", "agent_id": "a1"}))
        .await;
    assert_eq!(
        r["agent"]["status_by"],
        json!({"id": "s1", "role": "supervisor"})
    );
}

#[tokio::test]
async fn history_tells_who_paused_whom_and_when() {
    let hub = TestHub::start().await;
    let _a1 = hub.agent("a1", "d1").await;
    let mut s1 = hub.staff("s1", "supervisor").await;
    let t0 = presence_hub::clock::now_ms();
    s1.ok(json!({"type": "command", "action": "pause", "agent_id": "a1", "reason": "coaching"}))
        .await;
    s1.ok(json!({"type": "command", "action": "unpause", "agent_id": "a1"}))
        .await;
    let r = s1
        .ok(json!({"type": "history", "agent_id": "a1", "since_ms": 0, "limit": 100}))
        .await;
    let changes = r["changes"].as_array().expect("changes");
    let events: Vec<&str> = changes.iter().filter_map(|c| c["event"].as_str()).collect();
    assert_eq!(events, ["device_up", "pause", "unpause"]);
    let pause = &changes[1];
    assert_eq!(pause["status"], "paused");
    assert_eq!(pause["pause_reason"], "coaching");
    assert_eq!(pause["by"], json!({"id": "s1", "role": "supervisor"}));
    assert!(pause["at_ms"].as_u64() >= Some(t0));
    assert!(
        changes
            .windows(2)
            .all(|w| u64_of(&w[0]["version"]) < u64_of(&w[1]["version"])),
        "newest last"
    );
    let last = s1
        .ok(json!({"type": "history", "agent_id": "a1", "limit": 1}))
        .await;
    assert_eq!(last["changes"].as_array().map(Vec::len), Some(1));
    assert_eq!(last["changes"][0]["event"], "unpause");
    let none = s1.ok(json!({"type": "history", "agent_id": "a1", "since_ms": presence_hub::clock::now_ms() + 60_000})).await;
    assert_eq!(none["changes"], json!([]));
    s1.refused(
        json!({"type": "history", "agent_id": "nobody"}),
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn tenants_are_isolated() {
    let hub = TestHub::start().await;
    let (mut acme_watch, _) = hub.watcher("s1").await;
    let mut gs = hub.staff_in("globex", "gs", "supervisor").await;
    let snapshot = gs.subscribe(json!({"all": true})).await;
    let ids: Vec<&str> = snapshot["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .filter_map(|a| a["id"].as_str())
        .collect();
    assert_eq!(ids, ["g1"]);
    let r = gs.ok(json!({"type": "search", "query": "a1"})).await;
    assert_eq!(r["agents"], json!([]));
    gs.refused(
        json!({"type": "command", "action": "pause", "agent_id": "a1", "reason": "x"}),
        "not_found",
    )
    .await;
    gs.refused(json!({"type": "history", "agent_id": "a1"}), "not_found")
        .await;
    // A globex agent's change reaches globex only.
    let mut g1 = hub.agent_in("globex", "g1", "d1").await;
    gs.agent_update("g1", |a| a["presence"] == "online").await;
    g1.ok(json!({"type": "set_status", "status": "paused", "reason": "break"}))
        .await;
    gs.agent_update("g1", |a| a["status"] == "paused").await;
    let mut a1 = hub.agent("a1", "d1").await;
    a1.ok(json!({"type": "set_status", "status": "paused", "reason": "x"}))
        .await;
    let next = acme_watch.recv_type("agent").await;
    assert_eq!(
        next["agent"]["id"], "a1",
        "no globex delta reached acme: {next}"
    );
    // A token naming a user of another tenant is refused.
    let mut c = hub.raw().await;
    c.send(json!({"type": "hello", "token": token("acme", "g1"), "role": "agent", "device": {"id": "x"}})).await;
    assert_eq!(c.closed().await.code, 4003);
}

/// The events of one agent's history, oldest first.
async fn events_of(s: &mut Client, agent: &str) -> Vec<(String, Value)> {
    let r = s
        .ok(json!({"type": "history", "agent_id": agent, "since_ms": 0, "limit": 1000}))
        .await;
    r["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| {
            (
                c["event"].as_str().unwrap_or_default().to_string(),
                c["pause_reason"].clone(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_request_repeated_with_its_idempotency_key_is_applied_once() {
    let hub = TestHub::start().await;
    let mut a1 = hub.agent("a1", "d1").await;
    let mut s1 = hub.staff("s1", "supervisor").await;
    let mut ad = hub.staff("ad1", "admin").await;
    // An agent's own change, sent three times under one key (a softphone
    // retrying after `outcome_unknown` or a lost connection).
    let pause = json!({"type": "set_status", "status": "paused", "reason": "lunch",
                       "idempotency_key": "pause-7f3a"});
    let first = a1.ok(pause.clone()).await;
    assert_eq!(first["agent"]["status"], "paused");
    // Meanwhile the agent unpaused: the repeat must not pause it again.
    a1.ok(json!({"type": "set_status", "status": "available"}))
        .await;
    for _ in 0..2 {
        let again = a1.ok(pause.clone()).await;
        assert_eq!(
            again["agent"]["status"], "available",
            "answered with the current record, nothing applied: {again}"
        );
    }
    let events = events_of(&mut s1, "a1").await;
    let pauses = events.iter().filter(|(e, _)| e == "pause").count();
    assert_eq!(pauses, 1, "one pause in the history: {events:?}");
    // The same key from another user is another request: a supervisor's
    // command under it is applied, and repeated is not.
    let cmd = json!({"type": "command", "action": "pause", "agent_id": "a1",
                     "reason": "coaching", "idempotency_key": "pause-7f3a"});
    s1.ok(cmd.clone()).await;
    s1.ok(json!({"type": "command", "action": "unpause", "agent_id": "a1"}))
        .await;
    let again = s1.ok(cmd).await;
    assert_eq!(again["agent"]["status"], "available", "{again}");
    let events = events_of(&mut s1, "a1").await;
    let coaching = events
        .iter()
        .filter(|(e, r)| e == "pause" && r == "coaching")
        .count();
    assert_eq!(coaching, 1, "{events:?}");
    // A settings change too.
    let settings = json!({"type": "update_settings", "settings": {"wrap_up_seconds": 42},
                          "idempotency_key": "settings-1"});
    ad.ok(settings.clone()).await;
    ad.ok(json!({"type": "update_settings", "settings": {"wrap_up_seconds": 43}}))
        .await;
    let again = ad.ok(settings).await;
    assert_eq!(again["settings"]["wrap_up_seconds"], 43, "{again}");
    // A key that is not a string of 1 to 128 characters is refused, and the
    // request with it is not applied.
    for bad in [json!(""), json!(7), json!("k".repeat(129))] {
        a1.refused(
            json!({"type": "set_status", "status": "paused", "reason": "bad-key",
                   "idempotency_key": bad}),
            "bad_request",
        )
        .await;
    }
    let events = events_of(&mut s1, "a1").await;
    assert!(
        !events.iter().any(|(_, r)| r == "bad-key"),
        "a refused request changes nothing: {events:?}"
    );
}

/// PROTOCOL.md §3: a message with an `id` gets exactly one `reply` with
/// that id, whether it succeeds, is refused, is of an unknown type or is
/// malformed — here a pipelined burst of each, from an agent and from a
/// supervisor. Nothing is left unanswered, nothing answered twice.
#[tokio::test]
async fn every_request_with_an_id_gets_exactly_one_reply() {
    let hub = TestHub::start_with(|c| c.rate_limit_per_sec = 1_000).await;
    let mut a1 = hub.agent("a1", "d1").await;
    let mut s1 = hub.staff("s1", "supervisor").await;
    let agent_asks = [
        json!({"type": "heartbeat"}),
        json!({"type": "set_status", "status": "paused", "reason": "break"}),
        json!({"type": "set_status", "status": "available"}),
        json!({"type": "set_status", "status": "sleeping"}),
        json!({"type": "set_status", "status": "paused", "reason": ""}),
        json!({"type": "connect", "channel": ch("queue", "billing")}),
        json!({"type": "connect", "channel": ch("queue", "nowhere")}),
        json!({"type": "disconnect", "channel": ch("queue", "billing")}),
        json!({"type": "interaction_end", "interaction_id": "none"}),
        json!({"type": "end_wrap_up"}),
        json!({"type": "subscribe", "scope": {"all": true}}),
        json!({"type": "no_such_type"}),
        json!({"type": "set_status"}),
        json!({"type": "hello", "token": "x", "role": "agent"}),
    ];
    let staff_asks = [
        json!({"type": "subscribe", "scope": {"all": true}}),
        json!({"type": "search", "query": "a"}),
        json!({"type": "history", "agent_id": "a1", "limit": 5}),
        json!({"type": "history", "agent_id": "nobody"}),
        json!({"type": "command", "action": "pause", "agent_id": "a1", "reason": "coaching"}),
        json!({"type": "command", "action": "unpause", "agent_id": "a1"}),
        json!({"type": "command", "action": "pause", "agent_id": "nobody", "reason": "x"}),
        json!({"type": "command", "action": "fly", "agent_id": "a1"}),
        json!({"type": "set_status", "status": "available"}),
        json!({"type": "update_settings", "settings": {"wrap_up_seconds": 5}}),
        json!({"type": "heartbeat"}),
        json!({"type": "no_such_type"}),
    ];
    for (c, asks, who) in [
        (&mut a1, &agent_asks[..], "a"),
        (&mut s1, &staff_asks[..], "s"),
    ] {
        let ids: Vec<String> = (0..asks.len()).map(|i| format!("{who}{i}")).collect();
        c.burst(asks.iter().zip(&ids).map(|(ask, id)| {
            let mut ask = ask.clone();
            ask["id"] = json!(id);
            ask.to_string()
        }))
        .await;
        // One reply each...
        for (id, ask) in ids.iter().zip(asks) {
            c.recv_where(&format!("the reply to {ask} (id {id})"), |v| {
                v["type"] == "reply" && v["id"] == id.as_str()
            })
            .await;
        }
        // ...and no second one: a last request, answered after them (one
        // connection's requests are handled in order), then nothing else
        // with any of their ids came or is still coming.
        c.send(json!({"type": "heartbeat", "id": "last"})).await;
        c.recv_where("the last reply", |v| {
            v["type"] == "reply" && v["id"] == "last"
        })
        .await;
        let seen: Vec<Value> = c.drain_for(std::time::Duration::from_millis(200)).await;
        let more: Vec<&Value> = seen.iter().filter(|v| v["type"] == "reply").collect();
        assert!(
            more.is_empty(),
            "a second reply, or one to nothing sent: {more:?}"
        );
        let errors: Vec<&Value> = seen.iter().filter(|v| v["type"] == "error").collect();
        assert!(
            errors.is_empty(),
            "every ask had an id, so no bare error: {errors:?}"
        );
    }
}

/// PROTOCOL.md §6: an agent connection reads its own history (`agent_id`
/// left out or its own id, the reply of §5.5), never another agent's — not
/// even as a user who is also a supervisor — and nothing else an agent may
/// not do changed: staff still name the agent and stay in scope.
#[tokio::test]
async fn an_agent_reads_its_own_history_and_no_one_elses() {
    let hub = TestHub::start().await;
    let mut a1 = hub.agent("a1", "d1").await;
    let _a2 = hub.agent("a2", "d2").await;
    let t0 = presence_hub::clock::now_ms();
    a1.ok(json!({"type": "set_status", "status": "paused", "reason": "break"}))
        .await;
    a1.ok(json!({"type": "set_status", "status": "available"}))
        .await;
    let mine = a1
        .ok(json!({"type": "history", "since_ms": 0, "limit": 100}))
        .await;
    let events: Vec<&str> = mine["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter_map(|c| c["event"].as_str())
        .collect();
    assert_eq!(events, ["device_up", "pause", "unpause"]);
    let pause = &mine["changes"][1];
    assert_eq!(pause["pause_reason"], "break");
    assert_eq!(pause["by"], json!({"id": "a1", "role": "agent"}));
    assert!(pause["at_ms"].as_u64() >= Some(t0));
    // Naming itself is the same request; since_ms and limit work as for staff.
    let named = a1.ok(json!({"type": "history", "agent_id": "a1"})).await;
    assert_eq!(named, mine);
    let last = a1.ok(json!({"type": "history", "limit": 1})).await;
    assert_eq!(last["changes"].as_array().map(Vec::len), Some(1));
    assert_eq!(last["changes"][0]["event"], "unpause");
    a1.refused(json!({"type": "history", "limit": 0}), "bad_request")
        .await;
    // Staff read the same history.
    let mut s1 = hub.staff("s1", "supervisor").await;
    let staff = s1.ok(json!({"type": "history", "agent_id": "a1"})).await;
    assert_eq!(staff, mine);

    // Another agent, one that does not exist, or a non-agent user: forbidden,
    // without saying which.
    for other in ["a2", "nobody", "s1"] {
        let e = a1
            .refused(json!({"type": "history", "agent_id": other}), "forbidden")
            .await;
        assert_eq!(
            e["message"],
            "an agent connection may read only its own history"
        );
    }
    // Carla (a3) is also a supervisor, but on an agent connection she is an agent.
    let mut a3 = hub.agent("a3", "d3").await;
    a3.refused(json!({"type": "history", "agent_id": "a1"}), "forbidden")
        .await;
    a3.ok(json!({"type": "history"})).await;

    // Nothing else changed: the rest of §5 stays forbidden to agents...
    for body in [
        json!({"type": "subscribe", "scope": {"all": true}}),
        json!({"type": "search", "query": ""}),
        json!({"type": "command", "action": "pause", "agent_id": "a1", "reason": "x"}),
    ] {
        a1.refused(body, "forbidden").await;
    }
    // ...staff must still name the agent, and a scoped supervisor stays in scope.
    s1.refused(json!({"type": "history"}), "bad_request").await;
    let mut s2 = hub.staff("s2", "supervisor").await;
    s2.refused(json!({"type": "history", "agent_id": "a1"}), "forbidden")
        .await;
    s2.refused(json!({"type": "history"}), "bad_request").await;
}
