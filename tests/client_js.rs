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
use std::process::Command;
use std::time::Duration;

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
    // file (and fails), Node 20 for a directory.
    cmd.args(["--test", "--test-reporter=spec"])
        .args(&files)
        .current_dir(&dir)
        .env("PRESENCE_HUB_BIN", BIN)
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(240), cmd.output())
        .await
        .expect("the client library's tests end within 240 s")
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
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
