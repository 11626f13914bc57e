//! The agent state machine (DESIGN.md §2): `apply(record, event, context)` returns
//! the next record, `None` when the event changes nothing, or the refusal.
//!
//! `apply` is total and pure: it never panics on any input and never mutates
//! its argument, so a refused event provably changes nothing.

use super::record::*;
use super::{capacity, monitor, pause};
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
    /// Starts monitoring, or changes the mode of a running monitor (PROTOCOL.md §10.5).
    Monitor {
        supervisor_id: String,
        mode: MonitorMode,
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
    /// A supervisor signs the agent out (PROTOCOL.md §10.6): every device inactive,
    /// offline at once, no grace, nothing to restore.
    SignOut,
    /// The pause that began at `paused_since_ms` with `reason` may have run
    /// past its code's limit (PROTOCOL.md §10.2). A stale or early firing changes nothing.
    PauseOverrun {
        paused_since_ms: u64,
        reason: String,
    },
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
            Event::SignOut => "sign_out",
            Event::PauseOverrun { .. } => "pause_overrun",
        }
    }
}

/// What `apply` needs besides the record: the clock, the actor, the settings.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    pub now_ms: u64,
    pub by: &'a Actor,
    pub settings: &'a Settings,
    /// Inactive devices beyond this many are forgotten, oldest first; a
    /// device may not come up while this many others are active.
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
            let others_active = next
                .devices
                .iter()
                .filter(|d| d.active && &d.id != device_id)
                .count();
            if others_active >= ctx.max_devices.max(1) {
                return Err(refuse(
                    record,
                    &format!("already has {others_active} active devices (the most allowed)"),
                ));
            }
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
                None => {
                    // Most agents have one or two devices; a plain push
                    // would reserve room for four in every stored record.
                    next.devices.reserve_exact(1);
                    next.devices.push(Device {
                        id: device_id.clone(),
                        kind: kind.clone(),
                        label: label.clone(),
                        active: true,
                        node: node.clone(),
                        since_ms: ctx.now_ms,
                    })
                }
            }
            forget_old_devices(&mut next.devices, ctx.max_devices);
            if !was_online {
                match pause::sign_in_pause(record, ctx.settings, ctx.now_ms) {
                    Some(reason) => {
                        next.status = Status::Paused;
                        next.pause_reason = Some(reason);
                    }
                    None => {
                        next.status = Status::Available;
                        next.pause_reason = None;
                    }
                }
                next.paused_when_offline = None;
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
                // Remembered for `sign_in_status: restore` (PROTOCOL.md §10.3).
                next.paused_when_offline = match (next.status, &next.pause_reason) {
                    (Status::Paused, Some(reason)) => Some(Box::new(OfflinePause {
                        reason: reason.clone(),
                        at_ms: ctx.now_ms,
                    })),
                    _ => None,
                };
                go_offline(&mut next);
            }
        }
        Event::SignOut => {
            // Already offline: nothing to change (no version, no history),
            // but the caller still closes any socket the agent has left open
            // (a device past its TTL keeps its socket, PROTOCOL.md §10.6).
            if !next.has_active_device() {
                return Ok(None);
            }
            for d in next.devices.iter_mut().filter(|d| d.active) {
                d.active = false;
                d.since_ms = ctx.now_ms;
            }
            // Deliberate: nothing to restore on the next sign-in.
            next.paused_when_offline = None;
            go_offline(&mut next);
        }
        Event::PauseOverrun {
            paused_since_ms,
            reason,
        } => {
            let same_pause = next.status == Status::Paused
                && next.status_since_ms == *paused_since_ms
                && next.pause_reason.as_ref() == Some(reason);
            match pause::overrun_at(&next, ctx.settings) {
                Some(at)
                    if same_pause && next.pause_overrun_since_ms.is_none() && ctx.now_ms >= at =>
                {
                    next.pause_overrun_since_ms = Some(at);
                }
                _ => return Ok(None),
            }
        }
        Event::Pause { reason } => {
            // Reason codes first: a bad code is `bad_request` in any status.
            pause::check_reason(ctx.settings, reason)?;
            match next.status {
                Status::Available | Status::WrapUp => {
                    next.status = Status::Paused;
                    next.pause_reason = Some(reason.clone());
                    next.wrap_up_until_ms = None;
                    next.pending_pause = None;
                }
                Status::Busy => {
                    next.pending_pause = Some(Box::new(PendingPause {
                        reason: reason.clone(),
                        by: ctx.by.clone(),
                    }));
                }
                // Another reason: straight from one pause to the next (a break
                // after training), a new pause whose time and limit start now.
                Status::Paused if next.pause_reason.as_ref() != Some(reason) => {
                    next.pause_reason = Some(reason.clone());
                    next.status_since_ms = ctx.now_ms;
                    next.pause_overrun_since_ms = None;
                }
                Status::Paused => {
                    return Err(refuse(record, &format!("is already paused ({reason})")))
                }
                Status::Offline => return Err(refuse(record, "is offline")),
            }
        }
        Event::Unpause => match next.status {
            Status::Paused => {
                next.status = Status::Available;
                next.pause_reason = None;
            }
            // Busy with a pause pending: the pending pause is withdrawn.
            Status::Busy if next.pending_pause.is_some() => next.pending_pause = None,
            _ => return Err(refuse(record, "is not paused")),
        },
        Event::InteractionStart {
            interaction_id,
            channel,
        } => {
            let capacity = record.capacity(ctx.settings);
            if let Some(why) = capacity::refuse_start(record, channel.kind, &capacity) {
                return Err(refuse(record, &why));
            }
            if next.interactions.iter().any(|i| &i.id == interaction_id) {
                return Err(HubError::invalid_state(format!(
                    "agent {} already holds interaction {interaction_id}",
                    record.id
                )));
            }
            next.status = Status::Busy;
            next.interactions.push(Interaction {
                id: interaction_id.clone(),
                channel: channel.clone(),
                since_ms: ctx.now_ms,
            });
        }
        Event::InteractionEnd { interaction_id } => {
            let held = next
                .interactions
                .iter()
                .position(|i| &i.id == interaction_id);
            match (&next.interaction, held) {
                (Some(_), Some(_)) if next.status == Status::Busy => {}
                (Some(i), _) => {
                    return Err(HubError::invalid_state(format!(
                        "agent {} is on interaction {}, not {interaction_id}",
                        record.id, i.id
                    )))
                }
                (None, _) => return Err(refuse(record, "has no interaction")),
            }
            if let Some(at) = held {
                next.interactions.remove(at);
            }
            if !next.interactions.is_empty() {
                // Others are still open: stays busy.
            } else if ctx.settings.wrap_up_seconds > 0 {
                next.interaction = None;
                next.status = Status::WrapUp;
                next.wrap_up_until_ms =
                    Some(ctx.now_ms + u64::from(ctx.settings.wrap_up_seconds) * 1000);
            } else {
                next.interaction = None;
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
        Event::Monitor {
            supervisor_id,
            mode,
        } => monitor::start(&mut next, supervisor_id, *mode, ctx.now_ms)?,
        Event::StopMonitor { supervisor_id } => {
            if monitor::mode_of(&next, supervisor_id).is_none() {
                return Err(HubError::invalid_state(format!(
                    "{supervisor_id} is not monitoring agent {}",
                    record.id
                )));
            }
            next.monitors.retain(|m| &m.by != supervisor_id);
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
    // Recomputations and the overrun mark are nobody's change: the record
    // keeps its author (the overrun belongs to the pause it marks).
    if !matches!(event, Event::Renormalize | Event::PauseOverrun { .. }) {
        if next.status != record.status || next.pause_reason != record.pause_reason {
            next.status_by = Some(by.clone());
        }
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

/// Offline clears the session-bound facts; channel connections are kept
/// (DESIGN.md §2).
fn go_offline(next: &mut AgentRecord) {
    next.status = Status::Offline;
    next.pause_reason = None;
    next.pending_pause = None;
    next.wrap_up_until_ms = None;
    next.interaction = None;
    next.interactions.clear();
    next.monitors.clear();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    const NOW: u64 = 1_000_000;

    fn settings(wrap_up_seconds: u32) -> Settings {
        Settings {
            wrap_up_seconds,
            ..Settings::default()
        }
    }

    fn sales() -> ChannelRef {
        ChannelRef::new(ChannelKind::Queue, "sales")
    }

    fn agent() -> AgentRecord {
        AgentRecord::new("a1", "Ana", &[Role::Agent], [sales()], &Settings::default())
    }

    fn sup() -> Actor {
        Actor::new("s1", Role::Supervisor)
    }

    fn run(r: &AgentRecord, e: Event, s: &Settings) -> HubResult<Option<AgentRecord>> {
        apply(
            r,
            &e,
            &Context {
                now_ms: NOW,
                by: &Actor::new("a1", Role::Agent),
                settings: s,
                max_devices: 3,
            },
        )
    }

    fn by(r: &AgentRecord, e: Event, actor: &Actor) -> AgentRecord {
        apply(
            r,
            &e,
            &Context {
                now_ms: NOW,
                by: actor,
                settings: &settings(30),
                max_devices: 3,
            },
        )
        .expect("allowed")
        .expect("changes")
    }

    fn ok(r: &AgentRecord, e: Event) -> AgentRecord {
        run(r, e, &settings(30)).expect("allowed").expect("changes")
    }

    fn up(id: &str) -> Event {
        Event::DeviceUp {
            device_id: id.into(),
            kind: "softphone".into(),
            label: None,
            node: "n1".into(),
        }
    }

    fn down(id: &str) -> Event {
        Event::DeviceDown {
            device_id: id.into(),
            node: "n1".into(),
        }
    }

    fn pause(reason: &str) -> Event {
        Event::Pause {
            reason: reason.into(),
        }
    }

    fn start(id: &str) -> Event {
        Event::InteractionStart {
            interaction_id: id.into(),
            channel: sales(),
        }
    }

    fn end(id: &str) -> Event {
        Event::InteractionEnd {
            interaction_id: id.into(),
        }
    }

    fn online() -> AgentRecord {
        ok(&agent(), up("d1"))
    }

    fn busy() -> AgentRecord {
        ok(&online(), start("c1"))
    }

    fn wrap_up() -> AgentRecord {
        ok(&busy(), end("c1"))
    }

    fn paused() -> AgentRecord {
        ok(&online(), pause("break"))
    }

    #[test]
    fn a_paused_agent_switches_reason_directly_as_a_new_pause() {
        let p = paused();
        let later = apply(
            &p,
            &pause("lunch"),
            &Context {
                now_ms: NOW + 5_000,
                by: &sup(),
                settings: &settings(30),
                max_devices: 3,
            },
        )
        .expect("allowed")
        .expect("changes");
        assert_eq!(
            (
                later.status,
                later.pause_reason.as_deref(),
                later.status_since_ms
            ),
            (Status::Paused, Some("lunch"), NOW + 5_000),
            "the new reason, its time from the switch"
        );
        assert_eq!(
            (&later.status_by, &later.changed_by),
            (&Some(sup()), &Some(sup()))
        );
        let same = run(&later, pause("lunch"), &settings(30)).expect_err("the same reason");
        assert_eq!(same.code, ErrorCode::InvalidState);
    }

    #[test]
    fn who_set_the_status_survives_device_events_and_other_changes() {
        let system = Actor::system();
        let agent = Actor::new("a1", Role::Agent);
        // The agent pauses itself on its phone; a second device comes up
        // and the phone drops and comes back (a node restart), by the system.
        let p = ok(&ok(&online(), up("d2")), pause("training"));
        assert_eq!(p.status_by, Some(agent.clone()));
        let dropped = by(&p, down("d1"), &system);
        let back = by(&dropped, up("d1"), &system);
        assert_eq!(back.changed_by, Some(system.clone()), "the last change");
        assert_eq!(
            (back.status, back.status_by.clone()),
            (Status::Paused, Some(agent.clone())),
            "the pause is still the agent's"
        );
        // A supervisor's connect is theirs as a change, not as the status.
        let moved = by(&back, Event::Connect { channel: sales() }, &sup());
        assert_eq!(moved.status_by, Some(agent));
        // A change of status is its author's: the supervisor's unpause, the
        // system's offline, and a pending pause applied keeps its author.
        let un = by(&moved, Event::Unpause, &sup());
        assert_eq!(un.status_by, Some(sup()));
        let off = by(&by(&un, down("d1"), &system), down("d2"), &system);
        assert_eq!(
            (off.status, off.status_by),
            (Status::Offline, Some(system.clone()))
        );
        let pending = by(&busy(), pause("coaching"), &sup());
        assert_eq!(
            pending.status_by,
            Some(Actor::new("a1", Role::Agent)),
            "still busy"
        );
        let w = ok(&pending, end("c1"));
        let done = by(&w, Event::EndWrapUp, &system);
        assert_eq!((done.status, done.status_by), (Status::Paused, Some(sup())));
    }

    #[test]
    fn first_device_up_makes_an_offline_agent_available() {
        let r = online();
        assert_eq!(
            (r.presence, r.status, r.status_since_ms),
            (Presence::Online, Status::Available, NOW)
        );
        assert_eq!(r.devices.len(), 1);
        assert_eq!(r.changed_by, Some(Actor::new("a1", Role::Agent)));
        // A second device changes devices only; the same device again changes nothing.
        let two = ok(&r, up("d2"));
        assert_eq!((two.status, two.devices.len()), (Status::Available, 2));
        assert_eq!(run(&two, up("d2"), &settings(30)), Ok(None));
    }

    #[test]
    fn last_device_down_goes_offline_clearing_session_facts_but_keeping_connections() {
        let mut r = ok(&busy(), Event::Connect { channel: sales() });
        r = ok(&r, pause("later"));
        r = ok(
            &r,
            Event::Monitor {
                supervisor_id: "s1".into(),
                mode: MonitorMode::Listen,
            },
        );
        let r2 = ok(&ok(&r, up("d2")), down("d1"));
        assert_eq!(r2.status, Status::Busy, "another device is still active");
        let off = ok(&r2, down("d2"));
        assert_eq!(
            (off.presence, off.status),
            (Presence::Offline, Status::Offline)
        );
        assert_eq!(
            (off.interaction.clone(), off.pending_pause.clone()),
            (None, None)
        );
        assert!(off.monitored_by.is_empty());
        assert!(off.is_connected(&sales()), "connections are kept");
        // A device that is not active on this node is left alone.
        let elsewhere = Event::DeviceDown {
            device_id: "d1".into(),
            node: "n2".into(),
        };
        assert_eq!(run(&online(), elsewhere, &settings(30)), Ok(None));
        assert_eq!(run(&off, down("d1"), &settings(30)), Ok(None));
    }

    #[test]
    fn pause_from_available_and_wrap_up_unpause_back() {
        let p = paused();
        assert_eq!(
            (p.status, p.pause_reason.as_deref()),
            (Status::Paused, Some("break"))
        );
        let from_wrap = ok(&wrap_up(), pause("tired"));
        assert_eq!(
            (from_wrap.status, from_wrap.wrap_up_until_ms),
            (Status::Paused, None)
        );
        let back = ok(&p, Event::Unpause);
        assert_eq!((back.status, back.pause_reason), (Status::Available, None));
    }

    #[test]
    fn pause_while_busy_is_pending() {
        let r = by(&busy(), pause("coaching"), &sup());
        assert_eq!(r.status, Status::Busy);
        assert_eq!(
            r.pending_pause,
            Some(Box::new(PendingPause {
                reason: "coaching".into(),
                by: sup()
            }))
        );
    }

    #[test]
    fn interaction_start_and_end_with_wrap_up() {
        let b = busy();
        assert_eq!(b.status, Status::Busy);
        assert_eq!(
            b.interaction.as_ref().map(|i| (i.id.as_str(), i.since_ms)),
            Some(("c1", NOW))
        );
        let w = wrap_up();
        assert_eq!(
            (w.status, w.wrap_up_until_ms, w.interaction.clone()),
            (Status::WrapUp, Some(NOW + 30_000), None)
        );
    }

    #[test]
    fn interaction_end_without_wrap_up_goes_available_or_to_the_pending_pause() {
        let s0 = settings(0);
        let r = run(&busy(), end("c1"), &s0).expect("ok").expect("changes");
        assert_eq!((r.status, r.wrap_up_until_ms), (Status::Available, None));
        let pending = by(&busy(), pause("coaching"), &sup());
        let r = run(&pending, end("c1"), &s0).expect("ok").expect("changes");
        assert_eq!(
            (r.status, r.pause_reason.as_deref()),
            (Status::Paused, Some("coaching"))
        );
        assert_eq!(
            r.changed_by,
            Some(sup()),
            "the pause stays the supervisor's"
        );
    }

    #[test]
    fn wrap_up_deadline_and_end_wrap_up() {
        let w = wrap_up();
        let until = w.wrap_up_until_ms.expect("deadline");
        let at = |now: u64, e: Event| {
            apply(
                &w,
                &e,
                &Context {
                    now_ms: now,
                    by: &Actor::system(),
                    settings: &settings(30),
                    max_devices: 3,
                },
            )
        };
        assert_eq!(
            at(until - 1, Event::WrapUpExpired { until_ms: until }),
            Ok(None),
            "not yet"
        );
        assert_eq!(
            at(
                until,
                Event::WrapUpExpired {
                    until_ms: until - 5
                }
            ),
            Ok(None),
            "stale timer"
        );
        let done = at(until, Event::WrapUpExpired { until_ms: until })
            .expect("ok")
            .expect("changes");
        assert_eq!(
            (done.status, done.changed_by),
            (Status::Available, Some(Actor::system()))
        );
        let early = ok(&w, Event::EndWrapUp);
        assert_eq!(
            (early.status, early.wrap_up_until_ms),
            (Status::Available, None)
        );
        let pending = ok(
            &ok(&by(&busy(), pause("coaching"), &sup()), end("c1")),
            Event::EndWrapUp,
        );
        assert_eq!(
            (pending.status, pending.pause_reason.as_deref()),
            (Status::Paused, Some("coaching"))
        );
    }

    #[test]
    fn connect_and_disconnect_keep_status_and_assignment_apart() {
        let billing = ChannelRef::new(ChannelKind::Queue, "billing");
        for base in [agent(), online(), busy(), paused(), wrap_up()] {
            let c = ok(
                &base,
                Event::Connect {
                    channel: billing.clone(),
                },
            );
            assert_eq!(c.status, base.status, "connect keeps the status");
            let st = c.channel(&billing).expect("listed");
            assert!(st.connected && !st.assigned && !st.lingering);
            let d = ok(
                &c,
                Event::Disconnect {
                    channel: billing.clone(),
                },
            );
            assert!(
                d.channel(&billing).is_none(),
                "an unassigned, disconnected channel is dropped"
            );
            let s = ok(
                &ok(&base, Event::Connect { channel: sales() }),
                Event::Disconnect { channel: sales() },
            );
            assert!(s.is_assigned(&sales()) && !s.is_connected(&sales()));
        }
    }

    #[test]
    fn lingering_marks_unassigned_connections_without_access() {
        let billing = ChannelRef::new(ChannelKind::Queue, "billing");
        let c = ok(
            &ok(
                &online(),
                Event::Connect {
                    channel: billing.clone(),
                },
            ),
            Event::Connect { channel: sales() },
        );
        let no = ok(
            &c,
            Event::SetUnassignedAccess {
                allowed: Some(false),
            },
        );
        assert!(
            no.channel(&billing).expect("kept").lingering,
            "never disconnected, only marked"
        );
        assert!(
            !no.channel(&sales()).expect("sales").lingering,
            "assigned never lingers"
        );
        let cleared = ok(&no, Event::DisconnectUnassigned { within: None });
        assert!(cleared.channel(&billing).is_none() && cleared.is_connected(&sales()));
        // Scoped: only channels within reach are disconnected; nothing to do changes nothing.
        let other = ChannelRef::new(ChannelKind::Chat, "web");
        assert_eq!(
            run(
                &no,
                Event::DisconnectUnassigned {
                    within: Some(vec![other])
                },
                &settings(30)
            ),
            Ok(None)
        );
        // Tenant default off with no override: lingering too.
        let off = Settings {
            unassigned_access_default: false,
            ..settings(30)
        };
        let r = run(&c, Event::Renormalize, &off)
            .expect("ok")
            .expect("changes");
        assert!(r.channel(&billing).expect("kept").lingering && !r.unassigned_access);
        assert_eq!(
            r.changed_by, c.changed_by,
            "a recomputation is nobody's change"
        );
    }

    #[test]
    fn monitor_and_stop_monitor_need_an_online_agent() {
        let m = ok(
            &online(),
            Event::Monitor {
                supervisor_id: "s1".into(),
                mode: MonitorMode::Listen,
            },
        );
        assert_eq!(m.monitored_by, ["s1"]);
        let e = run(
            &m,
            Event::Monitor {
                supervisor_id: "s1".into(),
                mode: MonitorMode::Listen,
            },
            &settings(30),
        )
        .expect_err("twice");
        assert_eq!(e.code, ErrorCode::InvalidState);
        assert!(ok(
            &m,
            Event::StopMonitor {
                supervisor_id: "s1".into()
            }
        )
        .monitored_by
        .is_empty());
        let e = run(
            &agent(),
            Event::Monitor {
                supervisor_id: "s1".into(),
                mode: MonitorMode::Listen,
            },
            &settings(30),
        )
        .expect_err("offline");
        assert_eq!(e.code, ErrorCode::AgentOffline);
    }

    #[test]
    fn assignments_change_without_touching_connections() {
        let billing = ChannelRef::new(ChannelKind::Queue, "billing");
        let a = ok(
            &online(),
            Event::Assign {
                channel: billing.clone(),
            },
        );
        assert!(a.is_assigned(&billing) && !a.is_connected(&billing));
        let connected = ok(
            &ok(&online(), Event::Connect { channel: sales() }),
            Event::Unassign { channel: sales() },
        );
        assert!(connected.is_connected(&sales()) && !connected.is_assigned(&sales()));
    }

    /// Every event that the table does not allow from a status is refused
    /// with `invalid_state` and changes nothing.
    #[test]
    fn everything_else_is_invalid_state() {
        let s = settings(30);
        let cases: Vec<(&str, AgentRecord, Event)> = vec![
            ("pause offline", agent(), pause("x")),
            ("pause paused for the same reason", paused(), pause("break")),
            ("unpause available", online(), Event::Unpause),
            ("unpause busy", busy(), Event::Unpause),
            ("unpause wrap_up", wrap_up(), Event::Unpause),
            ("unpause offline", agent(), Event::Unpause),
            ("start paused", paused(), start("c")),
            ("start busy", busy(), start("c")),
            ("start wrap_up", wrap_up(), start("c")),
            ("start offline", agent(), start("c")),
            ("end available", online(), end("c1")),
            ("end other interaction", busy(), end("other")),
            ("end wrap_up", wrap_up(), end("c1")),
            ("end_wrap_up available", online(), Event::EndWrapUp),
            ("end_wrap_up busy", busy(), Event::EndWrapUp),
            ("end_wrap_up paused", paused(), Event::EndWrapUp),
            (
                "connect twice",
                ok(&online(), Event::Connect { channel: sales() }),
                Event::Connect { channel: sales() },
            ),
            (
                "disconnect unconnected",
                online(),
                Event::Disconnect { channel: sales() },
            ),
            (
                "stop_monitor unmonitored",
                online(),
                Event::StopMonitor {
                    supervisor_id: "s1".into(),
                },
            ),
            ("assign twice", online(), Event::Assign { channel: sales() }),
            (
                "unassign unassigned",
                online(),
                Event::Unassign {
                    channel: ChannelRef::new(ChannelKind::Chat, "x"),
                },
            ),
        ];
        for (name, record, event) in cases {
            let before = record.clone();
            let e = run(&record, event, &s).expect_err(name);
            assert_eq!(e.code, ErrorCode::InvalidState, "{name}: {e}");
            assert_eq!(record, before, "{name}: unchanged");
        }
    }

    #[test]
    fn old_inactive_devices_are_forgotten_beyond_the_limit() {
        let mut r = online();
        for i in 0..5 {
            let id = format!("x{i}");
            r = ok(&r, up(&id));
            r = ok(&r, down(&id));
        }
        assert!(r.devices.len() <= 3);
        assert!(
            r.devices.iter().any(|d| d.id == "d1" && d.active),
            "active devices are never forgotten"
        );
    }

    #[test]
    fn no_device_comes_up_beyond_the_limit_of_active_ones() {
        let mut r = online(); // d1 active
        r = ok(&r, up("d2"));
        r = ok(&r, up("d3"));
        let e = run(&r, up("d4"), &settings(30)).expect_err("a fourth active device");
        assert_eq!(e.code, ErrorCode::InvalidState);
        // The same device again (a reconnect) is not a new one.
        assert!(run(&r, up("d3"), &settings(30)).is_ok());
        r = ok(&r, down("d2"));
        assert!(run(&r, up("d4"), &settings(30)).is_ok(), "a slot freed");
    }

    #[test]
    fn a_device_is_active_since_it_last_came_up_not_since_it_last_spoke() {
        let at = |r: &AgentRecord, e: Event, now_ms: u64| {
            apply(
                r,
                &e,
                &Context {
                    now_ms,
                    by: &Actor::new("a1", Role::Agent),
                    settings: &settings(30),
                    max_devices: 3,
                },
            )
            .expect("allowed")
            .expect("changes")
        };
        let since = |r: &AgentRecord, id: &str| {
            r.devices
                .iter()
                .find(|d| d.id == id)
                .map(|d| (d.active, d.since_ms))
        };
        let two = at(&at(&agent(), up("d1"), NOW), up("d2"), NOW + 1_000);
        // d2 goes down and comes back: active since it came back.
        let gone = at(&two, down("d2"), NOW + 2_000);
        let back = at(&gone, up("d2"), NOW + 3_000);
        assert_eq!(since(&back, "d2"), Some((true, NOW + 3_000)));
        // An active device that comes up again (a new label, a heartbeat
        // after a lapse elsewhere) is still active since it first came up.
        let relabelled = at(
            &back,
            Event::DeviceUp {
                device_id: "d1".into(),
                kind: "softphone".into(),
                label: Some("desk".into()),
                node: "n1".into(),
            },
            NOW + 4_000,
        );
        assert_eq!(since(&relabelled, "d1"), Some((true, NOW)));
    }

    #[test]
    fn assigning_a_channel_the_agent_is_connected_to_keeps_the_connection() {
        let connected = ok(
            &ok(&online(), Event::Connect { channel: sales() }),
            Event::Unassign { channel: sales() },
        );
        assert!(connected.is_connected(&sales()) && !connected.is_assigned(&sales()));
        let assigned = ok(&connected, Event::Assign { channel: sales() });
        assert!(assigned.is_assigned(&sales()) && assigned.is_connected(&sales()));
        assert_eq!(
            run(&assigned, Event::Assign { channel: sales() }, &settings(30)).map_err(|e| e.code),
            Err(crate::error::ErrorCode::InvalidState),
            "assigned twice"
        );
    }

    #[test]
    fn unassigning_a_channel_not_assigned_is_refused_even_while_connected() {
        let connected = ok(
            &ok(&online(), Event::Connect { channel: sales() }),
            Event::Unassign { channel: sales() },
        );
        assert_eq!(
            run(
                &connected,
                Event::Unassign { channel: sales() },
                &settings(30)
            )
            .map_err(|e| e.code),
            Err(crate::error::ErrorCode::InvalidState)
        );
    }

    #[test]
    fn exactly_the_limit_of_devices_is_remembered_the_newest_inactive_kept() {
        let mut r = online(); // d1 active
        for i in 0..5 {
            let id = format!("x{i}");
            r = ok(&r, up(&id));
            r = ok(&r, down(&id));
        }
        let mut ids: Vec<&str> = r.devices.iter().map(|d| d.id.as_str()).collect();
        ids.sort_unstable();
        assert_eq!(ids.len(), 3, "{ids:?}");
        assert!(ids.contains(&"d1"), "the active device stays: {ids:?}");
    }
}
