//! `GET /api/v1/reports/agents` and `GET /api/v1/reports/channels`: the
//! reports of docs/REPORTS.md over HTTP, JSON or CSV, computed by the pure
//! [`crate::reports`] module from the agent event stream.
//!
//! Steps: the query is parsed first (a bad one is 400 and reads nothing);
//! the caller must be an admin (the whole tenant) or a supervisor (their
//! `supervises` scope, as on the WebSocket; an unscoped supervisor sees the
//! tenant) — an agent is 403. Then the stream is read with
//! [`Backplane::read_events`](crate::backplane::Backplane::read_events),
//! page by page, **from a little before `from` to the stream's end as it
//! was when the report began** ([`CLOCK_SLACK_MS`] earlier than `from`:
//! ids carry the store's clock, `at_ms` the committing node's). Reading to
//! the end rather than to `to` is what lets the replica's current records
//! (`records_at_end`) place agents that had no event in the window: the
//! computation only trusts a record whose version the events reached.
//!
//! The state at the window's start needs no older events: each agent's
//! first event in the window carries, as `previous`, the record that held
//! before it. What the stream no longer keeps is said, never guessed: when
//! the oldest kept event is later than the window's start (and is not the
//! tenant's first version), a synthetic `gap` (id `trimmed`) is put before
//! the events, so time the report cannot vouch for is `unknown_s` and the
//! report is `complete: false` (JSON) / `Report-Complete: false` (a header,
//! on CSV as well).
//!
//! The work is bounded: at most `--reports-max-events` events are read per
//! report (more is 413 `too_large`, not a partial report); the window is
//! bounded by the parser (`reports::MAX_BUCKETS`); and the request holds one
//! of the API's permits (`--api-max-in-flight`) while it runs.

use super::{count, error_response, in_flight, ApiError, Hubs, InFlight, Limit};
use crate::domain::{ChannelRef, Role};
use crate::error::{HubError, HubResult};
use crate::events::EventId;
use crate::hub::tenant::Tenant;
use crate::hub::{Hub, TenantLease};
use crate::reports::query::{parse_query, Format, ReportQuery};
use crate::reports::{render, EventType, ReportEvent, ReportInput};
use axum::extract::RawQuery;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::sync::Arc;

/// How much earlier than `from` the stream is read: an event's id carries
/// the store's clock, its `at_ms` the committing node's, and the two may
/// differ by a little. Events read before `from` are replayed, not counted.
pub const CLOCK_SLACK_MS: u64 = 60_000;

/// Events asked for per read of the stream (the events route's maximum).
const PAGE: usize = super::events::MAX_LIMIT;

/// Which report.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Agents,
    Channels,
}

impl Kind {
    fn route(self) -> &'static str {
        match self {
            Kind::Agents => "reports_agents",
            Kind::Channels => "reports_channels",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Agents => "agents",
            Kind::Channels => "channels",
        }
    }
}

pub(super) async fn get_agents(
    axum::extract::State(hub): Hubs,
    limit: Limit,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    report(Kind::Agents, hub, limit, headers, query).await
}

pub(super) async fn get_channels(
    axum::extract::State(hub): Hubs,
    limit: Limit,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    report(Kind::Channels, hub, limit, headers, query).await
}

async fn report(
    kind: Kind,
    hub: Arc<Hub>,
    limit: Limit,
    headers: HeaderMap,
    query: Option<String>,
) -> Response {
    let route = kind.route();
    match answer(kind, &hub, &limit, &headers, query.as_deref().unwrap_or("")).await {
        Ok(response) => {
            count(route, response.status());
            response
        }
        Err(e) => error_response(route, &ApiError::from(e)),
    }
}

/// A verified admin or supervisor of a tenant, for one request.
struct Staff {
    tenant: Arc<Tenant>,
    /// `None`: the whole tenant (admins, unscoped supervisors).
    scope: Option<Vec<ChannelRef>>,
    _lease: TenantLease,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

/// As [`super::admin`], but a supervisor is accepted too, limited to the
/// channels the directory says they supervise (the same `supervises` the
/// WebSocket's `Principal::scope` uses). Roles come from the directory,
/// never from the token.
async fn staff(hub: &Arc<Hub>, headers: &HeaderMap, limit: &InFlight) -> HubResult<Staff> {
    let permit = in_flight(hub, limit)?;
    let (claims, tenant, lease) = super::signed_in(hub, headers).await?;
    let scope = match tenant.directory().user(&claims.sub) {
        Some(u) if u.has_role(Role::Admin) => None,
        Some(u) if u.has_role(Role::Supervisor) => crate::domain::permissions::Principal {
            user: u,
            role: Role::Supervisor,
        }
        .scope()
        .map(<[ChannelRef]>::to_vec),
        _ => {
            return Err(HubError::forbidden(format!(
                "user {:?} is neither an admin nor a supervisor of tenant {}",
                claims.sub, claims.tenant
            )))
        }
    };
    Ok(Staff {
        tenant,
        scope,
        _lease: lease,
        _permit: permit,
    })
}

async fn answer(
    kind: Kind,
    hub: &Arc<Hub>,
    limit: &InFlight,
    headers: &HeaderMap,
    query: &str,
) -> HubResult<Response> {
    let query = parse_query(query).map_err(|e| HubError::bad_request(e.to_string()))?;
    let who = staff(hub, headers, limit).await?;
    if hub.config.events_max_len == 0 {
        return Err(HubError::not_found(
            "this hub keeps no event stream (--events-max-len 0), so it has no reports",
        ));
    }
    let input = read_input(hub, &who.tenant, &query).await?;
    let report = crate::reports::compute(&input, &query.request(who.scope.clone()))
        .map_err(|e| HubError::bad_request(e.to_string()))?;
    let complete = if report.complete() { "true" } else { "false" };
    let mut response = match query.format {
        Format::Json => {
            let body = match kind {
                Kind::Agents => render::agents_json(&report),
                Kind::Channels => render::channels_json(&report),
            };
            (StatusCode::OK, Json(body)).into_response()
        }
        Format::Csv => {
            let body = match kind {
                Kind::Agents => render::agents_csv(&report),
                Kind::Channels => render::channels_csv(&report),
            };
            let mut response = (StatusCode::OK, body).into_response();
            let h = response.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(Format::Csv.content_type()),
            );
            if let Ok(v) = HeaderValue::from_str(&format!(
                "attachment; filename=\"{}\"",
                file_name(kind, &query)
            )) {
                h.insert(header::CONTENT_DISPOSITION, v);
            }
            response
        }
    };
    response
        .headers_mut()
        .insert("report-complete", HeaderValue::from_static(complete));
    Ok(response)
}

/// `agents_2026-03-29_2026-03-30.csv`: the window's local dates in the
/// report's time zone (the end date is the day `to` falls on, as the query
/// wrote it), `…T…` times when a bound is not a local midnight.
fn file_name(kind: Kind, q: &ReportQuery) -> String {
    let local = |ms: u64| -> String {
        let tz = crate::reports::buckets::time_zone(&q.time_zone).ok();
        let ts = i64::try_from(ms)
            .ok()
            .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok());
        match (tz, ts) {
            (Some(tz), Some(ts)) => {
                let z = ts.to_zoned_datetime(tz);
                if z.time() == jiff::civil::Time::midnight() {
                    z.date().to_string()
                } else {
                    z.strftime("%Y-%m-%dT%H%M%S").to_string()
                }
            }
            _ => ms.to_string(),
        }
    };
    format!(
        "{}_{}_{}.csv",
        kind.name(),
        local(q.from_ms),
        local(q.until_ms)
    )
}

/// The events of the window (and after it, to the stream's end when the
/// report began) and the replica's records, as [`ReportInput`].
async fn read_input(hub: &Arc<Hub>, tenant: &Tenant, q: &ReportQuery) -> HubResult<ReportInput> {
    let max = hub.config.reports_max_events;
    // The oldest kept event: where the stream's memory begins.
    let head = hub.backplane.read_events(tenant.id(), None, 1).await?;
    let Some(end) = head.last else {
        // An empty stream: nothing happened, or nothing is kept. The
        // records then say all there is (each held since its version).
        return Ok(ReportInput {
            events: Vec::new(),
            records_at_end: records(tenant),
        });
    };
    let start_ms = q.from_ms.saturating_sub(CLOCK_SLACK_MS);
    let mut events = Vec::new();
    if let (Some(oldest), Some((_, json))) = (head.oldest, head.events.first()) {
        let first: Option<ReportEvent> = serde_json::from_str(json).ok();
        // The tenant's first version is in the stream: nothing was trimmed.
        let whole = first.as_ref().is_some_and(|e| {
            e.version <= 1 && !matches!(e.kind, EventType::Heartbeat | EventType::Gap)
        });
        if oldest.ms > start_ms && !whole {
            // Events of the window may have been trimmed: a gap before
            // everything read, so `compute` counts as unknown what the kept
            // events cannot vouch for, and says the report is incomplete.
            events.push(ReportEvent {
                id: "trimmed".into(),
                tenant: tenant.id().to_string(),
                version: 0,
                kind: EventType::Gap,
                event: "trimmed".into(),
                at_ms: oldest.ms,
                by: None,
                agent_id: None,
                previous: None,
                current: None,
            });
        }
    }
    // `after` is exclusive: the last id of the millisecond before.
    let mut after = start_ms
        .checked_sub(1)
        .map(|ms| EventId { ms, n: u64::MAX });
    let mut read = 0usize;
    loop {
        let page = hub.backplane.read_events(tenant.id(), after, PAGE).await?;
        if page.events.is_empty() {
            break;
        }
        let mut done = false;
        for (id, json) in &page.events {
            after = Some(*id);
            if *id > end {
                // Appended after the report began: the records below are
                // at least that recent anyway.
                done = true;
                break;
            }
            read += 1;
            if read > max {
                return Err(HubError::too_large(format!(
                    "this report would read more than {max} events (--reports-max-events): \
                     ask for a later `from`"
                )));
            }
            // An event this build cannot read is skipped, as `compute`
            // skips an unknown type; the stream's own writer made it, so
            // this is a newer format, not a caller's input.
            if let Ok(event) = serde_json::from_str::<ReportEvent>(json) {
                events.push(event);
            }
        }
        if done {
            break;
        }
    }
    crate::metrics::get().events_read.increment(read as u64);
    Ok(ReportInput {
        events,
        records_at_end: records(tenant),
    })
}

fn records(tenant: &Tenant) -> Vec<crate::domain::AgentRecord> {
    tenant.records().iter().map(|r| (**r).clone()).collect()
}
