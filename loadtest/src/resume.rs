//! `resume`: what a wallboard of N agents costs to (re)load (PROTOCOL.md §5.1.1).
//!
//! A supervisor subscribes to everything and times the full snapshot from
//! sending `subscribe` to its last byte, and counts its bytes. It then drops
//! its connection; while it is away `changed` agents sign in (each a change
//! of its record). It reconnects and resumes with `since_seq` and `epoch`;
//! the tool reports the resumed snapshot's bytes and time, and checks that
//! it names exactly the agents that changed and lists every agent's id.

use crate::target::Target;
use crate::Common;
use futures_util::stream::{self, StreamExt};
use futures_util::SinkExt;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

pub async fn run(agents: usize, changed: usize, common: Common) -> Result<Value, String> {
    if changed > agents {
        return Err("--changed must not exceed --agents".into());
    }
    let target = Target::open(&common, agents, 1, &[]).await?;
    let url = target.urls[0].clone();

    let mut first = target.supervisor(&url, 0, 0, false).await?;
    let (full, full_bytes, full_ms) = snapshot(&mut first, json!({})).await?;
    let full_agents = full["agents"].as_array().map_or(0, Vec::len);
    if full_agents != agents {
        return Err(format!(
            "full snapshot had {full_agents} agents, not {agents}"
        ));
    }
    drop(first);

    // While the wallboard is away, `changed` agents sign in.
    let devices: Vec<_> = stream::iter(0..changed)
        .map(|i| {
            let (url, target) = (&url, &target);
            async move { target.agent(url, i).await }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    if let Some(Err(e)) = devices.iter().find(|r| r.is_err()) {
        return Err(format!("connecting agents: {e}"));
    }

    let mut back = target.supervisor(&url, 0, 1, false).await?;
    let resume = json!({"since_seq": full["seq"], "epoch": full["epoch"]});
    let (resumed, resumed_bytes, resumed_ms) = snapshot(&mut back, resume).await?;
    let records = resumed["agents"].as_array().map_or(0, Vec::len);
    let ids = resumed["agent_ids"].as_array().map_or(0, Vec::len);
    if resumed["resumed"] != true || records != changed || ids != agents {
        return Err(format!(
            "resume: resumed={} with {records} records (want {changed}) and {ids} ids (want {agents})",
            resumed["resumed"]
        ));
    }
    let results = json!({
        "full_snapshot_bytes": full_bytes,
        "full_snapshot_ms": full_ms,
        "resumed_snapshot_bytes": resumed_bytes,
        "resumed_snapshot_ms": resumed_ms,
        "resumed_records": records,
        "resumed_agent_ids": ids,
    });
    let params = json!({"agents": agents, "changed": changed});
    let hub = json!({"rss_bytes": target.rss_bytes(), "nodes": target.urls.len()});
    Ok(crate::report::make("resume", params, hub, results))
}

/// Subscribes to everything (with `extra` fields, e.g. a resume) and reads
/// the snapshot: the parsed message, its size in bytes and the time from
/// sending `subscribe` to having its last byte.
async fn snapshot(ws: &mut crate::client::Ws, extra: Value) -> Result<(Value, usize, f64), String> {
    let mut body = json!({"type": "subscribe", "id": "s", "scope": {"all": true}});
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    let sent = Instant::now();
    ws.send(Message::text(body.to_string()))
        .await
        .map_err(|e| e.to_string())?;
    loop {
        let m = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .map_err(|_| "no snapshot within 30 s".to_string())?;
        let Some(Ok(Message::Text(t))) = m else {
            match m {
                Some(Ok(_)) => continue,
                other => return Err(format!("connection ended: {other:?}")),
            }
        };
        if !t.starts_with(r#"{"type":"snapshot""#) {
            continue;
        }
        let ms = (sent.elapsed().as_secs_f64() * 1e4).round() / 10.0;
        let v: Value = serde_json::from_str(&t).map_err(|e| e.to_string())?;
        return Ok((v, t.len(), ms));
    }
}
