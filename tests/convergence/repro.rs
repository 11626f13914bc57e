//! Deterministic reproductions of what the random runs find, each a fixed
//! sequence of faults with the exact assertion that fails on the code
//! that has the bug.

use crate::cluster::Store;
use crate::cluster::{self, Node};
use crate::common::{staff_at, token, Client};
use crate::model::{by_id, compare, markers, View};
use crate::{Cluster, EXCLUSIVE};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

async fn agent(node: &Node, user: &str, device: &str) -> Client {
    let mut c = Client::connect(&node.ws_url()).await;
    c.send(
        json!({"type": "hello", "token": token("acme", user), "role": "agent",
                  "device": {"id": device, "kind": "softphone"}}),
    )
    .await;
    c.recv_type("state").await;
    c
}

async fn supervisor(node: &Node) -> (Client, Value) {
    let mut s = staff_at(&node.ws_url(), "acme", "s1", "supervisor").await;
    let snap = s.subscribe(json!({"all": true})).await;
    (s, snap)
}

/// Sends `body` until it is acknowledged, retrying on `unavailable` or
/// `outcome_unknown` (the nodes are getting back to Redis); returns the
/// record. The request carries an `idempotency_key`, so once the hub
/// honours it a retry of a change that was applied after all is answered
/// `ok` rather than `invalid_state` (today the field is ignored, §1).
async fn until_ok(c: &mut Client, mut body: Value) -> Value {
    body["idempotency_key"] = json!(format!("until-ok-{body}"));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let reply = c.request(body.clone()).await;
        if reply["ok"] == true {
            return reply["result"]["agent"].clone();
        }
        let code = reply["error"]["code"].as_str().unwrap_or("");
        assert!(
            code == "unavailable" || code == "outcome_unknown",
            "{body}: {reply}"
        );
        assert!(
            Instant::now() < deadline,
            "{body} never acknowledged: {reply}"
        );
        // Client back-off (§9.1 "clients retry with a short back-off").
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Messages `c` gets until none comes for `quiet`.
async fn until_quiet(c: &mut Client, quiet: Duration) -> Vec<Value> {
    let mut out = Vec::new();
    while let Ok(Some(v)) = c.try_recv(quiet).await {
        out.push(v);
    }
    out
}

/// The agent deltas among `msgs` that arrived out of version order after
/// a snapshot of `seq`: "(what came) after (what came before)".
fn out_of_order(seq: u64, msgs: &[Value]) -> Vec<String> {
    let mut last = seq;
    let mut last_what = format!("snapshot seq {seq}");
    let mut bad = Vec::new();
    for v in msgs {
        let (id, version) = match v["type"].as_str() {
            Some("agent") => (
                v["agent"]["id"].as_str().unwrap_or("?"),
                v["agent"]["version"].as_u64().unwrap_or(0),
            ),
            Some("agent_removed") => (
                v["agent_id"].as_str().unwrap_or("?"),
                v["version"].as_u64().unwrap_or(0),
            ),
            _ => continue,
        };
        if version <= last {
            bad.push(format!("{id} v{version} after {last_what}"));
        } else {
            last = version;
            last_what = format!("{id} v{version}");
        }
    }
    bad
}

fn apply(view: &mut View, msgs: &[Value]) {
    for v in msgs {
        match v["type"].as_str() {
            Some("agent") => view.agent(&v["agent"]),
            Some("agent_removed") => view.removed(
                v["agent_id"].as_str().unwrap_or(""),
                v["version"].as_u64().unwrap_or(0),
            ),
            _ => {}
        }
    }
}

/// Drops the connection and resumes on `node` with `since_seq` = the
/// highest version applied and the epoch (§5.1.1); returns the view after
/// the resumed snapshot and the deltas that follow it.
async fn resume(node: &Node, view: &mut View) -> Value {
    let mut s = staff_at(&node.ws_url(), "acme", "s1", "supervisor").await;
    let mut sub = json!({"type": "subscribe", "scope": {"all": true}, "since_seq": view.seq});
    if let Some(e) = &view.epoch {
        sub["epoch"] = json!(e);
    }
    s.ok(sub).await;
    let snap = s.recv_type("snapshot").await;
    view.snapshot(&snap);
    let after = until_quiet(&mut s, Duration::from_secs(1)).await;
    apply(view, &after);
    snap
}

async fn fresh(node: &Node) -> std::collections::BTreeMap<String, Value> {
    let (_, snap) = supervisor(node).await;
    by_id(&snap)
}

/// (a) Three nodes on one Redis with its AOF; a01–a05 on n2, a06 (X) on
/// n1, supervisors on n1. Redis is SIGKILLed and n1 SIGSTOPped; Redis
/// comes back from its AOF; the five agents each make one change through
/// n2; X sends one to the frozen n1 (it waits in the socket); n1 gets
/// SIGCONT. n1 must send the supervisors the six changes in increasing
/// version (§5.1.1) — a node that publishes X's new version before the
/// five older ones it has not caught up with breaks the resume rule: a
/// supervisor dropped right after X's delta resumes past the five and never
/// sees them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn repro_ordering_after_redis_reconnection() {
    let _one = EXCLUSIVE.lock().await;
    // A node TTL well past the freeze: n1 is not swept, only late.
    // The plain test clients do not heartbeat: a presence TTL past the
    // test's length keeps the agents online without them.
    let mut c = Cluster::start(Store::single(), 3, 10_000, &["--presence-ttl-ms", "120000"]).await;
    c.all_ready(Duration::from_secs(15)).await.unwrap();
    let five = ["a01", "a02", "a03", "a04", "a05"];
    let mut agents = Vec::new();
    for a in five {
        agents.push(agent(&c.nodes[1], a, "d1").await);
    }
    let mut x = agent(&c.nodes[0], "a06", "d1").await;
    // S reads everything; T drops right after the first delta n1 sends
    // after the thaw.
    let (mut s, s_snap) = supervisor(&c.nodes[0]).await;
    let (mut t, t_snap) = supervisor(&c.nodes[0]).await;

    c.store.kill();
    c.nodes[0].freeze();
    tokio::task::block_in_place(|| c.store.restart());
    let mut acked = Vec::new();
    for (a, conn) in five.iter().zip(agents.iter_mut()) {
        let r = until_ok(
            conn,
            json!({"type": "set_status", "status": "paused", "reason": format!("repro-a-{a}")}),
        )
        .await;
        acked.push((a.to_string(), r["version"].as_u64().unwrap()));
    }
    x.send(json!({"type": "set_status", "id": "x1", "status": "paused", "reason": "repro-a-x"}))
        .await;
    c.nodes[0].thaw();
    let x_reply = x
        .recv_where("X's reply", |v| v["type"] == "reply" && v["id"] == "x1")
        .await;
    eprintln!(
        "five changes through n2 acknowledged at {acked:?}; X's change on n1 answered {x_reply}"
    );

    // T: the first delta, then the cut.
    let mut t_view = View::default();
    t_view.snapshot(&t_snap);
    let first = t
        .recv_where_within(
            "T's first delta after the thaw",
            Duration::from_secs(15),
            |v| v["type"] == "agent",
        )
        .await;
    apply(&mut t_view, std::slice::from_ref(&first));
    t.drop_abruptly();

    let s_msgs = until_quiet(&mut s, Duration::from_secs(2)).await;
    let s_order: Vec<String> = s_msgs
        .iter()
        .filter(|v| v["type"] == "agent")
        .map(|v| {
            format!(
                "{} v{}",
                v["agent"]["id"].as_str().unwrap_or("?"),
                v["agent"]["version"]
            )
        })
        .collect();
    eprintln!(
        "S got, in order: {s_order:?}; T's first delta: {} v{}",
        first["agent"]["id"].as_str().unwrap_or("?"),
        first["agent"]["version"]
    );
    let bad = out_of_order(s_snap["seq"].as_u64().unwrap(), &s_msgs);

    let mut s_view = View::default();
    s_view.snapshot(&s_snap);
    apply(&mut s_view, &s_msgs);
    drop(s);
    let s_resumed = resume(&c.nodes[0], &mut s_view).await;
    let t_resumed = resume(&c.nodes[0], &mut t_view).await;
    let expected = fresh(&c.nodes[0]).await;
    let s_diff = compare(&expected, &s_view.records, 10);
    let t_diff = compare(&expected, &t_view.records, 10);
    eprintln!(
        "S resumed from {} ({} records), T resumed from {} ({} records)",
        s_resumed["seq"],
        s_resumed["agents"].as_array().map_or(0, Vec::len),
        t_resumed["seq"],
        t_resumed["agents"].as_array().map_or(0, Vec::len)
    );
    assert!(
        bad.is_empty() && s_diff.is_empty() && t_diff.is_empty(),
        "after a Redis restart with n1 frozen:\n  S's deltas out of version order: {bad:?}\n  S got {s_order:?}\n  \
         S's view after its resume differs from a fresh snapshot: {s_diff:?}\n  \
         T (dropped after its first delta, {} v{}) resumed and differs from a fresh snapshot: {t_diff:?}",
        first["agent"]["id"].as_str().unwrap_or("?"),
        first["agent"]["version"]
    );
}

/// What a node's Redis froze under: the error codes of the two changes.
struct Frozen {
    codes: Vec<(String, String)>,
}

/// SIGSTOPs the Redis of a one-node hub for 2 s (its timeout is 500 ms),
/// sends the agent's change and the supervisor's (if any) meanwhile,
/// then SIGCONT and waits until the node is ready.
async fn during_redis_freeze(
    c: &Cluster,
    a01: &mut Client,
    sup: &mut Client,
    agent_body: Value,
    sup_body: Option<Value>,
) -> Frozen {
    let pid = c.store.master_pid();
    cluster::signal(pid, "STOP");
    let frozen = Instant::now();
    let mut replies = vec![(agent_body.clone(), a01.request(agent_body).await)];
    if let Some(body) = sup_body {
        replies.push((body.clone(), sup.request(body).await));
    }
    let codes = replies
        .into_iter()
        .map(|(body, reply)| {
            assert_eq!(
                reply["ok"], false,
                "{body} was acknowledged with Redis frozen: {reply}"
            );
            (
                reply["error"]["code"].as_str().unwrap_or("?").to_string(),
                reply["error"]["message"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    // The freeze lasts 2 s in all: well past the Redis timeout.
    tokio::time::sleep(Duration::from_secs(2).saturating_sub(frozen.elapsed())).await;
    cluster::signal(pid, "CONT");
    c.all_ready(Duration::from_secs(15)).await.unwrap();
    Frozen { codes }
}

async fn history(sup: &mut Client, agent: &str) -> Vec<Value> {
    let h = sup
        .ok(json!({"type": "history", "agent_id": agent, "limit": 1000}))
        .await;
    h["changes"].as_array().cloned().unwrap_or_default()
}

async fn one_node() -> Cluster {
    let c = Cluster::start(Store::single(), 1, 1000, &["--presence-ttl-ms", "120000"]).await;
    c.all_ready(Duration::from_secs(15)).await.unwrap();
    c
}

/// (b) `unavailable` means not applied (PROTOCOL.md §3, §9): a change
/// refused while Redis is frozen past `--redis-timeout-ms` must never show
/// up — not when Redis wakes, not ever. `outcome_unknown` is the answer
/// for a change whose fate the node could not learn.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn repro_unavailable_is_not_applied() {
    let _one = EXCLUSIVE.lock().await;
    let c = one_node().await;
    let mut a01 = agent(&c.nodes[0], "a01", "d1").await;
    let _a02 = agent(&c.nodes[0], "a02", "d1").await;
    let (mut sup, _) = supervisor(&c.nodes[0]).await;
    let (r1, r2) = ("repro-b-agent-7f3a", "repro-b-supervisor-91c2");
    let f = during_redis_freeze(
        &c,
        &mut a01,
        &mut sup,
        json!({"type": "set_status", "status": "paused", "reason": r1}),
        Some(json!({"type": "command", "action": "pause", "agent_id": "a02", "reason": r2})),
    )
    .await;
    eprintln!(
        "with Redis frozen the hub answered: agent {:?}, supervisor {:?}",
        f.codes[0], f.codes[1]
    );
    // Everything the supervisor and the agent get from here on, then the
    // store's own answer (a fresh snapshot, the histories).
    let mut seen: Vec<(String, String)> = Vec::new();
    for v in until_quiet(&mut sup, Duration::from_secs(2)).await {
        for m in markers(&v["agent"]) {
            seen.push((
                m,
                format!(
                    "delta {} v{}",
                    v["agent"]["id"].as_str().unwrap_or("?"),
                    v["agent"]["version"]
                ),
            ));
        }
    }
    for v in until_quiet(&mut a01, Duration::from_millis(500)).await {
        for m in markers(&v["agent"]) {
            seen.push((m, format!("state of a01 v{}", v["agent"]["version"])));
        }
    }
    for (id, r) in fresh(&c.nodes[0]).await {
        for m in markers(&r) {
            seen.push((m, format!("fresh snapshot {id} v{}", r["version"])));
        }
    }
    for a in ["a01", "a02"] {
        for e in history(&mut sup, a).await {
            if let Some(m) = e["pause_reason"].as_str() {
                seen.push((
                    m.to_string(),
                    format!("history of {a} v{} ({})", e["version"], e["event"]),
                ));
            }
        }
    }
    let mut applied = Vec::new();
    for (reason, (code, msg)) in [r1, r2].iter().zip(&f.codes) {
        if code == "outcome_unknown" {
            continue;
        }
        for (m, where_) in &seen {
            if m == reason {
                applied.push(format!(
                    "{reason:?} answered {code} ({msg}) but applied: {where_}"
                ));
            }
        }
    }
    assert!(
        applied.is_empty(),
        "refused changes were applied:\n{}",
        applied.join("\n")
    );
}

/// `idempotency_key` (being added): a change retried with the same key
/// after an outage is applied at most once — one history entry, and every
/// retry answered `ok`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idempotency_key_applies_at_most_once() {
    let _one = EXCLUSIVE.lock().await;
    let c = one_node().await;
    let mut a01 = agent(&c.nodes[0], "a01", "d1").await;
    let (mut sup, _) = supervisor(&c.nodes[0]).await;
    let reason = "idem-reason-5d2e";
    let body = json!({"type": "set_status", "status": "paused", "reason": reason,
                      "idempotency_key": "idem-key-5d2e"});
    let f = during_redis_freeze(&c, &mut a01, &mut sup, body.clone(), None).await;
    eprintln!("with Redis frozen the change was answered {:?}", f.codes[0]);
    let retries = [
        a01.request(body.clone()).await,
        a01.request(body.clone()).await,
    ];
    let entries: Vec<Value> = history(&mut sup, "a01")
        .await
        .into_iter()
        .filter(|e| e["pause_reason"] == reason && e["event"] == "pause")
        .collect();
    assert!(
        retries.iter().all(|r| r["ok"] == true) && entries.len() == 1,
        "a change retried with one idempotency_key: retries answered {}; \
         history entries for it: {} ({})",
        retries
            .iter()
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        entries.len(),
        entries
            .iter()
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
}
