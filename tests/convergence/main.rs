//! Seeded, Jepsen-style fault injection against a real presence-hub
//! cluster: three nodes (the real binary, separate processes) on a real
//! Redis with its AOF — or on a master with two replicas behind three
//! Sentinels — while tens of agents and several supervisors work, and
//! faults are injected at random: nodes SIGKILLed and restarted on the same
//! id and port, nodes SIGSTOPped shorter and longer than the node TTL,
//! Redis SIGSTOPped shorter than `--redis-timeout-ms`, between it and the
//! node TTL, and longer, Redis SIGKILLed and restarted from its AOF (alone
//! and while a node is frozen), Sentinel failovers, supervisors cut off
//! mid-burst that resume (PROTOCOL.md §5.1.1) and supervisors that stop
//! reading (and are closed with 4008).
//!
//! An admin changes the directory throughout (`actors::admin`, PROTOCOL.md
//! §7.1): scratch agents and a scratch queue come and go. The third node
//! applies Redis's deltas through a push queue of 4 (`--redis-push-queue`):
//! it drops the deltas of every burst it cannot apply in time and must
//! catch up from the store (README, "a delta is dropped and the replica
//! catches up"), held to the same invariants as the other two; the summary
//! says how many it dropped.
//!
//! Once every fault has healed, every node's `/readyz` answers 200 and the
//! deltas have stopped, it checks:
//!
//! 1. every supervisor's view, built only by the documented rules
//!    (snapshot, resumed snapshot + `agent_ids`, `agent` / `agent_removed`
//!    deltas, never a record replaced by an older version) equals a fresh
//!    snapshot of the same scope on the same node, record for record (the
//!    full record: PROTOCOL.md §4 has no field that changes without a new
//!    version); and every node's fresh snapshot equals every other's;
//! 2. each connection's `agent` / `agent_removed` deltas arrive in strictly
//!    increasing `version` (§5.1.1), and a resumed snapshot leaves no change
//!    out: every version seen anywhere (same epoch) after `since_seq` and up
//!    to the snapshot's seq is in it, or in a later delta, for every agent
//!    of its `agent_ids`;
//! 3. every change answered `ok` is in the agent's history (§5.5) under
//!    the reply's version, or was written back by a `restore` (§9); so is
//!    the version of an `ok` that found nothing to change — an admin
//!    setting an agent's unassigned-access override to what it is
//!    (`actors::overrides`, behind Sentinels too: with
//!    `--redis-wait-replicas` such an `ok` must be on the replicas); a run
//!    that judged none of those fails;
//! 4. no change answered with an error (`unavailable`, `invalid_state`,
//!    `forbidden`, `rate_limited`, …: §3 "a refused request changes
//!    nothing", §9 "changes get `unavailable` (nothing is applied)") is ever
//!    applied — each pause carries a unique reason and each interaction a
//!    unique id, which must then appear in no record ever seen and no
//!    history entry (§3.1). The admin's `put_user`s sent now and then in a
//!    frame that breaks RFC 6455 (a reserved bit, a byte that is not UTF-8)
//!    are held to it too when closed with 1002 or 1007 (§1: nothing
//!    applied), and so are those sent in more fragments than the rate
//!    limit leaves room for (§1: every frame counts, so the message is
//!    dropped and answered `rate_limited`); a run that judged none of
//!    either fails. So are the integration's `answered`s sent now and then
//!    on an `/api/v1/ws` of their own in more fragments than
//!    `--api-ws-rate-limit-per-sec` has room for, the last once the budget
//!    is back (docs/API.md "Over one WebSocket", §11: refused whole, 429
//!    `rate_limited` under its id, even then): the agent is read back
//!    after the refusal, any other answer while a fragment was certainly
//!    refused fails ([`check_fragmented`]), and a run on one Redis that
//!    judged none fails. Only `outcome_unknown` (applied before the reply,
//!    or never) and a missing reply are not counted;
//! 5. no flap: an agent with a device that stayed connected all run to a
//!    node never killed nor frozen near its TTL never goes offline; and
//!    (5b, §2.4 "its next message makes it active again", §9.1 "no agent
//!    goes offline because of the outage itself") no agent is offline while
//!    one of its devices is connected to a node that has been healthy for
//!    the last few seconds — Redis outages and failovers included;
//! 6. the directory: every node answers the same `directory`, and each
//!    scratch agent is what the admin's last acknowledged change made it
//!    (skipped for one whose later change has an unknown outcome);
//! 7. the agent event stream (protocol/EVENTS.md), read through
//!    `GET /api/v1/events`: one event per version, in version order, no
//!    version twice and none missing but where a `gap` event says so; each
//!    agent event's `previous` is the `current` of the agent's event before
//!    it (unless a gap lies between); every change answered `ok` is in it
//!    at its version (or in a gap, or written back by a `restore`); and the
//!    last event of each agent holds its record as every node has it now;
//!    7b. a consumer reading the stream live through every fault, from
//!    whichever node answers, sees each version once and in order (a `gap`
//!    event where the store lost versions, even ones it had read);
//! 8. an integration's requests on one WebSocket apply in the order sent
//!    (docs/API.md, "Over one WebSocket"): an ACD (`actors::integration`)
//!    sends `answered` and `ended` of a new interaction together, for an
//!    agent nothing else changes but the hub itself, and each pair is
//!    judged by [`check_pipelines`].
//!
//! A failure prints the seed, the timestamped schedule of faults and the
//! first divergences. The seed fixes the schedule of faults (kinds,
//! targets, lengths, gaps) and each actor's random stream; the clock
//! decides the interleaving, as in Jepsen: a failing seed is worth
//! re-running, and the reproductions below pin down what it found.
//!
//! Run the suite (≈2 min: seeds 1 and 2 on one Redis, seed 3 behind
//! Sentinels, 30 s of faults each, then the reproductions):
//!
//! ```text
//! CARGO_TARGET_DIR=target cargo test -j 1 --test convergence -- --nocapture
//! ```
//!
//! Other seeds, or longer (`CONVERGENCE_SEED` takes a comma-separated list
//! and replaces the default seeds of both topologies; `CONVERGENCE_SECS` is
//! the length of the fault schedule per seed):
//!
//! ```text
//! CONVERGENCE_SEED=42,43 CONVERGENCE_SECS=120 cargo test -j 1 --test convergence convergence_ -- --nocapture
//! ```
//!
//! The soak, half an hour of faults on one Redis (and the same behind
//! Sentinels with `convergence_under_sentinel_failovers`):
//!
//! ```text
//! CONVERGENCE_SEED=7 CONVERGENCE_SECS=1800 CARGO_TARGET_DIR=target cargo test -j 1 \
//!     --test convergence convergence_under_node_and_redis_faults -- --nocapture
//! ```
//!
//! The same target holds deterministic reproductions of two faults the
//! random runs find (`repro_*`), and `idempotency_key_applies_at_most_once`
//! for the `idempotency_key` field being added. Every test here takes one
//! global lock: they freeze and kill processes on a 2-core machine, and run
//! one at a time so one test's load does not become another's fault.

#[path = "../common/mod.rs"]
mod common;

mod actors;
mod cluster;
mod model;
mod repro;
mod rng;
mod wire;

use actors::{Ctx, DeviceSpec, Phase, SupSpec, SupState, CHANNELS, INTEGRATION_AGENT};
use cluster::{Node, Store, NODE_TTL_MS, REDIS_TIMEOUT_MS};
use common::process::http_get;
use model::{by_id, compare, Log, Outcome, Shared};
use rng::Rng;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One test at a time in this target (see the module doc).
pub static EXCLUSIVE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const AGENTS: usize = 24;
/// Agents with a second device, on another node.
const TWO_DEVICES: usize = 8;
/// A freeze at least this long may let the others sweep the node: its
/// agents are not held to "no flap".
const FREEZE_TROUBLE_MS: u64 = NODE_TTL_MS * 7 / 10;
/// Slack after a node's trouble or a device's drop before its agent is
/// held to "online" again.
const SETTLE_MS: u128 = (cluster::PRESENCE_TTL_MS + NODE_TTL_MS + 1000) as u128;

fn agent_ids() -> Vec<String> {
    (1..=AGENTS).map(|i| format!("a{i:02}")).collect()
}

fn seeds(defaults: &[u64]) -> Vec<u64> {
    match std::env::var("CONVERGENCE_SEED") {
        Ok(s) => s
            .split(',')
            .map(|x| x.trim().parse().expect("CONVERGENCE_SEED: integers"))
            .collect(),
        Err(_) => defaults.to_vec(),
    }
}

fn secs() -> u64 {
    std::env::var("CONVERGENCE_SECS")
        .ok()
        .map(|s| s.parse().expect("CONVERGENCE_SECS: an integer"))
        .unwrap_or(30)
}

/// The push queue of node n3 (see [`Cluster::start`]).
const TINY_PUSH_QUEUE: &str = "4";

/// Deltas node `n` dropped since it last started
/// (`presence_hub_redis_pushes_dropped_total`); 0 when it does not answer.
async fn pushes_dropped(n: &Node) -> u64 {
    let got = tokio::time::timeout(Duration::from_secs(2), http_get(&n.addr(), "/metrics")).await;
    let Ok((200, text)) = got else { return 0 };
    text.lines()
        .find_map(|l| l.strip_prefix("presence_hub_redis_pushes_dropped_total "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

pub struct Cluster {
    pub nodes: Vec<Node>,
    pub store: Store,
}

impl Cluster {
    pub async fn start(store: Store, n: usize, node_ttl_ms: u64, extra: &[&str]) -> Cluster {
        let flags = store.node_flags();
        let mut nodes = Vec::new();
        for i in 0..n {
            // The third node applies Redis's deltas through a queue of
            // TINY_PUSH_QUEUE (`--redis-push-queue`): under the bursts of a
            // run it drops deltas it cannot apply in time and catches up
            // from the store, and the invariants hold it to the same views.
            let mut extra: Vec<&str> = extra.to_vec();
            if i == 2 && !extra.contains(&"--redis-push-queue") {
                extra.extend(["--redis-push-queue", TINY_PUSH_QUEUE]);
            }
            nodes.push(Node::start(&format!("n{}", i + 1), &flags, &extra, node_ttl_ms).await);
        }
        Cluster { nodes, store }
    }

    /// Waits until every node answers `/readyz` 200.
    pub async fn all_ready(&self, within: Duration) -> Result<(), String> {
        let deadline = Instant::now() + within;
        loop {
            let mut not = Vec::new();
            for n in &self.nodes {
                let code = n.readyz().await;
                if code != 200 {
                    not.push(format!("{}: {code}", n.id));
                }
            }
            if not.is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "nodes not ready within {within:?}: {}",
                    not.join(", ")
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The faults a run draws from.
#[derive(Clone, Copy, Debug)]
enum Fault {
    NodeKill,
    NodeFreezeShort,
    NodeFreezeLong,
    RedisBlip,
    RedisFreezeShort,
    RedisFreezeLong,
    RedisKill,
    RedisKillNodeFreeze,
    SentinelFailover,
}

/// Injects faults for `secs`, one at a time, each healed before the next.
async fn chaos(cluster: &mut Cluster, rng: &mut Rng, log: &Shared, secs: u64) {
    use Fault::*;
    let menu: &[(Fault, u64)] = if cluster.store.is_sentinel() {
        &[
            (NodeKill, 2),
            (NodeFreezeShort, 2),
            (NodeFreezeLong, 2),
            (RedisBlip, 1),
            (SentinelFailover, 3),
        ]
    } else {
        &[
            (NodeKill, 2),
            (NodeFreezeShort, 2),
            (NodeFreezeLong, 2),
            (RedisBlip, 1),
            (RedisFreezeShort, 2),
            (RedisFreezeLong, 2),
            (RedisKill, 2),
            (RedisKillNodeFreeze, 2),
        ]
    };
    let total: u64 = menu.iter().map(|(_, w)| w).sum();
    let until = Instant::now() + Duration::from_secs(secs);
    let event = |s: String| log.lock().unwrap().event(s);
    while Instant::now() < until {
        // The pace of the schedule: faults are the load, not a wait.
        tokio::time::sleep(rng.ms(700, 2500)).await;
        let mut roll = rng.below(total);
        let fault = menu
            .iter()
            .find(|(_, w)| {
                let hit = roll < *w;
                roll = roll.saturating_sub(*w);
                hit
            })
            .map(|(f, _)| *f)
            .expect("a fault");
        let i = rng.below(cluster.nodes.len() as u64) as usize;
        log.lock().unwrap().faults += 1;
        match fault {
            NodeKill => {
                let down = rng.ms(200, 1500);
                event(format!(
                    "FAULT node {} SIGKILL, down {} ms",
                    cluster.nodes[i].id,
                    down.as_millis()
                ));
                let from = model::now_unix_ms();
                cluster.nodes[i].kill().await;
                tokio::time::sleep(down).await;
                cluster.nodes[i].restart().await;
                log.lock()
                    .unwrap()
                    .node_trouble
                    .push((i, from, model::now_unix_ms()));
                event(format!(
                    "HEAL node {} restarted on port {}",
                    cluster.nodes[i].id, cluster.nodes[i].port
                ));
            }
            NodeFreezeShort | NodeFreezeLong => {
                let d = if matches!(fault, NodeFreezeShort) {
                    rng.ms(150, 500)
                } else {
                    rng.ms(NODE_TTL_MS * 3 / 2, NODE_TTL_MS * 5 / 2)
                };
                event(format!(
                    "FAULT node {} SIGSTOP for {} ms",
                    cluster.nodes[i].id,
                    d.as_millis()
                ));
                let from = model::now_unix_ms();
                cluster.nodes[i].freeze();
                tokio::time::sleep(d).await;
                cluster.nodes[i].thaw();
                if d.as_millis() as u64 >= FREEZE_TROUBLE_MS {
                    log.lock()
                        .unwrap()
                        .node_trouble
                        .push((i, from, model::now_unix_ms()));
                }
                event(format!("HEAL node {} SIGCONT", cluster.nodes[i].id));
            }
            RedisBlip | RedisFreezeShort | RedisFreezeLong => {
                let d = match fault {
                    // Shorter than the Redis timeout (and, behind
                    // Sentinels, than their down-after 400 ms).
                    RedisBlip => rng.ms(100, 300),
                    // Past the Redis timeout, within the node TTL.
                    RedisFreezeShort => rng.ms(REDIS_TIMEOUT_MS + 150, NODE_TTL_MS - 100),
                    _ => rng.ms(NODE_TTL_MS * 3 / 2, NODE_TTL_MS * 3),
                };
                let pid = cluster.store.master_pid();
                event(format!(
                    "FAULT redis (port {}) SIGSTOP for {} ms",
                    cluster.store.master_port(),
                    d.as_millis()
                ));
                cluster::signal(pid, "STOP");
                tokio::time::sleep(d).await;
                cluster::signal(pid, "CONT");
                event("HEAL redis SIGCONT".to_string());
            }
            RedisKill => {
                let down = rng.ms(200, 2000);
                event(format!("FAULT redis SIGKILL, down {} ms", down.as_millis()));
                cluster.store.kill();
                tokio::time::sleep(down).await;
                tokio::task::block_in_place(|| cluster.store.restart());
                event("HEAL redis restarted from its AOF".to_string());
            }
            RedisKillNodeFreeze => {
                // Reproduction (a) at random: a node frozen across a Redis
                // restart wakes up behind the others.
                let down = rng.ms(200, 800);
                let after = rng.ms(300, 1200);
                event(format!(
                    "FAULT redis SIGKILL + node {} SIGSTOP; redis down {} ms, node thawed {} ms after redis is back",
                    cluster.nodes[i].id,
                    down.as_millis(),
                    after.as_millis()
                ));
                cluster.store.kill();
                let from = model::now_unix_ms();
                cluster.nodes[i].freeze();
                let frozen = Instant::now();
                tokio::time::sleep(down).await;
                tokio::task::block_in_place(|| cluster.store.restart());
                event("HEAL redis restarted from its AOF".to_string());
                tokio::time::sleep(after).await;
                cluster.nodes[i].thaw();
                let ms = frozen.elapsed().as_millis() as u64;
                if ms >= FREEZE_TROUBLE_MS {
                    log.lock()
                        .unwrap()
                        .node_trouble
                        .push((i, from, model::now_unix_ms()));
                }
                event(format!(
                    "HEAL node {} SIGCONT after {ms} ms",
                    cluster.nodes[i].id
                ));
            }
            SentinelFailover => {
                event("FAULT sentinel failover".to_string());
                match cluster.store.failover().await {
                    Ok(port) => event(format!("HEAL new master on port {port}")),
                    Err(e) => event(format!("failover did not complete: {e}")),
                }
            }
        }
    }
}

/// A service key for the integration (`POST /api/v1/credentials` as the
/// admin), from the first node that makes one. An attempt answered 504
/// may have created its id (its key never shown): the next uses another.
async fn service_key(addrs: &[String]) -> Result<String, String> {
    let token = common::token("acme", "ad1");
    let mut why = String::new();
    for (attempt, addr) in addrs.iter().cycle().take(6).enumerate() {
        if attempt > 0 {
            // A refusal (503, 429) passes: the pace of a client's retry.
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let id = format!("{}-{attempt}", actors::INTEGRATION_ID);
        // `read` too: the integration reads its agent back after a request
        // refused in too many fragments (`actors::fragmented_answered`).
        let body = json!({"id": id, "scopes": ["interactions:write", "read"]}).to_string();
        match common::http::try_request(
            addr,
            "POST",
            "/api/v1/credentials",
            Some(&token),
            "",
            Some(&body),
        )
        .await
        {
            Ok((201, answer)) => {
                if let Some(key) = answer["key"].as_str() {
                    return Ok(key.to_string());
                }
                why = format!("no key in {answer}");
            }
            Ok((status, answer)) => why = format!("{status} {answer}"),
            Err(e) => why = e,
        }
    }
    Err(why)
}

/// Invariant 8 (docs/API.md, "Over one WebSocket": requests are answered
/// one at a time, in the order sent): for each pair the integration sent
/// together — `answered`, then `ended` of the same new interaction, on
/// [`INTEGRATION_AGENT`], whom nothing else changes but the hub itself
/// (presence, the wrap-up's end, a restore):
///
/// - both `ok`: `ended`'s version is above `answered`'s;
/// - `answered` `ok`, `ended` refused `invalid_state` (the agent does not
///   hold the interaction): only right if the hub changed the agent after
///   `answered`, before the integration's next change and before `ended`
///   was answered (the history says by whom and when); otherwise `ended`
///   was judged without `answered`;
/// - `answered` refused (nothing applied): `ended` cannot be `ok`.
///
/// The pairs judged, and the violations.
fn check_pipelines(log: &model::Log) -> (u64, Vec<String>) {
    let history = log.history.get(INTEGRATION_AGENT);
    let mut judged = 0u64;
    let mut found = Vec::new();
    for &(first, second) in &log.pipelines {
        let (a, e) = (&log.requests[first], &log.requests[second]);
        match (&a.outcome, &e.outcome) {
            (Outcome::Ok(va), Outcome::Ok(ve)) => {
                judged += 1;
                if ve <= va {
                    found.push(format!(
                        "[{:>7} ms] {} ok v{va}, then {} ok v{ve}: not applied in the order sent",
                        a.at_ms, a.what, e.what
                    ));
                }
            }
            (Outcome::Ok(va), Outcome::Refused(code, msg)) if code == "invalid_state" => {
                let (Some(h), Some(replied)) = (history, e.replied_unix_ms) else {
                    continue;
                };
                judged += 1;
                // Committed after `answered`, before the integration's next
                // change and before `ended` was answered.
                let by_hub = h
                    .range(va + 1..)
                    .take_while(|(_, entry)| entry["by"]["role"] != "integration")
                    .find(|(_, entry)| {
                        entry["at_ms"]
                            .as_u64()
                            .is_some_and(|at| u128::from(at) <= replied)
                    });
                if by_hub.is_none() {
                    found.push(format!(
                        "[{:>7} ms] {} ok v{va}, then {} refused invalid_state ({msg:?}) with no change by anyone else in between (history of {INTEGRATION_AGENT} from v{va}: {:?})",
                        a.at_ms,
                        a.what,
                        e.what,
                        h.range(va..).take(3).map(|(v, x)| format!("v{v} {} by {}", x["event"], x["by"])).collect::<Vec<_>>()
                    ));
                }
            }
            (Outcome::Refused(..), second) if a.refused().is_some() => {
                judged += 1;
                if let Outcome::Ok(ve) = second {
                    found.push(format!(
                        "[{:>7} ms] {} refused {:?}, yet {} ok v{ve}: it ended an interaction never applied",
                        a.at_ms,
                        a.what,
                        a.refused(),
                        e.what
                    ));
                }
            }
            _ => {}
        }
    }
    (judged, found)
}

/// Invariant 4 for the integration's requests sent in more fragments than
/// its WebSocket's frame budget, the last once the budget was back
/// (`actors::fragmented_answered`; docs/API.md "Over one WebSocket",
/// PROTOCOL.md §11): answered under its id with 429 `rate_limited`, it is
/// judged — nothing of it may be applied, which the marker check of
/// invariant 4 holds it to (its interaction in no record ever seen: views,
/// deltas, the agent read back right after the refusal, the final
/// records). Any other answer, when the hub read the early frames faster
/// than the budget could let them through (some fragment certainly
/// refused), is a violation: the request was not refused whole. Slower
/// (a node frozen between two frames) or without an answer it is not
/// judged.
///
/// The requests judged, and the violations.
fn check_fragmented(log: &model::Log) -> (u64, Vec<String>) {
    let rate = cluster::API_WS_RATE_LIMIT_PER_SEC;
    let mut judged = 0u64;
    let mut found = Vec::new();
    for f in &log.api_fragmented {
        let Some((reply, read_within)) = &f.reply else {
            continue;
        };
        let refused = reply["id"] == f.id.as_str()
            && reply["status"] == 429
            && reply["body"]["error"]["code"] == "rate_limited";
        if refused {
            judged += 1;
        } else if f.over_budget(rate) {
            let r = &log.requests[f.request];
            let body = &reply["body"];
            let answer = match (reply["status"].as_u64(), body["error"]["code"].as_str()) {
                (Some(200), _) => format!("200 (applied: v{})", body["agent"]["version"]),
                (Some(status), Some(code)) => {
                    format!("{status} {code} ({})", body["error"]["message"])
                }
                _ => reply.to_string(),
            };
            found.push(format!(
                "[{:>7} ms] {} {} on {}: its {} early frames were read within {:.1} ms, more than a budget of {rate} frames/s lets through, so one was refused, and its last came once the budget was back; answered {answer} under id {} instead of 429 rate_limited under {}: not refused whole",
                r.at_ms,
                r.who,
                r.what,
                r.agent,
                f.early,
                read_within.as_secs_f64() * 1000.0,
                reply["id"],
                f.id,
            ));
        }
    }
    (judged, found)
}

/// The history of `agent` (newest 1000), merged into the log's.
async fn read_history(url: &str, agents: &[String], log: &Shared) -> Result<(), String> {
    let (mut ws, _) = wire::hello(url, "s1", "supervisor", None, Duration::from_secs(3)).await?;
    for (k, a) in agents.iter().enumerate() {
        let reply = wire::request(
            &mut ws,
            json!({"type": "history", "agent_id": a, "limit": 1000}),
            &format!("h{k}"),
            Duration::from_secs(5),
        )
        .await
        .ok_or_else(|| format!("no history reply for {a}"))?;
        if reply["ok"] != true {
            return Err(format!("history of {a} refused: {reply}"));
        }
        let mut log = log.lock().unwrap();
        let h = log.history.entry(a.clone()).or_default();
        for e in reply["result"]["changes"].as_array().into_iter().flatten() {
            if let Some(v) = e["version"].as_u64() {
                h.insert(v, e.clone());
            }
        }
    }
    Ok(())
}

/// A fresh full snapshot of `scope` for `user` on `url`.
/// The tenant's directory as one node answers it (without `version`'s
/// reader-side noise: the whole answer is compared across nodes).
async fn read_directory(url: &str) -> Result<Value, String> {
    let (mut ws, _) = wire::hello(url, "ad1", "admin", None, Duration::from_secs(5)).await?;
    let reply = wire::request(
        &mut ws,
        json!({"type": "directory"}),
        "dir",
        Duration::from_secs(5),
    )
    .await
    .ok_or("no reply to directory")?;
    if reply["ok"] != true {
        return Err(format!("directory refused: {reply}"));
    }
    Ok(reply["result"].clone())
}

async fn fresh_snapshot(url: &str, user: &str, scope: &Value) -> Result<Value, String> {
    let (mut ws, _) = wire::hello(url, user, "supervisor", None, Duration::from_secs(3)).await?;
    let reply = wire::request(
        &mut ws,
        json!({"type": "subscribe", "scope": scope}),
        "fresh",
        Duration::from_secs(5),
    )
    .await
    .ok_or("no subscribe reply")?;
    if reply["ok"] != true {
        return Err(format!("subscribe refused: {reply}"));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match tokio::time::timeout_at(deadline, wire::next(&mut ws)).await {
            Ok(wire::Incoming::Msg(v)) if v["type"] == "snapshot" => return Ok(v),
            Ok(wire::Incoming::Msg(_)) => continue,
            other => return Err(format!("no snapshot: {other:?}")),
        }
    }
}

/// Waits until the system is quiet: all nodes ready, every device
/// connected, every supervisor subscribed and reading (not in a stall: a
/// stalled view lags by design), and no delta for `calm` since the last
/// stall ended.
async fn quiet(
    cluster: &Cluster,
    log: &Shared,
    sups: &[(SupSpec, Arc<Mutex<SupState>>)],
    devices: usize,
    calm: Duration,
) -> Result<(), String> {
    cluster.all_ready(Duration::from_secs(60)).await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut reading_since = Instant::now()
        .checked_sub(calm)
        .unwrap_or_else(Instant::now);
    loop {
        let (since_delta, connected) = {
            let l = log.lock().unwrap();
            (l.last_delta.elapsed(), l.connected_devices.len())
        };
        let subscribed = sups.iter().all(|(_, s)| s.lock().unwrap().node.is_some());
        let stalled = sups.iter().any(|(_, s)| s.lock().unwrap().stalled);
        if stalled {
            reading_since = Instant::now();
        }
        if since_delta >= calm
            && reading_since.elapsed() >= calm
            && connected == devices
            && subscribed
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "not quiet within 60 s: last delta {since_delta:?} ago, {connected}/{devices} devices connected, supervisors subscribed: {subscribed}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The result of one seed: the report lines of its violations (empty:
/// none) and the counts.
struct Verdict {
    violations: Vec<String>,
    summary: String,
    /// Deltas n3's small push queue dropped (see `Cluster::start`).
    dropped: u64,
}

async fn run_seed(seed: u64, sentinel: bool, secs: u64) -> Verdict {
    let started = Instant::now();
    let topology = if sentinel {
        "3 nodes, Redis behind 3 Sentinels"
    } else {
        "3 nodes, one Redis with AOF"
    };
    eprintln!("== seed {seed}: {topology}, {secs} s of faults");
    let store = tokio::task::block_in_place(|| {
        if sentinel {
            Store::sentinel()
        } else {
            Store::single()
        }
    });
    let mut cluster = Cluster::start(store, 3, NODE_TTL_MS, &[]).await;
    let urls: Arc<Vec<String>> = Arc::new(cluster.nodes.iter().map(Node::ws_url).collect());
    let log = Log::new();
    let (phase_tx, phase_rx) = tokio::sync::watch::channel(Phase::Run);
    let root = Rng::new(seed);
    let ctx = Ctx {
        log: log.clone(),
        urls: urls.clone(),
        phase: phase_rx,
        unique: Arc::new(AtomicU64::new(0)),
        seed,
    };
    let agents = agent_ids();
    // Whose history is read: the agents, and the integration's.
    let read_agents: Vec<String> = agents
        .iter()
        .cloned()
        .chain([INTEGRATION_AGENT.to_string()])
        .collect();
    // Devices: every agent one on node i % 3, the first few a second one
    // on the next node.
    let mut tasks = Vec::new();
    let mut devices = 0;
    let mut device_nodes: Vec<(String, String, usize)> = Vec::new();
    for (i, a) in agents.iter().enumerate() {
        let homes = if i < TWO_DEVICES {
            vec![i % 3, (i + 1) % 3]
        } else {
            vec![i % 3]
        };
        for (k, node) in homes.into_iter().enumerate() {
            let spec = DeviceSpec {
                agent: a.clone(),
                device: format!("d{}", k + 1),
                node,
                passive: false,
            };
            device_nodes.push((a.clone(), spec.device.clone(), node));
            devices += 1;
            tasks.push(tokio::spawn(actors::device(
                spec,
                ctx.clone(),
                root.fork(1000 + devices as u64),
            )));
        }
    }
    // The integration's agent: one passive device, on node 1 (invariant 8).
    {
        let spec = DeviceSpec {
            agent: INTEGRATION_AGENT.into(),
            device: "d1".into(),
            node: 0,
            passive: true,
        };
        device_nodes.push((spec.agent.clone(), spec.device.clone(), spec.node));
        devices += 1;
        tasks.push(tokio::spawn(actors::device(
            spec,
            ctx.clone(),
            root.fork(1000 + devices as u64),
        )));
    }
    let addrs: Arc<Vec<String>> = Arc::new(cluster.nodes.iter().map(Node::addr).collect());
    let mut setup_errors = Vec::new();
    match service_key(&addrs).await {
        Ok(key) => tasks.push(tokio::spawn(actors::integration(
            ctx.clone(),
            key,
            addrs.clone(),
            root.fork(4000),
        ))),
        Err(e) => setup_errors.push(format!("setup: no service key for the integration: {e}")),
    }
    let all_channels: Vec<(&str, &str)> = CHANNELS.to_vec();
    let sup_specs = vec![
        SupSpec {
            name: "S1".into(),
            user: "s1".into(),
            scope: json!({"all": true}),
            channels: all_channels.clone(),
            agents: agents.clone(),
        },
        SupSpec {
            name: "S2".into(),
            user: "s1".into(),
            scope: json!({"all": true}),
            channels: all_channels.clone(),
            agents: agents.clone(),
        },
        SupSpec {
            name: "Sbilling".into(),
            user: "s2".into(),
            scope: json!({"channels": [{"kind": "queue", "id": "billing"}]}),
            channels: vec![("queue", "billing")],
            agents: agents.clone(),
        },
        SupSpec {
            name: "Snarrow".into(),
            user: "s1".into(),
            scope: json!({"channels": [{"kind": "chat", "id": "web"}, {"kind": "campaign", "id": "renewals"}]}),
            channels: vec![("chat", "web"), ("campaign", "renewals")],
            agents: agents.clone(),
        },
        SupSpec {
            name: "Sscoped".into(),
            user: "s3".into(),
            scope: json!({"all": true}),
            channels: vec![("queue", "support"), ("chat", "web")],
            agents: agents.clone(),
        },
    ];
    let mut sups = Vec::new();
    for (k, spec) in sup_specs.into_iter().enumerate() {
        let state = Arc::new(Mutex::new(SupState::default()));
        tasks.push(tokio::spawn(actors::supervisor(
            spec.clone(),
            state.clone(),
            ctx.clone(),
            root.fork(2000 + k as u64),
        )));
        sups.push((spec, state));
    }
    // An admin changing the directory throughout (PROTOCOL.md §7.1) — on
    // the Redis with its AOF (appendfsync always), which never loses an
    // acknowledged write. Behind Sentinels a failover may lose the last
    // acknowledged writes; the hub writes lost agent changes back from its
    // replicas (§9.1), but not yet lost directory changes: nodes converge
    // to the store's directory, and an agent the lost change created is
    // taken out of views with the store's seq as its version, which can
    // repeat a version (PROTOCOL.md §9.1 says so). Not run there until
    // the directory is written back too.
    if !sentinel {
        tasks.push(tokio::spawn(actors::admin(ctx.clone(), root.fork(3000))));
    }
    let mut violations = setup_errors;
    // Everyone connected and subscribed before the first fault, so the
    // no-flap baseline is "online".
    // (The load has started: deltas flow, so no calm is awaited here.)
    if let Err(e) = quiet(&cluster, &log, &sups, devices, Duration::ZERO).await {
        violations.push(format!("setup: {e}"));
    }
    // An admin whose requests often find nothing to change, on every
    // topology (invariant 3 holds those `ok`s too) — once every agent has
    // signed in: a seeded record's version 0 has no history entry.
    tasks.push(tokio::spawn(actors::overrides(
        ctx.clone(),
        root.fork(3100),
        agents.clone(),
    )));
    {
        let mut l = log.lock().unwrap();
        l.t0 = Instant::now();
        l.t0_unix_ms = model::now_unix_ms();
        l.device_gaps.clear();
        l.event("run starts");
    }
    // The history of a long soak is read as it goes (1000 entries a read).
    let collector = {
        let log = log.clone();
        let urls = urls.clone();
        let agents = read_agents.clone();
        tokio::spawn(async move {
            let mut k = 0usize;
            loop {
                tokio::time::sleep(Duration::from_secs(20)).await;
                let _ = read_history(&urls[k % urls.len()], &agents, &log).await;
                k += 1;
            }
        })
    };
    // A consumer of the event stream that reads it live, through every
    // fault, from whichever node answers (invariant 7b).
    let live: Arc<Mutex<LiveReader>> = Arc::default();
    let reader = {
        let live = live.clone();
        let addrs: Vec<String> = cluster.nodes.iter().map(Node::addr).collect();
        tokio::spawn(async move {
            let mut k = 0usize;
            loop {
                read_live(&addrs[k % addrs.len()], &live, None).await;
                k += 1;
                // That node failed: a pause before the next, as a consumer
                // backs off (not to spin while every node is down).
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    eprintln!(
        "seed {seed}: everyone connected after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let mut chaos_rng = root.fork(1);
    chaos(&mut cluster, &mut chaos_rng, &log, secs).await;
    let _ = phase_tx.send(Phase::Quiet);
    let run_end_unix_ms = model::now_unix_ms();
    log.lock().unwrap().event("faults end; changes stop");
    collector.abort();
    eprintln!(
        "seed {seed}: faults over after {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // Quiet, then invariant 1, with one more wait for quiet if a view
    // lags (a delta still in flight is not a divergence).
    let mut divergences = Vec::new();
    let mut records_compared = 0u64;
    // Every agent as node 1 has it at the end (invariant 7 compares the
    // event stream's last records with it).
    let mut final_records: BTreeMap<String, Value> = BTreeMap::new();
    for attempt in 0..3 {
        divergences.clear();
        records_compared = 0;
        if let Err(e) = quiet(&cluster, &log, &sups, devices, Duration::from_secs(2)).await {
            divergences.push(format!("never quiet: {e}"));
            break;
        }
        let node_snaps = {
            let mut snaps = Vec::new();
            for u in urls.iter() {
                snaps.push(
                    fresh_snapshot(u, "s1", &json!({"all": true}))
                        .await
                        .map(|s| by_id(&s)),
                );
            }
            snaps
        };
        if let Some(Ok(first)) = node_snaps.first() {
            final_records = first.clone();
        }
        for (k, s) in node_snaps.iter().enumerate() {
            match (s, &node_snaps[0]) {
                (Ok(s), Ok(first)) if k > 0 => {
                    for d in compare(first, s, 5) {
                        divergences.push(format!("node n{} vs n1 (fresh snapshots): {d}", k + 1));
                    }
                }
                (Err(e), _) => divergences.push(format!("fresh snapshot on n{}: {e}", k + 1)),
                _ => {}
            }
        }
        for (spec, state) in &sups {
            let (node, view) = {
                let s = state.lock().unwrap();
                (s.node, s.view.records.clone())
            };
            let Some(node) = node else {
                divergences.push(format!("{}: not subscribed at the end", spec.name));
                continue;
            };
            match fresh_snapshot(&urls[node], &spec.user, &spec.scope).await {
                Ok(fresh) => {
                    records_compared += by_id(&fresh).len() as u64;
                    for d in compare(&by_id(&fresh), &view, 10) {
                        divergences.push(format!("{} (on n{}): {d}", spec.name, node + 1));
                    }
                    let mut l = log.lock().unwrap();
                    for r in fresh["agents"].as_array().into_iter().flatten() {
                        l.saw(r, fresh["epoch"].as_str(), "final fresh snapshot");
                    }
                }
                Err(e) => divergences.push(format!("{}: fresh snapshot: {e}", spec.name)),
            }
        }
        if divergences.is_empty() {
            break;
        }
        log.lock().unwrap().event(format!(
            "views differ from fresh snapshots (attempt {attempt}); waiting for quiet again"
        ));
    }
    for d in divergences.iter().take(20) {
        violations.push(format!("invariant 1 (view = fresh snapshot): {d}"));
    }

    eprintln!(
        "seed {seed}: views compared after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // The directory (PROTOCOL.md §7.1): every node answers the same, and
    // it holds what the admin's acknowledged changes made of the scratch
    // users (a refused change made nothing; an unknown outcome either).
    let mut directories = Vec::new();
    for u in urls.iter() {
        directories.push(read_directory(u).await);
    }
    let mut dir_checked = 0u64;
    match &directories[0] {
        Err(e) => violations.push(format!("directory on n1: {e}")),
        Ok(first) => {
            for (k, d) in directories.iter().enumerate().skip(1) {
                match d {
                    Ok(d) if d == first => {}
                    Ok(d) => {
                        violations.push(format!("directory: n{} answers {d} but n1 {first}", k + 1))
                    }
                    Err(e) => violations.push(format!("directory on n{}: {e}", k + 1)),
                }
            }
            let requests = log.lock().unwrap().requests.clone();
            for user in actors::SCRATCH_USERS {
                let Some(expected) = actors::expected_scratch(&requests, user) else {
                    continue;
                };
                dir_checked += 1;
                let held = first["users"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|u| u["id"] == user)
                    .map(|u| u["name"].as_str().unwrap_or("").to_string());
                if held != expected {
                    violations.push(format!(
                        "directory: {user} is {held:?} after the run, but the admin's acknowledged changes make it {expected:?}"
                    ));
                }
            }
        }
    }
    // Histories, read once everything is quiet, from a ready node.
    let mut history_ok = false;
    for u in urls.iter() {
        match read_history(u, &read_agents, &log).await {
            Ok(()) => {
                history_ok = true;
                break;
            }
            Err(e) => log
                .lock()
                .unwrap()
                .event(format!("history read failed: {e}")),
        }
    }
    if !history_ok {
        violations.push("no node answered the history requests".into());
    }
    // The live reader catches up, then stops.
    reader.abort();
    for node in &cluster.nodes {
        let token = common::token("acme", "ad1");
        let end = common::http::try_request(
            &node.addr(),
            "GET",
            "/api/v1/events?limit=1",
            Some(&token),
            "",
            None,
        )
        .await;
        let Ok((200, end)) = end else { continue };
        let until = end["last"].as_str().unwrap_or("0-0").to_string();
        if read_live(&node.addr(), &live, Some(&until)).await {
            break;
        }
    }
    // The event stream, read once everything is quiet (invariant 7).
    let mut stream = None;
    for node in &cluster.nodes {
        match read_events(&node.addr()).await {
            Ok(events) => {
                stream = Some(events);
                break;
            }
            Err(e) => log
                .lock()
                .unwrap()
                .event(format!("event stream read failed: {e}")),
        }
    }
    let _ = phase_tx.send(Phase::Stop);
    for t in &tasks {
        t.abort();
    }
    // What the small push queue of n3 (`Cluster::start`) dropped.
    let dropped = match cluster.nodes.get(2) {
        Some(n) => pushes_dropped(n).await,
        None => 0,
    };

    let log = log.lock().unwrap();
    let resumes: Vec<model::Resume> = sups
        .iter()
        .flat_map(|(_, s)| s.lock().unwrap().resumes.clone())
        .collect();
    // Invariant 2: ordering, seen by the actors as it happened.
    if log.ordering.len() > 10 {
        violations.push(format!(
            "invariant 2: {} deltas out of order in all; the first 10:",
            log.ordering.len()
        ));
    }
    for o in log.ordering.iter().take(10) {
        violations.push(format!("invariant 2 (deltas in increasing version): {o}"));
    }
    // Invariant 2: no resumed snapshot leaves a change out.
    let mut resume_gaps = Vec::new();
    for r in &resumes {
        for id in &r.agent_ids {
            let Some(versions) = log.seen.get(id) else {
                continue;
            };
            if r.seq <= r.since {
                continue;
            }
            for (v, rec) in versions.range(r.since + 1..=r.seq) {
                let same_epoch = rec["_epoch"].as_str().map(str::to_string) == r.epoch;
                let covered = r.agents.get(id).is_some_and(|x| x >= v)
                    || r.later.get(id).is_some_and(|x| x >= v);
                if same_epoch && !covered {
                    resume_gaps.push(format!(
                        "{}: resumed with since_seq {} (snapshot seq {}) but {id} v{v} is neither in the resumed snapshot (it has {:?}) nor in a later delta (latest {:?})",
                        r.sup, r.since, r.seq, r.agents.get(id), r.later.get(id)
                    ));
                }
            }
        }
    }
    for g in resume_gaps.iter().take(10) {
        violations.push(format!("invariant 2 (resume leaves no change out): {g}"));
    }
    for c in log.conflicts.iter().take(5) {
        violations.push(format!("versions: {c}"));
    }
    // Invariants 3 and 4.
    let mut changes_checked = 0u64;
    let mut acked = 0u64;
    let mut refused = 0u64;
    let mut unknown = 0u64;
    let mut refused_marked = 0u64;
    let mut refusal_codes: BTreeMap<String, u64> = BTreeMap::new();
    let mut missing = Vec::new();
    let mut applied_refusals = Vec::new();
    let history_markers: std::collections::HashMap<String, (String, u64)> = log
        .history
        .iter()
        .flat_map(|(a, h)| {
            h.iter().filter_map(move |(v, e)| {
                e["pause_reason"]
                    .as_str()
                    .map(|r| (r.to_string(), (a.clone(), *v)))
            })
        })
        .collect();
    for r in &log.requests {
        match &r.outcome {
            Outcome::Ok(v) => {
                acked += 1;
                let Some(h) = log.history.get(&r.agent) else {
                    continue;
                };
                changes_checked += 1;
                let restored = h.range(v + 1..).any(|(_, e)| e["event"] == "restore");
                if !h.contains_key(v) && !restored {
                    missing.push(format!(
                        "[{:>7} ms] {} {} on {}: ok v{v}, no history entry v{v} (history has {} entries, v{:?}..v{:?})",
                        r.at_ms,
                        r.who,
                        r.what,
                        r.agent,
                        h.len(),
                        h.keys().next(),
                        h.keys().last()
                    ));
                }
            }
            Outcome::Refused(code, _) => {
                *refusal_codes.entry(code.clone()).or_default() += 1;
                let Some((code, msg)) = r.refused() else {
                    unknown += 1;
                    continue;
                };
                refused += 1;
                let Some(m) = &r.marker else { continue };
                changes_checked += 1;
                refused_marked += 1;
                let in_record = log.markers_seen.get(m);
                let in_history = history_markers.get(m);
                let wheres: Vec<String> = in_record
                    .map(|w| format!("record {w}"))
                    .into_iter()
                    .chain(in_history.map(|(a, v)| format!("history of {a} v{v}")))
                    .collect();
                if !wheres.is_empty() {
                    applied_refusals.push(format!(
                        "[{:>7} ms] {} {} on {} answered {code} ({msg:?}) but was applied: {}",
                        r.at_ms,
                        r.who,
                        r.what,
                        r.agent,
                        wheres.join("; ")
                    ));
                }
            }
            Outcome::Lost | Outcome::Pending => unknown += 1,
        }
    }
    if missing.len() > 10 {
        violations.push(format!(
            "invariant 3: {} ok changes missing in all; the first 10:",
            missing.len()
        ));
    }
    for m in missing.iter().take(10) {
        violations.push(format!("invariant 3 (ok change in history): {m}"));
    }
    if applied_refusals.len() > 10 {
        violations.push(format!(
            "invariant 4: {} refused changes applied in all; the first 10:",
            applied_refusals.len()
        ));
    }
    for a in applied_refusals.iter().take(10) {
        violations.push(format!("invariant 4 (refused change never applied): {a}"));
    }
    // Invariant 4 covers requests in frames that break RFC 6455 too (the
    // admin's, closed 1002 or 1007): counted, so a run that judged none
    // says so.
    let broken_checked = log
        .requests
        .iter()
        .filter(|r| r.marker.is_some())
        .filter(|r| {
            r.refused()
                .is_some_and(|(code, _)| code.starts_with("close "))
        })
        .count();
    // And requests sent in more fragments than the rate limit leaves room
    // for (the admin's, answered `rate_limited`, §1): counted the same way.
    let fragmented_checked = log
        .requests
        .iter()
        .filter(|r| r.marker.is_some() && actors::in_fragments(r))
        .filter(|r| r.refused().is_some_and(|(code, _)| code == "rate_limited"))
        .count();
    // And the `ok`s to requests sent to find nothing to change
    // (`actors::overrides`), held to invariant 3.
    let as_it_is_acked = log
        .requests
        .iter()
        .filter(|r| r.who == "OVR" && r.what.ends_with(actors::AS_IT_IS))
        .filter(|r| matches!(r.outcome, Outcome::Ok(_)))
        .count();
    // And the integration's requests in more fragments than its frame
    // budget (answered `rate_limited`, docs/API.md "Over one WebSocket").
    let (api_fragmented_checked, not_refused_whole) = check_fragmented(&log);
    for m in not_refused_whole.iter().take(10) {
        violations.push(format!(
            "invariant 4 (a request with a fragment over --api-ws-rate-limit-per-sec is refused whole): {m}"
        ));
    }
    // Invariant 8: the integration's pipelined pairs apply in the order sent.
    let (pairs_checked, misordered) = check_pipelines(&log);
    for m in misordered.iter().take(10) {
        violations.push(format!(
            "invariant 8 (integration requests in the order sent): {m}"
        ));
    }
    // Invariant 7: the event stream.
    let mut events_checked = 0u64;
    match &stream {
        None => violations.push("invariant 7: no node answered GET /api/v1/events".into()),
        Some(events) => {
            let (checked, found) = check_events(events, &log, &final_records);
            events_checked = checked;
            for f in found.iter().take(10) {
                violations.push(format!("invariant 7 (event stream): {f}"));
            }
            if found.len() > 10 {
                violations.push(format!("invariant 7: {} violations in all", found.len()));
            }
        }
    }
    // Invariant 7b: what the live reader saw, through the faults.
    {
        let live = live.lock().unwrap();
        let found = check_live(&live.events);
        for f in found.iter().take(10) {
            violations.push(format!("invariant 7b (event stream read live): {f}"));
        }
        if live.events.is_empty() {
            violations.push("invariant 7b: the live reader read nothing".into());
        }
        events_checked += live.events.len() as u64;
    }
    // Invariant 5: no flap, in two strengths.
    // 5 (as the test plan words it): an agent with a device that stayed
    // connected for the whole run to a node never killed nor frozen near
    // its TTL never goes offline.
    // 5b (PROTOCOL.md §2.4 "its next message makes it active again", §9.1
    // "no agent goes offline because of the outage itself"): at any time
    // t, an agent with a device connected then to a node neither killed
    // nor frozen near its TTL, with SETTLE_MS of slack after any such
    // trouble or drop (a sweep, a presence TTL, a Redis back-log may land
    // late), is online. Reported once per offline stretch.
    let protected_at = |agent: &str, t: u128| {
        device_nodes.iter().any(|(a, d, n)| {
            a == agent
                && !log.device_gaps.iter().any(|((ga, gd), from, to)| {
                    ga == a
                        && gd == d
                        && t >= *from
                        && t <= to.unwrap_or(u128::MAX).saturating_add(SETTLE_MS)
                })
                && !log
                    .node_trouble
                    .iter()
                    .any(|(m, from, to)| m == n && t >= *from && t <= to + SETTLE_MS)
        })
    };
    let always_protected = |agent: &str| {
        device_nodes.iter().any(|(a, d, n)| {
            a == agent
                && !log
                    .device_gaps
                    .iter()
                    .any(|((ga, gd), _, _)| ga == a && gd == d)
                && !log.node_trouble.iter().any(|(m, _, _)| m == n)
        })
    };
    let mut flaps = Vec::new();
    let mut offline_events = 0;
    let mut strict_agents = 0;
    for a in &agents {
        let strict = always_protected(a);
        strict_agents += u64::from(strict);
        let mut reported = false;
        for (v, e) in log.history.get(a).into_iter().flatten() {
            let Some(t) = e["at_ms"].as_u64().map(u128::from) else {
                continue;
            };
            if t < log.t0_unix_ms {
                continue;
            }
            if e["presence"] != "offline" {
                reported = false;
                continue;
            }
            offline_events += 1;
            if !reported && (strict || protected_at(a, t)) {
                reported = true;
                let which = if strict {
                    "5 (no flap): its device stayed connected all run to a node never killed nor frozen"
                } else {
                    "5b (no flap, §2.4/§9.1): a device of it was connected to a node healthy for the last few seconds"
                };
                flaps.push(format!(
                    "invariant {which}; yet {a} is offline at v{v}, {} ms into the run: {e}",
                    t - log.t0_unix_ms
                ));
            }
        }
    }
    // How much the check covered: agent-seconds held to "online".
    let mut protected = 0u64;
    let mut t = log.t0_unix_ms;
    while t < run_end_unix_ms {
        protected += agents.iter().filter(|a| protected_at(a, t)).count() as u64;
        t += 1000;
    }
    if flaps.len() > 10 {
        violations.push(format!(
            "invariant 5: {} offline stretches in all; the first 10:",
            flaps.len()
        ));
    }
    for f in flaps.iter().take(10) {
        violations.push(f.clone());
    }
    let summary = format!(
        "seed {seed} ({topology}): {} faults + {} client faults, {} requests ({acked} ok, {refused} refused {refusal_codes:?}, {unknown} unknown), \
         {changes_checked} changes checked against history/records ({refused_marked} of them refused, marked), {events_checked} events checked in the stream, {} applied though refused, {} deltas checked, {} resumes checked, {records_compared} view records compared, {dir_checked} scratch users' directory entries checked on every node, {strict_agents} agents held to no-flap all run, {protected} agent-seconds held to no-flap ({offline_events} offline history entries judged), {dropped} deltas dropped by n3's push queue of {TINY_PUSH_QUEUE} since its last start, {pairs_checked} pipelined integration pairs judged, {broken_checked} requests in broken frames judged, {fragmented_checked} requests in too many fragments judged, {api_fragmented_checked} integration requests in too many fragments judged, {as_it_is_acked} `ok`s to requests that found nothing to change judged; \
         {} violations; {:.1} s",
        log.faults,
        log.client_faults,
        log.requests.len(),
        applied_refusals.len(),
        log.deltas_checked,
        resumes.len(),
        violations.len(),
        started.elapsed().as_secs_f64()
    );
    eprintln!("{summary}");
    // A run that checked nothing proves nothing.
    if log.faults == 0
        || changes_checked == 0
        || log.deltas_checked == 0
        || resumes.is_empty()
        || records_compared == 0
        || events_checked == 0
        || (dir_checked == 0 && !sentinel)
        || pairs_checked == 0
        || (broken_checked == 0 && !sentinel)
        || (fragmented_checked == 0 && !sentinel)
        || (api_fragmented_checked == 0 && !sentinel)
        || as_it_is_acked == 0
    {
        violations.push(format!(
            "the run checked too little: {} faults, {changes_checked} changes, {} deltas, {} resumes, {records_compared} view records compared, {dir_checked} directory entries, {pairs_checked} integration pairs, {broken_checked} broken frames, {fragmented_checked} requests in too many fragments, {api_fragmented_checked} integration requests in too many fragments, {as_it_is_acked} no-op oks",
            log.faults,
            log.deltas_checked,
            resumes.len()
        ));
    }
    if !violations.is_empty() {
        let mut report = vec![format!(
            "SEED {seed} ({topology}) — {} violations",
            violations.len()
        )];
        report.extend(violations);
        report.push("schedule:".into());
        report.extend(
            log.schedule
                .iter()
                .filter(|l| !l.contains("full snapshot"))
                .cloned(),
        );
        return Verdict {
            violations: report,
            summary,
            dropped,
        };
    }
    Verdict {
        violations: Vec::new(),
        summary,
        dropped,
    }
}

/// A consumer of the event stream reading it as it grows.
#[derive(Default)]
struct LiveReader {
    after: String,
    events: Vec<Value>,
    /// Reading again after its place was lost (protocol/EVENTS.md): skip
    /// versions up to this one, already read.
    replaying: Option<u64>,
}

/// An event id as a sortable pair.
fn event_id(id: &str) -> (u64, u64) {
    let (ms, n) = id.split_once('-').unwrap_or((id, "0"));
    (ms.parse().unwrap_or(0), n.parse().unwrap_or(0))
}

/// Reads from one node until it fails, or — with `until` — until it has
/// read past that id; `true` then. (Heartbeats keep the stream growing, so
/// "nothing more" never comes by itself.)
async fn read_live(addr: &str, live: &Mutex<LiveReader>, until: Option<&str>) -> bool {
    let token = common::token("acme", "ad1");
    loop {
        let after = live.lock().unwrap().after.clone();
        if until.is_some_and(|u| {
            !after.is_empty() && !after.starts_with('@') && event_id(&after) >= event_id(u)
        }) {
            return true;
        }
        // After a lost place, `after` is `@<ms>`: read again from that time.
        let path = match after.strip_prefix('@') {
            Some(ms) => format!("/api/v1/events?limit=1000&wait_ms=500&from_ms={ms}"),
            None => format!("/api/v1/events?limit=1000&wait_ms=500&after={after}"),
        };
        let page = common::http::try_request(addr, "GET", &path, Some(&token), "", None).await;
        let body = match page {
            Ok((200, body)) => body,
            Ok((404, body)) if body.to_string().contains("is not in the stream") => {
                // Read from a master a failover replaced: read again from
                // a minute earlier, as EVENTS.md tells a consumer to.
                let mut live = live.lock().unwrap();
                let (ms, _) = event_id(&live.after);
                live.after = format!("@{}", ms.saturating_sub(60_000));
                live.replaying = live
                    .events
                    .iter()
                    .rev()
                    .find(|e| e["type"] != "heartbeat")
                    .map(|e| common::u64_of(&e["version"]));
                continue;
            }
            // A node down, frozen or waiting for Redis: try another.
            _ => return false,
        };
        let events = body["events"].as_array().cloned().unwrap_or_default();
        if events.is_empty() && until.is_some() {
            return true;
        }
        let mut live = live.lock().unwrap();
        if let Some(next) = body["next"].as_str() {
            live.after = next.to_string();
        }
        for e in events {
            if e["type"] == "heartbeat" {
                continue;
            }
            if let Some(seen) = live.replaying {
                // Already read before the place was lost (a gap of an
                // earlier failover included): the new gap is above it.
                if common::u64_of(&e["version"]) <= seen {
                    continue;
                }
                live.replaying = None;
            }
            live.events.push(e);
        }
    }
}

/// What a consumer that read the stream live must have seen: each version
/// once, in order — the next version, or a `gap` that says which versions
/// the store lost (some of which the reader may have read before the
/// failover that lost them), then the version after the gap.
fn check_live(events: &[Value]) -> Vec<String> {
    let mut found = Vec::new();
    let mut last: Option<&Value> = None;
    for e in events.iter().filter(|e| e["type"] != "heartbeat") {
        let v = common::u64_of(&e["version"]);
        if let Some(prev) = last {
            let p = common::u64_of(&prev["version"]);
            let ok = if e["type"] == "gap" {
                common::u64_of(&e["from"]) <= p + 1 && v >= p
            } else {
                v == p + 1
            };
            if !ok {
                found.push(format!(
                    "v{v} ({} {}) read after v{p} ({} {})",
                    e["type"], e["id"], prev["type"], prev["id"]
                ));
            }
        }
        last = Some(e);
    }
    found
}

/// The whole event stream, as an admin reads it (`GET /api/v1/events`).
async fn read_events(addr: &str) -> Result<Vec<Value>, String> {
    let token = common::token("acme", "ad1");
    let mut out = Vec::new();
    let mut after = String::new();
    loop {
        let path = format!("/api/v1/events?limit=1000&after={after}");
        let (status, body) =
            common::http::request(addr, "GET", &path, Some(&token), "", None).await;
        if status != 200 {
            return Err(format!("GET {path}: {status} {body}"));
        }
        let events = body["events"].as_array().cloned().unwrap_or_default();
        if events.is_empty() {
            return Ok(out);
        }
        out.extend(events);
        after = body["next"].as_str().unwrap_or("").to_string();
    }
}

/// Invariant 7 over the stream: how many events it checked, and what it
/// found wrong.
fn check_events(
    events: &[Value],
    log: &Log,
    final_records: &BTreeMap<String, Value>,
) -> (u64, Vec<String>) {
    let mut found = Vec::new();
    let version = |e: &Value| common::u64_of(&e["version"]);
    let brief = |e: &Value| {
        format!(
            "{} {} {} of {}",
            e["id"], e["type"], e["event"], e["agent_id"]
        )
    };
    // Versions the stream says it does not have.
    let mut gaps: Vec<(u64, u64)> = Vec::new();
    let mut at: HashMap<(String, u64), &Value> = HashMap::new();
    let mut last_of: HashMap<String, &Value> = HashMap::new();
    let mut before: Option<u64> = None;
    for e in events.iter().filter(|e| e["type"] != "heartbeat") {
        let v = version(e);
        if e["type"] == "gap" {
            let from = common::u64_of(&e["from"]);
            if before.is_some_and(|b| from != b + 1) || from > v {
                found.push(format!(
                    "a gap from v{from} to v{v} after v{before:?}: {}",
                    brief(e)
                ));
            }
            gaps.push((from, v));
            // The records before a gap are not the ones after it.
            last_of.clear();
        } else if let Some(b) = before {
            if v != b + 1 {
                found.push(format!("v{v} follows v{b} with no gap event: {}", brief(e)));
            }
        }
        before = Some(v);
        if e["type"] == "directory" {
            at.insert(("directory".to_string(), v), e);
        }
        if e["type"] != "agent" {
            continue;
        }
        let agent = e["agent_id"].as_str().unwrap_or("").to_string();
        if let Some(previous) = last_of.get(&agent) {
            if &&e["previous"] != previous {
                found.push(format!(
                    "{agent} v{v}: its previous record is not its last event's current"
                ));
            }
        }
        at.insert((agent.clone(), v), e);
        last_of.insert(agent, &e["current"]);
    }
    // Every acknowledged change is there.
    let mut checked = events.len() as u64;
    for r in &log.requests {
        let Outcome::Ok(v) = &r.outcome else { continue };
        checked += 1;
        let in_gap = gaps.iter().any(|(from, to)| (from..=to).contains(&v));
        let restored = log
            .history
            .get(&r.agent)
            .is_some_and(|h| h.range(v + 1..).any(|(_, e)| e["event"] == "restore"));
        // The admin's directory changes (`dir:<user>`) are directory events.
        let key = if r.agent.starts_with("dir:") {
            ("directory".to_string(), *v)
        } else {
            (r.agent.clone(), *v)
        };
        if !at.contains_key(&key) && !in_gap && !restored {
            found.push(format!(
                "[{:>7} ms] {} {} on {}: ok v{v}, not in the event stream",
                r.at_ms, r.who, r.what, r.agent
            ));
        }
    }
    // The stream ends where the records are.
    for (agent, record) in final_records {
        let Some(last) = last_of.get(agent) else {
            continue;
        };
        if version(last) < version(record) && !gaps.iter().any(|(_, to)| *to >= version(record)) {
            found.push(format!(
                "{agent}: the stream's last record is v{}, the store's v{}",
                version(last),
                version(record)
            ));
        } else if version(last) == version(record) && *last != record {
            found.push(format!(
                "{agent} v{}: the stream's record differs from the store's",
                version(record)
            ));
        }
    }
    (checked, found)
}

async fn run_seeds(defaults: &[u64], sentinel: bool) {
    let _one = EXCLUSIVE.lock().await;
    let mut failed = Vec::new();
    let mut summaries = Vec::new();
    let mut dropped = 0;
    for seed in seeds(defaults) {
        let v = run_seed(seed, sentinel, secs()).await;
        summaries.push(v.summary);
        dropped += v.dropped;
        if !v.violations.is_empty() {
            eprintln!("{}", v.violations.join("\n"));
            failed.push(v.violations.join("\n"));
        }
    }
    assert!(
        failed.is_empty(),
        "convergence violated:\n{}\n\nsummaries:\n{}",
        failed.join("\n\n"),
        summaries.join("\n")
    );
    // Else the drop-and-catch-up path this suite promises to run did not.
    assert!(
        dropped > 0,
        "n3's push queue of {TINY_PUSH_QUEUE} dropped no delta in any seed:\n{}",
        summaries.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn convergence_under_node_and_redis_faults() {
    run_seeds(&[1, 2], false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn convergence_under_sentinel_failovers() {
    run_seeds(&[3], true).await;
}
