//! The directory's requests, shared by the admin WebSocket (PROTOCOL.md
//! §7.1) and the HTTP API (`/api/v1/directory`, docs/API.md): reading the
//! users and channels, and turning a request body into a
//! [`DirectoryChange`] and its result into the reply both interfaces send.
//!
//! Bodies are read strictly: a member the hub does not know is refused
//! with its place (`user.supervisess: unknown member`), since ignoring a
//! misspelt scope would leave a supervisor seeing everything.

use crate::directory::change::DirectoryChange;
use crate::directory::{ChannelInfo, TenantDirectory};
use crate::domain::{Actor, ChannelRef, User};
use crate::error::{HubError, HubResult};
use crate::hub::directory::Applied;
use crate::hub::tenant::Tenant;
use crate::hub::Hub;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

/// A user as a request gives it: the user, and optionally the agent's
/// complete list of assigned channels.
#[derive(Deserialize)]
struct UserBody {
    id: String,
    name: String,
    roles: Vec<crate::domain::Role>,
    #[serde(default)]
    supervises: Option<Vec<ChannelRef>>,
    #[serde(default)]
    capacity: Option<crate::domain::CapacityOverride>,
    #[serde(default)]
    assigned: Option<Vec<ChannelRef>>,
}

/// Deserializes `value` refusing members `T` does not know, naming the
/// first one under `field`.
fn strictly<T: DeserializeOwned>(value: Value, field: &str) -> HubResult<T> {
    if !value.is_object() {
        return Err(HubError::bad_request(format!("{field} must be an object")));
    }
    let mut unknown = Vec::new();
    let parsed: T = serde_ignored::deserialize(value, |path| unknown.push(path.to_string()))
        .map_err(|e| HubError::bad_request(format!("{field}: {e}")))?;
    if let Some(path) = unknown.first() {
        return Err(HubError::bad_request(format!(
            "{field}.{path}: unknown member (misspelt?)"
        )));
    }
    Ok(parsed)
}

/// A `put_user` body. `path_id`, from an HTTP path, must agree with the
/// body's `id` when the body has one, and is the id when it has none.
pub fn put_user(mut body: Value, path_id: Option<&str>) -> HubResult<DirectoryChange> {
    if let (Some(id), Some(map)) = (path_id, body.as_object_mut()) {
        match map.get("id") {
            None => {
                map.insert("id".into(), Value::String(id.to_string()));
            }
            Some(Value::String(given)) if given == id => {}
            Some(_) => {
                return Err(HubError::bad_request(format!(
                    "user.id must be the path's id {id:?}"
                )))
            }
        }
    }
    let body: UserBody = strictly(body, "user")?;
    Ok(DirectoryChange::PutUser {
        user: User {
            id: body.id,
            name: body.name,
            roles: body.roles,
            supervises: body.supervises,
            capacity: body.capacity,
        },
        assigned: body.assigned,
    })
}

/// A `put_channel` body; `path`, from an HTTP path, as for [`put_user`].
pub fn put_channel(mut body: Value, path: Option<&ChannelRef>) -> HubResult<DirectoryChange> {
    if let (Some(channel), Some(map)) = (path, body.as_object_mut()) {
        for (field, value) in [("kind", channel.kind.as_str()), ("id", channel.id.as_str())] {
            match map.get(field) {
                None => {
                    map.insert(field.into(), Value::String(value.to_string()));
                }
                Some(Value::String(given)) if given == value => {}
                Some(_) => {
                    return Err(HubError::bad_request(format!(
                        "channel.{field} must be the path's {value:?}"
                    )))
                }
            }
        }
    }
    let channel: ChannelInfo = strictly(body, "channel")?;
    Ok(DirectoryChange::PutChannel { channel })
}

/// One user as the directory lists it, with an agent's assigned channels.
pub fn user_json(tenant: &Tenant, user: &User) -> Value {
    let mut value = json!(user);
    if let (Some(record), Some(map)) = (tenant.record(&user.id), value.as_object_mut()) {
        let assigned: Vec<ChannelRef> = record
            .channels
            .iter()
            .filter(|c| c.assigned)
            .map(|c| c.channel_ref())
            .collect();
        map.insert("assigned".into(), json!(assigned));
    }
    value
}

/// The whole directory: `{"tenant", "version", "users", "channels"}`.
pub fn directory_json(tenant: &Tenant) -> Value {
    let dir = tenant.directory();
    json!({
        "tenant": {"id": tenant.id(), "name": tenant.name()},
        "version": dir.version,
        "users": dir.users.iter().map(|u| user_json(tenant, u)).collect::<Vec<_>>(),
        "channels": dir.channels,
    })
}

/// One user of the directory, or `not_found`.
pub fn get_user(tenant: &Tenant, id: &str) -> HubResult<Value> {
    let dir = tenant.directory();
    let user = dir
        .user(id)
        .ok_or_else(|| HubError::not_found(format!("no user {id:?}")))?;
    Ok(user_json(tenant, user))
}

/// One channel of the directory, or `not_found`.
pub fn get_channel(dir: &TenantDirectory, channel: &ChannelRef) -> HubResult<Value> {
    dir.channel(channel)
        .map(|c| json!(c))
        .ok_or_else(|| HubError::not_found(format!("no channel {channel}")))
}

/// Applies a change and says what the directory holds afterwards:
/// `{"version", "changed", "user"|"channel"}` (the entry as it is now,
/// absent once deleted).
pub async fn apply(
    hub: &Arc<Hub>,
    tenant: &Arc<Tenant>,
    by: &Actor,
    change: DirectoryChange,
    once: Option<&crate::backplane::IdempotencyKey>,
) -> HubResult<Value> {
    let applied = hub.change_directory(tenant, by, &change, once).await?;
    let dir = tenant.directory();
    let (version, changed) = match applied {
        Applied::At(seq) => (seq, true),
        Applied::Unchanged => (dir.version, false),
    };
    let mut result = json!({"version": version, "changed": changed});
    match &change {
        DirectoryChange::PutUser { user, .. } => {
            if let Some(now) = dir.user(&user.id) {
                result["user"] = user_json(tenant, now);
            }
        }
        DirectoryChange::PutChannel { channel } => {
            if let Some(now) = dir.channel(&channel.channel_ref()) {
                result["channel"] = json!(now);
            }
        }
        DirectoryChange::DeleteUser { .. } | DirectoryChange::DeleteChannel { .. } => {}
    }
    Ok(result)
}
