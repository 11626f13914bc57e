//! The supervisor wallboard, embedded in the binary: nothing loads from
//! outside. Served at `/`; plain HTML, one stylesheet and ES modules under
//! `/wallboard/`, no build step. The connection is the JS client library's
//! `SupervisorClient` (served at `/client/`, see `client_lib.rs`); the page's
//! modules (see `js/main.js` for the map): `store.js` (filters, sort,
//! totals over the live records),
//! `list.js` (the windowed agent list), `panels.js` (one agent's actions,
//! search), `admin.js` (the settings form), `people.js` (the admin's people and
//! channels), `reports.js` (today's and yesterday's reports, from
//! `/api/v1/reports/…`), `format.js` (names, durations).
//! [`crate::web::assets`] serves the page and these files (content-hashed
//! immutable paths, so a new binary's page is never mixed with an old
//! cached module); this module lists them and serves `/dev/signin`.
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
use crate::web::assets::{Asset, Page, CSS, JS};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use std::sync::Arc;

/// The page, at `/`.
pub const PAGE: Page = Page {
    path: "/",
    html: include_str!("index.html"),
};

const fn asset(path: &'static str, body: &'static str) -> Asset {
    Asset {
        path,
        content_type: JS,
        body,
    }
}

/// Every embedded file of the page but `index.html`.
pub const ASSETS: &[Asset] = &[
    Asset {
        path: "/wallboard/wallboard.css",
        content_type: CSS,
        body: include_str!("wallboard.css"),
    },
    asset("/wallboard/main.js", include_str!("js/main.js")),
    asset("/wallboard/store.js", include_str!("js/store.js")),
    asset("/wallboard/list.js", include_str!("js/list.js")),
    asset("/wallboard/panels.js", include_str!("js/panels.js")),
    asset("/wallboard/admin.js", include_str!("js/admin.js")),
    asset("/wallboard/people.js", include_str!("js/people.js")),
    asset("/wallboard/reports.js", include_str!("js/reports.js")),
    asset("/wallboard/format.js", include_str!("js/format.js")),
    asset("/wallboard/bulk.js", include_str!("js/bulk.js")),
    asset("/wallboard/views.js", include_str!("js/views.js")),
    asset("/wallboard/alerts.js", include_str!("js/alerts.js")),
    asset("/wallboard/tone.js", include_str!("js/tone.js")),
];

/// `/dev/signin` (the page and its files: [`crate::web::assets`]).
pub fn routes() -> Router<Arc<Hub>> {
    Router::new().route("/dev/signin", get(dev_signin))
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
