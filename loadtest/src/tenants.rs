//! `tenants`: many tenants over K nodes (issue 27). Does a node hold and
//! receive only the tenants it serves, and what does it cost when every
//! node serves every tenant?
//!
//! The tool starts a Redis and K nodes (`--spawn --nodes K`, K ≥ 2) on a
//! directory of T tenants (`t0000`, …) of A agents and a supervisor each,
//! and places every tenant's connections on the nodes as a balancer would
//! (`--placement`): `affine`, all of tenant `t` on node `t mod K` (tenant
//! affinity); `spread`, each tenant's agents round-robin over the nodes (a
//! plain round-robin balancer: what a node does today with no affinity).
//! Agent 0 of every tenant is held by this process and changes status
//! (`fanout::drive`: pause with its send time, then available), the tenants
//! taking turns at `--changes-per-s` in all; the other agents are held and
//! heartbeat (in `--workers` processes, or here); the supervisor of each of
//! the first `--supervised-tenants` tenants watches its whole tenant (on
//! node `t mod K` either way), so the deltas have readers.
//!
//! Measured over the hold window (`--hold-s`), per node:
//!
//! - RSS before any connection and at the end of the hold (/proc);
//! - `presence_hub_tenants_attached` from the node's /metrics (the tenants
//!   it holds a replica of), against the tenants the tool placed there;
//! - its Redis subscriptions: `sub=` of its connection in Redis's `CLIENT
//!   LIST` (the tenants' delta channels and the node's command channel);
//! - the bytes Redis sent the node and the node sent Redis: Redis 7.0's
//!   `CLIENT LIST` has no per-client byte counters (`tot-net-out` came
//!   later: redis/redis#13944, Valkey 8), so these are the kernel's TCP
//!   counters of the node's own sockets
//!   to the Redis port (`ss -tinp`: `bytes_received`, `bytes_acked`),
//!   before and after the window: pub/sub pushes and command replies;
//! - the deltas it received: the sum over the tenants placed on it of the
//!   seq each advanced in the window (`MGET hub:{t}:seq`). That the node is
//!   subscribed to exactly those is checked against Redis: `PUBSUB NUMSUB`
//!   over every tenant channel must add up to the tenants placed, node by
//!   node (`subscriptions_match_placement`).
//!
//! And for Redis as a whole: its commands per second (`INFO commandstats`,
//! those Lua scripts run included, as `redis-cost` counts them) and bytes in
//! and out per second (`INFO stats`), and the pub/sub messages it delivered
//! (each tenant's deltas times its channel's subscribers). The rates are
//! per second of the window: the hold and ≈ 0.5 s after it for the last
//! deltas. `watch` counts what the supervisors got over the whole run (the
//! agents coming online included) and times the stamped changes.

use crate::client::{self, Ws};
use crate::target::{tenant_id, RedisCounters, Target};
use crate::workers::{self, Placement, Tenancy, Workers};
use crate::Common;
use futures_util::stream::{self, StreamExt};
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Args {
    /// Tenants in the generated directory (`t0000`, `t0001`, …).
    #[arg(long, default_value_t = 30)]
    pub tenants: usize,
    /// Agents per tenant, every one connected: agent 0 of each changes
    /// status, the others are held.
    #[arg(long, default_value_t = 10)]
    pub agents_per_tenant: usize,
    /// Where each tenant's connections go.
    #[arg(long, value_enum, default_value_t = Placement::Affine)]
    pub placement: Placement,
    /// The first N tenants get a supervisor watching the whole tenant
    /// [default: every tenant; 0: none].
    #[arg(long)]
    pub supervised_tenants: Option<usize>,
    /// Status changes per second over all tenants, agent 0 of each taking
    /// turns: each changes every tenants / rate seconds, which must stay
    /// under the hub's --presence-ttl-ms (30 s by default) or its device
    /// goes inactive (another delta).
    #[arg(long, default_value_t = 100)]
    pub changes_per_s: u64,
    /// The measured window. 60 s holds exactly one round of the heartbeat
    /// events each node appends for its agents once a minute
    /// (`--events-heartbeat-s`): a shorter window holds one or none.
    #[arg(long, default_value_t = 10)]
    pub hold_s: u64,
    /// Wait this long once everyone is connected before the window opens
    /// (the attaches and sign-ins' own work dies down).
    #[arg(long, default_value_t = 1)]
    pub settle_s: u64,
    /// Each held agent sends a heartbeat this often.
    #[arg(long, default_value_t = 10_000)]
    pub heartbeat_ms: u64,
    /// Hold the agents in this many worker processes (0: in this one).
    #[arg(long, default_value_t = 0)]
    pub workers: usize,
    #[command(flatten)]
    pub common: Common,
}

/// What the counters said at one end of the window.
struct Counters {
    redis: RedisCounters,
    /// Per node: bytes received from Redis, bytes sent to it, its local
    /// ports to Redis.
    sockets: Vec<SocketBytes>,
    /// Per tenant: its seq.
    seqs: Vec<u64>,
    at: Instant,
}

#[derive(Default, Clone)]
struct SocketBytes {
    received: u64,
    sent: u64,
    ports: Vec<u16>,
}

pub async fn run(a: Args) -> Result<Value, String> {
    let common = a.common.clone();
    if !common.spawn || common.nodes < 2 {
        return Err("tenants measures the nodes and the Redis the tool starts: \
                    give --spawn --nodes K (K ≥ 2)"
            .into());
    }
    if a.tenants == 0 || a.agents_per_tenant == 0 {
        return Err("give --tenants and --agents-per-tenant of at least 1".into());
    }
    let (tenants, per) = (a.tenants, a.agents_per_tenant);
    let supervised = a.supervised_tenants.unwrap_or(tenants).min(tenants);
    let period_s = tenants as f64 / a.changes_per_s.max(1) as f64;
    if period_s > 20.0 {
        eprintln!(
            "tenants: each tenant's agent 0 changes every {period_s:.0} s: above 20 s its \
             device may go inactive (--presence-ttl-ms, 30 s by default)"
        );
    }
    let target = Target::open_tenants(&common, tenants, per, 1, &[]).await?;
    let k = target.urls.len();
    let tenancy = Tenancy {
        agents_per_tenant: per,
        first: 1,
        placement: a.placement,
    };
    // Where the tool puts each tenant's connections.
    let mut placed: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); k];
    for t in 0..tenants {
        for j in 0..per {
            placed[tenancy.node(t, j, k)].insert(t);
        }
        if t < supervised {
            placed[t % k].insert(t);
        }
    }
    // Let the nodes settle before the baseline.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before: Vec<Option<u64>> = (0..k).map(|n| target.rss_of(n)).collect();

    let started = Instant::now();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let watchers = supervisors(&target, supervised, tenants * per, &stopped).await?;
    let held = tenants * tenancy.held_per_tenant();
    let (mut pool, mut sockets, mut errors) = if a.workers > 0 && held > 0 {
        let (pool, reports) =
            Workers::start_in(a.workers, &target, 0..held, a.heartbeat_ms, Some(tenancy)).await?;
        let e = workers::sum(&reports, "errors") as usize;
        (Some(pool), Vec::new(), e)
    } else {
        let (sockets, e) =
            workers::connect_in(&target, 0..held, workers::CONCURRENCY, Some(tenancy)).await;
        (None, sockets, e)
    };
    let (drivers, driver_errors) = drivers(&target, tenants, tenancy).await;
    errors += driver_errors;
    let driver_count = drivers.len();
    let connect_s = started.elapsed().as_secs_f64();
    // The sign-ins' own writes settle before the window.
    tokio::time::sleep(Duration::from_secs(a.settle_s)).await;

    // What each node holds through the window (the drivers' sockets end
    // with it).
    let mut held_by = Vec::new();
    for n in 0..k {
        let mut conns = 0;
        for role in ["agent", "supervisor"] {
            let series = format!("presence_hub_connections{{role=\"{role}\"}}");
            conns += target.metric_of(n, &series).await.unwrap_or(0.0) as u64;
        }
        held_by.push(conns);
    }
    let mut breaks_before = Vec::new();
    for n in 0..k {
        breaks_before.push(breaks(&target, n).await);
    }
    let ids: Vec<String> = (0..tenants).map(tenant_id).collect();
    let pids: Vec<Option<u32>> = target.children.iter().map(|c| c.id()).collect();
    let before = counters(&target, &pids, &ids).await?;
    let drive_errors = Arc::new(AtomicU64::new(0));
    let hold = Duration::from_secs(a.hold_s);
    let driving = {
        let (rate, errors) = (a.changes_per_s, drive_errors.clone());
        tokio::spawn(async move { crate::fanout::drive(drivers, rate, hold, &errors).await })
    };
    let (mut heartbeats, beat_errors) = workers::Pacer::new(sockets.len(), a.heartbeat_ms)
        .until(&mut sockets, Instant::now() + hold)
        .await;
    // Let the last deltas arrive. The drivers send nothing after the hold
    // (each stops at its next tick, up to tenants / rate seconds later).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = counters(&target, &pids, &ids).await?;
    let window_s = after.at.duration_since(before.at).as_secs_f64();
    let changes_sent = driving.await.map_err(|e| e.to_string())?;

    // What Redis says of the subscriptions, at the end of the window.
    let numsub = numsub(&target, &ids).await?;
    let subs_by_port = client_subscriptions(&target).await?;
    // Those held by this process, the drivers, the supervisors (all
    // connected, or the run would have stopped), those of the workers.
    let mut connections = sockets.len() + driver_count + supervised;
    if let Some(pool) = pool.as_mut() {
        pool.send("report").await?;
        let reports = pool.collect().await?;
        connections += workers::sum(&reports, "connections") as usize;
        heartbeats += workers::sum(&reports, "heartbeats");
        errors = workers::sum(&reports, "errors") as usize + driver_errors;
    }

    let deltas: Vec<u64> = after
        .seqs
        .iter()
        .zip(&before.seqs)
        .map(|(a, b)| a.saturating_sub(*b))
        .collect();
    let round = |x: f64| (x * 10.0).round() / 10.0;
    let per_s = |x: u64| round(x as f64 / window_s.max(0.001));
    let mut nodes = Vec::new();
    for n in 0..k {
        // A gauge of whole tenants.
        let attached = target
            .metric_of(n, "presence_hub_tenants_attached")
            .await
            .map(|v| v as u64);
        let (b, e) = (&before.sockets[n], &after.sockets[n]);
        let received = e.received.saturating_sub(b.received);
        let sent = e.sent.saturating_sub(b.sent);
        // Over the node's connections that Redis lists (a connection the
        // node opened or dropped between the two reads is left out).
        let subscriptions: u64 = e.ports.iter().filter_map(|p| subs_by_port.get(p)).sum();
        let (reconnects, resyncs) = breaks(&target, n).await;
        let (reconnects_before, resyncs_before) = breaks_before[n];
        let less = |a: Option<u64>, b: Option<u64>| Some(a?.saturating_sub(b?));
        let deltas_received: u64 = placed[n].iter().map(|&t| deltas[t]).sum();
        nodes.push(json!({
            "node": n,
            "tenants_placed": placed[n].len(),
            "tenants_attached": attached,
            "redis_subscriptions": subscriptions,
            "redis_connections": e.ports.len(),
            "backplane_reconnects": reconnects,
            "backplane_reconnects_in_window": less(reconnects, reconnects_before),
            "resyncs": resyncs,
            "resyncs_in_window": less(resyncs, resyncs_before),
            "connections": held_by[n],
            "rss_bytes_before": rss_before[n],
            "rss_bytes": target.rss_of(n),
            "bytes_from_redis": received,
            "bytes_from_redis_per_s": per_s(received),
            "bytes_to_redis": sent,
            "bytes_to_redis_per_s": per_s(sent),
            "deltas_received": deltas_received,
            "deltas_received_per_s": per_s(deltas_received),
        }));
    }
    let _ = stop.send(true);
    let (mut latency, mut delivered, mut snapshots) = (crate::report::histogram(), 0u64, 0usize);
    for w in watchers {
        if let Ok((h, d, s)) = w.await {
            let _ = latency.add(h);
            delivered += d;
            snapshots += usize::from(s);
        }
    }
    let placed_total: usize = placed.iter().map(BTreeSet::len).sum();
    let numsub_total: u64 = numsub.iter().sum();
    let total_deltas: u64 = deltas.iter().sum();
    let deliveries: u64 = deltas.iter().zip(&numsub).map(|(d, s)| d * s).sum();
    print_table(&nodes);
    let results = json!({
        "nodes": nodes,
        "connections": connections,
        "connect_s": round(connect_s),
        "errors": errors as u64 + beat_errors + drive_errors.load(Ordering::Relaxed),
        "heartbeats_sent": heartbeats,
        "changes_sent": changes_sent,
        "window_s": (window_s * 1000.0).round() / 1000.0,
        "deltas": total_deltas,
        "deltas_per_s": per_s(total_deltas),
        "pubsub_deliveries": deliveries,
        "pubsub_deliveries_per_s": per_s(deliveries),
        "tenant_subscriptions": numsub_total,
        "tenants_placed_total": placed_total,
        "subscriptions_match_placement": numsub_total == placed_total as u64,
        "redis_per_s": after.redis.rate(&before.redis, window_s),
        "watch": {
            "supervisors": supervised,
            "snapshots": snapshots,
            "deltas": delivered,
            "latency_ms": crate::report::latency_ms(&latency),
        },
    });
    let params = json!({"tenants": tenants, "agents_per_tenant": per,
        "placement": a.placement.as_str(), "supervised_tenants": supervised,
        "changes_per_s": a.changes_per_s, "hold_s": a.hold_s, "settle_s": a.settle_s,
        "heartbeat_ms": a.heartbeat_ms, "workers": a.workers, "nodes": k});
    let hub = json!({"rss_bytes": target.rss_bytes(), "nodes": k});
    drop(sockets);
    drop(pool);
    Ok(crate::report::make("tenants", params, hub, results))
}

/// Node `n`'s `presence_hub_backplane_reconnects_total` (reconnections to
/// Redis, and lease renewals that came too late: the node catches up as
/// after an outage) and `presence_hub_resyncs_total` (tenant replicas
/// reloaded), so far.
async fn breaks(target: &Target, n: usize) -> (Option<u64>, Option<u64>) {
    let of =
        |series: &'static str| async move { target.metric_of(n, series).await.map(|v| v as u64) };
    (
        of("presence_hub_backplane_reconnects_total").await,
        of("presence_hub_resyncs_total").await,
    )
}

/// The supervisors of tenants `0..n`, each on node `t mod K`, subscribed to
/// its whole tenant and read by a task of its own until `stop`: the
/// latencies (µs) of the stamped deltas it got, how many deltas, and
/// whether its snapshot came.
async fn supervisors(
    target: &Target,
    n: usize,
    first_slot: usize,
    stop: &tokio::sync::watch::Receiver<bool>,
) -> Result<Vec<tokio::task::JoinHandle<(hdrhistogram::Histogram<u64>, u64, bool)>>, String> {
    let urls = &target.urls;
    let connected: Vec<Result<Ws, String>> = stream::iter(0..n)
        .map(|t| async move {
            let url = &urls[t % urls.len()];
            target
                .supervisor_in(&tenant_id(t), url, 0, first_slot + t, true)
                .await
        })
        .buffered(workers::CONCURRENCY)
        .collect()
        .await;
    let mut tasks = Vec::new();
    for ws in connected {
        let ws = ws.map_err(|e| format!("a supervisor: {e}"))?;
        tasks.push(tokio::spawn(client::watch_deltas(ws, stop.clone())));
    }
    Ok(tasks)
}

/// Agent 0 of every tenant, where the placement puts it: the ones that
/// change status. The connected ones and the number that failed.
async fn drivers(target: &Target, tenants: usize, tenancy: Tenancy) -> (Vec<Ws>, usize) {
    let urls = &target.urls;
    let results: Vec<Result<Ws, String>> = stream::iter(0..tenants)
        .map(|t| async move {
            let url = &urls[tenancy.node(t, 0, urls.len())];
            target
                .agent_in(&tenant_id(t), url, 0, tenancy.slot(t, 0))
                .await
        })
        .buffer_unordered(workers::CONCURRENCY)
        .collect()
        .await;
    workers::connected(results, "driver connection")
}

/// Redis's counters, every node's socket counters to Redis and every
/// tenant's seq, now.
async fn counters(
    target: &Target,
    pids: &[Option<u32>],
    ids: &[String],
) -> Result<Counters, String> {
    let redis = target
        .redis_counters()
        .await
        .ok_or("INFO failed on the spawned Redis")?;
    let port = target.redis_port().ok_or("no spawned Redis")?;
    let sockets = socket_bytes(pids, port).await?;
    let keys: Vec<String> = ids.iter().map(|t| format!("hub:{{{t}}}:seq")).collect();
    let mut args = vec!["mget"];
    args.extend(keys.iter().map(String::as_str));
    let out = target
        .redis_cli(&args)
        .await
        .ok_or("MGET failed on the spawned Redis")?;
    let seqs: Vec<u64> = out.lines().map(|l| l.trim().parse().unwrap_or(0)).collect();
    if seqs.len() != ids.len() {
        return Err(format!(
            "MGET of {} seqs answered {} lines",
            ids.len(),
            seqs.len()
        ));
    }
    Ok(Counters {
        redis,
        sockets,
        seqs,
        at: Instant::now(),
    })
}

/// The kernel's counters of each node's TCP connections to the Redis on
/// `port` (`ss -tinp`, the node side: bytes received from Redis, bytes
/// sent and acknowledged), summed per node (by pid, in the order of
/// `pids`).
async fn socket_bytes(pids: &[Option<u32>], port: u16) -> Result<Vec<SocketBytes>, String> {
    let out = tokio::process::Command::new("ss")
        .args([
            "-tinpH",
            "state",
            "established",
            "dport",
            "=",
            &format!(":{port}"),
        ])
        .output()
        .await
        .map_err(|e| format!("ss (iproute2): {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "ss: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut by_pid: HashMap<u32, SocketBytes> = HashMap::new();
    let mut current: Option<(u32, u16)> = None;
    for line in text.lines() {
        if let Some((pid, local)) = socket_line(line) {
            current = Some((pid, local));
            by_pid.entry(pid).or_default().ports.push(local);
        } else if let Some((pid, _)) = current.take() {
            // The socket's details follow its line.
            let field = |name: &str| {
                line.split_whitespace()
                    .find_map(|w| w.strip_prefix(name))
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            let entry = by_pid.entry(pid).or_default();
            entry.received += field("bytes_received:");
            entry.sent += field("bytes_acked:");
        }
    }
    Ok(pids
        .iter()
        .map(|pid| {
            pid.and_then(|p| by_pid.get(&p).cloned())
                .unwrap_or_default()
        })
        .collect())
}

/// A socket's line of `ss -tinpH`: its owner's pid and its local port
/// (`None` for a details line or a socket of no known process).
fn socket_line(line: &str) -> Option<(u32, u16)> {
    let pid = line
        .split("pid=")
        .nth(1)?
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()?;
    let local = line
        .split_whitespace()
        .find_map(|w| w.parse::<std::net::SocketAddr>().ok())?;
    Some((pid, local.port()))
}

/// `PUBSUB NUMSUB` of every tenant's delta channel: its subscribers.
async fn numsub(target: &Target, ids: &[String]) -> Result<Vec<u64>, String> {
    let channels: Vec<String> = ids.iter().map(|t| format!("hub:{{{t}}}:deltas")).collect();
    let mut args = vec!["pubsub", "numsub"];
    args.extend(channels.iter().map(String::as_str));
    let out = target
        .redis_cli(&args)
        .await
        .ok_or("PUBSUB NUMSUB failed on the spawned Redis")?;
    // Channel and count, a line each.
    let lines: Vec<&str> = out.lines().collect();
    let counts: Vec<u64> = lines
        .chunks(2)
        .filter_map(|pair| pair.get(1).and_then(|n| n.trim().parse().ok()))
        .collect();
    if counts.len() != ids.len() {
        return Err(format!(
            "PUBSUB NUMSUB of {} channels answered {} counts",
            ids.len(),
            counts.len()
        ));
    }
    Ok(counts)
}

/// Redis's `CLIENT LIST`: each client's subscriptions (`sub=`), by its port.
async fn client_subscriptions(target: &Target) -> Result<HashMap<u16, u64>, String> {
    let out = target
        .redis_cli(&["client", "list"])
        .await
        .ok_or("CLIENT LIST failed on the spawned Redis")?;
    let mut subs = HashMap::new();
    for line in out.lines() {
        let field = |name: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(name))
                .map(str::to_string)
        };
        let port = field("addr=")
            .and_then(|a| a.parse::<std::net::SocketAddr>().ok())
            .map(|a| a.port());
        let sub = field("sub=").and_then(|s| s.parse::<u64>().ok());
        if let (Some(port), Some(sub)) = (port, sub) {
            subs.insert(port, sub);
        }
    }
    Ok(subs)
}

/// The per-node rows as a table.
fn print_table(nodes: &[Value]) {
    let mib = |v: &Value| {
        v.as_u64()
            .map_or("?".to_string(), |b| format!("{:.1}", b as f64 / 1048576.0))
    };
    let show = |v: &Value| match v {
        Value::Null => "?".to_string(),
        other => other.to_string(),
    };
    println!(
        "| node | tenants placed | tenants attached | Redis subscriptions | connections | \
         RSS before → end (MiB) | bytes from Redis/s | bytes to Redis/s | deltas received/s | \
         catch-ups / replicas reloaded (window) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for n in nodes {
        println!(
            "| {} | {} | {} | {} | {} | {} → {} | {} | {} | {} | {} / {} |",
            n["node"],
            n["tenants_placed"],
            show(&n["tenants_attached"]),
            show(&n["redis_subscriptions"]),
            show(&n["connections"]),
            mib(&n["rss_bytes_before"]),
            mib(&n["rss_bytes"]),
            n["bytes_from_redis_per_s"],
            n["bytes_to_redis_per_s"],
            n["deltas_received_per_s"],
            show(&n["backplane_reconnects_in_window"]),
            show(&n["resyncs_in_window"]),
        );
    }
    println!();
}
