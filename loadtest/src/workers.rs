//! `--workers N`: the agents' connections held by N worker processes of this
//! same binary instead of the tool's own process.
//!
//! Why: every connection is a file descriptor in the tool as well as in the
//! hub, and a process may be capped (20 000 here), so 50 000 agents over
//! three nodes need the tool's side spread over processes too. Each worker
//! gets a contiguous share of the agent numbers, connects them, heartbeats
//! them, and answers the coordinator over its stdin/stdout, one JSON line
//! per event:
//!
//! - on start, after connecting: `{"connected": n, "errors": e,
//!   "beat_errors": b, "secs": s}` (errors: failed handshakes; beat_errors:
//!   heartbeats that found their socket closed while the rest connected);
//! - `storm`: drops every socket abruptly, reconnects them all, then
//!   `{"reconnected": n, "errors": e, "secs": s}`;
//! - `report`: `{"connections": n, "heartbeats": h, "errors": e}`;
//! - end of input: closes everything and exits.
//!
//! The agents are those of the one generated tenant (agent `i` on node
//! `i mod K`), or, with a [`Tenancy`] (`tenants`), those of many tenants
//! placed on the nodes as it says.

use crate::client::Ws;
use crate::target::Target;
use futures_util::stream::{self, StreamExt};
use futures_util::SinkExt;
use serde_json::{json, Value};
use std::ops::Range;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio_tungstenite::tungstenite::Message;

/// The worker processes of one run, as seen from the coordinator.
pub struct Workers {
    procs: Vec<Worker>,
}

struct Worker {
    _child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

/// Agents of many tenants held by number: held agent `h` is agent
/// `first + h mod (agents_per_tenant − first)` of tenant
/// `h / (agents_per_tenant − first)` (the agents below `first` of every
/// tenant are left to the coordinator), on the node `placement` gives it.
#[derive(Clone, Copy, Debug)]
pub struct Tenancy {
    pub agents_per_tenant: usize,
    pub first: usize,
    pub placement: Placement,
}

/// Which node a tenant's connections go to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Placement {
    /// All of tenant `t`'s on node `t mod K`: a balancer with tenant affinity.
    Affine,
    /// Each tenant's agents round-robin over the nodes: a plain
    /// round-robin balancer.
    Spread,
}

impl Placement {
    pub fn as_str(self) -> &'static str {
        match self {
            Placement::Affine => "affine",
            Placement::Spread => "spread",
        }
    }
}

impl Tenancy {
    /// Held agents per tenant.
    pub fn held_per_tenant(&self) -> usize {
        self.agents_per_tenant.saturating_sub(self.first)
    }

    /// Held agent `h`: its tenant's number and its agent number there.
    pub fn agent(&self, h: usize) -> (usize, usize) {
        let per = self.held_per_tenant().max(1);
        (h / per, self.first + h % per)
    }

    /// Connection number of agent `j` of tenant `t` (its source address).
    pub fn slot(&self, t: usize, j: usize) -> usize {
        t * self.agents_per_tenant + j
    }

    /// The node of agent `j` of tenant `t`, of `nodes`.
    pub fn node(&self, t: usize, j: usize, nodes: usize) -> usize {
        let nodes = nodes.max(1);
        match self.placement {
            Placement::Affine => t % nodes,
            Placement::Spread => self.slot(t, j) % nodes,
        }
    }
}

impl Workers {
    /// Starts `n` workers sharing the agents of `range` over the target's
    /// nodes, and waits until each has connected its share. Returns the
    /// workers and their `connected` reports.
    pub async fn start(
        n: usize,
        target: &Target,
        range: Range<usize>,
        heartbeat_ms: u64,
    ) -> Result<(Workers, Vec<Value>), String> {
        Workers::start_in(n, target, range, heartbeat_ms, None).await
    }

    /// As [`Workers::start`]; with a tenancy, `range` numbers held agents
    /// of many tenants ([`Tenancy::agent`]).
    pub async fn start_in(
        n: usize,
        target: &Target,
        range: Range<usize>,
        heartbeat_ms: u64,
        tenancy: Option<Tenancy>,
    ) -> Result<(Workers, Vec<Value>), String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let n = n.clamp(1, range.len().max(1));
        let per = range.len().div_ceil(n);
        let mut procs = Vec::new();
        for w in 0..n {
            let from = range.start + w * per;
            let to = (from + per).min(range.end);
            let mut cmd = Command::new(&exe);
            cmd.arg("worker")
                .args(["--from", &from.to_string(), "--to", &to.to_string()])
                .args(["--heartbeat-ms", &heartbeat_ms.to_string()])
                .args(["--concurrency", &(CONCURRENCY / n).to_string()])
                .args(["--jwt-secret", &target.secret]);
            if let Some(t) = tenancy {
                cmd.args(["--agents-per-tenant", &t.agents_per_tenant.to_string()])
                    .args(["--first-agent", &t.first.to_string()])
                    .args(["--placement", t.placement.as_str()]);
            }
            for url in &target.urls {
                cmd.args(["--url", url]);
            }
            let mut child = cmd
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| format!("worker: {e}"))?;
            let stdin = child.stdin.take().ok_or("worker: no stdin")?;
            let stdout = BufReader::new(child.stdout.take().ok_or("worker: no stdout")?).lines();
            procs.push(Worker {
                _child: child,
                stdin,
                stdout,
            });
        }
        let mut workers = Workers { procs };
        let connected = workers.collect().await?;
        Ok((workers, connected))
    }

    /// Sends one command line to every worker.
    pub async fn send(&mut self, command: &str) -> Result<(), String> {
        for w in &mut self.procs {
            w.stdin
                .write_all(format!("{command}\n").as_bytes())
                .await
                .map_err(|e| format!("worker: {e}"))?;
            w.stdin.flush().await.map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// The next report of every worker.
    pub async fn collect(&mut self) -> Result<Vec<Value>, String> {
        let mut out = Vec::new();
        for w in &mut self.procs {
            let line = w
                .stdout
                .next_line()
                .await
                .map_err(|e| e.to_string())?
                .ok_or("a worker exited")?;
            out.push(
                serde_json::from_str(&line).map_err(|e| format!("worker said {line:?}: {e}"))?,
            );
        }
        Ok(out)
    }
}

/// The sum of one field over the workers' reports.
pub fn sum(reports: &[Value], field: &str) -> u64 {
    reports.iter().filter_map(|r| r[field].as_u64()).sum()
}

/// Handshakes in flight at once, over all the processes of the tool. A
/// real storm has every client reconnecting at once; with 256 the 50 000
/// storm over 3 nodes left a third of the CPUs idle, the tool's own cap
/// setting the pace (BENCHMARKS.md, "The 50 000 storm, 2026-12-06").
pub const CONCURRENCY: usize = 1024;

/// Connects agents `range` (agent `i` to node `i mod K`), `concurrency` at
/// a time; the successes and the number of failures.
pub async fn connect(target: &Target, range: Range<usize>, concurrency: usize) -> (Vec<Ws>, usize) {
    connect_in(target, range, concurrency, None).await
}

/// As [`connect`]; with a tenancy, `range` numbers held agents of many
/// tenants ([`Tenancy::agent`]), each connected where it places them.
pub async fn connect_in(
    target: &Target,
    range: Range<usize>,
    concurrency: usize,
    tenancy: Option<Tenancy>,
) -> (Vec<Ws>, usize) {
    let urls = &target.urls;
    let results: Vec<Result<Ws, String>> = stream::iter(range)
        .map(|i| async move {
            match tenancy {
                None => target.agent(&urls[i % urls.len()], i).await,
                Some(tenancy) => {
                    let (t, j) = tenancy.agent(i);
                    let url = &urls[tenancy.node(t, j, urls.len())];
                    let tenant = crate::target::tenant_id(t);
                    target.agent_in(&tenant, url, j, tenancy.slot(t, j)).await
                }
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    connected(results, "connection")
}

/// The connections made and how many failed, the first failure printed
/// (`what`: which kind, for the message).
pub fn connected(results: Vec<Result<Ws, String>>, what: &str) -> (Vec<Ws>, usize) {
    if let Some(Err(e)) = results.iter().find(|r| r.is_err()) {
        eprintln!("first {what} error: {e}");
    }
    let errors = results.iter().filter(|r| r.is_err()).count();
    (results.into_iter().filter_map(Result::ok).collect(), errors)
}

/// Heartbeats paced like real agents: each of `count` sockets once every
/// `heartbeat_ms`, spread evenly over the period in 50 ms ticks. `idle`'s
/// hold, the `tenants` run and every worker process pace the same way.
pub struct Pacer {
    ticker: tokio::time::Interval,
    per_tick: usize,
    next: usize,
}

impl Pacer {
    const TICK: Duration = Duration::from_millis(50);

    pub fn new(count: usize, heartbeat_ms: u64) -> Self {
        let per_tick = (count as u64 * Self::TICK.as_millis() as u64)
            .div_ceil(heartbeat_ms.max(1))
            .max(1) as usize;
        Pacer {
            ticker: tokio::time::interval(Self::TICK),
            per_tick,
            next: 0,
        }
    }

    /// Waits for the next tick (cancel-safe, for `select!`).
    pub async fn tick(&mut self) {
        self.ticker.tick().await;
    }

    /// Sends this tick's share of heartbeats, round-robin over `sockets`:
    /// sent and failed.
    pub async fn beat(&mut self, sockets: &mut [Ws]) -> (u64, u64) {
        let (mut sent, mut failed) = (0, 0);
        for _ in 0..self.per_tick.min(sockets.len()) {
            self.next %= sockets.len();
            match sockets[self.next]
                .send(Message::text("{\"type\":\"heartbeat\"}"))
                .await
            {
                Ok(()) => sent += 1,
                Err(_) => failed += 1,
            }
            self.next += 1;
        }
        (sent, failed)
    }

    /// Paces `sockets` until `until`: sent and failed.
    pub async fn until(mut self, sockets: &mut [Ws], until: Instant) -> (u64, u64) {
        let (mut sent, mut failed) = (0, 0);
        while Instant::now() < until {
            self.tick().await;
            let (s, f) = self.beat(sockets).await;
            sent += s;
            failed += f;
        }
        (sent, failed)
    }
}

/// The worker process: holds agents `from..to` (of the tenancy, if any)
/// until its input ends.
pub async fn serve(
    urls: Vec<String>,
    secret: String,
    (from, to): (usize, usize),
    heartbeat_ms: u64,
    concurrency: usize,
    tenancy: Option<Tenancy>,
) -> Result<(), String> {
    let target = Target::remote(urls, secret);
    let say = |v: Value| println!("{v}");
    let started = Instant::now();
    // In chunks, beating the connected ones between chunks: connecting a
    // share can take longer than the hub's presence TTL on a loaded machine.
    let (mut sockets, mut errors, mut beat_errors) = (Vec::new(), 0, 0u64);
    let mut beat_at = Instant::now();
    let mut i = from;
    while i < to {
        let end = (i + concurrency.max(1) * 4).min(to);
        let (more, failed) = connect_in(&target, i..end, concurrency, tenancy).await;
        sockets.extend(more);
        errors += failed;
        i = end;
        if beat_at.elapsed() >= Duration::from_millis(heartbeat_ms / 2) {
            beat_at = Instant::now();
            for ws in &mut sockets {
                if ws
                    .send(Message::text("{\"type\":\"heartbeat\"}"))
                    .await
                    .is_err()
                {
                    beat_errors += 1;
                }
            }
        }
    }
    say(
        json!({"connected": sockets.len(), "errors": errors, "beat_errors": beat_errors, "secs": started.elapsed().as_secs_f64()}),
    );
    let mut pacer = Pacer::new(to - from, heartbeat_ms);
    let mut input = BufReader::new(tokio::io::stdin()).lines();
    let mut heartbeats = 0u64;
    loop {
        tokio::select! {
            line = input.next_line() => match line.ok().flatten().as_deref() {
                Some("storm") => {
                    let at = Instant::now();
                    // Abruptly: no close frame, the sockets just go.
                    drop(std::mem::take(&mut sockets));
                    let (again, failed) = connect_in(&target, from..to, concurrency, tenancy).await;
                    sockets = again;
                    errors += failed;
                    say(json!({"reconnected": sockets.len(), "errors": failed, "secs": at.elapsed().as_secs_f64()}));
                }
                Some("report") => say(json!({"connections": sockets.len(), "heartbeats": heartbeats, "errors": errors})),
                Some(_) => {}
                None => break,
            },
            _ = pacer.tick() => {
                let (sent, failed) = pacer.beat(&mut sockets).await;
                heartbeats += sent;
                errors += failed as usize;
            }
        }
    }
    Ok(())
}
