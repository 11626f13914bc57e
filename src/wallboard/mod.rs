//! The supervisor wallboard, embedded in the binary: nothing loads from
//! outside. Served at `/`; plain HTML, CSS and JavaScript, no build step.
//!
//! `/dev/signin` lists one-click sign-ins (supervisors and admins of the
//! first tenant, with fresh tokens) only when the node generated its own dev
//! secret, i.e. in the in-memory development mode; otherwise it is 404.
//! It hands out tokens, so it answers only clients on this machine (403
//! for others).

use crate::auth;
use crate::domain::Role;
use crate::hub::Hub;
use crate::server::client_addr::ClientAddr;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use std::sync::Arc;

const INDEX: &str = include_str!("index.html");

pub fn routes() -> Router<Arc<Hub>> {
    Router::new()
        .route("/", get(|| async { Html(INDEX) }))
        .route("/dev/signin", get(dev_signin))
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
        for role in [Role::Supervisor, Role::Admin] {
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
