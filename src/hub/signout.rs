//! Signing an agent out (PROTOCOL.md §10.6): the agent goes offline at once, with
//! no reconnect grace, through the one write path; then every node that
//! holds one of its sockets sends `signed_out` and closes it with 4010.
//!
//! The change comes first: once it is committed every node sees the agent
//! offline, and the closes that follow find their devices already inactive,
//! so the sessions' own clean-close handling changes nothing more.

use super::cluster::NodeMessage;
use super::outbox::Kind;
use super::tenant::Tenant;
use super::Hub;
use crate::domain::{Actor, AgentRecord, Event};
use crate::error::HubResult;
use crate::protocol;
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::Arc;

impl Hub {
    /// Signs `agent_id` out on behalf of `by`; `check` runs against every
    /// record read (permissions). Returns the record after the change.
    pub async fn sign_out(
        self: &Arc<Self>,
        tenant: &Arc<Tenant>,
        agent_id: &str,
        by: &Actor,
        reason: Option<String>,
        check: impl Fn(&AgentRecord) -> HubResult<()>,
    ) -> HubResult<Arc<AgentRecord>> {
        let record = self
            .change(tenant, agent_id, by, &Event::SignOut, check)
            .await?;
        close_local(tenant, agent_id, by, reason.as_deref());
        // Every node the record names holds (or held) a device: the ones
        // with a socket of the agent close it, the others find none.
        let owners: BTreeSet<&str> = record
            .devices
            .iter()
            .map(|d| d.node.as_str())
            .filter(|n| *n != self.node_id)
            .collect();
        for owner in owners {
            let message = NodeMessage::SignOut {
                tenant: tenant.id().to_string(),
                agent: agent_id.to_string(),
                by: by.clone(),
                reason: reason.clone(),
            };
            let Ok(text) = serde_json::to_string(&message) else {
                continue;
            };
            if let Err(e) = self.backplane.send_to_node(owner, &text).await {
                tracing::warn!(tenant = tenant.id(), agent = agent_id, node = owner, error = %e, "sign-out not carried to the owning node");
            }
        }
        Ok(record)
    }
}

/// Sends `signed_out` to this node's connections of the agent and closes
/// them with 4010.
pub(super) fn close_local(tenant: &Tenant, agent_id: &str, by: &Actor, reason: Option<&str>) {
    let frame = protocol::frame(
        Kind::SignedOut,
        &json!({"type": "signed_out", "by": by, "reason": reason}),
    );
    for outbox in tenant.local_connections(agent_id) {
        outbox.close_after(
            frame.clone(),
            protocol::close::SIGNED_OUT,
            "signed out by a supervisor",
        );
    }
}
