//! Redis over TLS in every mode (README "Redis over TLS"), against real
//! `redis-server`s that speak only TLS and require a client certificate,
//! with a CA and certificates each test makes (`common::tls`): one server
//! with an ACL user, a Sentinel set through a failover, and a Redis
//! Cluster. Each time two real hub processes share the store, and a change
//! made on one reaches a supervisor on the other — the backplane works end
//! to end, not only the handshake. And the server's certificate is really
//! checked: a node that does not trust its CA, or has no client
//! certificate, or speaks plain TCP, never becomes ready.

mod common;

use common::process::{eventually, http_get, Proc};
use common::redis::{free_port, RedisCluster, RedisServer};
use common::sentinel::{self, SentinelSet};
use common::tls::TlsFiles;
use common::*;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// The hub's ACL user, `hub` / `hub-pass`, with exactly what the README
/// says it needs: `hub:*` keys and channels.
const HUB_USER: [&str; 8] = [
    "acl",
    "setuser",
    "hub",
    "on",
    ">hub-pass",
    "~hub:*",
    "&hub:*",
    "+@all",
];

/// A node on the Redis that `redis` names (its flags), with short timings.
async fn node(redis: &[String], id: &str) -> Proc {
    let mut args: Vec<&str> = vec![
        "--listen",
        "127.0.0.1:0",
        "--node-id",
        id,
        "--node-ttl-ms",
        "1000",
        "--reconnect-grace-ms",
        "300",
        "--redis-timeout-ms",
        "500",
    ];
    args.extend(redis.iter().map(String::as_str));
    Proc::start(&args, &[("PRESENCE_HUB_JWT_SECRET", SECRET)]).await
}

async fn agent(p: &Proc, user: &str) -> Client {
    let mut c = Client::connect(&p.ws_url()).await;
    c.send(
        json!({"type": "hello", "token": token("acme", user), "role": "agent",
                  "device": {"id": "phone", "kind": "softphone"}}),
    )
    .await;
    c.recv_type("state").await;
    c
}

async fn supervisor(p: &Proc) -> Client {
    let mut c = staff_at(&p.ws_url(), "acme", "s1", "supervisor").await;
    c.subscribe(json!({"all": true})).await;
    c
}

/// `user` pauses on node `a` with `reason`; the supervisor on node `b`
/// sees exactly that.
async fn change_crosses(a: &Proc, sup: &mut Client, user: &str, reason: &str) {
    let mut c = agent(a, user).await;
    c.ok(json!({"type": "set_status", "status": "paused", "reason": reason}))
        .await;
    sup.agent_update(user, |r| {
        r["status"] == "paused" && r["pause_reason"].as_str() == Some(reason)
    })
    .await;
    c.close().await;
}

async fn ready(p: &Proc, what: &str) {
    p.wait_readyz(what, 200, Duration::from_secs(20)).await;
}

fn args(list: &[&str], tls: &TlsFiles) -> Vec<String> {
    list.iter()
        .map(|s| s.to_string())
        .chain(tls.hub_args())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn one_redis_over_tls_with_a_client_certificate_and_an_acl_user() {
    let tls = Arc::new(TlsFiles::generate());
    let redis = RedisServer::start_tls(tls.clone());
    // The hub's own ACL user; the default user is switched off, so only
    // that user's credentials open the store.
    assert_eq!(redis.cli(&HUB_USER), "OK");
    // `--redis-tls` with a redis:// URL, the user from the flags: both ways
    // of saying it are exercised across the two nodes.
    let url = redis.url();
    let plain_url = url.replacen("rediss://", "redis://", 1);
    let a = node(
        &args(
            &[
                "--redis-url",
                &url,
                "--redis-username",
                "hub",
                "--redis-password",
                "hub-pass",
            ],
            &tls,
        ),
        "a",
    )
    .await;
    let b = node(
        &args(
            &[
                "--redis-url",
                &plain_url.replacen("redis://", "redis://hub:hub-pass@", 1),
                "--redis-tls",
            ],
            &tls,
        ),
        "b",
    )
    .await;
    ready(&a, "node a ready over TLS").await;
    ready(&b, "node b ready over TLS").await;
    // Both nodes are connected as `hub` (the first by the flags, the other
    // by its URL).
    let clients = redis.cli(&["client", "list"]);
    assert!(
        clients.lines().filter(|l| l.contains("user=hub")).count() >= 2,
        "{clients}"
    );
    let mut sup = supervisor(&b).await;
    change_crosses(&a, &mut sup, "a1", "training").await;
    // The hub connected as `hub`, not as the default user: with the
    // default user off, the store still works.
    assert_eq!(redis.cli(&["acl", "setuser", "default", "off"]), "OK");
    change_crosses(&a, &mut sup, "a2", "lunch").await;
}

/// Nodes that would talk to the TLS server without what it takes: each
/// stays alive, not ready, saying why on `/readyz` and in its log.
#[tokio::test(flavor = "multi_thread")]
async fn a_node_that_cannot_verify_or_be_verified_never_becomes_ready() {
    let tls = Arc::new(TlsFiles::generate());
    let redis = RedisServer::start_tls(tls.clone());
    let url = redis.url();
    let ca = tls.ca.display().to_string();
    let other_ca = tls.other_ca.display().to_string();
    let cert = tls.client_cert.display().to_string();
    let key = tls.client_key.display().to_string();
    let cases: Vec<(&str, Vec<&str>, &str)> = vec![
        (
            "a CA that did not sign the server's certificate",
            vec![
                "--redis-url",
                &url,
                "--redis-tls-ca",
                &other_ca,
                "--redis-tls-cert",
                &cert,
                "--redis-tls-key",
                &key,
            ],
            "certificate",
        ),
        (
            "the system's roots (no --redis-tls-ca)",
            vec![
                "--redis-url",
                &url,
                "--redis-tls-cert",
                &cert,
                "--redis-tls-key",
                &key,
            ],
            "certificate",
        ),
        (
            "no client certificate",
            vec!["--redis-url", &url, "--redis-tls-ca", &ca],
            "",
        ),
    ];
    for (what, flags, reason) in cases {
        let listen = format!("127.0.0.1:{}", free_port());
        let mut flags = flags.clone();
        flags.extend([
            "--redis-timeout-ms",
            "300",
            "--redis-connect-backoff-max-ms",
            "200",
        ]);
        let mut p =
            Proc::start_unready(&listen, &flags, &[("PRESENCE_HUB_JWT_SECRET", SECRET)]).await;
        // Two failed attempts, each logged: it retries, it does not exit.
        p.log_line(&["Redis does not answer yet", "attempt=2"])
            .await;
        let (code, body) = http_get(&listen, "/readyz").await;
        assert_eq!(code, 503, "{what}: {body}");
        assert!(body.contains("waiting for Redis"), "{what}: {body}");
        assert!(body.contains(reason), "{what}: {body}");
        assert_eq!(p.status("/healthz").await, 200, "{what}");
        assert!(
            p.child.try_wait().expect("wait").is_none(),
            "{what}: exited"
        );
    }
    // And plain TCP to a TLS-only port.
    let listen = format!("127.0.0.1:{}", free_port());
    let plain = url.replacen("rediss://", "redis://", 1);
    let mut p = Proc::start_unready(
        &listen,
        &[
            "--redis-url",
            &plain,
            "--redis-timeout-ms",
            "300",
            "--redis-connect-backoff-max-ms",
            "200",
        ],
        &[("PRESENCE_HUB_JWT_SECRET", SECRET)],
    )
    .await;
    p.log_line(&["Redis does not answer yet", "attempt=2"])
        .await;
    assert_eq!(p.status("/readyz").await, 503);
}

#[tokio::test(flavor = "multi_thread")]
async fn sentinel_over_tls_follows_a_failover() {
    let tls = Arc::new(TlsFiles::generate());
    let mut set = SentinelSet::start_tls(tls.clone());
    // An ACL user on every data server (ACLs are not replicated); the
    // sentinels keep the default user for their own checks.
    for d in std::iter::once(&set.master).chain(&set.replicas) {
        assert_eq!(d.cli(&HUB_USER), "OK");
    }
    let flags = args(
        &[
            "--redis-sentinel",
            &set.addrs(),
            "--redis-sentinel-master",
            sentinel::MASTER,
            "--redis-tls",
            "--redis-username",
            "hub",
            "--redis-password",
            "hub-pass",
        ],
        &tls,
    );
    let a = node(&flags, "a").await;
    let b = node(&flags, "b").await;
    ready(&a, "node a ready on the TLS master").await;
    ready(&b, "node b ready on the TLS master").await;
    assert!(set.master.cli(&["client", "list"]).contains("user=hub"));
    let mut sup = supervisor(&b).await;
    change_crosses(&a, &mut sup, "a1", "training").await;

    let old = set.master.port;
    set.master.kill();
    eventually(
        "the sentinels promote a replica",
        Duration::from_secs(20),
        Duration::from_millis(50),
        || async { set.master_port().is_some_and(|p| p != old) },
    )
    .await;
    ready(&a, "node a ready on the new master").await;
    ready(&b, "node b ready on the new master").await;
    // A change made after the failover crosses over the new master; the
    // supervisor's connection may have been resynced meanwhile, so a fresh
    // one watches.
    let mut sup = supervisor(&b).await;
    eventually(
        "a change is acknowledged on the new master",
        Duration::from_secs(20),
        Duration::from_millis(100),
        || async {
            let mut c = agent(&a, "a3").await;
            let reply = c
                .request(json!({"type": "set_status", "status": "paused", "reason": "lunch"}))
                .await;
            reply["ok"] == true
        },
    )
    .await;
    sup.agent_update("a3", |r: &Value| r["pause_reason"] == "lunch")
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_cluster_over_tls() {
    let tls = Arc::new(TlsFiles::generate());
    let cluster = RedisCluster::start_tls(tls.clone());
    let seeds = cluster.seeds();
    assert!(seeds.starts_with("rediss://"), "{seeds}");
    let flags = args(&["--redis-cluster", "--redis-url", &seeds], &tls);
    let a = node(&flags, "a").await;
    let b = node(&flags, "b").await;
    ready(&a, "node a ready on the TLS cluster").await;
    ready(&b, "node b ready on the TLS cluster").await;
    let mut sup = supervisor(&b).await;
    change_crosses(&a, &mut sup, "a1", "training").await;
    change_crosses(&b, &mut sup, "a2", "lunch").await;
}
