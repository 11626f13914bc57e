//! The hub: this node's view of the tenants it serves and the machinery
//! around the pure domain — replicas, subscriptions, outboxes, the command
//! router, the local device registry and the timers.
//!
//! Every state change goes through [`Hub::change`]: read the record from the
//! replica, check permissions, run [`domain::apply`], compare-and-swap it
//! into the backplane, retry on conflict with the record the store returned,
//! and wait until the local replica has the result (so the reply a client
//! gets is never older than what it can read next).

pub mod cluster;
pub mod counters;
pub mod delta_log;
mod device_nodes;
pub mod directory;
mod local_device;
pub mod outbox;
mod overrun;
pub mod queue_stats;
pub mod router;
mod signout;
pub mod tenant;

use crate::auth::Verifier;
use crate::backplane::{Backplane, Commit, DeltaHandler, IdempotencyKey, TenantSeed};
use crate::clock;
use crate::config::Config;
use crate::directory::Directory;
use crate::domain::{self, Actor, ActorRole, AgentRecord, Context, Event, Status};
use crate::error::{HubError, HubResult};
use dashmap::DashMap;
pub use local_device::{device_key, LocalDevice};
use outbox::Outbox;
use router::Router;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tenant::Tenant;
use tokio::sync::{watch, OnceCell};

/// Attempts of one compare-and-swap before giving up with `unavailable`.
pub(crate) const MAX_CAS_ATTEMPTS: usize = 32;

/// Whether a change, once the store took it, waits for this node's replica
/// to apply it (read-your-writes for the connection that asked).
#[derive(Clone, Copy, PartialEq, Eq)]
enum ReadBack {
    Wait,
    Skip,
}

/// A tenant this node serves: its replica (attached once) and how many
/// sessions of it are open here.
#[derive(Default)]
struct TenantSlot {
    cell: Arc<OnceCell<Arc<Tenant>>>,
    sessions: usize,
}

/// Keeps a tenant attached while a session of it is open (see
/// [`Hub::open_tenant`]).
pub struct TenantLease {
    hub: Arc<Hub>,
    tenant: String,
}

impl Drop for TenantLease {
    fn drop(&mut self) {
        self.hub.close_tenant(&self.tenant);
    }
}

/// The connection currently speaking for one device on this node.
pub struct DeviceSlot {
    pub conn: u64,
    pub outbox: Arc<Outbox>,
    pub device: Arc<LocalDevice>,
}

pub struct Hub {
    pub config: Config,
    pub node_id: String,
    pub directory: Arc<Directory>,
    pub backplane: Arc<dyn Backplane>,
    pub verifier: Verifier,
    pub router: Arc<Router>,
    /// Open WebSocket connections (for `--max-connections`).
    pub connections: AtomicUsize,
    tenants: DashMap<String, TenantSlot>,
    /// Keyed by [`LocalDevice::key`] (the same allocation).
    devices: DashMap<Arc<str>, DeviceSlot>,
    next_conn: AtomicU64,
    shutdown: watch::Sender<bool>,
    /// Woken once, at shutdown, for the sessions' loops: a `Notified` is 64
    /// bytes where a watch receiver's wait is 160, and every idle
    /// connection's task carries one (BENCHMARKS.md, memory). Eight of
    /// them, as tokio's watch channel has, for the lock a waiting
    /// `Notified` takes at each poll: sessions on many cores do not all
    /// take one.
    stopping: [tokio::sync::Notify; 8],
    /// Woken when the last connection ends (drain).
    idle: tokio::sync::Notify,
    /// Commands sent to other nodes, awaiting their outcome.
    remote: DashMap<String, tokio::sync::oneshot::Sender<router::Outcome>>,
    /// Requests other nodes sent here that await the agent's answer, by
    /// their id: sending on one withdraws it (its asker stopped waiting).
    asked_here: DashMap<String, tokio::sync::oneshot::Sender<()>>,
    /// Tenants whose delta stream skipped a seq (cluster mode resyncs them).
    gaps: tokio::sync::mpsc::UnboundedSender<tenant::Repair>,
    /// Set once the node gave up its lease at the end of a drain.
    lease_released: std::sync::atomic::AtomicBool,
    /// The secret this node generated for itself (in-memory dev mode only):
    /// enables the wallboard's one-click dev sign-in.
    pub dev_secret: std::sync::OnceLock<String>,
}

impl Hub {
    pub fn new(
        config: Config,
        directory: Directory,
        backplane: Arc<dyn Backplane>,
        verifier: Verifier,
    ) -> Arc<Self> {
        let node_id = config.node_id.clone().unwrap_or_else(random_node_id);
        let (gaps, gap_rx) = tokio::sync::mpsc::unbounded_channel();
        let hub = Arc::new(Hub {
            remote: DashMap::new(),
            asked_here: DashMap::new(),
            gaps,
            lease_released: std::sync::atomic::AtomicBool::new(false),
            dev_secret: std::sync::OnceLock::new(),
            router: Arc::new(Router::new(&node_id)),
            node_id,
            config,
            directory: Arc::new(directory),
            backplane,
            verifier,
            connections: AtomicUsize::new(0),
            tenants: DashMap::new(),
            devices: DashMap::new(),
            next_conn: AtomicU64::new(1),
            shutdown: watch::Sender::new(false),
            stopping: std::array::from_fn(|_| tokio::sync::Notify::new()),
            idle: tokio::sync::Notify::new(),
        });
        cluster::start(&hub, gap_rx);
        hub
    }

    /// The tenants this node has attached to.
    pub fn attached_tenants(&self) -> Vec<Arc<Tenant>> {
        self.tenants
            .iter()
            .filter_map(|e| e.value().cell.get().cloned())
            .collect()
    }

    /// The tenant's replica if this node is attached to it.
    pub fn attached_tenant(&self, id: &str) -> Option<Arc<Tenant>> {
        self.tenants
            .get(id)
            .and_then(|slot| slot.cell.get().cloned())
    }

    /// The tenant's replica for a new session, which keeps it attached
    /// until the returned lease drops.
    pub async fn open_tenant(self: &Arc<Self>, id: &str) -> HubResult<(Arc<Tenant>, TenantLease)> {
        if self.directory.tenant(id).is_none() {
            return Err(HubError::unauthorized(format!("unknown tenant {id:?}")));
        }
        self.tenants.entry(id.to_string()).or_default().sessions += 1;
        let lease = TenantLease {
            hub: self.clone(),
            tenant: id.to_string(),
        };
        let tenant = self.tenant(id).await?;
        Ok((tenant, lease))
    }

    /// The last session of a tenant ended: in cluster mode, stop following
    /// its deltas once it stays unused for the reconnect grace plus a node
    /// TTL (grace timers still need the replica until then).
    fn close_tenant(self: &Arc<Self>, id: &str) {
        let idle = match self.tenants.get_mut(id) {
            Some(mut slot) => {
                slot.sessions = slot.sessions.saturating_sub(1);
                slot.sessions == 0
            }
            None => false,
        };
        if !idle || !self.backplane.is_shared() || self.is_draining() {
            return;
        }
        let (hub, id) = (self.clone(), id.to_string());
        tokio::spawn(async move {
            tokio::time::sleep(hub.config.reconnect_grace() + hub.config.node_ttl()).await;
            if let Some((_, slot)) = hub.tenants.remove_if(&id, |_, slot| slot.sessions == 0) {
                if slot.cell.get().is_some() {
                    // Not when its attach had failed: it was never counted.
                    crate::metrics::get().tenants_attached.decrement(1.0);
                }
                tracing::info!(tenant = %id, "no sessions left: detaching from the tenant");
                hub.backplane.detach(&id).await;
            }
        });
    }

    pub fn has_device(&self, key: &str) -> bool {
        self.devices.contains_key(key)
    }

    /// This node's active devices of one tenant: `(agent id, device)`.
    pub fn local_active_devices(
        &self,
        tenant: &str,
    ) -> Vec<(String, crate::protocol::DeviceHello)> {
        self.devices
            .iter()
            .filter(|s| s.device.tenant() == tenant && s.device.is_active())
            .map(|s| (s.device.agent_id().to_string(), s.device.hello.clone()))
            .collect()
    }

    pub fn next_conn_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// The tenant's replica, attaching to the backplane on first use.
    pub async fn tenant(&self, id: &str) -> HubResult<Arc<Tenant>> {
        let dir = self
            .directory
            .tenant(id)
            .cloned()
            .ok_or_else(|| HubError::unauthorized(format!("unknown tenant {id:?}")))?;
        let cell = self.tenants.entry(id.to_string()).or_default().cell.clone();
        let tenant = cell
            .get_or_try_init(|| async {
                let tenant = Tenant::new(dir.clone(), &self.node_id, Some(self.gaps.clone()));
                let feed = tenant.clone();
                let on_delta: DeltaHandler = Arc::new(move |delta| feed.apply(delta));
                let seed = TenantSeed {
                    settings: dir.settings.clone(),
                    agents: dir.seed_records(),
                    directory: dir.image(),
                };
                // Queue statistics first: none pushed after the load below
                // is missed (a replica keeps the newest per channel).
                let feed = tenant.clone();
                self.backplane
                    .watch_queue_stats(id, Arc::new(move |stats| feed.put_queue_stats(stats)));
                let state = self.backplane.attach(id, seed, on_delta).await?;
                tenant.load(state);
                self.load_queue_stats(&tenant).await;
                tenant.start_channel_updates(
                    self.config.channel_update(),
                    self.config.queue_stats_stale(),
                );
                // Counted once the cell holds it (`close_tenant` uncounts).
                crate::metrics::get().tenants_attached.increment(1.0);
                Ok::<_, HubError>(tenant)
            })
            .await?;
        Ok(tenant.clone())
    }

    /// Loads the store's queue statistics into the replica (attach,
    /// resync). Quietly keeps what the replica has when the store cannot
    /// be read: the next push, or the next resync, brings them.
    pub async fn load_queue_stats(&self, tenant: &Tenant) {
        match self.backplane.queue_stats(tenant.id()).await {
            Ok(all) => {
                for stats in all {
                    tenant.put_queue_stats(stats);
                }
            }
            Err(e) => {
                tracing::warn!(tenant = tenant.id(), error = %e, "cannot load queue statistics")
            }
        }
    }

    /// Brings the replica up to the store's seq of now (cluster mode;
    /// bounded by the command timeout): called before refusing a user this
    /// replica does not know, who may have been added on another node an
    /// instant ago. Quietly does nothing when the store cannot be asked.
    pub async fn catch_up_with_store(&self, tenant: &Tenant) {
        if let Ok(Some(seq)) = self.backplane.current_seq(tenant.id()).await {
            tenant.wait_for(seq, self.config.command_timeout()).await;
        }
    }

    /// The agent's record as the store has it now (the replica's on one node).
    pub async fn fresh_record(
        &self,
        tenant: &Tenant,
        agent_id: &str,
    ) -> HubResult<Arc<AgentRecord>> {
        let replica = tenant.record(agent_id);
        if !self.backplane.is_shared() {
            return replica.ok_or_else(|| HubError::not_found(format!("no agent {agent_id:?}")));
        }
        let stored = self.backplane.read_agent(tenant.id(), agent_id).await?;
        stored
            .or(replica)
            .ok_or_else(|| HubError::not_found(format!("no agent {agent_id:?}")))
    }

    /// Applies `event` to one agent by compare-and-swap. `check` runs against
    /// every record read (permissions depend on it). Returns the record after
    /// the change, or the unchanged one when the event changes nothing.
    pub async fn change(
        self: &Arc<Self>,
        tenant: &Arc<Tenant>,
        agent_id: &str,
        by: &Actor,
        event: &Event,
        check: impl Fn(&AgentRecord) -> HubResult<()>,
    ) -> HubResult<Arc<AgentRecord>> {
        self.change_once(tenant, agent_id, by, event, check, None)
            .await
    }

    /// [`Hub::change`] for a request that carries an idempotency key
    /// (PROTOCOL.md §3.3): when a change under `once` was applied already,
    /// nothing is applied and the current record is returned. The store
    /// checks the key when it commits; when the rules refuse the request or
    /// find nothing to change (the first one changed what they check), the
    /// key is looked up before that answer goes out.
    pub async fn change_once(
        self: &Arc<Self>,
        tenant: &Arc<Tenant>,
        agent_id: &str,
        by: &Actor,
        event: &Event,
        check: impl Fn(&AgentRecord) -> HubResult<()>,
        once: Option<&IdempotencyKey>,
    ) -> HubResult<Arc<AgentRecord>> {
        let outcome = self
            .change_inner(tenant, agent_id, by, event, check, once, ReadBack::Wait)
            .await;
        let answer = match (once, outcome) {
            (None, outcome) | (Some(_), outcome @ Ok((_, true))) => outcome,
            // Refused, or nothing to change: perhaps because it was done.
            (Some(key), outcome) => match self.backplane.applied_under(tenant.id(), key).await {
                Ok(Some(seq)) => self
                    .already_applied(tenant, agent_id, seq, None)
                    .await
                    .map(|record| (record, true)),
                Ok(None) => outcome,
                // Whether the key's change was made (or, made, is held by
                // enough replicas) is unknown: neither "nothing to change"
                // nor a refusal may answer for it (README, "No acknowledged
                // change lost").
                Err(e) => Err(e.into()),
            },
        };
        match answer {
            // Nothing to change, told a client: the agent is as asked on
            // the master, which must hold on the replicas too before that
            // `ok` goes out, as a change's would. (The system's own no-ops
            // answer no one: a reconnection within its grace, a sweep.)
            Ok((record, false)) if by.role != ActorRole::System => {
                self.backplane.replicas_hold_the_store(tenant.id()).await?;
                Ok(record)
            }
            answer => answer.map(|(record, _)| record),
        }
    }

    /// A change the node makes on its own, by the system: a device's
    /// presence (its TTL or grace ran out, the node drains, a re-assertion
    /// after a catch-up).
    /// Unlike [`Hub::change`] it does not wait for this node's replica to
    /// apply it: no connection reads after it, and the wait could only time
    /// out when the replica holds deltas past a gap — the cluster task that
    /// re-asserts devices is the one that runs the catch-up filling it, and
    /// waiting there held every later catch-up of the node for a command
    /// timeout per device (the convergence run behind Sentinels, seed 22).
    pub async fn change_unawaited(
        self: &Arc<Self>,
        tenant: &Arc<Tenant>,
        agent_id: &str,
        event: &Event,
        check: impl Fn(&AgentRecord) -> HubResult<()>,
    ) -> HubResult<Arc<AgentRecord>> {
        let by = Actor::system();
        self.change_inner(tenant, agent_id, &by, event, check, None, ReadBack::Skip)
            .await
            .map(|(record, _)| record)
    }

    /// The compare-and-swap loop; the flag says whether the record returned
    /// is a change (this one, or one made earlier under the same key).
    #[allow(clippy::too_many_arguments)]
    async fn change_inner(
        self: &Arc<Self>,
        tenant: &Arc<Tenant>,
        agent_id: &str,
        by: &Actor,
        event: &Event,
        check: impl Fn(&AgentRecord) -> HubResult<()>,
        once: Option<&IdempotencyKey>,
        read_back: ReadBack,
    ) -> HubResult<(Arc<AgentRecord>, bool)> {
        let mut current = tenant
            .record(agent_id)
            .ok_or_else(|| HubError::not_found(format!("no agent {agent_id:?}")))?;
        // Whether `current` is known to be the store's version. A replica may
        // lag the store by a delta in cluster mode; a CAS catches that for
        // changes, but a refusal (or "nothing to change") computed from a
        // stale record would never reach the store, so it is re-checked.
        let mut verified = !self.backplane.is_shared();
        for _ in 0..MAX_CAS_ATTEMPTS {
            let settings = tenant.settings();
            let ctx = Context {
                now_ms: clock::now_ms(),
                by,
                settings: &settings,
                max_devices: self.config.max_devices_per_agent,
            };
            let verdict = check(&current).and_then(|()| domain::apply(&current, event, &ctx));
            let next = match verdict {
                Ok(Some(next)) => next,
                Ok(None) | Err(_) if !verified => {
                    verified = true;
                    // The version first: when it is the replica's, so is
                    // the record, and the verdict stands; the record is
                    // read only when it is not.
                    let stored = self.backplane.agent_version(tenant.id(), agent_id).await?;
                    if stored != Some(current.version) {
                        match self.backplane.read_agent(tenant.id(), agent_id).await? {
                            // Older than the replica: the store fell back.
                            Some(fresh) if fresh.version < current.version => {
                                return Err(store_fell_back(tenant, &format!("agent {agent_id}")));
                            }
                            Some(fresh) if fresh.version != current.version => {
                                current = fresh;
                                continue;
                            }
                            _ => {}
                        }
                    }
                    match verdict {
                        Ok(_) => return Ok((current, false)),
                        Err(e) => return Err(e),
                    }
                }
                Ok(None) => return Ok((current, false)),
                Err(e) => return Err(e),
            };
            let started = std::time::Instant::now();
            let commit = self
                .backplane
                .commit_agent(tenant.id(), current.version, next, event.name(), once)
                .await;
            crate::metrics::get()
                .backplane_seconds
                .record(started.elapsed().as_secs_f64());
            match commit? {
                Commit::Committed(record) => {
                    crate::metrics::get().deltas_published.increment(1);
                    if read_back == ReadBack::Wait {
                        tenant
                            .wait_for(record.version, self.config.command_timeout())
                            .await;
                    }
                    if record.status == Status::WrapUp
                        && record.wrap_up_until_ms != current.wrap_up_until_ms
                    {
                        if let Some(until) = record.wrap_up_until_ms {
                            self.schedule_wrap_up_end(tenant.clone(), record.id.clone(), until);
                        }
                    }
                    let new_pause = current.status != Status::Paused
                        || current.status_since_ms != record.status_since_ms
                        || current.pause_reason != record.pause_reason;
                    if record.status == Status::Paused && new_pause {
                        self.schedule_pause_overrun(tenant, &record);
                    }
                    return Ok((record, true));
                }
                Commit::Conflict(Some(record)) if record.version < current.version => {
                    // The store holds an older record than this replica.
                    return Err(store_fell_back(tenant, &format!("agent {agent_id}")));
                }
                Commit::Conflict(Some(record)) => {
                    current = record;
                    verified = true; // the store just told us
                }
                Commit::Conflict(None) => {
                    return Err(HubError::not_found(format!("no agent {agent_id:?}")))
                }
                Commit::AlreadyApplied(record) => {
                    let seq = record.as_ref().map_or(0, |r| r.version);
                    let record = self.already_applied(tenant, agent_id, seq, record).await?;
                    return Ok((record, true));
                }
            }
        }
        Err(HubError::unavailable(format!(
            "agent {agent_id} is changing too fast; try again"
        )))
    }

    /// The answer to a request repeated under an idempotency key: the
    /// agent's record once this replica shows the first request's change.
    async fn already_applied(
        &self,
        tenant: &Tenant,
        agent_id: &str,
        seq: u64,
        stored: Option<Arc<AgentRecord>>,
    ) -> HubResult<Arc<AgentRecord>> {
        tenant.wait_for(seq, self.config.command_timeout()).await;
        tenant
            .record(agent_id)
            .filter(|r| stored.as_ref().is_none_or(|s| r.version >= s.version))
            .or(stored)
            .ok_or_else(|| HubError::not_found(format!("no agent {agent_id:?}")))
    }

    /// Ends a wrap-up when its deadline passes. The event carries the
    /// deadline, so a late or duplicate firing changes nothing.
    pub(crate) fn schedule_wrap_up_end(
        self: &Arc<Self>,
        tenant: Arc<Tenant>,
        agent_id: String,
        until_ms: u64,
    ) {
        let hub = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(
                until_ms.saturating_sub(clock::now_ms()),
            ))
            .await;
            let event = Event::WrapUpExpired { until_ms };
            if let Err(e) = hub
                .change(&tenant, &agent_id, &Actor::system(), &event, |_| Ok(()))
                .await
            {
                tracing::warn!(tenant = tenant.id(), agent = %agent_id, error = %e, "wrap-up deadline not applied");
            }
        });
    }

    // ---- devices on this node ------------------------------------------

    /// Makes `conn` the connection of a device; a previous connection of the
    /// same device is told to close with 4009.
    pub fn claim_device(&self, slot: DeviceSlot) {
        use dashmap::mapref::entry::Entry;
        let old = match self.devices.entry(slot.device.key().clone()) {
            // The key too: it is the new device's (the old one goes with it).
            Entry::Occupied(o) => Some(o.replace_entry(slot).1),
            Entry::Vacant(v) => {
                v.insert(slot);
                None
            }
        };
        if let Some(old) = old {
            old.outbox.close(
                crate::protocol::close::REPLACED,
                "replaced by a newer connection of the same device",
            );
        }
    }

    /// Releases the device if `conn` still holds it; `false` if it was replaced.
    pub fn release_device(&self, key: &str, conn: u64) -> bool {
        self.devices
            .remove_if(key, |_, slot| slot.conn == conn)
            .is_some()
    }

    /// Marks a device inactive. With `unless_reclaimed`, only if no
    /// connection on this node claimed the device meanwhile (grace expiry).
    pub async fn device_down(
        self: &Arc<Self>,
        tenant: &Arc<Tenant>,
        agent_id: &str,
        device_id: &str,
        unless_reclaimed: Option<&str>,
    ) {
        let event = Event::DeviceDown {
            device_id: device_id.to_string(),
            node: self.node_id.clone(),
        };
        let check = |_: &AgentRecord| match unless_reclaimed {
            Some(key) if self.devices.contains_key(key) => {
                Err(HubError::invalid_state("device reconnected"))
            }
            _ => Ok(()),
        };
        if let Err(e) = self.change_unawaited(tenant, agent_id, &event, check).await {
            // Not found: the directory removed the agent meanwhile.
            if !matches!(
                e.code,
                crate::error::ErrorCode::InvalidState | crate::error::ErrorCode::NotFound
            ) {
                tracing::warn!(tenant = tenant.id(), agent = agent_id, device = device_id, error = %e, "device not marked inactive");
            }
        }
    }

    /// After an abrupt drop: the device stays active for the reconnect grace
    /// and goes inactive only if no connection reclaimed it by then.
    pub fn device_down_after_grace(
        self: &Arc<Self>,
        tenant: Arc<Tenant>,
        device: Arc<LocalDevice>,
    ) {
        let hub = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(hub.config.reconnect_grace()).await;
            hub.device_down(
                &tenant,
                device.agent_id(),
                &device.hello.id,
                Some(device.key()),
            )
            .await;
        });
    }

    // ---- shutdown --------------------------------------------------------

    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    pub fn begin_shutdown(&self) {
        // The flag first: a session that checks it after making its
        // `Notified` (below) either sees it or is woken.
        self.shutdown.send_replace(true);
        for stopping in &self.stopping {
            stopping.notify_waiters();
        }
    }

    /// Resolves at the next [`Hub::begin_shutdown`] after this call, not
    /// before: make it, then check [`Hub::is_draining`], then await it
    /// (tokio's `Notified` is woken by every `notify_waiters` from its
    /// making on). Connection `conn` waits on one of eight.
    pub fn stopping(&self, conn: u64) -> tokio::sync::futures::Notified<'_> {
        self.stopping[(conn % 8) as usize].notified()
    }

    /// Counts a connection until the returned guard drops.
    pub fn connection_opened(self: &Arc<Self>) -> ConnectionGuard {
        self.connections.fetch_add(1, Ordering::Relaxed);
        ConnectionGuard(self.clone())
    }

    /// Resolves when no connection is open.
    pub async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            if self.connections.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }

    pub fn is_draining(&self) -> bool {
        *self.shutdown.borrow()
    }
}

/// Keeps a connection counted (see [`Hub::connection_opened`]).
pub struct ConnectionGuard(Arc<Hub>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        if self.0.connections.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// The refusal of a change whose store record is older than the replica's:
/// the store fell back (a failover lost writes the nodes had seen). A change
/// built on it would hand out a version some client already saw and lose
/// the newer record for good, so the tenant is caught up first (the catch-up
/// repairs the store: `cluster::after_a_fall_back`).
/// `of` names what was asked about: "agent a1", "the directory".
fn store_fell_back(tenant: &Tenant, of: &str) -> HubError {
    tenant.request_catch_up();
    HubError::unavailable(format!(
        "the store lost recent changes of {of}; catching up, try again"
    ))
}

/// Resolves once the node is draining (for `select!` loops).
pub async fn draining(signal: &mut watch::Receiver<bool>) {
    let _ = signal.wait_for(|&d| d).await;
}

/// A fresh node id when none is configured.
pub fn random_node_id() -> String {
    format!("node-{:08x}", rand::random::<u32>())
}
