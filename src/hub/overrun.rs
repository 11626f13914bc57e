//! Pause overruns (PROTOCOL.md §10.2): when a pause runs past its code's
//! `max_minutes`, the hub itself marks `pause_overrun_since_ms`.
//!
//! Like wrap-up deadlines, the timer runs on the node that committed the
//! pause, and the event names the pause it is about (its start and reason),
//! so a late or duplicate firing, or one for a pause that already ended,
//! changes nothing. In cluster mode the sweeper marks pauses whose limit
//! passed more than a node TTL ago (their node died before its timer fired).

use super::tenant::Tenant;
use super::Hub;
use crate::clock;
use crate::domain::{pause, Actor, AgentRecord, Event};
use std::sync::Arc;
use std::time::Duration;

impl Hub {
    /// Schedules the overrun mark of the record's pause, if its code has a
    /// limit and the pause is not marked yet.
    pub fn schedule_pause_overrun(self: &Arc<Self>, tenant: &Arc<Tenant>, record: &AgentRecord) {
        if record.pause_overrun_since_ms.is_some() {
            return;
        }
        let Some(at) = pause::overrun_at(record, &tenant.settings()) else {
            return;
        };
        let Some(reason) = record.pause_reason.clone() else {
            return;
        };
        let event = Event::PauseOverrun {
            paused_since_ms: record.status_since_ms,
            reason,
        };
        let (hub, tenant, agent_id) = (self.clone(), tenant.clone(), record.id.clone());
        tokio::spawn(async move {
            // The runtime's clock and the wall clock may disagree by a
            // millisecond: wait until the wall clock has passed the limit.
            while clock::now_ms() < at {
                let left = at.saturating_sub(clock::now_ms()) + 1;
                tokio::time::sleep(Duration::from_millis(left)).await;
            }
            if let Err(e) = hub
                .change(&tenant, &agent_id, &Actor::system(), &event, |_| Ok(()))
                .await
            {
                tracing::warn!(tenant = tenant.id(), agent = %agent_id, error = %e, "pause overrun not marked");
            }
        });
    }
}

/// Marks pauses whose limit passed more than a node TTL ago without a mark
/// (the node whose timer should have done it is gone). Cluster sweeper.
pub(super) async fn mark_overdue_pauses(hub: &Arc<Hub>, tenant: &Arc<Tenant>) {
    let now = clock::now_ms();
    let settings = tenant.settings();
    // Paused agents not yet marked: the few the sweep looks at.
    let candidates = tenant.records_where(|r| {
        r.pause_overrun_since_ms.is_none() && pause::overrun_at(r, &settings).is_some()
    });
    for record in candidates {
        let (Some(at), Some(reason)) = (
            pause::overrun_at(&record, &settings),
            record.pause_reason.clone(),
        ) else {
            continue;
        };
        if at + hub.config.node_ttl_ms < now {
            let event = Event::PauseOverrun {
                paused_since_ms: record.status_since_ms,
                reason,
            };
            let _ = hub
                .change(tenant, &record.id, &Actor::system(), &event, |_| Ok(()))
                .await;
        }
    }
}
