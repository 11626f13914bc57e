//! docs/API.md's examples, run as written: the node started as the README's
//! Quick start starts it (demo on, secret generated; only the port picked
//! free), `HUB` and an admin's `TOKEN` set as the page says, then each `sh`
//! block of "A session", in order, with `sh`; its output must be the JSON of
//! the block under it (`…` standing for what differs from run to run). So an
//! example edited without making it true turns this red. The service key a
//! credential's creation shows is kept as `KEY` for the blocks after it, as
//! the page tells its reader to.

mod common;

use common::docs::{elided_json, shows};
use common::process::{Proc, BIN};
use serde_json::Value;

#[tokio::test]
async fn the_api_pages_session_runs_as_written() {
    let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/API.md"))
        .expect("docs/API.md");
    let node = Proc::start(
        &["--listen", "127.0.0.1:0"],
        &[("PRESENCE_HUB_NO_DEMO", "false")],
    )
    .await;
    let secret = node.generated_secret();
    let token = std::process::Command::new(BIN)
        .args([
            "token",
            "--tenant",
            "acme",
            "--user",
            "ad1",
            "--jwt-secret",
            &secret,
        ])
        .output()
        .expect("mint a token");
    assert!(token.status.success());
    let token = String::from_utf8(token.stdout).expect("utf-8");

    // The session's blocks with their info strings: `sh` then `json`.
    let start = page.find("## A session").expect("a session");
    let section = &page[start..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    let mut fenced: Vec<(String, String)> = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in section.lines() {
        if let Some(info) = line.strip_prefix("```") {
            match current.take() {
                Some(block) => fenced.push(block),
                None => current = Some((info.to_string(), String::new())),
            }
        } else if let Some((_, text)) = current.as_mut() {
            text.push_str(line);
            text.push('\n');
        }
    }
    let mut ran = 0;
    let mut key = String::new();
    for pair in fenced.windows(2) {
        let [(kind, command), (next, expected)] = pair else {
            continue;
        };
        if kind != "sh" {
            continue;
        }
        assert_eq!(
            next, "json",
            "every command is followed by its answer: {command}"
        );
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(command)
            .env("HUB", format!("http://{}", node.addr))
            .env("TOKEN", token.trim())
            .env("KEY", &key)
            .output()
            .expect("run sh");
        assert!(out.status.success(), "{command}: {out:?}");
        let got: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{command}: not JSON ({e}): {out:?}"));
        let want = elided_json(expected.trim());
        assert!(
            shows(&want, &got),
            "{command}\nexpected {want}\ngot      {got}"
        );
        if let Some(shown) = got["key"].as_str() {
            key = shown.to_string();
        }
        ran += 1;
    }
    assert!(ran >= 18, "the session has its examples ({ran} ran)");
    assert!(
        key.starts_with("phk_acme.acd-1."),
        "a key was shown: {key:?}"
    );
}
