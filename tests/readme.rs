//! The README's examples, run as written against the binary started as the
//! README starts it — `cargo run --release`: defaults, a generated secret,
//! the demo agents running — with only the port picked free. The text is
//! read from README.md itself, so editing an example without making it true
//! turns this red:
//!
//! - the banner block of "Quick start" (line by line, `…` standing for
//!   what differs from run to run);
//! - "Walk-through: a supervisor pauses an agent": the `token` commands, both
//!   terminals' exchanges (each `→` line sent, each `←` line matched against
//!   what arrives, `…` meaning "and more"), what Ana's softphone receives,
//!   and the `history` request.
//!
//! The client library's examples run the same way in
//! `clients/js/test/readme.test.mjs` (through `tests/client_js.rs`).

mod common;

use common::docs::{blocks, elided_json, shows};
use common::process::{Proc, BIN};
use common::*;
use serde_json::Value;

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README.md")
}

/// The next message that shows `expected`; only live updates of other
/// agents, channel counters and the queue statistics the demo's ACD pushes
/// (the demo runs) may come before it.
async fn expect_shown(c: &mut Client, expected: &Value) -> Value {
    loop {
        let got = c.recv().await;
        if shows(expected, &got) {
            return got;
        }
        let live = matches!(
            got["type"].as_str(),
            Some("agent" | "channel" | "queue_stats")
        );
        assert!(live, "expected {expected}, got {got}");
    }
}

/// Plays one terminal of the walk-through: sends each line as written
/// (tokens substituted), matches each `←` line.
async fn play(c: &mut Client, lines: &[String], tokens: &[(&str, &str)]) -> Vec<Value> {
    let mut shown = Vec::new();
    for line in lines {
        if let Some(expected) = line.strip_prefix("← ") {
            shown.push(expect_shown(c, &elided_json(expected)).await);
        } else if line.starts_with('{') {
            let mut text = line.clone();
            for (placeholder, token) in tokens {
                text = text.replace(placeholder, token);
            }
            c.send_raw(&text).await;
        }
    }
    shown
}

/// Runs `BIN` with the arguments the README gives after `cargo run --release --`.
fn mint(command: &str, secret: &str) -> String {
    let args = command
        .split("cargo run --release -- ")
        .nth(1)
        .and_then(|a| a.split('#').next())
        .expect("a `cargo run --release --` command");
    let args: Vec<String> = args
        .split_whitespace()
        .map(|a| a.replace("$SECRET", secret))
        .collect();
    let out = std::process::Command::new(BIN)
        .args(&args)
        .output()
        .expect("run the binary");
    assert!(out.status.success(), "{command}: {out:?}");
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_string()
}

/// The node as `cargo run --release` starts it (demo on, secret generated).
async fn as_documented() -> Proc {
    Proc::start(
        &["--listen", "127.0.0.1:0"],
        &[("PRESENCE_HUB_NO_DEMO", "false")],
    )
    .await
}

#[tokio::test]
async fn the_quick_start_banner_is_what_the_node_prints() {
    let node = as_documented().await;
    let readme = readme();
    let block = blocks(&readme, "## Quick start")
        .into_iter()
        .find(|b| b.first().is_some_and(|l| l.starts_with("presence-hub ")))
        .expect("the banner block");
    assert!(
        block.len() <= node.banner.len(),
        "{block:?} vs {:?}",
        node.banner
    );
    // The README names the binary as after `cargo run --release`; this run
    // is a test build: the same line with its own path.
    let binary = node
        .banner
        .iter()
        .find_map(|l| l.split("Mint tokens: ").nth(1))
        .and_then(|rest| rest.split(" token ").next())
        .expect("the mint line")
        .to_string();
    for (want, got) in block.iter().zip(&node.banner) {
        // `4f0c…` is the README's stand-in for the generated secret.
        let want = node_id_elided(
            &want
                .replace("4f0c…", "…")
                .replace("127.0.0.1:8080", &node.addr)
                .replace("target/release/presence-hub", &binary),
        );
        let got = node_id_elided(got);
        let mut at = 0;
        for fragment in want.split('…') {
            let found = got[at..]
                .find(fragment)
                .unwrap_or_else(|| panic!("README banner line {want:?} vs printed {got:?}"));
            at += found + fragment.len();
        }
    }
}

/// The node id is random (`node node-5e1f2a9c` shows its form): written
/// `node-…` in both lines before they are compared.
fn node_id_elided(line: &str) -> String {
    match line.find("(node node-") {
        Some(i) => {
            let id_at = i + "(node node-".len();
            let id_end = line[id_at..]
                .find(|c: char| !c.is_ascii_hexdigit())
                .map_or(line.len(), |n| id_at + n);
            format!("{}…{}", &line[..id_at], &line[id_end..])
        }
        None => line.to_string(),
    }
}

#[tokio::test]
async fn the_walk_through_runs_as_written_with_the_demo_on() {
    let node = as_documented().await;
    let secret = node.generated_secret();
    let readme = readme();
    let walk = blocks(&readme, "## Walk-through: a supervisor pauses an agent");
    assert!(walk.len() >= 3, "{walk:?}");
    let token_of = |user: &str| {
        let command = walk[0]
            .iter()
            .find(|l| l.contains(&format!("--user {user} ")))
            .unwrap_or_else(|| panic!("a token command for {user}"));
        mint(command, &secret)
    };
    let (a1, s1) = (token_of("a1"), token_of("s1"));
    let tokens = [("<a1 token>", a1.as_str()), ("<s1 token>", s1.as_str())];
    let url = |block: &[String]| {
        block[0]
            .strip_prefix("$ websocat ")
            .expect("a websocat line")
            .replace("127.0.0.1:8080", &node.addr)
    };

    // Terminal 1: Ana's softphone.
    let mut ana = Client::connect(&url(&walk[1])).await;
    play(&mut ana, &walk[1][1..], &tokens).await;
    // Terminal 2: Sara's wallboard pauses her.
    let mut sara = Client::connect(&url(&walk[2])).await;
    let shown = play(&mut sara, &walk[2][1..], &tokens).await;
    // The demo (running since the node started) leaves Ana to the reader:
    // her only device is the one of terminal 1.
    let snapshot = shown
        .iter()
        .find(|m| m["type"] == "snapshot")
        .expect("the snapshot");
    let devices: Vec<&str> = in_snapshot(snapshot, "a1")
        .and_then(|a| a["devices"].as_array())
        .map(|d| d.iter().filter_map(|d| d["id"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(devices, ["d1"], "{snapshot}");

    // "And in terminal 1 Ana's softphone receives `{…}`."
    let after = &readme[readme
        .find("Ana's softphone receives")
        .expect("the sentence")..];
    let inline = after.split('`').nth(1).expect("an inline message");
    expect_shown(&mut ana, &elided_json(inline)).await;
    // "`{"type":"history",…}` then tells who paused Ana, and when."
    let history = after.split('`').nth(3).expect("the history request");
    assert!(history.contains("\"history\""), "{history}");
    sara.send_raw(history).await;
    let reply = expect_shown(&mut sara, &elided_json(r#"{"type":"reply","ok":true}"#)).await;
    let changes = reply["result"]["changes"].as_array().expect("changes");
    let last = changes.last().expect("a change");
    assert_eq!(last["event"], "pause", "{reply}");
    assert_eq!(last["by"]["id"], "s1", "{reply}");
    assert!(last["at_ms"].as_u64().is_some_and(|t| t > 0), "{reply}");
}
