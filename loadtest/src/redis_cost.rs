//! `redis-cost`: what one status change and one agent heartbeat cost the
//! Redis of a cluster, counted by Redis itself.
//!
//! The tool starts the Redis and K nodes (`--spawn --nodes K`, K ≥ 2) and
//! connects the agents (spread over the nodes). Then three windows, each
//! opened with `CONFIG RESETSTAT` and closed by reading `INFO commandstats`
//! (calls per command: those a Lua script runs are counted like any other)
//! and `INFO stats` (`total_net_input_bytes`, `total_net_output_bytes`):
//!
//! 1. quiet: nothing sent for `--quiet-ms`: what the nodes send Redis on
//!    their own (lease renewals, the sweeper's look at the leases), as a
//!    rate per second;
//! 2. changes: `--changes` status changes (pause with a reason, then
//!    available, in turn), each agent waiting for the reply to one before
//!    the next, so every change was committed when the window closes;
//! 3. heartbeats: `--heartbeats` heartbeats, sent with an `id` so each is
//!    answered (PROTOCOL.md §3.4) and counted once the hub has handled it.
//!
//! Reported per change and per heartbeat: the gross figures, broken down by
//! command, and `net`: the gross minus the quiet window's rate over the
//! window's length.

use crate::client::{self, Ws};
use crate::target::{RedisCounters, Target};
use crate::Common;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Map, Value};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

pub struct Params {
    pub agents: usize,
    pub changes: u64,
    pub heartbeats: u64,
    pub quiet_ms: u64,
}

#[derive(Clone, Copy)]
enum Op {
    Change,
    Heartbeat,
}

pub async fn run(p: Params, common: Common) -> Result<Value, String> {
    if !common.spawn || common.nodes < 2 {
        return Err(
            "redis-cost reads the counters of the Redis the tool starts: \
                    give --spawn --nodes K (K ≥ 2)"
                .into(),
        );
    }
    let target = Target::open(&common, p.agents.max(1), 1, &[]).await?;
    let urls = target.urls.clone();
    let mut agents = Vec::new();
    for i in 0..p.agents.max(1) {
        agents.push(target.agent(&urls[i % urls.len()], i).await?);
    }
    // Let the sign-ins' own writes settle before the first window.
    tokio::time::sleep(Duration::from_millis(1000)).await;

    let (quiet, quiet_s, agents) = window(&target, async {
        tokio::time::sleep(Duration::from_millis(p.quiet_ms)).await;
        agents
    })
    .await?;
    let background = quiet.rate(&RedisCounters::zero(), quiet_s);

    let (counters, secs, (agents, change_errors)) =
        window(&target, exchange(agents, p.changes, Op::Change)).await?;
    let per_change = per_unit(&counters, &background, secs, p.changes);

    let (counters, secs, (agents, beat_errors)) =
        window(&target, exchange(agents, p.heartbeats, Op::Heartbeat)).await?;
    let per_heartbeat = per_unit(&counters, &background, secs, p.heartbeats);
    drop(agents);

    let results = json!({
        "per_change": per_change,
        "per_heartbeat": per_heartbeat,
        "background_per_s": background,
        "changes": p.changes,
        "heartbeats": p.heartbeats,
        "errors": change_errors + beat_errors,
    });
    let params = json!({"agents": p.agents, "changes": p.changes, "heartbeats": p.heartbeats,
        "quiet_ms": p.quiet_ms, "nodes": urls.len()});
    let hub = json!({"rss_bytes": target.rss_bytes(), "nodes": urls.len()});
    Ok(crate::report::make("redis-cost", params, hub, results))
}

/// Runs `work` between `CONFIG RESETSTAT` and a read of the counters:
/// the counters, the window's length in seconds, and what `work` returned.
async fn window<T>(
    target: &Target,
    work: impl std::future::Future<Output = T>,
) -> Result<(RedisCounters, f64, T), String> {
    if !target.redis_reset().await {
        return Err("CONFIG RESETSTAT failed on the spawned Redis".into());
    }
    let started = Instant::now();
    let out = work.await;
    // What the last commands published is written out to the nodes within
    // the same event-loop turn; a moment more costs only background.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let counters = target
        .redis_counters()
        .await
        .ok_or("INFO failed on the spawned Redis")?;
    Ok((counters, started.elapsed().as_secs_f64(), out))
}

/// `total` changes or heartbeats, shared out over the agents; each agent
/// sends one, waits for its reply, then the next. The agents back, and
/// the requests not answered `ok`.
async fn exchange(agents: Vec<Ws>, total: u64, op: Op) -> (Vec<Ws>, u64) {
    let n = agents.len().max(1) as u64;
    let mut tasks = Vec::new();
    for (i, mut ws) in agents.into_iter().enumerate() {
        let share = total / n + u64::from((i as u64) < total % n);
        tasks.push(tokio::spawn(async move {
            let mut errors = 0;
            for k in 0..share {
                let id = format!("r{i}-{k}");
                let body = match op {
                    Op::Heartbeat => json!({"type": "heartbeat", "id": id}),
                    // Pause (with a reason, as `fanout` does), then back.
                    Op::Change if k % 2 == 0 => json!({"type": "set_status", "id": id,
                        "status": "paused", "reason": format!("t{}", client::now_us())}),
                    Op::Change => json!({"type": "set_status", "id": id, "status": "available"}),
                };
                if !answered_ok(&mut ws, &id, body).await {
                    errors += 1;
                }
            }
            (ws, errors)
        }));
    }
    let (mut back, mut errors) = (Vec::new(), 0);
    for t in tasks {
        if let Ok((ws, e)) = t.await {
            back.push(ws);
            errors += e;
        }
    }
    (back, errors)
}

/// Sends `body` and reads until the reply to `id`; whether it was `ok`.
async fn answered_ok(ws: &mut Ws, id: &str, body: Value) -> bool {
    if ws.send(Message::text(body.to_string())).await.is_err() {
        return false;
    }
    let needle = format!("\"id\":\"{id}\"");
    let reply = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(m)) = ws.next().await {
            if let Message::Text(t) = m {
                if t.contains("\"type\":\"reply\"") && t.contains(&needle) {
                    return t.contains("\"ok\":true");
                }
            }
        }
        false
    })
    .await;
    reply.unwrap_or(false)
}

/// Per unit: the gross figures (by command) and `net`, the gross minus the
/// background rate over the window.
fn per_unit(counters: &RedisCounters, background: &Value, secs: f64, n: u64) -> Value {
    let mut gross = counters.per(&RedisCounters::zero(), n);
    let units = n.max(1) as f64;
    let round = |x: f64| (x * 1000.0).round() / 1000.0;
    let less = |v: &Value, bg: &Value| {
        let b = bg.as_f64().unwrap_or(0.0) * secs / units;
        round((v.as_f64().unwrap_or(0.0) - b).max(0.0))
    };
    let mut commands = Map::new();
    if let Some(map) = gross["commands"].as_object() {
        for (cmd, v) in map {
            let net = less(v, &background["commands"][cmd]);
            if net > 0.0 {
                commands.insert(cmd.clone(), json!(net));
            }
        }
    }
    let (bytes_in, bytes_out) = (
        less(&gross["bytes_in"], &background["bytes_in"]),
        less(&gross["bytes_out"], &background["bytes_out"]),
    );
    let net = json!({
        "calls": less(&gross["calls"], &background["calls"]),
        "commands": commands,
        "bytes_in": bytes_in,
        "bytes_out": bytes_out,
        "bytes": round(bytes_in + bytes_out),
    });
    gross["net"] = net;
    gross["window_s"] = json!(round(secs));
    gross
}
