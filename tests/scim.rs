//! SCIM 2.0 provisioning (docs/SCIM.md): an identity provider with its
//! tenant's SCIM token creates, updates, deactivates and deletes agents and
//! assigns them to channels through groups; every change is a directory
//! change, so supervisors see it, a deactivated agent's connections close
//! with 4012 and it can no longer sign in; bad requests get a SCIM error
//! and change nothing. `tests/cluster_scim.rs` runs the same against three
//! nodes sharing a Redis (agents on node 0, supervisors on node 1, SCIM
//! requests on each node in turn).

mod common;

use common::{token, Client, TestHub, DEADLINE};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ACME: &str = "acme-scim-secret-0123456789";
const GLOBEX: &str = "globex-scim-secret-9876543210";

fn sha256_hex(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A hub whose `--scim-tokens` file names acme's and globex's tokens.
async fn scim_hub(test: &str) -> TestHub {
    let dir = std::env::temp_dir().join(format!("presence-hub-scim-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("scim-tokens.json");
    std::fs::write(
        &file,
        json!({"acme": sha256_hex(ACME), "globex": sha256_hex(GLOBEX)}).to_string(),
    )
    .expect("tokens file");
    TestHub::start_with(|c| c.scim_tokens = Some(file)).await
}

struct Answer {
    status: u16,
    body: Value,
    head: String,
}

/// Which node the next request goes to: in the cluster variant, requests
/// take turns among the three nodes, as an identity provider's do behind a
/// load balancer (each must see what the one before it changed).
static NEXT_NODE: AtomicUsize = AtomicUsize::new(1);

/// One HTTP/1.1 request (`Connection: close`), to the nodes in turn.
async fn http(
    hub: &TestHub,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<&str>,
) -> Answer {
    let addr = hub.node(NEXT_NODE.fetch_add(1, Ordering::Relaxed)).addr;
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let auth = bearer.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let body = body.unwrap_or("");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{auth}\
         Content-Type: application/scim+json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(request.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    tokio::time::timeout(DEADLINE, s.read_to_end(&mut out))
        .await
        .expect("an answer in time")
        .expect("read");
    let text = String::from_utf8_lossy(&out);
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status line");
    let rest = rest.trim();
    let body = if rest.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(rest).unwrap_or_else(|e| panic!("not JSON ({e}): {rest}"))
    };
    Answer {
        status,
        body,
        head: head.to_ascii_lowercase(),
    }
}

async fn scim(hub: &TestHub, method: &str, path: &str, body: Option<Value>) -> Answer {
    let body = body.map(|b| b.to_string());
    http(hub, method, path, Some(ACME), body.as_deref()).await
}

/// A SCIM error's status and scimType, checking its shape.
fn error_of(a: &Answer) -> (u16, Option<String>) {
    assert_eq!(
        a.body["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:Error"]),
        "{}",
        a.body
    );
    assert_eq!(
        a.body["status"],
        json!(a.status.to_string()),
        "status as a string"
    );
    assert!(a.body["detail"].as_str().is_some_and(|d| !d.is_empty()));
    (a.status, a.body["scimType"].as_str().map(String::from))
}

/// A hello for `user` as an agent on node 0: `Ok` after the welcome, or the close.
async fn agent_hello(hub: &TestHub, user: &str) -> Result<Client, common::Closed> {
    common::agent_hello(&hub.node(0).url(), "acme", user).await
}

/// The directory as the JSON API shows it to acme's admin.
async fn directory(hub: &TestHub) -> Value {
    let a = http(
        hub,
        "GET",
        "/api/v1/directory",
        Some(&token("acme", "ad1")),
        None,
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    a.body
}

fn assigned_of(dir: &Value, user: &str) -> Option<Value> {
    dir["users"]
        .as_array()?
        .iter()
        .find(|u| u["id"] == user)
        .map(|u| u["assigned"].clone())
}

#[tokio::test]
async fn scim_answers_only_a_tenants_own_token() {
    let hub = scim_hub("auth").await;
    for bearer in [None, Some("wrong-token"), Some("")] {
        let a = http(&hub, "GET", "/scim/v2/Users", bearer, None).await;
        assert_eq!(error_of(&a), (401, None), "{bearer:?}");
        assert!(a.head.contains("www-authenticate: bearer"), "{}", a.head);
    }
    // A user's JWT, even an admin's, is no SCIM token.
    let a = http(
        &hub,
        "GET",
        "/scim/v2/Users",
        Some(&token("acme", "ad1")),
        None,
    )
    .await;
    assert_eq!(a.status, 401);
    // Another tenant's token sees that tenant only.
    let a = http(&hub, "GET", "/scim/v2/Users", Some(GLOBEX), None).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let ids: Vec<&str> = a.body["Resources"]
        .as_array()
        .expect("Resources")
        .iter()
        .filter_map(|u| u["id"].as_str())
        .collect();
    assert_eq!(ids, ["g1", "gs"]);
    let a = http(&hub, "GET", "/scim/v2/Users/a1", Some(GLOBEX), None).await;
    assert_eq!(error_of(&a), (404, None));
    let a = http(
        &hub,
        "PATCH",
        "/scim/v2/Users/a1",
        Some(GLOBEX),
        Some(r#"{"Operations": [{"op": "replace", "value": {"active": false}}]}"#),
    )
    .await;
    assert_eq!(a.status, 404, "globex cannot deactivate acme's agent");
    assert!(assigned_of(&directory(&hub).await, "a1").is_some());
    // acme's token, with the SCIM media type.
    let a = scim(&hub, "GET", "/scim/v2/ServiceProviderConfig", None).await;
    assert_eq!(a.status, 200);
    assert!(
        a.head.contains("content-type: application/scim+json"),
        "{}",
        a.head
    );
    assert_eq!(a.body["patch"]["supported"], true);
    assert_eq!(a.body["bulk"]["supported"], false);
    assert_eq!(a.body["filter"]["maxResults"], 100);
    for path in ["/scim/v2/ResourceTypes", "/scim/v2/Schemas"] {
        let a = scim(&hub, "GET", path, None).await;
        assert_eq!(
            (a.status, &a.body["totalResults"]),
            (200, &json!(2)),
            "{path}"
        );
    }
    let a = scim(&hub, "GET", "/scim/v2/Bulk", None).await;
    assert_eq!(error_of(&a), (404, None));
    // Counted.
    let metrics = reqwest_free_get(&hub, "/metrics").await;
    assert!(
        metrics.contains("presence_hub_scim_requests_total"),
        "no SCIM series: {}",
        metrics
            .lines()
            .filter(|l| l.contains("_total{"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// GET of a text body (for /metrics).
async fn reqwest_free_get(hub: &TestHub, path: &str) -> String {
    let addr = hub.node(1).addr;
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .expect("write");
    let mut out = Vec::new();
    tokio::time::timeout(DEADLINE, s.read_to_end(&mut out))
        .await
        .expect("in time")
        .expect("read");
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn without_tokens_scim_is_off_and_answers_404() {
    let hub = TestHub::start().await;
    for (method, path) in [
        ("GET", "/scim/v2/Users"),
        ("GET", "/scim/v2/ServiceProviderConfig"),
        ("POST", "/scim/v2/Users"),
    ] {
        let a = http(&hub, method, path, Some(ACME), Some("{}")).await;
        assert_eq!(error_of(&a), (404, None), "{method} {path}");
    }
}

#[tokio::test]
async fn an_unusable_tokens_file_stops_the_start_never_open_access() {
    let dir = std::env::temp_dir().join(format!("ph-scim-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let not_hex = dir.join("not-hex.json");
    std::fs::write(&not_hex, r#"{"acme": "secret-in-clear"}"#).expect("write");
    for path in [dir.join("no-such-file.json"), not_hex] {
        let mut config = common::test_config();
        config.scim_tokens = Some(path.clone());
        let directory =
            presence_hub::directory::Directory::parse(common::DIRECTORY).expect("directory");
        match presence_hub::node::Node::bind_with(config, directory).await {
            Ok(_) => panic!("a node started with {}", path.display()),
            Err(e) => assert!(e.to_string().contains("--scim-tokens"), "{e}"),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

// Okta's app integrations without PATCH (AIW) send whole users by PUT,
// `active` included; groups can be replaced whole and deleted.
#[tokio::test]
async fn whole_users_and_groups_replace_and_a_deleted_group_is_a_deleted_channel() {
    let hub = scim_hub("whole").await;
    let (mut watcher, _) = hub.watcher("s1").await;
    let mut agent = agent_hello(&hub, "a1").await.expect("a1 signs in");
    let user = |active: bool| {
        Some(
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": "a1", "name": {"givenName": "Ana", "familyName": "Souza"},
                    "active": active}),
        )
    };
    let a = scim(&hub, "PUT", "/scim/v2/Users/a1", user(false)).await;
    assert_eq!(
        (a.status, &a.body["active"]),
        (200, &json!(false)),
        "{}",
        a.body
    );
    assert_eq!(agent.closed().await.code, 4012);
    watcher
        .recv_where("agent_removed a1", |v| {
            v["type"] == "agent_removed" && v["agent_id"] == "a1"
        })
        .await;
    let a = scim(&hub, "PUT", "/scim/v2/Users/a1", user(true)).await;
    assert_eq!(
        (a.status, &a.body["displayName"]),
        (200, &json!("Ana Souza")),
        "{}",
        a.body
    );
    assert!(agent_hello(&hub, "a1").await.is_ok(), "a1 is back");

    // The billing group replaced whole: a1 in, a2 out.
    let a = scim(
        &hub,
        "PUT",
        "/scim/v2/Groups/queue:billing",
        Some(json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": "Billing", "members": [{"value": "a1"}]})),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        a.body["members"]
            .as_array()
            .map(|m| m.iter().map(|m| m["value"].clone()).collect::<Vec<_>>()),
        Some(vec![json!("a1")])
    );
    watcher
        .agent_update("a2", |a| {
            common::flags(a, "queue", "billing").is_none_or(|(_, assigned)| !assigned)
        })
        .await;
    let dir = directory(&hub).await;
    assert_eq!(
        assigned_of(&dir, "a1"),
        Some(json!([{"kind": "queue", "id": "billing"}]))
    );
    // The history names SCIM as the actor.
    let mut s = hub.staff("s1", "supervisor").await;
    let history = s.ok(json!({"type": "history", "agent_id": "a1"})).await;
    let last = history["changes"]
        .as_array()
        .and_then(|c| c.last())
        .cloned()
        .expect("a history");
    assert_eq!(last["by"], json!({"id": "scim", "role": "admin"}));

    // Deleting the group deletes the channel.
    let a = scim(&hub, "DELETE", "/scim/v2/Groups/queue:billing", None).await;
    assert_eq!((a.status, a.body), (204, Value::Null));
    watcher
        .recv_where("channel_removed billing", |v| {
            v["type"] == "channel_removed"
                && v["channel"] == json!({"kind": "queue", "id": "billing"})
        })
        .await;
    let a = scim(&hub, "GET", "/scim/v2/Groups/queue:billing", None).await;
    assert_eq!(error_of(&a), (404, None));
}

#[tokio::test]
async fn users_are_created_listed_filtered_and_paginated() {
    let hub = scim_hub("list").await;
    let (mut watcher, _) = hub.watcher("s1").await;
    for (i, name) in ["Nina One", "Nuno Two", "Noa Three"].iter().enumerate() {
        let a = scim(
            &hub,
            "POST",
            "/scim/v2/Users",
            Some(json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": format!("n{}@acme.test", i + 1), "displayName": name, "active": true})),
        )
        .await;
        assert_eq!(a.status, 201, "{}", a.body);
        assert_eq!(a.body["id"], format!("n{}@acme.test", i + 1));
        assert_eq!(a.body["meta"]["resourceType"], "User");
        assert_eq!(
            a.body["meta"]["location"],
            format!("/scim/v2/Users/n{}@acme.test", i + 1)
        );
        assert_eq!(a.body["active"], true);
    }
    // Supervisors see the new agent; it signs in.
    let n2 = watcher.agent_update("n2@acme.test", |_| true).await;
    assert_eq!(n2["name"], "Nuno Two");
    assert!(agent_hello(&hub, "n2@acme.test").await.is_ok());
    // Creating it again is a conflict.
    let a = scim(
        &hub,
        "POST",
        "/scim/v2/Users",
        Some(json!({"userName": "n2@acme.test"})),
    )
    .await;
    assert_eq!(error_of(&a), (409, Some("uniqueness".into())));

    let a = scim(
        &hub,
        "GET",
        "/scim/v2/Users?filter=userName%20eq%20%22N2@acme.test%22",
        None,
    )
    .await;
    assert_eq!(
        (a.status, &a.body["totalResults"]),
        (200, &json!(1)),
        "{}",
        a.body
    );
    assert_eq!(a.body["Resources"][0]["displayName"], "Nuno Two");
    let a = scim(
        &hub,
        "GET",
        "/scim/v2/Users?filter=userName+eq+%22nobody%22",
        None,
    )
    .await;
    assert_eq!(
        (&a.body["totalResults"], &a.body["Resources"]),
        (&json!(0), &json!([]))
    );
    // 6 users in the test directory and 3 new ones; pages of 4.
    let mut seen = Vec::new();
    for start in [1, 5, 9] {
        let a = scim(
            &hub,
            "GET",
            &format!("/scim/v2/Users?startIndex={start}&count=4"),
            None,
        )
        .await;
        assert_eq!(a.body["totalResults"], 9);
        assert_eq!(a.body["startIndex"], start);
        let page = a.body["Resources"].as_array().expect("Resources").clone();
        assert_eq!(a.body["itemsPerPage"], page.len());
        seen.extend(page.into_iter().map(|u| u["id"].clone()));
    }
    assert_eq!(seen.len(), 9);
    let mut unique = seen.clone();
    unique.dedup();
    assert_eq!(unique, seen, "pages overlap");
    let a = scim(&hub, "GET", "/scim/v2/Users?count=0", None).await;
    assert_eq!(
        (
            &a.body["totalResults"],
            a.body["Resources"].as_array().map(Vec::len)
        ),
        (&json!(9), Some(0))
    );
    let a = scim(&hub, "GET", "/scim/v2/Users?count=5000", None).await;
    assert_eq!(a.body["itemsPerPage"], 9, "count is capped, not refused");
}

// The requests Okta sends, in the order it sends them, as Okta's "SCIM 2.0
// protocol reference" (developer.okta.com, docs/reference/scim/scim-20)
// shows them: existence check by filter, create, read, profile update by
// PUT, deactivation by PATCH without a path, reactivation, then Group Push:
// create, rename by PATCH without a path, add members, remove a member by
// `members[value eq "…"]`. Okta's ids are replaced by the hub's.
#[tokio::test]
async fn the_okta_sequence_provisions_deactivates_and_groups_an_agent() {
    let hub = scim_hub("okta").await;
    let id = "test.user@okta.local";
    let a = scim(
        &hub,
        "GET",
        "/scim/v2/Users?filter=userName%20eq%20%22test.user%40okta.local%22&startIndex=1&count=100",
        None,
    )
    .await;
    assert_eq!((a.status, &a.body["totalResults"]), (200, &json!(0)));
    let a = scim(
        &hub,
        "POST",
        "/scim/v2/Users",
        Some(json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "test.user@okta.local",
            "name": {"givenName": "Test", "familyName": "User"},
            "emails": [{"primary": true, "value": "test.user@okta.local", "type": "work"}],
            "displayName": "Test User",
            "locale": "en-US",
            "externalId": "00ujl29u0le5T6Aj10h7",
            "groups": [],
            "password": "1mz050nq",
            "active": true
        })),
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(
        (&a.body["id"], &a.body["displayName"]),
        (&json!(id), &json!("Test User"))
    );
    let path = "/scim/v2/Users/test.user@okta.local";
    let a = scim(&hub, "GET", path, None).await;
    assert_eq!((a.status, &a.body["userName"]), (200, &json!(id)));
    let a = scim(&hub, "PUT", path, Some(json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": id,
        "userName": "test.user@okta.local",
        "name": {"givenName": "Another", "middleName": "", "familyName": "User"},
        "emails": [{"primary": true, "value": "test.user@okta.local", "type": "work"}],
        "displayName": "Another User",
        "locale": "en-US",
        "externalId": "00ujl29u0le5T6Aj10h7",
        "groups": [],
        "active": true,
        "meta": {"resourceType": "User", "created": "2019-07-15T18:58:34.000Z", "lastModified": "2019-07-15T18:58:34.000Z"}
    }))).await;
    assert_eq!(
        (a.status, &a.body["displayName"]),
        (200, &json!("Another User")),
        "{}",
        a.body
    );

    // Group Push: a group named as a channel creates it; members are assigned.
    let (mut watcher, _) = hub.watcher("s1").await;
    let a = scim(
        &hub,
        "POST",
        "/scim/v2/Groups",
        Some(json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "queue:support",
            "members": []
        })),
    )
    .await;
    assert_eq!(
        (a.status, &a.body["id"]),
        (201, &json!("queue:support")),
        "{}",
        a.body
    );
    let group = "/scim/v2/Groups/queue:support";
    let a = scim(&hub, "PATCH", group, Some(json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "value": {"id": "queue:support", "displayName": "Support"}}]
    }))).await;
    assert_eq!(
        (a.status, &a.body["displayName"]),
        (200, &json!("Support")),
        "{}",
        a.body
    );
    let a = scim(&hub, "PATCH", group, Some(json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "add", "path": "members", "value": [{"value": id, "display": "test.user@okta.local"}]}]
    }))).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["members"][0]["value"], id);
    let seen = watcher
        .agent_update(id, |a| {
            common::flags(a, "queue", "support") == Some((false, true))
        })
        .await;
    assert_eq!(seen["name"], "Another User");
    assert_eq!(
        assigned_of(&directory(&hub).await, id),
        Some(json!([{"kind": "queue", "id": "support"}]))
    );
    let a = scim(&hub, "GET", path, None).await;
    assert_eq!(a.body["groups"][0]["value"], "queue:support");
    let a = scim(
        &hub,
        "PATCH",
        group,
        Some(json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "remove", "path": format!("members[value eq \"{id}\"]")}]
        })),
    )
    .await;
    assert_eq!(
        (a.status, &a.body["members"]),
        (200, &json!([])),
        "{}",
        a.body
    );
    watcher
        .agent_update(id, |a| {
            common::flags(a, "queue", "support") != Some((false, true))
        })
        .await;

    // Deactivation: the open connection closes with 4012, sign-in is refused.
    let mut agent = agent_hello(&hub, id).await.expect("signs in");
    let a = scim(
        &hub,
        "PATCH",
        path,
        Some(json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "value": {"active": false}}]
        })),
    )
    .await;
    assert_eq!(
        (a.status, &a.body["active"]),
        (200, &json!(false)),
        "{}",
        a.body
    );
    assert_eq!(agent.closed().await.code, 4012);
    let refused = agent_hello(&hub, id)
        .await
        .err()
        .expect("a deactivated agent cannot sign in");
    assert_eq!(refused.code, 4003);
    let a = scim(&hub, "GET", path, None).await;
    assert_eq!(error_of(&a), (404, None));
    // Reactivation brings the agent back.
    let a = scim(
        &hub,
        "PATCH",
        path,
        Some(json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "value": {"active": true}}]
        })),
    )
    .await;
    assert_eq!(
        (a.status, &a.body["active"]),
        (200, &json!(true)),
        "{}",
        a.body
    );
    assert!(
        agent_hello(&hub, id).await.is_ok(),
        "a reactivated agent signs in"
    );
}

// The requests Microsoft Entra ID's provisioning service sends, as
// Microsoft's "Tutorial: Develop and plan provisioning for a SCIM endpoint"
// (learn.microsoft.com, entra/identity/app-provisioning/
// use-scim-to-provision-users-and-groups, "Request and response
// examples") shows them, with the quirks Entra is known for (capitalised
// ops, "False" as a string; learn.microsoft.com, "Known issues and
// resolutions with SCIM 2.0 protocol compliance").
#[tokio::test]
async fn the_entra_sequence_provisions_groups_and_disables_an_agent() {
    let hub = scim_hub("entra").await;
    let id = "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1";
    let a = scim(
        &hub,
        "GET",
        &format!("/scim/v2/Users?filter=userName+eq+%22{id}%22"),
        None,
    )
    .await;
    assert_eq!(a.body["totalResults"], 0);
    let a = scim(&hub, "POST", "/scim/v2/Users", Some(json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "userName": id,
        "active": true,
        "emails": [{"primary": true, "type": "work", "value": "Test_User_fd0ea19b-0777-472c-9f96-4f70d2226f2e@testuser.com"}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
        "roles": []
    }))).await;
    assert_eq!(
        (a.status, &a.body["displayName"]),
        (201, &json!("givenName familyName")),
        "{}",
        a.body
    );
    let path = format!("/scim/v2/Users/{id}");
    let a = scim(
        &hub,
        "GET",
        &format!("/scim/v2/Users?filter=userName+eq+%22{id}%22"),
        None,
    )
    .await;
    assert_eq!(a.body["Resources"][0]["id"], id);
    // Multi-valued and half-name updates: accepted, the name stays whole.
    let a = scim(&hub, "PATCH", &path, Some(json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "updatedEmail@microsoft.com"},
            {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"}]
    }))).await;
    assert_eq!(
        (a.status, &a.body["displayName"]),
        (200, &json!("givenName familyName")),
        "{}",
        a.body
    );
    // A display name without a path (Entra's object form).
    let a = scim(
        &hub,
        "PATCH",
        &path,
        Some(json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "Add", "value": {"displayName": "Gina Given"}}]
        })),
    )
    .await;
    assert_eq!(
        (a.status, &a.body["displayName"]),
        (200, &json!("Gina Given")),
        "{}",
        a.body
    );
    // userName is the hub's id: Entra's rename is refused, nothing changes.
    let a = scim(&hub, "PATCH", &path, Some(json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "Replace", "path": "userName", "value": "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com"}]
    }))).await;
    assert_eq!(error_of(&a), (400, Some("mutability".into())));

    // Groups: matched by displayName (the channel's name), members added
    // and removed with a `members` path and a value list.
    let (mut watcher, _) = hub.watcher("s1").await;
    let a = scim(
        &hub,
        "GET",
        "/scim/v2/Groups?excludedAttributes=members&filter=displayName+eq+%22Billing%22",
        None,
    )
    .await;
    assert_eq!(a.body["totalResults"], 1, "{}", a.body);
    assert_eq!(a.body["Resources"][0]["id"], "queue:billing");
    assert!(a.body["Resources"][0].get("members").is_none());
    let group = "/scim/v2/Groups/queue:billing";
    let a = scim(
        &hub,
        "PATCH",
        group,
        Some(json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "Add", "path": "members", "value": [{"$ref": null, "value": id}]}]
        })),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    watcher
        .agent_update(id, |a| {
            common::flags(a, "queue", "billing") == Some((false, true))
        })
        .await;
    let a = scim(
        &hub,
        "GET",
        &format!("{group}?excludedAttributes=members"),
        None,
    )
    .await;
    assert!(a.body.get("members").is_none());
    let a = scim(&hub, "GET", group, None).await;
    let members: Vec<&str> = a.body["members"]
        .as_array()
        .expect("members")
        .iter()
        .filter_map(|m| m["value"].as_str())
        .collect();
    assert_eq!(
        members,
        [id, "a2"],
        "sorted by id, the new member beside a2"
    );
    let a = scim(&hub, "PATCH", group, Some(json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "Remove", "path": "members", "value": [{"$ref": null, "value": id}]}]
    }))).await;
    assert_eq!(a.status, 200, "{}", a.body);
    watcher
        .agent_update(id, |a| {
            common::flags(a, "queue", "billing") != Some((false, true))
        })
        .await;
    assert_eq!(assigned_of(&directory(&hub).await, id), Some(json!([])));

    // Disable, with the string boolean.
    let mut agent = agent_hello(&hub, id).await.expect("signs in");
    let a = scim(
        &hub,
        "PATCH",
        &path,
        Some(json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "Replace", "path": "active", "value": "False"}]
        })),
    )
    .await;
    assert_eq!(
        (a.status, &a.body["active"]),
        (200, &json!(false)),
        "{}",
        a.body
    );
    assert_eq!(agent.closed().await.code, 4012);
    assert_eq!(
        agent_hello(&hub, id).await.err().map(|c| c.code),
        Some(4003)
    );
    // Entra's later hard delete finds nothing left.
    let a = scim(&hub, "DELETE", &path, None).await;
    assert_eq!(error_of(&a), (404, None));
    // A user that exists is deleted with 204.
    let a = scim(&hub, "DELETE", "/scim/v2/Users/a2", None).await;
    assert_eq!((a.status, a.body), (204, Value::Null));
    assert!(assigned_of(&directory(&hub).await, "a2").is_none());
}

/// method, path, body, status, scimType.
type Case = (
    &'static str,
    &'static str,
    Option<Value>,
    u16,
    Option<&'static str>,
);

#[tokio::test]
async fn bad_scim_requests_get_a_scim_error_and_change_nothing() {
    let hub = scim_hub("bad").await;
    let before = directory(&hub).await;
    let patch = |ops: Value| {
        Some(
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops}),
        )
    };
    let cases: Vec<Case> = vec![
        (
            "POST",
            "/scim/v2/Users",
            Some(json!({"userName": "a/b"})),
            400,
            Some("invalidValue"),
        ),
        (
            "POST",
            "/scim/v2/Users",
            Some(json!({"userName": ""})),
            400,
            Some("invalidValue"),
        ),
        (
            "POST",
            "/scim/v2/Users",
            Some(json!({"userName": "x".repeat(129)})),
            400,
            Some("invalidValue"),
        ),
        (
            "POST",
            "/scim/v2/Users",
            Some(json!({"userName": "ok\u{7}"})),
            400,
            Some("invalidValue"),
        ),
        (
            "POST",
            "/scim/v2/Users",
            Some(json!({"userName": 7})),
            400,
            Some("invalidValue"),
        ),
        (
            "POST",
            "/scim/v2/Users",
            Some(json!({"displayName": "No Name"})),
            400,
            Some("invalidValue"),
        ),
        (
            "POST",
            "/scim/v2/Users",
            Some(json!({"userName": "x1", "displayName": "y".repeat(201)})),
            400,
            Some("invalidValue"),
        ),
        (
            "POST",
            "/scim/v2/Users",
            Some(json!({"userName": "x1", "actve": false})),
            400,
            Some("invalidPath"),
        ),
        (
            "POST",
            "/scim/v2/Users",
            Some(json!({"userName": "x1", "active": false})),
            400,
            Some("invalidValue"),
        ),
        (
            "POST",
            "/scim/v2/Users",
            Some(json!(["x"])),
            400,
            Some("invalidSyntax"),
        ),
        (
            "PUT",
            "/scim/v2/Users/a1",
            Some(json!({"userName": "a9"})),
            400,
            Some("mutability"),
        ),
        (
            "PATCH",
            "/scim/v2/Users/a1",
            patch(json!([{"op": "move", "path": "active", "value": false}])),
            400,
            Some("invalidSyntax"),
        ),
        (
            "PATCH",
            "/scim/v2/Users/a1",
            patch(json!([{"op": "replace", "path": "actve", "value": false}])),
            400,
            Some("invalidPath"),
        ),
        (
            "PATCH",
            "/scim/v2/Users/a1",
            patch(json!([{"op": "replace", "path": "active", "value": "maybe"}])),
            400,
            Some("invalidValue"),
        ),
        // One bad operation among good ones: the good ones are not applied.
        (
            "PATCH",
            "/scim/v2/Users/a1",
            patch(json!([
            {"op": "replace", "path": "displayName", "value": "Changed"},
            {"op": "replace", "value": {"active": "nope"}}])),
            400,
            Some("invalidValue"),
        ),
        (
            "PATCH",
            "/scim/v2/Users/a1",
            Some(json!({"Operations": []})),
            400,
            Some("invalidSyntax"),
        ),
        (
            "PATCH",
            "/scim/v2/Users/nobody",
            patch(json!([{"op": "replace", "path": "displayName", "value": "X"}])),
            404,
            None,
        ),
        (
            "GET",
            "/scim/v2/Users?filter=userName%20sw%20%22a%22",
            None,
            400,
            Some("invalidFilter"),
        ),
        (
            "GET",
            "/scim/v2/Users?filter=externalId%20eq%20%22a%22",
            None,
            400,
            Some("invalidFilter"),
        ),
        (
            "GET",
            "/scim/v2/Users?count=many",
            None,
            400,
            Some("invalidValue"),
        ),
        (
            "POST",
            "/scim/v2/Groups",
            Some(json!({"displayName": "Marketing"})),
            400,
            Some("invalidValue"),
        ),
        (
            "POST",
            "/scim/v2/Groups",
            Some(json!({"displayName": "Sales"})),
            409,
            Some("uniqueness"),
        ),
        (
            "POST",
            "/scim/v2/Groups",
            Some(json!({"displayName": "queue:new", "members": [{"value": "s1"}]})),
            400,
            Some("invalidValue"),
        ),
        (
            "POST",
            "/scim/v2/Groups",
            Some(json!({"displayName": "queue:a/b"})),
            400,
            Some("invalidValue"),
        ),
        (
            "PATCH",
            "/scim/v2/Groups/queue:sales",
            patch(json!([
            {"op": "add", "path": "members", "value": [{"value": "a3"}]},
            {"op": "add", "path": "members", "value": [{"value": "nobody"}]}])),
            400,
            Some("invalidValue"),
        ),
        (
            "PATCH",
            "/scim/v2/Groups/queue:sales",
            patch(json!([{"op": "add", "path": "members", "value": [{"value": "s1"}]}])),
            400,
            Some("invalidValue"),
        ),
        (
            "PATCH",
            "/scim/v2/Groups/queue:sales",
            patch(json!([{"op": "add", "path": "owners", "value": []}])),
            400,
            Some("invalidPath"),
        ),
        (
            "PATCH",
            "/scim/v2/Groups/queue:nope",
            patch(json!([{"op": "add", "path": "members", "value": [{"value": "a1"}]}])),
            404,
            None,
        ),
        ("DELETE", "/scim/v2/Groups/line:x", None, 404, None),
        ("DELETE", "/scim/v2/Users/nobody", None, 404, None),
    ];
    for (method, path, body, status, scim_type) in cases {
        let a = scim(&hub, method, path, body.clone()).await;
        assert_eq!(
            error_of(&a),
            (status, scim_type.map(String::from)),
            "{method} {path} {body:?}: {}",
            a.body
        );
    }
    let big = json!({"userName": "big", "displayName": "x".repeat(70 * 1024)}).to_string();
    let a = http(&hub, "POST", "/scim/v2/Users", Some(ACME), Some(&big)).await;
    assert_eq!(error_of(&a), (413, None));
    let a = http(
        &hub,
        "POST",
        "/scim/v2/Users",
        Some(ACME),
        Some("{not json"),
    )
    .await;
    assert_eq!(error_of(&a), (400, Some("invalidSyntax".into())));
    assert_eq!(
        directory(&hub).await,
        before,
        "refused SCIM requests changed the directory"
    );
}
