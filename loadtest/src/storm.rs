//! `storm`: N agents connected; every one drops abruptly (no close frame)
//! and reconnects at once with the same device id. Reports how long until
//! all are back (`reconnect_s`) and how many offline flaps a supervisor
//! watching everything saw until the reconnect grace had passed (DESIGN.md §8:
//! ≤ 10 s for 50 000, no flap). Agent `i` uses node `i mod K`; the
//! supervisor is on the first node. With `--workers W` the agents are held
//! (and dropped, and reconnected) by W worker processes.

use crate::target::Target;
use crate::workers::{self, Workers};
use crate::Common;
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

pub async fn run(
    agents: usize,
    grace_ms: u64,
    worker_count: usize,
    common: Common,
) -> Result<Value, String> {
    let grace = grace_ms.to_string();
    let target = Target::open(&common, agents, 1, &["--reconnect-grace-ms", &grace]).await?;
    let url = target.urls[0].clone();
    // Read all along by a task of its own: a watcher left unread while
    // 50 000 agents connect fills its socket, and the hub, rightly, drops a
    // client that does not read (`--write-timeout-ms`); what it saw waits
    // here instead.
    let mut watcher = read_all_along(target.supervisor(&url, 0, agents, true).await?);
    let (mut pool, mut first) = (None, Vec::new());
    if worker_count > 0 {
        let (w, reports) = Workers::start(worker_count, &target, 0..agents, 10_000).await?;
        if workers::sum(&reports, "connected") < agents as u64 {
            return Err(format!("connecting: {reports:?}"));
        }
        pool = Some(w);
    } else {
        let (sockets, errors) = workers::connect(&target, 0..agents, workers::CONCURRENCY).await;
        if errors > 0 {
            return Err(format!("connecting: {errors} connections failed"));
        }
        first = sockets;
    }
    // Wait until the watcher has seen everyone online (bounded: a watcher
    // that missed a change would otherwise keep the tool waiting forever).
    let mut online: HashSet<String> = HashSet::new();
    let seen_by = Instant::now() + Duration::from_secs(120);
    while online.len() < agents {
        let v = next_json(&mut watcher, seen_by).await.map_err(|e| {
            let missing: Vec<String> = (0..agents)
                .map(crate::target::agent_id)
                .filter(|id| !online.contains(id))
                .take(5)
                .collect();
            format!(
                "the watcher saw {} of {agents} agents online within 120 s (missing e.g. {missing:?}): {e}",
                online.len()
            )
        })?;
        for r in crate::client::records(&v) {
            if r["presence"] == "online" {
                online.insert(r["id"].as_str().unwrap_or_default().to_string());
            }
        }
    }
    // The storm: every socket dropped at once, then everyone reconnects.
    let dropped_at = Instant::now();
    let (mut again, reconnected) = match pool.as_mut() {
        Some(pool) => {
            pool.send("storm").await?;
            let reports = pool.collect().await?;
            (Vec::new(), workers::sum(&reports, "reconnected") as usize)
        }
        None => {
            drop(std::mem::take(&mut first));
            let (sockets, _) = workers::connect(&target, 0..agents, workers::CONCURRENCY).await;
            let n = sockets.len();
            (sockets, n)
        }
    };
    let reconnect_s = dropped_at.elapsed().as_secs_f64();
    // Count offline deltas until the grace (and a second more) has passed,
    // or until a second after the last agent was back if that is later (an
    // agent back after the grace flaps then), and then what is already on
    // its way (what the hub sent within the window may arrive after it).
    let window =
        Duration::from_millis(grace_ms + 1000).max(dropped_at.elapsed() + Duration::from_secs(1));
    let drained_by = dropped_at + window + Duration::from_secs(30);
    let mut flaps = 0;
    loop {
        let in_window = dropped_at.elapsed() < window;
        let until = if in_window {
            dropped_at + window
        } else {
            (Instant::now() + Duration::from_millis(500)).min(drained_by)
        };
        let v = match next_json(&mut watcher, until).await {
            Ok(v) => v,
            Err(_) if in_window && dropped_at.elapsed() >= window => continue,
            Err(_) => break,
        };
        flaps += crate::client::records(&v)
            .iter()
            .filter(|r| r["presence"] == "offline")
            .count();
    }
    let results = json!({
        "reconnect_s": (reconnect_s * 1000.0).round() / 1000.0,
        "reconnected": reconnected,
        "offline_flaps_seen": flaps,
    });
    let params = json!({"agents": agents, "reconnect_grace_ms": grace_ms, "workers": worker_count});
    let hub = json!({"rss_bytes": target.rss_bytes(), "nodes": target.urls.len()});
    again.clear();
    drop(pool);
    Ok(crate::report::make("storm", params, hub, results))
}

/// What the watcher's reader task hands on: a message, or why it ended.
type Seen = tokio::sync::mpsc::UnboundedReceiver<Result<Value, String>>;

/// Reads `ws` in a task of its own until it ends (pings are answered as it
/// reads), handing on each text message parsed.
fn read_all_along(mut ws: crate::client::Ws) -> Seen {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let seen = match ws.next().await {
                Some(Ok(Message::Text(t))) => serde_json::from_str(&t).map_err(|e| e.to_string()),
                Some(Ok(Message::Close(frame))) => {
                    let _ = tx.send(Err(format!(
                        "the hub closed the watcher's connection: {frame:?}"
                    )));
                    return;
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => {
                    let _ = tx.send(Err(format!("the watcher's connection failed: {e}")));
                    return;
                }
                None => {
                    let _ = tx.send(Err("the watcher's connection closed".into()));
                    return;
                }
            };
            if tx.send(seen).is_err() {
                return;
            }
        }
    });
    rx
}

/// The watcher's next text message, by `until`.
async fn next_json(seen: &mut Seen, until: Instant) -> Result<Value, String> {
    match tokio::time::timeout_at(until.into(), seen.recv()).await {
        Ok(Some(v)) => v,
        Ok(None) => Err("the watcher's reader ended".into()),
        Err(_) => Err("nothing within the wait".into()),
    }
}
