//! `commands`: supervisors on node 0 monitor agents whose devices are on
//! another node (node 1 when K ≥ 2); the tool's agents accept every monitor
//! request. Reports the round trip of `monitor` (request → reply, the agent's
//! ack included) and of `stop_monitor`.

use crate::report::latency_ms;
use crate::target::{agent_id, Target};
use crate::Common;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

pub async fn run(
    agents: usize,
    supervisors: usize,
    rounds: usize,
    common: Common,
) -> Result<Value, String> {
    let target = Target::open(&common, agents, supervisors, &[]).await?;
    let urls = target.urls.clone();
    let agent_node = &urls[1 % urls.len()];
    // Agents that accept every command.
    let mut acks = Vec::new();
    for i in 0..agents {
        let mut ws = target.agent(agent_node, i).await?;
        acks.push(tokio::spawn(async move {
            while let Some(Ok(m)) = ws.next().await {
                let Message::Text(t) = m else { continue };
                if !t.starts_with("{\"type\":\"command\"") && !t.contains("\"type\":\"command\"") {
                    continue;
                }
                let Ok(v) = serde_json::from_str::<Value>(&t) else {
                    continue;
                };
                if v["type"] == "command" {
                    let ack =
                        json!({"type": "command_ack", "command_id": v["command_id"], "ok": true});
                    if ws.send(Message::text(ack.to_string())).await.is_err() {
                        break;
                    }
                }
            }
        }));
    }
    // Supervisors: each monitors and releases its share of the agents, in turn.
    let mut runs = Vec::new();
    for s in 0..supervisors {
        let mut ws = target.supervisor(&urls[0], s, agents + s, false).await?;
        let mine: Vec<String> = (0..agents)
            .filter(|i| i % supervisors == s)
            .map(agent_id)
            .collect();
        runs.push(tokio::spawn(async move {
            let mut monitor = crate::report::histogram();
            let mut stop = crate::report::histogram();
            let mut errors = 0u64;
            let mut n = 0u64;
            for _ in 0..rounds {
                for agent in &mine {
                    for (action, h) in [("monitor", &mut monitor), ("stop_monitor", &mut stop)] {
                        n += 1;
                        let id = format!("c{n}");
                        let body = json!({"type": "command", "id": id, "action": action, "agent_id": agent});
                        let sent = Instant::now();
                        if ws.send(Message::text(body.to_string())).await.is_err() {
                            errors += 1;
                            continue;
                        }
                        let reply = tokio::time::timeout(Duration::from_secs(10), async {
                            while let Some(Ok(m)) = ws.next().await {
                                if let Message::Text(t) = m {
                                    if t.contains(&format!("\"id\":\"{id}\"")) {
                                        return Some(t);
                                    }
                                }
                            }
                            None
                        })
                        .await;
                        match reply {
                            Ok(Some(t)) if t.contains("\"ok\":true") => {
                                let _ = h.record(sent.elapsed().as_micros() as u64);
                            }
                            _ => errors += 1,
                        }
                    }
                }
            }
            (monitor, stop, errors)
        }));
    }
    let mut monitor = crate::report::histogram();
    let mut stop = crate::report::histogram();
    let mut errors = 0;
    for r in runs {
        let (m, s, e) = r.await.map_err(|e| e.to_string())?;
        let _ = monitor.add(m);
        let _ = stop.add(s);
        errors += e;
    }
    for a in acks {
        a.abort();
    }
    let results = json!({
        "latency_ms": latency_ms(&monitor),
        "stop_monitor_latency_ms": latency_ms(&stop),
        "cross_node": urls.len() > 1,
        "errors": errors,
    });
    let params = json!({"agents": agents, "supervisors": supervisors, "rounds": rounds, "nodes": urls.len()});
    let hub = json!({"rss_bytes": target.rss_bytes(), "nodes": urls.len()});
    Ok(crate::report::make("commands", params, hub, results))
}
