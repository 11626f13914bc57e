//! A node frozen past its lease (PROTOCOL.md §9.2): SIGSTOP, as a paused VM
//! or a stopped process. Its peers sweep its agents offline once its lease
//! expires — nobody can reach them — and when it wakes it must notice that
//! its lease lapsed (it saw no failure: it was not running), catch up and
//! re-assert the devices whose sockets it still holds, so its agents come
//! back online without reconnecting. Real nodes as processes, a real
//! `redis-server`.

mod common;

use common::process::{eventually, fault_node};
use common::redis::RedisServer;
use common::*;
use serde_json::json;
use std::time::Duration;

const TTL_MS: u64 = 1000;

#[tokio::test]
async fn a_node_frozen_past_its_lease_gets_its_agents_back_when_it_wakes() {
    let redis = RedisServer::start();
    // A presence TTL far above the freeze, so the agent's socket survives it.
    let long_ttl = ["--presence-ttl-ms", "60000"];
    let a = fault_node(&redis.url(), "a", TTL_MS, &long_ttl).await;
    let b = fault_node(&redis.url(), "b", TTL_MS, &long_ttl).await;
    let mut a1 = Client::connect(&a.ws_url()).await;
    a1.send(json!({"type": "hello", "token": token("acme", "a1"), "role": "agent", "device": {"id": "d1", "kind": "softphone"}}))
        .await;
    a1.recv_type("state").await;
    let mut sup = staff_at(&b.ws_url(), "acme", "s1", "supervisor").await;
    let snapshot = sup.subscribe(json!({"all": true})).await;
    assert_eq!(
        in_snapshot(&snapshot, "a1").expect("a1")["presence"],
        "online"
    );

    a.signal("STOP");
    // Node b sweeps a's devices once a's lease is gone: the correct view
    // while a cannot answer anyone.
    sup.agent_update("a1", |r| r["presence"] == "offline").await;
    a.signal("CONT");
    // Node a wakes, finds its lease had lapsed, and re-asserts d1, whose
    // socket it kept all along: a1 is online again, without reconnecting.
    let back = sup.agent_update("a1", |r| r["presence"] == "online").await;
    assert_eq!(back["devices"][0]["node"], "a", "{back}");
    eventually(
        "node a ready after the freeze",
        Duration::from_secs(10),
        Duration::from_millis(50),
        || async { a.status("/readyz").await == 200 },
    )
    .await;
    // And the socket that outlived the freeze works.
    let r = a1
        .ok(json!({"type": "set_status", "status": "paused", "reason": "lunch"}))
        .await;
    assert_eq!(
        (
            r["agent"]["presence"].as_str(),
            r["agent"]["status"].as_str()
        ),
        (Some("online"), Some("paused"))
    );
}
