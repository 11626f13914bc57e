//! The agent dashboard (`/agent`) in a real headless Chromium (Debian's
//! `chromium`, driven by `playwright-core` from npm) against the real binary,
//! beside a supervisor and an admin on raw WebSockets: pause with a code,
//! a supervisor's unpause announced, assigned / unassigned / lingering
//! channels, a monitor prompt accepted from the keyboard, the softphone
//! simulator through busy and wrap-up, a reload with no offline flap, and a
//! supervisor's sign-out. The script is `tests/browser/agent.mjs`; the
//! screenshot goes to `tests/artifacts/agent.png`.
//!
//! Needs `/usr/bin/chromium`, `node` and `npm ci --prefix tests/browser`.
//! Without them the test says so and passes on a developer machine, but
//! fails in CI (`CI` set), where they must be there.

mod common;

use common::process::Proc;
use common::*;
use std::path::Path;

#[tokio::test]
async fn an_agent_works_from_the_dashboard_beside_a_supervisor() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("tests/browser");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let missing: Vec<&str> = [
        (!Path::new(&chromium).exists()).then_some("chromium (apt-get install chromium)"),
        (!dir.join("node_modules/playwright-core").exists())
            .then_some("playwright-core (npm ci --prefix tests/browser)"),
        std::process::Command::new("node")
            .arg("--version")
            .output()
            .is_err()
            .then_some("node"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !missing.is_empty() {
        let why = format!("browser test needs {}", missing.join(", "));
        assert!(std::env::var_os("CI").is_none(), "{why}");
        eprintln!("skipped: {why}");
        return;
    }
    let directory = root.join("tests/common/directory.json");
    // A reload must come back well inside the grace even on a loaded machine;
    // heartbeats are fast so presence is exercised.
    let node = Proc::start(
        &[
            "--listen",
            "127.0.0.1:0",
            "--directory",
            directory.to_str().expect("utf-8 path"),
            "--reconnect-grace-ms",
            "15000",
            "--heartbeat-interval-ms",
            "1000",
            "--command-timeout-ms",
            "15000",
        ],
        &[("PRESENCE_HUB_JWT_SECRET", SECRET)],
    )
    .await;
    let artifacts = root.join("tests/artifacts");
    std::fs::create_dir_all(&artifacts).expect("artifacts dir");
    let screenshot = artifacts.join("agent.png");
    let _ = std::fs::remove_file(&screenshot);
    let out = tokio::process::Command::new("node")
        .arg("--experimental-websocket")
        .arg(dir.join("agent.mjs"))
        .arg(format!("http://{}", node.addr))
        .arg(token("acme", "a1"))
        .arg(token("acme", "s1"))
        .arg(token("acme", "ad1"))
        .arg(&screenshot)
        .env("CHROMIUM", &chromium)
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(180), out)
        .await
        .expect("the browser test ends")
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "browser test failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("browser test passed"), "{stdout}");
    // Shown in the test's output (cargo test -- --nocapture): which §9 steps
    // this hub could not run yet.
    for line in stdout.lines().filter(|l| l.starts_with("PENDING")) {
        eprintln!("{line}");
    }
    let png = std::fs::read(&screenshot).expect("a screenshot");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "a real screenshot"
    );
}
