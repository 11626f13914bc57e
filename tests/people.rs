//! The wallboard's "People and channels" view (`src/wallboard/js/people.js`,
//! the admin's directory at runtime, PROTOCOL.md §7.1) used from the keyboard
//! in a real headless Chromium (Debian's `chromium`, driven by
//! `playwright-core`) against the real binary, while the wallboard shows a
//! directory of 3 000 agents, 2 000 of them on real WebSockets changing state
//! all the time: an agent added with an assigned queue (typed while another
//! admin adds a channel) reaches the supervisor's list and signs in; a
//! supervisor's scope edited restarts its session (4012) in the new scope; a
//! channel renamed, then deleted after a confirmation that Escape cancels; the
//! agent deleted leaves the lists; an id with '/' shows the hub's message and
//! keeps the typed values; `not_found` for a user deleted meanwhile; and an
//! axe-core scan with the view open finds no serious or critical violation.
//! Each step checks the hub itself (a second admin's `directory`, the
//! agent's and the supervisor's sockets and page). See
//! `tests/browser/people.mjs`; the screenshot goes to
//! `tests/artifacts/people.png`.
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
async fn an_admin_manages_people_and_channels_from_the_keyboard_while_live_data_flows() {
    let tools = browser("browser test (tests/people.rs)");
    const AGENTS: usize = 3000;
    const ONLINE: usize = 2000;
    let (node, _directory) = tools.node_with_agents("people", AGENTS, &[]).await;
    let run = tools
        .run(
            "people.mjs",
            &[
                node.addr.clone(),
                SECRET.to_string(),
                AGENTS.to_string(),
                ONLINE.to_string(),
            ],
            "people.png",
            Duration::from_secs(480),
        )
        .await;
    eprintln!("{}", run.stdout);
    run.assert_passed();
}
