//! The hub under load: spawned by the tool (`--spawn`, with a generated
//! directory of N agents, or of T tenants of N agents each) or running
//! nodes given by URL.

use crate::tls;
use crate::Common;
use serde_json::json;
use std::path::PathBuf;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const TENANT: &str = "load";

pub struct Target {
    pub urls: Vec<String>,
    pub secret: String,
    /// The spawned nodes, in the order of `urls`.
    pub children: Vec<Child>,
    redis: Option<Child>,
    replicas: Vec<Child>,
    /// The spawned Redis's port, for its counters (`redis_counters`).
    redis_port: Option<u16>,
    _directory: Option<TempFile>,
    _tls: Option<tls::Files>,
}

/// What a Redis has done so far: calls per command and bytes in and out
/// (`INFO commandstats`, `INFO stats`).
pub struct RedisCounters {
    calls: std::collections::BTreeMap<String, u64>,
    /// Microseconds Redis spent per command (`usec=`; a script's
    /// `evalsha` includes the commands it ran, which count their own too).
    usec: std::collections::BTreeMap<String, u64>,
    bytes_in: u64,
    bytes_out: u64,
}

impl RedisCounters {
    /// Nothing counted yet: what a Redis has done since `CONFIG RESETSTAT`
    /// is its counters minus this.
    pub fn zero() -> RedisCounters {
        RedisCounters {
            calls: Default::default(),
            usec: Default::default(),
            bytes_in: 0,
            bytes_out: 0,
        }
    }

    /// What happened between `before` and `self`, per unit (`n` changes or
    /// heartbeats): `calls` and `commands`, every command Redis ran — those
    /// a Lua script runs included (Redis counts them alike: a change is one
    /// `evalsha` round trip whose script runs the rest). The tool's own
    /// `INFO` and `CONFIG RESETSTAT` calls are left out of the counts (their
    /// few bytes stay in the byte counters: negligible over a run).
    pub fn per(&self, before: &RedisCounters, n: u64) -> serde_json::Value {
        self.rate(before, n.max(1) as f64)
    }

    /// As `per`, over any positive `n` (seconds, for a rate).
    pub fn rate(&self, before: &RedisCounters, n: f64) -> serde_json::Value {
        let n = if n > 0.0 { n } else { 1.0 };
        let round = |x: f64| (x * 1000.0).round() / 1000.0;
        let mut commands = serde_json::Map::new();
        let mut usec = serde_json::Map::new();
        let mut total = 0;
        for (cmd, calls) in &self.calls {
            let diff = calls.saturating_sub(before.calls.get(cmd).copied().unwrap_or(0));
            if diff > 0 && !cmd.starts_with("info") && !cmd.starts_with("config") {
                total += diff;
                commands.insert(cmd.clone(), json!(round(diff as f64 / n)));
                let spent = self.usec.get(cmd).copied().unwrap_or(0);
                let spent = spent.saturating_sub(before.usec.get(cmd).copied().unwrap_or(0));
                usec.insert(cmd.clone(), json!(round(spent as f64 / n)));
            }
        }
        json!({
            "calls": round(total as f64 / n),
            "commands": commands,
            "usec": usec,
            "bytes_in": round(self.bytes_in.saturating_sub(before.bytes_in) as f64 / n),
            "bytes_out": round(self.bytes_out.saturating_sub(before.bytes_out) as f64 / n),
        })
    }
}

struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Agent ids of the generated directory.
pub fn agent_id(i: usize) -> String {
    format!("ag{i}")
}

pub fn supervisor_id(i: usize) -> String {
    format!("sv{i}")
}

/// Tenant `t` of a generated directory of many tenants (`t0000`, …).
pub fn tenant_id(t: usize) -> String {
    format!("t{t:04}")
}

/// One generated tenant: `agents` agents (all assigned to its queue) and
/// `supervisors` supervisors (at least one).
fn tenant_json(id: &str, name: &str, agents: usize, supervisors: usize) -> serde_json::Value {
    let users: Vec<_> = (0..agents)
        .map(|i| json!({"id": agent_id(i), "name": format!("Agent {i}"), "roles": ["agent"]}))
        .chain((0..supervisors.max(1)).map(|i| json!({"id": supervisor_id(i), "name": format!("Supervisor {i}"), "roles": ["supervisor"]})))
        .collect();
    let assigned: Vec<String> = (0..agents).map(agent_id).collect();
    json!({"id": id, "name": name,
        "channels": [{"kind": "queue", "id": "q", "name": "Queue", "assigned": assigned}], "users": users})
}

impl Target {
    /// Running nodes, by URL (a worker process's view of the coordinator's target).
    pub fn remote(urls: Vec<String>, secret: String) -> Target {
        Target {
            urls,
            secret,
            children: vec![],
            redis: None,
            replicas: vec![],
            redis_port: None,
            _directory: None,
            _tls: None,
        }
    }

    /// Starts the hub (one node) or attaches to `--url` nodes.
    pub async fn open(
        common: &Common,
        agents: usize,
        supervisors: usize,
        extra: &[&str],
    ) -> Result<Target, String> {
        let tenant = tenant_json(TENANT, "Load test", agents, supervisors);
        Target::open_with(common, json!({ "tenants": [tenant] }), extra).await
    }

    /// As [`Target::open`], the directory holding `tenants` tenants
    /// ([`tenant_id`]) of `agents` agents and `supervisors` supervisors each.
    pub async fn open_tenants(
        common: &Common,
        tenants: usize,
        agents: usize,
        supervisors: usize,
        extra: &[&str],
    ) -> Result<Target, String> {
        let all: Vec<_> = (0..tenants)
            .map(|t| tenant_json(&tenant_id(t), &format!("Tenant {t}"), agents, supervisors))
            .collect();
        Target::open_with(common, json!({ "tenants": all }), extra).await
    }

    async fn open_with(
        common: &Common,
        directory: serde_json::Value,
        extra: &[&str],
    ) -> Result<Target, String> {
        if !common.spawn {
            if common.url.is_empty() {
                return Err("give --spawn or at least one --url".into());
            }
            return Ok(Target::remote(
                common.url.clone(),
                common.jwt_secret.clone(),
            ));
        }
        let path =
            std::env::temp_dir().join(format!("presence-loadtest-{}.json", std::process::id()));
        std::fs::write(&path, directory.to_string()).map_err(|e| e.to_string())?;
        let file = TempFile(path.clone());
        let secret = common.jwt_secret.clone();
        let mut redis = None;
        let mut redis_args: Vec<String> = Vec::new();
        let mut replicas = Vec::new();
        let mut redis_port = None;
        let tls_files = if common.redis_tls && common.nodes > 1 {
            Some(tls::Files::generate()?)
        } else {
            None
        };
        if common.nodes > 1 {
            let (child, port) = spawn_redis(tls_files.as_ref(), &[]).await?;
            redis = Some(child);
            redis_port = Some(port);
            redis_args = match &tls_files {
                Some(files) => vec![
                    "--redis-url".into(),
                    format!("rediss://127.0.0.1:{port}/"),
                    "--redis-tls-ca".into(),
                    files.ca.display().to_string(),
                ],
                None => vec!["--redis-url".into(), format!("redis://127.0.0.1:{port}/")],
            };
            if common.redis_wait_replicas > 0 {
                replicas =
                    start_replicas(port, common.redis_wait_replicas, tls_files.as_ref()).await?;
                redis_args.extend([
                    "--redis-wait-replicas".to_string(),
                    common.redis_wait_replicas.to_string(),
                ]);
            }
        }
        // The hub of the same build as this tool unless told otherwise.
        let hub_bin = common.hub_bin.clone().unwrap_or_else(|| {
            std::env::current_exe()
                .ok()
                .and_then(|exe| Some(exe.parent()?.join("presence-hub")))
                .unwrap_or_else(|| "target/release/presence-hub".into())
        });
        let mut urls = Vec::new();
        let mut children = Vec::new();
        for n in 0..common.nodes.max(1) {
            let mut cmd = Command::new(&hub_bin);
            cmd.args([
                "--listen",
                "127.0.0.1:0",
                "--no-demo",
                "--log-format",
                "json",
            ])
            .arg("--directory")
            .arg(&path)
            .args([
                "--rate-limit-per-sec",
                "100000",
                "--max-connections",
                "1000000",
            ])
            .args(["--node-id", &format!("load-{n}")])
            .args(&redis_args)
            .args(extra)
            .env("PRESENCE_HUB_JWT_SECRET", &secret)
            .env("RUST_LOG", "warn")
            .envs(
                common
                    .hub_threads
                    .map(|n| ("TOKIO_WORKER_THREADS", n.max(1).to_string())),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
            let mut child = cmd.spawn().map_err(|e| {
                format!(
                    "{}: {e} (build it: cargo build --release)",
                    hub_bin.display()
                )
            })?;
            let stdout = child.stdout.take().ok_or("no stdout")?;
            let mut lines = BufReader::new(stdout).lines();
            let addr = loop {
                let line = lines
                    .next_line()
                    .await
                    .map_err(|e| e.to_string())?
                    .ok_or("the hub exited")?;
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    break rest
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_string();
                }
            };
            urls.push(format!("ws://{addr}/v1/ws"));
            children.push(child);
        }
        Ok(Target {
            urls,
            secret,
            children,
            redis,
            replicas,
            redis_port,
            _directory: Some(file),
            _tls: tls_files,
        })
    }

    pub fn token_in(&self, tenant: &str, user: &str) -> String {
        presence_hub::auth::mint(&self.secret, tenant, user, 24 * 3600).unwrap_or_default()
    }

    /// Agent `i`'s device, connected to `url` and past its first `state`.
    pub async fn agent(&self, url: &str, i: usize) -> Result<crate::client::Ws, String> {
        self.agent_in(TENANT, url, i, i).await
    }

    /// Agent `i` of `tenant`, as [`Target::agent`], on connection number
    /// `slot` (for the source address).
    pub async fn agent_in(
        &self,
        tenant: &str,
        url: &str,
        i: usize,
        slot: usize,
    ) -> Result<crate::client::Ws, String> {
        let mut ws = crate::client::connect(url, slot).await?;
        let id = agent_id(i);
        let token = self.token_in(tenant, &id);
        crate::client::hello(&mut ws, &token, "agent", Some(&format!("{id}-d"))).await?;
        Ok(ws)
    }

    /// Supervisor `n`, connected to `url` (connection number `slot` for the
    /// source address), optionally subscribed to everything.
    pub async fn supervisor(
        &self,
        url: &str,
        n: usize,
        slot: usize,
        subscribe: bool,
    ) -> Result<crate::client::Ws, String> {
        self.supervisor_in(TENANT, url, n, slot, subscribe).await
    }

    /// Supervisor `n` of `tenant`, as [`Target::supervisor`].
    pub async fn supervisor_in(
        &self,
        tenant: &str,
        url: &str,
        n: usize,
        slot: usize,
        subscribe: bool,
    ) -> Result<crate::client::Ws, String> {
        use futures_util::SinkExt;
        let mut ws = crate::client::connect(url, slot).await?;
        let token = self.token_in(tenant, &supervisor_id(n));
        crate::client::hello(&mut ws, &token, "supervisor", None).await?;
        if subscribe {
            let body = json!({"type": "subscribe", "id": "s", "scope": {"all": true}});
            ws.send(tokio_tungstenite::tungstenite::Message::text(
                body.to_string(),
            ))
            .await
            .map_err(|e| e.to_string())?;
        }
        Ok(ws)
    }

    /// `kill -9` of spawned node `n`.
    pub async fn kill(&mut self, n: usize) {
        if let Some(child) = self.children.get_mut(n) {
            let _ = child.kill().await;
        }
    }

    /// The spawned Redis's counters (none without one: `--nodes 1` or
    /// `--url`).
    pub async fn redis_counters(&self) -> Option<RedisCounters> {
        let text = self.redis_cli(&["info", "everything"]).await?;
        let mut counters = RedisCounters::zero();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("cmdstat_") {
                let (cmd, stats) = rest.split_once(':')?;
                let field = |name: &str| {
                    stats
                        .split(',')
                        .find_map(|kv| kv.strip_prefix(name))
                        .and_then(|v| v.trim().parse::<u64>().ok())
                };
                counters.calls.insert(cmd.to_string(), field("calls=")?);
                counters
                    .usec
                    .insert(cmd.to_string(), field("usec=").unwrap_or(0));
            } else if let Some(v) = line.strip_prefix("total_net_input_bytes:") {
                counters.bytes_in = v.trim().parse().ok()?;
            } else if let Some(v) = line.strip_prefix("total_net_output_bytes:") {
                counters.bytes_out = v.trim().parse().ok()?;
            }
        }
        Some(counters)
    }

    /// `CONFIG RESETSTAT` on the spawned Redis: its command and byte
    /// counters start again from zero (false without a spawned Redis).
    pub async fn redis_reset(&self) -> bool {
        self.redis_cli(&["config", "resetstat"])
            .await
            .is_some_and(|reply| reply.trim() == "OK")
    }

    /// The spawned Redis's port (none without one).
    pub fn redis_port(&self) -> Option<u16> {
        self.redis_port
    }

    /// One `redis-cli` command against the spawned Redis; its output.
    pub async fn redis_cli(&self, args: &[&str]) -> Option<String> {
        let port = self.redis_port?;
        let out = Command::new("redis-cli")
            .args(["-p", &port.to_string()])
            .args(
                self._tls
                    .as_ref()
                    .map(tls::Files::cli_args)
                    .unwrap_or_default(),
            )
            .args(args)
            .output()
            .await
            .ok()?;
        Some(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// RSS of the spawned node(s), from /proc.
    pub fn rss_bytes(&self) -> u64 {
        (0..self.children.len())
            .filter_map(|n| self.rss_of(n))
            .sum()
    }

    /// RSS of spawned node `n`, from /proc.
    pub fn rss_of(&self, n: usize) -> Option<u64> {
        let pid = self.children.get(n)?.id()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
    }

    /// One Prometheus value from node `n`'s /metrics.
    pub async fn metric_of(&self, n: usize, series: &str) -> Option<f64> {
        node_metric(self.urls.get(n)?, series).await
    }

    /// One Prometheus series summed over every node's /metrics (a
    /// counter or gauge of the whole cluster); `None` if no node has it.
    pub async fn metric(&self, series: &str) -> Option<f64> {
        let mut total = None;
        for url in &self.urls {
            if let Some(v) = node_metric(url, series).await {
                *total.get_or_insert(0.0) += v;
            }
        }
        total
    }
}

/// One Prometheus value from the /metrics of the node serving `url`.
async fn node_metric(url: &str, series: &str) -> Option<f64> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = url.trim_start_matches("ws://").trim_end_matches("/v1/ws");
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    s.write_all(format!("GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).await.ok()?;
    out.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// `count` replicas of the Redis on `master`, once they are in sync.
async fn start_replicas(
    master: u16,
    count: u32,
    tls: Option<&tls::Files>,
) -> Result<Vec<Child>, String> {
    let mut replicas = Vec::new();
    for _ in 0..count {
        let master = master.to_string();
        let (child, port) = spawn_redis(tls, &["--replicaof", "127.0.0.1", &master]).await?;
        replicas.push(child);
        for attempt in 0.. {
            let info = Command::new("redis-cli")
                .args(["-p", &port.to_string()])
                .args(tls.map(tls::Files::cli_args).unwrap_or_default())
                .args(["info", "replication"])
                .output()
                .await
                .map_err(|e| format!("redis-cli: {e}"))?;
            if String::from_utf8_lossy(&info.stdout).contains("master_link_status:up") {
                break;
            }
            if attempt > 400 {
                return Err(format!("replica on port {port} did not sync"));
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
    }
    Ok(replicas)
}

/// A `redis-server` of the tool's own (nothing saved) on a free port, once
/// it accepts connections; `extra`: more of its flags. The port is free
/// when picked, but another process may take it before Redis binds it:
/// Redis then exits, and another port is tried.
async fn spawn_redis(tls: Option<&tls::Files>, extra: &[&str]) -> Result<(Child, u16), String> {
    let mut why = String::new();
    for _ in 0..5 {
        why.clear();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let mut child = Command::new("redis-server")
            .args(tls::listen_args(tls, port))
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(extra)
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("redis-server: {e}"))?;
        // Up to 20 s: a loaded 2-core machine can be slow to start it.
        for _ in 0..800 {
            if let Ok(Some(status)) = child.try_wait() {
                why = format!("redis-server on port {port} exited ({status})");
                break;
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Ok((child, port));
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        if why.is_empty() {
            return Err(format!("redis-server did not come up on port {port}"));
        }
    }
    Err(why)
}

impl Drop for Target {
    fn drop(&mut self) {
        // Nodes before their Redis, so they do not log a lost store.
        self.children.clear();
        self.replicas.clear();
        self.redis.take();
    }
}
