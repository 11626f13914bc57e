//! Queue statistics an ACD pushes per channel (PROTOCOL.md §10.7,
//! docs/API.md `PUT /api/v1/channels/{kind}/{id}/stats`): contacts waiting,
//! the longest wait, and optionally today's offered/answered/abandoned and
//! the service level.
//!
//! Pure: the shape, and reading a request body into it with an error that
//! names the field. Statistics are not agent changes: they take no seq and
//! no version, and the latest push per channel replaces the one before
//! (`updated_ms`, stamped by the hub that took the push, orders them).

use super::ChannelRef;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// What a push may carry at most (`--queue-stats-max-count`,
/// `--queue-stats-max-seconds`): a count or a duration above is a bug in
/// the bridge, refused rather than shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    pub max_count: u64,
    pub max_seconds: u64,
}

/// One channel's statistics as the ACD reported them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QueueStats {
    pub waiting: u64,
    pub longest_wait_s: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offered: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abandoned: Option<u64>,
    /// The share (0 to 1) answered within `service_level_s` seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_level: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_level_s: Option<u64>,
}

/// The latest statistics of one channel, as every node keeps them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChannelStats {
    pub channel: ChannelRef,
    pub stats: QueueStats,
    /// When a hub took the push (ms since the Unix epoch): newer wins.
    pub updated_ms: u64,
}

const FIELDS: [&str; 7] = [
    "waiting",
    "longest_wait_s",
    "offered",
    "answered",
    "abandoned",
    "service_level",
    "service_level_s",
];

/// Reads a push body; the error names the field at fault.
pub fn parse(body: &Value, bounds: Bounds) -> Result<QueueStats, String> {
    let Some(obj) = body.as_object() else {
        return Err("the body must be a JSON object".into());
    };
    if let Some(unknown) = obj.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(format!(
            "unknown field `{unknown}` (known: {})",
            FIELDS.join(", ")
        ));
    }
    let count = |name: &str, max: u64| -> Result<Option<u64>, String> {
        match obj.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => match v.as_u64() {
                Some(n) if n <= max => Ok(Some(n)),
                _ => Err(format!("`{name}` must be an integer from 0 to {max}")),
            },
        }
    };
    let required = |name: &str, max: u64| -> Result<u64, String> {
        count(name, max)?
            .ok_or_else(|| format!("`{name}` is required (an integer from 0 to {max})"))
    };
    let stats = QueueStats {
        waiting: required("waiting", bounds.max_count)?,
        longest_wait_s: required("longest_wait_s", bounds.max_seconds)?,
        offered: count("offered", bounds.max_count)?,
        answered: count("answered", bounds.max_count)?,
        abandoned: count("abandoned", bounds.max_count)?,
        service_level: share(obj)?,
        service_level_s: count("service_level_s", bounds.max_seconds)?,
    };
    // A share without its threshold says nothing a supervisor can read.
    if stats.service_level.is_some() && stats.service_level_s.is_none() {
        return Err("`service_level_s` is required with `service_level`".into());
    }
    Ok(stats)
}

fn share(obj: &Map<String, Value>) -> Result<Option<f64>, String> {
    match obj.get("service_level") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_f64() {
            Some(x) if (0.0..=1.0).contains(&x) => Ok(Some(x)),
            _ => Err("`service_level` must be a number from 0 to 1".into()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const B: Bounds = Bounds {
        max_count: 1000,
        max_seconds: 3600,
    };

    #[test]
    fn a_full_body_reads_and_round_trips() {
        let body = json!({"waiting": 3, "longest_wait_s": 42, "offered": 120, "answered": 110,
            "abandoned": 10, "service_level": 0.82, "service_level_s": 20});
        let stats = parse(&body, B).expect("valid");
        assert_eq!(serde_json::to_value(&stats).expect("json"), body);
    }

    #[test]
    fn the_minimal_body_is_waiting_and_longest_wait() {
        let stats = parse(&json!({"waiting": 0, "longest_wait_s": 0}), B).expect("valid");
        assert_eq!(
            serde_json::to_value(&stats).expect("json"),
            json!({"waiting": 0, "longest_wait_s": 0})
        );
    }

    #[test]
    fn every_error_names_its_field() {
        for (body, field) in [
            (json!({"longest_wait_s": 1}), "waiting"),
            (json!({"waiting": 1}), "longest_wait_s"),
            (json!({"waiting": -1, "longest_wait_s": 1}), "waiting"),
            (json!({"waiting": 1.5, "longest_wait_s": 1}), "waiting"),
            (json!({"waiting": "3", "longest_wait_s": 1}), "waiting"),
            (json!({"waiting": 1001, "longest_wait_s": 1}), "waiting"),
            (
                json!({"waiting": 1, "longest_wait_s": 3601}),
                "longest_wait_s",
            ),
            (
                json!({"waiting": 1, "longest_wait_s": 1, "offered": -2}),
                "offered",
            ),
            (
                json!({"waiting": 1, "longest_wait_s": 1, "service_level": 1.2, "service_level_s": 20}),
                "service_level",
            ),
            (
                json!({"waiting": 1, "longest_wait_s": 1, "service_level": 0.5}),
                "service_level_s",
            ),
            (
                json!({"waiting": 1, "longest_wait_s": 1, "queue": "x"}),
                "queue",
            ),
        ] {
            let e = parse(&body, B).expect_err(&body.to_string());
            assert!(e.contains(&format!("`{field}`")), "{body}: {e}");
        }
        assert!(parse(&json!([1]), B).is_err());
    }
}
