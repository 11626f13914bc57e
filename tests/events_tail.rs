//! `presence-hub events tail` (protocol/EVENTS.md) against a real node: it
//! prints the stream one JSON event per line, keeps its place while the
//! node it reads from is killed and another takes its port (it retries the
//! failed reads), and refuses at once on a token that is not an admin's.

mod common;

use common::process::{start_cluster_node, BIN};
use common::redis::{free_port, RedisServer};
use common::{token, DEADLINE};
use serde_json::{json, Value};
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};

/// The next line the command prints, as JSON.
async fn next_event(lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>) -> Value {
    let line = tokio::time::timeout(DEADLINE * 2, lines.next_line())
        .await
        .expect("a line in time")
        .expect("read")
        .expect("a line, not the end");
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

#[tokio::test]
async fn tail_prints_the_stream_and_keeps_its_place_across_a_node_restart() {
    let redis = RedisServer::start();
    let listen = format!("127.0.0.1:{}", free_port());
    let mut first = start_cluster_node(&redis.url(), "tail-a", &listen).await;
    let mut a1 = common::agent_hello(&first.ws_url(), "acme", "a1")
        .await
        .expect("a1 signs in");
    a1.ok(json!({"type": "set_status", "status": "paused", "reason": "break"}))
        .await;

    let mut tail = tokio::process::Command::new(BIN)
        .args([
            "events",
            "tail",
            "--url",
            &format!("http://{listen}"),
            "--max-events",
            "3",
        ])
        .env("PRESENCE_HUB_TOKEN", token("acme", "ad1"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start tail");
    let mut lines = BufReader::new(tail.stdout.take().expect("stdout")).lines();
    let signed_in = next_event(&mut lines).await;
    let paused = next_event(&mut lines).await;
    assert_eq!(
        (&signed_in["agent_id"], &signed_in["current"]["presence"]),
        (&json!("a1"), &json!("online"))
    );
    assert_eq!(paused["current"]["pause_reason"], "break");
    assert_eq!(
        common::u64_of(&paused["version"]),
        common::u64_of(&signed_in["version"]) + 1
    );

    // The node goes; another takes its port; tail goes on from its place.
    first.kill().await;
    drop(a1);
    let second = start_cluster_node(&redis.url(), "tail-b", &listen).await;
    let mut a2 = common::agent_hello(&second.ws_url(), "acme", "a2")
        .await
        .expect("a2 signs in");
    a2.ok(json!({"type": "set_status", "status": "paused", "reason": "lunch"}))
        .await;
    let third = next_event(&mut lines).await;
    assert_eq!(
        common::u64_of(&third["version"]),
        common::u64_of(&paused["version"]) + 1,
        "the next event, none twice, none skipped: {third}"
    );
    let status = tokio::time::timeout(DEADLINE, tail.wait())
        .await
        .expect("tail stops after --max-events")
        .expect("wait");
    assert!(status.success(), "{status:?}");

    // A supervisor's token: refused at once, no retrying.
    let refused = tokio::time::timeout(
        DEADLINE,
        tokio::process::Command::new(BIN)
            .args(["events", "tail", "--url", &format!("http://{listen}")])
            .env("PRESENCE_HUB_TOKEN", token("acme", "s1"))
            .output(),
    )
    .await
    .expect("refused in time")
    .expect("run");
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("403") && stderr.contains("forbidden"),
        "{stderr}"
    );
}
