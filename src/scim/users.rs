//! SCIM users onto the directory's users.
//!
//! - `userName` is the hub's user id, and so the SCIM `id` too: the `sub`
//!   of the user's tokens. It cannot change (a rename is 400 `mutability`);
//!   it follows the hub's id rules (1 to 128 characters, no `/` nor
//!   control characters; otherwise 400 `invalidValue`).
//! - The name is `displayName`, else `name.formatted`, else `givenName
//!   familyName`, else the `userName`. A PATCH of only one of `givenName`
//!   and `familyName` leaves the name as it is (the hub keeps one name and
//!   cannot rebuild it from half).
//! - A user created over SCIM is an agent. An existing user's roles,
//!   scope and capacity are the hub's, never touched by SCIM.
//! - `active: false` removes the user from the directory (DirectoryChange
//!   `DeleteUser`): its connections close with 4012, it can no longer sign
//!   in, its record and assignments go. The directory has no inactive
//!   users, so such a user is then unknown (404), like a deleted one.
//!   `active: true` (PATCH or PUT) on an id the hub does not know brings
//!   the user back as an agent, with the request's name or its id.
//! - Other attributes (emails, externalId, title, enterprise extension …)
//!   are accepted and not kept; an attribute SCIM does not define is
//!   refused (400 `invalidPath`), so a misspelt `active` never passes.

use super::error::{ScimError, ScimResult};
use super::patch::{self, Op, Path};
use super::{path_segment, Answer, Caller, Query};
use crate::directory::change::{DirectoryChange, MAX_ID_LEN};
use crate::domain::{Role, User};
use crate::hub::Hub;
use axum::http::StatusCode;
use serde_json::{json, Map, Value};
use std::sync::Arc;

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

/// Attributes of RFC 7643 §4.1 (and any extension's) the hub accepts and
/// does not keep.
const NOT_KEPT: [&str; 19] = [
    "externalid",
    "emails",
    "phonenumbers",
    "ims",
    "photos",
    "addresses",
    "entitlements",
    "roles",
    "x509certificates",
    "title",
    "usertype",
    "locale",
    "timezone",
    "preferredlanguage",
    "nickname",
    "profileurl",
    "password",
    "schemas",
    "meta",
];

/// A user as SCIM shows it.
pub fn resource(c: &Caller, user: &User, active: bool) -> Value {
    let groups: Vec<Value> = c
        .tenant
        .record(&user.id)
        .map(|r| {
            let dir = c.tenant.directory();
            r.channels
                .iter()
                .filter(|ch| ch.assigned)
                .map(|ch| {
                    let id = super::groups::group_id(&ch.channel_ref());
                    let display = dir
                        .channel(&ch.channel_ref())
                        .map_or_else(|| ch.id.clone(), |info| info.name.clone());
                    json!({"value": id, "display": display,
                           "$ref": format!("/scim/v2/Groups/{}", path_segment(&id))})
                })
                .collect()
        })
        .unwrap_or_default();
    json!({
        "schemas": [USER_SCHEMA],
        "id": user.id,
        "userName": user.id,
        "displayName": user.name,
        "name": {"formatted": user.name},
        "active": active,
        "groups": groups,
        "meta": {
            "resourceType": "User",
            "location": format!("/scim/v2/Users/{}", path_segment(&user.id)),
        },
    })
}

pub fn list(c: &Caller, q: &Query) -> ScimResult<Value> {
    let dir = c.tenant.directory();
    let mut users: Vec<&User> = match &q.filter {
        None => dir.users.iter().map(|u| &**u).collect(),
        Some(f) if f.is("userName") || f.is("id") => {
            // userName is case-insensitive (RFC 7643 §4.1.1).
            dir.users
                .iter()
                .filter(|u| u.id.to_lowercase() == f.value.to_lowercase())
                .map(|u| &**u)
                .collect()
        }
        Some(f) => {
            return Err(ScimError::invalid_filter(format!(
                "users are found by userName (or id), not {}",
                f.attribute
            )))
        }
    };
    users.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(q.page(users.into_iter().map(|u| resource(c, u, true)).collect()))
}

pub fn get(c: &Caller, id: &str) -> ScimResult<Value> {
    let dir = c.tenant.directory();
    let user = dir.user(id).ok_or_else(|| unknown(id))?;
    Ok(resource(c, user, true))
}

fn unknown(id: &str) -> ScimError {
    ScimError::not_found(format!("no user {id:?} (unknown, deleted or deactivated)"))
}

fn valid_id(id: &str) -> ScimResult<()> {
    if !crate::text::within(id, 1, MAX_ID_LEN) || id.chars().any(|c| c.is_control() || c == '/') {
        return Err(ScimError::invalid_value(format!(
            "userName must be 1 to {MAX_ID_LEN} characters, without control characters or '/'"
        )));
    }
    Ok(())
}

/// What a request says of a user: the parts the hub keeps.
#[derive(Debug, Default, Clone, PartialEq)]
struct Wanted {
    display: Option<String>,
    formatted: Option<String>,
    given: Option<String>,
    family: Option<String>,
    active: Option<bool>,
}

impl Wanted {
    /// The name these parts make, if any.
    fn name(&self) -> Option<String> {
        let full = match (&self.given, &self.family) {
            (Some(g), Some(f)) => Some(format!("{} {}", g.trim(), f.trim())),
            _ => None,
        };
        self.display
            .clone()
            .or_else(|| self.formatted.clone())
            .or(full)
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty())
    }
}

fn string_or_null(value: &Value, field: &str) -> ScimResult<Option<String>> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        _ => Err(ScimError::invalid_value(format!(
            "{field} must be a string"
        ))),
    }
}

/// Sets one attribute (a path relative to the User) from `value`;
/// `None` removes it.
fn set(
    wanted: &mut Wanted,
    id: &str,
    path: &Path,
    value: Option<&Value>,
    merge: bool,
) -> ScimResult<()> {
    let text = |field: &str| value.map_or(Ok(None), |v| string_or_null(v, field));
    match (path.attribute.as_str(), path.sub.as_deref()) {
        ("active", None) => {
            let v = value.ok_or_else(|| ScimError::invalid_value("active cannot be removed"))?;
            wanted.active = Some(
                patch::boolean(v)
                    .ok_or_else(|| ScimError::invalid_value("active must be true or false"))?,
            );
        }
        ("displayname", None) => wanted.display = text("displayName")?,
        ("name", None) => match value {
            Some(Value::Object(map)) => {
                if !merge {
                    (wanted.formatted, wanted.given, wanted.family) = (None, None, None);
                }
                for (k, v) in map {
                    let sub = Path {
                        attribute: "name".into(),
                        filter: None,
                        sub: Some(k.to_ascii_lowercase()),
                    };
                    set(wanted, id, &sub, Some(v), merge)?;
                }
            }
            None | Some(Value::Null) => {
                (wanted.formatted, wanted.given, wanted.family) = (None, None, None)
            }
            Some(_) => return Err(ScimError::invalid_value("name must be an object")),
        },
        ("name", Some("formatted")) => wanted.formatted = text("name.formatted")?,
        ("name", Some("givenname")) => wanted.given = text("name.givenName")?,
        ("name", Some("familyname")) => wanted.family = text("name.familyName")?,
        ("name", Some(_)) => {} // middleName, honorificPrefix, …: not kept
        ("username" | "id", None) => {
            let same = value.and_then(Value::as_str).is_some_and(|v| v == id);
            if !same {
                return Err(ScimError::mutability(format!(
                    "{} is the hub's user id {id:?} and cannot change",
                    path.attribute
                )));
            }
        }
        ("groups", _) => {
            return Err(ScimError::mutability(
                "a user's groups change through /Groups (members)",
            ))
        }
        (attr, _) if NOT_KEPT.contains(&attr) || attr.starts_with("urn:") => {}
        (attr, _) => {
            return Err(ScimError::invalid_path(format!(
                "{attr:?} is no attribute of a SCIM User"
            )))
        }
    }
    Ok(())
}

/// A whole user (POST, PUT): every member read as a path.
fn read_whole(body: &Value, id: &str) -> ScimResult<Wanted> {
    let mut wanted = Wanted::default();
    if let Some(map) = body.as_object() {
        // `groups` is read-only: ignored in a whole user (RFC 7643 §7),
        // as Okta sends `"groups": []` when it creates one.
        for (k, v) in map
            .iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case("groups"))
        {
            let path = Path {
                attribute: k.to_ascii_lowercase(),
                filter: None,
                sub: None,
            };
            set(&mut wanted, id, &path, Some(v), false)?;
        }
    }
    Ok(wanted)
}

fn user_name(body: &Value) -> ScimResult<String> {
    match body.get("userName") {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(ScimError::invalid_value("userName must be a string")),
        None => Err(ScimError::invalid_value("userName is required")),
    }
}

/// The change that makes `id` what `wanted` says, from `before` (the user
/// now, if any). `None`: the user stays unknown (inactive and absent).
fn change_for(id: &str, before: Option<&User>, wanted: &Wanted) -> Option<DirectoryChange> {
    let active = wanted.active.unwrap_or(true);
    match (before, active) {
        (Some(_), false) => Some(DirectoryChange::DeleteUser { id: id.to_string() }),
        (None, false) => None,
        (Some(user), true) => {
            let mut user = user.clone();
            if let Some(name) = wanted.name() {
                user.name = name;
            }
            Some(DirectoryChange::PutUser {
                user,
                assigned: None,
            })
        }
        (None, true) => Some(DirectoryChange::PutUser {
            user: User {
                id: id.to_string(),
                name: wanted.name().unwrap_or_else(|| id.to_string()),
                roles: vec![Role::Agent],
                supervises: None,
                capacity: None,
            },
            assigned: None,
        }),
    }
}

/// Applies the change and answers the user as it now is (or, once
/// deactivated, as it was, with `active: false`).
async fn apply(
    hub: &Arc<Hub>,
    c: &Caller,
    id: &str,
    change: Option<DirectoryChange>,
    created: StatusCode,
) -> ScimResult<Answer> {
    let before = c.tenant.directory().user(id).cloned();
    let Some(change) = change else {
        return Err(unknown(id));
    };
    hub.change_directory(&c.tenant, &c.actor, &change, None)
        .await?;
    match &change {
        DirectoryChange::DeleteUser { .. } => {
            let was = before.ok_or_else(|| unknown(id))?;
            Ok((StatusCode::OK, Some(resource(c, &was, false))))
        }
        _ => {
            let dir = c.tenant.directory();
            let now = dir.user(id).ok_or_else(|| unknown(id))?;
            let status = if before.is_none() {
                created
            } else {
                StatusCode::OK
            };
            Ok((status, Some(resource(c, now, true))))
        }
    }
}

pub async fn create(hub: &Arc<Hub>, c: &Caller, body: &Value) -> ScimResult<Answer> {
    let id = user_name(body)?;
    valid_id(&id)?;
    let wanted = read_whole(body, &id)?;
    if c.tenant.directory().user(&id).is_some() {
        return Err(ScimError::uniqueness(format!("user {id:?} exists")));
    }
    if wanted.active == Some(false) {
        return Err(ScimError::invalid_value(
            "the hub keeps no inactive users: create the user active (docs/SCIM.md)",
        ));
    }
    apply(
        hub,
        c,
        &id,
        change_for(&id, None, &wanted),
        StatusCode::CREATED,
    )
    .await
}

pub async fn replace(hub: &Arc<Hub>, c: &Caller, id: &str, body: &Value) -> ScimResult<Answer> {
    valid_id(id)?;
    if body.get("userName").is_some() && user_name(body)? != id {
        return Err(ScimError::mutability(format!(
            "userName is the hub's user id {id:?} and cannot change"
        )));
    }
    let wanted = read_whole(body, id)?;
    let before = c.tenant.directory().user(id).cloned();
    apply(
        hub,
        c,
        id,
        change_for(id, before.as_ref(), &wanted),
        StatusCode::OK,
    )
    .await
}

pub async fn patch(hub: &Arc<Hub>, c: &Caller, id: &str, body: &Value) -> ScimResult<Answer> {
    valid_id(id)?;
    let ops = patch::parse(body)?;
    let mut wanted = Wanted::default();
    for op in &ops {
        let merge = op.op == Op::Add;
        let value = if op.op == Op::Remove {
            None
        } else {
            op.value.as_ref()
        };
        match &op.path {
            Some(path) => set(&mut wanted, id, path, value, merge)?,
            None => {
                let map = value
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_else(Map::new);
                for (k, v) in &map {
                    let path = patch::path(k)?;
                    set(&mut wanted, id, &path, Some(v), merge)?;
                }
            }
        }
    }
    let before = c.tenant.directory().user(id).cloned();
    if before.is_none() && wanted.active != Some(true) {
        return Err(unknown(id));
    }
    if before.is_some() {
        // Only half a name: keep the hub's (see the module's doc).
        if wanted.display.is_none()
            && wanted.formatted.is_none()
            && (wanted.given.is_none() || wanted.family.is_none())
        {
            wanted.given = None;
            wanted.family = None;
        }
    }
    apply(
        hub,
        c,
        id,
        change_for(id, before.as_ref(), &wanted),
        StatusCode::OK,
    )
    .await
}

pub async fn delete(hub: &Arc<Hub>, c: &Caller, id: &str) -> ScimResult<Answer> {
    if c.tenant.directory().user(id).is_none() {
        return Err(unknown(id));
    }
    let change = DirectoryChange::DeleteUser { id: id.to_string() };
    hub.change_directory(&c.tenant, &c.actor, &change, None)
        .await?;
    Ok((StatusCode::NO_CONTENT, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_display_then_formatted_then_parts() {
        let w = |d: Option<&str>, f: Option<&str>, g: Option<&str>, l: Option<&str>| Wanted {
            display: d.map(String::from),
            formatted: f.map(String::from),
            given: g.map(String::from),
            family: l.map(String::from),
            active: None,
        };
        assert_eq!(
            w(Some("D"), Some("F"), Some("G"), Some("L"))
                .name()
                .as_deref(),
            Some("D")
        );
        assert_eq!(
            w(None, Some("F"), Some("G"), Some("L")).name().as_deref(),
            Some("F")
        );
        assert_eq!(
            w(None, None, Some("G"), Some("L")).name().as_deref(),
            Some("G L")
        );
        assert_eq!(w(None, None, Some("G"), None).name(), None);
        assert_eq!(w(Some("  "), None, None, None).name(), None);
    }

    #[test]
    fn deactivation_deletes_and_reactivation_recreates_an_agent() {
        let ana = User {
            id: "a1".into(),
            name: "Ana".into(),
            roles: vec![Role::Supervisor],
            supervises: None,
            capacity: None,
        };
        let off = Wanted {
            active: Some(false),
            ..Wanted::default()
        };
        assert_eq!(
            change_for("a1", Some(&ana), &off),
            Some(DirectoryChange::DeleteUser { id: "a1".into() })
        );
        assert_eq!(change_for("a1", None, &off), None);
        let on = Wanted {
            active: Some(true),
            ..Wanted::default()
        };
        match change_for("a1", None, &on) {
            Some(DirectoryChange::PutUser {
                user,
                assigned: None,
            }) => {
                assert_eq!(
                    (user.name.as_str(), user.roles.as_slice()),
                    ("a1", [Role::Agent].as_slice())
                )
            }
            other => panic!("{other:?}"),
        }
        // An existing user keeps its roles.
        match change_for("a1", Some(&ana), &on) {
            Some(DirectoryChange::PutUser { user, .. }) => {
                assert_eq!(user.roles, vec![Role::Supervisor])
            }
            other => panic!("{other:?}"),
        }
    }
}
