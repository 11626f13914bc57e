//! `presence-hub events tail`: prints a hub's agent event stream, one JSON
//! event per line, as it grows — the consumer example of
//! protocol/EVENTS.md, and a debugging tool. It reads
//! `GET /api/v1/events` with long polling, so it works against one node in
//! memory or any node of a cluster, with an admin's token.
//!
//! It keeps its place (`next`) across transient failures (the node
//! restarting, the store away: 5xx, 429, no connection), waiting a little
//! longer each time, and stops on a refusal no retry fixes (401, 403, 400).
//! When its place is no longer in the stream (a failover lost the events it
//! had read from the old master), it reads again from [`REWIND_MS`] earlier
//! and skips the versions it printed, so it prints the `gap` that says what
//! was lost and goes on from there, each version once.

use super::EventId;
use crate::api::client::{Api, ApiError};
use std::io::Write;
use std::time::Duration;

/// Where to start and when to stop.
#[derive(Clone, Debug, Default)]
pub struct Tail {
    /// Start after this event id; `None`: from the oldest kept, unless
    /// `from_now`.
    pub after: Option<String>,
    /// Start after the newest event now (print only what comes).
    pub from_now: bool,
    /// Stop after printing this many events.
    pub max_events: Option<u64>,
}

/// How long one request waits for an event (below the client's timeout).
const WAIT_MS: u64 = 20_000;

/// How far back a reader whose place was lost reads again: more than a
/// failover's window of writes to a master that was already replaced.
pub const REWIND_MS: u64 = 60_000;

/// Runs until `max_events` were printed (then `Ok`) or a refusal.
pub async fn run(
    base: &str,
    token: &str,
    tail: Tail,
    out: &mut impl Write,
) -> Result<(), ApiError> {
    let api = Api::new(base, token)?;
    let mut after = tail.after.clone();
    if tail.from_now && after.is_none() {
        let page = api
            .call(reqwest::Method::GET, "/api/v1/events?limit=1", None)
            .await?;
        after = page["last"].as_str().map(str::to_string);
    }
    let mut printed = 0u64;
    let mut backoff = Duration::from_millis(200);
    // The last version printed, and while reading again after a lost
    // place, the place that was lost.
    let mut last_version: Option<u64> = None;
    let mut replaying: Option<EventId> = None;
    // Reading again from a time (after a lost place), until a page comes.
    let mut from_ms: Option<u64> = None;
    loop {
        if tail.max_events.is_some_and(|max| printed >= max) {
            return Ok(());
        }
        let path = match (&after, from_ms) {
            (Some(id), _) => format!("/api/v1/events?after={id}&limit=1000&wait_ms={WAIT_MS}"),
            (None, Some(ms)) => {
                format!("/api/v1/events?from_ms={ms}&limit=1000&wait_ms={WAIT_MS}")
            }
            (None, None) => format!("/api/v1/events?limit=1000&wait_ms={WAIT_MS}"),
        };
        let page = match api.call(reqwest::Method::GET, &path, None).await {
            Ok(page) => {
                backoff = Duration::from_millis(200);
                page
            }
            Err(ApiError::Refused {
                status: 404, body, ..
            }) if body.contains("is not in the stream") => {
                let Some(lost) = after.as_deref().and_then(|a| a.parse::<EventId>().ok()) else {
                    return Err(ApiError::Http(format!(
                        "the hub lost a place it never had: {body}"
                    )));
                };
                eprintln!(
                    "presence-hub events tail: event {lost} is not in the stream any more; \
                     reading again from {REWIND_MS} ms earlier, skipping what was printed"
                );
                after = None;
                from_ms = Some(lost.ms.saturating_sub(REWIND_MS));
                replaying = Some(lost);
                continue;
            }
            Err(e) if transient(&e) => {
                eprintln!("presence-hub events tail: {e}; retrying in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
                continue;
            }
            Err(e) => return Err(e),
        };
        for event in page["events"].as_array().into_iter().flatten() {
            if tail.max_events.is_some_and(|max| printed >= max) {
                return Ok(());
            }
            let kind = event["type"].as_str().unwrap_or("");
            let version = event["version"].as_u64();
            if let Some(lost) = replaying {
                let id = event["id"].as_str().and_then(|i| i.parse::<EventId>().ok());
                // Printed before the place was lost: changes, and gaps of
                // earlier failovers, by version (the gap of this one is above
                // every version printed); heartbeats by id.
                let seen = match kind {
                    "heartbeat" => id.is_some_and(|id| id <= lost),
                    _ => version.is_some_and(|v| last_version.is_some_and(|last| v <= last)),
                };
                if seen {
                    continue;
                }
                if kind != "heartbeat" {
                    replaying = None;
                }
            }
            if kind != "heartbeat" {
                last_version = version.or(last_version);
            }
            writeln!(out, "{event}").map_err(|e| ApiError::Http(format!("stdout: {e}")))?;
            printed += 1;
        }
        out.flush()
            .map_err(|e| ApiError::Http(format!("stdout: {e}")))?;
        if let Some(next) = page["next"].as_str() {
            after = Some(next.to_string());
            from_ms = None;
        }
    }
}

/// Whether waiting and asking again may help.
fn transient(e: &ApiError) -> bool {
    match e {
        ApiError::Http(_) => true,
        ApiError::Refused { status, .. } => *status == 429 || *status >= 500,
    }
}
