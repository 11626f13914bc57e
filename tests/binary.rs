//! The real `presence-hub` binary as a separate process: what a newcomer
//! and an operator see (banner, token minting, health, refusals, SIGTERM).

mod common;

use common::process::{http_get, Proc, BIN};
use common::*;
use serde_json::json;
use std::time::Duration;
use tokio::process::Command;

#[tokio::test]
async fn the_default_node_prints_how_to_start_and_serves_health_and_the_wallboard() {
    let node = Proc::start(
        &["--listen", "127.0.0.1:0"],
        &[("PRESENCE_HUB_NO_DEMO", "false")],
    )
    .await;
    let banner = node.banner.join("\n");
    assert!(banner.contains("in-memory backplane"), "{banner}");
    let link = node
        .banner
        .iter()
        .find(|l| l.contains("/#role=supervisor&token="))
        .expect("a supervisor link");
    let secret = node.generated_secret();
    assert!(link.contains(&node.addr));

    assert_eq!(http_get(&node.addr, "/healthz").await.0, 200);
    assert_eq!(http_get(&node.addr, "/readyz").await.0, 200);
    let (code, page) = http_get(&node.addr, "/").await;
    assert_eq!(code, 200);
    assert!(page.contains("presence-hub wallboard"));

    // The supervisor link's token works.
    let token = link.split("token=").nth(1).expect("token").trim();
    let mut sup = Client::connect(&format!("ws://{}/v1/ws", node.addr)).await;
    sup.send(json!({"type": "hello", "token": token, "role": "supervisor"}))
        .await;
    assert_eq!(sup.recv_type("welcome").await["user"]["id"], "s1");

    // The banner's mint command works as written, from where the node was
    // started (the binary's path unless `presence-hub` is on the PATH).
    let mint = node
        .banner
        .iter()
        .find_map(|l| l.split("Mint tokens: ").nth(1))
        .expect("a mint command")
        .replace("<id>", "a1");
    let out = Command::new("sh")
        .args(["-c", &mint])
        .output()
        .await
        .expect("sh");
    assert!(out.status.success(), "{mint}: {out:?}");

    // `presence-hub token` mints tokens with that secret.
    let out = Command::new(BIN)
        .args([
            "token",
            "--jwt-secret",
            &secret,
            "--tenant",
            "acme",
            "--user",
            "a1",
        ])
        .output()
        .await
        .expect("token");
    assert!(out.status.success());
    let minted = String::from_utf8(out.stdout)
        .expect("utf8")
        .trim()
        .to_string();
    let mut a1 = Client::connect(&format!("ws://{}/v1/ws", node.addr)).await;
    a1.send(json!({"type": "hello", "token": minted, "role": "agent", "device": {"id": "d1", "kind": "web"}})).await;
    assert_eq!(a1.recv_type("welcome").await["user"]["id"], "a1");
    a1.recv_type("state").await;
}

#[tokio::test]
async fn token_without_a_secret_is_a_usage_error() {
    let out = Command::new(BIN)
        .args(["token", "--tenant", "acme", "--user", "a1"])
        .env_remove("PRESENCE_HUB_JWT_SECRET")
        .output()
        .await
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--jwt-secret"));
}

#[tokio::test]
async fn flags_come_from_the_environment_too() {
    let node = Proc::start(
        &[],
        &[
            ("PRESENCE_HUB_LISTEN", "127.0.0.1:0"),
            ("PRESENCE_HUB_JWT_SECRET", SECRET),
        ],
    )
    .await;
    assert!(
        !node.banner.join("\n").contains("Dev JWT secret"),
        "a configured secret is never printed"
    );
    let mut c = Client::connect(&format!("ws://{}/v1/ws", node.addr)).await;
    c.send(json!({"type": "hello", "token": token("acme", "s1"), "role": "supervisor"}))
        .await;
    c.recv_type("welcome").await;
}

#[tokio::test]
async fn worker_threads_sets_how_many_threads_run_the_connections() {
    for (flag, env, expected) in [
        (Some("1"), None, 1),
        (Some("3"), None, 3),
        (None, Some("2"), 2),
    ] {
        let mut args = vec!["--listen", "127.0.0.1:0"];
        args.extend(flag.map(|n| ["--worker-threads", n]).into_iter().flatten());
        let mut envs = vec![("PRESENCE_HUB_JWT_SECRET", SECRET)];
        envs.extend(env.map(|n| ("PRESENCE_HUB_WORKER_THREADS", n)));
        let node = Proc::start(&args, &envs).await;
        let (status, metrics) = http_get(&node.addr, "/metrics").await;
        assert_eq!(status, 200);
        let line = format!("presence_hub_worker_threads {expected}\n");
        assert!(metrics.contains(&line), "{args:?} {envs:?}: no {line:?}");
        // And it serves.
        let mut c = Client::connect(&format!("ws://{}/v1/ws", node.addr)).await;
        c.send(json!({"type": "hello", "token": token("acme", "s1"), "role": "supervisor"}))
            .await;
        c.recv_type("welcome").await;
    }
    // Zero is refused at start, naming the flag.
    let out = Command::new(BIN)
        .args(["--worker-threads", "0"])
        .output()
        .await
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--worker-threads"));
}

#[tokio::test]
async fn a_bad_directory_is_refused_naming_the_place() {
    let path = std::env::temp_dir().join(format!("presence-hub-bad-{}.json", std::process::id()));
    std::fs::write(
        &path,
        r#"{"tenants": [{"id": "t", "name": "T", "channels": [
            {"kind": "queue", "id": "q", "name": "Q", "assigned": ["ghost"]}], "users": []}]}"#,
    )
    .expect("write");
    let out = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--directory"])
        .arg(&path)
        .output()
        .await
        .expect("run");
    let _ = std::fs::remove_file(&path);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr
            .contains(r#"tenants[0] (t).channels[0] (queue q).assigned[0]: unknown user "ghost""#),
        "{stderr}"
    );
}

#[tokio::test]
async fn sigterm_drains_clients_with_1012_and_exits() {
    let mut node = Proc::start(
        &[
            "--listen",
            "127.0.0.1:0",
            "--drain-timeout-ms",
            "3000",
            "--no-demo",
        ],
        &[("PRESENCE_HUB_JWT_SECRET", SECRET)],
    )
    .await;
    let mut a1 = Client::connect(&format!("ws://{}/v1/ws", node.addr)).await;
    a1.send(json!({"type": "hello", "token": token("acme", "a1"), "role": "agent", "device": {"id": "d1"}})).await;
    a1.recv_type("state").await;
    node.signal("TERM");
    let notice = a1.recv_type("draining").await;
    assert!(notice["reconnect_after_ms"].is_u64());
    assert_eq!(a1.closed().await.code, 1012);
    let status = tokio::time::timeout(Duration::from_secs(5), node.child.wait())
        .await
        .expect("exits in time")
        .expect("wait");
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn sighup_is_logged_and_changes_nothing() {
    let mut node = Proc::start_logged(
        &["--listen", "127.0.0.1:0", "--no-demo"],
        &[("PRESENCE_HUB_JWT_SECRET", SECRET)],
    )
    .await;
    let mut a1 = Client::connect(&format!("ws://{}/v1/ws", node.addr)).await;
    a1.send(json!({"type": "hello", "token": token("acme", "a1"), "role": "agent", "device": {"id": "d1"}})).await;
    a1.recv_type("state").await;
    node.signal("HUP");
    node.log_line(&["SIGHUP ignored"]).await;
    // Still running, the session still served, no drain.
    assert!(node.child.try_wait().expect("wait").is_none());
    a1.ok(json!({"type": "heartbeat"})).await;
    assert_eq!(node.status("/readyz").await, 200);
}

#[tokio::test]
async fn metrics_show_connections_messages_deltas_and_command_latency() {
    let node = Proc::start(
        &["--listen", "127.0.0.1:0"],
        &[("PRESENCE_HUB_JWT_SECRET", SECRET)],
    )
    .await;
    let url = format!("ws://{}/v1/ws", node.addr);
    let mut a1 = Client::connect(&url).await;
    a1.send(json!({"type": "hello", "token": token("acme", "a1"), "role": "agent", "device": {"id": "d1"}})).await;
    a1.recv_type("state").await;
    a1.ok(json!({"type": "heartbeat"})).await;
    let mut sup = Client::connect(&url).await;
    sup.send(json!({"type": "hello", "token": token("acme", "s1"), "role": "supervisor"}))
        .await;
    sup.recv_type("welcome").await;
    sup.subscribe(json!({"all": true})).await;
    sup.ok(json!({"type": "command", "action": "pause", "agent_id": "a1", "reason": "coaching"}))
        .await;
    sup.agent_update("a1", |a| a["status"] == "paused").await;
    a1.state(|a| a["status"] == "paused").await;

    let (code, text) = http_get(&node.addr, "/metrics").await;
    assert_eq!(code, 200);
    let value = |series: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
    };
    assert_eq!(value(r#"presence_hub_connections{role="agent"}"#), 1.0);
    assert_eq!(value(r#"presence_hub_connections{role="supervisor"}"#), 1.0);
    assert!(value(r#"presence_hub_messages_in_total{type="heartbeat"}"#) >= 1.0);
    assert!(value(r#"presence_hub_messages_in_total{type="command"}"#) >= 1.0);
    assert!(value(r#"presence_hub_messages_out_total{type="snapshot"}"#) >= 1.0);
    assert!(
        value("presence_hub_deltas_published_total") >= 2.0,
        "device up and pause"
    );
    assert!(value("presence_hub_deltas_delivered_total") >= 2.0);
    assert_eq!(value("presence_hub_command_seconds_count"), 1.0);
    assert!(value("presence_hub_backplane_roundtrip_seconds_count") >= 2.0);
    assert!(text.contains("presence_hub_session_panics_total"));
    assert!(text.contains("# HELP presence_hub_deltas_coalesced_total"));
}

#[tokio::test]
async fn json_logs_have_one_line_per_session_start_and_end_and_never_a_token() {
    let mut node = Proc::start_logged(
        &[
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--no-demo",
        ],
        &[("PRESENCE_HUB_JWT_SECRET", SECRET)],
    )
    .await;
    let url = format!("ws://{}/v1/ws", node.addr);
    let good = token("acme", "a1");
    let mut a1 = Client::connect(&url).await;
    a1.send(json!({"type": "hello", "token": good, "role": "agent", "device": {"id": "d1"}}))
        .await;
    a1.recv_type("state").await;
    let start = node.log_line(&["session start", "\"a1\""]).await;
    a1.close().await;
    let end = node.log_line(&["session end", "ClientClosed"]).await;
    // A refused hello is logged with its reason too.
    let forged = presence_hub::auth::mint("wrong-secret", "acme", "s1", 600).expect("mint");
    let mut bad = Client::connect(&url).await;
    bad.send(json!({"type": "hello", "token": forged, "role": "supervisor"}))
        .await;
    assert_eq!(bad.closed().await.code, 4003);
    let refused = node.log_line(&["session refused", "4003"]).await;
    for line in [&start, &end, &refused] {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            v["timestamp"].is_string() && v["level"].is_string(),
            "{line}"
        );
    }
    let mut all = vec![start, end, refused];
    all.extend(node.drain_logs());
    for line in &all {
        assert!(
            !line.contains(&good) && !line.contains(&forged),
            "a token was logged: {line}"
        );
        assert!(!line.contains(SECRET), "the secret was logged: {line}");
    }
}

#[tokio::test]
async fn a_node_under_a_tight_open_file_limit_refuses_with_503_instead_of_failing_accept() {
    // 300 open files, 256 kept for the node itself: room for 44 clients,
    // although --max-connections asks for the default 200 000.
    let mut node = Proc::start_with_open_files(
        &["--listen", "127.0.0.1:0", "--auth-timeout-ms", "60000"],
        &[],
        300,
    )
    .await;
    let line = node
        .log_line(&["max connections lowered", "max_connections"])
        .await;
    assert!(line.contains("44"), "{line}");
    let url = node.ws_url();
    let mut held = Vec::new();
    for _ in 0..44 {
        held.push(Client::connect(&url).await);
    }
    match tokio_tungstenite::connect_async(&url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503)
        }
        other => panic!("expected HTTP 503 for connection 45, got {other:?}"),
    }
    // The node stays healthy at its limit.
    assert_eq!(node.status("/healthz").await, 200);
}

#[tokio::test]
async fn the_healthcheck_subcommand_probes_a_node() {
    let node = Proc::start(
        &["--listen", "127.0.0.1:0"],
        &[("PRESENCE_HUB_JWT_SECRET", SECRET)],
    )
    .await;
    // Output captured: the refused probe's message is asserted, not printed.
    let probe = |listen: String, path: &'static str| async move {
        Command::new(BIN)
            .args(["--listen", &listen, "healthcheck", "--path", path])
            .output()
            .await
            .expect("run")
    };
    assert!(probe(node.addr.clone(), "/healthz").await.status.success());
    assert!(probe(node.addr.clone(), "/readyz").await.status.success());
    let unused = format!("127.0.0.1:{}", common::redis::free_port());
    let refused = probe(unused.clone(), "/healthz").await;
    assert_eq!(refused.status.code(), Some(1), "nothing listening there");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("presence-hub healthcheck:")
            && stderr.contains(&unused)
            && stderr.contains("refused"),
        "{stderr}"
    );
}

#[tokio::test]
async fn the_default_node_runs_demo_agents_that_move() {
    let node = Proc::start(
        &["--listen", "127.0.0.1:0"],
        &[("PRESENCE_HUB_NO_DEMO", "false")],
    )
    .await;
    assert!(node
        .banner
        .iter()
        .any(|l| l.contains("Demo agents are running")));
    let link = node
        .banner
        .iter()
        .find(|l| l.contains("/#role=supervisor&token="))
        .expect("link");
    let token = link.split("token=").nth(1).expect("token").trim();
    let mut sup = Client::connect(&format!("ws://{}/v1/ws", node.addr)).await;
    sup.send(json!({"type": "hello", "token": token, "role": "supervisor"}))
        .await;
    sup.recv_type("welcome").await;
    sup.subscribe(json!({"all": true})).await;
    // The simulated agents come online and the demo's ACD routes contacts
    // to them at random (tests/demo_acd.rs follows the ACD closely), so the
    // deadline is generous (seconds apart is usual).
    let busy = sup
        .recv_where_within(
            "a demo agent on an interaction",
            Duration::from_secs(60),
            |v| v["type"] == "agent" && v["agent"]["status"] == "busy",
        )
        .await;
    assert_eq!(busy["agent"]["presence"], "online");
    assert!(busy["agent"]["interaction"]["id"].as_str().is_some());
}
