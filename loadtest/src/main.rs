//! `presence-loadtest`: drives a presence-hub (spawned, or running nodes
//! given with `--url`) and reports the figures of DESIGN.md §8 as a table and as
//! JSON: `{"scenario", "params", "hub": {"rss_bytes", "nodes"}, "results"}`.
//!
//! Scenarios: `idle`, `fanout`, `commands`, `storm`, `failover`, `ceiling`,
//! `relay`, `resume`, `redis-cost`, `tenants`; `standard` runs the set behind
//! BENCHMARKS.md's headline figures and prints each against its goal. See
//! BENCHMARKS.md.

mod ceiling;
mod client;
mod commands;
mod failover;
mod fanout;
mod idle;
mod redis_cost;
mod relay;
mod report;
mod resume;
mod standard;
mod storm;
mod target;
mod tenants;
mod tls;
mod workers;

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "presence-loadtest",
    about = "Load tool for presence-hub (DESIGN.md §8)"
)]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// N agent devices connected and heartbeating: connection rate and memory per connection.
    Idle {
        #[arg(long, default_value_t = 1000)]
        agents: usize,
        /// Keep them connected this long before measuring memory.
        #[arg(long, default_value_t = 2)]
        hold_s: u64,
        /// Each agent sends a heartbeat this often while held (spread evenly
        /// over the agents), as DESIGN.md §8 has it.
        #[arg(long, default_value_t = 10_000)]
        heartbeat_ms: u64,
        /// Hold the agents in this many worker processes (0: in this one).
        #[arg(long, default_value_t = 0)]
        workers: usize,
        /// A supervisor on the first node watches every agent.
        #[arg(long)]
        watch: bool,
        /// While held, a few agents (on the other nodes) change status at
        /// this rate and the watcher times change → delta (implies --watch).
        #[arg(long, default_value_t = 0)]
        changes_per_s: u64,
        /// Handshakes in flight at once while connecting (without
        /// `--workers`). The default is a storm's; a shift's agents signing
        /// in are fewer at a time, and glibc keeps part of what a storm's
        /// handshakes used (BENCHMARKS.md, "What a storm leaves").
        #[arg(long, default_value_t = workers::CONCURRENCY)]
        concurrency: usize,
        #[command(flatten)]
        common: Common,
    },
    /// Agents change status at a rate while supervisors watch everything.
    Fanout {
        #[command(flatten)]
        load: Load,
        /// Run the tool's agents and supervisors on a runtime of this many
        /// threads of its own [default: the tool's, the CPUs]. With
        /// `--hub-threads`, the two processes together can be given as many
        /// threads as the bare broadcast (`ceiling`) has: the cores.
        #[arg(long)]
        client_threads: Option<usize>,
        #[command(flatten)]
        common: Common,
    },
    /// Supervisors on node 0 monitor agents on node 1 (the tool's agents
    /// accept): the round trip of monitor, the agent's ack included.
    Commands {
        #[arg(long, default_value_t = 50)]
        agents: usize,
        #[arg(long, default_value_t = 5)]
        supervisors: usize,
        /// How many times each supervisor monitors and releases each of its agents.
        #[arg(long, default_value_t = 10)]
        rounds: usize,
        #[command(flatten)]
        common: Common,
    },
    /// A wallboard of N agents: the full snapshot's bytes and time, then a
    /// resume (PROTOCOL.md §5.1.1) after `--changed` agents changed meanwhile.
    Resume {
        #[arg(long, default_value_t = 10_000)]
        agents: usize,
        #[arg(long, default_value_t = 100)]
        changed: usize,
        #[command(flatten)]
        common: Common,
    },
    /// Every agent drops abruptly and reconnects: time to all back, and the
    /// offline flaps a watching supervisor saw.
    Storm {
        #[arg(long, default_value_t = 1000)]
        agents: usize,
        #[arg(long, default_value_t = 10_000)]
        reconnect_grace_ms: u64,
        /// Hold the agents in this many worker processes (0: in this one).
        #[arg(long, default_value_t = 0)]
        workers: usize,
        #[command(flatten)]
        common: Common,
    },
    /// `kill -9` of one node of K (≥ 2, over Redis): how long until every
    /// survivor shows its agents offline.
    Failover {
        #[arg(long, default_value_t = 100)]
        agents: usize,
        #[arg(long, default_value_t = 5000)]
        node_ttl_ms: u64,
        #[command(flatten)]
        common: Common,
    },
    /// A bare tokio-tungstenite broadcast of pre-serialized frames: the
    /// physical ceiling the hub's fan-out is compared with.
    Ceiling {
        #[arg(long, default_value_t = 100)]
        supervisors: usize,
        #[arg(long, default_value_t = 1000)]
        frames_per_s: u64,
        #[arg(long, default_value_t = 10)]
        duration_s: u64,
        /// Frame size (bytes), like one agent delta.
        #[arg(long, default_value_t = 700)]
        frame_bytes: usize,
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// The bare broadcast in a process of its own, fed by agents over
    /// WebSocket as the hub is (`fanout`'s agents and supervisors, no hub
    /// logic): the limit for the hub's own shape.
    Relay {
        #[command(flatten)]
        load: Load,
        /// Delta and acknowledgement size (bytes), like the hub's.
        #[arg(long, default_value_t = 700)]
        frame_bytes: usize,
        /// The server's WebSocket: the hub's own, or tokio-tungstenite's.
        #[arg(long, value_enum, default_value_t = relay::Transport::Hub)]
        transport: relay::Transport,
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// `relay`'s server (started by `relay`, not by hand).
    #[command(hide = true)]
    RelayServer {
        #[arg(long, default_value_t = 700)]
        frame_bytes: usize,
        #[arg(long, value_enum, default_value_t = relay::Transport::Hub)]
        transport: relay::Transport,
    },
    /// What a change and an agent's heartbeat cost Redis: commands (those
    /// inside Lua scripts included) and bytes in and out, per command.
    /// Needs --spawn --nodes K (K ≥ 2: the tool starts the Redis).
    RedisCost {
        /// Agents connected (spread over the nodes) that make the changes
        /// and the heartbeats, each waiting for the reply to its last.
        #[arg(long, default_value_t = 100)]
        agents: usize,
        /// Status changes to make (K).
        #[arg(long, default_value_t = 2000)]
        changes: u64,
        /// Heartbeats to send (K), each with an `id` so it is answered.
        #[arg(long, default_value_t = 2000)]
        heartbeats: u64,
        /// First, a window with no traffic this long: what the nodes send
        /// Redis on their own (leases, sweeps), taken off the figures.
        #[arg(long, default_value_t = 2000)]
        quiet_ms: u64,
        #[command(flatten)]
        common: Common,
    },
    /// Many tenants over K nodes (≥ 2, over Redis): each node's memory,
    /// the tenants it follows (`presence_hub_tenants_attached`) and the
    /// bytes Redis sends it while agents change status, with each tenant
    /// on one node (`affine`) or on every node (`spread`).
    /// Needs --spawn --nodes K (K ≥ 2: the tool starts the Redis).
    Tenants(tenants::Args),
    /// The standard set: the scenarios behind BENCHMARKS.md's headline
    /// figures in one run, each figure printed against its goal.
    Standard(standard::Args),
    /// A worker process of `--workers` (started by the tool itself).
    #[command(hide = true)]
    Worker {
        #[arg(long)]
        url: Vec<String>,
        #[arg(long)]
        jwt_secret: String,
        #[arg(long)]
        from: usize,
        #[arg(long)]
        to: usize,
        #[arg(long)]
        heartbeat_ms: u64,
        #[arg(long)]
        concurrency: usize,
        /// With many tenants (`tenants`): agents per tenant (0: the one
        /// generated tenant).
        #[arg(long, default_value_t = 0)]
        agents_per_tenant: usize,
        /// With many tenants: the first agent of each tenant held here.
        #[arg(long, default_value_t = 0)]
        first_agent: usize,
        #[arg(long, value_enum, default_value_t = workers::Placement::Spread)]
        placement: workers::Placement,
    },
}

/// The load of `fanout` and of `relay`, its yardstick: agents changing
/// status at a rate while supervisors watch them all.
#[derive(Args, Clone, Copy)]
pub struct Load {
    #[arg(long, default_value_t = 100)]
    pub agents: usize,
    #[arg(long, default_value_t = 100)]
    pub supervisors: usize,
    #[arg(long, default_value_t = 1000)]
    pub changes_per_s: u64,
    #[arg(long, default_value_t = 10)]
    pub duration_s: u64,
}

#[derive(Args, Clone)]
pub struct Common {
    /// Start the hub binary (release build by default) with suitable flags.
    #[arg(long)]
    pub spawn: bool,
    /// With --spawn: start this many nodes and a redis-server (on PATH) on a
    /// free port for them to share.
    #[arg(long, default_value_t = 1)]
    pub nodes: usize,
    /// With --nodes K > 1: also start this many replicas of the Redis and
    /// run the nodes with `--redis-wait-replicas` this many (every change
    /// acknowledged only once the replicas hold it).
    #[arg(long, default_value_t = 0)]
    pub redis_wait_replicas: u32,
    /// With --nodes K > 1: the Redis (and its replicas) speak only TLS,
    /// with a CA and certificate made for the run, and the nodes connect
    /// with `rediss://` and `--redis-tls-ca` (what TLS costs).
    #[arg(long)]
    pub redis_tls: bool,
    /// The hub binary for --spawn [default: `presence-hub` beside this
    /// tool, i.e. the same cargo build].
    #[arg(long)]
    pub hub_bin: Option<PathBuf>,
    /// With --spawn: each node runs this many worker threads [default:
    /// the hub's, the CPUs]. Given through tokio's `TOKIO_WORKER_THREADS`,
    /// which every hub build reads (the hub's own flag is
    /// `--worker-threads`), so an older build compares at the same count.
    #[arg(long)]
    pub hub_threads: Option<usize>,
    /// A running node's WebSocket URL (ws://host:port/v1/ws); repeatable.
    #[arg(long)]
    pub url: Vec<String>,
    /// The running nodes' HS256 secret (with --url).
    #[arg(long, default_value = "loadtest-secret")]
    pub jwt_secret: String,
    /// Write the JSON report here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// Runs `scenario` on a runtime of `threads` worker threads of its own
/// (this one's threads only wait for it), or on this runtime.
pub async fn on_threads<F>(threads: Option<usize>, scenario: F) -> Result<serde_json::Value, String>
where
    F: std::future::Future<Output = Result<serde_json::Value, String>> + Send + 'static,
{
    let Some(threads) = threads else {
        return scenario.await;
    };
    let (done, result) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let out = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .enable_all()
            .build()
            .map_err(|e| format!("a runtime of {threads} threads: {e}"))
            .and_then(|runtime| runtime.block_on(scenario));
        let _ = done.send(out);
    });
    result
        .await
        .map_err(|_| "the scenario's runtime ended without a result".to_string())?
}

#[tokio::main]
async fn main() -> ExitCode {
    // Many connections need many file descriptors; spawned hubs inherit it.
    let _ = presence_hub::node::raise_open_file_limit();
    let (result, json) = match Cli::parse().scenario {
        Scenario::Idle {
            agents,
            hold_s,
            heartbeat_ms,
            workers,
            watch,
            changes_per_s,
            concurrency,
            common,
        } => {
            let params = idle::Params {
                agents,
                hold_s,
                heartbeat_ms,
                workers,
                watch,
                changes_per_s,
                concurrency,
            };
            let json = common.json.clone();
            (idle::run(params, common).await, json)
        }
        Scenario::Fanout {
            load,
            client_threads,
            common,
        } => {
            let json = common.json.clone();
            let run = fanout::run(load, common);
            (on_threads(client_threads, run).await, json)
        }
        Scenario::Commands {
            agents,
            supervisors,
            rounds,
            common,
        } => {
            let json = common.json.clone();
            (
                commands::run(agents, supervisors, rounds, common).await,
                json,
            )
        }
        Scenario::Resume {
            agents,
            changed,
            common,
        } => {
            let json = common.json.clone();
            (resume::run(agents, changed, common).await, json)
        }
        Scenario::Storm {
            agents,
            reconnect_grace_ms,
            workers,
            common,
        } => {
            let json = common.json.clone();
            let r = storm::run(agents, reconnect_grace_ms, workers, common).await;
            (r, json)
        }
        Scenario::Worker {
            url,
            jwt_secret,
            from,
            to,
            heartbeat_ms,
            concurrency,
            agents_per_tenant,
            first_agent,
            placement,
        } => {
            let tenancy = (agents_per_tenant > 0).then_some(workers::Tenancy {
                agents_per_tenant,
                first: first_agent,
                placement,
            });
            // A worker answers its coordinator on stdout: no report.
            let r = workers::serve(
                url,
                jwt_secret,
                (from, to),
                heartbeat_ms,
                concurrency,
                tenancy,
            )
            .await;
            return finish(r);
        }
        Scenario::Failover {
            agents,
            node_ttl_ms,
            common,
        } => {
            let json = common.json.clone();
            (failover::run(agents, node_ttl_ms, common).await, json)
        }
        Scenario::Ceiling {
            supervisors,
            frames_per_s,
            duration_s,
            frame_bytes,
            json,
        } => {
            let r = ceiling::run(supervisors, frames_per_s, duration_s, frame_bytes).await;
            (r, json)
        }
        Scenario::Relay {
            load,
            frame_bytes,
            transport,
            json,
        } => (relay::run(load, frame_bytes, transport).await, json),
        Scenario::RelayServer {
            frame_bytes,
            transport,
        } => {
            if let Err(e) = relay::serve(frame_bytes, transport).await {
                eprintln!("relay-server: {e}");
            }
            return ExitCode::FAILURE;
        }
        Scenario::RedisCost {
            agents,
            changes,
            heartbeats,
            quiet_ms,
            common,
        } => {
            let json = common.json.clone();
            let params = redis_cost::Params {
                agents,
                changes,
                heartbeats,
                quiet_ms,
            };
            (redis_cost::run(params, common).await, json)
        }
        Scenario::Tenants(args) => {
            let json = args.common.json.clone();
            (tenants::run(args).await, json)
        }
        Scenario::Standard(args) => {
            return match standard::run(args).await {
                Ok(code) => code,
                Err(e) => finish(Err(e)),
            }
        }
    };
    finish(result.and_then(|report| report::emit(&report, json.as_deref())))
}

fn finish(result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("presence-loadtest: {e}");
            ExitCode::FAILURE
        }
    }
}
