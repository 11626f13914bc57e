//! HTTP and WebSocket serving: `GET /v1/ws` (sessions), `/healthz`,
//! `/readyz`, `/metrics`, the wallboard at `/`, the client library at
//! `/client/` and the agent dashboard at `/agent`; plus graceful shutdown.
//! Who the client is behind a load balancer: [`client_addr`]. [`listener`]
//! is the accept loop that bounds what a connection may hold before it is a
//! session (it attaches the peer address that [`client_addr`] starts from),
//! reading at most `--max-handshakes` first requests at once (`handshakes`).
//! Headers, CORS, versioned assets and `/metrics` access: [`crate::web`],
//! which gets the page routes and the API routes apart (see [`router`]).

mod admin;
pub mod client_addr;
pub(crate) mod handlers;
mod handshakes;
pub mod listener;
pub mod session;
pub mod starting;
mod supervisor;
mod write_deadline;

use crate::hub::Hub;
use crate::wallboard;
use crate::web::{self, WebSecurity};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Extension, Router};
use client_addr::{ClientAddr, ClientAddrs};
use futures_util::future::Either;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::net::TcpListener;

/// The HTTP routes of one node.
pub fn router(hub: Arc<Hub>) -> Router {
    let addrs = Arc::new(ClientAddrs::new(&hub.config));
    let security = web_security(&hub);
    router_with(hub, addrs, security)
}

/// The node's web-security rules. [`crate::node::Node::bind`] has already
/// refused flags they cannot be built from; should a configuration built in
/// code still hold one, the strictest rules apply rather than none.
fn web_security(hub: &Hub) -> Arc<WebSecurity> {
    Arc::new(WebSecurity::from_config(&hub.config).unwrap_or_else(|e| {
        tracing::error!(error = %e, "web security flags refused: serving with the strictest rules");
        WebSecurity::strict()
    }))
}

/// The routes, counting connections per client address in `addrs` (shared
/// with the accept loop, which counts connections not yet upgraded).
/// Pages (HTML, assets, dev sign-in, the WebSocket, which checks
/// `--allowed-origins` itself) and HTTP APIs (CORS applies) are handed to
/// [`web::secure`] apart.
fn router_with(hub: Arc<Hub>, addrs: Arc<ClientAddrs>, security: Arc<WebSecurity>) -> Router {
    let pages = Router::new()
        .route("/v1/ws", get(ws_upgrade))
        .merge(wallboard::routes());
    let mut api = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .merge(crate::agent_page::api_routes())
        .merge(crate::api::routes(&hub))
        .merge(crate::scim::routes(&hub))
        // The rest of the prefix: a JSON 404 (the CORS rules hold for it).
        .route("/api/{*rest}", any(no_such_api));
    if security.metrics.on_public_port() {
        api = api.merge(security.metrics.protect(metrics_route()));
    }
    web::secure(pages, api, security)
        .layer(Extension(addrs))
        .with_state(hub)
}

fn metrics_route() -> Router<Arc<Hub>> {
    Router::new().route("/metrics", get(metrics_text))
}

async fn no_such_api() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(serde_json::json!({"error": {"code": "not_found", "message": "no such API"}})),
    )
        .into_response()
}

async fn ws_upgrade(
    State(hub): State<Arc<Hub>>,
    pending: Option<Extension<Arc<listener::Pending>>>,
    headers: HeaderMap,
    client: ClientAddr,
    ws: crate::ws::Upgrade,
) -> Response {
    let refuse = |status: StatusCode, why: &'static str| {
        crate::metrics::get().rejected_connections.increment(1);
        (status, why).into_response()
    };
    if !origin_allowed(&hub.config.allowed_origins, &headers) {
        return refuse(StatusCode::FORBIDDEN, "origin not allowed\n");
    }
    if hub.is_draining() {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "draining: connect to another node\n",
        );
    }
    // Refused at the handshake, before any per-connection memory is spent.
    // Connections not yet upgraded count too, this one aside.
    let others_pending = pending.map_or(0, |p| p.count().saturating_sub(1));
    if hub.connections.load(Ordering::Relaxed) + others_pending >= hub.config.max_connections {
        return refuse(StatusCode::SERVICE_UNAVAILABLE, "too many connections\n");
    }
    // Behind a load balancer: the client's address (`client_addr`).
    let Ok(slot) = client.admit() else {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many connections from this address\n",
        );
    };
    // The hub enforces `max_frame_bytes` itself on whole messages, so it can
    // answer `too_large` and close cleanly with 1009 (the oversize message is
    // fully read, so closing does not reset the TCP connection). The
    // socket's bound is a hard cap above it that bounds what one message
    // may buffer.
    let hard_cap = hub.config.max_frame_bytes.saturating_mul(4).max(64 * 1024);
    // Not an `async` block: the task holds the session's future and nothing
    // of what built it.
    ws.on_upgrade(
        move |upgraded| match listener::upgraded_socket(upgraded, hard_cap) {
            Some(socket) => Either::Left(client.track(session::run(hub, socket), slot)),
            None => Either::Right(std::future::ready(())),
        },
    )
}

async fn metrics_text(State(hub): State<Arc<Hub>>) -> Response {
    let metrics = crate::metrics::get();
    // Readiness as a series too, so an alert needs no HTTP prober.
    let ready = !hub.is_draining() && hub.backplane.is_ready();
    metrics.ready.set(if ready { 1.0 } else { 0.0 });
    (
        // Prometheus' text exposition format, by name.
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics.render(),
    )
        .into_response()
}

/// With `--allowed-origins` set, a browser's upgrade must come from one of
/// them. A request without `Origin` is not a browser's (browsers always
/// send it on a WebSocket upgrade) and tokens travel only inside `hello`,
/// so it is let through.
fn origin_allowed(allowed: &[String], headers: &HeaderMap) -> bool {
    if allowed.is_empty() {
        return true;
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let origin = origin.to_str().unwrap_or_default().trim_end_matches('/');
    allowed
        .iter()
        // `--allowed-origins "a, b"`: entries are trimmed, as people write lists.
        .any(|a| a.trim().trim_end_matches('/').eq_ignore_ascii_case(origin))
}

async fn readyz(State(hub): State<Arc<Hub>>) -> Response {
    if hub.is_draining() {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n").into_response()
    } else if !hub.backplane.is_ready() {
        (StatusCode::SERVICE_UNAVAILABLE, "backplane unreachable\n").into_response()
    } else {
        "ready\n".into_response()
    }
}

/// Serves until `shutdown` resolves, then drains: stops accepting, marks the
/// node not ready, tells every session `draining` and closes it with 1012,
/// and returns once every session ended or `drain_timeout_ms` passed.
///
/// With `metrics` (`--metrics-listen`), `/metrics` is served there, and
/// only there, until the node has drained.
pub async fn serve(
    hub: Arc<Hub>,
    listener: TcpListener,
    metrics: Option<TcpListener>,
    security: Arc<WebSecurity>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let drain_hub = hub.clone();
    // Scraped through the drain too: ended with the node, not before.
    let _metrics_server = metrics.map(|metrics| {
        let routes =
            web::secure_metrics(security.metrics.protect(metrics_route()), security.clone())
                .with_state(hub.clone());
        let addrs = Arc::new(ClientAddrs::new(&hub.config));
        AbortOnDrop(tokio::spawn(listener::serve_http(
            hub.clone(),
            metrics,
            routes,
            addrs,
            std::future::pending(),
        )))
    });
    // The accept loop attaches the peer address `client_addr` starts from.
    let addrs = Arc::new(ClientAddrs::new(&hub.config));
    let routes = router_with(hub.clone(), addrs.clone(), security);
    let server = listener::serve_http(hub.clone(), listener, routes, addrs, async move {
        shutdown.await;
        tracing::info!("shutting down: draining sessions");
        drain_hub.begin_shutdown();
    });
    let mut server = std::pin::pin!(server);
    let mut draining = hub.shutdown_signal();
    // The HTTP server may finish before the sessions do (upgraded
    // connections are the sessions' own), so finishing it is not the end.
    let mut server_done = false;
    tokio::select! {
        result = &mut server => {
            result?;
            server_done = true;
        }
        _ = crate::hub::draining(&mut draining) => {}
    }
    if !hub.is_draining() {
        return Ok(()); // stopped without a shutdown signal
    }
    let started = tokio::time::Instant::now();
    let drain_timeout = hub.config.drain_timeout();
    let drained = async {
        if !server_done {
            let _ = (&mut server).await;
        }
        hub.wait_idle().await;
        // Cluster mode: give clients the grace to reconnect elsewhere, then
        // clear what is left and release the lease.
        hub.hand_over_devices(drain_timeout.saturating_sub(started.elapsed()))
            .await;
    };
    if tokio::time::timeout(drain_timeout, drained).await.is_err() {
        // Sessions may all be gone and the hand-over (the reconnect grace
        // of the devices, releasing the lease) what ran out of time: say
        // which, so the log never reads "still open" next to `open=0`.
        let open = hub.connections.load(Ordering::Relaxed);
        if open > 0 {
            tracing::warn!(open, "drain timeout reached with sessions still open");
        } else {
            tracing::warn!(
                "drain timeout reached while handing devices over (all sessions closed): the other nodes take over when this node's lease expires"
            );
        }
    }
    Ok(())
}

/// A task that ends when its handle is dropped (the metrics listener ends
/// with [`serve`], whichever way it returns).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
