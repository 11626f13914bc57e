//! `presence_hub_tenants_attached` (issue 27): the tenants a node holds a
//! replica of and follows, on real nodes (the binary) over a real
//! `redis-server` the test starts. A node attaches a tenant when a session
//! of it opens there, and only then; it lets the tenant go once its last
//! session ended and the tenant stayed unused for the reconnect grace plus
//! the node TTL (300 ms + 1 s here).

mod common;

use common::process::{eventually_value, fault_node, http_get, Proc};
use common::redis::RedisServer;
use common::*;
use serde_json::json;
use std::time::Duration;

const TTL_MS: u64 = 1000;

/// Two tenants (`acme`, `cc`) and more.
const DIRECTORY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/common/directory.json");

async fn node(redis: &RedisServer, id: &str) -> Proc {
    fault_node(&redis.url(), id, TTL_MS, &["--directory", DIRECTORY]).await
}

/// The node's `presence_hub_tenants_attached`, as its /metrics says now
/// (`None` while the series is absent).
async fn attached(node: &Proc) -> Option<f64> {
    let (_, metrics) = http_get(&node.addr, "/metrics").await;
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("presence_hub_tenants_attached "))
        .and_then(|v| v.trim().parse().ok())
}

/// Waits (with a deadline) until the node's gauge reads `want`.
async fn attached_becomes(node: &Proc, want: f64, what: &str) {
    let deadline = Duration::from_millis(300 + TTL_MS) + Duration::from_secs(10);
    eventually_value(what, deadline, || async {
        (attached(node).await == Some(want)).then_some(())
    })
    .await;
}

async fn agent(node: &Proc, tenant: &str, user: &str) -> Client {
    let mut c = Client::connect(&node.ws_url()).await;
    c.send(
        json!({"type": "hello", "token": token(tenant, user), "role": "agent",
        "device": {"id": format!("{user}-desk"), "kind": "softphone"}}),
    )
    .await;
    c.recv_type("state").await;
    c
}

#[tokio::test]
async fn a_node_counts_the_tenants_it_follows_and_lets_them_go_when_idle() {
    let redis = RedisServer::start();
    let a = node(&redis, "a").await;
    let b = node(&redis, "b").await;
    assert_eq!(attached(&a).await, Some(0.0), "nothing attached at start");

    // A session of a tenant attaches it on its node, and on that one only.
    let acme = agent(&a, "acme", "a1").await;
    assert_eq!(attached(&a).await, Some(1.0), "acme attached on node a");
    let cc = agent(&a, "cc", "c1").await;
    assert_eq!(attached(&a).await, Some(2.0), "acme and cc on node a");
    // A second session of a tenant already attached counts nothing more.
    let acme2 = agent(&a, "acme", "a2").await;
    assert_eq!(attached(&a).await, Some(2.0), "acme counted once");
    assert_eq!(
        attached(&b).await,
        Some(0.0),
        "node b serves no session: it follows no tenant"
    );

    // The last session of acme ends: after the grace and the node TTL node
    // a lets acme go, and keeps cc.
    acme.close().await;
    acme2.close().await;
    attached_becomes(&a, 1.0, "node a lets acme go, keeps cc").await;
    cc.close().await;
    attached_becomes(&a, 0.0, "node a lets cc go").await;

    // Back on first use: attached and counted again.
    let _again = agent(&a, "acme", "a1").await;
    assert_eq!(attached(&a).await, Some(1.0), "acme attached again");
    assert_eq!(attached(&b).await, Some(0.0));
}
