//! `/openapi.json` (docs/API.md, issue 26): the document the hub serves
//! describes exactly the routes its router has — the router's list comes
//! from the code that builds it (`api::route_table`), the document's from
//! the served document, and each must hold the other — and live answers of
//! the API match the document's response schemas.

mod common;

use common::http::request as http;
use common::{token, TestHub};
use presence_hub::api::{openapi, route_table};
use serde_json::{json, Value};

/// The served document.
async fn served(hub: &TestHub) -> Value {
    let (status, doc) = http(hub.addr, "GET", "/openapi.json", None, "", None).await;
    assert_eq!(status, 200, "{doc}");
    doc
}

#[tokio::test]
async fn the_document_and_the_router_have_the_same_routes() {
    let hub = TestHub::start().await;
    let doc = served(&hub).await;
    assert_eq!(doc["openapi"], "3.1.0");
    let documented = openapi::operations(&doc);
    let mut routed: Vec<(String, String)> = route_table()
        .into_iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    routed.sort();
    let missing: Vec<_> = routed.iter().filter(|r| !documented.contains(r)).collect();
    let extra: Vec<_> = documented.iter().filter(|d| !routed.contains(d)).collect();
    assert!(missing.is_empty(), "routes the document lacks: {missing:?}");
    assert!(
        extra.is_empty(),
        "documented routes the router lacks: {extra:?}"
    );
    assert!(routed.len() >= 15, "{routed:?}");
    // Every route answers: none of them is the router's 404 or 405.
    let admin = token("acme", "ad1");
    for (method, path) in &routed {
        let path = path.replace("{kind}", "queue").replace("{id}", "zz");
        let (status, body) = http(hub.addr, method, &path, Some(&admin), "", Some("{}")).await;
        assert!(
            body["error"]["code"].is_string() || (200..300).contains(&status),
            "{method} {path}: {status} {body}"
        );
    }
    // Every $ref resolves.
    let text = doc.to_string();
    for r in text.split("\"$ref\":\"").skip(1) {
        let target = &r[..r.find('"').expect("end of ref")];
        let pointer = target.strip_prefix('#').expect("local ref");
        assert!(doc.pointer(pointer).is_some(), "{target} resolves");
    }
}

/// The schema of one documented answer, resolved against the document.
fn check(doc: &Value, method: &str, path: &str, status: u16, body: &Value) {
    let op = &doc["paths"][path][method.to_ascii_lowercase()];
    let mut answer = op["responses"][status.to_string()].clone();
    if let Some(r) = answer["$ref"].as_str() {
        answer = doc
            .pointer(r.trim_start_matches('#'))
            .cloned()
            .unwrap_or_else(|| panic!("{r}"));
    }
    let schema = answer["content"]["application/json"]["schema"].clone();
    assert!(
        schema.is_object(),
        "{method} {path} documents {status}: {op}"
    );
    let mut root = schema;
    root["components"] = doc["components"].clone();
    let validator = jsonschema::validator_for(&root).expect("a valid schema");
    let errors: Vec<String> = validator.iter_errors(body).map(|e| e.to_string()).collect();
    assert!(
        errors.is_empty(),
        "{method} {path} {status}: {body}\n{}",
        errors.join("\n")
    );
}

#[tokio::test]
async fn live_answers_match_the_documents_schemas() {
    let hub = TestHub::start().await;
    let doc = served(&hub).await;
    let admin = token("acme", "ad1");
    let addr = hub.addr;

    let (s, b) = http(
        addr,
        "POST",
        "/api/v1/credentials",
        Some(&admin),
        "",
        Some(r#"{"id": "acd-1", "scopes": ["interactions:write", "status:write", "read"]}"#),
    )
    .await;
    check(&doc, "POST", "/api/v1/credentials", s, &b);
    let key = b["key"].as_str().expect("key").to_string();
    let (s, b) = http(
        addr,
        "POST",
        "/api/v1/credentials",
        Some(&admin),
        "",
        Some(r#"{"id": "acd-1", "scopes": ["read"]}"#),
    )
    .await;
    check(&doc, "POST", "/api/v1/credentials", s, &b);
    let (s, b) = http(addr, "GET", "/api/v1/credentials", Some(&admin), "", None).await;
    check(&doc, "GET", "/api/v1/credentials", s, &b);
    let (s, b) = http(addr, "GET", "/api/v1/directory", Some(&admin), "", None).await;
    check(&doc, "GET", "/api/v1/directory", s, &b);
    let (s, b) = http(
        addr,
        "GET",
        "/api/v1/directory/users/a1",
        Some(&admin),
        "",
        None,
    )
    .await;
    check(&doc, "GET", "/api/v1/directory/users/{id}", s, &b);
    let (s, b) = http(
        addr,
        "PUT",
        "/api/v1/directory/users/n1",
        Some(&admin),
        "",
        Some(r#"{"name": "Nina", "roles": ["agent"]}"#),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    check(&doc, "PUT", "/api/v1/directory/users/{id}", s, &b);
    let (s, b) = http(
        addr,
        "PUT",
        "/api/v1/directory/channels/queue/vip",
        Some(&admin),
        "",
        Some(r#"{"name": "VIP"}"#),
    )
    .await;
    check(&doc, "PUT", "/api/v1/directory/channels/{kind}/{id}", s, &b);

    let _a1 = hub.agent("a1", "phone").await;
    let (s, b) = http(addr, "GET", "/api/v1/agents", Some(&key), "", None).await;
    check(&doc, "GET", "/api/v1/agents", s, &b);
    let (s, b) = http(addr, "GET", "/api/v1/agents/a1", Some(&key), "", None).await;
    check(&doc, "GET", "/api/v1/agents/{id}", s, &b);
    let (s, b) = http(addr, "GET", "/api/v1/channels", Some(&key), "", None).await;
    check(&doc, "GET", "/api/v1/channels", s, &b);
    let answered = json!({"event": "answered", "interaction_id": "c1",
        "channel": {"kind": "queue", "id": "sales"}})
    .to_string();
    let (s, b) = http(
        addr,
        "POST",
        "/api/v1/agents/a1/interactions",
        Some(&key),
        "",
        Some(&answered),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    check(&doc, "POST", "/api/v1/agents/{id}/interactions", s, &b);
    let (s, b) = http(
        addr,
        "POST",
        "/api/v1/agents/a1/interactions",
        Some(&key),
        "",
        Some(r#"{"event": "held", "interaction_id": "c1"}"#),
    )
    .await;
    assert_eq!(s, 202, "{b}");
    check(&doc, "POST", "/api/v1/agents/{id}/interactions", s, &b);
    let (s, b) = http(
        addr,
        "PUT",
        "/api/v1/agents/a1/status",
        Some(&key),
        "",
        Some(r#"{"status": "paused"}"#),
    )
    .await;
    assert_eq!(s, 400, "{b}");
    check(&doc, "PUT", "/api/v1/agents/{id}/status", s, &b);
    let (s, b) = http(
        addr,
        "DELETE",
        "/api/v1/credentials/acd-1",
        Some(&admin),
        "",
        None,
    )
    .await;
    check(&doc, "DELETE", "/api/v1/credentials/{id}", s, &b);
    let (s, b) = http(addr, "GET", "/api/v1/agents", Some(&key), "", None).await;
    assert_eq!(s, 401);
    check(&doc, "GET", "/api/v1/agents", s, &b);
}
