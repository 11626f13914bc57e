//! A node started before its Redis (README "Operations": starting order):
//! it binds its port, answers `/healthz` 200 and `/readyz` 503, refuses
//! everything else with 503, and keeps trying with backoff — logged — until
//! Redis answers, then serves. Covered for an outage far longer than every
//! TTL, for SIGTERM while it waits, and for flags no retry would fix,
//! which end the start at once.

mod common;

use common::process::{eventually, http_get, Proc};
use common::redis::{free_port, RedisServer};
use common::*;
use serde_json::json;
use std::time::{Duration, Instant};

const ENV: [(&str, &str); 1] = [("PRESENCE_HUB_JWT_SECRET", SECRET)];

#[tokio::test(flavor = "multi_thread")]
async fn a_node_started_before_redis_waits_not_ready_then_serves() {
    let mut redis = RedisServer::start();
    let url = redis.url();
    redis.kill();
    let listen = format!("127.0.0.1:{}", free_port());
    let started = Instant::now();
    let mut node = Proc::start_unready(
        &listen,
        &[
            "--redis-url",
            &url,
            "--node-ttl-ms",
            "500",
            "--redis-timeout-ms",
            "300",
            "--redis-connect-backoff-max-ms",
            "400",
        ],
        &ENV,
    )
    .await;
    let first = node
        .log_line(&["Redis does not answer yet", "attempt=1"])
        .await;
    assert!(first.contains("retry_in_ms"), "{first}");
    let (code, body) = http_get(&listen, "/readyz").await;
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("waiting for Redis"), "{body}");
    assert_eq!(node.status("/healthz").await, 200);
    // Nothing else is served yet: no page, no session.
    assert_eq!(node.status("/").await, 503);
    assert_eq!(node.status("/v1/ws").await, 503);
    // The long case: Redis stays away for many node TTLs and reconnection
    // graces; the node keeps trying (each attempt logged) and stays alive.
    let mut last = String::new();
    while started.elapsed() < Duration::from_secs(4) {
        last = node.log_line(&["Redis does not answer yet"]).await;
    }
    assert!(
        node.child.try_wait().expect("wait").is_none(),
        "exited: {last}"
    );
    // The backoff is bounded by the flag: attempts keep coming.
    let attempts: u64 = last
        .split("attempt=")
        .nth(1)
        .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .expect("attempt number");
    assert!(attempts >= 8, "{last}");

    redis.restart();
    eventually(
        "the node is ready once Redis answers",
        DEADLINE,
        Duration::from_millis(20),
        || async { http_get(&listen, "/readyz").await.0 == 200 },
    )
    .await;
    node.log_line(&["Redis answered"]).await;
    let ws = format!("ws://{listen}/v1/ws");
    let mut agent = Client::connect(&ws).await;
    agent
        .send(
            json!({"type": "hello", "token": token("acme", "a1"), "role": "agent",
                     "device": {"id": "phone", "kind": "softphone"}}),
        )
        .await;
    agent.recv_type("state").await;
    agent
        .ok(json!({"type": "set_status", "status": "paused", "reason": "training"}))
        .await;
    let stored = redis.cli(&["hget", "hub:{acme}:records", "a1"]);
    assert!(stored.contains("training"), "{stored}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_while_waiting_for_redis_stops_the_node() {
    let listen = format!("127.0.0.1:{}", free_port());
    let url = format!("redis://127.0.0.1:{}/", free_port());
    let mut node = Proc::start_unready(
        &listen,
        &["--redis-url", &url, "--redis-connect-backoff-max-ms", "200"],
        &ENV,
    )
    .await;
    node.log_line(&["Redis does not answer yet"]).await;
    node.signal("TERM");
    let status = tokio::time::timeout(DEADLINE, node.child.wait())
        .await
        .expect("the node stops on SIGTERM while waiting")
        .expect("wait");
    assert!(status.success(), "{status}");
}

/// Flags no retry would fix: the node says what is wrong and exits 1 at
/// once (an orchestrator shows the message), or clap refuses them (2).
#[tokio::test(flavor = "multi_thread")]
async fn redis_flags_no_retry_would_fix_end_the_start_at_once() {
    let cases: [(&[&str], i32, &str); 5] = [
        (
            &[
                "--redis-url",
                "rediss://127.0.0.1:1",
                "--redis-tls-ca",
                "/nonexistent/ca.pem",
            ],
            1,
            "/nonexistent/ca.pem",
        ),
        (
            &[
                "--redis-url",
                "redis://127.0.0.1:1",
                "--redis-tls-ca",
                "/dev/null",
            ],
            1,
            "TLS is off",
        ),
        (
            &[
                "--redis-url",
                "rediss://127.0.0.1:1",
                "--redis-tls-ca",
                "/dev/null",
            ],
            1,
            "no PEM certificate",
        ),
        (
            &[
                "--redis-url",
                "redis://127.0.0.1:1",
                "--redis-tls-cert",
                "/dev/null",
            ],
            2,
            "--redis-tls-key",
        ),
        (
            &[
                "--redis-cluster",
                "--redis-url",
                "redis://127.0.0.1:1,rediss://127.0.0.1:2",
            ],
            1,
            "mixes",
        ),
    ];
    for (flags, code, says) in cases {
        let out = tokio::time::timeout(
            DEADLINE,
            tokio::process::Command::new(common::process::BIN)
                .args(["--listen", "127.0.0.1:0"])
                .args(flags)
                .env("PRESENCE_HUB_JWT_SECRET", SECRET)
                .output(),
        )
        .await
        .expect("exits at once")
        .expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{flags:?}: {stderr}");
        assert!(stderr.contains(says), "{flags:?}: {stderr}");
    }
}
