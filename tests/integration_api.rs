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

// ---- the same over one WebSocket (docs/API.md, "Over one WebSocket") ----

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

/// The upgrade's answer: the socket, or the HTTP status and JSON body.
async fn api_socket(addr: std::net::SocketAddr, key: &str) -> Result<Socket, (u16, Value)> {
    let mut request = format!("ws://{addr}/api/v1/ws")
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {key}").parse().expect("header"),
    );
    match tokio_tungstenite::connect_async(request).await {
        Ok((socket, _)) => Ok(socket),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            let status = response.status().as_u16();
            let body = response
                .body()
                .as_ref()
                .and_then(|b| serde_json::from_slice(b).ok())
                .unwrap_or(Value::Null);
            Err((status, body))
        }
        Err(e) => panic!("upgrade: {e}"),
    }
}

/// The next frame from the hub: a reply, or the close code.
async fn next_frame(socket: &mut Socket) -> Result<Value, Option<CloseCode>> {
    let deadline = tokio::time::Instant::now() + common::DEADLINE;
    loop {
        let frame = tokio::time::timeout_at(deadline, socket.next())
            .await
            .expect("a frame from the hub in time");
        match frame {
            Some(Ok(Message::Text(text))) => {
                return Ok(serde_json::from_str(text.as_str()).expect("a JSON reply"))
            }
            Some(Ok(Message::Close(close))) => return Err(close.map(|c| c.code)),
            Some(Ok(_)) => continue,
            None | Some(Err(_)) => return Err(None),
        }
    }
}

async fn reply(socket: &mut Socket) -> Value {
    next_frame(socket).await.expect("a reply, not a close")
}

async fn send_text(socket: &mut Socket, text: String) {
    socket.send(Message::text(text)).await.expect("send");
}

/// Sends one request frame and reads its reply.
async fn ask(socket: &mut Socket, request: Value) -> Value {
    send_text(socket, request.to_string()).await;
    reply(socket).await
}

/// A reply's status and error code.
fn refused(reply: &Value) -> (Value, Value) {
    (
        reply["status"].clone(),
        reply["body"]["error"]["code"].clone(),
    )
}

#[tokio::test]
async fn over_one_websocket_the_acd_is_answered_in_order_with_the_http_apis_answers() {
    let hub = TestHub::start().await;
    let key = create(&hub, 0, "acd-ws", json!(["interactions:write", "read"])).await;
    let (mut watcher, _) = hub.watcher("s1").await;
    let _a1 = hub.agent("a1", "phone").await;
    let mut socket = api_socket(hub.node(1).addr, &key).await.expect("open");

    // Two requests sent back to back, before either answer: applied and
    // answered in the order sent.
    let answered = json!({"id": "r1", "method": "POST", "path": "/api/v1/agents/a1/interactions",
        "idempotency_key": "call-9-answered",
        "body": {"event": "answered", "interaction_id": "call-9", "channel": ch("queue", "sales")}});
    let ended = json!({"id": 2, "method": "POST", "path": "/api/v1/agents/a1/interactions",
        "body": {"event": "ended", "interaction_id": "call-9"}});
    send_text(&mut socket, answered.to_string()).await;
    send_text(&mut socket, ended.to_string()).await;
    let first = reply(&mut socket).await;
    assert_eq!(
        (first["id"].clone(), first["status"].clone()),
        (json!("r1"), json!(200)),
        "{first}"
    );
    assert_eq!(first["body"]["agent"]["status"], "busy", "{first}");
    let second = reply(&mut socket).await;
    assert_eq!(
        (second["id"].clone(), second["status"].clone()),
        (json!(2), json!(200)),
        "{second}"
    );
    let v1 = first["body"]["agent"]["version"].as_u64().expect("version");
    assert!(
        second["body"]["agent"]["version"].as_u64() > Some(v1),
        "{second}"
    );
    // The supervisor sees the integration's changes: `busy`, or only the
    // `ended` after it when its outbox coalesced the two (PROTOCOL.md §5.3).
    let seen = watcher
        .agent_update("a1", |a| a["version"].as_u64() >= Some(v1))
        .await;
    assert_eq!(
        seen["changed_by"],
        json!({"id": "acd-ws", "role": "integration"}),
        "{seen}"
    );
    watcher
        .agent_update("a1", |a| {
            a["status"] == "wrap_up" || a["status"] == "available"
        })
        .await;

    // The same request again with its idempotency key: applied once; the
    // answer is the record as it is now, which the repeat left unchanged.
    send_text(&mut socket, answered.to_string()).await;
    let again = reply(&mut socket).await;
    assert_eq!(again["status"], 200, "{again}");
    assert_eq!(
        again["body"]["agent"]["version"], second["body"]["agent"]["version"],
        "{again}"
    );
    assert_ne!(again["body"]["agent"]["status"], "busy", "{again}");

    // Reads, and the route's own errors with the route's status.
    let read = ask(
        &mut socket,
        json!({"id": "r3", "method": "GET", "path": "/api/v1/agents/a1"}),
    )
    .await;
    assert_eq!(
        (read["status"].clone(), read["body"]["agent"]["id"].clone()),
        (json!(200), json!("a1")),
        "{read}"
    );
    let missing = ask(
        &mut socket,
        json!({"id": "r4", "method": "GET", "path": "/api/v1/agents/nobody"}),
    )
    .await;
    assert_eq!(
        refused(&missing),
        (json!(404), json!("not_found")),
        "{missing}"
    );
    // A route outside the key's scopes: 403 in the reply, the socket stays.
    let scope = ask(
        &mut socket,
        json!({"id": "r5", "method": "PUT", "path": "/api/v1/agents/a1/status",
               "body": {"status": "paused", "reason": "lunch"}}),
    )
    .await;
    assert_eq!(refused(&scope), (json!(403), json!("forbidden")), "{scope}");
    let channels = ask(
        &mut socket,
        json!({"id": "r6", "method": "GET", "path": "/api/v1/channels"}),
    )
    .await;
    assert_eq!(channels["status"], 200, "{channels}");
}

#[tokio::test]
async fn over_one_websocket_bad_frames_get_400_and_change_nothing() {
    let hub = TestHub::start().await;
    let key = create(&hub, 0, "acd-ws", json!(["interactions:write", "read"])).await;
    let _a1 = hub.agent("a1", "phone").await;
    let mut socket = api_socket(hub.node(0).addr, &key).await.expect("open");
    let version = || async {
        let (_, body) = http(
            hub.node(0).addr,
            "GET",
            "/api/v1/agents/a1",
            Some(&key),
            "",
            None,
        )
        .await;
        body["agent"]["version"].clone()
    };
    let before = version().await;
    let interaction =
        json!({"event": "answered", "interaction_id": "c1", "channel": ch("queue", "sales")});
    let bad: Vec<(String, Value)> = vec![
        ("not json".into(), Value::Null),
        ("[1, 2]".into(), Value::Null),
        (json!({"method": "GET", "path": "/api/v1/channels"}).to_string(), Value::Null),
        (json!({"id": {"x": 1}, "method": "GET", "path": "/api/v1/channels"}).to_string(), Value::Null),
        (json!({"id": "k".repeat(129), "method": "GET", "path": "/api/v1/channels"}).to_string(), Value::Null),
        (json!({"id": "b1", "method": "PATCH", "path": "/api/v1/agents/a1/interactions", "body": interaction}).to_string(), json!("b1")),
        (json!({"id": "b2", "method": "POST", "path": "/v1/ws", "body": interaction}).to_string(), json!("b2")),
        (json!({"id": "b3", "method": "GET", "path": "/api/v1/ws"}).to_string(), json!("b3")),
        (json!({"id": "b4", "method": "POST", "path": "/api/v1/agents/a 1/interactions", "body": interaction}).to_string(), json!("b4")),
        (json!({"id": "b5", "method": "POST", "path": "/api/v1/agents/a1/interactions", "body": interaction, "extra": 1}).to_string(), json!("b5")),
        (json!({"id": "b6", "method": "POST", "path": "/api/v1/agents/a1/interactions", "body": interaction, "idempotency_key": "é"}).to_string(), json!("b6")),
        (json!({"id": "b7", "method": "POST", "path": "/api/v1/agents/a1/interactions", "body": {"event": "answered"}}).to_string(), json!("b7")),
    ];
    for (frame, id) in bad {
        send_text(&mut socket, frame.clone()).await;
        let answer = reply(&mut socket).await;
        assert_eq!(
            (
                answer["id"].clone(),
                answer["status"].clone(),
                answer["body"]["error"]["code"].clone()
            ),
            (id, json!(400), json!("bad_request")),
            "{frame} → {answer}"
        );
        assert!(
            answer["body"]["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{answer}"
        );
    }
    socket
        .send(Message::binary(vec![1u8, 2, 3]))
        .await
        .expect("send");
    let answer = reply(&mut socket).await;
    assert_eq!(
        (answer["id"].clone(), answer["status"].clone()),
        (Value::Null, json!(400)),
        "{answer}"
    );
    assert_eq!(version().await, before, "nothing was applied");
    // The socket still works after all of it.
    let channels = ask(
        &mut socket,
        json!({"id": "ok", "method": "GET", "path": "/api/v1/channels"}),
    )
    .await;
    assert_eq!(channels["status"], 200, "{channels}");
}

#[tokio::test]
async fn the_websocket_takes_only_a_valid_key_and_closes_when_it_is_revoked() {
    let hub = TestHub::start().await;
    let admin = token("acme", "ad1");
    // No key, a person's token, a made-up key: 401 before any upgrade.
    let (status, body) = http(hub.node(0).addr, "GET", "/api/v1/ws", None, "", None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("unauthorized")),
        "{body}"
    );
    let refused = api_socket(hub.node(0).addr, &admin)
        .await
        .expect_err("refused");
    assert_eq!(
        (refused.0, refused.1["error"]["code"].as_str()),
        (401, Some("unauthorized")),
        "{refused:?}"
    );
    let made_up = "phk_acme.acd-x.0000000000000000000000000000000000000000000000000000000000000000";
    let refused = api_socket(hub.node(0).addr, made_up)
        .await
        .expect_err("refused");
    assert_eq!(refused.0, 401, "{refused:?}");
    // A valid key over plain HTTP (no upgrade): 400, in JSON.
    let key = create(&hub, 0, "acd-ws", json!(["read"])).await;
    let (status, body) = http(hub.node(0).addr, "GET", "/api/v1/ws", Some(&key), "", None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("bad_request")),
        "{body}"
    );

    // Revoked while connected, on another node: the next request is 401,
    // then the connection closes with 1008.
    let mut socket = api_socket(hub.node(1).addr, &key).await.expect("open");
    let channels = ask(
        &mut socket,
        json!({"id": 1, "method": "GET", "path": "/api/v1/channels"}),
    )
    .await;
    assert_eq!(channels["status"], 200, "{channels}");
    let (status, _) = http(
        hub.node(2).addr,
        "DELETE",
        "/api/v1/credentials/acd-ws",
        Some(&admin),
        "",
        None,
    )
    .await;
    assert_eq!(status, 200);
    let answer = ask(
        &mut socket,
        json!({"id": 2, "method": "GET", "path": "/api/v1/channels"}),
    )
    .await;
    assert_eq!(
        (answer["id"].clone(), answer["status"].clone()),
        (json!(2), json!(401)),
        "{answer}"
    );
    assert_eq!(
        next_frame(&mut socket).await.err(),
        Some(Some(CloseCode::Policy))
    );
}

#[tokio::test]
async fn the_websocket_is_bounded_in_connections_frame_size_and_silence() {
    let hub = TestHub::start_with(|c| {
        c.api_ws_max_connections = 1;
        c.api_ws_idle_s = 1;
        c.api_max_body_bytes = 1024;
    })
    .await;
    let key = create(&hub, 0, "acd-ws", json!(["read"])).await;
    let addr = hub.node(0).addr;
    let mut first = api_socket(addr, &key).await.expect("open");
    let refused = api_socket(addr, &key).await.expect_err("over the limit");
    assert_eq!(
        (refused.0, refused.1["error"]["code"].as_str()),
        (503, Some("unavailable")),
        "{refused:?}"
    );

    // A frame over the body limit and the envelope's room: closed with 1009.
    let huge = json!({"id": 1, "method": "GET", "path": "/api/v1/channels", "body": {"x": "y".repeat(8 * 1024)}});
    send_text(&mut first, huge.to_string()).await;
    assert_eq!(
        next_frame(&mut first).await.err(),
        Some(Some(CloseCode::Size))
    );
    drop(first);

    // The slot is free again once that connection is gone.
    let socket = common::process::eventually_value(
        "a slot again",
        std::time::Duration::from_secs(5),
        || async { api_socket(addr, &key).await.ok() },
    )
    .await;
    drop(socket);

    // A peer that reads the pings but never answers one: closed after
    // --api-ws-idle-s of silence.
    let mut raw = common::process::eventually_value(
        "a slot for the silent peer",
        std::time::Duration::from_secs(5),
        || async {
            let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
            let status = common::raw::upgrade_to(
                &mut stream,
                "/api/v1/ws",
                &format!("Authorization: Bearer {key}\r\n"),
            )
            .await;
            (status == 101).then_some(stream)
        },
    )
    .await;
    common::raw::until_closed(&mut raw, std::time::Duration::from_secs(10)).await;
}

#[tokio::test]
async fn the_websocket_counts_every_frame_and_closes_a_flood_with_4008() {
    // docs/API.md, "Over one WebSocket": every frame counts for
    // --api-ws-rate-limit-per-sec, each fragment of a request too.
    use common::raw::{
        close_code, frame, frame_with, next_frame, next_json, CONTINUATION, PING, PONG, TEXT,
    };
    use tokio::io::AsyncWriteExt;
    let hub = TestHub::start_with(|c| c.api_ws_rate_limit_per_sec = 10).await;
    let key = create(&hub, 0, "acd-ws", json!(["status:write", "read"])).await;
    let _a2 = hub.agent("a2", "phone").await;
    let addr = hub.node(0).addr;
    let open = || async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let extra = format!("Authorization: Bearer {key}\r\n");
        let status = common::raw::upgrade_to(&mut stream, "/api/v1/ws", &extra).await;
        assert_eq!(status, 101);
        stream
    };
    // `text` as `n` fragments of a message, the last one final or not.
    let fragments = |text: &str, n: usize, last_final: bool| {
        common::raw::fragments(text.as_bytes(), n, last_final).concat()
    };
    let agent = || async {
        let (status, a2) = http(addr, "GET", "/api/v1/agents/a2", Some(&key), "", None).await;
        assert_eq!(status, 200, "{a2}");
        a2
    };
    let before = agent().await;
    let pause = json!({"id": "p1", "method": "PUT", "path": "/api/v1/agents/a2/status",
        "body": {"status": "paused", "reason": "Fragmented"}})
    .to_string();

    // In more fragments than the budget has room for: 429 `rate_limited`
    // under its id, and nothing applied.
    let mut s = open().await;
    s.write_all(&fragments(&pause, 15, true))
        .await
        .expect("write");
    let answer = next_json(&mut s).await;
    assert_eq!(
        (answer["id"].as_str(), answer["status"].as_u64()),
        (Some("p1"), Some(429)),
        "{answer}"
    );
    assert_eq!(answer["body"]["error"]["code"], "rate_limited", "{answer}");
    let after = agent().await;
    assert_eq!(
        after["agent"]["version"], before["agent"]["version"],
        "nothing applied: {after}"
    );
    assert_ne!(after["agent"]["status"], "paused", "{after}");

    // With fragments refused, then its last frame once the budget is back:
    // refused whole all the same. The refill is what is tested, so time has
    // to pass here (a tenth of a second gives one frame back at 10 a second).
    let mut s = open().await;
    s.write_all(&fragments(&pause, 14, false))
        .await
        .expect("write");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    s.write_all(&frame_with(0x80 | CONTINUATION, b""))
        .await
        .expect("write");
    let answer = next_json(&mut s).await;
    assert_eq!(answer["status"], 429, "{answer}");
    let after = agent().await;
    assert_eq!(
        after["agent"]["version"], before["agent"]["version"],
        "{after}"
    );

    // A ping over the budget still gets its pong, at once: the node holds
    // no pongs.
    let mut s = open().await;
    let pings: Vec<u8> = (0..12).flat_map(|_| frame(PING, b"p")).collect();
    s.write_all(&pings).await.expect("write");
    for n in 0..12 {
        let (opcode, payload) = next_frame(&mut s).await;
        assert_eq!((opcode, payload.as_slice()), (PONG, &b"p"[..]), "pong {n}");
    }

    // In as many fragments as the budget allows: one request, applied.
    let mut s = open().await;
    s.write_all(&fragments(&pause, 5, true))
        .await
        .expect("write");
    let answer = next_json(&mut s).await;
    assert_eq!(answer["status"], 200, "{answer}");
    assert_eq!(answer["body"]["agent"]["pause_reason"], "Fragmented");

    // An endless run of empty continuations: closed with 4008.
    let mut s = open().await;
    let mut flood = frame_with(TEXT, b"{");
    for _ in 0..40 {
        flood.extend(frame_with(CONTINUATION, b""));
    }
    s.write_all(&flood).await.expect("write");
    assert_eq!(close_code(&mut s).await, 4008);
    // A ping flood the same (the budget counts control frames too).
    let mut s = open().await;
    let pings: Vec<u8> = (0..40).flat_map(|_| frame(PING, b"")).collect();
    s.write_all(&pings).await.expect("write");
    assert_eq!(close_code(&mut s).await, 4008);
}
