//! The admin's HTTP routes for webhooks, under `/api/v1/webhooks` (the
//! API's conventions, `crate::api`: bearer auth of an admin, bounded
//! bodies and requests in flight, JSON errors, counted in
//! `presence_hub_api_requests_total`). A secret is answered once, by the
//! request that made it (a create or a rotate); never by a GET.

use super::endpoint::{self, Endpoint, Endpoints};
use super::seal;
use super::store::{self, State, ENDPOINTS};
use crate::api::{admin, body_json, respond, InFlight, Routes};
use crate::backplane::WriteAck;
use crate::error::{HubError, HubResult};
use crate::hub::Hub;
use axum::body::Body;
use axum::extract::{Path, State as Axum};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Extension;
use serde_json::{json, Value};
use std::sync::Arc;

/// Adds the webhook routes to the API's table (so `/openapi.json` and
/// `tests/openapi.rs` cover them, and they share the API's requests in
/// flight, `--api-max-in-flight`).
pub fn register(routes: Routes) -> Routes {
    routes
        .get("/api/v1/webhooks", list)
        .get("/api/v1/webhooks/{id}", get_one)
        .put("/api/v1/webhooks/{id}", put)
        .delete("/api/v1/webhooks/{id}", remove)
        .post("/api/v1/webhooks/{id}/rotate", rotate)
        .delete("/api/v1/webhooks/{id}/secrets/previous", drop_previous)
        .get("/api/v1/webhooks/{id}/dead-letters", dead_letters)
        .post(
            "/api/v1/webhooks/{id}/dead-letters/{webhook_id}/redrive",
            redrive,
        )
}

type Hubs = Axum<Arc<Hub>>;
type Limit = Extension<InFlight>;

fn missing(id: &str) -> HubError {
    HubError::not_found(format!("no webhook {id:?}"))
}

/// The endpoint and its delivery state, as an admin reads them.
fn view(id: &str, endpoint: &Endpoint, state: &State) -> Value {
    let mut v = endpoint.view(id);
    v["delivery"] = json!({
        "cursor": state.cursor,
        "delivered_events": state.delivered_events,
        "failing_since_ms": state.failing_since_ms,
        "attempts": state.attempts,
        "last_error": state.last_error,
        "dead_letters": state.dead_letters.len(),
        "dead_lettered": state.dead_lettered,
        "missed": state.missed,
    });
    v
}

async fn list(Axum(hub): Hubs, limit: Limit, headers: HeaderMap) -> Response {
    let result = async {
        let a = admin(&hub, &headers, &limit).await?;
        let t = a.tenant.id();
        let (_, doc) = store::load::<Endpoints>(&hub, t, ENDPOINTS).await?;
        let mut out = Vec::new();
        for (id, e) in &doc.endpoints {
            let (_, state) = store::load::<State>(&hub, t, &store::state_name(id)).await?;
            out.push(view(id, e, &state));
        }
        Ok((StatusCode::OK, json!({ "webhooks": out })))
    }
    .await;
    respond("webhooks", result)
}

async fn get_one(
    Axum(hub): Hubs,
    limit: Limit,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let result = async {
        let a = admin(&hub, &headers, &limit).await?;
        endpoint::check_id(&id)?;
        let t = a.tenant.id();
        let (_, doc) = store::load::<Endpoints>(&hub, t, ENDPOINTS).await?;
        let e = doc.endpoints.get(&id).ok_or_else(|| missing(&id))?;
        let (_, state) = store::load::<State>(&hub, t, &store::state_name(&id)).await?;
        Ok((StatusCode::OK, view(&id, e, &state)))
    }
    .await;
    respond("webhook", result)
}

async fn put(
    Axum(hub): Hubs,
    limit: Limit,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    let result = async {
        let a = admin(&hub, &headers, &limit).await?;
        endpoint::check_id(&id)?;
        let wanted = endpoint::parse(
            &body_json(&hub, body).await?,
            hub.config.webhook_allow_http,
            hub.config.webhook_allow_private,
        )?;
        if hub.config.events_max_len == 0 {
            return Err(HubError::invalid_state(
                "webhooks are delivered from the event stream, and this hub keeps none (--events-max-len 0)",
            ));
        }
        let t = a.tenant.id().to_string();
        let max = hub.config.webhook_max_endpoints;
        let state_name = store::state_name(&id);
        // Where a new endpoint starts: the stream's end now.
        let start = hub.backplane.read_events(&t, None, 1).await?.last;
        let first = State {
            cursor: start.map(|id| id.to_string()),
            ..State::default()
        };
        // A new endpoint's cursor is written before the endpoint: an
        // endpoint is never without one, even when the endpoint's write is
        // answered `outcome_unknown` (`--redis-wait-replicas`) and repeated,
        // or the node dies between the two writes. Written whole: what a
        // deleted endpoint of the same id left behind does not carry over
        // (two creates of one id at the same instant may both write it:
        // the later cursor stands, a moment after the first).
        let (_, known) = store::load::<Endpoints>(&hub, &t, ENDPOINTS).await?;
        if !known.endpoints.contains_key(&id) {
            if known.endpoints.len() >= max {
                return Err(too_many(max));
            }
            store::update(&hub, &t, &state_name, WriteAck::Replicated, |_: State| {
                Ok((Some(Some(first.clone())), ()))
            })
            .await?;
        }
        let now = crate::clock::now_ms();
        let keys = sealing_keys(&hub)?;
        // The secret a new endpoint gets, answered once in the clear.
        let secret = super::sign::new_secret();
        let fresh = seal::seal(keys.as_ref(), &t, &id, &secret).map_err(sealing)?;
        let (created, endpoint) = store::update(&hub, &t, ENDPOINTS, WriteAck::Replicated, |mut doc: Endpoints| {
            let created = !doc.endpoints.contains_key(&id);
            if created && doc.endpoints.len() >= max {
                return Err(too_many(max));
            }
            let e = doc.endpoints.entry(id.clone()).or_insert_with(|| Endpoint {
                url: String::new(),
                events: None,
                secrets: vec![fresh.clone()],
                created_at_ms: now,
                updated_at_ms: now,
            });
            // Secrets stored before a key was set, or under a key that is no
            // longer the first, are sealed with the first key now.
            reseal_all(keys.as_ref(), &t, &id, &mut e.secrets)?;
            e.url = wanted.url.clone();
            e.events = wanted.events.clone();
            e.updated_at_ms = now;
            let e = e.clone();
            Ok((Some(Some(doc)), (created, e)))
        })
        .await?;
        if created {
            // Seen existing above but deleted before this write, its cursor
            // went with it: one is put back (never over another's).
            store::create_if_absent(&hub, &t, &state_name, &first).await?;
            // Every node's poll notices a new endpoint by this (the full
            // scan it also makes now and then catches a lost bump).
            if let Err(e) = hub.backplane.bump_webhooks_generation().await {
                tracing::warn!(error = %e, "webhooks: the new endpoint waits for the nodes' next full scan");
            }
        }
        let (_, state) = store::load::<State>(&hub, &t, &store::state_name(&id)).await?;
        let mut answer = view(&id, &endpoint, &state);
        if created {
            // The one time the secret is shown.
            answer["secret"] = json!(secret);
            Ok((StatusCode::CREATED, answer))
        } else {
            Ok((StatusCode::OK, answer))
        }
    }
    .await;
    respond("webhook", result)
}

/// `--webhook-secrets-key`, checked at start (so an error here is a bug).
fn sealing_keys(hub: &Hub) -> HubResult<Option<seal::Keys>> {
    seal::Keys::configured(&hub.config).map_err(sealing)
}

fn sealing(e: seal::SealError) -> HubError {
    HubError::unavailable(e.to_string())
}

/// Every secret of an endpoint as it should be stored now ([`seal::reseal`]).
fn reseal_all(
    keys: Option<&seal::Keys>,
    tenant: &str,
    id: &str,
    secrets: &mut [String],
) -> HubResult<()> {
    for s in secrets {
        *s = seal::reseal(keys, tenant, id, s).map_err(sealing)?;
    }
    Ok(())
}

fn too_many(max: usize) -> HubError {
    HubError::invalid_state(format!(
        "this tenant has {max} webhooks already (--webhook-max-endpoints)"
    ))
}

async fn remove(
    Axum(hub): Hubs,
    limit: Limit,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let result = async {
        let a = admin(&hub, &headers, &limit).await?;
        endpoint::check_id(&id)?;
        let t = a.tenant.id().to_string();
        store::update(
            &hub,
            &t,
            ENDPOINTS,
            WriteAck::Replicated,
            |mut doc: Endpoints| {
                if doc.endpoints.remove(&id).is_none() {
                    return Err(missing(&id));
                }
                Ok((Some(Some(doc)), ()))
            },
        )
        .await?;
        store::update(
            &hub,
            &t,
            &store::state_name(&id),
            WriteAck::Replicated,
            |_: State| Ok((Some(None::<State>), ())),
        )
        .await?;
        Ok((StatusCode::OK, json!({"id": id, "deleted": true})))
    }
    .await;
    respond("webhook", result)
}

async fn rotate(
    Axum(hub): Hubs,
    limit: Limit,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let result = async {
        let a = admin(&hub, &headers, &limit).await?;
        endpoint::check_id(&id)?;
        let t = a.tenant.id().to_string();
        let secret = super::sign::new_secret();
        let keys = sealing_keys(&hub)?;
        let sealed = seal::seal(keys.as_ref(), &t, &id, &secret).map_err(sealing)?;
        let now = crate::clock::now_ms();
        let endpoint = store::update(
            &hub,
            &t,
            ENDPOINTS,
            WriteAck::Replicated,
            |mut doc: Endpoints| {
                let e = doc.endpoints.get_mut(&id).ok_or_else(|| missing(&id))?;
                // The current one becomes the previous; an older previous goes.
                let current = e.secrets.first().cloned();
                e.secrets = std::iter::once(sealed.clone()).chain(current).collect();
                reseal_all(keys.as_ref(), &t, &id, &mut e.secrets)?;
                e.updated_at_ms = now;
                let e = e.clone();
                Ok((Some(Some(doc)), e))
            },
        )
        .await?;
        let mut answer = endpoint.view(&id);
        answer["secret"] = json!(secret);
        Ok((StatusCode::OK, answer))
    }
    .await;
    respond("webhook", result)
}

async fn drop_previous(
    Axum(hub): Hubs,
    limit: Limit,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let result = async {
        let a = admin(&hub, &headers, &limit).await?;
        endpoint::check_id(&id)?;
        let t = a.tenant.id().to_string();
        let now = crate::clock::now_ms();
        let (endpoint, changed) = store::update(
            &hub,
            &t,
            ENDPOINTS,
            WriteAck::Replicated,
            |mut doc: Endpoints| {
                let e = doc.endpoints.get_mut(&id).ok_or_else(|| missing(&id))?;
                if e.secrets.len() < 2 {
                    let e = e.clone();
                    return Ok((None, (e, false)));
                }
                e.secrets.truncate(1);
                e.updated_at_ms = now;
                let e = e.clone();
                Ok((Some(Some(doc)), (e, true)))
            },
        )
        .await?;
        let mut answer = endpoint.view(&id);
        answer["changed"] = json!(changed);
        Ok((StatusCode::OK, answer))
    }
    .await;
    respond("webhook", result)
}

async fn dead_letters(
    Axum(hub): Hubs,
    limit: Limit,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let result = async {
        let a = admin(&hub, &headers, &limit).await?;
        endpoint::check_id(&id)?;
        let t = a.tenant.id();
        let (_, doc) = store::load::<Endpoints>(&hub, t, ENDPOINTS).await?;
        if !doc.endpoints.contains_key(&id) {
            return Err(missing(&id));
        }
        let (_, state) = store::load::<State>(&hub, t, &store::state_name(&id)).await?;
        Ok((
            StatusCode::OK,
            json!({"id": id, "dead_letters": state.dead_letters, "dead_lettered": state.dead_lettered}),
        ))
    }
    .await;
    respond("webhook", result)
}

async fn redrive(
    Axum(hub): Hubs,
    limit: Limit,
    headers: HeaderMap,
    Path((id, webhook_id)): Path<(String, String)>,
) -> Response {
    let result = async {
        let a = admin(&hub, &headers, &limit).await?;
        endpoint::check_id(&id)?;
        if webhook_id.is_empty() || webhook_id.len() > 128 {
            return Err(HubError::bad_request(
                "a dead letter's webhook_id is 1 to 128 characters",
            ));
        }
        let t = a.tenant.id().to_string();
        let (_, doc) = store::load::<Endpoints>(&hub, &t, ENDPOINTS).await?;
        if !doc.endpoints.contains_key(&id) {
            return Err(missing(&id));
        }
        let letter = store::update(
            &hub,
            &t,
            &store::state_name(&id),
            WriteAck::Replicated,
            |mut s: State| {
                let d = s
                    .dead_letters
                    .iter_mut()
                    .find(|d| d.webhook_id == webhook_id)
                    .ok_or_else(|| HubError::not_found(format!("no dead letter {webhook_id:?}")))?;
                d.redrive = true;
                let d = d.clone();
                Ok((Some(Some(s)), d))
            },
        )
        .await?;
        Ok((
            StatusCode::ACCEPTED,
            json!({"id": id, "dead_letter": letter}),
        ))
    }
    .await;
    respond("webhook", result)
}
