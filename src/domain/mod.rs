//! The pure domain: the agent record, the state machine of DESIGN.md §2 and the
//! permission table of DESIGN.md §3. Nothing here does I/O or reads a clock; the
//! caller passes `now_ms`, so every rule is unit-testable and the same code
//! runs on every node.

pub mod capacity;
pub mod machine;
pub mod monitor;
pub mod pause;
pub mod permissions;
#[cfg(test)]
mod properties;
pub mod queue_stats;
pub mod record;
#[cfg(test)]
mod testkit;

pub use machine::{apply, Context, Event};
pub use record::*;

use serde::{Deserialize, Serialize};

/// A user of a tenant, from the directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub roles: Vec<Role>,
    /// Present for a scoped supervisor: the channels they see and act on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supervises: Option<Vec<ChannelRef>>,
    /// An agent's own capacity (PROTOCOL.md §10.1): the kinds it names override
    /// the tenant's `capacity`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<CapacityOverride>,
}

impl User {
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}
