//! The wallboard's contact-center features in a real headless Chromium
//! (Debian's `chromium`, driven by `playwright-core` from npm) against the
//! real binary, with a tenant whose pause reason codes carry `max_minutes`
//! and six agents on real WebSockets opened by the script: channel cards
//! show the hub's counters and they match the agents' states; a pause that
//! runs past its code's limit (0.6 s) shows the overrun badge on the row and
//! in the panel; "Sign out" in the panel asks first, then the agent's own
//! socket receives `signed_out` and is closed with 4010 and the row shows it
//! offline. In a second tenant left at the default settings, an admin edits
//! every PROTOCOL.md §10.0 setting through the page's form: adds reason codes
//! (a tenant that had none), changes capacity and `sign_in_status`, sees the
//! hub's refusal in its own words, clears the codes and adds them back, and
//! an open form keeps its edits and focus while settings and agent updates
//! flow; a busy multi-chat agent's row shows its free slots. See
//! `tests/browser/wallboard_cc.mjs` for each step. Screenshots are saved to
//! `tests/artifacts/wallboard_cc.png` and `wallboard_cc_admin.png`.
//!
//! Needs `/usr/bin/chromium`, `node` and `npm ci --prefix tests/browser`, as
//! `tests/browser.rs`: without them the test is ignored on a developer
//! machine (`build.rs`) and fails in CI (`CI` set).

mod common;

use common::process::Proc;
use common::*;
use serde_json::json;

/// Tenant `acme`: agents c0..c5 on queue `sales` (c0..c2 also on chat
/// `web`), supervisor s1, pause codes `break` (0.01 min) and `lunch` (60 min).
/// Tenant `beta`: every §10 setting at its default (no codes), agents b0 and
/// b1 on chat `web` and queue `sales`, admins bd1 (the page) and bd2 (a raw
/// socket).
fn directory() -> serde_json::Value {
    let agents: Vec<String> = (0..6).map(|i| format!("c{i}")).collect();
    let names = [
        "Ana Souza",
        "Bruno Costa",
        "Carla Dias",
        "Diego Alves",
        "Elisa Martins",
        "Fabio Rocha",
    ];
    let mut users: Vec<serde_json::Value> = agents
        .iter()
        .zip(names)
        .map(|(id, name)| json!({"id": id, "name": name, "roles": ["agent"]}))
        .collect();
    users.push(json!({"id": "s1", "name": "Sara Supervisor", "roles": ["supervisor"]}));
    json!({"tenants": [{
        "id": "acme",
        "name": "Acme Support",
        "settings": {
            "supervisor_can_end_wrap_up": false,
            "wrap_up_seconds": 30,
            "unassigned_access_default": true,
            // With codes set, `sign_in_reason` must be one (even while unused).
            "sign_in_reason": "lunch",
            "pause_reasons": [
                {"code": "break", "label": "Break", "max_minutes": 0.01},
                {"code": "lunch", "label": "Lunch", "max_minutes": 60}
            ]
        },
        "channels": [
            {"kind": "queue", "id": "sales", "name": "Sales", "assigned": agents},
            {"kind": "chat", "id": "web", "name": "Web chat", "assigned": agents[..3]}
        ],
        "users": users
    }, {
        "id": "beta",
        "name": "Beta Care",
        // v1's settings only: capacity, codes and sign-in status at their defaults.
        "settings": {
            "supervisor_can_end_wrap_up": false,
            "wrap_up_seconds": 30,
            "unassigned_access_default": true
        },
        "channels": [
            {"kind": "queue", "id": "sales", "name": "Beta sales", "assigned": ["b0", "b1"]},
            {"kind": "chat", "id": "web", "name": "Beta chat", "assigned": ["b0", "b1"]}
        ],
        "users": [
            {"id": "b0", "name": "Bia Lopes", "roles": ["agent"]},
            {"id": "b1", "name": "Caio Mendes", "roles": ["agent"]},
            {"id": "bd1", "name": "Dora Admin", "roles": ["admin"]},
            {"id": "bd2", "name": "Otto Admin", "roles": ["admin"]}
        ]
    }]})
}

#[tokio::test]
#[cfg_attr(
    ph_no_browser,
    ignore = "needs chromium, node and playwright-core (see build.rs)"
)]
async fn the_wallboard_shows_overruns_signs_agents_out_the_hubs_channel_counters_and_edits_every_setting(
) {
    let tools = browser("browser test (tests/browser_cc.rs)");
    let directory_path = std::env::temp_dir().join(format!(
        "presence-hub-browser-cc-{}.json",
        std::process::id()
    ));
    std::fs::write(&directory_path, directory().to_string()).expect("write the directory");
    let node = Proc::start(
        &[
            "--listen",
            "127.0.0.1:0",
            "--directory",
            directory_path.to_str().expect("utf-8 temp path"),
            "--channel-update-ms",
            "100",
        ],
        &[("PRESENCE_HUB_JWT_SECRET", SECRET)],
    )
    .await;
    let run = tools
        .run(
            "wallboard_cc.mjs",
            &[node.addr.clone(), SECRET.to_string()],
            "wallboard_cc.png",
            std::time::Duration::from_secs(180),
        )
        .await;
    let _ = std::fs::remove_file(&directory_path);
    run.assert_passed();
}
