//! Cluster mode on a 3-shard Redis Cluster (`--redis-cluster`): tenants'
//! keys and sharded delta channels live on their own shards; deltas,
//! commands across nodes and history work as on one Redis.

mod common;

use common::process::Proc;
use common::redis::RedisCluster;
use common::*;
use serde_json::json;

async fn node(seeds: &str, id: &str) -> Proc {
    Proc::start(
        &[
            "--listen",
            "127.0.0.1:0",
            "--redis-url",
            seeds,
            "--redis-cluster",
            "--node-id",
            id,
            "--node-ttl-ms",
            "1000",
            "--directory",
            concat!(env!("CARGO_MANIFEST_DIR"), "/tests/common/directory.json"),
        ],
        &[("PRESENCE_HUB_JWT_SECRET", SECRET)],
    )
    .await
}

async fn hello(p: &Proc, tenant: &str, user: &str, role: &str, device: Option<&str>) -> Client {
    let mut c = Client::connect(&p.ws_url()).await;
    let mut body = json!({"type": "hello", "token": token(tenant, user), "role": role});
    if let Some(d) = device {
        body["device"] = json!({"id": d, "kind": "softphone"});
    }
    c.send(body).await;
    c.recv_type("welcome").await;
    c
}

#[tokio::test]
async fn nodes_share_state_through_a_redis_cluster_with_sharded_pubsub() {
    let cluster = RedisCluster::start();
    let seeds = cluster.seeds();
    let a = node(&seeds, "a").await;
    let b = node(&seeds, "b").await;

    // Two tenants, whose hash tags land on shards of their own.
    for tenant in ["acme", "globex"] {
        let slot = cluster.shards[0].cli(&["cluster", "keyslot", &format!("hub:{{{tenant}}}:seq")]);
        assert!(!slot.is_empty());
    }
    let mut sup = hello(&b, "acme", "s1", "supervisor", None).await;
    sup.subscribe(json!({"all": true})).await;
    let mut gs = hello(&b, "globex", "gs", "supervisor", None).await;
    gs.subscribe(json!({"all": true})).await;

    let mut a1 = hello(&a, "acme", "a1", "agent", Some("d1")).await;
    sup.agent_update("a1", |r| r["presence"] == "online").await;
    let mut g1 = hello(&a, "globex", "g1", "agent", Some("d9")).await;
    gs.agent_update("g1", |r| r["presence"] == "online").await;

    // A supervisor on node b pauses an agent on node a.
    let r = sup
        .ok(json!({"type": "command", "action": "pause", "agent_id": "a1", "reason": "coaching"}))
        .await;
    assert_eq!(r["agent"]["status"], "paused");
    a1.state(|s| s["pause_reason"] == "coaching").await;
    // Monitor is routed to the node holding the device, and answered.
    sup.send(json!({"type": "command", "id": "m", "action": "monitor", "agent_id": "a1"}))
        .await;
    let cmd = a1.recv_type("command").await;
    a1.send(json!({"type": "command_ack", "command_id": cmd["command_id"], "ok": true}))
        .await;
    let reply = sup.recv_where("monitor reply", |v| v["id"] == "m").await;
    assert_eq!(
        reply["result"]["agent"]["monitored_by"],
        json!(["s1"]),
        "{reply}"
    );
    // Tenants stay apart, and the other tenant's deltas flow too.
    g1.ok(json!({"type": "set_status", "status": "paused", "reason": "break"}))
        .await;
    gs.agent_update("g1", |r| r["status"] == "paused").await;
    let history = sup.ok(json!({"type": "history", "agent_id": "a1"})).await;
    let events: Vec<&str> = history["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter_map(|c| c["event"].as_str())
        .collect();
    assert_eq!(events, ["device_up", "pause", "monitor"]);
    // The acme keys all sit on one shard (the hash tag).
    let owners: Vec<usize> = cluster
        .shards
        .iter()
        .enumerate()
        .filter(|(_, s)| s.cli(&["exists", "hub:{acme}:records"]) == "1")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(owners.len(), 1);
    let shard = &cluster.shards[owners[0]];
    assert_eq!(shard.cli(&["exists", "hub:{acme}:seq"]), "1");
    assert_eq!(shard.cli(&["exists", "hub:{acme}:history"]), "1");
}
