//! The integration API (docs/API.md, "Integrations"; issue 26): an admin
//! creates and revokes service credentials; an ACD holding one reports
//! interactions and sets statuses for any agent, with the agent's own
//! rules and errors, attributed to the integration; an idempotency key
//! applies a change at most once; scopes, revocation and the rate limit
//! are enforced. `tests/cluster_integration_api.rs` runs the same against
//! three nodes sharing a Redis: credentials are created on one node and
//! used and revoked on the others, so a revocation must hold on every node
//! from the next request.

mod common;

use common::http::{exchange, request as http};
use common::{token, TestHub, CLUSTER};
use serde_json::{json, Value};

/// Creates a credential as admin ad1 through node `on`; its key.
async fn create(hub: &TestHub, on: usize, id: &str, scopes: Value) -> String {
    let admin = token("acme", "ad1");
    let (status, body) = http(
        hub.node(on).addr,
        "POST",
        "/api/v1/credentials",
        Some(&admin),
        "",
        Some(&json!({"id": id, "scopes": scopes}).to_string()),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["key"].as_str().expect("the key, once").to_string()
}

fn ch(kind: &str, id: &str) -> Value {
    json!({"kind": kind, "id": id})
}

#[tokio::test]
async fn an_admin_creates_lists_and_revokes_credentials_and_revocation_holds_on_every_node() {
    let hub = TestHub::start().await;
    let admin = token("acme", "ad1");
    let key = create(&hub, 0, "acd-1", json!(["read", "status:write"])).await;
    assert!(key.starts_with("phk_acme.acd-1."), "{key}");

    // Listed without the key or its hash.
    let (status, list) = http(
        hub.node(1).addr,
        "GET",
        "/api/v1/credentials",
        Some(&admin),
        "",
        None,
    )
    .await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["credentials"][0]["id"], "acd-1");
    assert_eq!(list["credentials"][0]["created_by"], "ad1");
    assert_eq!(
        list["credentials"][0]["scopes"],
        json!(["status:write", "read"])
    );
    let text = list.to_string();
    assert!(!text.contains(&key[key.len() - 64..]), "no secret: {text}");
    assert!(!text.contains("hash"), "no hash: {text}");

    // The same id again is refused, and the first key still works.
    let (status, again) = http(
        hub.node(2).addr,
        "POST",
        "/api/v1/credentials",
        Some(&admin),
        "",
        Some(r#"{"id": "acd-1", "scopes": ["read"]}"#),
    )
    .await;
    assert_eq!(status, 409, "{again}");
    assert_eq!(again["error"]["code"], "invalid_state");
    assert!(again.get("key").is_none());

    // Usable on every node.
    for n in 0..hub.nodes.len() {
        let (status, agents) = http(
            hub.node(n).addr,
            "GET",
            "/api/v1/agents",
            Some(&key),
            "",
            None,
        )
        .await;
        assert_eq!(status, 200, "node {n}: {agents}");
        let ids: Vec<&str> = agents["agents"]
            .as_array()
            .expect("agents")
            .iter()
            .filter_map(|a| a["id"].as_str())
            .collect();
        assert_eq!(ids, ["a1", "a2", "a3"]);
    }

    // Revoked on the last node: refused by the very next request on each.
    let last = hub.nodes.len() - 1;
    let (status, revoked) = http(
        hub.node(last).addr,
        "DELETE",
        "/api/v1/credentials/acd-1",
        Some(&admin),
        "",
        None,
    )
    .await;
    assert_eq!(status, 200, "{revoked}");
    for n in 0..hub.nodes.len() {
        let (status, refused) = http(
            hub.node(n).addr,
            "GET",
            "/api/v1/agents/a1",
            Some(&key),
            "",
            None,
        )
        .await;
        assert_eq!(status, 401, "node {n}: {refused}");
        assert_eq!(refused["error"]["code"], "unauthorized");
    }
    // Revoking again: nothing to revoke.
    let (status, _) = http(
        hub.node(0).addr,
        "DELETE",
        "/api/v1/credentials/acd-1",
        Some(&admin),
        "",
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (_, list) = http(
        hub.node(0).addr,
        "GET",
        "/api/v1/credentials",
        Some(&admin),
        "",
        None,
    )
    .await;
    assert_eq!(list["credentials"], json!([]));
}

#[tokio::test]
async fn only_an_admin_manages_credentials_and_bad_bodies_change_nothing() {
    let hub = TestHub::start().await;
    let admin = token("acme", "ad1");
    let supervisor = token("acme", "s1");
    let post = |bearer: String, body: &'static str| {
        let addr = hub.node(0).addr;
        async move {
            http(
                addr,
                "POST",
                "/api/v1/credentials",
                Some(&bearer),
                "",
                Some(body),
            )
            .await
        }
    };
    let (status, e) = post(supervisor.clone(), r#"{"id": "x", "scopes": ["read"]}"#).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    for (body, says) in [
        (r#"{"id": "x", "scopes": []}"#, "at least one"),
        (r#"{"id": "x", "scopes": ["write:all"]}"#, "unknown variant"),
        (
            r#"{"id": "x", "scopes": ["read"], "name": "n"}"#,
            "unknown field",
        ),
        (r#"{"id": "a b", "scopes": ["read"]}"#, "A-Z a-z 0-9"),
        (r#"{"id": "", "scopes": ["read"]}"#, "A-Z a-z 0-9"),
        (r#"{"scopes": ["read"]}"#, "missing field"),
        (r#"[1]"#, "JSON object"),
    ] {
        let (status, e) = post(admin.clone(), body).await;
        assert_eq!(status, 400, "{body}: {e}");
        assert_eq!(e["error"]["code"], "bad_request");
        let message = e["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{body}: {message}");
    }
    let (_, list) = http(
        hub.node(0).addr,
        "GET",
        "/api/v1/credentials",
        Some(&admin),
        "",
        None,
    )
    .await;
    assert_eq!(list["credentials"], json!([]), "nothing was created");
}

#[tokio::test]
async fn scopes_and_keys_are_enforced_and_refusals_are_counted() {
    let hub = TestHub::start().await;
    let reader = create(&hub, 0, "dash", json!(["read"])).await;
    let addr = hub.node(1).addr;
    let body = r#"{"event": "answered", "interaction_id": "c1", "channel": {"kind": "queue", "id": "sales"}}"#;
    // A read-only key cannot report interactions or set statuses.
    let (status, e) = http(
        addr,
        "POST",
        "/api/v1/agents/a1/interactions",
        Some(&reader),
        "",
        Some(body),
    )
    .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (403, Some("forbidden")),
        "{e}"
    );
    assert!(e["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .contains("interactions:write"));
    let (status, _) = http(
        addr,
        "PUT",
        "/api/v1/agents/a1/status",
        Some(&reader),
        "",
        Some(r#"{"status": "available"}"#),
    )
    .await;
    assert_eq!(status, 403);
    // An admin's token is not a service key; nor is a key with a wrong secret.
    let admin = token("acme", "ad1");
    let (status, e) = http(addr, "GET", "/api/v1/agents", Some(&admin), "", None).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (401, Some("unauthorized")),
        "{e}"
    );
    let forged = format!("{}{}", &reader[..reader.len() - 64], "0".repeat(64));
    let (status, _) = http(addr, "GET", "/api/v1/agents", Some(&forged), "", None).await;
    assert_eq!(status, 401);
    let other_tenant = reader.replacen("phk_acme.", "phk_globex.", 1);
    let (status, _) = http(addr, "GET", "/api/v1/agents", Some(&other_tenant), "", None).await;
    assert_eq!(status, 401);
    let (status, _) = http(addr, "GET", "/api/v1/agents", None, "", None).await;
    assert_eq!(status, 401);
    // Nothing changed.
    let (_, a1) = http(addr, "GET", "/api/v1/agents/a1", Some(&reader), "", None).await;
    assert_eq!(a1["agent"]["interactions"], json!([]), "{a1}");

    let (code, text) = common::process::http_get(&hub.node(1).addr.to_string(), "/metrics").await;
    assert_eq!(code, 200);
    for reason in ["scope", "malformed", "unknown"] {
        assert!(
            text.contains(&format!(
                "presence_hub_api_credentials_refused_total{{reason=\"{reason}\"}}"
            )),
            "{reason} counted: {text}"
        );
    }
    assert!(text
        .contains("presence_hub_api_requests_total{route=\"agent_interactions\",status=\"403\"}"));
}

#[tokio::test]
async fn an_interaction_reported_by_the_acd_reaches_the_wallboard_attributed_to_it() {
    let hub = TestHub::start().await;
    let key = create(
        &hub,
        0,
        "acd-1",
        json!(["interactions:write", "status:write", "read"]),
    )
    .await;
    let (mut watcher, _) = hub.watcher("s1").await;
    let mut a1 = hub.agent("a1", "phone").await;
    let addr = hub.node(2).addr;
    let post = |body: Value, extra: &'static str| {
        let key = key.clone();
        async move {
            http(
                addr,
                "POST",
                "/api/v1/agents/a1/interactions",
                Some(&key),
                extra,
                Some(&body.to_string()),
            )
            .await
        }
    };
    let answered =
        json!({"event": "answered", "interaction_id": "call-7", "channel": ch("queue", "sales")});

    let (status, first) = post(answered.clone(), "Idempotency-Key: acd-call-7-answered\r\n").await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["agent"]["status"], "busy");
    let busy = watcher.agent_update("a1", |a| a["status"] == "busy").await;
    assert_eq!(
        busy["changed_by"],
        json!({"id": "acd-1", "role": "integration"})
    );
    assert_eq!(busy["interactions"][0]["id"], "call-7");
    // And the agent's own device (the agent page).
    let mine = a1.state(|a| a["status"] == "busy").await;
    assert_eq!(
        mine["changed_by"],
        json!({"id": "acd-1", "role": "integration"})
    );

    // A retry with the same key changes nothing and answers the same.
    let (status, retry) = post(answered.clone(), "Idempotency-Key: acd-call-7-answered\r\n").await;
    assert_eq!(status, 200, "{retry}");
    assert_eq!(retry["agent"]["version"], first["agent"]["version"]);
    // Without the key: the agent's own rule and error.
    let (status, twice) = post(answered.clone(), "").await;
    assert_eq!(
        (status, twice["error"]["code"].as_str()),
        (409, Some("invalid_state")),
        "{twice}"
    );

    // held and offered change nothing (no such state in the domain).
    let (status, held) = post(json!({"event": "held", "interaction_id": "call-7"}), "").await;
    assert_eq!(status, 202, "{held}");
    assert_eq!(held["changed"], false);
    assert_eq!(held["agent"]["version"], first["agent"]["version"]);
    let (status, e) = post(json!({"event": "held", "interaction_id": "call-8"}), "").await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (409, Some("invalid_state")),
        "{e}"
    );
    let (status, offered) = post(
        json!({"event": "offered", "interaction_id": "call-9", "channel": ch("queue", "sales")}),
        "",
    )
    .await;
    assert_eq!(status, 202, "{offered}");

    // Ended: wrap-up; wrap_up: the ACD ends it.
    let (status, ended) = post(json!({"event": "ended", "interaction_id": "call-7"}), "").await;
    assert_eq!(status, 200, "{ended}");
    assert_eq!(ended["agent"]["status"], "wrap_up");
    let (status, done) = post(json!({"event": "wrap_up", "interaction_id": "call-7"}), "").await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["agent"]["status"], "available");
    watcher
        .agent_update("a1", |a| a["status"] == "available")
        .await;

    // The history names the integration for each change it made.
    let history = watcher
        .ok(json!({"type": "history", "agent_id": "a1"}))
        .await;
    let by_acd: Vec<&str> = history["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter(|c| c["by"] == json!({"id": "acd-1", "role": "integration"}))
        .filter_map(|c| c["event"].as_str())
        .collect();
    assert_eq!(
        by_acd,
        ["interaction_start", "interaction_end", "end_wrap_up"],
        "{history}"
    );

    // Bad input: a clear error, nothing changed.
    for (body, status, code) in [
        (
            json!({"event": "answered", "interaction_id": "c2"}),
            400,
            "bad_request",
        ),
        (
            json!({"event": "answered", "channel": ch("queue", "sales")}),
            400,
            "bad_request",
        ),
        (
            json!({"event": "answered", "interaction_id": "", "channel": ch("queue", "sales")}),
            400,
            "bad_request",
        ),
        (
            json!({"event": "answered", "interaction_id": "c2", "channel": ch("queue", "nope")}),
            404,
            "not_found",
        ),
        (
            json!({"event": "rang", "interaction_id": "c2"}),
            400,
            "bad_request",
        ),
        (
            json!({"event": "ended", "interaction_id": "c2", "extra": 1}),
            400,
            "bad_request",
        ),
        (
            json!({"event": "ended", "interaction_id": "c2"}),
            409,
            "invalid_state",
        ),
    ] {
        let (got, e) = post(body.clone(), "").await;
        assert_eq!(
            (got, e["error"]["code"].as_str()),
            (status, Some(code)),
            "{body}: {e}"
        );
    }
    let long_key = format!("Idempotency-Key: {}\r\n", "k".repeat(129));
    let (status, e) = http(
        addr,
        "POST",
        "/api/v1/agents/a1/interactions",
        Some(&key),
        &long_key,
        Some(&answered.to_string()),
    )
    .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (400, Some("bad_request")),
        "{e}"
    );
    let huge = json!({"event": "ended", "interaction_id": "x".repeat(70 * 1024)}).to_string();
    let (status, e) = http(
        addr,
        "POST",
        "/api/v1/agents/a1/interactions",
        Some(&key),
        "",
        Some(&huge),
    )
    .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (413, Some("too_large")),
        "{e}"
    );
    let (status, e) = http(
        addr,
        "POST",
        "/api/v1/agents/zz/interactions",
        Some(&key),
        "",
        Some(&answered.to_string()),
    )
    .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (404, Some("not_found")),
        "{e}"
    );
    let (_, a1) = http(addr, "GET", "/api/v1/agents/a1", Some(&key), "", None).await;
    assert_eq!(
        a1["agent"]["version"], done["agent"]["version"],
        "nothing changed: {a1}"
    );
}

#[tokio::test]
async fn the_acd_sets_statuses_with_the_agents_rules() {
    let hub = TestHub::start().await;
    let key = create(&hub, 0, "acd-1", json!(["status:write"])).await;
    let (mut watcher, _) = hub.watcher("s1").await;
    let _a2 = hub.agent("a2", "phone").await;
    let addr = hub.node(1).addr;
    let put = |body: &'static str| {
        let key = key.clone();
        async move {
            http(
                addr,
                "PUT",
                "/api/v1/agents/a2/status",
                Some(&key),
                "",
                Some(body),
            )
            .await
        }
    };
    let (status, paused) = put(r#"{"status": "paused", "reason": "Lunch"}"#).await;
    assert_eq!(status, 200, "{paused}");
    let seen = watcher
        .agent_update("a2", |a| a["status"] == "paused")
        .await;
    assert_eq!(seen["pause_reason"], "Lunch");
    assert_eq!(
        seen["changed_by"],
        json!({"id": "acd-1", "role": "integration"})
    );
    for (body, status, code) in [
        (
            r#"{"status": "paused", "reason": "Lunch"}"#,
            409,
            "invalid_state",
        ),
        (r#"{"status": "paused"}"#, 400, "bad_request"),
        (r#"{"status": "busy"}"#, 400, "bad_request"),
        (r#"{"status": "available", "why": 1}"#, 400, "bad_request"),
        ("not json", 400, "bad_request"),
    ] {
        let (got, e) = put(body).await;
        assert_eq!(
            (got, e["error"]["code"].as_str()),
            (status, Some(code)),
            "{body}: {e}"
        );
    }
    let (status, available) = put(r#"{"status": "available"}"#).await;
    assert_eq!(status, 200, "{available}");
    assert_eq!(available["agent"]["status"], "available");
    // Reading needs the read scope.
    let (status, _) = http(addr, "GET", "/api/v1/channels", Some(&key), "", None).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn a_credential_over_its_rate_gets_429_with_retry_after() {
    let hub = TestHub::start_with(|c| {
        c.api_rate_per_credential = 1;
        c.api_burst_per_credential = 2;
    })
    .await;
    let key = create(&hub, 0, "busy", json!(["read"])).await;
    let other = create(&hub, 0, "calm", json!(["read"])).await;
    let addr = hub.node(0).addr;
    for _ in 0..2 {
        let (status, _, e) = exchange(addr, "GET", "/api/v1/channels", Some(&key), "", None).await;
        assert_eq!(status, 200, "{e}");
    }
    let (status, headers, e) =
        exchange(addr, "GET", "/api/v1/channels", Some(&key), "", None).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (429, Some("rate_limited")),
        "{e}"
    );
    assert!(headers.iter().any(|h| h == "retry-after: 1"), "{headers:?}");
    let (_, text) = common::process::http_get(&addr.to_string(), "/metrics").await;
    assert!(
        text.contains("presence_hub_api_credentials_refused_total{reason=\"rate\"}"),
        "{text}"
    );
    // Another credential has its own budget.
    let (status, channels) = http(addr, "GET", "/api/v1/channels", Some(&other), "", None).await;
    assert_eq!(status, 200);
    assert_eq!(channels["channels"].as_array().map(Vec::len), Some(4));
}

/// One node with `--data-dir`: a credential survives a restart, and so
/// does its revocation.
#[tokio::test]
async fn credentials_survive_a_restart_with_a_data_dir() {
    if CLUSTER {
        return; // Redis keeps them; the single node's file is what is tested here.
    }
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("integration-api-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let start = || {
        let mut c = common::test_config();
        c.data_dir = Some(dir.clone());
        common::TestNode::start(c)
    };
    let mut node = start().await;
    let admin = token("acme", "ad1");
    let (status, made) = http(
        node.addr,
        "POST",
        "/api/v1/credentials",
        Some(&admin),
        "",
        Some(r#"{"id": "kept", "scopes": ["read"]}"#),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    let kept = made["key"].as_str().expect("key").to_string();
    let (status, made) = http(
        node.addr,
        "POST",
        "/api/v1/credentials",
        Some(&admin),
        "",
        Some(r#"{"id": "gone", "scopes": ["read"]}"#),
    )
    .await;
    assert_eq!(status, 201);
    let gone = made["key"].as_str().expect("key").to_string();
    let (status, _) = http(
        node.addr,
        "DELETE",
        "/api/v1/credentials/gone",
        Some(&admin),
        "",
        None,
    )
    .await;
    assert_eq!(status, 200);
    node.shutdown().await;
    drop(node);

    let node = start().await;
    let (status, e) = http(node.addr, "GET", "/api/v1/channels", Some(&kept), "", None).await;
    assert_eq!(status, 200, "{e}");
    let (status, _) = http(node.addr, "GET", "/api/v1/channels", Some(&gone), "", None).await;
    assert_eq!(status, 401);
}
