//! The in-memory backplane: one process, no Redis (the default).
//!
//! Each tenant's store sits behind one mutex; a commit checks the version,
//! bumps the seq, writes the record, appends the history and calls the
//! attached handlers while still holding the lock, which is what makes
//! delivery strictly seq-ordered without a separate sequencer. Nothing here
//! can time out, so a change is either applied or refused: this store never
//! answers `outcome_unknown`.

use super::*;
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::time::Instant;

/// How many idempotency keys a tenant's store remembers at most (PROTOCOL.md
/// §3.3): within [`IdempotencyKey::WINDOW`], the newest this many.
pub const MAX_KEYS: usize = 100_000;

pub struct MemoryBackplane {
    tenants: Mutex<HashMap<String, Arc<Mutex<Store>>>>,
    history_capacity: usize,
    /// This process's one epoch: the store lives and dies with the process,
    /// so a restarted node is another epoch (supervisors reload in full).
    epoch: Epoch,
}

struct Store {
    seq: u64,
    settings: Settings,
    records: HashMap<String, Arc<AgentRecord>>,
    directory: DirectoryImage,
    history: VecDeque<HistoryEntry>,
    handlers: Vec<DeltaHandler>,
    once: Remembered,
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

    fn state(&self, store: &Store) -> TenantState {
        TenantState {
            seq: store.seq,
            settings: store.settings.clone(),
            agents: store.records.values().cloned().collect(),
            directory: Some(store.directory.clone()),
            epoch: self.epoch.clone(),
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
    async fn attach(
        &self,
        tenant: &str,
        seed: TenantSeed,
        on_delta: DeltaHandler,
    ) -> Result<TenantState, BackplaneError> {
        let store = self
            .tenants
            .lock()
            .entry(tenant.to_string())
            .or_insert_with(|| {
                Arc::new(Mutex::new(Store {
                    seq: 0,
                    settings: seed.settings.clone(),
                    records: HashMap::new(),
                    directory: seed.directory.clone(),
                    history: VecDeque::new(),
                    handlers: Vec::new(),
                    once: Remembered::default(),
                }))
            })
            .clone();
        let mut store = store.lock();
        for record in seed.agents {
            store
                .records
                .entry(record.id.clone())
                .or_insert_with(|| Arc::new(record));
        }
        store.handlers.push(on_delta);
        Ok(self.state(&store))
    }

    async fn commit_agent(
        &self,
        tenant: &str,
        expected_version: u64,
        mut record: AgentRecord,
        event: &str,
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
        store.seq += 1;
        record.version = store.seq;
        let record = Arc::new(record);
        store.records.insert(record.id.clone(), record.clone());
        self.record_history(&mut store, HistoryEntry::of(&record, event));
        let seq = store.seq;
        store.once.remember(once, seq);
        Self::publish(&store, Delta::Agent(record.clone()));
        Ok(Commit::Committed(record))
    }

    async fn update_settings(
        &self,
        tenant: &str,
        patch: &SettingsPatch,
        once: Option<&IdempotencyKey>,
    ) -> Result<(u64, Settings), BackplaneError> {
        let store = self.store(tenant)?;
        let mut store = store.lock();
        if let Some(seq) = once.and_then(|key| store.once.get(key)) {
            return Ok((seq, store.settings.clone()));
        }
        patch.apply_to(&mut store.settings);
        store.seq += 1;
        let (seq, settings) = (store.seq, store.settings.clone());
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
        store.seq += write.seqs_used();
        let seq = store.seq;
        store.directory.version = seq;
        write.apply_to(&mut store.directory);
        for record in write.committed_records(seq) {
            store.records.insert(record.id.clone(), record.clone());
            self.record_history(&mut store, HistoryEntry::of(&record, &write.event));
        }
        for (id, version) in write.removals(seq) {
            if let Some(old) = store.records.remove(id) {
                let mut entry = HistoryEntry::of(&old, &write.event);
                entry.version = version;
                entry.by = write
                    .by
                    .clone()
                    .unwrap_or_else(crate::domain::Actor::system);
                self.record_history(&mut store, entry);
            }
        }
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

    async fn load(&self, tenant: &str) -> Result<Option<TenantState>, BackplaneError> {
        let Some(store) = self.tenants.lock().get(tenant).cloned() else {
            return Ok(None);
        };
        let store = store.lock();
        Ok(Some(self.state(&store)))
    }
}
