//! The HTTP JSON API for scripts and integrations (docs/API.md), under
//! `/api/v1`: the directory (`/api/v1/directory`, the same changes as the
//! admin WebSocket's, PROTOCOL.md §7.1), the agent event stream
//! (`/api/v1/events`, protocol/EVENTS.md), the service credentials an admin
//! hands integrations ([`credentials`]), and what an integration (an ACD)
//! does with one ([`integration`]): report interactions and set statuses
//! for any agent, read agents and channels.
//!
//! The directory, event and credential routes take an admin's token; the
//! integration routes take a service key with the route's scope (and the
//! same routes are served over one WebSocket, [`socket`]), and
//! nothing else (an admin's token there is 401: an integration's changes
//! are attributed to the integration, and a person's token there would
//! blur that).
//!
//! The OpenAPI 3.1 document of every route is served at `/openapi.json`
//! ([`openapi`]); the routes are declared once, in [`route_table`]'s
//! builder, and `tests/openapi.rs` holds the document to them.
//!
//! Every request carries `Authorization: Bearer <token>`: the same tokens
//! as the WebSocket's `hello`, verified the same way, and the token's user
//! must be an admin of the token's tenant in the directory (roles never
//! come from a token). What a peer can make the node hold is bounded: the
//! body (`--api-max-body-bytes`), the requests in flight at once
//! (`--api-max-in-flight`; more get 429 at once, never a queue), and the
//! time a change waits for the store (as on the WebSocket). Errors are the
//! protocol's codes in `{"error": {"code", "message"}}` with the HTTP
//! status that goes with each ([`status_of`]); each error guarantees what
//! PROTOCOL.md §3.1 says of its code. Counted in
//! `presence_hub_api_requests_total{route, status}`.

pub mod client;
pub mod credentials;
pub mod directory;
pub mod events;
pub mod integration;
pub mod openapi;
pub mod queue_stats;
pub mod reports;
pub mod socket;

use crate::backplane::IdempotencyKey;
use crate::directory::change::DirectoryChange;
use crate::directory::TenantDirectory;
use crate::domain::{Actor, ChannelKind, ChannelRef, Role};
use crate::error::{ErrorCode, HubError, HubResult};
use crate::hub::tenant::Tenant;
use crate::hub::{Hub, TenantLease};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::sync::Arc;
use tokio::sync::Semaphore;

/// The API's routes (CORS and the security headers are applied by
/// [`crate::web::secure`], as for every HTTP API), and `/openapi.json`.
pub fn routes(hub: &Hub) -> Router<Arc<Hub>> {
    let limit = Arc::new(Semaphore::new(hub.config.api_max_in_flight.max(1)));
    let api = table()
        .router
        .layer(axum::Extension(InFlight(limit)))
        .layer(axum::Extension(events::Waiting(Arc::new(Semaphore::new(
            hub.config.events_max_waiting.max(1),
        )))))
        .layer(axum::Extension(
            Arc::new(credentials::RateLimits::default()),
        ));
    // The WebSocket hands each request to these same routes, under these
    // same limits ([`socket`]).
    let tunnel = socket::Tunnel::new(api.clone(), hub);
    api.layer(axum::Extension(tunnel))
        .route("/openapi.json", get(openapi_json))
}

/// Every (method, path) the API routes, as the router is built: what
/// `/openapi.json` must describe (`tests/openapi.rs`).
pub fn route_table() -> Vec<(&'static str, &'static str)> {
    table().table
}

fn table() -> Routes {
    let routes = Routes::default()
        .get("/api/v1/directory", get_directory)
        .get("/api/v1/directory/users/{id}", get_user)
        .put("/api/v1/directory/users/{id}", put_user)
        .delete("/api/v1/directory/users/{id}", delete_user)
        .get("/api/v1/directory/channels/{kind}/{id}", get_channel)
        .put("/api/v1/directory/channels/{kind}/{id}", put_channel)
        .delete("/api/v1/directory/channels/{kind}/{id}", delete_channel)
        .get("/api/v1/credentials", list_credentials)
        .post("/api/v1/credentials", create_credential)
        .delete("/api/v1/credentials/{id}", revoke_credential)
        .get("/api/v1/events", events::get_events)
        .get("/api/v1/reports/agents", reports::get_agents)
        .get("/api/v1/reports/channels", reports::get_channels)
        .get(socket::PATH, socket::upgrade);
    crate::webhooks::register(queue_stats::routes(integration::routes(routes)))
}

/// A router being built, with the (method, path) of each route added:
/// the one place routes are declared, so the table cannot miss one.
pub struct Routes {
    router: Router<Arc<Hub>>,
    table: Vec<(&'static str, &'static str)>,
}

impl Default for Routes {
    fn default() -> Self {
        Routes {
            router: Router::new(),
            table: Vec::new(),
        }
    }
}

impl Routes {
    fn add(
        mut self,
        method: &'static str,
        path: &'static str,
        route: axum::routing::MethodRouter<Arc<Hub>>,
    ) -> Self {
        self.table.push((method, path));
        // A path added again merges its methods (axum 0.8).
        self.router = self.router.route(path, route);
        self
    }

    pub fn get<H, T>(self, path: &'static str, handler: H) -> Self
    where
        H: axum::handler::Handler<T, Arc<Hub>>,
        T: 'static,
    {
        self.add("GET", path, get(handler))
    }

    pub fn put<H, T>(self, path: &'static str, handler: H) -> Self
    where
        H: axum::handler::Handler<T, Arc<Hub>>,
        T: 'static,
    {
        self.add("PUT", path, axum::routing::put(handler))
    }

    pub fn post<H, T>(self, path: &'static str, handler: H) -> Self
    where
        H: axum::handler::Handler<T, Arc<Hub>>,
        T: 'static,
    {
        self.add("POST", path, axum::routing::post(handler))
    }

    pub fn delete<H, T>(self, path: &'static str, handler: H) -> Self
    where
        H: axum::handler::Handler<T, Arc<Hub>>,
        T: 'static,
    {
        self.add("DELETE", path, delete(handler))
    }
}

/// `GET /openapi.json`: the document of every route above ([`openapi`]).
async fn openapi_json() -> Response {
    (StatusCode::OK, Json(openapi::document())).into_response()
}

/// The permits of requests in flight (`--api-max-in-flight`).
#[derive(Clone)]
pub(crate) struct InFlight(pub(crate) Arc<Semaphore>);

/// The HTTP status of each error code.
pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::BadRequest | ErrorCode::UnknownType => StatusCode::BAD_REQUEST,
        ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorCode::Forbidden | ErrorCode::Disabled => StatusCode::FORBIDDEN,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::InvalidState => StatusCode::CONFLICT,
        ErrorCode::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::AgentOffline | ErrorCode::Timeout | ErrorCode::OutcomeUnknown => {
            StatusCode::GATEWAY_TIMEOUT
        }
        ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// A refusal as the API answers it: the error, and for a rate limit how
/// long to wait (`Retry-After`).
#[derive(Debug)]
pub struct ApiError {
    pub error: HubError,
    pub retry_after_s: Option<u64>,
}

impl From<HubError> for ApiError {
    fn from(error: HubError) -> Self {
        ApiError {
            error,
            retry_after_s: None,
        }
    }
}

/// An error as the API answers it.
fn error_response(route: &'static str, e: &ApiError) -> Response {
    let status = status_of(e.error.code);
    count(route, status);
    let mut response = (status, Json(json!({"error": e.error}))).into_response();
    if e.error.code == ErrorCode::Unauthorized {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
    }
    if let Some(seconds) = e.retry_after_s {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from(seconds));
    }
    response
}

fn count(route: &'static str, status: StatusCode) {
    crate::metrics::get(); // the recorder, installed on first use
    metrics::counter!("presence_hub_api_requests_total", "route" => route, "status" => status.as_str().to_string())
        .increment(1);
}

pub(crate) fn respond(route: &'static str, result: HubResult<(StatusCode, Value)>) -> Response {
    respond_api(route, result.map_err(ApiError::from))
}

fn respond_api(route: &'static str, result: Result<(StatusCode, Value), ApiError>) -> Response {
    match result {
        Ok((status, body)) => {
            count(route, status);
            (status, Json(body)).into_response()
        }
        Err(e) => error_response(route, &e),
    }
}

/// A verified admin of a tenant, for one request.
pub(crate) struct Admin {
    pub(crate) tenant: Arc<Tenant>,
    pub(crate) actor: Actor,
    /// The request's `Idempotency-Key` header (PROTOCOL.md §3.3 rules).
    once: Option<IdempotencyKey>,
    _lease: TenantLease,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

/// One of the requests in flight on this node, or 429 at once.
fn in_flight(hub: &Hub, limit: &InFlight) -> HubResult<tokio::sync::OwnedSemaphorePermit> {
    limit.0.clone().try_acquire_owned().map_err(|_| {
        HubError::rate_limited(format!(
            "more than {} API requests in flight on this node (--api-max-in-flight); retry later",
            hub.config.api_max_in_flight
        ))
    })
}

/// The request's `Idempotency-Key` header, scoped to `user` (PROTOCOL.md
/// §3.3 rules).
fn idempotency(headers: &HeaderMap, user: &str) -> HubResult<Option<IdempotencyKey>> {
    match headers.get("idempotency-key") {
        None => Ok(None),
        Some(v) => match v.to_str() {
            Ok(key) if crate::text::within(key, 1, crate::protocol::MAX_IDEMPOTENCY_KEY) => {
                Ok(Some(IdempotencyKey {
                    user: user.to_string(),
                    key: key.to_string(),
                }))
            }
            _ => Err(HubError::bad_request(format!(
                "Idempotency-Key must be 1 to {} characters",
                crate::protocol::MAX_IDEMPOTENCY_KEY
            ))),
        },
    }
}

/// A person's bearer token, verified as the WebSocket's `hello` verifies
/// it, and the tenant it names, opened and caught up with the store when
/// it does not know the user yet (one added on another node a moment ago).
/// Roles are the caller's to check, from the directory, never the token.
pub(crate) async fn signed_in(
    hub: &Arc<Hub>,
    headers: &HeaderMap,
) -> HubResult<(crate::auth::Claims, Arc<Tenant>, TenantLease)> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| HubError::unauthorized("expected Authorization: Bearer <token>"))?;
    let claims = hub
        .verifier
        .verify(token)
        .await
        .map_err(|e| HubError::unauthorized(e.to_string()))?;
    let (tenant, lease) = hub.open_tenant(&claims.tenant).await?;
    if tenant.directory().user(&claims.sub).is_none() {
        hub.catch_up_with_store(&tenant).await;
    }
    Ok((claims, tenant, lease))
}

pub(crate) async fn admin(
    hub: &Arc<Hub>,
    headers: &HeaderMap,
    limit: &InFlight,
) -> HubResult<Admin> {
    let permit = in_flight(hub, limit)?;
    let (claims, tenant, lease) = signed_in(hub, headers).await?;
    let holds_admin = tenant
        .directory()
        .user(&claims.sub)
        .is_some_and(|u| u.has_role(Role::Admin));
    if !holds_admin {
        return Err(HubError::forbidden(format!(
            "user {:?} is not an admin of tenant {}",
            claims.sub, claims.tenant
        )));
    }
    let once = idempotency(headers, &claims.sub)?;
    Ok(Admin {
        tenant,
        actor: Actor::new(claims.sub, Role::Admin),
        once,
        _lease: lease,
        _permit: permit,
    })
}

/// A request body: one JSON object of at most `--api-max-body-bytes`
/// (read no further than that), all there within `--http-header-timeout-ms`
/// of its headers: a peer that trickles it would otherwise hold its
/// connection's slot and a request in flight for as long as it likes. SCIM
/// reads its bodies with it too.
pub(crate) async fn body_json(hub: &Hub, body: Body) -> HubResult<Value> {
    let limit = hub.config.api_max_body_bytes;
    let deadline = hub.config.http_header_timeout();
    let read = tokio::time::timeout(deadline, axum::body::to_bytes(body, limit))
        .await
        .map_err(|_| {
            HubError::bad_request(format!(
                "the body did not arrive within {} ms (--http-header-timeout-ms)",
                deadline.as_millis()
            ))
        })?;
    let body = read.map_err(|_| {
        HubError::too_large(format!(
            "the body is larger than {limit} bytes (--api-max-body-bytes), or was cut off"
        ))
    })?;
    let value: Value = serde_json::from_slice(&body)
        .map_err(|e| HubError::bad_request(format!("the body is not JSON: {e}")))?;
    if !value.is_object() {
        return Err(HubError::bad_request("the body must be a JSON object"));
    }
    Ok(value)
}

fn channel_of(kind: &str, id: &str) -> HubResult<ChannelRef> {
    let kind = match kind {
        "queue" => ChannelKind::Queue,
        "chat" => ChannelKind::Chat,
        "campaign" => ChannelKind::Campaign,
        other => {
            return Err(HubError::bad_request(format!(
                "channel kind {other:?} is none of queue, chat, campaign"
            )))
        }
    };
    Ok(ChannelRef::new(kind, id))
}

type Hubs = State<Arc<Hub>>;
type Limit = axum::Extension<InFlight>;

async fn get_directory(State(hub): Hubs, limit: Limit, headers: HeaderMap) -> Response {
    let route = "directory";
    respond(
        route,
        async {
            let a = admin(&hub, &headers, &limit).await?;
            Ok((StatusCode::OK, directory::directory_json(&a.tenant)))
        }
        .await,
    )
}

async fn get_user(
    State(hub): Hubs,
    limit: Limit,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    respond(
        "user",
        async {
            let a = admin(&hub, &headers, &limit).await?;
            Ok((StatusCode::OK, directory::get_user(&a.tenant, &id)?))
        }
        .await,
    )
}

async fn put_user(
    State(hub): Hubs,
    limit: Limit,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    let exists = |dir: &TenantDirectory| dir.user(&id).is_some();
    put("user", &hub, &limit, &headers, body, exists, |body| {
        directory::put_user(body, Some(&id))
    })
    .await
}

/// A PUT of one entry: 201 when it creates it, 200 when it replaces it or
/// nothing changed.
async fn put(
    route: &'static str,
    hub: &Arc<Hub>,
    limit: &InFlight,
    headers: &HeaderMap,
    body: Body,
    exists: impl Fn(&TenantDirectory) -> bool,
    change: impl FnOnce(Value) -> HubResult<DirectoryChange>,
) -> Response {
    respond(
        route,
        async {
            let a = admin(hub, headers, limit).await?;
            let change = change(body_json(hub, body).await?)?;
            let existed = exists(&a.tenant.directory());
            let result =
                directory::apply(hub, &a.tenant, &a.actor, change, a.once.as_ref()).await?;
            let status = if existed || result["changed"] == false {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            };
            Ok((status, result))
        }
        .await,
    )
}

async fn delete_user(
    State(hub): Hubs,
    limit: Limit,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    respond(
        "user",
        async {
            let a = admin(&hub, &headers, &limit).await?;
            let change = DirectoryChange::DeleteUser { id };
            let result =
                directory::apply(&hub, &a.tenant, &a.actor, change, a.once.as_ref()).await?;
            Ok((StatusCode::OK, result))
        }
        .await,
    )
}

async fn get_channel(
    State(hub): Hubs,
    limit: Limit,
    headers: HeaderMap,
    Path((kind, id)): Path<(String, String)>,
) -> Response {
    respond(
        "channel",
        async {
            let a = admin(&hub, &headers, &limit).await?;
            let channel = channel_of(&kind, &id)?;
            Ok((
                StatusCode::OK,
                directory::get_channel(&a.tenant.directory(), &channel)?,
            ))
        }
        .await,
    )
}

async fn put_channel(
    State(hub): Hubs,
    limit: Limit,
    headers: HeaderMap,
    Path((kind, id)): Path<(String, String)>,
    body: Body,
) -> Response {
    let exists = |dir: &TenantDirectory| {
        channel_of(&kind, &id).is_ok_and(|channel| dir.channel(&channel).is_some())
    };
    put("channel", &hub, &limit, &headers, body, exists, |body| {
        directory::put_channel(body, Some(&channel_of(&kind, &id)?))
    })
    .await
}

async fn delete_channel(
    State(hub): Hubs,
    limit: Limit,
    headers: HeaderMap,
    Path((kind, id)): Path<(String, String)>,
) -> Response {
    respond(
        "channel",
        async {
            let a = admin(&hub, &headers, &limit).await?;
            let channel = channel_of(&kind, &id)?;
            let change = DirectoryChange::DeleteChannel { channel };
            let result =
                directory::apply(&hub, &a.tenant, &a.actor, change, a.once.as_ref()).await?;
            Ok((StatusCode::OK, result))
        }
        .await,
    )
}

async fn list_credentials(State(hub): Hubs, limit: Limit, headers: HeaderMap) -> Response {
    respond(
        "credentials",
        async {
            let a = admin(&hub, &headers, &limit).await?;
            credentials::list(&hub, &a).await
        }
        .await,
    )
}

async fn create_credential(
    State(hub): Hubs,
    limit: Limit,
    headers: HeaderMap,
    body: Body,
) -> Response {
    respond(
        "credentials",
        async {
            let a = admin(&hub, &headers, &limit).await?;
            credentials::create(&hub, &a, body).await
        }
        .await,
    )
}

async fn revoke_credential(
    State(hub): Hubs,
    limit: Limit,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    respond(
        "credential",
        async {
            let a = admin(&hub, &headers, &limit).await?;
            credentials::revoke(&hub, &a, &id).await
        }
        .await,
    )
}
