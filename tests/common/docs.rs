//! What the docs show, checked against what the hub does: the fenced
//! blocks of a Markdown section, and messages written with `…` elisions
//! (README.md's examples: `tests/readme.rs`; docs/API.md's: `tests/api_docs.rs`).

use serde_json::Value;

/// The fenced blocks of the section under `heading` (up to the next `## `),
/// each with its lines (the fence's info string is not kept).
pub fn blocks(readme: &str, heading: &str) -> Vec<Vec<String>> {
    let start = readme
        .find(heading)
        .unwrap_or_else(|| panic!("README has no {heading:?}"));
    let rest = &readme[start + heading.len()..];
    let section = &rest[..rest.find("\n## ").unwrap_or(rest.len())];
    let mut out = Vec::new();
    let mut current: Option<Vec<String>> = None;
    for line in section.lines() {
        if line.starts_with("```") {
            match current.take() {
                Some(block) => out.push(block),
                None => current = Some(Vec::new()),
            }
        } else if let Some(block) = current.as_mut() {
            block.push(line.to_string());
        }
    }
    out
}

/// A README message with `…` elisions as JSON: a value `…` stands for any
/// value; elsewhere `…` is dropped (with its comma), so `[…]` and `{…}`
/// stand for any array or object, and `…` at the end of an object for more
/// keys.
pub fn elided_json(text: &str) -> Value {
    let cleaned = text
        .replace("[…]", "\"<any>\"")
        .replace(": …", ": \"<any>\"")
        .replace(":…", ":\"<any>\"")
        .replace(",…", "")
        .replace("…,", "")
        .replace('…', "");
    serde_json::from_str(&cleaned).unwrap_or_else(|e| panic!("README JSON {text:?}: {e}"))
}

/// Whether `actual` has everything `expected` shows (objects: those keys,
/// recursively; arrays: as long, element by element; `"<any>"`: anything;
/// other values: equal).
pub fn shows(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => e
            .iter()
            .all(|(k, v)| a.get(k).is_some_and(|av| shows(v, av))),
        (Value::Array(e), Value::Array(a)) => {
            e.len() == a.len() && e.iter().zip(a).all(|(x, y)| shows(x, y))
        }
        (Value::String(e), _) if e == "<any>" => true,
        _ => expected == actual,
    }
}
