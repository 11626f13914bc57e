//! Monitor modes (PROTOCOL.md §10.5): a supervisor listens, whispers (coaches: the
//! agent hears the supervisor) or barges in (three-way). `monitors` is the
//! fact; `monitored_by` (v1) is derived from it by
//! [`AgentRecord::normalize`](super::AgentRecord::normalize).

use super::record::AgentRecord;
use crate::error::HubError;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MonitorMode {
    #[default]
    Listen,
    Whisper,
    Barge,
}

impl MonitorMode {
    pub fn as_str(self) -> &'static str {
        match self {
            MonitorMode::Listen => "listen",
            MonitorMode::Whisper => "whisper",
            MonitorMode::Barge => "barge",
        }
    }
}

/// One supervisor monitoring the agent: `{"by", "mode", "since_ms"}`;
/// `since_ms` is when the current mode began.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Monitor {
    pub by: String,
    pub mode: MonitorMode,
    pub since_ms: u64,
}

/// Starts monitoring, or changes the mode of a running monitor. Refused
/// with `agent_offline` when no device is active and `invalid_state` when
/// the supervisor already monitors in that mode.
pub fn start(
    next: &mut AgentRecord,
    supervisor_id: &str,
    mode: MonitorMode,
    now_ms: u64,
) -> Result<(), HubError> {
    if !next.has_active_device() {
        return Err(HubError::agent_offline(format!(
            "agent {} is offline",
            next.id
        )));
    }
    match next.monitors.iter_mut().find(|m| m.by == supervisor_id) {
        Some(m) if m.mode == mode => Err(HubError::invalid_state(format!(
            "{supervisor_id} is already monitoring agent {} in {} mode",
            next.id,
            mode.as_str()
        ))),
        Some(m) => {
            m.mode = mode;
            m.since_ms = now_ms;
            Ok(())
        }
        None => {
            next.monitors.push(Monitor {
                by: supervisor_id.to_string(),
                mode,
                since_ms: now_ms,
            });
            Ok(())
        }
    }
}

/// The mode `supervisor_id` monitors in, if any.
pub fn mode_of(record: &AgentRecord, supervisor_id: &str) -> Option<MonitorMode> {
    record
        .monitors
        .iter()
        .find(|m| m.by == supervisor_id)
        .map(|m| m.mode)
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{self, agent, at, down, ok, pause, sales, up, NOW};
    use super::{Monitor, MonitorMode};
    use crate::domain::{Event, Settings, Status};
    use crate::error::ErrorCode;

    fn monitor(mode: MonitorMode) -> Event {
        Event::Monitor {
            supervisor_id: "s1".into(),
            mode,
        }
    }

    #[test]
    fn modes_change_and_the_same_mode_is_refused() {
        let s = Settings::default();
        let online = ok(&agent(), up("d1"), &s);
        let listen = ok(&online, monitor(MonitorMode::Listen), &s);
        assert_eq!(
            listen.monitors,
            [Monitor {
                by: "s1".into(),
                mode: MonitorMode::Listen,
                since_ms: NOW
            }]
        );
        assert_eq!(listen.monitored_by, ["s1"]);
        let whisper = at(&listen, &monitor(MonitorMode::Whisper), &s, NOW + 5)
            .expect("ok")
            .expect("changes");
        assert_eq!(whisper.monitors[0].mode, MonitorMode::Whisper);
        assert_eq!(
            whisper.monitors[0].since_ms,
            NOW + 5,
            "since the mode began"
        );
        let e = at(&whisper, &monitor(MonitorMode::Whisper), &s, NOW).expect_err("same mode");
        assert_eq!(e.code, ErrorCode::InvalidState);
        let other = ok(
            &whisper,
            Event::Monitor {
                supervisor_id: "s2".into(),
                mode: MonitorMode::Barge,
            },
            &s,
        );
        assert_eq!(other.monitored_by, ["s1", "s2"]);
        let stopped = ok(
            &other,
            Event::StopMonitor {
                supervisor_id: "s1".into(),
            },
            &s,
        );
        assert_eq!(stopped.monitored_by, ["s2"]);
        assert_eq!(
            at(&agent(), &monitor(MonitorMode::Barge), &s, NOW).map_err(|e| e.code),
            Err(ErrorCode::AgentOffline)
        );
        let off = ok(&other, down("d1"), &s);
        assert!(
            off.monitors.is_empty() && off.monitored_by.is_empty() && off.status == Status::Offline
        );
    }

    #[test]
    fn sign_out_takes_every_device_down_at_once() {
        let s = Settings::default();
        let two = ok(
            &ok(&ok(&agent(), up("d1"), &s), up("d2"), &s),
            testkit::start("k1", sales()),
            &s,
        );
        let out = ok(&two, Event::SignOut, &s);
        assert_eq!(out.status, Status::Offline);
        assert!(out.devices.iter().all(|d| !d.active && d.since_ms == NOW));
        assert!(out.interactions.is_empty() && out.interaction.is_none());
        assert_eq!(Event::SignOut.name(), "sign_out");
        // Signing out an agent already offline changes nothing.
        assert_eq!(
            at(&out, &Event::SignOut, &s, NOW).map(|r| r.is_none()),
            Ok(true)
        );
    }

    #[test]
    fn unpause_while_busy_withdraws_a_pending_pause() {
        let s = Settings::default();
        let busy = ok(
            &ok(&agent(), up("d1"), &s),
            testkit::start("k1", sales()),
            &s,
        );
        let pending = ok(&busy, pause("coaching"), &s);
        assert!(pending.pending_pause.is_some());
        let withdrawn = ok(&pending, Event::Unpause, &s);
        assert_eq!(
            (withdrawn.status, withdrawn.pending_pause.clone()),
            (Status::Busy, None)
        );
        assert_eq!(
            at(&withdrawn, &Event::Unpause, &s, NOW).map_err(|e| e.code),
            Err(ErrorCode::InvalidState)
        );
    }

    #[test]
    fn a_modes_name_is_its_wire_name() {
        for mode in [
            MonitorMode::Listen,
            MonitorMode::Whisper,
            MonitorMode::Barge,
        ] {
            assert_eq!(serde_json::json!(mode), serde_json::json!(mode.as_str()));
        }
    }
}
