//! The Redis backplane: many nodes share state through one Redis (DESIGN.md §5).
//!
//! Keys are tenant-scoped with a hash tag, so a tenant's keys and its delta
//! channel live on one Redis Cluster shard:
//!
//! | key | what |
//! |---|---|
//! | `hub:{t}:seq` | the tenant sequence number |
//! | `hub:{t}:records` | hash: agent id → record JSON |
//! | `hub:{t}:versions` | hash: agent id → version (what the CAS compares) |
//! | `hub:{t}:settings` | settings JSON |
//! | `hub:{t}:history` | capped stream of changes |
//! | `hub:{t}:events` | the agent event stream (protocol/EVENTS.md): one entry `e <json>` per version, appended by the script that commits it, trimmed by `--events-max-len` and `--events-max-age-s` |
//! | `hub:{t}:epoch` | present while the store holds this tenant; gone after an empty restart |
//! | `hub:{t}:ops` | hash: agent id → the attempt id and seq of its last change (`settle`) |
//! | `hub:{t}:op:<attempt>` | a settings change's seq, for 10 minutes (`settle`) |
//! | `hub:{t}:fence:<attempt>` | a change whose answer was lost and that must never apply, or (`applied`) one found applied (24 h) |
//! | `hub:{t}:once:<n>:<user>:<key>` | a client's idempotency key → its change's seq (10 minutes) |
//! | `hub:{t}:deltas` | pub/sub channel of committed changes, and (prefix `Q`, no seq) of queue statistics |
//! | `hub:{t}:queue_stats` | hash: `<kind>/<id>` → the channel's latest queue statistics JSON (PROTOCOL.md §10.7) |
//! | `hub:{t}:queue_stats_ms` | hash: `<kind>/<id>` → their `updated_ms` (Redis's clock, `lua/queue_stats.lua`) |
//! | `hub:{t}:sweep:{node}` | short lock: one survivor cleans up a dead node |
//! | `hub:{leases}:<node>` | a live node's lease (TTL `--node-ttl-ms`); every lease on one Redis Cluster slot, so a shard failover stops all renewals or none |
//! | `hub:cmd:{node}` | pub/sub channel of commands routed to a node (hash-tagged by node) |
//! | `hub:webhooks:generation` | a number moved on by every webhook endpoint created (`crate::webhooks`): what nodes poll instead of every tenant's endpoints |
//!
//! Every change is one Lua script (`lua/commit.lua`) that checks the
//! version, bumps the seq, writes, appends the history and publishes the
//! delta, so a change is either fully applied and announced, or not at all.
//! It is applied only while its sender may still be waiting for it, and a
//! change whose answer was lost is settled before the client hears of it
//! (see `super::settle`): `unavailable` means never applied.
//! One multiplexed RESP3 connection (a `ConnectionManager`) carries commands
//! and pub/sub pushes; it reconnects with backoff and resubscribes by itself.
//! A second one, which never subscribes, carries the replies too large for a
//! subscribed connection (a tenant's whole state: Redis holds those to its
//! pub/sub output limit, see `connect`).
//! Pub/sub is at-most-once: after a disconnection the hub resyncs every
//! tenant from the store (see `hub::cluster`).
//!
//! High availability: with Sentinel the connection follows the master the
//! sentinels name (`super::sentinel`); on a Redis Cluster the cluster
//! client follows slot moves. With `--redis-wait-replicas N` a change is
//! acknowledged only once `WAIT N` says N replicas hold it, so a failover
//! to one of them cannot lose it: the change and its `WAIT` travel in one
//! pipeline on connections of the changes' own, and a repeat or a
//! settled lost answer writes its idempotency marker or fence again for
//! that `WAIT` to cover (`super::replicated`).

pub use super::replicated::Durability;
use super::replicated::{Acked, Replication, Write};
use super::sentinel::{is_readonly, master_may_have_moved, SentinelConn};
use super::settle::{Attempts, RedisClock, Settled, FENCE_TTL, SETTINGS_ATTEMPT_TTL};
use super::target::{Prepared, PreparedKind};
use super::*;
use crate::domain::Actor;
use crate::events::{Event, EventId, Page, Retention};
use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{AsyncCommands, PushInfo, PushKind, Script, Value as RedisValue};
use dashmap::DashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Which change `RedisBackplane::settle` asks about.
enum Settling<'a> {
    Agent {
        id: &'a str,
        expected: u64,
    },
    /// A settings or directory change: its attempt has a key of its own.
    Settings,
}

struct Shared {
    handlers: DashMap<String, DeltaHandler>,
    /// Receivers of queue statistics (`Q` on the delta channel).
    queue_handlers: DashMap<String, QueueStatsHandler>,
    events: mpsc::UnboundedSender<NodeEvent>,
    /// Set when the connection dropped; cleared by the next lease renewal,
    /// which then reports the reconnection so the hub resyncs.
    disconnected: AtomicBool,
    /// Every connection loss, counted (what sweepers compare).
    disconnections: AtomicU64,
    ready: AtomicBool,
    node_channel: String,
}

impl Shared {
    /// The connection now goes to another server (a Sentinel failover):
    /// as after a disconnection, the hub catches up from it.
    fn connection_replaced(&self) {
        self.ready.store(false, Ordering::Relaxed);
        self.disconnected.store(true, Ordering::Relaxed);
        self.disconnections.fetch_add(1, Ordering::Relaxed);
    }

    /// A push was dropped (the queue to [`apply_pushes`] was full). Nothing
    /// else is needed: the next delta of its tenant shows the gap in seqs,
    /// and the seq check finds a lost last one (`hub::cluster`); either
    /// resyncs the replica, as for any delta pub/sub lost.
    fn pushes_lost(&self) {
        crate::metrics::get().redis_pushes_dropped.increment(1);
    }

    /// Whether `push` is a delta (a tenant's channel, not its queue
    /// statistics): what a resync brings back, so what may be dropped.
    fn is_delta(&self, push: &PushInfo) -> bool {
        message_of(push).is_some_and(|(channel, payload)| {
            channel != self.node_channel.as_bytes() && !payload.starts_with(b"Q")
        })
    }

    fn on_push(&self, push: PushInfo) {
        match push.kind {
            PushKind::Message | PushKind::SMessage => {
                let Some((channel, payload)) = message_of(&push) else {
                    return;
                };
                let (Ok(channel), Ok(payload)) =
                    (std::str::from_utf8(channel), std::str::from_utf8(payload))
                else {
                    return;
                };
                if channel == self.node_channel {
                    let _ = self.events.send(NodeEvent::Message(payload.to_string()));
                } else if let Some(tenant) = tenant_of_channel(channel) {
                    // Queue statistics share the channel, not the seq
                    // order: they go to their own receiver.
                    if let Some(stats) = payload.strip_prefix('Q') {
                        match serde_json::from_str::<ChannelStats>(stats) {
                            Ok(stats) => {
                                if let Some(handler) = self.queue_handlers.get(tenant) {
                                    handler(stats);
                                }
                            }
                            Err(_) => {
                                tracing::warn!(channel, "unreadable queue statistics ignored")
                            }
                        }
                        return;
                    }
                    match parse_delta(payload) {
                        Some(delta) => {
                            if let Some(handler) = self.handlers.get(tenant) {
                                handler(delta);
                            }
                        }
                        None => tracing::warn!(channel, "unreadable delta ignored"),
                    }
                }
            }
            PushKind::Disconnection => {
                self.ready.store(false, Ordering::Relaxed);
                self.disconnected.store(true, Ordering::Relaxed);
                self.disconnections.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("lost the Redis connection; reconnecting");
            }
            _ => {}
        }
    }
}

/// A pub/sub message's channel and payload (`None` for any other push).
fn message_of(push: &PushInfo) -> Option<(&[u8], &[u8])> {
    let (PushKind::Message | PushKind::SMessage) = push.kind else {
        return None;
    };
    match (push.data.first(), push.data.get(1)) {
        (Some(RedisValue::BulkString(channel)), Some(RedisValue::BulkString(payload))) => {
            Some((channel, payload))
        }
        _ => None,
    }
}

/// The connection's push sender: it only queues (at most `bound` pushes,
/// `--redis-push-queue`; a delta is a few hundred bytes). Past the bound
/// the connection does not wait: a delta is dropped, and found missing as
/// any delta pub/sub loses is (see [`Shared::pushes_lost`]); the other
/// pushes (commands routed to this node, queue statistics, a lost
/// connection) are never dropped.
///
/// Applying a delta (parse, the replica's lock, fan-out to every
/// subscriber) happens in [`apply_pushes`], so the connection's reader is
/// never held by it: the replies of commands in flight (commits,
/// heartbeats) are read while a burst of other nodes' deltas is applied,
/// and a node that cannot keep up drops deltas (and catches up) instead of
/// stalling its reader until Redis closes the connection for its pub/sub
/// output buffer. One queue, one consumer: pushes keep their order.
fn push_queue(
    shared: &Arc<Shared>,
    bound: usize,
) -> impl Fn(PushInfo) -> PushResult + Clone + Send + Sync + 'static {
    let (tx, rx) = mpsc::channel(bound);
    tokio::spawn(apply_pushes(Arc::downgrade(shared), rx));
    let overflow = shared.clone();
    move |info: PushInfo| {
        if let Err(mpsc::error::TrySendError::Full(info)) = tx.try_send(info) {
            // What a resync cannot bring back is handled at once: a lost
            // connection, a command routed to this node (only queued for
            // the node's own task), queue statistics.
            if overflow.is_delta(&info) {
                overflow.pushes_lost();
            } else {
                overflow.on_push(info);
            }
        }
        Ok(())
    }
}

/// Applies queued pushes in order until the connection (its sender) or the
/// backplane is gone.
async fn apply_pushes(shared: std::sync::Weak<Shared>, mut rx: mpsc::Receiver<PushInfo>) {
    while let Some(info) = rx.recv().await {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        shared.on_push(info);
    }
}

struct Keys {
    seq: String,
    records: String,
    versions: String,
    settings: String,
    history: String,
    epoch: String,
    deltas: String,
    ops: String,
    dir_version: String,
    dir_users: String,
    dir_channels: String,
    dir_removed: String,
    events: String,
    /// Written before a `WAIT` that must cover what the store holds
    /// (`replicas_hold_the_store`): a short-lived key of the tenant's.
    synced: String,
    tenant: String,
}

impl Keys {
    /// `seed.lua` and `restore.lua` take the same keys, in this order.
    fn state_invocation<'a>(&self, script: &'a Script) -> ::redis::ScriptInvocation<'a> {
        let mut invocation = script.prepare_invoke();
        invocation
            .key(&self.seq)
            .key(&self.records)
            .key(&self.versions)
            .key(&self.settings)
            .key(&self.epoch)
            .key(&self.dir_version)
            .key(&self.dir_users)
            .key(&self.dir_channels)
            .key(&self.dir_removed)
            .key(&self.events);
        invocation
    }
}

fn keys(tenant: &str) -> Keys {
    let k = |name: &str| format!("hub:{{{tenant}}}:{name}");
    Keys {
        seq: k("seq"),
        records: k("records"),
        versions: k("versions"),
        settings: k("settings"),
        history: k("history"),
        epoch: k("epoch"),
        deltas: k("deltas"),
        ops: k("ops"),
        dir_version: k("dir:version"),
        dir_users: k("dir:users"),
        dir_channels: k("dir:channels"),
        dir_removed: k("dir:removed"),
        events: k("events"),
        synced: k("synced"),
        tenant: tenant.to_string(),
    }
}

impl Keys {
    /// The fence of one attempt (`lua/settle.lua`).
    fn fence(&self, attempt: &str) -> String {
        format!("hub:{{{}}}:fence:{attempt}", self.tenant)
    }

    /// Where a settings change records its attempt.
    fn op(&self, attempt: &str) -> String {
        format!("hub:{{{}}}:op:{attempt}", self.tenant)
    }

    /// The marker of an idempotency key, or (without one) a key of the
    /// tenant the script leaves alone: every key a script touches must be
    /// declared, and on one shard.
    fn once(&self, once: Option<&IdempotencyKey>) -> String {
        match once {
            Some(k) => format!(
                "hub:{{{}}}:once:{}:{}:{}",
                self.tenant,
                k.user.len(),
                k.user,
                k.key
            ),
            None => self.seq.clone(),
        }
    }
}

/// The idempotency window in ms for a script, 0 without a key.
fn window_ms(once: Option<&IdempotencyKey>) -> u64 {
    once.map_or(0, |_| IdempotencyKey::WINDOW.as_millis() as u64)
}

/// Whether a failed call surely did not apply anything: the connection was
/// refused, or Redis answered with an error (the scripts write nothing
/// before their last check). Anything else — a timeout, a connection lost
/// after sending — may have left the request to run.
fn surely_not_applied(e: &::redis::RedisError) -> bool {
    e.is_connection_refusal() || e.code().is_some() || is_readonly(e)
}

/// A node's lease. All leases share one hash tag: on a Redis Cluster a
/// shard failover then keeps every node from renewing, or none, and never
/// makes the nodes whose lease sits elsewhere sweep the others.
fn lease_key(node: &str) -> String {
    format!("hub:{{leases}}:{node}")
}

/// A node's command channel, hash-tagged by node id (its own shard).
fn node_channel(node: &str) -> String {
    format!("hub:cmd:{{{node}}}")
}

fn tenant_of_channel(channel: &str) -> Option<&str> {
    channel.strip_prefix("hub:{")?.strip_suffix("}:deltas")
}

/// `A<record json>`, `S<seq> <settings json>` or `D<seq> <directory
/// write json>`.
fn parse_delta(payload: &str) -> Option<Delta> {
    if let Some(record) = payload.strip_prefix('A') {
        return serde_json::from_str::<AgentRecord>(record)
            .ok()
            .map(|r| Delta::Agent(Arc::new(r)));
    }
    if let Some(change) = payload.strip_prefix('D') {
        let (seq, write) = change.split_once(' ')?;
        return Some(Delta::Directory {
            seq: seq.parse().ok()?,
            write: Arc::new(serde_json::from_str(write).ok()?),
        });
    }
    let (seq, settings) = payload.strip_prefix('S')?.split_once(' ')?;
    Some(Delta::Settings {
        seq: seq.parse().ok()?,
        settings: serde_json::from_str(settings).ok()?,
    })
}

/// JSON of `value` up to and including its last field name `"version":`,
/// which must be serialized last; the script appends the number and `}`.
fn without_version<T: Serialize>(value: &T) -> Result<String, BackplaneError> {
    let mut json = to_json(value)?;
    match json.rfind("\"version\":") {
        Some(at) if json.ends_with('}') => {
            json.truncate(at + "\"version\":".len());
            Ok(json)
        }
        _ => Err(BackplaneError::Unavailable(
            "serialized record has no trailing version".into(),
        )),
    }
}

/// A Redis call that gives up after `timeout` (a reconnecting connection
/// must not hold a request, or the lease loop, for longer).
pub(super) async fn guarded<T>(
    call: impl std::future::Future<Output = ::redis::RedisResult<T>>,
    timeout: Duration,
) -> ::redis::RedisResult<T> {
    match tokio::time::timeout(timeout, call).await {
        Ok(result) => result,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "no answer from Redis in time",
        )
        .into()),
    }
}

/// What `lua/load.lua` answers: seq, records, settings, epoch, directory
/// version, users, channels, removed agents (id and seq, flat).
type RawState = (
    Option<u64>,
    Vec<String>,
    Option<String>,
    Option<String>,
    Option<u64>,
    Vec<String>,
    Vec<String>,
    Vec<(String, u64)>,
);

/// A directory channel's field in the channels hash: `kind:id`.
fn channel_key(channel: &crate::domain::ChannelRef) -> String {
    format!("{}:{}", channel.kind.as_str(), channel.id)
}

/// The one key outside every tenant's: see `Backplane::webhooks_generation`.
const WEBHOOKS_GENERATION: &str = "hub:webhooks:generation";

/// What a push sender answers (it never fails: see [`push_queue`]).
type PushResult = Result<(), std::convert::Infallible>;

/// What a connection that [`open`] opens is for (see
/// `RedisBackplane::connect`).
enum Use<P> {
    /// The node's subscribed connection, its pushes to `on_push`. Behind
    /// Sentinels, `acks` (the changes' reply bound, and how many) asks for
    /// the changes' managers too: they switch masters with this one.
    Subscribed {
        on_push: P,
        acks: Option<(Duration, usize)>,
    },
    /// One that never subscribes, for large replies.
    Bulk,
    /// Changes and their `WAIT`s, each reply within `reply`. On a Redis
    /// Cluster the cluster client retries nothing here: a `WAIT` it sent
    /// again after a lost connection would leave on a fresh one and be
    /// answered at once (`super::replicated`).
    Acks { reply: Duration },
}

/// One connection to the store `target` names (RESP3, with automatic
/// resubscription), for `what`. `timeout` bounds connecting, and each
/// reply but the changes'. `on_switch` runs when a Sentinel points at
/// another master.
async fn open<P>(
    target: &Prepared,
    timeout: Duration,
    what: Use<P>,
    on_switch: impl Fn() + Send + Sync + 'static,
) -> Result<Conn, BackplaneError>
where
    P: Fn(PushInfo) -> PushResult + Clone + Send + Sync + 'static,
{
    let changes_only = matches!(what, Use::Acks { .. });
    let (on_push, reply, sentinel_acks) = match what {
        Use::Subscribed { on_push, acks } => (Some(on_push), timeout, acks),
        Use::Bulk => (None, timeout, None),
        Use::Acks { reply } => (None, reply, None),
    };
    let single = |on_push: Option<P>, reply: Duration| {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(reply))
            // Fail fast while Redis is away (callers get `unavailable` and
            // the lease loop keeps trying) instead of queueing behind a
            // long series of reconnection attempts.
            .set_number_of_retries(1)
            .set_max_delay(timeout);
        match on_push {
            Some(on_push) => config
                .set_push_sender(on_push)
                .set_automatic_resubscription(),
            None => config,
        }
    };
    Ok(match &target.kind {
        PreparedKind::Cluster(seeds) => {
            let mut builder = ::redis::cluster::ClusterClientBuilder::new(seeds.clone())
                .use_protocol(::redis::ProtocolVersion::RESP3)
                .tcp_settings(::redis::io::tcp::TcpSettings::default().set_nodelay(true))
                .connection_timeout(timeout)
                .response_timeout(reply);
            if let Some(on_push) = on_push {
                builder = builder.push_sender(on_push);
            }
            if changes_only {
                builder = builder.retries(0);
            }
            if target.tls {
                builder = builder.tls(::redis::TlsMode::Secure);
                if let Some(certs) = &target.certs {
                    builder = builder.certs(certs.clone());
                }
            }
            let client = builder.build().map_err(unavailable)?;
            Conn::Cluster(client.get_async_connection().await.map_err(unavailable)?)
        }
        PreparedKind::Sentinel { sentinels, master } => Conn::Sentinel(
            SentinelConn::connect(
                sentinels,
                master,
                target,
                super::sentinel::Configs {
                    main: single(on_push, reply),
                    bulk: single(None, timeout),
                    acks: sentinel_acks.map(|(reply, n)| (single(None, reply), n)),
                },
                timeout,
                on_switch,
            )
            .await
            .map_err(unavailable)?,
        ),
        PreparedKind::Single(info) => {
            let client = match &target.certs {
                Some(certs) => ::redis::Client::build_with_tls(info.clone(), certs.clone()),
                None => ::redis::Client::open(info.clone()),
            }
            .map_err(unavailable)?;
            Conn::Single(
                client
                    .get_connection_manager_with_config(single(on_push, reply))
                    .await
                    .map_err(unavailable)?,
            )
        }
    })
}

/// Entries (users, channels and agents' records together) per `seed.lua`
/// call at most (≈ 1 MB of arguments for contact-center records).
const SEED_CHUNK: usize = 1000;

/// Bytes of entries per `seed.lua` call, past which a call ends early (a
/// queue's JSON lists its members: a few queues can be megabytes).
const SEED_CHUNK_BYTES: usize = 1 << 20;

/// The users then the channels of a directory as `seed.lua` and
/// `restore.lua` take them: pairs of field and JSON.
fn directory_entries(directory: &DirectoryImage) -> Result<Vec<(String, String)>, BackplaneError> {
    let users = directory
        .users
        .iter()
        .map(|u| Ok((u.id.clone(), to_json(u)?)));
    let channels = directory
        .channels
        .iter()
        .map(|c| Ok((channel_key(&c.channel_ref()), to_json(c)?)));
    users.chain(channels).collect()
}

fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<String, BackplaneError> {
    serde_json::to_string(value).map_err(|e| BackplaneError::Unavailable(e.to_string()))
}

fn unavailable(e: ::redis::RedisError) -> BackplaneError {
    BackplaneError::Unavailable(format!("redis: {e}"))
}

/// One Redis server (`ConnectionManager`), a Redis Cluster (the cluster
/// client, with sharded pub/sub) or a Sentinel-managed master; all
/// multiplex RESP3 commands and pushes.
#[derive(Clone)]
pub(super) enum Conn {
    Single(ConnectionManager),
    Cluster(::redis::cluster_async::ClusterConnection),
    Sentinel(SentinelConn),
}

impl ::redis::aio::ConnectionLike for Conn {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a ::redis::Cmd,
    ) -> ::redis::RedisFuture<'a, RedisValue> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
            Conn::Sentinel(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a ::redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> ::redis::RedisFuture<'a, Vec<RedisValue>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Sentinel(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
            Conn::Sentinel(c) => c.get_db(),
        }
    }
}

impl Conn {
    /// Subscribes; sharded (`SSUBSCRIBE`) on a cluster, so a tenant's
    /// channel lives on its keys' shard.
    async fn listen(&mut self, channel: &str) -> ::redis::RedisResult<()> {
        match self {
            Conn::Single(c) => c.subscribe(channel).await,
            Conn::Cluster(c) => c.ssubscribe(channel).await,
            Conn::Sentinel(c) => c.subscribe(channel).await,
        }
    }

    async fn unlisten(&mut self, channel: &str) -> ::redis::RedisResult<()> {
        match self {
            Conn::Single(c) => c.unsubscribe(channel).await,
            Conn::Cluster(c) => c.sunsubscribe(channel).await,
            Conn::Sentinel(c) => c.unsubscribe(channel).await,
        }
    }

    fn publish_command(&self) -> &'static str {
        match self {
            Conn::Single(_) | Conn::Sentinel(_) => "PUBLISH",
            Conn::Cluster(_) => "SPUBLISH",
        }
    }
}

pub struct RedisBackplane {
    conn: Conn,
    /// A connection that never subscribes, for replies too large for the
    /// subscribed one (see `connect`).
    bulk: Conn,
    /// The connections for changes and their `WAIT`s, taken in turn: the
    /// subscribed one unless `--redis-wait-replicas` (see `connect`).
    acks: Vec<Conn>,
    next_ack: std::sync::atomic::AtomicUsize,
    shared: Arc<Shared>,
    events: parking_lot::Mutex<Option<mpsc::UnboundedReceiver<NodeEvent>>>,
    node_id: String,
    history_capacity: usize,
    node_ttl: Duration,
    timeout: Duration,
    /// `WAIT` for replicas before acknowledging a change (`super::replicated`).
    replication: Replication,
    commit: Script,
    settings: Script,
    seed: Script,
    load: Script,
    restore: Script,
    raise_seq: Script,
    settle: Script,
    directory: Script,
    lease: Script,
    heartbeat: Script,
    read_events: Script,
    queue_stats: Script,
    applied_under: Script,
    webhook_put: Script,
    /// How much of each tenant's event stream is kept.
    retention: Retention,
    /// The server's clock as of the last lease renewal (change deadlines).
    clock: RedisClock,
    attempts: Attempts,
}

impl RedisBackplane {
    /// Connects (RESP3, with automatic resubscription) and subscribes to
    /// this node's command channel. With `durability.replicas` above 0 a
    /// change is acknowledged only once that many replicas hold it
    /// (`super::replicated`).
    pub async fn connect(
        target: &Prepared,
        node_id: &str,
        history_capacity: usize,
        node_ttl: Duration,
        timeout: Duration,
        push_bound: usize,
        durability: Durability,
    ) -> Result<Self, BackplaneError> {
        let replication = Replication {
            durability,
            answer: timeout,
        };
        // A `WAIT` holds up every later command of its connection until the
        // replicas answer (Redis runs one client's commands in order), so
        // changes and their `WAIT`s get connections of their own: lease
        // renewals and loads never queue behind them, and changes queue
        // behind one another only per connection. Their replies may take the
        // wait too.
        let connections = durability.connections.max(1);
        let acks_timeout = replication
            .asks_replicas()
            .then_some((replication.reply_bound(), connections));
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            handlers: DashMap::new(),
            queue_handlers: DashMap::new(),
            events: tx,
            disconnected: AtomicBool::new(false),
            disconnections: AtomicU64::new(0),
            ready: AtomicBool::new(true),
            node_channel: node_channel(node_id),
        });
        let on_push = push_queue(&shared, push_bound);
        let replaced = shared.clone();
        // Boxed: the connect futures are deep, and the node's start (which
        // awaits this) would otherwise pass the compiler's layout depth.
        let subscribed = Use::Subscribed {
            on_push,
            acks: acks_timeout,
        };
        let mut conn = Box::pin(open(target, timeout, subscribed, move || {
            replaced.connection_replaced()
        }))
        .await?;
        // Large replies (a tenant's whole state: 70 MB for 100 000 agents)
        // come over a connection of their own. On the subscribed one Redis
        // counts them against its pub/sub output limit (`client-output-
        // buffer-limit pubsub`, 32 MB by default) and closes it.
        // Behind Sentinels, the same master's second manager (it switches
        // with the first).
        let bulk = match &conn {
            Conn::Sentinel(c) => Conn::Sentinel(c.bulk()),
            _ => {
                let bulk = Use::<fn(PushInfo) -> PushResult>::Bulk;
                Box::pin(open(target, timeout, bulk, || {})).await?
            }
        };
        let mut acks = Vec::with_capacity(connections);
        match (&conn, acks_timeout) {
            (_, None) => acks.push(conn.clone()),
            (Conn::Sentinel(c), Some(_)) => {
                acks.extend((0..connections).map(|i| Conn::Sentinel(c.acks(i))));
            }
            (_, Some((reply, _))) => {
                for _ in 0..connections {
                    let changes = Use::<fn(PushInfo) -> PushResult>::Acks { reply };
                    acks.push(Box::pin(open(target, timeout, changes, || {})).await?);
                }
            }
        }
        conn.listen(&shared.node_channel)
            .await
            .map_err(unavailable)?;
        let backplane = RedisBackplane {
            conn,
            bulk,
            acks,
            next_ack: std::sync::atomic::AtomicUsize::new(0),
            shared,
            events: parking_lot::Mutex::new(Some(rx)),
            node_id: node_id.to_string(),
            history_capacity,
            node_ttl,
            timeout,
            replication,
            commit: Script::new(include_str!("lua/commit.lua")),
            queue_stats: Script::new(include_str!("lua/queue_stats.lua")),
            settings: Script::new(include_str!("lua/settings.lua")),
            seed: Script::new(include_str!("lua/seed.lua")),
            load: Script::new(include_str!("lua/load.lua")),
            restore: Script::new(include_str!("lua/restore.lua")),
            raise_seq: Script::new(include_str!("lua/raise_seq.lua")),
            settle: Script::new(include_str!("lua/settle.lua")),
            directory: Script::new(include_str!("lua/directory.lua")),
            lease: Script::new(include_str!("lua/lease.lua")),
            heartbeat: Script::new(include_str!("lua/heartbeat.lua")),
            read_events: Script::new(include_str!("lua/events.lua")),
            applied_under: Script::new(include_str!("lua/applied_under.lua")),
            webhook_put: Script::new(include_str!("lua/webhook_put.lua")),
            retention: Retention::default(),
            clock: RedisClock::default(),
            attempts: Attempts::new(),
        };
        backplane.load_change_scripts().await?;
        Ok(backplane)
    }

    /// With `--redis-wait-replicas`, loads the scripts of changes up front.
    /// A script the server lacks costs its change a second pipeline, and the
    /// first one's `WAIT` (`super::replicated`): a change first sent after
    /// the replicas fell behind would then reach Redis past its deadline.
    /// A new master (a failover) still loads them at their first use.
    /// (Not on a Redis Cluster: a pipeline without keys goes to any one
    /// node there.)
    async fn load_change_scripts(&self) -> Result<(), BackplaneError> {
        if !self.replication.asks_replicas() || matches!(self.acks(), Conn::Cluster(_)) {
            return Ok(());
        }
        let mut pipe = ::redis::pipe();
        for script in [
            &self.commit,
            &self.settings,
            &self.directory,
            &self.settle,
            &self.applied_under,
            &self.webhook_put,
        ] {
            pipe.load_script(script);
        }
        let loaded: ::redis::RedisResult<Vec<String>> =
            guarded(pipe.query_async(&mut self.acks()), self.timeout).await;
        self.note(loaded).map(|_| ())
    }

    /// How much earlier than the node stops waiting a change's deadline
    /// falls: room for servers whose clocks differ from the one the lease
    /// renewal read (PROTOCOL.md §9: they must agree within it).
    fn clock_margin(&self) -> Duration {
        (self.timeout / 4).min(Duration::from_millis(100))
    }

    /// The deadline of a change sent now (`commit.lua`, `settings.lua`).
    fn deadline(&self, sent: Instant) -> u64 {
        self.clock.deadline(sent, self.timeout, self.clock_margin())
    }

    /// Before sending a change: while this node knows its link to the store
    /// is broken (a lease renewal failed or the connection dropped, until a
    /// renewal works again, retried every 100 ms), a change is refused here,
    /// surely unapplied, instead of being sent into the broken link where
    /// its outcome could only be settled later.
    fn check_reachable(&self) -> Result<(), BackplaneError> {
        if !self.shared.disconnected.load(Ordering::Relaxed) {
            Ok(())
        } else {
            Err(BackplaneError::Unavailable(
                "the store is unreachable; nothing was applied".into(),
            ))
        }
    }

    /// Finds out what became of an attempt whose answer did not come
    /// (`error`), fencing it if it was not applied (`lua/settle.lua`).
    /// Answers no sooner than the node would have waited (`sent` plus the
    /// timeout) unless it learned the outcome, so that the deadline has
    /// passed on Redis by then.
    async fn settle(
        &self,
        conn: &mut Conn,
        k: &Keys,
        what: Settling<'_>,
        attempt: &str,
        sent: Instant,
        error: ::redis::RedisError,
    ) -> Result<(Settled, Acked), BackplaneError> {
        let mut invocation = self.settle.prepare_invoke();
        match what {
            Settling::Agent { id, expected } => {
                invocation
                    .key(&k.ops)
                    .key(&k.versions)
                    .key(k.fence(attempt))
                    .arg("agent")
                    .arg(id)
                    .arg(attempt)
                    .arg(expected);
            }
            Settling::Settings => {
                invocation
                    .key(k.op(attempt))
                    .key(&k.versions)
                    .key(k.fence(attempt))
                    .arg("settings")
                    .arg("")
                    .arg(attempt)
                    .arg("");
            }
        }
        invocation.arg(FENCE_TTL.as_millis() as u64);
        // With its WAIT: an attempt found applied is acknowledged only once
        // the replicas hold it, and settle.lua wrote for the WAIT to cover.
        let answer: ::redis::RedisResult<((i64, Option<String>), Acked)> = self
            .replication
            .send(conn, Write::Script(&invocation))
            .await;
        match self.note(answer) {
            Ok(((code, seq), acked)) => {
                let settled = Settled::parse(code, seq).ok_or_else(|| {
                    BackplaneError::OutcomeUnknown("unreadable answer from settle.lua".into())
                })?;
                crate::metrics::get().changes_settled(&settled);
                Ok((settled, acked))
            }
            Err(e) => {
                tokio::time::sleep_until((sent + self.timeout).into()).await;
                crate::metrics::get().changes_settled(&Settled::Unknown);
                Err(BackplaneError::OutcomeUnknown(format!(
                    "the change was sent but its answer was lost ({error}), and Redis could not \
                     be asked what became of it ({e}): it was applied before this reply, or \
                     never will be"
                )))
            }
        }
    }

    /// What became of a settings or directory change (its attempt recorded
    /// under a key of its own) whose answer was lost: its seq once it was
    /// applied (and replicated as asked), or `unavailable` — it was not,
    /// and the fence makes sure it never will be.
    async fn settle_own_attempt(
        &self,
        conn: &mut Conn,
        k: &Keys,
        attempt: &str,
        sent: Instant,
        error: ::redis::RedisError,
    ) -> Result<u64, BackplaneError> {
        self.mark_if_unreachable(&error);
        match self
            .settle(conn, k, Settling::Settings, attempt, sent, error)
            .await?
        {
            (Settled::Applied(seq), acked) => {
                self.replication.check(conn, acked, &k.seq).await?;
                Ok(seq)
            }
            (Settled::NotApplied | Settled::Unknown, _) => Err(BackplaneError::Unavailable(
                "no answer from Redis in time; the change was not applied".into(),
            )),
        }
    }

    /// Keeps each tenant's event stream within `retention`
    /// ([`Retention::OFF`]: writes none).
    pub fn with_events(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
    }

    /// An event's opening for a script, or empty when the stream is off.
    fn event_prefix(
        &self,
        kind: &str,
        tenant: &str,
        agent_id: Option<&str>,
        event: &str,
        by: &crate::domain::Actor,
    ) -> String {
        if !self.retention.enabled() {
            return String::new();
        }
        Event::prefix(kind, tenant, agent_id, event, crate::clock::now_ms(), by)
    }

    /// A directory event up to its version (the script appends it), or
    /// empty when the stream is off.
    fn directory_event(
        &self,
        tenant: &str,
        write: &DirectoryWrite,
        by: &crate::domain::Actor,
    ) -> String {
        let mut event = self.event_prefix("directory", tenant, None, &write.event, by);
        if !event.is_empty() {
            event.push_str(&format!(
                "\"directory\":{},",
                crate::events::event::directory_body(write)
            ));
        }
        event
    }

    /// The events' maximum age for a script, 0 for none.
    fn events_max_age(&self) -> u64 {
        self.retention.max_age_ms.unwrap_or(0)
    }

    /// The next of the changes' connections.
    fn acks(&self) -> Conn {
        let i = self.next_ack.fetch_add(1, Ordering::Relaxed);
        self.acks[i % self.acks.len()].clone()
    }

    fn conn(&self) -> Conn {
        self.conn.clone()
    }

    /// Subscribes again to every channel of this node. The clients
    /// resubscribe by themselves after a reconnection, but a Redis Cluster
    /// failover can leave a sharded subscription on the demoted or dead
    /// master; subscribing twice is harmless.
    async fn listen_again(&self) -> Result<(), BackplaneError> {
        let mut channels = vec![self.shared.node_channel.clone()];
        channels.extend(self.shared.handlers.iter().map(|h| keys(h.key()).deltas));
        let mut conn = self.conn();
        for channel in channels {
            let listened = guarded(conn.listen(&channel), self.timeout).await;
            if let Err(e) = self.note(listened) {
                self.shared.disconnected.store(true, Ordering::Relaxed);
                return Err(e);
            }
        }
        Ok(())
    }

    /// Remembers the outcome of a store operation for `/readyz`.
    fn note<T>(&self, result: ::redis::RedisResult<T>) -> Result<T, BackplaneError> {
        result.map_err(|e| self.failed(e))
    }

    fn failed(&self, e: ::redis::RedisError) -> BackplaneError {
        self.mark_if_unreachable(&e);
        unavailable(e)
    }

    /// Not ready until a lease renewal works again, when the error says
    /// the store may be away.
    fn mark_if_unreachable(&self, e: &::redis::RedisError) {
        if master_may_have_moved(e) {
            self.shared.ready.store(false, Ordering::Relaxed);
        }
    }

    fn parse_state(raw: RawState) -> Result<Option<TenantState>, BackplaneError> {
        let (seq, records, settings, epoch, dir_version, users, channels, removed) = raw;
        let (Some(seq), Some(settings), Some(epoch)) = (seq, settings, epoch) else {
            return Ok(None);
        };
        let settings = serde_json::from_str(&settings)
            .map_err(|e| BackplaneError::Unavailable(format!("settings: {e}")))?;
        let agents = records
            .iter()
            .filter_map(|r| match serde_json::from_str::<AgentRecord>(r) {
                Ok(r) => Some(Arc::new(r)),
                Err(e) => {
                    tracing::warn!(error = %e, "unreadable record in the store skipped");
                    None
                }
            })
            .collect();
        // Unreadable entries are errors, not skips: a directory that lost a
        // user would sign that user out everywhere.
        let directory = match dir_version {
            None => None,
            Some(version) => Some(DirectoryImage {
                version,
                removed: removed.into_iter().collect(),
                users: users
                    .iter()
                    .map(|u| serde_json::from_str(u))
                    .collect::<Result<_, _>>()
                    .map_err(|e| BackplaneError::Unavailable(format!("directory user: {e}")))?,
                channels: channels
                    .iter()
                    .map(|c| serde_json::from_str(c))
                    .collect::<Result<_, _>>()
                    .map_err(|e| BackplaneError::Unavailable(format!("directory channel: {e}")))?,
            }),
        };
        Ok(Some(TenantState {
            seq,
            settings,
            agents,
            directory,
            epoch: Epoch::parse(&epoch),
        }))
    }
}

impl RedisBackplane {
    /// Writes what the store lacks of `seed` (`lua/seed.lua`), in calls of
    /// at most [`SEED_CHUNK`] entries and about [`SEED_CHUNK_BYTES`]: each
    /// stays short for Redis and for the node's connection (its lease
    /// renewals share it), whatever the size of the directory file. Starts
    /// over when the last call finds earlier ones lost (a failover between
    /// two calls), a few times at most.
    async fn seed_tenant(
        &self,
        k: &Keys,
        seed: &TenantSeed,
        conn: &mut Conn,
    ) -> Result<(), BackplaneError> {
        let settings_json = to_json(&seed.settings)?;
        // Used only when the store has no epoch yet (a fresh tenant, seq 0).
        let epoch = Epoch::new(&self.node_id, 0);
        let (users, channels) = (&seed.directory.users, &seed.directory.channels);
        // Every entry as the script takes it: users, then channels, then
        // agents, each a field and its JSON.
        let mut entries = directory_entries(&seed.directory)?;
        entries.reserve(seed.agents.len());
        for record in &seed.agents {
            entries.push((record.id.clone(), without_version(record)?));
        }
        let kinds = [users.len(), users.len() + channels.len()];
        for _attempt in 0..3 {
            let mut at = 0;
            loop {
                // One entry at least, however large.
                let mut end = at + 1;
                let mut bytes = entries.get(at).map_or(0, |(f, j)| f.len() + j.len());
                while end < entries.len() && end - at < SEED_CHUNK {
                    let next = entries[end].0.len() + entries[end].1.len();
                    if bytes + next > SEED_CHUNK_BYTES {
                        break;
                    }
                    bytes += next;
                    end += 1;
                }
                let end = end.min(entries.len());
                let last = end == entries.len();
                let in_chunk = |from: usize, to: usize| end.clamp(from, to) - at.clamp(from, to);
                let mut invocation = k.state_invocation(&self.seed);
                invocation
                    .arg(&settings_json)
                    .arg(&epoch.id)
                    .arg(in_chunk(0, kinds[0]))
                    .arg(in_chunk(kinds[0], kinds[1]))
                    .arg(if last { "1" } else { "0" })
                    .arg(users.len())
                    .arg(channels.len())
                    .arg(seed.agents.len());
                for (field, json) in &entries[at..end] {
                    invocation.arg(field).arg(json);
                }
                let wrote: ::redis::RedisResult<i64> =
                    guarded(invocation.invoke_async(conn), self.timeout).await;
                match self.note(wrote)? {
                    // Another node finished seeding meanwhile: its directory stands.
                    0 => return Ok(()),
                    -1 => break,
                    _ if last => return Ok(()),
                    _ => at = end,
                }
            }
            tracing::warn!(tenant = %k.tenant, "earlier seed chunks were lost (a failover?): seeding again");
        }
        Err(BackplaneError::Unavailable(
            "the directory seed kept losing its earlier chunks".into(),
        ))
    }
}

#[async_trait]
impl Backplane for RedisBackplane {
    async fn attach(
        &self,
        tenant: &str,
        seed: TenantSeed,
        on_delta: DeltaHandler,
    ) -> Result<TenantState, BackplaneError> {
        let k = keys(tenant);
        // Subscribe first, then read: a delta in between is delivered and
        // the replica drops what the state already has.
        self.shared.handlers.insert(tenant.to_string(), on_delta);
        let mut conn = self.conn();
        let subscribed = guarded(conn.listen(&k.deltas), self.timeout).await;
        self.note(subscribed)?;
        // A store that has the tenant's directory needs no seed: one
        // EXISTS instead of sending the whole file again (100 MB for
        // 100 000 agents) at every node's attach.
        let seeded: ::redis::RedisResult<bool> =
            guarded(conn.exists(&k.dir_version), self.timeout).await;
        let skipped = self.note(seeded)?;
        if !skipped {
            self.seed_tenant(&k, &seed, &mut conn).await?;
        }
        if let Some(state) = self.load(tenant).await? {
            return Ok(state);
        }
        // A directory without its seq, settings or epoch (evicted, or
        // deleted by hand): the seed's first call puts them back.
        if skipped {
            self.seed_tenant(&k, &seed, &mut conn).await?;
        }
        self.load(tenant).await?.ok_or_else(|| {
            BackplaneError::Unavailable(format!("tenant {tenant} vanished while attaching"))
        })
    }

    async fn detach(&self, tenant: &str) {
        self.shared.handlers.remove(tenant);
        self.shared.queue_handlers.remove(tenant);
        let mut conn = self.conn();
        let _ = guarded(conn.unlisten(&keys(tenant).deltas), self.timeout).await;
    }

    async fn commit_agent(
        &self,
        tenant: &str,
        expected_version: u64,
        record: AgentRecord,
        event: &'static str,
        once: Option<&IdempotencyKey>,
    ) -> Result<Commit, BackplaneError> {
        self.check_reachable()?;
        let k = keys(tenant);
        let history = HistoryEntry::of(&record, event);
        let event_prefix = self.event_prefix("agent", tenant, Some(&record.id), event, &history.by);
        let attempt = self.attempts.next();
        let mut conn = self.acks();
        let sent = Instant::now();
        let mut invocation = self.commit.prepare_invoke();
        invocation
            .key(&k.seq)
            .key(&k.records)
            .key(&k.versions)
            .key(&k.history)
            .key(&k.deltas)
            .key(&k.ops)
            .key(k.fence(&attempt))
            .key(k.once(once))
            .key(&k.events)
            .arg(&record.id)
            .arg(expected_version)
            .arg(without_version(&record)?)
            .arg(self.history_capacity)
            .arg(without_version(&history)?)
            .arg(conn.publish_command())
            .arg(&attempt)
            .arg(self.deadline(sent))
            .arg(window_ms(once))
            .arg(event_prefix)
            .arg(self.retention.max_len)
            .arg(self.events_max_age());
        let result: ::redis::RedisResult<((u64, Option<String>), Acked)> = self
            .replication
            .send::<(u64, RedisValue)>(&mut conn, Write::Script(&invocation))
            .await
            .map(|((code, payload), acked)| {
                let payload = match payload {
                    RedisValue::BulkString(b) => String::from_utf8(b).ok(),
                    RedisValue::SimpleString(s) => Some(s),
                    RedisValue::Int(seq) => Some(seq.to_string()),
                    _ => None,
                };
                ((code, payload), acked)
            });
        let committed = |seq: u64| {
            let mut record = record.clone();
            record.version = seq;
            Commit::Committed(Arc::new(record))
        };
        let current = |payload: Option<String>| {
            payload
                .and_then(|json| serde_json::from_str::<AgentRecord>(&json).ok())
                .map(Arc::new)
        };
        let ((code, payload), acked) = match result {
            Ok(answer) => answer,
            Err(e) if surely_not_applied(&e) => return Err(self.failed(e)),
            Err(e) => {
                self.mark_if_unreachable(&e);
                let what = Settling::Agent {
                    id: &record.id,
                    expected: expected_version,
                };
                return match self.settle(&mut conn, &k, what, &attempt, sent, e).await? {
                    (Settled::Applied(seq), acked) => {
                        self.replication.check(&mut conn, acked, &k.seq).await?;
                        Ok(committed(seq))
                    }
                    (Settled::NotApplied, _) => Err(BackplaneError::Unavailable(
                        "no answer from Redis in time; the change was not applied".into(),
                    )),
                    (Settled::Unknown, _) => Err(BackplaneError::OutcomeUnknown(
                        "no answer from Redis in time, and the agent changed since: whether \
                         this change was applied first is unknown (it will not be applied now)"
                            .into(),
                    )),
                };
            }
        };
        match code {
            1 => {
                self.replication.check(&mut conn, acked, &k.seq).await?;
                let seq: u64 = payload.and_then(|s| s.parse().ok()).ok_or_else(|| {
                    BackplaneError::OutcomeUnknown("commit returned no seq".into())
                })?;
                Ok(committed(seq))
            }
            // A repeat is acknowledged like the change it repeats: once the
            // replicas hold that change (the script wrote for WAIT to cover).
            2 => {
                self.replication.check(&mut conn, acked, &k.seq).await?;
                Ok(Commit::AlreadyApplied(current(payload)))
            }
            3 => Err(BackplaneError::Unavailable(format!(
                "the change reached Redis too late ({}); it was not applied",
                payload.as_deref().unwrap_or("late")
            ))),
            _ => Ok(Commit::Conflict(current(payload))),
        }
    }

    async fn update_settings(
        &self,
        tenant: &str,
        patch: &SettingsPatch,
        by: &crate::domain::Actor,
        once: Option<&IdempotencyKey>,
    ) -> Result<(u64, Settings), BackplaneError> {
        // A keyed request not applied now may repeat one that was, which
        // this node cannot check while the store fails it (PROTOCOL.md §3.3).
        let keyed = |e: BackplaneError| match (e, once) {
            (BackplaneError::Unavailable(why), Some(_)) => BackplaneError::OutcomeUnknown(format!(
                "{why}; an earlier request under this idempotency key may have made the \
                 change: repeat it to know"
            )),
            (e, _) => e,
        };
        self.check_reachable().map_err(keyed)?;
        let k = keys(tenant);
        let event_prefix = self.event_prefix("settings", tenant, None, "settings_updated", by);
        let patch = to_json(patch)?;
        let attempt = self.attempts.next();
        let mut conn = self.acks();
        let sent = Instant::now();
        let mut invocation = self.settings.prepare_invoke();
        invocation
            .key(&k.seq)
            .key(&k.settings)
            .key(&k.deltas)
            .key(k.op(&attempt))
            .key(k.fence(&attempt))
            .key(k.once(once))
            .key(&k.events)
            .arg(patch)
            .arg(conn.publish_command())
            .arg(self.deadline(sent))
            .arg(SETTINGS_ATTEMPT_TTL.as_millis() as u64)
            .arg(window_ms(once))
            .arg(event_prefix)
            .arg(self.retention.max_len)
            .arg(self.events_max_age());
        let result: ::redis::RedisResult<((u64, String, Option<u64>), Acked)> = self
            .replication
            .send(&mut conn, Write::Script(&invocation))
            .await;
        let ((seq, json, earlier), acked) = match result {
            Ok(answer) => answer,
            Err(e) if surely_not_applied(&e) => return Err(keyed(self.failed(e))),
            Err(e) => {
                let seq = self
                    .settle_own_attempt(&mut conn, &k, &attempt, sent, e)
                    .await
                    .map_err(keyed)?;
                // The settings it made: read back (a later change may show
                // through, as after any reply).
                return match self.load(tenant).await {
                    Ok(Some(state)) => Ok((seq, state.settings)),
                    Ok(None) => Err(BackplaneError::OutcomeUnknown(
                        "the change is applied, but the tenant vanished".into(),
                    )),
                    Err(e) => Err(BackplaneError::OutcomeUnknown(format!(
                        "the change is applied (seq {seq}), but the settings could not \
                         be read back: {e}"
                    ))),
                };
            }
        };
        // Acknowledged, a repeat too, only once the replicas hold it.
        self.replication.check(&mut conn, acked, &k.seq).await?;
        if seq == 0 {
            // Applied before under the same idempotency key (at `earlier`):
            // nothing now.
            let settings = serde_json::from_str(&json)
                .map_err(|e| BackplaneError::OutcomeUnknown(format!("settings: {e}")))?;
            return Ok((earlier.unwrap_or(0), settings));
        }
        let settings = serde_json::from_str(&json)
            .map_err(|e| BackplaneError::OutcomeUnknown(format!("settings: {e}")))?;
        Ok((seq, settings))
    }

    async fn commit_directory(
        &self,
        tenant: &str,
        write: &DirectoryWrite,
        once: Option<&IdempotencyKey>,
    ) -> Result<DirectoryCommit, BackplaneError> {
        self.check_reachable()?;
        let k = keys(tenant);
        let attempt = self.attempts.next();
        let mut invocation = self.directory.prepare_invoke();
        invocation
            .key(&k.seq)
            .key(&k.records)
            .key(&k.versions)
            .key(&k.history)
            .key(&k.deltas)
            .key(&k.dir_users)
            .key(&k.dir_channels)
            .key(&k.dir_version)
            .key(k.op(&attempt))
            .key(k.fence(&attempt))
            .key(k.once(once))
            .key(&k.dir_removed)
            .key(&k.events);
        let by = write
            .by
            .clone()
            .unwrap_or_else(crate::domain::Actor::system);
        let mut conn = self.acks();
        let sent = Instant::now();
        invocation
            .arg(write.expected_version)
            .arg(to_json(write)?)
            .arg(conn.publish_command())
            .arg(self.deadline(sent))
            .arg(SETTINGS_ATTEMPT_TTL.as_millis() as u64)
            .arg(window_ms(once))
            .arg(self.history_capacity)
            .arg(write.users_put.len())
            .arg(write.users_removed.len())
            .arg(write.channels_put.len())
            .arg(write.channels_removed.len())
            .arg(write.records_put.len())
            .arg(write.records_removed.len())
            .arg(self.directory_event(tenant, write, &by))
            .arg(self.retention.max_len)
            .arg(self.events_max_age());
        for user in &write.users_put {
            invocation.arg(&user.id).arg(to_json(user)?);
        }
        for id in &write.users_removed {
            invocation.arg(id);
        }
        for channel in &write.channels_put {
            invocation
                .arg(channel_key(&channel.channel_ref()))
                .arg(to_json(channel)?);
        }
        for channel in &write.channels_removed {
            invocation.arg(channel_key(channel));
        }
        for put in &write.records_put {
            let history = HistoryEntry::of(&put.record, write.event.clone());
            invocation
                .arg(&put.record.id)
                .arg(put.expected.map(|v| v.to_string()).unwrap_or_default())
                .arg(without_version(&put.record)?)
                .arg(without_version(&history)?)
                .arg(self.event_prefix(
                    "agent",
                    tenant,
                    Some(&put.record.id),
                    &write.event,
                    // As the memory store says it: the record's author, else
                    // whoever made the directory change.
                    put.record.changed_by.as_ref().unwrap_or(&by),
                ));
        }
        for removal in &write.records_removed {
            // The history keeps the agent as it was, and who removed it.
            let mut history = HistoryEntry {
                at_ms: crate::clock::now_ms(),
                agent_id: removal.id.clone(),
                event: write.event.clone().into(),
                presence: crate::domain::Presence::Offline,
                status: crate::domain::Status::Offline,
                pause_reason: None,
                by: write
                    .by
                    .clone()
                    .unwrap_or_else(crate::domain::Actor::system),
                version: 0,
            };
            if let Some(old) = self.read_agent(tenant, &removal.id).await.ok().flatten() {
                history.presence = old.presence;
                history.status = old.status;
                history.pause_reason = old.pause_reason.clone();
            }
            invocation
                .arg(&removal.id)
                .arg(removal.expected)
                .arg(without_version(&history)?)
                .arg(self.event_prefix("agent", tenant, Some(&removal.id), &write.event, &by));
        }
        let result: ::redis::RedisResult<((i64, u64), Acked)> = self
            .replication
            .send(&mut conn, Write::Script(&invocation))
            .await;
        let ((code, seq), acked) = match result {
            Ok(answer) => answer,
            Err(e) if surely_not_applied(&e) => return Err(self.failed(e)),
            Err(e) => {
                let seq = self
                    .settle_own_attempt(&mut conn, &k, &attempt, sent, e)
                    .await?;
                return Ok(DirectoryCommit::Committed(seq));
            }
        };
        match code {
            1 => {
                self.replication.check(&mut conn, acked, &k.seq).await?;
                Ok(DirectoryCommit::Committed(seq))
            }
            2 => {
                self.replication.check(&mut conn, acked, &k.seq).await?;
                Ok(DirectoryCommit::AlreadyApplied(seq))
            }
            _ => Ok(DirectoryCommit::Conflict(seq)),
        }
    }

    async fn applied_under(
        &self,
        tenant: &str,
        once: &IdempotencyKey,
    ) -> Result<Option<u64>, BackplaneError> {
        let k = keys(tenant);
        let mut invocation = self.applied_under.prepare_invoke();
        invocation
            .key(k.once(Some(once)))
            .arg(u8::from(self.replication.asks_replicas()));
        let mut conn = self.acks();
        let answer: ::redis::RedisResult<(Option<u64>, Acked)> = self
            .replication
            .send(&mut conn, Write::Script(&invocation))
            .await;
        // Asked for a repeat: not knowing whether the key's change was made
        // is not knowing whether this request's change is.
        let (seq, acked) = self.note(answer).map_err(|e| {
            BackplaneError::OutcomeUnknown(format!(
                "whether a change was made under this idempotency key could not be read ({e})"
            ))
        })?;
        if seq.is_some() {
            self.replication.check(&mut conn, acked, &k.seq).await?;
        }
        Ok(seq)
    }

    async fn replicas_hold_the_store(&self, tenant: &str) -> Result<(), BackplaneError> {
        if !self.replication.asks_replicas() {
            return Ok(());
        }
        // A write of this connection's, after (in the master's order) every
        // write the answer stands on: the `WAIT` behind it covers them all
        // (`super::replicated`). On the tenant's shard, short-lived.
        let k = keys(tenant);
        let mark = ::redis::cmd("SET")
            .arg(&k.synced)
            .arg(&self.node_id)
            .arg("PX")
            .arg(60_000)
            .to_owned();
        let mut conn = self.acks();
        let answer: ::redis::RedisResult<((), Acked)> =
            self.replication.send(&mut conn, Write::Cmd(&mark)).await;
        let ((), acked) = self.note(answer).map_err(|e| {
            BackplaneError::OutcomeUnknown(format!(
                "nothing to change on the master, but whether the replicas hold what it holds could not be asked ({e})"
            ))
        })?;
        self.replication
            .check(&mut conn, acked, &k.synced)
            .await
            .map_err(|e| match e {
                BackplaneError::OutcomeUnknown(why) => BackplaneError::OutcomeUnknown(format!(
                    "nothing to change on the master, but what it holds is not yet on the replicas: {why}"
                )),
                other => other,
            })
    }

    async fn history(
        &self,
        tenant: &str,
        agent_id: &str,
        since_ms: u64,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>, BackplaneError> {
        let k = keys(tenant);
        let mut conn = self.conn();
        let mut newest_first = Vec::new();
        let mut end = "+".to_string();
        // Newest first, a page at a time, down to `since_ms` (stream ids
        // are millisecond timestamps).
        loop {
            let page: ::redis::RedisResult<::redis::streams::StreamRangeReply> = guarded(
                conn.xrevrange_count(&k.history, &end, format!("{since_ms}"), 500),
                self.timeout,
            )
            .await;
            let page = self.note(page)?;
            let count = page.ids.len();
            for entry in &page.ids {
                let Some(json) = entry.get::<String>("h") else {
                    continue;
                };
                if let Ok(h) = serde_json::from_str::<HistoryEntry>(&json) {
                    if h.agent_id == agent_id && h.at_ms >= since_ms {
                        newest_first.push(h);
                    }
                }
            }
            match page.ids.last() {
                Some(last) if count == 500 && newest_first.len() < limit => {
                    end = format!("({}", last.id)
                }
                _ => break,
            }
        }
        newest_first.truncate(limit);
        newest_first.reverse();
        Ok(newest_first)
    }

    fn is_ready(&self) -> bool {
        self.shared.ready.load(Ordering::Relaxed)
    }

    async fn load(&self, tenant: &str) -> Result<Option<TenantState>, BackplaneError> {
        let k = keys(tenant);
        let raw: ::redis::RedisResult<RawState> = guarded(
            self.load
                .key(&k.seq)
                .key(&k.records)
                .key(&k.settings)
                .key(&k.epoch)
                .key(&k.dir_version)
                .key(&k.dir_users)
                .key(&k.dir_channels)
                .key(&k.dir_removed)
                .invoke_async(&mut self.bulk.clone()),
            self.timeout,
        )
        .await;
        Self::parse_state(self.note(raw)?)
    }

    async fn current_seq(&self, tenant: &str) -> Result<Option<u64>, BackplaneError> {
        let mut conn = self.conn();
        let seq: ::redis::RedisResult<Option<u64>> =
            guarded(conn.get(keys(tenant).seq), self.timeout).await;
        Ok(Some(self.note(seq)?.unwrap_or(0)))
    }

    async fn read_agent(
        &self,
        tenant: &str,
        agent_id: &str,
    ) -> Result<Option<Arc<AgentRecord>>, BackplaneError> {
        let mut conn = self.conn();
        let json: ::redis::RedisResult<Option<String>> =
            guarded(conn.hget(keys(tenant).records, agent_id), self.timeout).await;
        Ok(self
            .note(json)?
            .and_then(|j| serde_json::from_str::<AgentRecord>(&j).ok())
            .map(Arc::new))
    }

    async fn agent_version(
        &self,
        tenant: &str,
        agent_id: &str,
    ) -> Result<Option<u64>, BackplaneError> {
        let mut conn = self.conn();
        let version: ::redis::RedisResult<Option<u64>> =
            guarded(conn.hget(keys(tenant).versions, agent_id), self.timeout).await;
        self.note(version)
    }

    async fn restore(&self, tenant: &str, state: &TenantState) -> Result<bool, BackplaneError> {
        let k = keys(tenant);
        let mut invocation = k.state_invocation(&self.restore);
        let settings = to_json(&state.settings)?;
        // The restored tenant is a new epoch beginning at the replica's seq:
        // supervisors that applied seqs of the lost store cannot resume.
        let directory = state.directory.clone().unwrap_or_default();
        invocation
            .arg(Epoch::new(&self.node_id, state.seq).id)
            .arg(state.seq)
            .arg(settings)
            .arg(directory.version)
            .arg(directory.users.len())
            .arg(directory.channels.len())
            .arg(directory.removed.len())
            .arg(self.event_prefix("gap", tenant, None, "restored", &Actor::system()))
            .arg(self.retention.max_len);
        for (field, json) in directory_entries(&directory)? {
            invocation.arg(field).arg(json);
        }
        for (id, seq) in &directory.removed {
            invocation.arg(id).arg(seq);
        }
        for record in &state.agents {
            let json = to_json(&**record)?;
            invocation.arg(&record.id).arg(json).arg(record.version);
        }
        let restored: ::redis::RedisResult<i64> =
            guarded(invocation.invoke_async(&mut self.conn()), self.timeout).await;
        Ok(self.note(restored)? == 1)
    }

    async fn raise_seq(
        &self,
        tenant: &str,
        floor: u64,
        target: u64,
    ) -> Result<u64, BackplaneError> {
        let before: ::redis::RedisResult<u64> = guarded(
            self.raise_seq
                .key(keys(tenant).seq)
                .key(keys(tenant).events)
                .arg(floor)
                .arg(target)
                .arg(self.event_prefix("gap", tenant, None, "gap", &Actor::system()))
                .arg(self.retention.max_len)
                .invoke_async(&mut self.conn()),
            self.timeout,
        )
        .await;
        self.note(before)
    }

    async fn read_events(
        &self,
        tenant: &str,
        after: Option<EventId>,
        limit: usize,
    ) -> Result<Page, BackplaneError> {
        let start = after.map_or_else(|| "-".to_string(), |id| format!("({id}"));
        let answer: ::redis::RedisResult<Vec<String>> = guarded(
            self.read_events
                .key(keys(tenant).events)
                .arg(start)
                .arg(limit)
                .arg(after.map(|id| id.to_string()).unwrap_or_default())
                .invoke_async(&mut self.conn()),
            self.timeout,
        )
        .await;
        let answer = self.note(answer)?;
        let id = |s: &str| s.parse::<EventId>().ok();
        let mut page = Page {
            oldest: answer.first().and_then(|s| id(s)),
            last: answer.get(1).and_then(|s| id(s)),
            after_missing: answer.get(2).is_some_and(|s| s == "0"),
            events: Vec::new(),
        };
        for pair in answer.get(3..).unwrap_or_default().chunks_exact(2) {
            if let Some(event_id) = id(&pair[0]) {
                page.events.push((event_id, Arc::from(pair[1].as_str())));
            }
        }
        Ok(page)
    }

    async fn heartbeats(
        &self,
        tenant: &str,
        agent_ids: &[String],
    ) -> Result<usize, BackplaneError> {
        if !self.retention.enabled() || agent_ids.is_empty() {
            return Ok(0);
        }
        let k = keys(tenant);
        let mut invocation = self.heartbeat.prepare_invoke();
        invocation
            .key(&k.records)
            .key(&k.versions)
            .key(&k.events)
            .arg(self.retention.max_len);
        let system = Actor::system();
        for id in agent_ids {
            invocation.arg(id).arg(self.event_prefix(
                "heartbeat",
                tenant,
                Some(id),
                "heartbeat",
                &system,
            ));
        }
        let count: ::redis::RedisResult<usize> =
            guarded(invocation.invoke_async(&mut self.conn()), self.timeout).await;
        self.note(count)
    }

    async fn send_to_node(&self, node: &str, message: &str) -> Result<usize, BackplaneError> {
        let mut conn = self.conn();
        let publish = ::redis::cmd(conn.publish_command())
            .arg(node_channel(node))
            .arg(message)
            .to_owned();
        let receivers: ::redis::RedisResult<usize> =
            guarded(publish.query_async(&mut conn), self.timeout).await;
        self.note(receivers)
    }

    async fn renew_lease(&self) -> Result<bool, BackplaneError> {
        let ttl = self.node_ttl.as_millis() as u64;
        let sent = Instant::now();
        let renewed: ::redis::RedisResult<(u64, u64)> = guarded(
            self.lease
                .key(lease_key(&self.node_id))
                .arg(ttl)
                .invoke_async(&mut self.conn()),
            self.timeout,
        )
        .await;
        match self.note(renewed) {
            Ok(time) => self.clock.observe(time, sent, self.clock_margin()),
            Err(e) => {
                // Whatever broke, the next renewal that works catches up.
                self.shared.disconnected.store(true, Ordering::Relaxed);
                return Err(e);
            }
        }
        self.shared.ready.store(true, Ordering::Relaxed);
        let reconnected = self.shared.disconnected.swap(false, Ordering::Relaxed);
        if reconnected {
            self.listen_again().await?;
        }
        Ok(reconnected)
    }

    async fn release_lease(&self) {
        let _: ::redis::RedisResult<()> =
            guarded(self.conn().del(lease_key(&self.node_id)), self.timeout).await;
    }

    async fn live_nodes(&self, nodes: &[String]) -> Result<HashSet<String>, BackplaneError> {
        let mut live = HashSet::new();
        let mut conn = self.conn();
        for node in nodes {
            let exists: ::redis::RedisResult<bool> =
                guarded(conn.exists(lease_key(node)), self.timeout).await;
            if self.note(exists)? {
                live.insert(node.clone());
            }
        }
        Ok(live)
    }

    async fn try_lock(
        &self,
        tenant: &str,
        name: &str,
        ttl: Duration,
    ) -> Result<bool, BackplaneError> {
        let key = format!("hub:{{{tenant}}}:{name}");
        let got: ::redis::RedisResult<Option<String>> = guarded(
            self.conn().set_options(
                key,
                &self.node_id,
                ::redis::SetOptions::default()
                    .conditional_set(::redis::ExistenceCheck::NX)
                    .with_expiration(::redis::SetExpiry::PX(ttl.as_millis() as u64)),
            ),
            self.timeout,
        )
        .await;
        Ok(self.note(got)?.is_some())
    }

    async fn confirm_master(&self) -> Result<bool, BackplaneError> {
        match &self.conn {
            Conn::Sentinel(c) => c.confirm_master().await.map_err(unavailable),
            Conn::Single(_) | Conn::Cluster(_) => Ok(true),
        }
    }

    async fn epoch_present(&self, tenant: &str) -> Result<bool, BackplaneError> {
        let present: ::redis::RedisResult<bool> =
            guarded(self.conn().exists(keys(tenant).epoch), self.timeout).await;
        self.note(present)
    }

    fn disconnections(&self) -> u64 {
        self.shared.disconnections.load(Ordering::Relaxed)
    }

    fn take_events(&self) -> Option<mpsc::UnboundedReceiver<NodeEvent>> {
        self.events.lock().take()
    }

    fn is_shared(&self) -> bool {
        true
    }

    async fn renew_lock(
        &self,
        tenant: &str,
        name: &str,
        ttl: Duration,
    ) -> Result<bool, BackplaneError> {
        static RENEW: std::sync::LazyLock<Script> =
            std::sync::LazyLock::new(|| Script::new(include_str!("lua/renew_lock.lua")));
        let renewed: ::redis::RedisResult<i64> = guarded(
            RENEW
                .key(format!("hub:{{{tenant}}}:{name}"))
                .arg(&self.node_id)
                .arg(ttl.as_millis() as u64)
                .invoke_async(&mut self.conn()),
            self.timeout,
        )
        .await;
        Ok(self.note(renewed)? == 1)
    }

    async fn webhook_doc(
        &self,
        tenant: &str,
        name: &str,
    ) -> Result<(u64, Option<String>), BackplaneError> {
        let got: ::redis::RedisResult<(Option<String>, Option<u64>)> = guarded(
            ::redis::cmd("HMGET")
                .arg(webhooks_key(tenant))
                .arg(name)
                .arg(format!("{name}:v"))
                .query_async(&mut self.conn()),
            self.timeout,
        )
        .await;
        let (doc, version) = self.note(got)?;
        Ok((version.unwrap_or(0), doc))
    }

    async fn put_webhook_doc(
        &self,
        tenant: &str,
        name: &str,
        expected: u64,
        doc: Option<&str>,
        ack: super::WriteAck,
    ) -> Result<Option<u64>, BackplaneError> {
        let (key, mut conn) = (webhooks_key(tenant), self.acks());
        let mut invocation = self.webhook_put.prepare_invoke();
        invocation
            .key(&key)
            .arg(name)
            .arg(expected)
            .arg(if doc.is_some() { "1" } else { "0" })
            .arg(doc.unwrap_or(""));
        // An admin's endpoint is acknowledged only once replicas hold it,
        // like every other change (README, "No acknowledged change lost").
        let replication = match ack {
            super::WriteAck::Replicated => self.replication,
            super::WriteAck::Master => self.replication.master_only(),
        };
        let written: ::redis::RedisResult<(i64, Acked)> = replication
            .send(&mut conn, Write::Script(&invocation))
            .await;
        // An answer lost may hide a write made.
        let (version, acked) = self.note(written).map_err(sent_once)?;
        if version >= 0 {
            replication.check(&mut conn, acked, &key).await?;
        }
        Ok(u64::try_from(version).ok())
    }

    async fn webhooks_generation(&self) -> Result<Option<u64>, BackplaneError> {
        let got: ::redis::RedisResult<Option<u64>> =
            guarded(self.conn().get(WEBHOOKS_GENERATION), self.timeout).await;
        Ok(Some(self.note(got)?.unwrap_or(0)))
    }

    async fn bump_webhooks_generation(&self) -> Result<(), BackplaneError> {
        let bumped: ::redis::RedisResult<u64> =
            guarded(self.conn().incr(WEBHOOKS_GENERATION, 1), self.timeout).await;
        self.note(bumped).map(|_| ())
    }

    async fn create_credential(
        &self,
        tenant: &str,
        credential: &credential::Credential,
    ) -> Result<bool, BackplaneError> {
        self.check_reachable()?;
        let json = to_json(credential)?;
        let mut conn = self.acks();
        let key = credentials_key(tenant);
        let create = ::redis::cmd("HSETNX")
            .arg(&key)
            .arg(&credential.id)
            .arg(json)
            .to_owned();
        let created: ::redis::RedisResult<(bool, Acked)> =
            self.replication.send(&mut conn, Write::Cmd(&create)).await;
        let (created, acked) = self.note(created).map_err(sent_once)?;
        if created {
            self.replication.check(&mut conn, acked, &key).await?;
        }
        Ok(created)
    }

    async fn credential(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Option<credential::Credential>, BackplaneError> {
        let mut conn = self.conn();
        let json: ::redis::RedisResult<Option<String>> =
            guarded(conn.hget(credentials_key(tenant), id), self.timeout).await;
        // A value that does not parse is no credential: refused, never a panic.
        Ok(self
            .note(json)?
            .and_then(|j| serde_json::from_str::<credential::Credential>(&j).ok()))
    }

    async fn credentials(
        &self,
        tenant: &str,
    ) -> Result<Vec<credential::Credential>, BackplaneError> {
        let mut conn = self.conn();
        let all: ::redis::RedisResult<Vec<String>> =
            guarded(conn.hvals(credentials_key(tenant)), self.timeout).await;
        let mut all: Vec<credential::Credential> = self
            .note(all)?
            .iter()
            .filter_map(|j| serde_json::from_str(j).ok())
            .collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(all)
    }

    async fn revoke_credential(&self, tenant: &str, id: &str) -> Result<bool, BackplaneError> {
        self.check_reachable()?;
        let mut conn = self.acks();
        let key = credentials_key(tenant);
        let revoke = ::redis::cmd("HDEL").arg(&key).arg(id).to_owned();
        let removed: ::redis::RedisResult<(u64, Acked)> =
            self.replication.send(&mut conn, Write::Cmd(&revoke)).await;
        let (removed, acked) = self.note(removed).map_err(sent_once)?;
        let removed = removed > 0;
        if removed {
            self.replication.check(&mut conn, acked, &key).await?;
        }
        Ok(removed)
    }

    fn watch_queue_stats(&self, tenant: &str, handler: QueueStatsHandler) {
        self.shared
            .queue_handlers
            .insert(tenant.to_string(), handler);
    }

    async fn put_queue_stats(
        &self,
        tenant: &str,
        channel: &crate::domain::ChannelRef,
        stats: &crate::domain::queue_stats::QueueStats,
    ) -> Result<ChannelStats, BackplaneError> {
        self.check_reachable()?;
        let k = keys(tenant);
        let mut conn = self.conn();
        let mut invocation = self.queue_stats.prepare_invoke();
        invocation
            .key(queue_stats_key(tenant))
            .key(format!("hub:{{{tenant}}}:queue_stats_ms"))
            .key(&k.deltas)
            .arg(format!("{}/{}", channel.kind.as_str(), channel.id))
            .arg(to_json(channel)?)
            .arg(to_json(stats)?)
            .arg(conn.publish_command());
        let stored: ::redis::RedisResult<String> =
            guarded(invocation.invoke_async(&mut conn), self.timeout).await;
        // Statistics are replaced whole by the next push: one whose answer
        // was lost is simply pushed again, so `unavailable` is enough.
        let stored = self.note(stored)?;
        serde_json::from_str(&stored)
            .map_err(|e| BackplaneError::Unavailable(format!("stored queue statistics: {e}")))
    }

    async fn queue_stats(&self, tenant: &str) -> Result<Vec<ChannelStats>, BackplaneError> {
        let mut conn = self.conn();
        let all: ::redis::RedisResult<Vec<String>> =
            guarded(conn.hvals(queue_stats_key(tenant)), self.timeout).await;
        // An entry that does not parse is skipped, never a panic.
        Ok(self
            .note(all)?
            .iter()
            .filter_map(|j| serde_json::from_str(j).ok())
            .collect())
    }
}

/// The hash of a tenant's latest queue statistics (`lua/queue_stats.lua`).
fn queue_stats_key(tenant: &str) -> String {
    format!("hub:{{{tenant}}}:queue_stats")
}

/// A write (a credential, a webhook document) that was sent and got no
/// answer may have been applied: `outcome_unknown`, not `unavailable`
/// (PROTOCOL.md §3.1). A repeat tells: a creation answers that the id
/// exists, a revocation that there is none.
fn sent_once(e: BackplaneError) -> BackplaneError {
    match e {
        BackplaneError::Unavailable(why) => BackplaneError::OutcomeUnknown(format!(
            "{why}; the change may have been applied: repeat it to know"
        )),
        other => other,
    }
}

/// The hash of a tenant's webhook documents (`crate::webhooks::store`).
fn webhooks_key(tenant: &str) -> String {
    format!("hub:{{{tenant}}}:webhooks")
}

/// The hash of a tenant's service credentials (id → JSON), on the
/// tenant's slot like every key of it.
fn credentials_key(tenant: &str) -> String {
    format!("hub:{{{tenant}}}:credentials")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Role, Settings};

    #[test]
    fn records_and_history_serialize_with_the_version_last() {
        let r = AgentRecord::new("a1", "Ana", &[Role::Agent], [], &Settings::default());
        let prefix = without_version(&r).expect("prefix");
        let full: AgentRecord = serde_json::from_str(&format!("{prefix}42}}")).expect("valid JSON");
        assert_eq!(full.version, 42);
        assert_eq!(full.id, "a1");
    }

    #[test]
    fn deltas_parse_and_channels_name_their_tenant() {
        let r = AgentRecord::new("a1", "Ana", &[Role::Agent], [], &Settings::default());
        let payload = format!("A{}", serde_json::to_string(&r).expect("json"));
        assert!(matches!(parse_delta(&payload), Some(Delta::Agent(a)) if a.id == "a1"));
        let s = parse_delta(
            r#"S7 {"supervisor_can_end_wrap_up":true,"wrap_up_seconds":5,"unassigned_access_default":false}"#,
        );
        assert!(matches!(s, Some(Delta::Settings { seq: 7, .. })));
        assert_eq!(parse_delta("Xjunk").map(|d| d.seq()), None);
        assert_eq!(tenant_of_channel("hub:{acme}:deltas"), Some("acme"));
        assert_eq!(tenant_of_channel(&node_channel("n1")), None);
    }
}
