//! Changes whose answer from Redis is lost (issue 21, PROTOCOL.md §3.1):
//! `unavailable` means never applied, `outcome_unknown` means applied before
//! the reply or never, and a retry under the same `idempotency_key` is
//! applied at most once. Real nodes as processes, a real `redis-server`
//! frozen with SIGSTOP for longer than `--redis-timeout-ms` and than the
//! node TTL.

mod common;

use common::process::{fault_node, Proc};
use common::redis::RedisServer;
use common::*;
use serde_json::{json, Value};
use std::time::Duration;

const TTL_MS: u64 = 1000;

async fn agent(p: &Proc, user: &str, device: &str) -> Client {
    let mut c = Client::connect(&p.ws_url()).await;
    c.send(json!({"type": "hello", "token": token("acme", user), "role": "agent", "device": {"id": device, "kind": "softphone"}}))
        .await;
    c.recv_type("state").await;
    c
}

async fn ready(p: &Proc, what: &str) {
    p.wait_readyz(what, 200, Duration::from_secs(20)).await;
}

/// The events of `id`'s history.
async fn events(sup: &mut Client, id: &str) -> Vec<String> {
    let h = sup
        .ok(json!({"type": "history", "agent_id": id, "limit": 1000}))
        .await;
    h["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter_map(|c| c["event"].as_str().map(str::to_string))
        .collect()
}

/// A refusal a change may get while its store does not answer.
fn lost_answer(reply: &Value) -> String {
    let code = reply["error"]["code"].as_str().unwrap_or_default();
    assert!(
        matches!(code, "unavailable" | "outcome_unknown"),
        "a change while Redis is frozen: {reply}"
    );
    code.to_string()
}

#[tokio::test]
async fn a_change_refused_while_redis_is_frozen_is_never_applied_and_its_retry_applies_once() {
    let redis = RedisServer::start_with(true);
    let a = fault_node(&redis.url(), "a", TTL_MS, &[]).await;
    let b = fault_node(&redis.url(), "b", TTL_MS, &[]).await;
    let mut a1 = agent(&a, "a1", "d1").await;
    let _a2 = agent(&b, "a2", "d2").await;
    let mut sup = staff_at(&a.ws_url(), "acme", "s1", "supervisor").await;
    sup.subscribe(json!({"all": true})).await;

    redis.signal("STOP");
    // Frozen for longer than the Redis timeout (300 ms) and than the node
    // TTL: the requests sit unanswered in Redis's socket buffer.
    let own = json!({"type": "set_status", "status": "paused", "reason": "lunch",
                     "idempotency_key": "a1-lunch-1"});
    let own_reply = a1.request(own.clone()).await;
    let own_code = lost_answer(&own_reply);
    let cmd = json!({"type": "command", "action": "pause", "agent_id": "a2",
                     "reason": "training", "idempotency_key": "s1-a2-training"});
    let cmd_code = lost_answer(&sup.request(cmd.clone()).await);
    eprintln!("answers while frozen: {own_code}, {cmd_code}");
    tokio::time::sleep(Duration::from_millis(1500)).await; // the outage itself
    redis.signal("CONT");
    ready(&a, "node a ready after the freeze").await;
    ready(&b, "node b ready after the freeze").await;

    // Redis ran both requests when it woke: both were refused there (their
    // deadline had passed), so neither is applied, now or later.
    for (id, code) in [("a1", &own_code), ("a2", &cmd_code)] {
        let stored: Value =
            serde_json::from_str(&redis.cli(&["hget", "hub:{acme}:records", id])).expect(id);
        assert_eq!(stored["status"], "available", "{id} after {code}: {stored}");
        let events = events(&mut sup, id).await;
        assert!(
            !events.iter().any(|e| e == "pause"),
            "{id}'s change answered {code} was applied: {events:?}"
        );
    }
    // What the client library does after `outcome_unknown`: send the same
    // request again with its key. Applied once, however often it is sent.
    for _ in 0..2 {
        let r = a1.ok(own.clone()).await;
        assert_eq!(r["agent"]["status"], "paused");
        let r = sup.ok(cmd.clone()).await;
        assert_eq!(r["agent"]["status"], "paused");
    }
    for id in ["a1", "a2"] {
        let events = events(&mut sup, id).await;
        let pauses = events.iter().filter(|e| *e == "pause").count();
        assert_eq!(pauses, 1, "{id}: {events:?}");
    }
}

/// The scripts' own contract, run on a real Redis with `redis-cli`: an
/// attempt that was applied settles as applied; one that was not is fenced
/// and refused when it arrives after all; a deadline in the past refuses a
/// change.
#[test]
fn settle_fences_an_attempt_that_did_not_run_and_the_deadline_refuses_a_late_one() {
    let redis = RedisServer::start();
    let commit = include_str!("../src/backplane/lua/commit.lua");
    let settle = include_str!("../src/backplane/lua/settle.lua");
    let keys = |attempt: &str| {
        [
            "hub:{t}:seq".to_string(),
            "hub:{t}:records".into(),
            "hub:{t}:versions".into(),
            "hub:{t}:history".into(),
            "hub:{t}:deltas".into(),
            "hub:{t}:ops".into(),
            format!("hub:{{t}}:fence:{attempt}"),
            "hub:{t}:seq".into(),
            "hub:{t}:events".into(),
        ]
    };
    let run_commit = |attempt: &str, expected: &str, deadline: &str| {
        let keys = keys(attempt);
        let mut args = vec!["eval", commit, "9"];
        args.extend(keys.iter().map(String::as_str));
        args.extend([
            "x",
            expected,
            r#"{"id":"x","version":"#,
            "0",
            "",
            "PUBLISH",
            attempt,
            deadline,
            "0",
            // No event stream: what is checked here is the fence.
            "",
            "0",
            "0",
        ]);
        redis.cli(&args)
    };
    let run_settle = |attempt: &str, expected: &str| {
        let fence = format!("hub:{{t}}:fence:{attempt}");
        redis.cli(&[
            "eval",
            settle,
            "3",
            "hub:{t}:ops",
            "hub:{t}:versions",
            &fence,
            "agent",
            "x",
            attempt,
            expected,
            "60000",
        ])
    };
    redis.cli(&["hset", "hub:{t}:versions", "x", "0"]);
    // Applied: settles as applied, with its seq.
    assert_eq!(run_commit("n-1", "0", "0"), "1\n1");
    assert_eq!(run_settle("n-1", "0"), "1\n1");
    // Never ran: settles as not applied, and is refused when it comes.
    assert_eq!(run_settle("n-2", "1"), "0");
    assert_eq!(run_commit("n-2", "1", "0"), "3\nfenced");
    assert_eq!(redis.cli(&["hget", "hub:{t}:versions", "x"]), "1");
    // Another change came first: this one cannot apply any more, but
    // whether it did before is unknown.
    assert_eq!(run_settle("n-3", "0"), "2");
    // A deadline in the past (on Redis's clock): refused.
    assert_eq!(run_commit("n-4", "1", "1000"), "3\nlate");
    assert_eq!(redis.cli(&["hget", "hub:{t}:versions", "x"]), "1");
}

/// PROTOCOL.md §3.3: a keyed request that the hub cannot check against its
/// key (the store unreachable) is `outcome_unknown`, since an earlier copy
/// may have made the change; the same request without a key is
/// `unavailable`: nothing was applied.
#[tokio::test]
async fn a_keyed_request_the_store_fails_is_outcome_unknown_never_unavailable() {
    let redis = RedisServer::start_with(true);
    let a = fault_node(&redis.url(), "a", TTL_MS, &[]).await;
    let mut a1 = agent(&a, "a1", "d1").await;
    let mut admin = staff_at(&a.ws_url(), "acme", "ad1", "admin").await;

    redis.signal("STOP");
    // The node learns that the store is away (a lease renewal fails), and
    // from then on refuses changes without sending them.
    a.wait_readyz(
        "node a not ready while Redis is frozen",
        503,
        Duration::from_secs(10),
    )
    .await;
    let pause = json!({"type": "set_status", "status": "paused", "reason": "lunch"});
    let keyless = a1.request(pause.clone()).await;
    let mut keyed = pause;
    keyed["idempotency_key"] = json!("a1-lunch");
    let keyed = a1.request(keyed).await;
    let settings = admin
        .request(
            json!({"type": "update_settings", "settings": {"wrap_up_seconds": 45},
                        "idempotency_key": "ad1-wrap-45"}),
        )
        .await;
    redis.signal("CONT");
    assert_eq!(keyless["error"]["code"], "unavailable", "{keyless}");
    assert_eq!(keyed["error"]["code"], "outcome_unknown", "{keyed}");
    assert_eq!(settings["error"]["code"], "outcome_unknown", "{settings}");
}
