//! The demo's simulated agents' devices: one WebSocket softphone per
//! simulated agent, as a real agent app connects. Each says `hello`,
//! connects to the agent's assigned channels, beats, takes breaks of its
//! own with the tenant's reason codes (now and then asked for while on a
//! contact: a pending pause), comes back from them (some run over their
//! limit), and mostly accepts monitor requests.
//!
//! Interactions are not theirs: the simulated ACD ([`super::acd`]) offers,
//! answers and ends them, and ends the after-call work, through the
//! integration API. A softphone only sees them arrive in its `state`.

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// One simulated agent: who, its token, the channels it connects to.
pub struct Simulated {
    pub id: String,
    pub token: String,
    pub channels: Vec<Value>,
}

/// The id of the simulated softphone of `agent` (the one device the
/// simulation holds; any other active device is a person, see
/// [`person_present`]).
pub fn softphone(agent: &str) -> String {
    format!("{agent}-softphone")
}

/// Starts each agent's softphone; each reconnects when its connection
/// ends, a second or two later.
pub fn start(url: String, agents: Vec<Simulated>) {
    for agent in agents {
        let url = url.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = run_agent(&url, &agent).await {
                    tracing::debug!(agent = %agent.id, error = %e, "demo agent reconnecting");
                }
                tokio::time::sleep(Duration::from_millis(1000 + rand::random::<u64>() % 2000))
                    .await;
            }
        });
    }
}

pub(super) fn chance(per_second: f64) -> bool {
    rand::random::<f64>() < per_second
}

/// Milliseconds, at random from `min_s` to `max_s` seconds.
pub(super) fn between(min_s: u64, max_s: u64) -> u64 {
    (min_s + rand::random::<u64>() % (max_s.saturating_sub(min_s) + 1)) * 1000
}

/// The pause reasons an agent picks from: the tenant's codes (`welcome`'s
/// settings) except the one sign-in uses, else a free text.
fn break_reasons(settings: &Value) -> Vec<String> {
    let sign_in = settings["sign_in_reason"].as_str().unwrap_or("signed_in");
    let codes: Vec<String> = settings["pause_reasons"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|r| r["code"].as_str())
                .filter(|c| *c != sign_in)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if codes.is_empty() {
        vec!["break".to_string()]
    } else {
        codes
    }
}

/// One agent app's session, until its connection ends.
async fn run_agent(url: &str, agent: &Simulated) -> Result<(), String> {
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .map_err(|e| e.to_string())?;
    let own_device = softphone(&agent.id);
    let hello = json!({"type": "hello", "token": agent.token, "role": "agent",
                       "device": {"id": own_device, "kind": "softphone", "label": "Demo softphone"}});
    let send = |v: Value| Message::text(v.to_string());
    ws.send(send(hello)).await.map_err(|e| e.to_string())?;
    for (i, channel) in agent.channels.iter().enumerate() {
        ws.send(send(
            json!({"type": "connect", "id": format!("c{i}"), "channel": channel}),
        ))
        .await
        .map_err(|e| e.to_string())?;
    }
    let mut reasons = break_reasons(&Value::Null);
    let mut me = Value::Null;
    // When the current pause should end (Unix ms), drawn when it begins.
    let mut until = 0u64;
    let mut last_version = 0;
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
                    Some("welcome") => reasons = break_reasons(&v["settings"]),
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
                // A person signed in as this agent drives it: the simulated
                // softphone then only keeps its line alive.
                let status = if person_present(&me, &own_device) { "driven by a person" } else { me["status"].as_str().unwrap_or("offline") };
                if until == 0 && status == "paused" {
                    until = now + between(10, 40);
                }
                let reason = || reasons[rand::random::<u64>() as usize % reasons.len().max(1)].clone();
                let next = match status {
                    "available" if chance(0.01) => {
                        Some(json!({"type": "set_status", "status": "paused", "reason": reason()}))
                    }
                    // A break asked for on a contact: pending until the
                    // contact and its after-call work are over.
                    "busy" if me["pending_pause"].is_null() && chance(0.005) => {
                        Some(json!({"type": "set_status", "status": "paused", "reason": reason()}))
                    }
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
/// clicks are theirs, not the simulation's, and the ACD offers them
/// nothing.
pub fn person_present(me: &Value, own_device: &str) -> bool {
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

    #[test]
    fn breaks_use_the_tenants_codes_but_the_sign_in_one() {
        let settings =
            json!({"pause_reasons": [{"code": "break"}, {"code": "lunch"}, {"code": "signed_in"}]});
        assert_eq!(break_reasons(&settings), ["break", "lunch"]);
        let settings = json!({"sign_in_reason": "lunch", "pause_reasons": [{"code": "break"}, {"code": "lunch"}]});
        assert_eq!(break_reasons(&settings), ["break"]);
        assert_eq!(break_reasons(&json!({})), ["break"]);
    }
}
