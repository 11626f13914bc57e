//! The demo (`--demo`, on by default with the built-in directory in memory):
//! simulated agents that connect to this node like real agent apps do — one
//! WebSocket per softphone — connect to their queues, take calls and
//! several chats at once (up to their free slots), wrap up, take breaks with
//! the tenant's reason codes (some run over), and accept monitor requests,
//! so a fresh `cargo run --release` shows a live wallboard.
//!
//! People trying the hub get agents of their own: the first
//! [`LEFT_TO_PEOPLE`] agents of the tenant (Ana Souza, a1, and Bruno
//! Costa, a2, in the built-in directory — the ones the README, the client
//! library's examples and the banner's agent link use) are never
//! simulated, so what those examples show is what happens, however the
//! simulation stands. And a simulated agent that a person signs in as on
//! any other device (the agent page, a softphone of their own, a script)
//! is left to that person while it is active: its simulated softphone only
//! beats.

use crate::directory::TenantDirectory;
use crate::domain::{ChannelKind, Role};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// How many of the tenant's agents, first in the directory, the demo
/// leaves to people (see the module docs).
pub const LEFT_TO_PEOPLE: usize = 2;

/// Starts one simulated agent per agent of the tenant, except the first
/// [`LEFT_TO_PEOPLE`]. `token` mints a token for a user id.
pub fn start(
    addr: SocketAddr,
    tenant: Arc<TenantDirectory>,
    token: impl Fn(&str) -> Option<String>,
) {
    let url = format!("ws://{addr}/v1/ws");
    for user in tenant
        .users
        .iter()
        .filter(|u| u.has_role(Role::Agent))
        .skip(LEFT_TO_PEOPLE)
    {
        let Some(token) = token(&user.id) else {
            continue;
        };
        let channels: Vec<Value> = tenant
            .channels
            .iter()
            .filter(|c| c.assigned.contains(&user.id))
            .map(|c| json!({"kind": c.kind, "id": c.id}))
            .collect();
        let (url, id) = (url.clone(), user.id.clone());
        tokio::spawn(async move {
            loop {
                if let Err(e) = run_agent(&url, &token, &id, &channels).await {
                    tracing::debug!(agent = %id, error = %e, "demo agent reconnecting");
                }
                tokio::time::sleep(Duration::from_millis(1000 + rand::random::<u64>() % 2000))
                    .await;
            }
        });
    }
}

fn chance(per_second: f64) -> bool {
    rand::random::<f64>() < per_second
}

fn between(min_s: u64, max_s: u64) -> u64 {
    (min_s + rand::random::<u64>() % (max_s - min_s + 1)) * 1000
}

/// One agent app's session, until its connection ends.
async fn run_agent(url: &str, token: &str, id: &str, channels: &[Value]) -> Result<(), String> {
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .map_err(|e| e.to_string())?;
    let own_device = format!("{id}-softphone");
    let hello = json!({"type": "hello", "token": token, "role": "agent",
                       "device": {"id": own_device, "kind": "softphone", "label": "Demo softphone"}});
    let send = |v: Value| Message::text(v.to_string());
    ws.send(send(hello)).await.map_err(|e| e.to_string())?;
    for (i, channel) in channels.iter().enumerate() {
        ws.send(send(
            json!({"type": "connect", "id": format!("c{i}"), "channel": channel}),
        ))
        .await
        .map_err(|e| e.to_string())?;
    }
    let mut me = Value::Null;
    // When the current state should end (Unix ms), drawn when it begins.
    let mut until = 0u64;
    let mut last_version = 0;
    let mut n = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(1000));
    loop {
        tokio::select! {
            message = ws.next() => {
                let text = match message {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(_))) | None => return Ok(()),
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => return Err(e.to_string()),
                };
                let Ok(v) = serde_json::from_str::<Value>(&text) else { continue };
                match v["type"].as_str() {
                    Some("state") => {
                        let version = v["agent"]["version"].as_u64().unwrap_or(0);
                        if version > last_version {
                            if v["agent"]["status"] != me["status"] {
                                until = 0; // a new state: draw its length on the next tick
                            }
                            last_version = version;
                            me = v["agent"].clone();
                        }
                    }
                    Some("command") => {
                        // Agents mostly accept being monitored.
                        let ok = v["action"] != "monitor" || (chance(0.9) && !person_present(&me, &own_device));
                        let ack = json!({"type": "command_ack", "command_id": v["command_id"], "ok": ok,
                                         "reason": if ok { Value::Null } else { json!("on a private call") }});
                        ws.send(send(ack)).await.map_err(|e| e.to_string())?;
                    }
                    _ => {}
                }
            }
            _ = tick.tick() => {
                let now = crate::clock::now_ms();
                n += 1;
                // A person signed in as this agent drives it: the simulated
                // softphone then only keeps its line alive.
                let status = if person_present(&me, &own_device) { "driven by a person" } else { me["status"].as_str().unwrap_or("offline") };
                if until == 0 {
                    until = now + match status {
                        "busy" => between(8, 30),
                        "wrap_up" => between(3, 12),
                        "paused" => between(10, 40),
                        _ => 0,
                    };
                }
                let next = match status {
                    "available" if chance(0.06) => {
                        let connected: Vec<&Value> = me["channels"].as_array().map(|c| c.iter().filter(|c| c["connected"] == true).collect()).unwrap_or_default();
                        connected.get(rand::random::<u64>() as usize % connected.len().max(1)).map(|c| {
                            let kind = c["kind"].as_str().unwrap_or("queue");
                            let prefix = if kind == ChannelKind::Chat.as_str() { "chat" } else { "call" };
                            json!({"type": "interaction_start", "interaction_id": format!("{prefix}-{id}-{n}"),
                                   "channel": {"kind": c["kind"], "id": c["id"]}})
                        })
                    }
                    "available" if chance(0.02) => {
                        let reasons = ["break", "lunch", "training", "meeting"];
                        Some(json!({"type": "set_status", "status": "paused", "reason": reasons[rand::random::<u64>() as usize % reasons.len()]}))
                    }
                    // Multi-chat: another chat while a chat slot is free.
                    "busy" if now < until && me["free_slots"]["chat"].as_u64().unwrap_or(0) > 0 && chance(0.1) => {
                        let web = me["channels"].as_array().and_then(|c| c.iter().find(|c| c["kind"] == "chat" && c["connected"] == true).cloned());
                        web.map(|c| json!({"type": "interaction_start", "interaction_id": format!("chat-{id}-{n}"),
                                           "channel": {"kind": c["kind"], "id": c["id"]}}))
                    }
                    "busy" if now >= until => {
                        if me["interactions"].as_array().is_some_and(|i| i.len() > 1) {
                            until = 0; // the other chats go on a while
                        }
                        Some(json!({"type": "interaction_end", "interaction_id": me["interaction"]["id"]}))
                    }
                    "wrap_up" if now >= until => Some(json!({"type": "end_wrap_up"})),
                    "paused" if now >= until => Some(json!({"type": "set_status", "status": "available"})),
                    _ => None,
                };
                let beat = next.unwrap_or_else(|| json!({"type": "heartbeat"}));
                ws.send(send(beat)).await.map_err(|e| e.to_string())?;
            }
        }
    }
}

/// Whether a person signed in as this agent (a device other than the
/// simulation's own is active, whatever its kind): their answers and
/// clicks are theirs, not the simulation's.
fn person_present(me: &Value, own_device: &str) -> bool {
    me["devices"].as_array().is_some_and(|d| {
        d.iter()
            .any(|d| d["id"] != own_device && d["active"] == true)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_active_device_but_the_simulations_own_is_a_person() {
        let me = |devices: Value| json!({ "devices": devices });
        let own = "a3-softphone";
        let sim = json!({"id": own, "kind": "softphone", "active": true});
        assert!(!person_present(&me(json!([sim])), own));
        for kind in ["web", "softphone", "desk_phone", "mobile"] {
            let theirs = json!({"id": "mine", "kind": kind, "active": true});
            assert!(person_present(&me(json!([sim, theirs])), own), "{kind}");
        }
        let gone = json!({"id": "mine", "kind": "web", "active": false});
        assert!(!person_present(&me(json!([sim, gone])), own));
        assert!(!person_present(&Value::Null, own));
    }
}
