//! One tenant's replica on this node: the records as of `seq`, the settings,
//! the supervisor subscriptions and the local agent connections that want
//! their own `state`.
//!
//! The replica is fed only by the backplane's ordered delta stream, under one
//! lock, and fans each delta out while holding it. That single order is what
//! makes a snapshot consistent: a subscription registered under the lock
//! gets the snapshot at `seq` and exactly the deltas after it. Each delta is
//! serialized once; every subscriber gets a clone of the same bytes.
//! Subscriptions to the whole tenant read their deltas from one shared
//! [`DeltaLog`] (appended once per delta); channel-scoped ones and agents'
//! own `state` go through each connection's outbox.

use super::counters::{channel_json, ChannelCounters, Summary};
use super::delta_log::{DeltaLog, LOG_CAPACITY};
use super::device_nodes::DeviceNodes;
use super::outbox::{Frame, Kind, Outbox};
use super::queue_stats::{QueueBoard, Sent};
use super::LocalDevice;
use crate::backplane::{Delta, Epoch, TenantState};
use crate::directory::change::DirectoryWrite;
use crate::directory::TenantDirectory;
use crate::domain::permissions::in_scope;
use crate::domain::queue_stats::ChannelStats;
use crate::domain::{AgentRecord, ChannelRef, Settings, User};
use crate::protocol;
use parking_lot::Mutex;
use serde_json::json;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// What a replica asks of the cluster task (`hub::cluster`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Repair {
    /// Catch the tenant up with the store (a gap, a reconnection, a retry).
    CatchUp(String),
    /// The store shows inactive a device of this agent whose socket this
    /// node holds: say again that it is active, if its session says so.
    Reassert { tenant: String, agent: String },
}

/// Which agents a subscription covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScopeFilter {
    /// Every agent of the tenant.
    All,
    /// Agents connected or assigned to one of these channels.
    Channels(Vec<ChannelRef>),
}

impl ScopeFilter {
    pub fn covers(&self, record: &AgentRecord) -> bool {
        match self {
            ScopeFilter::All => true,
            ScopeFilter::Channels(channels) => in_scope(record, channels),
        }
    }
}

/// A supervisor's request to resume (PROTOCOL.md §5.1.1): the last seq it applied,
/// and the epoch of the snapshot that seq belongs to, when it kept it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resume {
    pub since_seq: u64,
    pub epoch: Option<String>,
}

impl Resume {
    /// Whether a replica at `seq` in `epoch` can send only what changed
    /// after `since_seq`. A client that did not keep the epoch is trusted
    /// within the seqs the current epoch has issued.
    fn applies(&self, epoch: &Epoch, seq: u64) -> bool {
        self.epoch.as_deref().is_none_or(|e| e == epoch.id)
            && self.since_seq >= epoch.start
            && self.since_seq <= seq
    }
}

/// An agent in the replica. Its JSON is made when a frame or a snapshot
/// needs it, not kept: kept, it was ≈ 500 bytes for every agent of every
/// tenant a node serves, to save a snapshot ≈ 1 µs an agent
/// (BENCHMARKS.md, memory per connection).
struct AgentEntry {
    id: Arc<str>,
    record: Arc<AgentRecord>,
}

impl AgentEntry {
    fn new(record: Arc<AgentRecord>) -> Self {
        AgentEntry {
            id: Arc::from(record.id.as_str()),
            record,
        }
    }

    fn json(&self) -> String {
        // Serializing a record of plain data cannot fail.
        serde_json::to_string(&*self.record).unwrap_or_default()
    }

    /// `frame_kind` (`agent` or `state`) about this agent, from its `json`.
    fn frame(&self, frame_kind: Kind, json: &str) -> Frame {
        protocol::agent_frame(frame_kind, json).at(self.record.version)
    }
}

struct Subscriber {
    outbox: Arc<Outbox>,
    scope: ScopeFilter,
    visible: HashSet<Arc<str>>,
    /// The channel counters this connection last got (snapshot or
    /// `channel`): a channel message goes out only when they changed.
    channels_sent: HashMap<ChannelRef, Summary>,
    /// The queue statistics this connection last got, by channel
    /// (PROTOCOL.md §10.7).
    queue_sent: HashMap<ChannelRef, Sent>,
}

impl Subscriber {
    fn covers_channel(&self, channel: &ChannelRef) -> bool {
        match &self.scope {
            ScopeFilter::All => true,
            ScopeFilter::Channels(list) => list.contains(channel),
        }
    }
}

/// How many deltas past a gap a replica holds while it waits for the
/// catch-up that fills the gap. More arrive only while the store answers,
/// so the catch-up comes soon; past the bound the newest are dropped and a
/// second catch-up reads them from the store.
const MAX_HELD: usize = 65_536;

struct Replica {
    loaded: bool,
    /// Deltas that arrived between attach and load.
    early: Vec<Delta>,
    /// The seq of the last delta applied: every seq up to it is applied
    /// (or included in a state read from the store), none is skipped.
    seq: u64,
    /// Deltas that arrived past a gap (pub/sub lost some, or this node just
    /// reconnected and committed before it caught up), by seq. They are
    /// applied only once the gap is filled — by the missing deltas or by a
    /// catch-up from the store — so every connection gets its deltas in
    /// increasing version (PROTOCOL.md §5.1.1): a delta fanned out ahead of
    /// older ones would make a client that resumes from it skip them.
    held: BTreeMap<u64, Delta>,
    /// A delta past the gap was dropped because `held` was full: one more
    /// catch-up reads it from the store.
    held_overflowed: bool,
    /// A delta under an applied seq showed a change this replica never saw
    /// (`Tenant::forked`) since the last catch-up: one catch-up is asked,
    /// and one warning logged, per catch-up, not one per such delta.
    forked: bool,
    /// The store's incarnation of the tenant (resume works only within one).
    epoch: Epoch,
    settings: Settings,
    /// The tenant's users and channels as of `seq` (replaced whole by each
    /// directory delta, so a reader holds one consistent version).
    dir: Arc<TenantDirectory>,
    agents: HashMap<String, AgentEntry>,
    subscribers: HashMap<u64, Subscriber>,
    /// Every open connection of this node by user, whatever its role, from
    /// its sign-in until it ends: a directory change that removes a user or
    /// changes their roles or scope closes them (4012), since a session
    /// keeps what it signed in with. An agent's connections with a device
    /// get its `state` frames. One map for both: an idle agent connection
    /// is an entry, not two.
    sessions: HashMap<String, Vec<Local>>,
    /// Per-channel counts, kept incrementally (PROTOCOL.md §10.4).
    counters: ChannelCounters,
    /// Active devices per node, kept incrementally (the dead-node sweep).
    device_nodes: DeviceNodes,
    /// The ACD's latest statistics per channel (PROTOCOL.md §10.7): beside
    /// the seq, never part of it.
    queue: QueueBoard,
}

/// One of this node's connections of a user: where its frames go, and an
/// agent connection's device once it watches its agent.
struct Local {
    conn: u64,
    outbox: Arc<Outbox>,
    device: Option<Arc<LocalDevice>>,
}

/// The connections of one user that watch their agent: (device, outbox).
fn watchers(list: &[Local]) -> impl Iterator<Item = (&Arc<LocalDevice>, &Arc<Outbox>)> {
    list.iter()
        .filter_map(|l| l.device.as_ref().map(|d| (d, &l.outbox)))
}

pub struct Tenant {
    id: String,
    /// What the directory file says about the tenant (its seed).
    seed: Arc<TenantDirectory>,
    /// This node: a local device that the store shows active on another
    /// node was taken over there, so its connection here is closed (4009).
    node_id: String,
    replica: Mutex<Replica>,
    /// The agent deltas of subscriptions to everything (appended under the
    /// replica's lock, so in the replica's order).
    log: Arc<DeltaLog>,
    seq_tx: watch::Sender<u64>,
    /// Told when the delta stream skipped a seq (pub/sub is at-most-once),
    /// or a device this node holds was marked inactive by another node.
    gaps: Option<tokio::sync::mpsc::UnboundedSender<Repair>>,
}

impl Tenant {
    pub fn new(
        dir: Arc<TenantDirectory>,
        node_id: &str,
        gaps: Option<tokio::sync::mpsc::UnboundedSender<Repair>>,
    ) -> Arc<Self> {
        Arc::new(Tenant {
            id: dir.id.clone(),
            node_id: node_id.to_string(),
            gaps,
            replica: Mutex::new(Replica {
                loaded: false,
                early: Vec::new(),
                seq: 0,
                held: BTreeMap::new(),
                held_overflowed: false,
                forked: false,
                epoch: Epoch::default(),
                settings: dir.settings.clone(),
                dir: dir.clone(),
                agents: HashMap::new(),
                subscribers: HashMap::new(),
                sessions: HashMap::new(),
                counters: ChannelCounters::new(&dir.channels),
                device_nodes: DeviceNodes::default(),
                queue: QueueBoard::default(),
            }),
            seed: dir,
            log: DeltaLog::new(LOG_CAPACITY),
            seq_tx: watch::Sender::new(0),
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The tenant's display name (from the directory file).
    pub fn name(&self) -> &str {
        &self.seed.name
    }

    /// The tenant's users and channels as this replica has them now.
    pub fn directory(&self) -> Arc<TenantDirectory> {
        self.replica.lock().dir.clone()
    }

    /// Registers a connection of `user_id` as the user is now, returning
    /// that user (`None`: no such user) and a guard that forgets the
    /// connection when dropped. Read and registered under the replica's
    /// lock, so a directory change that removes the user or changes their
    /// roles either came before (and is seen here) or comes after (and
    /// closes the connection, 4012).
    pub fn sign_in(
        self: &Arc<Self>,
        user_id: &str,
        conn: u64,
        outbox: &Arc<Outbox>,
    ) -> Option<(Arc<User>, SignedIn)> {
        let mut r = self.replica.lock();
        let user = r.dir.shared_user(user_id).cloned()?;
        push_one(
            r.sessions.entry(user_id.to_string()).or_default(),
            Local {
                conn,
                outbox: outbox.clone(),
                device: None,
            },
        );
        let guard = SignedIn {
            tenant: self.clone(),
            user: user.clone(),
            conn,
        };
        Some((user, guard))
    }

    /// Takes one connection out of its user's list (it ends): on
    /// [`SignedIn`]'s drop, or earlier through [`Tenant::unwatch_agent`].
    fn sign_off(&self, user_id: &str, conn: u64) {
        let mut r = self.replica.lock();
        if let Some(list) = r.sessions.get_mut(user_id) {
            list.retain(|l| l.conn != conn);
            if list.is_empty() {
                r.sessions.remove(user_id);
            }
        }
    }

    /// Installs the state returned by `attach`, then the deltas that raced it.
    pub fn load(&self, state: TenantState) {
        let mut r = self.replica.lock();
        r.seq = state.seq;
        r.epoch = state.epoch;
        r.settings = state.settings;
        if let Some(image) = &state.directory {
            r.dir = Arc::new(self.directory_from(image));
            r.counters = ChannelCounters::new(&r.dir.channels);
        }
        r.agents = state
            .agents
            .into_iter()
            .map(|rec| (rec.id.clone(), AgentEntry::new(rec)))
            .collect();
        let Replica {
            agents,
            counters,
            device_nodes,
            ..
        } = &mut *r;
        counters.rebuild(agents.values().map(|e| &*e.record));
        device_nodes.rebuild(agents.values().map(|e| &*e.record));
        r.loaded = true;
        let early = std::mem::take(&mut r.early);
        for delta in early {
            self.apply_locked(&mut r, delta);
        }
        self.seq_tx.send_replace(r.seq);
    }

    /// Catches up with the store after a gap or a reconnection: every
    /// record newer than the replica's is applied and fanned out as a delta.
    pub fn resync(&self, state: TenantState) {
        let mut r = self.replica.lock();
        let mut changed = 0;
        // Deltas applied while the state was read are newer than it: what
        // they made stays (one history; a store that lost changes this
        // replica holds is read again after its seq was raised past them,
        // `cluster::after_a_fall_back`).
        let older = state.epoch == r.epoch && state.seq < r.seq;
        // Records the store no longer holds were removed by a directory
        // change this replica missed, at the seq its tombstone keeps (a
        // store from before tombstones: the store's seq).
        let removals: Vec<(String, u64)> = {
            let kept: HashSet<&str> = state.agents.iter().map(|a| a.id.as_str()).collect();
            let tombstones = state.directory.as_ref().map(|d| &d.removed);
            r.agents
                .iter()
                .filter(|(id, e)| !kept.contains(id.as_str()) && e.record.version <= state.seq)
                .map(|(id, _)| id)
                .map(|id| {
                    let at = tombstones.and_then(|t| t.get(id)).copied();
                    (id.clone(), at.unwrap_or(state.seq))
                })
                .collect()
        };
        let newer = state.agents.into_iter().filter(|rec| {
            r.agents
                .get(&rec.id)
                .is_none_or(|e| e.record.version < rec.version)
        });
        // Newer records and removals together, in version order: a
        // connection's deltas keep strictly increasing versions (§5.1.1).
        let mut catch_up: Vec<(u64, Result<Arc<AgentRecord>, String>)> = newer
            .map(|rec| (rec.version, Ok(rec)))
            .chain(removals.into_iter().map(|(id, at)| (at, Err(id))))
            .collect();
        catch_up.sort_by_key(|(version, _)| *version);
        for (version, change) in catch_up {
            changed += 1;
            match change {
                Ok(record) => self.fan_out_agent(&mut r, record),
                Err(id) => self.remove_agent(&mut r, &id, version),
            }
        }
        // The store's directory wins, newer or not: like the settings, a
        // directory change a store lost in a failover (without
        // `--redis-wait-replicas`) is lost, and every node converges to
        // what the store holds (PROTOCOL.md §9.1).
        let image = state
            .directory
            .as_ref()
            .filter(|d| !older || d.version > r.dir.version);
        if let Some(image) = image.filter(|d| **d != r.dir.image()) {
            let after = Arc::new(self.directory_from(image));
            self.fan_out_directory(&mut r, after);
        }
        if !older && state.settings != r.settings {
            Self::fan_out_settings(&mut r, state.seq, state.settings);
        }
        r.seq = r.seq.max(state.seq);
        if state.epoch != r.epoch {
            tracing::info!(tenant = self.id(), epoch = %state.epoch.id, "the store is in a new epoch");
            r.epoch = state.epoch;
        }
        // The deltas held past the gap: those the state includes are done,
        // the rest follow in order.
        self.apply_held(&mut r);
        if !r.held.is_empty() || std::mem::take(&mut r.held_overflowed) {
            // Another gap beyond what the store had when it was read.
            self.request_catch_up();
        }
        r.forked = false;
        crate::metrics::get().resyncs.increment(1);
        tracing::info!(tenant = self.id(), seq = r.seq, changed, "replica resynced");
        self.seq_tx.send_replace(r.seq);
    }

    /// This replica's seq when the store's, in the same epoch, is below it:
    /// the store fell back (a failover to a replica that missed the last
    /// writes, a restart from an older snapshot) — or deltas reached the
    /// replica after `state` was read, which `Backplane::raise_seq` tells
    /// apart. `None` otherwise.
    pub fn store_behind(&self, state: &TenantState) -> Option<u64> {
        let r = self.replica.lock();
        (state.epoch == r.epoch && state.seq < r.seq).then_some(r.seq)
    }

    /// What the store lost that this replica holds, in the same epoch:
    /// records whose version here is above the store's (a healthy store's
    /// versions only grow), and records of equal version but other content
    /// (the store handed that version out again after it fell back). `None`
    /// when there is nothing of either kind.
    pub fn lost_by_store(&self, state: &TenantState) -> Option<LostChanges> {
        let r = self.replica.lock();
        if state.epoch != r.epoch {
            return None; // restored meanwhile: a new history, nothing to compare
        }
        let store: HashMap<&str, &Arc<AgentRecord>> =
            state.agents.iter().map(|a| (a.id.as_str(), a)).collect();
        let mut reapply = Vec::new();
        let mut renumber = Vec::new();
        for entry in r.agents.values() {
            let ours = &entry.record;
            let Some(theirs) = store.get(ours.id.as_str()) else {
                continue;
            };
            if ours.version > theirs.version {
                reapply.push(LostChange {
                    ours: ours.clone(),
                    store_version: theirs.version,
                });
            } else if ours.version == theirs.version && ours != *theirs {
                // The store's is a change made after the fall-back, on a node
                // that had not seen ours: the later one wins, under a version
                // no client saw on the lost one.
                renumber.push((*theirs).clone());
            }
        }
        if reapply.is_empty() && renumber.is_empty() {
            return None;
        }
        // The store fell back below the oldest version it lost and hands
        // out versions from there again: a store record at that version or
        // above may be a change taken since (newer than ours, so it wins)
        // or repeat a version a client saw; either way it gets a new one.
        // (A record of equal version and other content marks a lost version
        // too.)
        let oldest = reapply
            .iter()
            .map(|l| l.ours.version)
            .chain(renumber.iter().map(|r| r.version))
            .min();
        if let Some(oldest) = oldest {
            reapply.retain(|l| l.store_version < oldest);
            for a in state.agents.iter().filter(|a| a.version >= oldest) {
                if !renumber.iter().any(|r| r.id == a.id) {
                    renumber.push(a.clone());
                }
            }
        }
        Some(LostChanges { reapply, renumber })
    }

    /// The seq of the last delta this replica applied.
    pub fn seq(&self) -> u64 {
        self.replica.lock().seq
    }

    /// Whether a delta showed this replica to hold a history the store
    /// lost (`Tenant::forked`), the catch-up that repairs it not yet done.
    pub fn forked_since_catch_up(&self) -> bool {
        self.replica.lock().forked
    }

    /// The store was restored from this replica: nothing of a fork is
    /// left to repair (a resync clears it otherwise).
    pub fn fork_repaired(&self) {
        self.replica.lock().forked = false;
    }

    /// Asks the cluster task to catch this tenant up with the store (as
    /// after a gap in the delta stream).
    pub fn request_catch_up(&self) {
        if let Some(gaps) = &self.gaps {
            let _ = gaps.send(Repair::CatchUp(self.id().to_string()));
        }
    }

    /// The replica as a state (to restore a store that lost the tenant).
    pub fn state(&self) -> TenantState {
        let r = self.replica.lock();
        TenantState {
            seq: r.seq,
            settings: r.settings.clone(),
            agents: r.agents.values().map(|e| e.record.clone()).collect(),
            directory: Some(r.dir.image()),
            epoch: r.epoch.clone(),
        }
    }

    /// Applies one delta from the backplane and fans it out.
    pub fn apply(&self, delta: Delta) {
        let mut r = self.replica.lock();
        if !r.loaded {
            r.early.push(delta);
            return;
        }
        self.apply_locked(&mut r, delta);
        self.seq_tx.send_replace(r.seq);
    }

    fn apply_locked(&self, r: &mut Replica, delta: Delta) {
        let seq = delta.seq();
        if seq <= r.seq {
            // Already applied, or included in a state read from the store.
            if Self::forked(r, &delta) {
                self.fork_found(r, seq);
            }
            return;
        }
        if delta.first_seq() <= r.seq {
            // A directory change whose first seqs this replica counts as
            // applied and whose last it does not. In one history the
            // replica's seq sits on a change's last seq (a state read from
            // the store too), so the store handed these seqs out again;
            // applied, the change would land on the other history.
            self.fork_found(r, seq);
            return;
        }
        if delta.first_seq() > r.seq + 1 {
            // A gap: hold this delta until the missing ones arrive or a
            // catch-up from the store fills it in (`resync`).
            if r.held.is_empty() && !r.held_overflowed {
                tracing::warn!(
                    tenant = self.id(),
                    have = r.seq,
                    got = seq,
                    "gap in the delta stream; holding later deltas and catching up"
                );
                self.request_catch_up();
            }
            if r.held.len() < MAX_HELD {
                r.held.insert(seq, delta);
            } else {
                r.held_overflowed = true;
            }
            return;
        }
        self.apply_next(r, delta);
        self.apply_held(r);
    }

    /// Counts a delta that shows the store handed applied seqs out again
    /// (`Tenant::forked`) and asks one catch-up, with one warning, until it
    /// is done: nothing of the delta is applied.
    fn fork_found(&self, r: &mut Replica, seq: u64) {
        crate::metrics::get().deltas_forked.increment(1);
        if !std::mem::replace(&mut r.forked, true) {
            tracing::warn!(
                tenant = self.id(),
                have = r.seq,
                got = seq,
                "a delta under a seq this replica counts as applied, unseen: the store handed it out again; catching up"
            );
            self.request_catch_up();
        }
    }

    /// Whether an agent delta at or below the replica's seq is one this
    /// replica never applied. In one history that cannot be: every seq up
    /// to the replica's was applied, or read from the store in a state
    /// whose record of the agent is at least as new. So a record here older
    /// than the delta, or of its version with other content, means the
    /// store handed the seq out again: it fell back (a failover to a replica
    /// that missed writes this node had seen) and this node took deltas
    /// from both histories. Its seq stays above the store's changes of the
    /// moment, so neither a gap nor the seq watch would ever tell, and the
    /// agent would stay as the lost history left it here until its next
    /// change (README, "High availability"). A catch-up compares every
    /// record with the store's (and writes back what the store lost).
    ///
    /// A directory delta the same way: a directory change sets the
    /// directory's version to its seq, and a state read from the store holds
    /// every directory change up to its seq, so in one history the
    /// directory here is never older than a directory delta under the
    /// replica's seq. (Settings carry no version to compare.)
    fn forked(r: &Replica, delta: &Delta) -> bool {
        match delta {
            Delta::Agent(record) => r.agents.get(&record.id).is_some_and(|held| {
                held.record.version < record.version
                    || (held.record.version == record.version && held.record != *record)
            }),
            Delta::Directory { seq, .. } => r.dir.version < *seq,
            Delta::Settings { .. } => false,
        }
    }

    /// Applies the delta that comes right after the replica's seq.
    fn apply_next(&self, r: &mut Replica, delta: Delta) {
        let seq = delta.seq();
        debug_assert_eq!(delta.first_seq(), r.seq + 1);
        r.seq = seq;
        match delta {
            Delta::Settings { settings, .. } => Self::fan_out_settings(r, seq, settings),
            Delta::Agent(record) => self.fan_out_agent(r, record),
            Delta::Directory { write, .. } => self.apply_directory(r, seq, &write),
        }
    }

    fn directory_from(&self, image: &crate::directory::DirectoryImage) -> TenantDirectory {
        TenantDirectory::from_parts(
            &self.seed.id,
            &self.seed.name,
            self.seed.settings.clone(),
            image,
        )
    }

    /// A directory change: the records it wrote, the records it removed,
    /// then the new users and channels.
    fn apply_directory(&self, r: &mut Replica, seq: u64, write: &DirectoryWrite) {
        for record in write.committed_records(seq) {
            self.fan_out_agent(r, record);
        }
        for (id, version) in write.removals(seq) {
            self.remove_agent(r, id, version);
        }
        let after = Arc::new(r.dir.with(write, seq));
        self.fan_out_directory(r, after);
    }

    /// Installs a new directory: `channel` messages for new or renamed
    /// channels, `channel_removed` for deleted ones, and the connections of
    /// users removed or whose roles or scope changed are closed (4012).
    fn fan_out_directory(&self, r: &mut Replica, after: Arc<TenantDirectory>) {
        let before = std::mem::replace(&mut r.dir, after.clone());
        for channel in &after.channels {
            let key = channel.channel_ref();
            if before.channel(&key) == Some(channel) {
                continue;
            }
            r.counters.add_channel(&key);
            let summary = r.counters.summary(&key);
            let f = protocol::frame(
                Kind::Channel,
                &json!({"type": "channel", "channel": channel_json(channel, &summary)}),
            );
            let ckey: Arc<str> = Arc::from(format!("\u{0}channel {key}"));
            for sub in r.subscribers.values_mut() {
                if sub.covers_channel(&key) {
                    sub.outbox.push_delta(&ckey, f.clone());
                    sub.channels_sent.insert(key.clone(), summary.clone());
                }
            }
        }
        for channel in &before.channels {
            let key = channel.channel_ref();
            if after.channel(&key).is_some() {
                continue;
            }
            r.counters.remove_channel(&key);
            r.queue.remove_channel(&key);
            let f = protocol::frame(
                Kind::ChannelRemoved,
                &json!({"type": "channel_removed", "channel": {"kind": key.kind, "id": key.id}}),
            );
            let ckey: Arc<str> = Arc::from(format!("\u{0}channel {key}"));
            for sub in r.subscribers.values_mut() {
                sub.queue_sent.remove(&key);
                if sub.channels_sent.remove(&key).is_some() {
                    sub.outbox.push_delta(&ckey, f.clone());
                }
            }
        }
        for user in &before.users {
            let changed = match after.user(&user.id) {
                None => true,
                Some(now) => now.roles != user.roles || now.supervises != user.supervises,
            };
            if !changed {
                continue;
            }
            for Local { outbox, .. } in r.sessions.remove(&user.id).unwrap_or_default() {
                outbox.close(
                    protocol::close::DIRECTORY_CHANGED,
                    "the directory changed: this user was removed, or their roles or scope changed; sign in again",
                );
            }
        }
    }

    /// Takes an agent whose record the directory removed out of the
    /// replica: `agent_removed` to every subscriber that saw it, its
    /// connections here closed (their user is closed by the directory).
    fn remove_agent(&self, r: &mut Replica, id: &str, seq: u64) {
        let Some(entry) = r.agents.remove(id) else {
            return;
        };
        r.counters.remove(&entry.record);
        r.device_nodes.remove(&entry.record);
        let f = protocol::frame(
            Kind::AgentRemoved,
            &json!({"type": "agent_removed", "agent_id": id, "version": seq}),
        )
        .at(seq);
        let mut followers = false;
        for sub in r.subscribers.values_mut() {
            if matches!(sub.scope, ScopeFilter::All) {
                followers = true;
            } else if sub.visible.remove(&entry.id) {
                sub.outbox.push_delta(&entry.id, f.clone());
            }
        }
        if followers {
            self.log.append(&entry.id, f);
            for sub in r.subscribers.values() {
                if matches!(sub.scope, ScopeFilter::All) {
                    sub.outbox.wake();
                }
            }
        }
        if let Some(list) = r.sessions.get_mut(id) {
            for (_, outbox) in watchers(list) {
                outbox.close(
                    protocol::close::DIRECTORY_CHANGED,
                    "the directory changed: this agent was removed; sign in again",
                );
            }
            // Closing: they get no more `state` frames.
            list.iter_mut().for_each(|l| l.device = None);
        }
    }

    /// Applies the held deltas that now follow without a gap, and drops
    /// those the replica already has.
    fn apply_held(&self, r: &mut Replica) {
        while let Some(entry) = r.held.first_entry() {
            let seq = *entry.key();
            if seq <= r.seq {
                entry.remove();
            } else if entry.get().first_seq() <= r.seq {
                // Straddles the replica's seq (see `apply_locked`).
                entry.remove();
                self.fork_found(r, seq);
            } else if entry.get().first_seq() == r.seq + 1 {
                let delta = entry.remove();
                self.apply_next(r, delta);
            } else {
                break;
            }
        }
    }

    fn fan_out_settings(r: &mut Replica, seq: u64, settings: Settings) {
        let f = protocol::frame(
            Kind::Settings,
            &json!({"type": "settings", "seq": seq, "settings": settings}),
        );
        for sub in r.subscribers.values() {
            sub.outbox.push_settings(f.clone());
        }
        r.settings = settings;
    }

    /// Stores a newer record and sends it to every subscriber and local
    /// connection of the agent that should see it.
    fn fan_out_agent(&self, r: &mut Replica, record: Arc<AgentRecord>) {
        let entry = AgentEntry::new(record);
        let Replica {
            agents,
            counters,
            device_nodes,
            ..
        } = &mut *r;
        let old = agents.get(entry.id.as_ref()).map(|e| &*e.record);
        counters.update(old, &entry.record);
        device_nodes.update(old, &entry.record);
        // Serialized once, at the first frame that needs it.
        let json = std::cell::OnceCell::new();
        let frame = |kind: Kind| entry.frame(kind, json.get_or_init(|| entry.json()));
        let mut agent_frame: Option<Frame> = None;
        let mut removed_frame: Option<Frame> = None;
        let mut followers = 0usize;
        for sub in r.subscribers.values_mut() {
            if matches!(sub.scope, ScopeFilter::All) {
                // Reads the shared log (below): nothing to do per subscriber
                // but the wake-up, and no `visible` set (it sees everyone).
                followers += 1;
            } else if sub.scope.covers(&entry.record) {
                sub.visible.insert(entry.id.clone());
                let f = agent_frame.get_or_insert_with(|| frame(Kind::Agent));
                sub.outbox.push_delta(&entry.id, f.clone());
            } else if sub.visible.remove(&entry.id) {
                let f = removed_frame.get_or_insert_with(|| {
                    protocol::frame(Kind::AgentRemoved, &json!({"type": "agent_removed", "agent_id": &*entry.id, "version": entry.record.version})).at(entry.record.version)
                });
                sub.outbox.push_delta(&entry.id, f.clone());
            }
        }
        if followers > 0 {
            let f = agent_frame.get_or_insert_with(|| frame(Kind::Agent));
            self.log.append(&entry.id, f.clone());
            for sub in r.subscribers.values() {
                if matches!(sub.scope, ScopeFilter::All) {
                    sub.outbox.wake();
                }
            }
        }
        if let Some(list) = r.sessions.get(entry.id.as_ref()) {
            // A device of ours shown inactive by the system while its
            // socket is here: a survivor swept this node (it was frozen past
            // its lease, or the sweep raced its return). Unless its own
            // session let it go (TTL), it is re-asserted. (A supervisor's
            // sign-out is a person's change: its sockets are closing.)
            let by_system = entry
                .record
                .changed_by
                .as_ref()
                .is_some_and(|a| a.role == crate::domain::ActorRole::System);
            let swept = by_system
                && watchers(list).any(|(device, _)| {
                    entry
                        .record
                        .devices
                        .iter()
                        .any(|d| d.id == device.hello.id && !d.active && d.node == self.node_id)
                });
            if let (true, Some(gaps)) = (swept, &self.gaps) {
                let _ = gaps.send(Repair::Reassert {
                    tenant: self.id().to_string(),
                    agent: entry.record.id.clone(),
                });
            }
            let f = frame(Kind::State);
            for (device, outbox) in watchers(list) {
                let moved = entry
                    .record
                    .devices
                    .iter()
                    .any(|d| d.id == device.hello.id && d.active && d.node != self.node_id);
                if moved {
                    outbox.close(
                        protocol::close::REPLACED,
                        "replaced by a newer connection of the same device",
                    );
                } else {
                    outbox.push_delta(&entry.id, f.clone());
                }
            }
        }
        r.agents.insert(entry.record.id.clone(), entry);
    }

    /// Changes as the replica applies them (its seq), for whoever waits
    /// for the next one (`GET /api/v1/events?wait_ms=`).
    pub fn seq_changes(&self) -> watch::Receiver<u64> {
        self.seq_tx.subscribe()
    }

    /// Waits until this replica has applied `seq` (read-your-writes for the
    /// connection that made the change). Gives up quietly after `timeout`.
    pub async fn wait_for(&self, seq: u64, timeout: Duration) {
        let mut rx = self.seq_tx.subscribe();
        let _ = tokio::time::timeout(timeout, rx.wait_for(|&s| s >= seq)).await;
    }

    pub fn record(&self, agent_id: &str) -> Option<Arc<AgentRecord>> {
        self.replica
            .lock()
            .agents
            .get(agent_id)
            .map(|e| e.record.clone())
    }

    /// The records `keep` selects, chosen under the replica's lock: the
    /// periodic sweeps look for a few records among every agent of the
    /// tenant, and copying all of them (an `Arc` each, 50 000 at a time,
    /// several times a second) cost more than the look.
    pub fn records_where(&self, keep: impl Fn(&AgentRecord) -> bool) -> Vec<Arc<AgentRecord>> {
        self.replica
            .lock()
            .agents
            .values()
            .filter(|e| keep(&e.record))
            .map(|e| e.record.clone())
            .collect()
    }

    /// The nodes other than `except` that hold an active device of an
    /// agent here, each once.
    pub fn nodes_with_active_devices(&self, except: &str) -> Vec<String> {
        let r = self.replica.lock();
        let nodes = r.device_nodes.nodes_except(except);
        // Tests run debug builds: there every answer is checked against a
        // scan of the records, so the index cannot drift unnoticed.
        #[cfg(debug_assertions)]
        {
            let scanned: HashSet<&str> = r
                .agents
                .values()
                .flat_map(|e| e.record.devices.iter())
                .filter(|d| d.active && d.node != except)
                .map(|d| d.node.as_str())
                .collect();
            let indexed: HashSet<&str> = nodes.iter().map(String::as_str).collect();
            debug_assert_eq!(
                indexed, scanned,
                "the device index drifted from the records"
            );
        }
        nodes
    }

    pub fn records(&self) -> Vec<Arc<AgentRecord>> {
        self.records_where(|_| true)
    }

    pub fn settings(&self) -> Settings {
        self.replica.lock().settings.clone()
    }

    /// Sets (replaces) a connection's scope. Under the lock: queues `reply`
    /// and the snapshot, then registers for the deltas after it.
    ///
    /// With `resume` (PROTOCOL.md §5.1.1) the snapshot carries only the records in
    /// scope changed after `since_seq`, plus the ids of every agent in scope,
    /// when the replica can vouch for that: same epoch, and `since_seq`
    /// neither before the epoch began nor ahead of the tenant. Otherwise it
    /// is a full snapshot with `"resumed": false`.
    pub fn subscribe(
        &self,
        conn: u64,
        outbox: &Arc<Outbox>,
        scope: ScopeFilter,
        reply: Option<Frame>,
        resume: Option<Resume>,
    ) {
        let mut r = self.replica.lock();
        let mut ids: Vec<&AgentEntry> = r
            .agents
            .values()
            .filter(|e| scope.covers(&e.record))
            .collect();
        ids.sort_by(|a, b| a.id.cmp(&b.id));
        // A subscription to everything follows the log and needs no set.
        let visible: HashSet<Arc<str>> = match scope {
            ScopeFilter::All => HashSet::new(),
            ScopeFilter::Channels(_) => ids.iter().map(|e| e.id.clone()).collect(),
        };
        let mut channels_sent = HashMap::new();
        let since = resume
            .filter(|x| x.applies(&r.epoch, r.seq))
            .map(|x| x.since_seq);
        let channels: Vec<_> = r
            .dir
            .channels
            .iter()
            .filter(|c| match &scope {
                ScopeFilter::All => true,
                ScopeFilter::Channels(list) => list.contains(&c.channel_ref()),
            })
            .map(|c| {
                let summary = r.counters.summary(&c.channel_ref());
                let entry = channel_json(c, &summary);
                channels_sent.insert(c.channel_ref(), summary);
                entry
            })
            .collect();
        let sent = ids
            .iter()
            .filter(|e| since.is_none_or(|since| e.record.version > since));
        let mut snapshot = format!(
            r#"{{"type":"snapshot","seq":{},"epoch":{},"resumed":{},"agents":["#,
            r.seq,
            json!(r.epoch.id),
            since.is_some()
        )
        .into_bytes();
        for (i, e) in sent.enumerate() {
            if i > 0 {
                snapshot.push(b',');
            }
            // Straight into the snapshot (a record of plain data always
            // serializes).
            let _ = serde_json::to_writer(&mut snapshot, &*e.record);
        }
        // serde_json writes UTF-8 only: the check cannot fail.
        let mut snapshot = String::from_utf8(snapshot).unwrap_or_default();
        snapshot.push(']');
        if since.is_some() {
            snapshot.push_str(r#","agent_ids":"#);
            snapshot.push_str(&json!(ids.iter().map(|e| &*e.id).collect::<Vec<_>>()).to_string());
        }
        snapshot.push_str(r#","channels":"#);
        snapshot.push_str(&serde_json::Value::from(channels).to_string());
        // The channels' queue statistics in scope (PROTOCOL.md §10.7).
        let mut queue_sent = HashMap::new();
        let queue: Vec<serde_json::Value> = r
            .dir
            .channels
            .iter()
            .map(|c| c.channel_ref())
            .filter(|c| match &scope {
                ScopeFilter::All => true,
                ScopeFilter::Channels(list) => list.contains(c),
            })
            .filter_map(|c| {
                let entry = r.queue.entry_json(&c)?;
                queue_sent.insert(c.clone(), r.queue.sent(&c)?);
                Some(entry)
            })
            .collect();
        snapshot.push_str(r#","queue_stats":"#);
        snapshot.push_str(&serde_json::Value::from(queue).to_string());
        snapshot.push_str(r#","settings":"#);
        snapshot.push_str(&json!(r.settings).to_string());
        snapshot.push('}');
        // Grown by doubling as records were written: it waits in the outbox
        // at its size, not at twice it.
        snapshot.shrink_to_fit();
        let log = (scope == ScopeFilter::All).then_some(&self.log);
        outbox.restart_deltas(
            log,
            reply
                .into_iter()
                .chain([Frame::new(Kind::Snapshot, snapshot)]),
        );
        r.subscribers.insert(
            conn,
            Subscriber {
                outbox: outbox.clone(),
                scope,
                visible,
                channels_sent,
                queue_sent,
            },
        );
    }

    /// Every `every`, sends each subscriber a `channel` message for every
    /// channel in its scope whose counters changed since it last got them;
    /// stops when the tenant is dropped. One pass per tenant bounds the
    /// rate per connection to one message per channel per period.
    /// The same tick sends queue statistics (PROTOCOL.md §10.7), and marks
    /// stale those not updated for `stale`.
    pub fn start_channel_updates(self: &Arc<Self>, every: Duration, stale: Duration) {
        let tenant = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every.max(Duration::from_millis(1)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match tenant.upgrade() {
                    Some(t) => {
                        t.flush_channels();
                        t.flush_queue_stats(crate::clock::now_ms(), stale);
                    }
                    None => return,
                }
            }
        });
    }

    fn flush_channels(&self) {
        let mut r = self.replica.lock();
        let dirty = r.counters.take_dirty();
        if dirty.is_empty() || r.subscribers.is_empty() {
            return;
        }
        for channel in dirty {
            let dir = r.dir.clone();
            let Some(info) = dir.channel(&channel) else {
                continue;
            };
            let summary = r.counters.summary(&channel);
            let key: Arc<str> = Arc::from(format!("\u{0}channel {channel}"));
            let mut frame: Option<Frame> = None;
            for sub in r.subscribers.values_mut() {
                if !sub.covers_channel(&channel)
                    || sub.channels_sent.get(&channel) == Some(&summary)
                {
                    continue;
                }
                let f = frame.get_or_insert_with(|| {
                    protocol::frame(
                        Kind::Channel,
                        &json!({"type": "channel", "channel": channel_json(info, &summary)}),
                    )
                });
                sub.outbox.push_delta(&key, f.clone());
                sub.channels_sent.insert(channel.clone(), summary.clone());
            }
        }
    }

    /// Keeps a channel's statistics if newer than the replica's (from the
    /// backplane, or a load); they go out on the next tick.
    pub fn put_queue_stats(&self, stats: ChannelStats) {
        let mut r = self.replica.lock();
        // A channel the directory no longer has is not shown.
        if r.dir.channel(&stats.channel).is_some() {
            r.queue.put(stats);
        }
    }

    /// The statistics of one channel as this replica has them (the
    /// `queue_stats` message's body).
    pub fn queue_stats(&self, channel: &ChannelRef) -> Option<serde_json::Value> {
        self.replica.lock().queue.message(channel)
    }

    /// Sends each subscriber in scope the newest message of every channel
    /// whose statistics changed or went stale since it last got them.
    fn flush_queue_stats(&self, now_ms: u64, stale: Duration) {
        let mut r = self.replica.lock();
        r.queue.mark_stale(now_ms, stale.as_millis() as u64);
        let dirty = r.queue.take_dirty();
        let r = &mut *r;
        for channel in dirty {
            let (Some(sent), Some(message)) = (r.queue.sent(&channel), r.queue.message(&channel))
            else {
                continue;
            };
            let key: Arc<str> = Arc::from(format!("\u{0}queue_stats {channel}"));
            let frame = protocol::frame(Kind::QueueStats, &message);
            for sub in r.subscribers.values_mut() {
                if !sub.covers_channel(&channel) || sub.queue_sent.get(&channel) == Some(&sent) {
                    continue;
                }
                sub.outbox.push_delta(&key, frame.clone());
                sub.queue_sent.insert(channel.clone(), sent);
            }
        }
    }

    /// The counters of one channel as this replica has them.
    pub fn channel_summary(&self, channel: &ChannelRef) -> Summary {
        self.replica.lock().counters.summary(channel)
    }

    pub fn unsubscribe(&self, conn: u64) {
        if let Some(sub) = self.replica.lock().subscribers.remove(&conn) {
            sub.outbox.unfollow();
        }
    }

    /// Registers a local agent connection; queues its current `state`.
    pub fn watch_agent(
        &self,
        agent_id: &str,
        device: &Arc<LocalDevice>,
        conn: u64,
        outbox: &Arc<Outbox>,
    ) {
        let mut r = self.replica.lock();
        if let Some(e) = r.agents.get(agent_id) {
            outbox.push_delta(&e.id, e.frame(Kind::State, &e.json()));
        }
        // Signed in a moment ago: its entry is there (unless a directory
        // change closed it meanwhile, when it is closing anyway).
        if let Some(signed_in) = r
            .sessions
            .get_mut(agent_id)
            .and_then(|list| list.iter_mut().find(|l| l.conn == conn))
        {
            signed_in.device = Some(device.clone());
            return;
        }
        let list = r.sessions.entry(agent_id.to_string()).or_default();
        push_one(
            list,
            Local {
                conn,
                outbox: outbox.clone(),
                device: Some(device.clone()),
            },
        );
    }

    /// The connection ends: no more `state` frames (nor directory closes).
    pub fn unwatch_agent(&self, agent_id: &str, conn: u64) {
        self.sign_off(agent_id, conn);
    }

    /// The outboxes of this node's connections of one agent (command routing).
    pub fn local_connections(&self, agent_id: &str) -> Vec<Arc<Outbox>> {
        self.replica
            .lock()
            .sessions
            .get(agent_id)
            .map(|list| watchers(list).map(|(_, o)| o.clone()).collect())
            .unwrap_or_default()
    }
}

/// Pushes onto one of the per-user lists of connections, with room for
/// just one at first: almost every user has one connection (an agent, one
/// device), and a `Vec`'s first push reserves four (BENCHMARKS.md, memory
/// per connection). Later pushes grow it as usual.
fn push_one<T>(list: &mut Vec<T>, item: T) {
    if list.capacity() == 0 {
        list.reserve_exact(1);
    }
    list.push(item);
}

/// A connection registered by [`Tenant::sign_in`]; forgotten on drop.
pub struct SignedIn {
    tenant: Arc<Tenant>,
    /// The directory's user, shared: not a copy of its id per connection.
    user: Arc<User>,
    conn: u64,
}

impl Drop for SignedIn {
    fn drop(&mut self) {
        self.tenant.sign_off(&self.user.id, self.conn);
    }
}

/// Changes a store lost that a replica holds (see [`Tenant::lost_by_store`]).
pub struct LostChanges {
    /// Records newer here than in the store, to write back.
    pub reapply: Vec<LostChange>,
    /// The store's records whose version may repeat one a client saw.
    pub renumber: Vec<Arc<AgentRecord>>,
}

/// One record the store lost a change of.
pub struct LostChange {
    pub ours: Arc<AgentRecord>,
    /// The store's version of it (the CAS's expectation).
    pub store_version: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::change::RecordPut;
    use crate::directory::{ChannelInfo, Directory};
    use crate::domain::{ChannelKind, Role, Settings};

    fn tenant() -> Arc<Tenant> {
        tenant_asking(None)
    }

    /// The demo tenant, its repairs asked of `gaps`.
    fn tenant_asking(gaps: Option<tokio::sync::mpsc::UnboundedSender<Repair>>) -> Arc<Tenant> {
        let directory = Directory::parse(crate::directory::DEMO_DIRECTORY).expect("demo directory");
        let dir = directory.tenants().next().expect("a tenant").clone();
        Tenant::new(dir, "n1", gaps)
    }

    fn record(id: &str, version: u64, reason: &str) -> Arc<AgentRecord> {
        let mut r = AgentRecord::new(id, id, &[Role::Agent], [], &Settings::default());
        r.version = version;
        r.pause_reason = Some(reason.into());
        Arc::new(r)
    }

    fn state(seq: u64, agents: Vec<Arc<AgentRecord>>) -> TenantState {
        TenantState {
            seq,
            settings: Settings::default(),
            agents,
            directory: None,
            epoch: Epoch::default(),
        }
    }

    /// The seqs of the agent deltas a whole-tenant subscriber gets next.
    fn delta_seqs(outbox: &Outbox) -> Vec<u64> {
        outbox
            .take()
            .frames
            .iter()
            .filter(|f| f.kind == Kind::Agent)
            .map(|f| f.seq)
            .collect()
    }

    #[test]
    fn a_delta_past_a_gap_waits_for_the_catch_up_and_goes_out_after_the_older_ones() {
        // Issue 21: a node back from a Redis outage committed a06@13 before
        // it caught up with a01..a05@8..12 from other nodes. Sent first, a
        // supervisor resuming from 13 would never get 8..12.
        let t = tenant();
        let ids = ["a01", "a02", "a03", "a04", "a05", "a06"];
        t.load(state(
            7,
            ids.iter()
                .enumerate()
                .map(|(i, id)| record(id, i as u64 + 1, "old"))
                .collect(),
        ));
        let outbox = Outbox::new(64);
        t.subscribe(1, &outbox, ScopeFilter::All, None, None);
        assert!(delta_seqs(&outbox).is_empty(), "only the snapshot so far");
        t.apply(Delta::Agent(record("a06", 13, "mine")));
        assert!(
            delta_seqs(&outbox).is_empty(),
            "13 is held: 8..12 are missing"
        );
        assert_eq!(t.seq(), 7, "nothing past the gap is applied");
        // The catch-up read the store at 12 (13 was committed after it).
        t.resync(state(
            12,
            ids[..5]
                .iter()
                .enumerate()
                .map(|(i, id)| record(id, i as u64 + 8, "new"))
                .chain([record("a06", 6, "old")])
                .collect(),
        ));
        assert_eq!(delta_seqs(&outbox), [8, 9, 10, 11, 12, 13]);
        assert_eq!(t.seq(), 13);
        assert_eq!(t.record("a06").map(|r| r.version), Some(13));
    }

    #[test]
    fn a_delta_under_an_applied_seq_that_this_replica_never_saw_starts_a_catch_up() {
        // A gap the README listed: in a failover that lost writes, a node
        // took deltas from the old master, then the new one handed the same
        // seqs out again for other changes. The node counted them as applied
        // and kept those agents as the lost history left them.
        let (gaps, mut asked) = tokio::sync::mpsc::unbounded_channel();
        let t = tenant_asking(Some(gaps));
        t.load(state(
            10,
            vec![
                record("a01", 9, "old master"),
                record("a02", 10, "old master"),
            ],
        ));
        // The same deltas again (pub/sub, or a catch-up that read them
        // first), or an older change of an agent: one history, nothing to do.
        t.apply(Delta::Agent(record("a02", 10, "old master")));
        t.apply(Delta::Agent(record("a01", 9, "old master")));
        t.apply(Delta::Agent(record("a01", 7, "before")));
        assert_eq!(asked.try_recv().ok(), None, "a duplicate is no fork");
        // The new master's 10 is another change: a01 here is older than it.
        t.apply(Delta::Agent(record("a01", 10, "new master")));
        assert_eq!(
            asked.try_recv().ok(),
            Some(Repair::CatchUp(t.id().to_string()))
        );
        assert_eq!(
            t.record("a01").map(|r| r.version),
            Some(9),
            "nothing applied: the catch-up compares with the store"
        );
        // One catch-up asked until it is done, however many such deltas.
        t.apply(Delta::Agent(record("a01", 10, "new master")));
        assert_eq!(asked.try_recv().ok(), None);
        t.resync(state(
            10,
            vec![
                record("a01", 10, "new master"),
                record("a02", 10, "old master"),
            ],
        ));
        assert_eq!(t.record("a01").map(|r| r.version), Some(10));
        // Its version, but not its content.
        t.apply(Delta::Agent(record("a02", 10, "new master")));
        assert_eq!(
            asked.try_recv().ok(),
            Some(Repair::CatchUp(t.id().to_string()))
        );
    }

    #[test]
    fn a_directory_delta_under_an_applied_seq_newer_than_the_directory_starts_a_catch_up() {
        let (gaps, mut asked) = tokio::sync::mpsc::unbounded_channel();
        let t = tenant_asking(Some(gaps));
        t.load(state(10, vec![record("a01", 9, "old master")]));
        let channel = |name: &str| {
            Arc::new(DirectoryWrite {
                expected_version: 0,
                channels_put: vec![ChannelInfo {
                    kind: ChannelKind::Queue,
                    id: "vip".into(),
                    name: name.into(),
                    assigned: Vec::new(),
                }],
                event: "channel_updated".into(),
                ..DirectoryWrite::default()
            })
        };
        // The next seq, then the same delta again: one history.
        t.apply(Delta::Directory {
            seq: 11,
            write: channel("old master"),
        });
        t.apply(Delta::Directory {
            seq: 11,
            write: channel("old master"),
        });
        assert_eq!(asked.try_recv().ok(), None, "a duplicate is no fork");
        assert_eq!(t.directory().version, 11);
        t.apply(Delta::Agent(record("a01", 12, "old master")));
        // A directory change at 12, which this replica applied as a01's.
        t.apply(Delta::Directory {
            seq: 12,
            write: channel("new master"),
        });
        assert_eq!(
            asked.try_recv().ok(),
            Some(Repair::CatchUp(t.id().to_string()))
        );
        assert_eq!(t.directory().version, 11, "nothing applied");

        // A change of two seqs whose first this replica applied as another.
        t.resync(state(12, vec![record("a01", 12, "new master")]));
        let mut two = (*channel("two seqs")).clone();
        two.records_put.push(RecordPut {
            expected: None,
            record: (*record("x1", 0, "new")).clone(),
        });
        assert_eq!(two.first_seq(13), 12);
        t.apply(Delta::Directory {
            seq: 13,
            write: Arc::new(two),
        });
        assert_eq!(
            asked.try_recv().ok(),
            Some(Repair::CatchUp(t.id().to_string()))
        );
        assert_eq!(t.seq(), 12, "nothing applied");
        assert!(t.record("x1").is_none());
    }

    #[test]
    fn a_state_older_than_the_replica_takes_back_nothing_applied_since() {
        // A catch-up read the store, then deltas were applied before it
        // took the replica: the directory change and the agent it made stay.
        let t = tenant();
        t.load(state(10, vec![record("a01", 9, "before")]));
        let then = TenantState {
            directory: Some(t.directory().image()),
            ..state(10, vec![record("a01", 9, "before")])
        };
        let mut write = DirectoryWrite {
            expected_version: 0,
            channels_put: vec![ChannelInfo {
                kind: ChannelKind::Queue,
                id: "vip".into(),
                name: "VIP".into(),
                assigned: Vec::new(),
            }],
            event: "user_created".into(),
            ..DirectoryWrite::default()
        };
        write.records_put.push(RecordPut {
            expected: None,
            record: (*record("x1", 0, "new")).clone(),
        });
        t.apply(Delta::Directory {
            seq: 12,
            write: Arc::new(write),
        });
        assert_eq!(t.seq(), 12);
        t.resync(then);
        assert_eq!(t.record("x1").map(|r| r.version), Some(11));
        assert_eq!(t.directory().version, 12);
        assert_eq!(t.seq(), 12);
    }

    #[test]
    fn a_catch_up_sends_missed_removals_in_version_order_with_the_records() {
        // The convergence run behind Sentinels found it: a replica that
        // missed a directory change removing x0 (at 10) caught up with the
        // store at 12 and sent `agent_removed x0` with the store's seq, the
        // version a02 had just been sent with. The tombstone's seq goes in
        // order instead.
        let t = tenant();
        t.load(state(
            5,
            vec![
                record("a01", 1, "old"),
                record("a02", 2, "old"),
                record("x0", 3, "old"),
            ],
        ));
        let outbox = Outbox::new(64);
        t.subscribe(1, &outbox, ScopeFilter::All, None, None);
        outbox.take();
        let mut at_12 = state(12, vec![record("a01", 9, "new"), record("a02", 12, "new")]);
        let mut image = t.directory().image();
        image.version = 11;
        image.removed.insert("x0".into(), 10);
        at_12.directory = Some(image);
        t.resync(at_12);
        let sent: Vec<(Kind, u64)> = outbox
            .take()
            .frames
            .iter()
            .filter(|f| matches!(f.kind, Kind::Agent | Kind::AgentRemoved))
            .map(|f| (f.kind, f.seq))
            .collect();
        assert_eq!(
            sent,
            [
                (Kind::Agent, 9),
                (Kind::AgentRemoved, 10),
                (Kind::Agent, 12)
            ]
        );
        assert!(t.record("x0").is_none());
    }

    #[test]
    fn a_device_held_here_but_shown_inactive_by_a_sweep_is_sent_for_reassertion() {
        let directory = Directory::parse(crate::directory::DEMO_DIRECTORY).expect("demo directory");
        let dir = directory.tenants().next().expect("a tenant").clone();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let t = Tenant::new(dir, "n1", Some(tx));
        let device = |active: bool, node: &str| crate::domain::Device {
            id: "d1".into(),
            kind: "softphone".into(),
            label: None,
            active,
            node: node.into(),
            since_ms: 1,
        };
        let with = |version: u64, d: crate::domain::Device| {
            let mut r = (*record("a01", version, "x")).clone();
            r.devices = vec![d];
            r.changed_by = Some(crate::domain::Actor::system());
            Arc::new(r)
        };
        t.load(state(1, vec![with(1, device(true, "n1"))]));
        let d1 = crate::protocol::DeviceHello {
            id: "d1".into(),
            kind: "softphone".into(),
            label: None,
        };
        let d1 = crate::hub::LocalDevice::new("t", "a01", d1);
        t.watch_agent("a01", &d1, 7, &Outbox::new(8));
        // Another node's device going down, or ours coming up: nothing.
        t.apply(Delta::Agent(with(2, device(false, "n2"))));
        t.apply(Delta::Agent(with(3, device(true, "n1"))));
        assert!(rx.try_recv().is_err());
        // Signed out by a supervisor: the sockets are closing, nothing.
        let mut signed_out = (*with(4, device(false, "n1"))).clone();
        signed_out.changed_by = Some(crate::domain::Actor::new("s1", Role::Supervisor));
        t.apply(Delta::Agent(Arc::new(signed_out)));
        t.apply(Delta::Agent(with(5, device(true, "n1"))));
        assert!(rx.try_recv().is_err());
        // Ours shown inactive by the system (a survivor swept this node):
        // re-assert.
        t.apply(Delta::Agent(with(6, device(false, "n1"))));
        assert_eq!(
            rx.try_recv().ok(),
            Some(Repair::Reassert {
                tenant: t.id().to_string(),
                agent: "a01".into()
            })
        );
    }

    #[test]
    fn a_users_connections_on_this_node_and_the_state_frames_of_its_devices() {
        let t = tenant();
        t.load(state(1, vec![record("a3", 1, "x")]));
        let device = crate::hub::LocalDevice::new(
            "acme",
            "a3",
            crate::protocol::DeviceHello {
                id: "d1".into(),
                kind: "softphone".into(),
                label: None,
            },
        );
        // a3 is an agent and a supervisor: a phone and a wallboard.
        let (phone, wallboard) = (Outbox::new(8), Outbox::new(8));
        let (_, phone_in) = t.sign_in("a3", 1, &phone).expect("a3 signs in");
        let (_, wallboard_in) = t.sign_in("a3", 2, &wallboard).expect("a3 signs in");
        assert!(t.local_connections("a3").is_empty(), "no device yet");
        t.watch_agent("a3", &device, 1, &phone);
        let routed = t.local_connections("a3");
        assert_eq!(routed.len(), 1, "the phone, not the wallboard");
        assert!(Arc::ptr_eq(&routed[0], &phone));
        let kinds = |o: &Outbox| -> Vec<Kind> { o.take().frames.iter().map(|f| f.kind).collect() };
        assert_eq!(kinds(&phone), [Kind::State], "its agent's state at once");
        t.apply(Delta::Agent(record("a3", 2, "y")));
        assert_eq!(kinds(&phone), [Kind::State]);
        assert!(kinds(&wallboard).is_empty(), "a wallboard gets no state");
        // The phone's connection ends: first unwatched, then signed off.
        t.unwatch_agent("a3", 1);
        assert!(t.local_connections("a3").is_empty());
        t.apply(Delta::Agent(record("a3", 3, "z")));
        assert!(kinds(&phone).is_empty(), "nothing after it ended");
        drop(phone_in);
        assert_eq!(t.replica.lock().sessions["a3"].len(), 1, "the wallboard");
        drop(wallboard_in);
        assert!(t.replica.lock().sessions.is_empty());
    }

    #[test]
    fn held_deltas_follow_the_missing_ones_when_those_arrive_late() {
        let t = tenant();
        t.load(state(2, vec![record("a01", 1, "x"), record("a02", 2, "x")]));
        let outbox = Outbox::new(64);
        t.subscribe(1, &outbox, ScopeFilter::All, None, None);
        t.apply(Delta::Agent(record("a02", 5, "y")));
        t.apply(Delta::Agent(record("a01", 4, "y")));
        assert!(delta_seqs(&outbox).is_empty());
        t.apply(Delta::Settings {
            seq: 3,
            settings: Settings::default(),
        });
        assert_eq!(delta_seqs(&outbox), [4, 5]);
        assert_eq!(t.seq(), 5);
        // A catch-up that finds nothing newer changes nothing.
        t.resync(state(5, t.state().agents));
        assert!(delta_seqs(&outbox).is_empty());
    }

    #[test]
    fn what_a_store_that_fell_back_lost_is_told_apart_from_what_it_took_since() {
        let t = tenant();
        // The nodes saw seq 105: w@80, x@102, y@104 (lost), z@105 (lost).
        t.load(state(
            105,
            vec![
                record("w", 80, "w"),
                record("x", 102, "x-seen"),
                record("y", 104, "y-seen"),
                record("z", 105, "z-seen"),
            ],
        ));
        assert_eq!(
            t.lost_by_store(&state(105, t.state().agents)).map(|_| ()),
            None
        );
        // The store fell back to 101 and took x@102 and y@103 since, from
        // nodes that had not seen the lost ones.
        let store = state(
            103,
            vec![
                record("w", 80, "w"),
                record("x", 102, "x-new"),
                record("y", 103, "y-new"),
                record("z", 90, "z-old"),
            ],
        );
        assert_eq!(t.store_behind(&store), Some(105));
        let lost = t.lost_by_store(&store).expect("lost");
        let ids = |v: &[Arc<AgentRecord>]| -> Vec<String> {
            let mut ids: Vec<String> = v.iter().map(|r| r.id.clone()).collect();
            ids.sort();
            ids
        };
        let reapplied: Vec<Arc<AgentRecord>> =
            lost.reapply.iter().map(|l| l.ours.clone()).collect();
        // z's lost change is older than anything the store took since: back.
        assert_eq!(ids(&reapplied), ["z"]);
        assert_eq!(lost.reapply[0].store_version, 90);
        // x (same version, other content) and y (taken since, at or above
        // the oldest lost version) keep the store's change, renumbered.
        assert_eq!(ids(&lost.renumber), ["x", "y"]);
        assert!(lost
            .renumber
            .iter()
            .all(|r| r.pause_reason.as_deref() != Some("x-seen")));
    }
}
