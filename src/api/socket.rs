//! The integration API over one WebSocket (docs/API.md, "Over one
//! WebSocket"), for a platform that prefers one connection to a request
//! per change: `GET /api/v1/ws` with the service key in the upgrade's
//! `Authorization: Bearer phk_…`, then each text frame is one API request
//! and each reply one frame:
//!
//! ```text
//! → {"id": "r1", "method": "POST", "path": "/api/v1/agents/a3/interactions",
//!    "idempotency_key": "call-981-answered", "body": {"event": "answered", …}}
//! ← {"id": "r1", "status": 200, "body": {"changed": true, "agent": {…}}}
//! ```
//!
//! A request here *is* the HTTP request: it is handed to the API's own
//! router with the connection's key as its `Authorization` and its
//! `idempotency_key` as its `Idempotency-Key`, so the routes, scopes, rate
//! limits, in-flight limit, errors and metrics are the HTTP API's, word for
//! word, and `/openapi.json` describes both. Nothing is a second
//! implementation that could drift.
//!
//! Requests on one connection are answered one at a time, in the order
//! sent: an ACD's `answered` is applied before the `ended` it sends after
//! it, without waiting for the first reply. A key revoked while connected
//! gets its 401 on the next request, and the connection is then closed
//! (1008). What a peer can hold is bounded: the connections
//! (`--api-ws-max-connections`, and the node's `--max-connections`), a
//! frame (`--api-max-body-bytes` plus room for the envelope; larger closes
//! with 1009), a silent peer (`--api-ws-idle-s`: the node pings every third
//! of it, and closes when not even a pong came back), a peer that does not
//! read (a reply not written within `--write-timeout-ms` closes it), and a
//! drain (the connection is closed with 1012 after the request in hand, so
//! the platform reconnects to another node).

use super::credentials::verified_key;
use super::{count, error_response, ApiError};
use crate::error::HubError;
use crate::hub::Hub;
use crate::protocol::close;
use crate::ws::{Message, Out, Part, RateLimiter, Socket, Upgrade};
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, Request, StatusCode};
use axum::response::Response;
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tower::ServiceExt;

/// The path of the integration WebSocket.
pub const PATH: &str = "/api/v1/ws";
/// Room for the envelope (`id`, `method`, `path`, `idempotency_key`)
/// around a body of `--api-max-body-bytes`.
const ENVELOPE: usize = 4 * 1024;
/// The longest request id echoed back.
const MAX_ID: usize = 128;

/// What the upgrade needs: the API's router to hand requests to, and the
/// connection slots (`--api-ws-max-connections`).
#[derive(Clone)]
pub(super) struct Tunnel {
    api: Router<Arc<Hub>>,
    slots: Arc<Semaphore>,
}

impl Tunnel {
    pub(super) fn new(api: Router<Arc<Hub>>, hub: &Hub) -> Self {
        Tunnel {
            api,
            slots: Arc::new(Semaphore::new(hub.config.api_ws_max_connections)),
        }
    }
}

/// `GET /api/v1/ws`: the key is checked before the upgrade (401, 403 as
/// on every route), then the connection takes a slot or gets 503.
pub(super) async fn upgrade(
    State(hub): State<Arc<Hub>>,
    axum::Extension(tunnel): axum::Extension<Tunnel>,
    headers: HeaderMap,
    ws: Result<Upgrade, crate::ws::Rejection>,
) -> Response {
    const ROUTE: &str = "ws";
    if hub.is_draining() {
        let e = HubError::unavailable("draining: connect to another node");
        return error_response(ROUTE, &ApiError::from(e));
    }
    let Some(key) = headers.get(header::AUTHORIZATION).cloned() else {
        let e = HubError::unauthorized("expected Authorization: Bearer <service key>");
        return error_response(ROUTE, &ApiError::from(e));
    };
    if let Err(e) = verified_key(&hub, &headers).await {
        return error_response(ROUTE, &e);
    }
    let ws = match ws {
        Ok(ws) => ws,
        Err(why) => {
            let e = HubError::bad_request(format!("expected a WebSocket upgrade: {why}"));
            return error_response(ROUTE, &ApiError::from(e));
        }
    };
    let Ok(slot) = tunnel.slots.clone().try_acquire_owned() else {
        let e = HubError::unavailable(format!(
            "more than {} integration WebSockets on this node (--api-ws-max-connections); \
             connect to another node or retry later",
            hub.config.api_ws_max_connections
        ));
        return error_response(ROUTE, &ApiError::from(e));
    };
    if hub.connections.load(std::sync::atomic::Ordering::Relaxed) >= hub.config.max_connections {
        let e = HubError::unavailable("too many connections on this node (--max-connections)");
        return error_response(ROUTE, &ApiError::from(e));
    }
    count(ROUTE, StatusCode::SWITCHING_PROTOCOLS);
    let limit = hub.config.api_max_body_bytes.saturating_add(ENVELOPE);
    let api = tunnel.api.clone().with_state(hub.clone());
    ws.on_upgrade(move |upgraded| async move {
        let _slot = slot;
        let Some(socket) = crate::server::listener::upgraded_socket(upgraded, limit) else {
            return;
        };
        let _counted = hub.connection_opened();
        let gauge = &crate::metrics::get().api_ws_connections;
        gauge.increment(1.0);
        serve(&hub, api, key, socket).await;
        gauge.decrement(1.0);
    })
}

/// One request frame.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    #[allow(dead_code)] // read before the rest, echoed from there
    id: Value,
    method: String,
    path: String,
    #[serde(default)]
    idempotency_key: Option<String>,
    #[serde(default)]
    body: Option<Value>,
}

/// Why the connection ends (a close frame's code and reason).
struct Close(u16, &'static str);

async fn serve(hub: &Arc<Hub>, api: Router, key: HeaderValue, mut socket: Socket) {
    let idle = Duration::from_secs(hub.config.api_ws_idle_s.max(1));
    // Every write finishes within this, or the connection ends.
    let timeout = hub.config.write_timeout();
    let mut ping = tokio::time::interval(idle / 3);
    ping.reset();
    let mut heard = Instant::now();
    let mut draining = hub.shutdown_signal();
    let mut limiter = RateLimiter::new(hub.config.api_ws_rate_limit_per_sec);
    let close = loop {
        tokio::select! {
            frame = socket.recv() => {
                heard = Instant::now();
                let message = match frame {
                    Some(Err(crate::ws::Error::TooLarge)) => {
                        break Close(1009, "a frame over --api-max-body-bytes and its envelope");
                    }
                    // 1002 or 1007 for a frame that breaks RFC 6455: sent
                    // by the socket already.
                    None | Some(Err(_)) => return,
                    Some(Ok(Message::Close(_))) => break Close(1000, ""),
                    Some(Ok(message)) => message,
                };
                // The socket queued the pong: written before reading on,
                // within the budget or not, so the node holds at most one.
                if matches!(message, Message::Ping) && !socket.flush_within(timeout).await {
                    return;
                }
                // Every frame counts, each fragment too: without that, a
                // peer could make the node parse empty continuations at
                // line rate for as long as it answers pings.
                if !limiter.admit(heard, Part::of(&message)) {
                    if limiter.flooded() {
                        break Close(
                            close::POLICY,
                            "more frames a second than --api-ws-rate-limit-per-sec",
                        );
                    }
                    let id = match &message {
                        Message::Text(text) => Some(request_id(text).unwrap_or(Value::Null)),
                        Message::Binary(_) => Some(Value::Null),
                        _ => None, // control frames and fragments get no reply
                    };
                    if let Some(id) = id {
                        let e = HubError::rate_limited(format!(
                            "more than {} frames/s on this connection \
                             (--api-ws-rate-limit-per-sec): request dropped",
                            hub.config.api_ws_rate_limit_per_sec
                        ));
                        if !socket.send_within(Out::Text(&reply(id, &e)), timeout).await {
                            return;
                        }
                    }
                    continue;
                }
                let text = match message {
                    Message::Text(text) => text,
                    Message::Binary(_) => {
                        let e = HubError::bad_request("requests are JSON text frames");
                        if !socket.send_within(Out::Text(&reply(Value::Null, &e)), timeout).await {
                            return;
                        }
                        continue;
                    }
                    // A sign of life (a fragment: the rest is to come); a
                    // ping's pong and a close were answered above.
                    Message::Ping | Message::Pong | Message::Fragment | Message::Close(_) => {
                        continue
                    }
                };
                let (answer, revoked) = handle(&api, &key, &text).await;
                if !socket.send_within(Out::Text(&answer), timeout).await {
                    return;
                }
                if revoked {
                    break Close(1008, "the service key is unknown or revoked");
                }
            }
            _ = ping.tick() => {
                if heard.elapsed() >= idle {
                    break Close(1000, "idle: nothing heard for --api-ws-idle-s");
                }
                if !socket.send_within(Out::Ping, timeout).await {
                    return;
                }
            }
            _ = crate::hub::draining(&mut draining) => {
                break Close(1012, "draining: connect to another node");
            }
        }
    };
    let Close(code, reason) = close;
    // Read on (and drop) until the peer answers, or a flood's unread bytes
    // would turn the end into a reset that loses the close frame.
    let linger = hub.config.auth_timeout();
    socket.close_within(code, reason, linger, timeout).await;
}

/// A reply frame refusing a request before it reached a route.
fn reply(id: Value, e: &HubError) -> String {
    let status = super::status_of(e.code).as_u16();
    frame(id, status, json!({ "error": e }))
}

fn frame(id: Value, status: u16, body: Value) -> String {
    json!({"id": id, "status": status, "body": body}).to_string()
}

/// Answers one request frame; `true` when the key was refused (the
/// connection then ends).
async fn handle(api: &Router, key: &HeaderValue, text: &str) -> (String, bool) {
    let request = match serde_json::from_str::<Value>(text) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            let e = HubError::bad_request(
                "a request is a JSON object: {\"id\", \"method\", \"path\", …}",
            );
            return (reply(Value::Null, &e), false);
        }
    };
    let Some(id) = valid_id(&request) else {
        let e = HubError::bad_request(format!(
            "`id` is required: a string of 1 to {MAX_ID} characters or a non-negative integer, \
             echoed in the reply"
        ));
        return (reply(Value::Null, &e), false);
    };
    let envelope: Envelope = match serde_json::from_value(request) {
        Ok(envelope) => envelope,
        Err(e) => {
            return (
                reply(id, &HubError::bad_request(format!("request: {e}"))),
                false,
            )
        }
    };
    let http = match to_http(envelope, key) {
        Ok(http) => http,
        Err(e) => return (reply(id, &e), false),
    };
    // The router's error type is `Infallible`.
    let Ok(response) = api.clone().oneshot(http).await;
    let status = response.status();
    // The body of an API answer: bounded by what the routes build (a
    // page of agents, of events); read whole.
    let body = match axum::body::to_bytes(response.into_body(), usize::MAX).await {
        Ok(bytes) if bytes.is_empty() => Value::Null,
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        Err(_) => Value::Null,
    };
    (
        frame(id, status.as_u16(), body),
        status == StatusCode::UNAUTHORIZED,
    )
}

/// A request's `id` when it is one to echo: a string of 1 to [`MAX_ID`]
/// characters or a non-negative integer.
fn valid_id(request: &Value) -> Option<Value> {
    let id = request.get("id")?;
    let ok = match id {
        Value::String(s) => crate::text::within(s, 1, MAX_ID),
        Value::Number(n) => n.is_u64(),
        _ => false,
    };
    ok.then(|| id.clone())
}

/// The `id` of a frame dropped unread (over the rate limit), when it has
/// a valid one: its refusal is then matched to the request.
fn request_id(frame: &str) -> Option<Value> {
    valid_id(&serde_json::from_str::<Value>(frame).ok()?)
}

/// The HTTP request a frame stands for.
fn to_http(envelope: Envelope, key: &HeaderValue) -> Result<Request<Body>, HubError> {
    let method = match envelope.method.as_str() {
        "GET" => Method::GET,
        "PUT" => Method::PUT,
        "POST" => Method::POST,
        "DELETE" => Method::DELETE,
        other => {
            return Err(HubError::bad_request(format!(
                "method {other:?}: GET, PUT, POST or DELETE"
            )))
        }
    };
    let path = envelope.path;
    if !path.starts_with("/api/v1/") || path.starts_with(PATH) {
        return Err(HubError::bad_request(format!(
            "path {path:?}: one of the API's paths under /api/v1/ (see /openapi.json)"
        )));
    }
    let mut request = Request::builder()
        .method(method)
        .uri(path.as_str())
        .header(header::AUTHORIZATION, key.clone());
    if let Some(once) = &envelope.idempotency_key {
        let value = HeaderValue::from_str(once)
            .map_err(|_| HubError::bad_request("`idempotency_key` must be printable ASCII"))?;
        request = request.header("idempotency-key", value);
    }
    let body = match envelope.body {
        None => Body::empty(),
        Some(body) => {
            request = request.header(header::CONTENT_TYPE, "application/json");
            Body::from(body.to_string())
        }
    };
    request
        .body(body)
        .map_err(|_| HubError::bad_request(format!("path {path:?} is not a valid URI path")))
}
