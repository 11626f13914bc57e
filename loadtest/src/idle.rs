//! `idle`: N agent devices connected and heartbeating. Reports the
//! connection rate and the hub's memory per connection (RSS after minus
//! before, over N, read from /proc).
//!
//! `--concurrency` is how many handshakes are in flight at once while
//! connecting: by default a storm's, which leaves more memory behind than
//! agents signing in a few at a time (BENCHMARKS.md, "What a storm
//! leaves").
//!
//! With `--workers W` the agents are held by W worker processes (see
//! `workers`, which connect as many at once as a storm does); with
//! `--watch` a supervisor on the first node watches every agent, and with
//! `--changes-per-s R` a few of the N agents, connected to the other nodes
//! when there are several, change status at R/s while the rest are held:
//! the watcher times change → delta (through Redis).

use crate::client;
use crate::target::Target;
use crate::workers::{self, Workers};
use crate::Common;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct Params {
    pub agents: usize,
    pub hold_s: u64,
    pub heartbeat_ms: u64,
    pub workers: usize,
    pub watch: bool,
    pub changes_per_s: u64,
    /// Handshakes in flight at once (held in this process).
    pub concurrency: usize,
}

pub async fn run(p: Params, common: Common) -> Result<Value, String> {
    let agents = p.agents;
    let target = Target::open(&common, agents, 1, &[]).await?;
    // Let the node settle before the baseline.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = target.rss_bytes();
    let urls = target.urls.clone();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let watcher = if p.watch || p.changes_per_s > 0 {
        let ws = target.supervisor(&urls[0], 0, agents, true).await?;
        Some(tokio::spawn(client::watch_deltas(ws, stopped.clone())))
    } else {
        None
    };
    // The agents that change status (the last few), and those only held.
    let drivers = if p.changes_per_s > 0 {
        (agents / 10).clamp(1, 100)
    } else {
        0
    };
    let held = 0..agents - drivers;
    let started = Instant::now();
    let (mut pool, mut sockets, connected, mut errors) = if p.workers > 0 {
        let (pool, reports) = Workers::start(p.workers, &target, held, p.heartbeat_ms).await?;
        let (n, e) = (
            workers::sum(&reports, "connected"),
            workers::sum(&reports, "errors"),
        );
        (Some(pool), Vec::new(), n as usize, e as usize)
    } else {
        let (sockets, e) = workers::connect(&target, held, p.concurrency).await;
        let n = sockets.len();
        (None, sockets, n, e)
    };
    let connect_s = started.elapsed().as_secs_f64();
    let drive_errors = Arc::new(AtomicU64::new(0));
    let mut driving = None;
    if drivers > 0 {
        let mut ws = Vec::new();
        for i in agents - drivers..agents {
            // Away from the watcher's node when there is another: through Redis.
            let url = &urls[if urls.len() > 1 {
                1 + i % (urls.len() - 1)
            } else {
                0
            }];
            ws.push(target.agent(url, i).await?);
        }
        let (rate, hold, errors) = (
            p.changes_per_s,
            Duration::from_secs(p.hold_s),
            drive_errors.clone(),
        );
        driving = Some(tokio::spawn(async move {
            crate::fanout::drive(ws, rate, hold, &errors).await
        }));
    }
    // Heartbeat while holding, like real agents (workers do the same with
    // their share).
    let redis_before = target.redis_counters().await;
    let hold_until = Instant::now() + Duration::from_secs(p.hold_s);
    let (mut heartbeats, failed) = workers::Pacer::new(sockets.len(), p.heartbeat_ms)
        .until(&mut sockets, hold_until)
        .await;
    errors += failed as usize;
    let changes_sent = match driving {
        Some(task) => task.await.unwrap_or(0),
        None => 0,
    };
    // The drivers' connections end with their driving: not counted as held.
    let mut connections = sockets.len();
    if let Some(pool) = pool.as_mut() {
        pool.send("report").await?;
        let reports = pool.collect().await?;
        connections += workers::sum(&reports, "connections") as usize;
        heartbeats += workers::sum(&reports, "heartbeats");
        errors = workers::sum(&reports, "errors") as usize;
    }
    let redis_after = target.redis_counters().await;
    // What the hub itself counts: every agent still connected after the hold.
    let hub_connections = target
        .metric("presence_hub_connections{role=\"agent\"}")
        .await;
    let after = target.rss_bytes();
    let n = connections.max(1) as f64;
    let mut results = json!({
        "connections": connections,
        "drivers": drivers,
        "errors": errors + drive_errors.load(Ordering::Relaxed) as usize,
        "hub_connections": hub_connections,
        "heartbeats_sent": heartbeats,
        "connect_per_s": (connected as f64 / connect_s).round(),
        "rss_bytes_per_connection": ((after.saturating_sub(before)) as f64 / n).round(),
    });
    if let (Some(before), Some(after), 0) = (&redis_before, &redis_after, drivers) {
        // Only heartbeats (and the nodes' own lease renewals) meanwhile:
        // what a heartbeat costs Redis.
        results["redis_per_heartbeat"] = after.per(before, heartbeats);
    }
    if let Some(task) = watcher {
        // Let the last deltas arrive, then stop the watcher.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let _ = stop.send(true);
        let (h, deltas, snapshot) = task.await.map_err(|e| e.to_string())?;
        results["watch"] = json!({
            "snapshot": snapshot,
            "deltas": deltas,
            "changes_sent": changes_sent,
            "latency_ms": crate::report::latency_ms(&h),
        });
    }
    let hub = json!({"rss_bytes": after, "rss_bytes_before": before, "nodes": target.urls.len()});
    let params = json!({"agents": agents, "hold_s": p.hold_s, "heartbeat_ms": p.heartbeat_ms,
        "workers": p.workers, "watch": watcher_on(&p), "changes_per_s": p.changes_per_s,
        "concurrency": if p.workers > 0 { workers::CONCURRENCY } else { p.concurrency }});
    let report = crate::report::make("idle", params, hub, results);
    drop(sockets);
    drop(pool);
    Ok(report)
}

fn watcher_on(p: &Params) -> bool {
    p.watch || p.changes_per_s > 0
}
