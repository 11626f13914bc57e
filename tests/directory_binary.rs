//! The directory at runtime across real nodes (PROTOCOL.md §7.1): two
//! `presence-hub` processes on one Redis. A user added over the HTTP API on
//! one node signs in on the other at once, with no restart and no retry
//! (a node that does not know a user asks the store how far it is before
//! refusing); a restarted node and a node that joins later take the
//! directory from the store, not from their file, so a user an admin
//! deleted does not come back from the file.

mod common;

use common::http::request;
use common::process::{start_cluster_node, Proc};
use common::redis::RedisServer;
use common::{token, Client};
use serde_json::json;
use std::time::Instant;

/// A hello as an agent: the welcome, or the close code.
async fn sign_in(node: &Proc, user: &str) -> Result<Client, u16> {
    common::agent_hello(&node.ws_url(), "acme", user)
        .await
        .map_err(|closed| closed.code)
}

#[tokio::test]
async fn a_user_added_on_one_node_signs_in_on_another_and_the_store_outlives_the_file() {
    let redis = RedisServer::start();
    let a = start_cluster_node(&redis.url(), "dir-a", "127.0.0.1:0").await;
    let mut b = start_cluster_node(&redis.url(), "dir-b", "127.0.0.1:0").await;
    // Both nodes attach to the tenant (the built-in directory seeds it once).
    sign_in(&a, "a1").await.expect("a1 on a");
    let mut on_b = sign_in(&b, "a2").await.expect("a2 on b");
    let admin = token("acme", "ad1");

    let (status, created) = request(
        &a.addr,
        "PUT",
        "/api/v1/directory/users/n1",
        Some(&admin),
        "",
        Some(r#"{"name": "Nina New", "roles": ["agent"], "assigned": [{"kind": "queue", "id": "sales"}]}"#),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let answered = Instant::now();
    // One attempt, right after the reply, on the other node.
    let n1 = sign_in(&b, "n1").await;
    assert!(
        n1.is_ok(),
        "n1 refused on b right after the reply: {:?}",
        n1.err()
    );
    eprintln!(
        "n1 signed in on the other node {:?} after the API's reply",
        answered.elapsed()
    );

    // Deleted on a: its connection on b closes with 4012.
    let (status, _) = request(
        &a.addr,
        "DELETE",
        "/api/v1/directory/users/a2",
        Some(&admin),
        "",
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(on_b.closed().await.code, 4012);

    // b restarts with the same file, which still names a2: the store wins.
    b.kill().await;
    let b = start_cluster_node(&redis.url(), "dir-b", "127.0.0.1:0").await;
    assert_eq!(
        sign_in(&b, "a2").await.err(),
        Some(4003),
        "a2 came back from the file"
    );
    assert!(sign_in(&b, "n1").await.is_ok(), "n1 lost in the restart");
    // And so does a node that joins later.
    let c = start_cluster_node(&redis.url(), "dir-c", "127.0.0.1:0").await;
    assert_eq!(sign_in(&c, "a2").await.err(), Some(4003));
    assert!(sign_in(&c, "n1").await.is_ok());
    let (status, listed) =
        request(&c.addr, "GET", "/api/v1/directory", Some(&admin), "", None).await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = listed["users"]
        .as_array()
        .expect("users")
        .iter()
        .filter_map(|u| u["id"].as_str())
        .collect();
    assert!(ids.contains(&"n1") && !ids.contains(&"a2"), "{ids:?}");
}

/// `presence-hub directory …` against `node`; its exit status and output.
fn cli(node: &Proc, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(common::process::BIN)
        .arg("directory")
        .args(args)
        .args(["--url", &format!("http://{}", node.addr)])
        .env("PRESENCE_HUB_TOKEN", token("acme", "ad1"))
        .output()
        .expect("run presence-hub directory");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn export_then_import_round_trips_and_prunes() {
    let redis = RedisServer::start();
    let node = start_cluster_node(&redis.url(), "dir-x", "127.0.0.1:0").await;
    let (ok, exported, err) = cli(&node, &["export"]);
    assert!(ok, "export failed: {err}");
    let parsed = presence_hub::directory::Directory::parse(&exported).expect("a valid file");
    let acme = parsed.tenant("acme").expect("the token's tenant");
    assert!(acme.user("a2").is_some());
    assert!(acme
        .channels
        .iter()
        .any(|c| c.id == "sales" && c.assigned.contains(&"a1".to_string())));

    // The same file back: nothing changes.
    let dir = std::env::temp_dir().join(format!("ph-dir-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let same = dir.join("same.json");
    std::fs::write(&same, &exported).expect("write");
    let (ok, out, err) = cli(&node, &["import", same.to_str().expect("path")]);
    assert!(ok, "import failed: {err}");
    assert!(
        out.contains(" 0 changed") && out.contains(" 0 deleted"),
        "{out}"
    );

    // Edited: a user added, one left out, a channel renamed; with --prune.
    let mut file: serde_json::Value = serde_json::from_str(&exported).expect("json");
    let tenant = &mut file["tenants"][0];
    let users = tenant["users"].as_array_mut().expect("users");
    users.retain(|u| u["id"] != "a2");
    users.push(json!({"id": "n7", "name": "Nora Seven", "roles": ["agent"]}));
    for channel in tenant["channels"].as_array_mut().expect("channels") {
        if let Some(list) = channel["assigned"].as_array_mut() {
            list.retain(|a| a != "a2");
        }
        if channel["id"] == "sales" {
            channel["name"] = json!("Sales EMEA");
            channel["assigned"]
                .as_array_mut()
                .expect("assigned")
                .push(json!("n7"));
        }
    }
    let edited = dir.join("edited.json");
    std::fs::write(&edited, file.to_string()).expect("write");
    let (ok, out, err) = cli(
        &node,
        &["import", "--prune", edited.to_str().expect("path")],
    );
    assert!(ok, "import failed: {err}");
    assert!(
        out.contains(" 2 changed") && out.contains(" 1 deleted"),
        "{out}"
    );
    let (_, now) = request(
        &node.addr,
        "GET",
        "/api/v1/directory/users/n7",
        Some(&token("acme", "ad1")),
        "",
        None,
    )
    .await;
    assert_eq!(now["assigned"], json!([{"kind": "queue", "id": "sales"}]));
    assert_eq!(sign_in(&node, "a2").await.err(), Some(4003));

    // A bad file changes nothing and says why.
    let bad = dir.join("bad.json");
    std::fs::write(&bad, r#"{"tenants": [{"id": "acme", "name": "A", "users": [{"id": "x", "name": "X", "rolez": []}]}]}"#)
        .expect("write");
    let (ok, _, err) = cli(&node, &["import", bad.to_str().expect("path")]);
    assert!(!ok && err.contains("rolez"), "{err}");
    let (ok, again, _) = cli(&node, &["export"]);
    assert!(ok);
    assert!(again.contains("Sales EMEA") && !again.contains("\"x\""));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A directory file larger than one `seed.lua` call (1 000 entries): the
/// nodes seed the store in chunks, two of them at once here, and each
/// loads the whole tenant — every user and every agent's first record —
/// only once the last chunk is in. A node that joins later sends no seed:
/// the store has the directory.
///
/// Redis's output limit for subscribed connections is lowered to 1 MB,
/// below the tenant's state (≈ 1.5 MB): the state must come over a
/// connection that does not subscribe, or Redis closes the node's
/// connection mid-reply (as its default 32 MB did to a 100 000-agent
/// tenant).
#[tokio::test]
async fn a_directory_of_thousands_is_seeded_in_chunks_by_nodes_starting_together() {
    const AGENTS: usize = 2_600;
    let redis = RedisServer::start();
    let set = redis.cli(&[
        "CONFIG",
        "SET",
        "client-output-buffer-limit",
        "pubsub 1mb 1mb 0",
    ]);
    assert!(set.contains("OK"), "{set}");
    let ids: Vec<String> = (0..AGENTS).map(|i| format!("a{i:05}")).collect();
    let mut users: Vec<_> = ids
        .iter()
        .map(|id| json!({"id": id, "name": format!("Agent {id}"), "roles": ["agent"]}))
        .collect();
    users.push(json!({"id": "s1", "name": "Sam Supervisor", "roles": ["supervisor"]}));
    users.push(json!({"id": "ad", "name": "Ada Admin", "roles": ["admin"]}));
    let file = json!({"tenants": [{"id": "big", "name": "Big", "users": users,
        "channels": [{"kind": "queue", "id": "q", "name": "Queue", "assigned": ids}]}]});
    let path = std::env::temp_dir().join(format!("ph-big-{}.json", std::process::id()));
    std::fs::write(&path, file.to_string()).expect("write the directory");
    let path = path.to_string_lossy().to_string();
    let node = |id: &'static str| {
        let (redis, path) = (redis.url(), path.clone());
        async move {
            Proc::start(
                &[
                    "--listen",
                    "127.0.0.1:0",
                    "--redis-url",
                    &redis,
                    "--node-id",
                    id,
                    "--node-ttl-ms",
                    "1000",
                    "--no-demo",
                    "--directory",
                    &path,
                ],
                &[("PRESENCE_HUB_JWT_SECRET", common::SECRET)],
            )
            .await
        }
    };
    let (a, b) = tokio::join!(node("big-a"), node("big-b"));
    let watch = |p: &Proc| {
        let url = p.ws_url();
        async move {
            let mut c = Client::connect(&url).await;
            c.send(json!({"type": "hello", "token": token("big", "s1"), "role": "supervisor"}))
                .await;
            c.recv_type("welcome").await;
            c.subscribe(json!({"all": true})).await
        }
    };
    // Both attach at once: each seeds the chunks (the same file) before it
    // loads, so neither may see a partial directory.
    let (on_a, on_b) = tokio::join!(watch(&a), watch(&b));
    for (node, snapshot) in [("a", &on_a), ("b", &on_b)] {
        let agents = snapshot["agents"].as_array().expect("agents");
        assert_eq!(agents.len(), AGENTS, "node {node}: agents in the snapshot");
        assert!(
            agents
                .iter()
                .all(|r| r["presence"] == "offline" && r["version"] == 0),
            "node {node}: every agent at its seeded record"
        );
    }
    // The directory too: every user, and the queue with every member.
    let (status, listed) = request(
        &b.addr,
        "GET",
        "/api/v1/directory",
        Some(&token("big", "ad")),
        "",
        None,
    )
    .await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(
        listed["users"].as_array().map(Vec::len),
        Some(AGENTS + 2),
        "users"
    );
    // Each agent assigned to the queue (the channel's JSON in the seed).
    let agents = on_b["agents"].as_array().expect("agents");
    assert!(
        agents.iter().all(|r| r["channels"]
            .as_array()
            .is_some_and(|cs| cs.iter().any(|c| c["id"] == "q" && c["assigned"] == true))),
        "every agent assigned to the queue"
    );
    // Deleted at runtime, then a third node with the same file joins: the
    // store's directory stands (no seed is sent, and none would apply).
    let (status, body) = request(
        &a.addr,
        "DELETE",
        "/api/v1/directory/users/a00007",
        Some(&token("big", "ad")),
        "",
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // What the nodes sent Redis meanwhile, counted by Redis itself.
    let input_bytes = || -> u64 {
        redis
            .cli(&["INFO", "stats"])
            .lines()
            .find_map(|l| l.strip_prefix("total_net_input_bytes:"))
            .and_then(|v| v.trim().parse().ok())
            .expect("total_net_input_bytes in INFO stats")
    };
    let before = input_bytes();
    let c = node("big-c").await;
    let on_c = watch(&c).await;
    // Attaching without a seed is a lease, a subscription, one EXISTS and
    // the state's read: under 2 KB here. A seed's first call alone is tens
    // of KB (its 1 000 first users, 76 KB when tried), and that call would
    // change nothing: the store's directory stands.
    let sent = input_bytes() - before;
    assert!(
        sent < 20_000,
        "node c sent Redis {sent} bytes while it attached: the seed again?"
    );
    let agents = on_c["agents"].as_array().expect("agents");
    assert_eq!(agents.len(), AGENTS - 1, "node c: agents in the snapshot");
    assert!(
        agents.iter().all(|r| r["id"] != "a00007"),
        "the deleted agent came back from the file"
    );
    let _ = std::fs::remove_file(&path);
}
