//! The opening handshake (RFC 6455 §4.2): an extractor that checks the
//! request is a WebSocket upgrade, and the `101` that hands the connection
//! over to a task of its own.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Version};
use axum::response::{IntoResponse, Response};
use futures_util::future::Either;
use futures_util::FutureExt;
use hyper::upgrade::{OnUpgrade, Upgraded};
use std::future::Future;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// A request to upgrade to a WebSocket, checked.
pub struct Upgrade {
    key: HeaderValue,
    on_upgrade: OnUpgrade,
}

/// Why a request is not a WebSocket upgrade, with the reason as text: `400`
/// (not an upgrade, or no key), `405` (not `GET`), `426` with
/// `Sec-WebSocket-Version: 13` (another version), `500` (a connection the
/// server cannot upgrade: never, under the hub's own listener).
#[derive(Debug)]
pub struct Rejection {
    pub status: StatusCode,
    pub reason: &'static str,
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.reason).into_response();
        if self.status == StatusCode::UPGRADE_REQUIRED {
            // The version the hub speaks (RFC 6455 §4.4).
            response.headers_mut().insert(
                header::SEC_WEBSOCKET_VERSION,
                HeaderValue::from_static("13"),
            );
        }
        response
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.reason)
    }
}

fn reject(status: StatusCode, reason: &'static str) -> Rejection {
    Rejection { status, reason }
}

/// Whether a `Sec-WebSocket-Key` is what RFC 6455 §4.2.1 asks for: a
/// 16-byte nonce in base64 (its padded encoding, as clients send it).
fn is_nonce(key: &[u8]) -> bool {
    use base64::Engine;
    key.len() == 24
        && base64::engine::general_purpose::STANDARD
            .decode(key)
            .is_ok_and(|nonce| nonce.len() == 16)
}

impl<S: Send + Sync> FromRequestParts<S> for Upgrade {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Rejection> {
        if parts.version > Version::HTTP_11 {
            // The hub serves HTTP/1.1 only (RFC 8441's CONNECT is not offered).
            return Err(reject(
                StatusCode::BAD_REQUEST,
                "WebSocket upgrades are made over HTTP/1.1",
            ));
        }
        if parts.method != Method::GET {
            return Err(reject(
                StatusCode::METHOD_NOT_ALLOWED,
                "Request method must be `GET`",
            ));
        }
        let headers = &parts.headers;
        if !has_token(headers, header::CONNECTION, "upgrade") {
            return Err(reject(
                StatusCode::BAD_REQUEST,
                "Connection header did not include 'upgrade'",
            ));
        }
        if !is(headers, header::UPGRADE, "websocket") {
            return Err(reject(
                StatusCode::BAD_REQUEST,
                "`Upgrade` header did not include 'websocket'",
            ));
        }
        let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY).cloned() else {
            return Err(reject(
                StatusCode::BAD_REQUEST,
                "`Sec-WebSocket-Key` header missing",
            ));
        };
        if !is_nonce(key.as_bytes()) {
            return Err(reject(
                StatusCode::BAD_REQUEST,
                "`Sec-WebSocket-Key` is not 16 bytes in base64",
            ));
        }
        if !is(headers, header::SEC_WEBSOCKET_VERSION, "13") {
            return Err(reject(
                StatusCode::UPGRADE_REQUIRED,
                "`Sec-WebSocket-Version` header did not include '13'",
            ));
        }
        let Some(on_upgrade) = parts.extensions.remove::<OnUpgrade>() else {
            return Err(reject(
                StatusCode::INTERNAL_SERVER_ERROR,
                "WebSocket request couldn't be upgraded since no upgrade state was present",
            ));
        };
        Ok(Upgrade { key, on_upgrade })
    }
}

impl Upgrade {
    /// Answers `101 Switching Protocols` and runs `serve` on the upgraded
    /// connection in a task of its own, once hyper has written the answer.
    /// (No subprotocol or extension is agreed: the hub speaks plain JSON
    /// text frames.)
    pub fn on_upgrade<F, Fut>(self, serve: F) -> Response
    where
        F: FnOnce(Upgraded) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let accept = derive_accept_key(self.key.as_bytes());
        let on_upgrade = self.on_upgrade;
        // Combinators, not an `async` block: the task then holds `serve`'s
        // future alone once it runs, not beside `serve` itself and the
        // upgrade's result (each connection's task is its idle cost).
        tokio::spawn(on_upgrade.then(move |upgraded| match upgraded {
            Ok(upgraded) => Either::Left(serve(upgraded)),
            // The client went away before the switch.
            Err(_) => Either::Right(std::future::ready(())),
        }));
        let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        if let Ok(accept) = HeaderValue::from_str(&accept) {
            headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
        }
        response
    }
}

/// Whether a comma-separated header holds `token` (any case).
fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|value| {
        value
            .as_bytes()
            .split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    })
}

/// Whether a header is `value` (any case).
fn is(headers: &HeaderMap, name: header::HeaderName, value: &str) -> bool {
    headers
        .get(name)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(value.as_bytes()))
}
