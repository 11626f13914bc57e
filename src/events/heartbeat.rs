//! The periodic `heartbeat` events (`--events-heartbeat-s`): every signed-in
//! agent's current record, so a consumer that joined late, or lost its
//! place, learns every agent's state within one period without reading
//! the whole stream — what Amazon Connect's `HEART_BEAT` is for.
//!
//! On a cluster each agent gets one heartbeat per period however many
//! nodes there are: the node holding the agent's first active device sends
//! it. An agent whose node died gets none until the survivors take its
//! devices offline (then it is not signed in any more). The store reads the
//! record itself when it appends (`lua/heartbeat.lua`), so a heartbeat
//! never carries a record older than an event before it.

use crate::domain::Presence;
use crate::hub::Hub;
use std::sync::Arc;
use std::time::Duration;

/// Starts the heartbeats; they stop when the hub drains or is dropped.
pub fn start(hub: &Arc<Hub>) {
    let every = Duration::from_secs(hub.config.events_heartbeat_s);
    if every.is_zero() || hub.config.events_max_len == 0 {
        return;
    }
    let weak = Arc::downgrade(hub);
    let mut shutdown = hub.shutdown_signal();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick is immediate: nothing to say before one period.
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            let Some(hub) = weak.upgrade() else { return };
            beat(&hub).await;
        }
    });
}

/// One round: a heartbeat for each signed-in agent this node speaks for.
pub async fn beat(hub: &Arc<Hub>) {
    for tenant in hub.attached_tenants() {
        let mine: Vec<String> = tenant
            .records_where(|r| {
                r.presence == Presence::Online
                    && r.devices
                        .iter()
                        .find(|d| d.active)
                        .is_some_and(|d| d.node == hub.node_id)
            })
            .iter()
            .map(|r| r.id.clone())
            .collect();
        if mine.is_empty() {
            continue;
        }
        match hub.backplane.heartbeats(tenant.id(), &mine).await {
            Ok(n) => crate::metrics::get().events_heartbeats.increment(n as u64),
            // The next period tries again; heartbeats are not changes.
            Err(e) => tracing::debug!(tenant = tenant.id(), error = %e, "heartbeats not appended"),
        }
    }
}
