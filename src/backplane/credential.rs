//! Service credentials of the integration API (`crate::api::credentials`)
//! as a store keeps them: an id, the scopes, the SHA-256 of the key, and
//! who made it when. Never the key itself.
//!
//! Why through the backplane and not in the tenant's directory image: the
//! directory is replicated to every node by deltas, so a node learns of a
//! revocation only when the delta arrives (or after a catch-up round trip
//! to the store), and in Redis the directory is written by Lua scripts
//! whose argument layout other work depends on. A credential is instead a
//! keyed value of its own (Redis: one hash per tenant; memory: a map,
//! journalled to the `--data-dir` file), read from the store on every
//! request: a revoked key is refused by the very next request on any
//! node, at the cost of one read (Redis `HGET`) per API request. Creating
//! and revoking is rare and needs no seq, no delta and no history entry.

use serde::{Deserialize, Serialize};

/// What a credential may do (docs/API.md, "Integrations").
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Scope {
    /// Report interactions for any agent.
    #[serde(rename = "interactions:write")]
    InteractionsWrite,
    /// Set any agent's status (available, paused).
    #[serde(rename = "status:write")]
    StatusWrite,
    /// Push queue statistics (reserved: no endpoint uses it yet).
    #[serde(rename = "queues:write")]
    QueuesWrite,
    /// Read agents and channels.
    #[serde(rename = "read")]
    Read,
}

impl Scope {
    pub const ALL: [Scope; 4] = [
        Scope::InteractionsWrite,
        Scope::StatusWrite,
        Scope::QueuesWrite,
        Scope::Read,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::InteractionsWrite => "interactions:write",
            Scope::StatusWrite => "status:write",
            Scope::QueuesWrite => "queues:write",
            Scope::Read => "read",
        }
    }
}

/// One stored credential.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    /// Chosen by the admin (`acd-1`); the integration's name in every
    /// change it makes (`{"id": "acd-1", "role": "integration"}`).
    pub id: String,
    pub scopes: Vec<Scope>,
    /// SHA-256 of the whole key, 64 hex digits.
    pub hash: String,
    pub created_ms: u64,
    /// The admin who created it.
    pub created_by: String,
}
