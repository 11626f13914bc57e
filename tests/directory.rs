//! The directory file's JSON Schema (`docs/directory.schema.json`) and its
//! reference (`docs/DIRECTORY.md`) agree with the hub's loader
//! (`src/directory.rs`): both example files pass the schema; files the
//! schema refuses are refused by the loader too, each for the reason the
//! case names; the rules a schema cannot express are the loader's alone;
//! and the reference names every field of the schema.

use presence_hub::directory::Directory;
use serde_json::{json, Value};
use std::path::Path;

fn read(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

fn schema() -> Value {
    serde_json::from_str(&read("docs/directory.schema.json")).expect("schema JSON")
}

fn validator() -> jsonschema::Validator {
    let schema = schema();
    assert_eq!(
        schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
        "draft 2020-12"
    );
    jsonschema::validator_for(&schema).expect("a valid schema")
}

fn schema_errors(validator: &jsonschema::Validator, file: &Value) -> Vec<String> {
    validator
        .iter_errors(file)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect()
}

/// A one-tenant file with `tenant` merged over a valid tenant.
fn with_tenant(tenant: Value) -> Value {
    let mut base = json!({
        "id": "t", "name": "T",
        "channels": [{"kind": "queue", "id": "q", "name": "Q", "assigned": []}],
        "users": [
            {"id": "a", "name": "A", "roles": ["agent"]},
            {"id": "s", "name": "S", "roles": ["supervisor"], "supervises": [{"kind": "queue", "id": "q"}]}
        ]
    });
    for (k, v) in tenant.as_object().expect("an object") {
        base[k] = v.clone();
    }
    json!({"tenants": [base]})
}

fn with_settings(settings: Value) -> Value {
    with_tenant(json!({"settings": settings}))
}

#[test]
fn the_example_directories_pass_the_schema_and_the_loader() {
    let validator = validator();
    for path in ["src/demo_directory.json", "tests/common/directory.json"] {
        let text = read(path);
        let file: Value = serde_json::from_str(&text).expect("JSON");
        let errors = schema_errors(&validator, &file);
        assert!(errors.is_empty(), "{path}:\n{}", errors.join("\n"));
        Directory::parse(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    }
    // And what the reference says is allowed: the smallest file, `{}` for
    // no pause codes, `null` for absent optional members.
    for file in [
        json!({"tenants": []}),
        with_settings(json!({"pause_reasons": {}})),
        with_settings(json!({"pause_reasons": [{"code": "b", "label": "B", "max_minutes": null}]})),
        with_tenant(
            json!({"users": [{"id": "a", "name": "A", "supervises": null, "capacity": null}]}),
        ),
        with_tenant(json!({"users": [{"id": "a", "name": "A", "capacity": {"chat": null}}]})),
    ] {
        let errors = schema_errors(&validator, &file);
        assert!(errors.is_empty(), "{file}:\n{}", errors.join("\n"));
        Directory::parse(&file.to_string()).unwrap_or_else(|e| panic!("{file}: {e}"));
    }
}

/// Each file breaks one rule the schema states; the loader must refuse it
/// as well, and say why (`reason`, a part of its message).
#[test]
fn files_the_schema_refuses_are_refused_by_the_hub() {
    let validator = validator();
    let long = "x".repeat(201);
    let many: Vec<Value> = (0..101)
        .map(|i| json!({"code": format!("c{i}"), "label": "L"}))
        .collect();
    let cases: Vec<(&str, Value, &str)> = vec![
        ("no tenants", json!({}), "missing field `tenants`"),
        (
            "an unknown member at the root",
            json!({"tenants": [], "$schema": "x"}),
            "unknown field `$schema`",
        ),
        (
            "a tenant without a name",
            json!({"tenants": [{"id": "t"}]}),
            "missing field `name`",
        ),
        (
            "an empty tenant id",
            with_tenant(json!({"id": ""})),
            "tenants[0].id: must not be empty",
        ),
        (
            "an empty user id",
            with_tenant(json!({"users": [{"id": "", "name": "U"}]})),
            "users[0].id: must not be empty",
        ),
        (
            "an empty channel id",
            with_tenant(json!({"channels": [{"kind": "chat", "id": "", "name": "C"}]})),
            ".id: must not be empty",
        ),
        (
            "an unknown role",
            with_tenant(json!({"users": [{"id": "u", "name": "U", "roles": ["boss"]}]})),
            "unknown variant `boss`",
        ),
        (
            "an unknown channel kind",
            with_tenant(json!({"channels": [{"kind": "email", "id": "e", "name": "E"}]})),
            "unknown variant `email`",
        ),
        (
            "a user assigned twice to one channel",
            with_tenant(
                json!({"channels": [{"kind": "queue", "id": "q", "name": "Q", "assigned": ["a", "a"]}]}),
            ),
            r#"assigned[1]: user "a" is repeated"#,
        ),
        (
            "a user id that is not a string",
            with_tenant(json!({"users": [{"id": 7, "name": "U"}]})),
            "invalid type: integer `7`",
        ),
        (
            "an unknown kind in the tenant's capacity",
            with_settings(json!({"capacity": {"chats": 3}})),
            "unknown field `chats`",
        ),
        (
            "a capacity above 100",
            with_settings(json!({"capacity": {"chat": 101}})),
            "capacity.chat must be 0 to 100",
        ),
        (
            "a user's capacity above 100",
            with_tenant(json!({"users": [{"id": "u", "name": "U", "capacity": {"queue": 101}}]})),
            "capacity.queue must be 0 to 100",
        ),
        (
            "an unknown kind in a user's capacity",
            with_tenant(json!({"users": [{"id": "u", "name": "U", "capacity": {"email": 1}}]})),
            "unknown field `email`",
        ),
        (
            "a negative wrap-up",
            with_settings(json!({"wrap_up_seconds": -1})),
            "invalid value: integer `-1`",
        ),
        (
            "a restore window above a week",
            with_settings(json!({"restore_window_s": 604_801})),
            "restore_window_s must be at most 604800",
        ),
        (
            "an unknown sign-in status",
            with_settings(json!({"sign_in_status": "busy"})),
            "unknown variant `busy`",
        ),
        (
            "an empty sign-in reason",
            with_settings(json!({"sign_in_reason": ""})),
            "sign_in_reason must be 1 to 200 characters",
        ),
        (
            "a blank pause code",
            with_settings(json!({"pause_reasons": [{"code": "  ", "label": "L"}]})),
            "pause_reasons[0].code must be 1 to 200 characters",
        ),
        (
            "a pause label of 201 characters",
            with_settings(json!({"pause_reasons": [{"code": "c", "label": long}]})),
            "pause_reasons[0].label must be 1 to 200 characters",
        ),
        (
            "a max_minutes of 0",
            with_settings(
                json!({"pause_reasons": [{"code": "c", "label": "L", "max_minutes": 0}]}),
            ),
            "max_minutes must be above 0",
        ),
        (
            "a max_minutes above a day",
            with_settings(
                json!({"pause_reasons": [{"code": "c", "label": "L", "max_minutes": 1441}]}),
            ),
            "max_minutes must be above 0 and at most 1440",
        ),
        (
            "an unknown member of a pause reason",
            with_settings(json!({"pause_reasons": [{"code": "c", "label": "L", "limit": 5}]})),
            "unknown field `limit`",
        ),
        (
            "a pause reason without a label",
            with_settings(json!({"pause_reasons": [{"code": "c"}]})),
            "missing field `label`",
        ),
        (
            "101 pause reasons",
            with_settings(json!({"pause_reasons": many})),
            "pause_reasons may list at most 100 codes",
        ),
        (
            "pause_reasons as a non-empty object",
            with_settings(json!({"pause_reasons": {"c": "L"}})),
            "found member `c`",
        ),
        (
            "a wrap-up above a day",
            with_settings(json!({"wrap_up_seconds": 86_401})),
            "wrap_up_seconds must be at most 86400",
        ),
        (
            "a misspelt member of a user (supervises)",
            with_tenant(
                json!({"users": [{"id": "s", "name": "S", "roles": ["supervisor"],
                                          "supervisess": [{"kind": "queue", "id": "q"}]}]}),
            ),
            "tenants[0].users[0].supervisess: unknown member",
        ),
        (
            "an unknown member of a tenant",
            with_tenant(json!({"timezone": "UTC"})),
            "tenants[0].timezone: unknown member",
        ),
        (
            "an unknown member of a channel",
            with_tenant(
                json!({"channels": [{"kind": "queue", "id": "q", "name": "Q", "sla": 20}]}),
            ),
            "tenants[0].channels[0].sla: unknown member",
        ),
        (
            "an unknown member of the settings",
            with_settings(json!({"wrap_up_secs": 60})),
            "tenants[0].settings.wrap_up_secs: unknown member",
        ),
        (
            "an unknown member of a supervised channel",
            with_tenant(
                json!({"users": [{"id": "s", "name": "S", "roles": ["supervisor"],
                                          "supervises": [{"kind": "queue", "id": "q", "name": "Q"}]}]}),
            ),
            "supervises[0].name: unknown member",
        ),
    ];
    for (case, file, reason) in cases {
        assert!(
            !schema_errors(&validator, &file).is_empty(),
            "{case}: the schema accepts {file}"
        );
        let refused = Directory::parse(&file.to_string())
            .err()
            .unwrap_or_else(|| panic!("{case}: the hub accepts {file}"))
            .to_string();
        assert!(
            refused.contains(reason),
            "{case}: the hub refuses it for another reason: {refused}"
        );
    }
}

/// What DIRECTORY.md lists under "What the schema cannot check": the
/// schema lets these through, the loader does not.
#[test]
fn the_rules_only_the_hub_checks_are_checked_by_it() {
    let validator = validator();
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "a repeated tenant id",
            json!({"tenants": [{"id": "t", "name": "T"}, {"id": "t", "name": "U"}]}),
            r#"tenants[1] (t).id: tenant id "t" is repeated"#,
        ),
        (
            "a repeated user id",
            with_tenant(json!({"users": [{"id": "u", "name": "A"}, {"id": "u", "name": "B"}]})),
            r#"users[1].id: user id "u" is repeated"#,
        ),
        (
            "a repeated channel",
            with_tenant(json!({"channels": [
                {"kind": "queue", "id": "q", "name": "Q"}, {"kind": "queue", "id": "q", "name": "R"}]})),
            "channel queue \"q\" is repeated",
        ),
        (
            "an unknown user in assigned",
            with_tenant(
                json!({"channels": [{"kind": "queue", "id": "q", "name": "Q", "assigned": ["zz"]}]}),
            ),
            r#"channels[0] (queue q).assigned[0]: unknown user "zz""#,
        ),
        (
            "an unknown channel in supervises",
            with_tenant(json!({"users": [
                {"id": "s", "name": "S", "roles": ["supervisor"], "supervises": [{"kind": "chat", "id": "x"}]}]})),
            "supervises[0]: unknown channel chat x",
        ),
        (
            "a repeated pause code",
            with_settings(json!({"pause_reasons": [
                {"code": "c", "label": "A"}, {"code": "c", "label": "B"}]})),
            r#"pause_reasons[1].code "c" is repeated"#,
        ),
        (
            "a sign-in reason that is no code",
            with_settings(json!({"sign_in_status": "paused", "sign_in_reason": "x",
                "pause_reasons": [{"code": "c", "label": "A"}]})),
            r#"sign_in_reason "x" must be one of the pause_reasons codes"#,
        ),
    ];
    let reference = read("docs/DIRECTORY.md");
    assert!(reference.contains("## What the schema cannot check"));
    for (case, file, reason) in cases {
        let errors = schema_errors(&validator, &file);
        assert!(errors.is_empty(), "{case}: {}", errors.join("\n"));
        let refused = Directory::parse(&file.to_string())
            .err()
            .unwrap_or_else(|| panic!("{case}: the hub accepts {file}"))
            .to_string();
        assert!(refused.contains(reason), "{case}: {refused}");
    }
}

/// Every member the schema defines is in the reference's tables.
#[test]
fn the_reference_names_every_field_of_the_schema() {
    fn names(schema: &Value, out: &mut Vec<String>) {
        match schema {
            Value::Object(map) => {
                if let Some(Value::Object(props)) = map.get("properties") {
                    out.extend(props.keys().cloned());
                }
                map.values().for_each(|v| names(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| names(v, out)),
            _ => {}
        }
    }
    let mut fields = Vec::new();
    names(&schema(), &mut fields);
    assert!(fields.len() > 20, "{fields:?}");
    let reference = read("docs/DIRECTORY.md");
    for field in fields {
        assert!(
            reference.contains(&format!("`{field}`")),
            "docs/DIRECTORY.md does not describe `{field}`"
        );
    }
}
