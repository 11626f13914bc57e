//! Starting a node: directory, backplane, auth, hub, listener — and the
//! start-up banner that tells a newcomer how to open the wallboard.

use crate::auth::{self, AuthError, Verifier};
use crate::backplane::memory::MemoryBackplane;
use crate::backplane::redis::RedisBackplane;
use crate::backplane::Backplane;
use crate::config::Config;
use crate::directory::{Directory, DirectoryError};
use crate::domain::Role;
use crate::hub::Hub;
use crate::server;
use crate::web::{WebConfigError, WebSecurity};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Web(#[from] WebConfigError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// A node that is listening, ready to be served.
pub struct Node {
    pub hub: Arc<Hub>,
    pub addr: SocketAddr,
    listener: TcpListener,
    /// Where `/metrics` is served apart (`--metrics-listen`), once bound.
    pub metrics_addr: Option<SocketAddr>,
    metrics_listener: Option<TcpListener>,
    web: Arc<WebSecurity>,
    /// The HS256 secret in use when it was generated (dev mode).
    pub generated_secret: Option<String>,
}

impl Node {
    /// Loads everything the configuration names and binds the listener.
    pub async fn bind(config: Config) -> Result<Node, StartError> {
        let directory = match &config.directory {
            Some(path) => Directory::load(path)?,
            None => Directory::demo(),
        };
        Node::bind_with(config, directory).await
    }

    /// As [`Node::bind`], with a directory already in hand (tests).
    pub async fn bind_with(mut config: Config, directory: Directory) -> Result<Node, StartError> {
        let node_id = config
            .node_id
            .clone()
            .unwrap_or_else(crate::hub::random_node_id);
        config.node_id = Some(node_id.clone());
        config.max_connections = fit_open_files(config.max_connections);
        // Flags built in code (tests) skip clap's checks: checked again here.
        let web = Arc::new(WebSecurity::from_config(&config)?);
        let redis_target = config.redis_target();
        if redis_target.is_some() && !Verifier::configured(&config) {
            // Every node must verify the same tokens: no per-node dev secret.
            return Err(StartError::Config(
                "cluster mode (--redis-url) needs --jwt-secret, --jwt-public-key, --oidc-issuer or --jwt-jwks-url, the same on every node".into(),
            ));
        }
        // Before listening: a data directory that is locked or unreadable
        // ends the start (exit 1), it never starts empty.
        let data_dir = match (&config.data_dir, &redis_target) {
            (Some(_), Some(_)) => {
                return Err(StartError::Config(
                    "--data-dir keeps a single in-memory node's data; with Redis, Redis keeps it: give one or the other".into(),
                ))
            }
            (Some(dir), None) => Some(crate::store::DataDir::open_with(
                dir,
                config.history_capacity,
                config.events_retention(),
            )?),
            (None, _) => None,
        };
        let (verifier, generated_secret) = Verifier::from_config(&config)?;
        // So is a webhook secrets key that is not one.
        crate::webhooks::seal::Keys::configured(&config)
            .map_err(|e| StartError::Config(e.to_string()))?;
        // An unusable SCIM tokens file is a mistake no retry fixes.
        if let crate::scim::Tokens::Broken(why) =
            crate::scim::Tokens::configured(config.scim_tokens.as_deref())
        {
            return Err(StartError::Config(why));
        }
        // A mistake in the Redis flags (a missing certificate, a bad URL)
        // ends the start at once; Redis not answering does not (below).
        let redis = match &redis_target {
            None => None,
            Some(target) => Some(
                target
                    .prepare()
                    .map_err(|e| StartError::Config(format!("redis: {e}")))?,
            ),
        };
        let addr = config.listen;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| StartError::Bind { addr, source })?;
        let (metrics_listener, metrics_addr) = match config.metrics_listen {
            Some(at) => {
                let bound = TcpListener::bind(at)
                    .await
                    .map_err(|source| StartError::Bind { addr: at, source })?;
                let local = bound
                    .local_addr()
                    .map_err(|source| StartError::Bind { addr: at, source })?;
                (Some(bound), Some(local))
            }
            None => (None, None),
        };
        let backplane: Arc<dyn Backplane> = match redis {
            None => match &data_dir {
                Some(opened) => Arc::new(opened.backplane(config.history_capacity)),
                None => Arc::new(
                    MemoryBackplane::new(config.history_capacity)
                        .with_events(config.events_retention()),
                ),
            },
            Some(prepared) => {
                let waiting = server::starting::Waiting::default();
                let listeners: Vec<&TcpListener> = std::iter::once(&listener)
                    .chain(metrics_listener.as_ref())
                    .collect();
                let redis = server::starting::serve_while(
                    &listeners,
                    waiting.clone(),
                    config.http_header_timeout(),
                    reach_redis(&prepared, &node_id, &config, addr, waiting),
                )
                .await;
                Arc::new(redis)
            }
        };
        web.metrics.warn_if_exposed(addr);
        let hub = Hub::new(config, directory, backplane, verifier);
        crate::events::heartbeat::start(&hub);
        crate::webhooks::start(&hub);
        if let Some(opened) = &data_dir {
            restart_timers(&hub, &opened.restored);
        }
        if let Some(secret) = &generated_secret {
            let _ = hub.dev_secret.set(secret.clone());
        }
        Ok(Node {
            hub,
            addr,
            listener,
            metrics_addr,
            metrics_listener,
            web,
            generated_secret,
        })
    }

    /// Serves until `shutdown` resolves, then drains (see [`server::serve`]).
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        server::serve(
            self.hub,
            self.listener,
            self.metrics_listener,
            self.web,
            shutdown,
        )
        .await
    }

    /// Starts the demo (simulated agents and ACD) of the first tenant (see [`crate::demo`]).
    pub fn start_demo(&self) -> Result<(), StartError> {
        let secret = self
            .generated_secret
            .clone()
            .or_else(|| self.hub.config.jwt_secret.clone())
            .ok_or_else(|| {
                StartError::Config("--demo needs --jwt-secret (HS256) to sign in its agents".into())
            })?;
        let tenant = self
            .hub
            .directory
            .tenants()
            .next()
            .cloned()
            .ok_or_else(|| StartError::Config("--demo: the directory has no tenant".into()))?;
        let tenant_id = tenant.id.clone();
        crate::demo::start(self.addr, tenant, move |user| {
            auth::mint(&secret, &tenant_id, user, 7 * 24 * 3600).ok()
        });
        Ok(())
    }

    /// What a newcomer needs to start: where the wallboard is and how to sign in.
    pub fn banner(&self) -> String {
        let hub = &self.hub;
        let base = format!("http://{}", self.addr);
        let backplane = if hub.backplane.is_shared() {
            "Redis backplane".to_string()
        } else {
            match &hub.config.data_dir {
                Some(dir) => format!("in-memory backplane, data kept in {}", dir.display()),
                // As README's Quick start shows it (tests/readme.rs).
                None => "in-memory backplane".to_string(),
            }
        };
        let mut out = format!(
            "presence-hub {} listening on {base} (node {}, {backplane})\n  WebSocket endpoint: ws://{}/v1/ws\n",
            env!("CARGO_PKG_VERSION"),
            hub.node_id,
            self.addr
        );
        if let Some(metrics) = self.metrics_addr {
            out.push_str(&format!("  Metrics: http://{metrics}/metrics\n"));
        }
        let Some(secret) = &self.generated_secret else {
            out.push_str(&format!("  Wallboard: {base}/ (sign in with a token)\n"));
            return out;
        };
        out.push_str(&format!(
            "  Dev JWT secret (generated, in-memory mode only): {secret}\n"
        ));
        if let Some(tenant) = hub.directory.tenants().next() {
            let pick = |role: Role, unscoped: bool| {
                tenant
                    .users
                    .iter()
                    .find(|u| u.has_role(role) && (!unscoped || u.supervises.is_none()))
            };
            let link = |user: &crate::domain::User, role: Role| {
                auth::mint(secret, &tenant.id, &user.id, 12 * 3600)
                    .map(|t| format!("{base}/#role={}&token={t}", role.as_str()))
                    .unwrap_or_default()
            };
            // Prefer a pure supervisor who sees the whole tenant.
            let pure = tenant.users.iter().find(|u| {
                u.has_role(Role::Supervisor) && !u.has_role(Role::Agent) && u.supervises.is_none()
            });
            if let Some(s) = pure
                .or_else(|| pick(Role::Supervisor, true))
                .or_else(|| pick(Role::Supervisor, false))
            {
                out.push_str(&format!(
                    "  Open the wallboard as supervisor {} ({}):\n    {}\n",
                    s.name,
                    s.id,
                    link(s, Role::Supervisor)
                ));
            }
            if let Some(a) = pick(Role::Agent, false) {
                let t = auth::mint(secret, &tenant.id, &a.id, 12 * 3600).unwrap_or_default();
                out.push_str(&format!(
                    "  Open the agent dashboard as {} ({}):\n    {base}/agent#token={t}\n",
                    a.name, a.id
                ));
            }
            if let Some(a) = pick(Role::Admin, false) {
                out.push_str(&format!(
                    "  As admin {} ({}):\n    {}\n",
                    a.name,
                    a.id,
                    link(a, Role::Admin)
                ));
            }
            out.push_str(&format!(
                "  Mint tokens: {} token --jwt-secret {secret} --tenant {} --user <id>\n",
                this_binary(),
                tenant.id
            ));
        }
        out
    }
}

/// The timers of the previous process, started again from the data
/// directory. Devices it recorded active are not connected to this one:
/// like after an abrupt drop ([`Hub::device_down_after_grace`]), each gets
/// the reconnect grace to come back (an agent app reconnects on its own),
/// then is marked inactive by the system; a device that connected to this
/// process meanwhile (its record's `since_ms` is from now) is left alone.
/// Wrap-ups end at their deadline, as they would have.
fn restart_timers(hub: &Arc<Hub>, restored: &[crate::backplane::memory::Restored]) {
    use crate::domain::{Actor, AgentRecord, Event};
    let started_ms = crate::clock::now_ms();
    let left: Vec<(String, String, String, String)> = restored
        .iter()
        .flat_map(|t| {
            t.records.iter().flat_map(move |r| {
                r.devices
                    .iter()
                    .filter(|d| d.active)
                    .map(move |d| (t.tenant.clone(), r.id.clone(), d.id.clone(), d.node.clone()))
            })
        })
        .collect();
    let wrap_ups: Vec<(String, String, u64)> = restored
        .iter()
        .flat_map(|t| {
            t.records.iter().filter_map(move |r| {
                r.wrap_up_until_ms
                    .map(|until| (t.tenant.clone(), r.id.clone(), until))
            })
        })
        .collect();
    if left.is_empty() && wrap_ups.is_empty() {
        return;
    }
    tracing::info!(
        devices = left.len(),
        grace_ms = hub.config.reconnect_grace_ms,
        "devices active before the restart: inactive unless they reconnect within the grace"
    );
    let hub = hub.clone();
    tokio::spawn(async move {
        for (tenant, agent, until) in wrap_ups {
            if let Ok(tenant) = hub.tenant(&tenant).await {
                hub.schedule_wrap_up_end(tenant, agent, until);
            }
        }
        tokio::time::sleep(hub.config.reconnect_grace()).await;
        for (tenant, agent, device_id, node) in left {
            let tenant = match hub.tenant(&tenant).await {
                Ok(t) => t,
                Err(e) => {
                    tracing::warn!(tenant, error = %e, "device left active: tenant not served");
                    continue;
                }
            };
            let still_old = |r: &AgentRecord| {
                if r.devices
                    .iter()
                    .any(|d| d.id == device_id && d.active && d.since_ms < started_ms)
                {
                    Ok(())
                } else {
                    Err(crate::error::HubError::invalid_state("device reconnected"))
                }
            };
            let event = Event::DeviceDown {
                device_id: device_id.clone(),
                node,
            };
            if let Err(e) = hub
                .change(&tenant, &agent, &Actor::system(), &event, still_old)
                .await
            {
                if !matches!(
                    e.code,
                    crate::error::ErrorCode::InvalidState | crate::error::ErrorCode::NotFound
                ) {
                    tracing::warn!(tenant = tenant.id(), agent, device = device_id, error = %e, "device not marked inactive");
                }
            }
        }
    });
}

/// How to run this very binary again, as the banner shows it: a bare
/// `presence-hub` only when that is what the PATH finds (e.g. after
/// `cargo install --path .`), else its path (`target/release/presence-hub`
/// after `cargo run --release`), relative to the working directory when
/// below it.
fn this_binary() -> String {
    let Ok(exe) = std::env::current_exe() else {
        return "presence-hub".into();
    };
    let on_path = std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path)
            .any(|dir| std::fs::canonicalize(dir.join("presence-hub")).is_ok_and(|p| p == exe))
    });
    if on_path {
        return "presence-hub".into();
    }
    std::env::current_dir()
        .ok()
        .and_then(|cwd| exe.strip_prefix(cwd).ok().map(|p| p.display().to_string()))
        .unwrap_or_else(|| exe.display().to_string())
}

/// SIGHUP (a closed terminal, or a `kill -HUP` meant as "reload") is logged
/// and otherwise ignored: the hub has nothing to reload (the flags are read
/// at start; the directory file only seeds the store, and the directory
/// changes at runtime through the API), and ending at once — the default — would
/// drop every session without the drain, while draining would exit 0 and
/// leave a node under `Restart=on-failure` down. A restart re-reads
/// everything (README "Operations").
fn ignore_hangups() {
    #[cfg(unix)]
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(mut hangups) => {
            tokio::spawn(async move {
                while hangups.recv().await.is_some() {
                    tracing::warn!(
                        "SIGHUP ignored: nothing is reloaded; flags are read at start (restart the node: SIGTERM drains it), and the directory changes through the API (docs/API.md), not the file"
                    );
                }
            });
        }
        Err(e) => tracing::debug!(error = %e, "no SIGHUP handler"),
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

/// File descriptors kept for everything but clients: the listener, Redis,
/// the runtime, a directory reload.
const RESERVED_FILES: u64 = 256;

/// Takes the soft open-file limit up to the hard one (as Go's runtime
/// does): every connection is an open file. Returns the limit now in force.
/// The load tool calls it too (and the hubs it spawns inherit it).
pub fn raise_open_file_limit() -> Option<u64> {
    let (soft, hard) = rlimit::Resource::NOFILE.get().ok()?;
    if soft < hard && rlimit::Resource::NOFILE.set(hard, hard).is_ok() {
        Some(hard)
    } else {
        Some(soft)
    }
}

/// Raises the open-file limit and, when `max_connections` still does not
/// fit, lowers it: a full node then answers HTTP 503 at the handshake
/// instead of failing `accept` — or a Redis reconnect — with "too many
/// open files".
fn fit_open_files(max_connections: usize) -> usize {
    let Some(limit) = raise_open_file_limit() else {
        return max_connections;
    };
    let fits = usize::try_from(limit.saturating_sub(RESERVED_FILES)).unwrap_or(usize::MAX);
    if max_connections <= fits {
        return max_connections;
    }
    // Not a fault (the default asks for more than most shells allow), so
    // `info`: the node adapts and says by how much.
    tracing::info!(
        open_files = limit,
        max_connections = fits,
        asked = max_connections,
        "max connections lowered to fit the open-file limit (raise `ulimit -n` for more)"
    );
    fits
}

/// Connects to Redis and takes this node's lease, trying again with
/// backoff until both work: a node started before its Redis (or while it
/// fails over) waits, not ready, instead of exiting. Each failure is
/// logged with the next attempt's delay and kept in `waiting` for
/// `/readyz`.
async fn reach_redis(
    target: &crate::backplane::target::Prepared,
    node_id: &str,
    config: &Config,
    addr: SocketAddr,
    waiting: server::starting::Waiting,
) -> RedisBackplane {
    use std::time::Duration;
    let timeout = Duration::from_millis(config.redis_timeout_ms);
    let max_delay = Duration::from_millis(config.redis_connect_backoff_max_ms.max(1));
    let mut delay = Duration::from_millis(100).min(max_delay);
    let mut attempt: u64 = 0;
    loop {
        attempt += 1;
        let once = async {
            let redis = RedisBackplane::connect(
                target,
                node_id,
                config.history_capacity,
                config.node_ttl(),
                timeout,
                config.redis_push_queue.max(1),
                crate::backplane::redis::Durability {
                    replicas: config.redis_wait_replicas,
                    timeout: Duration::from_millis(config.redis_wait_timeout_ms),
                    connections: config.redis_wait_connections.into(),
                },
            )
            .await?
            .with_events(config.events_retention());
            // Hold a lease before serving anyone.
            redis.renew_lease().await?;
            Ok::<_, crate::backplane::BackplaneError>(redis)
        };
        // Each step is bounded by the Redis timeout; the whole attempt too
        // (a Sentinel asks several servers), generously.
        let outcome = match tokio::time::timeout(timeout * 5, once).await {
            Ok(outcome) => outcome.map_err(|e| e.to_string()),
            Err(_) => Err(format!("no answer within {} ms", (timeout * 5).as_millis())),
        };
        match outcome {
            Ok(redis) => {
                if attempt > 1 {
                    tracing::info!(attempts = attempt, "Redis answered: the node is starting");
                }
                return redis;
            }
            Err(why) => {
                // Equal jitter: nodes restarted together do not knock in step.
                let half = delay / 2;
                let wait = half + half.mul_f64(rand::random::<f64>());
                tracing::warn!(
                    attempt,
                    error = %why,
                    retry_in_ms = wait.as_millis() as u64,
                    listen = %addr,
                    "Redis does not answer yet: not ready (/readyz 503) until it does"
                );
                waiting.set(why);
                tokio::time::sleep(wait).await;
                delay = (delay * 2).min(max_delay);
            }
        }
    }
}

/// Starts a node and serves until SIGINT/SIGTERM (which also ends a start
/// still waiting for Redis).
pub async fn run(config: Config) -> Result<(), StartError> {
    let demo = !config.no_demo
        && (config.demo
            || (config.directory.is_none()
                && config.redis_target().is_none()
                // Demo agents sign in with tokens the hub mints (HS256),
                // which a node trusting an identity provider refuses.
                && config.oidc_issuer.is_none()
                && config.jwt_jwks_url.is_none()));
    ignore_hangups();
    let mut shutdown = Box::pin(shutdown_signal());
    let node = tokio::select! {
        node = Node::bind(config) => node?,
        _ = &mut shutdown => {
            tracing::info!("stopped before the node was ready");
            return Ok(());
        }
    };
    print!("{}", node.banner());
    let workers = tokio::runtime::Handle::current().metrics().num_workers();
    crate::metrics::get().worker_threads.set(workers as f64);
    if demo {
        node.start_demo()?;
        println!("  Demo agents are running (--no-demo to turn them off).");
    }
    node.serve(shutdown)
        .await
        .map_err(|source| StartError::Bind {
            addr: ([0, 0, 0, 0], 0).into(),
            source,
        })
}

/// `presence-hub healthcheck`: GET `path` on the local node; `Ok` on 200.
pub async fn healthcheck(
    listen: SocketAddr,
    path: &str,
    timeout: std::time::Duration,
) -> Result<(), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // A node listening on 0.0.0.0 / [::] is probed on loopback.
    let mut addr = listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            [127, 0, 0, 1].into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    let probe = async {
        let mut stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("{addr}: {e}"))?;
        let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut response = Vec::new();
        stream
            .read_to_end(&mut response)
            .await
            .map_err(|e| e.to_string())?;
        let status = String::from_utf8_lossy(&response)
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
            .to_string();
        if status == "200" {
            Ok(())
        } else {
            Err(format!("{path} answered {status}"))
        }
    };
    tokio::time::timeout(timeout, probe)
        .await
        .map_err(|_| format!("{path}: no answer in time"))?
}
