//! What an admin sets: a tenant's webhook endpoints, each with its URL,
//! the events it wants and its secrets — checked here, so a bad request is
//! refused before anything is stored.
//!
//! Why a filter on `type` *or* `event`: integrators ask for "agent changes"
//! (`type: agent`) or for "pauses" (`event: pause`); one list of names
//! covers both. Heartbeats are left out unless asked for by name: they are
//! a reading aid for stream consumers, and would otherwise wake every
//! receiver once a minute per signed-in agent.
//!
//! Private addresses are refused apart ([`super::address`]).
//!
//! Why `http://` only to loopback (or with `--webhook-allow-http`): events
//! carry every agent of the tenant, and the signature protects integrity,
//! not secrecy. Loopback is a receiver on the same host (a sidecar); a lab
//! may allow plain http everywhere knowingly.

use crate::error::{HubError, HubResult};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Longest URL accepted.
pub const MAX_URL: usize = 2048;
/// Most names in `events`.
pub const MAX_FILTERS: usize = 64;
/// Longest endpoint id and event name.
pub const MAX_NAME: usize = 64;

/// A tenant's endpoints, as stored (the document `endpoints`). Holds the
/// secrets: never logged (no `Debug`), never answered ([`Endpoint::view`]).
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct Endpoints {
    pub endpoints: BTreeMap<String, Endpoint>,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct Endpoint {
    pub url: String,
    /// `None`: every event but heartbeats.
    pub events: Option<Vec<String>>,
    /// The current secret first; the previous one during a rotation.
    pub secrets: Vec<String>,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
}

impl Endpoint {
    /// Whether an event of this `type` and `event` name is wanted.
    pub fn wants(&self, kind: &str, event: &str) -> bool {
        match &self.events {
            None => kind != "heartbeat",
            Some(names) => names.iter().any(|n| n == kind || n == event),
        }
    }

    /// The endpoint as an admin reads it: no secret.
    pub fn view(&self, id: &str) -> Value {
        json!({
            "id": id,
            "url": self.url,
            "events": self.events,
            "rotating": self.secrets.len() > 1,
            "created_at_ms": self.created_at_ms,
            "updated_at_ms": self.updated_at_ms,
        })
    }
}

/// An endpoint id: 1 to 64 of `A-Z a-z 0-9 _ -`.
pub fn check_id(id: &str) -> HubResult<()> {
    let ok = !id.is_empty()
        && id.len() <= MAX_NAME
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(HubError::bad_request(format!(
            "a webhook id is 1 to {MAX_NAME} of A-Z a-z 0-9 _ -"
        )))
    }
}

/// The body of a PUT, checked: `{"url": …, "events": [...]}`.
pub struct Wanted {
    pub url: String,
    pub events: Option<Vec<String>>,
}

pub fn parse(body: &Value, allow_http: bool, allow_private: bool) -> HubResult<Wanted> {
    let object = body
        .as_object()
        .ok_or_else(|| HubError::bad_request("the body must be a JSON object"))?;
    if let Some(other) = object.keys().find(|k| *k != "url" && *k != "events") {
        return Err(HubError::bad_request(format!(
            "unknown member {other:?}: a webhook has url and events"
        )));
    }
    let url = object
        .get("url")
        .and_then(Value::as_str)
        .ok_or_else(|| HubError::bad_request("url: expected a string"))?;
    check_url(url, allow_http, allow_private)?;
    let events = match object.get("events") {
        None | Some(Value::Null) => None,
        Some(Value::Array(names)) => {
            if names.is_empty() || names.len() > MAX_FILTERS {
                return Err(HubError::bad_request(format!(
                    "events: 1 to {MAX_FILTERS} names (leave it out for every event but heartbeats)"
                )));
            }
            let mut out = Vec::new();
            for name in names {
                let name = name
                    .as_str()
                    .filter(|n| !n.is_empty() && n.len() <= MAX_NAME)
                    .ok_or_else(|| {
                        HubError::bad_request(format!(
                            "events: each is an event type or name of 1 to {MAX_NAME} characters"
                        ))
                    })?;
                out.push(name.to_string());
            }
            Some(out)
        }
        Some(_) => return Err(HubError::bad_request("events: expected an array of names")),
    };
    Ok(Wanted {
        url: url.to_string(),
        events,
    })
}

/// `https://…`, or `http://` to loopback (any host with `allow_http`); no
/// credentials in it (it is shown to admins).
pub fn check_url(url: &str, allow_http: bool, allow_private: bool) -> HubResult<()> {
    if url.len() > MAX_URL {
        return Err(HubError::bad_request(format!(
            "url: at most {MAX_URL} characters"
        )));
    }
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| HubError::bad_request(format!("url: not a URL ({e})")))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(HubError::bad_request(
            "url: no credentials in the URL (it is shown to admins; the signature authenticates the hub)",
        ));
    }
    let loopback = parsed.host_str().is_some_and(|h| {
        h.eq_ignore_ascii_case("localhost")
            || h.trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    });
    if let Some(ip) = super::address::literal(&parsed) {
        if !super::address::allowed(ip, allow_private) {
            return Err(HubError::bad_request(format!(
                "url: {}",
                super::address::REFUSED
            )));
        }
    }
    match parsed.scheme() {
        "https" if parsed.host_str().is_some() => Ok(()),
        "http" if loopback || (allow_http && parsed.host_str().is_some()) => Ok(()),
        "http" => Err(HubError::bad_request(
            "url: http is accepted only to a loopback address (or with --webhook-allow-http); use https",
        )),
        _ => Err(HubError::bad_request("url: expected https://host/…")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_https_or_loopback_http_without_credentials() {
        for ok in [
            "https://example.com/hook",
            "http://127.0.0.1:9000/x",
            "http://localhost/x",
            "http://[::1]:8080/x",
        ] {
            assert!(check_url(ok, false, false).is_ok(), "{ok}");
        }
        for bad in [
            "http://example.com/x",
            "http://10.0.0.1/x",
            "ftp://example.com/x",
            "https://user:pw@example.com/x",
            "nope",
            "mailto:a@example.com",
        ] {
            assert!(check_url(bad, false, false).is_err(), "{bad}");
        }
        assert!(check_url("http://example.com/x", true, false).is_ok());
        // A private address, in https too: only with --webhook-allow-private.
        for private in [
            "https://10.0.0.5/x",
            "https://[fd00::1]/x",
            "https://169.254.169.254/x",
        ] {
            assert!(check_url(private, false, false).is_err(), "{private}");
            assert!(check_url(private, false, true).is_ok(), "{private}");
        }
        assert!(check_url("https://0.0.0.0/x", false, true).is_err());
        assert!(check_id("crm-1_a").is_ok());
        assert!(
            check_id("").is_err() && check_id("a b").is_err() && check_id(&"x".repeat(65)).is_err()
        );
    }

    #[test]
    fn the_default_filter_is_everything_but_heartbeats() {
        let mut e = Endpoint {
            url: "https://example.com".into(),
            events: None,
            secrets: vec![],
            created_at_ms: 0,
            updated_at_ms: 0,
        };
        assert!(e.wants("agent", "pause") && e.wants("settings", "settings_updated"));
        assert!(!e.wants("heartbeat", "heartbeat"));
        e.events = Some(vec!["pause".into(), "heartbeat".into()]);
        assert!(e.wants("agent", "pause") && e.wants("heartbeat", "heartbeat"));
        assert!(!e.wants("agent", "unpause"));
    }
}
