//! The security headers on every response the hub sends, pages, assets,
//! APIs, errors and 404s alike: a header that costs nothing on a JSON answer
//! still protects it should a browser ever render it as a document.

use super::WebSecurity;
use axum::extract::{Request, State};
use axum::http::header::{
    CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;

/// Every fetch kind closed (`default-src 'none'`), then opened for the hub
/// itself only: the pages are plain ES modules and one stylesheet each, with
/// no inline script or style (`innerHTML` templates carry no `style=`; the
/// list positions rows through the CSSOM, which CSP does not govern).
/// `connect-src 'self'` covers the page's own `ws:`/`wss:` origin in CSP
/// Level 3 browsers (the Chromium test checks the WebSocket connects), and
/// `/agent/tenant`, `/dev/signin`. Forms are submitted by script; should one
/// ever submit natively it may only go to the hub (`form-action`).
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     font-src 'self'; connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'";

/// Browser features the pages never use, turned off for them and for any
/// frame they could ever contain. Only names Chromium knows: an unknown one
/// is a console error on every load.
const PERMISSIONS_POLICY: &str = "accelerometer=(), camera=(), display-capture=(), \
     geolocation=(), gyroscope=(), magnetometer=(), microphone=(), midi=(), payment=(), \
     publickey-credentials-get=(), usb=(), screen-wake-lock=(), xr-spatial-tracking=()";

/// The whole CSP: [`POLICY`] and who may frame the pages (`'none'` unless
/// `--frame-ancestors` names origins, already checked by
/// [`super::parse_origin`], so they cannot break out of the directive).
pub(super) fn content_security_policy(frame_ancestors: &[String]) -> HeaderValue {
    let ancestors = if frame_ancestors.is_empty() {
        "'none'".to_string()
    } else {
        frame_ancestors.join(" ")
    };
    HeaderValue::from_str(&format!("{POLICY}; frame-ancestors {ancestors}"))
        // Unreachable with checked origins; fail closed rather than open.
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"))
}

/// Middleware: the headers, unless the handler set its own.
pub(super) async fn add_security_headers(
    State(security): State<Arc<WebSecurity>>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let mut set = |name: HeaderName, value: HeaderValue| {
        headers.entry(name).or_insert(value);
    };
    set(CONTENT_SECURITY_POLICY, security.csp.clone());
    set(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    set(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    set(
        HeaderName::from_static("permissions-policy"),
        HeaderValue::from_static(PERMISSIONS_POLICY),
    );
    // A page this hub serves never shares a browsing context group with a
    // window of another origin (no `window.opener` either way).
    set(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    if security.deny_framing {
        set(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    response
}
