//! `ceiling`: a bare tokio-tungstenite server that broadcasts the same
//! pre-serialized frame to M clients at R frames/s — no hub logic at all.
//! Its delivered rate is the physical ceiling of this machine that the
//! hub's fan-out is compared with (DESIGN.md §8: ≥ 70 %).

use crate::report::latency_ms;
use futures_util::SinkExt;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// Writes everything broadcast to one client: all that is queued fed at
/// once, then one flush (the same batching as the hub's writer). A client
/// that falls more than the channel behind skips what it lost.
pub async fn feed(
    mut ws: tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    mut rx: broadcast::Receiver<Utf8Bytes>,
) {
    loop {
        let first = match rx.recv().await {
            Ok(frame) => frame,
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(_) => return,
        };
        if ws.feed(Message::Text(first)).await.is_err() {
            return;
        }
        while let Ok(frame) = rx.try_recv() {
            if ws.feed(Message::Text(frame)).await.is_err() {
                return;
            }
        }
        if ws.flush().await.is_err() {
            return;
        }
    }
}

pub async fn run(
    supervisors: usize,
    rate: u64,
    duration_s: u64,
    frame_bytes: usize,
) -> Result<Value, String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let (tx, _) = broadcast::channel::<Utf8Bytes>(1024);
    let server_tx = tx.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true); // as the hub does
            let rx = server_tx.subscribe();
            tokio::spawn(async move {
                if let Ok(ws) = tokio_tungstenite::accept_async(stream).await {
                    feed(ws, rx).await;
                }
            });
        }
    });
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let delivered = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::new();
    for _ in 0..supervisors {
        let ws = crate::client::connect(&format!("ws://{addr}/"), clients.len()).await?;
        let watch = crate::client::time_deltas(ws, stopped.clone(), delivered.clone());
        clients.push(tokio::spawn(watch));
    }
    while tx.receiver_count() < supervisors {
        tokio::task::yield_now().await;
    }
    let padding = "x".repeat(frame_bytes.saturating_sub(60));
    let started = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / rate.max(1) as f64);
    let mut next = Instant::now();
    let mut sent = 0u64;
    while started.elapsed() < Duration::from_secs(duration_s) {
        let frame = format!(
            "{{\"type\":\"agent\",\"agent\":{{\"pause_reason\":\"t{}\",\"p\":\"{padding}\"}}}}",
            crate::client::now_us()
        );
        let _ = tx.send(Utf8Bytes::from(frame));
        sent += 1;
        next += interval;
        let now = Instant::now();
        if next > now {
            tokio::time::sleep(next - now).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = stop.send(true);
    let all = crate::report::merged(clients).await;
    let delivered = delivered.load(Ordering::Relaxed);
    let results = json!({
        "frames_sent": sent,
        "delivered": delivered,
        "delivered_per_s": (delivered as f64 / duration_s.max(1) as f64).round(),
        "latency_ms": latency_ms(&all),
    });
    let params = json!({"supervisors": supervisors, "frames_per_s": rate, "duration_s": duration_s, "frame_bytes": frame_bytes});
    Ok(crate::report::make(
        "ceiling",
        params,
        json!({"rss_bytes": 0, "nodes": 0}),
        results,
    ))
}
