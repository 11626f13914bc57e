//! The in-memory backplane: one process, no Redis (the default).
//!
//! Each tenant's store sits behind one mutex; a commit checks the version,
//! bumps the seq, writes the record, appends the history and calls the
//! attached handlers while still holding the lock, which is what makes
//! delivery strictly seq-ordered without a separate sequencer. Nothing here
//! can time out, so a change is either applied or refused: this store never
//! answers `outcome_unknown`.
//!
//! With `--data-dir` the same store keeps a [`Journal`] (`crate::store`):
//! every commit hands it what the commit changes, in the same critical
//! section and *before* anything is applied in memory or published, so a
//! change a client was told about is on disk, and a change the journal
//! could not write is applied nowhere (the caller gets `unavailable`).
//! Without a journal nothing below changes.

use super::*;
use crate::events::log::EventLog;
use crate::events::{Body, Event, Retention};
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// How many idempotency keys a tenant's store remembers at most (PROTOCOL.md
/// §3.3): within [`IdempotencyKey::WINDOW`], the newest this many.
pub const MAX_KEYS: usize = 100_000;

pub struct MemoryBackplane {
    tenants: Mutex<HashMap<String, Arc<Mutex<Store>>>>,
    history_capacity: usize,
    /// The epoch of the tenants this process creates: without a journal the
    /// store lives and dies with the process, so a restarted node is another
    /// epoch (supervisors reload in full). A restored tenant keeps its own.
    epoch: Epoch,
    journal: Option<Arc<dyn Journal>>,
    /// How much of each tenant's event stream is kept.
    retention: Retention,
    /// Service credentials by tenant, then id ([`credential`]): apart from
    /// the tenants' stores, since a credential is no part of a tenant's
    /// seq-ordered state.
    credentials: Mutex<HashMap<String, std::collections::BTreeMap<String, credential::Credential>>>,
    /// Webhook documents by (tenant, name): version and document (`None`:
    /// deleted; the version keeps growing so a stale writer never matches).
    webhooks: Mutex<HashMap<(String, String), WebhookDoc>>,
    /// Queue statistics by tenant, apart from the tenants' stores for the
    /// same reason: they take no seq (PROTOCOL.md §10.7). Not journaled:
    /// the ACD pushes them again within seconds.
    queue_stats: Mutex<HashMap<String, QueueBoard>>,
}

/// One tenant's latest queue statistics and who receives new ones.
#[derive(Default)]
struct QueueBoard {
    latest: HashMap<crate::domain::ChannelRef, ChannelStats>,
    handlers: Vec<QueueStatsHandler>,
}

/// A webhook document as the memory store keeps it.
pub type WebhookDoc = (u64, Option<String>);

/// What one commit changes, as a [`Journal`] receives it: everything needed
/// to replay it after a restart.
#[derive(Debug)]
pub struct Written<'a> {
    /// The tenant seq after the change.
    pub seq: u64,
    /// Set on the tenant's first write only (its creation from the seed).
    pub epoch: Option<&'a Epoch>,
    pub settings: Option<&'a Settings>,
    /// The whole directory after the change, when it changed.
    pub directory: Option<&'a DirectoryImage>,
    pub records: &'a [Arc<AgentRecord>],
    /// Ids of the records the change deleted.
    pub removed: &'a [String],
    /// History entries appended, oldest first.
    pub history: &'a [HistoryEntry],
    /// The idempotency key the change was made under.
    pub key: Option<&'a IdempotencyKey>,
    /// The events the change appends to the tenant's stream, in order.
    pub events: &'a [(EventId, Event)],
}

/// Makes a commit durable before the memory store applies it. Called with
/// the tenant's lock held: a journal must not call back into the backplane.
pub trait Journal: Send + Sync + 'static {
    /// `Err`: nothing of the change is durable, and the memory store then
    /// applies none of it either.
    fn write(&self, tenant: &str, change: &Written<'_>) -> Result<(), String>;

    /// Makes a tenant's service credentials durable: all of them, as they
    /// are after a creation or a revocation. `Err`: the change is refused.
    fn write_credentials(
        &self,
        _tenant: &str,
        _all: &[credential::Credential],
    ) -> Result<(), String> {
        Ok(())
    }

    /// The credentials kept, by tenant (read once, at start).
    fn read_credentials(&self) -> Vec<(String, Vec<credential::Credential>)> {
        Vec::new()
    }
    /// Makes a webhook document (`crate::webhooks`) durable at `version`
    /// (`doc: None`: deleted) before the memory store applies it.
    fn write_webhook_doc(
        &self,
        _tenant: &str,
        _name: &str,
        _version: u64,
        _doc: Option<&str>,
    ) -> Result<(), String> {
        Ok(())
    }
}

/// A tenant as a journal kept it: what the memory store starts from.
#[derive(Clone, Debug)]
pub struct Restored {
    pub tenant: String,
    pub seq: u64,
    pub epoch: Epoch,
    pub settings: Settings,
    pub records: Vec<AgentRecord>,
    pub directory: DirectoryImage,
    /// Oldest first.
    pub history: Vec<HistoryEntry>,
    /// Keys still within their window: key, seq of its change, when it was
    /// used (ms since the Unix epoch), oldest first.
    pub keys: Vec<(IdempotencyKey, u64, u64)>,
    /// The event stream as kept, oldest first.
    pub events: Vec<(EventId, Arc<str>)>,
}

struct Store {
    seq: u64,
    settings: Settings,
    records: HashMap<String, Arc<AgentRecord>>,
    directory: DirectoryImage,
    history: VecDeque<HistoryEntry>,
    events: EventLog,
    handlers: Vec<DeltaHandler>,
    once: Remembered,
    epoch: Epoch,
    /// Restored from a journal, or written to it: the store is the
    /// authority, the directory file seeds nothing more (as with Redis,
    /// `lua/seed.lua`).
    restored: bool,
}

/// Idempotency keys used, with the seq of their change, oldest first.
#[derive(Default)]
struct Remembered {
    seqs: HashMap<IdempotencyKey, u64>,
    order: VecDeque<(Instant, IdempotencyKey)>,
}

impl Remembered {
    fn forget_old(&mut self) {
        while let Some((at, _)) = self.order.front() {
            if at.elapsed() < IdempotencyKey::WINDOW && self.order.len() <= MAX_KEYS {
                break;
            }
            if let Some((_, key)) = self.order.pop_front() {
                self.seqs.remove(&key);
            }
        }
    }

    fn get(&mut self, key: &IdempotencyKey) -> Option<u64> {
        self.forget_old();
        self.seqs.get(key).copied()
    }

    fn remember(&mut self, key: Option<&IdempotencyKey>, seq: u64) {
        if let Some(key) = key {
            self.seqs.insert(key.clone(), seq);
            self.order.push_back((Instant::now(), key.clone()));
            self.forget_old();
        }
    }
}

impl MemoryBackplane {
    pub fn new(history_capacity: usize) -> Self {
        MemoryBackplane {
            tenants: Mutex::new(HashMap::new()),
            history_capacity,
            epoch: Epoch::new("memory", 0),
            journal: None,
            retention: Retention::default(),
            credentials: Mutex::new(HashMap::new()),
            webhooks: Mutex::new(HashMap::new()),
            queue_stats: Mutex::new(HashMap::new()),
        }
    }

    /// Starts from the webhook documents a journal kept
    /// (`crate::store::Opened::webhooks`).
    pub fn with_webhook_docs(self, docs: Vec<(String, String, WebhookDoc)>) -> Self {
        {
            let mut map = self.webhooks.lock();
            for (tenant, name, doc) in docs {
                map.insert((tenant, name), doc);
            }
        }
        self
    }

    /// Keeps each tenant's event stream within `retention`
    /// ([`Retention::OFF`]: keeps none).
    pub fn with_events(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
    }

    /// A store that starts from `restored` and writes every change to
    /// `journal` before applying it (`--data-dir`).
    pub fn durable(
        history_capacity: usize,
        journal: Arc<dyn Journal>,
        restored: Vec<Restored>,
    ) -> Self {
        let mut backplane = MemoryBackplane::new(history_capacity);
        backplane.credentials = Mutex::new(
            journal
                .read_credentials()
                .into_iter()
                .map(|(tenant, all)| (tenant, all.into_iter().map(|c| (c.id.clone(), c)).collect()))
                .collect(),
        );
        backplane.journal = Some(journal);
        let now_ms = crate::clock::now_ms();
        let now = Instant::now();
        let mut tenants = HashMap::new();
        for t in restored {
            let mut once = Remembered::default();
            for (key, seq, at_ms) in t.keys {
                let age = Duration::from_millis(now_ms.saturating_sub(at_ms));
                let at = now.checked_sub(age).unwrap_or(now);
                once.seqs.insert(key.clone(), seq);
                once.order.push_back((at, key));
            }
            once.forget_old();
            let mut history: VecDeque<HistoryEntry> = t.history.into();
            while history.len() > history_capacity {
                history.pop_front();
            }
            let store = Store {
                seq: t.seq,
                settings: t.settings,
                records: t
                    .records
                    .into_iter()
                    .map(|r| (r.id.clone(), Arc::new(r)))
                    .collect(),
                directory: t.directory,
                history,
                events: EventLog::restored(t.events),
                handlers: Vec::new(),
                once,
                epoch: t.epoch,
                restored: true,
            };
            tenants.insert(t.tenant, Arc::new(Mutex::new(store)));
        }
        backplane.tenants = Mutex::new(tenants);
        backplane
    }

    /// Hands a change to the journal, if any: `Err` means refuse it.
    fn journal(&self, tenant: &str, change: Written<'_>) -> Result<(), BackplaneError> {
        match &self.journal {
            None => Ok(()),
            Some(journal) => journal.write(tenant, &change).map_err(|e| {
                BackplaneError::Unavailable(format!("the data directory refused the change: {e}"))
            }),
        }
    }

    fn store(&self, tenant: &str) -> Result<Arc<Mutex<Store>>, BackplaneError> {
        self.tenants
            .lock()
            .get(tenant)
            .cloned()
            .ok_or_else(|| BackplaneError::Unavailable(format!("tenant {tenant} is not attached")))
    }

    fn record_history(&self, store: &mut Store, entry: HistoryEntry) {
        if self.history_capacity > 0 {
            if store.history.len() >= self.history_capacity {
                store.history.pop_front();
            }
            store.history.push_back(entry);
        }
    }

    /// Numbers a change's events with the ids they will take (none when
    /// the stream is off).
    fn events(
        &self,
        store: &Store,
        events: impl IntoIterator<Item = Event>,
    ) -> Vec<(EventId, Event)> {
        if !self.retention.enabled() {
            return Vec::new();
        }
        let events: Vec<Event> = events.into_iter().collect();
        let ids = store.events.next_ids(events.len(), crate::clock::now_ms());
        ids.into_iter().zip(events).collect()
    }

    /// Keeps events the journal (if any) has written.
    fn append_events(&self, store: &mut Store, events: Vec<(EventId, Event)>) {
        if !events.is_empty() {
            store
                .events
                .append(events, &self.retention, crate::clock::now_ms());
        }
    }

    fn state(&self, store: &Store) -> TenantState {
        TenantState {
            seq: store.seq,
            settings: store.settings.clone(),
            agents: store.records.values().cloned().collect(),
            directory: Some(store.directory.clone()),
            epoch: store.epoch.clone(),
        }
    }

    fn publish(store: &Store, delta: Delta) {
        for handler in &store.handlers {
            handler(delta.clone());
        }
    }
}

#[async_trait]
impl Backplane for MemoryBackplane {
    fn watch_queue_stats(&self, tenant: &str, handler: QueueStatsHandler) {
        self.queue_stats
            .lock()
            .entry(tenant.to_string())
            .or_default()
            .handlers
            .push(handler);
    }

    async fn put_queue_stats(
        &self,
        tenant: &str,
        channel: &crate::domain::ChannelRef,
        stats: &crate::domain::queue_stats::QueueStats,
    ) -> Result<ChannelStats, BackplaneError> {
        let mut boards = self.queue_stats.lock();
        let board = boards.entry(tenant.to_string()).or_default();
        // Two pushes within a millisecond still order (newer wins).
        let last = board.latest.get(channel).map_or(0, |s| s.updated_ms);
        let stored = ChannelStats {
            channel: channel.clone(),
            stats: stats.clone(),
            updated_ms: crate::clock::now_ms().max(last + 1),
        };
        board.latest.insert(channel.clone(), stored.clone());
        for handler in &board.handlers {
            handler(stored.clone());
        }
        Ok(stored)
    }

    async fn queue_stats(&self, tenant: &str) -> Result<Vec<ChannelStats>, BackplaneError> {
        Ok(self
            .queue_stats
            .lock()
            .get(tenant)
            .map(|b| b.latest.values().cloned().collect())
            .unwrap_or_default())
    }

    async fn attach(
        &self,
        tenant: &str,
        seed: TenantSeed,
        on_delta: DeltaHandler,
    ) -> Result<TenantState, BackplaneError> {
        let store = {
            let mut tenants = self.tenants.lock();
            match tenants.get(tenant) {
                Some(store) => store.clone(),
                None => {
                    let mut store = Store {
                        seq: 0,
                        settings: seed.settings.clone(),
                        records: HashMap::new(),
                        directory: seed.directory.clone(),
                        history: VecDeque::new(),
                        events: EventLog::default(),
                        handlers: Vec::new(),
                        once: Remembered::default(),
                        epoch: self.epoch.clone(),
                        restored: false,
                    };
                    if self.journal.is_some() {
                        // The tenant's creation is durable before anyone
                        // sees it, seed records included.
                        for record in &seed.agents {
                            store
                                .records
                                .entry(record.id.clone())
                                .or_insert_with(|| Arc::new(record.clone()));
                        }
                        let records: Vec<Arc<AgentRecord>> =
                            store.records.values().cloned().collect();
                        self.journal(
                            tenant,
                            Written {
                                seq: 0,
                                epoch: Some(&store.epoch),
                                settings: Some(&store.settings),
                                directory: Some(&store.directory),
                                records: &records,
                                removed: &[],
                                history: &[],
                                key: None,
                                events: &[],
                            },
                        )?;
                        // From now on the file is the authority: the
                        // directory file seeds nothing more.
                        store.restored = true;
                    }
                    let store = Arc::new(Mutex::new(store));
                    tenants.insert(tenant.to_string(), store.clone());
                    store
                }
            }
        };
        let mut store = store.lock();
        if !store.restored {
            for record in seed.agents {
                store
                    .records
                    .entry(record.id.clone())
                    .or_insert_with(|| Arc::new(record));
            }
        }
        store.handlers.push(on_delta);
        Ok(self.state(&store))
    }

    async fn commit_agent(
        &self,
        tenant: &str,
        expected_version: u64,
        mut record: AgentRecord,
        event: &'static str,
        once: Option<&IdempotencyKey>,
    ) -> Result<Commit, BackplaneError> {
        let store = self.store(tenant)?;
        let mut store = store.lock();
        let current = store.records.get(&record.id).cloned();
        if once.is_some_and(|key| store.once.get(key).is_some()) {
            return Ok(Commit::AlreadyApplied(current));
        }
        if current.as_ref().map(|r| r.version) != Some(expected_version) {
            return Ok(Commit::Conflict(current));
        }
        let seq = store.seq + 1;
        record.version = seq;
        let record = Arc::new(record);
        let entry = HistoryEntry::of(&record, event);
        let events = self.events(
            &store,
            [Event {
                version: seq,
                event: event.into(),
                at_ms: entry.at_ms,
                by: entry.by.clone(),
                body: Body::Agent {
                    previous: current,
                    current: Some(record.clone()),
                },
            }],
        );
        self.journal(
            tenant,
            Written {
                seq,
                epoch: None,
                settings: None,
                directory: None,
                records: std::slice::from_ref(&record),
                removed: &[],
                history: std::slice::from_ref(&entry),
                key: once,
                events: &events,
            },
        )?;
        store.seq = seq;
        store.records.insert(record.id.clone(), record.clone());
        self.record_history(&mut store, entry);
        self.append_events(&mut store, events);
        store.once.remember(once, seq);
        Self::publish(&store, Delta::Agent(record.clone()));
        Ok(Commit::Committed(record))
    }

    async fn update_settings(
        &self,
        tenant: &str,
        patch: &SettingsPatch,
        by: &Actor,
        once: Option<&IdempotencyKey>,
    ) -> Result<(u64, Settings), BackplaneError> {
        let store = self.store(tenant)?;
        let mut store = store.lock();
        if let Some(seq) = once.and_then(|key| store.once.get(key)) {
            return Ok((seq, store.settings.clone()));
        }
        let mut settings = store.settings.clone();
        patch.apply_to(&mut settings);
        let seq = store.seq + 1;
        let events = self.events(
            &store,
            [Event {
                version: seq,
                event: "settings_updated".into(),
                at_ms: crate::clock::now_ms(),
                by: by.clone(),
                body: Body::Settings {
                    settings: Box::new(settings.clone()),
                },
            }],
        );
        self.journal(
            tenant,
            Written {
                seq,
                epoch: None,
                settings: Some(&settings),
                directory: None,
                records: &[],
                removed: &[],
                history: &[],
                key: once,
                events: &events,
            },
        )?;
        store.settings = settings.clone();
        store.seq = seq;
        self.append_events(&mut store, events);
        store.once.remember(once, seq);
        Self::publish(
            &store,
            Delta::Settings {
                seq,
                settings: settings.clone(),
            },
        );
        Ok((seq, settings))
    }

    async fn commit_directory(
        &self,
        tenant: &str,
        write: &DirectoryWrite,
        once: Option<&IdempotencyKey>,
    ) -> Result<DirectoryCommit, BackplaneError> {
        let store = self.store(tenant)?;
        let mut store = store.lock();
        if let Some(seq) = once.and_then(|key| store.once.get(key)) {
            return Ok(DirectoryCommit::AlreadyApplied(seq));
        }
        let version = |id: &str| store.records.get(id).map(|r| r.version);
        let stale = store.directory.version != write.expected_version
            || write
                .records_put
                .iter()
                .any(|p| version(&p.record.id) != p.expected)
            || write
                .records_removed
                .iter()
                .any(|r| version(&r.id) != Some(r.expected));
        if stale {
            return Ok(DirectoryCommit::Conflict(store.seq));
        }
        let seq = store.seq + write.seqs_used();
        let mut directory = store.directory.clone();
        write.apply_to(&mut directory, seq);
        let records = write.committed_records(seq);
        let mut history: Vec<HistoryEntry> = records
            .iter()
            .map(|record| HistoryEntry::of(record, write.event.clone()))
            .collect();
        let mut removed = Vec::new();
        let by = write.by.clone().unwrap_or_else(Actor::system);
        let at_ms = crate::clock::now_ms();
        // One event per version, in version order: the records written,
        // the records removed, then the directory change itself.
        let mut events: Vec<Event> = records
            .iter()
            .map(|record| Event {
                version: record.version,
                event: write.event.clone().into(),
                at_ms,
                by: record.changed_by.clone().unwrap_or_else(|| by.clone()),
                body: Body::Agent {
                    previous: store.records.get(&record.id).cloned(),
                    current: Some(record.clone()),
                },
            })
            .collect();
        for (id, version) in write.removals(seq) {
            if let Some(old) = store.records.get(id) {
                let mut entry = HistoryEntry::of(old, write.event.clone());
                entry.version = version;
                entry.by = by.clone();
                history.push(entry);
                removed.push(id.to_string());
                events.push(Event {
                    version,
                    event: write.event.clone().into(),
                    at_ms,
                    by: by.clone(),
                    body: Body::Agent {
                        previous: Some(old.clone()),
                        current: None,
                    },
                });
            }
        }
        events.push(Event {
            version: seq,
            event: write.event.clone().into(),
            at_ms,
            by,
            body: Body::Directory {
                write: Arc::new(write.clone()),
            },
        });
        let events = self.events(&store, events);
        self.journal(
            tenant,
            Written {
                seq,
                epoch: None,
                settings: None,
                directory: Some(&directory),
                records: &records,
                removed: &removed,
                history: &history,
                key: once,
                events: &events,
            },
        )?;
        store.seq = seq;
        store.directory = directory;
        for record in records {
            store.records.insert(record.id.clone(), record);
        }
        for id in &removed {
            store.records.remove(id);
        }
        for entry in history {
            self.record_history(&mut store, entry);
        }
        self.append_events(&mut store, events);
        store.once.remember(once, seq);
        Self::publish(
            &store,
            Delta::Directory {
                seq,
                write: Arc::new(write.clone()),
            },
        );
        Ok(DirectoryCommit::Committed(seq))
    }

    async fn history(
        &self,
        tenant: &str,
        agent_id: &str,
        since_ms: u64,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>, BackplaneError> {
        let store = self.store(tenant)?;
        let store = store.lock();
        let mut newest_first: Vec<HistoryEntry> = store
            .history
            .iter()
            .rev()
            .filter(|h| h.agent_id == agent_id && h.at_ms >= since_ms)
            .take(limit)
            .cloned()
            .collect();
        newest_first.reverse();
        Ok(newest_first)
    }

    async fn applied_under(
        &self,
        tenant: &str,
        once: &IdempotencyKey,
    ) -> Result<Option<u64>, BackplaneError> {
        Ok(self.store(tenant)?.lock().once.get(once))
    }

    async fn read_events(
        &self,
        tenant: &str,
        after: Option<EventId>,
        limit: usize,
    ) -> Result<Page, BackplaneError> {
        Ok(self.store(tenant)?.lock().events.read(tenant, after, limit))
    }

    async fn heartbeats(
        &self,
        tenant: &str,
        agent_ids: &[String],
    ) -> Result<usize, BackplaneError> {
        let store = self.store(tenant)?;
        let mut store = store.lock();
        let at_ms = crate::clock::now_ms();
        let beats: Vec<Event> = agent_ids
            .iter()
            .filter_map(|id| store.records.get(id))
            .filter(|r| r.presence == crate::domain::Presence::Online)
            .map(|r| Event {
                version: r.version,
                event: "heartbeat".into(),
                at_ms,
                by: Actor::system(),
                body: Body::Heartbeat { current: r.clone() },
            })
            .collect();
        let events = self.events(&store, beats);
        let count = events.len();
        if count > 0 {
            self.journal(
                tenant,
                Written {
                    seq: store.seq,
                    epoch: None,
                    settings: None,
                    directory: None,
                    records: &[],
                    removed: &[],
                    history: &[],
                    key: None,
                    events: &events,
                },
            )?;
            self.append_events(&mut store, events);
        }
        Ok(count)
    }

    fn is_ready(&self) -> bool {
        true
    }

    async fn read_agent(
        &self,
        tenant: &str,
        agent_id: &str,
    ) -> Result<Option<Arc<AgentRecord>>, BackplaneError> {
        Ok(self.store(tenant)?.lock().records.get(agent_id).cloned())
    }

    async fn webhook_doc(
        &self,
        tenant: &str,
        name: &str,
    ) -> Result<(u64, Option<String>), BackplaneError> {
        let key = (tenant.to_string(), name.to_string());
        Ok(self.webhooks.lock().get(&key).cloned().unwrap_or((0, None)))
    }

    async fn put_webhook_doc(
        &self,
        tenant: &str,
        name: &str,
        expected: u64,
        doc: Option<&str>,
        _ack: super::WriteAck,
    ) -> Result<Option<u64>, BackplaneError> {
        let key = (tenant.to_string(), name.to_string());
        let mut docs = self.webhooks.lock();
        let current = docs.get(&key).map_or(0, |(v, _)| *v);
        if current != expected {
            return Ok(None);
        }
        let version = current + 1;
        if let Some(journal) = &self.journal {
            journal
                .write_webhook_doc(tenant, name, version, doc)
                .map_err(|e| {
                    BackplaneError::Unavailable(format!(
                        "the data directory refused the change: {e}"
                    ))
                })?;
        }
        docs.insert(key, (version, doc.map(str::to_string)));
        Ok(Some(version))
    }

    async fn load(&self, tenant: &str) -> Result<Option<TenantState>, BackplaneError> {
        let Some(store) = self.tenants.lock().get(tenant).cloned() else {
            return Ok(None);
        };
        let store = store.lock();
        Ok(Some(self.state(&store)))
    }

    async fn create_credential(
        &self,
        tenant: &str,
        credential: &credential::Credential,
    ) -> Result<bool, BackplaneError> {
        let mut all = self.credentials.lock();
        let mine = all.entry(tenant.to_string()).or_default();
        if mine.contains_key(&credential.id) {
            return Ok(false);
        }
        let mut after = mine.clone();
        after.insert(credential.id.clone(), credential.clone());
        self.journal_credentials(tenant, &after)?;
        *mine = after;
        Ok(true)
    }

    async fn credential(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Option<credential::Credential>, BackplaneError> {
        Ok(self
            .credentials
            .lock()
            .get(tenant)
            .and_then(|mine| mine.get(id).cloned()))
    }

    async fn credentials(
        &self,
        tenant: &str,
    ) -> Result<Vec<credential::Credential>, BackplaneError> {
        Ok(self
            .credentials
            .lock()
            .get(tenant)
            .map(|mine| mine.values().cloned().collect())
            .unwrap_or_default())
    }

    async fn revoke_credential(&self, tenant: &str, id: &str) -> Result<bool, BackplaneError> {
        let mut all = self.credentials.lock();
        let Some(mine) = all.get_mut(tenant) else {
            return Ok(false);
        };
        if !mine.contains_key(id) {
            return Ok(false);
        }
        let mut after = mine.clone();
        after.remove(id);
        self.journal_credentials(tenant, &after)?;
        *mine = after;
        Ok(true)
    }
}

impl MemoryBackplane {
    /// Hands a tenant's credentials after a change to the journal, if any:
    /// `Err` means the change is refused (applied nowhere).
    fn journal_credentials(
        &self,
        tenant: &str,
        after: &std::collections::BTreeMap<String, credential::Credential>,
    ) -> Result<(), BackplaneError> {
        match &self.journal {
            None => Ok(()),
            Some(journal) => {
                let all: Vec<credential::Credential> = after.values().cloned().collect();
                journal.write_credentials(tenant, &all).map_err(|e| {
                    BackplaneError::Unavailable(format!(
                        "the data directory refused the change: {e}"
                    ))
                })
            }
        }
    }
}
