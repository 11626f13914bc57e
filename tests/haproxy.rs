//! presence-hub behind a real HAProxy running `deploy/haproxy.cfg` as
//! shipped (ports substituted through its environment variables):
//!
//! - a rolling restart of three nodes under load, every client connected
//!   only through the balancer: each node in turn gets SIGTERM, HAProxy's
//!   `/readyz` check takes it out of the pool, its clients get `draining`
//!   and 1012 and come back through HAProxy after `reconnect_after_ms`.
//!   No agent flaps offline on the wallboard, no pause is lost, every agent
//!   ends with exactly one active device, and no client is ever refused or
//!   welcomed by a draining node;
//! - the client address: `X-Forwarded-For` honoured from the balancer
//!   (`--trusted-proxies`), ignored from anyone else, and counted by
//!   `--max-connections-per-ip`.
//!
//! Needs Debian's `haproxy` (`.ci/run` installs it); without it the tests
//! are ignored on a developer machine (`build.rs`: `cargo test` counts and
//! names them) and fail in CI (`CI` set).

mod common;

use common::haproxy::{self, Haproxy};
use common::process::{eventually, start_cluster_node, Proc};
use common::redis::{free_port, RedisServer};
use common::*;
use parking_lot::Mutex;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::MaybeTlsStream;

const AGENTS: [&str; 8] = ["a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8"];
/// Agents that only beat (a8 is paused by a supervisor before the restarts).
const QUIET: [&str; 2] = ["a7", "a8"];

async fn start_node(redis: &str, id: &str, port: u16) -> Proc {
    start_cluster_node(redis, id, &format!("127.0.0.1:{port}")).await
}

/// What every client of the test reports back.
#[derive(Default)]
struct Watch {
    url: String,
    /// Node ids that were sent SIGTERM.
    draining: Mutex<HashSet<String>>,
    /// Handshakes through HAProxy that did not end in `welcome`.
    failed: Mutex<Vec<String>>,
    /// Welcomes from a node after its SIGTERM.
    welcomed_by_draining: Mutex<Vec<String>>,
    /// Close codes other than 1012 (drain) seen by clients.
    odd_closes: Mutex<Vec<String>>,
    /// Agents the wallboard has seen online.
    online: Mutex<HashSet<String>>,
    /// Offline records of agents the wallboard had seen online.
    flaps: Mutex<Vec<String>>,
    changes: AtomicU64,
    stop: AtomicBool,
}

impl Watch {
    /// Connects through HAProxy and says `hello`; returns at `welcome`.
    async fn connect(&self, hello: Value) -> Client {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let attempt = tokio::time::timeout(
                Duration::from_secs(2),
                tokio_tungstenite::connect_async(&self.url),
            )
            .await;
            let failure = match attempt {
                Ok(Ok((ws, _))) => {
                    let mut c = Client::from_stream(ws);
                    c.send(hello.clone()).await;
                    match c.try_recv(Duration::from_secs(2)).await {
                        Ok(Some(v)) if v["type"] == "welcome" => {
                            let node = v["node_id"].as_str().unwrap_or("").to_string();
                            if self.draining.lock().contains(&node) {
                                self.welcomed_by_draining.lock().push(node);
                            }
                            return c;
                        }
                        other => format!("no welcome: {other:?}"),
                    }
                }
                Ok(Err(e)) => format!("handshake: {e}"),
                Err(_) => "handshake timed out".to_string(),
            };
            self.failed.lock().push(failure);
            assert!(
                tokio::time::Instant::now() < deadline,
                "no connection through HAProxy: {:?}",
                self.failed.lock()
            );
        }
    }

    fn closed(&self, who: &str, closed: &Closed) {
        if closed.code != 1012 {
            self.odd_closes.lock().push(format!("{who}: {closed:?}"));
        }
    }
}

fn agent_hello(user: &str) -> Value {
    json!({"type": "hello", "token": token("acme", user), "role": "agent",
           "device": {"id": format!("{user}-phone"), "kind": "softphone"}})
}

fn staff_hello() -> Value {
    json!({"type": "hello", "token": token("acme", "s1"), "role": "supervisor"})
}

/// An agent app: toggles its status (or only beats) until told to stop,
/// follows `draining` back through HAProxy after `reconnect_after_ms`, and
/// ends with one confirmed change. Returns its reconnections and the last
/// status the hub confirmed.
async fn agent_app(w: Arc<Watch>, user: &'static str) -> (u32, Value) {
    let toggle = !QUIET.contains(&user);
    let mut c = w.connect(agent_hello(user)).await;
    let (mut reconnects, mut n) = (0, 0u64);
    let mut reconnect_after = Duration::ZERO;
    while !w.stop.load(Ordering::Relaxed) {
        n += 1;
        let id = format!("{user}-{n}");
        c.send(match (toggle, n % 2) {
            (false, _) => json!({"type": "heartbeat", "id": id}),
            (true, 0) => json!({"type": "set_status", "id": id, "status": "available"}),
            (true, _) => json!({"type": "set_status", "id": id, "status": "paused", "reason": demo_reason(n)}),
        })
        .await;
        loop {
            match c.try_recv(Duration::from_millis(500)).await {
                Ok(Some(v)) if v["type"] == "reply" && v["id"] == id.as_str() => {
                    if v["ok"] == true && toggle {
                        w.changes.fetch_add(1, Ordering::Relaxed);
                    }
                    break;
                }
                Ok(Some(v)) if v["type"] == "draining" => {
                    reconnect_after =
                        Duration::from_millis(v["reconnect_after_ms"].as_u64().unwrap_or(0));
                }
                Ok(Some(_)) => continue,
                Ok(None) => break,
                Err(closed) => {
                    w.closed(user, &closed);
                    // As a real client does: wait as told, then come back
                    // through the balancer.
                    tokio::time::sleep(std::mem::take(&mut reconnect_after)).await;
                    c = w.connect(agent_hello(user)).await;
                    reconnects += 1;
                    break;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    // One last change, confirmed: the final state must be exactly this.
    let last = if toggle {
        json!({"type": "set_status", "status": "paused", "reason": "meeting"})
    } else {
        json!({"type": "heartbeat"})
    };
    if toggle {
        // From either status (a pause over a pause is refused).
        c.request(json!({"type": "set_status", "status": "available"}))
            .await;
    }
    c.ok(last.clone()).await;
    (reconnects, last)
}

/// A wallboard through HAProxy: subscribed to everything, it notes every
/// agent it sees online and any offline record after that; it follows
/// `draining` and resubscribes. Returns how many times it resubscribed.
async fn wallboard(w: Arc<Watch>) -> u32 {
    let mut resubscribes = 0;
    let see = |agent: &Value| {
        let id = agent["id"].as_str().unwrap_or("").to_string();
        match agent["presence"].as_str() {
            Some("online") => {
                w.online.lock().insert(id);
            }
            Some("offline") if w.online.lock().contains(&id) => {
                w.flaps.lock().push(agent.to_string());
            }
            _ => {}
        }
    };
    loop {
        let mut c = w.connect(staff_hello()).await;
        c.send(json!({"type": "subscribe", "id": "sub", "scope": {"all": true}}))
            .await;
        let mut reconnect_after = Duration::ZERO;
        loop {
            if w.stop.load(Ordering::Relaxed) {
                return resubscribes;
            }
            match c.try_recv(Duration::from_millis(200)).await {
                Ok(Some(v)) if v["type"] == "snapshot" => {
                    v["agents"].as_array().into_iter().flatten().for_each(see)
                }
                Ok(Some(v)) if v["type"] == "agent" => see(&v["agent"]),
                Ok(Some(v)) if v["type"] == "draining" => {
                    reconnect_after =
                        Duration::from_millis(v["reconnect_after_ms"].as_u64().unwrap_or(0));
                }
                Ok(_) => {}
                Err(closed) => {
                    w.closed("wallboard", &closed);
                    tokio::time::sleep(reconnect_after).await;
                    resubscribes += 1;
                    break;
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(ph_no_haproxy, ignore = "needs haproxy (apt-get install haproxy)")]
async fn a_rolling_restart_behind_haproxy_shows_no_flap_and_no_client_meets_a_draining_node() {
    if !haproxy::available() {
        missing(
            "haproxy rolling restart",
            "needs haproxy (apt-get install haproxy)",
        );
    }
    let redis = RedisServer::start();
    let ports = [free_port(), free_port(), free_port()];
    let mut nodes = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        nodes.push(start_node(&redis.url(), &format!("n{i}"), *port).await);
    }
    let addrs: Vec<String> = nodes.iter().map(|n| n.addr.clone()).collect();
    let mut lb = Haproxy::start([&addrs[0], &addrs[1], &addrs[2]]).await;
    for server in ["hub1", "hub2", "hub3"] {
        lb.wait_state(server, "UP").await;
    }
    let w = Arc::new(Watch {
        url: lb.ws_url(),
        ..Watch::default()
    });
    let board = tokio::spawn(wallboard(w.clone()));
    let apps: Vec<_> = AGENTS
        .into_iter()
        .map(|user| tokio::spawn(agent_app(w.clone(), user)))
        .collect();
    eventually(
        "the wallboard sees every agent online",
        DEADLINE,
        Duration::from_millis(20),
        || async { AGENTS.iter().all(|a| w.online.lock().contains(*a)) },
    )
    .await;
    // A supervisor's pause before the restarts must survive them.
    let mut sup = w.connect(staff_hello()).await;
    sup.ok(json!({"type": "command", "action": "pause", "agent_id": "a8", "reason": "coaching"}))
        .await;
    drop(sup);

    for (i, node) in nodes.iter_mut().enumerate() {
        let server = format!("hub{}", i + 1);
        let before = w.changes.load(Ordering::Relaxed);
        let pid = node.child.id().expect("pid").to_string();
        let term = tokio::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await
            .expect("kill");
        assert!(term.success());
        w.draining.lock().insert(format!("n{i}"));
        // The failed /readyz check takes it out of the pool while it drains.
        lb.wait_state(&server, "DOWN").await;
        let exited = tokio::time::timeout(Duration::from_secs(10), node.child.wait())
            .await
            .expect("drained in time")
            .expect("wait");
        assert!(exited.success(), "node n{i} exited with {exited:?}");
        // The replacement takes the same address; HAProxy lets it back in
        // after two good checks.
        *node = start_node(&redis.url(), &format!("n{i}-new"), ports[i]).await;
        lb.wait_state(&server, "UP").await;
        eventually(
            &format!("changes flow again after the restart of n{i}"),
            DEADLINE,
            Duration::from_millis(20),
            || async { w.changes.load(Ordering::Relaxed) >= before + 8 },
        )
        .await;
    }
    w.stop.store(true, Ordering::Relaxed);
    let mut last = Vec::new();
    for (user, app) in AGENTS.iter().zip(apps) {
        let (reconnects, final_change) = app.await.expect("agent app");
        assert!(reconnects >= 1, "{user} followed at least one drain");
        last.push(final_change);
    }
    let resubscribes = board.await.expect("wallboard");
    assert!(resubscribes >= 1, "the wallboard followed a drain");

    assert!(
        w.failed.lock().is_empty(),
        "refused through HAProxy: {:?}",
        w.failed.lock()
    );
    assert!(
        w.welcomed_by_draining.lock().is_empty(),
        "welcomed by a draining node: {:?}",
        w.welcomed_by_draining.lock()
    );
    assert!(
        w.odd_closes.lock().is_empty(),
        "closes other than 1012: {:?}",
        w.odd_closes.lock()
    );
    assert!(
        w.flaps.lock().is_empty(),
        "offline flaps on the wallboard: {:?}",
        w.flaps.lock()
    );

    let mut sup = w.connect(staff_hello()).await;
    let snapshot = sup.subscribe(json!({"all": true})).await;
    for (user, final_change) in AGENTS.iter().zip(&last) {
        let r = in_snapshot(&snapshot, user).expect("agent");
        assert_eq!(r["presence"], "online", "{user}: {r}");
        let active: Vec<&Value> = r["devices"]
            .as_array()
            .expect("devices")
            .iter()
            .filter(|d| d["active"] == true)
            .collect();
        assert_eq!(active.len(), 1, "{user} has exactly one active device: {r}");
        assert_eq!(active[0]["id"], format!("{user}-phone"));
        if let Some(reason) = final_change["reason"].as_str() {
            assert_eq!(
                (r["status"].as_str(), r["pause_reason"].as_str()),
                (Some("paused"), Some(reason)),
                "{user}'s last confirmed change"
            );
        }
        // Nor does the store's history ever show it offline once online.
        let history = sup
            .ok(json!({"type": "history", "agent_id": user, "limit": 1000}))
            .await;
        let changes = history["changes"].as_array().expect("changes");
        let first_online = changes
            .iter()
            .position(|c| c["presence"] == "online")
            .expect("came online");
        assert!(
            changes[first_online..]
                .iter()
                .all(|c| c["presence"] != "offline"),
            "{user} flapped offline in the history"
        );
    }
    let a8 = in_snapshot(&snapshot, "a8").expect("a8");
    assert_eq!(
        (a8["status"].as_str(), a8["pause_reason"].as_str()),
        (Some("paused"), Some("coaching")),
        "the supervisor's pause survived"
    );

    // HAProxy's own log: every WebSocket it passed on was upgraded (101);
    // none was answered by a node's refusal.
    let ws_lines: Vec<String> = lb
        .drain_logs()
        .into_iter()
        .filter(|l| l.contains("GET /v1/ws"))
        .collect();
    assert!(ws_lines.len() > AGENTS.len(), "{ws_lines:?}");
    for line in &ws_lines {
        assert_eq!(line.split_whitespace().nth(5), Some("101"), "{line}");
    }
}

/// A WebSocket handshake from the local address `from` (any 127.0.0.0/8
/// address is loopback on Linux) to `addr`, optionally with a
/// `X-Forwarded-For` of the client's own making: the client, or the HTTP
/// status of the refusal.
async fn connect_from(from: &str, addr: &str, forged: Option<&str>) -> Result<Client, u16> {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(format!("{from}:0").parse().expect("local addr"))
        .expect("bind");
    let stream = socket
        .connect(addr.parse().expect("addr"))
        .await
        .expect("tcp connect");
    let mut request = format!("ws://{addr}/v1/ws")
        .into_client_request()
        .expect("request");
    if let Some(xff) = forged {
        request
            .headers_mut()
            .insert("x-forwarded-for", xff.parse().expect("header"));
    }
    match tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(stream)).await {
        Ok((ws, _)) => Ok(Client::from_stream(ws)),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            Err(response.status().as_u16())
        }
        Err(e) => panic!("handshake from {from}: {e}"),
    }
}

/// Says hello as agent `user` and waits for the welcome.
async fn hello(c: &mut Client, user: &str) {
    c.send(agent_hello(user)).await;
    c.recv_type("welcome").await;
}

#[tokio::test]
#[cfg_attr(ph_no_haproxy, ignore = "needs haproxy (apt-get install haproxy)")]
async fn x_forwarded_for_is_believed_from_the_balancer_only_and_limits_each_client() {
    if !haproxy::available() {
        missing(
            "haproxy client address",
            "needs haproxy (apt-get install haproxy)",
        );
    }
    // HAProxy reaches the node from 127.0.0.1; clients come from 127.0.0.2–4.
    let mut node = Proc::start_logged(
        &[
            "--listen",
            "127.0.0.1:0",
            "--trusted-proxies",
            "127.0.0.1/32",
            "--max-connections-per-ip",
            "2",
            "--log-format",
            "json",
        ],
        &[("PRESENCE_HUB_JWT_SECRET", SECRET)],
    )
    .await;
    let addr = node.addr.clone();
    let lb = Haproxy::start([&addr, &addr, &addr]).await;

    // Two connections from 127.0.0.2 through HAProxy: the node knows them
    // as 127.0.0.2 (not as the balancer), and says so in its logs.
    let mut first = connect_from("127.0.0.2", &lb.addr, None)
        .await
        .expect("first");
    hello(&mut first, "a1").await;
    let line = node.log_line(&["session start", "\"a1\""]).await;
    assert!(line.contains(r#""client":"127.0.0.2""#), "{line}");
    let mut second = connect_from("127.0.0.2", &lb.addr, None)
        .await
        .expect("second");
    hello(&mut second, "a2").await;
    // A third from that address is refused at the handshake.
    assert_eq!(
        connect_from("127.0.0.2", &lb.addr, None).await.err(),
        Some(503),
        "the third connection from 127.0.0.2"
    );
    // Another client through the same balancer is not affected, and the
    // address it claims for itself is dropped by HAProxy (deploy/haproxy.cfg).
    let mut other = connect_from("127.0.0.3", &lb.addr, Some("127.0.0.2"))
        .await
        .expect("another client");
    hello(&mut other, "a3").await;
    let line = node.log_line(&["session start", "\"a3\""]).await;
    assert!(line.contains(r#""client":"127.0.0.3""#), "{line}");

    // Straight to the node, the header is the client's own claim: ignored.
    // (Believed, it would name the full 127.0.0.2 and be refused.)
    let mut direct = connect_from("127.0.0.4", &addr, Some("127.0.0.2"))
        .await
        .expect("a direct client is counted as itself");
    hello(&mut direct, "a4").await;
    let line = node.log_line(&["session start", "\"a4\""]).await;
    assert!(line.contains(r#""client":"127.0.0.4""#), "{line}");

    // A closed connection frees its slot.
    first.close().await;
    eventually(
        "127.0.0.2 may connect again",
        DEADLINE,
        Duration::from_millis(20),
        || async {
            match connect_from("127.0.0.2", &lb.addr, None).await {
                Ok(mut c) => {
                    hello(&mut c, "a1").await;
                    true
                }
                Err(_) => false,
            }
        },
    )
    .await;
    drop((second, other, direct));
}
