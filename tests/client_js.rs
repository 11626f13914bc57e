//! The JavaScript client library's own tests (`clients/js/test/*.test.mjs`,
//! `node --test`) against this build's `presence-hub` binary, so the one
//! `cargo test` covers them: agent and supervisor round trips, refused
//! requests, reconnects (abrupt drop, SIGTERM drain over two nodes and a
//! Redis), resume, the version rule, and that the generated types match
//! `protocol/schemas/`.
//!
//! Needs `node` (20+) and `redis-server`; `.ci/run` installs them. Without
//! node the test is ignored on a developer machine (`build.rs`: `cargo test`
//! counts and names it), and fails in CI (`CI` set).

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncReadExt;

const BIN: &str = env!("CARGO_BIN_EXE_presence-hub");

/// Node 20 has `WebSocket` only behind a flag; 22+ has it by default.
fn node_major() -> Option<u32> {
    let out = Command::new("node").arg("--version").output().ok()?;
    let version = String::from_utf8_lossy(&out.stdout);
    version
        .trim()
        .trim_start_matches('v')
        .split('.')
        .next()?
        .parse()
        .ok()
}

/// Whether `node --help` lists `flag`.
fn node_supports(flag: &str) -> bool {
    Command::new("node")
        .arg("--help")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).contains(flag))
        .unwrap_or(false)
}

/// `dir/*.test.mjs`, sorted, as paths relative to the package
/// (`test/agent.test.mjs`, …).
fn test_files(dir: &Path) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").file_name())
        .filter_map(|name| name.to_str().map(str::to_owned))
        .filter(|name| name.ends_with(".test.mjs"))
        .map(|name| format!("test/{name}"))
        .collect();
    files.sort();
    files
}

#[tokio::test]
#[cfg_attr(ph_no_node, ignore = "needs node 20+ (apt-get install nodejs)")]
async fn the_client_library_passes_its_tests_against_this_hub() {
    // Ignored at build time where node is missing and that is allowed (see
    // build.rs); a test that runs without node fails, never passes.
    let major =
        node_major().expect("the client library's tests need node 20+ (apt-get install nodejs)");
    assert!(
        major >= 20,
        "the client library needs node 20+, found {major}"
    );
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/js");
    let files = test_files(&dir.join("test"));
    assert!(!files.is_empty(), "no clients/js/test/*.test.mjs");
    let mut cmd = tokio::process::Command::new("node");
    if major < 22 {
        cmd.arg("--experimental-websocket");
    }
    // Explicit files: Node 21+ takes a directory argument of `--test` for a
    // file (and fails), Node 20 for a directory. A test that hangs fails on
    // its own, by name, after `--test-timeout`, and the others still run.
    cmd.args(["--test", "--test-reporter=spec", "--test-timeout=60000"]);
    // A file whose failed test left a reconnecting client or a timer behind
    // would keep its process, and so the run, alive: with Node 20.14+ the
    // runner ends each file when its tests have.
    if node_supports("--test-force-exit") {
        cmd.arg("--test-force-exit");
    }
    cmd.args(&files)
        .current_dir(&dir)
        .env("PRESENCE_HUB_BIN", BIN)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().expect("node runs");
    // Read as it comes, so a run that overstays still shows how far it got.
    let stdout = collect(child.stdout.take().expect("piped stdout"));
    let stderr = collect(child.stderr.take().expect("piped stderr"));
    let status = tokio::time::timeout(Duration::from_secs(240), child.wait()).await;
    let _ = child.kill().await;
    // What was read so far: a grandchild that kept a pipe open must not
    // hold the report back.
    let stdout = stdout.wait(Duration::from_secs(5)).await;
    let stderr = stderr.wait(Duration::from_secs(5)).await;
    let status = match status {
        Ok(status) => status.expect("wait for node"),
        Err(_) => panic!(
            "the client library's tests did not end within 240 s; what they printed:\n{stdout}\n{stderr}"
        ),
    };
    assert!(
        status.success(),
        "client library tests failed:\n{stdout}\n{stderr}"
    );
    // The spec reporter ends with "ℹ pass N": some tests must have run.
    let passed: u32 = stdout
        .lines()
        .find_map(|line| line.strip_prefix("ℹ pass "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    assert!(passed > 0, "no client library test ran:\n{stdout}");
}

/// What a child printed on one pipe, read as it comes.
struct Collected {
    text: Arc<Mutex<Vec<u8>>>,
    reader: tokio::task::JoinHandle<()>,
}

impl Collected {
    /// Until the pipe closes or `grace` passes, then whatever was read.
    async fn wait(self, grace: Duration) -> String {
        let _ = tokio::time::timeout(grace, self.reader).await;
        let bytes = self.text.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

fn collect(mut pipe: impl tokio::io::AsyncRead + Unpin + Send + 'static) -> Collected {
    let text = Arc::new(Mutex::new(Vec::new()));
    let sink = text.clone();
    let reader = tokio::spawn(async move {
        let mut chunk = [0u8; 8192];
        while let Ok(n @ 1..) = pipe.read(&mut chunk).await {
            if let Ok(mut text) = sink.lock() {
                text.extend_from_slice(&chunk[..n]);
            }
        }
    });
    Collected { text, reader }
}
