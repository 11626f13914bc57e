//! Following a Sentinel-managed Redis master (`--redis-sentinel`).
//!
//! The sentinels name the master; [`SentinelConn`] holds a
//! `ConnectionManager` to it and sends every command there. A
//! `ConnectionManager` reconnects to one fixed address, so it cannot follow
//! a failover by itself: when a command fails in a way that says the master
//! may have moved (connection lost or refused, a timeout, or `READONLY`
//! from a master that was demoted to a replica), the sentinels are asked
//! again (redis-rs's `SentinelClient`, which also checks the server's
//! `ROLE`). If they name another server, a new manager is connected to it,
//! this node's channels are subscribed there, and the backplane is told
//! (`on_switch`) so the hub catches up from the new master as after any
//! reconnection. Lua scripts reload themselves on `NOSCRIPT`
//! (`redis::Script`). Until a master answers, commands fail and the node
//! is not ready.
//!
//! Each master gets two managers: the subscribed one, and one that never
//! subscribes for large replies ([`SentinelConn::bulk`]; see
//! `RedisBackplane::connect`); with `--redis-wait-replicas`, a few more for
//! the changes and their `WAIT`s ([`SentinelConn::acks`]; see
//! `super::replicated`). They switch together.

use super::redis::guarded;
use super::target::Prepared;
use ::redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use ::redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use ::redis::{Cmd, ConnectionAddr, Pipeline, RedisFuture, RedisResult, TlsMode, Value};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A connection that follows the master the sentinels name. Cheap to clone.
#[derive(Clone)]
pub struct SentinelConn {
    inner: Arc<Inner>,
    /// Which of the master's managers this one sends over.
    role: Role,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// The subscribed manager.
    Main,
    /// The one that never subscribes, for large replies.
    Bulk,
    /// One of those for changes and their `WAIT`s (the main one when there
    /// are none: no `--redis-wait-replicas`).
    Acks(usize),
}

/// The master the sentinels named last, and this node's managers to it.
struct Master {
    addr: String,
    manager: ConnectionManager,
    bulk: ConnectionManager,
    acks: Vec<ConnectionManager>,
}

/// The settings of each manager a master gets.
pub struct Configs {
    pub main: ConnectionManagerConfig,
    pub bulk: ConnectionManagerConfig,
    /// With `--redis-wait-replicas`: the changes' managers, and how many.
    pub acks: Option<(ConnectionManagerConfig, usize)>,
}

struct Inner {
    sentinel: tokio::sync::Mutex<SentinelClient>,
    configs: Configs,
    current: parking_lot::RwLock<Master>,
    /// What this node listens to, subscribed again on a new master.
    channels: parking_lot::Mutex<BTreeSet<String>>,
    asking: AtomicBool,
    timeout: Duration,
    on_switch: Box<dyn Fn() + Send + Sync>,
}

/// Whether an error says the master may be elsewhere now.
pub fn master_may_have_moved(e: &::redis::RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || is_readonly(e)
}

/// `READONLY`: the server was demoted to a replica.
pub fn is_readonly(e: &::redis::RedisError) -> bool {
    e.code() == Some("READONLY") || e.to_string().contains("READONLY")
}

/// A `READONLY` carried as a reply value (a single command's or one of a
/// pipeline's, `super::replicated`): the master was demoted as surely as
/// when it comes back as an error.
fn demoted(reply: &Value) -> bool {
    matches!(reply, Value::ServerError(e) if e.code() == "READONLY")
}

impl SentinelConn {
    /// Asks the sentinels for the master and connects to it (RESP3, with
    /// the push sender and settings of `config`). TLS, when on, applies to
    /// the sentinels and to the master alike, with the same CA and client
    /// certificate (`super::target`).
    pub async fn connect(
        sentinels: &[ConnectionAddr],
        master_name: &str,
        target: &Prepared,
        configs: Configs,
        timeout: Duration,
        on_switch: impl Fn() + Send + Sync + 'static,
    ) -> RedisResult<SentinelConn> {
        let nodelay = ::redis::io::tcp::TcpSettings::default().set_nodelay(true);
        let mut builder = SentinelClientBuilder::new(
            sentinels.iter().cloned(),
            master_name,
            SentinelServerType::Master,
        )?
        .set_client_to_redis_protocol(::redis::ProtocolVersion::RESP3)
        .set_client_to_redis_tcp_settings(nodelay.clone())
        .set_client_to_sentinel_tcp_settings(nodelay);
        let auth = &target.auth;
        if let Some(user) = &auth.username {
            builder = builder.set_client_to_redis_username(user);
        }
        if let Some(pw) = &auth.password {
            builder = builder.set_client_to_redis_password(pw);
        }
        if let Some(user) = &auth.sentinel_username {
            builder = builder.set_client_to_sentinel_username(user);
        }
        if let Some(pw) = &auth.sentinel_password {
            builder = builder.set_client_to_sentinel_password(pw);
        }
        if target.tls {
            builder = builder
                .set_client_to_redis_tls_mode(TlsMode::Secure)
                .set_client_to_sentinel_tls_mode(TlsMode::Secure);
            if let Some(certs) = &target.certs {
                builder = builder
                    .set_client_to_redis_certificates(certs.clone())
                    .set_client_to_sentinel_certificates(certs.clone());
            }
        }
        let mut sentinel = builder.build()?;
        let first = async {
            let client = sentinel.async_get_client().await?;
            master(client, &configs).await
        };
        let current = guarded(first, timeout).await?;
        tracing::info!(master = %current.addr, name = %master_name, "connected to the master the sentinels name");
        Ok(SentinelConn {
            role: Role::Main,
            inner: Arc::new(Inner {
                sentinel: tokio::sync::Mutex::new(sentinel),
                configs,
                current: parking_lot::RwLock::new(current),
                channels: parking_lot::Mutex::new(BTreeSet::new()),
                asking: AtomicBool::new(false),
                timeout,
                on_switch: Box::new(on_switch),
            }),
        })
    }

    fn manager(&self) -> ConnectionManager {
        let current = self.inner.current.read();
        match self.role {
            Role::Bulk => current.bulk.clone(),
            Role::Acks(i) if !current.acks.is_empty() => {
                current.acks[i % current.acks.len()].clone()
            }
            Role::Main | Role::Acks(_) => current.manager.clone(),
        }
    }

    /// The same master through the manager that never subscribes.
    pub fn bulk(&self) -> SentinelConn {
        SentinelConn {
            inner: self.inner.clone(),
            role: Role::Bulk,
        }
    }

    /// The same master through the changes' `i`th manager.
    pub fn acks(&self, i: usize) -> SentinelConn {
        SentinelConn {
            inner: self.inner.clone(),
            role: Role::Acks(i),
        }
    }

    pub async fn subscribe(&self, channel: &str) -> RedisResult<()> {
        self.inner.channels.lock().insert(channel.to_string());
        let result = self.manager().subscribe(channel).await;
        self.after(&result);
        result
    }

    pub async fn unsubscribe(&self, channel: &str) -> RedisResult<()> {
        self.inner.channels.lock().remove(channel);
        self.manager().unsubscribe(channel).await
    }

    /// On an error that may mean a failover, asks the sentinels again (one
    /// question at a time, in the background).
    fn after<T>(&self, result: &RedisResult<T>) {
        if let Err(e) = result {
            if master_may_have_moved(e) {
                self.ask_sentinels();
            }
        }
    }

    /// As [`SentinelConn::after`], for replies that carry their errors as
    /// values (a pipeline's): see [`demoted`].
    fn after_replies(&self, replies: &RedisResult<Vec<Value>>) {
        match replies {
            Ok(values) if values.iter().any(demoted) => self.ask_sentinels(),
            Ok(_) => {}
            Err(_) => self.after(replies),
        }
    }

    fn ask_sentinels(&self) {
        if !self.inner.asking.swap(true, Ordering::AcqRel) {
            let inner = self.inner.clone();
            tokio::spawn(async move {
                if let Err(e) = guarded(inner.follow(), inner.timeout * 2).await {
                    tracing::debug!(error = %e, "no master from the sentinels yet");
                }
                inner.asking.store(false, Ordering::Release);
            });
        }
    }
}

impl SentinelConn {
    /// Asks the sentinels now whether the server this connection talks to
    /// is still the master they name; if not, switches to theirs and says
    /// `false`. For rare, drastic steps (sweeping another node's devices):
    /// during a failover the old master may still answer, holding leases
    /// that live nodes have stopped renewing there.
    pub async fn confirm_master(&self) -> RedisResult<bool> {
        guarded(self.inner.follow(), self.inner.timeout * 2).await
    }
}

impl Inner {
    /// Connects to the master the sentinels name, if it is another server;
    /// `true` when it is the one this connection already talks to.
    async fn follow(&self) -> RedisResult<bool> {
        let client = self.sentinel.lock().await.async_get_client().await?;
        let addr = client.get_connection_info().addr().to_string();
        if self.current.read().addr == addr {
            // Same master: its managers reconnect by themselves.
            return Ok(true);
        }
        let mut master = master(client, &self.configs).await?;
        let channels: Vec<String> = self.channels.lock().iter().cloned().collect();
        for channel in channels {
            master.manager.subscribe(channel).await?;
        }
        tracing::warn!(master = %addr, "the sentinels name a new master: switched to it");
        *self.current.write() = master;
        (self.on_switch)();
        Ok(false)
    }
}

/// This node's managers to the master `client` reaches, opened at once: a
/// switch must fit in its caller's bound.
async fn master(client: ::redis::Client, configs: &Configs) -> RedisResult<Master> {
    let addr = client.get_connection_info().addr().to_string();
    let acks = futures_util::future::try_join_all(
        configs
            .acks
            .iter()
            .flat_map(|(config, count)| std::iter::repeat_n(config, *count))
            .map(|config| client.get_connection_manager_with_config(config.clone())),
    );
    let (manager, bulk, acks) = tokio::try_join!(
        client.get_connection_manager_with_config(configs.main.clone()),
        client.get_connection_manager_with_config(configs.bulk.clone()),
        acks,
    )?;
    Ok(Master {
        addr,
        manager,
        bulk,
        acks,
    })
}

impl ConnectionLike for SentinelConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let result = self.manager().req_packed_command(cmd).await;
            match &result {
                Ok(reply) if demoted(reply) => self.ask_sentinels(),
                _ => self.after(&result),
            }
            result
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let result = self
                .manager()
                .req_packed_commands(pipeline, offset, count)
                .await;
            self.after_replies(&result);
            result
        })
    }

    fn get_db(&self) -> i64 {
        self.manager().get_db()
    }
}
