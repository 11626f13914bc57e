//! Hostile and broken clients against the real binary: peers that flood
//! pings and never read, half-sent HTTP requests and API bodies, slow
//! requests holding the handshakes' turns, too many devices, binary floods,
//! arrays for objects, non-ASCII limits, tokens from the future, forged log
//! lines, foreign origins. After each, a normal agent and supervisor still
//! work, nothing of theirs changed, and the node's memory stays bounded.

mod common;

use common::process::{eventually, http_get, Proc};
use common::raw;
use common::*;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

/// Memory a node may gain from one abusive client (the allocator keeps
/// some; an unbounded buffer would take far more).
const RSS_SLACK: u64 = 24 * 1024 * 1024;

fn directory() -> String {
    format!("{}/tests/common/directory.json", env!("CARGO_MANIFEST_DIR"))
}

async fn node(extra: &[&str]) -> Proc {
    node_logged(extra, false).await
}

async fn node_logged(extra: &[&str], logged: bool) -> Proc {
    let dir = directory();
    let mut args = vec!["--listen", "127.0.0.1:0", "--directory", &dir];
    args.extend_from_slice(extra);
    let envs = [("PRESENCE_HUB_JWT_SECRET", SECRET)];
    if logged {
        Proc::start_logged(&args, &envs).await
    } else {
        Proc::start(&args, &envs).await
    }
}

async fn agent(url: &str, user: &str, device: &str) -> Client {
    let mut c = Client::connect(url).await;
    c.send(
        json!({"type": "hello", "token": token("acme", user), "role": "agent",
                  "device": {"id": device, "kind": "softphone"}}),
    )
    .await;
    c.recv_type("welcome").await;
    c.recv_type("state").await;
    c
}

async fn staff(url: &str, user: &str, role: &str) -> Client {
    let mut c = Client::connect(url).await;
    c.send(json!({"type": "hello", "token": token("acme", user), "role": role}))
        .await;
    c.recv_type("welcome").await;
    c
}

/// A hello that must be refused: the close code and reason.
async fn refused_hello(url: &str, hello: Value) -> Closed {
    let mut c = Client::connect(url).await;
    c.send(hello).await;
    c.closed().await
}

/// After an abusive client: a fresh supervisor and agent still work end to
/// end, and the node's memory did not grow past the slack.
async fn still_serves(node: &Proc, baseline_rss: u64) {
    let url = node.ws_url();
    let mut sup = staff(&url, "s1", "supervisor").await;
    sup.subscribe(json!({"all": true})).await;
    let mut a = agent(&url, "a2", "check").await;
    a.ok(json!({"type": "set_status", "status": "paused", "reason": "check"}))
        .await;
    sup.agent_update("a2", |r| r["status"] == "paused").await;
    a.ok(json!({"type": "set_status", "status": "available"}))
        .await;
    sup.agent_update("a2", |r| r["status"] == "available").await;
    a.close().await;
    sup.agent_update("a2", |r| r["presence"] == "offline").await;
    let rss = node.rss_bytes();
    assert!(
        rss < baseline_rss + RSS_SLACK,
        "RSS grew from {} to {} KiB",
        baseline_rss / 1024,
        rss / 1024
    );
}

/// [`still_serves`], then three connections at once fit (on a node run
/// with `--max-connections 3`: no slot is still held by the abuser).
async fn serves_with_three_slots_free(node: &Proc, baseline_rss: u64) {
    still_serves(node, baseline_rss).await;
    let url = node.ws_url();
    let _a = agent(&url, "a1", "d1").await;
    let _b = agent(&url, "a1", "d2").await;
    let _c = staff(&url, "s1", "supervisor").await;
}

/// A node's RSS once it served a first client (allocator and runtime warm).
async fn warm_rss(node: &Proc) -> u64 {
    let a = agent(&node.ws_url(), "a2", "warm").await;
    a.close().await;
    node.rss_bytes()
}

// ---- 1. writes are bounded in bytes and time -----------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unread_pings_before_hello_neither_grow_memory_nor_hold_a_slot() {
    // Timers long enough that only the write bound can end the flood: the
    // auth timeout (a minute) is far beyond the deadline the test waits for
    // the drop (with it at 3 s, turning the write timeout off left this
    // test green: the auth timeout closed the socket first).
    let node = node(&[
        "--auth-timeout-ms",
        "60000",
        "--write-timeout-ms",
        "300",
        // Not the rate limit: the write bound alone must hold.
        "--rate-limit-per-sec",
        "10000000",
        "--max-connections",
        "3",
    ])
    .await;
    let baseline = warm_rss(&node).await;
    let mut s = raw::small_buffer(&node.addr).await;
    assert_eq!(raw::upgrade(&mut s, "").await, 101);
    let sent = raw::flood_pings(&mut s, 1_000_000, Duration::from_millis(800)).await;
    let grown = node.rss_bytes().saturating_sub(baseline);
    assert!(
        grown < RSS_SLACK,
        "{sent} unread pings grew RSS by {} KiB",
        grown / 1024
    );
    // Never read, never said hello: dropped, its slot freed.
    raw::until_dropped_unread(&mut s, DEADLINE).await;
    // All three slots are free again.
    serves_with_three_slots_free(&node, baseline).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_that_floods_pings_and_never_reads_goes_offline() {
    let node = node(&[
        "--write-timeout-ms",
        "300",
        // Long timers: only the write bound can end the flood.
        "--presence-ttl-ms",
        "30000",
        "--heartbeat-interval-ms",
        "10000",
        "--reconnect-grace-ms",
        "300",
        "--rate-limit-per-sec",
        "10000000",
    ])
    .await;
    let baseline = warm_rss(&node).await;
    let mut sup = staff(&node.ws_url(), "s1", "supervisor").await;
    sup.subscribe(json!({"all": true})).await;
    let mut s = raw::small_buffer(&node.addr).await;
    assert_eq!(raw::upgrade(&mut s, "").await, 101);
    let hello = json!({"type": "hello", "token": token("acme", "a1"), "role": "agent",
                       "device": {"id": "flood", "kind": "softphone"}});
    s.write_all(&raw::frame(raw::TEXT, hello.to_string().as_bytes()))
        .await
        .expect("hello");
    sup.agent_update("a1", |r| r["presence"] == "online").await;
    let sent = raw::flood_pings(&mut s, 1_000_000, Duration::from_millis(800)).await;
    // Then silent, socket kept open, never read: offline and closed.
    sup.agent_update("a1", |r| r["presence"] == "offline").await;
    let grown = node.rss_bytes().saturating_sub(baseline);
    assert!(grown < RSS_SLACK, "{sent} pings: +{} KiB", grown / 1024);
    raw::until_dropped_unread(&mut s, DEADLINE).await;
    still_serves(&node, baseline).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_that_stops_reading_goes_inactive_at_its_ttl_not_after_the_write_timeout() {
    // A write timeout and a grace far beyond the test: only the TTL can
    // take the device down within the deadline. The TTL holds for the
    // watching supervisor too, which answers the node's pings only while
    // the test reads it: 2 s leaves it room while the flood below runs on a
    // loaded machine (at 1 s, CI once saw the supervisor closed first).
    let node = node(&[
        "--write-timeout-ms",
        "60000",
        "--reconnect-grace-ms",
        "60000",
        "--presence-ttl-ms",
        "2000",
        "--heartbeat-interval-ms",
        "300",
        "--rate-limit-per-sec",
        "10000000",
    ])
    .await;
    let mut sup = staff(&node.ws_url(), "s1", "supervisor").await;
    sup.subscribe(json!({"all": true})).await;
    let mut s = raw::small_buffer(&node.addr).await;
    assert_eq!(raw::upgrade(&mut s, "").await, 101);
    let hello = json!({"type": "hello", "token": token("acme", "a1"), "role": "agent",
                       "device": {"id": "stuck", "kind": "softphone"}});
    s.write_all(&raw::frame(raw::TEXT, hello.to_string().as_bytes()))
        .await
        .expect("hello");
    sup.agent_update("a1", |r| r["presence"] == "online").await;
    // Pings until the hub's pongs stall in the full socket; never read.
    raw::flood_pings(&mut s, 1_000_000, Duration::from_millis(400)).await;
    sup.agent_update("a1", |r| r["presence"] == "offline").await;
    raw::until_dropped_unread(&mut s, DEADLINE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_that_stops_reading_is_closed_with_4008_when_its_outbox_overflows() {
    // A tiny outbox (`--max-outbox-frames`), no rate limit, and write,
    // auth and command timeouts far beyond the test: only the outbox bound
    // can end this connection.
    let node = node(&[
        "--max-outbox-frames",
        "2",
        "--rate-limit-per-sec",
        "10000000",
        "--write-timeout-ms",
        "60000",
        "--command-timeout-ms",
        "60000",
    ])
    .await;
    let url = node.ws_url();
    let baseline = warm_rss(&node).await;
    let mut s = raw::small_buffer(&node.addr).await;
    assert_eq!(raw::upgrade(&mut s, "").await, 101);
    let hello = json!({"type": "hello", "token": token("acme", "a1"), "role": "agent",
                       "device": {"id": "deaf", "kind": "softphone"}});
    s.write_all(&raw::frame(raw::TEXT, hello.to_string().as_bytes()))
        .await
        .expect("hello");
    // Requests whose replies it never reads, until the hub's writes to it
    // block (the socket buffers are full) and so the hub stops reading it:
    // a write of ours that makes no progress for a second says so.
    let asks: Vec<u8> = (0..100_000)
        .flat_map(|i| {
            let ask = if i % 2 == 0 {
                json!({"type": "set_status", "id": format!("r{i}"), "status": "paused", "reason": "deaf"})
            } else {
                json!({"type": "set_status", "id": format!("r{i}"), "status": "available"})
            };
            raw::frame(raw::TEXT, ask.to_string().as_bytes())
        })
        .collect();
    let mut blocked = false;
    for chunk in asks.chunks(64 * 1024) {
        if tokio::time::timeout(Duration::from_secs(1), s.write_all(chunk))
            .await
            .is_err()
        {
            blocked = true;
            break;
        }
    }
    assert!(blocked, "the hub kept reading a client that reads nothing");
    // Supervisors ask to monitor it: three command frames for an outbox
    // that holds two.
    let mut staff_clients = Vec::new();
    for (user, role) in [("s1", "supervisor"), ("a3", "supervisor"), ("ad1", "admin")] {
        let mut c = staff(&url, user, role).await;
        c.send(json!({"type": "command", "id": "m", "action": "monitor", "agent_id": "a1"}))
            .await;
        staff_clients.push(c);
    }
    // The overflow is counted as it happens.
    eventually(
        "the overflow counted",
        DEADLINE,
        Duration::from_millis(20),
        || async {
            let (_, metrics) = http_get(&node.addr, "/metrics").await;
            metrics
                .lines()
                .any(|l| l.starts_with("presence_hub_outbox_overflows_total") && l.ends_with(" 1"))
        },
    )
    .await;
    // Now it reads: what was written before, then the close.
    let ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
        tokio_tungstenite::MaybeTlsStream::Plain(s),
        tokio_tungstenite::tungstenite::protocol::Role::Client,
        None,
    )
    .await;
    let mut deaf = Client::from_stream(ws);
    let closed = deaf.closed().await;
    assert_eq!(closed.code, 4008, "{closed:?}");
    assert!(closed.reason.contains("outbox overflow"), "{closed:?}");
    drop(staff_clients);
    still_serves(&node, baseline).await;
}

// ---- 2. half-sent requests: a header deadline, counted -------------------

/// `n` connections that each send half a request's headers and stop.
async fn half_sent_requests(addr: &str, n: usize) -> Vec<tokio::net::TcpStream> {
    let mut half = Vec::new();
    for _ in 0..n {
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        s.write_all(b"GET /v1/ws HTTP/1.1\r\nHost: x\r\n")
            .await
            .expect("write");
        half.push(s);
    }
    half
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_requests_are_counted_and_closed_and_a_full_node_answers_fast() {
    let node = node(&[
        "--max-connections",
        "10",
        "--http-header-timeout-ms",
        "1500",
    ])
    .await;
    let baseline = warm_rss(&node).await;
    let mut half = half_sent_requests(&node.addr, 30).await;
    // Full: an upgrade is refused with 503, health still answers.
    match tokio_tungstenite::connect_async(node.ws_url()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 503),
        other => panic!("expected 503, got {:?}", other.map(|(_, r)| r.status())),
    }
    assert_eq!(node.status("/healthz").await, 200);
    // Far past the limit: a canned 503 at once, nothing read.
    let mut more = Vec::new();
    for _ in 0..80 {
        let s = tokio::net::TcpStream::connect(&node.addr)
            .await
            .expect("connect");
        more.push(s);
    }
    let mut answer = String::new();
    tokio::time::timeout(
        DEADLINE,
        more.last_mut().expect("one").read_to_string(&mut answer),
    )
    .await
    .expect("answered at once")
    .expect("read");
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    drop(more);
    // Every half-sent request is closed by the header deadline.
    for s in &mut half {
        raw::until_closed(s, DEADLINE).await;
    }
    still_serves(&node, baseline).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_body_sent_too_slowly_is_refused_and_changes_nothing() {
    let node = node(&["--http-header-timeout-ms", "1000"]).await;
    let auth = format!("Authorization: Bearer {}\r\n", token("acme", "ad1"));
    // The headers whole, then a third of the body, then nothing.
    let mut s = tokio::net::TcpStream::connect(&node.addr)
        .await
        .expect("connect");
    s.write_all(
        format!(
            "PUT /api/v1/directory/users/slow HTTP/1.1\r\nHost: x\r\n{auth}\
             Content-Type: application/json\r\nContent-Length: 60\r\n\r\n{{\"name\": \"Slow\","
        )
        .as_bytes(),
    )
    .await
    .expect("write");
    let mut answer = String::new();
    tokio::time::timeout(DEADLINE, s.read_to_string(&mut answer))
        .await
        .expect("answered within the header deadline, not held")
        .expect("read");
    assert!(
        answer.starts_with("HTTP/1.1 400") && answer.contains("did not arrive within 1000 ms"),
        "{answer}"
    );
    let (status, _) =
        common::process::http_get_with(&node.addr, "/api/v1/directory/users/slow", &auth).await;
    assert_eq!(status, 404, "nothing applied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_never_read_are_dropped_and_free_their_slot() {
    // The header deadline far beyond the test: only the write bound can end it.
    let node = node(&[
        "--write-timeout-ms",
        "300",
        "--http-header-timeout-ms",
        "60000",
        "--max-connections",
        "3",
    ])
    .await;
    let baseline = warm_rss(&node).await;
    let mut s = raw::small_buffer(&node.addr).await;
    // Requests for a 20 KB asset, answered into a socket nobody reads.
    raw::until_dropped_writing(
        &mut s,
        b"GET /wallboard/panels.js HTTP/1.1\r\nHost: x\r\n\r\n",
        DEADLINE,
    )
    .await;
    // Its pending slot is free again.
    serves_with_three_slots_free(&node, baseline).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_take_every_pending_slot() {
    let node = node(&[
        "--max-connections-per-ip",
        "5",
        "--http-header-timeout-ms",
        "1500",
    ])
    .await;
    let baseline = warm_rss(&node).await;
    let mut half = half_sent_requests(&node.addr, 5).await;
    // A sixth from the same address: refused at once, nothing read.
    let mut sixth = tokio::net::TcpStream::connect(&node.addr)
        .await
        .expect("connect");
    let mut answer = String::new();
    tokio::time::timeout(DEADLINE, sixth.read_to_string(&mut answer))
        .await
        .expect("answered at once")
        .expect("read");
    assert!(
        answer.starts_with("HTTP/1.1 503") && answer.contains("from this address"),
        "{answer}"
    );
    // Another address is served meanwhile.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind("127.0.0.2:0".parse().expect("addr"))
        .expect("bind 127.0.0.2");
    let mut other = socket
        .connect(node.addr.parse().expect("addr"))
        .await
        .expect("connect");
    assert_eq!(raw::upgrade(&mut other, "").await, 101);
    // The header deadline closes the five; the address is served again.
    for s in &mut half {
        raw::until_closed(s, DEADLINE).await;
    }
    still_serves(&node, baseline).await;
}

/// A node with one turn (`--max-handshakes 1`) of `turn_ms`, its header
/// deadline `header_ms`, and `/metrics` on a listener of its own (which
/// has turns of its own); and its turn gauges.
async fn one_turn_node(turn_ms: &str, header_ms: &str) -> (Proc, TurnGauges) {
    let node = node(&[
        "--max-handshakes",
        "1",
        "--handshake-turn-ms",
        turn_ms,
        "--http-header-timeout-ms",
        header_ms,
        "--metrics-listen",
        "127.0.0.1:0",
    ])
    .await;
    let metrics = node
        .banner
        .iter()
        .find_map(|l| l.split("Metrics: http://").nth(1)?.strip_suffix("/metrics"))
        .expect("the banner names the metrics address")
        .to_string();
    (node, TurnGauges(metrics))
}

/// `presence_hub_handshakes` and `presence_hub_handshakes_waiting`, read on
/// the node's metrics listener.
struct TurnGauges(String);

impl TurnGauges {
    async fn gauge(&self, name: &str) -> f64 {
        let (_, metrics) = http_get(&self.0, "/metrics").await;
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0.0)
    }

    /// Waits until `held` turns are held on the public listener and
    /// `waiting` connections wait for one.
    async fn until(&self, what: &str, held: f64, waiting: f64) {
        eventually(what, DEADLINE, Duration::from_millis(20), || async {
            // The scrape that reads them holds one (of its own listener).
            self.gauge("presence_hub_handshakes").await - 1.0 == held
                && self.gauge("presence_hub_handshakes_waiting").await == waiting
        })
        .await;
    }
}

/// A connection that sent `request`.
async fn sent(addr: &str, request: &[u8]) -> tokio::net::TcpStream {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(request).await.expect("write");
    s
}

/// A request's whole answer, read until the hub closes the connection.
async fn answer(s: &mut tokio::net::TcpStream) -> String {
    let mut answer = String::new();
    tokio::time::timeout(DEADLINE, s.read_to_string(&mut answer))
        .await
        .expect("answered")
        .expect("read");
    answer
}

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.0\r\nHost: x\r\n\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_read_in_turn_and_a_silent_connection_takes_no_turn() {
    // The turn and the header deadline far beyond the test: only the end
    // of its request gives the turn back.
    let (node, turns) = one_turn_node("60000", "60000").await;
    // A connection that sends nothing takes no turn: the node still answers.
    let _silent = sent(&node.addr, b"").await;
    let healthz = tokio::time::timeout(DEADLINE, node.status("/healthz")).await;
    assert_eq!(healthz.expect("answered while one is silent"), 200);
    turns.until("no turn held", 0.0, 0.0).await;
    // One that sent half a request takes the turn and keeps it ...
    let mut slow = sent(
        &node.addr,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n",
    )
    .await;
    turns.until("the turn held", 1.0, 0.0).await;
    // ... so a whole request waits for it (a second silent one does not).
    let _silent_too = sent(&node.addr, b"").await;
    let mut next = sent(&node.addr, HEALTHZ).await;
    turns
        .until("one request waiting for its turn", 1.0, 1.0)
        .await;
    let mut early = [0u8; 1];
    assert!(
        matches!(next.try_read(&mut early), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "answered while the turn was held"
    );
    // The slow request ends: both are answered, in turn.
    slow.write_all(b"\r\n").await.expect("write");
    assert!(answer(&mut slow).await.starts_with("HTTP/1.1 200"));
    assert!(answer(&mut next).await.starts_with("HTTP/1.0 200"));
    turns.until("every turn given back", 0.0, 0.0).await;
    // A kept-alive connection gives its turn back once answered, not when
    // it closes.
    let mut kept = sent(&node.addr, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let mut read = Vec::new();
    while !read.ends_with(b"\r\n\r\nok\n") {
        let mut chunk = [0u8; 512];
        let n = tokio::time::timeout(DEADLINE, kept.read(&mut chunk))
            .await
            .expect("answered")
            .expect("read");
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&read));
        read.extend_from_slice(&chunk[..n]);
    }
    turns
        .until("the kept-alive one's turn given back", 0.0, 0.0)
        .await;
    drop(kept);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_requests_hold_and_wait_for_turns_no_longer_than_handshake_turn_ms() {
    // The header deadline far beyond the test: only the turn's own bound
    // can let the others in. Forty slow requests one turn after another
    // would take twelve seconds.
    let (node, turns) = one_turn_node("300", "60000").await;
    let baseline = warm_rss(&node).await;
    let mut half = half_sent_requests(&node.addr, 40).await;
    // Agents and supervisors sign in, each waiting a turn's length at most.
    still_serves(&node, baseline).await;
    // No slow request holds a turn or waits for one any more ...
    turns.until("no turn held or waited for", 0.0, 0.0).await;
    // ... and each is answered once whole.
    for s in &mut half {
        s.write_all(b"Connection: close\r\n\r\n")
            .await
            .expect("write");
        let answer = answer(s).await;
        // `/v1/ws` without an upgrade's headers.
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_waited_until_its_header_deadline_is_still_answered() {
    // The turn as long as the test: a waiting request goes on at its
    // header deadline, with its headers already there.
    let (node, turns) = one_turn_node("60000", "3000").await;
    // Opened first (silent: no turn), so its header deadline comes before
    // that of the slow one, which holds the turn until its own.
    let mut next = sent(&node.addr, b"").await;
    let mut slow = half_sent_requests(&node.addr, 1).await;
    turns.until("the slow one holds the turn", 1.0, 0.0).await;
    next.write_all(HEALTHZ).await.expect("write");
    turns
        .until("the request waiting for its turn", 1.0, 1.0)
        .await;
    let answer = answer(&mut next).await;
    assert!(answer.starts_with("HTTP/1.0 200"), "{answer}");
    // The slow one is closed at its own deadline.
    raw::until_closed(&mut slow[0], DEADLINE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_waiting_for_its_turn_when_the_node_drains_is_answered() {
    let (node, turns) = one_turn_node("60000", "60000").await;
    let _slow = half_sent_requests(&node.addr, 1).await;
    turns.until("the slow one holds the turn", 1.0, 0.0).await;
    let mut next = sent(
        &node.addr,
        b"GET /v1/ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
          Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await;
    turns
        .until("the upgrade waiting for its turn", 1.0, 1.0)
        .await;
    // The node begins to drain: the upgrade is read and refused as such,
    // not dropped unanswered.
    node.signal("TERM");
    let answer = answer(&mut next).await;
    assert!(
        answer.starts_with("HTTP/1.1 503") && answer.contains("draining"),
        "{answer}"
    );
}

// ---- 3. active devices per agent ------------------------------------------

#[tokio::test]
async fn a_device_beyond_the_limit_is_refused_with_4011() {
    let node = node(&["--max-devices-per-agent", "3"]).await;
    let url = node.ws_url();
    let baseline = warm_rss(&node).await;
    let mut sup = staff(&url, "s1", "supervisor").await;
    let mut devices = Vec::new();
    for i in 0..3 {
        devices.push(agent(&url, "a1", &format!("d{i}")).await);
    }
    let closed = refused_hello(
        &url,
        json!({"type": "hello", "token": token("acme", "a1"), "role": "agent",
               "device": {"id": "d3", "kind": "softphone"}}),
    )
    .await;
    assert_eq!(closed.code, 4011, "{closed:?}");
    let snapshot = sup.subscribe(json!({"all": true})).await;
    let a1 = in_snapshot(&snapshot, "a1").expect("a1");
    let active: Vec<_> = a1["devices"]
        .as_array()
        .expect("devices")
        .iter()
        .filter(|d| d["active"] == true)
        .map(|d| d["id"].as_str().expect("id").to_string())
        .collect();
    assert_eq!(active, ["d0", "d1", "d2"]);
    // A reconnect of a device it has is not a new device; a freed slot is.
    devices.push(agent(&url, "a1", "d2").await);
    devices.remove(0).close().await;
    devices.push(agent(&url, "a1", "d3").await);
    still_serves(&node, baseline).await;
}

// ---- 4. binary frames count ------------------------------------------------

#[tokio::test]
async fn binary_frames_and_pings_count_for_the_rate_and_size_limits() {
    let node = node(&["--rate-limit-per-sec", "20", "--max-frame-bytes", "1024"]).await;
    let url = node.ws_url();
    let baseline = warm_rss(&node).await;
    let mut a = agent(&url, "a1", "bin").await;
    for _ in 0..200 {
        a.send_message(Message::binary(vec![7u8])).await;
    }
    assert_eq!(a.closed().await.code, 4008);

    let mut s = staff(&url, "s1", "supervisor").await;
    for _ in 0..200 {
        s.send_message(Message::Ping(vec![1u8].into())).await;
    }
    assert_eq!(s.closed().await.code, 4008);

    let mut big = agent(&url, "a1", "big").await;
    big.send_message(Message::binary(vec![0u8; 2048])).await;
    let error = big.recv_type("error").await;
    assert_eq!(error["error"]["code"], "too_large");
    assert_eq!(big.closed().await.code, 1009);
    still_serves(&node, baseline).await;
}

// ---- 5. strict shapes ------------------------------------------------------

#[tokio::test]
async fn arrays_for_objects_are_bad_requests_that_change_nothing() {
    let node = node(&[]).await;
    let url = node.ws_url();
    let baseline = warm_rss(&node).await;
    let mut sup = staff(&url, "s1", "supervisor").await;
    let mut admin = staff(&url, "ad1", "admin").await;
    let mut a = agent(&url, "a1", "d").await;
    let before = sup.subscribe(json!({"all": true})).await;
    let settings = admin
        .ok(json!({"type": "update_settings", "settings": {"wrap_up_seconds": 30}}))
        .await;
    a.refused(
        json!({"type": "connect", "channel": ["queue", "sales"]}),
        "bad_request",
    )
    .await;
    a.refused(
        json!({"type": "interaction_start", "interaction_id": "c1", "channel": ["queue", "sales"]}),
        "bad_request",
    )
    .await;
    admin
        .refused(
            json!({"type": "update_settings", "settings": [true, 7, false]}),
            "bad_request",
        )
        .await;
    sup.refused(json!({"type": "subscribe", "scope": [true]}), "bad_request")
        .await;
    admin
        .refused(
            json!({"type": "set_unassigned_access", "agent_id": "a1"}),
            "bad_request",
        )
        .await;
    let closed = refused_hello(
        &url,
        json!({"type": "hello", "token": token("acme", "a2"), "role": "agent", "device": ["x", "softphone"]}),
    )
    .await;
    assert_eq!(closed.code, 4000);
    // Nothing changed: no delta, same records, same settings.
    let after = staff(&url, "s1", "supervisor")
        .await
        .subscribe(json!({"all": true}))
        .await;
    assert_eq!(before["agents"], after["agents"]);
    let unchanged = admin
        .ok(json!({"type": "update_settings", "settings": {"wrap_up_seconds": 30}}))
        .await;
    assert_eq!(settings, unchanged);
    let deltas: Vec<_> = sup
        .drain_for(Duration::from_millis(300))
        .await
        .into_iter()
        .filter(|m| m["type"] == "agent")
        .collect();
    assert!(deltas.is_empty(), "{deltas:?}");
    // An explicit null does remove the override (back to the tenant's default).
    let r = admin
        .ok(json!({"type": "set_unassigned_access", "agent_id": "a1", "allowed": false}))
        .await;
    assert_eq!(r["agent"]["unassigned_access"], false, "{r}");
    let r = admin
        .ok(json!({"type": "set_unassigned_access", "agent_id": "a1", "allowed": null}))
        .await;
    assert_eq!(r["agent"]["unassigned_access"], true, "{r}");
    still_serves(&node, baseline).await;
}

// ---- 6. characters, not bytes -------------------------------------------

#[tokio::test]
async fn limits_count_characters_not_bytes() {
    let node = node(&[]).await;
    let url = node.ws_url();
    let id = "é".repeat(128);
    let mut a = agent(&url, "a1", &id).await;
    a.ok(
        json!({"type": "interaction_start", "interaction_id": "日".repeat(128),
                "channel": {"kind": "queue", "id": "sales"}}),
    )
    .await;
    a.refused(
        json!({"type": "interaction_start", "interaction_id": "日".repeat(129),
               "channel": {"kind": "queue", "id": "sales"}}),
        "bad_request",
    )
    .await;
    let closed = refused_hello(
        &url,
        json!({"type": "hello", "token": token("acme", "a2"), "role": "agent",
               "device": {"id": "é".repeat(129)}}),
    )
    .await;
    assert_eq!(closed.code, 4000);
}

// ---- 7. nbf and iat --------------------------------------------------------

fn token_with(extra: Value) -> String {
    let mut claims =
        json!({"sub": "a1", "tenant": "acme", "exp": presence_hub::clock::unix_s() + 600});
    for (k, v) in extra.as_object().expect("object") {
        claims[k] = v.clone();
    }
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .expect("encode")
}

#[tokio::test]
async fn tokens_not_valid_yet_are_refused_beyond_the_leeway() {
    let node = node(&["--jwt-leeway-s", "5"]).await;
    let url = node.ws_url();
    let now = presence_hub::clock::unix_s();
    for claims in [json!({"nbf": now + 120}), json!({"iat": now + 120})] {
        let closed = refused_hello(
            &url,
            json!({"type": "hello", "token": token_with(claims.clone()), "role": "agent", "device": {"id": "d"}}),
        )
        .await;
        assert_eq!(closed.code, 4003, "{claims}: {closed:?}");
    }
    let mut c = Client::connect(&url).await;
    c.send(
        json!({"type": "hello", "token": token_with(json!({"nbf": now + 2, "iat": now + 2})),
                  "role": "agent", "device": {"id": "d"}}),
    )
    .await;
    c.recv_type("welcome").await;
}

// ---- 8. logs ---------------------------------------------------------------

#[tokio::test]
async fn client_strings_cannot_forge_log_lines() {
    let mut node = node_logged(&["--log-format", "human"], true).await;
    let url = node.ws_url();
    let forged = "agent\n2026-01-01T00:00:00.000000Z  INFO presence_hub: FORGED admin signed in";
    let closed = refused_hello(
        &url,
        json!({"type": "hello", "token": token("acme", "a1"), "role": forged, "device": {"id": "d"}}),
    )
    .await;
    assert_eq!(closed.code, 4000);
    let mut a = agent(&url, "a1", "dev\nFORGED line").await;
    a.ok(json!({"type": "heartbeat"})).await;
    node.log_line(&["session start", "FORGED"]).await;
    a.close().await;
    node.log_line(&["session end"]).await;
    let lines = node.drain_logs();
    let forged_lines: Vec<_> = lines
        .iter()
        .filter(|l| l.contains("FORGED") && !l.contains("session"))
        .collect();
    assert!(forged_lines.is_empty(), "{forged_lines:?}");
}

// ---- 9. origins and the dev sign-in ---------------------------------------

#[tokio::test]
async fn upgrades_from_other_origins_are_refused_with_403() {
    let node = node(&[
        "--allowed-origins",
        "https://wall.example, https://ops.example",
    ])
    .await;
    for (origin, status) in [
        ("Origin: https://evil.example\r\n", 403),
        ("Origin: https://wall.example\r\n", 101),
        ("Origin: https://OPS.example\r\n", 101),
        ("", 101), // not a browser: tokens travel inside hello only
    ] {
        let mut s = tokio::net::TcpStream::connect(&node.addr)
            .await
            .expect("connect");
        assert_eq!(raw::upgrade(&mut s, origin).await, status, "{origin:?}");
    }
    let baseline = warm_rss(&node).await;
    still_serves(&node, baseline).await;
}

#[tokio::test]
async fn the_dev_sign_in_is_served_to_loopback_clients_only() {
    use axum::extract::ConnectInfo;
    use std::net::SocketAddr;
    use tower::ServiceExt;
    // The real binary, in dev mode, answers loopback clients.
    let dev = Proc::start(&["--listen", "127.0.0.1:0"], &[]).await;
    let (code, body) = http_get(&dev.addr, "/dev/signin").await;
    assert_eq!(code, 200, "{body}");
    // This machine has no other address the test could come from: the
    // same router, asked by a remote peer.
    let mut config = test_config();
    config.jwt_secret = None;
    let node = TestNode::start_in(config, presence_hub::directory::Directory::demo()).await;
    let router = presence_hub::server::router(node.hub.clone());
    for (peer, status) in [("10.1.2.3:5000", 403), ("127.0.0.1:5000", 200)] {
        let mut request = axum::http::Request::get("/dev/signin")
            .body(axum::body::Body::empty())
            .expect("request");
        let peer: SocketAddr = peer.parse().expect("addr");
        request.extensions_mut().insert(ConnectInfo(peer));
        let response = router.clone().oneshot(request).await.expect("response");
        assert_eq!(response.status().as_u16(), status, "{peer}");
    }
}
