//! A single node that remembers (`--data-dir`, docs/STORE.md): the real
//! binary is killed with SIGKILL and started again on the same directory,
//! and every change it acknowledged is there — records, settings, the
//! directory, history with who did it, idempotency — the seq goes on from
//! where it was and the epoch is the same (a supervisor resumes). A second
//! process on the directory, or a corrupt file, refuses to start; without
//! the flag nothing is written.

mod common;

use common::process::{eventually, start_in_dir, Proc, BIN};
use common::{token, u64_of, Client, DEADLINE, SECRET};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A fresh directory under this test binary's own temporary path.
fn fresh_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("durable-store-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn directory_file() -> String {
    format!("{}/tests/common/directory.json", env!("CARGO_MANIFEST_DIR"))
}

fn args(data_dir: &Path, grace_ms: u64) -> Vec<String> {
    [
        "--listen",
        "127.0.0.1:0",
        "--directory",
        &directory_file(),
        "--jwt-secret",
        SECRET,
        "--reconnect-grace-ms",
        &grace_ms.to_string(),
        "--rate-limit-per-sec",
        "100000",
        "--data-dir",
        data_dir.to_str().expect("utf-8 path"),
    ]
    .map(String::from)
    .to_vec()
}

async fn start(data_dir: &Path) -> Proc {
    start_with_grace(data_dir, 300).await
}

async fn start_with_grace(data_dir: &Path, grace_ms: u64) -> Proc {
    let args = args(data_dir, grace_ms);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Proc::start(&args, &[]).await
}

fn url(p: &Proc) -> String {
    p.ws_url()
}

async fn agent(p: &Proc, user: &str, device: &str) -> Client {
    let mut c = Client::connect(&url(p)).await;
    c.send(
        json!({"type": "hello", "token": token("acme", user), "role": "agent",
                  "device": {"id": device, "kind": "softphone"}}),
    )
    .await;
    let welcome = c.recv_type("welcome").await;
    assert_eq!(welcome["user"]["id"], user);
    c.recv_type("state").await;
    c
}

async fn staff(p: &Proc, user: &str, role: &str) -> Client {
    let mut c = Client::connect(&url(p)).await;
    c.send(json!({"type": "hello", "token": token("acme", user), "role": role}))
        .await;
    c.recv_type("welcome").await;
    c
}

/// A PUT with an admin's bearer token; status and JSON body.
async fn http_put(addr: &str, path: &str, bearer: &str, body: &str) -> (u16, Value) {
    common::http::request(addr, "PUT", path, Some(bearer), "", Some(body)).await
}

fn record<'a>(snapshot: &'a Value, id: &str) -> &'a Value {
    snapshot["agents"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["id"] == id))
        .unwrap_or_else(|| panic!("{id} not in the snapshot: {snapshot}"))
}

async fn history(sup: &mut Client, agent: &str) -> Vec<Value> {
    let result = sup
        .ok(json!({"type": "history", "agent_id": agent, "limit": 1000}))
        .await;
    result["changes"].as_array().cloned().expect("changes")
}

#[tokio::test]
async fn every_acknowledged_change_survives_a_kill_9() {
    let dir = fresh_dir("every-kind");
    let mut first = start(&dir).await;
    let mut a1 = agent(&first, "a1", "d1").await;
    a1.ok(json!({"type": "set_status", "status": "paused", "reason": "lunch"}))
        .await;
    let mut admin = staff(&first, "ad1", "admin").await;
    admin
        .ok(json!({"type": "update_settings", "settings": {"wrap_up_seconds": 42}}))
        .await;
    let mut sup = staff(&first, "s1", "supervisor").await;
    admin
        .ok(json!({"type": "assign", "agent_id": "a2",
                  "channel": {"kind": "campaign", "id": "renewals"}}))
        .await;
    let (status, created) = http_put(
        &first.addr,
        "/api/v1/directory/users/n9",
        &token("acme", "ad1"),
        r#"{"name": "Nina Nine", "roles": ["agent"], "assigned": [{"kind": "queue", "id": "billing"}]}"#,
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let before = sup.subscribe(json!({"all": true})).await;
    let seq_before = u64_of(&before["seq"]);
    let epoch = before["epoch"].as_str().expect("epoch").to_string();
    assert!(seq_before >= 4, "{before}");
    first.kill().await;
    drop((a1, admin, sup));

    // A grace long enough to see a1 as it was before its device goes.
    let second = start_with_grace(&dir, 2_000).await;
    let mut sup = staff(&second, "s1", "supervisor").await;
    let after = sup.subscribe(json!({"all": true})).await;
    assert_eq!(after["epoch"], epoch.as_str(), "the epoch persists");
    assert!(u64_of(&after["seq"]) >= seq_before);
    let a1 = record(&after, "a1");
    assert_eq!(
        (&a1["status"], &a1["pause_reason"]),
        (&json!("paused"), &json!("lunch"))
    );
    let a2 = record(&after, "a2");
    assert!(
        a2["channels"].to_string().contains("renewals"),
        "the assign is lost: {a2}"
    );
    assert_eq!(after["settings"]["wrap_up_seconds"], 42, "{after}");
    let n9 = record(&after, "n9");
    assert!(n9["channels"].to_string().contains("billing"), "{n9}");
    let mut admin = staff(&second, "ad1", "admin").await;
    let dir_now = admin.ok(json!({"type": "directory"})).await;
    assert!(dir_now.to_string().contains("Nina Nine"), "{dir_now}");

    // History, with who did it.
    let h = history(&mut sup, "a1").await;
    assert!(
        h.iter()
            .any(|e| e["pause_reason"] == "lunch" && e["by"]["id"] == "a1"),
        "{h:?}"
    );
    let h = history(&mut sup, "a2").await;
    assert!(h.iter().any(|e| e["by"]["id"] == "ad1"), "{h:?}");
    let h = history(&mut sup, "n9").await;
    assert!(
        h.iter()
            .any(|e| e["event"] == "user_created" && e["by"]["id"] == "ad1"),
        "{h:?}"
    );

    // a1's device was active when the node died: after the grace it is not.
    let down = sup
        .agent_update("a1", |r| r["devices"][0]["active"] == false)
        .await;
    assert_eq!(down["changed_by"]["id"], "system", "{down}");
    assert!(u64_of(&down["version"]) > seq_before);

    // The seq goes on; the new user signs in; a supervisor of the old
    // process resumes.
    let mut n9 = agent(&second, "n9", "d9").await;
    let state = n9
        .ok(json!({"type": "set_status", "status": "paused", "reason": "after"}))
        .await;
    assert!(u64_of(&state["agent"]["version"]) > seq_before, "{state}");
    let mut resumer = staff(&second, "s1", "supervisor").await;
    resumer
        .ok(json!({"type": "subscribe", "scope": {"all": true},
                   "since_seq": seq_before, "epoch": epoch}))
        .await;
    let resumed = resumer.recv_type("snapshot").await;
    assert_eq!(resumed["resumed"], true, "{resumed}");
    let ids: Vec<&str> = resumed["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .filter_map(|r| r["id"].as_str())
        .collect();
    assert!(
        ids.contains(&"n9") && ids.contains(&"a1") && !ids.contains(&"a2"),
        "{ids:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every change its client was told about, as (version, reason).
type Acked = Arc<parking_lot::Mutex<Vec<(u64, String)>>>;

/// An agent changing its status as fast as the acks come, until the
/// connection dies; every acknowledged change goes into `acked`.
async fn churn(url: String, user: &'static str, acked: Acked, count: Arc<AtomicUsize>) {
    let mut c = Client::connect(&url).await;
    c.send(
        json!({"type": "hello", "token": token("acme", user), "role": "agent",
                  "device": {"id": "d1", "kind": "softphone"}}),
    )
    .await;
    let _ = c.try_recv(DEADLINE).await;
    for i in 0u64.. {
        let id = format!("c{i}");
        let reason = format!("{user}-r{i}");
        let body = json!({"type": "set_status", "id": id, "status": "paused", "reason": reason});
        c.send_raw(&body.to_string()).await;
        loop {
            match c.try_recv(Duration::from_secs(10)).await {
                Ok(Some(v)) if v["type"] == "reply" && v["id"] == id.as_str() => {
                    if v["ok"] == true {
                        let version = v["result"]["agent"]["version"].as_u64().expect("version");
                        acked.lock().push((version, reason.clone()));
                        count.fetch_add(1, Ordering::SeqCst);
                    }
                    break;
                }
                Ok(Some(_)) => continue,
                // The node was killed.
                Ok(None) | Err(_) => return,
            }
        }
    }
}

#[tokio::test]
async fn changes_fired_as_fast_as_acks_come_are_all_there_after_a_kill_9_at_any_point() {
    let dir = fresh_dir("loop");
    let mut first = start(&dir).await;
    let count = Arc::new(AtomicUsize::new(0));
    let users = ["a1", "a2", "a3"];
    let mut acked = Vec::new();
    let mut tasks = Vec::new();
    for user in users {
        let a: Acked = Arc::default();
        acked.push(a.clone());
        tasks.push(tokio::spawn(churn(url(&first), user, a, count.clone())));
    }
    // An arbitrary point: somewhere in the first few hundred changes.
    let kill_at = 50 + (std::process::id() as usize % 250);
    eventually(
        "changes acknowledged",
        Duration::from_secs(60),
        Duration::from_millis(1),
        || {
            let n = count.load(Ordering::SeqCst);
            async move { n >= kill_at }
        },
    )
    .await;
    first.kill().await;
    for t in tasks {
        t.await.expect("churn task");
    }
    let total = count.load(Ordering::SeqCst);
    assert!(total >= kill_at);

    let second = start(&dir).await;
    let mut sup = staff(&second, "s1", "supervisor").await;
    let snapshot = sup.subscribe(json!({"all": true})).await;
    for (user, acked) in ["a1", "a2", "a3"].iter().zip(&acked) {
        let acked = acked.lock().clone();
        let Some((last_version, last_reason)) = acked.last().cloned() else {
            continue;
        };
        let now = record(&snapshot, user);
        // The last acked change is there, or one after it (sent, not acked).
        assert!(
            u64_of(&now["version"]) >= last_version,
            "{user}: {now} < {last_version}"
        );
        if u64_of(&now["version"]) == last_version {
            assert_eq!(now["pause_reason"], last_reason.as_str());
        }
        let h = history(&mut sup, user).await;
        for (version, reason) in &acked {
            assert!(
                h.iter()
                    .any(|e| e["version"] == *version && e["pause_reason"] == reason.as_str()),
                "{user}: the acknowledged change {version} ({reason}) is lost"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs the binary to its end (it must not start); its exit code and stderr.
async fn refused_start(data_dir: &Path) -> (Option<i32>, String) {
    let args = args(data_dir, 300);
    let out = tokio::time::timeout(
        DEADLINE,
        tokio::process::Command::new(BIN)
            .args(&args)
            .env("PRESENCE_HUB_NO_DEMO", "true")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the node ends at once")
    .expect("run");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[tokio::test]
async fn a_second_process_on_the_same_dir_refuses_to_start() {
    let dir = fresh_dir("locked");
    let first = start(&dir).await;
    let (code, stderr) = refused_start(&dir).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("in use by another process") && stderr.contains("presence-hub.redb"),
        "{stderr}"
    );
    // The first is untouched.
    assert_eq!(first.status("/readyz").await, 200);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_corrupt_store_refuses_to_start_and_names_the_file() {
    let dir = fresh_dir("corrupt");
    let file = dir.join("presence-hub.redb");
    {
        let mut p = start(&dir).await;
        let mut a1 = agent(&p, "a1", "d1").await;
        a1.ok(json!({"type": "set_status", "status": "paused", "reason": "x"}))
            .await;
        p.kill().await;
    }
    // Scribble over the file's header.
    let mut bytes = std::fs::read(&file).expect("the store file");
    for b in bytes.iter_mut().take(4096) {
        *b = 0x5a;
    }
    std::fs::write(&file, &bytes).expect("write");
    let (code, stderr) = refused_start(&dir).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(file.to_str().expect("utf-8")) && stderr.contains("Refusing to start"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[tokio::test]
async fn without_data_dir_nothing_is_written_and_a_restart_forgets() {
    let cwd = fresh_dir("no-flag");
    let directory = directory_file();
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--directory",
        &directory,
        "--jwt-secret",
        SECRET,
    ];
    let mut p = start_in_dir(&cwd, &args).await;
    let mut a1 = agent(&p, "a1", "d1").await;
    a1.ok(json!({"type": "set_status", "status": "paused", "reason": "remember me"}))
        .await;
    p.kill().await;
    assert_eq!(
        files(&cwd),
        Vec::<PathBuf>::new(),
        "written without --data-dir"
    );
    let p = start_in_dir(&cwd, &args).await;
    let mut sup = staff(&p, "s1", "supervisor").await;
    let snapshot = sup.subscribe(json!({"all": true})).await;
    assert_ne!(record(&snapshot, "a1")["pause_reason"], "remember me");
    assert_eq!(files(&cwd), Vec::<PathBuf>::new());
    let _ = std::fs::remove_dir_all(&cwd);
}

#[tokio::test]
async fn the_event_stream_survives_a_kill_9_and_goes_on_where_it_was() {
    let dir = fresh_dir("events");
    let mut first = start(&dir).await;
    let mut a1 = agent(&first, "a1", "d1").await;
    a1.ok(json!({"type": "set_status", "status": "paused", "reason": "lunch"}))
        .await;
    let mut admin = staff(&first, "ad1", "admin").await;
    admin
        .ok(json!({"type": "update_settings", "settings": {"wrap_up_seconds": 42}}))
        .await;
    let before = common::http::acme_events(&first.addr).await;
    assert_eq!(before.len(), 3, "sign-in, pause, settings: {before:#?}");
    first.kill().await;
    drop((a1, admin));

    let second = start(&dir).await;
    let after = common::http::acme_events(&second.addr).await;
    assert_eq!(after[..3], before[..], "the stream as acknowledged");
    // The next change's event follows, at the next version, with a later id.
    let mut a2 = agent(&second, "a2", "d2").await;
    a2.ok(json!({"type": "set_status", "status": "paused", "reason": "break"}))
        .await;
    let now = common::http::acme_events(&second.addr).await;
    let last_before = &before[2];
    let next = now
        .iter()
        .find(|e| e["agent_id"] == "a2" && e["event"] == "pause")
        .expect("a2's pause");
    let id = |e: &Value| -> (u64, u64) {
        let (ms, n) = e["id"]
            .as_str()
            .and_then(|i| i.split_once('-'))
            .expect("id");
        (ms.parse().expect("ms"), n.parse().expect("n"))
    };
    assert!(id(next) > id(last_before), "{next} after {last_before}");
    assert!(u64_of(&next["version"]) > u64_of(&last_before["version"]));
    let _ = std::fs::remove_dir_all(&dir);
}
