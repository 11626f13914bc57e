//! A node's duties when the backplane is shared with other nodes (DESIGN.md §5).
//!
//! - **Lease.** The node renews `hub:{leases}:<node>` every third of
//!   `node_ttl_ms`. A failed renewal marks the node not ready; the first
//!   renewal after the connection came back triggers a full catch-up.
//! - **Catch-up.** Pub/sub is at-most-once, so after a reconnection (or a
//!   gap in a tenant's seq) the node reloads the tenant and emits deltas for
//!   what changed. If the store lost the tenant (restarted empty: its epoch
//!   key is gone) the first node to notice writes its replica back. Then the
//!   node re-asserts its own devices: active where it holds the socket,
//!   inactive where the socket went away while the store was unreachable.
//! - **Sweeping.** Devices the store shows active on a node whose lease
//!   expired are made inactive by one survivor (under a short lock), so a
//!   `kill -9` turns that node's agents offline everywhere within the TTL.
//!   An absent lease only means "dead" when the sweeper itself has reached
//!   the store without a break for two node TTLs: then the store was up
//!   for that whole window and a live node, renewing every third of a TTL
//!   and retrying every 100 ms while away, would hold a lease — even one
//!   that found the store up to a TTL later than the sweeper (each node
//!   follows a Sentinel failover on its own). After a Redis outage (or a
//!   failover, or an empty restart that dropped every lease) survivors
//!   therefore wait two TTLs from their own reconnection, and a node that
//!   really died meanwhile is swept right after. A node whose devices were
//!   swept anyway re-asserts them when it reconnects, and retries until
//!   the store takes them.
//!   Wrap-ups whose deadline passed long ago (their owner died) are ended.
//! - **Routing.** A command for an agent whose devices are on another node
//!   goes to that node's command channel; the owner delivers it, waits for
//!   the device's answer and publishes the outcome back to the origin.

use super::router::Outcome;
use super::tenant::{LostChanges, Repair, Tenant};
use super::{device_key, Hub};
use crate::backplane::{Commit, NodeEvent, TenantState};
use crate::clock;
use crate::domain::{Actor, AgentRecord, Event, MonitorMode, Status};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// What nodes say to each other on their command channels.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(super) enum NodeMessage {
    /// Deliver `action` to the agent's devices; answer with a `Result`
    /// when `reply` is set.
    Command {
        cid: String,
        origin: String,
        tenant: String,
        agent: String,
        action: String,
        #[serde(default)]
        mode: MonitorMode,
        supervisor_id: String,
        supervisor_name: String,
        reply: bool,
    },
    /// Close the agent's devices here: signed out by a supervisor (PROTOCOL.md §10.6).
    SignOut {
        tenant: String,
        agent: String,
        by: Actor,
        reason: Option<String>,
    },
    Result {
        cid: String,
        outcome: WireOutcome,
    },
    /// The asker of command `cid` stopped waiting (its supervisor's
    /// connection ended): the owner withdraws the request, and the devices
    /// hear `withdrawn` (PROTOCOL.md §5.6). Sent on the same channel as the
    /// command, after it, so it never overtakes it.
    Withdraw {
        cid: String,
    },
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub(super) enum WireOutcome {
    Accepted,
    Refused { reason: Option<String> },
    TimedOut,
    Offline,
}

impl From<Outcome> for WireOutcome {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Accepted => WireOutcome::Accepted,
            Outcome::Refused(reason) => WireOutcome::Refused { reason },
            Outcome::TimedOut => WireOutcome::TimedOut,
            Outcome::Offline | Outcome::Unavailable(_) => WireOutcome::Offline,
        }
    }
}

impl From<WireOutcome> for Outcome {
    fn from(o: WireOutcome) -> Self {
        match o {
            WireOutcome::Accepted => Outcome::Accepted,
            WireOutcome::Refused { reason } => Outcome::Refused(reason),
            WireOutcome::TimedOut => Outcome::TimedOut,
            WireOutcome::Offline => Outcome::Offline,
        }
    }
}

/// Since when this node has reached the store without a break: set by the
/// lease loop on a renewal, cleared by a failed one, and void as soon as
/// the backplane counts another disconnection.
#[derive(Default)]
struct StoreView {
    since: parking_lot::Mutex<Option<(Instant, u64)>>,
}

impl StoreView {
    fn renewed(&self, hub: &Hub, after_break: bool) {
        let mut since = self.since.lock();
        let disconnections = hub.backplane.disconnections();
        match *since {
            Some((_, seen)) if !after_break && seen == disconnections => {}
            _ => *since = Some((Instant::now(), disconnections)),
        }
    }

    /// How long the store has been reachable without a break (logs).
    fn unbroken_for(&self) -> Option<Duration> {
        self.since.lock().map(|(at, _)| at.elapsed())
    }

    fn lost(&self) {
        *self.since.lock() = None;
    }

    /// Whether the store has been reachable from here without a break for
    /// [`TRUST_AFTER_TTLS`] node TTLs: only then does an absent lease mean
    /// a dead node.
    fn trusts_absent_leases(&self, hub: &Hub) -> bool {
        match *self.since.lock() {
            Some((at, seen)) if seen == hub.backplane.disconnections() => {
                at.elapsed() >= hub.config.node_ttl() * TRUST_AFTER_TTLS
            }
            _ => false,
        }
    }
}

/// Starts the cluster tasks when the backplane is shared.
pub fn start(hub: &Arc<Hub>, gaps: mpsc::UnboundedReceiver<Repair>) {
    if !hub.backplane.is_shared() {
        return;
    }
    let view = Arc::new(StoreView::default());
    tokio::spawn(lease_loop(hub.clone(), view.clone()));
    tokio::spawn(sweep_loop(hub.clone(), view));
    tokio::spawn(seq_watch_loop(hub.clone()));
    tokio::spawn(gap_loop(hub.clone(), gaps));
    if let Some(events) = hub.backplane.take_events() {
        tokio::spawn(event_loop(hub.clone(), events));
    }
}

fn lease_interval(hub: &Hub) -> Duration {
    Duration::from_millis((hub.config.node_ttl_ms / 3).max(10))
}

/// How often survivors look for dead nodes and overdue wrap-ups: often
/// enough that a dead node's agents go offline within TTL + a fraction.
fn sweep_interval(hub: &Hub) -> Duration {
    Duration::from_millis((hub.config.node_ttl_ms / 5).clamp(10, 500))
}

/// While the store is away the lease is retried this often, so a live
/// node renews soon after the store returns (well within the TTL that
/// survivors give it).
const RETRY_WHILE_AWAY: Duration = Duration::from_millis(100);
/// How many node TTLs a sweeper must itself have reached the store without
/// a break before it takes an absent lease for a dead node. One TTL is
/// what a live node needs to renew once the store is back; the second is
/// for a node that finds the store later than this one: after a Sentinel
/// failover each node asks the sentinels on its own, and the convergence
/// test saw a live node switch to the new master 1.25 s (with a 1 s TTL)
/// after a survivor had, and get swept meanwhile.
const TRUST_AFTER_TTLS: u32 = 2;
/// How soon a catch-up that could not read or repair the store is retried.
const RETRY_CATCH_UP: Duration = Duration::from_secs(1);
/// How far a store that fell back has its seq raised past the repairing
/// node's: further than any other node can have applied beyond it (they all
/// read the same delta stream), so no version the store hands out next was
/// seen before. Versions are u64: a million per repair is nothing.
const SEQ_JUMP: u64 = 1_000_000;

/// Clears its flag when dropped: the task that set it ended, however.
struct Cleared(Arc<std::sync::atomic::AtomicBool>);

impl Drop for Cleared {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

async fn lease_loop(hub: Arc<Hub>, view: Arc<StoreView>) {
    let mut healthy = true;
    let mut last_renewed = Instant::now();
    let epochs_checking = Arc::new(std::sync::atomic::AtomicBool::new(false));
    loop {
        // The lease outlives the drain: survivors must not sweep this
        // node's devices while their clients are still reconnecting.
        if hub.lease_released.load(Ordering::Relaxed) {
            return;
        }
        match hub.backplane.renew_lease().await {
            Ok(reconnected) => {
                // Renewed later than the lease lasts, with no failure seen:
                // this node was frozen (SIGSTOP, a VM paused). Its lease
                // expired meanwhile and survivors may have swept its
                // devices, so it catches up and re-asserts them as after an
                // outage (PROTOCOL.md §9.2).
                let lapsed = last_renewed.elapsed() >= hub.config.node_ttl();
                last_renewed = Instant::now();
                let after_break = reconnected || !healthy || lapsed;
                view.renewed(&hub, after_break);
                if after_break {
                    crate::metrics::get().backplane_reconnects.increment(1);
                    if lapsed && !reconnected && healthy {
                        tracing::warn!("this node was frozen past its lease: catching up");
                    } else {
                        tracing::info!("store reachable again: catching up");
                    }
                    // In the gap loop's task, not this one: a long catch-up
                    // (a large tenant, a slow store) must not hold up the
                    // renewals and let the lease lapse.
                    for tenant in hub.attached_tenants() {
                        tenant.request_catch_up();
                    }
                } else if !epochs_checking.swap(true, Ordering::AcqRel) {
                    // A store restarted empty without us noticing a drop.
                    // One read per tenant: in a task of its own, so a node
                    // with 1 000 tenants does not hold up its next renewal
                    // for 1 000 round trips (a lease renewed late is a
                    // catch-up of every replica; BENCHMARKS.md, many
                    // tenants); one such task at a time.
                    let (hub, checking) = (hub.clone(), epochs_checking.clone());
                    tokio::spawn(async move {
                        let _done = Cleared(checking);
                        for tenant in hub.attached_tenants() {
                            if let Ok(false) = hub.backplane.epoch_present(tenant.id()).await {
                                catch_up(&hub, &tenant).await;
                            }
                        }
                    });
                }
                healthy = true;
            }
            Err(e) => {
                view.lost();
                if healthy {
                    tracing::warn!(error = %e, "cannot renew the node lease; not ready");
                }
                healthy = false;
            }
        }
        let pause = if healthy {
            lease_interval(&hub)
        } else {
            lease_interval(&hub).min(RETRY_WHILE_AWAY)
        };
        pause_unless_disconnected(&hub, pause).await;
    }
}

/// How often [`seq_watch_loop`] compares seqs, at least: a delta takes
/// milliseconds from the store to every node, so a seq the store had this
/// long ago and the replica still lacks is one whose delta was lost.
const SEQ_CHECK_EVERY: Duration = Duration::from_secs(1);
/// The most seq reads a node makes a second for [`seq_watch_loop`].
const SEQ_READS_PER_S: f64 = 200.0;

/// Finds deltas lost with no later delta to reveal them. Pub/sub is
/// at-most-once: a gap in the seqs of the deltas that arrive starts a
/// catch-up at once, and a reconnection the backplane reports starts one
/// too; but the last delta of a burst, lost when the store froze or the
/// connection broke around it, leaves nothing behind it to show the gap —
/// the replica would show the old record (or the old directory) until
/// some unrelated change came. So each attached tenant's seq in the store
/// is read now and then (one `GET` per tenant, every second, or less often
/// past [`SEQ_READS_PER_S`] tenants), and a seq the store had at the
/// previous check that the replica still lacks starts a catch-up.
async fn seq_watch_loop(hub: Arc<Hub>) {
    let every = lease_interval(&hub).max(SEQ_CHECK_EVERY);
    // The store's seq per tenant at the previous check.
    let mut seen: HashMap<String, u64> = HashMap::new();
    loop {
        // A node serving many tenants checks each less often, so the reads
        // stay under SEQ_READS_PER_S whatever the count (1 000 tenants:
        // each every 5 s).
        let tenants = hub.attached_tenants();
        let round = every.max(Duration::from_secs_f64(
            tenants.len() as f64 / SEQ_READS_PER_S,
        ));
        tokio::time::sleep(round).await;
        if hub.lease_released.load(Ordering::Relaxed) {
            return;
        }
        let mut now = HashMap::with_capacity(seen.len());
        for tenant in tenants {
            if let Some(&then) = seen.get(tenant.id()) {
                if tenant.seq() < then {
                    // Behind by a whole check: lost, or a node so loaded
                    // that its deltas queue up. One more period tells; a
                    // catch-up reloads the whole tenant, not to be started
                    // on a node that is merely slow.
                    let tenant = tenant.clone();
                    tokio::spawn(async move {
                        tenant.wait_for(then, round).await;
                        let applied = tenant.seq();
                        if applied < then {
                            tracing::warn!(
                                tenant = tenant.id(),
                                store_seq = then,
                                replica_seq = applied,
                                "the store is past this replica with no delta on the way: catching up"
                            );
                            crate::metrics::get().deltas_lost.increment(1);
                            tenant.request_catch_up();
                        }
                    });
                }
            }
            // A store that cannot be read now is not compared next time:
            // the reconnection's own catch-up covers that case.
            if let Ok(Some(seq)) = hub.backplane.current_seq(tenant.id()).await {
                now.insert(tenant.id().to_string(), seq);
            }
        }
        seen = now;
    }
}

/// Sleeps `pause`, but wakes within [`RETRY_WHILE_AWAY`] when the
/// connection to the store drops meanwhile: the backplane refuses changes
/// from then until a renewal works and the catch-up runs, so that renewal
/// should not wait for the rest of a lease interval.
async fn pause_unless_disconnected(hub: &Hub, pause: Duration) {
    let seen = hub.backplane.disconnections();
    let until = tokio::time::Instant::now() + pause;
    loop {
        let now = tokio::time::Instant::now();
        if now >= until {
            return;
        }
        tokio::time::sleep((until - now).min(RETRY_WHILE_AWAY)).await;
        if hub.backplane.disconnections() != seen {
            return;
        }
    }
}

/// Catches tenants up and re-asserts swept devices, one at a time, as
/// asked (a gap, a reconnection, a retry, a sweep of this node's device).
/// Requests that piled up meanwhile are taken together, each once: one
/// catch-up reads everything the store has and re-asserts every device of
/// its tenant.
async fn gap_loop(hub: Arc<Hub>, mut gaps: mpsc::UnboundedReceiver<Repair>) {
    while let Some(first) = gaps.recv().await {
        let mut due = vec![first];
        while let Ok(more) = gaps.try_recv() {
            if !due.contains(&more) {
                due.push(more);
            }
        }
        let caught_up: Vec<String> = due
            .iter()
            .filter_map(|r| match r {
                Repair::CatchUp(t) => Some(t.clone()),
                Repair::Reassert { .. } => None,
            })
            .collect();
        for repair in due {
            match repair {
                Repair::CatchUp(tenant_id) => {
                    if let Some(tenant) = hub.attached_tenant(&tenant_id) {
                        catch_up(&hub, &tenant).await;
                    }
                }
                Repair::Reassert { tenant, agent } if !caught_up.contains(&tenant) => {
                    if let Some(tenant) = hub.attached_tenant(&tenant) {
                        reassert_agent(&hub, &tenant, &agent).await;
                    }
                }
                Repair::Reassert { .. } => {}
            }
        }
    }
}

/// Says again that this node's active devices of one agent are active.
async fn reassert_agent(hub: &Arc<Hub>, tenant: &Arc<Tenant>, agent: &str) {
    for (agent_id, device) in hub.local_active_devices(tenant.id()) {
        if agent_id != agent {
            continue;
        }
        if let Err(e) = device_up(hub, tenant, &agent_id, &device).await {
            tracing::warn!(tenant = tenant.id(), agent = %agent_id, error = %e, "swept device not re-asserted; retrying");
            catch_up_later(tenant);
        } else {
            tracing::info!(tenant = tenant.id(), agent = %agent_id, device = %device.id, "device swept by another node re-asserted");
        }
    }
}

/// Commits a device of this node as active.
async fn device_up(
    hub: &Arc<Hub>,
    tenant: &Arc<Tenant>,
    agent_id: &str,
    device: &crate::protocol::DeviceHello,
) -> crate::error::HubResult<Arc<AgentRecord>> {
    let event = Event::DeviceUp {
        device_id: device.id.clone(),
        kind: device.kind.clone(),
        label: device.label.clone(),
        node: hub.node_id.clone(),
    };
    hub.change_unawaited(tenant, agent_id, &event, |_| Ok(()))
        .await
}

/// Reloads a tenant (restoring it if the store lost it), then re-asserts
/// this node's devices.
async fn catch_up(hub: &Arc<Hub>, tenant: &Arc<Tenant>) {
    match hub.backplane.load(tenant.id()).await {
        Ok(Some(state)) => {
            let Some(state) = after_a_fall_back(hub, tenant, state).await else {
                return;
            };
            tenant.resync(state);
        }
        Ok(None) => match hub.backplane.restore(tenant.id(), &tenant.state()).await {
            Ok(true) => {
                tracing::warn!(
                    tenant = tenant.id(),
                    "store had lost the tenant: restored from this node's replica"
                );
                // The store is this replica now: no fork left to repair.
                tenant.fork_repaired();
            }
            Ok(false) => match hub.backplane.load(tenant.id()).await {
                Ok(Some(state)) => tenant.resync(state),
                _ => {
                    catch_up_later(tenant);
                    return;
                }
            },
            Err(e) => {
                tracing::warn!(tenant = tenant.id(), error = %e, "restore failed; retrying");
                catch_up_later(tenant);
                return;
            }
        },
        Err(e) => {
            // Deltas past a gap wait for this catch-up: try again soon.
            tracing::warn!(tenant = tenant.id(), error = %e, "resync failed; retrying");
            catch_up_later(tenant);
            return;
        }
    }
    // Statistics pushed while this node was cut off arrived on no channel.
    hub.load_queue_stats(tenant).await;
    reassert_devices(hub, tenant).await;
}

/// When the store fell back behind this replica (it lost writes the nodes
/// had seen: a failover to a replica that missed them, a restart from an
/// older snapshot), repairs it before the replica resyncs from it, and
/// returns the state to resync from; `None` when the store could not be
/// read or repaired (the tenant is caught up again a moment later).
///
/// First the store's seq is raised far past this replica's ([`SEQ_JUMP`]),
/// so the versions it hands out next are above every version any node
/// applied — otherwise the nodes would drop them as already seen. Then the
/// records this replica holds newer than the store are written back as this
/// node last saw them, and the store's records whose version may repeat a
/// lost one are committed again unchanged, all with new versions, so every
/// node and every client (higher version wins) takes them. A change
/// acknowledged before the failover thus usually survives it even without
/// `--redis-wait-replicas` (README, "High availability", lists what this
/// best effort does not cover). `Hub::change` refuses to build on a store
/// record older than the replica's (`unavailable`). Several nodes may do
/// this at once: each write is a compare-and-swap.
async fn after_a_fall_back(
    hub: &Arc<Hub>,
    tenant: &Arc<Tenant>,
    state: TenantState,
) -> Option<TenantState> {
    let behind = tenant.store_behind(&state);
    let lost = tenant.lost_by_store(&state).is_some();
    if behind.is_none() && !lost {
        return Some(state);
    }
    let floor = tenant.seq();
    match hub
        .backplane
        .raise_seq(tenant.id(), floor, floor.saturating_add(SEQ_JUMP))
        .await
    {
        Ok(before) if before < floor => tracing::warn!(
            tenant = tenant.id(),
            store_seq = before,
            replica_seq = floor,
            "the store fell back behind the changes this node had seen; repairing it"
        ),
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(tenant = tenant.id(), error = %e, "cannot repair the store yet; retrying");
            catch_up_later(tenant);
            return None;
        }
    }
    // What the store holds now, the raise in place.
    let state = reload(hub, tenant).await?;
    let Some(lost) = tenant.lost_by_store(&state) else {
        return Some(state);
    };
    if !write_back(hub, tenant, lost).await {
        // This replica holds records the store still lacks: resyncing now
        // would keep them here only. Try again in a moment.
        catch_up_later(tenant);
        return None;
    }
    reload(hub, tenant).await
}

async fn reload(hub: &Arc<Hub>, tenant: &Arc<Tenant>) -> Option<TenantState> {
    match hub.backplane.load(tenant.id()).await {
        Ok(Some(state)) => Some(state),
        _ => {
            catch_up_later(tenant);
            None
        }
    }
}

/// Catches the tenant up again after a moment (the store was away).
fn catch_up_later(tenant: &Arc<Tenant>) {
    let tenant = tenant.clone();
    tokio::spawn(async move {
        tokio::time::sleep(RETRY_CATCH_UP).await;
        tenant.request_catch_up();
    });
}

/// Writes the lost records back and renumbers the store's that may repeat
/// a lost version (see [`after_a_fall_back`]); `false` when a write failed.
async fn write_back(hub: &Arc<Hub>, tenant: &Arc<Tenant>, lost: LostChanges) -> bool {
    let mut all_written = true;
    tracing::warn!(
        tenant = tenant.id(),
        lost = lost.reapply.len(),
        renumbered = lost.renumber.len(),
        "writing back the changes the store lost"
    );
    let writes = lost
        .reapply
        .into_iter()
        .map(|l| (l.store_version, l.ours))
        .chain(lost.renumber.into_iter().map(|r| (r.version, r)));
    for (expected, record) in writes {
        let id = record.id.clone();
        match hub
            .backplane
            .commit_agent(tenant.id(), expected, (*record).clone(), "restore", None)
            .await
        {
            Ok(Commit::Committed(_)) => {}
            // Changed meanwhile: that change already has a new version.
            Ok(Commit::Conflict(_) | Commit::AlreadyApplied(_)) => {}
            Err(e) => {
                tracing::warn!(tenant = tenant.id(), agent = %id, error = %e, "lost change not written back");
                all_written = false;
            }
        }
    }
    all_written
}

/// Makes the store agree with the sockets this node holds.
async fn reassert_devices(hub: &Arc<Hub>, tenant: &Arc<Tenant>) {
    let here = |d: &crate::domain::Device| d.active && d.node == hub.node_id;
    for record in tenant.records_where(|r| r.devices.iter().any(here)) {
        for device in record.devices.iter().filter(|d| here(d)) {
            let key = device_key(tenant.id(), &record.id, &device.id);
            if !hub.has_device(&key) {
                hub.device_down(tenant, &record.id, &device.id, Some(&key))
                    .await;
            }
        }
    }
    let mut failed = false;
    for (agent_id, device) in hub.local_active_devices(tenant.id()) {
        if let Err(e) = device_up(hub, tenant, &agent_id, &device).await {
            tracing::warn!(tenant = tenant.id(), agent = %agent_id, error = %e, "device not re-asserted; retrying");
            failed = true;
        }
    }
    if failed {
        // A socket held here must not stay inactive in the store until
        // the next reconnection (a sweep during a failover, a write that
        // met the link down again): catch up and re-assert once more.
        catch_up_later(tenant);
    }
}

async fn sweep_loop(hub: Arc<Hub>, view: Arc<StoreView>) {
    let mut tick = tokio::time::interval(sweep_interval(&hub));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if hub.is_draining() {
            return;
        }
        // An absent lease proves nothing until this node has itself seen
        // the store up for a whole TTL (see the module docs).
        let tenants = hub.attached_tenants();
        let live = if view.trusts_absent_leases(&hub) {
            live_leases(&hub, &tenants, &view).await
        } else {
            None
        };
        for tenant in tenants {
            if let Some(live) = &live {
                sweep_dead_nodes(&hub, &tenant, &view, live).await;
            }
            end_overdue_wrap_ups(&hub, &tenant).await;
            super::overrun::mark_overdue_pauses(&hub, &tenant).await;
        }
    }
}

/// Which of the nodes holding devices of `tenants` (this one aside) have a
/// lease: one read per node a round, however many tenants they share (per
/// tenant, 1 000 tenants over 3 nodes made 12 000 reads a second;
/// BENCHMARKS.md, "Many tenants over three nodes"). `None` when the leases
/// could not be read, or not over one unbroken connection.
async fn live_leases(
    hub: &Arc<Hub>,
    tenants: &[Arc<Tenant>],
    view: &StoreView,
) -> Option<HashSet<String>> {
    let nodes: BTreeSet<String> = tenants
        .iter()
        .flat_map(|t| t.nodes_with_active_devices(&hub.node_id))
        .collect();
    if nodes.is_empty() {
        return Some(HashSet::new());
    }
    let nodes: Vec<String> = nodes.into_iter().collect();
    let live = hub.backplane.live_nodes(&nodes).await.ok()?;
    // The leases were read over the same unbroken connection.
    view.trusts_absent_leases(hub).then_some(live)
}

async fn sweep_dead_nodes(
    hub: &Arc<Hub>,
    tenant: &Arc<Tenant>,
    view: &StoreView,
    live: &HashSet<String>,
) {
    let nodes = tenant.nodes_with_active_devices(&hub.node_id);
    for dead in nodes.iter().filter(|n| !live.contains(*n)) {
        // One survivor does it; the lock expires so another retries if it dies.
        let lock = format!("sweep:{dead}");
        if !matches!(
            hub.backplane
                .try_lock(tenant.id(), &lock, hub.config.node_ttl())
                .await,
            Ok(true)
        ) {
            continue;
        }
        if !still_dead(hub, view, dead).await {
            continue;
        }
        tracing::warn!(
            tenant = tenant.id(),
            node = %dead,
            swept_by = %hub.node_id,
            store_up_ms = view.unbroken_for().map_or(0, |d| d.as_millis() as u64),
            "node lease expired: its devices go inactive"
        );
        let held = |r: &AgentRecord| r.devices.iter().any(|d| d.active && &d.node == dead);
        for record in tenant.records_where(held) {
            for device in record
                .devices
                .iter()
                .filter(|d| d.active && &d.node == dead)
            {
                let event = Event::DeviceDown {
                    device_id: device.id.clone(),
                    node: dead.clone(),
                };
                if let Err(e) = hub
                    .change(tenant, &record.id, &Actor::system(), &event, |_| Ok(()))
                    .await
                {
                    tracing::warn!(tenant = tenant.id(), agent = %record.id, error = %e, "dead node's device not cleared");
                }
            }
        }
    }
}

/// Checks again, with the sweep lock held, that `dead`'s lease is absent
/// where it matters. During a Sentinel failover the old master may still
/// answer this node — with an unbroken connection, so the lease read looked
/// trustworthy — while live nodes already renew on the new one; and the
/// lock may have been taken after a switch, on another server than the
/// leases were read from. So: the sentinels must name the server this node
/// talks to, and the lease is read again there, with the connection and
/// the trust unchanged since.
async fn still_dead(hub: &Arc<Hub>, view: &StoreView, dead: &str) -> bool {
    let before = hub.backplane.disconnections();
    if !matches!(hub.backplane.confirm_master().await, Ok(true)) {
        return false;
    }
    let Ok(live) = hub.backplane.live_nodes(&[dead.to_string()]).await else {
        return false;
    };
    live.is_empty() && hub.backplane.disconnections() == before && view.trusts_absent_leases(hub)
}

/// Wrap-ups whose deadline passed more than a node TTL ago: their owner's
/// timer did not fire (it died). The CAS makes a duplicate harmless.
async fn end_overdue_wrap_ups(hub: &Arc<Hub>, tenant: &Arc<Tenant>) {
    let now = clock::now_ms();
    let overdue = |r: &AgentRecord| {
        r.status == Status::WrapUp
            && r.wrap_up_until_ms
                .is_some_and(|until| until + hub.config.node_ttl_ms < now)
    };
    for record in tenant.records_where(overdue) {
        if let Some(until_ms) = record.wrap_up_until_ms {
            let event = Event::WrapUpExpired { until_ms };
            let _ = hub
                .change(tenant, &record.id, &Actor::system(), &event, |_| Ok(()))
                .await;
        }
    }
}

async fn event_loop(hub: Arc<Hub>, mut events: mpsc::UnboundedReceiver<NodeEvent>) {
    while let Some(NodeEvent::Message(text)) = events.recv().await {
        match serde_json::from_str::<NodeMessage>(&text) {
            Ok(NodeMessage::Result { cid, outcome }) => {
                if let Some((_, waiter)) = hub.remote.remove(&cid) {
                    let _ = waiter.send(outcome.into());
                }
            }
            Ok(NodeMessage::Command {
                cid,
                origin,
                tenant,
                agent,
                action,
                mode,
                supervisor_id,
                supervisor_name,
                reply,
            }) => {
                // Registered before the task starts: a withdrawal, which
                // follows the command on this channel, always finds it.
                let (withdraw, withdrawn) = oneshot::channel();
                if reply {
                    hub.asked_here.insert(cid.clone(), withdraw);
                }
                let hub = hub.clone();
                tokio::spawn(async move {
                    // Only a node serving the tenant can hold the agent's devices.
                    let deliver = async {
                        match hub.attached_tenant(&tenant) {
                            Some(t) => {
                                deliver_locally(
                                    &hub,
                                    &t,
                                    &agent,
                                    &action,
                                    mode,
                                    (&supervisor_id, &supervisor_name),
                                    reply,
                                )
                                .await
                            }
                            None => Outcome::Offline,
                        }
                    };
                    let outcome = tokio::select! {
                        outcome = deliver => Some(outcome),
                        // Dropping the request in flight tells its devices
                        // `withdrawn`; nobody waits for a result.
                        Ok(()) = withdrawn => None,
                    };
                    hub.asked_here.remove(&cid);
                    let Some(outcome) = outcome else { return };
                    if reply {
                        let message = NodeMessage::Result {
                            cid,
                            outcome: outcome.into(),
                        };
                        if let Ok(text) = serde_json::to_string(&message) {
                            let _ = hub.backplane.send_to_node(&origin, &text).await;
                        }
                    }
                });
            }
            Ok(NodeMessage::Withdraw { cid }) => {
                if let Some((_, withdraw)) = hub.asked_here.remove(&cid) {
                    let _ = withdraw.send(());
                }
            }
            Ok(NodeMessage::SignOut {
                tenant,
                agent,
                by,
                reason,
            }) => {
                if let Some(t) = hub.attached_tenant(&tenant) {
                    super::signout::close_local(&t, &agent, &by, reason.as_deref());
                }
            }
            Err(e) => tracing::warn!(error = %e, "unreadable node message ignored"),
        }
    }
}

/// Sends a command to this node's connections of an agent. With `wait`,
/// waits for the outcome; without, answers are absorbed until the timeout.
async fn deliver_locally(
    hub: &Arc<Hub>,
    tenant: &Tenant,
    agent_id: &str,
    action: &str,
    mode: MonitorMode,
    supervisor: (&str, &str),
    wait: bool,
) -> Outcome {
    let devices = tenant.local_connections(agent_id);
    if devices.is_empty() {
        return Outcome::Offline;
    }
    let in_flight = hub
        .router
        .dispatch(tenant.id(), agent_id, action, mode, supervisor, &devices);
    let timeout = hub.config.command_timeout();
    if wait {
        in_flight.outcome(timeout).await
    } else {
        tokio::spawn(async move {
            let _ = in_flight.outcome(timeout).await;
        });
        Outcome::Accepted
    }
}

/// A command this node sent to another node and may wait for.
struct Asking {
    hub: Arc<Hub>,
    cid: String,
    /// The node holding the request while this one waits for its verdict.
    owner: Option<String>,
}

impl Drop for Asking {
    fn drop(&mut self) {
        self.hub.remote.remove(&self.cid);
        // Dropped while waiting: whoever asked stopped waiting, so the
        // owner withdraws the request (in memory, dropping it does).
        let Some(owner) = self.owner.take() else {
            return;
        };
        let message = NodeMessage::Withdraw {
            cid: std::mem::take(&mut self.cid),
        };
        let (Ok(text), Ok(runtime)) = (
            serde_json::to_string(&message),
            tokio::runtime::Handle::try_current(),
        ) else {
            return;
        };
        let hub = self.hub.clone();
        runtime.spawn(async move {
            // Lost (the store is down): the devices hear `timeout` at the
            // timeout instead, as before this message existed.
            let _ = hub.backplane.send_to_node(&owner, &text).await;
        });
    }
}

impl Hub {
    /// Sends `action` to the agent's devices, on this node or on the node
    /// that holds them, and waits for their answer.
    pub async fn ask_agent(
        self: &Arc<Self>,
        tenant: &Arc<Tenant>,
        record: &AgentRecord,
        action: &str,
        mode: MonitorMode,
        supervisor: (&str, &str),
    ) -> Outcome {
        self.command_agent(tenant, record, action, mode, supervisor, true)
            .await
    }

    /// Tells the agent's devices about `action` without waiting.
    pub async fn tell_agent(
        self: &Arc<Self>,
        tenant: &Arc<Tenant>,
        record: &AgentRecord,
        action: &str,
        mode: MonitorMode,
        supervisor: (&str, &str),
    ) {
        let _ = self
            .command_agent(tenant, record, action, mode, supervisor, false)
            .await;
    }

    async fn command_agent(
        self: &Arc<Self>,
        tenant: &Arc<Tenant>,
        record: &AgentRecord,
        action: &str,
        mode: MonitorMode,
        supervisor: (&str, &str),
        wait: bool,
    ) -> Outcome {
        if !tenant.local_connections(&record.id).is_empty() {
            return deliver_locally(self, tenant, &record.id, action, mode, supervisor, wait).await;
        }
        let mut owners: Vec<&str> = record
            .devices
            .iter()
            .filter(|d| d.active && d.node != self.node_id)
            .map(|d| d.node.as_str())
            .collect();
        owners.dedup();
        for owner in owners {
            let cid = format!("{}-c{}", self.node_id, self.next_conn_id());
            let message = NodeMessage::Command {
                cid: cid.clone(),
                origin: self.node_id.clone(),
                tenant: tenant.id().to_string(),
                agent: record.id.clone(),
                action: action.to_string(),
                mode,
                supervisor_id: supervisor.0.to_string(),
                supervisor_name: supervisor.1.to_string(),
                reply: wait,
            };
            let Ok(text) = serde_json::to_string(&message) else {
                continue;
            };
            let (tx, rx) = oneshot::channel();
            // Forgets the waiter however this ends, and withdraws the
            // request from the owner if the asker stops waiting first.
            let mut asking = Asking {
                hub: self.clone(),
                cid: cid.clone(),
                owner: None,
            };
            if wait {
                self.remote.insert(cid.clone(), tx);
            }
            match self.backplane.send_to_node(owner, &text).await {
                // Nobody listens there (the node is gone): try the next owner.
                Ok(0) => {}
                Ok(_) if !wait => return Outcome::Accepted,
                Ok(_) => {
                    asking.owner = Some(owner.to_string());
                    // The owner times the device out itself and reports it; wait a
                    // store round trip longer so its verdict normally wins.
                    let patience = self.config.command_timeout()
                        + Duration::from_millis(self.config.redis_timeout_ms);
                    let outcome = tokio::time::timeout(patience, rx).await;
                    asking.owner = None;
                    return match outcome {
                        Ok(Ok(outcome)) => outcome,
                        _ => Outcome::TimedOut,
                    };
                }
                Err(e) => return Outcome::Unavailable(e.to_string()),
            }
        }
        Outcome::Offline
    }

    /// On a drain: wait (within grace and the drain timeout) for this node's
    /// devices to reconnect elsewhere, then mark the rest inactive and give
    /// up the lease, so survivors see no flap and no stale device.
    pub async fn hand_over_devices(self: &Arc<Self>, within: Duration) {
        if !self.backplane.is_shared() {
            return;
        }
        let deadline = tokio::time::Instant::now() + within.min(self.config.reconnect_grace());
        let mine = |t: &Tenant| -> Vec<(String, String)> {
            t.records_where(|r| r.devices.iter().any(|d| d.active && d.node == self.node_id))
                .iter()
                .flat_map(|r| {
                    r.devices
                        .iter()
                        .filter(|d| d.active && d.node == self.node_id)
                        .map(|d| (r.id.clone(), d.id.clone()))
                        .collect::<Vec<_>>()
                })
                .collect()
        };
        let step = Duration::from_millis((self.config.reconnect_grace_ms / 20).clamp(10, 200));
        while tokio::time::Instant::now() < deadline
            && self.attached_tenants().iter().any(|t| !mine(t).is_empty())
        {
            tokio::time::sleep(step).await;
        }
        for tenant in self.attached_tenants() {
            for (agent, device) in mine(&tenant) {
                self.device_down(&tenant, &agent, &device, None).await;
            }
        }
        self.lease_released.store(true, Ordering::Relaxed);
        self.backplane.release_lease().await;
    }
}
