//! Who may read `/metrics` (README "Web security"). The series say how many
//! agents are online, how busy the node is and when Redis fails: not for
//! the public, yet many operators expose the hub's port directly.
//!
//! - `--metrics-listen ADDR`: `/metrics` is served only there (an address
//!   the operator keeps private); the public port answers 404.
//! - `--metrics-token T`: `/metrics` needs `Authorization: Bearer T`
//!   (wherever it is served), compared in constant time.
//! - neither: open on the public port as before (Prometheus setups keep
//!   working), and the node logs a warning at start when that port is not
//!   on loopback.

use super::WebConfigError;
use crate::config::Config;
use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// Where `/metrics` is served and what it asks for.
#[derive(Clone, Debug)]
pub enum MetricsAccess {
    /// On the public port, to anyone.
    Open,
    /// Wherever it is served, with this bearer token.
    Token(Arc<MetricsToken>),
    /// Only on `--metrics-listen` (with a token if one is set).
    Elsewhere(Option<Arc<MetricsToken>>),
}

/// The expected token, kept as its SHA-256: comparing digests of equal
/// length in constant time tells a guesser nothing, not even the length.
pub struct MetricsToken([u8; 32]);

impl std::fmt::Debug for MetricsToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsToken(..)") // never the token, not even hashed
    }
}

impl MetricsToken {
    fn new(token: &str) -> MetricsToken {
        MetricsToken(Sha256::digest(token.as_bytes()).into())
    }

    fn matches(&self, given: &str) -> bool {
        let given: [u8; 32] = Sha256::digest(given.as_bytes()).into();
        self.0.ct_eq(&given).into()
    }
}

impl MetricsAccess {
    pub(super) fn from_config(config: &Config) -> Result<MetricsAccess, WebConfigError> {
        let token = match config.metrics_token.as_deref().map(str::trim) {
            Some("") => return Err(WebConfigError::EmptyMetricsToken),
            Some(t) => Some(Arc::new(MetricsToken::new(t))),
            None => None,
        };
        Ok(match (config.metrics_listen, token) {
            (Some(_), token) => MetricsAccess::Elsewhere(token),
            (None, Some(token)) => MetricsAccess::Token(token),
            (None, None) => MetricsAccess::Open,
        })
    }

    /// Whether the public port serves `/metrics`.
    pub fn on_public_port(&self) -> bool {
        !matches!(self, MetricsAccess::Elsewhere(_))
    }

    fn token(&self) -> Option<Arc<MetricsToken>> {
        match self {
            MetricsAccess::Open => None,
            MetricsAccess::Token(t) => Some(t.clone()),
            MetricsAccess::Elsewhere(t) => t.clone(),
        }
    }

    /// `route` (the `/metrics` route) behind the token, if one is set.
    pub fn protect<S>(&self, route: Router<S>) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        match self.token() {
            None => route,
            Some(token) => {
                route.route_layer(axum::middleware::from_fn_with_state(token, require_token))
            }
        }
    }

    /// Says so at start when `/metrics` is open to whoever reaches a
    /// public port.
    pub fn warn_if_exposed(&self, listen: std::net::SocketAddr) {
        if matches!(self, MetricsAccess::Open) && !listen.ip().is_loopback() {
            tracing::warn!(
                %listen,
                "/metrics is open to anyone who reaches this port: set --metrics-listen \
                 (a private address) or --metrics-token (README \"Web security\")"
            );
        }
    }
}

async fn require_token(
    State(token): State<Arc<MetricsToken>>,
    request: Request,
    next: Next,
) -> Response {
    let given = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(given) if token.matches(given.trim()) => next.run(request).await,
        _ => (
            StatusCode::UNAUTHORIZED,
            [(WWW_AUTHENTICATE, "Bearer realm=\"metrics\"")],
            "/metrics needs Authorization: Bearer <--metrics-token>\n",
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::MetricsToken;

    #[test]
    fn only_the_exact_token_matches() {
        let t = MetricsToken::new("s3cret");
        assert!(t.matches("s3cret"));
        for wrong in ["", "s3cre", "s3cret ", "S3cret", "s3cret-and-more"] {
            assert!(!t.matches(wrong), "{wrong:?}");
        }
        assert_eq!(format!("{t:?}"), "MetricsToken(..)");
    }
}
