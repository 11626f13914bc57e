//! Queue statistics on the wallboard in a real headless Chromium against
//! the real binary running its demo (data flows all the time): an ACD's push
//! shows on the channel card, an alert on waiting set from the keyboard
//! highlights it in words, stale statistics say "stale" in text, and
//! axe-core finds no serious violation. See `tests/browser/queue_stats.mjs`.
//!
//! Needs `/usr/bin/chromium`, `node` and `npm ci --prefix tests/browser`:
//! without them the test is ignored on a developer machine (`build.rs`).

mod common;

use common::process::Proc;
use common::*;
use std::time::Duration;

#[tokio::test]
#[cfg_attr(
    ph_no_browser,
    ignore = "needs chromium, node, playwright-core and axe-core (see build.rs)"
)]
async fn the_sales_card_shows_the_acds_statistics_alerts_and_staleness() {
    let tools = browser("browser test (tests/queue_stats_screen.rs)");
    let node = Proc::start(
        &[
            "--listen",
            "127.0.0.1:0",
            // Stale soon, so the test sees it without waiting half a minute.
            "--queue-stats-stale-s",
            "2",
        ],
        &[
            ("PRESENCE_HUB_JWT_SECRET", SECRET),
            ("PRESENCE_HUB_NO_DEMO", "false"),
        ],
    )
    .await;
    let run = tools
        .run(
            "queue_stats.mjs",
            &[node.addr.clone(), SECRET.to_string()],
            "queue_stats.png",
            Duration::from_secs(120),
        )
        .await;
    run.assert_passed();
}
