//! PATCH requests (RFC 7644 §3.5.2) as Okta and Microsoft Entra ID send
//! them, quirks included: `op` in any case (Entra: `"Replace"`), booleans
//! as strings (Entra: `"False"`), operations without `path` whose value is
//! an object of attributes (Okta's deactivation, Entra's updates), and the
//! member filter `members[value eq "…"]` (Okta) beside a `members` path
//! with a value list (Entra). This module only reads the request; what an
//! operation does to a user or a group is [`super::users`]' and
//! [`super::groups`]' business.

use super::error::{ScimError, ScimResult};
use super::filter;
use serde_json::Value;

pub const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// Most operations one PATCH may carry.
pub const MAX_OPERATIONS: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Add,
    Remove,
    Replace,
}

/// A path: `attribute[filter].sub`, the attribute lower-cased, a core
/// schema's URN prefix taken off (`urn:…:core:2.0:User:name.givenName` is
/// `name` / `givenname`).
#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    pub attribute: String,
    pub filter: Option<filter::Eq>,
    pub sub: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    pub op: Op,
    pub path: Option<Path>,
    pub value: Option<Value>,
}

/// The operations of a PatchOp body, in order.
pub fn parse(body: &Value) -> ScimResult<Vec<Operation>> {
    let list = body
        .get("Operations")
        .or_else(|| body.get("operations"))
        .and_then(Value::as_array)
        .ok_or_else(|| ScimError::invalid_syntax("a PATCH body needs an `Operations` array"))?;
    if list.is_empty() || list.len() > MAX_OPERATIONS {
        return Err(ScimError::invalid_syntax(format!(
            "`Operations` must hold 1 to {MAX_OPERATIONS} operations"
        )));
    }
    list.iter()
        .enumerate()
        .map(|(i, op)| {
            operation(op).map_err(|e| ScimError {
                detail: format!("Operations[{i}]: {}", e.detail),
                ..e
            })
        })
        .collect()
}

fn operation(value: &Value) -> ScimResult<Operation> {
    let map = value
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax("an operation must be an object"))?;
    let op = match map
        .get("op")
        .and_then(Value::as_str)
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("add") => Op::Add,
        Some("remove") => Op::Remove,
        Some("replace") => Op::Replace,
        _ => {
            return Err(ScimError::invalid_syntax(
                "`op` must be add, remove or replace",
            ))
        }
    };
    let path = match map.get("path") {
        None | Some(Value::Null) => None,
        Some(Value::String(p)) => Some(path(p)?),
        Some(_) => return Err(ScimError::invalid_path("`path` must be a string")),
    };
    let value = map.get("value").cloned();
    match (op, &path, &value) {
        (Op::Remove, None, _) => Err(ScimError::new(
            axum::http::StatusCode::BAD_REQUEST,
            Some("noTarget"),
            "`remove` needs a `path`",
        )),
        (Op::Add | Op::Replace, _, None) => Err(ScimError::invalid_syntax(
            "`add` and `replace` need a `value`",
        )),
        (Op::Add | Op::Replace, None, Some(v)) if !v.is_object() => Err(ScimError::invalid_syntax(
            "without `path`, the `value` must be an object of attributes",
        )),
        _ => Ok(Operation { op, path, value }),
    }
}

/// Core schemas whose URN may prefix a path.
const CORE_PREFIXES: [&str; 2] = [
    "urn:ietf:params:scim:schemas:core:2.0:User:",
    "urn:ietf:params:scim:schemas:core:2.0:Group:",
];

pub fn path(text: &str) -> ScimResult<Path> {
    let bad = || ScimError::invalid_path(format!("path {text:?} is not understood"));
    let mut rest = text.trim();
    for prefix in CORE_PREFIXES {
        if let Some(tail) = rest
            .get(..prefix.len())
            .filter(|head| head.eq_ignore_ascii_case(prefix))
            .and_then(|_| rest.get(prefix.len()..))
        {
            rest = tail;
        }
    }
    if rest.is_empty() || rest.len() > 512 {
        return Err(bad());
    }
    // An extension's attribute (`urn:…:enterprise:2.0:User:department`):
    // kept whole, its dots and all.
    if rest.starts_with("urn:") {
        return Ok(Path {
            attribute: rest.to_ascii_lowercase(),
            filter: None,
            sub: None,
        });
    }
    let (head, filter, tail) = match rest.split_once('[') {
        Some((head, after)) => {
            let (inside, tail) = after.rsplit_once(']').ok_or_else(bad)?;
            (head, Some(filter::parse(inside).map_err(|_| bad())?), tail)
        }
        None => (rest, None, ""),
    };
    let (attribute, sub) = match (filter.is_some(), head.split_once('.')) {
        (false, Some((a, s))) => (a, Some(s)),
        _ => (head, tail.strip_prefix('.').filter(|s| !s.is_empty())),
    };
    if filter.is_some() && !tail.is_empty() && sub.is_none() {
        return Err(bad());
    }
    let name_ok = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
    };
    if !name_ok(attribute) || sub.is_some_and(|s| !name_ok(s)) {
        return Err(bad());
    }
    Ok(Path {
        attribute: attribute.to_ascii_lowercase(),
        filter,
        sub: sub.map(str::to_ascii_lowercase),
    })
}

/// A boolean as Okta (`false`) or Entra (`"False"`) writes it.
pub fn boolean(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_okta_and_entra_operations() {
        let ops = parse(&json!({"schemas": [PATCH_SCHEMA], "Operations": [
            {"op": "replace", "value": {"active": false}},
            {"op": "Replace", "path": "active", "value": "False"},
            {"op": "remove", "path": "members[value eq \"a1\"]"},
            {"op": "Add", "path": "members", "value": [{"value": "a2"}]},
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "x@y"},
            {"op": "replace", "path": "urn:ietf:params:scim:schemas:core:2.0:User:name.givenName", "value": "A"},
        ]}))
        .expect("valid");
        assert_eq!(ops[0].op, Op::Replace);
        assert_eq!(ops[0].path, None);
        assert_eq!(
            ops[1].path.as_ref().map(|p| p.attribute.as_str()),
            Some("active")
        );
        assert_eq!(ops[1].value.as_ref().and_then(boolean), Some(false));
        let member = ops[2]
            .path
            .as_ref()
            .and_then(|p| p.filter.clone())
            .expect("filter");
        assert_eq!(
            (member.attribute.as_str(), member.value.as_str()),
            ("value", "a1")
        );
        let email = ops[4].path.clone().expect("path");
        assert_eq!(
            (email.attribute.as_str(), email.sub.as_deref()),
            ("emails", Some("value"))
        );
        let given = ops[5].path.clone().expect("path");
        assert_eq!(
            (given.attribute.as_str(), given.sub.as_deref()),
            ("name", Some("givenname"))
        );
    }

    #[test]
    fn refuses_malformed_operations() {
        for body in [
            json!({}),
            json!({"Operations": []}),
            json!({"Operations": [{"op": "move", "path": "active", "value": true}]}),
            json!({"Operations": [{"op": "remove"}]}),
            json!({"Operations": [{"op": "replace", "path": "active"}]}),
            json!({"Operations": [{"op": "replace", "value": false}]}),
            json!({"Operations": [{"op": "replace", "path": "members[value", "value": 1}]}),
            json!({"Operations": [{"op": "replace", "path": "a b", "value": 1}]}),
        ] {
            assert!(parse(&body).is_err(), "{body}");
        }
    }
}
