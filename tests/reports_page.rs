//! The wallboard's Reports view (`src/wallboard/js/reports.js`, issue 25)
//! used from the keyboard in a real headless Chromium (`playwright-core`)
//! against the real binary, with a directory of 1 200 agents, 800 of them on
//! real WebSockets changing state all the time: today per agent (the rows
//! the hub's own report lists), per team, yesterday, the CSV download, the
//! print stylesheet, in the browser's time zone, and an axe-core scan with a
//! report shown. See `tests/browser/reports.mjs`; the screenshot goes to
//! `tests/artifacts/reports.png`.
//!
//! Needs `/usr/bin/chromium`, `node` and `npm ci --prefix tests/browser`:
//! without them the test is ignored on a developer machine (`build.rs`) and
//! fails in CI (`CI` set).

mod common;

use common::*;
use std::time::Duration;

#[tokio::test]
#[cfg_attr(
    ph_no_browser,
    ignore = "needs chromium, node, playwright-core and axe-core (see build.rs)"
)]
async fn an_admin_reads_today_and_yesterday_per_agent_and_team_from_the_keyboard() {
    let tools = browser("browser test (tests/reports_page.rs)");
    const AGENTS: usize = 1200;
    const ONLINE: usize = 800;
    let (node, _directory) = tools.node_with_agents("reports", AGENTS, &[]).await;
    let run = tools
        .run(
            "reports.mjs",
            &[
                node.addr.clone(),
                SECRET.to_string(),
                AGENTS.to_string(),
                ONLINE.to_string(),
            ],
            "reports.png",
            Duration::from_secs(480),
        )
        .await;
    eprintln!("{}", run.stdout);
    run.assert_passed();
}
