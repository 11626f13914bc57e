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
use common::{token, Client, DEADLINE};
use serde_json::json;
use std::time::Instant;

/// A hello as an agent: the welcome, or the close code.
async fn sign_in(node: &Proc, user: &str) -> Result<Client, u16> {
    let mut c = Client::connect(&node.ws_url()).await;
    c.send(
        json!({"type": "hello", "token": token("acme", user), "role": "agent",
                  "device": {"id": "d1", "kind": "softphone"}}),
    )
    .await;
    match c.try_recv(DEADLINE).await {
        Ok(Some(v)) if v["type"] == "welcome" => Ok(c),
        Ok(other) => panic!("unexpected answer to the hello: {other:?}"),
        Err(closed) => Err(closed.code),
    }
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
