//! Test harness: a real node on a real TCP port, and a WebSocket client that
//! waits for messages with deadlines (never sleeps to synchronise).
//!
//! The same test files run twice: as `sessions`, `presence`, … against one
//! node with the in-memory backplane, and as `cluster_sessions`,
//! `cluster_presence`, … (see Cargo.toml) against three nodes sharing a
//! `redis-server` this harness starts, with agents on one node, supervisors
//! on another and raw connections on the third.
#![allow(dead_code)]

pub mod docs;
pub mod haproxy;
pub mod http;
pub mod process;
pub mod proxy;
pub mod raw;
pub mod redis;
pub mod sentinel;
pub mod tls;

use futures_util::{SinkExt, StreamExt};
use presence_hub::config::Config;
use presence_hub::directory::Directory;
use presence_hub::node::Node;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const SECRET: &str = "test-secret";

/// Fails a test whose outside tools are missing. A test that needs them is
/// `#[ignore]`d at build time when they are missing on a developer machine
/// (`build.rs` sets `ph_no_browser`, `ph_no_haproxy`, `ph_no_node`), so the
/// summary counts it as ignored and names what it needs; in CI (`CI` set)
/// it is never ignored and fails here. A test that runs therefore has its
/// tools, or fails: it never passes without having run.
pub fn missing(test: &str, why: &str) -> ! {
    panic!(
        "{test}: {why} (in CI the tools must be there; elsewhere a rebuild \
         after removing them marks the test ignored)"
    )
}

/// What a browser test drives: Debian's Chromium (or `$CHROMIUM`) and the
/// scripts in `tests/browser/` with their `playwright-core`.
pub struct Browser {
    pub chromium: String,
    pub dir: std::path::PathBuf,
}

/// The browser test's tools; fails the test when one is missing (see
/// [`missing`]).
pub fn browser(test: &str) -> Browser {
    use std::path::Path;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let lacking: Vec<&str> = [
        (!Path::new(&chromium).exists()).then_some("chromium (apt-get install chromium)"),
        (!dir.join("node_modules/playwright-core").exists())
            .then_some("playwright-core (npm ci --prefix tests/browser)"),
        (!dir.join("node_modules/axe-core").exists())
            .then_some("axe-core (npm ci --prefix tests/browser)"),
        std::process::Command::new("node")
            .arg("--version")
            .output()
            .is_err()
            .then_some("node"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !lacking.is_empty() {
        missing(test, &format!("needs {}", lacking.join(", ")));
    }
    Browser { chromium, dir }
}

/// A directory of generated agents in a temporary file
/// ([`Browser::node_with_agents`]), removed when dropped.
pub struct GeneratedDirectory(pub std::path::PathBuf);

impl Drop for GeneratedDirectory {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// One run of a script of `tests/browser/`, as [`Browser::run`] left it.
pub struct BrowserRun {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
    screenshot: std::path::PathBuf,
}

impl Browser {
    /// A node (the real binary, tokens signed with [`SECRET`]) on a
    /// directory of `agents` agents that `tests/browser/directory.mjs`
    /// generates, with `flags` added; the directory lasts as long as the
    /// guard. `name` tells test runs' files apart.
    pub async fn node_with_agents(
        &self,
        name: &str,
        agents: usize,
        flags: &[&str],
    ) -> (process::Proc, GeneratedDirectory) {
        let directory = GeneratedDirectory(
            std::env::temp_dir().join(format!("presence-hub-{name}-{}.json", std::process::id())),
        );
        let made = std::process::Command::new("node")
            .arg(self.dir.join("directory.mjs"))
            .arg(agents.to_string())
            .arg(&directory.0)
            .status()
            .expect("node writes the directory");
        assert!(made.success(), "directory.mjs failed");
        let path = directory.0.to_str().expect("utf-8 temp path");
        let mut args = vec!["--listen", "127.0.0.1:0", "--directory", path];
        args.extend_from_slice(flags);
        let node = process::Proc::start(&args, &[("PRESENCE_HUB_JWT_SECRET", SECRET)]).await;
        (node, directory)
    }

    /// Runs `node --experimental-websocket tests/browser/<script> ARGS…
    /// SCREENSHOT` against this Chromium, the screenshot going to
    /// `tests/artifacts/<screenshot>` (removed first, so a stale one cannot
    /// pass for this run's). Panics if the script does not end `within`.
    pub async fn run(
        &self,
        script: &str,
        args: &[String],
        screenshot: &str,
        within: std::time::Duration,
    ) -> BrowserRun {
        let artifacts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/artifacts");
        std::fs::create_dir_all(&artifacts).expect("artifacts dir");
        let screenshot = artifacts.join(screenshot);
        let _ = std::fs::remove_file(&screenshot);
        let out = tokio::process::Command::new("node")
            .arg("--experimental-websocket")
            .arg(self.dir.join(script))
            .args(args)
            .arg(&screenshot)
            .env("CHROMIUM", &self.chromium)
            .output();
        let out = tokio::time::timeout(within, out)
            .await
            .expect("the browser test ends")
            .expect("node runs");
        BrowserRun {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            screenshot,
        }
    }
}

impl BrowserRun {
    /// The script passed, said so, and left a real screenshot.
    pub fn assert_passed(&self) {
        let (stdout, stderr) = (&self.stdout, &self.stderr);
        assert!(self.ok, "browser test failed:\n{stdout}\n{stderr}");
        assert!(stdout.contains("browser test passed"), "{stdout}");
        let png = std::fs::read(&self.screenshot).expect("a screenshot");
        assert!(
            png.starts_with(b"\x89PNG") && png.len() > 10_000,
            "a real screenshot"
        );
    }
}

/// The `n`th of the demo directory's pause reason codes (it lists them, so a
/// free-text reason is refused there): changes that need distinct pauses
/// take turns.
pub fn demo_reason(n: impl TryInto<usize>) -> &'static str {
    const CODES: [&str; 5] = ["break", "lunch", "training", "meeting", "coaching"];
    CODES[n.try_into().unwrap_or(0) % CODES.len()]
}

/// A number the hub must have sent: panics when `v` is missing or not an
/// unsigned integer, so a comparison such as `u64_of(&a) > u64_of(&b)`
/// cannot pass on an absent field (as `a.as_u64() > b.as_u64()` does when
/// `b` is absent: `Some(_) > None`).
#[track_caller]
pub fn u64_of(v: &Value) -> u64 {
    v.as_u64()
        .unwrap_or_else(|| panic!("expected an unsigned integer, got {v}"))
}

/// Validators for `protocol/schemas`, built once per test binary.
pub struct Schemas {
    pub client: jsonschema::Validator,
    pub server: jsonschema::Validator,
    /// One event of the agent event stream (protocol/EVENTS.md).
    pub event: jsonschema::Validator,
}

pub fn schemas() -> &'static Schemas {
    static SCHEMAS: std::sync::OnceLock<Schemas> = std::sync::OnceLock::new();
    SCHEMAS.get_or_init(|| {
        let load = |name: &str| -> Value {
            let path = format!("{}/protocol/schemas/{name}", env!("CARGO_MANIFEST_DIR"));
            serde_json::from_str(&std::fs::read_to_string(&path).expect("schema file"))
                .expect("schema JSON")
        };
        let common = load("common.schema.json");
        let registry = jsonschema::Registry::new()
            .add(
                "https://presence-hub.invalid/schemas/common.schema.json",
                common,
            )
            .expect("common schema")
            .prepare()
            .expect("registry");
        let build = |name: &str| {
            jsonschema::options()
                .with_registry(&registry)
                .build(&load(name))
                .expect("valid schema")
        };
        Schemas {
            client: build("client.schema.json"),
            server: build("server.schema.json"),
            event: build("event.schema.json"),
        }
    })
}

/// Fails the test when `message` does not follow the documented schema.
pub fn assert_schema(validator: &jsonschema::Validator, message: &Value) {
    let errors: Vec<String> = validator
        .iter_errors(message)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "message does not match protocol/schemas: {message}\n{}",
        errors.join("\n")
    );
}
pub const DIRECTORY: &str = include_str!("directory.json");
/// How long any single expectation may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(5);

/// Whether this test binary runs its tests against a 3-node cluster.
pub const CLUSTER: bool = {
    let name = env!("CARGO_CRATE_NAME").as_bytes();
    let prefix = b"cluster_";
    let mut i = 0;
    let mut yes = name.len() >= prefix.len();
    while yes && i < prefix.len() {
        yes = name[i] == prefix[i];
        i += 1;
    }
    yes
};

/// One running node.
pub struct TestNode {
    pub addr: SocketAddr,
    pub hub: Arc<presence_hub::hub::Hub>,
    stop: Option<oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<()>>,
}

impl TestNode {
    pub async fn start(config: Config) -> TestNode {
        TestNode::start_in(config, Directory::parse(DIRECTORY).expect("test directory")).await
    }

    pub async fn start_in(config: Config, directory: Directory) -> TestNode {
        let node = Node::bind_with(config, directory)
            .await
            .expect("node starts");
        let (addr, hub) = (node.addr, node.hub.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let done = tokio::spawn(async move {
            let _ = node
                .serve(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        TestNode {
            addr,
            hub,
            stop: Some(stop),
            done: Some(done),
        }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/v1/ws", self.addr)
    }

    /// Starts a graceful drain and waits for the node to finish it.
    pub async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(done) = self.done.take() {
            tokio::time::timeout(Duration::from_secs(10), done)
                .await
                .expect("drains in time")
                .expect("serve task");
        }
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(done) = self.done.take() {
            done.abort();
        }
    }
}

/// The hub under test: one node, or three nodes and their Redis.
pub struct TestHub {
    /// Where supervisors connect (and `url()` points).
    pub addr: SocketAddr,
    pub nodes: Vec<TestNode>,
    pub redis: Option<redis::RedisServer>,
}

/// Test defaults: fast timings where tests wait on them, generous elsewhere.
pub fn test_config() -> Config {
    let mut c = Config::defaults();
    c.listen = "127.0.0.1:0".parse().expect("addr");
    c.jwt_secret = Some(SECRET.into());
    c.reconnect_grace_ms = 300;
    c.auth_timeout_ms = 1_000;
    c.command_timeout_ms = 1_000;
    c.drain_timeout_ms = 2_000;
    c
}

impl TestHub {
    pub async fn start() -> TestHub {
        TestHub::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestHub {
        TestHub::start_in(tweak, || {
            Directory::parse(DIRECTORY).expect("test directory")
        })
        .await
    }

    /// As `start_with`, with another directory (e.g. the built-in demo).
    pub async fn start_in(
        tweak: impl FnOnce(&mut Config),
        directory: impl Fn() -> Directory,
    ) -> TestHub {
        let mut config = test_config();
        tweak(&mut config);
        if !CLUSTER {
            let node = TestNode::start_in(config, directory()).await;
            return TestHub {
                addr: node.addr,
                nodes: vec![node],
                redis: None,
            };
        }
        let redis = redis::RedisServer::start();
        let mut nodes = Vec::new();
        for i in 0..3 {
            let mut c = config.clone();
            c.redis_url = Some(redis.url());
            c.node_id = Some(format!("node-{i}"));
            nodes.push(TestNode::start_in(c, directory()).await);
        }
        TestHub {
            addr: nodes[1].addr,
            nodes,
            redis: Some(redis),
        }
    }

    pub fn node(&self, i: usize) -> &TestNode {
        &self.nodes[i % self.nodes.len()]
    }

    /// Where supervisors connect.
    pub fn url(&self) -> String {
        self.node(1).url()
    }

    /// Drains every node.
    pub async fn shutdown(&mut self) {
        for node in &mut self.nodes {
            node.shutdown().await;
        }
    }

    /// A connection to the third node (the first in single-node mode).
    pub async fn raw(&self) -> Client {
        Client::connect(&self.node(2).url()).await
    }

    /// An agent device, after welcome and its first `state`.
    pub async fn agent(&self, user: &str, device: &str) -> Client {
        self.agent_in("acme", user, device).await
    }

    pub async fn agent_in(&self, tenant: &str, user: &str, device: &str) -> Client {
        let mut c = Client::connect(&self.node(0).url()).await;
        c.send(json!({"type": "hello", "token": token(tenant, user), "role": "agent",
                      "device": {"id": device, "kind": "softphone", "label": format!("{device} of {user}")}}))
            .await;
        let welcome = c.recv_type("welcome").await;
        assert_eq!(welcome["user"]["id"], user);
        let state = c.recv_type("state").await;
        assert_eq!(state["agent"]["id"], user);
        c
    }

    /// A supervisor (or admin) connection after welcome.
    pub async fn staff(&self, user: &str, role: &str) -> Client {
        self.staff_in("acme", user, role).await
    }

    pub async fn staff_in(&self, tenant: &str, user: &str, role: &str) -> Client {
        staff_at(&self.url(), tenant, user, role).await
    }

    /// A supervisor subscribed to everything, with its snapshot.
    pub async fn watcher(&self, user: &str) -> (Client, Value) {
        let mut s = self.staff(user, "supervisor").await;
        let snapshot = s.subscribe(json!({"all": true})).await;
        (s, snapshot)
    }
}

pub fn token(tenant: &str, user: &str) -> String {
    presence_hub::auth::mint(SECRET, tenant, user, 600).expect("mint")
}

pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    /// Messages read while waiting for something else, in arrival order.
    backlog: VecDeque<Value>,
}

/// What the server did with the connection, when it ended.
#[derive(Debug, PartialEq, Eq)]
pub struct Closed {
    pub code: u16,
    pub reason: String,
}

impl Client {
    pub async fn connect(url: &str) -> Client {
        let (ws, _) = tokio::time::timeout(DEADLINE, tokio_tungstenite::connect_async(url))
            .await
            .expect("connect in time")
            .expect("connect");
        Client {
            ws,
            next_id: 1,
            backlog: VecDeque::new(),
        }
    }

    /// Wraps an already connected stream.
    pub fn from_stream(ws: WebSocketStream<MaybeTlsStream<TcpStream>>) -> Client {
        Client {
            ws,
            next_id: 1,
            backlog: VecDeque::new(),
        }
    }

    /// Connects over a socket with a tiny receive buffer (a slow reader
    /// whose backlog piles up at the hub, not in the kernel).
    pub async fn connect_small_buffer(addr: SocketAddr, url: &str) -> Client {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(4096).expect("rcvbuf");
        let stream = socket.connect(addr).await.expect("tcp connect");
        let (ws, _) = tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(stream))
            .await
            .expect("ws handshake");
        Client {
            ws,
            next_id: 1,
            backlog: VecDeque::new(),
        }
    }

    pub async fn send(&mut self, value: Value) {
        self.send_raw(&value.to_string()).await;
    }

    pub async fn send_raw(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.expect("send");
    }

    /// Writes many text messages in one burst (one flush).
    pub async fn burst(&mut self, texts: impl IntoIterator<Item = String>) {
        for t in texts {
            self.ws.feed(Message::text(t)).await.expect("feed");
        }
        self.ws.flush().await.expect("flush");
    }

    pub async fn send_message(&mut self, m: Message) {
        self.ws.send(m).await.expect("send");
    }

    /// The next JSON message from the server (backlog first).
    pub async fn recv(&mut self) -> Value {
        if let Some(v) = self.backlog.pop_front() {
            return v;
        }
        self.read()
            .await
            .unwrap_or_else(|closed| panic!("connection closed while waiting: {closed:?}"))
    }

    async fn read(&mut self) -> Result<Value, Closed> {
        tokio::time::timeout(DEADLINE, self.read_any())
            .await
            .expect("a message within the deadline")
    }

    /// The next message, however long it takes (callers set the deadline).
    async fn read_any(&mut self) -> Result<Value, Closed> {
        loop {
            let next = self.ws.next().await;
            match next {
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(&t).expect("server sends JSON");
                    // Every message any test receives, checked in this one
                    // place against the documented contract.
                    assert_schema(&schemas().server, &v);
                    return Ok(v);
                }
                Some(Ok(Message::Close(frame))) => {
                    // Answer the close at once, as a browser does.
                    let _ = self.ws.flush().await;
                    return Err(frame
                        .map(|f| Closed {
                            code: u16::from(f.code),
                            reason: f.reason.to_string(),
                        })
                        .unwrap_or(Closed {
                            code: 1005,
                            reason: String::new(),
                        }));
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => {
                    return Err(Closed {
                        code: 1006,
                        reason: e.to_string(),
                    })
                }
                None => {
                    return Err(Closed {
                        code: 1006,
                        reason: "eof".into(),
                    })
                }
            }
        }
    }

    /// The next message within `within`: `Ok(None)` when none came,
    /// `Err` when the connection closed (for clients that reconnect).
    pub async fn try_recv(&mut self, within: Duration) -> Result<Option<Value>, Closed> {
        if let Some(v) = self.backlog.pop_front() {
            return Ok(Some(v));
        }
        match tokio::time::timeout(within, self.read()).await {
            Ok(Ok(v)) => Ok(Some(v)),
            Ok(Err(closed)) => Err(closed),
            Err(_) => Ok(None),
        }
    }

    /// Waits for the first message matching `pred`, keeping the others.
    pub async fn recv_where(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        self.recv_where_within(what, DEADLINE, pred).await
    }

    /// As [`Client::recv_where`], for what comes at a random time (the
    /// demo's simulated agents) and needs a longer deadline.
    pub async fn recv_where_within(
        &mut self,
        what: &str,
        within: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        if let Some(i) = self.backlog.iter().position(&pred) {
            return self.backlog.remove(i).expect("index");
        }
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let v = tokio::time::timeout_at(deadline, self.read_any())
                .await
                .unwrap_or_else(|_| {
                    let last: Vec<_> = self.backlog.iter().rev().take(3).collect();
                    panic!(
                        "no {what} within the deadline; {} other messages, the last: {last:?}",
                        self.backlog.len()
                    )
                })
                .unwrap_or_else(|closed| panic!("closed ({closed:?}) while waiting for {what}"));
            if pred(&v) {
                return v;
            }
            self.backlog.push_back(v);
        }
    }

    pub async fn recv_type(&mut self, kind: &str) -> Value {
        self.recv_where(kind, |v| v["type"] == kind).await
    }

    /// Sends a request with a fresh id; returns its reply.
    pub async fn request(&mut self, mut body: Value) -> Value {
        let id = format!("r{}", self.next_id);
        self.next_id += 1;
        body["id"] = json!(id);
        self.send(body).await;
        self.recv_where(&format!("reply {id}"), |v| {
            v["type"] == "reply" && v["id"] == id.as_str()
        })
        .await
    }

    /// A request that must succeed; returns its `result`.
    pub async fn ok(&mut self, body: Value) -> Value {
        let reply = self.request(body.clone()).await;
        assert_eq!(reply["ok"], true, "{body} was refused: {reply}");
        reply["result"].clone()
    }

    /// A request that must fail with `code`; returns the error.
    pub async fn refused(&mut self, body: Value, code: &str) -> Value {
        let reply = self.request(body.clone()).await;
        assert_eq!(
            reply["ok"], false,
            "{body} should have been refused: {reply}"
        );
        assert_eq!(reply["error"]["code"], code, "{body}: {reply}");
        assert!(reply["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
        reply["error"].clone()
    }

    /// Subscribes and returns the snapshot.
    pub async fn subscribe(&mut self, scope: Value) -> Value {
        self.ok(json!({"type": "subscribe", "scope": scope})).await;
        self.recv_type("snapshot").await
    }

    /// Waits for a delta about `agent` satisfying `pred`; returns the record.
    pub async fn agent_update(&mut self, agent: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let v = self
            .recv_where(&format!("agent {agent} delta"), |v| {
                v["type"] == "agent" && v["agent"]["id"] == agent && pred(&v["agent"])
            })
            .await;
        v["agent"].clone()
    }

    /// Waits for this agent connection's own `state` satisfying `pred`.
    pub async fn state(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        let v = self
            .recv_where("state", |v| v["type"] == "state" && pred(&v["agent"]))
            .await;
        v["agent"].clone()
    }

    /// Waits for the server to close the connection; returns code and reason.
    pub async fn closed(&mut self) -> Closed {
        loop {
            match self.read().await {
                Ok(v) => self.backlog.push_back(v),
                Err(closed) => return closed,
            }
        }
    }

    /// The close, which must be the very next thing the hub sends.
    pub async fn closed_next(&mut self) -> Closed {
        match self.read().await {
            Ok(v) => panic!("expected the close, got {v}"),
            Err(closed) => closed,
        }
    }

    /// A clean close from the client side.
    pub async fn close(mut self) {
        let _ = self
            .ws
            .close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
                code: CloseCode::Normal,
                reason: "bye".into(),
            }))
            .await;
        // Wait for the server's answer so the close is complete.
        let _ =
            tokio::time::timeout(DEADLINE, async { while self.ws.next().await.is_some() {} }).await;
    }

    /// Drops the TCP connection without a close frame (a network cut).
    pub fn drop_abruptly(self) {
        drop(self);
    }

    /// Messages received and not yet consumed, after reading whatever the
    /// server sends within `quiet` (used to prove that nothing more comes).
    pub async fn drain_for(&mut self, quiet: Duration) -> Vec<Value> {
        while let Ok(Ok(v)) = tokio::time::timeout(quiet, self.read()).await {
            self.backlog.push_back(v);
        }
        self.backlog.drain(..).collect()
    }
}

/// A hello for `user` of `tenant` as an agent (device `d1`) on `url`: the
/// client after its `welcome`, or how the hub closed the connection.
pub async fn agent_hello(url: &str, tenant: &str, user: &str) -> Result<Client, Closed> {
    let mut c = Client::connect(url).await;
    c.send(
        json!({"type": "hello", "token": token(tenant, user), "role": "agent",
                  "device": {"id": "d1", "kind": "softphone"}}),
    )
    .await;
    match c.try_recv(DEADLINE).await {
        Ok(Some(v)) if v["type"] == "welcome" => Ok(c),
        Ok(Some(v)) => panic!("unexpected answer to hello: {v}"),
        Ok(None) => panic!("no answer to the hello in time"),
        Err(closed) => Err(closed),
    }
}

/// The record of `id` in a snapshot.
/// A supervisor or admin of `tenant` connected to `url`, welcomed.
pub async fn staff_at(url: &str, tenant: &str, user: &str, role: &str) -> Client {
    let mut c = Client::connect(url).await;
    c.send(json!({"type": "hello", "token": token(tenant, user), "role": role}))
        .await;
    let welcome = c.recv_type("welcome").await;
    assert_eq!(welcome["user"]["id"], user);
    c
}

pub fn in_snapshot<'a>(snapshot: &'a Value, id: &str) -> Option<&'a Value> {
    snapshot["agents"]
        .as_array()?
        .iter()
        .find(|a| a["id"] == id)
}

/// The `channels` entry of a record.
pub fn channel<'a>(agent: &'a Value, kind: &str, id: &str) -> Option<&'a Value> {
    agent["channels"]
        .as_array()?
        .iter()
        .find(|c| c["kind"] == kind && c["id"] == id)
}

/// `(connected, assigned)` of one channel of a record, if listed.
pub fn flags(agent: &Value, kind: &str, id: &str) -> Option<(bool, bool)> {
    let c = channel(agent, kind, id)?;
    Some((c["connected"] == true, c["assigned"] == true))
}

/// A supervisor asks to monitor an agent and the agent's device accepts;
/// returns the supervisor's reply.
pub async fn monitor_accepted(sup: &mut Client, agent: &mut Client, agent_id: &str) -> Value {
    let id = format!("monitor-{agent_id}");
    sup.send(json!({"type": "command", "id": id, "action": "monitor", "agent_id": agent_id}))
        .await;
    let cmd = agent
        .recv_where("monitor command", |v| {
            v["type"] == "command" && v["action"] == "monitor"
        })
        .await;
    agent
        .send(json!({"type": "command_ack", "command_id": cmd["command_id"], "ok": true}))
        .await;
    let reply = sup
        .recv_where("monitor reply", |v| {
            v["type"] == "reply" && v["id"] == id.as_str()
        })
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    reply
}
