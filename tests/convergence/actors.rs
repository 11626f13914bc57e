//! The load: agent devices and supervisors as independent tasks, each with
//! its own seeded PRNG. They act like real clients: heartbeat at the
//! interval `welcome` gives, make random changes without waiting for each
//! reply (the hub answers in its own time, a fault may eat the reply),
//! reconnect when a node dies, and — supervisors — resume with
//! `since_seq` + `epoch` after a drop (PROTOCOL.md §5.1.1).

use crate::cluster::API_WS_RATE_LIMIT_PER_SEC;
use crate::model::{Fragmented, Outcome, Request, Resume, Shared, View};
use crate::rng::Rng;
use crate::wire::{self, Incoming, Ws};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::{sleep_until, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Random changes and client faults.
    Run,
    /// No more changes or client faults; heartbeats and reads go on.
    Quiet,
    /// Actors end.
    Stop,
}

/// Every channel of the test directory.
pub const CHANNELS: [(&str, &str); 5] = [
    ("queue", "sales"),
    ("queue", "billing"),
    ("queue", "support"),
    ("chat", "web"),
    ("campaign", "renewals"),
];

/// What every actor shares: the log, the node URLs, the phase and the
/// counter that makes markers unique.
#[derive(Clone)]
pub struct Ctx {
    pub log: Shared,
    pub urls: Arc<Vec<String>>,
    pub phase: watch::Receiver<Phase>,
    pub unique: Arc<AtomicU64>,
    pub seed: u64,
}

impl Ctx {
    /// A string no other request of the run carries (fixed width and
    /// delimited, so one is never a substring of another).
    fn marker(&self, kind: char) -> String {
        let n = self.unique.fetch_add(1, Ordering::Relaxed);
        format!("{kind}{}-{n:07}-", self.seed)
    }

    fn phase(&self) -> Phase {
        *self.phase.borrow()
    }

    /// Logs a request sent; returns its index.
    fn sent(&self, who: &str, agent: &str, what: String, marker: Option<String>) -> usize {
        let mut log = self.log.lock().unwrap();
        let at_ms = log.ms();
        log.requests.push(Request {
            who: who.to_string(),
            agent: agent.to_string(),
            what,
            marker,
            at_ms,
            outcome: Outcome::Pending,
            replied_unix_ms: None,
        });
        log.requests.len() - 1
    }

    /// Records a reply to request `idx`.
    fn replied(&self, idx: usize, reply: &Value, epoch: Option<&str>, who: &str) {
        let mut log = self.log.lock().unwrap();
        let outcome = if reply["ok"] == true {
            let record = &reply["result"]["agent"];
            log.saw(record, epoch, &format!("reply to {who}"));
            Outcome::Ok(record["version"].as_u64().unwrap_or(0))
        } else {
            Outcome::Refused(
                reply["error"]["code"].as_str().unwrap_or("?").to_string(),
                reply["error"]["message"].as_str().unwrap_or("").to_string(),
            )
        };
        log.requests[idx].outcome = outcome;
        log.requests[idx].replied_unix_ms = Some(crate::model::now_unix_ms());
    }

    /// Records the integration API's reply to request `idx` (`{"id",
    /// "status", "body"}`, docs/API.md "Over one WebSocket").
    fn api_replied(&self, idx: usize, reply: &Value, who: &str) {
        let mut log = self.log.lock().unwrap();
        let body = &reply["body"];
        let outcome = if reply["status"] == 200 {
            log.saw(&body["agent"], None, &format!("reply to {who}"));
            Outcome::Ok(body["agent"]["version"].as_u64().unwrap_or(0))
        } else {
            Outcome::Refused(
                body["error"]["code"].as_str().unwrap_or("?").to_string(),
                body["error"]["message"].as_str().unwrap_or("").to_string(),
            )
        };
        log.requests[idx].outcome = outcome;
        log.requests[idx].replied_unix_ms = Some(crate::model::now_unix_ms());
    }

    fn lost(&self, pending: &mut HashMap<String, usize>) {
        let mut log = self.log.lock().unwrap();
        for (_, idx) in pending.drain() {
            log.requests[idx].outcome = Outcome::Lost;
        }
    }
}

fn channel_json(c: (&str, &str)) -> Value {
    json!({"kind": c.0, "id": c.1})
}

fn is_connected(record: &Value, c: (&str, &str)) -> bool {
    record["channels"].as_array().is_some_and(|l| {
        l.iter()
            .any(|x| x["kind"] == c.0 && x["id"] == c.1 && x["connected"] == true)
    })
}

/// One device of an agent, on its home node.
pub struct DeviceSpec {
    pub agent: String,
    pub device: String,
    pub node: usize,
    /// Heartbeats only, no changes: the device of [`INTEGRATION_AGENT`].
    pub passive: bool,
}

pub async fn device(spec: DeviceSpec, mut ctx: Ctx, mut rng: Rng) {
    let who = format!("{}/{}", spec.agent, spec.device);
    let key = (spec.agent.clone(), spec.device.clone());
    let url = ctx.urls[spec.node].clone();
    let mut n = 0u64;
    let mut first = true;
    loop {
        if ctx.phase() == Phase::Stop {
            return;
        }
        let (mut ws, welcome) = match wire::hello(
            &url,
            &spec.agent,
            "agent",
            Some(&spec.device),
            Duration::from_secs(2),
        )
        .await
        {
            Ok(ok) => ok,
            Err(_) => {
                // Pacing of the reconnect (a node down or frozen).
                tokio::time::sleep(Duration::from_millis(300)).await;
                continue;
            }
        };
        {
            let mut log = ctx.log.lock().unwrap();
            log.connected_devices.insert(key.clone());
            let now = crate::model::now_unix_ms();
            if let Some(gap) = log
                .device_gaps
                .iter_mut()
                .rev()
                .find(|(k, _, end)| *k == key && end.is_none())
            {
                gap.2 = Some(now);
            }
            if !first {
                log.event(format!("{who} reconnected to node {}", spec.node));
            }
        }
        first = false;
        let beat = Duration::from_millis(welcome["heartbeat_interval_ms"].as_u64().unwrap_or(1000));
        let mut state = Value::Null;
        let mut pending: HashMap<String, usize> = HashMap::new();
        let mut next_beat = Instant::now() + beat;
        let mut next_act = Instant::now() + rng.ms(300, 2000);
        let closed = loop {
            let running = ctx.phase() == Phase::Run;
            tokio::select! {
                m = wire::next(&mut ws) => match m {
                    Incoming::Msg(v) => match v["type"].as_str() {
                        Some("state") => {
                            state = v["agent"].clone();
                            ctx.log.lock().unwrap().saw(&state, None, &format!("state of {who}"));
                        }
                        Some("reply") => {
                            if let Some(idx) = v["id"].as_str().and_then(|id| pending.remove(id)) {
                                ctx.replied(idx, &v, None, &who);
                            }
                        }
                        _ => {}
                    },
                    Incoming::Closed(code, reason) => break format!("{code} {reason}"),
                },
                _ = sleep_until(next_beat) => {
                    // Any message counts as a heartbeat (§2.4).
                    if !wire::send(&mut ws, &json!({"type": "heartbeat"})).await {
                        break "send failed".to_string();
                    }
                    next_beat += beat;
                }
                _ = sleep_until(next_act), if running && !spec.passive => {
                    next_act = Instant::now() + rng.ms(800, 3000);
                    let (body, what, marker) = agent_action(&state, &mut rng, &ctx);
                    n += 1;
                    let id = format!("{}-{}-{n}", spec.agent, spec.device);
                    let idx = ctx.sent(&who, &spec.agent, what, marker);
                    pending.insert(id.clone(), idx);
                    let mut body = body;
                    body["id"] = json!(id);
                    if !wire::send(&mut ws, &body).await {
                        break "send failed".to_string();
                    }
                }
                changed = ctx.phase.changed() => {
                    if changed.is_err() || ctx.phase() == Phase::Stop {
                        ctx.lost(&mut pending);
                        return;
                    }
                }
            }
        };
        ctx.lost(&mut pending);
        let mut log = ctx.log.lock().unwrap();
        log.connected_devices.remove(&key);
        log.device_gaps
            .push((key.clone(), crate::model::now_unix_ms(), None));
        log.event(format!(
            "{who} lost its connection to node {}: {closed}",
            spec.node
        ));
    }
}

/// A random change fitting the agent's last known state (a stale state
/// only makes a refusal, which is checked like any other).
fn agent_action(state: &Value, rng: &mut Rng, ctx: &Ctx) -> (Value, String, Option<String>) {
    let roll = rng.below(100);
    let toggle = |rng: &mut Rng| {
        let c = *rng.pick(&CHANNELS);
        let kind = if is_connected(state, c) {
            "disconnect"
        } else {
            "connect"
        };
        (
            json!({"type": kind, "channel": channel_json(c)}),
            format!("{kind} {}", c.1),
            None,
        )
    };
    let pause = |ctx: &Ctx| {
        let reason = ctx.marker('P');
        (
            json!({"type": "set_status", "status": "paused", "reason": reason}),
            format!("set_status paused {reason}"),
            Some(reason),
        )
    };
    match state["status"].as_str().unwrap_or("offline") {
        "available" if roll < 35 => pause(ctx),
        "available" if roll < 60 => {
            let id = ctx.marker('I');
            let c = *rng.pick(&CHANNELS);
            (
                json!({"type": "interaction_start", "interaction_id": id, "channel": channel_json(c)}),
                format!("interaction_start {id}"),
                Some(id),
            )
        }
        "paused" if roll < 50 => (
            json!({"type": "set_status", "status": "available"}),
            "set_status available".into(),
            None,
        ),
        "busy" if roll < 55 => {
            let id = state["interaction"]["id"]
                .as_str()
                .unwrap_or("none")
                .to_string();
            (
                json!({"type": "interaction_end", "interaction_id": id}),
                format!("interaction_end {id}"),
                None,
            )
        }
        "busy" | "wrap_up" if roll < 75 => pause(ctx),
        _ => toggle(rng),
    }
}

/// A supervisor: its scope, the channels it acts on, its view (built by
/// the rules only) and the resumes it made.
#[derive(Clone)]
pub struct SupSpec {
    pub name: String,
    pub user: String,
    pub scope: Value,
    pub channels: Vec<(&'static str, &'static str)>,
    pub agents: Vec<String>,
}

#[derive(Default)]
pub struct SupState {
    pub view: View,
    pub resumes: Vec<Resume>,
    /// The node of the current connection, when subscribed.
    pub node: Option<usize>,
    pub connections: u64,
    /// Not reading (a stall): its view lags by design until it reads again,
    /// so the final comparison waits for it.
    pub stalled: bool,
}

pub async fn supervisor(spec: SupSpec, state: Arc<Mutex<SupState>>, mut ctx: Ctx, mut rng: Rng) {
    let who = spec.name.clone();
    let mut n = 0u64;
    let mut node = rng.below(ctx.urls.len() as u64) as usize;
    loop {
        if ctx.phase() == Phase::Stop {
            return;
        }
        let url = ctx.urls[node].clone();
        let Ok((mut ws, welcome)) =
            wire::hello(&url, &spec.user, "supervisor", None, Duration::from_secs(2)).await
        else {
            node = rng.below(ctx.urls.len() as u64) as usize;
            tokio::time::sleep(Duration::from_millis(300)).await;
            continue;
        };
        let conn_no = {
            let mut s = state.lock().unwrap();
            s.connections += 1;
            s.connections
        };
        let conn = format!("{who}#{conn_no}@n{}", node + 1);
        // Subscribe, resuming when a view exists (§5.1.1).
        let mut sub = json!({"type": "subscribe", "id": "sub", "scope": spec.scope.clone()});
        let resume_from = {
            let s = state.lock().unwrap();
            s.view
                .subscribed
                .then(|| (s.view.seq, s.view.epoch.clone()))
        };
        if let Some((since, epoch)) = &resume_from {
            sub["since_seq"] = json!(since);
            if let Some(e) = epoch {
                sub["epoch"] = json!(e);
            }
        }
        let Some((snap, last)) = subscribe(&mut ws, &sub).await else {
            ctx.log
                .lock()
                .unwrap()
                .event(format!("{conn}: subscribe failed"));
            tokio::time::sleep(Duration::from_millis(300)).await;
            continue;
        };
        let epoch = snap["epoch"].as_str().map(str::to_string);
        let mut resume_idx = None;
        {
            let mut log = ctx.log.lock().unwrap();
            let mut s = state.lock().unwrap();
            if let (Some((since, _)), true) = (&resume_from, snap["resumed"] == true) {
                let mut r = Resume {
                    sup: conn.clone(),
                    since: *since,
                    seq: last,
                    epoch: epoch.clone(),
                    ..Resume::default()
                };
                if last < *since {
                    // §5.1.1: a since_seq ahead of the tenant's seq gets a
                    // full snapshot, never a resumed one.
                    log.ordering.push(format!(
                        "{conn}: resumed snapshot with seq {last} below the since_seq {since} it resumed from"
                    ));
                }
                for rec in snap["agents"].as_array().into_iter().flatten() {
                    let v = rec["version"].as_u64().unwrap_or(0);
                    if v <= *since {
                        log.ordering.push(format!(
                            "{conn}: resumed snapshot (since_seq {since}) carries {} v{v}, not newer than since_seq",
                            rec["id"]
                        ));
                    }
                    r.agents
                        .insert(rec["id"].as_str().unwrap_or("").to_string(), v);
                }
                r.agent_ids = snap["agent_ids"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect();
                s.resumes.push(r);
                resume_idx = Some(s.resumes.len() - 1);
            }
            for rec in snap["agents"].as_array().into_iter().flatten() {
                log.saw(rec, epoch.as_deref(), &format!("snapshot of {conn}"));
            }
            s.view.snapshot(&snap);
            s.node = Some(node);
            log.event(format!(
                "{conn}: {} snapshot seq {last}{}",
                if snap["resumed"] == true {
                    "resumed"
                } else {
                    "full"
                },
                resume_from
                    .as_ref()
                    .map(|(since, _)| format!(" (asked since_seq {since})"))
                    .unwrap_or_default()
            ));
        }
        let beat = Duration::from_millis(welcome["heartbeat_interval_ms"].as_u64().unwrap_or(1000));
        // The ordering check (invariant 2): every delta after the snapshot
        // is newer than its seq and than every delta before it.
        let mut last = last;
        let mut last_what = format!("snapshot seq {last}");
        let mut pending: HashMap<String, usize> = HashMap::new();
        let mut next_beat = Instant::now() + beat;
        let mut next_act = Instant::now() + rng.ms(300, 1500);
        let why = loop {
            let running = ctx.phase() == Phase::Run;
            tokio::select! {
                m = wire::next(&mut ws) => match m {
                    Incoming::Msg(v) => {
                        let kind = v["type"].as_str().unwrap_or("");
                        if kind == "agent" || kind == "agent_removed" {
                            let (id, version) = if kind == "agent" {
                                (v["agent"]["id"].as_str().unwrap_or("?"), v["agent"]["version"].as_u64().unwrap_or(0))
                            } else {
                                (v["agent_id"].as_str().unwrap_or("?"), v["version"].as_u64().unwrap_or(0))
                            };
                            let mut log = ctx.log.lock().unwrap();
                            let mut s = state.lock().unwrap();
                            log.deltas_checked += 1;
                            log.last_delta = std::time::Instant::now();
                            if version <= last {
                                let at = log.ms();
                                log.ordering.push(format!(
                                    "[{at:>7} ms] {conn}: {kind} {id} v{version} arrived after {last_what}"
                                ));
                            } else {
                                last = version;
                                last_what = format!("{kind} {id} v{version}");
                            }
                            if kind == "agent" {
                                log.saw(&v["agent"], epoch.as_deref(), &format!("delta to {conn}"));
                                s.view.agent(&v["agent"]);
                            } else {
                                s.view.removed(id, version);
                            }
                            if let Some(r) = resume_idx.and_then(|i| s.resumes.get_mut(i)) {
                                let e = r.later.entry(id.to_string()).or_insert(0);
                                *e = (*e).max(version);
                            }
                        } else if kind == "reply" {
                            if let Some(idx) = v["id"].as_str().and_then(|id| pending.remove(id)) {
                                ctx.replied(idx, &v, epoch.as_deref(), &conn);
                            }
                        } else if kind == "snapshot" {
                            ctx.log.lock().unwrap().ordering.push(format!("{conn}: a second snapshot without a subscribe: {v}"));
                        }
                    }
                    Incoming::Closed(code, reason) => break format!("closed by the hub: {code} {reason}"),
                },
                _ = sleep_until(next_beat) => {
                    if !wire::send(&mut ws, &json!({"type": "heartbeat"})).await {
                        break "send failed".to_string();
                    }
                    next_beat += beat;
                }
                _ = sleep_until(next_act), if running => {
                    next_act = Instant::now() + rng.ms(500, 2000);
                    let roll = rng.below(100);
                    if roll < 70 {
                        n += 1;
                        let id = format!("{who}-{n}");
                        let body = sup_command(&spec, &state, &mut rng, &ctx, &who, &id, &mut pending);
                        if !wire::send(&mut ws, &body).await {
                            break "send failed".to_string();
                        }
                    } else if roll < 80 {
                        // A burst, then the network cut mid-way: the
                        // replies never come; then a resume.
                        let count = 2 + rng.below(4);
                        let mut bodies = Vec::new();
                        for _ in 0..count {
                            n += 1;
                            let id = format!("{who}-{n}");
                            bodies.push(sup_command(&spec, &state, &mut rng, &ctx, &who, &id, &mut pending));
                        }
                        let _ = wire::burst(&mut ws, &bodies).await;
                        let mut log = ctx.log.lock().unwrap();
                        log.client_faults += 1;
                        break format!("dropped abruptly after a burst of {count} commands");
                    } else if roll < 87 {
                        // Stops reading (and speaking) for a while: past the
                        // presence TTL the hub closes it with 4008.
                        let stall = rng.ms(1000, 6000);
                        {
                            let mut log = ctx.log.lock().unwrap();
                            log.client_faults += 1;
                            log.event(format!("{conn}: stops reading for {} ms", stall.as_millis()));
                        }
                        state.lock().unwrap().stalled = true;
                        tokio::time::sleep(stall).await;
                        state.lock().unwrap().stalled = false;
                        // Read first what came meanwhile (a 4008 close, if
                        // the hub gave up on it), then beat.
                        next_beat = Instant::now() + beat / 4;
                    }
                }
                changed = ctx.phase.changed() => {
                    if changed.is_err() || ctx.phase() == Phase::Stop {
                        ctx.lost(&mut pending);
                        return;
                    }
                }
            }
        };
        ctx.lost(&mut pending);
        {
            let mut s = state.lock().unwrap();
            s.node = None;
        }
        ctx.log.lock().unwrap().event(format!("{conn}: {why}"));
        drop(ws);
        // Reconnect to any node (§5.1.1: any node resumes a subscription
        // made on another).
        node = rng.below(ctx.urls.len() as u64) as usize;
    }
}

/// Sends `sub` and waits for its reply and the snapshot; returns the
/// snapshot and its seq.
async fn subscribe(ws: &mut Ws, sub: &Value) -> Option<(Value, u64)> {
    if !wire::send(ws, sub).await {
        return None;
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut replied = false;
    loop {
        match tokio::time::timeout_at(deadline, wire::next(ws)).await {
            Ok(Incoming::Msg(v)) if v["type"] == "reply" && v["id"] == "sub" => {
                if v["ok"] != true {
                    return None;
                }
                replied = true;
            }
            Ok(Incoming::Msg(v)) if v["type"] == "snapshot" && replied => {
                let seq = v["seq"].as_u64().unwrap_or(0);
                return Some((v, seq));
            }
            Ok(Incoming::Msg(_)) => continue,
            _ => return None,
        }
    }
}

/// A random command on an agent of the supervisor's view (or any agent,
/// which may be out of scope: a `forbidden` checked like any refusal).
fn sup_command(
    spec: &SupSpec,
    state: &Arc<Mutex<SupState>>,
    rng: &mut Rng,
    ctx: &Ctx,
    who: &str,
    id: &str,
    pending: &mut HashMap<String, usize>,
) -> Value {
    let (agent, record) = {
        let s = state.lock().unwrap();
        let ids: Vec<&String> = s.view.records.keys().collect();
        if ids.is_empty() || rng.chance(10) {
            (rng.pick(&spec.agents).clone(), Value::Null)
        } else {
            let a = (*rng.pick(&ids)).clone();
            let r = s.view.records[&a].clone();
            (a, r)
        }
    };
    let roll = rng.below(100);
    let (mut body, what, marker) = if record["status"] == "paused" && roll < 50 {
        (
            json!({"type": "command", "action": "unpause", "agent_id": agent}),
            "unpause".to_string(),
            None,
        )
    } else if record["status"] != "paused" && roll < 50 {
        let reason = ctx.marker('S');
        (
            json!({"type": "command", "action": "pause", "agent_id": agent, "reason": reason}),
            format!("pause {reason}"),
            Some(reason),
        )
    } else {
        let c = *rng.pick(&spec.channels);
        let action = if is_connected(&record, c) {
            "disconnect"
        } else {
            "connect"
        };
        (
            json!({"type": "command", "action": action, "agent_id": agent, "channel": channel_json(c)}),
            format!("{action} {}", c.1),
            None,
        )
    };
    body["id"] = json!(id);
    let idx = ctx.sent(who, &agent, format!("command {what}"), marker);
    pending.insert(id.to_string(), idx);
    body
}

/// The scratch agents and queue the admin creates and deletes.
pub const SCRATCH_USERS: [&str; 4] = ["x0", "x1", "x2", "x3"];
const SCRATCH_QUEUE: (&str, &str) = ("queue", "xq");

/// An admin changing the directory while the faults happen (PROTOCOL.md
/// §7.1): scratch agents created and replaced (each request's `name` a
/// unique marker, so a refused one can be looked for), assigned to random
/// channels, deleted; a scratch queue created and deleted (which takes it
/// out of every scratch agent that has it: one change, several versions).
/// One request at a time, each logged with its outcome; the agent of the
/// log entry is `dir:<id>` (no history of its own to check it against:
/// the end of the run compares the directory itself). Now and then a
/// `put_user` goes on a connection of its own, in a frame that breaks RFC
/// 6455 or in too many fragments: refused, held to invariant 4.
pub async fn admin(ctx: Ctx, mut rng: Rng) {
    let mut node = rng.below(ctx.urls.len() as u64) as usize;
    let mut n = 0u64;
    let mut specials = 0u64;
    while let Some((mut ws, url)) = admin_connection(&ctx, &mut rng, &mut node).await {
        while ctx.phase() == Phase::Run {
            tokio::time::sleep(rng.ms(200, 900)).await;
            let user = SCRATCH_USERS[rng.below(SCRATCH_USERS.len() as u64) as usize];
            let (body, target, marker) = match rng.below(10) {
                0 => (
                    json!({"type": "put_channel", "channel": {"kind": SCRATCH_QUEUE.0, "id": SCRATCH_QUEUE.1, "name": "Scratch"}}),
                    "dir:queue xq".to_string(),
                    None,
                ),
                1 => (
                    json!({"type": "delete_channel", "channel": channel_json(SCRATCH_QUEUE)}),
                    "dir:queue xq".to_string(),
                    None,
                ),
                2 | 3 => (
                    json!({"type": "delete_user", "user_id": user}),
                    format!("dir:{user}"),
                    None,
                ),
                _ => {
                    let name = ctx.marker('N');
                    let mut assigned: Vec<Value> = CHANNELS
                        .iter()
                        .filter(|_| rng.below(3) == 0)
                        .map(|c| channel_json(*c))
                        .collect();
                    if rng.below(2) == 0 {
                        assigned.push(channel_json(SCRATCH_QUEUE));
                    }
                    (
                        json!({"type": "put_user", "user": {"id": user, "name": name, "roles": ["agent"], "assigned": assigned}}),
                        format!("dir:{user}"),
                        Some(name),
                    )
                }
            };
            let what = body["type"].as_str().unwrap_or("?").to_string();
            // Now and then a `put_user` on a connection of its own, in a
            // frame that breaks RFC 6455 (closed with 1002 or 1007) or in
            // more fragments than the rate limit leaves room for (dropped
            // and answered `rate_limited`), the three in turn: its marker
            // must never show (PROTOCOL.md §1: nothing applied).
            if marker.is_some() && rng.below(3) == 0 {
                specials += 1;
                let how = match specials % 3 {
                    1 => Special::Fragmented(60 + rng.below(21) as usize),
                    2 => Special::Broken(wire::Broken::ReservedBit),
                    _ => Special::Broken(wire::Broken::NotUtf8),
                };
                let within = Duration::from_secs(5);
                let (idx, outcome) = match how {
                    Special::Broken(how) => {
                        let idx =
                            ctx.sent("ADM", &target, format!("{what} ({how:?} frame)"), marker);
                        let code =
                            wire::broken_request(&url, "ad1", "admin", &body, how, within).await;
                        let outcome = match code {
                            Some(code @ (1002 | 1007)) => {
                                Outcome::Refused(format!("close {code}"), format!("{how:?} frame"))
                            }
                            _ => Outcome::Lost,
                        };
                        (idx, outcome)
                    }
                    Special::Fragmented(fragments) => {
                        let what = format!("{what} (in {fragments} {FRAGMENTS}");
                        let idx = ctx.sent("ADM", &target, what, marker);
                        n += 1;
                        let id = format!("adm{n}");
                        let reply = wire::fragmented_request(
                            &url, "ad1", "admin", body, &id, fragments, within,
                        )
                        .await;
                        if reply.as_ref().is_some_and(|r| r["ok"] == true) {
                            // The bucket refilled meanwhile (the node
                            // frozen between two fragments, say): applied,
                            // and judged as any acknowledged change.
                            ctx.log.lock().unwrap().event(format!(
                                "ADM {id}: a put_user in {fragments} fragments answered ok"
                            ));
                        }
                        (idx, reply_outcome(reply))
                    }
                };
                ctx.log.lock().unwrap().requests[idx].outcome = outcome;
                continue;
            }
            let idx = ctx.sent("ADM", &target, what, marker);
            n += 1;
            let reply =
                wire::request(&mut ws, body, &format!("adm{n}"), Duration::from_secs(5)).await;
            let mut log = ctx.log.lock().unwrap();
            log.requests[idx].outcome = reply_outcome(reply);
            if matches!(log.requests[idx].outcome, Outcome::Lost) {
                drop(log);
                break; // reconnect, perhaps elsewhere
            }
        }
        node = rng.below(ctx.urls.len() as u64) as usize;
    }
}

/// An admin's connection to node `*node`, signed in, and its URL; while
/// that node does not answer, tries another at random. `None` once the
/// run's changes are over.
async fn admin_connection(ctx: &Ctx, rng: &mut Rng, node: &mut usize) -> Option<(Ws, String)> {
    while ctx.phase() == Phase::Run {
        let url = ctx.urls[*node].clone();
        match wire::hello(&url, "ad1", "admin", None, Duration::from_secs(2)).await {
            Ok((ws, _)) => return Some((ws, url)),
            Err(_) => {
                *node = rng.below(ctx.urls.len() as u64) as usize;
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
    }
    None
}

/// How [`overrides`] logs a request that finds the agent as asked.
pub const AS_IT_IS: &str = "(as it is)";

/// An admin setting agents' unassigned-access override while the faults
/// happen, behind Sentinels too: `true` or `null` (the tenant default is
/// `true`, so what an agent may do never changes), half the time to what
/// its last acknowledged request left. Those find nothing to change: an
/// `ok` that stands on the master's record, so with
/// `--redis-wait-replicas` it must be on the replicas like a change's
/// (README, "No acknowledged change lost") — invariant 3 finds its
/// version in the history, or fails. Logged with [`AS_IT_IS`]; a failover
/// that lost an override turns one into a change, judged the same way.
pub async fn overrides(ctx: Ctx, mut rng: Rng, agents: Vec<String>) {
    let mut node = rng.below(ctx.urls.len() as u64) as usize;
    // What each agent's override is after this actor's last acknowledged
    // request (none at the start); forgotten after an unknown outcome.
    let mut held: HashMap<String, Value> =
        agents.iter().map(|a| (a.clone(), Value::Null)).collect();
    let mut n = 0u64;
    while let Some((mut ws, _)) = admin_connection(&ctx, &mut rng, &mut node).await {
        while ctx.phase() == Phase::Run {
            tokio::time::sleep(rng.ms(150, 600)).await;
            let agent = rng.pick(&agents).clone();
            // As it is, or the other of the two, by a coin.
            let allowed = match held.get(&agent) {
                Some(now) if rng.below(2) == 0 => now.clone(),
                Some(Value::Null) => json!(true),
                Some(_) => Value::Null,
                None if rng.below(2) == 0 => json!(true),
                None => Value::Null,
            };
            let as_it_is = held.get(&agent) == Some(&allowed);
            let what = if as_it_is {
                format!("set_unassigned_access {allowed} {AS_IT_IS}")
            } else {
                format!("set_unassigned_access {allowed}")
            };
            let idx = ctx.sent("OVR", &agent, what, None);
            n += 1;
            let body =
                json!({"type": "set_unassigned_access", "agent_id": agent, "allowed": allowed});
            let Some(reply) =
                wire::request(&mut ws, body, &format!("ovr{n}"), Duration::from_secs(5)).await
            else {
                ctx.log.lock().unwrap().requests[idx].outcome = Outcome::Lost;
                held.remove(&agent);
                break; // reconnect, perhaps elsewhere
            };
            ctx.replied(idx, &reply, None, "OVR");
            if reply["ok"] == true {
                let now = &reply["result"]["agent"]["unassigned_access_override"];
                held.insert(agent, now.clone());
            } else if reply["error"]["code"] == "outcome_unknown" {
                held.remove(&agent);
            }
        }
        node = rng.below(ctx.urls.len() as u64) as usize;
    }
}

/// How the admin sends one of its odd `put_user`s.
#[derive(Clone, Copy)]
enum Special {
    /// In a frame that breaks RFC 6455 ([`wire::broken_request`]).
    Broken(wire::Broken),
    /// In this many fragments ([`wire::fragmented_request`]).
    Fragmented(usize),
}

/// How the log names the admin's `put_user`s sent in too many fragments:
/// `put_user (in <n> fragments)`.
const FRAGMENTS: &str = "fragments)";

/// Whether `r` is one of the admin's requests sent in more fragments than
/// the rate limit leaves room for (see [`admin`]).
pub fn in_fragments(r: &Request) -> bool {
    r.who == "ADM" && r.what.ends_with(FRAGMENTS)
}

/// A reply to one of the admin's requests as an outcome (`None`: no reply).
fn reply_outcome(reply: Option<Value>) -> Outcome {
    match reply {
        Some(r) if r["ok"] == true => Outcome::Ok(r["result"]["version"].as_u64().unwrap_or(0)),
        Some(r) => Outcome::Refused(
            r["error"]["code"].as_str().unwrap_or("?").to_string(),
            r["error"]["message"].as_str().unwrap_or("").to_string(),
        ),
        None => Outcome::Lost,
    }
}

/// What the directory must hold for one scratch user after the run, from
/// the admin's requests in order (one at a time): the last acknowledged
/// change decides, unless a later one's outcome is unknown (then either).
/// `Some(Some(name))`: the user with that name; `Some(None)`: no user;
/// `None`: cannot tell.
pub fn expected_scratch(requests: &[Request], user: &str) -> Option<Option<String>> {
    let target = format!("dir:{user}");
    let mut state: Option<Option<String>> = Some(None); // none at the start
    let mut known = true;
    for r in requests.iter().filter(|r| r.agent == target) {
        match (&r.outcome, r.what.as_str()) {
            (Outcome::Ok(_), "put_user") => {
                state = Some(r.marker.clone());
                known = true;
            }
            (Outcome::Ok(_), "delete_user") => {
                state = Some(None);
                known = true;
            }
            (Outcome::Refused(code, _), _) if code != "outcome_unknown" => {}
            _ => known = false,
        }
    }
    if known {
        state
    } else {
        None
    }
}

/// The agent only the integration changes (its device heartbeats and
/// does nothing else; supervisors leave it alone), so that what the hub
/// answers the integration can be judged exactly (invariant 8).
pub const INTEGRATION_AGENT: &str = "a25";

/// The integration's service credential (created at setup by the admin).
pub const INTEGRATION_ID: &str = "acd-conv";

/// The contact center's ACD on the integration WebSocket (`GET
/// /api/v1/ws` with a service key, docs/API.md "Over one WebSocket"): it
/// reports calls of [`INTEGRATION_AGENT`], `answered` then `ended` of a new
/// interaction, **both sent in one write without waiting** — the API
/// answers them one at a time in the order sent, so they apply in that
/// order (invariant 8). The next pair waits for both replies and the
/// agent's one-second wrap-up. Now and then, before a pair, an
/// `answered` of another interaction goes alone, in more fragments than
/// the frame budget, on a WebSocket of its own ([`fragmented_answered`]):
/// refused whole, held to invariant 4. When its node dies or freezes it
/// goes to the next one; what was in flight has an unknown outcome.
pub async fn integration(mut ctx: Ctx, key: String, addrs: Arc<Vec<String>>, mut rng: Rng) {
    let who = "acd";
    let agent = INTEGRATION_AGENT;
    let path = format!("/api/v1/agents/{agent}/interactions");
    let mut n = 0u64;
    let mut node = rng.below(addrs.len() as u64) as usize;
    // A request in too many fragments is due (see below): the first slot
    // is one, so that every run judges one while the cluster is whole.
    let mut owed = true;
    loop {
        if ctx.phase() == Phase::Stop {
            return;
        }
        let Some(mut ws) = wire::api_connect(&addrs[node], &key, Duration::from_secs(2)).await
        else {
            node = (node + 1) % addrs.len();
            tokio::time::sleep(Duration::from_millis(300)).await;
            continue;
        };
        let mut pending: HashMap<String, usize> = HashMap::new();
        let mut next_act = Instant::now() + rng.ms(300, 1000);
        let closed = loop {
            let running = ctx.phase() == Phase::Run;
            tokio::select! {
                m = wire::next(&mut ws) => match m {
                    Incoming::Msg(v) => {
                        if let Some(idx) = v["id"].as_str().and_then(|id| pending.remove(id)) {
                            ctx.api_replied(idx, &v, who);
                        }
                    }
                    Incoming::Closed(code, reason) => break format!("{code} {reason}"),
                },
                _ = sleep_until(next_act), if running && pending.is_empty() => {
                    next_act = Instant::now() + rng.ms(1200, 2500);
                    let mut interaction = ctx.marker('A');
                    let channel = channel_json(*rng.pick(&CHANNELS));
                    n += 1;
                    // The first slot, one in three after it, and the next
                    // when one could not open its connection: first an
                    // `answered` alone, in 40 to 90 frames more than the
                    // budget has room for.
                    if owed || rng.below(3) == 0 {
                        let early = API_WS_RATE_LIMIT_PER_SEC as usize + 40 + rng.below(51) as usize;
                        let oversized = Oversized { n, interaction: &interaction, channel: &channel, early };
                        let alone = fragmented_answered(&ctx, &mut ws, &addrs[node], &key, oversized, &mut pending);
                        match alone.await {
                            // Refused: the slot's pair follows, with an
                            // interaction of its own.
                            Ok(true) if pending.is_empty() => {
                                owed = false;
                                interaction = ctx.marker('A');
                            }
                            // Applied, or no answer: its `ended` sent, the
                            // next pair waits for the reply and the wrap-up.
                            Ok(true) => {
                                owed = false;
                                continue;
                            }
                            // Its connection did not open: nothing sent.
                            Ok(false) => owed = true,
                            Err(why) => break why,
                        }
                    }
                    let (first, second) = (format!("acd-{n}-answered"), format!("acd-{n}-ended"));
                    let answered = ctx.sent(who, agent, format!("answered {interaction}"), Some(interaction.clone()));
                    let ended = ctx.sent(who, agent, format!("ended {interaction}"), None);
                    ctx.log.lock().unwrap().pipelines.push((answered, ended));
                    pending.insert(first.clone(), answered);
                    pending.insert(second.clone(), ended);
                    let frames = [
                        json!({"id": first, "method": "POST", "path": path,
                               "body": {"event": "answered", "interaction_id": interaction, "channel": channel}}),
                        json!({"id": second, "method": "POST", "path": path,
                               "body": {"event": "ended", "interaction_id": interaction}}),
                    ];
                    if !wire::burst(&mut ws, &frames).await {
                        break "send failed".to_string();
                    }
                }
                changed = ctx.phase.changed() => {
                    if changed.is_err() || ctx.phase() == Phase::Stop {
                        ctx.lost(&mut pending);
                        return;
                    }
                }
            }
        };
        ctx.lost(&mut pending);
        ctx.log.lock().unwrap().event(format!(
            "{who} lost its integration WebSocket to {}: {closed}",
            addrs[node]
        ));
        node = (node + 1) % addrs.len();
    }
}

/// How long the integration's request in too many fragments waits, once
/// the hub has read every frame but the last, before it sends the last:
/// ten frames' worth of the budget back, so that only the refusal of an
/// earlier fragment can refuse it (docs/API.md: "even when its last frame
/// comes once the budget is back").
const REFILL: Duration = Duration::from_millis(10_000 / API_WS_RATE_LIMIT_PER_SEC as u64);

/// The integration's request in too many fragments: its slot `n`, the
/// `interaction` it answers on `channel`, and its `early` frames before the
/// last.
struct Oversized<'a> {
    n: u64,
    interaction: &'a str,
    channel: &'a Value,
    early: usize,
}

/// The integration's `answered` of a new `interaction` sent alone, in
/// `early` frames and then a last one once the budget is back, on an
/// integration WebSocket of its own to the node at `addr`
/// ([`wire::api_fragmented_request`]): the pipelined connection `ws` is
/// not spent on it (and not closed with 4008). The early frames are more
/// than `--api-ws-rate-limit-per-sec` ([`API_WS_RATE_LIMIT_PER_SEC`]) has
/// room for, but fewer than twice as many (more refusals than one
/// second's worth would close with 4008), so docs/API.md promises a 429
/// `rate_limited` under its id and nothing applied: the interaction id is
/// its marker, which must then show in no record (invariant 4; nothing
/// else starts interactions of [`INTEGRATION_AGENT`]). The agent's record
/// is read back on `ws` right after the refusal, so the store's state then
/// is judged too, not only what views happen to see. Other answers are
/// judged by `main::check_fragmented`; an `ok` one (the budget back for
/// every fragment, a node frozen between two of them), or one without an
/// answer, is ended on `ws` like a pair's, so the next pairs find the
/// agent free.
///
/// `Ok(false)`: its connection did not open (the store down: the key is
/// checked there), nothing sent. `Err`: `ws` is lost.
async fn fragmented_answered(
    ctx: &Ctx,
    ws: &mut Ws,
    addr: &str,
    key: &str,
    oversized: Oversized<'_>,
    pending: &mut HashMap<String, usize>,
) -> Result<bool, String> {
    let Oversized {
        n,
        interaction,
        channel,
        early,
    } = oversized;
    let (who, agent) = ("acd", INTEGRATION_AGENT);
    let within = Duration::from_secs(5);
    let Some(alone) = wire::api_raw_connect(addr, key, Duration::from_secs(2)).await else {
        return Ok(false);
    };
    let path = format!("/api/v1/agents/{agent}/interactions");
    let id = format!("acd-{n}-fragmented");
    let what = format!("answered {interaction} (in {} fragments)", early + 1);
    let idx = ctx.sent(who, agent, what, Some(interaction.to_string()));
    let request = json!({"id": id, "method": "POST", "path": path,
        "body": {"event": "answered", "interaction_id": interaction, "channel": channel}});
    let got = wire::api_fragmented_request(alone, &request, early + 1, REFILL, within).await;
    let reply = got.map(|g| (g.reply, g.read_within));
    match &reply {
        None => ctx.log.lock().unwrap().requests[idx].outcome = Outcome::Lost,
        Some((r, _)) => ctx.api_replied(idx, r, who),
    }
    ctx.log.lock().unwrap().api_fragmented.push(Fragmented {
        request: idx,
        id: id.clone(),
        early,
        reply: reply.clone(),
    });
    // Its `ended`, on `ws` like a pair's: an interaction left open would
    // hold the agent, and the pairs after it would be refused.
    let end = |pending: &mut HashMap<String, usize>| {
        let end = format!("acd-{n}-ended");
        let idx = ctx.sent(who, agent, format!("ended {interaction}"), None);
        pending.insert(end.clone(), idx);
        json!({"id": end, "method": "POST", "path": path,
            "body": {"event": "ended", "interaction_id": interaction}})
    };
    let Some((reply, read_within)) = reply else {
        // No answer: it may have been applied (a node frozen between two
        // frames, the budget back, then killed).
        return match wire::send(ws, &end(pending)).await {
            true => Ok(true),
            false => Err("send failed".into()),
        };
    };
    if reply["status"] == 200 {
        ctx.log.lock().unwrap().event(format!(
            "{who} {id}: answered ok (its {early} early frames read within {} ms)",
            read_within.as_millis()
        ));
        if !wire::send(ws, &end(pending)).await {
            return Err("send failed".into());
        }
    } else if reply["body"]["error"]["code"] == "rate_limited" {
        let read = json!({"id": format!("acd-{n}-read"), "method": "GET",
            "path": format!("/api/v1/agents/{agent}")});
        let Some(read) = wire::api_request(ws, &read, within).await else {
            return Err(format!("no answer to the read after {id}"));
        };
        // Not 200 when the store does not answer (a fault): the views and
        // the final records judge it then.
        if read["status"] == 200 {
            let source = format!("{who}'s read after {id} was refused");
            let mut log = ctx.log.lock().unwrap();
            log.saw(&read["body"]["agent"], None, &source);
        }
    }
    Ok(true)
}
