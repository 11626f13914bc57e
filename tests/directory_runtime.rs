//! The directory at runtime (PROTOCOL.md §7.1, docs/API.md): admins add,
//! change and delete users and channels over the WebSocket and the HTTP
//! API; supervisors see agents and channels come and go; a removed user's
//! connections close with 4012 and it can no longer sign in; bad requests
//! change nothing. `tests/cluster_directory_runtime.rs` runs the same
//! against three nodes sharing a Redis (agents on node 0, staff and the
//! HTTP calls on node 1), so every change crosses the backplane.

mod common;

use common::http::request as http;
use common::{token, Client, TestHub, CLUSTER};
use serde_json::json;

async fn agent_hello(url: &str, user: &str) -> Result<Client, common::Closed> {
    common::agent_hello(url, "acme", user).await
}

#[tokio::test]
async fn an_admin_adds_an_agent_who_signs_in_and_supervisors_see_it() {
    let hub = TestHub::start().await;
    let (mut watcher, snapshot) = hub.watcher("s1").await;
    assert!(common::in_snapshot(&snapshot, "n1").is_none());
    let mut scoped = hub.staff("s2", "supervisor").await;
    scoped
        .subscribe(json!({"channels": [{"kind": "queue", "id": "billing"}]}))
        .await;
    let mut admin = hub.staff("ad1", "admin").await;
    let before = admin.ok(json!({"type": "directory"})).await;

    let result = admin
        .ok(
            json!({"type": "put_user", "user": {"id": "n1", "name": "Nina New",
            "roles": ["agent"], "assigned": [{"kind": "queue", "id": "sales"}]}}),
        )
        .await;
    assert_eq!(result["changed"], true);
    assert!(common::u64_of(&result["version"]) > common::u64_of(&before["version"]));
    assert_eq!(
        result["user"]["assigned"],
        json!([{"kind": "queue", "id": "sales"}])
    );

    // The supervisor of everything sees the new agent, offline, assigned.
    let n1 = watcher
        .agent_update("n1", |a| a["presence"] == "offline")
        .await;
    assert_eq!(n1["name"], "Nina New");
    assert_eq!(common::flags(&n1, "queue", "sales"), Some((false, true)));
    // The new agent signs in (on node 0 in the cluster variant).
    let mut agent = hub.agent("n1", "phone").await;
    watcher
        .agent_update("n1", |a| a["presence"] == "online")
        .await;
    agent
        .ok(json!({"type": "set_status", "status": "paused", "reason": "break"}))
        .await;
    watcher
        .agent_update("n1", |a| a["status"] == "paused")
        .await;
    // A supervisor scoped to billing never sees n1 (sales only).
    let seen = scoped
        .drain_for(std::time::Duration::from_millis(200))
        .await;
    assert!(
        !seen.iter().any(|v| v["agent"]["id"] == "n1"),
        "out of scope: {seen:?}"
    );
    // Read back, in the directory.
    let after = admin.ok(json!({"type": "directory"})).await;
    let listed = after["users"]
        .as_array()
        .expect("users")
        .iter()
        .find(|u| u["id"] == "n1")
        .expect("n1 listed");
    assert_eq!(listed["roles"], json!(["agent"]));
    // The same request again changes nothing.
    let again = admin
        .ok(
            json!({"type": "put_user", "user": {"id": "n1", "name": "Nina New",
            "roles": ["agent"], "assigned": [{"kind": "queue", "id": "sales"}]}}),
        )
        .await;
    assert_eq!(again["changed"], false);
    assert_eq!(again["version"], after["version"]);
}

#[tokio::test]
async fn deleting_an_agent_closes_its_connections_and_it_cannot_sign_in() {
    let hub = TestHub::start().await;
    let mut agent = hub.agent("a1", "phone").await;
    let (mut watcher, snapshot) = hub.watcher("s1").await;
    assert!(common::in_snapshot(&snapshot, "a1").is_some());
    let mut admin = hub.staff("ad1", "admin").await;
    admin
        .ok(json!({"type": "delete_user", "user_id": "a1"}))
        .await;
    let closed = agent.closed().await;
    assert_eq!(closed.code, 4012, "{closed:?}");
    let removed = watcher
        .recv_where("agent_removed a1", |v| {
            v["type"] == "agent_removed" && v["agent_id"] == "a1"
        })
        .await;
    assert!(common::u64_of(&removed["version"]) > common::u64_of(&snapshot["seq"]));
    let refused = agent_hello(&hub.node(0).url(), "a1")
        .await
        .err()
        .expect("a deleted user cannot sign in");
    assert_eq!(refused.code, 4003);
    // A new subscription does not list a1; deleting again is not_found.
    let mut s = hub.staff("s1", "supervisor").await;
    let fresh = s.subscribe(json!({"all": true})).await;
    assert!(common::in_snapshot(&fresh, "a1").is_none());
    admin
        .refused(json!({"type": "delete_user", "user_id": "a1"}), "not_found")
        .await;
    // Its history says who removed it.
    let history = s.ok(json!({"type": "history", "agent_id": "a1"})).await;
    let last = history["changes"]
        .as_array()
        .and_then(|c| c.last())
        .cloned()
        .expect("a history");
    assert_eq!(last["event"], "user_deleted");
    assert_eq!(last["by"], json!({"id": "ad1", "role": "admin"}));
}

#[tokio::test]
async fn channels_come_and_go_and_leave_no_trace_in_records() {
    let hub = TestHub::start().await;
    let mut agent = hub.agent("a1", "phone").await;
    agent
        .ok(json!({"type": "connect", "channel": {"kind": "queue", "id": "sales"}}))
        .await;
    let (mut watcher, _) = hub.watcher("s1").await;
    let mut admin = hub.staff("ad1", "admin").await;

    admin
        .ok(json!({"type": "put_channel", "channel": {"kind": "queue", "id": "support", "name": "Support"}}))
        .await;
    let added = watcher
        .recv_where("channel support", |v| {
            v["type"] == "channel" && v["channel"]["id"] == "support"
        })
        .await;
    assert_eq!(added["channel"]["name"], "Support");
    // Agents can be assigned to it at once.
    admin
        .ok(json!({"type": "assign", "agent_id": "a2", "channel": {"kind": "queue", "id": "support"}}))
        .await;
    // Renamed.
    admin
        .ok(json!({"type": "put_channel", "channel": {"kind": "queue", "id": "support", "name": "Customer support"}}))
        .await;
    watcher
        .recv_where("channel renamed", |v| {
            v["type"] == "channel" && v["channel"]["name"] == "Customer support"
        })
        .await;

    let deleted = admin
        .ok(json!({"type": "delete_channel", "channel": {"kind": "queue", "id": "sales"}}))
        .await;
    watcher
        .recv_where("channel_removed sales", |v| {
            v["type"] == "channel_removed"
                && v["channel"] == json!({"kind": "queue", "id": "sales"})
        })
        .await;
    let a1 = watcher
        .agent_update("a1", |a| common::channel(a, "queue", "sales").is_none())
        .await;
    assert_eq!(a1["status"], "available", "the agent stays signed in");
    let a2 = watcher
        .agent_update("a2", |a| common::channel(a, "queue", "sales").is_none())
        .await;
    // One change, two agents: a version each (resume stays exact), the
    // reply's the last.
    let (v1, v2) = (
        common::u64_of(&a1["version"]),
        common::u64_of(&a2["version"]),
    );
    assert_ne!(v1, v2, "two agents of one change share a version");
    assert_eq!(v1.max(v2) + 1, common::u64_of(&deleted["version"]));
    agent
        .state(|a| common::channel(a, "queue", "sales").is_none())
        .await;
    // The deleted channel is unknown from now on.
    agent
        .refused(
            json!({"type": "connect", "channel": {"kind": "queue", "id": "sales"}}),
            "not_found",
        )
        .await;
    let mut s = hub.staff("s1", "supervisor").await;
    let fresh = s.subscribe(json!({"all": true})).await;
    let channels = fresh["channels"].as_array().expect("channels");
    assert!(channels.iter().all(|c| c["id"] != "sales"));
    assert!(channels.iter().any(|c| c["id"] == "support"));
}

#[tokio::test]
async fn a_scope_change_closes_the_supervisors_connection_and_the_next_one_has_it() {
    let hub = TestHub::start().await;
    let mut scoped = hub.staff("s2", "supervisor").await;
    let before = scoped.subscribe(json!({"all": true})).await;
    assert!(common::in_snapshot(&before, "a1").is_none(), "billing only");
    let mut admin = hub.staff("ad1", "admin").await;
    admin
        .ok(
            json!({"type": "put_user", "user": {"id": "s2", "name": "Rui Lima",
            "roles": ["supervisor"], "supervises": [{"kind": "queue", "id": "sales"}]}}),
        )
        .await;
    assert_eq!(scoped.closed().await.code, 4012);
    let mut again = hub.staff("s2", "supervisor").await;
    let after = again.subscribe(json!({"all": true})).await;
    assert!(common::in_snapshot(&after, "a1").is_some(), "sales now");
    // A change of name alone keeps connections open.
    admin
        .ok(
            json!({"type": "put_user", "user": {"id": "s2", "name": "Rui M. Lima",
            "roles": ["supervisor"], "supervises": [{"kind": "queue", "id": "sales"}]}}),
        )
        .await;
    again.ok(json!({"type": "heartbeat"})).await;
}

#[tokio::test]
async fn bad_directory_requests_change_nothing() {
    let hub = TestHub::start().await;
    let mut admin = hub.staff("ad1", "admin").await;
    let before = admin.ok(json!({"type": "directory"})).await;
    let mut sup = hub.staff("s1", "supervisor").await;
    sup.refused(json!({"type": "directory"}), "forbidden").await;
    sup.refused(
        json!({"type": "put_user", "user": {"id": "x", "name": "X", "roles": ["agent"]}}),
        "forbidden",
    )
    .await;
    let bad = [
        (
            json!({"type": "put_user", "user": {"id": "x", "name": "X", "roles": ["agent"], "supervisess": []}}),
            "bad_request",
        ),
        (
            json!({"type": "put_user", "user": {"id": "x", "name": "X", "roles": []}}),
            "bad_request",
        ),
        (
            json!({"type": "put_user", "user": {"id": "x", "name": "", "roles": ["agent"]}}),
            "bad_request",
        ),
        (
            json!({"type": "put_user", "user": {"id": "x", "name": "X", "roles": ["boss"]}}),
            "bad_request",
        ),
        (json!({"type": "put_user", "user": ["x"]}), "bad_request"),
        (
            json!({"type": "put_user", "user": {"id": "x", "name": "X", "roles": ["agent"],
            "assigned": [{"kind": "queue", "id": "nope"}]}}),
            "not_found",
        ),
        (
            json!({"type": "put_user", "user": {"id": "s9", "name": "S", "roles": ["supervisor"],
            "supervises": [{"kind": "queue", "id": "nope"}]}}),
            "not_found",
        ),
        (
            json!({"type": "put_user", "user": {"id": "x", "name": "X", "roles": ["agent"],
            "capacity": {"chats": 2}}}),
            "bad_request",
        ),
        (
            json!({"type": "delete_user", "user_id": "nobody"}),
            "not_found",
        ),
        (
            json!({"type": "put_channel", "channel": {"kind": "queue", "id": "q", "name": "Q", "assigned": ["a1"]}}),
            "bad_request",
        ),
        (
            json!({"type": "put_channel", "channel": {"kind": "line", "id": "q", "name": "Q"}}),
            "bad_request",
        ),
        (
            json!({"type": "put_channel", "channel": {"kind": "queue", "id": "a/b", "name": "Q"}}),
            "bad_request",
        ),
        (
            json!({"type": "delete_channel", "channel": {"kind": "queue", "id": "nope"}}),
            "not_found",
        ),
    ];
    for (request, code) in bad {
        admin.refused(request, code).await;
    }
    let after = admin.ok(json!({"type": "directory"})).await;
    assert_eq!(before, after, "refused requests changed the directory");
}

#[tokio::test]
async fn the_http_api_manages_the_directory_for_an_admin_token_only() {
    let hub = TestHub::start().await;
    let addr = hub.node(1).addr;
    let admin = token("acme", "ad1");
    let path = "/api/v1/directory/users/n2";
    let body = r#"{"name": "Nadia Two", "roles": ["agent"], "assigned": [{"kind": "queue", "id": "billing"}]}"#;

    let (status, err) = http(addr, "PUT", path, None, "", Some(body)).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    let (status, err) = http(addr, "PUT", path, Some("not-a-token"), "", Some(body)).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    let supervisor = token("acme", "s1");
    let (status, err) = http(addr, "PUT", path, Some(&supervisor), "", Some(body)).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    let (status, _) = http(addr, "GET", path, Some(&admin), "", None).await;
    assert_eq!(status, 404);

    let (mut watcher, _) = hub.watcher("s2").await; // billing
    let (status, created) = http(addr, "PUT", path, Some(&admin), "", Some(body)).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["user"]["id"], "n2");
    watcher.agent_update("n2", |_| true).await;
    // The agent signs in on another node (node 0 in the cluster variant).
    let agent = agent_hello(&hub.node(0).url(), "n2").await;
    assert!(agent.is_ok(), "n2 could not sign in: {:?}", agent.err());

    let (status, same) = http(addr, "PUT", path, Some(&admin), "", Some(body)).await;
    assert_eq!((status, &same["changed"]), (200, &json!(false)));
    let (status, got) = http(addr, "GET", path, Some(&admin), "", None).await;
    assert_eq!(status, 200);
    assert_eq!(got["name"], "Nadia Two");
    let (status, all) = http(addr, "GET", "/api/v1/directory", Some(&admin), "", None).await;
    assert_eq!(status, 200);
    assert!(all["users"]
        .as_array()
        .is_some_and(|u| u.iter().any(|u| u["id"] == "n2")));

    // Bad input: each refused with its code, nothing changed.
    let version = all["version"].clone();
    for (method, p, b, want) in [
        ("PUT", path, "{not json", 400),
        ("PUT", path, r#"["a"]"#, 400),
        (
            "PUT",
            path,
            r#"{"id": "other", "name": "X", "roles": ["agent"]}"#,
            400,
        ),
        (
            "PUT",
            path,
            r#"{"name": "X", "roles": ["agent"], "rolez": []}"#,
            400,
        ),
        (
            "PUT",
            "/api/v1/directory/channels/line/x",
            r#"{"name": "X"}"#,
            400,
        ),
        ("DELETE", "/api/v1/directory/channels/queue/nope", "", 404),
    ] {
        let (status, err) = http(addr, method, p, Some(&admin), "", Some(b)).await;
        assert_eq!(status, want, "{method} {p} {b}: {err}");
        assert!(err["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    let big = format!(
        r#"{{"name": "{}", "roles": ["agent"]}}"#,
        "x".repeat(70 * 1024)
    );
    let (status, err) = http(addr, "PUT", path, Some(&admin), "", Some(&big)).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (413, Some("too_large"))
    );
    let (_, all) = http(addr, "GET", "/api/v1/directory", Some(&admin), "", None).await;
    assert_eq!(
        all["version"], version,
        "refused requests changed the directory"
    );

    // Channels, and an idempotent delete.
    let (status, _) = http(
        addr,
        "PUT",
        "/api/v1/directory/channels/chat/vip",
        Some(&admin),
        "",
        Some(r#"{"name": "VIP chat"}"#),
    )
    .await;
    assert_eq!(status, 201);
    let key = "Idempotency-Key: del-n2\r\n";
    let (status, first) = http(addr, "DELETE", path, Some(&admin), key, None).await;
    assert_eq!(status, 200, "{first}");
    let (status, second) = http(addr, "DELETE", path, Some(&admin), key, None).await;
    assert_eq!(
        status, 200,
        "a repeat under the same key is answered, not applied: {second}"
    );
    assert_eq!(first["version"], second["version"]);
    let (status, _) = http(addr, "DELETE", path, Some(&admin), "", None).await;
    assert_eq!(status, 404);
    let _ = CLUSTER;
}
