//! Property-based fuzzing of the state machine: random event sequences,
//! from any actor, never panic and always leave a record that keeps the
//! invariants of DESIGN.md §2. A bounded run is part of `cargo test`; raise
//! `PROPTEST_CASES` for a longer one.

use super::machine::{apply, Context, Event};
use super::record::*;
use proptest::prelude::*;

const MAX_DEVICES: usize = 3;

fn channel() -> impl Strategy<Value = ChannelRef> {
    (
        prop_oneof![
            Just(ChannelKind::Queue),
            Just(ChannelKind::Chat),
            Just(ChannelKind::Campaign)
        ],
        0..3u8,
    )
        .prop_map(|(kind, i)| ChannelRef::new(kind, format!("c{i}")))
}

fn event() -> impl Strategy<Value = Event> {
    let id = |prefix: &'static str| (0..3u8).prop_map(move |i| format!("{prefix}{i}"));
    prop_oneof![
        (id("d"), id("n")).prop_map(|(device_id, node)| Event::DeviceUp {
            device_id,
            kind: "web".into(),
            label: None,
            node
        }),
        (id("d"), id("n")).prop_map(|(device_id, node)| Event::DeviceDown { device_id, node }),
        id("r").prop_map(|reason| Event::Pause { reason }),
        Just(Event::Unpause),
        (id("i"), channel()).prop_map(|(interaction_id, channel)| Event::InteractionStart {
            interaction_id,
            channel
        }),
        id("i").prop_map(|interaction_id| Event::InteractionEnd { interaction_id }),
        Just(Event::EndWrapUp),
        (0..200_000u64).prop_map(|until_ms| Event::WrapUpExpired { until_ms }),
        channel().prop_map(|channel| Event::Connect { channel }),
        channel().prop_map(|channel| Event::Disconnect { channel }),
        proptest::option::of(proptest::collection::vec(channel(), 0..3))
            .prop_map(|within| Event::DisconnectUnassigned { within }),
        (id("s"), mode()).prop_map(|(supervisor_id, mode)| Event::Monitor {
            supervisor_id,
            mode
        }),
        id("s").prop_map(|supervisor_id| Event::StopMonitor { supervisor_id }),
        channel().prop_map(|channel| Event::Assign { channel }),
        channel().prop_map(|channel| Event::Unassign { channel }),
        proptest::option::of(any::<bool>())
            .prop_map(|allowed| Event::SetUnassignedAccess { allowed }),
        Just(Event::Renormalize),
        Just(Event::SignOut),
        (0..200_000u64, id("r")).prop_map(|(paused_since_ms, reason)| Event::PauseOverrun {
            paused_since_ms,
            reason
        }),
    ]
}

fn mode() -> impl Strategy<Value = MonitorMode> {
    prop_oneof![
        Just(MonitorMode::Listen),
        Just(MonitorMode::Whisper),
        Just(MonitorMode::Barge)
    ]
}

fn settings() -> impl Strategy<Value = Settings> {
    let capacity = (0..4u32, 0..4u32, 0..4u32).prop_map(|(queue, chat, campaign)| Capacity {
        queue,
        chat,
        campaign,
    });
    // Mostly one setting for a whole run, so multi-chat sequences happen.
    let codes = prop_oneof![
        3 => Just(Vec::new()),
        1 => Just(vec![
            PauseReason { code: "r0".into(), label: "R0".into(), max_minutes: Some(0.01) },
            PauseReason { code: "r1".into(), label: "R1".into(), max_minutes: None },
        ]),
    ];
    let sign_in = prop_oneof![
        Just(SignInStatus::Available),
        Just(SignInStatus::Paused),
        Just(SignInStatus::Restore)
    ];
    (
        any::<bool>(),
        0..3u32,
        any::<bool>(),
        capacity,
        codes,
        sign_in,
        0..3u32,
    )
        .prop_map(
            |(s, w, u, capacity, pause_reasons, sign_in_status, restore_window_s)| Settings {
                supervisor_can_end_wrap_up: s,
                wrap_up_seconds: w,
                unassigned_access_default: u,
                capacity,
                pause_reasons,
                sign_in_status,
                sign_in_reason: "r0".into(),
                restore_window_s,
            },
        )
}

/// The invariants every stored record keeps.
fn check_invariants(r: &AgentRecord) -> Result<(), String> {
    let online = r.devices.iter().any(|d| d.active);
    let fail = |what: &str| Err(format!("{what}: {r:?}"));
    if (r.presence == Presence::Online) != online {
        return fail("presence disagrees with the devices");
    }
    if (r.status == Status::Offline) == online {
        return fail("status offline iff no active device");
    }
    if r.interaction.is_some() != (r.status == Status::Busy) {
        return fail("an interaction exactly while busy");
    }
    if r.interactions.is_empty() == (r.status == Status::Busy) {
        return fail("busy iff at least one interaction");
    }
    if r.interaction.as_deref() != r.interactions.first() {
        return fail("interaction is the oldest of interactions");
    }
    if let Some(first) = r.interactions.first() {
        if r.interactions
            .iter()
            .any(|i| i.channel.kind != first.channel.kind)
        {
            return fail("kinds never mix");
        }
        let kinds = [ChannelKind::Queue, ChannelKind::Chat, ChannelKind::Campaign];
        if kinds
            .iter()
            .any(|k| *k != first.channel.kind && r.free_slots.get(*k) != 0)
        {
            return fail("while busy only the held kind has free slots");
        }
    }
    if !matches!(r.status, Status::Available | Status::Busy) && r.free_slots != Capacity::ZERO {
        return fail("free slots only while available or busy");
    }
    if r.pause_overrun_since_ms.is_some() && r.status != Status::Paused {
        return fail("an overrun only while paused");
    }
    let monitor_ids: Vec<&String> = r.monitors.iter().map(|m| &m.by).collect();
    if r.monitored_by.iter().collect::<Vec<_>>() != monitor_ids {
        return fail("monitored_by lists the monitors");
    }
    if r.pause_reason.is_some() != (r.status == Status::Paused) {
        return fail("a pause reason exactly while paused");
    }
    if r.wrap_up_until_ms.is_some() != (r.status == Status::WrapUp) {
        return fail("a wrap-up deadline exactly while in wrap-up");
    }
    if r.pending_pause.is_some() && !matches!(r.status, Status::Busy | Status::WrapUp) {
        return fail("a pending pause only while busy or in wrap-up");
    }
    if !online && !r.monitored_by.is_empty() {
        return fail("offline agents are not monitored");
    }
    for c in &r.channels {
        if !c.assigned && !c.connected {
            return fail("a channel neither assigned nor connected is listed");
        }
        if c.lingering != (c.connected && !c.assigned && !r.unassigned_access) {
            return fail("lingering marks exactly unassigned connections without access");
        }
    }
    let mut keys: Vec<_> = r.channels.iter().map(|c| (c.kind, c.id.clone())).collect();
    let n = keys.len();
    keys.dedup();
    if keys.len() != n
        || !r
            .channels
            .windows(2)
            .all(|w| (w[0].kind, &w[0].id) < (w[1].kind, &w[1].id))
    {
        return fail("channels are unique and sorted");
    }
    if !r.monitored_by.windows(2).all(|w| w[0] < w[1]) {
        return fail("monitored_by is unique and sorted");
    }
    let active = r.devices.iter().filter(|d| d.active).count();
    if r.devices.len() > MAX_DEVICES.max(active) {
        return fail("too many devices remembered");
    }
    if active > MAX_DEVICES {
        return fail("more active devices than the limit");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn random_event_sequences_keep_the_invariants(
        steps in proptest::collection::vec((event(), settings(), 0..5_000u64), 1..60),
    ) {
        let mut record = AgentRecord::new("a1", "Ana", &[Role::Agent], [ChannelRef::new(ChannelKind::Queue, "c0")], &Settings::default());
        let mut now = 1_000u64;
        let mut version = 0u64;
        for (event, settings, dt) in steps {
            now += dt;
            let by = Actor::system();
            let ctx = Context { now_ms: now, by: &by, settings: &settings, max_devices: MAX_DEVICES };
            // (`apply` takes `&record`: that it leaves the record alone is
            // the compiler's to check, not this test's.)
            let verdict = apply(&record, &event, &ctx);
            // Pure: the same event in the same context gives the same verdict.
            prop_assert_eq!(&apply(&record, &event, &ctx), &verdict, "apply is deterministic");
            match verdict {
                Ok(Some(mut next)) => {
                    prop_assert_ne!(&next, &record, "a change changes something");
                    // Versions are the store's (one per commit), never the machine's.
                    prop_assert_eq!(next.version, record.version, "apply leaves the version alone");
                    check_invariants(&next).map_err(TestCaseError::fail)?;
                    // A paused agent switched to another reason starts a new
                    // pause (PROTOCOL.md §4.2): the time moves with it too.
                    let switched = next.status == Status::Paused
                        && record.status == Status::Paused
                        && next.pause_reason != record.pause_reason;
                    if next.status != record.status || switched {
                        prop_assert_eq!(next.status_since_ms, now);
                    } else {
                        prop_assert_eq!(next.status_since_ms, record.status_since_ms, "status_since_ms moves only with the status or a pause's reason");
                    }
                    // What the store does on commit: the next version.
                    version += 1;
                    next.version = version;
                    record = next;
                }
                Ok(None) => {}
                Err(e) => {
                    use crate::error::ErrorCode::*;
                    prop_assert!(matches!(e.code, InvalidState | AgentOffline | BadRequest), "unexpected refusal {:?}", e);
                    if e.code == BadRequest {
                        prop_assert!(matches!(event, Event::Pause { .. }), "only a pause code is a bad request");
                    }
                    prop_assert!(!e.message.is_empty());
                }
            }
            prop_assert_eq!(&record.id, "a1");
        }
    }
}
