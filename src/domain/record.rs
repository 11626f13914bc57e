//! The agent record — the unit of state and of every delta (DESIGN.md §2) — and
//! the small value types it is made of.
//!
//! The record is stored, replicated and sent on the wire in one shape, so
//! there is exactly one serialization of it. Fields that are derived from
//! others (`presence`, `lingering`, effective `unassigned_access`) are
//! recomputed by [`AgentRecord::normalize`] after every change, so no code
//! path can leave them inconsistent.

pub use super::capacity::{Capacity, CapacityOverride};
pub use super::monitor::{Monitor, MonitorMode};
pub use super::pause::{OfflinePause, PauseReason, SignInStatus};
use serde::{Deserialize, Serialize};
use std::fmt;

/// What kind of routed work a channel carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    Queue,
    Chat,
    Campaign,
}

impl ChannelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Queue => "queue",
            ChannelKind::Chat => "chat",
            ChannelKind::Campaign => "campaign",
        }
    }
}

/// `{"kind": "queue", "id": "sales"}`: names one channel of a tenant.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ChannelRef {
    pub kind: ChannelKind,
    pub id: String,
}

impl ChannelRef {
    pub fn new(kind: ChannelKind, id: impl Into<String>) -> Self {
        ChannelRef {
            kind,
            id: id.into(),
        }
    }
}

impl fmt::Display for ChannelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind.as_str(), self.id)
    }
}

/// A contact-center role, from the directory (never from a token).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Agent,
    Supervisor,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    Online,
    Offline,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Offline,
    Available,
    Busy,
    WrapUp,
    Paused,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Offline => "offline",
            Status::Available => "available",
            Status::Busy => "busy",
            Status::WrapUp => "wrap_up",
            Status::Paused => "paused",
        }
    }
}

/// Who made a change: `{"id": "s1", "role": "supervisor"}`; the hub itself
/// (timers, presence) is `{"id": "system", "role": "system"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub id: String,
    pub role: ActorRole,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorRole {
    Agent,
    Supervisor,
    Admin,
    System,
    /// A service credential of the integration API (an ACD, a PBX), by
    /// its id: `{"id": "acd-1", "role": "integration"}`.
    Integration,
}

impl Actor {
    /// The integration holding the service credential `id`.
    pub fn integration(id: impl Into<String>) -> Self {
        Actor {
            id: id.into(),
            role: ActorRole::Integration,
        }
    }

    pub fn system() -> Self {
        Actor {
            id: "system".into(),
            role: ActorRole::System,
        }
    }

    pub fn new(id: impl Into<String>, role: Role) -> Self {
        let role = match role {
            Role::Agent => ActorRole::Agent,
            Role::Supervisor => ActorRole::Supervisor,
            Role::Admin => ActorRole::Admin,
        };
        Actor {
            id: id.into(),
            role,
        }
    }
}

/// A pause asked for while the agent was busy; applied when the interaction
/// and its wrap-up end.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingPause {
    pub reason: String,
    pub by: Actor,
}

/// The interaction an agent is busy with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interaction {
    pub id: String,
    pub channel: ChannelRef,
    pub since_ms: u64,
}

/// One entry of `channels`: connection and assignment are separate facts
/// (seed rule 3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelState {
    pub kind: ChannelKind,
    pub id: String,
    pub connected: bool,
    pub assigned: bool,
    /// Connected to an unassigned channel the agent no longer has access to
    /// (seed rule 4). Omitted when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub lingering: bool,
}

impl ChannelState {
    pub fn is(&self, channel: &ChannelRef) -> bool {
        self.kind == channel.kind && self.id == channel.id
    }

    pub fn channel_ref(&self) -> ChannelRef {
        ChannelRef::new(self.kind, self.id.clone())
    }
}

/// One device (one WebSocket) of an agent. Inactive devices stay listed so a
/// supervisor can see which of an agent's devices is the live one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    pub id: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    pub active: bool,
    /// The node holding this device's socket (the last one, once inactive).
    pub node: String,
    /// When the device last became active or inactive.
    pub since_ms: u64,
}

/// Per-tenant settings that admins change at runtime.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    #[serde(default)]
    pub supervisor_can_end_wrap_up: bool,
    #[serde(default = "default_wrap_up_seconds")]
    pub wrap_up_seconds: u32,
    #[serde(default = "default_true")]
    pub unassigned_access_default: bool,
    // ---- contact-center depth (DESIGN.md §9); the defaults are v1's behaviour,
    // and a setting left at its default is omitted on the wire, so a tenant
    // that uses none of §9 sends exactly v1's settings object.
    /// Interactions an agent may hold at once per channel kind (PROTOCOL.md §10.1).
    #[serde(default, skip_serializing_if = "is_default")]
    pub capacity: Capacity,
    /// The allowed pause codes; empty: any reason (PROTOCOL.md §10.2).
    #[serde(
        default,
        deserialize_with = "super::pause::reasons_or_empty_object",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub pause_reasons: Vec<PauseReason>,
    /// What the first device up does (PROTOCOL.md §10.3).
    #[serde(default, skip_serializing_if = "is_default")]
    pub sign_in_status: SignInStatus,
    #[serde(
        default = "super::pause::default_sign_in_reason",
        skip_serializing_if = "super::pause::is_default_sign_in_reason"
    )]
    pub sign_in_reason: String,
    #[serde(
        default = "super::pause::default_restore_window_s",
        skip_serializing_if = "super::pause::is_default_restore_window_s"
    )]
    pub restore_window_s: u32,
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    value == &T::default()
}

fn default_wrap_up_seconds() -> u32 {
    30
}

fn default_true() -> bool {
    true
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            supervisor_can_end_wrap_up: false,
            wrap_up_seconds: default_wrap_up_seconds(),
            unassigned_access_default: true,
            capacity: Capacity::default(),
            pause_reasons: Vec::new(),
            sign_in_status: SignInStatus::default(),
            sign_in_reason: super::pause::default_sign_in_reason(),
            restore_window_s: super::pause::default_restore_window_s(),
        }
    }
}

/// The full agent record of DESIGN.md §2.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRecord {
    pub id: String,
    pub name: String,
    #[serde(deserialize_with = "exact")]
    pub roles: Vec<Role>,
    pub presence: Presence,
    pub status: Status,
    pub status_since_ms: u64,
    pub pause_reason: Option<String>,
    pub pending_pause: Option<Box<PendingPause>>,
    pub changed_by: Option<Actor>,
    pub wrap_up_until_ms: Option<u64>,
    pub interaction: Option<Box<Interaction>>,
    #[serde(deserialize_with = "exact")]
    pub channels: Vec<ChannelState>,
    /// Effective access to unassigned channels: the override if an admin set
    /// one, else the tenant's `unassigned_access_default`.
    pub unassigned_access: bool,
    /// The admin's per-agent override; omitted while the tenant default applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unassigned_access_override: Option<bool>,
    #[serde(deserialize_with = "exact")]
    pub devices: Vec<Device>,
    /// The ids of `monitors`, sorted (v1's field; derived).
    #[serde(deserialize_with = "exact")]
    pub monitored_by: Vec<String>,
    // ---- contact-center depth (DESIGN.md §9). `version` must stay last: the
    // Redis commit script appends its value to the serialized record.
    /// Every open interaction, oldest first; `interaction` is the first.
    #[serde(default, deserialize_with = "exact")]
    pub interactions: Vec<Interaction>,
    /// How many more interactions of each kind the agent could take now.
    #[serde(default = "zero_slots")]
    pub free_slots: Capacity,
    /// When the current pause ran past its code's `max_minutes`.
    #[serde(default)]
    pub pause_overrun_since_ms: Option<u64>,
    /// Who monitors the agent, in which mode, since when.
    #[serde(default, deserialize_with = "exact")]
    pub monitors: Vec<Monitor>,
    /// The user's own capacity from the directory (kinds it names only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_override: Option<Box<CapacityOverride>>,
    /// The pause the agent was on when it last went offline (`restore`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused_when_offline: Option<Box<OfflinePause>>,
    /// Who made `status` (and `pause_reason`) what it is: the author of the
    /// last change of either. Unlike `changed_by`, a change that leaves the
    /// status alone (a device up or down while another stays active, a
    /// connect, a monitor) does not move it, so "paused by the agent" still
    /// reads so after the agent's phone reconnected through another node.
    /// Records stored before the field existed read with `None`.
    #[serde(default)]
    pub status_by: Option<Actor>,
    pub version: u64,
}

fn zero_slots() -> Capacity {
    Capacity::ZERO
}

/// A record's list read at its exact size. Read from JSON, a `Vec` keeps the
/// room its growth made (four slots for one element), and a node keeps
/// every record it reads: the tenant's records at attach or at a restart
/// from `--data-dir`, every change another node publishes.
fn exact<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    let mut list = Vec::<T>::deserialize(deserializer)?;
    list.shrink_to_fit();
    Ok(list)
}

impl AgentRecord {
    /// A fresh, offline record for a directory user with its assignments.
    pub fn new(
        id: &str,
        name: &str,
        roles: &[Role],
        assigned: impl IntoIterator<Item = ChannelRef>,
        settings: &Settings,
    ) -> Self {
        let mut record = AgentRecord {
            id: id.to_string(),
            name: name.to_string(),
            roles: roles.to_vec(),
            presence: Presence::Offline,
            status: Status::Offline,
            status_since_ms: 0,
            pause_reason: None,
            pending_pause: None,
            changed_by: None,
            wrap_up_until_ms: None,
            interaction: None,
            channels: assigned
                .into_iter()
                .map(|c| ChannelState {
                    kind: c.kind,
                    id: c.id,
                    connected: false,
                    assigned: true,
                    lingering: false,
                })
                .collect(),
            unassigned_access: settings.unassigned_access_default,
            unassigned_access_override: None,
            devices: Vec::new(),
            monitored_by: Vec::new(),
            interactions: Vec::new(),
            free_slots: Capacity::ZERO,
            pause_overrun_since_ms: None,
            monitors: Vec::new(),
            capacity_override: None,
            paused_when_offline: None,
            status_by: None,
            version: 0,
        };
        // Collected from a filter, the list would keep room for four: every
        // directory user holds this record, and the event log keeps it once
        // more as the sign-in's `previous` (BENCHMARKS.md, memory).
        record.channels.shrink_to_fit();
        record.normalize(settings);
        record
    }

    pub fn channel(&self, channel: &ChannelRef) -> Option<&ChannelState> {
        self.channels.iter().find(|c| c.is(channel))
    }

    pub fn channel_mut(&mut self, channel: &ChannelRef) -> Option<&mut ChannelState> {
        self.channels.iter_mut().find(|c| c.is(channel))
    }

    pub fn is_assigned(&self, channel: &ChannelRef) -> bool {
        self.channel(channel).is_some_and(|c| c.assigned)
    }

    pub fn is_connected(&self, channel: &ChannelRef) -> bool {
        self.channel(channel).is_some_and(|c| c.connected)
    }

    pub fn has_active_device(&self) -> bool {
        self.devices.iter().any(|d| d.active)
    }

    /// Recomputes every derived field from the facts and the settings:
    /// presence, effective unassigned access, lingering flags; drops channel
    /// entries that are neither assigned nor connected; keeps a stable order.
    pub fn normalize(&mut self, settings: &Settings) {
        self.presence = if self.has_active_device() {
            Presence::Online
        } else {
            Presence::Offline
        };
        self.unassigned_access = self
            .unassigned_access_override
            .unwrap_or(settings.unassigned_access_default);
        let access = self.unassigned_access;
        self.channels.retain(|c| c.assigned || c.connected);
        for c in &mut self.channels {
            c.lingering = c.connected && !c.assigned && !access;
        }
        self.channels
            .sort_by(|a, b| (a.kind, &a.id).cmp(&(b.kind, &b.id)));
        self.monitors.sort_by(|a, b| a.by.cmp(&b.by));
        self.monitors.dedup_by(|a, b| a.by == b.by);
        self.monitored_by = self.monitors.iter().map(|m| m.by.clone()).collect();
        if self.interactions.is_empty() {
            // A record stored before §9 holds only `interaction`.
            self.interactions
                .extend(self.interaction.as_deref().cloned());
        }
        self.interaction = self.interactions.first().cloned().map(Box::new);
        let capacity = settings.capacity.with(self.capacity_override.as_deref());
        self.free_slots = super::capacity::free_slots(self, &capacity);
        // The mark says the pause ran past its code's limit: gone with the
        // pause, and gone when an admin lifted the limit or moved it past
        // the mark (the hub's timer marks it again when the new one passes).
        if let Some(marked) = self.pause_overrun_since_ms {
            if super::pause::overrun_at(self, settings).is_none_or(|at| at > marked) {
                self.pause_overrun_since_ms = None;
            }
        }
    }

    /// The agent's effective capacity: the tenant's, with its own kinds.
    pub fn capacity(&self, settings: &Settings) -> Capacity {
        settings.capacity.with(self.capacity_override.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Every directory user holds a record and a node keeps every record it
    /// reads, so their lists are kept at their exact size (BENCHMARKS.md,
    /// memory): a filter collected, or JSON read, would leave room for four.
    #[test]
    fn a_records_lists_are_kept_at_their_exact_size() {
        let settings = Settings::default();
        let assigned = ["sales", "support", "vip"]
            .into_iter()
            .map(|id| ChannelRef::new(ChannelKind::Queue, id))
            .filter(|c| c.id != "vip");
        let mut record = AgentRecord::new("a1", "Ann", &[Role::Agent], assigned, &settings);
        assert_eq!(record.channels.len(), 2);
        assert_eq!(record.channels.capacity(), 2, "made from the directory");
        record.devices.push(Device {
            id: "d1".into(),
            kind: "softphone".into(),
            label: None,
            active: true,
            node: "n1".into(),
            since_ms: 1,
        });
        record.monitored_by.push("s1".into());
        record.interactions.push(Interaction {
            id: "i1".into(),
            channel: ChannelRef::new(ChannelKind::Queue, "sales"),
            since_ms: 2,
        });
        record.monitors.push(crate::domain::Monitor {
            by: "s1".into(),
            mode: crate::domain::MonitorMode::Listen,
            since_ms: 3,
        });
        let read: AgentRecord =
            serde_json::from_str(&json!(record).to_string()).expect("reads back");
        assert_eq!(read, record);
        for (list, len, capacity) in [
            ("roles", read.roles.len(), read.roles.capacity()),
            ("channels", read.channels.len(), read.channels.capacity()),
            ("devices", read.devices.len(), read.devices.capacity()),
            (
                "monitored_by",
                read.monitored_by.len(),
                read.monitored_by.capacity(),
            ),
        ] {
            assert_eq!(capacity, len, "{list} read from JSON");
        }
    }

    #[test]
    fn role_and_status_names_are_their_wire_names() {
        for role in [Role::Agent, Role::Supervisor, Role::Admin] {
            assert_eq!(json!(role), json!(role.as_str()));
        }
        for status in [
            Status::Offline,
            Status::Available,
            Status::Busy,
            Status::WrapUp,
            Status::Paused,
        ] {
            assert_eq!(json!(status), json!(status.as_str()));
        }
    }

    #[test]
    fn default_settings_are_v1s_object_and_read_back_from_nothing() {
        // A tenant that uses none of DESIGN.md §9 sends exactly v1's settings.
        assert_eq!(
            json!(Settings::default()),
            json!({"supervisor_can_end_wrap_up": false, "wrap_up_seconds": 30, "unassigned_access_default": true})
        );
        let read: Settings = serde_json::from_value(json!({})).expect("settings");
        assert_eq!(read, Settings::default());
        let changed = Settings {
            capacity: Capacity {
                chat: 3,
                ..Capacity::default()
            },
            sign_in_status: SignInStatus::Paused,
            ..Settings::default()
        };
        let wire = json!(changed);
        assert_eq!(wire["capacity"]["chat"], 3, "{wire}");
        assert_eq!(wire["sign_in_status"], "paused", "{wire}");
    }

    #[test]
    fn a_stored_record_without_free_slots_reads_with_none() {
        let record = AgentRecord::new(
            "a1",
            "Ana",
            &[Role::Agent],
            [ChannelRef::new(ChannelKind::Queue, "sales")],
            &Settings::default(),
        );
        let mut stored = json!(record);
        stored
            .as_object_mut()
            .expect("an object")
            .remove("free_slots");
        let read: AgentRecord = serde_json::from_value(stored).expect("a record");
        assert_eq!(read.free_slots, Capacity::ZERO);
    }
}
