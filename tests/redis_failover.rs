//! Cluster mode across Redis outages and failovers, with the real binary as
//! separate processes and real `redis-server`s the test starts and kills
//! with SIGKILL (issue 10): an outage of the node TTL or longer (1 s, 2.5 s
//! with Redis back with its AOF and back empty, 10 s and 60 s) flaps no
//! agent and loses no status, while a node that really died during the
//! outage is still swept once Redis is back; a store that comes back without
//! an acknowledged change gets it written back by the nodes; a Sentinel
//! failover and a Redis Cluster shard failover in the middle of a stream of
//! changes lose no acknowledged change; an admin's credentials and webhook
//! endpoints are acknowledged only once a replica holds them, like every
//! change.

mod common;

use common::process::{eventually, fault_node_on, Proc};
use common::redis::{RedisCluster, RedisServer};
use common::sentinel::{self, SentinelSet};
use common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const TTL_MS: u64 = 1000;

/// A node with fast timing flags on the Redis that `redis` names.
async fn node_on(redis: &[&str], id: &str) -> Proc {
    // The failover streams send changes back to back, as fast as the
    // replica acknowledges them: on a quiet machine that is well over the
    // default 50 messages/s, and a `rate_limited` reply is not the refusal
    // these tests wait for.
    fault_node_on(redis, id, TTL_MS, 500, &["--rate-limit-per-sec", "100000"]).await
}

async fn node(redis_url: &str, id: &str) -> Proc {
    node_on(&["--redis-url", redis_url], id).await
}

/// The flags of a node on the master at `url` whose changes are
/// acknowledged once its one replica holds them, waiting at most `wait_ms`
/// for it; `extra` after them.
fn durable_on<'a>(url: &'a str, wait_ms: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut flags = vec![
        "--redis-url",
        url,
        "--redis-wait-replicas",
        "1",
        "--redis-wait-timeout-ms",
        wait_ms,
    ];
    flags.extend_from_slice(extra);
    flags
}

/// Node "a" on `master`, its changes acknowledged once the one replica
/// holds them ([`durable_on`]).
async fn durable_node(master: &RedisServer, wait_ms: &str, extra: &[&str]) -> Proc {
    let url = master.url();
    node_on(&durable_on(&url, wait_ms, extra), "a").await
}

/// Changes acknowledged only once a replica holds them.
const DURABLE: [&str; 4] = [
    "--redis-wait-replicas",
    "1",
    "--redis-wait-timeout-ms",
    "200",
];

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
    p.wait_readyz(what, want, Duration::from_secs(15)).await;
}

/// The agent's history, read from the store: every entry online, no
/// device going down (no flap).
async fn history_without_flap(sup: &mut Client, id: &str) -> Vec<Value> {
    let history = sup
        .ok(json!({"type": "history", "agent_id": id, "limit": 1000}))
        .await;
    let changes = history["changes"].as_array().expect("changes").clone();
    assert!(
        changes
            .iter()
            .all(|h| h["presence"] == "online" && h["event"] != "device_down"),
        "{id}'s history shows a flap: {changes:?}"
    );
    changes
}

/// Three nodes; a1 paused on node a, a supervisor on node b, a2 on node c.
/// Redis is killed; node c is killed during the outage; Redis comes back
/// after more than a node TTL (with its AOF, or empty). a2 must be swept;
/// a1 must never flap and keep its pause.
async fn outage_longer_than_the_ttl(aof: bool, outage: Duration) {
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
    // The clients heartbeat through it as real ones do (every 5 s, well
    // inside the 30 s presence TTL), so only Redis is away.
    let until = Instant::now() + outage;
    while Instant::now() < until {
        let beat = until
            .saturating_duration_since(Instant::now())
            .min(Duration::from_secs(5));
        tokio::time::sleep(beat).await;
        a1.ok(json!({"type": "heartbeat"})).await;
        sup.ok(json!({"type": "heartbeat"})).await;
    }
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
    let changes = history_without_flap(&mut sup, "a1").await;
    if aof {
        // With the AOF the pause itself is in the history too.
        assert!(changes.iter().any(|h| h["version"] == paused["version"]));
    }
}

#[tokio::test]
async fn an_outage_longer_than_the_ttl_flaps_no_one_redis_back_with_its_aof() {
    outage_longer_than_the_ttl(true, Duration::from_millis(TTL_MS * 5 / 2)).await;
}

#[tokio::test]
async fn an_outage_longer_than_the_ttl_flaps_no_one_redis_back_empty() {
    outage_longer_than_the_ttl(false, Duration::from_millis(TTL_MS * 5 / 2)).await;
}

/// The outage lengths operators see: a blip of one TTL, and ten TTLs (a
/// typical Sentinel failover).
#[tokio::test]
async fn outages_of_one_and_ten_seconds_flap_no_one() {
    outage_longer_than_the_ttl(true, Duration::from_secs(1)).await;
    outage_longer_than_the_ttl(true, Duration::from_secs(10)).await;
}

/// The long case: a minute without Redis, sixty node TTLs. The clients'
/// own reconnection to Redis backs off meanwhile; it must still come back
/// promptly, renew every live lease before anyone sweeps, and sweep the node
/// that died.
#[tokio::test]
async fn a_minute_long_outage_flaps_no_one() {
    outage_longer_than_the_ttl(true, Duration::from_secs(60)).await;
}

/// Two nodes over a Redis without persistence but with a snapshot just
/// taken (`SAVE`): a restart brings the store back to that moment.
struct Snapshotted {
    redis: RedisServer,
    a: Proc,
    b: Proc,
    /// a1 online on node a.
    a1: Client,
    /// A supervisor of everything on node b.
    sup: Client,
}

async fn snapshotted() -> Snapshotted {
    let redis = RedisServer::start_with(false);
    let a = node(&redis.url(), "a").await;
    let b = node(&redis.url(), "b").await;
    let a1 = agent(&a, "a1", "d1").await;
    let (sup, _) = supervisor(&b).await;
    assert!(redis.cli(&["SAVE"]).contains("OK"));
    Snapshotted {
        redis,
        a,
        b,
        a1,
        sup,
    }
}

/// Redis comes back from a snapshot older than the last acknowledged change
/// (what a failover to a replica that missed the last writes does, without
/// needing one): the nodes write the lost change back with a new version,
/// and the changes that follow reach every node.
#[tokio::test]
async fn a_store_that_lost_acknowledged_changes_gets_them_back_from_the_nodes() {
    let Snapshotted {
        mut redis,
        a,
        b,
        mut a1,
        mut sup,
    } = snapshotted().await;
    // Acknowledged after the snapshot: the store will lose it.
    let lunch = a1
        .ok(json!({"type": "set_status", "status": "paused", "reason": "lunch"}))
        .await["agent"]
        .clone();
    sup.agent_update("a1", |r| r["version"] == lunch["version"])
        .await;

    redis.restart(); // kill -9, then back from the snapshot
    let stored = || -> Value {
        serde_json::from_str(&redis.cli(&["HGET", "hub:{acme}:records", "a1"])).unwrap_or_default()
    };
    assert_eq!(stored()["status"], "available", "the store lost the change");
    ready(&a, "node a ready again", 200).await;
    ready(&b, "node b ready again", 200).await;
    let back = sup
        .agent_update("a1", |r| u64_of(&r["version"]) > u64_of(&lunch["version"]))
        .await;
    assert_eq!(back["pause_reason"], "lunch", "written back: {back}");
    eventually(
        "the store holds the change again",
        Duration::from_secs(10),
        Duration::from_millis(50),
        || async { stored()["pause_reason"] == "lunch" },
    )
    .await;
    // Versions handed out from now on are above every one seen before, so
    // the next change reaches the other node (it would drop a repeated one).
    let next = a1
        .ok(json!({"type": "set_status", "status": "available"}))
        .await["agent"]
        .clone();
    assert!(u64_of(&next["version"]) > u64_of(&back["version"]));
    sup.agent_update("a1", |r| {
        r["version"] == next["version"] && r["status"] == "available"
    })
    .await;
    let history = sup
        .ok(json!({"type": "history", "agent_id": "a1", "limit": 100}))
        .await;
    assert!(
        history["changes"]
            .as_array()
            .expect("changes")
            .iter()
            .any(|h| h["event"] == "restore" && h["pause_reason"] == "lunch"),
        "{history}"
    );
    // The event stream (protocol/EVENTS.md) says which versions the store
    // lost: a `gap` from the lost change's version, then the write-back
    // and the next change, each at its own version.
    let events = common::http::acme_events(&b.addr).await;
    let gap = events
        .iter()
        .position(|e| e["type"] == "gap")
        .unwrap_or_else(|| panic!("a gap event: {events:#?}"));
    assert_eq!(events[gap]["from"], lunch["version"], "{:#?}", events[gap]);
    assert!(
        !events[..gap]
            .iter()
            .any(|e| e["current"]["pause_reason"] == "lunch"),
        "the lost change is not in the stream"
    );
    let after: Vec<(u64, &str)> = events[gap..]
        .iter()
        .map(|e| (u64_of(&e["version"]), e["event"].as_str().unwrap_or("")))
        .collect();
    let from = u64_of(&events[gap]["version"]);
    assert!(
        after.contains(&(u64_of(&back["version"]), "restore")),
        "{after:?}"
    );
    assert_eq!(after.last(), Some(&(u64_of(&next["version"]), "unpause")));
    for (i, (v, _)) in after.iter().enumerate() {
        assert_eq!(
            *v,
            from + i as u64,
            "one event per version after the gap: {after:?}"
        );
    }
}

/// The store falls back behind a change that no agent record holds (a
/// settings change): nothing to write back, but the versions it hands out
/// next must still be above every one the nodes applied, or they would drop
/// them as already seen and answer `ok` to changes nobody sees.
#[tokio::test]
async fn a_store_that_fell_back_hands_out_versions_every_node_applies() {
    let Snapshotted {
        mut redis,
        a,
        b,
        mut a1,
        mut sup,
    } = snapshotted().await;
    let mut admin = staff_at(&b.ws_url(), "acme", "ad1", "admin").await;
    admin
        .ok(json!({"type": "update_settings", "settings": {"wrap_up_seconds": 7}}))
        .await;
    sup.recv_type("settings").await;

    redis.restart(); // back from the snapshot, without the settings change
    ready(&a, "node a ready again", 200).await;
    ready(&b, "node b ready again", 200).await;
    let paused = acknowledged(
        &mut a1,
        json!({"type": "set_status", "status": "paused", "reason": "meeting"}),
    )
    .await;
    sup.agent_update("a1", |r| {
        r["version"] == paused["version"] && r["status"] == "paused"
    })
    .await;
}

/// A change refused while the store fails over: `unavailable` (nothing
/// applied) or, when the answer was lost or the replicas did not confirm
/// it, `outcome_unknown` (PROTOCOL.md §3.1).
fn refused_by_the_fault(reply: &Value) {
    let code = reply["error"]["code"].as_str();
    assert!(
        matches!(code, Some("unavailable" | "outcome_unknown")),
        "{reply}"
    );
}

/// Sends `body` until it is acknowledged (`unavailable` while the nodes
/// repair the store); returns the record of the reply.
async fn acknowledged(c: &mut Client, body: Value) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reply = c.request(body.clone()).await;
        if reply["ok"] == true {
            return reply["result"]["agent"].clone();
        }
        refused_by_the_fault(&reply);
        assert!(Instant::now() < deadline, "never acknowledged: {reply}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn sentinel_node(sentinels: &str, id: &str) -> Proc {
    let mut redis = vec![
        "--redis-sentinel",
        sentinels,
        "--redis-sentinel-master",
        sentinel::MASTER,
    ];
    redis.extend(DURABLE);
    node_on(&redis, id).await
}

/// Toggles an agent between paused (a new reason each time) and available
/// until a change is not acknowledged; returns the connection (kept open,
/// so the agent stays online) and the last acknowledged record.
async fn toggle_until_refused(
    mut c: Client,
    started: tokio::sync::mpsc::Sender<()>,
) -> (Client, Value) {
    let mut last: Option<Value> = None;
    for i in 0.. {
        let paused = last.as_ref().is_some_and(|r| r["status"] == "paused");
        let body = if paused {
            json!({"type": "set_status", "status": "available"})
        } else {
            json!({"type": "set_status", "status": "paused", "reason": demo_reason(i)})
        };
        let reply = c.request(body).await;
        if reply["ok"] != true {
            refused_by_the_fault(&reply);
            break;
        }
        last = Some(reply["result"]["agent"].clone());
        if i == 10 {
            let _ = started.send(()).await;
        }
    }
    (
        c,
        last.expect("changes were acknowledged before the failover"),
    )
}

#[tokio::test]
async fn a_sentinel_failover_mid_stream_loses_no_acknowledged_change() {
    let mut set = SentinelSet::start();
    let old_master = set.master.port;
    let a = sentinel_node(&set.addrs(), "a").await;
    let b = sentinel_node(&set.addrs(), "b").await;
    let mut killed = Instant::now();
    let (mut agents, acked) = streams_until_refused([&a, &b], &["a1", "a2", "a3"], async {
        set.master.kill();
        killed = Instant::now();
    })
    .await;
    // No master reachable: the nodes say so to the load balancer.
    ready(&a, "node a not ready while no master answers", 503).await;
    eventually(
        "the sentinels promote a replica",
        Duration::from_secs(20),
        Duration::from_millis(50),
        || async { set.master_port().is_some_and(|p| p != old_master) },
    )
    .await;
    ready(&a, "node a ready on the new master", 200).await;
    ready(&b, "node b ready on the new master", 200).await;
    println!(
        "nodes ready on the new master {} ms after the kill",
        killed.elapsed().as_millis()
    );
    let new_master = set.server(set.master_port().expect("master"));
    acknowledged_survive(
        &acked,
        |id| new_master.cli(&["hget", "hub:{acme}:records", id]),
        [&a, &b],
    )
    .await;
    // The other replica follows the new master: changes are acknowledged
    // again.
    acknowledged_again(&mut agents[0]).await;
    // Both nodes listen on the new master: a1's change (made on node a)
    // reaches a supervisor on node b as a delta.
    let (mut sup, _) = supervisor(&b).await;
    acknowledged_again(&mut agents[0]).await;
    let stored: Value =
        serde_json::from_str(&new_master.cli(&["hget", "hub:{acme}:records", "a1"]))
            .expect("a1 in the store");
    sup.agent_update("a1", |r| r["version"] == stored["version"])
        .await;
    // And no agent flapped: the failover outlasted the node TTL, but no
    // node swept another.
    for id in ["a1", "a2", "a3"] {
        history_without_flap(&mut sup, id).await;
    }
}

async fn cluster_node(seeds: &str, id: &str) -> Proc {
    let mut redis = vec!["--redis-url", seeds, "--redis-cluster"];
    redis.extend(DURABLE);
    node_on(&redis, id).await
}

/// The server that is master of the shard holding the acme tenant.
fn acme_master(cluster: &RedisCluster) -> Option<usize> {
    cluster.shards.iter().position(|s| {
        s.cli(&["role"]).starts_with("master") && s.cli(&["exists", "hub:{acme}:records"]) == "1"
    })
}

/// Streams of changes on two nodes; each stream stops at its first change
/// that is not acknowledged. Returns the agents' connections and their
/// last acknowledged records.
async fn streams_until_refused(
    nodes: [&Proc; 2],
    ids: &[&str],
    during: impl std::future::Future<Output = ()>,
) -> (Vec<Client>, Vec<Value>) {
    let (started, mut streaming) = tokio::sync::mpsc::channel(ids.len());
    let mut streams = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let c = agent(nodes[i % 2], id, &format!("d{i}")).await;
        streams.push(tokio::spawn(toggle_until_refused(c, started.clone())));
    }
    drop(started);
    for _ in ids {
        tokio::time::timeout(Duration::from_secs(30), streaming.recv())
            .await
            .expect("every stream got 10 changes acknowledged")
            .expect("streams running");
    }
    during.await;
    let mut clients = Vec::new();
    let mut acked = Vec::new();
    for s in streams {
        let (c, last) = s.await.expect("stream");
        clients.push(c);
        acked.push(last);
    }
    (clients, acked)
}

/// Every last acknowledged record is in the store (or a later one), and
/// the nodes come to show what the store holds.
async fn acknowledged_survive(acked: &[Value], store: impl Fn(&str) -> String, nodes: [&Proc; 2]) {
    for last in acked {
        let id = last["id"].as_str().expect("id");
        let stored: Value = serde_json::from_str(&store(id)).expect("record in the store");
        assert!(
            u64_of(&stored["version"]) >= u64_of(&last["version"]),
            "{id}: acknowledged {last} but the store holds {stored}"
        );
        if stored["version"] == last["version"] {
            assert_eq!(stored["status"], last["status"]);
            assert_eq!(stored["pause_reason"], last["pause_reason"]);
        }
        for n in nodes {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let now: Value = serde_json::from_str(&store(id)).expect("record");
                let (_, snapshot) = supervisor(n).await;
                let seen = in_snapshot(&snapshot, id).expect(id).clone();
                if (&seen["version"], &seen["status"]) == (&now["version"], &now["status"]) {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{id}: a node shows {seen}, the store holds {now}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Retries a change until one is acknowledged (refused `unavailable`
/// meanwhile, at a client's back-off pace). An `unavailable` change may
/// still have been applied (its replicas did not confirm it in time): the
/// retry is then `invalid_state`, and the opposite change is tried.
async fn acknowledged_again(c: &mut Client) {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut action = "connect";
    loop {
        let reply = c
            .request(json!({"type": action, "channel": {"kind": "queue", "id": "billing"}}))
            .await;
        if reply["ok"] == true {
            return;
        }
        if reply["error"]["code"] == "invalid_state" {
            action = if action == "connect" {
                "disconnect"
            } else {
                "connect"
            };
            continue;
        }
        refused_by_the_fault(&reply);
        assert!(
            Instant::now() < deadline,
            "no change acknowledged after the failover: {reply}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_redis_cluster_shard_failover_loses_no_acknowledged_change() {
    let mut cluster = RedisCluster::start_with_replicas();
    let seeds = cluster.seeds();
    let a = cluster_node(&seeds, "a").await;
    let b = cluster_node(&seeds, "b").await;
    // `WAIT` goes to the acme shard's master only: with both replicas of
    // another shard gone, acme's changes are still acknowledged.
    let mut probe = agent(&a, "a1", "d0").await; // the tenant is in the store now
    let acme = acme_master(&cluster).expect("the acme shard's master");
    let other_port = cluster
        .shards
        .iter()
        .enumerate()
        .find(|(i, s)| *i != acme && s.cli(&["role"]).starts_with("master"))
        .map(|(_, s)| s.port.to_string())
        .expect("another master");
    let its_replicas: Vec<usize> = (0..cluster.shards.len())
        .filter(|&i| {
            let role = cluster.shards[i].cli(&["role"]);
            role.starts_with("slave") && role.lines().nth(2) == Some(other_port.as_str())
        })
        .collect();
    assert_eq!(its_replicas.len(), 2, "two replicas per master");
    for i in its_replicas {
        cluster.shards[i].kill();
    }
    probe
        .ok(json!({"type": "set_status", "status": "paused", "reason": "meeting"}))
        .await;
    probe
        .ok(json!({"type": "set_status", "status": "available"}))
        .await;
    probe.close().await;
    let mut killed_at = None;
    let (mut agents, acked) = streams_until_refused([&a, &b], &["a1", "a2", "a3"], async {
        let master = acme_master(&cluster).expect("the acme shard's master");
        cluster.shards[master].kill();
        killed_at = Some(master);
    })
    .await;
    let killed = killed_at.expect("killed");
    eventually(
        "a replica promoted",
        Duration::from_secs(20),
        Duration::from_millis(50),
        || async { acme_master(&cluster).is_some_and(|m| m != killed) },
    )
    .await;
    ready(&a, "node a ready after the shard failover", 200).await;
    ready(&b, "node b ready after the shard failover", 200).await;
    let master = acme_master(&cluster).expect("master");
    acknowledged_survive(
        &acked,
        |id| cluster.shards[master].cli(&["hget", "hub:{acme}:records", id]),
        [&a, &b],
    )
    .await;
    acknowledged_again(&mut agents[0]).await;
}

/// An admin's write to the API (`POST`, `PUT` or `DELETE`): status and body.
async fn admin_write(p: &Proc, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let admin = token("acme", "ad1");
    let body = body.map(|b| b.to_string());
    common::http::request(&p.addr, method, path, Some(&admin), "", body.as_deref()).await
}

/// Whether a replica's copy of the hash `key` has `needle` in field `field`.
fn a_replica_holds(set: &SentinelSet, key: &str, field: &str, needle: &str) -> bool {
    set.replicas
        .iter()
        .any(|r| r.cli(&["hget", key, field]).contains(needle))
}

#[tokio::test]
async fn credentials_and_webhook_endpoints_wait_for_a_replica_like_every_change() {
    let set = SentinelSet::start();
    let a = sentinel_node(&set.addrs(), "a").await;
    let credentials = "hub:{acme}:credentials";
    let webhooks = "hub:{acme}:webhooks";
    let hook = |n: u32| json!({"url": format!("http://127.0.0.1:9/hook{n}")});

    // Acknowledged: a replica holds it when the answer comes.
    let (status, body) = admin_write(
        &a,
        "POST",
        "/api/v1/credentials",
        Some(json!({"id": "acd-1", "scopes": ["read"]})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert!(a_replica_holds(&set, credentials, "acd-1", "acd-1"));
    let (status, body) = admin_write(&a, "PUT", "/api/v1/webhooks/w1", Some(hook(1))).await;
    assert_eq!(status, 201, "{body}");
    assert!(a_replica_holds(&set, webhooks, "endpoints", "hook1"));

    // No replica answers: applied on the master, never acknowledged.
    for r in &set.replicas {
        r.signal("STOP");
    }
    let unknown = |(status, body): (u16, Value), what: &str| {
        assert_eq!(
            (status, body["error"]["code"].clone()),
            (504, json!("outcome_unknown")),
            "{what} with no replica answering: {body}"
        );
    };
    unknown(
        admin_write(
            &a,
            "POST",
            "/api/v1/credentials",
            Some(json!({"id": "acd-2", "scopes": ["read"]})),
        )
        .await,
        "a new credential",
    );
    unknown(
        admin_write(&a, "DELETE", "/api/v1/credentials/acd-1", None).await,
        "a revocation",
    );
    unknown(
        admin_write(&a, "PUT", "/api/v1/webhooks/w2", Some(hook(2))).await,
        "a new webhook endpoint",
    );
    for r in &set.replicas {
        r.signal("CONT");
    }

    // The master has what it applied: repeating the requests says so, and
    // once the replicas are back changes are acknowledged again.
    let (status, body) = admin_write(
        &a,
        "POST",
        "/api/v1/credentials",
        Some(json!({"id": "acd-2", "scopes": ["read"]})),
    )
    .await;
    assert_eq!(status, 409, "acd-2 was created on the master: {body}");
    let (status, body) = admin_write(&a, "DELETE", "/api/v1/credentials/acd-1", None).await;
    assert_eq!(status, 404, "acd-1 was revoked on the master: {body}");
    let deadline = Instant::now() + Duration::from_secs(15);
    let repeated = loop {
        let (status, body) = admin_write(&a, "PUT", "/api/v1/webhooks/w2", Some(hook(2))).await;
        if status != 504 || Instant::now() > deadline {
            break (status, body);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // A new endpoint's cursor is written first (docs/WEBHOOKS.md), and that
    // was the write no replica acknowledged: the endpoint itself was never
    // written, so the repeat creates it and shows its secret.
    assert_eq!(repeated.0, 201, "w2 created by the repeat: {}", repeated.1);
    assert!(repeated.1["secret"].is_string(), "{}", repeated.1);
    assert!(a_replica_holds(&set, webhooks, "endpoints", "hook2"));
    // It has its delivery state (the cursor written before the endpoint),
    // on a replica too: with the endpoint written first, the repeat would
    // have found it, answered 200 and left it without one.
    assert!(
        set.replicas
            .iter()
            .any(|r| !r.cli(&["hget", webhooks, "state:w2"]).is_empty()),
        "w2 has no delivery state on any replica"
    );
}

/// A second server made a replica of `master` at runtime, in sync once
/// this returns.
fn replica_of(master: &RedisServer) -> RedisServer {
    // A replica syncs at once (the default waits 5 s for more replicas).
    master.cli(&["config", "set", "repl-diskless-sync-delay", "0"]);
    let replica = RedisServer::start();
    follow(&replica, master);
    replica
}

/// Makes `replica` follow `master` again and waits until it acknowledges
/// writes: after a diskless sync the master streams to a replica only from
/// its first acknowledgement on, up to a second after the sync, and `WAIT`
/// counts it only then.
fn follow(replica: &RedisServer, master: &RedisServer) {
    use std::io::{Read, Write};
    let port = master.port.to_string();
    assert_eq!(replica.cli(&["replicaof", "127.0.0.1", &port]), "OK");
    let deadline = Instant::now() + Duration::from_secs(20);
    // A write and its WAIT on one connection, until the replica confirms.
    let mut probe = std::net::TcpStream::connect(("127.0.0.1", master.port)).expect("master");
    loop {
        probe
            .write_all(b"SET replica-probe 1\r\nWAIT 1 100\r\n")
            .expect("probe sent");
        let mut answer = Vec::new();
        let mut buf = [0u8; 64];
        while answer.iter().filter(|b| **b == b'\n').count() < 2 {
            let n = probe.read(&mut buf).expect("probe answered");
            assert!(n > 0, "the master closed the probe");
            answer.extend_from_slice(&buf[..n]);
        }
        if answer.ends_with(b":1\r\n") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the replica never confirmed a write"
        );
    }
}

/// The pauses for `reason` in `id`'s history.
async fn pauses(sup: &mut Client, id: &str, reason: &str) -> usize {
    let h = sup
        .ok(json!({"type": "history", "agent_id": id, "limit": 1000}))
        .await;
    h["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter(|c| c["event"] == "pause" && c["pause_reason"] == reason)
        .count()
}

fn outcome_unknown(reply: &Value, what: &str) {
    assert_eq!(reply["error"]["code"], "outcome_unknown", "{what}: {reply}");
}

/// PROTOCOL.md §9.1: a repeat under the same `idempotency_key` answers `ok`
/// only once the replicas hold the change it repeats — not merely because
/// the master has it.
#[tokio::test]
async fn a_repeat_is_acknowledged_only_once_the_replicas_hold_what_it_repeats() {
    let master = RedisServer::start();
    let replica = replica_of(&master);
    // A WAIT longer than DURABLE's: on a busy machine a replica that is up
    // may take a few hundred ms to confirm, and here only the replica that
    // left may fail to.
    let a = durable_node(&master, "1000", &[]).await;
    let mut a1 = agent(&a, "a1", "d1").await;
    let (mut sup, _) = supervisor(&a).await;
    // Acknowledged while the replica follows.
    a1.ok(json!({"type": "set_status", "status": "paused", "reason": "break"}))
        .await;
    a1.ok(json!({"type": "set_status", "status": "available"}))
        .await;

    // The replica leaves: the master applies the change, the hub does not
    // acknowledge it.
    assert_eq!(replica.cli(&["replicaof", "no", "one"]), "OK");
    let pause = json!({"type": "set_status", "status": "paused", "reason": "lunch",
                       "idempotency_key": "a1-lunch"});
    outcome_unknown(&a1.request(pause.clone()).await, "no replica holds it");
    assert!(
        master
            .cli(&["hget", "hub:{acme}:records", "a1"])
            .contains("\"paused\""),
        "the master applied it"
    );
    // Its repeat finds it applied, and still no replica holding it.
    outcome_unknown(
        &a1.request(pause.clone()).await,
        "a repeat while no replica holds the change",
    );

    // The replica is back and has it: now the repeat is acknowledged, and
    // the change was applied once.
    follow(&replica, &master);
    let r = a1.ok(pause).await;
    assert_eq!(r["agent"]["status"], "paused", "{r}");
    assert_eq!(pauses(&mut sup, "a1", "lunch").await, 1);
}

/// README, "No acknowledged change lost": "nothing to change" is an `ok`
/// too. Asked again after an `outcome_unknown`, the agent is already as
/// asked on the master, but a failover could still undo it: the answer
/// waits for the replicas like the change's own.
#[tokio::test]
async fn nothing_to_change_is_acknowledged_only_once_the_replicas_hold_it() {
    let master = RedisServer::start();
    let replica = replica_of(&master);
    let a = durable_node(&master, "1000", &[]).await;
    let mut admin = common::staff_at(&a.ws_url(), "acme", "ad1", "admin").await;
    let (mut sup, _) = supervisor(&a).await;

    assert_eq!(replica.cli(&["replicaof", "no", "one"]), "OK");
    let deny = json!({"type": "set_unassigned_access", "agent_id": "a1", "allowed": false});
    outcome_unknown(&admin.request(deny.clone()).await, "no replica holds it");
    sup.agent_update("a1", |r| r["unassigned_access"] == false)
        .await;
    // The same again: nothing to change on the master, an `ok` until now.
    outcome_unknown(
        &admin.request(deny.clone()).await,
        "nothing to change, while no replica holds what the master has",
    );

    // The replica is back and holds it: now "nothing to change" is `ok`,
    // and the second request changed nothing.
    follow(&replica, &master);
    let r = admin.ok(deny).await;
    assert_eq!(r["agent"]["unassigned_access"], false, "{r}");
    let history = admin
        .ok(json!({"type": "history", "agent_id": "a1", "limit": 1000}))
        .await;
    let changes = history["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter(|c| c["event"] == "set_unassigned_access")
        .count();
    assert_eq!(changes, 1, "applied once: {history}");
}

/// A change whose answer is lost while its `WAIT` is pending is settled on
/// the connection that replaced the lost one, and found applied: it is
/// acknowledged only once the replicas hold it, through a `WAIT` behind the
/// settle on that connection (backplane/replicated.rs).
#[tokio::test]
async fn a_change_settled_after_its_connection_was_lost_waits_for_replicas_that_hold_it() {
    let master = RedisServer::start();
    let replica = replica_of(&master);
    // A long node TTL: no lease renewal writes on the new connection
    // before the settle does. A long WAIT: the test kills it mid-wait.
    let url = master.url();
    let flags = durable_on(&url, "1500", &[]);
    let a = fault_node_on(&flags, "a", 60_000, 500, &[]).await;
    let mut a1 = agent(&a, "a1", "d1").await;
    // Acknowledged while the replica follows.
    a1.ok(json!({"type": "set_status", "status": "paused", "reason": "break"}))
        .await;
    a1.ok(json!({"type": "set_status", "status": "available"}))
        .await;

    // The replica freezes: it stays connected, acknowledging what it had.
    replica.signal("STOP");
    let change = tokio::spawn(async move {
        let reply = a1
            .request(json!({"type": "set_status", "status": "paused", "reason": "lunch"}))
            .await;
        (a1, reply)
    });
    // The change applied, its WAIT blocked: cut that connection.
    let deadline = Instant::now() + Duration::from_secs(10);
    let waiting = loop {
        let clients = master.cli(&["client", "list"]);
        if let Some(id) = clients
            .lines()
            // Blocked in WAIT now (`cmd` alone is a client's last command).
            .find(|l| l.contains("cmd=wait") && l.contains(" flags=b "))
            .and_then(|l| l.split_whitespace().find_map(|f| f.strip_prefix("id=")))
        {
            break id.to_string();
        }
        assert!(Instant::now() < deadline, "no WAIT blocked: {clients}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert_eq!(master.cli(&["client", "kill", "id", &waiting]), "1");
    let (_a1, reply) = change.await.expect("the change's task");
    outcome_unknown(&reply, "the settled change, no replica holding it");
    let message = reply["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("0 of 1 replicas"),
        "settled as applied, then WAIT on the new connection: {reply}"
    );
    assert!(
        master
            .cli(&["hget", "hub:{acme}:records", "a1"])
            .contains("\"paused\""),
        "the master applied it"
    );
    replica.signal("CONT");
}

/// A `WAIT` holds its connection until the replicas answer, so while they
/// do not, a node's changes wait for them side by side on
/// `--redis-wait-connections` connections: each is answered
/// `outcome_unknown` by its own `WAIT`, none held behind another's until
/// its answer is lost or its deadline passed.
#[tokio::test]
async fn changes_wait_for_replicas_side_by_side_not_one_behind_another() {
    let master = RedisServer::start();
    let replica = replica_of(&master);
    // Each WAIT outlasts a change's deadline (the Redis timeout, 500 ms).
    let a = durable_node(&master, "1000", &["--redis-wait-connections", "4"]).await;
    let mut agents = Vec::new();
    for i in 1..=4 {
        agents.push(agent(&a, &format!("a{i}"), &format!("d{i}")).await);
    }
    replica.signal("STOP");
    let replies =
        futures_util::future::join_all(agents.iter_mut().map(|c| {
            c.request(json!({"type": "set_status", "status": "paused", "reason": "lunch"}))
        }))
        .await;
    replica.signal("CONT");
    for reply in &replies {
        outcome_unknown(reply, "four changes while the replica is frozen");
        // Each one's own WAIT answered: none timed out behind another's.
        let message = reply["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("0 of 1 replicas"), "{replies:?}");
    }
}

/// A session reads nothing while its own request runs; a change that waits
/// for replicas longer than the presence TTL must not make its device
/// lapse, nor its connection close for silence, while the heartbeats the
/// client sent meanwhile wait unread (PROTOCOL.md §2.4).
#[tokio::test]
async fn a_change_waiting_for_replicas_longer_than_the_ttl_is_no_silence() {
    let master = RedisServer::start();
    let replica = replica_of(&master);
    let a = durable_node(
        &master,
        "2500",
        &[
            "--presence-ttl-ms",
            "1000",
            "--heartbeat-interval-ms",
            "500",
        ],
    )
    .await;
    let mut a1 = agent(&a, "a1", "d1").await;
    replica.signal("STOP");
    // The change, then heartbeats while it waits, as a client does.
    a1.send(json!({"type": "set_status", "id": "pause", "status": "paused", "reason": "lunch"}))
        .await;
    for _ in 0..8 {
        a1.send(json!({"type": "heartbeat"})).await;
        tokio::time::sleep(Duration::from_millis(250)).await; // the client's own pace
    }
    let reply = a1
        .recv_where("the change's reply", |v| {
            v["type"] == "reply" && v["id"] == "pause"
        })
        .await;
    replica.signal("CONT");
    outcome_unknown(&reply, "the change while the replica is frozen");
    // Still connected and online: answered, and never offline in the history.
    let alive = a1.ok(json!({"type": "heartbeat"})).await;
    assert!(alive.is_object(), "{alive}");
    let (mut sup, _) = supervisor(&a).await;
    let h = sup
        .ok(json!({"type": "history", "agent_id": "a1", "limit": 1000}))
        .await;
    let offline = h["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter(|c| c["presence"] == "offline" && c["event"] != "sign_in")
        .count();
    assert_eq!(offline, 0, "a1 lapsed while its change waited: {h}");
}
