//! Commands that need the agent's own client (monitor, stop_monitor).
//!
//! The hub sends `{"type": "command", "command_id", "action", "mode", "supervisor"}`
//! to the agent's connections on this node and waits for the first
//! `command_ack`: the first acceptance wins; when every device has refused,
//! the command is refused; after `command_timeout_ms`, it times out. A
//! command id is unique per node, so a late or forged ack finds nothing.

use super::outbox::Outbox;
use crate::domain::MonitorMode;
use crate::protocol;
use dashmap::DashMap;
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// A device's answer to a command.
#[derive(Clone, Debug)]
pub struct Ack {
    pub ok: bool,
    pub reason: Option<String>,
}

/// How a command ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Accepted,
    Refused(Option<String>),
    TimedOut,
    /// No connected device answers for the agent (on any node).
    Offline,
    /// The store could not carry the command to the owning node.
    Unavailable(String),
}

struct Pending {
    tenant: String,
    agent_id: String,
    tx: mpsc::UnboundedSender<Ack>,
}

pub struct Router {
    node_id: String,
    next: AtomicU64,
    pending: DashMap<String, Pending>,
}

/// A command in flight; dropping it forgets the command.
pub struct InFlight {
    router: Arc<Router>,
    pub command_id: String,
    devices: Vec<Arc<Outbox>>,
    /// Whether the devices are asked for an answer, and so told when the
    /// request ends (`stop_monitor` is only news to them).
    asks: bool,
    /// The request's end was told to the devices.
    ended: bool,
    rx: mpsc::UnboundedReceiver<Ack>,
}

impl Router {
    pub fn new(node_id: &str) -> Self {
        Router {
            node_id: node_id.to_string(),
            next: AtomicU64::new(1),
            pending: DashMap::new(),
        }
    }

    /// Sends `action` to every given connection of one agent.
    pub fn dispatch(
        self: &Arc<Self>,
        tenant: &str,
        agent_id: &str,
        action: &str,
        mode: MonitorMode,
        supervisor: (&str, &str),
        devices: &[Arc<Outbox>],
    ) -> InFlight {
        let command_id = format!(
            "{}-k{}",
            self.node_id,
            self.next.fetch_add(1, Ordering::Relaxed)
        );
        let (tx, rx) = mpsc::unbounded_channel();
        self.pending.insert(
            command_id.clone(),
            Pending {
                tenant: tenant.to_string(),
                agent_id: agent_id.to_string(),
                tx,
            },
        );
        let frame = protocol::frame(
            super::outbox::Kind::Command,
            &json!({
                "type": "command", "command_id": command_id, "action": action,
                "supervisor": {"id": supervisor.0, "name": supervisor.1},
                // Always present (PROTOCOL.md §10.5): `listen` when none was asked.
                "mode": mode,
            }),
        );
        for outbox in devices {
            outbox.push(frame.clone());
        }
        InFlight {
            router: self.clone(),
            command_id,
            devices: devices.to_vec(),
            asks: action == "monitor",
            ended: false,
            rx,
        }
    }

    /// Delivers a device's ack. `false` when no such command awaits an ack
    /// from this agent (unknown, finished, or another agent's).
    pub fn ack(&self, tenant: &str, agent_id: &str, command_id: &str, ack: Ack) -> bool {
        match self.pending.get(command_id) {
            Some(p) if p.tenant == tenant && p.agent_id == agent_id => p.tx.send(ack).is_ok(),
            _ => false,
        }
    }
}

impl InFlight {
    /// Waits for the first acceptance, every refusal, or the timeout.
    pub async fn outcome(mut self, timeout: Duration) -> Outcome {
        let wait = async {
            let mut refusals = 0;
            while let Some(ack) = self.rx.recv().await {
                if ack.ok {
                    return Outcome::Accepted;
                }
                refusals += 1;
                if refusals >= self.devices.len() {
                    return Outcome::Refused(ack.reason);
                }
            }
            Outcome::TimedOut
        };
        let outcome = tokio::time::timeout(timeout, wait)
            .await
            .unwrap_or(Outcome::TimedOut);
        self.end(match outcome {
            Outcome::Accepted => "accepted",
            Outcome::Refused(_) => "refused",
            _ => "timeout",
        });
        outcome
    }

    /// Tells every device the request went to that it ended, and how.
    fn end(&mut self, outcome: &str) {
        if !self.asks || self.ended {
            return;
        }
        self.ended = true;
        // Forgotten first: an answer racing this message is `not_found`.
        self.router.pending.remove(&self.command_id);
        let frame = protocol::frame(
            super::outbox::Kind::Command,
            &json!({"type": "command_ended", "command_id": self.command_id, "outcome": outcome}),
        );
        for outbox in &self.devices {
            outbox.push(frame.clone());
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        // Dropped unanswered: whoever asked stopped waiting.
        self.end("withdrawn");
        self.router.pending.remove(&self.command_id);
    }
}
