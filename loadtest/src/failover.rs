//! `failover`: K nodes over Redis, agents spread over nodes 1..K, one
//! supervisor on every node but node 1; then `kill -9` of node 1. Reports
//! how long until every surviving node shows all of node 1's agents
//! offline (DESIGN.md §8: ≤ node TTL + 1 s).

use crate::client;
use crate::target::{agent_id, Target};
use crate::Common;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

pub async fn run(agents: usize, node_ttl_ms: u64, common: Common) -> Result<Value, String> {
    if !common.spawn || common.nodes < 2 {
        return Err("failover needs --spawn and --nodes 2 or more".into());
    }
    let ttl = node_ttl_ms.to_string();
    let mut target = Target::open(&common, agents, common.nodes, &["--node-ttl-ms", &ttl]).await?;
    let urls = target.urls.clone();
    let k = urls.len();
    // Agent i sits on node 1 + i % (k - 1): node 1 holds every (k-1)th agent.
    let on_victim: HashSet<String> = (0..agents)
        .filter(|i| i % (k - 1) == 0)
        .map(agent_id)
        .collect();
    let (killed_tx, killed_rx) = watch::channel::<Option<Instant>>(None);
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut watchers = Vec::new();
    for (n, url) in urls.iter().enumerate().filter(|(n, _)| *n != 1) {
        let ws = target.supervisor(url, n, agents + n, true).await?;
        let (victims, killed, ready) = (on_victim.clone(), killed_rx.clone(), ready_tx.clone());
        watchers.push(tokio::spawn(watch_node(ws, victims, agents, ready, killed)));
    }
    let mut sockets = Vec::new();
    for i in 0..agents {
        let node = 1 + i % (k - 1);
        let ws = target.agent(&urls[node], i).await?;
        sockets.push(ws);
    }
    // The agents beat until the end.
    let beat = tokio::spawn(async move {
        loop {
            for ws in sockets.iter_mut() {
                let _ = ws.send(Message::text("{\"type\":\"heartbeat\"}")).await;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    // Kill only once every surviving node shows every agent online.
    for _ in 0..watchers.len() {
        tokio::time::timeout(Duration::from_secs(60), ready_rx.recv())
            .await
            .map_err(|_| "agents never all online on every node")?;
    }
    target.kill(1).await;
    let _ = killed_tx.send(Some(Instant::now()));
    let mut per_node = Vec::new();
    for w in watchers {
        per_node.push(w.await.map_err(|e| e.to_string())??);
    }
    beat.abort();
    let worst = per_node.iter().copied().fold(0.0f64, f64::max);
    let results = json!({
        "offline_after_ms": worst,
        "per_surviving_node_ms": per_node,
        "agents_on_killed_node": on_victim.len(),
        "within_target": worst <= (node_ttl_ms + 1000) as f64,
    });
    let params = json!({"agents": agents, "nodes": k, "node_ttl_ms": node_ttl_ms});
    let hub = json!({"rss_bytes": target.rss_bytes(), "nodes": k});
    Ok(crate::report::make("failover", params, hub, results))
}

/// Follows one surviving node: says when all `agents` are online, then
/// returns the ms from the kill until all victims are offline there.
async fn watch_node(
    mut ws: client::Ws,
    victims: HashSet<String>,
    agents: usize,
    ready: tokio::sync::mpsc::UnboundedSender<()>,
    mut killed: watch::Receiver<Option<Instant>>,
) -> Result<f64, String> {
    let mut online: HashSet<String> = HashSet::new();
    let mut told_ready = false;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if !told_ready && online.len() == agents {
            told_ready = true;
            let _ = ready.send(());
        }
        let at = *killed.borrow();
        if let Some(at) = at {
            if online.is_disjoint(&victims) {
                return Ok(at.elapsed().as_secs_f64() * 1000.0);
            }
        }
        if Instant::now() > deadline {
            return Err("victims never all offline".into());
        }
        let message = tokio::select! {
            m = ws.next() => m,
            _ = killed.changed() => continue,
        };
        let Some(Ok(Message::Text(t))) = message else {
            continue;
        };
        let Ok(v) = serde_json::from_str::<Value>(&t) else {
            continue;
        };
        let records = crate::client::records(&v);
        for r in records {
            let id = r["id"].as_str().unwrap_or_default().to_string();
            if r["presence"] == "online" {
                online.insert(id);
            } else {
                online.remove(&id);
            }
        }
    }
}
