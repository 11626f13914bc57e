//! The wallboard in a real headless Chromium (Debian's `chromium`, driven by
//! `playwright-core` from npm) against the real binary with a generated
//! directory of 400 agents, every one connected over a real WebSocket by the
//! script: totals, filters and sort after a burst; forms, channel choices and
//! admin edits that survive live updates and act on the right agent; pending
//! pauses; the stale-data state while the hub is away. See
//! `tests/browser/wallboard.mjs` for each step. A screenshot is saved to
//! `tests/artifacts/wallboard.png`.
//!
//! Needs `/usr/bin/chromium`, `node` and `npm ci --prefix tests/browser`;
//! `.ci/run` installs them. Without them the test is ignored on a developer
//! machine (`build.rs`: `cargo test` counts and names it), and fails in CI
//! (`CI` set), where they must be there.

mod common;

use common::process::Proc;
use common::*;

#[tokio::test]
#[cfg_attr(
    ph_no_browser,
    ignore = "needs chromium, node and playwright-core (see build.rs)"
)]
async fn the_wallboard_at_400_agents_acts_on_the_right_agent_under_live_updates() {
    let tools = browser("browser test (tests/browser.rs)");
    const AGENTS: usize = 400;
    let directory =
        std::env::temp_dir().join(format!("presence-hub-browser-{}.json", std::process::id()));
    let made = std::process::Command::new("node")
        .arg(tools.dir.join("directory.mjs"))
        .arg(AGENTS.to_string())
        .arg(&directory)
        .status()
        .expect("node writes the directory");
    assert!(made.success(), "directory.mjs failed");
    // One run: no retry. (A row click that once failed now and then was the
    // list handing a row's element to another agent under live updates; the
    // list keeps an agent's element while the agent stays in view.)
    let node = Proc::start(
        &[
            "--listen",
            "127.0.0.1:0",
            "--directory",
            directory.to_str().expect("utf-8 temp path"),
        ],
        &[("PRESENCE_HUB_JWT_SECRET", SECRET)],
    )
    .await;
    let run = tools
        .run(
            "wallboard.mjs",
            &[node.addr.clone(), SECRET.to_string(), AGENTS.to_string()],
            "wallboard.png",
            std::time::Duration::from_secs(240),
        )
        .await;
    let _ = std::fs::remove_file(&directory);
    run.assert_passed();
}
