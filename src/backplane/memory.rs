//! The in-memory backplane: one process, no Redis (the default).
//!
//! Each tenant's store sits behind one mutex; a commit checks the version,
//! bumps the seq, writes the record, appends the history and calls the
//! attached handlers while still holding the lock, which is what makes
//! delivery strictly seq-ordered without a separate sequencer.

use super::*;
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};

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
    history: VecDeque<HistoryEntry>,
    handlers: Vec<DeltaHandler>,
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
                    history: VecDeque::new(),
                    handlers: Vec::new(),
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
        Ok(TenantState {
            seq: store.seq,
            settings: store.settings.clone(),
            agents: store.records.values().cloned().collect(),
            epoch: self.epoch.clone(),
        })
    }

    async fn commit_agent(
        &self,
        tenant: &str,
        expected_version: u64,
        mut record: AgentRecord,
        event: &str,
    ) -> Result<Commit, BackplaneError> {
        let store = self.store(tenant)?;
        let mut store = store.lock();
        let current = store.records.get(&record.id).cloned();
        if current.as_ref().map(|r| r.version) != Some(expected_version) {
            return Ok(Commit::Conflict(current));
        }
        store.seq += 1;
        record.version = store.seq;
        let record = Arc::new(record);
        store.records.insert(record.id.clone(), record.clone());
        if self.history_capacity > 0 {
            if store.history.len() >= self.history_capacity {
                store.history.pop_front();
            }
            store.history.push_back(HistoryEntry::of(&record, event));
        }
        Self::publish(&store, Delta::Agent(record.clone()));
        Ok(Commit::Committed(record))
    }

    async fn update_settings(
        &self,
        tenant: &str,
        patch: &SettingsPatch,
    ) -> Result<(u64, Settings), BackplaneError> {
        let store = self.store(tenant)?;
        let mut store = store.lock();
        patch.apply_to(&mut store.settings);
        store.seq += 1;
        let (seq, settings) = (store.seq, store.settings.clone());
        Self::publish(
            &store,
            Delta::Settings {
                seq,
                settings: settings.clone(),
            },
        );
        Ok((seq, settings))
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
        Ok(Some(TenantState {
            seq: store.seq,
            settings: store.settings.clone(),
            agents: store.records.values().cloned().collect(),
            epoch: self.epoch.clone(),
        }))
    }
}
