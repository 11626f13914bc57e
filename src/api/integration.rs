//! The integration API (docs/API.md, "Integrations"): what an ACD or a PBX
//! holding a service key ([`super::credentials`]) does on agents' behalf.
//!
//! Every change goes through [`Hub::change_once`], the one write path, as
//! `{"id": <credential id>, "role": "integration"}`, with the same domain
//! events, rules and error codes as the agent's own requests (PROTOCOL.md
//! §6): `answered` is the agent's `interaction_start`, `ended` its
//! `interaction_end`, `wrap_up` its `end_wrap_up` (the ACD's after-call
//! work is over), and a status is its `set_status`.
//!
//! `offered` and `held` have no state in the domain (no ringing, no hold:
//! an agent on hold is still busy with the interaction, which is what a
//! wallboard should show). Rather than grow the pure domain for states
//! nobody displays yet, both are validated as the others are (the agent,
//! the channel; `held`: the agent holds that interaction) and answered
//! 202 with `"changed": false`: nothing is written and nothing recorded.
//! An ACD can send its whole event stream without filtering it.

use super::credentials::{service, RateLimits};
use super::{body_json, respond_api, ApiError, Hubs, Limit, Routes};
use crate::backplane::credential::Scope;
use crate::domain::{ChannelRef, Event};
use crate::error::{HubError, HubResult};
use crate::server::handlers::{non_empty, pause_reason};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

type Rates = axum::Extension<Arc<RateLimits>>;

/// The integration routes, added to the API's (under its limits, [`super::routes`]).
pub fn routes(routes: Routes) -> Routes {
    routes
        .get("/api/v1/agents", list_agents)
        .get("/api/v1/agents/{id}", get_agent)
        .put("/api/v1/agents/{id}/status", put_status)
        .post("/api/v1/agents/{id}/interactions", post_interaction)
        .get("/api/v1/channels", list_channels)
}

/// What the ACD reports of an interaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InteractionEvent {
    Offered,
    Answered,
    Held,
    Ended,
    WrapUp,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InteractionBody {
    event: InteractionEvent,
    #[serde(default)]
    interaction_id: Option<String>,
    #[serde(default)]
    channel: Option<ChannelRef>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusBody {
    status: String,
    #[serde(default)]
    reason: Option<String>,
}

fn parse<T: serde::de::DeserializeOwned>(value: Value, what: &str) -> HubResult<T> {
    serde_json::from_value(value).map_err(|e| HubError::bad_request(format!("{what}: {e}")))
}

async fn list_agents(State(hub): Hubs, limit: Limit, rates: Rates, headers: HeaderMap) -> Response {
    respond_api(
        "agents",
        async {
            let s = service(&hub, &headers, &limit, &rates, Scope::Read).await?;
            let mut agents = s.tenant.records();
            agents.sort_by(|a, b| a.id.cmp(&b.id));
            Ok((StatusCode::OK, json!({ "agents": agents })))
        }
        .await,
    )
}

async fn get_agent(
    State(hub): Hubs,
    limit: Limit,
    rates: Rates,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    respond_api(
        "agent",
        async {
            let s = service(&hub, &headers, &limit, &rates, Scope::Read).await?;
            let record = hub.fresh_record(&s.tenant, &id).await?;
            Ok((StatusCode::OK, json!({ "agent": record })))
        }
        .await,
    )
}

async fn list_channels(
    State(hub): Hubs,
    limit: Limit,
    rates: Rates,
    headers: HeaderMap,
) -> Response {
    respond_api(
        "channels",
        async {
            let s = service(&hub, &headers, &limit, &rates, Scope::Read).await?;
            let channels = s.tenant.directory().channels.clone();
            Ok((StatusCode::OK, json!({ "channels": channels })))
        }
        .await,
    )
}

async fn put_status(
    State(hub): Hubs,
    limit: Limit,
    rates: Rates,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    respond_api(
        "agent_status",
        async {
            let s = service(&hub, &headers, &limit, &rates, Scope::StatusWrite).await?;
            let body: StatusBody = parse(body_json(&hub, body).await?, "status")?;
            // The agent's own `set_status`, word for word.
            let event = match body.status.as_str() {
                "available" => Event::Unpause,
                "paused" => Event::Pause {
                    reason: pause_reason(body.reason)?,
                },
                other => {
                    return Err(ApiError::from(HubError::bad_request(format!(
                        "status {other:?} cannot be set: use available or paused \
                         (busy and wrap_up follow interactions, offline follows devices)"
                    ))))
                }
            };
            let record = hub
                .change_once(
                    &s.tenant,
                    &id,
                    &s.actor,
                    &event,
                    |_| Ok(()),
                    s.once.as_ref(),
                )
                .await?;
            Ok((StatusCode::OK, json!({ "changed": true, "agent": record })))
        }
        .await,
    )
}

async fn post_interaction(
    State(hub): Hubs,
    limit: Limit,
    rates: Rates,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    respond_api(
        "agent_interactions",
        async {
            let s = service(&hub, &headers, &limit, &rates, Scope::InteractionsWrite).await?;
            let body: InteractionBody = parse(body_json(&hub, body).await?, "interaction")?;
            let interaction_id = match (&body.interaction_id, body.event) {
                (Some(i), _) => {
                    non_empty("interaction_id", i)?;
                    i.clone()
                }
                (None, InteractionEvent::WrapUp) => String::new(),
                (None, _) => {
                    return Err(ApiError::from(HubError::bad_request(
                        "`interaction_id` is required (1 to 128 characters)",
                    )))
                }
            };
            let channel = match (body.channel, body.event) {
                (Some(channel), _) => {
                    if s.tenant.directory().channel(&channel).is_none() {
                        return Err(ApiError::from(HubError::not_found(format!(
                            "no {channel} in tenant {}",
                            s.tenant.id()
                        ))));
                    }
                    Some(channel)
                }
                (None, InteractionEvent::Offered | InteractionEvent::Answered) => {
                    return Err(ApiError::from(HubError::bad_request(
                        "`channel` is required: {\"kind\": \"queue\"|\"chat\"|\"campaign\", \"id\": …}",
                    )))
                }
                (None, _) => None,
            };
            let event = match (body.event, channel) {
                (InteractionEvent::Answered, Some(channel)) => Event::InteractionStart {
                    interaction_id,
                    channel,
                },
                (InteractionEvent::Ended, _) => Event::InteractionEnd { interaction_id },
                (InteractionEvent::WrapUp, _) => Event::EndWrapUp,
                (InteractionEvent::Held, _) => {
                    let record = hub.fresh_record(&s.tenant, &id).await?;
                    if !record.interactions.iter().any(|i| i.id == interaction_id) {
                        return Err(ApiError::from(HubError::invalid_state(format!(
                            "agent {id} does not hold interaction {interaction_id}"
                        ))));
                    }
                    return Ok((
                        StatusCode::ACCEPTED,
                        json!({ "changed": false, "agent": record }),
                    ));
                }
                (InteractionEvent::Offered, _) | (InteractionEvent::Answered, None) => {
                    let record = hub.fresh_record(&s.tenant, &id).await?;
                    return Ok((
                        StatusCode::ACCEPTED,
                        json!({ "changed": false, "agent": record }),
                    ));
                }
            };
            let record = hub
                .change_once(&s.tenant, &id, &s.actor, &event, |_| Ok(()), s.once.as_ref())
                .await?;
            Ok((StatusCode::OK, json!({ "changed": true, "agent": record })))
        }
        .await,
    )
}
