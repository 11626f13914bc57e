//! The system under test as real processes: hub nodes (the real binary, on
//! fixed ports so a killed node comes back where its clients look for it),
//! and the Redis they share — one `redis-server` with its AOF, or a master
//! with two replicas behind three Sentinels. Faults are signals to those
//! processes: SIGKILL, SIGSTOP/SIGCONT, and a Sentinel failover.

use crate::common::process::{http_get, Proc};
use crate::common::redis::{free_port, redis_cli, RedisServer};
use crate::common::sentinel::{self, SentinelSet};
use std::time::Duration;

/// Lease of a node in Redis: a node silent this long is swept by the others.
pub const NODE_TTL_MS: u64 = 1000;
/// A Redis call slower than this fails (`unavailable` for a change).
pub const REDIS_TIMEOUT_MS: u64 = 500;
pub const HEARTBEAT_MS: u64 = 1000;
/// A device (or supervisor) silent this long is inactive (closed with 4008).
pub const PRESENCE_TTL_MS: u64 = 4000;
/// Frames a second on one integration WebSocket (the default, named: the
/// integration's requests in too many fragments are counted against it,
/// `actors::integration`). Its pipelined pairs send a few frames a second.
pub const API_WS_RATE_LIMIT_PER_SEC: u32 = 200;

/// Where the test tenant lives: more agents than the demo directory, and no
/// `pause_reasons` codes, so every pause can carry a unique free-text reason.
pub const DIRECTORY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/convergence/directory.json"
);

pub use crate::common::process::signal;

/// The pid of the `redis-server` on `port`, from `INFO server` (the
/// harness keeps its `Child` private); `None` when it does not answer.
pub fn redis_pid(port: u16) -> Option<u32> {
    redis_cli(port, &["info", "server"])
        .lines()
        .find_map(|l| l.trim().strip_prefix("process_id:"))
        .and_then(|p| p.trim().parse().ok())
}

pub struct Node {
    pub id: String,
    pub port: u16,
    args: Vec<String>,
    pub proc: Option<Proc>,
}

impl Node {
    /// `extra` holds flag/value pairs.
    pub async fn start(id: &str, redis: &[String], extra: &[&str], node_ttl_ms: u64) -> Node {
        let port = free_port();
        let mut args: Vec<String> = [
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--node-id",
            id,
            "--node-ttl-ms",
            &node_ttl_ms.to_string(),
            "--reconnect-grace-ms",
            "300",
            "--redis-timeout-ms",
            &REDIS_TIMEOUT_MS.to_string(),
            "--heartbeat-interval-ms",
            &HEARTBEAT_MS.to_string(),
            "--presence-ttl-ms",
            &PRESENCE_TTL_MS.to_string(),
            // A soak makes tens of thousands of changes: keep them all, so an
            // acknowledged change missing from the history is a real loss.
            "--history-capacity",
            "1000000",
            // The event stream too (invariant 7), with heartbeats in it.
            "--events-max-len",
            "1000000",
            "--events-heartbeat-s",
            "1",
            "--api-ws-rate-limit-per-sec",
            &API_WS_RATE_LIMIT_PER_SEC.to_string(),
            "--directory",
            DIRECTORY,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // A flag in `extra` replaces the default above (clap refuses a
        // flag given twice).
        for pair in extra.chunks(2) {
            if let Some(i) = args.iter().position(|a| a == pair[0]) {
                args.drain(i..i + 2);
            }
        }
        args.extend(redis.iter().cloned());
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut node = Node {
            id: id.to_string(),
            port,
            args,
            proc: None,
        };
        node.spawn().await;
        node
    }

    /// Starts the binary; a start that fails (the port still held a moment
    /// after a kill) is retried, as a supervisor (systemd) would.
    async fn spawn(&mut self) {
        for attempt in 0..10 {
            let args = self.args.clone();
            let started = tokio::spawn(async move {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                Proc::start(&args, &[("PRESENCE_HUB_JWT_SECRET", crate::common::SECRET)]).await
            })
            .await;
            match started {
                Ok(p) => {
                    self.proc = Some(p);
                    return;
                }
                Err(e) => eprintln!("node {} did not start (attempt {attempt}): {e}", self.id),
            }
            // Pacing of the retry, not synchronisation.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("node {} does not start", self.id);
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/v1/ws", self.addr())
    }

    pub fn pid(&self) -> Option<u32> {
        self.proc.as_ref().and_then(|p| p.child.id())
    }

    /// SIGKILL, and reaps the process.
    pub async fn kill(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill().await;
            let _ = p.child.wait().await;
        }
    }

    /// Back on the same port with the same id and flags.
    pub async fn restart(&mut self) {
        self.kill().await;
        self.spawn().await;
    }

    pub fn freeze(&self) {
        signal(self.pid().expect("running"), "STOP");
    }

    pub fn thaw(&self) {
        signal(self.pid().expect("running"), "CONT");
    }

    /// `/readyz` status, 0 when the node does not answer within a second.
    pub async fn readyz(&self) -> u16 {
        tokio::time::timeout(Duration::from_secs(1), http_get(&self.addr(), "/readyz"))
            .await
            .map(|(code, _)| code)
            .unwrap_or(0)
    }
}

/// The shared Redis.
pub enum Store {
    /// One `redis-server`, AOF on (appendfsync always): a SIGKILL loses
    /// nothing acknowledged.
    Single(RedisServer),
    /// A master, two replicas, three Sentinels.
    Sentinel(SentinelSet),
}

impl Store {
    pub fn single() -> Store {
        Store::Single(RedisServer::start_with(true))
    }

    pub fn sentinel() -> Store {
        Store::Sentinel(SentinelSet::start())
    }

    /// The flags that point a node at this store. Behind Sentinels a change
    /// is acknowledged only once every replica holds it
    /// (`--redis-wait-replicas 2`, README "No acknowledged change lost"):
    /// without it PROTOCOL.md §9.1 promises nothing across a failover, and an
    /// acknowledged change lost in one would not be a bug. One replica is
    /// not enough: during a forced failover the old master takes writes
    /// for seconds after the new one is promoted, and the replica left
    /// behind confirms them.
    pub fn node_flags(&self) -> Vec<String> {
        match self {
            Store::Single(r) => vec!["--redis-url".into(), r.url()],
            Store::Sentinel(s) => [
                "--redis-sentinel",
                &s.addrs(),
                "--redis-sentinel-master",
                sentinel::MASTER,
                "--redis-wait-replicas",
                "2",
                "--redis-wait-timeout-ms",
                "300",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        }
    }

    pub fn is_sentinel(&self) -> bool {
        matches!(self, Store::Sentinel(_))
    }

    /// The port of the current master.
    pub fn master_port(&self) -> u16 {
        match self {
            Store::Single(r) => r.port,
            Store::Sentinel(s) => s.master_port().expect("a master"),
        }
    }

    /// The pid of the current master, for SIGSTOP/SIGCONT.
    pub fn master_pid(&self) -> u32 {
        redis_pid(self.master_port()).expect("the master answers INFO")
    }

    /// SIGKILL the single Redis (kept down until [`Store::restart`]).
    pub fn kill(&mut self) {
        match self {
            Store::Single(r) => r.kill(),
            Store::Sentinel(_) => unreachable!("the sentinel topology fails over instead"),
        }
    }

    /// Restarts the single Redis from its AOF.
    pub fn restart(&mut self) {
        match self {
            Store::Single(r) => r.restart(),
            Store::Sentinel(_) => unreachable!(),
        }
    }

    /// Asks a Sentinel to fail over and waits until another server is
    /// master and every server follows it; returns the new master's port.
    pub async fn failover(&self) -> Result<u16, String> {
        let Store::Sentinel(set) = self else {
            unreachable!()
        };
        let old = set.master_port().ok_or("no master before the failover")?;
        let answer = set.sentinels[0].cli(&["sentinel", "failover", sentinel::MASTER]);
        if answer != "OK" {
            return Err(format!("SENTINEL FAILOVER answered {answer:?}"));
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(new) = set.master_port().filter(|p| *p != old) {
                // Every other server is a replica of the new master, in sync.
                let others_follow = std::iter::once(&set.master)
                    .chain(&set.replicas)
                    .filter(|d| d.port != new)
                    .all(|d| {
                        let info = d.cli(&["info", "replication"]);
                        info.contains(&format!("master_port:{new}"))
                            && info.contains("master_link_status:up")
                    });
                if others_follow {
                    return Ok(new);
                }
            }
            if tokio::time::Instant::now() > deadline {
                return Err(format!("no failover away from {old} within 20 s"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
