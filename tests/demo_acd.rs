//! The demo's simulated ACD (src/demo/acd.rs) against the real binary with
//! the demo on: it drives the hub through the integration API only, so a
//! supervisor sees queue statistics for every channel of the demo and
//! interactions made by `{"id": "demo-acd", "role": "integration"}`; and
//! once an admin revokes its credential it stops (its statistics go stale).
//!
//! Everything waits for a message with a deadline: the contacts arrive at
//! random, seconds apart (one waits in each channel from the start).

mod common;

use common::http::request;
use common::process::Proc;
use common::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

/// A channel as `(kind, id)`.
fn key(channel: &Value) -> (String, String) {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    (s(&channel["kind"]), s(&channel["id"]))
}

#[tokio::test]
async fn the_demos_acd_drives_interactions_and_statistics_through_the_api() {
    let node = Proc::start(
        // Stale soon, so the revocation shows without waiting half a minute.
        &["--listen", "127.0.0.1:0", "--queue-stats-stale-s", "3"],
        &[
            ("PRESENCE_HUB_JWT_SECRET", SECRET),
            ("PRESENCE_HUB_NO_DEMO", "false"),
        ],
    )
    .await;
    let mut sup = Client::connect(&node.ws_url()).await;
    sup.send(json!({"type": "hello", "token": token("acme", "s1"), "role": "supervisor"}))
        .await;
    sup.recv_type("welcome").await;
    let snapshot = sup.subscribe(json!({"all": true})).await;
    let channels: BTreeSet<(String, String)> = snapshot["channels"]
        .as_array()
        .expect("channels")
        .iter()
        .map(key)
        .collect();
    // The demo directory's queues, chat and campaign.
    for kind in ["queue", "chat", "campaign"] {
        assert!(channels.iter().any(|(k, _)| k == kind), "{channels:?}");
    }

    // Statistics of every channel, pushed by the ACD each second.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut seen = BTreeSet::new();
    while seen != channels {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let stats = sup
            .recv_where_within(
                &format!("queue statistics of each of {channels:?} (seen: {seen:?})"),
                left,
                |v| v["type"] == "queue_stats" && !seen.contains(&key(&v["channel"])),
            )
            .await;
        let s = &stats["stats"];
        let count = |name: &str| u64_of(&s[name]);
        // One contact waits in each channel from the start.
        assert!(count("offered") >= 1, "{stats}");
        assert!(
            count("answered") + count("abandoned") <= count("offered"),
            "{stats}"
        );
        assert!(count("service_level_s") > 0, "{stats}");
        u64_of(&s["waiting"]);
        u64_of(&s["longest_wait_s"]);
        seen.insert(key(&stats["channel"]));
    }

    // An interaction the ACD answered for a simulated agent.
    let acd = json!({"id": "demo-acd", "role": "integration"});
    let busy = sup
        .recv_where_within(
            "an agent busy with an interaction the ACD answered",
            Duration::from_secs(60),
            |v| {
                v["type"] == "agent"
                    && v["agent"]["status"] == "busy"
                    && v["agent"]["changed_by"] == acd
            },
        )
        .await;
    let agent = &busy["agent"];
    assert!(agent["interaction"]["id"].as_str().is_some(), "{busy}");
    assert_eq!(agent["presence"], "online", "{busy}");
    // Never one of the agents the demo leaves to people.
    assert!(!["a1", "a2"].contains(&agent["id"].as_str().unwrap_or_default()));

    // Revoked, the ACD stops: its statistics are pushed no more. (What
    // came before the revocation is dropped: only a stale mark after it
    // counts.)
    sup.drain_for(Duration::from_millis(1)).await;
    let (status, body) = request(
        &node.addr,
        "DELETE",
        "/api/v1/credentials/demo-acd",
        Some(&token("acme", "ad1")),
        "",
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    sup.recv_where_within(
        "the sales queue's statistics stale once the ACD stopped",
        Duration::from_secs(30),
        |v| v["type"] == "queue_stats" && v["channel"]["id"] == "sales" && v["stale"] == true,
    )
    .await;
}
