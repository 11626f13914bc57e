//! Acknowledging a change only once replicas hold it
//! (`--redis-wait-replicas`; README, "No acknowledged change lost").
//!
//! `WAIT n` answers how many replicas hold everything that *the connection
//! it arrives on* wrote. So it says something about a change only when it
//! travels on the change's own connection, behind a write that the answer
//! depends on. Two ways it could say nothing:
//!
//! - **Another connection.** Sent as a command of its own, `WAIT` may leave
//!   on another connection than the change: the connection manager
//!   reconnected in between, or the node switched to the master the
//!   sentinels name now. A connection that wrote nothing is answered at
//!   once, with every replica.
//! - **An answer that wrote nothing.** A repeat under an idempotency key,
//!   or a lost answer that `settle.lua` finds applied, reads what an
//!   earlier write did — possibly on another connection or another master.
//!
//! So a change and its `WAIT` go in **one pipeline** ([`Replication::send`]):
//! one connection, in order, so a connection lost between the two fails
//! both. And every script answer that acknowledges a change writes
//! something (the idempotency key's marker set again, unchanged; the
//! settled attempt's fence), which the `WAIT` behind it then covers, and
//! with it everything this master held before, the change included.
//! (Redis 7.0, the one the tests run, points a connection's `WAIT` at all
//! the server has written as of that connection's last command, a read
//! included, so there the marker changes nothing; it is there for servers
//! that keep to `WAIT`'s documented contract, the connection's own writes,
//! to the letter.)
//!
//! A `WAIT` holds its connection until the replicas answer: Redis runs one
//! client's commands in order. So these pipelines go on connections of
//! their own, taken in turn (`--redis-wait-connections`,
//! `RedisBackplane::connect`), where only changes queue behind a `WAIT`,
//! never lease renewals, loads or pub/sub.
//!
//! A script the server lacks (`NOSCRIPT`: a restarted or new master) costs
//! a second pipeline, after the first one's `WAIT`; the scripts of changes
//! are loaded when the node connects, so this happens only after a
//! failover, once per script.
//!
//! On a Redis Cluster, pipelines do not follow `MOVED` as single commands
//! do, so there the change goes alone and its `WAIT` follows it to the
//! master of the tenant's shard ([`Acked::Later`]). The changes' cluster
//! client retries nothing (a `WAIT` it sent again after a lost connection
//! would leave on a fresh one and be answered at once): a change refused
//! with `MOVED` is `unavailable` once, and a `WAIT` lost is
//! `outcome_unknown`. What is left is that shard's connection replaced in
//! the instant between the change and its `WAIT` (README, "No acknowledged
//! change lost").

use super::redis::{guarded, Conn};
use super::BackplaneError;
use ::redis::{Cmd, FromRedisValue, RedisResult, ScriptInvocation, ServerErrorKind, Value};
use std::time::Duration;

/// A change as sent to Redis: a script, or one command.
pub(super) enum Write<'a> {
    Script(&'a ScriptInvocation<'a>),
    Cmd(&'a Cmd),
}

impl Write<'_> {
    fn add_to(&self, pipe: &mut ::redis::Pipeline) {
        match self {
            Write::Script(invocation) => {
                pipe.invoke_script(invocation);
            }
            Write::Cmd(cmd) => {
                pipe.add_command((*cmd).clone());
            }
        }
    }
}

/// When a change is acknowledged (README, "No acknowledged change lost").
#[derive(Clone, Copy, Debug)]
pub struct Durability {
    /// Replicas that must hold a change before `ok` (`--redis-wait-replicas`;
    /// 0: once the master has it).
    pub replicas: u32,
    /// The longest wait for them (`--redis-wait-timeout-ms`).
    pub timeout: Duration,
    /// Connections carrying changes and their `WAIT`s
    /// (`--redis-wait-connections`): a `WAIT` holds its connection, so this
    /// many changes wait for replicas at once.
    pub connections: usize,
}

/// How this node's changes are acknowledged: [`Durability`], and how long
/// a write's own answer may take.
#[derive(Clone, Copy, Debug)]
pub(super) struct Replication {
    pub durability: Durability,
    /// `--redis-timeout-ms`.
    pub answer: Duration,
}

/// How many replicas hold what a change's connection wrote.
#[must_use = "a change is acknowledged only once its replicas are checked"]
pub(super) enum Acked {
    /// `--redis-wait-replicas 0`: once the master has it.
    NotAsked,
    /// `WAIT`'s answer, from the change's own pipeline.
    Waited(RedisResult<u32>),
    /// A Redis Cluster: `WAIT` still to send, to the shard's master.
    Later,
}

impl Replication {
    /// The same without waiting for replicas: a write acknowledged once the
    /// master has it (a webhook delivery's own bookkeeping).
    pub fn master_only(self) -> Replication {
        Replication {
            durability: Durability {
                replicas: 0,
                ..self.durability
            },
            ..self
        }
    }

    /// Whether a change waits for replicas at all (`--redis-wait-replicas`
    /// above 0).
    pub fn asks_replicas(&self) -> bool {
        self.durability.replicas > 0
    }

    /// How long a change's reply may take when it waits for replicas: the
    /// write's own answer, then the `WAIT`.
    pub fn reply_bound(&self) -> Duration {
        self.answer + self.durability.timeout
    }

    /// `WAIT <replicas> <wait>`.
    fn wait_command(&self) -> Cmd {
        ::redis::cmd("WAIT")
            .arg(self.durability.replicas)
            .arg(self.durability.timeout.as_millis() as u64)
            .to_owned()
    }

    /// Sends `write` and, when waiting for replicas, `WAIT` behind it in one
    /// pipeline. The write's own answer may take `answer`; the wait adds
    /// `wait`. An error means the write's answer was lost (a reply the
    /// server sent, a script's error included, is the `Ok` side's `T` or an
    /// error with a server code: see `surely_not_applied`).
    pub async fn send<T: FromRedisValue>(
        &self,
        conn: &mut Conn,
        write: Write<'_>,
    ) -> RedisResult<(T, Acked)> {
        let timeout = self.answer;
        if !self.asks_replicas() || matches!(conn, Conn::Cluster(_)) {
            let answer = match write {
                Write::Script(invocation) => guarded(invocation.invoke_async(conn), timeout).await,
                Write::Cmd(cmd) => guarded(cmd.query_async(conn), timeout).await,
            }?;
            let acked = if !self.asks_replicas() {
                Acked::NotAsked
            } else {
                Acked::Later
            };
            return Ok((answer, acked));
        }
        let mut pipe = ::redis::pipe();
        write.add_to(&mut pipe);
        pipe.add_command(self.wait_command()).ignore_errors();
        let bound = self.reply_bound();
        let mut answers: Vec<Value> = guarded(pipe.query_async(conn), bound).await?;
        let no_script = matches!(answers.first(), Some(Value::ServerError(e))
            if e.kind() == Some(ServerErrorKind::NoScript));
        if let (true, Write::Script(invocation)) = (no_script, &write) {
            // A new master, or a restarted one: the script ran nowhere.
            guarded(invocation.load_async(conn), timeout).await?;
            answers = guarded(pipe.query_async(conn), bound).await?;
        }
        let mut answers = answers.into_iter();
        let (Some(answer), Some(acked)) = (answers.next(), answers.next()) else {
            return Err(::redis::RedisError::from((
                ::redis::ErrorKind::Client,
                "a pipeline of two commands answered fewer than two replies",
            )));
        };
        let answer = T::from_redis_value(answer.extract_error()?)?;
        let acked = acked
            .extract_error()
            .and_then(|v| Ok(u32::from_redis_value(v)?));
        Ok((answer, Acked::Waited(acked)))
    }

    /// `Ok` once enough replicas hold the change; `outcome_unknown` when they
    /// do not in time — the change is on the master and may be seen, but a
    /// failover could lose it, so it is not acknowledged. `shard_key` is a
    /// key the change wrote: on a Redis Cluster ([`Acked::Later`]) `WAIT`
    /// goes to the master of its shard only (the tenant's), so a shard short
    /// of replicas refuses only its own tenants' changes.
    pub async fn check(
        &self,
        conn: &mut Conn,
        acked: Acked,
        shard_key: &str,
    ) -> Result<(), BackplaneError> {
        let acked = match acked {
            Acked::NotAsked => return Ok(()),
            Acked::Waited(acked) => acked,
            Acked::Later => self.wait_on_shard(conn, shard_key).await,
        };
        // The change is applied on the master whatever WAIT says: the
        // outcome a client must act on is "maybe lost", not "not applied".
        let acked = acked.map_err(|e| {
            BackplaneError::OutcomeUnknown(format!(
                "the change is applied on the master, but whether replicas hold it is unknown ({e})"
            ))
        })?;
        if acked < self.durability.replicas {
            return Err(BackplaneError::OutcomeUnknown(format!(
                "the change is applied on the master but reached {acked} of {} replicas in time: \
                 a failover may lose it",
                self.durability.replicas
            )));
        }
        Ok(())
    }

    async fn wait_on_shard(&self, conn: &mut Conn, key: &str) -> RedisResult<u32> {
        use ::redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
        let Conn::Cluster(c) = conn else {
            return Err(::redis::RedisError::from((
                ::redis::ErrorKind::Client,
                "WAIT by shard on a connection that is not a cluster's",
            )));
        };
        let shard = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(Route::with_key(
            key,
            SlotAddr::Master,
        )));
        let wait = c.route_command(self.wait_command(), shard);
        let answer = guarded(wait, self.reply_bound()).await?;
        Ok(u32::from_redis_value(answer)?)
    }
}
