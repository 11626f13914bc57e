//! Contact-center timers when a node dies (PROTOCOL.md §10.2; DESIGN.md §5: a sweeper covers
//! agents whose owner died), with the real binary as separate processes and
//! a real `redis-server` the test starts.
//!
//! A pause's overrun timer runs on the node that committed the pause. Here a
//! supervisor on node B pauses an agent whose device is on node A, and B is
//! killed with -9 before the limit passes: A's sweeper marks the overrun once
//! the limit is a node TTL overdue, with the same value B would have set.

mod common;

use common::process::{fault_node, Proc};
use common::redis::RedisServer;
use common::*;
use serde_json::json;

const TTL_MS: u64 = 1000;

async fn node(redis_url: &str, id: &str) -> Proc {
    let directory = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/common/directory.json");
    fault_node(redis_url, id, TTL_MS, &["--directory", directory]).await
}

#[tokio::test]
async fn a_dead_nodes_pause_overrun_is_marked_by_a_survivor() {
    let redis = RedisServer::start();
    let a = node(&redis.url(), "a").await;
    let mut b = node(&redis.url(), "b").await;

    let mut agent = Client::connect(&a.ws_url()).await;
    agent
        .send(
            json!({"type": "hello", "token": token("cc", "c1"), "role": "agent",
                     "device": {"id": "d1", "kind": "softphone"}}),
        )
        .await;
    agent.recv_type("state").await;
    let mut watch = Client::connect(&a.ws_url()).await;
    watch
        .send(json!({"type": "hello", "token": token("cc", "cs"), "role": "supervisor"}))
        .await;
    watch.recv_type("welcome").await;
    watch.subscribe(json!({"all": true})).await;

    // The pause is committed on B: B holds its overrun timer (1.2 s).
    let mut sup = Client::connect(&b.ws_url()).await;
    sup.send(json!({"type": "hello", "token": token("cc", "cs"), "role": "supervisor"}))
        .await;
    sup.recv_type("welcome").await;
    let paused = sup
        .ok(json!({"type": "command", "action": "pause", "agent_id": "c1", "reason": "break"}))
        .await;
    let since = paused["agent"]["status_since_ms"].as_u64().expect("since");
    b.kill().await;

    let marked = watch
        .agent_update("c1", |r| !r["pause_overrun_since_ms"].is_null())
        .await;
    assert_eq!(
        marked["pause_overrun_since_ms"].as_u64(),
        Some(since + 1200)
    );
    assert_eq!(
        (marked["status"].as_str(), marked["presence"].as_str()),
        (Some("paused"), Some("online")),
        "the agent on the surviving node is untouched otherwise"
    );
    let state = agent
        .state(|r| !r["pause_overrun_since_ms"].is_null())
        .await;
    assert_eq!(
        state["pause_overrun_since_ms"],
        marked["pause_overrun_since_ms"]
    );
}
