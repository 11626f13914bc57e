//! `standard`: the scenarios behind BENCHMARKS.md's headline figures, in
//! one run, each figure printed against its goal (issue 27), so a
//! regression shows before it lands.
//!
//! In order, each against hubs it spawns and stops itself: `idle` (memory
//! per connection); `ceiling`, `relay` and `fanout` at the same offered
//! load, at 10 000 and then 20 000 changes/s (the bare broadcast and the
//! bare relay are this run's yardsticks); `commands` across 3 nodes,
//! `redis-cost` on 3 nodes, and last the reconnect `storm` (the most
//! connections; with the hub's default 10 s reconnect grace, so an agent
//! back within the 10 s goal never shows offline). It prints a table —
//! figure, measured, goal, met / NOT met — and the Redis cost per command,
//! and writes everything (every run's own report too) with `--json`. A figure that misses its goal, or a run that
//! fails, is reported and the rest still run; only `--strict` turns a miss
//! into a non-zero exit (a benchmark on a shared machine is not a test).

use crate::Common;
use serde_json::{json, Value};
use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Args {
    /// Start the hubs (and a Redis) for each run: required, the set
    /// measures spawned nodes only.
    #[arg(long)]
    pub spawn: bool,
    /// The hub binary [default: `presence-hub` beside this tool].
    #[arg(long)]
    pub hub_bin: Option<PathBuf>,
    /// Smaller counts and shorter holds: a smoke run, not figures.
    #[arg(long)]
    pub quick: bool,
    /// Exit non-zero when a goal is missed (or a run fails).
    #[arg(long)]
    pub strict: bool,
    /// Write the table, the goals and every run's report here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Agents of the idle run [5 000; --quick 300].
    #[arg(long)]
    pub idle_agents: Option<usize>,
    /// Agents of the storm [19 000 on one node: what fits 20 000 open
    /// files per process; --quick 300].
    #[arg(long)]
    pub storm_agents: Option<usize>,
    /// Nodes of the storm (over Redis when > 1) [1].
    #[arg(long)]
    pub storm_nodes: Option<usize>,
    /// Worker processes holding the storm's agents [2].
    #[arg(long)]
    pub storm_workers: Option<usize>,
    /// Changes, and heartbeats, of the Redis cost run [2 000; --quick 200].
    #[arg(long)]
    pub redis_k: Option<u64>,
}

/// The counts of one standard run.
struct Plan {
    idle_agents: usize,
    idle_hold_s: u64,
    fanout_agents: usize,
    supervisors: usize,
    rate: u64,
    /// The second, saturating load of the freshness goal.
    rate_high: u64,
    duration_s: u64,
    cmd_nodes: usize,
    cmd_agents: usize,
    cmd_supervisors: usize,
    cmd_rounds: usize,
    redis_nodes: usize,
    redis_agents: usize,
    redis_k: u64,
    quiet_ms: u64,
    storm_agents: usize,
    storm_nodes: usize,
    storm_workers: usize,
    storm_grace_ms: u64,
}

impl Plan {
    fn new(a: &Args) -> Plan {
        let mut p = if a.quick {
            Plan {
                idle_agents: 300,
                idle_hold_s: 1,
                fanout_agents: 20,
                supervisors: 20,
                rate: 1_000,
                rate_high: 2_000,
                duration_s: 2,
                cmd_nodes: 2,
                cmd_agents: 10,
                cmd_supervisors: 2,
                cmd_rounds: 5,
                redis_nodes: 2,
                redis_agents: 10,
                redis_k: 200,
                quiet_ms: 1_000,
                storm_agents: 300,
                storm_nodes: 1,
                storm_workers: 2,
                storm_grace_ms: 2_000,
            }
        } else {
            // BENCHMARKS.md's commands for its headline figures.
            Plan {
                idle_agents: 5_000,
                idle_hold_s: 5,
                fanout_agents: 100,
                supervisors: 100,
                rate: 10_000,
                rate_high: 20_000,
                duration_s: 5,
                cmd_nodes: 3,
                cmd_agents: 50,
                cmd_supervisors: 5,
                cmd_rounds: 40,
                redis_nodes: 3,
                redis_agents: 100,
                redis_k: 2_000,
                quiet_ms: 3_000,
                storm_agents: 19_000,
                storm_nodes: 1,
                storm_workers: 2,
                storm_grace_ms: 10_000,
            }
        };
        p.idle_agents = a.idle_agents.unwrap_or(p.idle_agents);
        p.storm_agents = a.storm_agents.unwrap_or(p.storm_agents);
        p.storm_nodes = a.storm_nodes.unwrap_or(p.storm_nodes).max(1);
        p.storm_workers = a.storm_workers.unwrap_or(p.storm_workers);
        p.redis_k = a.redis_k.unwrap_or(p.redis_k);
        p
    }

    fn json(&self) -> Value {
        json!({
            "idle": {"agents": self.idle_agents, "hold_s": self.idle_hold_s},
            "fanout": {"agents": self.fanout_agents, "supervisors": self.supervisors,
                "changes_per_s": [self.rate, self.rate_high], "duration_s": self.duration_s},
            "ceiling": {"supervisors": self.supervisors,
                "frames_per_s": [self.rate, self.rate_high], "duration_s": self.duration_s},
            "relay": {"agents": self.fanout_agents, "supervisors": self.supervisors,
                "changes_per_s": [self.rate, self.rate_high], "duration_s": self.duration_s},
            "commands": {"nodes": self.cmd_nodes, "agents": self.cmd_agents,
                "supervisors": self.cmd_supervisors, "rounds": self.cmd_rounds},
            "redis_cost": {"nodes": self.redis_nodes, "agents": self.redis_agents,
                "changes": self.redis_k, "heartbeats": self.redis_k, "quiet_ms": self.quiet_ms},
            "storm": {"agents": self.storm_agents, "nodes": self.storm_nodes,
                "workers": self.storm_workers, "reconnect_grace_ms": self.storm_grace_ms},
        })
    }
}

/// The Redis cost of one change and one heartbeat as last recorded in
/// BENCHMARKS.md ("What a change and a heartbeat cost Redis", 3 nodes: 12
/// commands since `commit.lua` reads the clock once and trims by age at
/// every 64th version; 14 before): the baseline a change must not exceed.
/// Commands get the 64th version's `XTRIM` as room (12.016 measured).
/// Bytes get 10 %: they move with the records' contents (ids, reasons,
/// timestamps' digits).
const BASE_CHANGE_CALLS: f64 = 12.02;
const BASE_CHANGE_BYTES_IN: f64 = 1_362.0;
const BASE_CHANGE_BYTES_OUT: f64 = 2_047.0;
const BYTES_ROOM: f64 = 1.10;

/// One row of the table.
struct Row {
    figure: String,
    measured: Option<f64>,
    shown: String,
    goal: String,
    met: bool,
}

impl Row {
    fn json(&self) -> Value {
        json!({"figure": self.figure, "measured": self.measured, "shown": self.shown,
            "goal": self.goal, "met": self.met})
    }
}

fn at(report: &Value, pointer: &str) -> Option<f64> {
    report.pointer(pointer).and_then(Value::as_f64)
}

/// A row from a figure of a run's report; `failed` when the run failed or
/// the figure is missing.
fn row(
    figure: &str,
    run: &Result<Value, String>,
    pointer: &str,
    goal: &str,
    show: impl Fn(f64) -> String,
    met: impl Fn(f64, &Value) -> bool,
) -> Row {
    let (measured, shown, ok) = match run {
        Ok(report) => match at(report, pointer) {
            Some(v) => (Some(v), show(v), met(v, report)),
            None => (None, format!("missing ({pointer})"), false),
        },
        Err(e) => (None, format!("run failed: {e}"), false),
    };
    Row {
        figure: figure.to_string(),
        measured,
        shown,
        goal: goal.to_string(),
        met: ok,
    }
}

/// Runs one scenario, saying on stderr what and how long.
async fn step(
    what: String,
    run: impl Future<Output = Result<Value, String>>,
) -> Result<Value, String> {
    eprintln!("standard: {what} …");
    let started = Instant::now();
    let out = run.await;
    match &out {
        Ok(_) => eprintln!(
            "standard: {what}: done in {:.1} s",
            started.elapsed().as_secs_f64()
        ),
        Err(e) => eprintln!("standard: {what}: FAILED: {e}"),
    }
    // The killed nodes and their Redis go away before the next run.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    out
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn thousands(v: f64) -> String {
    let n = v.round() as i64;
    let digits = n.abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

pub async fn run(a: Args) -> Result<ExitCode, String> {
    if !a.spawn {
        return Err("standard starts its own hubs and Redis: give --spawn".into());
    }
    let p = Plan::new(&a);
    let common = |nodes: usize| Common {
        spawn: true,
        nodes,
        redis_wait_replicas: 0,
        redis_tls: false,
        hub_bin: a.hub_bin.clone(),
        hub_threads: None,
        url: vec![],
        jwt_secret: "loadtest-secret".into(),
        json: None,
    };
    let load_before = load_average();
    let started = Instant::now();

    let idle = step(
        format!("idle, {} agents, {} s", p.idle_agents, p.idle_hold_s),
        crate::idle::run(
            crate::idle::Params {
                agents: p.idle_agents,
                hold_s: p.idle_hold_s,
                heartbeat_ms: 10_000,
                workers: 0,
                watch: false,
                changes_per_s: 0,
                concurrency: crate::workers::CONCURRENCY,
            },
            common(1),
        ),
    )
    .await;
    // Freshness at two loads, each beside the two yardsticks at the same
    // load: the bare broadcast in one process (`ceiling`) and the bare
    // relay of the hub's shape (`relay`: its own process, fed by agents).
    let mut freshness = Vec::new();
    for rate in [p.rate, p.rate_high] {
        let ceiling = step(
            format!("ceiling, {rate} frames/s × {} clients", p.supervisors),
            crate::ceiling::run(p.supervisors, rate, p.duration_s, 700),
        )
        .await;
        let load = crate::Load {
            agents: p.fanout_agents,
            supervisors: p.supervisors,
            changes_per_s: rate,
            duration_s: p.duration_s,
        };
        let relay = step(
            format!("relay, {rate} changes/s × {} supervisors", p.supervisors),
            crate::relay::run(load, 700, crate::relay::Transport::Hub),
        )
        .await;
        let fanout = step(
            format!("fanout, {rate} changes/s × {} supervisors", p.supervisors),
            crate::fanout::run(load, common(1)),
        )
        .await;
        freshness.push(Freshness {
            rate,
            ceiling,
            relay,
            fanout,
        });
    }
    let commands = step(
        format!("commands, {} nodes", p.cmd_nodes),
        crate::commands::run(
            p.cmd_agents,
            p.cmd_supervisors,
            p.cmd_rounds,
            common(p.cmd_nodes),
        ),
    )
    .await;
    let redis = step(
        format!(
            "redis-cost, {} nodes, {} changes and heartbeats",
            p.redis_nodes, p.redis_k
        ),
        crate::redis_cost::run(
            crate::redis_cost::Params {
                agents: p.redis_agents,
                changes: p.redis_k,
                heartbeats: p.redis_k,
                quiet_ms: p.quiet_ms,
            },
            common(p.redis_nodes),
        ),
    )
    .await;
    let storm = step(
        format!(
            "storm, {} agents, {} node(s), {} workers",
            p.storm_agents, p.storm_nodes, p.storm_workers
        ),
        crate::storm::run(
            p.storm_agents,
            p.storm_grace_ms,
            p.storm_workers,
            common(p.storm_nodes),
        ),
    )
    .await;

    let rows = rows(&p, &idle, &freshness, &commands, &redis, &storm);
    let load_after = load_average();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "standard set{}: {:.0} s, {cpus} CPUs, load average {load_before} before, {load_after} after",
        if a.quick { " (--quick: a smoke run, not figures)" } else { "" },
        started.elapsed().as_secs_f64()
    );
    println!();
    print_rows(&rows);
    if let Ok(report) = &redis {
        println!();
        print_redis(report);
    }
    let missed = rows.iter().filter(|r| !r.met).count();
    println!();
    println!("{} of {} goals met", rows.len() - missed, rows.len());

    let report = json!({
        "scenario": "standard",
        "params": {"quick": a.quick, "plan": p.json()},
        "machine": {"cpus": cpus, "load_average_before": load_before,
            "load_average_after": load_after, "secs": started.elapsed().as_secs_f64()},
        "rows": rows.iter().map(Row::json).collect::<Vec<_>>(),
        "met": rows.len() - missed,
        "missed": missed,
        "runs": {
            "idle": run_json(&idle),
            "ceiling": run_json(&freshness[0].ceiling), "fanout": run_json(&freshness[0].fanout),
            "freshness": freshness.iter().map(Freshness::json).collect::<Vec<_>>(),
            "commands": run_json(&commands), "redis_cost": run_json(&redis), "storm": run_json(&storm),
        },
    });
    crate::report::write_json(&report, a.json.as_deref())?;
    Ok(if a.strict && missed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The hub's fan-out and its two yardsticks at one load.
struct Freshness {
    rate: u64,
    ceiling: Result<Value, String>,
    relay: Result<Value, String>,
    fanout: Result<Value, String>,
}

impl Freshness {
    fn json(&self) -> Value {
        json!({
            "changes_per_s": self.rate,
            "ceiling": run_json(&self.ceiling),
            "relay": run_json(&self.relay),
            "fanout": run_json(&self.fanout),
        })
    }
}

fn run_json(run: &Result<Value, String>) -> Value {
    match run {
        Ok(v) => v.clone(),
        Err(e) => json!({"error": e}),
    }
}

/// The figures against their goals (DESIGN.md §8, issue 27, and the Redis
/// baseline above).
fn rows(
    p: &Plan,
    idle: &Result<Value, String>,
    freshness: &[Freshness],
    commands: &Result<Value, String>,
    redis: &Result<Value, String>,
    storm: &Result<Value, String>,
) -> Vec<Row> {
    let no_errors = |r: &Value| at(r, "/results/errors").unwrap_or(0.0) == 0.0;
    let ms = |v: f64| format!("{v:.2} ms");
    let mut rows = Vec::new();
    rows.push(row(
        &format!(
            "memory per idle agent connection ({} agents, RSS)",
            thousands(p.idle_agents as f64)
        ),
        idle,
        "/results/rss_bytes_per_connection",
        "≤ 6 KiB (6 144 B)",
        |v| format!("{} B ({:.1} KiB)", thousands(v), v / 1024.0),
        |v, r| v <= 6_144.0 && no_errors(r),
    ));
    for f in freshness {
        let p99 = |run: &Result<Value, String>| {
            run.as_ref()
                .ok()
                .and_then(|r| at(r, "/results/latency_ms/p99"))
        };
        for (yardstick, what) in [
            (p99(&f.ceiling), "the bare broadcast's (one process)"),
            (p99(&f.relay), "the bare relay's (the hub's shape)"),
        ] {
            rows.push(row(
                &format!(
                    "change → supervisor p99, {} changes/s × {} supervisors, against {}",
                    thousands(f.rate as f64),
                    p.supervisors,
                    if what.contains("relay") {
                        "the relay"
                    } else {
                        "the broadcast"
                    }
                ),
                &f.fanout,
                "/results/latency_ms/p99",
                &match yardstick {
                    Some(c) => format!(
                        "≤ 1.5 × {what} {c:.2} ms (same load, this run) = {:.2} ms",
                        1.5 * c
                    ),
                    None => format!("≤ 1.5 × {what} (not measured)"),
                },
                ms,
                |v, r| yardstick.is_some_and(|c| v <= 1.5 * c) && no_errors(r),
            ));
        }
    }
    let (ceiling, fanout) = (&freshness[0].ceiling, &freshness[0].fanout);
    let ceiling_rate = ceiling
        .as_ref()
        .ok()
        .and_then(|r| at(r, "/results/delivered_per_s"));
    rows.push(row(
        "fan-out: frames delivered vs the bare broadcast",
        fanout,
        "/results/delivered_per_s",
        "≥ 70 % (DESIGN.md §8)",
        |v| match ceiling_rate {
            Some(c) if c > 0.0 => format!(
                "{:.0} % ({}/s of {}/s)",
                100.0 * v / c,
                thousands(v),
                thousands(c)
            ),
            _ => format!("{}/s", thousands(v)),
        },
        |v, _| ceiling_rate.is_some_and(|c| c > 0.0 && v >= 0.7 * c),
    ));
    rows.push(row(
        &format!(
            "cross-node monitor round trip p99 ({} nodes, agent ack included)",
            p.cmd_nodes
        ),
        commands,
        "/results/latency_ms/p99",
        "≤ 10 ms, no error",
        ms,
        |v, r| v <= 10.0 && no_errors(r),
    ));
    rows.push(row(
        &format!(
            "reconnect storm: {} agents back ({} node(s), {} workers)",
            thousands(p.storm_agents as f64),
            p.storm_nodes,
            p.storm_workers
        ),
        storm,
        "/results/reconnect_s",
        "≤ 10 s, every agent",
        |v| format!("{v:.2} s"),
        |v, r| v <= 10.0 && at(r, "/results/reconnected") == Some(p.storm_agents as f64),
    ));
    rows.push(row(
        "reconnect storm: offline flaps within the grace",
        storm,
        "/results/offline_flaps_seen",
        "0",
        thousands,
        |v, _| v == 0.0,
    ));
    let redis_row = |figure: &str, pointer: &str, goal: &str, limit: f64, unit: &str| {
        let unit = unit.to_string();
        row(
            &format!("Redis ({} nodes): {figure}", p.redis_nodes),
            redis,
            pointer,
            goal,
            move |v| {
                if unit.is_empty() {
                    format!("{v:.3}")
                } else if v >= 100.0 {
                    format!("{}{unit}", thousands(v))
                } else {
                    format!("{v:.2}{unit}")
                }
            },
            move |v, r| v <= limit && no_errors(r),
        )
    };
    rows.push(redis_row(
        "commands per change (EVALSHA and its script's)",
        "/results/per_change/net/calls",
        &format!("≤ {BASE_CHANGE_CALLS:.2} (27a57b5, 3 nodes)"),
        BASE_CHANGE_CALLS,
        "",
    ));
    rows.push(redis_row(
        "round trips per change (EVALSHA)",
        "/results/per_change/net/commands/evalsha",
        "1 (≤ 1.01: lease renewals share the window)",
        1.01,
        "",
    ));
    rows.push(redis_row(
        "bytes in per change",
        "/results/per_change/net/bytes_in",
        &format!(
            "≤ {} B (0b3859e, 3 nodes: {} B, + 10 %)",
            thousands(BASE_CHANGE_BYTES_IN * BYTES_ROOM),
            thousands(BASE_CHANGE_BYTES_IN)
        ),
        BASE_CHANGE_BYTES_IN * BYTES_ROOM,
        " B",
    ));
    rows.push(redis_row(
        "bytes out per change",
        "/results/per_change/net/bytes_out",
        &format!(
            "≤ {} B (0b3859e, 3 nodes: {} B, + 10 %)",
            thousands(BASE_CHANGE_BYTES_OUT * BYTES_ROOM),
            thousands(BASE_CHANGE_BYTES_OUT)
        ),
        BASE_CHANGE_BYTES_OUT * BYTES_ROOM,
        " B",
    ));
    rows.push(redis_row(
        "commands per agent heartbeat (net of background)",
        "/results/per_heartbeat/net/calls",
        "0 (≤ 0.01)",
        0.01,
        "",
    ));
    rows.push(redis_row(
        "bytes in + out per agent heartbeat (net of background)",
        "/results/per_heartbeat/net/bytes",
        "0 (≤ 1 B)",
        1.0,
        " B",
    ));
    rows
}

fn print_rows(rows: &[Row]) {
    println!("| figure | measured | goal | |");
    println!("|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {} | {} | {} |",
            r.figure,
            r.shown,
            r.goal,
            if r.met { "met" } else { "**NOT met**" }
        );
    }
}

/// Per command, what a change and a heartbeat cost Redis.
fn print_redis(report: &Value) {
    let res = &report["results"];
    let (change, beat) = (&res["per_change"], &res["per_heartbeat"]);
    let mut names: Vec<String> = Vec::new();
    for side in [change, beat] {
        if let Some(map) = side["commands"].as_object() {
            for k in map.keys() {
                if !names.contains(k) {
                    names.push(k.clone());
                }
            }
        }
    }
    names.sort_by(|a, b| {
        let f = |n: &String| change["commands"][n].as_f64().unwrap_or(0.0);
        f(b).total_cmp(&f(a)).then(a.cmp(b))
    });
    let f = |v: &Value| format!("{:.3}", v.as_f64().unwrap_or(0.0));
    println!(
        "Redis cost ({} nodes; {} changes, {} heartbeats; gross unless said):",
        report["params"]["nodes"], res["changes"], res["heartbeats"]
    );
    println!();
    println!("| command | per change | Redis µs per change | per heartbeat |");
    println!("|---|---|---|---|");
    for n in &names {
        println!(
            "| {n} | {} | {} | {} |",
            f(&change["commands"][n]),
            f(&change["usec"][n]),
            f(&beat["commands"][n])
        );
    }
    for (label, key) in [
        ("all commands", "calls"),
        ("bytes in", "bytes_in"),
        ("bytes out", "bytes_out"),
    ] {
        println!(
            "| **{label}** | {} | | {} |",
            f(&change[key]),
            f(&beat[key])
        );
        println!(
            "| {label}, net of background | {} | | {} |",
            f(&change["net"][key]),
            f(&beat["net"][key])
        );
    }
    println!();
    println!("(a script's `evalsha` µs include the commands it ran, which show their own too)");
    let bg = &res["background_per_s"];
    println!(
        "background (no traffic): {} commands/s, {} B/s in, {} B/s out",
        f(&bg["calls"]),
        f(&bg["bytes_in"]),
        f(&bg["bytes_out"])
    );
}
