//! Web security of everything the hub serves over HTTP (README "Web
//! security", DESIGN.md §6.1): the headers every response carries (a strict
//! Content-Security-Policy, `nosniff`, no referrer, a restrictive
//! Permissions-Policy, no framing unless `--frame-ancestors` allows it), the
//! embedded pages and their assets under content-hashed immutable paths
//! ([`assets`]), CORS on the HTTP APIs (refused unless `--cors-origins`
//! lists the origin, [`cors`]), and who may read `/metrics`
//! ([`metrics_access`]).
//!
//! One entry point, [`secure`]: the server hands it its page routes and its
//! API routes and gets back one router with every rule applied (and
//! [`secure_metrics`] for the `--metrics-listen` listener, which serves
//! `/metrics` alone).
//! [`WebSecurity::from_config`] checks the flags once at start.

pub mod assets;
mod cors;
mod headers;
pub mod metrics_access;

use crate::config::Config;
use axum::http::HeaderValue;
use axum::Router;
use std::sync::Arc;

pub use metrics_access::MetricsAccess;

/// A flag value that cannot be used as an origin.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WebConfigError {
    #[error(
        "{flag}: {value:?} is not an origin (scheme://host[:port], e.g. https://portal.example.com; \
         no path, no wildcard)"
    )]
    NotAnOrigin { flag: &'static str, value: String },
    #[error("--metrics-token must not be empty")]
    EmptyMetricsToken,
}

/// What [`secure`] applies, checked and built once from the flags.
#[derive(Clone, Debug)]
pub struct WebSecurity {
    /// The whole `Content-Security-Policy` value.
    csp: HeaderValue,
    /// `--frame-ancestors` is empty: also `X-Frame-Options: DENY` (for
    /// browsers that predate `frame-ancestors`). With origins there is no
    /// X-Frame-Options value that lists them, so it is left out.
    deny_framing: bool,
    /// Origins whose pages may call the HTTP APIs (`--cors-origins`).
    cors_origins: Vec<String>,
    pub metrics: MetricsAccess,
}

impl WebSecurity {
    pub fn from_config(config: &Config) -> Result<WebSecurity, WebConfigError> {
        let frame_ancestors = config
            .frame_ancestors
            .iter()
            .map(|o| parse_origin_for("--frame-ancestors", o))
            .collect::<Result<Vec<_>, _>>()?;
        let cors_origins = config
            .cors_origins
            .iter()
            .map(|o| parse_origin_for("--cors-origins", o))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(WebSecurity {
            csp: headers::content_security_policy(&frame_ancestors),
            deny_framing: frame_ancestors.is_empty(),
            cors_origins,
            metrics: MetricsAccess::from_config(config)?,
        })
    }

    /// No framing, no cross-origin API access, `/metrics` open: what a node
    /// with no web-security flags runs with.
    pub fn strict() -> WebSecurity {
        WebSecurity {
            csp: headers::content_security_policy(&[]),
            deny_framing: true,
            cors_origins: Vec::new(),
            metrics: MetricsAccess::Open,
        }
    }
}

/// The one entry point: `pages` (HTML, assets, the dev sign-in, the
/// WebSocket) and `api` (the HTTP APIs, probes and `/metrics`: what other
/// origins may be allowed to call) become one router. The embedded pages
/// and their assets are added here ([`assets::routes`]); CORS applies to
/// `api` only; the security headers to every response, the 404s included.
pub fn secure<S>(pages: Router<S>, api: Router<S>, security: Arc<WebSecurity>) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    pages
        .merge(assets::routes())
        .merge(cors::apply(api, &security.cors_origins))
        .layer(axum::middleware::from_fn_with_state(
            security,
            headers::add_security_headers,
        ))
}

/// The `--metrics-listen` listener's routes (`metrics`: `/metrics`, behind
/// its token if any) with the same headers; no pages, no CORS (Prometheus
/// is no browser page).
pub fn secure_metrics<S>(metrics: Router<S>, security: Arc<WebSecurity>) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    metrics.layer(axum::middleware::from_fn_with_state(
        security,
        headers::add_security_headers,
    ))
}

/// `--frame-ancestors` / `--cors-origins` parser: one origin, as a browser
/// serializes it in an `Origin` header (lower-case scheme and host, no
/// trailing slash). Only characters an origin may hold pass, so a value can
/// neither break out of the CSP (`;`, quotes, spaces) nor widen it (`*`).
pub fn parse_origin(text: &str) -> Result<String, WebConfigError> {
    parse_origin_for("origin", text)
}

fn parse_origin_for(flag: &'static str, text: &str) -> Result<String, WebConfigError> {
    let bad = || WebConfigError::NotAnOrigin {
        flag,
        value: text.to_string(),
    };
    let origin = text.trim().trim_end_matches('/').to_ascii_lowercase();
    let (scheme, authority) = origin.split_once("://").ok_or_else(bad)?;
    if !matches!(scheme, "http" | "https") || authority.is_empty() {
        return Err(bad());
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']');
    if !authority.chars().all(allowed) || authority.starts_with(['.', '-', ':']) {
        return Err(bad());
    }
    Ok(origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_normalized_and_anything_else_is_refused() {
        assert_eq!(
            parse_origin(" HTTPS://Portal.Example.com/ "),
            Ok("https://portal.example.com".into())
        );
        assert_eq!(
            parse_origin("http://127.0.0.1:8080"),
            Ok("http://127.0.0.1:8080".into())
        );
        assert_eq!(
            parse_origin("http://[::1]:80"),
            Ok("http://[::1]:80".into())
        );
        for bad in [
            "portal.example.com",
            "https://",
            "https://*.example.com",
            "*",
            "https://a.example.com/path",
            "https://a.example.com; script-src *",
            "https://a.example.com 'unsafe-inline'",
            "javascript://x",
            "null",
        ] {
            assert!(parse_origin(bad).is_err(), "{bad} accepted");
        }
    }
}
