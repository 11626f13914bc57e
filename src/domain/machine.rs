//! The agent state machine (SPEC §2): `apply(record, event, context)` returns
//! the next record, `None` when the event changes nothing, or the refusal.
//!
//! `apply` is total and pure: it never panics on any input and never mutates
//! its argument, so a refused event provably changes nothing.

use super::record::*;
use crate::error::{HubError, HubResult};

/// Something that happens to one agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A device's socket is up (hello, reconnect, heartbeat after a lapse).
    DeviceUp {
        device_id: String,
        kind: String,
        label: Option<String>,
        node: String,
    },
    /// A device went inactive; ignored unless it is still active on `node`
    /// (a device that moved to another node in the meantime is left alone).
    DeviceDown {
        device_id: String,
        node: String,
    },
    Pause {
        reason: String,
    },
    Unpause,
    InteractionStart {
        interaction_id: String,
        channel: ChannelRef,
    },
    InteractionEnd {
        interaction_id: String,
    },
    EndWrapUp,
    /// The wrap-up deadline `until_ms` passed. A stale or duplicate firing
    /// (the agent already left that wrap-up) changes nothing.
    WrapUpExpired {
        until_ms: u64,
    },
    Connect {
        channel: ChannelRef,
    },
    Disconnect {
        channel: ChannelRef,
    },
    /// Disconnect every connected, unassigned channel; `within` limits it to
    /// a scoped supervisor's channels.
    DisconnectUnassigned {
        within: Option<Vec<ChannelRef>>,
    },
    Monitor {
        supervisor_id: String,
    },
    StopMonitor {
        supervisor_id: String,
    },
    Assign {
        channel: ChannelRef,
    },
    Unassign {
        channel: ChannelRef,
    },
    /// `None` removes the override: the tenant default applies again.
    SetUnassignedAccess {
        allowed: Option<bool>,
    },
    /// Settings changed: recompute derived fields only.
    Renormalize,
}

impl Event {
    /// The name recorded in the history.
    pub fn name(&self) -> &'static str {
        match self {
            Event::DeviceUp { .. } => "device_up",
            Event::DeviceDown { .. } => "device_down",
            Event::Pause { .. } => "pause",
            Event::Unpause => "unpause",
            Event::InteractionStart { .. } => "interaction_start",
            Event::InteractionEnd { .. } => "interaction_end",
            Event::EndWrapUp => "end_wrap_up",
            Event::WrapUpExpired { .. } => "wrap_up_expired",
            Event::Connect { .. } => "connect",
            Event::Disconnect { .. } => "disconnect",
            Event::DisconnectUnassigned { .. } => "disconnect_unassigned",
            Event::Monitor { .. } => "monitor",
            Event::StopMonitor { .. } => "stop_monitor",
            Event::Assign { .. } => "assign",
            Event::Unassign { .. } => "unassign",
            Event::SetUnassignedAccess { .. } => "set_unassigned_access",
            Event::Renormalize => "settings",
        }
    }
}

/// What `apply` needs besides the record: the clock, the actor, the settings.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    pub now_ms: u64,
    pub by: &'a Actor,
    pub settings: &'a Settings,
    /// Inactive devices beyond this many are forgotten, oldest first.
    pub max_devices: usize,
}

/// Applies `event` to `record`. `Ok(None)`: nothing to change.
pub fn apply(record: &AgentRecord, event: &Event, ctx: &Context) -> HubResult<Option<AgentRecord>> {
    let mut next = record.clone();
    // Who the change is attributed to; a pending pause keeps its author.
    let mut by = ctx.by.clone();
    match event {
        Event::DeviceUp {
            device_id,
            kind,
            label,
            node,
        } => {
            let was_online = next.has_active_device();
            match next.devices.iter_mut().find(|d| &d.id == device_id) {
                Some(d) => {
                    if !d.active {
                        d.since_ms = ctx.now_ms;
                    }
                    d.active = true;
                    d.kind = kind.clone();
                    d.label = label.clone();
                    d.node = node.clone();
                }
                None => next.devices.push(Device {
                    id: device_id.clone(),
                    kind: kind.clone(),
                    label: label.clone(),
                    active: true,
                    node: node.clone(),
                    since_ms: ctx.now_ms,
                }),
            }
            forget_old_devices(&mut next.devices, ctx.max_devices);
            if !was_online {
                next.status = Status::Available;
                next.pause_reason = None;
            }
        }
        Event::DeviceDown { device_id, node } => {
            let Some(d) = next
                .devices
                .iter_mut()
                .find(|d| &d.id == device_id && d.active && &d.node == node)
            else {
                return Ok(None);
            };
            d.active = false;
            d.since_ms = ctx.now_ms;
            if !next.has_active_device() {
                // Offline clears the session-bound facts; channel connections
                // are kept (SPEC §2).
                next.status = Status::Offline;
                next.pause_reason = None;
                next.pending_pause = None;
                next.wrap_up_until_ms = None;
                next.interaction = None;
                next.monitored_by.clear();
            }
        }
        Event::Pause { reason } => match next.status {
            Status::Available | Status::WrapUp => {
                next.status = Status::Paused;
                next.pause_reason = Some(reason.clone());
                next.wrap_up_until_ms = None;
                next.pending_pause = None;
            }
            Status::Busy => {
                next.pending_pause = Some(PendingPause {
                    reason: reason.clone(),
                    by: ctx.by.clone(),
                });
            }
            Status::Paused => return Err(refuse(record, "is already paused")),
            Status::Offline => return Err(refuse(record, "is offline")),
        },
        Event::Unpause => {
            if next.status != Status::Paused {
                return Err(refuse(record, "is not paused"));
            }
            next.status = Status::Available;
            next.pause_reason = None;
        }
        Event::InteractionStart {
            interaction_id,
            channel,
        } => {
            if next.status != Status::Available {
                return Err(refuse(record, "is not available"));
            }
            next.status = Status::Busy;
            next.interaction = Some(Interaction {
                id: interaction_id.clone(),
                channel: channel.clone(),
                since_ms: ctx.now_ms,
            });
        }
        Event::InteractionEnd { interaction_id } => {
            match &next.interaction {
                Some(i) if next.status == Status::Busy && &i.id == interaction_id => {}
                Some(i) => {
                    return Err(HubError::invalid_state(format!(
                        "agent {} is on interaction {}, not {interaction_id}",
                        record.id, i.id
                    )))
                }
                None => return Err(refuse(record, "has no interaction")),
            }
            next.interaction = None;
            if ctx.settings.wrap_up_seconds > 0 {
                next.status = Status::WrapUp;
                next.wrap_up_until_ms =
                    Some(ctx.now_ms + u64::from(ctx.settings.wrap_up_seconds) * 1000);
            } else {
                by = finish_wrap_up(&mut next, by);
            }
        }
        Event::EndWrapUp => {
            if next.status != Status::WrapUp {
                return Err(refuse(record, "is not in wrap-up"));
            }
            by = finish_wrap_up(&mut next, by);
        }
        Event::WrapUpExpired { until_ms } => {
            if next.status != Status::WrapUp
                || next.wrap_up_until_ms != Some(*until_ms)
                || ctx.now_ms < *until_ms
            {
                return Ok(None);
            }
            by = finish_wrap_up(&mut next, by);
        }
        Event::Connect { channel } => match next.channel_mut(channel) {
            Some(c) if c.connected => {
                return Err(HubError::invalid_state(format!(
                    "agent {} is already connected to {channel}",
                    record.id
                )))
            }
            Some(c) => c.connected = true,
            None => next.channels.push(ChannelState {
                kind: channel.kind,
                id: channel.id.clone(),
                connected: true,
                assigned: false,
                lingering: false,
            }),
        },
        Event::Disconnect { channel } => match next.channel_mut(channel) {
            Some(c) if c.connected => c.connected = false,
            _ => {
                return Err(HubError::invalid_state(format!(
                    "agent {} is not connected to {channel}",
                    record.id
                )))
            }
        },
        Event::DisconnectUnassigned { within } => {
            for c in &mut next.channels {
                let in_reach = within
                    .as_ref()
                    .is_none_or(|scope| scope.iter().any(|s| c.is(s)));
                if c.connected && !c.assigned && in_reach {
                    c.connected = false;
                }
            }
        }
        Event::Monitor { supervisor_id } => {
            if !next.has_active_device() {
                return Err(HubError::agent_offline(format!(
                    "agent {} is offline",
                    record.id
                )));
            }
            if next.monitored_by.contains(supervisor_id) {
                return Err(HubError::invalid_state(format!(
                    "{supervisor_id} is already monitoring agent {}",
                    record.id
                )));
            }
            next.monitored_by.push(supervisor_id.clone());
        }
        Event::StopMonitor { supervisor_id } => {
            if !next.monitored_by.contains(supervisor_id) {
                return Err(HubError::invalid_state(format!(
                    "{supervisor_id} is not monitoring agent {}",
                    record.id
                )));
            }
            next.monitored_by.retain(|s| s != supervisor_id);
        }
        Event::Assign { channel } => match next.channel_mut(channel) {
            Some(c) if c.assigned => {
                return Err(HubError::invalid_state(format!(
                    "agent {} is already assigned to {channel}",
                    record.id
                )))
            }
            Some(c) => c.assigned = true,
            None => next.channels.push(ChannelState {
                kind: channel.kind,
                id: channel.id.clone(),
                connected: false,
                assigned: true,
                lingering: false,
            }),
        },
        Event::Unassign { channel } => match next.channel_mut(channel) {
            // Unassigning never disconnects (rule 3): a connection stays.
            Some(c) if c.assigned => c.assigned = false,
            _ => {
                return Err(HubError::invalid_state(format!(
                    "agent {} is not assigned to {channel}",
                    record.id
                )))
            }
        },
        Event::SetUnassignedAccess { allowed } => next.unassigned_access_override = *allowed,
        Event::Renormalize => {}
    }
    if next.status != record.status {
        next.status_since_ms = ctx.now_ms;
    }
    next.normalize(ctx.settings);
    if &next == record {
        return Ok(None);
    }
    if !matches!(event, Event::Renormalize) {
        next.changed_by = Some(by);
    }
    Ok(Some(next))
}

/// Leaves wrap-up (or a finished interaction with no wrap-up): paused when a
/// pause is pending, else available. Returns who the change is attributed to.
fn finish_wrap_up(next: &mut AgentRecord, by: Actor) -> Actor {
    next.wrap_up_until_ms = None;
    match next.pending_pause.take() {
        Some(pending) => {
            next.status = Status::Paused;
            next.pause_reason = Some(pending.reason);
            pending.by
        }
        None => {
            next.status = Status::Available;
            by
        }
    }
}

fn forget_old_devices(devices: &mut Vec<Device>, max: usize) {
    while devices.len() > max.max(1) {
        let oldest_inactive = devices
            .iter()
            .enumerate()
            .filter(|(_, d)| !d.active)
            .min_by_key(|(_, d)| d.since_ms)
            .map(|(i, _)| i);
        match oldest_inactive {
            Some(i) => {
                devices.remove(i);
            }
            None => break,
        }
    }
}

fn refuse(record: &AgentRecord, why: &str) -> HubError {
    HubError::invalid_state(format!("agent {} {why}", record.id))
}
