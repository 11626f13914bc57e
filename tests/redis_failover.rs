//! Cluster mode across Redis outages and failovers, with the real binary as
//! separate processes and real `redis-server`s the test starts and kills
//! with SIGKILL (issue 10): an outage longer than the node TTL (Redis back
//! with its AOF, and back empty) flaps no agent and loses no status, while
//! a node that really died during the outage is still swept once Redis is
//! back.

mod common;

use common::process::{eventually, Proc};
use common::redis::RedisServer;
use common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const TTL_MS: u64 = 1000;

async fn node(redis_url: &str, id: &str) -> Proc {
    let ttl = TTL_MS.to_string();
    Proc::start(
        &[
            "--listen",
            "127.0.0.1:0",
            "--redis-url",
            redis_url,
            "--node-id",
            id,
            "--node-ttl-ms",
            &ttl,
            "--reconnect-grace-ms",
            "300",
            "--redis-timeout-ms",
            "300",
        ],
        &[("PRESENCE_HUB_JWT_SECRET", SECRET)],
    )
    .await
}

async fn agent(p: &Proc, user: &str, device: &str) -> Client {
    let mut c = Client::connect(&p.ws_url()).await;
    c.send(json!({"type": "hello", "token": token("acme", user), "role": "agent", "device": {"id": device, "kind": "softphone"}}))
        .await;
    c.recv_type("state").await;
    c
}

async fn supervisor(p: &Proc) -> (Client, Value) {
    let mut c = Client::connect(&p.ws_url()).await;
    c.send(json!({"type": "hello", "token": token("acme", "s1"), "role": "supervisor"}))
        .await;
    c.recv_type("welcome").await;
    let snapshot = c.subscribe(json!({"all": true})).await;
    (c, snapshot)
}

async fn ready(p: &Proc, what: &str, want: u16) {
    eventually(
        what,
        Duration::from_secs(15),
        Duration::from_millis(50),
        || async { p.status("/readyz").await == want },
    )
    .await;
}

/// Three nodes; a1 paused on node a, a supervisor on node b, a2 on node c.
/// Redis is killed; node c is killed during the outage; Redis comes back
/// after more than a node TTL (with its AOF, or empty). a2 must be swept;
/// a1 must never flap and keep its pause.
async fn outage_longer_than_the_ttl(aof: bool) {
    let mut redis = RedisServer::start_with(aof);
    let a = node(&redis.url(), "a").await;
    let b = node(&redis.url(), "b").await;
    let mut c = node(&redis.url(), "c").await;
    let mut a1 = agent(&a, "a1", "d1").await;
    let paused = a1
        .ok(json!({"type": "set_status", "status": "paused", "reason": "meeting"}))
        .await["agent"]
        .clone();
    let _a2 = agent(&c, "a2", "d2").await;
    let (mut sup, snapshot) = supervisor(&b).await;
    for id in ["a1", "a2"] {
        assert_eq!(in_snapshot(&snapshot, id).expect(id)["presence"], "online");
    }

    redis.kill();
    ready(&a, "node a not ready", 503).await;
    ready(&b, "node b not ready", 503).await;
    c.kill().await;
    // The outage itself is what is under test: it must outlast the lease
    // (TTL) by a margin, as a Sentinel failover does (5–30 s in production).
    tokio::time::sleep(Duration::from_millis(TTL_MS * 5 / 2)).await;
    a1.ok(json!({"type": "heartbeat"})).await;
    redis.restart();
    let back = Instant::now();

    ready(&a, "node a ready again", 200).await;
    ready(&b, "node b ready again", 200).await;
    // The node that died during the outage is swept once Redis is back...
    let off = sup.agent_update("a2", |r| r["presence"] == "offline").await;
    println!(
        "a2 (node killed during the outage) offline {} ms after Redis came back (node TTL {TTL_MS} ms)",
        back.elapsed().as_millis()
    );
    assert_eq!(off["devices"][0]["active"], false);
    // ...by the same sweep that would have wrongly taken a1 with it. A
    // marker change closes the window: everything the supervisor saw of a1
    // before it kept a1 online and paused.
    let marker = a1
        .ok(json!({"type": "connect", "channel": {"kind": "queue", "id": "billing"}}))
        .await["agent"]
        .clone();
    let seen = sup
        .agent_update("a1", |r| r["version"] == marker["version"])
        .await;
    assert_eq!(
        (seen["status"].as_str(), seen["pause_reason"].as_str()),
        (Some("paused"), Some("meeting")),
        "the pause survived the outage"
    );
    let before: Vec<Value> = sup
        .drain_for(Duration::from_millis(100))
        .await
        .into_iter()
        .filter(|v| v["type"] == "agent" && v["agent"]["id"] == "a1")
        .collect();
    for delta in &before {
        let r = &delta["agent"];
        assert_eq!(
            (r["presence"].as_str(), r["status"].as_str()),
            (Some("online"), Some("paused")),
            "a1 flapped: {delta}"
        );
    }
    // The store's history of a1 has no device going down either.
    let history = sup
        .ok(json!({"type": "history", "agent_id": "a1", "limit": 100}))
        .await;
    let changes = history["changes"].as_array().expect("changes");
    assert!(
        changes
            .iter()
            .all(|h| h["presence"] == "online" && h["event"] != "device_down"),
        "a1's history shows a flap: {changes:?}"
    );
    if aof {
        // With the AOF the pause itself is in the history too.
        assert!(changes.iter().any(|h| h["version"] == paused["version"]));
    }
}

#[tokio::test]
async fn an_outage_longer_than_the_ttl_flaps_no_one_redis_back_with_its_aof() {
    outage_longer_than_the_ttl(true).await;
}

#[tokio::test]
async fn an_outage_longer_than_the_ttl_flaps_no_one_redis_back_empty() {
    outage_longer_than_the_ttl(false).await;
}
