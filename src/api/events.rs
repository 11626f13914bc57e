//! `GET /api/v1/events`: the agent event stream over HTTP
//! (protocol/EVENTS.md), for any store — what a consumer without access to
//! Redis, or on a single node, reads; `presence-hub events tail` uses it.
//!
//! `after` is the id of the last event the consumer has (none: from the
//! oldest kept) — it must be in the stream, or the answer says it is not
//! (404) rather than read on from a place that was lost; `from_ms` instead
//! starts at the first event at or after a time (a reader starting from a
//! time, or reading again after its place was lost, protocol/EVENTS.md).
//! `limit` is how many at most (1–1000, default 100), `wait_ms`
//! how long to wait for one when there is none yet (long polling, cut to
//! `--events-max-wait-ms`). The answer is `{"events": [...], "next": id,
//! "oldest": id, "last": id}`: each event with its `id`; `next` is what to
//! send as `after` next time; `oldest` and `last` are the ids the stream
//! keeps at either end. Admins only: events carry every agent of the
//! tenant.
//!
//! A waiting request holds no API permit (`--api-max-in-flight`: it would
//! starve the other routes) but one of `--events-max-waiting`; over that
//! bound it is refused at once with 429.

use super::{admin, respond, Hubs, Limit};
use crate::error::{HubError, HubResult};
use crate::events::{EventId, Page};
use crate::hub::Hub;
use axum::extract::Query;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Most events one request returns.
pub const MAX_LIMIT: usize = 1000;

/// The long polls in flight (`--events-max-waiting`).
#[derive(Clone)]
pub struct Waiting(pub Arc<Semaphore>);

#[derive(Deserialize)]
pub struct Params {
    after: Option<String>,
    from_ms: Option<String>,
    limit: Option<String>,
    wait_ms: Option<String>,
}

/// Where a read starts.
#[derive(Clone, Copy)]
enum Start {
    /// After this event, which must be in the stream.
    After(EventId),
    /// At the first event at or after this time (ms).
    From(u64),
}

impl Start {
    /// The position to read after.
    fn position(self) -> EventId {
        match self {
            Start::After(id) => id,
            // Just below `<ms>-0`: ids are compared as (ms, n).
            Start::From(ms) => match ms.checked_sub(1) {
                Some(before) => EventId {
                    ms: before,
                    n: u64::MAX,
                },
                None => EventId { ms: 0, n: 0 },
            },
        }
    }
}

/// The query, checked: a bad one is refused and reads nothing.
fn parse(p: &Params, max_wait_ms: u64) -> HubResult<(Option<Start>, usize, u64)> {
    let after = match p.after.as_deref() {
        None | Some("") => None,
        Some(id) => Some(
            id.parse::<EventId>()
                .map_err(|e| HubError::bad_request(format!("after: {e}")))?,
        ),
    };
    let number = |name: &str, v: &Option<String>| -> HubResult<Option<u64>> {
        v.as_deref()
            .map(|t| {
                t.parse::<u64>().map_err(|_| {
                    HubError::bad_request(format!("{name}: {t:?} is not a whole number"))
                })
            })
            .transpose()
    };
    let after = match (after, number("from_ms", &p.from_ms)?) {
        (Some(_), Some(_)) => {
            return Err(HubError::bad_request(
                "after and from_ms: give one or the other",
            ))
        }
        (Some(id), None) => Some(Start::After(id)),
        (None, Some(ms)) => Some(Start::From(ms)),
        (None, None) => None,
    };
    let limit = number("limit", &p.limit)?.unwrap_or(100);
    if !(1..=MAX_LIMIT as u64).contains(&limit) {
        return Err(HubError::bad_request(format!(
            "limit: {limit} is not within 1 to {MAX_LIMIT}"
        )));
    }
    let wait_ms = number("wait_ms", &p.wait_ms)?.unwrap_or(0).min(max_wait_ms);
    Ok((after, limit as usize, wait_ms))
}

pub(super) async fn get_events(
    axum::extract::State(hub): Hubs,
    limit: Limit,
    waiting: axum::Extension<Waiting>,
    headers: HeaderMap,
    query: Result<Query<Params>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let route = "events";
    let result = async {
        let Query(params) = query.map_err(|e| HubError::bad_request(e.body_text()))?;
        let (start, count, wait_ms) = parse(&params, hub.config.events_max_wait_ms)?;
        let after = start.map(Start::position);
        let a = admin(&hub, &headers, &limit).await?;
        if hub.config.events_max_len == 0 {
            return Err(HubError::not_found(
                "this hub keeps no event stream (--events-max-len 0)",
            ));
        }
        let tenant = a.tenant.clone();
        // The waiting below must not hold one of the API's permits.
        drop(a);
        let page = if wait_ms == 0 {
            hub.backplane.read_events(tenant.id(), after, count).await?
        } else {
            let _slot = waiting.0 .0.clone().try_acquire_owned().map_err(|_| {
                HubError::rate_limited(format!(
                    "more than {} event readers waiting on this node (--events-max-waiting); \
                     retry later or read without wait_ms",
                    hub.config.events_max_waiting
                ))
            })?;
            let check = matches!(start, Some(Start::After(_)));
            wait(
                &hub,
                &tenant,
                after,
                check,
                count,
                Duration::from_millis(wait_ms),
            )
            .await?
        };
        if page.after_missing {
            if let Some(Start::After(after)) = start {
                return Err(HubError::not_found(format!(
                    "event {after} is not in the stream: trimmed (see `oldest`), or lost with \
                     the writes a failover lost; read again from an earlier time (from_ms=<ms>) \
                     and skip the versions you have (protocol/EVENTS.md)"
                )));
            }
        }
        crate::metrics::get()
            .events_read
            .increment(page.events.len() as u64);
        let read_after = match start {
            Some(Start::After(id)) => Some(id),
            _ => None,
        };
        Ok((StatusCode::OK, body(&page, read_after)))
    }
    .await;
    respond(route, result)
}

/// Reads until there is an event after `after`, `patience` ran out, or
/// (with `check`) `after` is not in the stream.
async fn wait(
    hub: &Arc<Hub>,
    tenant: &crate::hub::tenant::Tenant,
    after: Option<EventId>,
    check: bool,
    count: usize,
    patience: Duration,
) -> HubResult<Page> {
    let deadline = tokio::time::Instant::now() + patience;
    let mut changes = tenant.seq_changes();
    loop {
        changes.mark_unchanged();
        let page = hub.backplane.read_events(tenant.id(), after, count).await?;
        let now = tokio::time::Instant::now();
        let lost = page.after_missing && check;
        if lost || !page.events.is_empty() || now >= deadline {
            return Ok(page);
        }
        // A change wakes the wait; heartbeats take no seq, so look again
        // at least every second for them.
        let nap = (deadline - now).min(Duration::from_secs(1));
        tokio::select! {
            _ = changes.changed() => {}
            _ = tokio::time::sleep(nap) => {}
        }
    }
}

/// The answer: each event with its `id` added.
fn body(page: &Page, after: Option<EventId>) -> Value {
    let events: Vec<Value> = page
        .events
        .iter()
        .filter_map(|(id, json)| {
            let mut event: Value = serde_json::from_str(json).ok()?;
            event["id"] = json!(id.to_string());
            Some(event)
        })
        .collect();
    let next = page
        .events
        .last()
        .map(|(id, _)| *id)
        .or(after)
        .or(page.last);
    json!({
        "events": events,
        "next": next.map(|id| id.to_string()),
        "oldest": page.oldest.map(|id| id.to_string()),
        "last": page.last.map(|id| id.to_string()),
    })
}
