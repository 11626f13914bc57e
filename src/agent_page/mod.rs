//! The agent dashboard, embedded in the binary and served at `/agent`: an
//! agent signs in with a token (or the dev one-click sign-in), controls their
//! own status, channels and (simulated) interactions, and answers
//! supervisors' monitor requests. Plain HTML, CSS and ES modules with no
//! build step; the protocol itself is the client library's `AgentClient`
//! (served at `/client/`), never a second copy here. The page and its files
//! are served by [`crate::web::assets`] (content-hashed immutable paths).
//!
//! `GET /agent/tenant` (with `Authorization: Bearer <token>` of an agent)
//! gives the page what the `welcome` does not carry: the tenant's channels
//! (so an agent can join an unassigned one when unassigned access allows)
//! and the display names of its people (so "changed by s1" reads "changed by
//! Sara Supervisor").

use crate::domain::Role;
use crate::hub::Hub;
use crate::web::assets::{Asset, Page, CSS, JS};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use std::sync::Arc;

/// The page, at `/agent`.
pub const PAGE: Page = Page {
    path: "/agent",
    html: include_str!("index.html"),
};

/// The page's script and stylesheet.
pub const ASSETS: &[Asset] = &[
    Asset {
        path: "/agent/app.js",
        content_type: JS,
        body: include_str!("app.js"),
    },
    Asset {
        path: "/agent/style.css",
        content_type: CSS,
        body: include_str!("style.css"),
    },
];

/// `GET /agent/tenant`, an HTTP API (CORS rules apply: see
/// [`crate::web`]).
pub fn api_routes() -> Router<Arc<Hub>> {
    Router::new().route("/agent/tenant", get(tenant))
}

/// The tenant's channels and people's names, for a verified agent token.
async fn tenant(State(hub): State<Arc<Hub>>, headers: HeaderMap) -> Response {
    let unauthorized = |why: String| (StatusCode::UNAUTHORIZED, why).into_response();
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return unauthorized("expected Authorization: Bearer <token>\n".into());
    };
    let claims = match hub.verifier.verify(token.trim()).await {
        Ok(claims) => claims,
        Err(e) => return unauthorized(format!("{e}\n")),
    };
    let (tenant, _lease) = match hub.open_tenant(&claims.tenant).await {
        Ok(opened) => opened,
        Err(e) if e.code == crate::error::ErrorCode::Unavailable => {
            return (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response()
        }
        Err(e) => return unauthorized(format!("{e}\n")),
    };
    if tenant.directory().user(&claims.sub).is_none() {
        hub.catch_up_with_store(&tenant).await;
    }
    // The directory as it is now: channels and people change at runtime.
    let dir = tenant.directory();
    if !dir
        .user(&claims.sub)
        .is_some_and(|u| u.has_role(Role::Agent))
    {
        return (StatusCode::FORBIDDEN, "not an agent of this tenant\n").into_response();
    }
    let channels: Vec<_> = dir
        .channels
        .iter()
        .map(|c| json!({"kind": c.kind, "id": c.id, "name": c.name}))
        .collect();
    let people: Vec<_> = dir
        .users
        .iter()
        .map(|u| json!({"id": u.id, "name": u.name}))
        .collect();
    Json(json!({"tenant": tenant.name(), "channels": channels, "people": people})).into_response()
}
