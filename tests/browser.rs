//! The wallboard in a real headless Chromium (Debian's `chromium`, driven by
//! `playwright-core` from npm): an agent connects, the page shows them, a
//! click pauses them, the page and the agent's client both see it, and a
//! screenshot is saved to `tests/artifacts/wallboard.png`.
//!
//! Needs `/usr/bin/chromium`, `node` and `npm ci --prefix tests/browser`;
//! `.ci/run` installs them. Without them the test prints SKIPPED in the
//! `cargo test` output and passes on a developer machine, but fails in CI
//! (`CI` set), where they must be there.

mod common;

use common::process::Proc;
use common::*;
use std::path::Path;

#[tokio::test]
async fn the_wallboard_shows_an_agent_and_pauses_them_with_a_click() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
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
        let why = format!("needs {}", missing.join(", "));
        return skip("browser test (tests/browser.rs)", &why);
    }
    let node = Proc::start(
        &["--listen", "127.0.0.1:0"],
        &[("PRESENCE_HUB_JWT_SECRET", SECRET)],
    )
    .await;
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/artifacts");
    std::fs::create_dir_all(&artifacts).expect("artifacts dir");
    let screenshot = artifacts.join("wallboard.png");
    let _ = std::fs::remove_file(&screenshot);
    let out = tokio::process::Command::new("node")
        .arg("--experimental-websocket")
        .arg(dir.join("wallboard.mjs"))
        .arg(format!("http://{}", node.addr))
        .arg(token("acme", "s1"))
        .arg(token("acme", "a1"))
        .arg(&screenshot)
        .env("CHROMIUM", &chromium)
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(60), out)
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
    let png = std::fs::read(&screenshot).expect("a screenshot");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "a real screenshot"
    );
}
