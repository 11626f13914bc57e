//! `fanout`: agents change status at R changes/s while M supervisors watch
//! everything. Every pause carries its send time (µs, one clock) in its
//! reason; each supervisor measures change → delta for every one it gets.

use crate::client;
use crate::report::latency_ms;
use crate::target::{agent_id, supervisor_id, Target};
use crate::Common;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::json;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

pub async fn run(
    agents: usize,
    supervisors: usize,
    rate: u64,
    duration_s: u64,
    common: Common,
) -> Result<(), String> {
    let target = Target::open(&common, agents, supervisors, &[]).await?;
    let urls = target.urls.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let delivered = Arc::new(AtomicU64::new(0));
    // Supervisors: subscribe to everything, then count and time deltas.
    let mut watchers = Vec::new();
    for i in 0..supervisors {
        let mut ws = client::connect(&urls[i % urls.len()], agents + i).await?;
        client::hello(
            &mut ws,
            &target.token(&supervisor_id(i)),
            "supervisor",
            None,
        )
        .await?;
        ws.send(Message::text(
            json!({"type": "subscribe", "id": "s", "scope": {"all": true}}).to_string(),
        ))
        .await
        .map_err(|e| e.to_string())?;
        let (stop, delivered) = (stop.clone(), delivered.clone());
        watchers.push(tokio::spawn(async move {
            let mut h = Histogram::<u64>::new(3).expect("histogram");
            while !stop.load(Ordering::Relaxed) {
                let next = tokio::time::timeout(Duration::from_millis(200), ws.next()).await;
                let Ok(Some(Ok(Message::Text(t)))) = next else {
                    continue;
                };
                if client::is_delta(&t) {
                    delivered.fetch_add(1, Ordering::Relaxed);
                    if let Some(sent) = client::stamp(&t) {
                        let _ = h.record(client::now_us().saturating_sub(sent));
                    }
                }
            }
            h
        }));
    }
    // Agents: connected, then driven round-robin at the rate.
    let mut drivers = Vec::new();
    for i in 0..agents {
        let mut ws = client::connect(&urls[i % urls.len()], i).await?;
        let id = agent_id(i);
        client::hello(
            &mut ws,
            &target.token(&id),
            "agent",
            Some(&format!("{id}-d")),
        )
        .await?;
        drivers.push(ws);
    }
    let errors = Arc::new(AtomicU64::new(0));
    let sent = drive(&mut drivers, rate, Duration::from_secs(duration_s), &errors).await;
    // Let the last deltas arrive, then stop the watchers.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Histogram::<u64>::new(3).expect("histogram");
    for w in watchers {
        if let Ok(h) = w.await {
            let _ = all.add(h);
        }
    }
    let coalesced = target
        .metric("presence_hub_deltas_coalesced_total")
        .await
        .unwrap_or(0.0);
    let results = json!({
        "changes_sent": sent,
        "delivered": delivered.load(Ordering::Relaxed),
        "delivered_per_s": (delivered.load(Ordering::Relaxed) as f64 / duration_s.max(1) as f64).round(),
        "latency_ms": latency_ms(&all),
        "coalesced": coalesced,
        "errors": errors.load(Ordering::Relaxed),
    });
    let params = json!({"agents": agents, "supervisors": supervisors, "changes_per_s": rate, "duration_s": duration_s});
    let hub = json!({"rss_bytes": target.rss_bytes(), "nodes": target.urls.len()});
    crate::report::emit("fanout", params, hub, results, common.json.as_deref())
}

/// Sends pause / unpause in turn across the agents at `rate` per second;
/// every pause carries its send time. Replies are drained as they come.
async fn drive(
    agents: &mut [client::Ws],
    rate: u64,
    duration: Duration,
    errors: &AtomicU64,
) -> u64 {
    let started = Instant::now();
    let mut sent = 0u64;
    let mut paused = vec![false; agents.len()];
    let interval = Duration::from_secs_f64(1.0 / rate.max(1) as f64);
    let mut next = Instant::now();
    while started.elapsed() < duration {
        let i = (sent as usize) % agents.len();
        let body = if paused[i] {
            "{\"type\":\"set_status\",\"status\":\"available\"}".to_string()
        } else {
            format!(
                "{{\"type\":\"set_status\",\"status\":\"paused\",\"reason\":\"t{}\"}}",
                client::now_us()
            )
        };
        paused[i] = !paused[i];
        if agents[i].send(Message::text(body)).await.is_err() {
            errors.fetch_add(1, Ordering::Relaxed);
        }
        sent += 1;
        // Drain what the agent got back (its own state), without waiting.
        while let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::ZERO, agents[i].next()).await {
            if let Message::Text(t) = m {
                if t.contains("\"type\":\"error\"") {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        next += interval;
        let now = Instant::now();
        if next > now {
            tokio::time::sleep(next - now).await;
        }
    }
    sent
}
