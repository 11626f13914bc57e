//! The supervisor's and the agent's screens used side by side in a real
//! headless Chromium (Debian's `chromium`, driven by `playwright-core` from
//! npm) against the real binary, keyboard first, while 40 agents on real
//! WebSockets change status all the time (issue 23): the wallboard's token
//! leaves its URL and stays with the tab; never-signed-in agents show "—"
//! and sort last; an agent's own pause stays theirs across device events
//! (`status_by`); Enter on the pause form's reason list confirms; focus
//! returns to the control that opened a form or ran an action, on both
//! pages; a withdrawn pending pause is announced; a monitor prompt closes
//! when the request times out or is withdrawn (`command_ended`); an outage
//! leaves no stale error and shows the status as stale; the agent's "today"
//! panel counts its day live and the same from the hub's history; the
//! wallboard's list works from the keyboard and keeps the focus on its agent
//! across a re-sort; a refusal for want of a connection leaves the wallboard's
//! panel once live again; one tone module sounds on both pages; and an
//! axe-core scan of both pages finds no serious or critical violation. See
//! `tests/browser/screens.mjs`; screenshots go to `tests/artifacts/`.
//!
//! Needs `/usr/bin/chromium`, `node` and `npm ci --prefix tests/browser`
//! (playwright-core and axe-core): without them the test is ignored on a
//! developer machine (`build.rs`) and fails in CI (`CI` set).

mod common;

use common::*;
use std::time::Duration;

#[tokio::test]
#[cfg_attr(
    ph_no_browser,
    ignore = "needs chromium, node, playwright-core and axe-core (see build.rs)"
)]
async fn both_screens_work_from_the_keyboard_while_live_data_flows() {
    let tools = browser("browser test (tests/screens.rs)");
    let (node, _directory) = tools
        .node_with_agents(
            "screens",
            60,
            &[
                // A monitor request nobody answers ends soon (defect 1); the
                // agent page's proxy cut comes back well inside the grace.
                "--command-timeout-ms",
                "2500",
                "--reconnect-grace-ms",
                "15000",
                // The agent's "today" panel is compared before and after a
                // reload: none of its day may leave the history meanwhile.
                "--history-capacity",
                "200000",
            ],
        )
        .await;
    let run = tools
        .run(
            "screens.mjs",
            &[node.addr.clone(), SECRET.to_string()],
            "screens.png",
            Duration::from_secs(360),
        )
        .await;
    run.assert_passed();
}
