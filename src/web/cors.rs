//! CORS on the HTTP APIs, with `tower-http`'s layer (the same `http` and
//! `tower` versions as axum 0.8, nothing new in the tree but itself): a page
//! of another origin may read an API's answer only if `--cors-origins`
//! lists its origin. Preflights (`OPTIONS` with
//! `Access-Control-Request-Method`) are answered here, 204 with the allowed
//! methods and headers, and never reach a handler. Credentials are never
//! allowed (`Access-Control-Allow-Credentials` is never sent): the APIs take
//! bearer tokens, which a page must send on purpose, never cookies, which a
//! browser would attach on its own.
//!
//! Beyond what a browser enforces, a state-changing request (any method
//! but GET, HEAD, OPTIONS) is refused here before its handler runs: with an
//! `Origin` that is neither listed nor the hub's own (403), or without a
//! bearer token (401). A cross-site form post therefore has nothing to ride
//! on, whatever a future handler forgets.

use axum::extract::Request;
use axum::http::header::{
    ACCESS_CONTROL_REQUEST_METHOD, AUTHORIZATION, CONTENT_TYPE, HOST, ORIGIN,
};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use std::sync::Arc;
use std::time::Duration;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// The methods the APIs may be called with cross-origin.
const METHODS: [Method; 6] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
];

/// How long a browser may reuse a preflight's answer.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(600);

/// `api` with CORS for `origins` (already normalized by
/// [`super::parse_origin`]; empty: no cross-origin access at all).
pub(super) fn apply<S>(api: Router<S>, origins: &[String]) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let listed: Arc<[String]> = origins.into();
    let allow = AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()));
    let cors = CorsLayer::new()
        .allow_origin(allow)
        .allow_methods(METHODS)
        .allow_headers([
            AUTHORIZATION,
            CONTENT_TYPE,
            HeaderName::from_static("idempotency-key"),
        ])
        .max_age(PREFLIGHT_MAX_AGE);
    // Layers run outside in: the 204, then CORS, then the guard of
    // state-changing requests (so its 401 still carries CORS headers and
    // an allowed page can read why it was refused).
    api.layer(axum::middleware::from_fn(move |request, next| {
        guard_unsafe(listed.clone(), request, next)
    }))
    .layer(cors)
    .layer(axum::middleware::from_fn(preflight_no_content))
}

/// `tower-http` answers a preflight 200 with an empty body; 204 says the
/// same without pretending there is content.
async fn preflight_no_content(request: Request, next: Next) -> Response {
    let preflight = request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(ACCESS_CONTROL_REQUEST_METHOD);
    let mut response = next.run(request).await;
    if preflight && response.status() == StatusCode::OK {
        *response.status_mut() = StatusCode::NO_CONTENT;
    }
    response
}

/// Refuses a state-changing request from a foreign origin or without a
/// bearer token (see the module's doc).
async fn guard_unsafe(listed: Arc<[String]>, request: Request, next: Next) -> Response {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return next.run(request).await;
    }
    let headers = request.headers();
    if let Some(origin) = headers.get(ORIGIN) {
        let origin = origin.to_str().unwrap_or_default().to_ascii_lowercase();
        let host = headers
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default();
        if !listed.contains(&origin) && !same_origin(&origin, host) {
            return refused(
                StatusCode::FORBIDDEN,
                "forbidden",
                "origin not allowed (--cors-origins)",
            );
        }
    }
    let bearer = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("Bearer ") && v.len() > "Bearer ".len());
    if !bearer {
        let mut response = refused(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "expected Authorization: Bearer <token>",
        );
        response
            .headers_mut()
            .insert("www-authenticate", HeaderValue::from_static("Bearer"));
        return response;
    }
    next.run(request).await
}

/// A refusal in the APIs' error shape (`crate::api`).
fn refused(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(serde_json::json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

/// The page that sent `origin` is the hub's own: its host and port are the
/// request's `Host`. The scheme is not compared: behind a TLS-terminating
/// balancer the page is `https://` while the hub sees plain HTTP.
fn same_origin(origin: &str, host: &str) -> bool {
    let Some((_, authority)) = origin.split_once("://") else {
        return false; // `Origin: null` (sandboxed frames, file: pages)
    };
    !host.is_empty() && authority.eq_ignore_ascii_case(host)
}

#[cfg(test)]
mod tests {
    use super::same_origin;

    #[test]
    fn the_hubs_own_origin_is_its_host_whatever_the_scheme() {
        assert!(same_origin("http://127.0.0.1:8080", "127.0.0.1:8080"));
        assert!(same_origin("https://hub.example.com", "HUB.example.com"));
        assert!(!same_origin("http://127.0.0.1:8081", "127.0.0.1:8080"));
        assert!(!same_origin("http://evil.example", "hub.example.com"));
        assert!(!same_origin("null", "hub.example.com"));
        assert!(!same_origin("http://hub.example.com", ""));
    }
}
