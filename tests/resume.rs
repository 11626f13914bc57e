//! Supervisor resume (PROTOCOL.md §5.1.1): a wallboard that reconnects with the seq it
//! last applied gets only what changed, plus the ids of everyone in scope;
//! when the hub cannot vouch for that, a full snapshot. Runs on one node and
//! (as `cluster_resume`) on three, where the resume goes to another node than
//! the first subscription.

mod common;

use common::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;

fn ids(list: &Value) -> BTreeSet<String> {
    list.as_array()
        .expect("array")
        .iter()
        .map(|v| {
            v.as_str()
                .or_else(|| v["id"].as_str())
                .expect("id")
                .to_string()
        })
        .collect()
}

/// A supervisor connection to node `i` (another node than `hub.url()`'s in
/// a cluster), after welcome.
async fn staff_on(hub: &TestHub, i: usize, user: &str) -> Client {
    let mut c = Client::connect(&hub.node(i).url()).await;
    c.send(json!({"type": "hello", "token": token("acme", user), "role": "supervisor"}))
        .await;
    c.recv_type("welcome").await;
    c
}

async fn resume(c: &mut Client, scope: Value, since: &Value, epoch: Option<&Value>) -> Value {
    let mut body = json!({"type": "subscribe", "scope": scope, "since_seq": since});
    if let Some(epoch) = epoch {
        body["epoch"] = epoch.clone();
    }
    c.ok(body).await;
    c.recv_type("snapshot").await
}

#[tokio::test]
async fn a_reconnecting_wallboard_gets_only_what_changed_and_who_is_in_scope() {
    let hub = TestHub::start().await;
    let (sup, first) = hub.watcher("s1").await;
    assert_eq!(first["resumed"], false);
    let all = ids(&first["agents"]);
    assert!(all.len() >= 3, "{first}");
    let epoch = first["epoch"].clone();
    assert!(epoch.is_string(), "the snapshot names its epoch: {first}");
    sup.drop_abruptly();

    // While the wallboard is away, a1 signs in and is paused by s2's
    // colleague; nothing else changes.
    let mut a1 = hub.agent("a1", "d1").await;
    a1.ok(json!({"type": "set_status", "status": "paused", "reason": "break"}))
        .await;

    let mut back = staff_on(&hub, 2, "s1").await;
    let snap = resume(&mut back, json!({"all": true}), &first["seq"], Some(&epoch)).await;
    assert_eq!(snap["resumed"], true, "{snap}");
    assert_eq!(snap["epoch"], epoch);
    assert!(u64_of(&snap["seq"]) > u64_of(&first["seq"]));
    assert_eq!(ids(&snap["agents"]), BTreeSet::from(["a1".to_string()]));
    assert_eq!(snap["agents"][0]["status"], "paused");
    assert_eq!(
        ids(&snap["agent_ids"]),
        all,
        "every agent in scope is listed"
    );
    assert!(snap["channels"].is_array() && snap["settings"].is_object());

    // Live deltas follow the resumed snapshot as after a full one.
    a1.ok(json!({"type": "set_status", "status": "available"}))
        .await;
    back.agent_update("a1", |r| r["status"] == "available")
        .await;
}

#[tokio::test]
async fn an_agent_that_left_the_scope_meanwhile_is_not_listed() {
    let hub = TestHub::start().await;
    let mut s2 = staff_on(&hub, 1, "s2").await;
    let billing = json!({"channels": [{"kind": "queue", "id": "billing"}]});
    let first = s2.subscribe(billing.clone()).await;
    assert!(ids(&first["agents"]).contains("a2"), "{first}");
    s2.drop_abruptly();

    let mut admin = hub.staff("ad1", "admin").await;
    admin
        .ok(json!({"type": "unassign", "agent_id": "a2",
                   "channel": {"kind": "queue", "id": "billing"}}))
        .await;

    let mut back = staff_on(&hub, 2, "s2").await;
    let snap = resume(&mut back, billing, &first["seq"], Some(&first["epoch"])).await;
    assert_eq!(snap["resumed"], true, "{snap}");
    assert!(!ids(&snap["agent_ids"]).contains("a2"), "{snap}");
    assert!(
        snap["agents"].as_array().expect("agents").is_empty(),
        "{snap}"
    );
}

#[tokio::test]
async fn without_a_usable_seq_or_epoch_the_snapshot_is_full() {
    let hub = TestHub::start().await;
    let (mut sup, first) = hub.watcher("s1").await;
    let all = ids(&first["agents"]);
    let seq = first["seq"].as_u64().expect("seq");

    // A seq the tenant has not reached yet.
    let snap = resume(&mut sup, json!({"all": true}), &json!(seq + 1000), None).await;
    assert_eq!(snap["resumed"], false, "{snap}");
    assert_eq!(ids(&snap["agents"]), all);
    assert!(snap.get("agent_ids").is_none(), "{snap}");

    // Another epoch (the store was restored since the client's snapshot).
    let other = json!("some-other-epoch@0");
    let snap = resume(&mut sup, json!({"all": true}), &json!(seq), Some(&other)).await;
    assert_eq!(snap["resumed"], false, "{snap}");
    assert_eq!(ids(&snap["agents"]), all);

    // Without an epoch, a seq within the current one resumes.
    let snap = resume(&mut sup, json!({"all": true}), &json!(seq), None).await;
    assert_eq!(snap["resumed"], true, "{snap}");
    assert!(snap["agents"].as_array().expect("agents").is_empty());
    assert_eq!(ids(&snap["agent_ids"]), all);

    // A seq that is not a non-negative integer is refused, and changes
    // nothing: the subscription still delivers.
    sup.refused(
        json!({"type": "subscribe", "scope": {"all": true}, "since_seq": "12"}),
        "bad_request",
    )
    .await;
    sup.refused(
        json!({"type": "subscribe", "scope": {"all": true}, "since_seq": -1}),
        "bad_request",
    )
    .await;
    let mut a2 = hub.agent("a2", "d2").await;
    a2.ok(json!({"type": "set_status", "status": "paused", "reason": "lunch"}))
        .await;
    sup.agent_update("a2", |r| r["status"] == "paused").await;
}
