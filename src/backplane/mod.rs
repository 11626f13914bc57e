//! The backplane: the store every node shares (DESIGN.md §5).
//!
//! It owns the authoritative agent records, the tenant sequence number, the
//! runtime settings and the history, and it delivers every committed change,
//! in seq order, to the nodes attached to the tenant. Nodes never change a
//! record in place: they read it, run the pure domain function and
//! [`Backplane::commit_agent`] the result with the version they read
//! (compare-and-swap). A conflict returns the current record to retry with.
//!
//! [`memory::MemoryBackplane`] is the single-process implementation; the
//! Redis one keeps the same contract with Lua scripts and pub/sub.

pub mod credential;
pub mod memory;
pub mod redis;
mod replicated;
pub mod sentinel;
pub mod settle;
pub mod target;

use crate::directory::change::DirectoryWrite;
use crate::directory::DirectoryImage;
use crate::domain::queue_stats::ChannelStats;
use crate::domain::{Actor, AgentRecord, Settings};
use crate::events::{EventId, Page};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// A committed change, as delivered to attached nodes.
#[derive(Clone, Debug)]
pub enum Delta {
    /// The agent's new record; its `version` is the tenant seq of the change.
    Agent(Arc<AgentRecord>),
    Settings {
        seq: u64,
        settings: Settings,
    },
    /// A directory change: users, channels, and the records it wrote or
    /// removed, each at its own seq up to `seq`, the change's last
    /// ([`DirectoryWrite::first_seq`]).
    Directory {
        seq: u64,
        write: Arc<DirectoryWrite>,
    },
}

impl Delta {
    /// The last seq the delta takes (a directory change takes several).
    pub fn seq(&self) -> u64 {
        match self {
            Delta::Agent(r) => r.version,
            Delta::Settings { seq, .. } | Delta::Directory { seq, .. } => *seq,
        }
    }

    /// The first seq the delta takes: it follows, with no gap, a replica
    /// whose seq is one below.
    pub fn first_seq(&self) -> u64 {
        match self {
            Delta::Directory { seq, write } => write.first_seq(*seq),
            _ => self.seq(),
        }
    }
}

/// Receives a tenant's deltas in seq order. Called from the backplane's own
/// context, so it must not block.
pub type DeltaHandler = Arc<dyn Fn(Delta) + Send + Sync>;

/// Receives a tenant's queue statistics as any node takes them
/// ([`Backplane::put_queue_stats`]). Not a [`Delta`]: statistics take no
/// seq, so they travel beside the versioned stream and never move it
/// (PROTOCOL.md §10.7). Called from the backplane's context: must not block.
pub type QueueStatsHandler = Arc<dyn Fn(ChannelStats) + Send + Sync>;

/// A tenant's state at one seq: what a replica starts from.
#[derive(Clone, Debug)]
pub struct TenantState {
    pub seq: u64,
    pub settings: Settings,
    pub agents: Vec<Arc<AgentRecord>>,
    /// The store's users and channels; `None` from a store that has none
    /// (the node's seed applies).
    pub directory: Option<DirectoryImage>,
    /// The store's incarnation of the tenant (see [`Epoch`]).
    pub epoch: Epoch,
}

/// The store's incarnation of a tenant. It changes when the store lost the
/// tenant and a node restored it from its replica; a supervisor can resume
/// (PROTOCOL.md §5.1.1, `since_seq`) only within one epoch, and only from a seq the
/// epoch has seen: `start` is the tenant seq at which the epoch began.
///
/// On the wire and in Redis it is one opaque string, `"<id>@<start>"`
/// (`@<start>` absent means 0), so every node derives the same `start`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Epoch {
    pub id: String,
    pub start: u64,
}

impl Epoch {
    /// A new epoch that begins at `start`, named after the node creating it.
    pub fn new(node_id: &str, start: u64) -> Self {
        Epoch {
            id: format!("{node_id}-{}@{start}", crate::clock::now_ms()),
            start,
        }
    }

    /// Reads a stored epoch value; a value without `@<start>` began at 0.
    pub fn parse(value: &str) -> Self {
        let start = value
            .rsplit_once('@')
            .and_then(|(_, n)| n.parse().ok())
            .unwrap_or(0);
        Epoch {
            id: value.to_string(),
            start,
        }
    }
}

/// What a node knows about a tenant before the store does: the directory's
/// initial records and settings (applied only where the store has none).
#[derive(Clone, Debug)]
pub struct TenantSeed {
    pub settings: Settings,
    pub agents: Vec<AgentRecord>,
    /// The file's users and channels (stored only when the store has no
    /// directory for the tenant yet).
    pub directory: DirectoryImage,
}

/// The outcome of a compare-and-swap.
#[derive(Clone, Debug)]
pub enum Commit {
    Committed(Arc<AgentRecord>),
    /// The version did not match: here is the current record.
    Conflict(Option<Arc<AgentRecord>>),
    /// A change under the same [`IdempotencyKey`] was applied before:
    /// nothing was applied now; here is the current record.
    AlreadyApplied(Option<Arc<AgentRecord>>),
}

/// The outcome of [`Backplane::commit_directory`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DirectoryCommit {
    /// Applied at this seq.
    Committed(u64),
    /// The directory or a record changed since the change was planned;
    /// nothing applied. The store's seq then: a replica that reaches it can
    /// plan again.
    Conflict(u64),
    /// A change under the same idempotency key was applied at this seq.
    AlreadyApplied(u64),
}

/// A client's `idempotency_key` (PROTOCOL.md §3.3), scoped to the user who
/// sent it: a change made under it is applied at most once within the
/// store's idempotency window, however often the request is repeated.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IdempotencyKey {
    pub user: String,
    pub key: String,
}

impl IdempotencyKey {
    /// How long a store remembers a key (PROTOCOL.md §3.3).
    pub const WINDOW: Duration = Duration::from_secs(600);
}

/// One entry of an agent's history (PROTOCOL.md §5.5 `history`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub at_ms: u64,
    pub agent_id: String,
    /// What happened (`pause`, `device_down`, `connect`, …): one of the
    /// hub's names, not allocated per entry, but for a directory change's
    /// and for entries read back.
    pub event: Cow<'static, str>,
    pub presence: crate::domain::Presence,
    pub status: crate::domain::Status,
    pub pause_reason: Option<String>,
    pub by: crate::domain::Actor,
    /// Last, so a store can append it when it assigns the seq.
    pub version: u64,
}

impl HistoryEntry {
    /// The entry for a committed change of `record` (its version is the
    /// record's; a store that assigns it on commit fills it in).
    pub fn of(record: &AgentRecord, event: impl Into<Cow<'static, str>>) -> Self {
        HistoryEntry {
            at_ms: crate::clock::now_ms(),
            agent_id: record.id.clone(),
            event: event.into(),
            presence: record.presence,
            status: record.status,
            pause_reason: record.pause_reason.clone(),
            by: record
                .changed_by
                .clone()
                .unwrap_or_else(crate::domain::Actor::system),
            version: record.version,
        }
    }
}

/// A partial settings change; absent fields keep their value. A `capacity`
/// or `pause_reasons` given replaces the whole value (a kind a `capacity`
/// leaves out is 1).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SettingsPatch {
    pub supervisor_can_end_wrap_up: Option<bool>,
    pub wrap_up_seconds: Option<u32>,
    pub unassigned_access_default: Option<bool>,
    // ---- contact-center depth (DESIGN.md §9)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<crate::domain::Capacity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause_reasons: Option<Vec<crate::domain::PauseReason>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_in_status: Option<crate::domain::SignInStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_in_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_window_s: Option<u32>,
}

impl SettingsPatch {
    pub fn apply_to(&self, settings: &mut Settings) {
        if let Some(v) = self.supervisor_can_end_wrap_up {
            settings.supervisor_can_end_wrap_up = v;
        }
        if let Some(v) = self.wrap_up_seconds {
            settings.wrap_up_seconds = v;
        }
        if let Some(v) = self.unassigned_access_default {
            settings.unassigned_access_default = v;
        }
        if let Some(v) = self.capacity {
            settings.capacity = v;
        }
        if let Some(v) = &self.pause_reasons {
            settings.pause_reasons = v.clone();
        }
        if let Some(v) = self.sign_in_status {
            settings.sign_in_status = v;
        }
        if let Some(v) = &self.sign_in_reason {
            settings.sign_in_reason = v.clone();
        }
        if let Some(v) = self.restore_window_s {
            settings.restore_window_s = v;
        }
    }

    pub fn is_empty(&self) -> bool {
        self == &SettingsPatch::default()
    }
}

/// Why the store did not do what was asked. What each guarantees about a
/// change is the contract of PROTOCOL.md §3.1.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BackplaneError {
    /// The store could not be reached or refused: nothing was applied, and
    /// nothing of this request ever will be.
    #[error("backplane unavailable: {0}")]
    Unavailable(String),
    /// A change was sent and the hub could not learn its outcome: it was
    /// either applied before this error was returned, or it never will be.
    /// Also a change the store applied that too few replicas confirmed
    /// (`--redis-wait-replicas`): applied, but a failover may lose it.
    #[error("outcome unknown: {0}")]
    OutcomeUnknown(String),
}

impl From<BackplaneError> for crate::error::HubError {
    fn from(e: BackplaneError) -> Self {
        match e {
            BackplaneError::Unavailable(_) => crate::error::HubError::unavailable(e.to_string()),
            BackplaneError::OutcomeUnknown(_) => {
                crate::error::HubError::outcome_unknown(e.to_string())
            }
        }
    }
}

/// When a webhook document's write is acknowledged (`--redis-wait-replicas`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteAck {
    /// An admin's write (an endpoint, a secret, a redrive): only once the
    /// replicas hold it, like every change; `outcome_unknown` otherwise.
    Replicated,
    /// A delivery's own bookkeeping (its cursor, its failures): once the
    /// master has it. Delivery is at least once, so a failover that loses
    /// it sends a batch again; waiting for replicas after every batch
    /// would only slow delivery down when they lag.
    Master,
}

#[async_trait]
pub trait Backplane: Send + Sync + 'static {
    /// Attaches this node to a tenant: seeds what the store lacks, returns
    /// the current state and starts delivering deltas newer than it to
    /// `on_delta`. No delta between the state and the first delivery is lost.
    async fn attach(
        &self,
        tenant: &str,
        seed: TenantSeed,
        on_delta: DeltaHandler,
    ) -> Result<TenantState, BackplaneError>;

    /// Compare-and-swap of one record: if the stored version is
    /// `expected_version`, stores `record` with the next tenant seq as its
    /// version, appends `event` to the history and publishes the delta.
    /// With `once`, nothing is applied when a change under the same key was
    /// ([`Commit::AlreadyApplied`]), and the key is remembered otherwise.
    async fn commit_agent(
        &self,
        tenant: &str,
        expected_version: u64,
        record: AgentRecord,
        event: &'static str,
        once: Option<&IdempotencyKey>,
    ) -> Result<Commit, BackplaneError>;

    /// Applies a settings patch atomically; returns the seq and new
    /// settings. With `once` already used, applies nothing and returns the
    /// seq of that change and the current settings.
    async fn update_settings(
        &self,
        tenant: &str,
        patch: &SettingsPatch,
        by: &Actor,
        once: Option<&IdempotencyKey>,
    ) -> Result<(u64, Settings), BackplaneError>;

    /// Commits a directory change (PROTOCOL.md §7.1) under one seq, or
    /// nothing: only while the tenant's directory is at
    /// `write.expected_version` and every record at its `expected` version.
    /// With `once` already used, applies nothing and answers
    /// [`DirectoryCommit::AlreadyApplied`].
    async fn commit_directory(
        &self,
        tenant: &str,
        write: &DirectoryWrite,
        once: Option<&IdempotencyKey>,
    ) -> Result<DirectoryCommit, BackplaneError>;

    /// The seq of the change made under `once`, while the store remembers
    /// it (so a repeated request answers without running the domain rules
    /// again: the first one changed what they would check). A repeat is
    /// acknowledged like the change it repeats: with
    /// `--redis-wait-replicas`, `OutcomeUnknown` until the replicas hold it.
    async fn applied_under(
        &self,
        tenant: &str,
        once: &IdempotencyKey,
    ) -> Result<Option<u64>, BackplaneError>;

    /// The newest `limit` history entries of one agent at or after
    /// `since_ms`, oldest first.
    async fn history(
        &self,
        tenant: &str,
        agent_id: &str,
        since_ms: u64,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>, BackplaneError>;

    /// Up to `limit` events of the tenant's event stream after `after`
    /// (from the oldest kept without), oldest first (protocol/EVENTS.md).
    async fn read_events(
        &self,
        tenant: &str,
        after: Option<EventId>,
        limit: usize,
    ) -> Result<Page, BackplaneError>;

    /// Appends a `heartbeat` event with the store's current record of each
    /// of these agents that is online; returns how many it appended.
    async fn heartbeats(&self, tenant: &str, agent_ids: &[String])
        -> Result<usize, BackplaneError>;

    /// Whether the store is reachable (drives `/readyz`).
    fn is_ready(&self) -> bool;

    /// One agent's current record in the store.
    async fn read_agent(
        &self,
        tenant: &str,
        agent_id: &str,
    ) -> Result<Option<Arc<AgentRecord>>, BackplaneError>;

    /// One agent's current version in the store (what a compare-and-swap
    /// compares). `Hub::change` asks it before trusting a "nothing to
    /// change" or a refusal computed from the replica: almost always the
    /// replica is current, and this answer is a number, not a record to
    /// transfer and parse (every reconnection within its grace is such a
    /// no-op: a reconnect storm asks it once per agent).
    async fn agent_version(
        &self,
        tenant: &str,
        agent_id: &str,
    ) -> Result<Option<u64>, BackplaneError> {
        Ok(self.read_agent(tenant, agent_id).await?.map(|r| r.version))
    }

    /// `Ok` once the replicas hold everything the store held when this was
    /// called (`--redis-wait-replicas`; at once when asked of none). A
    /// client's "nothing to change" stands on the store's record as it is
    /// now, which may come from a change not yet on the replicas (an
    /// earlier request answered `outcome_unknown`, another client's change
    /// still replicating): answered `ok` at once, a failover could undo
    /// what that `ok` said. `OutcomeUnknown` when the replicas are short.
    async fn replicas_hold_the_store(&self, _tenant: &str) -> Result<(), BackplaneError> {
        Ok(())
    }

    /// The tenant's current state, or `None` when the store does not hold
    /// it (it came back empty). Used to resync a replica.
    async fn load(&self, tenant: &str) -> Result<Option<TenantState>, BackplaneError>;

    // ---- cluster support; the defaults describe a single process ---------

    /// Whether other nodes share this store (enables leases, sweeping,
    /// routing and resync).
    fn is_shared(&self) -> bool {
        false
    }

    /// The tenant's seq in the store now (`None` from a store that is this
    /// process: its replicas are never behind). A node that must not act
    /// on a stale replica — a sign-in of a user another node just added —
    /// waits until its replica reaches it.
    async fn current_seq(&self, _tenant: &str) -> Result<Option<u64>, BackplaneError> {
        Ok(None)
    }

    /// Stops delivering the tenant's deltas to this node.
    async fn detach(&self, _tenant: &str) {}

    /// Writes a replica back into a store that lost the tenant. `true` when
    /// this call restored it, `false` when the store already had it.
    async fn restore(&self, _tenant: &str, _state: &TenantState) -> Result<bool, BackplaneError> {
        Ok(false)
    }

    /// When the tenant's seq is below `floor` (this node's: the store lost
    /// changes the node had seen), sets it to `target`, far above, so the
    /// versions the store hands out next are above every version any node
    /// applied. Returns the seq before: at or above `floor`, the store had
    /// not fallen back and nothing changed.
    async fn raise_seq(
        &self,
        _tenant: &str,
        floor: u64,
        _target: u64,
    ) -> Result<u64, BackplaneError> {
        Ok(floor)
    }

    /// Publishes to a node's command channel; returns how many received it.
    async fn send_to_node(&self, _node: &str, _message: &str) -> Result<usize, BackplaneError> {
        Ok(0)
    }

    /// Renews this node's lease. `Ok(true)` when the connection to the store
    /// was lost since the last renewal (the hub then resyncs).
    async fn renew_lease(&self) -> Result<bool, BackplaneError> {
        Ok(false)
    }

    async fn release_lease(&self) {}

    /// Which of `nodes` hold a live lease.
    async fn live_nodes(&self, nodes: &[String]) -> Result<HashSet<String>, BackplaneError> {
        Ok(nodes.iter().cloned().collect())
    }

    /// Whether this node talks to the server that is the master now (asked
    /// of the sentinels with `--redis-sentinel`; a single server or a Redis
    /// Cluster, which redirects by itself, always is). `false` after
    /// switching to the real one. Asked before sweeping another node.
    async fn confirm_master(&self) -> Result<bool, BackplaneError> {
        Ok(true)
    }

    /// Takes a short, tenant-scoped lock; `false` when another node holds it.
    async fn try_lock(
        &self,
        _tenant: &str,
        _name: &str,
        _ttl: Duration,
    ) -> Result<bool, BackplaneError> {
        Ok(true)
    }

    /// Whether the store still holds the tenant (its epoch key exists).
    async fn epoch_present(&self, _tenant: &str) -> Result<bool, BackplaneError> {
        Ok(true)
    }

    /// How many times the connection to the store was lost so far. A
    /// sweeper trusts an absent lease only while this has not moved for a
    /// while (see `hub::cluster`).
    fn disconnections(&self) -> u64 {
        0
    }

    /// Messages for this node from other nodes (taken once, by the hub).
    fn take_events(&self) -> Option<mpsc::UnboundedReceiver<NodeEvent>> {
        None
    }

    /// Stores a new service credential of the integration API
    /// ([`credential`]); `false` (nothing written) when the tenant has one
    /// with that id already.
    async fn create_credential(
        &self,
        _tenant: &str,
        _credential: &credential::Credential,
    ) -> Result<bool, BackplaneError> {
        Err(BackplaneError::Unavailable(
            "this store keeps no service credentials".into(),
        ))
    }

    /// One service credential, as the store has it now.
    async fn credential(
        &self,
        _tenant: &str,
        _id: &str,
    ) -> Result<Option<credential::Credential>, BackplaneError> {
        Ok(None)
    }

    /// Every service credential of the tenant, by id.
    async fn credentials(
        &self,
        _tenant: &str,
    ) -> Result<Vec<credential::Credential>, BackplaneError> {
        Ok(Vec::new())
    }

    /// Deletes a service credential; `false` when there was none.
    async fn revoke_credential(&self, _tenant: &str, _id: &str) -> Result<bool, BackplaneError> {
        Ok(false)
    }
    // ---- webhooks (`crate::webhooks`) ------------------------------------

    /// Extends a lock taken with [`Backplane::try_lock`] by this node to
    /// `ttl` from now; `false` when this node does not hold it (any more).
    async fn renew_lock(
        &self,
        _tenant: &str,
        _name: &str,
        _ttl: Duration,
    ) -> Result<bool, BackplaneError> {
        Ok(true)
    }

    /// A number every node sees change when any tenant gets a new webhook
    /// endpoint ([`Backplane::bump_webhooks_generation`]), so a node's
    /// poll for endpoints reads one key, not every tenant's document, while
    /// nothing was added. `None`: not kept (one node: its poll reads its
    /// own memory, which costs nothing).
    async fn webhooks_generation(&self) -> Result<Option<u64>, BackplaneError> {
        Ok(None)
    }

    /// Moves [`Backplane::webhooks_generation`] on, after an endpoint was
    /// added.
    async fn bump_webhooks_generation(&self) -> Result<(), BackplaneError> {
        Ok(())
    }

    /// One of the tenant's webhook documents (`name`: `endpoints`, or
    /// `state:<id>`), with its version: `(0, None)` when there is none.
    /// Documents are opaque JSON to the store (`crate::webhooks::store`).
    async fn webhook_doc(
        &self,
        tenant: &str,
        name: &str,
    ) -> Result<(u64, Option<String>), BackplaneError>;

    /// Writes (`Some`) or deletes (`None`) a webhook document if its
    /// version is still `expected` (compare-and-swap); the new version, or
    /// `None` when another writer changed it first (nothing written).
    async fn put_webhook_doc(
        &self,
        tenant: &str,
        name: &str,
        expected: u64,
        doc: Option<&str>,
        ack: WriteAck,
    ) -> Result<Option<u64>, BackplaneError>;

    // ---- queue statistics (PROTOCOL.md §10.7) ---------------------------

    /// Registers the node's receiver of the tenant's queue statistics
    /// (before [`Backplane::attach`], so none taken after the load is
    /// missed: a receiver keeps the newest `updated_ms` per channel).
    fn watch_queue_stats(&self, _tenant: &str, _handler: QueueStatsHandler) {}

    /// Keeps `stats` as the channel's latest, stamped with the store's
    /// clock (`updated_ms`, above the channel's stamp before), where every
    /// node reads them, and hands them to every node's receiver. Takes no
    /// seq. Returns what it stored.
    async fn put_queue_stats(
        &self,
        _tenant: &str,
        _channel: &crate::domain::ChannelRef,
        _stats: &crate::domain::queue_stats::QueueStats,
    ) -> Result<ChannelStats, BackplaneError> {
        Err(BackplaneError::Unavailable(
            "this store keeps no queue statistics".into(),
        ))
    }

    /// The latest statistics of every channel that has some (what a node
    /// loads when it attaches or resyncs).
    async fn queue_stats(&self, _tenant: &str) -> Result<Vec<ChannelStats>, BackplaneError> {
        Ok(Vec::new())
    }
}

/// Something the backplane tells the hub besides a tenant's deltas.
#[derive(Debug, Clone)]
pub enum NodeEvent {
    /// A message on this node's command channel.
    Message(String),
}
