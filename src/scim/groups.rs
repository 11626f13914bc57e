//! SCIM groups onto channels: a group is one channel of the tenant, its
//! members the agents assigned to it.
//!
//! - The group's `id` is `<kind>:<channel id>` (`queue:sales`,
//!   `chat:web`, `campaign:renewals`); its `displayName` the channel's
//!   name.
//! - Creating a group whose `displayName` is `<kind>:<id>` creates that
//!   channel (named by its id; rename it in the hub or with a PATCH of
//!   `displayName`). A `displayName` that already names a channel (by
//!   `<kind>:<id>` or by its name) is 409 `uniqueness`: the identity
//!   provider links to it by `filter=displayName eq "…"` instead. Any other
//!   name is 400 `invalidValue`: the hub has no groups that are not
//!   channels.
//! - Members must be users holding the agent role (400 `invalidValue`
//!   otherwise). Adding a member assigns the channel to the agent; removing
//!   one unassigns it (a connection to it stays, as when an admin
//!   unassigns). Removing a member the hub does not know (a deactivated
//!   user) does nothing.
//! - Deleting the group deletes the channel (and takes it out of every
//!   record and scope, as the directory does).
//!
//! A request is checked whole before anything changes; the changes it
//! makes are then one directory change per agent (assignments live in the
//! agents' records), applied in order.

use super::error::{ScimError, ScimResult};
use super::patch::{self, Op};
use super::{path_segment, Answer, Caller, Query};
use crate::directory::change::DirectoryChange;
use crate::directory::ChannelInfo;
use crate::domain::{ChannelKind, ChannelRef, Role};
use crate::hub::Hub;
use axum::http::StatusCode;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::Arc;

pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

/// `queue:sales`.
pub fn group_id(channel: &ChannelRef) -> String {
    format!("{}:{}", channel.kind.as_str(), channel.id)
}

/// The channel a group id (or a `<kind>:<id>` display name) names.
pub fn channel_of(text: &str) -> Option<ChannelRef> {
    let (kind, id) = text.split_once(':')?;
    let kind = match kind {
        "queue" => ChannelKind::Queue,
        "chat" => ChannelKind::Chat,
        "campaign" => ChannelKind::Campaign,
        _ => return None,
    };
    Some(ChannelRef::new(kind, id))
}

/// The agents assigned to `channel`, by id.
fn members(c: &Caller, channel: &ChannelRef) -> BTreeSet<String> {
    c.tenant
        .records_where(|r| {
            r.channels
                .iter()
                .any(|ch| ch.assigned && ch.channel_ref() == *channel)
        })
        .iter()
        .map(|r| r.id.clone())
        .collect()
}

pub fn resource(c: &Caller, info: &ChannelInfo, without_members: bool) -> Value {
    let key = info.channel_ref();
    let id = group_id(&key);
    let mut group = json!({
        "schemas": [GROUP_SCHEMA],
        "id": id,
        "displayName": info.name,
        "meta": {
            "resourceType": "Group",
            "location": format!("/scim/v2/Groups/{}", path_segment(&id)),
        },
    });
    if !without_members {
        let dir = c.tenant.directory();
        let list: Vec<Value> = members(c, &key)
            .into_iter()
            .map(|m| {
                let display = dir.user(&m).map_or_else(|| m.clone(), |u| u.name.clone());
                json!({"value": m, "display": display,
                       "$ref": format!("/scim/v2/Users/{}", path_segment(&m))})
            })
            .collect();
        group["members"] = json!(list);
    }
    group
}

pub fn list(c: &Caller, q: &Query) -> ScimResult<Value> {
    let dir = c.tenant.directory();
    let mut channels: Vec<&ChannelInfo> = match &q.filter {
        None => dir.channels.iter().collect(),
        Some(f) if f.is("displayName") => dir
            .channels
            .iter()
            .filter(|ch| {
                ch.name.to_lowercase() == f.value.to_lowercase()
                    || group_id(&ch.channel_ref()) == f.value
            })
            .collect(),
        Some(f) if f.is("id") => dir
            .channels
            .iter()
            .filter(|ch| group_id(&ch.channel_ref()) == f.value)
            .collect(),
        Some(f) => {
            return Err(ScimError::invalid_filter(format!(
                "groups are found by displayName (or id), not {}",
                f.attribute
            )))
        }
    };
    channels.sort_by_key(|ch| ch.channel_ref());
    Ok(q.page(
        channels
            .into_iter()
            .map(|ch| resource(c, ch, q.without_members))
            .collect(),
    ))
}

fn unknown(id: &str) -> ScimError {
    ScimError::not_found(format!(
        "no group {id:?} (groups are channels: queue:sales)"
    ))
}

fn find(c: &Caller, id: &str) -> ScimResult<ChannelInfo> {
    let channel = channel_of(id).ok_or_else(|| unknown(id))?;
    c.tenant
        .directory()
        .channel(&channel)
        .cloned()
        .ok_or_else(|| unknown(id))
}

pub fn get(c: &Caller, id: &str, q: &Query) -> ScimResult<Value> {
    Ok(resource(c, &find(c, id)?, q.without_members))
}

/// What a request makes of a group: a new name, the members afterwards.
#[derive(Debug, Default)]
struct Target {
    name: Option<String>,
    members: Option<BTreeSet<String>>,
}

/// `[{"value": "a1"}, …]` as ids.
fn member_ids(value: &Value) -> ScimResult<Vec<String>> {
    let list = match value {
        Value::Array(list) => list.as_slice(),
        Value::Object(_) => std::slice::from_ref(value),
        _ => {
            return Err(ScimError::invalid_value(
                "members must be a list of {\"value\": \"<user id>\"}",
            ))
        }
    };
    list.iter()
        .map(|m| {
            m.get("value")
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| {
                    ScimError::invalid_value("each member needs a string \"value\" (the user's id)")
                })
        })
        .collect()
}

fn display_name(value: &Value) -> ScimResult<String> {
    value
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| ScimError::invalid_value("displayName must be a string"))
}

/// Checks the target against the directory, then applies it: a rename,
/// then one assignment change per agent whose membership changes.
async fn apply(hub: &Arc<Hub>, c: &Caller, info: &ChannelInfo, target: Target) -> ScimResult<()> {
    let key = info.channel_ref();
    let dir = c.tenant.directory();
    let now = members(c, &key);
    let mut changes = Vec::new();
    if let Some(name) = target
        .name
        .filter(|n| *n != info.name && *n != group_id(&key))
    {
        changes.push(DirectoryChange::PutChannel {
            channel: ChannelInfo {
                kind: key.kind,
                id: key.id.clone(),
                name,
                assigned: Vec::new(),
            },
        });
    }
    if let Some(wanted) = target.members {
        for id in wanted.difference(&now) {
            let user = dir
                .user(id)
                .filter(|u| u.has_role(Role::Agent))
                .ok_or_else(|| {
                    ScimError::invalid_value(format!(
                        "member {id:?} is no agent of this tenant (only agents are assigned to channels)"
                    ))
                })?;
            changes.push(reassign(c, user, &key, true));
        }
        for id in now.difference(&wanted) {
            if let Some(user) = dir.user(id) {
                changes.push(reassign(c, user, &key, false));
            }
        }
    }
    for change in &changes {
        hub.change_directory(&c.tenant, &c.actor, change, None)
            .await?;
    }
    Ok(())
}

/// The agent with `channel` assigned (or not) and the rest of its
/// assignments as they are.
fn reassign(
    c: &Caller,
    user: &crate::domain::User,
    channel: &ChannelRef,
    assign: bool,
) -> DirectoryChange {
    let mut assigned: Vec<ChannelRef> = c
        .tenant
        .record(&user.id)
        .map(|r| {
            r.channels
                .iter()
                .filter(|ch| ch.assigned)
                .map(|ch| ch.channel_ref())
                .collect()
        })
        .unwrap_or_default();
    assigned.retain(|ch| ch != channel);
    if assign {
        assigned.push(channel.clone());
    }
    DirectoryChange::PutUser {
        user: user.clone(),
        assigned: Some(assigned),
    }
}

/// Members of a group and its id-like attributes a whole group may carry.
fn read_whole(body: &Value, target: &mut Target) -> ScimResult<()> {
    if let Some(map) = body.as_object() {
        for (k, v) in map {
            match k.to_ascii_lowercase().as_str() {
                "displayname" => target.name = Some(display_name(v)?),
                "members" => target.members = Some(member_ids(v)?.into_iter().collect()),
                "schemas" | "meta" | "id" | "externalid" => {}
                k if k.starts_with("urn:") => {}
                other => {
                    return Err(ScimError::invalid_path(format!(
                        "{other:?} is no attribute of a SCIM Group"
                    )))
                }
            }
        }
    }
    Ok(())
}

pub async fn create(hub: &Arc<Hub>, c: &Caller, body: &Value) -> ScimResult<Answer> {
    let name = body
        .get("displayName")
        .ok_or_else(|| ScimError::invalid_value("displayName is required"))
        .and_then(display_name)?;
    let mut target = Target::default();
    read_whole(body, &mut target)?;
    target.name = None;
    let dir = c.tenant.directory();
    if let Some(existing) = dir
        .channels
        .iter()
        .find(|ch| ch.name == name || group_id(&ch.channel_ref()) == name)
    {
        return Err(ScimError::uniqueness(format!(
            "group {} exists (the channel {:?})",
            group_id(&existing.channel_ref()),
            existing.name
        )));
    }
    let channel = channel_of(&name).ok_or_else(|| {
        ScimError::invalid_value(format!(
            "{name:?} names no channel: a group is a channel, named <kind>:<id> (queue:sales) or by an existing channel's name"
        ))
    })?;
    let info = ChannelInfo {
        kind: channel.kind,
        id: channel.id.clone(),
        name: channel.id.clone(),
        assigned: Vec::new(),
    };
    // Members are checked before the channel is made, so a bad member
    // leaves no channel behind.
    if let Some(wanted) = &target.members {
        for id in wanted {
            if !dir.user(id).is_some_and(|u| u.has_role(Role::Agent)) {
                return Err(ScimError::invalid_value(format!(
                    "member {id:?} is no agent of this tenant"
                )));
            }
        }
    }
    hub.change_directory(
        &c.tenant,
        &c.actor,
        &DirectoryChange::PutChannel {
            channel: info.clone(),
        },
        None,
    )
    .await?;
    apply(hub, c, &info, target).await?;
    let now = find(c, &group_id(&channel))?;
    Ok((StatusCode::CREATED, Some(resource(c, &now, false))))
}

pub async fn replace(hub: &Arc<Hub>, c: &Caller, id: &str, body: &Value) -> ScimResult<Answer> {
    let info = find(c, id)?;
    let mut target = Target::default();
    read_whole(body, &mut target)?;
    apply(hub, c, &info, target).await?;
    Ok((StatusCode::OK, Some(resource(c, &find(c, id)?, false))))
}

pub async fn patch(hub: &Arc<Hub>, c: &Caller, id: &str, body: &Value) -> ScimResult<Answer> {
    let info = find(c, id)?;
    let ops = patch::parse(body)?;
    let mut target = Target::default();
    let mut set = members(c, &info.channel_ref());
    let mut touched = false;
    for op in &ops {
        match (&op.path, op.op) {
            (None, _) => {
                let map = op
                    .value
                    .as_ref()
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                for (k, v) in &map {
                    match k.to_ascii_lowercase().as_str() {
                        "displayname" => target.name = Some(display_name(v)?),
                        "members" => {
                            let ids = member_ids(v)?;
                            if op.op == Op::Replace {
                                set.clear();
                            }
                            set.extend(ids);
                            touched = true;
                        }
                        "id" | "externalid" | "schemas" | "meta" => {}
                        other => {
                            return Err(ScimError::invalid_path(format!(
                                "{other:?} is no attribute of a SCIM Group"
                            )))
                        }
                    }
                }
            }
            (Some(path), op_kind) => {
                match (path.attribute.as_str(), &path.filter, path.sub.as_deref()) {
                    ("members", None, None) => {
                        let ids = op.value.as_ref().map(member_ids).transpose()?;
                        match (op_kind, ids) {
                            (Op::Add, Some(ids)) => set.extend(ids),
                            (Op::Replace, Some(ids)) => set = ids.into_iter().collect(),
                            (Op::Remove, Some(ids)) => {
                                for m in ids {
                                    set.remove(&m);
                                }
                            }
                            (Op::Remove, None) => set.clear(),
                            (_, None) => {
                                return Err(ScimError::invalid_value("members needs a value"))
                            }
                        }
                        touched = true;
                    }
                    ("members", Some(f), None) if f.is("value") && op_kind == Op::Remove => {
                        set.remove(&f.value);
                        touched = true;
                    }
                    ("displayname", None, None) if op_kind != Op::Remove => {
                        let v = op
                            .value
                            .as_ref()
                            .ok_or_else(|| ScimError::invalid_value("displayName needs a value"))?;
                        target.name = Some(display_name(v)?);
                    }
                    ("externalid", None, None) => {}
                    _ => {
                        return Err(ScimError::invalid_path(format!(
                            "this hub does not {:?} that path of a Group",
                            op_kind
                        )))
                    }
                }
            }
        }
    }
    if touched {
        target.members = Some(set);
    }
    apply(hub, c, &info, target).await?;
    Ok((StatusCode::OK, Some(resource(c, &find(c, id)?, false))))
}

pub async fn delete(hub: &Arc<Hub>, c: &Caller, id: &str) -> ScimResult<Answer> {
    let info = find(c, id)?;
    let change = DirectoryChange::DeleteChannel {
        channel: info.channel_ref(),
    };
    hub.change_directory(&c.tenant, &c.actor, &change, None)
        .await?;
    Ok((StatusCode::NO_CONTENT, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_ids_are_kind_and_channel() {
        let sales = ChannelRef::new(ChannelKind::Queue, "sales");
        assert_eq!(group_id(&sales), "queue:sales");
        assert_eq!(channel_of("queue:sales"), Some(sales));
        assert_eq!(channel_of("line:x"), None);
        assert_eq!(channel_of("sales"), None);
    }
}
