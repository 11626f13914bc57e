//! `idle`: N agent devices connected and heartbeating. Reports the
//! connection rate and the hub's memory per connection (RSS after minus
//! before, over N, read from /proc).

use crate::client;
use crate::target::Target;
use crate::Common;
use futures_util::stream::{self, StreamExt};
use futures_util::SinkExt;
use serde_json::json;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

pub async fn run(
    agents: usize,
    hold_s: u64,
    heartbeat_ms: u64,
    common: Common,
) -> Result<(), String> {
    let target = Target::open(&common, agents, 1, &[]).await?;
    // Let the node settle before the baseline.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = target.rss_bytes();
    let started = Instant::now();
    let urls = target.urls.clone();
    let target_ref = &target;
    let connected: Vec<Result<client::Ws, String>> = stream::iter(0..agents)
        .map(|i| {
            let url = urls[i % urls.len()].clone();
            async move { target_ref.agent(&url, i).await }
        })
        .buffer_unordered(256)
        .collect()
        .await;
    let connect_s = started.elapsed().as_secs_f64();
    let errors = connected.iter().filter(|r| r.is_err()).count();
    if let Some(Err(e)) = connected.iter().find(|r| r.is_err()) {
        eprintln!("first connection error: {e}");
    }
    let mut sockets: Vec<client::Ws> = connected.into_iter().filter_map(Result::ok).collect();
    // Heartbeat while holding, like real agents: each one every
    // `heartbeat_ms`, spread evenly over the period in 50 ms ticks.
    const TICK: Duration = Duration::from_millis(50);
    let per_tick = ((sockets.len() as u64 * TICK.as_millis() as u64).div_ceil(heartbeat_ms.max(1)))
        .max(1) as usize;
    let hold_until = Instant::now() + Duration::from_secs(hold_s);
    let mut ticker = tokio::time::interval(TICK);
    let count = sockets.len();
    let (mut next, mut heartbeats, mut send_errors) = (0usize, 0u64, 0u64);
    while Instant::now() < hold_until && !sockets.is_empty() {
        ticker.tick().await;
        for _ in 0..per_tick {
            let ws = &mut sockets[next];
            next = (next + 1) % count;
            match ws.send(Message::text("{\"type\":\"heartbeat\"}")).await {
                Ok(()) => heartbeats += 1,
                Err(_) => send_errors += 1,
            }
        }
    }
    // What the hub itself counts: every agent still connected after the hold.
    let hub_connections = target
        .metric("presence_hub_connections{role=\"agent\"}")
        .await;
    let after = target.rss_bytes();
    let n = sockets.len().max(1) as f64;
    let results = json!({
        "connections": sockets.len(),
        "errors": errors + send_errors as usize,
        "hub_connections": hub_connections,
        "heartbeats_sent": heartbeats,
        "connect_per_s": (sockets.len() as f64 / connect_s).round(),
        "rss_bytes_per_connection": ((after.saturating_sub(before)) as f64 / n).round(),
    });
    let hub = json!({"rss_bytes": after, "rss_bytes_before": before, "nodes": target.urls.len()});
    crate::report::emit(
        "idle",
        json!({"agents": agents, "hold_s": hold_s, "heartbeat_ms": heartbeat_ms}),
        hub,
        results,
        common.json.as_deref(),
    )?;
    drop(sockets);
    Ok(())
}
