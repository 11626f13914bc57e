//! `fanout`: agents change status at R changes/s while M supervisors watch
//! everything. Every pause carries its send time (µs, one clock) in its
//! reason; each supervisor measures change → delta for every one it gets.

use crate::client;
use crate::report::latency_ms;
use crate::target::Target;
use crate::{Common, Load};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

pub async fn run(load: Load, common: Common) -> Result<Value, String> {
    let Load {
        agents,
        supervisors,
        changes_per_s: rate,
        duration_s,
    } = load;
    let target = Target::open(&common, agents, supervisors, &[]).await?;
    let urls = target.urls.clone();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let delivered = Arc::new(AtomicU64::new(0));
    // Supervisors: subscribe to everything, then count and time deltas.
    let mut watchers = Vec::new();
    for i in 0..supervisors {
        let ws = target
            .supervisor(&urls[i % urls.len()], i, agents + i, true)
            .await?;
        let watch = client::time_deltas(ws, stopped.clone(), delivered.clone());
        watchers.push(tokio::spawn(watch));
    }
    // Agents: connected, then driven round-robin at the rate.
    let mut drivers = Vec::new();
    for i in 0..agents {
        let ws = target.agent(&urls[i % urls.len()], i).await?;
        drivers.push(ws);
    }
    let errors = Arc::new(AtomicU64::new(0));
    let redis_before = target.redis_counters().await;
    let sent = drive(drivers, rate, Duration::from_secs(duration_s), &errors).await;
    // Let the last deltas arrive, then stop the watchers.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let redis_after = target.redis_counters().await;
    let _ = stop.send(true);
    let all = crate::report::merged(watchers).await;
    let coalesced = target
        .metric("presence_hub_deltas_coalesced_total")
        .await
        .unwrap_or(0.0);
    let mut results = json!({
        "changes_sent": sent,
        "delivered": delivered.load(Ordering::Relaxed),
        "delivered_per_s": (delivered.load(Ordering::Relaxed) as f64 / duration_s.max(1) as f64).round(),
        "latency_ms": latency_ms(&all),
        "coalesced": coalesced,
        "errors": errors.load(Ordering::Relaxed),
    });
    if let (Some(before), Some(after)) = (redis_before, redis_after) {
        // Through Redis: what each change cost it (every node's share).
        results["redis_per_change"] = after.per(&before, sent);
    }
    let params = json!({"agents": agents, "supervisors": supervisors, "changes_per_s": rate, "duration_s": duration_s});
    let hub = json!({"rss_bytes": target.rss_bytes(), "nodes": target.urls.len()});
    Ok(crate::report::make("fanout", params, hub, results))
}

/// Every agent sends pause / unpause in turn on its own tick (the ticks
/// spread over the period), so the agents together make `rate` changes per
/// second; every pause carries its send time. Each agent's replies are
/// drained by a reader of its own.
pub async fn drive(
    agents: Vec<client::Ws>,
    rate: u64,
    duration: Duration,
    errors: &Arc<AtomicU64>,
) -> u64 {
    let n = agents.len().max(1);
    let period = Duration::from_secs_f64(n as f64 / rate.max(1) as f64);
    let start = tokio::time::Instant::now();
    let sent = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for (i, ws) in agents.into_iter().enumerate() {
        let (mut tx, mut rx) = ws.split();
        let (sent, errors) = (sent.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let reader_errors = errors.clone();
            let reader = tokio::spawn(async move {
                while let Some(Ok(m)) = rx.next().await {
                    if let Message::Text(t) = m {
                        if t.contains("\"type\":\"error\"") {
                            reader_errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            });
            let mut tick =
                tokio::time::interval_at(start + period.mul_f64(i as f64 / n as f64), period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let mut paused = false;
            loop {
                tick.tick().await;
                if start.elapsed() >= duration {
                    break;
                }
                let body = if paused {
                    "{\"type\":\"set_status\",\"status\":\"available\"}".to_string()
                } else {
                    format!(
                        "{{\"type\":\"set_status\",\"status\":\"paused\",\"reason\":\"t{}\"}}",
                        client::now_us()
                    )
                };
                paused = !paused;
                if tx.send(Message::text(body)).await.is_err() {
                    errors.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                sent.fetch_add(1, Ordering::Relaxed);
            }
            // Let the last replies in, then stop reading.
            tokio::time::sleep(Duration::from_millis(200)).await;
            reader.abort();
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    sent.load(Ordering::Relaxed)
}
