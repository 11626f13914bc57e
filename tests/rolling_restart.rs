//! A rolling restart of a 3-node cluster under load (DESIGN.md §6): each node in
//! turn gets SIGTERM, tells its clients `draining` and closes them with
//! 1012; they reconnect to another node within the grace; a new process
//! takes the old one's place. Every agent follows a drain; no agent shows an
//! offline flap; no state is lost (a supervisor's pause survives, and each
//! agent ends in the status the hub last confirmed to it); every request
//! gets exactly one reply; and changes keep flowing throughout.

mod common;

use common::process::{start_cluster_node, Proc};
use common::redis::RedisServer;
use common::*;
use parking_lot::Mutex;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

async fn start_node(redis: &str, id: &str) -> Proc {
    start_cluster_node(redis, id, "127.0.0.1:0").await
}

/// Connects an agent device to the first live node that takes it.
async fn connect(live: &Mutex<Vec<String>>, user: &str, avoid: Option<&str>) -> (Client, String) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let candidates: Vec<String> = live
            .lock()
            .iter()
            .filter(|u| Some(u.as_str()) != avoid)
            .cloned()
            .collect();
        for url in candidates {
            let Ok(Ok((ws, _))) = tokio::time::timeout(
                Duration::from_secs(1),
                tokio_tungstenite::connect_async(&url),
            )
            .await
            else {
                continue;
            };
            let mut c = Client::from_stream(ws);
            c.send(json!({"type": "hello", "token": token("acme", user), "role": "agent", "device": {"id": format!("{user}-phone")}}))
                .await;
            if let Ok(Some(v)) = c.try_recv(Duration::from_secs(2)).await {
                if v["type"] == "welcome" {
                    return (c, url);
                }
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{user} found no node to reconnect to"
        );
        tokio::task::yield_now().await;
    }
}

/// What one agent app saw over the run.
struct AppEnd {
    user: &'static str,
    /// Drains it followed (reconnects to another node).
    reconnects: u32,
    /// The status of its last `set_status` the hub confirmed.
    confirmed: Option<&'static str>,
    /// A `set_status` sent after that whose connection closed before its
    /// reply: applied or not, the hub cannot have told (a drain closes the
    /// socket), so the final status may be this one too.
    unconfirmed: Option<&'static str>,
}

/// An agent app: changes its status (or just beats) in a loop, and follows
/// `draining` to another node. Every request gets exactly one reply on the
/// connection it was sent on, within the deadline, unless that connection
/// closes first: a missing reply, a second one or one for an older request
/// fails the test.
async fn agent_app(
    user: &'static str,
    live: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    toggle: bool,
    changes: Arc<AtomicU64>,
    // A slow client (a phone waking up) comes back this much later than
    // told, still well within the reconnect grace.
    slow: Duration,
) -> AppEnd {
    let (mut c, mut url) = connect(&live, user, None).await;
    let mut end = AppEnd {
        user,
        reconnects: 0,
        confirmed: None,
        unconfirmed: None,
    };
    let mut reconnect_after = Duration::ZERO;
    let mut n = 0u64;
    // Ids sent on the current connection and already answered.
    let mut answered: Vec<String> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let id = format!("{user}-{n}");
        let status = match (toggle, n % 2) {
            (false, _) => None,
            (true, 0) => Some("available"),
            (true, _) => Some("paused"),
        };
        let body = match status {
            None => json!({"type": "heartbeat", "id": id}),
            Some("paused") => {
                json!({"type": "set_status", "id": id, "status": "paused", "reason": demo_reason(n)})
            }
            Some(s) => json!({"type": "set_status", "id": id, "status": s}),
        };
        c.send(body).await;
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match c.try_recv(left).await {
                Ok(Some(v)) if v["type"] == "reply" && v["id"] == id.as_str() => {
                    if v["ok"] == true && toggle {
                        changes.fetch_add(1, Ordering::Relaxed);
                        end.confirmed = status;
                        end.unconfirmed = None;
                    }
                    answered.push(id.clone());
                    break;
                }
                Ok(Some(v)) if v["type"] == "reply" => {
                    let seen = answered.iter().any(|a| v["id"] == a.as_str());
                    panic!(
                        "{user}: a reply to {} while waiting for {id} ({}): {v}",
                        v["id"],
                        if seen {
                            "a second reply"
                        } else {
                            "not a request of this connection"
                        }
                    );
                }
                Ok(Some(v)) if v["type"] == "draining" => {
                    // As a real client does: wait as told, then reconnect elsewhere.
                    reconnect_after =
                        Duration::from_millis(v["reconnect_after_ms"].as_u64().unwrap_or(0));
                }
                Ok(Some(_)) => continue, // state
                Ok(None) => panic!("{user}: no reply to {id} within {DEADLINE:?}"),
                Err(_) => {
                    // Closed before the reply: the outcome is unknown.
                    if status.is_some() {
                        end.unconfirmed = status;
                    }
                    tokio::time::sleep(std::mem::take(&mut reconnect_after) + slow).await;
                    let (next, next_url) = connect(&live, user, Some(&url)).await;
                    c = next;
                    url = next_url;
                    answered.clear();
                    end.reconnects += 1;
                    break;
                }
            }
        }
        // A well-behaved client: a few changes per second.
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    end
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_under_load_shows_no_flap_and_loses_nothing() {
    let redis = RedisServer::start();
    let mut nodes = Vec::new();
    for i in 0..3 {
        nodes.push(start_node(&redis.url(), &format!("n{i}")).await);
    }
    let live = Arc::new(Mutex::new(
        nodes.iter().map(Proc::ws_url).collect::<Vec<_>>(),
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let changes = Arc::new(AtomicU64::new(0));
    let apps: Vec<_> = [("a1", true, 0), ("a2", true, 0), ("a3", false, 1200)]
        .into_iter()
        .map(|(user, toggle, slow)| {
            let slow = Duration::from_millis(slow);
            tokio::spawn(agent_app(
                user,
                live.clone(),
                stop.clone(),
                toggle,
                changes.clone(),
                slow,
            ))
        })
        .collect();
    // a3 is paused by a supervisor before the restart: that must survive it.
    let (mut sup, _) = connect_staff(&live).await;
    let snapshot = sup.subscribe(json!({"all": true})).await;
    for id in ["a1", "a2", "a3"] {
        if in_snapshot(&snapshot, id).is_none_or(|a| a["presence"] != "online") {
            sup.agent_update(id, |a| a["presence"] == "online").await;
        }
    }
    sup.ok(json!({"type": "command", "action": "pause", "agent_id": "a3", "reason": "coaching"}))
        .await;
    drop(sup);

    for (i, node) in nodes.iter_mut().enumerate() {
        let before = changes.load(Ordering::Relaxed);
        let old_url = node.ws_url();
        live.lock().retain(|u| *u != old_url);
        let pid = node.child.id().expect("pid").to_string();
        let term = tokio::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await
            .expect("kill");
        assert!(term.success());
        let exited = tokio::time::timeout(Duration::from_secs(10), node.child.wait())
            .await
            .expect("drained in time")
            .expect("wait");
        assert!(exited.success(), "node n{i} exited with {exited:?}");
        *node = start_node(&redis.url(), &format!("n{i}-new")).await;
        live.lock().push(node.ws_url());
        // Changes kept flowing while this node was replaced.
        let deadline = tokio::time::Instant::now() + DEADLINE;
        while changes.load(Ordering::Relaxed) < before + 4 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "changes stalled during the restart of n{i}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut ends = Vec::new();
    for app in apps {
        ends.push(app.await.expect("agent app"));
    }
    for end in &ends {
        assert!(
            end.reconnects >= 1,
            "{} followed no drain: each node was restarted once, so every agent \
             was on a draining node at least once",
            end.user
        );
    }

    let (mut sup, _) = connect_staff(&live).await;
    let snapshot = sup.subscribe(json!({"all": true})).await;
    for id in ["a1", "a2", "a3"] {
        let r = in_snapshot(&snapshot, id).expect("agent");
        assert_eq!(r["presence"], "online", "{id}: {r}");
        // No offline flap at any point: the history never shows it offline
        // after it first came online.
        let history = sup
            .ok(json!({"type": "history", "agent_id": id, "limit": 1000}))
            .await;
        let changes: &Vec<Value> = history["changes"].as_array().expect("changes");
        let first_online = changes
            .iter()
            .position(|c| c["presence"] == "online")
            .expect("came online");
        let flaps: Vec<&Value> = changes[first_online..]
            .iter()
            .filter(|c| c["presence"] == "offline")
            .collect();
        assert!(flaps.is_empty(), "{id} flapped offline: {flaps:?}");
    }
    // Nothing lost: a3 keeps the supervisor's pause through three restarts,
    // and a1 and a2 end in the last status the hub confirmed to them (or
    // the one sent after it whose reply a drain cut off).
    let a3 = in_snapshot(&snapshot, "a3").expect("a3");
    assert_eq!(
        (a3["status"].as_str(), a3["pause_reason"].as_str()),
        (Some("paused"), Some("coaching")),
        "state survived"
    );
    for end in ends.iter().filter(|e| e.user != "a3") {
        let r = in_snapshot(&snapshot, end.user).expect("agent");
        let confirmed = end.confirmed.expect("some change was confirmed");
        let status = r["status"].as_str().expect("status");
        assert!(
            status == confirmed || Some(status) == end.unconfirmed,
            "{}: ends {status}, the hub last confirmed {confirmed} (unconfirmed after it: {:?}): {r}",
            end.user,
            end.unconfirmed
        );
    }
}

async fn connect_staff(live: &Mutex<Vec<String>>) -> (Client, String) {
    let url = live.lock().first().cloned().expect("a live node");
    let mut c = Client::connect(&url).await;
    c.send(json!({"type": "hello", "token": token("acme", "s1"), "role": "supervisor"}))
        .await;
    c.recv_type("welcome").await;
    (c, url)
}
