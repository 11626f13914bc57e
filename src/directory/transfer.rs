//! `presence-hub directory export|import`: the directory file as a backup
//! of a running hub and as a way to load one into it.
//!
//! Both talk to a node's HTTP API (`/api/v1/directory`, docs/API.md) with
//! an admin's token, like any script: they work the same against one node
//! in memory and against a cluster, need no access to its store, and every
//! change goes through the one write path with its checks and history.
//! `export` prints the token's tenant as a directory file (channels with
//! their agents' assignments, users); `import` reads a file with the same
//! loader as `--directory` (every rule of docs/DIRECTORY.md), then puts its
//! channels, then its users — so scopes and assignments name channels that
//! exist — and with `prune` deletes the users, then the channels, the file
//! does not name. Unchanged entries are not written (`changed: false`), so
//! importing the same file twice changes nothing the second time.
//! Settings are not part of it: they are changed with `update_settings`.

use super::Directory;
use crate::api::client::Api;
use serde_json::{json, Value};
use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error(transparent)]
    Api(#[from] crate::api::client::ApiError),
    #[error(transparent)]
    Directory(#[from] super::DirectoryError),
    #[error("the file has no tenant {0:?} (the token's tenant)")]
    NoSuchTenant(String),
}

/// What an import did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Imported {
    pub changed: usize,
    pub unchanged: usize,
    pub deleted: usize,
}

/// The token's tenant as a directory file (pretty JSON).
pub async fn export(base: &str, token: &str) -> Result<String, TransferError> {
    let api = Api::new(base, token)?;
    let dir = api
        .call(reqwest::Method::GET, "/api/v1/directory", None)
        .await?;
    Ok(as_file(&dir))
}

/// A `GET /api/v1/directory` answer as a directory file.
fn as_file(dir: &Value) -> String {
    let empty = Vec::new();
    let users = dir["users"].as_array().unwrap_or(&empty);
    // Channel → the agents assigned to it, from each agent's `assigned`.
    let mut assigned: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for user in users {
        for channel in user["assigned"].as_array().unwrap_or(&empty) {
            let key = (
                channel["kind"].as_str().unwrap_or_default().to_string(),
                channel["id"].as_str().unwrap_or_default().to_string(),
            );
            if let Some(id) = user["id"].as_str() {
                assigned.entry(key).or_default().push(id.to_string());
            }
        }
    }
    let channels: Vec<Value> = dir["channels"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .map(|c| {
            let key = (
                c["kind"].as_str().unwrap_or_default().to_string(),
                c["id"].as_str().unwrap_or_default().to_string(),
            );
            let mut channel = c.clone();
            if let Some(agents) = assigned.get(&key) {
                channel["assigned"] = json!(agents);
            }
            channel
        })
        .collect();
    let users: Vec<Value> = users
        .iter()
        .map(|u| {
            let mut user = u.clone();
            if let Some(map) = user.as_object_mut() {
                map.remove("assigned");
            }
            user
        })
        .collect();
    let file = json!({"tenants": [{
        "id": dir["tenant"]["id"],
        "name": dir["tenant"]["name"],
        "channels": channels,
        "users": users,
    }]});
    serde_json::to_string_pretty(&file).unwrap_or_default() + "\n"
}

/// Loads the token's tenant from a directory file into the hub.
pub async fn import(
    base: &str,
    token: &str,
    file: &str,
    prune: bool,
) -> Result<Imported, TransferError> {
    let parsed = Directory::parse(file)?;
    let api = Api::new(base, token)?;
    let current = api
        .call(reqwest::Method::GET, "/api/v1/directory", None)
        .await?;
    let tenant_id = current["tenant"]["id"].as_str().unwrap_or_default();
    let tenant = parsed
        .tenant(tenant_id)
        .ok_or_else(|| TransferError::NoSuchTenant(tenant_id.to_string()))?;
    let mut done = Imported::default();
    let mut count = |answer: &Value| {
        if answer["changed"] == true {
            done.changed += 1;
        } else {
            done.unchanged += 1;
        }
    };
    for channel in &tenant.channels {
        let path = format!(
            "/api/v1/directory/channels/{}/{}",
            channel.kind.as_str(),
            urlencoded(&channel.id)
        );
        let body = json!({"name": channel.name});
        count(&api.call(reqwest::Method::PUT, &path, Some(&body)).await?);
    }
    for user in &tenant.users {
        let mut body = json!(user);
        if user.has_role(crate::domain::Role::Agent) {
            let assigned: Vec<Value> = tenant
                .channels
                .iter()
                .filter(|c| c.assigned.contains(&user.id))
                .map(|c| json!({"kind": c.kind, "id": c.id}))
                .collect();
            body["assigned"] = json!(assigned);
        }
        let path = format!("/api/v1/directory/users/{}", urlencoded(&user.id));
        count(&api.call(reqwest::Method::PUT, &path, Some(&body)).await?);
    }
    if prune {
        let empty = Vec::new();
        for user in current["users"].as_array().unwrap_or(&empty) {
            let id = user["id"].as_str().unwrap_or_default();
            if tenant.user(id).is_none() {
                let path = format!("/api/v1/directory/users/{}", urlencoded(id));
                api.call(reqwest::Method::DELETE, &path, None).await?;
                done.deleted += 1;
            }
        }
        for channel in current["channels"].as_array().unwrap_or(&empty) {
            let kind = channel["kind"].as_str().unwrap_or_default();
            let id = channel["id"].as_str().unwrap_or_default();
            if !tenant
                .channels
                .iter()
                .any(|c| c.kind.as_str() == kind && c.id == id)
            {
                let path = format!("/api/v1/directory/channels/{kind}/{}", urlencoded(id));
                api.call(reqwest::Method::DELETE, &path, None).await?;
                done.deleted += 1;
            }
        }
    }
    Ok(done)
}

/// A path segment with everything but unreserved characters escaped.
fn urlencoded(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exported_directory_is_a_valid_file_with_its_assignments() {
        let dir = json!({"version": 3, "tenant": {"id": "acme", "name": "Acme"},
            "users": [{"id": "a1", "name": "Ana", "roles": ["agent"],
                       "assigned": [{"kind": "queue", "id": "sales"}]},
                      {"id": "s1", "name": "Sara", "roles": ["supervisor"]}],
            "channels": [{"kind": "queue", "id": "sales", "name": "Sales"}]});
        let text = as_file(&dir);
        let parsed = Directory::parse(&text).expect("a valid directory file");
        let acme = parsed.tenant("acme").expect("acme");
        assert_eq!(acme.channels[0].assigned, vec!["a1".to_string()]);
        assert_eq!(acme.users.len(), 2);
    }

    #[test]
    fn path_segments_are_escaped() {
        assert_eq!(urlencoded("a b/c%"), "a%20b%2Fc%25");
        assert_eq!(urlencoded("ana.souza-1_~"), "ana.souza-1_~");
    }
}
