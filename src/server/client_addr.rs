//! The address of the client behind a request, in one place: today the TCP
//! peer that the accept loop ([`super::listener`]) attached to the request.
//! A deployment behind a proxy would resolve it here (trusted proxies and
//! `X-Forwarded-For`), and every user of [`ClientAddr`] follows.

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::StatusCode;
use std::net::SocketAddr;

/// The client's address, as an extractor.
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub SocketAddr);

impl ClientAddr {
    /// Whether the client is on this machine.
    pub fn is_loopback(&self) -> bool {
        self.0.ip().is_loopback()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = (StatusCode, &'static str);

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| ClientAddr(*addr))
            .ok_or((
                StatusCode::INTERNAL_SERVER_ERROR,
                "client address unknown\n",
            ))
    }
}
