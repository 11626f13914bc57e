//! Seconds-long runs of the load tool so it cannot rot: each scenario runs
//! against a spawned hub (the build of the running profile) and writes its JSON report with
//! the documented fields. They assert that the run worked, not a speed.

use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

/// The hub binary of the profile these tests were built with: beside the
/// test binary's `deps/` directory (`target/<profile>/presence-hub`), so
/// `cargo test --release` runs the release hub and a debug build left over
/// from earlier is never picked. `cargo test` at the workspace root builds
/// it (the hub's own tests need it) in the same run.
fn hub_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps/<test binary>");
    let bin = profile_dir.join(format!("presence-hub{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "no hub binary at {}: run `cargo test` at the workspace root \
         (or `cargo build -p presence-hub` with this profile) first",
        bin.display()
    );
    bin
}

fn run(args: &[&str]) -> Value {
    run_printing(args).0
}

/// As [`run`], with what the tool printed.
fn run_printing(args: &[&str]) -> (Value, String) {
    // One file per run: tests of one scenario run in parallel.
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let json = std::env::temp_dir().join(format!(
        "presence-loadtest-smoke-{}-{}-{run}.json",
        args[0],
        std::process::id()
    ));
    let out = Command::new(env!("CARGO_BIN_EXE_presence-loadtest"))
        .args(args)
        .arg("--json")
        .arg(&json)
        .output()
        .expect("run presence-loadtest");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("results:"), "a human table: {stdout}");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json report")).expect("JSON");
    let _ = std::fs::remove_file(&json);
    assert_eq!(report["scenario"], args[0]);
    assert!(
        report["params"].is_object()
            && report["hub"]["nodes"].is_u64()
            && report["hub"]["rss_bytes"].is_u64()
    );
    (report["results"].clone(), stdout.into_owned())
}

#[test]
fn idle_connects_every_agent_and_measures_memory() {
    let hub = hub_bin();
    let r = run(&[
        "idle",
        "--agents",
        "60",
        "--hold-s",
        "1",
        "--heartbeat-ms",
        "200",
        "--spawn",
        "--hub-bin",
        hub.to_str().expect("path"),
    ]);
    assert_eq!(r["connections"], 60, "{r}");
    // The hub itself holds every one of them after the hold, and every
    // agent beat at least once.
    assert_eq!(r["hub_connections"], 60.0, "{r}");
    assert!(
        r["heartbeats_sent"].as_u64().is_some_and(|n| n >= 60),
        "{r}"
    );
    assert_eq!(r["errors"], 0);
    assert!(r["connect_per_s"].as_f64().is_some_and(|v| v > 0.0));
    assert!(r["rss_bytes_per_connection"].is_number());
}

#[test]
fn fanout_delivers_timed_deltas_to_every_supervisor() {
    let hub = hub_bin();
    let r = run(&[
        "fanout",
        "--agents",
        "10",
        "--supervisors",
        "5",
        "--changes-per-s",
        "100",
        "--duration-s",
        "1",
        "--spawn",
        "--hub-bin",
        hub.to_str().expect("path"),
    ]);
    let sent = r["changes_sent"].as_u64().expect("changes_sent");
    assert!(sent > 0);
    // Every supervisor gets every change (plus the agents coming online).
    assert!(
        r["delivered"].as_u64().expect("delivered") >= 5 * sent,
        "{r}"
    );
    assert_eq!(r["errors"], 0);
    let latency = &r["latency_ms"];
    for k in ["p50", "p99", "p999", "max"] {
        assert!(latency[k].is_number(), "{k} in {latency}");
    }
    assert!(latency["samples"].as_u64().is_some_and(|n| n > 0));
    assert!(r["coalesced"].is_number() && r["delivered_per_s"].is_number());
}

#[test]
fn fanout_across_nodes_over_redis_tls() {
    let hub = hub_bin();
    let r = run(&[
        "fanout",
        "--agents",
        "10",
        "--supervisors",
        "4",
        "--changes-per-s",
        "100",
        "--duration-s",
        "1",
        "--nodes",
        "2",
        "--redis-tls",
        "--spawn",
        "--hub-bin",
        hub.to_str().expect("path"),
    ]);
    let sent = r["changes_sent"].as_u64().expect("changes_sent");
    assert!(sent > 0);
    // Half the supervisors are on the other node: every change crossed
    // the TLS Redis to reach them.
    assert!(
        r["delivered"].as_u64().expect("delivered") >= 4 * sent,
        "{r}"
    );
    assert_eq!(r["errors"], 0);
    // What each change cost Redis: at least its commit script, and bytes.
    let cost = &r["redis_per_change"];
    assert!(
        cost["commands"]["evalsha"]
            .as_f64()
            .is_some_and(|n| n >= 1.0),
        "{cost}"
    );
    assert!(cost["bytes_in"].as_f64().is_some_and(|b| b > 0.0), "{cost}");
}

#[test]
fn ceiling_broadcasts_to_every_client() {
    let r = run(&[
        "ceiling",
        "--supervisors",
        "5",
        "--frames-per-s",
        "200",
        "--duration-s",
        "1",
    ]);
    let sent = r["frames_sent"].as_u64().expect("frames_sent");
    assert!(sent > 0);
    assert_eq!(r["delivered"].as_u64(), Some(5 * sent), "{r}");
    assert!(r["latency_ms"]["p99"].is_number());
}

#[test]
fn fanout_on_threads_of_its_own_with_a_hub_of_one_thread() {
    let hub = hub_bin();
    let r = run(&[
        "fanout",
        "--agents",
        "4",
        "--supervisors",
        "3",
        "--changes-per-s",
        "100",
        "--duration-s",
        "1",
        "--client-threads",
        "1",
        "--hub-threads",
        "1",
        "--spawn",
        "--hub-bin",
        hub.to_str().expect("path"),
    ]);
    let sent = r["changes_sent"].as_u64().expect("changes_sent");
    assert!(sent > 0 && r["delivered"].as_u64() >= Some(3 * sent), "{r}");
    assert_eq!(r["errors"], 0);
}

#[test]
fn relay_broadcasts_every_agents_change_to_every_supervisor() {
    for transport in ["hub", "tungstenite"] {
        relay_on(transport);
    }
}

fn relay_on(transport: &str) {
    let r = run(&[
        "relay",
        "--transport",
        transport,
        "--agents",
        "3",
        "--supervisors",
        "5",
        "--changes-per-s",
        "200",
        "--duration-s",
        "1",
    ]);
    let sent = r["changes_sent"].as_u64().expect("changes_sent");
    assert!(sent > 0);
    assert_eq!(r["delivered"].as_u64(), Some(5 * sent), "{r}");
    assert_eq!(r["errors"], 0);
    // Every agent's first change and every other one after it is a pause,
    // which carries its send time: half the changes, and one more per agent
    // at most.
    let samples = r["latency_ms"]["samples"].as_u64().expect("samples");
    assert!(
        (5 * sent / 2..=5 * (sent / 2 + 3)).contains(&samples),
        "{r}"
    );
}

#[test]
fn failover_measures_a_killed_nodes_agents_going_offline() {
    let hub = hub_bin();
    let r = run(&[
        "failover",
        "--nodes",
        "2",
        "--agents",
        "6",
        "--node-ttl-ms",
        "1000",
        "--spawn",
        "--hub-bin",
        hub.to_str().expect("path"),
    ]);
    assert_eq!(r["agents_on_killed_node"], 6, "{r}");
    let ms = r["offline_after_ms"].as_f64().expect("offline_after_ms");
    assert!(ms > 0.0, "{r}");
    assert_eq!(r["per_surviving_node_ms"].as_array().map(Vec::len), Some(1));
}

#[test]
fn commands_time_monitor_round_trips_across_nodes() {
    let hub = hub_bin();
    let r = run(&[
        "commands",
        "--nodes",
        "2",
        "--agents",
        "4",
        "--supervisors",
        "2",
        "--rounds",
        "2",
        "--spawn",
        "--hub-bin",
        hub.to_str().expect("path"),
    ]);
    assert_eq!(r["cross_node"], true, "{r}");
    assert_eq!(r["errors"], 0, "{r}");
    assert_eq!(r["latency_ms"]["samples"], 8, "every monitor answered: {r}");
    assert_eq!(r["stop_monitor_latency_ms"]["samples"], 8);
}

#[test]
fn storm_reconnects_everyone_and_counts_flaps() {
    let hub = hub_bin();
    let r = run(&[
        "storm",
        "--agents",
        "40",
        // A grace that a debug build on a busy machine reconnects 40
        // agents well within: then no offline flap at all.
        "--reconnect-grace-ms",
        "2000",
        "--spawn",
        "--hub-bin",
        hub.to_str().expect("path"),
    ]);
    assert_eq!(r["reconnected"], 40, "{r}");
    assert!(r["reconnect_s"].as_f64().is_some_and(|s| s > 0.0));
    assert_eq!(r["offline_flaps_seen"], 0, "no agent flapped offline: {r}");
}

#[test]
fn idle_with_workers_holds_every_agent_and_times_the_watchers_deltas() {
    let hub = hub_bin();
    let r = run(&[
        "idle",
        "--agents",
        "60",
        "--workers",
        "2",
        "--changes-per-s",
        "50",
        "--hold-s",
        "2",
        "--heartbeat-ms",
        "200",
        "--nodes",
        "2",
        "--spawn",
        "--hub-bin",
        hub.to_str().expect("path"),
    ]);
    // 54 held by the two workers, 6 changing status in the tool itself
    // (they disconnect when done).
    assert_eq!(r["connections"], 54, "{r}");
    assert_eq!(r["drivers"], 6, "{r}");
    assert_eq!(r["hub_connections"], 54.0, "{r}");
    assert_eq!(r["errors"], 0, "{r}");
    assert!(
        r["heartbeats_sent"].as_u64().is_some_and(|n| n >= 54),
        "the workers beat: {r}"
    );
    let watch = &r["watch"];
    assert!(watch["changes_sent"].as_u64().is_some_and(|n| n > 0), "{r}");
    assert!(
        watch["latency_ms"]["samples"]
            .as_u64()
            .is_some_and(|n| n > 0),
        "the watcher timed the changes made on the other node: {r}"
    );
}

#[test]
fn storm_with_workers_reconnects_everyone() {
    let hub = hub_bin();
    let r = run(&[
        "storm",
        "--agents",
        "40",
        "--workers",
        "2",
        // A grace that a debug build on a busy machine reconnects 40
        // agents well within: then no offline flap at all.
        "--reconnect-grace-ms",
        "2000",
        "--spawn",
        "--hub-bin",
        hub.to_str().expect("path"),
    ]);
    assert_eq!(r["reconnected"], 40, "{r}");
    assert!(r["reconnect_s"].as_f64().is_some_and(|s| s > 0.0));
    assert_eq!(r["offline_flaps_seen"], 0, "no agent flapped offline: {r}");
}

#[test]
fn resume_sends_only_the_changed_records_and_every_id() {
    let hub = hub_bin();
    let r = run(&[
        "resume",
        "--agents",
        "300",
        "--changed",
        "7",
        "--spawn",
        "--hub-bin",
        hub.to_str().expect("path"),
    ]);
    assert_eq!(r["resumed_records"], 7, "{r}");
    assert_eq!(r["resumed_agent_ids"], 300, "{r}");
    let full = r["full_snapshot_bytes"].as_u64().expect("bytes");
    let resumed = r["resumed_snapshot_bytes"].as_u64().expect("bytes");
    assert!(resumed * 5 < full, "a resume is much smaller: {r}");
}

#[test]
fn redis_cost_counts_commands_and_bytes_per_change_and_heartbeat() {
    let hub = hub_bin();
    let r = run(&[
        "redis-cost",
        "--nodes",
        "2",
        "--agents",
        "4",
        "--changes",
        "20",
        "--heartbeats",
        "20",
        "--quiet-ms",
        "200",
        "--spawn",
        "--hub-bin",
        hub.to_str().expect("path"),
    ]);
    assert_eq!(r["errors"], 0, "every change and heartbeat answered: {r}");
    // A change is at least its commit script's round trip, and bytes.
    let change = &r["per_change"];
    assert!(
        change["commands"]["evalsha"]
            .as_f64()
            .is_some_and(|n| n >= 1.0),
        "{change}"
    );
    assert!(change["bytes_in"].as_f64().is_some_and(|b| b > 0.0), "{r}");
    for side in ["per_change", "per_heartbeat"] {
        for k in ["calls", "bytes_in", "bytes_out"] {
            assert!(r[side][k].is_number(), "{side}.{k}: {r}");
            assert!(r[side]["net"][k].is_number(), "{side}.net.{k}: {r}");
        }
    }
    assert!(r["background_per_s"]["calls"].is_number(), "{r}");
}

/// One `tenants` run over 3 nodes: 6 tenants of 3 agents and a supervisor.
fn tenants_run(placement: &str, workers: &str) -> (Value, String) {
    let hub = hub_bin();
    run_printing(&[
        "tenants",
        "--nodes",
        "3",
        "--tenants",
        "6",
        "--agents-per-tenant",
        "3",
        "--placement",
        placement,
        "--changes-per-s",
        "30",
        "--hold-s",
        "2",
        "--heartbeat-ms",
        "500",
        "--workers",
        workers,
        "--spawn",
        "--hub-bin",
        hub.to_str().expect("path"),
    ])
}

#[test]
fn tenants_a_node_follows_only_the_tenants_placed_on_it() {
    // Affine: tenant t on node t mod 3, two tenants per node; each node
    // attaches and subscribes to its two only, and receives their deltas.
    let (r, stdout) = tenants_run("affine", "0");
    assert_eq!(r["errors"], 0, "{r}");
    assert_eq!(r["connections"], 6 * 3 + 6, "{r}");
    assert!(r["changes_sent"].as_u64().is_some_and(|n| n > 0), "{r}");
    assert!(r["deltas"].as_u64().is_some_and(|n| n > 0), "{r}");
    assert_eq!(r["subscriptions_match_placement"], true, "{r}");
    assert_eq!(r["tenants_placed_total"], 6, "{r}");
    let nodes = r["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 3, "{r}");
    let mut received = 0;
    for n in nodes {
        assert_eq!(n["tenants_placed"], 2, "{n}");
        assert_eq!(
            n["tenants_attached"], 2,
            "a node attaches only the tenants placed on it: {n}"
        );
        assert!(n["bytes_from_redis"].as_u64().is_some_and(|b| b > 0), "{n}");
        assert!(n["rss_bytes"].as_u64().is_some_and(|b| b > 0), "{n}");
        received += n["deltas_received"].as_u64().expect("deltas_received");
        let row = format!("| {} | 2 | 2 |", n["node"]);
        assert!(stdout.contains(&row), "no row {row:?} in\n{stdout}");
    }
    // Every delta reached the one node its tenant is on.
    assert_eq!(Some(received), r["deltas"].as_u64(), "{r}");
    assert_eq!(r["pubsub_deliveries"], r["deltas"], "{r}");
    assert!(r["watch"]["deltas"].as_u64().is_some_and(|n| n > 0), "{r}");
    assert!(r["redis_per_s"]["calls"].as_f64().is_some_and(|c| c > 0.0));

    // Spread (agents held by two workers): each tenant's agents on every
    // node, so every node follows all six, and every delta goes to three.
    let (r, stdout) = tenants_run("spread", "2");
    assert_eq!(r["errors"], 0, "{r}");
    assert_eq!(r["connections"], 6 * 3 + 6, "{r}");
    assert_eq!(r["subscriptions_match_placement"], true, "{r}");
    for n in r["nodes"].as_array().expect("nodes") {
        assert_eq!(n["tenants_placed"], 6, "{n}");
        assert_eq!(n["tenants_attached"], 6, "{n}");
        assert_eq!(n["deltas_received"], r["deltas"], "{n}");
        let row = format!("| {} | 6 | 6 |", n["node"]);
        assert!(stdout.contains(&row), "no row {row:?} in\n{stdout}");
    }
    assert_eq!(
        r["pubsub_deliveries"].as_u64(),
        r["deltas"].as_u64().map(|d| 3 * d),
        "{r}"
    );
}

#[test]
fn standard_runs_every_scenario_and_prints_every_row() {
    let hub = hub_bin();
    let json = std::env::temp_dir().join(format!(
        "presence-loadtest-smoke-standard-{}.json",
        std::process::id()
    ));
    let out = Command::new(env!("CARGO_BIN_EXE_presence-loadtest"))
        .args(["standard", "--spawn", "--quick"])
        .args([
            "--idle-agents",
            "20",
            "--storm-agents",
            "20",
            "--redis-k",
            "20",
        ])
        .arg("--hub-bin")
        .arg(&hub)
        .arg("--json")
        .arg(&json)
        .output()
        .expect("run presence-loadtest");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Without --strict a missed goal is reported, not an error.
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json report")).expect("JSON");
    let _ = std::fs::remove_file(&json);
    assert_eq!(report["scenario"], "standard");
    let rows = report["rows"].as_array().expect("rows");
    assert!(rows.len() >= 10, "{report}");
    for row in rows {
        let figure = row["figure"].as_str().expect("figure");
        // Printed, with its goal and verdict; and every run worked (a
        // figure was measured), whatever it was.
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("| {figure} |")))
            .unwrap_or_else(|| panic!("no row {figure:?} in\n{stdout}"));
        assert!(line.ends_with("| met |") || line.ends_with("| **NOT met** |"));
        assert!(row["goal"].is_string() && row["met"].is_boolean(), "{row}");
        assert!(row["measured"].is_number(), "{row}\n{stderr}");
    }
    for run in [
        "idle",
        "ceiling",
        "fanout",
        "commands",
        "redis_cost",
        "storm",
    ] {
        assert!(
            report["runs"][run]["results"].is_object(),
            "{run}: {report}"
        );
    }
    // Freshness at two loads, each with both yardsticks.
    let freshness = report["runs"]["freshness"].as_array().expect("freshness");
    assert_eq!(freshness.len(), 2, "{report}");
    for load in freshness {
        for run in ["ceiling", "relay", "fanout"] {
            assert!(load[run]["results"].is_object(), "{run}: {load}");
        }
    }
    assert!(stdout.contains("| command | per change |"), "{stdout}");
}
