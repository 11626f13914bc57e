//! Signed webhooks delivered from the agent event stream (docs/WEBHOOKS.md),
//! against a real HTTP receiver written here (raw TCP) that verifies every
//! signature itself (HMAC-SHA256, Standard Webhooks), answers 500, hangs
//! past the hub's timeout, goes away and comes back. `tests/
//! cluster_webhooks.rs` runs the same against three nodes sharing a Redis.

pub mod common;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use common::http::request as http;
use common::process::Proc;
use common::{token, TestHub, CLUSTER, SECRET};
use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use serde_json::{json, Value};
use sha2::Sha256;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Longest any condition below is waited for (a failure, not a pace).
const PATIENCE: Duration = Duration::from_secs(20);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    Ok,
    Fail,
    Hang,
}

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Got {
    webhook_id: String,
    timestamp: u64,
    signatures: Vec<String>,
    body: Vec<u8>,
    /// 0: not answered (hung).
    pub answered: u16,
}

impl Got {
    pub fn events(&self) -> Vec<Value> {
        let body: Value = serde_json::from_slice(&self.body).expect("a JSON body");
        body["events"].as_array().cloned().expect("events")
    }

    pub fn ids(&self) -> Vec<String> {
        self.events()
            .iter()
            .map(|e| e["id"].as_str().expect("an id").to_string())
            .collect()
    }

    /// Whether one of its signatures is `secret`'s, computed here.
    pub fn signed_by(&self, secret: &str) -> bool {
        let key = STANDARD
            .decode(secret.strip_prefix("whsec_").expect("whsec_"))
            .expect("base64");
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("key");
        mac.update(format!("{}.{}.", self.webhook_id, self.timestamp).as_bytes());
        mac.update(&self.body);
        let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
        self.signatures.contains(&expected)
    }
}

#[derive(Default)]
struct Inner {
    mode: Option<Mode>,
    got: Vec<Got>,
    held: Vec<TcpStream>,
}

/// The integrator's HTTP receiver.
pub struct Receiver {
    port: u16,
    inner: Arc<Mutex<Inner>>,
    task: Option<JoinHandle<()>>,
}

impl Receiver {
    pub async fn start(mode: Mode) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let inner = Arc::new(Mutex::new(Inner {
            mode: Some(mode),
            ..Inner::default()
        }));
        let task = Some(Receiver::serve(listener, inner.clone()));
        Receiver { port, inner, task }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    pub fn set(&self, mode: Mode) {
        self.inner.lock().mode = Some(mode);
    }

    pub fn got(&self) -> Vec<Got> {
        self.inner.lock().got.clone()
    }

    /// The port closes: connections are refused.
    pub fn close(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        self.inner.lock().held.clear();
    }

    /// Listens again on the same port.
    pub async fn reopen(&mut self) {
        let listener = until("the port is free again", || async {
            TcpListener::bind(("127.0.0.1", self.port)).await.ok()
        })
        .await;
        self.task = Some(Receiver::serve(listener, self.inner.clone()));
    }

    fn serve(listener: TcpListener, inner: Arc<Mutex<Inner>>) -> JoinHandle<()> {
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let inner = inner.clone();
                tokio::spawn(async move {
                    let _ = Receiver::one(stream, inner).await;
                });
            }
        })
    }

    async fn one(mut stream: TcpStream, inner: Arc<Mutex<Inner>>) -> std::io::Result<()> {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let header = |name: &str| {
            head.lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.trim()
                        .eq_ignore_ascii_case(name)
                        .then(|| v.trim().to_string())
                })
                .unwrap_or_default()
        };
        let length: usize = header("content-length").parse().unwrap_or(0);
        while buf.len() < head_end + length {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let mut got = Got {
            webhook_id: header("webhook-id"),
            timestamp: header("webhook-timestamp").parse().unwrap_or(0),
            signatures: header("webhook-signature")
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
            body: buf[head_end..head_end + length].to_vec(),
            answered: 0,
        };
        let mode = inner.lock().mode.unwrap_or(Mode::Ok);
        let status = match mode {
            Mode::Hang => {
                let mut inner = inner.lock();
                inner.got.push(got);
                inner.held.push(stream);
                return Ok(());
            }
            Mode::Ok => 200,
            Mode::Fail => 500,
        };
        got.answered = status;
        inner.lock().got.push(got);
        let answer =
            format!("HTTP/1.1 {status} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.close();
    }
}

/// Waits for `check` to give something, looking again every 20 ms.
pub async fn until<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(t) = check().await {
            return t;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn api(
    addr: impl std::fmt::Display,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let body = body.map(|b| b.to_string());
    http(
        addr,
        method,
        path,
        Some(&token("acme", "ad1")),
        "",
        body.as_deref(),
    )
    .await
}

/// Creates webhook `id` to `url`: the secret and where delivery starts.
pub async fn create(addr: impl std::fmt::Display, id: &str, url: &str) -> (String, Option<String>) {
    let (status, body) = api(
        addr,
        "PUT",
        &format!("/api/v1/webhooks/{id}"),
        Some(json!({"url": url})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let secret = body["secret"]
        .as_str()
        .expect("the secret, once")
        .to_string();
    let cursor = body["delivery"]["cursor"].as_str().map(String::from);
    (secret, cursor)
}

/// A change: a user put through the directory API (an `agent` event and a
/// `directory` event).
pub async fn change(addr: impl std::fmt::Display, user: &str) {
    let (status, body) = api(
        addr,
        "PUT",
        &format!("/api/v1/directory/users/{user}"),
        Some(json!({"name": format!("User {user}"), "roles": ["agent"]})),
    )
    .await;
    assert!(status == 201 || status == 200, "{body}");
}

/// The stream's events after `after`, heartbeats left out.
pub async fn stream_after(addr: impl std::fmt::Display + Copy, after: Option<&str>) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after = after.map(String::from);
    loop {
        let query = match &after {
            Some(a) => format!("?limit=1000&after={a}"),
            None => "?limit=1000".to_string(),
        };
        let (status, body) = api(addr, "GET", &format!("/api/v1/events{query}"), None).await;
        assert_eq!(status, 200, "{body}");
        let events = body["events"].as_array().cloned().unwrap_or_default();
        if events.is_empty() {
            return out
                .into_iter()
                .filter(|e: &Value| e["type"] != "heartbeat")
                .collect();
        }
        after = body["next"].as_str().map(String::from);
        out.extend(events);
    }
}

/// The event ids of the 2xx-answered requests, deduplicated, in the order
/// first received.
pub fn delivered(rx: &Receiver) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for got in rx.got().iter().filter(|g| g.answered == 200) {
        for id in got.ids() {
            if seen.insert(id.clone()) {
                out.push(id);
            }
        }
    }
    out
}

pub fn ids(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["id"].as_str().expect("id").to_string())
        .collect()
}

pub fn fast(c: &mut presence_hub::config::Config) {
    c.events_heartbeat_s = 0;
    c.webhook_poll_ms = 50;
    c.webhook_retry_base_ms = 20;
    c.webhook_retry_max_ms = 200;
    c.webhook_timeout_ms = 400;
    c.webhook_lease_ms = 1_000;
    c.webhook_batch_max_events = 3;
}

pub async fn webhook(addr: impl std::fmt::Display, id: &str) -> Value {
    let (status, body) = api(addr, "GET", &format!("/api/v1/webhooks/{id}"), None).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Fails (500), times out, goes away, comes back: the receiver ends with
/// every event once (after dedup by event id), in stream order, every
/// request signed, a batch's `webhook-id` the same on each retry.
#[tokio::test]
async fn a_receiver_that_fails_hangs_and_goes_away_gets_every_event_once_in_order() {
    let hub = TestHub::start_with(fast).await;
    let writer = hub.node(0).addr;
    let mut rx = Receiver::start(Mode::Fail).await;
    let (secret, start) = create(hub.addr, "crm", &rx.url()).await;

    change(writer, "n1").await;
    until("two 500s", || async { (rx.got().len() >= 2).then_some(()) }).await;
    rx.set(Mode::Hang);
    until("a request past the timeout", || async {
        let w = webhook(hub.addr, "crm").await;
        let e = w["delivery"]["last_error"]
            .as_str()
            .unwrap_or("")
            .to_string();
        e.contains("timed out").then_some(())
    })
    .await;
    rx.close();
    change(writer, "n2").await;
    until("a refused connection", || async {
        let w = webhook(hub.addr, "crm").await;
        let e = w["delivery"]["last_error"]
            .as_str()
            .unwrap_or("")
            .to_string();
        e.contains("could not send").then_some(())
    })
    .await;
    rx.set(Mode::Ok);
    rx.reopen().await;
    change(writer, "n3").await;

    let expected = ids(&stream_after(hub.addr, start.as_deref()).await);
    assert!(
        expected.len() >= 6,
        "three changes, two events each: {expected:?}"
    );
    until("every event delivered", || async {
        (delivered(&rx).len() >= expected.len()).then_some(())
    })
    .await;
    assert_eq!(delivered(&rx), expected, "every event once, in order");
    let got = rx.got();
    assert!(got.iter().any(|g| g.answered == 500));
    assert!(got.iter().any(|g| g.answered == 0), "a hung request");
    for g in &got {
        assert!(g.signed_by(&secret), "signed: {g:?}");
        assert_eq!(g.signatures.len(), 1);
        let now = presence_hub::clock::now_ms() / 1000;
        assert!(g.timestamp <= now && now - g.timestamp < 60);
        // The same batch, retried, has the same webhook-id.
        let first = g.ids().first().cloned();
        for other in got.iter().filter(|o| o.ids().first().cloned() == first) {
            if other.ids() == g.ids() {
                assert_eq!(other.webhook_id, g.webhook_id);
            }
        }
    }
    let retried = got
        .iter()
        .filter(|g| g.webhook_id == got[0].webhook_id)
        .count();
    assert!(retried >= 3, "the first batch was retried under one id");
    // Batches of at most --webhook-batch-max-events.
    assert!(got.iter().all(|g| g.ids().len() <= 3));
    let w = until("the cursor at the end", || async {
        let w = webhook(hub.addr, "crm").await;
        (w["delivery"]["cursor"].as_str() == expected.last().map(String::as_str)).then_some(w)
    })
    .await;
    assert_eq!(w["delivery"]["attempts"], 0);
    assert_eq!(w["delivery"]["missed"], 0);
    assert!(!w.to_string().contains(&secret), "no secret in a GET: {w}");
}

/// During a rotation every request carries both signatures; after the
/// previous secret is dropped, only the new one. No secret is ever in the
/// event stream or a GET.
#[tokio::test]
async fn a_rotation_signs_with_both_secrets_until_the_previous_is_dropped() {
    let hub = TestHub::start_with(fast).await;
    let rx = Receiver::start(Mode::Ok).await;
    let (old, _) = create(hub.addr, "bi", &rx.url()).await;
    let first_of = |user: &'static str| {
        let rx = &rx;
        move || async move {
            rx.got().into_iter().find(|g| {
                g.events()
                    .iter()
                    .any(|e| e["agent_id"] == user && e["type"] == "agent")
            })
        }
    };
    change(hub.node(0).addr, "r1").await;
    let g = until("r1 delivered", first_of("r1")).await;
    assert!(g.signed_by(&old));
    assert_eq!(g.signatures.len(), 1);

    let (status, body) = api(hub.addr, "POST", "/api/v1/webhooks/bi/rotate", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["rotating"], true);
    let new = body["secret"].as_str().expect("the new secret").to_string();
    assert_ne!(new, old);
    change(hub.node(2).addr, "r2").await;
    let g = until("r2 delivered", first_of("r2")).await;
    assert_eq!(g.signatures.len(), 2, "{g:?}");
    assert!(g.signed_by(&old) && g.signed_by(&new), "both valid: {g:?}");

    let (status, body) = api(
        hub.addr,
        "DELETE",
        "/api/v1/webhooks/bi/secrets/previous",
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["rotating"], false);
    assert_eq!(body["changed"], true);
    change(hub.node(0).addr, "r3").await;
    let g = until("r3 delivered", first_of("r3")).await;
    assert_eq!(g.signatures.len(), 1, "{g:?}");
    assert!(g.signed_by(&new) && !g.signed_by(&old));

    // A receiver that always answers gets each event once: one node
    // delivers an endpoint at a time.
    let answered: Vec<String> = rx
        .got()
        .iter()
        .filter(|g| g.answered == 200)
        .flat_map(|g| g.ids())
        .collect();
    assert_eq!(answered.len(), delivered(&rx).len(), "no event twice");

    let list = api(hub.addr, "GET", "/api/v1/webhooks", None)
        .await
        .1
        .to_string();
    let stream = serde_json::to_string(&stream_after(hub.addr, None).await).expect("json");
    for secret in [&old, &new] {
        assert!(!list.contains(secret.as_str()), "a GET shows no secret");
        assert!(
            !stream.contains(secret.as_str()),
            "the stream holds no secret"
        );
        let bare = secret.trim_start_matches("whsec_");
        assert!(!stream.contains(bare) && !list.contains(bare));
    }
}

/// A batch still failing after `--webhook-dead-letter-after-s` is
/// dead-lettered (visible to the admin) and delivery moves on.
#[tokio::test]
async fn a_batch_failing_too_long_is_dead_lettered_and_delivery_moves_on() {
    let hub = TestHub::start_with(|c| {
        fast(c);
        c.webhook_dead_letter_after_s = 1;
        c.webhook_batch_max_events = 100;
    })
    .await;
    let rx = Receiver::start(Mode::Fail).await;
    let (_, start) = create(hub.addr, "wfm", &rx.url()).await;
    change(hub.node(0).addr, "d1").await;
    let doomed = ids(&stream_after(hub.addr, start.as_deref()).await);
    let letters = until("a dead letter", || async {
        let (status, body) = api(hub.addr, "GET", "/api/v1/webhooks/wfm/dead-letters", None).await;
        assert_eq!(status, 200, "{body}");
        let letters = body["dead_letters"].as_array().cloned().unwrap_or_default();
        (!letters.is_empty()).then_some(body)
    })
    .await;
    let letter = &letters["dead_letters"][0];
    assert_eq!(letters["dead_lettered"], 1);
    assert_eq!(letter["event_ids"], json!(doomed), "{letter}");
    assert_eq!(letter["last_error"], "HTTP 500");
    assert!(letter["attempts"].as_u64().expect("attempts") >= 2);
    assert!(letter["webhook_id"]
        .as_str()
        .is_some_and(|w| rx.got().iter().all(|g| g.webhook_id == w)));

    rx.set(Mode::Ok);
    let before = doomed.last().cloned();
    change(hub.node(0).addr, "d2").await;
    let next = ids(&stream_after(hub.addr, before.as_deref()).await);
    until("the next events delivered", || async {
        (delivered(&rx) == next).then_some(())
    })
    .await;
    let w = webhook(hub.addr, "wfm").await;
    assert_eq!(w["delivery"]["dead_letters"], 1);
    assert_eq!(w["delivery"]["attempts"], 0);

    // Re-driven by the admin: sent again once, under its own webhook-id;
    // a 2xx removes it.
    let letter_id = letter["webhook_id"].as_str().expect("an id").to_string();
    let (status, body) = api(
        hub.addr,
        "POST",
        &format!("/api/v1/webhooks/wfm/dead-letters/{letter_id}/redrive"),
        None,
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let again = until("the re-driven batch", || async {
        rx.got()
            .into_iter()
            .find(|g| g.answered == 200 && g.webhook_id == letter_id)
    })
    .await;
    assert_eq!(again.ids(), doomed);
    until("the dead letter gone", || async {
        let (_, body) = api(hub.addr, "GET", "/api/v1/webhooks/wfm/dead-letters", None).await;
        (body["dead_letters"] == json!([])).then_some(())
    })
    .await;
    let (status, body) = api(
        hub.addr,
        "POST",
        &format!("/api/v1/webhooks/wfm/dead-letters/{letter_id}/redrive"),
        None,
    )
    .await;
    assert_eq!(status, 404, "{body}");
}

/// Every route refuses bad input with a JSON error and changes nothing.
#[tokio::test]
async fn bad_input_is_refused_with_a_json_error_and_changes_nothing() {
    let hub = TestHub::start_with(|c| {
        fast(c);
        c.webhook_max_endpoints = 2;
    })
    .await;
    let rx = Receiver::start(Mode::Ok).await;
    let (secret, _) = create(hub.addr, "one", &rx.url()).await;
    let before = api(hub.addr, "GET", "/api/v1/webhooks", None).await.1;
    let url = rx.url();
    let bad_bodies: Vec<(&str, String)> = vec![
        ("not JSON", "{url".to_string()),
        ("an array", "[]".to_string()),
        ("no url", "{}".to_string()),
        ("url a number", r#"{"url": 5}"#.to_string()),
        ("not a URL", r#"{"url": "nope"}"#.to_string()),
        ("ftp", r#"{"url": "ftp://example.com/x"}"#.to_string()),
        (
            "http elsewhere",
            r#"{"url": "http://example.com/x"}"#.to_string(),
        ),
        (
            "credentials",
            r#"{"url": "https://u:p@example.com/x"}"#.to_string(),
        ),
        (
            "events a string",
            format!(r#"{{"url": "{url}", "events": "agent"}}"#),
        ),
        (
            "events empty",
            format!(r#"{{"url": "{url}", "events": []}}"#),
        ),
        (
            "events numbers",
            format!(r#"{{"url": "{url}", "events": [1]}}"#),
        ),
        (
            "unknown member",
            format!(r#"{{"url": "{url}", "secret": "mine"}}"#),
        ),
        (
            "url too long",
            format!(r#"{{"url": "https://example.com/{}"}}"#, "x".repeat(3000)),
        ),
        // Into the hub's own network (server-side request forgery): cloud
        // metadata, a private network, an IPv4-mapped private address,
        // unique-local IPv6, "this host".
        (
            "metadata",
            r#"{"url": "https://169.254.169.254/latest/meta-data"}"#.to_string(),
        ),
        ("private", r#"{"url": "https://10.0.0.5/x"}"#.to_string()),
        (
            "mapped private",
            r#"{"url": "https://[::ffff:192.168.1.1]/x"}"#.to_string(),
        ),
        (
            "unique local",
            r#"{"url": "https://[fd00::1]/x"}"#.to_string(),
        ),
        (
            "unspecified",
            r#"{"url": "http://0.0.0.0:9000/x"}"#.to_string(),
        ),
    ];
    let admin = token("acme", "ad1");
    for (what, body) in &bad_bodies {
        for id in ["one", "two"] {
            let (status, answer) = http(
                hub.addr,
                "PUT",
                &format!("/api/v1/webhooks/{id}"),
                Some(&admin),
                "",
                Some(body),
            )
            .await;
            assert_eq!(status, 400, "{what}: {answer}");
            assert_eq!(answer["error"]["code"], "bad_request", "{what}: {answer}");
        }
    }
    for (method, path) in [
        ("PUT", "/api/v1/webhooks/bad%20id"),
        ("GET", "/api/v1/webhooks/bad%20id"),
        ("DELETE", "/api/v1/webhooks/bad%20id"),
        ("POST", "/api/v1/webhooks/bad%20id/rotate"),
        ("DELETE", "/api/v1/webhooks/bad%20id/secrets/previous"),
        ("GET", "/api/v1/webhooks/bad%20id/dead-letters"),
        (
            "POST",
            "/api/v1/webhooks/bad%20id/dead-letters/msg_1/redrive",
        ),
        ("PUT", &format!("/api/v1/webhooks/{}", "x".repeat(65))),
    ] {
        let body = json!({"url": url}).to_string();
        let (status, answer) = http(hub.addr, method, path, Some(&admin), "", Some(&body)).await;
        assert_eq!(status, 400, "{method} {path}: {answer}");
        assert_eq!(answer["error"]["code"], "bad_request");
    }
    for (method, path) in [
        ("GET", "/api/v1/webhooks/nope"),
        ("DELETE", "/api/v1/webhooks/nope"),
        ("POST", "/api/v1/webhooks/nope/rotate"),
        ("DELETE", "/api/v1/webhooks/nope/secrets/previous"),
        ("GET", "/api/v1/webhooks/nope/dead-letters"),
        ("POST", "/api/v1/webhooks/nope/dead-letters/msg_1/redrive"),
        ("POST", "/api/v1/webhooks/one/dead-letters/msg_1/redrive"),
    ] {
        let (status, answer) = api(hub.addr, method, path, None).await;
        assert_eq!(status, 404, "{method} {path}: {answer}");
        assert_eq!(answer["error"]["code"], "not_found");
    }
    // Over --webhook-max-endpoints: refused, nothing stored.
    create(hub.addr, "two", &url).await;
    let (status, answer) = api(
        hub.addr,
        "PUT",
        "/api/v1/webhooks/three",
        Some(json!({"url": url})),
    )
    .await;
    assert_eq!(status, 409, "{answer}");
    assert_eq!(answer["error"]["code"], "invalid_state");
    let (status, _) = api(hub.addr, "DELETE", "/api/v1/webhooks/two", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        api(hub.addr, "GET", "/api/v1/webhooks", None).await.1,
        before,
        "nothing changed"
    );
    // The secret still is the one made at creation: a delivery says so.
    change(hub.node(0).addr, "b1").await;
    let g = until("a delivery", || async { rx.got().into_iter().next() }).await;
    assert!(g.signed_by(&secret));
}

/// Private addresses take the operator's `--webhook-allow-private`; the
/// refusal says so (README, WEBHOOKS.md).
#[tokio::test]
async fn a_private_address_needs_the_operators_flag() {
    let strict = TestHub::start_with(fast).await;
    let (status, answer) = api(
        strict.addr,
        "PUT",
        "/api/v1/webhooks/crm",
        Some(json!({"url": "https://172.16.0.9/hook"})),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("--webhook-allow-private"), "{answer}");
    assert_eq!(
        api(strict.addr, "GET", "/api/v1/webhooks", None).await.1,
        json!({"webhooks": []})
    );

    let open = TestHub::start_with(|c| {
        fast(c);
        c.webhook_allow_private = true;
    })
    .await;
    let (status, answer) = api(
        open.addr,
        "PUT",
        "/api/v1/webhooks/crm",
        Some(json!({"url": "https://172.16.0.9/hook"})),
    )
    .await;
    assert_eq!(status, 201, "{answer}");
}

/// Supervisors and agents may not manage webhooks; without a token, 401.
#[tokio::test]
async fn only_an_admin_manages_webhooks() {
    let hub = TestHub::start_with(fast).await;
    let body = json!({"url": "https://example.com/hook"}).to_string();
    let routes = [
        ("GET", "/api/v1/webhooks"),
        ("PUT", "/api/v1/webhooks/x"),
        ("GET", "/api/v1/webhooks/x"),
        ("DELETE", "/api/v1/webhooks/x"),
        ("POST", "/api/v1/webhooks/x/rotate"),
        ("DELETE", "/api/v1/webhooks/x/secrets/previous"),
        ("GET", "/api/v1/webhooks/x/dead-letters"),
        ("POST", "/api/v1/webhooks/x/dead-letters/msg_1/redrive"),
    ];
    for (method, path) in routes {
        for user in ["s1", "a1"] {
            let t = token("acme", user);
            let (status, answer) = http(hub.addr, method, path, Some(&t), "", Some(&body)).await;
            assert_eq!(status, 403, "{user} {method} {path}: {answer}");
            assert_eq!(answer["error"]["code"], "forbidden");
        }
        let (status, answer) = http(hub.addr, method, path, None, "", Some(&body)).await;
        assert_eq!(status, 401, "{method} {path}: {answer}");
    }
    let (status, answer) = api(hub.addr, "GET", "/api/v1/webhooks", None).await;
    assert_eq!(status, 200);
    assert_eq!(answer, json!({"webhooks": []}));
}

/// The real binary killed (-9) while the receiver is down, and started
/// again (same `--data-dir`; on a cluster, the same Redis): the receiver
/// gets every event all the same, in order.
/// The real binary's flags for the restart tests: fast webhook timings,
/// and `--data-dir dir` on a single node or `--redis-url` on the cluster's
/// Redis (started here: the same store across restarts).
pub fn binary_args(
    dir: &std::path::Path,
    redis: Option<&common::redis::RedisServer>,
) -> Vec<String> {
    let directory = format!("{}/tests/common/directory.json", env!("CARGO_MANIFEST_DIR"));
    let mut args: Vec<String> = [
        "--listen",
        "127.0.0.1:0",
        "--directory",
        &directory,
        "--jwt-secret",
        SECRET,
        "--events-heartbeat-s",
        "0",
        "--webhook-poll-ms",
        "50",
        "--webhook-retry-base-ms",
        "20",
        "--webhook-retry-max-ms",
        "200",
        "--webhook-lease-ms",
        "1000",
        "--webhook-batch-max-events",
        "2",
    ]
    .map(String::from)
    .to_vec();
    match redis {
        Some(r) => args.extend(["--redis-url".to_string(), r.url()]),
        None => args.extend([
            "--data-dir".to_string(),
            dir.to_str().expect("utf-8").to_string(),
        ]),
    }
    args
}

/// A scratch data directory for one test (removed first).
pub fn scratch_dir(name: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "{name}-{}-{}",
        std::process::id(),
        CLUSTER
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[tokio::test]
async fn a_node_killed_in_the_middle_loses_nothing() {
    let dir = scratch_dir("webhooks");
    let redis = CLUSTER.then(common::redis::RedisServer::start);
    let args = binary_args(&dir, redis.as_ref());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut rx = Receiver::start(Mode::Ok).await;
    let mut first = Proc::start_logged(&args, &[("RUST_LOG", "debug")]).await;
    let addr = first.addr.clone();
    let (secret, start) = create(&addr, "erp", &rx.url()).await;
    change(&addr, "k1").await;
    until("k1 delivered", || async {
        (delivered(&rx).len() >= 2).then_some(())
    })
    .await;
    rx.set(Mode::Fail);
    change(&addr, "k2").await;
    change(&addr, "k3").await;
    until("a failure", || async {
        rx.got().iter().any(|g| g.answered == 500).then_some(())
    })
    .await;
    first.kill().await;
    rx.close();
    let mut logs = first.drain_logs();

    let mut second = Proc::start_logged(&args, &[("RUST_LOG", "debug")]).await;
    let addr = second.addr.clone();
    rx.set(Mode::Ok);
    rx.reopen().await;
    change(&addr, "k4").await;
    let expected = ids(&stream_after(addr.as_str(), start.as_deref()).await);
    assert_eq!(expected.len(), 8, "four changes, two events each");
    until("every event after the restart", || async {
        (delivered(&rx).len() >= expected.len()).then_some(())
    })
    .await;
    assert_eq!(delivered(&rx), expected);
    assert!(rx.got().iter().all(|g| g.signed_by(&secret)));
    // Debug logs of both nodes, failures included: no secret in them.
    logs.extend(second.drain_logs());
    assert!(
        logs.iter().any(|l| l.contains("webhooks: delivery failed")),
        "the nodes logged the failures"
    );
    let bare = secret.trim_start_matches("whsec_");
    assert!(
        logs.iter().all(|l| !l.contains(bare)),
        "a secret in the logs"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// docs/WEBHOOKS.md's Python verifier, run as written on a real delivery:
/// it accepts the request, and refuses it with a byte of the body changed
/// or another secret.
#[tokio::test]
async fn the_documented_python_verifier_accepts_a_real_delivery() {
    let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/WEBHOOKS.md"))
        .expect("docs/WEBHOOKS.md");
    let code = page
        .split("```python\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a python block");
    let hub = TestHub::start_with(fast).await;
    let rx = Receiver::start(Mode::Ok).await;
    let (secret, _) = create(hub.addr, "py", &rx.url()).await;
    change(hub.node(0).addr, "p1").await;
    let g = until("a delivery", || async { rx.got().into_iter().next() }).await;
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "webhooks-py-{}-{}",
        std::process::id(),
        CLUSTER
    ));
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("body"), &g.body).expect("body");
    let script = format!(
        "{code}\nimport json, sys\nbody = open(sys.argv[1], 'rb').read()\n\
         headers = json.loads(sys.argv[2])\n\
         print(verify(sys.argv[3], headers, body), verify(sys.argv[3], headers, body + b' '), \
         verify(sys.argv[4], headers, body))\n"
    );
    std::fs::write(dir.join("verify.py"), script).expect("script");
    let headers = json!({
        "webhook-id": g.webhook_id,
        "webhook-timestamp": g.timestamp.to_string(),
        "webhook-signature": g.signatures.join(" "),
    });
    let other = format!("whsec_{}", STANDARD.encode([7u8; 32]));
    let out = std::process::Command::new("python3")
        .arg(dir.join("verify.py"))
        .arg(dir.join("body"))
        .arg(headers.to_string())
        .arg(&secret)
        .arg(&other)
        .output()
        .expect("python3 runs (the docs' example needs it)");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "True False False"
    );
}

/// An endpoint that falls behind the stream's retention is told so: the
/// change versions trimmed before delivery are counted in `missed`, exactly
/// the ones the receiver never got (none on Redis, whose trimming is
/// approximate and keeps these few), and delivery goes on after them.
#[tokio::test]
async fn versions_lost_to_retention_are_counted_as_missed_never_skipped_silently() {
    let hub = TestHub::start_with(|c| {
        fast(c);
        c.events_max_len = 6;
        c.webhook_batch_max_events = 2;
    })
    .await;
    let rx = Receiver::start(Mode::Fail).await;
    create(hub.addr, "late", &rx.url()).await;
    change(hub.node(0).addr, "m1").await;
    until("a failure", || async {
        (!rx.got().is_empty()).then_some(())
    })
    .await;
    for i in 2..=8 {
        change(hub.node(0).addr, &format!("m{i}")).await;
    }
    rx.set(Mode::Ok);
    let last = stream_after(hub.addr, None)
        .await
        .last()
        .cloned()
        .expect("events");
    let w = until("delivered up to the end", || async {
        let w = webhook(hub.addr, "late").await;
        (w["delivery"]["cursor"] == last["id"]).then_some(w)
    })
    .await;
    let versions: Vec<u64> = rx
        .got()
        .iter()
        .filter(|g| g.answered == 200)
        .flat_map(|g| g.events())
        .filter_map(|e| e["version"].as_u64())
        .collect();
    let first = *versions.iter().min().expect("versions");
    let end = last["version"].as_u64().expect("a version");
    let never: Vec<u64> = (first..=end).filter(|v| !versions.contains(v)).collect();
    assert_eq!(w["delivery"]["missed"], json!(never.len()), "{w} {never:?}");
    if !CLUSTER {
        assert!(
            !never.is_empty(),
            "the memory store keeps 6 events: some were trimmed"
        );
    }
    assert!(versions.contains(&end), "delivery went on after the hole");
}

/// What the store keeps of acme's webhook endpoints, as bytes at rest: the
/// Redis hash on a cluster, the data directory's files on one node.
fn at_rest(dir: &std::path::Path, redis: Option<&common::redis::RedisServer>) -> String {
    match redis {
        Some(r) => r.cli(&["hget", "hub:{acme}:webhooks", "endpoints"]),
        None => {
            let mut all = String::new();
            for entry in std::fs::read_dir(dir)
                .expect("the data directory")
                .flatten()
            {
                if let Ok(bytes) = std::fs::read(entry.path()) {
                    all.push_str(&String::from_utf8_lossy(&bytes));
                }
            }
            all
        }
    }
}

/// `--webhook-secrets-key` (docs/WEBHOOKS.md, "Secrets at rest"): the
/// secret is stored sealed, never in the clear, and deliveries are signed
/// with it as before; a node with another key sends nothing and says why;
/// with the new key first and the old one after, delivery resumes; a key
/// that is not one stops the start.
#[tokio::test]
async fn secrets_are_sealed_at_rest_with_the_operators_key() {
    let dir = scratch_dir("sealed");
    let redis = CLUSTER.then(common::redis::RedisServer::start);
    let (old, new) = (STANDARD.encode([7u8; 32]), STANDARD.encode([9u8; 32]));
    let with_key = |key: &str| {
        let mut args = binary_args(&dir, redis.as_ref());
        args.extend(["--webhook-secrets-key".to_string(), key.to_string()]);
        args
    };
    let rx = Receiver::start(Mode::Ok).await;
    let args = with_key(&old);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut node = Proc::start(&args, &[]).await;
    let (secret, _) = create(&node.addr, "crm", &rx.url()).await;
    change(&node.addr, "k1").await;
    until("k1 delivered", || async {
        (delivered(&rx).len() >= 2).then_some(())
    })
    .await;
    assert!(rx.got().iter().all(|g| g.signed_by(&secret)));
    let bare = secret.trim_start_matches("whsec_");
    let stored = at_rest(&dir, redis.as_ref());
    assert!(
        stored.contains("sealed:v1:"),
        "no sealed secret in the {} bytes at rest",
        stored.len()
    );
    assert!(!stored.contains(bare), "the secret is stored in the clear");
    node.kill().await;

    // Another key: nothing is sent, and the endpoint says why.
    let args = with_key(&new);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut node = Proc::start(&args, &[]).await;
    let sent = rx.got().len();
    change(&node.addr, "k2").await;
    let error = until("the delivery fails", || async {
        let w = webhook(&node.addr, "crm").await;
        w["delivery"]["last_error"].as_str().map(String::from)
    })
    .await;
    assert!(error.contains("--webhook-secrets-key"), "{error}");
    assert_eq!(rx.got().len(), sent, "a request went out unsigned");
    node.kill().await;

    // The new key first, the old one still listed: it opens, and delivers.
    let args = with_key(&format!("{new},{old}"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut node = Proc::start(&args, &[]).await;
    until("k2 delivered", || async {
        (delivered(&rx).len() >= 4).then_some(())
    })
    .await;
    assert!(rx
        .got()
        .iter()
        .all(|g| g.answered != 200 || g.signed_by(&secret)));
    // The endpoint written again (a PUT) is sealed with the new key: the
    // old one can then go.
    let (status, body) = api(
        &node.addr,
        "PUT",
        "/api/v1/webhooks/crm",
        Some(json!({"url": rx.url()})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    node.kill().await;
    let args = with_key(&new);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut node = Proc::start(&args, &[]).await;
    let before = rx.got().len();
    change(&node.addr, "k3").await;
    until("k3 delivered with the new key alone", || async {
        (delivered(&rx).len() >= 6).then_some(())
    })
    .await;
    let after = rx.got();
    assert!(
        after.len() > before,
        "nothing was sent after the key change"
    );
    assert!(
        after[before..].iter().all(|g| g.signed_by(&secret)),
        "not signed with the endpoint's secret"
    );
    // A rotation under the new key: stored sealed, and both secrets sign.
    let (status, rotated) = api(&node.addr, "POST", "/api/v1/webhooks/crm/rotate", None).await;
    assert_eq!(status, 200, "{rotated}");
    let fresh = rotated["secret"]
        .as_str()
        .expect("the new secret")
        .to_string();
    let stored = at_rest(&dir, redis.as_ref());
    assert!(
        !stored.contains(fresh.trim_start_matches("whsec_")),
        "the rotated secret is stored in the clear"
    );
    let before = rx.got().len();
    change(&node.addr, "k4").await;
    until("k4 delivered", || async {
        (delivered(&rx).len() >= 8).then_some(())
    })
    .await;
    assert!(
        rx.got()[before..]
            .iter()
            .all(|g| g.signed_by(&fresh) && g.signed_by(&secret)),
        "not signed with both secrets of the rotation"
    );
    node.kill().await;

    // A key that is not one: the node does not start.
    let args = with_key("not-a-key");
    let out = tokio::process::Command::new(common::process::BIN)
        .args(&args)
        .output()
        .await
        .expect("run");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--webhook-secrets-key"),
        "{out:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
