//! Queue statistics (PROTOCOL.md §10.7, docs/API.md `PUT
//! /api/v1/channels/{kind}/{id}/stats`): an ACD's push reaches the
//! supervisors whose scope covers the channel, at most once per
//! `--channel-update-ms` and the newest, is in the next snapshot, is marked
//! stale once after `--queue-stats-stale-s`; bad input and a key without
//! `queues:write` change nothing. `tests/cluster_queue_stats.rs` runs the
//! same over three nodes sharing a Redis: the push goes to node 0, the
//! supervisors sit on node 1 (`TestHub::url`) and node 2.

mod common;

use common::http::request as http;
use common::{staff_at, token, Client, TestHub};
use serde_json::{json, Value};
use std::time::Duration;

/// Creates a credential as admin ad1 through node 0; its key.
async fn key(hub: &TestHub, id: &str, scopes: Value) -> String {
    let (status, body) = http(
        hub.node(0).addr,
        "POST",
        "/api/v1/credentials",
        Some(&token("acme", "ad1")),
        "",
        Some(&json!({"id": id, "scopes": scopes}).to_string()),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["key"].as_str().expect("the key").to_string()
}

/// Pushes statistics through node 0; status and answer.
async fn push(hub: &TestHub, key: &str, path: &str, body: &str) -> (u16, Value) {
    http(hub.node(0).addr, "PUT", path, Some(key), "", Some(body)).await
}

async fn push_ok(hub: &TestHub, key: &str, queue: &str, body: Value) -> Value {
    let (status, answer) = push(
        hub,
        key,
        &format!("/api/v1/channels/queue/{queue}/stats"),
        &body.to_string(),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    answer
}

fn is_stats(v: &Value, queue: &str) -> bool {
    v["type"] == "queue_stats" && v["channel"]["id"] == queue
}

/// What the connection has received (and kept aside) so far.
async fn drain(c: &mut Client) -> Vec<Value> {
    let mut all = Vec::new();
    while let Ok(Some(v)) = c.try_recv(Duration::ZERO).await {
        all.push(v);
    }
    all
}

#[tokio::test]
async fn a_push_answers_reaches_supervisors_in_scope_and_is_in_the_next_snapshot() {
    let hub = TestHub::start_with(|c| c.channel_update_ms = 50).await;
    let key = key(&hub, "acd-q", json!(["queues:write"])).await;
    let (mut s1, snapshot) = hub.watcher("s1").await;
    assert_eq!(snapshot["queue_stats"], json!([]), "none pushed yet");
    let body = json!({"waiting": 3, "longest_wait_s": 42, "offered": 120, "answered": 110,
        "abandoned": 10, "service_level": 0.82, "service_level_s": 20});
    let answer = push_ok(&hub, &key, "sales", body.clone()).await;
    assert_eq!(answer["channel"], json!({"kind": "queue", "id": "sales"}));
    let updated_ms = answer["stats"]["updated_ms"].as_u64().expect("updated_ms");
    let mut expected = body.clone();
    expected["updated_ms"] = json!(updated_ms);
    assert_eq!(answer["stats"], expected);

    let m = s1.recv_where("sales stats", |v| is_stats(v, "sales")).await;
    assert_eq!(
        m,
        json!({"type": "queue_stats", "channel": {"kind": "queue", "id": "sales"},
               "stats": body, "updated_ms": updated_ms, "stale": false})
    );
    common::assert_schema(&common::schemas().server, &m);

    // A supervisor arriving now (on another node in cluster mode) has them
    // in its snapshot.
    let mut s3 = staff_at(&hub.node(2).url(), "acme", "s1", "supervisor").await;
    let snap = s3.subscribe(json!({"all": true})).await;
    assert_eq!(
        snap["queue_stats"],
        json!([{"channel": {"kind": "queue", "id": "sales"}, "stats": body,
                "updated_ms": updated_ms, "stale": false}])
    );
    common::assert_schema(&common::schemas().server, &snap);
}

#[tokio::test]
async fn an_out_of_scope_supervisor_never_gets_them() {
    let hub = TestHub::start_with(|c| c.channel_update_ms = 50).await;
    let key = key(&hub, "acd-q", json!(["queues:write"])).await;
    let (mut s1, _) = hub.watcher("s1").await;
    // s2 supervises billing only.
    let mut s2 = hub.staff("s2", "supervisor").await;
    s2.subscribe(json!({"all": true})).await;
    push_ok(
        &hub,
        &key,
        "sales",
        json!({"waiting": 7, "longest_wait_s": 70}),
    )
    .await;
    s1.recv_where("sales stats", |v| is_stats(v, "sales")).await;
    // The tick that sent sales to s1 is behind us: a billing push goes out
    // on a later one, so anything s2 got of sales came before it.
    push_ok(
        &hub,
        &key,
        "billing",
        json!({"waiting": 1, "longest_wait_s": 5}),
    )
    .await;
    s2.recv_where("billing stats", |v| is_stats(v, "billing"))
        .await;
    let got = drain(&mut s2).await;
    assert!(
        !got.iter().any(|v| is_stats(v, "sales")),
        "s2 got sales: {got:?}"
    );
    // Nor in a snapshot.
    let snap = s2.subscribe(json!({"all": true})).await;
    let queues: Vec<&Value> = snap["queue_stats"]
        .as_array()
        .expect("queue_stats")
        .iter()
        .map(|e| &e["channel"]["id"])
        .collect();
    assert_eq!(queues, vec![&json!("billing")]);
}

#[tokio::test]
async fn many_pushes_give_at_most_one_message_per_interval_the_newest() {
    let interval = Duration::from_millis(400);
    let hub = TestHub::start_with(|c| c.channel_update_ms = 400).await;
    let key = key(&hub, "acd-q", json!(["queues:write"])).await;
    let (mut s1, _) = hub.watcher("s1").await;
    let started = tokio::time::Instant::now();
    for waiting in 0..=30 {
        push_ok(
            &hub,
            &key,
            "sales",
            json!({"waiting": waiting, "longest_wait_s": waiting}),
        )
        .await;
    }
    let last = s1
        .recv_where("the newest", |v| {
            is_stats(v, "sales") && v["stats"]["waiting"] == 30
        })
        .await;
    assert_eq!(last["stale"], false);
    let elapsed = started.elapsed();
    let got: Vec<Value> = drain(&mut s1)
        .await
        .into_iter()
        .filter(|v| is_stats(v, "sales"))
        .collect();
    // Ticks in the pushes' time, plus the one that sent the newest.
    let ticks = (elapsed.as_millis() / interval.as_millis()) as usize + 1;
    assert!(
        got.len() < ticks,
        "{} messages before the newest in {elapsed:?}: {got:?}",
        got.len()
    );
    // And nothing after the newest: it was sent once.
    let after = s1.try_recv(interval * 2).await.expect("open");
    assert!(
        after.as_ref().is_none_or(|v| !is_stats(v, "sales")),
        "{after:?}"
    );
}

#[tokio::test]
async fn statistics_not_pushed_again_go_stale_once() {
    let hub = TestHub::start_with(|c| {
        c.channel_update_ms = 50;
        c.queue_stats_stale_s = 1;
    })
    .await;
    let key = key(&hub, "acd-q", json!(["queues:write"])).await;
    let (mut s1, _) = hub.watcher("s1").await;
    let answer = push_ok(
        &hub,
        &key,
        "sales",
        json!({"waiting": 2, "longest_wait_s": 9}),
    )
    .await;
    let fresh = s1
        .recv_where("fresh", |v| is_stats(v, "sales") && v["stale"] == false)
        .await;
    let stale = s1
        .recv_where("stale", |v| is_stats(v, "sales") && v["stale"] == true)
        .await;
    assert_eq!(stale["stats"], fresh["stats"]);
    assert_eq!(stale["updated_ms"], answer["stats"]["updated_ms"]);
    common::assert_schema(&common::schemas().server, &stale);
    // Once: the next ticks say nothing more.
    let more = s1.try_recv(Duration::from_millis(500)).await.expect("open");
    assert!(
        more.as_ref().is_none_or(|v| !is_stats(v, "sales")),
        "{more:?}"
    );
    // The snapshot says stale too; a push makes them fresh again.
    let snap = s1.subscribe(json!({"all": true})).await;
    assert_eq!(snap["queue_stats"][0]["stale"], true);
    push_ok(
        &hub,
        &key,
        "sales",
        json!({"waiting": 3, "longest_wait_s": 1}),
    )
    .await;
    s1.recv_where("fresh again", |v| {
        is_stats(v, "sales") && v["stale"] == false && v["stats"]["waiting"] == 3
    })
    .await;
}

#[tokio::test]
async fn bad_input_and_a_key_without_the_scope_change_nothing() {
    let hub = TestHub::start_with(|c| c.channel_update_ms = 50).await;
    let key = key(&hub, "acd-q", json!(["queues:write"])).await;
    let reader = common_key(&hub).await;
    let path = "/api/v1/channels/queue/sales/stats";
    // A key with every other scope: 403, and nothing is shown.
    let (status, answer) = push(
        &hub,
        &reader,
        path,
        r#"{"waiting": 1, "longest_wait_s": 1}"#,
    )
    .await;
    assert_eq!(status, 403, "{answer}");
    assert_eq!(answer["error"]["code"], "forbidden");
    let (_s0, snap) = hub.watcher("s1").await;
    assert_eq!(
        snap["queue_stats"],
        json!([]),
        "a refused push changed nothing"
    );

    let first = push_ok(
        &hub,
        &key,
        "sales",
        json!({"waiting": 4, "longest_wait_s": 40}),
    )
    .await;
    for (body, field) in [
        (r#"{"longest_wait_s": 1}"#, "waiting"),
        (r#"{"waiting": -1, "longest_wait_s": 1}"#, "waiting"),
        (
            r#"{"waiting": 1, "longest_wait_s": "long"}"#,
            "longest_wait_s",
        ),
        (
            r#"{"waiting": 1, "longest_wait_s": 1, "service_level": 2, "service_level_s": 20}"#,
            "service_level",
        ),
        (
            r#"{"waiting": 1, "longest_wait_s": 1, "abandoned": 1.5}"#,
            "abandoned",
        ),
        (
            r#"{"waiting": 1, "longest_wait_s": 1, "colour": "red"}"#,
            "colour",
        ),
        (
            r#"{"waiting": 99999999999, "longest_wait_s": 1}"#,
            "waiting",
        ),
    ] {
        let (status, answer) = push(&hub, &key, path, body).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["error"]["code"], "bad_request", "{answer}");
        let message = answer["error"]["message"].as_str().expect("message");
        assert!(message.contains(&format!("`{field}`")), "{body}: {message}");
    }
    let (status, answer) = push(&hub, &key, path, "not json").await;
    assert_eq!(status, 400, "{answer}");
    for missing in [
        "/api/v1/channels/queue/nowhere/stats",
        "/api/v1/channels/galaxy/sales/stats",
    ] {
        let (status, answer) = push(
            &hub,
            &key,
            missing,
            r#"{"waiting": 1, "longest_wait_s": 1}"#,
        )
        .await;
        assert_eq!(status, 404, "{missing}: {answer}");
        assert_eq!(answer["error"]["code"], "not_found");
    }
    let (status, answer) = push(
        &hub,
        &reader,
        path,
        r#"{"waiting": 1, "longest_wait_s": 1}"#,
    )
    .await;
    assert_eq!(status, 403, "{answer}");

    // Nothing changed: a new subscriber has the first push.
    let (_s, snap) = hub.watcher("s1").await;
    assert_eq!(snap["queue_stats"][0]["stats"]["waiting"], 4, "{snap}");
    assert_eq!(
        snap["queue_stats"][0]["updated_ms"],
        first["stats"]["updated_ms"]
    );
}

/// A key with every scope but `queues:write`.
async fn common_key(hub: &TestHub) -> String {
    key(
        hub,
        "acd-read",
        json!(["read", "interactions:write", "status:write"]),
    )
    .await
}
