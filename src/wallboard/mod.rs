//! The supervisor wallboard, embedded in the binary: nothing loads from
//! outside. Served at `/`; plain HTML, one stylesheet and ES modules under
//! `/wallboard/`, no build step. The connection is the JS client library's
//! `SupervisorClient` (served at `/client/`, see `client_lib.rs`); the page's
//! modules (see `js/main.js` for the map): `store.js` (filters, sort,
//! totals over the live records),
//! `list.js` (the windowed agent list), `panels.js` (one agent's actions,
//! search), `admin.js` (the settings form), `format.js` (names, durations).
//! They are served with `no-cache` so a new binary's page is never mixed
//! with an old cached module.
//!
//! `/dev/signin` lists one-click sign-ins (supervisors, admins, agents of the
//! first tenant, with fresh tokens) only when the node generated its own dev
//! secret, i.e. in the in-memory development mode; otherwise it is 404.
//! It hands out tokens, so it answers only clients on this machine (403
//! for others).

use crate::auth;
use crate::domain::Role;
use crate::hub::Hub;
use crate::server::client_addr::ClientAddr;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use std::sync::Arc;

const INDEX: &str = include_str!("index.html");

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// Every embedded file of the page but `index.html`: path, type, content.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "/wallboard/wallboard.css",
        CSS,
        include_str!("wallboard.css"),
    ),
    ("/wallboard/main.js", JS, include_str!("js/main.js")),
    ("/wallboard/store.js", JS, include_str!("js/store.js")),
    ("/wallboard/list.js", JS, include_str!("js/list.js")),
    ("/wallboard/panels.js", JS, include_str!("js/panels.js")),
    ("/wallboard/admin.js", JS, include_str!("js/admin.js")),
    ("/wallboard/format.js", JS, include_str!("js/format.js")),
];

pub fn routes() -> Router<Arc<Hub>> {
    let mut router = Router::new()
        .route("/", get(|| async { Html(INDEX) }))
        .route("/dev/signin", get(dev_signin));
    for &(path, content_type, body) in ASSETS {
        router = router.route(
            path,
            get(move || async move {
                (
                    [
                        (header::CONTENT_TYPE, content_type),
                        (header::CACHE_CONTROL, "no-cache"),
                    ],
                    body,
                )
            }),
        );
    }
    router
}

async fn dev_signin(State(hub): State<Arc<Hub>>, client: ClientAddr) -> Response {
    if !client.is_loopback() {
        return (
            StatusCode::FORBIDDEN,
            "dev sign-in is only served to clients on this machine\n",
        )
            .into_response();
    }
    let (Some(secret), Some(tenant)) = (hub.dev_secret.get(), hub.directory.tenants().next())
    else {
        return (
            StatusCode::NOT_FOUND,
            "dev sign-in is only available in the in-memory dev mode\n",
        )
            .into_response();
    };
    let mut people = Vec::new();
    for user in &tenant.users {
        for role in [Role::Supervisor, Role::Admin, Role::Agent] {
            if user.has_role(role) {
                if let Ok(token) = auth::mint(secret, &tenant.id, &user.id, 12 * 3600) {
                    people.push(
                        json!({"id": user.id, "name": user.name, "role": role, "token": token,
                                       "scoped": user.supervises.is_some()}),
                    );
                }
            }
        }
    }
    Json(json!({"tenant": tenant.name, "people": people})).into_response()
}
