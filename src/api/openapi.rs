//! The OpenAPI 3.1 document of `/api/v1`, served at `/openapi.json`.
//!
//! Why a checked-in document and not `utoipa`: the API's bodies are built
//! as JSON by hand (they are the WebSocket's, PROTOCOL.md §7.1), and the
//! agent record they carry is already described, for the WebSocket, by
//! `protocol/schemas/common.schema.json`. Deriving the schemas would mean
//! `ToSchema` on the pure domain's types and a second description of the
//! record that could drift from the protocol's. So `openapi.json` here
//! holds the paths and the API's own schemas, and [`document`] adds every
//! `$defs` schema of the protocol's common schema (its `$ref`s rewritten),
//! so the record has one description. What keeps the document honest is
//! `tests/openapi.rs`: the router's routes ([`super::route_table`],
//! recorded as the router is built) and the document's operations must be
//! the same set, and live answers must match the document's schemas.
//!
//! Served without authentication: it describes what exists, holds no data.

use serde_json::{Map, Value};

/// The paths and the API's own schemas.
const PATHS: &str = include_str!("openapi.json");
/// The protocol's shared schemas (agent record, error, directory entries).
const COMMON: &str = include_str!("../../protocol/schemas/common.schema.json");

/// The whole document: [`PATHS`] with the protocol's schemas merged in.
pub fn document() -> Value {
    // Both are compiled in and parsed by `tests/openapi.rs`; should either
    // not parse, the answer says so rather than panic.
    let (mut doc, common) = match (
        serde_json::from_str::<Value>(PATHS),
        serde_json::from_str::<Value>(COMMON),
    ) {
        (Ok(doc), Ok(common)) => (doc, common),
        (Err(e), _) | (_, Err(e)) => {
            return serde_json::json!({"error": format!("the OpenAPI document does not parse: {e}")})
        }
    };
    let defs = common
        .get("$defs")
        .cloned()
        .map(rewrite_refs)
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default();
    if let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        for (name, schema) in defs {
            schemas.entry(name).or_insert(schema);
        }
        // A PUT's body may leave the id to the path.
        if let Some(mut body) = schemas.get("directory_user").cloned() {
            body["required"] = serde_json::json!(["name", "roles"]);
            schemas.insert("directory_user_body".into(), body);
        }
    }
    doc
}

/// `#/$defs/x` → `#/components/schemas/x`, everywhere in `value`.
fn rewrite_refs(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => (
                        k,
                        Value::String(r.replacen("#/$defs/", "#/components/schemas/", 1)),
                    ),
                    (_, v) => (k, rewrite_refs(v)),
                })
                .collect::<Map<String, Value>>(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(rewrite_refs).collect()),
        other => other,
    }
}

/// Every (method, path) the document describes, methods uppercase.
pub fn operations(doc: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(paths) = doc.get("paths").and_then(Value::as_object) {
        for (path, item) in paths {
            for method in ["get", "put", "post", "delete", "patch", "head", "options"] {
                if item.get(method).is_some() {
                    out.push((method.to_ascii_uppercase(), path.clone()));
                }
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_protocols_schemas_are_merged_with_their_refs_rewritten() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        let schemas = &doc["components"]["schemas"];
        assert!(schemas["agent_record"].is_object());
        assert_eq!(
            schemas["directory_user_body"]["required"],
            serde_json::json!(["name", "roles"])
        );
        let text = doc.to_string();
        assert!(!text.contains("#/$defs/"), "every $ref rewritten");
    }
}
