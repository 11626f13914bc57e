//! `PUT /api/v1/channels/{kind}/{id}/stats` (docs/API.md, "Integrations";
//! PROTOCOL.md §10.7): an ACD with a `queues:write` service key pushes a
//! channel's queue statistics. They replace the channel's latest in the
//! store, reach every node beside the delta stream (no seq), and go to the
//! supervisors in scope on the next channel tick.

use super::credentials::{service, RateLimits};
use super::{body_json, respond_api, ApiError, Hubs, Limit, Routes};
use crate::backplane::credential::Scope;
use crate::domain::queue_stats;
use crate::domain::{ChannelKind, ChannelRef};
use crate::error::HubError;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::json;
use std::sync::Arc;

type Rates = axum::Extension<Arc<RateLimits>>;

/// The queue statistics route, added to the API's (under its limits).
pub fn routes(routes: Routes) -> Routes {
    routes.put("/api/v1/channels/{kind}/{id}/stats", put_stats)
}

async fn put_stats(
    State(hub): Hubs,
    limit: Limit,
    rates: Rates,
    headers: HeaderMap,
    Path((kind, id)): Path<(String, String)>,
    body: Body,
) -> Response {
    respond_api(
        "channel_stats",
        async {
            let s = service(&hub, &headers, &limit, &rates, Scope::QueuesWrite).await?;
            let body = body_json(&hub, body).await?;
            let stats = queue_stats::parse(&body, hub.config.queue_stats_bounds())
                .map_err(|e| HubError::bad_request(format!("stats: {e}")))?;
            // A kind that is none is no channel of the tenant either.
            let kind = serde_json::from_value::<ChannelKind>(json!(kind)).ok();
            let channel = kind
                .map(|k| ChannelRef::new(k, id.clone()))
                .filter(|c| s.tenant.directory().channel(c).is_some())
                .ok_or_else(|| {
                    ApiError::from(HubError::not_found(format!(
                        "no channel {kind:?}/{id:?} in tenant {}",
                        s.tenant.id()
                    )))
                })?;
            let stored = hub
                .backplane
                .put_queue_stats(s.tenant.id(), &channel, &stats)
                .await
                .map_err(HubError::from)?;
            // This node's replica has them before the answer, whatever the
            // delivery's timing (newer wins, so a repeat is harmless).
            s.tenant.put_queue_stats(stored.clone());
            let mut stats = json!(stored.stats);
            stats["updated_ms"] = json!(stored.updated_ms);
            Ok((
                StatusCode::OK,
                json!({"channel": stored.channel, "stats": stats}),
            ))
        }
        .await,
    )
}
