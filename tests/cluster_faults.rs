//! Cluster faults with the real binary as separate processes and a real
//! `redis-server` the test starts, kills and restarts (DESIGN.md §5, issue 3):
//! a node killed with -9 (also under an agent with devices on two nodes),
//! Redis restarted with its AOF and empty, a node cut off from Redis,
//! three nodes racing on one agent, a delta lost with none after it, and a
//! node that drops deltas it cannot apply in time (`--redis-push-queue`), and a
//! node killed after its agents joined a tenant the survivors already followed.

mod common;

use common::process::{eventually, fault_node, Proc};
use common::proxy::Proxy;
use common::redis::RedisServer;
use common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const TTL_MS: u64 = 1000;

async fn node(redis_url: &str, id: &str) -> Proc {
    fault_node(redis_url, id, TTL_MS, &["--command-timeout-ms", "1000"]).await
}

async fn agent(p: &Proc, user: &str, device: &str) -> Client {
    let mut c = Client::connect(&p.ws_url()).await;
    c.send(json!({"type": "hello", "token": token("acme", user), "role": "agent", "device": {"id": device, "kind": "softphone"}}))
        .await;
    c.recv_type("state").await;
    c
}

async fn watcher(p: &Proc, user: &str) -> (Client, Value) {
    let mut c = Client::connect(&p.ws_url()).await;
    c.send(json!({"type": "hello", "token": token("acme", user), "role": "supervisor"}))
        .await;
    c.recv_type("welcome").await;
    let snapshot = c.subscribe(json!({"all": true})).await;
    (c, snapshot)
}

async fn snapshot_of(p: &Proc) -> Value {
    let (_, snapshot) = watcher(p, "s1").await;
    snapshot
}

/// Re-reads a node's snapshot until `pred` holds for it (with a deadline).
async fn snapshot_until(p: &Proc, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let snapshot = snapshot_of(p).await;
        if pred(&snapshot) {
            return snapshot;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within 10 s; last snapshot {snapshot}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An agent's version in the store.
fn stored_version(redis: &RedisServer, id: &str) -> u64 {
    let version = redis.cli(&["hget", "hub:{acme}:versions", id]);
    version.trim().parse::<u64>().expect("a stored version")
}

/// A number the store keeps under `key` (a seq, a version).
fn stored_number(redis: &RedisServer, key: &str) -> u64 {
    let n = redis.cli(&["get", key]);
    n.trim().parse().unwrap_or_else(|_| panic!("{key}: {n:?}"))
}

/// Waits until node `p` has resynced more than `before` times (a
/// catch-up done).
async fn resynced_past(p: &Proc, before: u64) {
    eventually(
        "a resync",
        Duration::from_secs(10),
        Duration::from_millis(20),
        || async move { counter(p, "presence_hub_resyncs_total").await.0 > before },
    )
    .await;
}

/// `body` refused `unavailable` because the node found the store lost
/// directory changes it had applied.
async fn refused_as_a_fork(admin: &mut Client, body: Value) {
    let refused = admin.refused(body, "unavailable").await;
    assert!(
        refused["message"]
            .as_str()
            .is_some_and(|m| m.contains("lost recent changes of the directory")),
        "{refused}"
    );
}

/// A counter of a node's (0 before its first increase), and the whole
/// `/metrics` page for a failure's message.
async fn counter(p: &Proc, name: &str) -> (u64, String) {
    let (_, metrics) = common::process::http_get(&p.addr, "/metrics").await;
    let value = metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|n| n.trim().parse::<u64>().ok())
        .unwrap_or(0);
    (value, metrics)
}

/// Deltas a node dropped from its push queue (`--redis-push-queue`).
async fn pushes_dropped(p: &Proc) -> (u64, String) {
    counter(p, "presence_hub_redis_pushes_dropped_total").await
}

/// `n` status changes, paused and available in turn, with ids
/// `{prefix}{i}`: sent as one burst, they reach the hub back to back.
fn flips(prefix: &str, n: usize) -> impl Iterator<Item = String> + '_ {
    (0..n).map(move |i| {
        let body = if i % 2 == 0 {
            json!({"type": "set_status", "status": "paused", "reason": "lunch", "id": format!("{prefix}{i}")})
        } else {
            json!({"type": "set_status", "status": "available", "id": format!("{prefix}{i}")})
        };
        body.to_string()
    })
}

fn record<'a>(snapshot: &'a Value, id: &str) -> &'a Value {
    in_snapshot(snapshot, id).unwrap_or_else(|| panic!("{id} in {snapshot}"))
}

#[tokio::test]
async fn a_killed_nodes_agents_go_offline_everywhere_and_nothing_else_changes() {
    let redis = RedisServer::start();
    let mut a = node(&redis.url(), "a").await;
    let b = node(&redis.url(), "b").await;
    let c = node(&redis.url(), "c").await;
    let _a1 = agent(&a, "a1", "d1").await;
    let mut a2 = agent(&b, "a2", "d2").await;
    a2.ok(json!({"type": "set_status", "status": "paused", "reason": "lunch"}))
        .await;
    let (mut on_c, snapshot) = watcher(&c, "s1").await;
    let (mut on_b, _) = watcher(&b, "a3").await;
    assert_eq!(record(&snapshot, "a1")["presence"], "online");

    a.kill().await;
    let killed = Instant::now();
    let off = on_c
        .agent_update("a1", |r| r["presence"] == "offline")
        .await;
    let took = killed.elapsed();
    println!(
        "a1 offline on node c {} ms after kill -9 (node TTL {TTL_MS} ms)",
        took.as_millis()
    );
    assert_eq!(off["devices"][0]["active"], false);
    assert_eq!(off["changed_by"], json!({"id": "system", "role": "system"}));
    on_b.agent_update("a1", |r| r["presence"] == "offline")
        .await;
    // Nothing else changed: a2 on a surviving node is as it was.
    let snapshot = snapshot_of(&c).await;
    let a2_now = record(&snapshot, "a2");
    assert_eq!(
        (a2_now["presence"].as_str(), a2_now["status"].as_str()),
        (Some("online"), Some("paused"))
    );
    assert_eq!(a2_now["pause_reason"], "lunch");
    a2.ok(json!({"type": "heartbeat"})).await;
}

/// The ids of a record's active devices, sorted.
fn active_devices(r: &Value) -> Vec<&str> {
    let mut ids: Vec<&str> = r["devices"]
        .as_array()
        .expect("devices")
        .iter()
        .filter(|d| d["active"] == true)
        .map(|d| d["id"].as_str().expect("device id"))
        .collect();
    ids.sort_unstable();
    ids
}

#[tokio::test]
async fn a_killed_node_takes_down_only_its_own_device_of_an_agent_on_two_nodes() {
    let redis = RedisServer::start();
    let mut a = node(&redis.url(), "a").await;
    let b = node(&redis.url(), "b").await;
    // One agent, a desk phone on node a and a mobile on node b.
    let _desk = agent(&a, "a1", "desk").await;
    let mut mobile = agent(&b, "a1", "mobile").await;
    let paused = mobile
        .ok(json!({"type": "set_status", "status": "paused", "reason": "lunch"}))
        .await["agent"]
        .clone();
    assert_eq!(active_devices(&paused), ["desk", "mobile"], "{paused}");
    let (mut on_b, _) = watcher(&b, "s1").await;

    a.kill().await;
    // The survivor's sweeper takes the dead node's device down, and only it:
    // the agent stays online on its mobile, still paused.
    let swept = on_b
        .agent_update("a1", |r| {
            r["devices"]
                .as_array()
                .is_some_and(|ds| ds.iter().any(|d| d["id"] == "desk" && d["active"] == false))
        })
        .await;
    assert_eq!(active_devices(&swept), ["mobile"], "{swept}");
    assert_eq!(
        (
            swept["presence"].as_str(),
            swept["status"].as_str(),
            swept["pause_reason"].as_str()
        ),
        (Some("online"), Some("paused"), Some("lunch")),
        "{swept}"
    );
    // Nothing more about a1 follows the sweep: the mobile's next change is
    // the very next delta about it, on a record with the mobile active.
    let next = mobile
        .ok(json!({"type": "set_status", "status": "available"}))
        .await["agent"]
        .clone();
    let seen = on_b
        .agent_update("a1", |r| u64_of(&r["version"]) > u64_of(&swept["version"]))
        .await;
    assert_eq!(
        seen["version"], next["version"],
        "an unexpected delta: {seen}"
    );
    assert_eq!(active_devices(&seen), ["mobile"], "{seen}");
    assert_eq!(seen["presence"], "online");
}

async fn outage_keeps_state(aof: bool) {
    let mut redis = RedisServer::start_with(aof);
    let a = node(&redis.url(), "a").await;
    let b = node(&redis.url(), "b").await;
    let mut a1 = agent(&a, "a1", "d1").await;
    a1.ok(json!({"type": "connect", "channel": {"kind": "queue", "id": "billing"}}))
        .await;
    let before = a1
        .ok(json!({"type": "set_status", "status": "paused", "reason": "lunch"}))
        .await["agent"]
        .clone();
    let (mut sup, _) = watcher(&b, "s1").await;
    assert_eq!(a.status("/readyz").await, 200);

    redis.kill();
    let tick = Duration::from_millis(50);
    eventually(
        "node a not ready",
        Duration::from_secs(10),
        tick,
        || async { a.status("/readyz").await == 503 },
    )
    .await;
    // While the store is gone, changes are refused, never half-applied...
    a1.refused(
        json!({"type": "set_status", "status": "available"}),
        "unavailable",
    )
    .await;
    // ...and heartbeats keep the device alive locally.
    a1.ok(json!({"type": "heartbeat"})).await;

    redis.restart();
    eventually(
        "node a ready again",
        Duration::from_secs(10),
        tick,
        || async { a.status("/readyz").await == 200 },
    )
    .await;
    eventually(
        "node b ready again",
        Duration::from_secs(10),
        tick,
        || async { b.status("/readyz").await == 200 },
    )
    .await;
    // Nothing a supervisor saw is lost.
    let snapshot = snapshot_until(&b, "a1 as it was, on node b", |s| {
        let a1 = record(s, "a1");
        a1["status"] == "paused" && a1["presence"] == "online"
    })
    .await;
    let last = record(&snapshot, "a1").clone();
    assert_eq!(last["pause_reason"], before["pause_reason"]);
    assert_eq!(
        channel(&last, "queue", "billing").map(|c| c["connected"].clone()),
        Some(json!(true))
    );
    // Deltas resume, with versions after the ones seen before.
    let r = a1
        .ok(json!({"type": "set_status", "status": "available"}))
        .await;
    assert!(u64_of(&r["agent"]["version"]) > u64_of(&before["version"]));
    let seen = sup.agent_update("a1", |r| r["status"] == "available").await;
    assert_eq!(seen["version"], r["agent"]["version"]);
    // The event stream (protocol/EVENTS.md) says what the store kept: with
    // its AOF, every version; empty, a `gap` up to the restored version,
    // then the change made after it.
    let events = common::http::acme_events(&b.addr).await;
    for pair in events.windows(2) {
        assert_eq!(
            u64_of(&pair[1]["version"]),
            u64_of(&pair[0]["version"]) + 1,
            "one event per version: {pair:#?}"
        );
    }
    let gaps: Vec<&Value> = events.iter().filter(|e| e["type"] == "gap").collect();
    let lunch = events
        .iter()
        .any(|e| e["current"]["pause_reason"] == "lunch" && e["event"] == "pause");
    if aof {
        assert!(gaps.is_empty() && lunch, "{events:#?}");
    } else {
        assert_eq!(gaps.len(), 1, "{events:#?}");
        assert_eq!(gaps[0]["from"], 1, "the stream lost everything before it");
        assert_eq!(gaps[0]["event"], "restored");
        assert!(!lunch, "nothing from before the loss: {events:#?}");
    }
    let last = events.last().expect("an event");
    assert_eq!(last["version"], r["agent"]["version"], "{last}");
    assert_eq!(last["event"], "unpause");
}

#[tokio::test]
async fn redis_restarted_with_its_aof_loses_nothing() {
    outage_keeps_state(true).await;
}

#[tokio::test]
async fn redis_restarted_empty_is_restored_from_the_replicas() {
    outage_keeps_state(false).await;
}

#[tokio::test]
async fn a_node_cut_off_from_redis_gets_its_agents_back_when_the_cut_heals() {
    let redis = RedisServer::start();
    let proxy = Proxy::start(redis.port).await;
    let cut_node = node(&proxy.url(), "cut").await;
    let other = node(&redis.url(), "other").await;
    let mut a1 = agent(&cut_node, "a1", "d1").await;
    let (mut sup, snapshot) = watcher(&other, "s1").await;
    assert_eq!(record(&snapshot, "a1")["presence"], "online");
    // An agent swept while on a break comes back as the tenant's sign-in
    // status says (PROTOCOL.md §10.3): here `restore`, so still on it.
    let mut admin = staff_at(&other.ws_url(), "acme", "ad1", "admin").await;
    admin
        .ok(json!({"type": "update_settings", "settings": {"sign_in_status": "restore"}}))
        .await;
    a1.ok(json!({"type": "set_status", "status": "paused", "reason": "meeting"}))
        .await;
    sup.agent_update("a1", |r| r["pause_reason"] == "meeting")
        .await;

    proxy.cut();
    // Its lease expires: the other node turns its agents offline.
    let off = sup.agent_update("a1", |r| r["presence"] == "offline").await;
    a1.ok(json!({"type": "heartbeat"})).await; // the agent's socket is fine
    let tick = Duration::from_millis(50);
    eventually(
        "cut node not ready",
        Duration::from_secs(10),
        tick,
        || async { cut_node.status("/readyz").await == 503 },
    )
    .await;

    proxy.heal();
    let back = sup.agent_update("a1", |r| r["presence"] == "online").await;
    assert!(u64_of(&back["version"]) > u64_of(&off["version"]));
    assert_eq!(back["devices"][0]["node"], "cut");
    assert_eq!(
        (back["status"].as_str(), back["pause_reason"].as_str()),
        (Some("paused"), Some("meeting")),
        "restored to the break it was on: {back}"
    );
    eventually("cut node ready", Duration::from_secs(10), tick, || async {
        cut_node.status("/readyz").await == 200
    })
    .await;
    // And it works both ways again.
    a1.ok(json!({"type": "set_status", "status": "available"}))
        .await;
    sup.agent_update("a1", |r| r["status"] == "available").await;
}

#[tokio::test]
async fn three_nodes_changing_one_agent_lose_no_update() {
    let redis = RedisServer::start();
    let nodes = [
        node(&redis.url(), "n0").await,
        node(&redis.url(), "n1").await,
        node(&redis.url(), "n2").await,
    ];
    let _a1 = agent(&nodes[0], "a1", "d1").await;
    let mut sups = Vec::new();
    for n in &nodes {
        let mut s = Client::connect(&n.ws_url()).await;
        s.send(json!({"type": "hello", "token": token("acme", "s1"), "role": "supervisor"}))
            .await;
        s.recv_type("welcome").await;
        sups.push(s);
    }
    // Every node toggles a1's connection to a queue as fast as it can.
    let rounds = 40;
    let runs = sups.into_iter().enumerate().map(|(i, mut s)| {
        tokio::spawn(async move {
            let mut versions = Vec::new();
            for k in 0..rounds {
                let action = if (k + i) % 2 == 0 { "connect" } else { "disconnect" };
                let reply = s
                    .request(json!({"type": "command", "action": action, "agent_id": "a1", "channel": {"kind": "queue", "id": "billing"}}))
                    .await;
                if reply["ok"] == true {
                    versions.push(reply["result"]["agent"]["version"].as_u64().expect("version"));
                } else {
                    assert_eq!(reply["error"]["code"], "invalid_state", "{reply}");
                }
            }
            versions
        })
    });
    let mut all = Vec::new();
    for run in runs {
        all.extend(run.await.expect("run"));
    }
    assert!(!all.is_empty());
    let mut unique = all.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        all.len(),
        "two successful changes got the same version"
    );
    let newest = *unique.last().expect("some");
    // All replicas end equal, at the newest version.
    let mut snapshots = Vec::new();
    for n in &nodes {
        let got = snapshot_until(n, "replica caught up", |s| {
            record(s, "a1")["version"].as_u64() == Some(newest)
        })
        .await;
        snapshots.push(got["agents"].clone());
    }
    assert!(
        snapshots.windows(2).all(|w| w[0] == w[1]),
        "replicas differ"
    );
    // Every successful change is in the history, in order: none was lost.
    let mut s = Client::connect(&nodes[1].ws_url()).await;
    s.send(json!({"type": "hello", "token": token("acme", "s1"), "role": "supervisor"}))
        .await;
    s.recv_type("welcome").await;
    let history = s
        .ok(json!({"type": "history", "agent_id": "a1", "limit": 1000}))
        .await;
    let recorded: Vec<u64> = history["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter(|c| c["event"] == "connect" || c["event"] == "disconnect")
        .filter_map(|c| c["version"].as_u64())
        .collect();
    assert_eq!(
        recorded, unique,
        "history holds exactly the successful changes, in version order"
    );
}

#[tokio::test]
async fn a_device_reconnecting_to_another_node_replaces_its_old_connection() {
    let redis = RedisServer::start();
    let a = node(&redis.url(), "a").await;
    let b = node(&redis.url(), "b").await;
    let (mut sup, _) = watcher(&b, "s1").await;
    let mut old = agent(&a, "a1", "d1").await;
    sup.agent_update("a1", |r| r["presence"] == "online").await;
    // The same device comes up on node b (say, after a load-balancer move)
    // while its socket on node a is still open.
    let mut new = agent(&b, "a1", "d1").await;
    assert_eq!(
        old.closed().await.code,
        4009,
        "the old connection is told it was replaced"
    );
    let moved = sup
        .agent_update("a1", |r| r["devices"][0]["node"] == "b")
        .await;
    assert_eq!(
        (
            moved["presence"].as_str(),
            moved["devices"].as_array().map(Vec::len)
        ),
        (Some("online"), Some(1))
    );
    // No offline flap came in between, and the device works on node b.
    let r = new
        .ok(json!({"type": "set_status", "status": "paused", "reason": "training"}))
        .await;
    let next = sup
        .recv_where("a1 delta", |v| {
            v["type"] == "agent" && v["agent"]["id"] == "a1"
        })
        .await;
    assert_eq!(
        next["agent"]["version"], r["agent"]["version"],
        "an unexpected delta came first: {next}"
    );
}

#[tokio::test]
async fn a_node_follows_a_tenant_only_while_it_has_sessions_of_it() {
    let redis = RedisServer::start();
    let a = node(&redis.url(), "a").await;
    let b = node(&redis.url(), "b").await;
    let (mut sup, _) = watcher(&b, "s1").await;
    let subscribers = || redis.cli(&["pubsub", "numsub", "hub:{acme}:deltas"]);
    let a1 = agent(&a, "a1", "d1").await;
    assert_eq!(subscribers(), "hub:{acme}:deltas\n2");
    a1.close().await;
    sup.agent_update("a1", |r| r["presence"] == "offline").await;
    // After the grace and a node TTL without sessions, node a lets go.
    eventually(
        "node a unsubscribed",
        Duration::from_secs(10),
        Duration::from_millis(50),
        || async { subscribers() == "hub:{acme}:deltas\n1" },
    )
    .await;
    // A new session attaches again, from the store's current state.
    let mut again = agent(&a, "a1", "d1").await;
    assert_eq!(subscribers(), "hub:{acme}:deltas\n2");
    sup.agent_update("a1", |r| r["presence"] == "online").await;
    let r = again
        .ok(json!({"type": "set_status", "status": "paused", "reason": "meeting"}))
        .await;
    assert!(r["agent"]["version"].as_u64() > Some(2));
    sup.agent_update("a1", |r| r["pause_reason"] == "meeting")
        .await;
}

/// Pub/sub is at-most-once. A change whose delta never reached a node,
/// with no later change to reveal the gap in the seqs, still reaches it:
/// each node compares the store's seq with its replica's now and then and
/// catches up (`hub::cluster::seq_watch_loop`). The lost delta is made
/// here by committing with the real commit script and a no-op in place of
/// its PUBLISH, the way a publish lost between the store and a node looks.
#[tokio::test]
async fn a_change_whose_delta_was_lost_still_reaches_every_node() {
    let redis = RedisServer::start();
    let a = node(&redis.url(), "a").await;
    let b = node(&redis.url(), "b").await;
    let mut a1 = agent(&a, "a1", "d1").await;
    a1.ok(json!({"type": "set_status", "status": "paused", "reason": "lunch"}))
        .await;
    let (mut on_a, _) = watcher(&a, "s1").await;
    let (mut on_b, _) = watcher(&b, "s1").await;

    let stored = redis.cli(&["hget", "hub:{acme}:records", "a1"]);
    let expected = redis.cli(&["hget", "hub:{acme}:versions", "a1"]);
    let changed = stored.replace(
        r#""pause_reason":"lunch""#,
        r#""pause_reason":"lost delta""#,
    );
    assert_ne!(changed, stored, "{stored}");
    let cut = changed
        .rfind(r#""version":"#)
        .expect("the record ends with its version")
        + r#""version":"#.len();
    let commit = include_str!("../src/backplane/lua/commit.lua");
    let keys = [
        "hub:{acme}:seq",
        "hub:{acme}:records",
        "hub:{acme}:versions",
        "hub:{acme}:history",
        "hub:{acme}:deltas",
        "hub:{acme}:ops",
        "hub:{acme}:fence:lost",
        "hub:{acme}:seq",
        "hub:{acme}:events",
    ];
    let mut args = vec!["eval", commit, "9"];
    args.extend(keys);
    // No history, no event stream, no deadline, and EXISTS in place of
    // PUBLISH: the change is in the store and no node hears of it.
    args.extend([
        "a1",
        expected.as_str(),
        &changed[..cut],
        "0",
        "",
        "EXISTS",
        "lost",
        "0",
        "0",
        "",
        "0",
        "0",
    ]);
    let committed = redis.cli(&args);
    assert!(committed.starts_with('1'), "{committed}");

    // Both nodes' supervisors get the change, though no delta carried it.
    for sup in [&mut on_a, &mut on_b] {
        let seen = sup
            .agent_update("a1", |r| r["pause_reason"] == "lost delta")
            .await;
        assert_eq!(seen["status"], "paused", "{seen}");
    }
    for node in [&a, &b] {
        let (_, metrics) = common::process::http_get(&node.addr, "/metrics").await;
        assert!(
            metrics.contains("presence_hub_deltas_lost_total 1"),
            "the catch-up is counted: {metrics}"
        );
    }
}

#[tokio::test]
async fn a_node_that_drops_deltas_it_cannot_apply_in_time_resyncs_to_the_store() {
    let redis = RedisServer::start();
    let a = node(&redis.url(), "a").await;
    // Room for one waiting push: a burst of deltas overflows it.
    let b = fault_node(
        &redis.url(),
        "b",
        TTL_MS,
        &["--command-timeout-ms", "1000", "--redis-push-queue", "1"],
    )
    .await;
    let agents = ["a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8"];
    let mut clients = Vec::new();
    for id in agents {
        clients.push(agent(&a, id, &format!("{id}-desk")).await);
    }
    let (mut on_b, _) = watcher(&b, "s1").await;

    // Every agent flips between paused and available 40 times in one
    // burst, all at once: 320 deltas reach node B back to back.
    const FLIPS: usize = 40;
    let bursts = clients.iter_mut().map(|c| c.burst(flips("f", FLIPS)));
    futures_util::future::join_all(bursts).await;
    for c in &mut clients {
        let last = format!("f{}", FLIPS - 1);
        c.recv_where("the burst's last reply", |v| {
            v["type"] == "reply" && v["id"] == last.as_str()
        })
        .await;
    }

    // Node B shows each agent as the store holds it: its live supervisor
    // and a new one alike.
    let stored = |id: &str| stored_version(&redis, id);
    for id in agents {
        let version = stored(id);
        on_b.agent_update(id, |r| u64_of(&r["version"]) == version)
            .await;
    }
    let snapshot = snapshot_of(&b).await;
    for id in agents {
        assert_eq!(
            u64_of(&record(&snapshot, id)["version"]),
            stored(id),
            "{id} on node B: {snapshot}"
        );
    }
    let (dropped, metrics) = pushes_dropped(&b).await;
    assert!(
        dropped > 0,
        "the burst overflowed node B's queue: {metrics}"
    );
}

#[tokio::test]
async fn a_node_killed_after_its_agents_joined_a_followed_tenant_is_swept() {
    let redis = RedisServer::start();
    let mut a = node(&redis.url(), "a").await;
    let b = node(&redis.url(), "b").await;
    // Node b follows the tenant before any agent is on node a: what it
    // knows of a's devices comes from deltas alone, not from its load.
    let (mut on_b, snapshot) = watcher(&b, "s1").await;
    assert_eq!(record(&snapshot, "a1")["presence"], "offline");
    let _a1 = agent(&a, "a1", "d1").await;
    on_b.agent_update("a1", |r| r["presence"] == "online").await;

    a.kill().await;
    let off = on_b
        .agent_update("a1", |r| r["presence"] == "offline")
        .await;
    assert_eq!(off["devices"][0]["active"], false, "{off}");
    assert_eq!(off["changed_by"], json!({"id": "system", "role": "system"}));
}

#[tokio::test]
async fn a_thawed_node_re_asserts_every_device_while_the_deltas_it_drops_leave_gaps() {
    // The convergence run behind Sentinels (seed 22, 60 s) found it: a node
    // re-asserting its devices after a catch-up waited, for each, until its
    // replica applied the change; with a delta lost meanwhile (a gap) that
    // wait could only end with the command timeout, because the catch-up
    // filling the gap runs in the same task, after the re-assertions. The
    // node's devices stayed swept, and its replica behind, for a command
    // timeout per device.
    let redis = RedisServer::start();
    // Node A takes the traffic below, faster than the default rate limit.
    let a = fault_node(
        &redis.url(),
        "a",
        TTL_MS,
        &[
            "--command-timeout-ms",
            "1000",
            "--rate-limit-per-sec",
            "100000",
        ],
    )
    .await;
    // A long command timeout makes such a wait outlast every deadline
    // below; a push queue of one makes the node drop deltas (and see gaps)
    // under the traffic below.
    let b = fault_node(
        &redis.url(),
        "b",
        TTL_MS,
        &["--command-timeout-ms", "60000", "--redis-push-queue", "1"],
    )
    .await;
    let on_b = ["a1", "a2", "a3", "a4"];
    let mut held = Vec::new();
    for id in on_b {
        held.push(agent(&b, id, &format!("{id}-desk")).await);
    }
    let mut busy = Vec::new();
    for id in ["a5", "a6", "a7", "a8"] {
        busy.push(agent(&a, id, &format!("{id}-desk")).await);
    }
    let (mut on_a, _) = watcher(&a, "s1").await;

    // Frozen past its lease: node A sweeps B's devices.
    b.signal("STOP");
    for id in on_b {
        on_a.agent_update(id, |r| r["presence"] == "offline").await;
    }
    // Agents on node A change as fast as they are answered, from before
    // the thaw until B is back.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let traffic: Vec<_> = busy
        .into_iter()
        .map(|mut c| {
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut round = 0usize;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    c.burst(flips(&format!("b{round}-"), 20)).await;
                    let last = format!("b{round}-19");
                    c.recv_where("the burst's last reply", |v| {
                        v["type"] == "reply" && v["id"] == last.as_str()
                    })
                    .await;
                    round += 1;
                }
            })
        })
        .collect();
    b.signal("CONT");

    // Every device of B's is active again: none waits for another's
    // change to reach B's replica.
    for id in on_b {
        on_a.agent_update(id, |r| r["presence"] == "online").await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in traffic {
        t.await.expect("the traffic ran to the end");
    }
    // And B shows every agent as the store holds it.
    let snapshot = snapshot_until(&b, "node B caught up", |s| {
        on_b.iter()
            .chain(&["a5", "a6", "a7", "a8"])
            .all(|id| u64_of(&record(s, id)["version"]) == stored_version(&redis, id))
    })
    .await;
    for id in on_b {
        assert_eq!(record(&snapshot, id)["presence"], "online", "{snapshot}");
    }
    let (dropped, metrics) = pushes_dropped(&b).await;
    assert!(
        dropped > 0,
        "the traffic overflowed node B's queue: {metrics}"
    );
    drop(held);
}

/// Commits a directory change putting channel `kind:id` as `json` with
/// the real directory script and a no-op in place of its PUBLISH: the
/// store holds it and no node hears of it, until a catch-up.
fn lose_a_channel_put(redis: &RedisServer, kind_id: &str, json: &str) {
    let version = redis.cli(&["get", "hub:{acme}:dir:version"]);
    let script = include_str!("../src/backplane/lua/directory.lua");
    let mut args = vec!["eval", script, "13"];
    args.extend([
        "hub:{acme}:seq",
        "hub:{acme}:records",
        "hub:{acme}:versions",
        "hub:{acme}:history",
        "hub:{acme}:deltas",
        "hub:{acme}:dir:users",
        "hub:{acme}:dir:channels",
        "hub:{acme}:dir:version",
        "hub:{acme}:op:lost",
        "hub:{acme}:fence:lost",
        "hub:{acme}:seq",
        "hub:{acme}:dir:removed",
        "hub:{acme}:events",
    ]);
    // EXISTS in place of PUBLISH, no deadline, no idempotency key, no
    // event stream; one channel put.
    args.extend([version.trim(), "{}", "EXISTS", "0", "60000", "0", "100"]);
    args.extend(["0", "0", "1", "0", "0", "0", "", "0", "0", kind_id, json]);
    let committed = redis.cli(&args);
    assert!(committed.starts_with('1'), "{committed}");
}

/// A directory request that writes nothing — "nothing to change", or a
/// refusal — is planned on the node's replica, which may lag the store by
/// a lost delta: it must not answer for the store until the replica has
/// caught up (PROTOCOL.md §7.1, "checked against the directory … as the
/// store has them").
#[tokio::test]
async fn a_directory_request_that_writes_nothing_is_answered_from_the_store_not_a_lagging_replica()
{
    let redis = RedisServer::start();
    // A command timeout past the second the request waits for the lost
    // delta before it asks for a catch-up itself, and short of the seq
    // watch's finding it (two periods of a third of the node TTL: 4 s).
    let b = fault_node(&redis.url(), "b", 6000, &["--command-timeout-ms", "2500"]).await;
    let mut admin = staff_at(&b.ws_url(), "acme", "ad1", "admin").await;
    let vip = json!({"kind": "queue", "id": "vip", "name": "VIP line"});
    admin
        .ok(json!({"type": "put_channel", "channel": vip}))
        .await;
    let stored =
        |redis: &RedisServer, key: &str| redis.cli(&["hget", "hub:{acme}:dir:channels", key]);
    let as_put = stored(&redis, "queue:vip");
    assert!(as_put.contains("VIP line"), "{as_put}");

    // Renamed in the store only: node B still shows "VIP line".
    lose_a_channel_put(
        &redis,
        "queue:vip",
        &as_put.replace("VIP line", "Lost line"),
    );
    // Put back as B shows it: a change against the store, not a no-op.
    let put = admin
        .ok(json!({"type": "put_channel", "channel": vip}))
        .await;
    assert_eq!(put["changed"], true, "{put}");
    assert_eq!(put["channel"]["name"], "VIP line", "{put}");
    let now = stored(&redis, "queue:vip");
    assert!(now.contains("VIP line"), "the store holds the put: {now}");

    // Renamed in the store only, then renamed again here: planned on the
    // old name, the change conflicts, and is made once the node caught up.
    let now = stored(&redis, "queue:vip");
    lose_a_channel_put(&redis, "queue:vip", &now.replace("VIP line", "Lost again"));
    let third = json!({"kind": "queue", "id": "vip", "name": "Third name"});
    let put = admin
        .ok(json!({"type": "put_channel", "channel": third}))
        .await;
    assert_eq!(put["changed"], true, "{put}");
    let now = stored(&redis, "queue:vip");
    assert!(now.contains("Third name"), "the store holds the put: {now}");

    // Created in the store only: deleting it is no `not_found`.
    let ghost = as_put.replace(r#""vip""#, r#""ghost""#);
    assert_ne!(ghost, as_put);
    lose_a_channel_put(&redis, "queue:ghost", &ghost);
    let deleted = admin
        .ok(json!({"type": "delete_channel", "channel": {"kind": "queue", "id": "ghost"}}))
        .await;
    assert_eq!(deleted["changed"], true, "{deleted}");
    assert_eq!(
        stored(&redis, "queue:ghost").trim(),
        "",
        "deleted from the store"
    );
}

/// A store behind the node's replica lost changes the node applied (a
/// failover to a replica that missed them): what the replica shows may be
/// one of them, so a directory request that would write nothing is
/// `unavailable` until the node has caught up, repairing the store — then
/// answered. (The fall-back is made here by setting the seq back.)
#[tokio::test]
async fn a_directory_request_that_writes_nothing_waits_out_a_store_that_fell_back() {
    let redis = RedisServer::start();
    let b = node(&redis.url(), "b").await;
    let mut admin = staff_at(&b.ws_url(), "acme", "ad1", "admin").await;
    let vip = json!({"kind": "queue", "id": "vip", "name": "VIP line"});
    admin
        .ok(json!({"type": "put_channel", "channel": vip}))
        .await;
    let before = stored_number(&redis, "hub:{acme}:seq");
    redis.cli(&["set", "hub:{acme}:seq", &(before - 1).to_string()]);

    let put = json!({"type": "put_channel", "channel": vip});
    admin.refused(put.clone(), "unavailable").await;
    // The node repairs the store: its seq jumps past the replica's.
    let redis = &redis;
    eventually(
        "the store's seq raised",
        Duration::from_secs(10),
        Duration::from_millis(20),
        || async move { stored_number(redis, "hub:{acme}:seq") > before },
    )
    .await;
    let again = admin.ok(put).await;
    assert_eq!(again["changed"], false, "{again}");
}

/// A `bad_request` depends on the request alone: it is answered as such
/// while the store cannot be asked, not `unavailable` (which would invite
/// a retry that can never succeed).
#[tokio::test]
async fn a_bad_directory_request_is_bad_request_while_the_store_is_frozen() {
    let redis = RedisServer::start();
    let b = node(&redis.url(), "b").await;
    let mut admin = staff_at(&b.ws_url(), "acme", "ad1", "admin").await;
    redis.signal("STOP");
    admin
        .refused(
            json!({"type": "put_channel", "channel": {"kind": "queue", "id": "a/b", "name": "Q"}}),
            "bad_request",
        )
        .await;
    redis.signal("CONT");
}

/// A fork found (a delta under the node's seq that it never saw: the store
/// handed the seq out again after losing writes) leaves the replica holding
/// another history until its catch-up: a directory request that would write
/// nothing is `unavailable` meanwhile, even where the seqs agree.
#[tokio::test]
async fn a_directory_request_that_writes_nothing_is_unavailable_until_a_fork_is_caught_up() {
    let redis = RedisServer::start();
    let b = node(&redis.url(), "b").await;
    let mut admin = staff_at(&b.ws_url(), "acme", "ad1", "admin").await;
    let vip = json!({"kind": "queue", "id": "vip", "name": "VIP line"});
    let put = json!({"type": "put_channel", "channel": vip});
    admin.ok(put.clone()).await;
    // A sign-in moves the seq past the directory's version; its reply
    // comes once node B applied it.
    let _a1 = agent(&b, "a1", "d1").await;
    let seq = stored_number(&redis, "hub:{acme}:seq");
    let dir_version = stored_number(&redis, "hub:{acme}:dir:version");
    assert!(seq > dir_version, "seq {seq}, directory {dir_version}");

    // Every catch-up fails while the store's tombstones are not a hash.
    redis.cli(&["set", "hub:{acme}:dir:removed", "not a hash"]);
    let forged =
        format!(r#"D{seq} {{"expected_version":{dir_version},"event":"channel_updated"}}"#);
    redis.cli(&["publish", "hub:{acme}:deltas", &forged]);
    let b_ref = &b;
    eventually(
        "the fork counted",
        Duration::from_secs(10),
        Duration::from_millis(20),
        || async move { counter(b_ref, "presence_hub_deltas_forked_total").await.0 >= 1 },
    )
    .await;
    refused_as_a_fork(&mut admin, put.clone()).await;

    // The catch-up can run again: then the answer is the directory's.
    let (resyncs, _) = counter(&b, "presence_hub_resyncs_total").await;
    redis.cli(&["del", "hub:{acme}:dir:removed"]);
    resynced_past(&b, resyncs).await;
    let again = admin.ok(put).await;
    assert_eq!(again["changed"], false, "{again}");
}

/// A change planned on a replica as new as the store that still conflicts
/// shows the replica holds another history (here: the store's directory
/// version put back by hand, as a fall-back would): `unavailable` and a
/// catch-up, not 32 plans on the same replica.
#[tokio::test]
async fn a_directory_change_conflicting_on_a_replica_as_new_as_the_store_is_a_fork() {
    let redis = RedisServer::start();
    let b = node(&redis.url(), "b").await;
    let mut admin = staff_at(&b.ws_url(), "acme", "ad1", "admin").await;
    admin
        .ok(json!({"type": "put_channel", "channel": {"kind": "queue", "id": "vip", "name": "VIP line"}}))
        .await;
    let (resyncs, _) = counter(&b, "presence_hub_resyncs_total").await;
    redis.cli(&["set", "hub:{acme}:dir:version", "0"]);
    let rename = json!({"type": "put_channel", "channel": {"kind": "queue", "id": "vip", "name": "Renamed"}});
    refused_as_a_fork(&mut admin, rename.clone()).await;
    // The catch-up it asked takes the store's directory: then the change
    // is made.
    resynced_past(&b, resyncs).await;
    let renamed = admin.ok(rename).await;
    assert_eq!(renamed["changed"], true, "{renamed}");
}
