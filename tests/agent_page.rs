//! The agent dashboard (`/agent`) in a real headless Chromium (Debian's
//! `chromium`, driven by `playwright-core` from npm) against the real binary,
//! beside the real wallboard (`/`, signed in as the supervisor) and an admin
//! on a raw WebSocket: pause with a code shown on the wallboard with its
//! label, an unpause from the wallboard announced, assigned / unassigned /
//! lingering channels, a monitor prompt refused with Escape and one accepted
//! from the keyboard (shown on the wallboard), the softphone simulator's chat
//! and call through busy and wrap-up, a reload with no offline state on the
//! wallboard, a sign-out from the wallboard, and (on a second hub in dev
//! mode) the one-click sign-in. The script is `tests/browser/agent.mjs`; the
//! screenshot goes to `tests/artifacts/agent.png`.
//!
//! Needs `/usr/bin/chromium`, `node` and `npm ci --prefix tests/browser`.
//! Without them the test is ignored on a developer machine (`build.rs`:
//! `cargo test` counts and names it), and fails in CI (`CI` set), where
//! they must be there.
//!
//! What a reload does on the wire is also tested without a browser: Chromium
//! closes the page's socket with 1001 ("going away"), which the hub treats
//! as a drop (the grace applies), not as a clean close.

mod common;

use common::process::{http_get, http_get_with, Proc};
use common::*;
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

fn going_away() -> Message {
    Message::Close(Some(CloseFrame {
        code: CloseCode::Away,
        reason: "page unloading".into(),
    }))
}

/// a1's record if `m` is a delta of it.
fn a1(m: &Value) -> Option<&Value> {
    (m["type"] == "agent" && m["agent"]["id"] == "a1").then(|| &m["agent"])
}

#[tokio::test]
async fn a_page_going_away_keeps_the_grace_and_a_reload_shows_no_flap() {
    let hub = TestHub::start_with(|c| c.reconnect_grace_ms = 3_000).await;
    let (mut sup, _) = hub.watcher("s1").await;
    let mut tab = hub.agent("a1", "tab-1").await;
    sup.recv_where("a1 online", |m| {
        a1(m).is_some_and(|r| r["presence"] == "online")
    })
    .await;

    // The reload: close with 1001, the same device back, then a marker
    // change. Deltas are ordered, so a flap would reach the supervisor
    // before the marker.
    tab.send_message(going_away()).await;
    let mut tab = hub.agent("a1", "tab-1").await;
    tab.ok(json!({"type": "set_status", "status": "paused", "reason": "marker"}))
        .await;
    loop {
        let m = sup.recv().await;
        let Some(r) = a1(&m) else { continue };
        assert_eq!(r["presence"], "online", "a reload flapped: {r}");
        if r["pause_reason"] == "marker" {
            break;
        }
    }

    // The long case: the page does not come back, so the agent goes offline
    // once the grace has passed.
    tab.send_message(going_away()).await;
    sup.recv_where_within("a1 offline after the grace", Duration::from_secs(15), |m| {
        a1(m).is_some_and(|r| r["presence"] == "offline")
    })
    .await;
}

#[tokio::test]
#[cfg_attr(
    ph_no_browser,
    ignore = "needs chromium, node and playwright-core (see build.rs)"
)]
async fn an_agent_works_from_the_dashboard_beside_a_supervisor() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tools = browser("browser test (tests/agent_page.rs)");
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
    // Dev mode (no secret given: the node generates one) serves the
    // one-click sign-ins the page offers.
    let dev = Proc::start(
        &[
            "--listen",
            "127.0.0.1:0",
            "--directory",
            directory.to_str().expect("utf-8 path"),
        ],
        &[],
    )
    .await;
    assert!(
        dev.banner.iter().any(|l| l.contains("Dev JWT secret")),
        "the second node runs in dev mode: {:?}",
        dev.banner
    );
    let run = tools
        .run(
            "agent.mjs",
            &[
                format!("http://{}", node.addr),
                token("acme", "a1"),
                token("acme", "s1"),
                token("acme", "ad1"),
                format!("http://{}", dev.addr),
            ],
            "agent.png",
            Duration::from_secs(180),
        )
        .await;
    run.assert_passed();
}

#[tokio::test]
async fn the_banner_links_the_agent_page_which_lists_the_tenant_for_agents_only() {
    let node = Proc::start(
        &["--listen", "127.0.0.1:0"],
        &[("PRESENCE_HUB_NO_DEMO", "false")],
    )
    .await;
    let link = node
        .banner
        .iter()
        .find(|l| l.contains("/agent#token="))
        .unwrap_or_else(|| panic!("an agent link in {:?}", node.banner));
    assert!(link.contains(&node.addr), "{link}");
    let agent = link.split("token=").nth(1).expect("token").trim();

    let (code, page) = http_get(&node.addr, "/agent").await;
    assert_eq!(code, 200);
    assert!(page.contains("Agent dashboard") && page.contains("/agent/app.js"));
    let (code, app) = http_get(&node.addr, "/agent/app.js").await;
    assert_eq!(code, 200);
    assert!(app.contains("text/javascript") && app.contains("/client/presence-hub-client.js"));
    assert_eq!(http_get(&node.addr, "/agent/style.css").await.0, 200);

    // The tenant's channels and names: for an agent's token only.
    assert_eq!(http_get(&node.addr, "/agent/tenant").await.0, 401);
    let bearer = |t: &str| format!("Authorization: Bearer {t}\r\n");
    let (code, _) = http_get_with(&node.addr, "/agent/tenant", &bearer("not-a-jwt")).await;
    assert_eq!(code, 401);
    let (code, body) = http_get_with(&node.addr, "/agent/tenant", &bearer(agent)).await;
    assert_eq!(code, 200, "{body}");
    let json: Value =
        serde_json::from_str(body.split("\r\n\r\n").nth(1).expect("body")).expect("JSON");
    let channels = json["channels"].as_array().expect("channels");
    assert!(channels
        .iter()
        .any(|c| c["kind"] == "queue" && c["id"] == "sales" && c["name"] == "Sales"));
    assert!(json["people"]
        .as_array()
        .expect("people")
        .iter()
        .any(|p| p["id"] == "s1" && p["name"] == "Sara Supervisor"));

    // The dev sign-in offers agents beside supervisors and admins; a
    // supervisor's token does not open the agent's tenant listing.
    let (code, body) = http_get(&node.addr, "/dev/signin").await;
    assert_eq!(code, 200);
    let json: Value =
        serde_json::from_str(body.split("\r\n\r\n").nth(1).expect("body")).expect("JSON");
    let people = json["people"].as_array().expect("people");
    assert!(people
        .iter()
        .any(|p| p["role"] == "agent" && p["id"] == "a1"));
    let supervisor = people
        .iter()
        .find(|p| p["role"] == "supervisor" && p["id"] == "s1")
        .and_then(|p| p["token"].as_str())
        .expect("a supervisor's token");
    let (code, _) = http_get_with(&node.addr, "/agent/tenant", &bearer(supervisor)).await;
    assert_eq!(code, 403);
}
